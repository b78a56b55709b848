"""The whole daemon, in-process, with a real Mosquitto broker: announcements published on
``npsp/announcements/<agency>`` are validated, answered on ``.../result``, stored; a late one
raises exactly one alert per person (portal inbox over MQTT here); malformed ones are refused
with a reason and disturb nothing; the catalog is retained on ``npsp/catalog/secure-servers``;
an announced certificate pin switches at its effective time."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from monitor.app import Daemon
from monitor.config import load_config
from tests.peers import wait_until
from tests.peers.mosquitto import Mosquitto, available
from tests.probe_servers import Certs, Server, make_certs

from .test_daemon import Running, metric, write_config

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not available(), reason="mosquitto is not installed"),
]

VN = dt.timezone(dt.timedelta(hours=7))


def contact(agency_id: str, role: str = "technical-admin") -> dict[str, Any]:
    prefix = "kt" if role == "technical-admin" else "cc"
    return {
        "name": f"{prefix} {agency_id}",
        "role": role,
        "portal_account": f"{prefix}.{agency_id}",
        "channels": ["inbox"],
    }


# Each agency's announcement token (channels.mqtt.announcement_tokens, one file each).
TOKENS = {aid: f"{aid}-announce-token-0123456789abcdef" for aid in ("bo-a", "bo-b", "bo-c")}


def token_files(tmp_path: Path) -> dict[str, dict[str, str]]:
    files = {}
    for aid, token in TOKENS.items():
        path = tmp_path / f"announce-{aid}"
        path.write_text(token + "\n", encoding="utf-8")
        files[aid] = {"file": str(path)}
    return files


def signed(payload: bytes, token: str) -> bytes:
    """``payload`` with ``"token"`` as its first member, if it is (or starts as) a JSON object:
    malformed payloads stay malformed (their reason is what is tested)."""
    body = payload.lstrip()
    if not body.startswith(b"{"):
        return payload
    rest = body[1:]
    head = b'{"token": ' + json.dumps(token).encode()
    return head + (rest if rest.lstrip().startswith(b"}") else b", " + rest)


async def inbox_of(running: Running, account: str) -> list[dict[str, str]]:
    """What the daemon stored in a portal account's inbox (the push carries no content)."""
    engine = running.daemon.engine
    assert engine is not None
    rows = await engine.store.transact(
        lambda db: db.execute(
            "SELECT subject, text FROM inbox WHERE account = ? ORDER BY id", (account,)
        ).fetchall()
    )
    return [{"subject": subject, "text": text} for subject, text in rows]


def config(tmp_path: Path, broker: int, tls_port: int, ca_file: Path, pin: str) -> Path:
    def ministry(aid: str, systems: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": aid,
            "kind": "ministry",
            "name_vi": f"Bộ {aid}",
            "name_en": f"Ministry {aid}",
            "code": aid.upper()[:4],
            "contacts": [contact(aid), contact(aid, "high-level-admin")],
            "systems": systems,
        }

    tls_check = {
        "id": "tls",
        "kind": "tls",
        "host": "127.0.0.1",
        "port": tls_port,
        "tls": {"ca_file": str(ca_file), "expected_fingerprint_sha256": pin},
    }
    data = {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {"interval": "300ms", "timeout": "250ms", "failure_threshold": 1},
        "alerting": {
            "operations": [{"name": "VPCP", "portal_account": "ops.vpcp", "channels": ["inbox"]}],
            "group_wait": "200ms",
        },
        "channels": {
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker,
                "timeout": "3s",
                "reconnect_max": "1s",
                "announcement_tokens": token_files(tmp_path),
            }
        },
        "agencies": [
            ministry(
                "bo-a",
                [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [tls_check],
                    }
                ],
            ),
            ministry(
                "bo-b",
                [
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Một cửa",
                        "depends_on": ["bo-a/secure-server"],
                        "checks": [dict(tls_check, tls={"ca_file": str(ca_file)})],
                    }
                ],
            ),
            ministry("bo-c", []),
        ],
    }
    return write_config(tmp_path / "npsp.yaml", data)


