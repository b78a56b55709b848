"""Cluster failover benchmark (issue 13): kill -9 of the leader K times during an alert storm.

Three gateway hosts (real daemons, ``python -m monitor run``) on one throwaway local PostgreSQL
(monitor/pglocal.py), probing AGENCIES x SYSTEMS systems (one tcp check each, all against one
local TCP port); every agency has one e-mail contact, operations one e-mail; the mail server
(aiosmtpd) takes 0.1-0.3 s per message, so the leader is always mid-send. Once every system is
up the target goes away (a storm: every system down), and while the storm is sent the leader
is killed with SIGKILL ``--kills`` times, the killed host restarted at once. Per kill the
failover time is measured: from the kill until a host's /metrics shows ``npsp_leader 1``
(polled every 50 ms). Usually that is another host; sometimes it is the killed one itself:
restarted at once, it is a new holder and may claim the expired lease before a follower's next
attempt (counted apart). At the end it waits until every recipient got mail and prints the
kills, the failover times, messages received, recipients expected vs reached, duplicates (the
same Message-ID twice), the most distinct digests one recipient got, agency digests that name
no system not already named to that agency, and the wall time. Exit status 1 when a recipient
was never reached (or the run failed).

Run: .venv/bin/python bench/cluster_failover.py [--kills 5] [--agencies 25] [--systems 20]
Needs PostgreSQL installed (/usr/lib/postgresql/*/bin, or $PG_BINDIR), as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor.pglocal import LocalPostgres
from tests.cluster_hosts import Host, Mailbox, hosts
from tests.peers import free_port
from tests.peers.twilio_api import FakeTwilio, Reply

OPS = "ops@vpcp.dvc.example"
POLL = 0.05  # the failover poll: every 50 ms


class SlowMailbox(Mailbox):
    """The tests' mailbox, each message taking a random 0.1-0.3 s; a share ``faults`` of the
    messages is refused with a temporary error (451), to be sent again later."""

    def __init__(self, low: float, high: float, faults: float = 0.0) -> None:
        super().__init__(0.0)
        self.low, self.high, self.faults = low, high, faults
        self.refused = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(random.uniform(self.low, self.high))
        if random.random() < self.faults:
            self.refused += 1
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


class FaultyTwilio(FakeTwilio):
    """The tests' Twilio API, each request taking 0.05-0.15 s; a share ``faults`` of them
    answered with a server error (the channel retries it later)."""

    def __init__(self, faults: float) -> None:
        super().__init__()
        self.faults = faults
        self.refused = 0

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(random.uniform(0.05, 0.15))
        if random.random() < self.faults:
            self.refused += 1
            error = Reply.server_error()
            return web.json_response(error.body, status=error.status)
        return await super()._create_message(request)


def phone(agency: int) -> str:
    return f"+840000{agency:05d}"  # not a real number: the local Twilio peer


def sent_while_not_leading(log: str) -> int:
    """Messages a host's log says it sent while that process was not the leader (each start of
    the process begins as a follower; "taking over" makes it lead, "no longer the leader"
    ends it): a killed leader, restarted, must not send unless it leads again."""
    leading, count = False, 0
    for line in log.splitlines():
        if any(
            m in line
            for m in (
                'msg="registry applied"',
                'msg="no longer the leader"',
                'msg="takeover failed',
            )
        ):
            leading = False
        elif 'msg="taking over as the leader"' in line:
            leading = True
        elif 'msg="notification sent"' in line and not leading:
            count += 1
    return count


class Target:
    """A loopback TCP server every check probes; taken down, its port is closed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def up(self) -> None:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


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
                    "phone": phone(a),
                    "channels": ["sms", "email"],
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


async def wait_for(what: str, within: float, condition: Any, every: float = 0.2) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out ({within:.0f} s) waiting for {what}")
        await asyncio.sleep(every)


async def leaders(group: list[Host]) -> list[Host]:
    values = await asyncio.gather(*(h.metric("npsp_leader") for h in group))
    return [h for h, v in zip(group, values, strict=True) if v == 1.0]


