"""The command line never creates the daemon's database by surprise (issue 11, item 11).

Every command that reads or writes the state database refuses, in one sentence, when there is
none, unless ``--init`` asks for one; what ``--init`` creates is private (0600 in a 0700
folder, owned by whoever runs the command: the service user under ``sudo -u npsp-monitor``).
The daemon itself still creates its database.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.store import Store

from .test_daemon import config_dict, write_config

AGENCY = "bo-tai-chinh"


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual login umask, under which a plain open() makes a 0644 file."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = config_dict(tmp_path, {"secure-server": 9})
    data["state_db"] = str(tmp_path / "state" / "npsp-monitor.db")
    return write_config(tmp_path / "npsp.yaml", data)


def _later(days: int) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT09:00+07:00")


def _commands(config: Path) -> dict[str, list[str]]:
    c = ["-c", str(config)]
    return {
        "announce": [
            "announce", *c, "--agency", AGENCY, "--effective", _later(30), "--host", "a.example"
        ],
        "announcements": ["announcements", *c],
        "catalog": ["catalog", *c],
        "maintenance schedule": [
            "maintenance", "schedule", *c, "--start", _later(30), "--end", _later(31),
            "--reason", "nâng cấp",
        ],
        "maintenance list": ["maintenance", "list", *c],
        "maintenance cancel": ["maintenance", "cancel", *c, "1"],
        "incident open": ["incident", "open", *c, "--agency", AGENCY, "--summary", "hỏng"],
        "incident ack": ["incident", "ack", *c, "req-1", "--by", "an"],
        "incident resolve": ["incident", "resolve", *c, "req-1", "--by", "an"],
        "incident list": ["incident", "list", *c],
        "accounts create": [
            "accounts", "create", *c, "--id", "vpcp", "--name", "VPCP", "--role", "national-admin"
        ],
        "accounts list": ["accounts", "list", *c],
        "accounts revoke": ["accounts", "revoke", *c, "vpcp"],
        "accounts map-cert": ["accounts", "map-cert", *c, "vpcp", "--clear"],
    }  # fmt: skip


@pytest.mark.parametrize("command", list(_commands(Path("x"))))
def test_no_command_creates_the_database_by_surprise(
    command: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state" / "npsp-monitor.db"
    assert main(_commands(config)[command]) == 1
    out = capsys.readouterr()
    assert out.err == (
        f"npsp-monitor: no state database at {db}: start the daemon once, "
        "or give --init to create it\n"
    )
    assert out.out == ""
    assert not (tmp_path / "state").exists()  # neither the file nor its folder


def test_the_report_refuses_too_and_has_no_init(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "state" / "npsp-monitor.db"
    assert main(["report", "-c", str(config), "--month", "2026-11"]) == 1
    assert capsys.readouterr().err == (
        f"npsp-monitor: no state database at {db}: start the daemon once\n"
    )
    assert not (tmp_path / "state").exists()


def _private(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files
    for path in files:  # the database and SQLite's -wal and -shm beside it
        st = path.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600, path
        assert st.st_uid == os.geteuid(), path


@pytest.mark.usefixtures("umask_022")
def test_init_creates_a_private_database_and_then_it_is_used(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _commands(config)
    assert main([*commands["accounts create"], "--init"]) == 0
    assert "created; its token, shown once" in capsys.readouterr().out
    _private(tmp_path / "state")
    # From now on the database exists: no --init needed, and nothing is lost.
    assert main(commands["accounts list"]) == 0
    assert "vpcp" in capsys.readouterr().out
    assert main(commands["incident open"]) == 0
    assert main(commands["incident list"]) == 0
    assert "hỏng" in capsys.readouterr().out
    # --init on an existing database changes nothing.
    assert main([*commands["accounts list"], "--init"]) == 0
    assert "vpcp" in capsys.readouterr().out
    _private(tmp_path / "state")


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize("command", ["announce", "maintenance schedule", "incident open"])
def test_each_writing_command_takes_init(
    command: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _commands(config)[command]
    if command == "maintenance schedule":
        args += ["--override", "thử"]
    assert main([*args, "--init"]) == 0, capsys.readouterr().err
    _private(tmp_path / "state")


@pytest.mark.usefixtures("umask_022")
async def test_the_daemon_still_creates_its_database(tmp_path: Path) -> None:
    db = tmp_path / "fresh" / "state.db"
    store = await Store.open(db)  # what the daemon does at start
    await store.close()
    _private(tmp_path / "fresh")