async def wait_for_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    del writer
    await reader.read()


class Portal:
    """The other side of the broker: publishes announcements, collects what comes back."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.inbox: list[tuple[str, dict[str, Any]]] = []
        self.results: list[dict[str, Any]] = []
        self.catalog: list[dict[str, Any]] = []

    async def collect(self) -> None:
        async for m in self.client.messages:
            assert isinstance(m.payload, bytes)
            doc = json.loads(m.payload)
            topic = str(m.topic)
            if topic.startswith("npsp/inbox/"):
                self.inbox.append((topic.rsplit("/", 1)[1], doc))
            elif topic.endswith("/result"):
                self.results.append(doc)
            elif topic == "npsp/catalog/secure-servers":
                self.catalog.append(doc)

    async def announce(self, agency: str, payload: bytes | dict[str, Any]) -> None:
        """Publish as the agency would: with its announcement token (if it has one)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if agency in TOKENS:
            body = signed(body, TOKENS[agency])
        await self.client.publish(f"npsp/announcements/{agency}", body, qos=1)


@pytest.fixture
async def world(
    tmp_path: Path,
) -> AsyncIterator[Callable[[str], Awaitable[tuple[Running, Portal, Certs, Any]]]]:
    stack: list[Any] = []
    certs = make_certs(tmp_path)

    async def go(pin_of: str = "good") -> tuple[Running, Portal, Certs, Any]:
        broker = Mosquitto(tmp_path)
        await broker.start()
        stack.append(broker)
        tls = certs.server_context(certs.good)
        server = Server(wait_for_eof, tls=tls)
        await server.__aenter__()
        stack.append(server)
        pin = _fingerprint(certs.good)
        path = config(tmp_path, broker.port, server.port, certs.ca_file, pin)
        client = aiomqtt.Client(
            "127.0.0.1", broker.port, identifier=f"portal-{uuid.uuid4().hex[:6]}"
        )
        await client.__aenter__()
        stack.append(client)
        for topic in ("npsp/inbox/+", "npsp/announcements/+/result", "npsp/catalog/secure-servers"):
            await client.subscribe(topic, qos=1)
        portal = Portal(client)
        stack.append(asyncio.create_task(portal.collect()))
        ready = asyncio.Event()
        daemon = Daemon(path, load_config(path))
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        await asyncio.wait_for(ready.wait(), 15)
        running = Running(daemon, task)
        stack.append(running)
        await wait_until(
            lambda: daemon.rules is not None and bool(portal.catalog), 10, "catalog published"
        )
        return running, portal, certs, tls

    yield go
    for item in reversed(stack):
        if isinstance(item, Running):
            if not item.task.done():
                await item.stop()
        elif isinstance(item, asyncio.Task):
            item.cancel()
            await asyncio.gather(item, return_exceptions=True)
        elif isinstance(item, Mosquitto):
            await item.stop()
        else:
            await item.__aexit__(None, None, None)


def _fingerprint(leaf: Any) -> str:
    import hashlib
    import ssl

    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def iso_in(seconds: float) -> str:
    return (dt.datetime.now(VN) + dt.timedelta(seconds=seconds)).isoformat()


