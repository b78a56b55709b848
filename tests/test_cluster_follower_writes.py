"""Writes on a follower take effect on the leader within 2 s (issue 13, "Tests").

Three daemons as subprocesses on one PostgreSQL. Each write goes to a host that does not lead:
an API acknowledgement (the leader's escalation ladder stops for that outage and goes on for
the one nobody acknowledged), a heartbeat pushed over HTTP (the leader, which never received
it, does not page; when the pushes stop it does, and a push to the follower brings the system
back on the leader), a change announced with the command line (the leader sends the late-notice
alert once, not once per host). The maintenance window written with a follower's config is in
test_cluster_daemons.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from tests.cluster_hosts import Host, Mailbox, hosts, until
from tests.conftest import TcpTarget
from tests.peers.mosquitto import Mosquitto
from tests.peers.mosquitto import available as mosquitto_available

from .test_cluster_daemons import OPS, Cluster, agencies, email_channel, mail  # noqa: F401

ESCALATED = "[NPSP] Chưa được xử lý"
LATE = "[NPSP] Thông báo thay đổi máy chủ bảo mật không đủ thời hạn"
HB_TOKEN = "hb-token-cluster-Aa1Bb2Cc3Dd4Ee5Ff6"


async def started(
    tmp_path: Path, pg_url: tuple[str, Path], mailbox: Mailbox, port: int, **config: Any
) -> tuple[Cluster, Host, Host]:
    """Three voting hosts; the leader and one follower."""
    url, password_file = pg_url
    config.setdefault("channels", email_channel(port))
    group = hosts(
        tmp_path,
        ["gw-1", "gw-2", "gw-3"],
        url=url,
        password_file=password_file,
        operations=[{"name": "VPCP", "email": OPS, "channels": ["email"]}],
        **config,
    )
    cluster = Cluster(group, mailbox)
    await cluster.start()
    await cluster.voting(3)
    leader = await cluster.leader()
    return cluster, leader, next(h for h in group if h is not leader)


async def cli(host: Host, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, "-c", str(host.config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()
    return out.decode()


async def system_up(host: Host, agency: str, system: str) -> float | None:
    wanted = f'npsp_system_up{{agency="{agency}",system="{system}"'
    return next((v for k, v in (await host.metrics()).items() if k.startswith(wanted)), None)


async def test_an_acknowledgement_on_a_follower_stops_the_leaders_escalation(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],  # noqa: F811
) -> None:
    target = await tcp_target()
    mailbox, port = await mail(0.0)
    ladder = 8.0  # operations hear of an unacknowledged outage 8 s after it began
    cluster, leader, follower = await started(
        tmp_path,
        pg_url,
        mailbox,
        port,
        agencies=agencies(2, 1, target.port),
        alerting={"escalation": [{"after": f"{ladder:g}s", "to": "operations"}]},
    )
    try:
        account = ["--id", "vpcp", "--name", "VPCP", "--role", "national-admin", "--json"]
        created = json.loads(await cli(follower, "accounts", "create", *account))
        auth = {"Authorization": f"Bearer {created['token']}"}
        base = f"http://127.0.0.1:{follower.port}/api/v1/incidents"
        await target.down()  # both agencies' systems go down
        async with aiohttp.ClientSession(headers=auth) as http:

            async def outage() -> dict[str, Any] | None:
                async with http.get(base) as r:
                    found = (await r.json())["incidents"]
                return next((i for i in found if i["agency"] == "ag-00"), None)

            incident = await until(outage, 20, "the outage's incident, read on the follower")
            async with http.post(f"{base}/{incident['id']}/ack") as r:
                assert r.status == 200, await r.text()
            acked_at = time.time()
        # The acknowledgement came at least 2 s before its step was due: within those 2 s the
        # leader must know of it.
        assert acked_at <= incident["opened_at"] + ladder - 2.0, (acked_at, incident)

        def escalated(system: str) -> list[str]:
            return [
                text
                for to, mid, text in mailbox.received
                if to == OPS and mailbox.subjects[mid].startswith(ESCALATED) and system in text
            ]

        await until(lambda: _true(bool(escalated("ag-01/s0"))), 30, "ag-01's escalation")
        await asyncio.sleep(2.0)
        assert escalated("ag-00/s0") == [], "escalated although acknowledged on a follower"
        assert await cluster.leader() is leader, "the test needs the same leader throughout"
    finally:
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    assert "Traceback" not in cluster.logs()


def heartbeat_agency(token_file: Path) -> list[dict[str, Any]]:
    return [
        {
            "id": "ag-00",
            "kind": "province",
            "name_vi": "Tỉnh 0",
            "name_en": "Province 0",
            "code": "00",
            "contacts": [
                {
                    "name": "KT 0",
                    "role": "technical-admin",
                    "email": "kt@ag-00.dvc.example",
                    "channels": ["email"],
                }
            ],
            "systems": [
                {
                    "id": "sync",
                    "kind": "other",
                    "name": "Đồng bộ hồ sơ",
                    "checks": [
                        {
                            "id": "hb",
                            "kind": "heartbeat",
                            "period": "1s",
                            "grace": "1s",
                            "interval": "300ms",
                            "timeout": "200ms",
                            "token": {"file": str(token_file)},
                        }
                    ],
                }
            ],
        }
    ]


async def test_a_heartbeat_pushed_to_a_follower_counts_on_the_leader(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],  # noqa: F811
) -> None:
    mailbox, port = await mail(0.0)
    token_file = tmp_path / "hb.token"
    token_file.write_text(HB_TOKEN)
    token_file.chmod(0o600)
    cluster, leader, follower = await started(
        tmp_path, pg_url, mailbox, port, agencies=heartbeat_agency(token_file)
    )
    agency_mail = "kt@ag-00.dvc.example"
    url = f"http://127.0.0.1:{follower.port}/api/v1/heartbeat/ag-00/sync"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {HB_TOKEN}"}) as http:

            async def push_for(seconds: float) -> list[float | None]:
                """Push to the follower only, every 300 ms; the leader's view meanwhile."""
                seen = []
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    async with http.post(url) as r:
                        assert r.status == 202, await r.text()
                    seen.append(await system_up(leader, "ag-00", "sync"))
                    await asyncio.sleep(0.3)
                return seen

            # Three deadlines (period 1 s + grace 1 s) of pushes the leader never receives.
            assert set(await push_for(6.0)) == {1.0}, "the leader saw it down"
            assert agency_mail not in mailbox.recipients(), "paged although pushes arrived"
            # The pushes stop: now every vantage sees it stale, and the agency is told.
            await until(lambda: _true(agency_mail in mailbox.recipients()), 20, "the page")
            assert await system_up(leader, "ag-00", "sync") == 0.0
            # One push to the follower: the leader has it back within 2 s.
            async with http.post(url) as r:
                assert r.status == 202
            pushed = time.monotonic()
            await until(
                lambda: _eq(system_up(leader, "ag-00", "sync"), 1.0), 10, "up on the leader", 0.05
            )
            took = time.monotonic() - pushed
    finally:
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    assert took < 2.0, took
    assert "Traceback" not in cluster.logs()


