"""From a lost connection to a person's phone, mailbox and inbox, through real peers on loopback:
the daemon in-process, aiosmtpd with STARTTLS and AUTH, a Twilio-API server with the real
``twilio`` client, and a real Mosquitto broker (restarted mid-run)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from monitor.app import Daemon
from monitor.cli import main
from monitor.config import load_config
from monitor.state import State
from tests.peers import free_port, wait_until
from tests.peers.mosquitto import Mosquitto, available
from tests.peers.smtp import SMTP_PASSWORD, SMTP_USER, Certs, SmtpPeer
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

from .conftest import TcpTarget

pytestmark = pytest.mark.skipif(not available(), reason="mosquitto is not installed")

PHONE = "+840000000123"


def write_config(
    tmp_path: Path, port: int, smtp: SmtpPeer, certs: Certs, twilio: FakeTwilio, broker: Mosquitto
) -> Path:
    (tmp_path / "twilio-token").write_text(AUTH_TOKEN)
    (tmp_path / "smtp-password").write_text(SMTP_PASSWORD)
    data: dict[str, Any] = {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "300ms",
            "timeout": "200ms",
            "failure_threshold": 1,
            "recheck_delay": "10ms",
        },
        "alerting": {
            "operations": [
                {"name": "VPCP trực", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
            ],
            "group_wait": "200ms",
            "group_interval": "500ms",
            "sms_min_interval": "500ms",
        },
        "channels": {
            "sms": {
                "account_sid": ACCOUNT_SID,
                "auth_token": {"file": str(tmp_path / "twilio-token")},
                "from_number": FROM_NUMBER,
                "api_base_url": twilio.base_url,
            },
            "email": {
                "host": "127.0.0.1",
                "port": smtp.port,
                "security": "starttls",
                "username": SMTP_USER,
                "password": {"file": str(tmp_path / "smtp-password")},
                "from_addr": "giamsat@npsp.dvc.example",
                "ca_file": str(certs.ca_file),
            },
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "timeout": "2s",
                "reconnect_max": "500ms",
            },
        },
        "agencies": [
            {
                "id": "ha-noi",
                "kind": "province",
                "name_vi": "Thành phố Hà Nội",
                "name_en": "Hanoi",
                "code": "01",
                "contacts": [
                    {
                        "name": "Quản trị kỹ thuật Hà Nội",
                        "role": "technical-admin",
                        "phone": PHONE,
                        "email": "qtkt@ha-noi.dvc.example",
                        "portal_account": "qtkt.ha-noi",
                        "channels": ["sms", "email", "inbox"],
                    }
                ],
                "systems": [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


class Subscriber:
    """A second MQTT client collecting everything under npsp/, reconnecting by itself."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier="test-subscriber"
                ) as client:
                    await client.subscribe("npsp/#", qos=1)
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append((str(message.topic), json.loads(payload)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [p for t, p in self.messages if t == topic]


@pytest.fixture
async def peers(
    tmp_path: Path,
) -> AsyncIterator[tuple[Certs, SmtpPeer, FakeTwilio, Mosquitto, Subscriber]]:
    certs = Certs.make(tmp_path)
    (tmp_path / "mq").mkdir()
    async with (
        SmtpPeer(certs, mode="starttls") as smtp,
        FakeTwilio() as twilio,
        Mosquitto(tmp_path / "mq") as broker,
    ):
        sub = Subscriber(broker.port)
        sub.task = asyncio.create_task(sub._run())
        try:
            yield certs, smtp, twilio, broker, sub
        finally:
            sub.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sub.task


async def test_down_then_up_reaches_sms_email_inbox_and_status_topic(
    tmp_path: Path, peers: tuple[Certs, SmtpPeer, FakeTwilio, Mosquitto, Subscriber]
) -> None:
    certs, smtp, twilio, broker, sub = peers
    target = TcpTarget()  # not listening yet: the secure server is down
    daemon = Daemon(
        None, load_config(write_config(tmp_path, target.port, smtp, certs, twilio, broker))
    )
    ready = asyncio.Event()
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await wait_until(
            lambda: len(smtp.received) >= 2 and len(twilio.sent) >= 1, 15, "alert delivered"
        )
        await wait_until(lambda: len(sub.on("npsp/inbox/qtkt.ha-noi")) >= 1, 10, "inbox message")

        (sms,) = twilio.sent
        assert sms.to == PHONE and sms.from_ == FROM_NUMBER
        assert sms.body.startswith("NPSP: ha-noi/secure-server MAT KET NOI")  # folded: GSM-7
        assert "1900.1096" in sms.body
        mails = {m.rcpt_tos[0]: m.message for m in smtp.received}
        first = mails["qtkt@ha-noi.dvc.example"]
        assert first["Subject"] == "[NPSP] Máy chủ bảo mật của Thành phố Hà Nội: MẤT KẾT NỐI"
        body = first.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "không kết nối được: bị từ chối" in text and "Đã thông báo: VPCP trực" in text
        assert mails["ops@vpcp.dvc.example"]["Subject"] == first["Subject"]
        (inbox,) = sub.on("npsp/inbox/qtkt.ha-noi")
        # A push says only that there is something new: the content is read through the API.
        assert set(inbox) == {"key", "notification", "language", "link", "api"}
        await wait_until(
            lambda: any(p["state"] == "down" for p in sub.on("npsp/status/ha-noi/secure-server")),
            10,
            "status down",
        )

        # The broker restarts while the system comes back: nothing is lost.
        await broker.stop()
        await target.up()
        engine = daemon.engine
        assert engine is not None
        await wait_until(
            lambda: engine.state.systems["ha-noi/secure-server"].announced is State.UP, 10, "up"
        )
        await broker.start()
        await wait_until(lambda: len(smtp.received) >= 4, 15, "resolved e-mails")
        resolved = [m.message for m in smtp.received if m.rcpt_tos == ["qtkt@ha-noi.dvc.example"]][
            -1
        ]
        assert "đã kết nối lại" in str(resolved["Subject"])
        assert resolved["In-Reply-To"] == first["Message-ID"]  # threaded to the first message
        await wait_until(
            lambda: len(sub.on("npsp/inbox/qtkt.ha-noi")) >= 2,
            15,
            "resolved inbox after broker restart",
        )
        await wait_until(
            lambda: any(p["state"] == "up" for p in sub.on("npsp/status/ha-noi/secure-server")),
            15,
            "status up",
        )
        await wait_until(lambda: len(twilio.sent) >= 2, 10, "resolved SMS")
        assert "DA KET NOI LAI" in twilio.sent[-1].body
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 15)
        await target.down()


async def test_notify_test_command_checks_credentials(
    tmp_path: Path,
    peers: tuple[Certs, SmtpPeer, FakeTwilio, Mosquitto, Subscriber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    certs, smtp, twilio, broker, sub = peers
    path = write_config(tmp_path, free_port(), smtp, certs, twilio, broker)
    assert (
        await asyncio.to_thread(
            main, ["notify-test", "-c", str(path), "--channel", "sms", "--to", PHONE]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(f"sms to {PHONE}: sent: SM")
    assert twilio.sent[-1].body.startswith("Tin thu tu npsp-monitor")
    assert (
        await asyncio.to_thread(
            main,
            [
                "notify-test",
                "-c",
                str(path),
                "--channel",
                "email",
                "--to",
                "a@b.dvc.example",
                "--language",
                "en",
            ],
        )
        == 0
    )
    assert smtp.received[-1].message["Subject"] == "[NPSP] Notification channel test"
    assert (
        await asyncio.to_thread(
            main, ["notify-test", "-c", str(path), "--channel", "inbox", "--to", "qtkt.ha-noi"]
        )
        == 0
    )
    await wait_until(lambda: len(sub.on("npsp/inbox/qtkt.ha-noi")) == 1, 10, "inbox test message")
    capsys.readouterr()
    # A wrong token: a clear, permanent failure, and the token never printed.
    (tmp_path / "twilio-token").write_text("wrong-token-value")
    assert (
        await asyncio.to_thread(
            main, ["notify-test", "-c", str(path), "--channel", "sms", "--to", PHONE]
        )
        == 1
    )
    out = capsys.readouterr()
    assert "FAILED (permanent)" in out.out
    assert "wrong-token-value" not in out.out + out.err
