"""Issue 10, items 3 and 5, performed as attacks against the real daemon and a real Mosquitto.

3. An announcement can whitelist a man-in-the-middle: a broker client that is not the agency
   (or a broker without an ACL) publishes an announcement of a new certificate; the monitor must
   refuse what does not carry the agency's token, record who announced, and confirm every
   accepted announcement to the agency with the way to cancel it.
5. MQTT tells strangers everything: with the shipped Mosquitto configuration (config/mosquitto/),
   one agency reads none of another's topics nor the inbox and cannot publish for another;
   status topics carry no reasons and inbox pushes no content, whoever reads them.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from monitor.app import Daemon
from monitor.cli import main
from monitor.config import load_config
from monitor.rules.announcements import AnnouncementDesk, load_all
from monitor.rules.announcements.intake import MqttAnnouncements
from monitor.store import Store
from npsp_common.types import SecretSource
from tests.peers import free_port, wait_until
from tests.peers.mosquitto import Mosquitto, available
from tests.probe_servers import make_certs

from .test_announcements import FP_NEW, MONDAY_0900, TOKEN, Desk, fleet, intake_for
from .test_announcements_mqtt import TOKENS, config, inbox_of, iso_in, world
from .test_daemon import Running, metric, write_config

__all__ = ["world"]  # the fixture, for pytest

FAIL_LIMIT, FAIL_WINDOW = 10, 60.0  # wrong tokens a minute per agency (monitor.rules.intake)
ACL = Path(__file__).resolve().parent.parent / "config" / "mosquitto" / "acl"
CONF = ACL.parent / "mosquitto.conf"
mqtt_only = pytest.mark.skipif(not available(), reason="mosquitto is not installed")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


# ----- 3: the monitor authenticates announcements itself ----------------------------------------


@mqtt_only
@pytest.mark.timeout(90)
async def test_an_announcement_without_the_agency_token_cannot_whitelist_a_certificate(
    world: Any,
) -> None:
    """A broker without an ACL (the test's): any client publishes on bo-a's topic."""
    running, portal, _certs, _tls = await world()
    daemon: Daemon = running.daemon
    assert daemon.engine is not None
    key = "bo-a/secure-server/tls"
    spec: Any = daemon.engine.registry.checks[key].spec
    pin = spec.tls.expected_fingerprint_sha256
    forged = {
        "ref": "mitm",
        "effective_at": iso_in(2.0),
        "changes": {"fingerprint_sha256": FP_NEW},
        "author": "Giám đốc Sở",
    }
    attempts = [
        forged,  # no token at all
        {**forged, "token": "guess-guess-guess-guess"},  # a wrong one
        {**forged, "token": TOKENS["bo-b"]},  # another agency's (valid) token
        {**forged, "token": TOKENS["bo-a"][:-1]},  # almost right
    ]
    for attempt in attempts:
        await portal.client.publish("npsp/announcements/bo-a", json.dumps(attempt), qos=1)
    await wait_until(lambda: len(portal.results) == len(attempts), 10, "every attempt answered")
    assert all(r["accepted"] is False for r in portal.results), portal.results
    assert all(r["reason"].startswith("not authenticated") for r in portal.results)
    assert all(TOKENS["bo-a"] not in json.dumps(r) for r in portal.results)
    _, text = await running.get("/metrics")
    assert metric(text, "npsp_announcements_rejected_total") == float(len(attempts))
    await asyncio.sleep(3.0)  # past the effective time: the pin must not have moved
    spec = daemon.engine.registry.checks[key].spec
    assert spec.tls.expected_fingerprint_sha256 == pin
    assert (await running.api("/api/v1/announcements"))["announcements"] == []

    # The agency itself (with its token) announces; the author is the credential's agency.
    await portal.announce("bo-a", {**forged, "ref": "cv-1", "effective_at": iso_in(3600)})
    await wait_until(lambda: len(portal.results) == len(attempts) + 1, 10, "answered")
    answer = portal.results[-1]
    assert answer["accepted"] is True, answer
    (listed,) = (await running.api("/api/v1/announcements"))["announcements"]
    assert listed["author"] == "mqtt:bo-a (Giám đốc Sở)" and listed["source"] == "mqtt"

    # Confirmed to the agency's admins and operations, with how to cancel it.
    async def confirmed(account: str) -> list[dict[str, str]]:
        return [m for m in await inbox_of(running, account) if "Xác nhận" in m["subject"]]

    for _ in range(100):
        if all([await confirmed(a) for a in ("kt.bo-a", "cc.bo-a", "ops.vpcp")]):
            break
        await asyncio.sleep(0.1)
    (mail,) = await confirmed("kt.bo-a")
    assert FP_NEW in mail["text"] and "mqtt:bo-a" in mail["text"]
    assert "NẾU KHÔNG PHẢI ĐƠN VỊ CỦA QUÝ VỊ THÔNG BÁO" in mail["text"]
    assert f"/api/v1/announcements/{answer['id']}/cancel" in mail["text"]
    assert "/system/bo-a/secure-server" in mail["text"]
    assert await confirmed("kt.bo-b") == []  # a dependent is told of late changes only


async def test_a_flood_of_wrong_tokens_never_blocks_the_agency(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can publish on an agency's topic must not be able to keep that agency from
    announcing (review of issue 10: a throttle refused the right token without comparing it).
    The right token always gets in; only the log is spared after the limit."""
    d = Desk(store, fleet(), MONDAY_0900)
    now = [0.0]
    (tmp_path / "announce-ha-noi").write_text(TOKEN, encoding="utf-8")
    intake = MqttAnnouncements(
        d.desk,
        tokens={"ha-noi": SecretSource(file=tmp_path / "announce-ha-noi")},
        clock=lambda: now[0],
    )

    def payload(token: str, ref: str) -> bytes:
        return json.dumps(
            {"token": token, "ref": ref, "effective_at": "2026-12-20", "changes": {"port": 9443}}
        ).encode()

    for n in range(FAIL_LIMIT * 3):
        answer = await intake.handle("ha-noi", payload(f"wrong-token-number-{n:04}", f"g{n}"))
        assert answer["reason"] == "not authenticated: wrong token for this agency"
    answer = await intake.handle("ha-noi", payload(TOKEN, "real"))
    assert answer["accepted"] is True, answer
    assert d.counted == {"announcements_rejected": FAIL_LIMIT * 3}
    assert [a.ref for a in await load_all(store)] == ["real"]
    assert TOKEN not in repr(intake)


async def test_an_unreadable_token_is_the_monitors_fault_not_a_rejection(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    intake = MqttAnnouncements(d.desk, tokens={"ha-noi": SecretSource(file=tmp_path / "missing")})
    answer = await intake.handle(
        "ha-noi",
        json.dumps(
            {"token": TOKEN, "effective_at": "2026-12-20", "changes": {"port": 9443}}
        ).encode(),
    )
    assert answer["accepted"] is False and "cannot read this agency's" in answer["reason"]
    assert d.counted == {} and await load_all(store) == []
    assert TOKEN not in caplog.text


async def test_every_accepted_announcement_is_confirmed_once_with_the_way_to_cancel_it(
    store: Store, tmp_path: Path
) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    d.desk = AnnouncementDesk(d.ctx, status_page_url="https://npsp.dvc.example/status")
    intake = intake_for(d.desk, tmp_path)
    answer = await intake.handle(
        "ha-noi",
        json.dumps(
            {
                "token": TOKEN,
                "ref": "cv-7",
                "effective_at": "2026-12-14T08:00",  # compliant: 4 working days
                "changes": {"fingerprint_sha256": FP_NEW, "host": "ssv2.ha-noi.example"},
            }
        ).encode(),
    )
    assert answer["accepted"] is True and answer["compliant"] is True
    await d.deliver()
    sent = d.world.sent.messages
    assert sorted(m.to for m in sent) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    )
    mail = next(m for m in sent if m.to == "kt@ha-noi.dvc.example")
    assert "Xác nhận thông báo thay đổi" in mail.subject and "08:00 14/12/2026" in mail.subject
    assert FP_NEW in mail.text and "ssv2.ha-noi.example" in mail.text
    assert "https://npsp.dvc.example/system/ha-noi/secure-server" in mail.text
    assert f"POST https://npsp.dvc.example/api/v1/announcements/{answer['id']}/cancel" in (
        mail.text
    )
    assert "do mqtt:ha-noi gửi qua mqtt" in mail.text
    # A crash after the confirmations were queued but before the mark: the restarted desk
    # queues them again, and the outbox's keys make that a no-op. Then nothing more, ever.
    await store.transact(lambda db: db.execute("UPDATE announcements SET handled_at = NULL"))
    for later in (60, 120):
        restarted = Desk(store, fleet(), MONDAY_0900 + later)
        await restarted.desk.refresh()
        await restarted.desk.tick(restarted.world.now)
        await restarted.deliver()
        assert restarted.world.sent.messages == []
    assert [a.handled_at is not None for a in await load_all(store)] == [True]


@mqtt_only
def test_the_command_line_records_the_os_account_not_the_claimed_author(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    path = config(tmp_path, free_port(), free_port(), certs.ca_file, ":".join(["AB"] * 32))
    code = main(
        ["announce", "-c", str(path), "--agency", "bo-a", "--effective", iso_in(30 * 86400),
         "--port", "9443", "--author", "Bộ trưởng", "--json", "--init"]
    )  # fmt: skip
    assert code == 0

    async def stored() -> list[Any]:
        s = await Store.open(tmp_path / "state.db")
        try:
            return await load_all(s)
        finally:
            await s.close()

    (a,) = asyncio.run(stored())
    user = pwd.getpwuid(os.geteuid()).pw_name
    assert a.author == f"cli:{user} (Bộ trưởng)" and a.source == "cli"


# ----- 5: the shipped Mosquitto configuration ---------------------------------------------------


def test_the_shipped_broker_config_refuses_anonymous_clients() -> None:
    lines = {line.strip() for line in CONF.read_text(encoding="utf-8").splitlines()}
    assert {"allow_anonymous false", "per_listener_settings false"} <= lines
    assert any(line.startswith("password_file ") for line in lines)
    assert any(line.startswith("acl_file ") for line in lines)
    acl = ACL.read_text(encoding="utf-8")
    # No line lets every user read everything.
    assert "topic read npsp/#" not in acl and "pattern read npsp/#" not in acl


PASSWORDS = {
    "npsp-monitor": "monitor-broker-password-1",
    "npsp-portal": "portal-broker-password-1",
    "bo-a": "bo-a-broker-password-1",
    "bo-b": "bo-b-broker-password-1",
}


class Client:
    """A broker client that keeps every message it receives."""

    def __init__(self, port: int, user: str) -> None:
        self.client = aiomqtt.Client(
            "127.0.0.1",
            port,
            username=user,
            password=PASSWORDS[user],
            identifier=f"{user}-{uuid.uuid4().hex[:6]}",
        )
        self.got: list[tuple[str, dict[str, Any]]] = []

    async def collect(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            try:
                doc = json.loads(m.payload)
            except ValueError:
                doc = {"raw": m.payload.decode("utf-8", "replace")}
            self.got.append((str(m.topic), doc))

    def on(self, prefix: str) -> list[dict[str, Any]]:
        return [doc for topic, doc in self.got if topic.startswith(prefix)]


def _acl_config(tmp_path: Path, broker: int) -> Path:
    tokens = {}
    for aid in ("bo-a", "bo-b"):
        (tmp_path / f"announce-{aid}").write_text(TOKENS[aid], encoding="utf-8")
        tokens[aid] = {"file": str(tmp_path / f"announce-{aid}")}
    (tmp_path / "mqtt-password").write_text(PASSWORDS["npsp-monitor"], encoding="utf-8")

    def ministry(aid: str) -> dict[str, Any]:
        return {
            "id": aid,
            "kind": "ministry",
            "name_vi": f"Bộ {aid}",
            "name_en": f"Ministry {aid}",
            "code": aid.upper()[:4],
            "contacts": [
                {
                    "name": f"kt {aid}",
                    "role": "technical-admin",
                    "portal_account": f"kt.{aid}",
                    "channels": ["inbox"],
                }
            ],
            "systems": [
                {
                    "id": "secure-server",
                    "kind": "secure-server",
                    "name": f"Máy chủ bảo mật {aid}",
                    # Nothing listens: DOWN with a reason ("connect: refused ...").
                    "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 1}],
                }
            ],
        }

    return write_config(
        tmp_path / "npsp.yaml",
        {
            "vantage": "gw-test",
            "listen": "127.0.0.1:0",
            "state_db": str(tmp_path / "state.db"),
            "defaults": {"interval": "300ms", "timeout": "250ms", "failure_threshold": 1},
            "alerting": {
                "operations": [
                    {"name": "VPCP", "portal_account": "ops.vpcp", "channels": ["inbox"]}
                ],
                "group_wait": "200ms",
            },
            "channels": {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": broker,
                    "timeout": "3s",
                    "reconnect_max": "1s",
                    "username": "npsp-monitor",
                    "password": {"file": str(tmp_path / "mqtt-password")},
                    "announcement_tokens": tokens,
                }
            },
            "agencies": [ministry("bo-a"), ministry("bo-b")],
        },
    )


@mqtt_only
@pytest.mark.timeout(90)
async def test_with_the_shipped_acl_an_agency_reads_and_forges_nothing_of_another(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path, users=PASSWORDS, acl_file=ACL)
    async with AsyncExitStack() as stack:
        await broker.start()
        stack.push_async_callback(broker.stop)
        daemon = Daemon(None, load_config(_acl_config(tmp_path, broker.port)))
        ready = asyncio.Event()
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        stack.push_async_callback(Running(daemon, task).stop)
        await asyncio.wait_for(ready.wait(), 15)

        clients = {
            "a": Client(broker.port, "bo-a"),
            "b": Client(broker.port, "bo-b"),
            "portal": Client(broker.port, "npsp-portal"),
            # What the daemon's user receives: what the broker lets through to the monitor.
            "monitor": Client(broker.port, "npsp-monitor"),
        }
        interests = {
            # The attacker tries everything.
            "a": [
                "npsp/#",
                "npsp/status/bo-b/#",
                "npsp/inbox/#",
                "npsp/inbox/ops.vpcp",
                "npsp/announcements/bo-b",
                "npsp/announcements/bo-b/result",
                "npsp/heartbeat/#",
                "npsp/status/bo-a/#",
                "npsp/announcements/bo-a/result",
                "npsp/catalog/secure-servers",
            ],
            "b": ["npsp/status/bo-b/#", "npsp/announcements/bo-b/result"],
            "portal": ["npsp/inbox/#"],
            "monitor": ["npsp/announcements/+", "npsp/heartbeat/+/+"],
        }
        for name, client in clients.items():
            await stack.enter_async_context(client.client)
            for topic in interests[name]:
                await client.client.subscribe(topic, qos=1)
            collector = asyncio.create_task(client.collect())
            stack.callback(collector.cancel)
        a, b, portal, monitor = (clients[n] for n in ("a", "b", "portal", "monitor"))

        # Both secure servers are down: status topics and alerts (operations' digest included).
        await wait_until(
            lambda: any(d["state"] == "down" for d in a.on("npsp/status/bo-a/")),
            15,
            "bo-a's own status: down",
        )
        await wait_until(lambda: bool(b.on("npsp/status/bo-b/")), 15, "bo-b's own status")
        await wait_until(lambda: bool(portal.on("npsp/inbox/ops.vpcp")), 15, "operations' inbox")

        # bo-a forges for bo-b: an announcement with bo-b's (stolen) token, a heartbeat and a
        # status saying all is well; and sends its own heartbeat (allowed).
        late = {"effective_at": iso_in(3600), "changes": {"fingerprint_sha256": FP_NEW}}
        forged = {**late, "ref": "forged", "token": TOKENS["bo-b"]}
        await a.client.publish("npsp/announcements/bo-b", json.dumps(forged), qos=1)
        await a.client.publish("npsp/heartbeat/bo-b/secure-server", '{"token": "x"}', qos=1)
        fake = {"agency": "bo-b", "system": "secure-server", "state": "up", "vantage": "evil"}
        await a.client.publish(
            "npsp/status/bo-b/secure-server", json.dumps(fake), qos=1, retain=True
        )
        await a.client.publish("npsp/heartbeat/bo-a/secure-server", '{"token": "own"}', qos=1)
        # bo-b announces for itself.
        own = {**late, "ref": "b-1", "token": TOKENS["bo-b"]}
        await b.client.publish("npsp/announcements/bo-b", json.dumps(own), qos=1)
        await wait_until(lambda: bool(b.on("npsp/announcements/bo-b/result")), 10, "b's result")
        await wait_until(lambda: bool(monitor.on("npsp/heartbeat/bo-a/")), 10, "a's heartbeat")
        await asyncio.sleep(1.5)  # the confirmation and late notice reach operations' inbox

        # The broker let nothing forged through to the monitor.
        assert [d["ref"] for d in monitor.on("npsp/announcements/")] == ["b-1"]
        assert monitor.on("npsp/heartbeat/bo-b/") == []
        (result,) = b.on("npsp/announcements/bo-b/result")
        assert result["ref"] == "b-1" and result["accepted"] is True
        assert daemon.rules is not None
        assert [x.ref for x in daemon.rules.announcements.items] == ["b-1"]
        assert all(d.get("vantage") != "evil" for d in b.on("npsp/status/bo-b/"))

        # bo-a read only its own topics and the catalog: nothing of bo-b, no inbox.
        allowed = ("npsp/status/bo-a/", "npsp/announcements/bo-a/result", "npsp/catalog/")
        assert a.got and all(topic.startswith(allowed) for topic, _ in a.got), {
            topic for topic, _ in a.got
        }

        # What may be read carries no reason and no content.
        for doc in a.on("npsp/status/") + b.on("npsp/status/"):
            assert "reason" not in doc and doc["state"] in ("pending", "down"), doc
        pushes = portal.on("npsp/inbox/")
        assert len(portal.on("npsp/inbox/ops.vpcp")) >= 2  # alert digest, confirmation, late
        for doc in pushes:
            assert set(doc) == {"key", "notification", "language", "link", "api"}, doc
            assert "bo-a" not in json.dumps(doc) and "connect" not in json.dumps(doc)
