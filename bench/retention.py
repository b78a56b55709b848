"""Retention benchmark (issue 14, item 4): one pruning pass over 90 days of a 10,000-check
portal's rows, with the event loop's stalls measured while it runs.

The database is filled directly (not through the daemon: 90 days cannot be waited for) with
what the daemon would have written, ending at an injected "now" (5 December 2026 09:00, Hanoi):

* ``state_changes``: every one of the ``--checks`` systems (one check each) changes state
  ``--changes-per-day`` times a day (default 4: two short outages a day, every system, every
  day: far more than a real portal, where most systems do not change for weeks), at random
  times; ``system_state`` its last;
* ``outbox``: ``--outbox-per-day`` notifications a day (default 10,000), 97 % sent, 2.9 % failed,
  0.1 % still pending (which must survive);
* ``inbox``: ``--inbox-per-day`` messages a day (default 5,000), half read;
* PostgreSQL only: ``verdicts`` of ``--vantages`` vantages (default 3) for every check (98 %
  passing, flips spread over the 90 days) and their ``vantages`` beats.

Then the retention pass (:class:`monitor.retention.RetentionDesk`, the daemon's) runs once with
every period at ``--keep`` (default 30d; the state changes' cut is the start of the month
holding now - 30 d, 1 November: September and October go, after their report figures are
stored), ``--batch`` rows per transaction and ``--pause`` between batches, while a task
measures the loop's stalls: it sleeps 5 ms again and again and records how late it woke up.

Reported: rows before/after and pruned per kind, months stored, the pass's duration and
batches, the longest batch (the store's thread busy at once: other database work waits that
long at most), the loop's overshoot (max, p99, p50; goal: max < 50 ms), and the database's
size before, after the pass and after compaction (SQLite: the file; deleting only frees pages
inside it, ``VACUUM`` gives them back, and is timed; PostgreSQL: ``pg_database_size``, plain
``VACUUM`` makes room reusable without shrinking, ``VACUUM FULL`` shrinks, both timed).

Run: .venv/bin/python bench/retention.py [--backend sqlite|postgresql|both] [--checks 10000]
     [--days 90] [--changes-per-day 4] [--outbox-per-day 10000] [--inbox-per-day 5000]
     [--keep 30d] [--batch 500] [--pause 20ms] [--baseline 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from monitor.config.retention import KINDS, RetentionSettings  # noqa: E402
from monitor.dblocation import PostgresUrl  # noqa: E402
from monitor.pglocal import LocalPostgres  # noqa: E402
from monitor.retention import RetentionDesk  # noqa: E402
from monitor.store import Store  # noqa: E402

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = dt.datetime(2026, 12, 5, 9, 0, tzinfo=HANOI).timestamp()
DAY = 86400.0
TABLES = ("state_changes", "outbox", "inbox", "verdicts", "monthly_figures")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ----- the rows ----------------------------------------------------------------------------


def systems(checks: int) -> list[tuple[str, str]]:
    return [(f"agency-{i // 10:04d}", f"system-{i % 10}") for i in range(checks)]


def state_rows(args: argparse.Namespace, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Day by day (ids grow with time, as the daemon writes them), every system's changes."""
    start = NOW - args.days * DAY
    down = dict.fromkeys(systems(args.checks), False)
    for day in range(args.days):
        todays = []
        for key in down:
            for _ in range(args.changes_per_day):
                todays.append((start + day * DAY + rng.random() * DAY, key))
        todays.sort()
        for ts, (agency, system) in todays:
            old = "down" if down[(agency, system)] else "up"
            new = "up" if down[(agency, system)] else "down"
            down[(agency, system)] = not down[(agency, system)]
            reason = "connection refused" if new == "down" else "ok"
            yield (ts, agency, system, old, new, reason, "gw-1", None)


