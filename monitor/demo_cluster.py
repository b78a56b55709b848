"""``npsp-monitor demo --vantages N``: N gateway hosts on one local PostgreSQL, the same simulated
fleet and sinks as the single-host demo (:mod:`monitor.demo`), and a leader kill to watch.

It starts a throwaway PostgreSQL the way the tests do (:mod:`monitor.pglocal`: ``initdb`` in a
temporary folder, 127.0.0.1 only), writes one config per host (``gw-1``… on consecutive ports),
runs each daemon as a child process with its log lines prefixed by its vantage, and after
``kill_leader_after`` seconds kills the leader with SIGKILL: another host takes over within
``cluster.failover_after`` and sends what was pending; the killed host is started again as a
follower. Nothing leaves 127.0.0.1.

A path cut seen by one vantage is simulated: ``gw-2``'s copy of the registry aims one healthy
system's checks at a port where nothing listens, which is how a cut route looks from there.
The others still reach it, so it is a path problem: after ``path_notice_after`` the leader tells
the operations team once ("… chỉ từ điểm đo gw-2"), and the agency hears nothing. (A real cut,
in a network namespace, needs root: ``tests/test_cluster_paths.py`` shows it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from .app import StartupError
from .config import load_config
from .dblocation import PostgresUrl
from .demo import credential, demo_account, demo_config, record_maintenance
from .demo_fleet import Fleet
from .demo_sinks import DEMO_TOKEN, DEMO_WEBHOOK_KEY, MailSink, SmsSink, WebhookSink
from .pglocal import LocalPostgres, find_bindir
from .store import Store

CLUSTER = {
    "failover_after": "6s",
    "beat_interval": "500ms",
    "vote_stale_after": "3s",
    "path_notice_after": "10s",
}


class _Host:
    def __init__(self, vantage: str, port: int, config: Path) -> None:
        self.vantage, self.port, self.config = vantage, port, config
        self.process: asyncio.subprocess.Process | None = None
        self.relay: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "-c", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.relay = asyncio.create_task(self._relay(self.process))

    async def _relay(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            print(f"[{self.vantage}] {line.decode('utf-8', 'replace').rstrip()}", flush=True)

    async def leads(self, session: aiohttp.ClientSession) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/metrics"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                return "\nnpsp_leader 1" in await response.text()
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 30)
        self.kill()
        if self.relay is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self.relay, 5)


async def _leader(hosts: list[_Host], session: aiohttp.ClientSession, wait: float) -> _Host:
    deadline = time.monotonic() + wait
    while True:
        for host in hosts:
            if await host.leads(session):
                return host
        if time.monotonic() > deadline:
            raise StartupError("no host took the lead in time (see the hosts' lines above)")
        await asyncio.sleep(0.2)


async def run_demo_cluster(
    vantages: int, port: int, duration: float | None, kill_leader_after: float | None
) -> None:
    """Run ``vantages`` daemons on one local PostgreSQL until interrupted (or ``duration``)."""
    if find_bindir() is None:
        raise StartupError(
            "the cluster demo needs PostgreSQL's server programs (Debian: apt-get install"
            " postgresql; or PG_BINDIR=/path/to/bin)"
        )
    with tempfile.TemporaryDirectory(prefix="npsp-demo-cluster-") as folder:
        state_dir = Path(folder)
        server = LocalPostgres()
        await server.start()
        fleet = Fleet(state_dir)
        mail, sms, webhook = MailSink(state_dir), SmsSink(state_dir), WebhookSink(state_dir)
        hosts: list[_Host] = []
        cut: str | None = None
        try:
            await fleet.start()
            mail.start()
            await sms.start()
            await webhook.start()
            url = await server.create_database("npsp_demo")
            token_file = credential(state_dir / "twilio-token", DEMO_TOKEN)
            webhook_key = credential(state_dir / "webhook-hue-key", DEMO_WEBHOOK_KEY)
            for i in range(vantages):
                vantage = f"gw-{i + 1}"
                config: dict[str, Any] = demo_config(
                    fleet,
                    port + i,
                    state_dir / "unused",
                    mail,
                    sms,
                    token_file,
                    webhook,
                    webhook_key,
                )
                if vantage == "gw-2":
                    cut = cut_path(config, fleet)
                config.update(
                    vantage=vantage,
                    state_db=url,
                    state_db_password_file=str(server.password_file),
                    cluster=CLUSTER,
                )
                path = state_dir / f"{vantage}.yaml"
                path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
                hosts.append(_Host(vantage, port + i, path))
            loaded = load_config(hosts[0].config)
            store = await Store.open(
                PostgresUrl(url), password=server.password_file.read_text().strip()
            )
            try:
                token = await demo_account(store)
                await record_maintenance(store, loaded)
            finally:
                await store.close()
            for host in hosts:
                await host.start()
            await _run(hosts, state_dir, token, duration, kill_leader_after, cut)
        finally:
            await asyncio.gather(*(h.stop() for h in hosts))
            await webhook.stop()
            await sms.stop()
            mail.stop()
            await fleet.stop()
            await server.stop()


async def _run(
    hosts: list[_Host],
    state_dir: Path,
    token: str,
    duration: float | None,
    kill_leader_after: float | None,
    cut: str | None,
) -> None:
    began = time.monotonic()
    async with aiohttp.ClientSession() as session:
        leader = await _leader(hosts, session, 60)
        pages = "\n".join(
            f"  {h.vantage:<5} http://127.0.0.1:{h.port}/   metrics http://127.0.0.1:{h.port}/metrics"
            for h in hosts
        )
        print(
            f"""
