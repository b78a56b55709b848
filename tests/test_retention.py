"""Retention (issue 14, item 4): the pruning pass on both backends, on an injected clock.

Rows older than each period go and newer ones stay; outbox rows still to be sent never go;
a month's report figures are stored before any of its state changes is pruned, and a past
month's report is byte for byte the same before and after (JSON, CSV, HTML), including a month
whose only history is the state carried into it and one whose start lies inside a maintenance
window. The hand-made history is the reports' suite's (``tests/test_reports.py``) plus a
New Year's Eve.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import inbox_store
from monitor.app import Daemon
from monitor.config import Config, load_config
from monitor.config.retention import KINDS, RetentionSettings
from monitor.metrics import DaemonMetrics
from monitor.registry import Registry
from monitor.reports import build_report, render_csv, render_html, render_json
from monitor.reports import monthly as monthly_store
from monitor.reports.figures import month_bounds
from monitor.retention import PassResult, RetentionDesk
from monitor.retention import store as retention_store
from monitor.state import Event, State
from monitor.store import Store
from tests.conftest import StateLocation, TcpTarget
from tests.test_config import GOOD, errors, write
from tests.test_daemon import Running, config_dict, metric, write_config
from tests.test_reports import config_data, fill, hanoi

DAY = 86400.0
NOW = hanoi(2027, 2, 20, 9, 0)  # the pass runs here


def retention(**periods: Any) -> RetentionSettings:
    """Everything kept forever but what is given (periods as written in the config)."""
    data: dict[str, Any] = dict.fromkeys(KINDS, 0)
    data.update(periods)
    return RetentionSettings.model_validate(data)


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    opened = await state_location.open()
    yield opened
    await opened.close()


async def one_pass(store: Store, settings: RetentionSettings, now: float = NOW) -> PassResult:
    return await RetentionDesk(store, lambda: settings).run(now)


async def scalar(store: Store, statement: str, *args: Any) -> Any:
    return await store.transact(lambda db: db.execute(statement, args).fetchone()[0])


# ----- the outbox and the inbox ------------------------------------------------------------


async def add_outbox(store: Store, key: str, status: str, created_at: float) -> None:
    await store.transact(
        lambda db: db.execute(
            "INSERT INTO outbox (key, channel, address, person, subject, text, short, language,"
            " fallbacks, status, next_attempt_at, created_at, sent_at)"
            " VALUES (?, 'email', 'a@b.example', 'p', 's', 't', 'sh', 'vi', '[]', ?, ?, ?, ?)",
            (key, status, created_at, created_at, created_at if status == "sent" else None),
        )
    )


async def outbox_keys(store: Store) -> set[str]:
    rows = await store.transact(lambda db: db.execute("SELECT key FROM outbox").fetchall())
    return {str(r[0]) for r in rows}


async def test_outbox_rows_go_by_status_and_age_and_pending_ones_never(store: Store) -> None:
    for status in ("sent", "failed", "pending", "sending"):
        await add_outbox(store, f"{status}-old", status, NOW - 3650 * DAY)  # ten years
        await add_outbox(store, f"{status}-edge", status, NOW - 90 * DAY)  # exactly the period
        await add_outbox(store, f"{status}-new", status, NOW - 89 * DAY)
    settings = retention(outbox_sent="90d", outbox_failed="90d", batch_size=1)
    result = await one_pass(store, settings)
    assert await outbox_keys(store) == {
        "sent-edge",
        "sent-new",
        "failed-edge",
        "failed-new",
        *(f"{s}-{age}" for s in ("pending", "sending") for age in ("old", "edge", "new")),
    }
    assert result.pruned == {**dict.fromkeys(KINDS, 0), "outbox_sent": 1, "outbox_failed": 1}


async def test_failed_rows_follow_their_own_period(store: Store) -> None:
    # dropped: a revoked person's rows (monitor/contacts), kept as long as the failed ones.
    for status in ("sent", "failed", "dropped"):
        for days in (10, 40, 200):
            await add_outbox(store, f"{status}-{days}", status, NOW - days * DAY)
    await one_pass(store, retention(outbox_sent="30d", outbox_failed="180d"))
    kept = {"failed-10", "failed-40", "dropped-10", "dropped-40"}
    assert await outbox_keys(store) == {"sent-10", *kept}
    # Failed rows kept forever: only the sent ones go.
    await one_pass(store, retention(outbox_sent="5d", outbox_failed=0))
    assert await outbox_keys(store) == kept


async def test_inbox_messages_go_read_or_not(store: Store) -> None:
    def deliver(db: Any) -> None:
        for key, days in (("old-read", 200), ("old-unread", 181), ("new", 179)):
            inbox_store.deliver(db, "acct", key, "s", "t", NOW - days * DAY)
        db.execute("UPDATE inbox SET read_at = created_at WHERE key = 'old-read'")

    await store.transact(deliver)
    result = await one_pass(store, retention(inbox="180d"))
    rows = await store.transact(lambda db: db.execute("SELECT key FROM inbox").fetchall())
    assert {str(r[0]) for r in rows} == {"new"}
    assert result.pruned["inbox"] == 2


async def test_a_pass_deletes_in_batches_of_the_configured_size(store: Store) -> None:
    for i in range(23):
        await add_outbox(store, f"k{i}", "sent", NOW - 400 * DAY)
    result = await one_pass(store, retention(outbox_sent="90d", batch_size=5))
    assert result.pruned["outbox_sent"] == 23
    assert result.batches == 5  # 5 + 5 + 5 + 5 + 3: the short one ends it
    assert await outbox_keys(store) == set()


# ----- state changes, the months' figures and the reports -----------------------------------

C = "ha-noi/portal"
NEW_YEAR = [
    # C goes down on New Year's Eve before a window (an outage of December), flaps inside it,
    # and is back an hour after it: January has no outage of C (the run began in December).
    Event(hanoi(2026, 12, 31, 21, 0), "ha-noi", "portal", State.UP, State.DOWN, "t", "gw-1"),
    Event(hanoi(2026, 12, 31, 23, 0), "ha-noi", "portal", State.DOWN, State.FLAPPING, "t", "gw-1"),
    Event(hanoi(2027, 1, 1, 3, 0), "ha-noi", "portal", State.FLAPPING, State.UP, "t", "gw-1"),
]
WINDOW = (hanoi(2026, 12, 31, 22, 0), hanoi(2027, 1, 1, 2, 0))
MONTHS = ("2026-10", "2026-11", "2026-12", "2027-01", "2027-02")


async def fill_history(store: Store) -> None:
    await fill(store)
    await store.record(NEW_YEAR)

    def window(db: Any) -> None:
        db.execute(
            "INSERT INTO maintenance (scope, starts, ends, reason, announced_at, working_days,"
            " required, compliant, author, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (json.dumps([C]), *WINDOW, "năm mới", WINDOW[0] - 10 * DAY, 6, 5, 1, "VPCP", 0.0),
        )

    await store.transact(window)


async def renderings(store: Store, registry: Registry) -> dict[str, str]:
    out = {}
    for month in MONTHS:
        report = await build_report(store, registry, month, now=NOW)
        out[f"{month}.json"] = render_json(report)
        out[f"{month}.csv"] = render_csv(report)
        out[f"{month}.vi.html"] = render_html(report, "vi")
        out[f"{month}.en.html"] = render_html(report, "en")
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.from_config(Config.model_validate(config_data(tmp_path / "state.db")))


async def test_past_reports_are_byte_identical_after_pruning(
    store: Store, registry: Registry
) -> None:
    await fill_history(store)
    before = await renderings(store, registry)
    rows_before = await scalar(store, "SELECT COUNT(*) FROM state_changes")

    result = await one_pass(store, retention(state_changes="30d", batch_size=2))

    # 30 days before 20 February is in January: up to 1 January, moved back to the start of
    # the window holding that instant (New Year's Eve 22:00).
    assert result.months == ["2026-10", "2026-11", "2026-12"]
    assert await store.transact(monthly_store.closed) == {"2026-10", "2026-11", "2026-12"}
    left = await store.transact(
        lambda db: db.execute(
            "SELECT agency, system, ts FROM state_changes ORDER BY agency, system, ts, id"
        ).fetchall()
    )
    cut = WINDOW[0]
    assert result.pruned["state_changes"] == rows_before - len(left) > 15
    # Before the cut, one change per system is left: the last (the state it was in).
    old = [(a, s) for a, s, ts in left if ts < cut]
    assert len(old) == len(set(old)) == 6  # every system with a history (and the gateway's)
    assert [ts for a, s, ts in left if f"{a}/{s}" == C and ts >= hanoi(2026, 12, 31)] == [
        hanoi(2026, 12, 31, 21, 0),  # the last before the cut: kept
        hanoi(2026, 12, 31, 23, 0),
        hanoi(2027, 1, 1, 3, 0),
    ]

    after = await renderings(store, registry)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], name

    # A second pass finds nothing more to do, and the reports still agree.
    again = await one_pass(store, retention(state_changes="30d", batch_size=2))
    assert again.months == [] and again.pruned["state_changes"] == 0
    assert await renderings(store, registry) == before


async def test_a_month_with_no_change_is_reported_from_the_state_carried(
    store: Store, registry: Registry
) -> None:
    await fill_history(store)
    await one_pass(store, retention(state_changes="30d"))
    january = await build_report(store, registry, "2027-01", now=NOW)
    month = 31 * DAY
    figures = {s.key: s.figures for a in january.agencies for s in a.systems}
    # bo-y-te/secure-server: UP since 3 November, no change since: up all of January.
    assert figures["bo-y-te/secure-server"].up_seconds == month
    # ha-noi/portal: maintenance 00:00-02:00, down (flapping since before the window) until
    # 03:00, which is no new outage: it began in December.
    portal = figures[C]
    assert (portal.maintenance_seconds, portal.down_seconds, portal.outages) == (7200, 3600, 0)
    assert portal.up_seconds == month - 3 * 3600
    # bo-y-te/portal has no history at all: not monitored, as before.
    assert figures["bo-y-te/portal"].not_monitored_seconds == month
    # December from the stored figures: the outage of New Year's Eve is December's.
    december = await build_report(store, registry, "2026-12", now=NOW)
    stored = await store.transact(lambda db: monthly_store.stored(db, "2026-12"))
    assert stored[C].outages == 1
    assert {s.key: s.figures.outages for a in december.agencies for s in a.systems}[C] == 1


async def test_the_figures_are_stored_before_any_change_of_their_month_is_pruned(
    store: Store,
) -> None:
    """Driven one step at a time through ``tick``: at every step, no change of a month whose
    figures are not all stored is gone."""
    await fill_history(store)
    counts = await store.transact(_per_month)
    ticks = iter(range(1_000_000))
    # Each look at this clock moves it 0.2 s on: one batch per tick (the budget is 0.25 s).
    desk = RetentionDesk(
        store,
        lambda: retention(state_changes="30d", batch_size=10),
        monotonic=lambda: next(ticks) * 0.2,
    )
    steps = 0
    await desk.tick(NOW)
    while desk.last is not None and not desk.last.finished:
        closed = await store.transact(monthly_store.closed)
        now_counts = await store.transact(_per_month)
        for month, count in counts.items():
            if month not in closed:
                assert now_counts.get(month, 0) == count, (month, steps)
        steps += 1
        await desk.tick(NOW)
    assert steps > 5
    assert desk.last is not None and desk.last.pruned["state_changes"] > 0


def _per_month(db: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for (ts,) in db.execute("SELECT ts FROM state_changes"):
        month = monthly_store.month_of(ts)
        out[month] = out.get(month, 0) + 1
    return out


async def test_the_cut_is_a_month_start_moved_back_into_a_window_holding_it(
    store: Store,
) -> None:
    await fill_history(store)
    cut = await store.transact(lambda db: retention_store.state_cut(db, NOW, 30 * DAY))
    assert cut == WINDOW[0]
    # Without a window holding it: the start of the month.
    cut = await store.transact(lambda db: retention_store.state_cut(db, NOW, 60 * DAY))
    assert cut == month_bounds("2026-12")[0]


async def test_state_changes_kept_forever_when_the_period_is_zero(store: Store) -> None:
    await fill_history(store)
    rows = await scalar(store, "SELECT COUNT(*) FROM state_changes")
    result = await one_pass(store, retention(state_changes=0, outbox_sent="1d"))
    assert result.months == [] and result.pruned["state_changes"] == 0
    assert await scalar(store, "SELECT COUNT(*) FROM state_changes") == rows
    assert await store.transact(monthly_store.closed) == set()


# ----- the desk ----------------------------------------------------------------------------


async def test_the_desk_runs_at_start_then_once_per_period(store: Store) -> None:
    pruned: list[tuple[str, int]] = []
    settings = retention(outbox_sent="90d", every="1h")
    desk = RetentionDesk(store, lambda: settings, on_pruned=lambda k, n: pruned.append((k, n)))
    await add_outbox(store, "a", "sent", NOW - 100 * DAY)
    await desk.tick(NOW)  # at start
    assert pruned == [("outbox_sent", 1)]
    await add_outbox(store, "b", "sent", NOW - 100 * DAY)
    await desk.tick(NOW + 3599)  # not an hour yet
    assert await outbox_keys(store) == {"b"}
    await desk.tick(NOW + 3600)
    assert await outbox_keys(store) == set()
    assert pruned == [("outbox_sent", 1), ("outbox_sent", 1)]


async def test_the_pruned_rows_are_counted_in_the_metrics(store: Store) -> None:
    metrics = DaemonMetrics()
    for i in range(3):
        await add_outbox(store, f"k{i}", "failed", NOW - 400 * DAY)
    desk = RetentionDesk(
        store, lambda: retention(outbox_failed="180d"), on_pruned=metrics.count_pruned
    )
    await desk.run(NOW)
    value = metrics.registry.get_sample_value
    assert value("npsp_retention_pruned_rows_total", {"kind": "outbox_failed"}) == 3
    assert value("npsp_retention_pruned_rows_total", {"kind": "inbox"}) == 0


# ----- verdicts (several hosts: PostgreSQL only) --------------------------------------------


async def test_verdicts_no_vantage_needs_are_pruned(pg_store: Store) -> None:
    old, new = NOW - 40 * DAY, NOW - 5 * DAY

    def rows(db: Any) -> None:
        db.execute(
            "INSERT INTO vantages (vantage, holder, beat_at, started_at, canaries_ok, ready)"
            " VALUES ('gw-1', 'h1', to_timestamp(?), to_timestamp(?), true, true),"
            " ('gw-2', 'h2', to_timestamp(?), to_timestamp(?), true, true),"
            " ('gw-old', 'h3', to_timestamp(?), to_timestamp(?), true, true)",
            (NOW, old, NOW, old, old - DAY, old - 2 * DAY),
        )
        verdicts = [
            ("gw-1", "a/passing", 0, old),  # passes, nobody sees it fail: goes
            ("gw-2", "a/passing", 0, new),  # too recent: stays
            ("gw-1", "a/minority", 0, old),  # gw-2 sees it fail: stays
            ("gw-2", "a/minority", 2, old),  # a standing failure: stays
            ("gw-1", "a/degraded", 1, old),  # a standing degradation: stays
            ("gw-old", "a/passing", 2, old - DAY),  # a vantage silent for 41 days: goes
        ]
        db.executemany(
            "INSERT INTO verdicts (vantage, check_key, level, reason, ts) VALUES (?, ?, ?, 'r', ?)",
            verdicts,
        )

    await pg_store.transact(rows)
    result = await one_pass(pg_store, retention(verdicts="30d"))
    left = await pg_store.transact(
        lambda db: db.execute("SELECT vantage, check_key FROM verdicts").fetchall()
    )
    assert sorted(tuple(r) for r in left) == [
        ("gw-1", "a/degraded"),
        ("gw-1", "a/minority"),
        ("gw-2", "a/minority"),
        ("gw-2", "a/passing"),
    ]
    assert result.pruned["verdicts"] == 2


# ----- the config --------------------------------------------------------------------------


def test_the_defaults() -> None:
    settings = Config.model_validate({}).retention
    assert settings.model_dump(mode="json") == {
        "state_changes": "400d",
        "verdicts": "30d",
        "outbox_sent": "90d",
        "outbox_failed": "180d",
        "inbox": "180d",
        "every": "1h",
        "batch_size": 500,
        "pause": "20ms",
    }
    assert retention(inbox="forever").inbox is None
    assert retention(inbox=None, state_changes="0").state_changes is None


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "retention:\n  inbox: 2h\n",
            ":2: retention.inbox: a period must be at least 1d",
        ),
        (
            "retention:\n  outbox_sent: 90\n",
            ":2: retention.outbox_sent: duration 90 has no unit",
        ),
        ("retention:\n  every: 10s\n", ":2: retention.every: must be at least 1m"),
        (
            "retention:\n  batch_size: 0\n",
            ":2: retention.batch_size: Input should be greater than or equal to 1",
        ),
        ("retention:\n  verdict: 30d\n", ":2: retention.verdict: unknown key 'verdict'"),
    ],
)
def test_config_errors_name_file_line_and_field(
    tmp_path: Path, section: str, expected: str
) -> None:
    path = write(tmp_path, section + GOOD)
    found = errors(path)
    assert any(e.startswith(str(path)) and expected in e for e in found), found


# ----- in the daemon ------------------------------------------------------------------------


@pytest.fixture
async def start() -> AsyncIterator[Callable[[Path], Awaitable[Running]]]:
    running: list[Running] = []

    async def go(path: Path) -> Running:
        ready = asyncio.Event()
        daemon = Daemon(path, load_config(path))
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        running.append(Running(daemon, task))
        return running[-1]

    yield go
    for r in running:
        if not r.task.done():
            await r.stop()


async def test_the_daemon_prunes_at_start_and_counts_it(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    start: Callable[[Path], Awaitable[Running]],
) -> None:
    target = await tcp_target()
    data = config_dict(tmp_path, {"secure-server": target.port})
    data["retention"] = {"outbox_sent": "90d"}
    path = write_config(tmp_path / "c.yaml", data)
    opened = await Store.open(tmp_path / "state.db")
    now = time.time()
    await add_outbox(opened, "old-sent", "sent", now - 100 * DAY)
    await add_outbox(opened, "old-pending", "pending", now - 100 * DAY)
    await add_outbox(opened, "new-sent", "sent", now - 10 * DAY)
    await opened.close()

    run = await start(path)
    for _ in range(200):  # the desks' first tick comes within a second of the start
        _, text = await run.get("/metrics")
        if metric(text, "npsp_retention_pruned_rows_total", kind="outbox_sent") == 1.0:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"nothing pruned: {text}")
    assert metric(text, "npsp_retention_pruned_rows_total", kind="inbox") == 0.0
    engine = run.daemon.engine
    assert engine is not None
    assert await outbox_keys(engine.store) == {"old-pending", "new-sent"}
