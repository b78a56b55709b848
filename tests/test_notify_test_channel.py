"""``notify-test --channel sms`` tests SMS only (issue 11, item 12): the mail server's password
or the broker, needed by other channels, are not its business."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main
from tests.peers import free_port
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

PHONE = "+840000000123"


def _config(tmp_path: Path, twilio: FakeTwilio) -> Path:
    (tmp_path / "twilio-token").write_text(AUTH_TOKEN)
    # No smtp-password file, and no broker listening: only SMS can be tested here.
    data: dict[str, Any] = {
        "vantage": "gw-test",
        "state_db": str(tmp_path / "state.db"),
        "channels": {
            "sms": {
                "account_sid": ACCOUNT_SID,
                "auth_token": {"file": str(tmp_path / "twilio-token")},
                "from_number": FROM_NUMBER,
                "api_base_url": twilio.base_url,
            },
            "email": {
                "host": "127.0.0.1",
                "port": free_port(),
                "security": "starttls",
                "username": "giamsat",
                "password": {"file": str(tmp_path / "smtp-password")},
                "from_addr": "giamsat@npsp.dvc.example",
            },
            "mqtt": {"host": "127.0.0.1", "port": free_port(), "timeout": "1s"},
        },
    }
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def test_testing_sms_needs_no_other_channel_s_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeTwilio() as twilio:
        path = _config(tmp_path, twilio)
        argv = ["notify-test", "-c", str(path), "--channel", "sms", "--to", PHONE]
        assert await asyncio.to_thread(main, argv) == 0, capsys.readouterr()
        assert capsys.readouterr().out.startswith(f"sms to {PHONE}: sent: SM")
        assert [m.to for m in twilio.sent] == [PHONE]
        # The e-mail channel itself still says what it lacks.
        argv = ["notify-test", "-c", str(path), "--channel", "email", "--to", "a@b.dvc.example"]
        assert await asyncio.to_thread(main, argv) == 2
        err = capsys.readouterr().err
        assert "smtp-password" in err and AUTH_TOKEN not in err
        assert len(twilio.sent) == 1