async def systems_up(host: Host) -> float:
    return sum(v for k, v in (await host.metrics()).items() if k.startswith("npsp_system_up{"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def bench(args: argparse.Namespace, pg: LocalPostgres, folder: Path) -> dict[str, Any]:
    url = pg.create_database_blocking("bench_failover")
    mailbox = SlowMailbox(args.mail_min, args.mail_max, args.mail_faults)
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    twilio = FaultyTwilio(args.sms_faults)
    await twilio.__aenter__()
    token_file = folder / "twilio-token"
    token_file.write_text(twilio.auth_token)
    token_file.chmod(0o600)
    target = Target()
    await target.up()
    total = args.agencies * args.systems
    group = hosts(
        folder,
        ["gw-1", "gw-2", "gw-3"],
        url=url,
        password_file=pg.password_file,
        agencies=agencies(args.agencies, args.systems, target.port),
        channels={
            "email": {
                "host": "127.0.0.1",
                "port": controller.port,
                "security": "none",
                "from_addr": "giamsat@npsp.dvc.example",
            },
            "sms": {
                "account_sid": twilio.account_sid,
                "auth_token": {"file": str(token_file)},
                "from_number": "+84000000000",
                "api_base_url": twilio.base_url,
            },
        },
        operations=[{"name": "VPCP", "email": OPS, "channels": ["email"]}],
        defaults={
            "interval": args.interval,
            "timeout": "1s",
            "failure_threshold": 2,
            "recheck_delay": "100ms",
        },
    )
    expected = {f"kt@ag-{a:02d}.dvc.example" for a in range(args.agencies)} | {OPS}
    failovers: list[float] = []
    mid_send: list[bool] = []
    by_restarted: list[bool] = []
    started = time.monotonic()
    storm_at = started
    try:
        await asyncio.gather(*(h.start(timeout=60) for h in group))
        print(f"{len(group)} hosts up, {total} systems", flush=True)

        async def voting() -> bool:
            values = await asyncio.gather(*(h.metric("npsp_vantages_voting") for h in group))
            return all(v == len(group) for v in values)

        await wait_for("3 vantages voting", 60, voting)
        leader = (await wait_for("a leader", 30, lambda: leaders(group)))[0]
        await wait_for(f"{total} systems up", 120, lambda: _ge(systems_up(leader), total))
        print(f"every system up on {leader.vantage}; the target goes down", flush=True)
        await target.down()
        storm_at = time.monotonic()
        for kill in range(args.kills):
            found = await wait_for("a leader", 30, lambda: leaders([h for h in group if h.running]))
            leader = found[0]
            # kill while it is sending: after it sent a message (bounded, the storm may be over)
            before = len(mailbox.received)
            try:
                await wait_for(
                    "the leader sending",
                    args.send_wait,
                    lambda b=before: _true(len(mailbox.received) > b),
                    0.02,
                )
                sending = True
            except TimeoutError:
                sending = False
            leader.kill()
            killed_at = time.monotonic()
            await leader.wait()
            restart = asyncio.create_task(leader.start(timeout=60))
            # every host, the killed one too: restarted (a new holder, a new epoch) it may claim
            # the expired lease before a follower's next attempt does
            while not (successor := await leaders(group)):
                if time.monotonic() - killed_at > 60:
                    raise TimeoutError("no host took over within 60 s")
                await asyncio.sleep(POLL)
            failovers.append(time.monotonic() - killed_at)
            mid_send.append(sending)
            by_restarted.append(successor[0] is leader)
            print(
                f"kill {kill + 1}: {leader.vantage} killed"
                f" ({'mid-send' if sending else 'idle: the storm was sent'}),"
                f" {successor[0].vantage} leads after {failovers[-1]:.2f} s"
                + (" (the killed host, restarted)" if by_restarted[-1] else ""),
                flush=True,
            )
            await restart
        try:
            phones = {phone(a) for a in range(args.agencies)}
            await wait_for(
                "every recipient, by e-mail and SMS",
                args.timeout,
                lambda: _true(
                    mailbox.recipients() >= expected and {m.to for m in twilio.sent} >= phones
                ),
            )
        except TimeoutError as e:
            print(e, flush=True)
        await asyncio.sleep(2.0)  # a late copy would have been sent by now
    finally:
        await asyncio.gather(*(h.stop() for h in group))
        await target.down()
        await asyncio.to_thread(controller.stop)
        await twilio.__aexit__(None, None, None)
    wall = time.monotonic() - started
    if args.keep:
        await asyncio.to_thread(keep_tables, url, pg.password_file, folder)
    received = mailbox.received
    if args.dump:
        args.dump.write_text(json.dumps(received, ensure_ascii=False, indent=1), encoding="utf-8")
    per_message = Counter(mid for _, mid, _ in received)
    distinct = Counter(to for to, _ in {(to, mid) for to, mid, _ in received})
    reached = mailbox.recipients() & expected
    texts = [h.log.read_text(errors="replace") for h in group if h.log.exists()]
    logs = "\n".join(texts)
    return {
        "hosts": len(group),
        "systems": total,
        "agencies": args.agencies,
        "kills": len(failovers),
        "kills_mid_send": sum(mid_send),
        "taken_over_by_the_restarted_host": sum(by_restarted),
        "failover_s": [round(f, 3) for f in failovers],
        "failover_p50_s": round(statistics.median(failovers), 3) if failovers else None,
        "failover_max_s": round(max(failovers), 3) if failovers else None,
        "messages_received": len(received),
        "recipients_expected": len(expected),
        "recipients_reached": len(reached),
        "lost": len(expected - reached),
        "duplicates": sum(n - 1 for n in per_message.values()),
        "distinct_digests_per_recipient_max": max(distinct.values()) if distinct else 0,
        "agency_repeats": len(mailbox.repeats(skip=OPS)),
        # The target never comes back: any "connected again" is false.
        "recoveries_told": sum("KẾT NỐI LẠI" in text for _, _, text in received)
        + sum("KẾT NỐI LẠI" in sms.body for sms in twilio.sent),
        "sms_received": len(twilio.sent),
        "sms_lost": len({phone(a) for a in range(args.agencies)} - {m.to for m in twilio.sent}),
        # The same text to the same number twice (an SMS has no Message-ID)
        "sms_duplicates": len(twilio.sent) - len({(m.to, m.body) for m in twilio.sent}),
        "sms_refused": twilio.refused,
        "refused_by_the_mail_server": mailbox.refused,
        "sent_while_not_leading": sum(sent_while_not_leading(t) for t in texts),
        "distinct_digests_ops": distinct[OPS],
        "distinct_digests_agency_max": max(
            (n for to, n in distinct.items() if to != OPS), default=0
        ),
        "storm_to_end_s": round(time.monotonic() - storm_at, 1),
        "wall_s": round(wall, 1),
        "tracebacks_in_logs": logs.count("Traceback"),
    }


def keep_tables(url: str, password_file: Path, folder: Path) -> None:
    """With --keep: the outbox, who was told, the states and their changes, as JSON files, to
    see which leader queued what."""
    password = password_file.read_text().strip()
    with psycopg.connect(url, password=password) as conn:
        for table in ("outbox", "alert_notices", "system_state", "state_changes"):
            try:
                cur = conn.execute(f"SELECT * FROM {table}")
            except psycopg.Error:
                conn.rollback()
                continue
            names = [c.name for c in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            (folder / f"{table}.json").write_text(
                json.dumps(rows, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
            )


async def _true(value: bool) -> bool:
    return value


async def _ge(value: Any, bound: float) -> bool:
    return bool(await value >= bound)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--agencies", type=int, default=25)
    parser.add_argument("--systems", type=int, default=20, help="systems per agency")
    parser.add_argument("--interval", default="2s", help="probe interval (default 2s)")
    parser.add_argument("--mail-min", type=float, default=0.1)
    parser.add_argument("--mail-max", type=float, default=0.3)
    parser.add_argument(
        "--send-wait", type=float, default=10.0, help="s to wait for the leader to send a message"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="s to wait for every recipient"
    )
    parser.add_argument("--keep", action="store_true", help="keep the configs and logs")
    parser.add_argument("--dump", type=Path, help="write every message received (JSON) there")
    parser.add_argument(
        "--mail-faults", type=float, default=0.0, help="share of messages refused with a 451"
    )
    parser.add_argument(
        "--sms-faults", type=float, default=0.0, help="share of SMS answered with a 500"
    )
    parser.add_argument("--json", type=Path, help="also write the result (JSON) there")
    args = parser.parse_args()
    pg = LocalPostgres()
    pg.start_blocking()
    folder = Path(tempfile.mkdtemp(prefix="npsp-failover-"))
    ok = False
    try:
        result = asyncio.run(bench(args, pg, folder))
        ok = result["lost"] == 0 and result["sms_lost"] == 0
    finally:
        pg.stop_blocking()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"configs and logs: {folder}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result), encoding="utf-8")
    f = result["failover_s"]
    print(
        f"\n{result['hosts']} hosts, {result['systems']} systems, {result['kills']} kills"
        f" ({result['kills_mid_send']} mid-send,"
        f" {result['taken_over_by_the_restarted_host']} won back by the restarted host):"
        f" failover {f} s,"
        f" p50 {result['failover_p50_s']} s, max {result['failover_max_s']} s;"
        f" {result['messages_received']} messages, recipients {result['recipients_reached']}"
        f"/{result['recipients_expected']} (lost {result['lost']}),"
        f" duplicates {result['duplicates']},"
        f" distinct digests per recipient max {result['distinct_digests_per_recipient_max']}"
        f" (operations {result['distinct_digests_ops']},"
        f" an agency at most {result['distinct_digests_agency_max']}),"
        f" agency digests sent again (same systems, new Message-ID) {result['agency_repeats']},"
        f" false recoveries {result['recoveries_told']},"
        f" sent while not leading {result['sent_while_not_leading']},"
        f" refused by the mail server {result['refused_by_the_mail_server']};"
        f" SMS {result['sms_received']} (lost {result['sms_lost']}, the same text twice"
        f" {result['sms_duplicates']}, refused {result['sms_refused']});"
        f" wall {result['wall_s']} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