@pytest.mark.skipif(not mosquitto_available(), reason="mosquitto is not installed")
async def test_heartbeats_over_mqtt_reach_every_host_each_on_its_own_client_id(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],  # noqa: F811
) -> None:
    """Three hosts on one broker, the config's client id left unset: each connects once under
    its own (npsp-monitor-<vantage>; one id would have the broker drop one for the other, over
    and over); a heartbeat published to the broker keeps the system up on the leader, and the
    page comes once they stop."""
    mailbox, port = await mail(0.0)
    token_file = tmp_path / "hb.token"
    token_file.write_text(HB_TOKEN)
    token_file.chmod(0o600)
    (tmp_path / "mq").mkdir()
    async with Mosquitto(tmp_path / "mq") as broker:
        cluster, leader, _ = await started(
            tmp_path,
            pg_url,
            mailbox,
            port,
            agencies=heartbeat_agency(token_file),
            channels={
                **email_channel(port),
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "reconnect_max": "200ms"},
            },
        )
        agency_mail = "kt@ag-00.dvc.example"
        try:
            payload = json.dumps({"token": HB_TOKEN}).encode()
            seen = []
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="agency-00") as agency:
                end = time.monotonic() + 6.0  # three deadlines (period 1 s + grace 1 s)
                while time.monotonic() < end:
                    await agency.publish("npsp/heartbeat/ag-00/sync", payload, qos=1)
                    seen.append(await system_up(leader, "ag-00", "sync"))
                    await asyncio.sleep(0.3)
            assert set(seen) == {1.0}, seen
            assert agency_mail not in mailbox.recipients()
            await until(lambda: _true(agency_mail in mailbox.recipients()), 20, "the page")
        finally:
            await asyncio.gather(*(h.stop() for h in cluster.hosts))
    for host in cluster.hosts:
        connected = re.findall(r"mqtt: connected to \S+ as ([\w.-]+)", host.log.read_text())
        assert connected == [f"npsp-monitor-{host.vantage}"], (host.vantage, connected)
    assert "Traceback" not in cluster.logs()


async def test_a_change_announced_on_a_follower_is_alerted_once_by_the_leader(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],  # noqa: F811
) -> None:
    target = await tcp_target()
    mailbox, port = await mail(0.0)
    fleet = agencies(1, 1, target.port)
    fleet[0]["systems"][0].update(id="secure", kind="secure-server", name="Máy chủ bảo mật")
    cluster, _leader, follower = await started(tmp_path, pg_url, mailbox, port, agencies=fleet)
    try:
        effective = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
        await cli(
            follower, "announce", "--agency", "ag-00", "--system", "secure",
            "--effective", effective, "--port", str(target.port + 1), "--author", "test",
        )  # fmt: skip
        written = time.monotonic()

        def late() -> list[tuple[str, str]]:
            return [
                (to, mid)
                for to, mid, _ in mailbox.received
                if mailbox.subjects[mid].startswith(LATE)
            ]

        await until(lambda: _true(bool(late())), 10, "the late-notice alert", 0.05)
        took = time.monotonic() - written
        await asyncio.sleep(2.0)  # a second host's copy would have come by now
    finally:
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    assert took < 2.0, took
    per_recipient = Counter(to for to, _ in set(late()))
    assert per_recipient and max(per_recipient.values()) == 1, late()
    assert "Traceback" not in cluster.logs()


async def _true(value: bool) -> bool:
    return value


async def _eq(value: Awaitable[float | None], wanted: float) -> bool:
    return await value == wanted
