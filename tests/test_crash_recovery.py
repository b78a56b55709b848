"""kill -9 in the middle of a notification storm loses nothing: the daemon runs as a real
subprocess; a slow SMTP server keeps it busy sending when it is killed; after a restart every
recipient gets their digest, with at most one duplicate (the message on the wire at the kill)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.peers import free_port
from tests.peers.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio

AGENCIES = 20
SYSTEMS = 10


class SlowMailbox:
    """Accepts every message, 150 ms each, and remembers who got what."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        await asyncio.sleep(0.15)
        subject = ""
        for line in (envelope.original_content or b"").split(b"\r\n"):
            if line.startswith(b"Message-ID:"):
                subject = line.decode()
        self.received.append((envelope.rcpt_tos[0], subject))
        return "250 OK"


def config(tmp_path: Path, smtp_port: int, http_port: int) -> Path:
    dead = free_port()
    data: dict[str, Any] = {
        "listen": f"127.0.0.1:{http_port}",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "500ms",
            "timeout": "200ms",
            "failure_threshold": 1,
            "recheck_delay": "10ms",
        },
        "alerting": {
            "operations": [
                {"name": "VPCP", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
            ],
            "group_wait": "300ms",
        },
        "channels": {
            "email": {
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from_addr": "giamsat@npsp.dvc.example",
            }
        },
        "agencies": [
            {
                "id": f"ag-{a:02d}",
                "kind": "province",
                "name_vi": f"Tỉnh {a}",
                "name_en": f"Province {a}",
                "code": f"{a:02d}",
                "contacts": [
                    {
                        "name": f"KT {a}",
                        "role": "technical-admin",
                        "email": f"kt@ag-{a:02d}.dvc.example",
                        "channels": ["email"],
                    }
                ],
                "systems": [
                    {
                        "id": f"s{s}",
                        "kind": "other",
                        "name": f"Hệ thống {s}",
                        "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": dead}],
                    }
                    for s in range(SYSTEMS)
                ],
            }
            for a in range(AGENCIES)
        ],
    }
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def start_daemon(path: Path, http_port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "monitor",
            "run",
            "-c",
            str(path),
            stdout=out,
            stderr=out,
            stdin=asyncio.subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{http_port}/healthz") as r:
                    if r.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("daemon did not become healthy:\n" + log.read_text()[-3000:])


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def assert_told_only_about_stored_outages(db_path: Path) -> None:
    """Whoever was told about an outage, that outage is in the database (issue 9.1): an alert
    queued for a state change that was never saved is the defect this looks for."""
    with sqlite3.connect(db_path) as db:
        told = {incident for (incident,) in db.execute("SELECT incident FROM alert_notices")}
        stored = {
            f"{agency}/{system}@{int(since)}"
            for agency, system, since in db.execute(
                "SELECT agency, system, since FROM system_state WHERE state IN ('down', 'flapping')"
            )
        }
    assert told, "nobody was told anything before the kill: the test proves nothing"
    assert told <= stored, f"told about unsaved outages: {sorted(told - stored)[:5]}"


async def test_kill_9_mid_storm_loses_nothing(tmp_path: Path) -> None:
    mailbox = SlowMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    http_port = free_port()
    path = config(tmp_path, controller.port, http_port)
    log = tmp_path / "daemon.log"
    expected = {f"kt@ag-{a:02d}.dvc.example" for a in range(AGENCIES)} | {"ops@vpcp.dvc.example"}
    try:
        first = await start_daemon(path, http_port, log)
        try:
            await wait_for(lambda: len(mailbox.received) >= 3, 30, "the first e-mails")
        finally:
            os.kill(first.pid, signal.SIGKILL)  # in the middle of sending
            await first.wait()
        at_kill = len(mailbox.received)
        assert at_kill < len(expected), "the storm was already fully sent: the test proves nothing"
        assert_told_only_about_stored_outages(tmp_path / "state.db")

        second = await start_daemon(path, http_port, log)
        try:
            await wait_for(
                lambda: {to for to, _ in mailbox.received} >= expected, 30, "every recipient"
            )
            await asyncio.sleep(1.0)  # anything more (a second duplicate) would arrive now
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 20) == 0
    finally:
        await asyncio.to_thread(controller.stop)
    assert all(mid for _, mid in mailbox.received), "a message without a Message-ID"
    per_message = Counter(mid for _, mid in mailbox.received)
    duplicates = sum(n - 1 for n in per_message.values())
    assert duplicates <= 1, per_message
    assert {to for to, _ in mailbox.received} == expected
    # At most two distinct digests each (the one before the kill, the rest after the restart);
    # the one duplicate allowed above is the same message twice, not a third digest.
    distinct = Counter(to for to, _ in set(mailbox.received))
    assert max(distinct.values()) <= 2, distinct
    assert "Traceback" not in log.read_text()


