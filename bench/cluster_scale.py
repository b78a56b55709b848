"""Cluster scale benchmark (issue 13): N gateway hosts x C checks on one local PostgreSQL.

Three daemons (``python -m monitor run``, tests/cluster_hosts.py) share a throwaway PostgreSQL
(monitor/pglocal.py); beside them runs ONE more daemon with the same config as a single host on
SQLite (no ``cluster:``, ``state_db`` a file). Targets: two nginx instances from bench/nginx.conf
(one worker each, pinned to CPU 1, ports of their own): A serves most checks, B the checks of a
subset of systems, so that B can be taken down alone. The measured cluster host (the first
vantage) and the single host are pinned to CPU 0 (taskset); the other vantages to CPU 1.

Phase "mixed" (C checks, 1/3 each tcp/http/https, as bench/gen_config.py lays them out: 100
agencies, systems of 10 checks, each agency one e-mail contact, a local SMTP sink):

1. steady window (everything up): the database's xact_commit / tup_inserted / tup_updated /
   tup_deleted deltas (pg_stat_database, and per table from pg_stat_user_tables) and
   PostgreSQL's CPU (utime+stime of the postmaster and its children, /proc) over the window;
   per-probe CPU of the measured cluster host and of the single host over the same window;
2. subset down (nginx B stopped): per system that goes DOWN, from its ``state_changes`` row
   (ts: when the leader's state machine decided) to the first ``outbox`` row (created_at) to
   that agency's contact naming the system; and from the first vantage's failing verdict
   (``verdicts.ts``) on one of its checks to the same outbox row; ``group_wait: 1ms`` (the
   least: 0 is refused);
3. storm (nginx A stopped too: every target down): writes/s and PostgreSQL CPU over a window of
   ``--storm`` seconds from the moment the targets went down (default 3 intervals + 15 s: the
   verdict flips, then the state changes and the digests), and the same latencies.

Phases per kind (``--kinds``, default tcp,http,https): C checks of that kind on every host;
``--reps`` windows of ``--window`` s, each measuring the cluster host and the single host over
the same window (both running all along, so they see the same machine): CPU from
/proc/PID/stat (utime+stime) / delta of ``npsp_probes_total`` scraped just outside the window.

Every window records the machine's load: busy CPUs from /proc/stat and "others" = busy minus
the CPU of every process this bench started (daemons, PostgreSQL, nginx, itself).

Run: .venv/bin/python bench/cluster_scale.py [--checks 10000] [--hosts 3] [--interval 60]
     [--window 60] [--storm 60] [--subset 100] [--kinds tcp,http,https] [--reps 1] [--keep]
Needs PostgreSQL (/usr/lib/postgresql/*/bin or $PG_BINDIR), nginx, taskset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
import yaml  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from monitor.pglocal import LocalPostgres  # noqa: E402
from tests.cluster_hosts import Host, Mailbox  # noqa: E402
from tests.peers import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
OPS = "ops@vpcp.dvc.example"
SMTP = {"host": "127.0.0.1", "security": "none", "from_addr": "giamsat@npsp.dvc.example"}
AGENCIES = 100
PER_SYSTEM = 10
SYSTEM_IN_TEXT = re.compile(r"\((bench-\d+/s-\d+-\d+)\)")
WARMUP = 10.0  # s after every host has probed every check once


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ----- /proc ------------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_cpu(pid: int, children: bool = False) -> float:
    """utime+stime (and the waited-for children's, with ``children``) in seconds; 0 if gone."""
    try:
        fields = stat_fields(pid)
    except (OSError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.parent.name))
    return found


