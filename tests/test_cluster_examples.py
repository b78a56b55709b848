"""The three-host examples (config/cluster/gw-*.example.yaml), the systemd drop-in that hands
them the database's password, and section 9 of docs/install.md agree with each other and with
the code: each example loads with the config loader and reads its password from the credential
the drop-in loads; the hosts differ in ``vantage`` only; and, on a real PostgreSQL (started by
tests/conftest.py), the section's ``store check`` / ``store migrate`` do what it says from every
host's config.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from monitor.config import Config, load_config
from monitor.dblocation import PostgresUrl

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "config" / "cluster"
EXAMPLES = [CLUSTER / f"gw-{n}.example.yaml" for n in (1, 2, 3)]
SINGLE_HOST = ROOT / "config" / "npsp-monitor.example.yaml"
DROP_IN = ROOT / "systemd" / "npsp-monitor.service.d" / "postgresql.conf.example"
GUIDE = ROOT / "docs" / "install.md"
PASSWORD = "a-test-password-not-a-real-one"
# What a host of the cluster sets differently from the single-host example.
CLUSTER_KEYS = {"vantage", "state_db", "state_db_password_file", "cluster"}


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$CREDENTIALS_DIRECTORY as systemd makes it, with the database's password in it."""
    folder = tmp_path / "credentials"
    folder.mkdir(mode=0o700)
    (folder / "state-db-password").write_text(PASSWORD + "\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder


def load_all() -> list[Config]:
    return [load_config(path) for path in EXAMPLES]


def dump(config: Config, exclude: set[str]) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude=exclude)


def test_each_example_loads_and_reads_its_password_from_the_credential(
    credentials: Path,
) -> None:
    for path, config in zip(EXAMPLES, load_all(), strict=True):
        assert config.shared_store, path
        assert isinstance(config.state_db, PostgresUrl)
        assert config.state_db.options["sslmode"] == "verify-full"
        assert config.state_db.options["sslrootcert"] == "/etc/npsp-monitor/pg-ca.pem"
        assert config.state_db_password_file == Path("state-db-password")  # a credential name
        assert config.state_db_password() == PASSWORD
        assert ".example" in config.state_db  # a placeholder host, no real address
        assert config.uplink is not None and config.uplink.checks  # canaries: a vantage votes


def test_the_hosts_differ_in_their_vantage_only(credentials: Path) -> None:
    configs = load_all()
    assert [c.vantage for c in configs] == ["gw-1", "gw-2", "gw-3"]
    assert len({c.state_db for c in configs}) == 1
    assert len({c.state_db_password_file for c in configs}) == 1
    first = dump(configs[0], {"vantage"})
    for config in configs[1:]:
        assert dump(config, {"vantage"}) == first
    assert configs[0].cluster.quorum == "majority"


def test_the_examples_are_the_single_host_example_plus_the_cluster_keys(
    credentials: Path,
) -> None:
    single = load_config(SINGLE_HOST)
    for path, config in zip(EXAMPLES, load_all(), strict=True):
        assert dump(config, CLUSTER_KEYS) == dump(single, CLUSTER_KEYS), (
            f"{path.name} drifted from {SINGLE_HOST.name}: keep them the same but for "
            f"{sorted(CLUSTER_KEYS)}"
        )


def test_the_drop_in_loads_the_credential_the_examples_name(credentials: Path) -> None:
    text = DROP_IN.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[Service]"
    loaded = dict(
        line.removeprefix("LoadCredential=").split(":", 1)
        for line in lines
        if line.startswith("LoadCredential=")
    )
    (config,) = {str(c.state_db_password_file) for c in load_all()}
    assert loaded == {config: f"/etc/npsp-monitor/credentials/{config}"}


def guide_section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("\n## 9. Several gateway hosts on PostgreSQL\n")
    return text[start : text.index("\n## ", start + 1)]


def section_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", guide_section(), flags=re.M | re.S)


def test_the_guide_installs_files_that_exist_and_quotes_the_examples_as_they_are() -> None:
    section = guide_section()
    # It says what is tested and what is not proven yet, rather than promising it.
    assert "**Not yet proven**" in section and "500 systems" in section
    named = set(
        re.findall(r"(?<![\w/])((?:config|systemd)/[\w./-]+)", "\n".join(section_blocks("sh")))
    )
    assert "config/cluster/gw-2.example.yaml" in named
    assert "systemd/npsp-monitor.service.d/postgresql.conf.example" in named
    for name in named:
        assert (ROOT / name).is_file(), f"docs/install.md section 9 installs {name}: no such file"
    (excerpt,) = section_blocks("yaml")
    quoted = yaml.safe_load(excerpt)
    example = yaml.safe_load(EXAMPLES[1].read_text(encoding="utf-8"))
    for key, value in quoted.items():
        if isinstance(value, dict):
            assert value.items() <= example[key].items(), key
        else:
            assert example[key] == value, key
    # The password of the section is the credential's, never in a URL it shows.
    for url in re.findall(r"postgresql://\S+", section):
        assert ":" not in url.removeprefix("postgresql://").split("@")[0], url


def test_store_check_and_migrate_from_every_host_on_one_database(
    pg_url: tuple[str, Path],
    tmp_path: Path,
    credentials: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Section 9.3 on a real PostgreSQL: the three configs, as installed (registry beside them),
    with the test server's URL in place of db.dvc.example's and its password as the credential."""
    url, password_file = pg_url
    shutil.copyfile(password_file, credentials / "state-db-password")
    installed = []
    for path in EXAMPLES:
        host = tmp_path / path.name.removesuffix(".example.yaml")
        host.mkdir()
        shutil.copyfile(ROOT / "config" / "registry.example.yaml", host / "registry.example.yaml")
        text = path.read_text(encoding="utf-8")
        text, count = re.subn(
            r'^state_db: "postgresql://[^"]*"$', f'state_db: "{url}"', text, flags=re.M
        )
        assert count == 1
        (host / "config.yaml").write_text(text, encoding="utf-8")
        installed.append(host / "config.yaml")
    gw1 = installed[0]

    assert main(["check-config", "-c", str(gw1)]) == 0
    assert main(["store", "check", "-c", str(gw1)]) == 1  # a new database: migrations pending
    assert "run npsp-monitor store migrate" in capsys.readouterr().out
    assert main(["store", "migrate", "-c", str(gw1)]) == 0
    assert re.search(r"schema 0 -> \d+", capsys.readouterr().out)
    for config in installed:  # the same database, seen from every host
        assert main(["store", "check", "-c", str(config)]) == 0
        assert "up to date" in capsys.readouterr().out
