"""docs/config-reference.md: generated from the models, complete, current; check-config on a
registry file on its own."""

from __future__ import annotations

import re
import runpy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "config-reference.py"
REFERENCE = ROOT / "docs" / "config-reference.md"
COMMAND = ".venv/bin/python scripts/config-reference.py"


@pytest.fixture(scope="module")
def generator() -> dict[str, Any]:
    return runpy.run_path(str(SCRIPT), run_name="config_reference")


def sections(text: str) -> dict[str, list[str]]:
    """Each section's model (``monitor.config.HttpSettings``) -> the keys of its table."""
    found: dict[str, list[str]] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        model = re.search(r"^Model: `([\w.]+)`\.$", block, flags=re.M)
        keys = re.findall(r"^\| `([^`]+)` \|", block, flags=re.M)
        found[model.group(1) if model else block.splitlines()[0]] = keys
    return found


def test_the_committed_reference_is_what_the_models_generate(generator: dict[str, Any]) -> None:
    committed = REFERENCE.read_text(encoding="utf-8")
    assert generator["render"]() == committed, f"{REFERENCE.name} is out of date: run {COMMAND}"


def test_every_key_has_a_meaning(generator: dict[str, Any]) -> None:
    missing = generator["undescribed"]()
    assert not missing, (
        f"no description for {missing}: give the field a description= (or add it to "
        f"DESCRIPTIONS in scripts/configdoc/texts.py), then run {COMMAND}"
    )


def test_every_field_of_every_model_is_listed() -> None:
    # Independent of the generator's walk: the JSON schema pydantic derives from the same models.
    schema = Config.model_json_schema(mode="validation")
    listed = sections(REFERENCE.read_text(encoding="utf-8"))
    common = set(listed["npsp_common.types.CheckCommon"])
    definitions = {"Config": schema, **schema["$defs"]}
    missing = []
    for name, definition in definitions.items():
        properties = definition.get("properties")
        if not properties:
            continue
        model = name.replace("__", ".")
        matches = [m for m in listed if m == model or m.endswith(f".{model}")]
        assert len(matches) == 1, f"no section (or several) for the model {name}: {matches}"
        keys = {key.rsplit(".", 1)[-1] for key in listed[matches[0]]}
        is_check = model.startswith("probes.")
        for prop in properties:
            if prop not in keys and not (is_check and prop in common):
                missing.append(f"{model}.{prop}")
    assert not missing, f"keys missing from {REFERENCE.name}: {missing}; run {COMMAND}"


def test_the_reference_has_the_keys_people_look_for() -> None:
    keys = {k for ks in sections(REFERENCE.read_text(encoding="utf-8")).values() for k in ks}
    for key in (
        "alerting.outbox.drain_timeout",
        "alerting.operations[].phone",
        "channels.sms.api_base_url",
        "channels.mqtt.announcement_tokens",
        "channels.email.password",
        "security.allow_networks",
        "http.trusted_proxies",
        "http.tls_cert",
        "calendar.rules.<rule>.value",
        "agencies[].systems[].public",
        "deadman.ping_url",
        "tls.min_days_valid",
        "json[].severity",
        "schema_version",
    ):
        assert key in keys, key
    row = next(
        line
        for line in REFERENCE.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `alerting.outbox.max_attempts` |")
    )
    # type, default, meaning
    assert "integer, 1 to 100" in row and "`12`" in row and "Attempts" in row


def test_check_mode_names_the_command_when_the_file_is_stale(
    generator: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "config-reference.md"
    text = REFERENCE.read_text(encoding="utf-8")
    stale.write_text(text.replace("| `channels.sms.api_base_url` |", "| `channels.sms.x` |"))
    assert generator["main"](["--check", "--output", str(stale)]) == 1
    assert f"out of date: run {COMMAND}" in capsys.readouterr().err
    stale.write_text(text)
    assert generator["main"](["--check", "--output", str(stale)]) == 0


# ---------------------------------------------------------------- check-config on a registry


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


REGISTRY = """\
schema_version: 1
agencies:
  - id: ha-noi
    kind: province
    name_vi: Thành phố Hà Nội
    name_en: Hanoi
    code: "01"
    contacts:
      - name: Quản trị kỹ thuật
        role: technical-admin
        email: qtkt@ha-noi.dvc.example
        phone: "+84900000001"
        channels: [email, sms]
    systems:
      - id: secure-server
        kind: secure-server
        name: Máy chủ bảo mật
        checks: [{id: tcp, kind: tcp, host: mcbm.ha-noi.dvc.example, port: 443}]
      - id: one-stop
        kind: one-stop
        name: Một cửa
        depends_on: [secure-server, bo-tai-chinh/secure-server]
        checks: [{id: tcp, kind: tcp, host: motcua.ha-noi.dvc.example, port: 443}]
"""


def test_check_config_checks_the_shipped_registry_on_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = ROOT / "config" / "registry.example.yaml"
    assert main(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK — 54 agencies, 162 systems" in out
    assert "registry file" in out


def test_a_registry_file_is_checked_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its contacts' channels and another file's agency are judged with the daemon's config.
    good = write(tmp_path, "registry.yaml", REGISTRY)
    assert main(["check-config", "-c", str(good)]) == 0
    assert "1 agency, 2 systems, 2 checks" in capsys.readouterr().out

    bad = write(
        tmp_path,
        "bad.yaml",
        REGISTRY.replace("schema_version: 1", "schema_version: 2\nvantage_: gw-1").replace(
            "kind: province", "kind: city"
        ),
    )
    assert main(["check-config", "-c", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        f"{bad}:2: vantage_: unknown key in a registry file (allowed: schema_version, agencies)",
        f"{bad}:1: schema_version: unsupported schema_version 2 (this version reads 1)",
    ]
    assert err[2].startswith(f"{bad}:5: agencies[0].kind: ")
    assert err[3:] == ["3 error(s) in the configuration"]

    # A reference within the file is still checked.
    dangling = write(
        tmp_path, "dangling.yaml", REGISTRY.replace("[secure-server, bo-", "[portal, bo-")
    )
    assert main(["check-config", "-c", str(dangling)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{dangling}:22: agencies[0].systems[1].depends_on[0]: unknown system 'portal'"


def test_the_daemon_still_refuses_a_registry_file_as_its_config(tmp_path: Path) -> None:
    path = write(tmp_path, "registry.yaml", REGISTRY)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("schema_version" in str(issue) for issue in caught.value.issues)


def test_a_daemon_config_with_a_stray_schema_version_is_not_taken_for_a_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "npsp.yaml", "vantage: gw-1\nschema_version: 1\n")
    assert main(["check-config", "-c", str(path)]) == 2
    assert f"{path}:2: schema_version: unknown key 'schema_version'" in capsys.readouterr().err