npsp-monitor cluster demo: {len(hosts)} gateway hosts on one local PostgreSQL, the simulated
fleet on 127.0.0.1.
{pages}
  leader now         {leader.vantage} (npsp_leader 1 on its /metrics)
  API token (demo)   {token}
  e-mails sent       {state_dir}/mail/*.eml   SMS sent {state_dir}/sms.jsonl
Every host probes every system; a system is DOWN when a majority of the voting hosts see it
fail, and the messages say "thấy từ 3/3 điểm đo". Only the leader sends. """
            + (
                f"gw-2's path to {cut} is cut (simulated): the others still reach it, so in"
                f" {CLUSTER['path_notice_after']} the operations team gets one path notice and"
                " the agency nothing. "
                if cut is not None
                else ""
            )
            + (
                f"In {kill_leader_after:g} s the leader is killed (kill -9): watch another host"
                " take over and send what was pending."
                if kill_leader_after is not None
                else ""
            ),
            flush=True,
        )
        if kill_leader_after is not None:
            await asyncio.sleep(max(0.0, kill_leader_after - (time.monotonic() - began)))
            leader = await _leader(hosts, session, 30)
            leader.kill()
            killed = time.monotonic()
            print(f"*** killed the leader {leader.vantage} with SIGKILL", flush=True)
            others = [h for h in hosts if h is not leader]
            successor = await _leader(others, session, 60)
            print(
                f"*** {successor.vantage} took over after {time.monotonic() - killed:.1f} s;"
                f" {leader.vantage} restarts as a follower",
                flush=True,
            )
            await leader.start()
        left = None if duration is None else max(0.0, duration - (time.monotonic() - began))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), left)


def cut_path(config: dict[str, Any], fleet: Fleet) -> str | None:
    """Aim the checks of the first system whose every check reaches a healthy demo server at
    the port where nothing listens (this host's path to it is cut); its key, or None."""
    healthy = {fleet.ports[n] for n in ("https", "http", "status-api")}
    dead = fleet.ports["dead"]
    for agency in config["agencies"]:
        for system in agency["systems"]:
            checks = system["checks"]
            ports = [_port(c) for c in checks]
            if checks and all(p in healthy for p in ports):
                text = json.dumps(checks)
                for port in set(ports):
                    text = text.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{dead}/")
                system["checks"] = [
                    {**c, "port": dead} if "port" in c else c for c in json.loads(text)
                ]
                return f"{agency['id']}/{system['id']}"
    return None


def _port(check: dict[str, Any]) -> int | None:
    if "port" in check:
        return int(check["port"])
    url = str(check.get("url", ""))
    rest = url.partition("://127.0.0.1:")[2]
    return int(rest.partition("/")[0]) if rest else None
