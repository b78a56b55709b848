"""Small manners of the command line (issue 11, item 12): counts that agree with their noun,
"an operator", a demo that refuses a negative duration, and `| head -1` without a complaint."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor import accounts
from monitor.cli import main
from monitor.store import Store

from .test_daemon import config_dict, write_config


def test_check_config_counts_agree_with_their_nouns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": 9}))
    assert main(["check-config", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("OK — 1 agency, 1 system, 1 check, 0 uplink canaries\n"), out


def test_the_demo_refuses_a_duration_that_is_not_positive(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for value in ("-5", "0", "nan", "soon"):
        with pytest.raises(SystemExit) as stopped:
            main(["demo", "--duration", value])
        assert stopped.value.code == 2
        assert "number of seconds" in capsys.readouterr().err


def test_a_closed_pipe_is_no_error() -> None:
    """`npsp-monitor calendar days … | head -1` printed "Broken pipe" and exited 1."""
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "calendar", "days", "2026-01-01", "2026-12-31"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # the reader goes away, as head -1 does
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert b"Broken pipe" not in err and b"Traceback" not in err


async def test_messages_say_an_operator(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state.db")
    try:
        with pytest.raises(accounts.AccountError, match=r"^an operator belongs to one agency"):
            await accounts.create(
                store, actor=None, account_id="x", name="X", role="operator", agency=None,
                agencies={"ha-noi"}, now=time.time(),
            )  # fmt: skip
    finally:
        await store.close()