async def test_late_announcement_over_mqtt_raises_exactly_one_alert(world: Any) -> None:
    running, portal, _certs, _tls = await world()
    late = {
        "ref": "cv-2026-77",
        "effective_at": iso_in(86400),  # tomorrow: 0 working days
        "changes": {"port": 9443, "text": "chuyển cổng"},
    }
    await portal.announce("bo-a", late)
    await portal.announce("bo-a", late)  # a retry by the sender: the same ref
    await wait_until(lambda: len(portal.results) == 2, 10, "both answered")
    first, second = portal.results
    assert first["accepted"] and not first["duplicate"] and first["compliant"] is False
    assert second["accepted"] and second["duplicate"] and second["id"] == first["id"]
    expected = {"ops.vpcp", "kt.bo-a", "cc.bo-a", "kt.bo-b"}
    await wait_until(lambda: {a for a, _ in portal.inbox} >= expected, 15, "the late-notice alert")
    await asyncio.sleep(2.5)  # two more desk ticks: a second alert would arrive now
    per_account = Counter(account for account, _ in portal.inbox)
    # The late notice to each, and the confirmation to the announcing agency and operations;
    # bo-c is not concerned.
    assert per_account == {"ops.vpcp": 2, "kt.bo-a": 2, "cc.bo-a": 2, "kt.bo-b": 1}
    subjects = [m["subject"] for m in await inbox_of(running, "kt.bo-a")]
    assert any("không đủ thời hạn" in s for s in subjects)
    assert any("Xác nhận thông báo thay đổi" in s for s in subjects)
    _, text = await running.get("/metrics")
    assert metric(text, "npsp_change_notice_violations_total") == 1.0
    # The catalog shows the upcoming change, retained for agencies that connect later.
    await wait_until(
        lambda: bool(portal.catalog[-1]["secure_servers"][0]["upcoming"]), 10, "catalog"
    )
    assert portal.catalog[-1]["secure_servers"][0]["upcoming"][0]["ref"] == "cv-2026-77"
    api = await running.api("/api/v1/catalog/secure-servers")
    assert api["secure_servers"][0]["upcoming"][0]["changes"] == {
        "port": 9443,
        "text": "chuyển cổng",
    }


async def test_malformed_announcements_are_refused_and_nothing_else_is_disturbed(
    world: Any,
) -> None:
    running, portal, _certs, _tls = await world()
    bad: list[tuple[str, bytes]] = [
        ("bo-a", b"\x00\xff not json"),
        ("bo-a", b'{"ref": "r1", "effective_at": "2026-02-30", "changes": {"port": 1}}'),
        ("so-khong-co", json.dumps({"effective_at": iso_in(9e5), "changes": {"port": 1}}).encode()),
        (
            "bo-a",
            json.dumps(
                {"ref": "r3", "effective_at": iso_in(-3600), "changes": {"port": 1}}
            ).encode(),
        ),
        ("bo-a", b"{" + b'"x": 1, ' * 5000 + b'"y": 2}'),  # over 16 KiB
    ]
    for agency, payload in bad:
        await portal.announce(agency, payload)
    await wait_until(lambda: len(portal.results) == len(bad), 10, "every message answered")
    reasons = [r["reason"] for r in portal.results]
    assert all(r["accepted"] is False for r in portal.results)
    assert "not UTF-8" in reasons[0] or "not JSON" in reasons[0]
    assert "effective_at" in reasons[1] and portal.results[1]["ref"] == "r1"
    assert reasons[2].startswith("not authenticated: the payload carries no token")
    assert "is not after announced_at" in reasons[3]
    assert "exceeds 16384 bytes" in reasons[4]
    # Still working: a good one is accepted, the daemon is healthy, nothing was stored or sent.
    await portal.announce(
        "bo-a", {"ref": "ok-1", "effective_at": iso_in(30 * 86400), "changes": {"port": 9443}}
    )
    await wait_until(lambda: len(portal.results) == len(bad) + 1, 10, "the good one answered")
    assert portal.results[-1]["accepted"] is True and portal.results[-1]["compliant"] is True
    status, _ = await running.get("/healthz")
    assert status == 200
    listed = await running.api("/api/v1/announcements")
    assert [a["ref"] for a in listed["announcements"]] == ["ok-1"]
    _, text = await running.get("/metrics")
    assert metric(text, "npsp_announcements_rejected_total") == float(len(bad))
    # Only the confirmation of the good one, to its agency's admins and operations.
    await wait_until(lambda: len(portal.inbox) == 3, 10, "the confirmations")
    assert {a for a, _ in portal.inbox} == {"ops.vpcp", "kt.bo-a", "cc.bo-a"}