def sms_config(tmp_path: Path, api: FakeTwilio, http_port: int, target: int) -> Path:
    data: dict[str, Any] = {
        "listen": f"127.0.0.1:{http_port}",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "300ms",
            "timeout": "200ms",
            "failure_threshold": 1,
            "recheck_delay": "10ms",
        },
        "alerting": {
            "group_wait": "200ms",
            "group_interval": "5s",
            "sms_min_interval": f"{SMS_BUDGET}s",
        },
        "channels": {
            "sms": {
                "account_sid": ACCOUNT_SID,
                "auth_token": {"env": "NPSP_TEST_TWILIO_TOKEN"},
                "from_number": FROM_NUMBER,
                "api_base_url": api.base_url,
            }
        },
        "agencies": [
            {
                "id": "ha-noi",
                "kind": "province",
                "name_vi": "Hà Nội",
                "name_en": "Ha Noi",
                "code": "01",
                "contacts": [
                    {
                        "name": "KT",
                        "role": "technical-admin",
                        "phone": PHONE,
                        "channels": ["sms"],
                    }
                ],
                "systems": [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": target}
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


SMS_BUDGET = 8
PHONE = "+84900000009"


async def test_kill_9_right_after_an_sms_keeps_that_numbers_budget(
    tmp_path: Path, tcp_target: Any
) -> None:
    """The daemon dies right after an SMS; restarted, it owes that number a resolved notice,
    which must wait out ``sms_min_interval`` from the first SMS (issue 9.2: it came 6-7 s
    later with a 30 s budget), through the real twilio client against a Twilio-API peer."""
    target = await tcp_target()
    await target.down()
    http_port = free_port()
    log = tmp_path / "daemon.log"
    os.environ["NPSP_TEST_TWILIO_TOKEN"] = AUTH_TOKEN
    arrivals: list[float] = []
    async with FakeTwilio() as api:

        def arrived() -> bool:
            arrivals.extend([time.monotonic()] * (len(api.sent) - len(arrivals)))
            return bool(arrivals)

        path = sms_config(tmp_path, api, http_port, target.port)
        first = await start_daemon(path, http_port, log)
        try:
            await wait_for(arrived, 30, "the DOWN SMS")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            await first.wait()
        await target.up()  # it recovers while the daemon is dead
        second = await start_daemon(path, http_port, log)
        try:
            await wait_for(
                lambda: arrived() and any(m.body != api.sent[0].body for m in api.sent),
                30,
                "the resolved SMS",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), 20) == 0
    down = api.sent[0]
    # If the kill caught the DOWN SMS before it was marked sent, it goes again at once (it may
    # never have left): the one duplicate a crash may cost. Nothing else comes early.
    others = [i for i, m in enumerate(api.sent) if m.body != down.body]
    assert len(api.sent) - len(others) <= 2, [m.body for m in api.sent]
    up = api.sent[others[0]]
    assert "MAT KET NOI" in down.body.upper() and PHONE == down.to == up.to
    assert "KET NOI LAI" in up.body.upper() or "DA KET NOI" in up.body.upper(), up.body
    assert arrivals[others[0]] - arrivals[0] >= SMS_BUDGET - 0.1, arrivals
    assert "Traceback" not in log.read_text()
