"""Three gateway hosts as real daemons on one real PostgreSQL (issue 13): one alert stream, the
quorum in the messages, and a leader killed with kill -9 replaced without a lost message."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.cluster_hosts import Host, Mailbox, hosts, leaders, until
from tests.conftest import TcpTarget
from tests.peers import free_port

OPS = "ops@vpcp.dvc.example"


def agencies(count: int, systems: int, port: int) -> list[dict[str, Any]]:
    return [
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
                    "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
                }
                for s in range(systems)
            ],
        }
        for a in range(count)
    ]


class Cluster:
    def __init__(self, group: list[Host], mailbox: Mailbox) -> None:
        self.hosts = group
        self.mailbox = mailbox

    async def start(self) -> None:
        await asyncio.gather(*(h.start() for h in self.hosts))

    async def voting(self, count: int) -> None:
        async def all_see() -> bool:
            values = await asyncio.gather(
                *(h.metric("npsp_vantages_voting") for h in self.hosts if h.running)
            )
            return all(v == count for v in values)

        await until(all_see, 30, f"{count} vantages voting")

    async def leader(self, timeout: float = 15.0) -> Host:
        found: list[Host] = await until(
            lambda: leaders([h for h in self.hosts if h.running]), timeout, "a leader"
        )
        assert len(found) == 1, [h.vantage for h in found]
        return found[0]

    def logs(self) -> str:
        return "\n".join(
            f"--- {h.vantage}\n{h.log.read_text()[-4000:]}" for h in self.hosts if h.log.exists()
        )


@pytest.fixture
async def mail() -> AsyncIterator[Callable[[float], Awaitable[tuple[Mailbox, int]]]]:
    controllers: list[Controller] = []

    async def make(delay: float = 0.0) -> tuple[Mailbox, int]:
        box = Mailbox(delay)
        controller = Controller(box, hostname="127.0.0.1", port=free_port())
        await asyncio.to_thread(controller.start)
        controllers.append(controller)
        return box, controller.port

    yield make
    for controller in controllers:
        await asyncio.to_thread(controller.stop)


def email_channel(port: int) -> dict[str, Any]:
    return {
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_addr": "giamsat@npsp.dvc.example",
        }
    }


async def three_hosts(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    mailbox_port: int,
    target: int,
    *,
    count: int = 3,
    systems: int = 2,
) -> list[Host]:
    url, password_file = pg_url
    return hosts(
        tmp_path,
        ["gw-1", "gw-2", "gw-3"],
        url=url,
        password_file=password_file,
        agencies=agencies(count, systems, target),
        channels=email_channel(mailbox_port),
        operations=[{"name": "VPCP", "email": OPS, "channels": ["email"]}],
    )


async def test_down_for_everyone_is_one_digest_per_recipient_seen_from_3_of_3(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],
) -> None:
    target = await tcp_target()
    mailbox, port = await mail(0.0)
    cluster = Cluster(await three_hosts(tmp_path, pg_url, port, target.port), mailbox)
    try:
        await cluster.start()
        await cluster.voting(3)
        leader = await cluster.leader()
        await target.down()  # the province's server goes away: every vantage sees it
        expected = {f"kt@ag-{a:02d}.dvc.example" for a in range(3)} | {OPS}
        await until(lambda: _true(mailbox.recipients() >= expected), 30, "every recipient")
        await asyncio.sleep(2.0)  # a second alert stream would have sent its copies by now
        assert await leaders(cluster.hosts) == [leader], "the leader stayed the only one"
        # Every host's /metrics: each system seen failing by the 3 voting vantages.
        for host in cluster.hosts:
            votes = {
                k: v
                for k, v in (await host.metrics()).items()
                if k.startswith("npsp_system_votes_failing{")
            }
            assert len(votes) == 6 and set(votes.values()) == {3.0}, (host.vantage, votes)
    finally:
        codes = await asyncio.gather(*(h.stop() for h in cluster.hosts))
    per_recipient = Counter(to for to, _, _ in mailbox.received)
    assert per_recipient == Counter(dict.fromkeys(expected, 1)), (per_recipient, cluster.logs())
    for to, _, text in mailbox.received:
        assert "thấy từ 3/3 điểm đo" in text or "seen from 3/3 vantages" in text, (to, text)
    assert codes == [0, 0, 0], cluster.logs()
    assert "Traceback" not in cluster.logs()


STORM_AGENCIES = 12


async def storm_cluster(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    target: TcpTarget,
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],
) -> tuple[Cluster, set[str]]:
    """Three hosts (not started) probing 24 systems of 12 agencies, and a slow mail server
    (0.3 s a message: the leader is always mid-send); the recipients a storm must reach."""
    mailbox, port = await mail(0.3)
    group = await three_hosts(tmp_path, pg_url, port, target.port, count=STORM_AGENCIES)
    expected = {f"kt@ag-{a:02d}.dvc.example" for a in range(STORM_AGENCIES)} | {OPS}
    return Cluster(group, mailbox), expected


def assert_one_stream(cluster: Cluster, duplicates: int) -> None:
    """At most ``duplicates`` messages sent twice (one in flight per leader change); per
    recipient a first digest and at most one follow-up (systems confirmed down after the first
    went out), as on a single host: never one copy per host; no traceback in any log."""
    received = cluster.mailbox.received
    per_message = Counter(mid for _, mid, _ in received)
    twice = sum(n - 1 for n in per_message.values())
    assert twice <= duplicates, (per_message, cluster.logs())
    distinct = Counter(to for to, _ in {(to, mid) for to, mid, _ in received})
    assert max(distinct.values()) <= 2, distinct
    # A takeover must not tell anyone again what they were told (the new leader's older view
    # resolving and re-opening outages), nor say a system that never came back is back.
    assert cluster.mailbox.repeats() == [], received
    assert not [text for _, _, text in received if "KẾT NỐI LẠI" in text], received
    assert "Traceback" not in cluster.logs()


async def _true(value: bool) -> bool:
    return value


async def test_a_killed_leader_is_replaced_and_nothing_is_lost(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],
) -> None:
    """kill -9 of the leader twice while it is sending (a slow mail server): another host
    takes over within failover_after, sends what was pending; at most one duplicate per
    kill; the killed hosts, restarted, do not send again."""
    target = await tcp_target()
    cluster, expected = await storm_cluster(tmp_path, pg_url, target, mail)
    mailbox = cluster.mailbox
    failovers: list[float] = []
    restarts: list[asyncio.Task[None]] = []
    try:
        await cluster.start()
        await cluster.voting(3)
        await target.down()
        for _kill in range(2):
            leader = await cluster.leader()
            before = len(mailbox.received)
            await until(
                lambda b=before: _true(len(mailbox.received) > b + 1), 30, "the leader sending"
            )
            leader.kill()
            killed_at = time.monotonic()
            await leader.wait()
            successor = await cluster.leader(timeout=15)
            failovers.append(time.monotonic() - killed_at)
            assert successor is not leader
            # Back, as a follower (its epoch is over), while the storm goes on: waiting for it
            # to start first could leave nothing unsent for the second kill to interrupt.
            restarts.append(asyncio.create_task(leader.start()))
        await asyncio.gather(*restarts)
        await until(lambda: _true(mailbox.recipients() >= expected), 60, "every recipient")
        await asyncio.sleep(2.0)
    finally:
        for restart in restarts:
            restart.cancel()
        await asyncio.gather(*restarts, return_exceptions=True)
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    assert all(f < 3.0 + 2.0 for f in failovers), failovers  # failover_after, plus a scrape
    assert mailbox.recipients() == expected
    assert_one_stream(cluster, duplicates=2)


async def test_a_postgresql_outage_mid_storm_stops_sending_not_probing(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    local_postgres: Any,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],
) -> None:
    """PostgreSQL stopped for 30 s while the leader sends a storm: the probes go on (every
    host's probe count keeps rising), nothing is sent that could not be claimed, and once it is
    back every recipient is told, with at most one duplicate per leader change."""
    target = await tcp_target()
    cluster, expected = await storm_cluster(tmp_path, pg_url, target, mail)
    mailbox = cluster.mailbox
    probes = "npsp_scheduler_lag_seconds_count"
    try:
        await cluster.start()
        await cluster.voting(3)
        await target.down()
        await until(lambda: _true(len(mailbox.received) >= 2), 30, "the storm being sent")
        await local_postgres.stop_server()
        stopped_at = time.monotonic()
        before = [await h.metric(probes) for h in cluster.hosts]
        await asyncio.sleep(8.0)  # past the lease: nobody may send now
        sent_without_db = len(mailbox.received)
        await asyncio.sleep(30.0 - (time.monotonic() - stopped_at))
        after = [await h.metric(probes) for h in cluster.hosts]
        assert len(mailbox.received) == sent_without_db, "sent while nothing could be claimed"
        await local_postgres.start_server()
        await until(lambda: _true(mailbox.recipients() >= expected), 60, "every recipient")
        await asyncio.sleep(2.0)
        assert len(await leaders(cluster.hosts)) == 1
    finally:
        if not local_postgres.is_running():
            await local_postgres.start_server()
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    for host, b, a in zip(cluster.hosts, before, after, strict=True):
        assert b is not None and a is not None and a > b + 20, (host.vantage, b, a)
    assert mailbox.recipients() == expected
    assert_one_stream(cluster, duplicates=2)


async def test_a_write_on_a_follower_takes_effect_on_the_leader_within_2_s(
    tmp_path: Path,
    pg_url: tuple[str, Path],
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    mail: Callable[[float], Awaitable[tuple[Mailbox, int]]],
) -> None:
    """A maintenance window scheduled with a follower's config (the command line writes to the
    shared database) puts the system in maintenance on the leader within 2 s."""
    target = await tcp_target()
    mailbox, port = await mail(0.0)
    cluster = Cluster(await three_hosts(tmp_path, pg_url, port, target.port), mailbox)

    async def in_maintenance(host: Host) -> bool:
        wanted = ("npsp_system_state{", 'agency="ag-01"', 'system="s0"', 'state="maintenance"')
        return any(
            all(w in k for w in wanted) and v == 1 for k, v in (await host.metrics()).items()
        )

    try:
        await cluster.start()
        await cluster.voting(3)
        leader = await cluster.leader()
        follower = next(h for h in cluster.hosts if h is not leader)
        assert not await in_maintenance(leader), "in maintenance before the window was written"
        start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 60))
        end = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "maintenance", "schedule",
            "-c", str(follower.config), "--start", start, "--end", end,
            "--reason", "thay thiết bị", "--scope", "ag-01/s0", "--override", "khẩn cấp",
            "--author", "test",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await cli.communicate()
        written = time.monotonic()
        assert cli.returncode == 0, out.decode()
        await until(lambda: in_maintenance(leader), 10, "the leader seeing the window")
        took = time.monotonic() - written
    finally:
        await asyncio.gather(*(h.stop() for h in cluster.hosts))
    assert took < 2.0, took
    assert "Traceback" not in cluster.logs()