async def test_an_announced_certificate_pin_switches_at_its_effective_time(world: Any) -> None:
    running, portal, certs, tls = await world()
    swapped = certs.ca.issue_cert("localhost", "127.0.0.1")
    new_fp = _fingerprint(swapped)
    daemon: Daemon = running.daemon
    assert daemon.engine is not None
    key = "bo-a/secure-server/tls"
    old_pin = daemon.engine.registry.checks[key].spec.tls.expected_fingerprint_sha256  # type: ignore[attr-defined]
    await portal.announce(
        "bo-a",
        {
            "ref": "cert-2027",
            "effective_at": iso_in(2.0),
            "changes": {"fingerprint_sha256": new_fp},
        },
    )
    await wait_until(lambda: bool(portal.results), 10, "answered")
    assert daemon.engine.registry.checks[key].spec.tls.expected_fingerprint_sha256 == old_pin  # type: ignore[attr-defined]
    await wait_until(
        lambda: (
            daemon.engine is not None
            and daemon.engine.registry.checks[key].spec.tls.expected_fingerprint_sha256  # type: ignore[attr-defined]
            == new_fp
        ),
        10,
        "the pin switched",
    )
    swapped.configure_cert(tls)  # the agency installs it on time
    await asyncio.sleep(1.5)
    state = await running.api("/api/v1/systems/bo-a/secure-server")
    assert state["state"] == "up", state
    # Announced, so no unannounced-change alert; only the late-notice alert went out.
    stored = await inbox_of(running, "kt.bo-a")
    assert stored and all("chưa được thông báo" not in m["subject"] for m in stored)


async def test_a_paper_notice_recorded_after_it_took_effect_is_not_alerted(world: Any) -> None:
    """Issue 11, item 10: a notice given 20 days ago for a change effective the next day is
    recorded with its real date (late: no working day in between), taken as in effect, and
    confirmed to the agency — no late-notice alert to anyone, the violation still counted. The
    dispatch number, with its "/", is the ref."""
    running, portal, certs, _tls = await world()
    served = _fingerprint(certs.good)  # the certificate renewed 19 days ago, served since
    await portal.announce(
        "bo-a",
        {
            "ref": "12729/VPCP-KGVX",
            "announced_at": iso_in(-20 * 86400),
            "effective_at": iso_in(-19 * 86400),
            "changes": {"fingerprint_sha256": served, "text": "gia hạn chứng thư số"},
        },
    )
    await wait_until(lambda: bool(portal.results), 10, "answered")
    (answer,) = portal.results
    assert answer["accepted"] is True and answer["ref"] == "12729/VPCP-KGVX", answer
    assert answer["working_days"] == 0 and answer["compliant"] is False
    assert answer["recorded_in_effect"] is True
    await wait_until(
        lambda: {a for a, _ in portal.inbox} >= {"ops.vpcp", "kt.bo-a", "kt.bo-b"}, 15, "told"
    )
    await asyncio.sleep(2.5)  # two more desk ticks: a late notice would arrive now
    # One message each: its confirmation, which asks to verify a certificate whitelisted at
    # once, to the agency's admins, operations and bo-b (whose system depends on the server).
    assert Counter(account for account, _ in portal.inbox) == {
        "ops.vpcp": 1,
        "kt.bo-a": 1,
        "cc.bo-a": 1,
        "kt.bo-b": 1,
    }
    (told,) = await inbox_of(running, "kt.bo-a")
    assert told["subject"].startswith("[NPSP] CẦN XÁC MINH")
    assert "sau thời điểm hiệu lực" in told["text"]
    _, text = await running.get("/metrics")
    assert metric(text, "npsp_change_notice_violations_total") == 1.0
    # In effect at once, and the system is up (no unannounced-change alarm either).
    rules = running.daemon.rules
    assert rules is not None
    assert rules.announcements.overrides["bo-a/secure-server"].fingerprint_sha256 == served
    assert (await running.api("/api/v1/systems/bo-a/secure-server"))["state"] == "up"