def tree_cpu(pid: int | None) -> float:
    """CPU of a process and its live children, plus its reaped children (cutime/cstime)."""
    if pid is None:
        return 0.0
    return proc_cpu(pid, children=True) + sum(proc_cpu(c) for c in children_of(pid))


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of every CPU, monotonic time): wall - idle - iowait - steal."""
    with open("/proc/stat") as f:
        first = f.readline().split()
    values = [int(v) / TICK for v in first[1:9]]
    idle, iowait, steal = values[3], values[4], values[7]
    return sum(values) - idle - iowait - steal, time.monotonic()


def cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text()
    found = re.search(r"model name\s*:\s*(.*)", text)
    return found.group(1).strip() if found else "?"


# ----- targets ----------------------------------------------------------------------------------


class Nginx:
    """bench/nginx.conf with ports of its own, one worker on CPU 1."""

    def __init__(self, folder: Path, certs: Path) -> None:
        self.folder = folder
        self.http_port = free_port()
        self.https_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("www", "tmp", "logs"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "www" / "index.html").write_text("ok\n")
        for name in ("server.pem", "server.key"):
            shutil.copy(certs / name, folder / name)
        conf = (ROOT / "bench" / "nginx.conf").read_text()
        conf = conf.replace("127.0.0.1:18080", f"127.0.0.1:{self.http_port}")
        conf = conf.replace("127.0.0.1:18443", f"127.0.0.1:{self.https_port}")
        (folder / "nginx.conf").write_text(conf)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["taskset", "-c", "1", "nginx", "-p", f"{self.folder}/", "-c", "nginx.conf"],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "logs" / "nginx.out").open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.http_port), 1).close()
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not start ({self.folder}/logs)")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: the worker closes its listeners
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None


# ----- configs ----------------------------------------------------------------------------------


def check(kind: str, cid: str, target: Nginx, ca: Path) -> dict[str, Any]:
    tls = {"ca_file": str(ca), "server_name": "localhost"}
    if kind == "tcp":
        return {"id": cid, "kind": "tcp", "host": "127.0.0.1", "port": target.http_port}
    if kind == "http":
        return {"id": cid, "kind": "http", "url": f"http://127.0.0.1:{target.http_port}/"}
    if kind == "https":
        url = f"https://127.0.0.1:{target.https_port}/"
        return {"id": cid, "kind": "http", "url": url, "tls": tls}
    raise SystemExit(f"unknown kind {kind}")


def agencies(
    checks: int, kinds: list[str], subset: int, main: Nginx, spare: Nginx, ca: Path
) -> tuple[list[dict[str, Any]], set[str]]:
    """bench/gen_config.py's layout (100 agencies, systems of up to 10 checks; check i of kind
    i mod len(kinds)), each agency with one e-mail contact; the first ``subset`` systems in
    round-robin order over the agencies (system 0 of every agency, then system 1, ...) probe
    ``spare`` instead of ``main``. Returns the agencies and the subset's system keys."""
    per_agency = max(1, math.ceil(checks / (AGENCIES * PER_SYSTEM)))
    per_system = math.ceil(checks / (AGENCIES * per_agency))
    out: list[dict[str, Any]] = []
    subset_keys: set[str] = set()
    n = 0
    for ag in range(AGENCIES):
        if n >= checks:
            break
        systems = []
        for sy in range(per_agency):
            if n >= checks:
                break
            sid = f"s-{ag:03d}-{sy:02d}"
            in_subset = sy * AGENCIES + ag < subset
            if in_subset:
                subset_keys.add(f"bench-{ag:03d}/{sid}")
            items = []
            for c in range(per_system):
                if n >= checks:
                    break
                kind = kinds[n % len(kinds)]
                target = spare if in_subset else main
                items.append(check(kind, f"c{c:02d}-{kind}", target, ca))
                n += 1
            systems.append(
                {"id": sid, "kind": "other", "name": f"s {ag:03d} {sy:02d}", "checks": items}
            )
        out.append(
            {
                "id": f"bench-{ag:03d}",
                "kind": "ministry",
                "name_vi": f"Bench {ag:03d}",
                "name_en": f"Bench {ag:03d}",
                "code": f"B{ag:03d}",
                "contacts": [
                    {
                        "name": f"KT {ag:03d}",
                        "role": "technical-admin",
                        "email": f"kt@bench-{ag:03d}.dvc.example",
                        "channels": ["email"],
                    }
                ],
                "systems": systems,
            }
        )
    return out, subset_keys