def outbox_rows(args: argparse.Namespace, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    start, n = NOW - args.days * DAY, 0
    text = "Hệ thống một cửa điện tử của Sở Tư pháp không truy cập được từ 08:15. " * 3
    for day in range(args.days):
        for _ in range(args.outbox_per_day):
            ts = start + day * DAY + rng.random() * DAY
            pick = rng.random()
            status = "sent" if pick < 0.97 else "failed" if pick < 0.999 else "pending"
            n += 1
            yield (
                f"k{n:09d}",
                "email",
                f"qtkt{n % 997}@so-{n % 63}.dvc.example",
                "Quản trị kỹ thuật",
                "[NPSP] Mất kết nối: Hệ thống một cửa điện tử",
                text,
                text[:150],
                "vi",
                "[]",
                status,
                1,
                ts,
                ts,
                ts + 2 if status == "sent" else None,
            )


def inbox_rows(args: argparse.Namespace, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    start, n = NOW - args.days * DAY, 0
    text = "Hệ thống một cửa điện tử của Sở Tư pháp đã hoạt động trở lại lúc 09:02. " * 3
    for day in range(args.days):
        for _ in range(args.inbox_per_day):
            ts = start + day * DAY + rng.random() * DAY
            n += 1
            read = ts + 600 if n % 2 else None
            yield (f"acct-{n % 500}", f"i{n:09d}", "[NPSP] Đã khôi phục", text, ts, read)


_STATE_COLUMNS = "ts, agency, system, old_state, new_state, reason, vantage, why"
_OUTBOX_COLUMNS = (
    "key, channel, address, person, subject, text, short, language, fallbacks, status,"
    " attempts, next_attempt_at, created_at, sent_at"
)
_INBOX_COLUMNS = "account, key, subject, text, created_at, read_at"


def fill_sqlite(path: Path, args: argparse.Namespace) -> None:
    rng = random.Random(14)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    for table, columns, rows in (
        ("state_changes", _STATE_COLUMNS, state_rows(args, rng)),
        ("outbox", _OUTBOX_COLUMNS, outbox_rows(args, rng)),
        ("inbox", _INBOX_COLUMNS, inbox_rows(args, rng)),
    ):
        marks = ", ".join("?" * len(columns.split(",")))
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        db.execute("COMMIT")
    db.execute(
        "INSERT INTO system_state (agency, system, state, since, reason)"
        " SELECT agency, system, new_state, MAX(ts), reason FROM state_changes"
        " GROUP BY agency, system"
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_postgres(url: str, password: str, args: argparse.Namespace) -> None:
    rng = random.Random(14)
    with psycopg.connect(url, password=password) as conn:
        for table, columns, rows in (
            ("state_changes", _STATE_COLUMNS, state_rows(args, rng)),
            ("outbox", _OUTBOX_COLUMNS, outbox_rows(args, rng)),
            ("inbox", _INBOX_COLUMNS, inbox_rows(args, rng)),
        ):
            with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.execute(
            "INSERT INTO system_state (agency, system, state, since, reason)"
            " SELECT DISTINCT ON (agency, system) agency, system, new_state, ts, reason"
            " FROM state_changes ORDER BY agency, system, ts DESC"
        )
        for v in range(args.vantages):
            conn.execute(
                "INSERT INTO vantages (vantage, holder, beat_at, started_at, canaries_ok, ready)"
                " VALUES (%s, %s, to_timestamp(%s), to_timestamp(%s), true, true)",
                (f"gw-{v + 1}", f"host-{v + 1}", NOW, NOW - args.days * DAY),
            )
        with (
            conn.cursor() as cur,
            cur.copy("COPY verdicts (vantage, check_key, level, reason, ts) FROM STDIN") as copy,
        ):
            for v in range(args.vantages):
                for agency, system in systems(args.checks):
                    level = 0 if rng.random() < 0.98 else 2
                    ts = NOW - rng.random() * args.days * DAY
                    copy.write_row((f"gw-{v + 1}", f"{agency}/{system}/http", level, "r", ts))
        conn.commit()
        conn.execute("ANALYZE")


# ----- the measurement ---------------------------------------------------------------------


async def counts(store: Store) -> dict[str, int]:
    out = {}
    for table in TABLES:
        if table == "verdicts" and not store.shared:
            continue
        out[table] = await store.transact(
            lambda db, t=table: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
        )
    out["outbox pending"] = await store.transact(
        lambda db: int(
            db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        )
    )
    return out


async def watch_loop(
    stalls: list[float],
    stop: asyncio.Event,
    worst: list[tuple[float, str]],
    doing: Any = lambda: "",
) -> None:
    """Sleep 5 ms again and again; note how late each wake-up was (and, for the worst, what
    the pass was doing)."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        late = time.perf_counter() - started - 0.005
        stalls.append(late)
        if late > 0.02:
            worst.append((round(late * 1000, 1), doing()))


class TimedStore:
    """The store as the desk sees it, each transaction timed (the store's thread busy)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.shared = store.shared
        self.took: list[float] = []

    async def transact(self, fn: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self.store.transact(fn)
        finally:
            self.took.append(time.perf_counter() - started)


async def prune(store: Store, settings: RetentionSettings, baseline: float) -> dict[str, Any]:
    idle: list[float] = []
    idle_worst: list[tuple[float, str]] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_loop(idle, stop, idle_worst))
    await asyncio.sleep(baseline)  # the machine's own jitter first, the loop idle
    stop.set()
    await watcher
    timed = TimedStore(store)
    desk = RetentionDesk(timed, lambda: settings)  # type: ignore[arg-type]
    stalls: list[float] = []
    worst: list[tuple[float, str]] = []
    stop = asyncio.Event()
    doing = lambda: "" if desk.last is None else f"{desk.last.step} #{desk.last.batches}"  # noqa: E731
    watcher = asyncio.create_task(watch_loop(stalls, stop, worst, doing))
    started = time.perf_counter()
    result = await desk.run(NOW)
    duration = time.perf_counter() - started
    stop.set()
    await watcher
    ordered = sorted(stalls)
    return {
        "pass_seconds": round(duration, 1),
        "batches": result.batches,
        "pruned": result.pruned,
        "months_stored": result.months,
        "longest_batch_ms": round(result.longest_batch * 1000, 1),
        "longest_batch_did": result.longest_step,
        "transaction_ms_p50_p99_max": [
            round(statistics.median(timed.took) * 1000, 1),
            round(sorted(timed.took)[int(len(timed.took) * 0.99)] * 1000, 1),
            round(max(timed.took) * 1000, 1),
        ],
        "transactions_over_100ms": sum(t > 0.1 for t in timed.took),
        "loop_samples": len(stalls),
        "loop_overshoot_max_ms": round(max(stalls) * 1000, 1),
        "loop_overshoot_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        "loop_overshoot_p50_ms": round(statistics.median(stalls) * 1000, 2),
        "loop_overshoots_over_50ms": sum(s > 0.05 for s in stalls),
        "loop_overshoots_over_20ms": sorted(worst, reverse=True)[:10],
        "idle_seconds": baseline,
        "idle_loop_overshoot_max_ms": round(max(idle) * 1000, 1),
        "idle_loop_overshoots_over_20ms": sorted(idle_worst, reverse=True)[:10],
    }


def mib(size: int) -> float:
    return round(size / 2**20, 1)


def sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def bench_sqlite(
    args: argparse.Namespace, settings: RetentionSettings, folder: Path
) -> dict[str, Any]:
    (folder / "sqlite").mkdir()
    path = folder / "sqlite" / "state.db"
    store = await Store.open(path)
    await store.close()  # the schema, migrated
    log("sqlite: filling")
    started = time.perf_counter()
    fill_sqlite(path, args)
    log(f"sqlite: filled in {time.perf_counter() - started:.0f} s")
    out: dict[str, Any] = {"backend": "sqlite", "size_before_mib": mib(sqlite_size(path))}
    store = await Store.open(path)
    try:
        out["rows_before"] = await counts(store)
        log(f"sqlite: {out['rows_before']}, {out['size_before_mib']} MiB; pruning")
        out.update(await prune(store, settings, args.baseline))
        out["rows_after"] = await counts(store)
    finally:
        await store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out["size_after_prune_mib"] = mib(sqlite_size(path))
    out["free_pages_after_prune"] = db.execute("PRAGMA freelist_count").fetchone()[0]
    started = time.perf_counter()
    db.execute("VACUUM")
    out["vacuum_seconds"] = round(time.perf_counter() - started, 1)
    db.close()
    out["size_after_vacuum_mib"] = mib(sqlite_size(path))
    return out


async def bench_postgres(
    args: argparse.Namespace, settings: RetentionSettings, folder: Path
) -> dict[str, Any]:
    pg = LocalPostgres(folder / "pg")
    pg.start_blocking()
    try:
        url = pg.create_database_blocking("retention")
        password = pg.password_file.read_text().strip()
        store = await Store.open(PostgresUrl(url), password=password)
        await store.close()
        log("postgresql: filling")
        started = time.perf_counter()
        fill_postgres(url, password, args)
        log(f"postgresql: filled in {time.perf_counter() - started:.0f} s")

        def size() -> int:
            with psycopg.connect(url, password=password, autocommit=True) as conn:
                return int(
                    conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
                )

        out: dict[str, Any] = {"backend": "postgresql", "size_before_mib": mib(size())}
        store = await Store.open(PostgresUrl(url), password=password)
        try:
            out["rows_before"] = await counts(store)
            log(f"postgresql: {out['rows_before']}, {out['size_before_mib']} MiB; pruning")
            out.update(await prune(store, settings, args.baseline))
            out["rows_after"] = await counts(store)
        finally:
            await store.close()
        out["size_after_prune_mib"] = mib(size())
        with psycopg.connect(url, password=password, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM")
            out["vacuum_seconds"] = round(time.perf_counter() - started, 1)
            out["size_after_vacuum_mib"] = mib(size())
            started = time.perf_counter()
            conn.execute("VACUUM FULL")
            out["vacuum_full_seconds"] = round(time.perf_counter() - started, 1)
        out["size_after_vacuum_full_mib"] = mib(size())
        return out
    finally:
        pg.stop_blocking()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--changes-per-day", type=int, default=4)
    parser.add_argument("--outbox-per-day", type=int, default=10_000)
    parser.add_argument("--inbox-per-day", type=int, default=5_000)
    parser.add_argument("--vantages", type=int, default=3)
    parser.add_argument("--keep", default="30d")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pause", default="20ms")
    parser.add_argument(
        "--baseline", type=float, default=30.0, help="seconds the idle loop is watched first"
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    settings = RetentionSettings.model_validate(
        {**dict.fromkeys(KINDS, args.keep), "batch_size": args.batch, "pause": args.pause}
    )
    header = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    log(json.dumps(header))
    folder = Path(tempfile.mkdtemp(prefix="npsp-retention-"))
    folder.chmod(0o755)  # PostgreSQL's user must pass through
    results = []
    try:
        backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
        for backend in backends:
            run = bench_sqlite if backend == "sqlite" else bench_postgres
            result = asyncio.run(run(args, settings, folder))
            log(json.dumps(result, indent=1, ensure_ascii=False))
            results.append(result)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
    if args.json is not None:
        args.json.write_text(json.dumps({**header, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
