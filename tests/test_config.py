"""Config validation: every error names the file, the line and the dotted path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import ConfigError, load_config

GOOD = """\
vantage: gw-test
listen: 127.0.0.1:0
state_db: state.db
defaults:
  interval: 30s
  timeout: 5s
channels:
  email: {host: smtp.dvc.example, port: 587, from_addr: giamsat@npsp.dvc.example}
agencies:
  - id: bo-tai-chinh
    kind: ministry
    name_vi: Bộ Tài chính
    name_en: Ministry of Finance
    code: BTC
    contacts:
      - name: Quản trị kỹ thuật
        role: technical-admin
        email: qtkt@bo-tai-chinh.dvc.example
        channels: [email]
    systems:
      - id: secure-server
        kind: secure-server
        name: Máy chủ bảo mật
        checks:
          - id: tcp
            kind: tcp
            host: mcbm.bo-tai-chinh.dvc.example
            port: 443
      - id: one-stop
        kind: one-stop
        name: Một cửa
        depends_on: secure-server
        checks:
          - id: tcp
            kind: tcp
            host: motcua.bo-tai-chinh.dvc.example
            port: 443
"""


def write(tmp_path: Path, text: str, name: str = "npsp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(i) for i in info.value.issues]


def test_good_config_loads_with_defaults_applied(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.defaults.interval == 30.0
    assert config.state_db == tmp_path / "state.db"  # relative to the config file
    assert config.agencies[0].systems[1].depends_on == ["secure-server"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "port: 443\n      - id: one-stop",
            "port: https\n      - id: one-stop",
            ":28: agencies[0].systems[0].checks[0].port: Input should be a valid integer",
        ),
        (
            "    code: BTC\n",
            "    code: BTC\n    colour: red\n",
            ":15: agencies[0].colour: unknown key 'colour'",
        ),
        (
            "  timeout: 5s",
            "  timeout: 5 seconds",
            ":6: defaults.timeout: invalid duration '5 seconds'",
        ),
        ("  timeout: 5s", "  timeout: 5", ":6: defaults.timeout: duration 5 has no unit"),
        (
            "      - id: one-stop",
            "      - id: secure-server",
            ":29: agencies[0].systems[1].id: duplicate system id 'secure-server' in agency 'bo-tai-chinh'",
        ),
        (
            "depends_on: secure-server",
            "depends_on: [secure-server, nowhere]",
            ":32: agencies[0].systems[1].depends_on[1]: unknown system 'nowhere'",
        ),
        (
            "        role: technical-admin",
            "        role: boss",
            ":17: agencies[0].contacts[0].role: Input should be 'technical-admin' or 'high-level-admin'",
        ),
        (
            "        channels: [email]",
            "        channels: [sms]",
            ":19: agencies[0].contacts[0].channels: channel sms needs phone",
        ),
        (
            "            kind: tcp\n            host: motcua",
            "            kind: ftp\n            host: motcua",
            ":35: agencies[0].systems[1].checks[0].kind: unknown check kind 'ftp'",
        ),
        (
            "  timeout: 5s",
            "  timeout: 1m",
            ":6: defaults.timeout: timeout (60s) must be shorter than the interval (30s)",
        ),
        (
            "            port: 443\n      - id: one-stop",
            "            port: 443\n            interval: 2s\n      - id: one-stop",
            ":29: agencies[0].systems[0].checks[0].interval: timeout (5s) must be shorter than the interval (2s)",
        ),
    ],
)
def test_each_error_names_file_line_and_path(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    found = errors(path)
    assert any(e.startswith(str(path)) and expected in e for e in found), found


def test_dependency_cycle_is_reported(tmp_path: Path) -> None:
    text = GOOD.replace(
        "        name: Máy chủ bảo mật\n",
        "        name: Máy chủ bảo mật\n        depends_on: one-stop\n",
    )
    found = errors(write(tmp_path, text))
    assert len(found) == 1
    assert "agencies[0].systems[0].depends_on: dependency cycle: " in found[0]
    assert (
        "bo-tai-chinh/secure-server -> bo-tai-chinh/one-stop -> bo-tai-chinh/secure-server"
        in found[0]
    )


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("port: 443", "port: 0").replace("code: BTC", "code: BTC\n    extra: 1")
    assert len(errors(write(tmp_path, text))) == 3


def test_duplicate_yaml_key_and_syntax_error(tmp_path: Path) -> None:
    dup = write(tmp_path, GOOD.replace("vantage: gw-test", "vantage: a\nvantage: b"))
    assert errors(dup) == [f"{dup}:2: vantage: duplicate key 'vantage'"]
    broken = write(tmp_path, "agencies: [\n", "broken.yaml")
    (message,) = errors(broken)
    assert message.startswith(f"{broken}:2: (document): YAML syntax:")


def test_errors_in_included_file_name_that_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        schema_version: 1
        agencies:
          - id: ha-noi
            kind: city
            name_vi: Hà Nội
            name_en: Hanoi
            code: "01"
        """,
        "registry.yaml",
    )
    main_file = write(tmp_path, "include: [registry.yaml, missing.yaml]\n")
    found = errors(main_file)
    assert (
        f"{tmp_path / 'registry.yaml'}:4: agencies[0].kind: Input should be 'ministry', 'province' or 'sector-agency'"
        in found
    )
    assert any(e.startswith(f"{main_file}:1: include[1]: cannot read") for e in found), found


def test_secret_values_are_not_in_error_messages(tmp_path: Path) -> None:
    # A wrong value is echoed only through its type error, never for unknown keys' values.
    path = write(
        tmp_path, GOOD.replace("    code: BTC\n", "    code: BTC\n    password: hunter2-secret\n")
    )
    assert all("hunter2-secret" not in e for e in errors(path))


def test_check_config_command_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, GOOD)
    assert main(["check-config", "-c", str(good)]) == 0
    assert "OK — 1 agency, 2 systems, 2 checks" in capsys.readouterr().out
    bad = write(tmp_path, GOOD.replace("port: 443", "port: -1"), "bad.yaml")
    assert main(["check-config", "-c", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{bad}:28: agencies[0].systems[0].checks[0].port: ")
    assert err[-1] == "2 error(s) in the configuration"
    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