def write_config(
    path: Path,
    *,
    vantage: str,
    port: int,
    state_db: str,
    password_file: Path | None,
    cluster: bool,
    interval: float,
    group_wait: str,
    group_interval: str | None,
    smtp_port: int,
    agency_list: list[dict[str, Any]],
) -> None:
    data: dict[str, Any] = {
        "vantage": vantage,
        "listen": f"127.0.0.1:{port}",
        "state_db": state_db,
        # as bench/gen_config.py
        "scheduler": {"max_concurrency": 1000, "max_per_host": 1000},
        "defaults": {
            "interval": f"{interval:g}s",
            "timeout": "5s",
            "failure_threshold": 3,
            "success_threshold": 1,
        },
        "alerting": {
            "operations": [{"name": "VPCP", "email": OPS, "channels": ["email"]}],
            "group_wait": group_wait,  # a deliberate delay: the least allowed (> 0) by default
            **({"group_interval": group_interval} if group_interval else {}),
        },
        "channels": {"email": {**SMTP, "port": smtp_port}},
        "agencies": agency_list,
    }
    if cluster:
        assert password_file is not None
        data["state_db_password_file"] = str(password_file)
        data["cluster"] = {}  # the defaults
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


# ----- the database -----------------------------------------------------------------------------


@dataclass
class Db:
    url: str
    password: str
    name: str

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, password=self.password, autocommit=True)

    def stats(self) -> dict[str, Any]:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted"
                " FROM pg_stat_database WHERE datname = %s",
                (self.name,),
            ).fetchone()
            tables = conn.execute(
                "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            ).fetchall()
        assert row is not None
        keys = ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted")
        return {
            **dict(zip(keys, map(int, row), strict=True)),
            "tables": {str(t): int(n) for t, n in tables},
        }

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()


def postmaster_pid(pg: LocalPostgres) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((pg.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    return None


# ----- measuring --------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    pg: LocalPostgres
    folder: Path
    certs: Path
    main: Nginx
    spare: Nginx
    smtp_port: int
    group: list[Host] = field(default_factory=list)
    single: Host | None = None
    db: Db | None = None
    single_db: Path | None = None

    def our_cpu(self) -> float:
        """CPU of everything this bench started, and of itself."""
        total = sum(proc_cpu(h.process.pid) for h in self.all_hosts() if h.running and h.process)
        total += tree_cpu(postmaster_pid(self.pg))
        total += tree_cpu(self.main.pid) + tree_cpu(self.spare.pid)
        return total + proc_cpu(os.getpid(), children=True)

    def all_hosts(self) -> list[Host]:
        return [*self.group, *([self.single] if self.single else [])]

    async def window(self, seconds: float, measure_probes: bool = True) -> dict[str, Any]:
        """One measured window: the database's writes and CPU, the measured hosts' CPU per
        probe (scrapes just outside), the machine's load."""
        assert self.db is not None
        assert self.single is not None
        measured = [self.group[0], self.single]
        m0 = await asyncio.gather(*(h.metrics() for h in measured)) if measure_probes else []
        s0 = await asyncio.to_thread(self.db.stats)
        pm = postmaster_pid(self.pg)
        pg0 = tree_cpu(pm)
        h0 = [proc_cpu(h.process.pid) for h in measured if h.process]
        others0 = [proc_cpu(h.process.pid) for h in self.group[1:] if h.process]
        ours0 = self.our_cpu()
        busy0, t0 = machine_busy()
        await asyncio.sleep(seconds)
        busy1, t1 = machine_busy()
        ours1 = self.our_cpu()
        h1 = [proc_cpu(h.process.pid) for h in measured if h.process]
        others1 = [proc_cpu(h.process.pid) for h in self.group[1:] if h.process]
        pg1 = tree_cpu(pm)
        s1 = await asyncio.to_thread(self.db.stats)
        m1 = await asyncio.gather(*(h.metrics() for h in measured)) if measure_probes else []
        wall = t1 - t0
        d = {
            k: s1[k] - s0[k] for k in ("xact_commit", "tup_inserted", "tup_updated", "tup_deleted")
        }
        tables = {t: n - s0["tables"].get(t, 0) for t, n in s1["tables"].items()}
        out: dict[str, Any] = {
            "window_s": round(wall, 2),
            "commits_per_s": round(d["xact_commit"] / wall, 1),
            "rows_written_per_s": round(
                (d["tup_inserted"] + d["tup_updated"] + d["tup_deleted"]) / wall, 1
            ),
            "inserted_per_s": round(d["tup_inserted"] / wall, 1),
            "updated_per_s": round(d["tup_updated"] / wall, 1),
            "deleted_per_s": round(d["tup_deleted"] / wall, 1),
            "rows_per_s_by_table": {
                t: round(n / wall, 1) for t, n in sorted(tables.items(), key=lambda x: -x[1]) if n
            },
            "postgres_cpu_fraction": round((pg1 - pg0) / wall, 3),
            "other_vantages_cpu_fraction": [
                round((b - a) / wall, 3) for a, b in zip(others0, others1, strict=True)
            ],
            "machine_busy_cpus": round((busy1 - busy0) / wall, 2),
            "others_busy_cpus": round(((busy1 - busy0) - (ours1 - ours0)) / wall, 2),
        }
        if measure_probes:
            for name, host, a, b, before, after in zip(
                ("cluster", "single"), measured, h0, h1, m0, m1, strict=True
            ):
                probes = after.get("npsp_probes_total", math.nan) - before.get(
                    "npsp_probes_total", math.nan
                )
                cpu = b - a
                out[name] = {
                    "host": host.vantage,
                    "cpu_s": round(cpu, 2),
                    "cpu_fraction": round(cpu / wall, 3),
                    "probes": probes,
                    "probes_per_s": round(probes / wall, 1),
                    "us_per_probe": round(1e6 * cpu / probes, 1) if probes else None,
                    "success": success(after),
                    "leader": after.get("npsp_leader"),
                }
            c, s = out["cluster"]["us_per_probe"], out["single"]["us_per_probe"]
            out["ratio_cluster_over_single"] = round(c / s, 3) if c and s else None
        return out

    async def start_phase(
        self, name: str, kinds: list[str], subset: int, interval: float
    ) -> set[str]:
        a = self.args
        dbname = f"bench_{name}"
        url = await self.pg.create_database(dbname)
        self.db = Db(url, self.pg.password, dbname)
        folder = self.folder / name
        folder.mkdir()
        ca = self.certs / "ca.pem"
        agency_list, subset_keys = agencies(a.checks, kinds, subset, self.main, self.spare, ca)
        same: dict[str, Any] = {
            "interval": interval,
            "group_wait": a.group_wait,
            "group_interval": a.group_interval,
            "smtp_port": self.smtp_port,
            "agency_list": agency_list,
        }
        self.group = []
        for i in range(a.hosts):
            vantage = f"gw-{i + 1}"
            port = free_port()
            path = folder / f"{vantage}.yaml"
            write_config(
                path,
                vantage=vantage,
                port=port,
                state_db=url,
                password_file=self.pg.password_file,
                cluster=True,
                **same,
            )
            cpu = "0" if i == 0 else "1"
            self.group.append(
                Host(vantage, port, path, folder / f"{vantage}.log", prefix=["taskset", "-c", cpu])
            )
        port = free_port()
        path = folder / "single.yaml"
        write_config(
            path,
            vantage="single",
            port=port,
            state_db=str(folder / "single.db"),
            password_file=None,
            cluster=False,
            **same,
        )
        self.single_db = folder / "single.db"
        self.single = Host(
            "single", port, path, folder / "single.log", prefix=["taskset", "-c", "0"]
        )
        log(
            f"phase {name}: starting {a.hosts} cluster hosts + 1 single host, {a.checks} checks"
            f" each ({','.join(kinds)}), interval {interval:g} s"
        )
        started = time.monotonic()
        for host in self.all_hosts():  # one at a time: each parses a large config
            await host.start(timeout=180)
        log(f"  up after {time.monotonic() - started:.0f} s")

        async def voting() -> bool:
            v = await self.group[0].metric("npsp_vantages_voting")
            return bool(v == a.hosts)

        single = self.single

        async def single_ready() -> bool:
            return bool((await single.metric("npsp_probes_total") or 0) >= a.checks)

        await until(voting, interval * 2 + 60, "every vantage voting")
        await until(single_ready, interval * 2 + 60, "the single host probing every check")
        # Voting means every check was probed once: the PENDING→UP changes are written.
        log(
            f"  {a.hosts} vantages voting and the single host through its first round after"
            f" {time.monotonic() - started:.0f} s; warm-up {WARMUP:g} s"
        )
        await asyncio.sleep(WARMUP)
        return subset_keys

    async def stop_phase(self) -> None:
        await asyncio.gather(*(h.stop() for h in self.all_hosts()))
        tracebacks = sum(
            h.log.read_text(errors="replace").count("Traceback")
            for h in self.all_hosts()
            if h.log.exists()
        )
        if tracebacks:
            log(f"  WARNING: {tracebacks} tracebacks in the daemons' logs")
        self.group, self.single = [], None

    def latencies(self, since: float, until_ts: float, systems: set[str]) -> dict[str, Any]:
        """State change (and first failing verdict) → first outbox row naming the system to its
        agency's contact, for the DOWN changes of ``systems`` in [since, until_ts)."""
        assert self.db is not None
        changes = self.db.rows(
            "SELECT agency, system, ts FROM state_changes"
            " WHERE new_state = 'down' AND ts >= %s AND ts < %s ORDER BY ts",
            since,
            until_ts,
        )
        first_change: dict[str, float] = {}
        for agency, system, ts in changes:
            first_change.setdefault(f"{agency}/{system}", float(ts))
        outbox = self.db.rows(
            "SELECT address, text, created_at FROM outbox WHERE created_at >= %s"
            " AND channel = 'email' ORDER BY created_at",
            since,
        )
        first_out: dict[str, float] = {}
        for address, text, created in outbox:
            if address == OPS:
                continue
            for key in SYSTEM_IN_TEXT.findall(text):
                if key.split("/")[0] in address:
                    first_out.setdefault(key, float(created))
        verdicts = self.db.rows(
            "SELECT check_key, ts FROM verdicts WHERE level = 2 AND ts >= %s", since
        )
        first_flip: dict[str, float] = {}
        for check_key, ts in verdicts:
            key = "/".join(str(check_key).split("/")[:2])
            first_flip[key] = min(first_flip.get(key, math.inf), float(ts))
        wanted = [k for k in first_change if k in systems]
        to_out = [first_out[k] - first_change[k] for k in wanted if k in first_out]
        flip_out = [
            first_out[k] - first_flip[k] for k in wanted if k in first_out and k in first_flip
        ]
        flip_change = [first_change[k] - first_flip[k] for k in wanted if k in first_flip]
        single_change: dict[str, float] = {}
        if self.single_db is not None and self.single_db.exists():
            with contextlib.closing(sqlite3.connect(self.single_db)) as conn:
                for agency, system, ts in conn.execute(
                    "SELECT agency, system, ts FROM state_changes"
                    " WHERE new_state = 'down' AND ts >= ? ORDER BY ts",
                    (since,),
                ):
                    single_change.setdefault(f"{agency}/{system}", float(ts))
        return {
            "systems": len(systems),
            "down_changes": len(wanted),
            "with_outbox_row": len(to_out),
            "change_to_outbox_s": summary(to_out),
            "first_verdict_to_outbox_s": summary(flip_out),
            "first_verdict_to_change_s": summary(flip_change),
            # from the moment the bench stopped the targets: the cluster's leader / the single
            # host (SQLite) deciding DOWN (probe interval, failure_threshold, rechecks, quorum)
            "targets_down_to_change_s": summary([first_change[k] - since for k in wanted]),
            "single_host_targets_down_to_change_s": summary(
                [single_change[k] - since for k in systems if k in single_change]
            ),
            "outbox_rows": len(outbox),
        }

    async def wait_down(self, systems: set[str], since: float, within: float) -> float:
        """Until every system of ``systems`` has a DOWN change and an outbox row (bounded)."""
        assert self.db is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = await asyncio.to_thread(self.latencies, since, math.inf, systems)
            if got["with_outbox_row"] >= len(systems):
                break
            await asyncio.sleep(2)
        return time.monotonic() - (deadline - within)


def success(metrics: dict[str, float]) -> float | None:
    values = [v for k, v in metrics.items() if k.startswith("npsp_probe_success{")]
    return round(sum(values) / len(values), 4) if values else None


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)

    return {
        "n": len(values),
        "min": round(ordered[0], 3),
        "p50": pct(0.5),
        "p99": pct(0.99),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(values), 3),
    }


async def until(condition: Any, within: float, what: str, every: float = 1.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


# ----- the run ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, pg: LocalPostgres, folder: Path) -> dict[str, Any]:
    certs = folder / "certs"
    main, spare = Nginx(folder / "nginx-a", certs), Nginx(folder / "nginx-b", certs)
    controller = Controller(Mailbox(), hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    b = Bench(args, pg, folder, certs, main, spare, controller.port)
    result: dict[str, Any] = {}
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # stop everything on the way out
        loop.add_signal_handler(signum, task.cancel)
    try:
        if not args.skip_mixed:
            main.start()
            spare.start()
            subset = await b.start_phase(
                "mixed", ["tcp", "http", "https"], args.subset, args.interval
            )
            try:
                log(f"  steady window {args.window:g} s")
                result["steady"] = await b.window(args.window)
                log(f"  steady: {brief(result['steady'])}")
                assert b.db is not None
                t0 = time.time()
                spare.stop()
                log(f"  subset down: {len(subset)} systems ({args.subset * PER_SYSTEM} checks)")
                waited = await b.wait_down(subset, t0, args.interval * 3 + 60)
                result["subset"] = await asyncio.to_thread(b.latencies, t0, math.inf, subset)
                result["subset"]["waited_s"] = round(waited, 1)
                log(f"  subset: {json.dumps(result['subset'])}")
                t1 = time.time()
                main.stop()
                log(f"  storm: every target down; window {args.storm:g} s")
                result["storm"] = await b.window(args.storm)
                log(f"  storm: {brief(result['storm'])}")
                everything = {
                    f"{a['id']}/{s['id']}"
                    for a in agencies(args.checks, ["tcp"], 0, main, spare, certs)[0]
                    for s in a["systems"]
                }
                rest = everything - subset
                waited = await b.wait_down(rest, t1, args.interval * 3 + 60)
                result["storm_latency"] = await asyncio.to_thread(b.latencies, t1, math.inf, rest)
                result["storm_latency"]["waited_s"] = round(waited, 1)
                log(f"  storm latency: {json.dumps(result['storm_latency'])}")
                result["after_storm"] = await b.window(min(args.window, 30), measure_probes=False)
                log(f"  after the storm (all down, settled): {brief(result['after_storm'])}")
            finally:
                await b.stop_phase()
                main.stop()
                spare.stop()
        for kind in args.kinds.split(",") if args.kinds else []:
            main.start()
            spare.start()
            try:
                await b.start_phase(kind, [kind], 0, kind_interval(args, kind))
                windows, exporter = [], []
                for rep in range(args.reps):
                    w = await b.window(args.window)
                    log(f"  {kind} window {rep + 1}: {brief(w)}")
                    windows.append(w)
                    if args.exporter:  # interleaved, the hosts still running: the same machine
                        bb = await blackbox(args, kind, main, certs, folder, rep)
                        log(
                            f"  {kind} blackbox_exporter {rep + 1}: {bb.get('us_per_probe')}"
                            f" µs/probe ({bb.get('probes')} probes, success"
                            f" {bb.get('success_fraction')})"
                        )
                        exporter.append(bb)
                result[f"kind_{kind}"] = windows
                if exporter:
                    result[f"blackbox_{kind}"] = exporter
            finally:
                await b.stop_phase()
                main.stop()
                spare.stop()
    finally:
        await b.stop_phase()
        main.stop()
        spare.stop()
        await asyncio.to_thread(controller.stop)
    return result


def kind_interval(args: argparse.Namespace, kind: str) -> float:
    return float(args.https_interval if kind == "https" and args.https_interval else args.interval)


MODULES = {"tcp": "tcp_connect", "http": "http_2xx", "https": "https"}


async def blackbox(
    args: argparse.Namespace, kind: str, target: Nginx, certs: Path, folder: Path, rep: int
) -> dict[str, Any]:
    """bench/measure.py blackbox: the exporter pinned to CPU 0 (like the measured hosts),
    driven from CPU 1 at one host's rate (checks / interval) for ``--window`` s."""
    config = folder / "blackbox.yml"
    text = (ROOT / "bench" / "blackbox.yml").read_text()
    config.write_text(text.replace("/tmp/npsp-bench/ca.pem", str(certs / "ca.pem")))
    urls = {
        "tcp": f"127.0.0.1:{target.http_port}",
        "http": f"http://127.0.0.1:{target.http_port}/",
        "https": f"https://127.0.0.1:{target.https_port}/",
    }
    out = folder / f"blackbox-{kind}-{rep}.json"
    command = [
        "taskset", "-c", "1", sys.executable, str(ROOT / "bench" / "measure.py"), "blackbox",
        "--name", kind, "--module", MODULES[kind], "--target", urls[kind],
        "--rate", f"{args.checks / kind_interval(args, kind):g}", "--window", f"{args.window:g}",
        "--cpu", "0", "--quiet-wait", "0", "--listen", f"127.0.0.1:{free_port()}",
        "--bb-config", str(config), "--exporter", args.exporter, "--out", str(out),
    ]  # fmt: skip
    busy0, t0 = machine_busy()
    process = await asyncio.create_subprocess_exec(*command)
    await process.wait()
    busy1, t1 = machine_busy()
    if process.returncode != 0 or not out.exists():
        return {"error": f"measure.py blackbox exited with {process.returncode}"}
    data: dict[str, Any] = json.loads(out.read_text())
    keep = ("us_per_probe", "probes", "cpu_s", "window_s", "success_fraction", "probes_per_s")
    return {**{k: data.get(k) for k in keep},
            "machine_busy_cpus": round((busy1 - busy0) / (t1 - t0), 2)}  # fmt: skip


def brief(w: dict[str, Any]) -> str:
    parts = [
        f"{w['commits_per_s']} commits/s, {w['rows_written_per_s']} rows/s,"
        f" postgres {w['postgres_cpu_fraction']} CPU, machine {w['machine_busy_cpus']} busy"
        f" (others {w['others_busy_cpus']})"
    ]
    for name in ("cluster", "single"):
        if name in w:
            h = w[name]
            parts.append(
                f"{name} {h['us_per_probe']} µs/probe ({h['probes']:.0f} probes,"
                f" {h['cpu_fraction']} CPU, success {h['success']})"
            )
    if w.get("ratio_cluster_over_single"):
        parts.append(f"ratio {w['ratio_cluster_over_single']}")
    return "; ".join(parts)


def code_state() -> str:
    """The daemon's code measured: uncommitted changes under monitor/ probes/ notifiers/ (others
    work in this tree) and a digest of those sources, as bench/run.sh records it."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", "monitor", "probes", "notifiers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    digest = hashlib.sha256()
    for name in sorted(f for f in files if f.endswith(".py")):
        with contextlib.suppress(OSError):
            digest.update((ROOT / name).read_bytes())
    dirty = subprocess.run(
        ["git", "status", "--short", "--", "monitor", "probes", "notifiers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    return f"{digest.hexdigest()[:12]} dirty: {' '.join(d.strip() for d in dirty if d.strip())}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=10_000, help="checks per host")
    parser.add_argument("--hosts", type=int, default=3, help="cluster hosts (vantages)")
    parser.add_argument("--interval", type=float, default=60.0, help="probe interval, s")
    parser.add_argument(
        "--https-interval",
        type=float,
        default=120.0,
        help="probe interval of the https phase, s (4 daemons' TLS at 60 s saturate 2 CPUs)",
    )
    parser.add_argument("--window", type=float, default=60.0, help="measured window, s")
    parser.add_argument(
        "--storm", type=float, help="storm window from the targets' going down, s (3 intervals+15)"
    )
    parser.add_argument("--subset", type=int, default=100, help="systems taken down first")
    parser.add_argument("--kinds", default="tcp,http,https", help="per-kind phases ('' none)")
    parser.add_argument("--reps", type=int, default=1, help="windows per kind")
    parser.add_argument("--skip-mixed", action="store_true", help="only the per-kind phases")
    parser.add_argument(
        "--exporter",
        default=shutil.which("prometheus-blackbox-exporter"),
        help="blackbox_exporter binary, measured after each kind window ('' none)",
    )
    parser.add_argument("--group-wait", default="1ms", help="alerting.group_wait (> 0)")
    parser.add_argument(
        "--group-interval",
        help="alerting.group_interval (default: the product's, 5m): follow-ups to a recipient"
        " already told wait for it",
    )
    parser.add_argument("--out", type=Path, help="write the result as JSON there")
    parser.add_argument("--keep", action="store_true", help="keep the database, configs, logs")
    args = parser.parse_args()
    if args.storm is None:
        # DOWN after failure_threshold (3) failures at the interval and a recheck, plus up to
        # one interval more with the quorum: the storm's state changes fall within this
        args.storm = 3 * args.interval + 15
    for tool in ("nginx", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    header = {
        "command": " ".join(sys.argv),
        "commit": commit,
        "code_before": code_state(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "blackbox_exporter": shutil.which("prometheus-blackbox-exporter"),
    }
    log(json.dumps(header))
    base = Path(tempfile.mkdtemp(prefix="npsp-scale-"))
    base.chmod(0o755)  # the server's user must pass through to its folders
    pg = LocalPostgres(base / "pg")
    folder = base / "run"
    folder.mkdir()
    result: dict[str, Any] = {}
    ok = False
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "gen_certs.py"), str(folder / "certs")],
            check=True,
        )
        pg.start_blocking()
        result = asyncio.run(run(args, pg, folder))
        ok = True
    finally:
        if args.keep:
            log(f"kept: {base} (PostgreSQL stopped; data in {pg.datadir})")
            with contextlib.suppress(Exception):
                pg.stop_server_blocking()
            pg.stop_blocking()  # the folder was given: stop_blocking keeps it
        else:
            pg.stop_blocking()
            shutil.rmtree(base, ignore_errors=True)
    out = {**header, "code_after": code_state(), "ok": ok, **result}
    text = json.dumps(out, indent=1, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
