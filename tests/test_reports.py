"""Monthly availability reports against a hand-computed history.

A real SQLite store holds a made-up November 2026 (state changes, maintenance windows,
incidents); every expected figure is worked out by hand in the comments next to it. November
has 30 days: 30 × 86 400 = 2 592 000 seconds per system.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from monitor.cli.report import add_report_commands
from monitor.config import Config
from monitor.registry import Registry
from monitor.reports import (
    Figures,
    Report,
    ReportError,
    build_report,
    format_availability,
    format_hmm,
    month_bounds,
    render_csv,
    render_html,
    render_json,
)
from monitor.reports.figures import breached as breach_time
from monitor.reports.figures import covered, excluded, history_since, measure
from monitor.reports.model import History, IncidentRow, MaintenanceRow, MaintenanceSpan
from monitor.state import Event, State
from monitor.store import Store

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
MONTH = 30 * 86400  # November 2026, in seconds
H = 3600


def hanoi(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a wall-clock time in Hanoi."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=HANOI).timestamp()


AFTER = hanoi(2026, 12, 5, 9, 0)  # when the report of November is made


def system(sid: str, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "kind": kind,
        "name": name,
        "checks": [{"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}],
        **extra,
    }


def config_data(state_db: Path) -> dict[str, Any]:
    return {
        "state_db": str(state_db),
        "agencies": [
            {
                "id": "ha-noi",
                "kind": "province",
                "name_vi": "Thành phố Hà Nội",
                "name_en": "Hanoi City",
                "code": "HN",
                "systems": [
                    system("secure-server", "secure-server", "Máy chủ bảo mật"),
                    system(
                        "one-stop",
                        "one-stop",
                        "Hệ thống một cửa điện tử",
                        name_en="One-stop system",
                        depends_on="secure-server",
                    ),
                    system("portal", "public-service-portal", "Cổng <DVC> & Hà Nội"),
                ],
            },
            {
                "id": "bo-y-te",
                "kind": "ministry",
                "name_vi": "Bộ Y tế",
                "name_en": "Ministry of Health",
                "code": "BYT",
                "systems": [
                    system("portal", "public-service-portal", "Cổng DVC Bộ Y tế"),
                    system("secure-server", "secure-server", "Máy chủ bảo mật Bộ Y tế"),
                ],
            },
        ],
    }


def ev(when: float, key: str, old: State, new: State) -> Event:
    agency, sys_id = key.split("/")
    return Event(when, agency, sys_id, old, new, "test", "gw-1")


A, B, C = "ha-noi/secure-server", "ha-noi/one-stop", "ha-noi/portal"
D, E = "bo-y-te/portal", "bo-y-te/secure-server"
P, U, DN = State.PENDING, State.UP, State.DOWN

HISTORY = [
    # A: UP since October (carried over into November).
    ev(hanoi(2026, 10, 20, 8, 0), A, P, U),
    ev(hanoi(2026, 11, 10, 9, 0), A, U, DN),  # outage 1; window 10:00-10:30 inside it
    ev(hanoi(2026, 11, 10, 11, 0), A, DN, U),
    ev(hanoi(2026, 11, 20, 1, 30), A, U, DN),  # inside the portal-wide window: no outage
    ev(hanoi(2026, 11, 20, 2, 0), A, DN, U),
    ev(hanoi(2026, 11, 30, 22, 0), A, U, DN),  # outage 2, spans the end of the month
    ev(hanoi(2026, 12, 1, 2, 0), A, DN, U),
    # B: DOWN since October, UP at exactly the first instant of November.
    ev(hanoi(2026, 10, 25, 10, 0), B, P, DN),
    ev(hanoi(2026, 11, 1, 0, 0), B, DN, U),
    ev(hanoi(2026, 11, 10, 9, 5), B, U, State.UNREACHABLE),  # its parent A is down
    ev(hanoi(2026, 11, 10, 11, 0), B, State.UNREACHABLE, U),
    ev(hanoi(2026, 11, 15, 14, 0), B, U, State.FLAPPING),  # outage 1 ...
    ev(hanoi(2026, 11, 15, 14, 30), B, State.FLAPPING, DN),  # ... the same outage
    ev(hanoi(2026, 11, 15, 15, 0), B, DN, U),
    ev(hanoi(2026, 12, 1, 0, 0), B, U, DN),  # exactly the end: December's
    # C: no history before 5 November 12:00.
    ev(hanoi(2026, 11, 5, 12, 0), C, P, U),
    ev(hanoi(2026, 11, 25, 9, 0), C, U, DN),  # inside the agency's window 08:00-12:00
    ev(hanoi(2026, 11, 25, 13, 0), C, DN, U),  # still down after it: outage at 12:00
    ev(hanoi(2026, 11, 28, 10, 0), C, U, DN),  # outage 2
    ev(hanoi(2026, 11, 28, 10, 20), C, DN, U),
    # D: no history at all.
    # E: UP since October, UNKNOWN for six hours.
    ev(hanoi(2026, 10, 1, 0, 0), E, P, U),
    ev(hanoi(2026, 11, 3, 0, 0), E, U, State.UNKNOWN),
    ev(hanoi(2026, 11, 3, 6, 0), E, State.UNKNOWN, U),
    # Not in the report: our own uplink, and a system no longer configured.
    ev(hanoi(2026, 11, 8, 10, 0), "_gateway/uplink", U, DN),
    ev(hanoi(2026, 11, 8, 11, 0), "_gateway/uplink", DN, U),
    ev(hanoi(2026, 11, 9, 10, 0), "ha-noi/old", U, DN),
]

# (scope, starts, ends, cancelled_at)
WINDOWS: list[tuple[list[str], float, float, float | None]] = [
    (["ha-noi/secure-server"], hanoi(2026, 11, 10, 10, 0), hanoi(2026, 11, 10, 10, 30), None),
    ([], hanoi(2026, 11, 20, 1, 0), hanoi(2026, 11, 20, 3, 0), None),  # the whole portal
    (["ha-noi"], hanoi(2026, 11, 25, 8, 0), hanoi(2026, 11, 25, 12, 0), None),
    # Cancelled before it started: excludes nothing.
    (["ha-noi/portal"], hanoi(2026, 11, 26, 0, 0), hanoi(2026, 11, 26, 6, 0), hanoi(2026, 11, 20)),
    # Cancelled one hour into it: that hour is maintenance.
    (
        ["ha-noi/portal"],
        hanoi(2026, 11, 27, 0, 0),
        hanoi(2026, 11, 27, 4, 0),
        hanoi(2026, 11, 27, 1, 0),
    ),
    # Entirely in October.
    ([], hanoi(2026, 10, 30, 1, 0), hanoi(2026, 10, 30, 5, 0), None),
]

# (id, agency, system, opened_at, due_at, resolved_at, breached_at)
INCIDENTS: list[tuple[str, str, str | None, float, float, float | None, float | None]] = [
    # A: two outages, both resolved in time.
    (
        "ha-noi/secure-server@1",
        "ha-noi",
        "secure-server",
        hanoi(2026, 11, 10, 9, 0),
        hanoi(2026, 11, 10, 17, 0),
        hanoi(2026, 11, 10, 11, 0),
        None,
    ),
    (
        "ha-noi/secure-server@2",
        "ha-noi",
        "secure-server",
        hanoi(2026, 11, 30, 22, 0),
        hanoi(2026, 12, 2, 10, 0),
        hanoi(2026, 12, 1, 2, 0),
        None,
    ),
    # B: still open past its due time (30 Nov 15:00), never marked by the daemon: a breach.
    (
        "ha-noi/one-stop@3",
        "ha-noi",
        "one-stop",
        hanoi(2026, 11, 29, 9, 0),
        hanoi(2026, 11, 30, 15, 0),
        None,
        None,
    ),
    # C: breached (marked) in November.
    (
        "ha-noi/portal@4",
        "ha-noi",
        "portal",
        hanoi(2026, 11, 25, 12, 0),
        hanoi(2026, 11, 25, 20, 0),
        hanoi(2026, 11, 26, 9, 0),
        hanoi(2026, 11, 25, 20, 1),
    ),
    # C: opened in November, breached in December: an incident, not a November breach.
    (
        "ha-noi/portal@5",
        "ha-noi",
        "portal",
        hanoi(2026, 11, 30, 16, 0),
        hanoi(2026, 12, 1, 16, 0),
        None,
        hanoi(2026, 12, 1, 16, 1),
    ),
    # C: October's, breached in October.
    (
        "ha-noi/portal@6",
        "ha-noi",
        "portal",
        hanoi(2026, 10, 28, 9, 0),
        hanoi(2026, 10, 29, 9, 0),
        hanoi(2026, 10, 30, 9, 0),
        hanoi(2026, 10, 29, 9, 1),
    ),
    # Hà Nội, no system: resolved late while the daemon was stopped (breach at due_at).
    (
        "req-1",
        "ha-noi",
        None,
        hanoi(2026, 11, 12, 8, 0),
        hanoi(2026, 11, 13, 8, 0),
        hanoi(2026, 11, 14, 9, 0),
        None,
    ),
    # E: opened in October, breached in November.
    (
        "bo-y-te/secure-server@7",
        "bo-y-te",
        "secure-server",
        hanoi(2026, 10, 30, 9, 0),
        hanoi(2026, 11, 2, 9, 0),
        hanoi(2026, 11, 2, 10, 0),
        hanoi(2026, 11, 2, 9, 1),
    ),
    # D: December's.
    (
        "bo-y-te/portal@8",
        "bo-y-te",
        "portal",
        hanoi(2026, 12, 1, 0, 0),
        hanoi(2026, 12, 1, 8, 0),
        None,
        None,
    ),
    # An agency not in the registry.
    (
        "req-2",
        "xa-hoi",
        None,
        hanoi(2026, 11, 3, 8, 0),
        hanoi(2026, 11, 3, 9, 0),
        None,
        None,
    ),
]


async def fill(store: Store) -> None:
    await store.record(HISTORY)

    def write(db: Any) -> None:
        for scope, starts, ends, cancelled_at in WINDOWS:
            db.execute(
                "INSERT INTO maintenance (scope, starts, ends, reason, announced_at,"
                " working_days, required, compliant, override_reason, author, created_at,"
                " cancelled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    json.dumps(scope),
                    starts,
                    ends,
                    "nâng cấp",
                    starts - 10 * 86400,
                    6,
                    5,
                    1,
                    None,
                    "VPCP",
                    starts - 10 * 86400,
                    cancelled_at,
                ),
            )
        for incident_id, agency, sys_id, opened, due, resolved, breached in INCIDENTS:
            db.execute(
                "INSERT INTO incidents (id, agency, system, source, summary, opened_at, due_at,"
                " resolved_at, resolved_by, breached_at, reminded)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id,
                    agency,
                    sys_id,
                    "request" if sys_id is None else "outage",
                    "test",
                    opened,
                    due,
                    resolved,
                    None if resolved is None else "kt",
                    breached,
                    100 if breached else 0,
                ),
            )

    await store.transact(write)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "state.db")
    await fill(opened)
    yield opened
    await opened.close()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry.from_config(Config.model_validate(config_data(tmp_path / "state.db")))


def figures(report: Report, key: str) -> Figures:
    for agency in report.agencies:
        for s in agency.systems:
            if s.key == key:
                return s.figures
    raise KeyError(key)


def agency_figures(report: Report, agency_id: str) -> Figures:
    return next(a.figures for a in report.agencies if a.id == agency_id)


# ----- hand-computed figures --------------------------------------------------------------------

# A, ha-noi/secure-server (UP since October)
#   maintenance: own window 10 Nov 10:00-10:30 = 1 800; portal-wide 20 Nov 01:00-03:00 = 7 200;
#                agency 25 Nov 08:00-12:00 = 14 400              → 23 400
#   down: 10 Nov 09:00-11:00 less the window = 1.5 h = 5 400; 30 Nov 22:00-24:00 = 7 200
#         (the down 20 Nov 01:30-02:00 is inside the portal window) → 12 600
#   up: 2 592 000 - 23 400 - 12 600 = 2 556 000
#   availability = 2 556 000 / 2 568 600 = 99.5094…%
#   outages: 10 Nov 09:00 and 30 Nov 22:00 = 2 (20 Nov 01:30 is inside a window)
EXPECTED_A = Figures(
    up_seconds=2_556_000,
    down_seconds=12_600,
    unreachable_seconds=0,
    not_monitored_seconds=0,
    maintenance_seconds=23_400,
    outages=2,
    incidents=2,  # 10 Nov and 30 Nov
    sla_breaches=0,
)
# B, ha-noi/one-stop (DOWN since October, UP at exactly 1 Nov 00:00)
#   maintenance: portal-wide 7 200 + agency 14 400 = 21 600
#   unreachable: 10 Nov 09:05-11:00 = 6 900
#   down: 15 Nov 14:00-15:00 (FLAPPING then DOWN) = 3 600; the DOWN at exactly 1 Dec 00:00 is
#         December's → 3 600
#   up: 2 592 000 - 21 600 - 6 900 - 3 600 = 2 559 900
#   availability = 2 559 900 / (2 559 900 + 6 900 + 3 600) = 2 559 900 / 2 570 400 = 99.5915…%
#   outages: 15 Nov 14:00 = 1 (FLAPPING → DOWN is the same outage; UNREACHABLE is not one)
EXPECTED_B = Figures(
    up_seconds=2_559_900,
    down_seconds=3_600,
    unreachable_seconds=6_900,
    not_monitored_seconds=0,
    maintenance_seconds=21_600,
    outages=1,
    incidents=1,  # 29 Nov
    sla_breaches=1,  # open past its due time 30 Nov 15:00
)
# C, ha-noi/portal (first change 5 Nov 12:00)
#   not monitored: 1 Nov 00:00 - 5 Nov 12:00 = 4.5 days = 388 800
#   maintenance: portal-wide 7 200 + agency 14 400 + the window cancelled after 1 h 3 600
#                (the one cancelled before it started counts nothing) → 25 200
#   down: 25 Nov 12:00-13:00 (down since 09:00, inside the window until 12:00) = 3 600;
#         28 Nov 10:00-10:20 = 1 200 → 4 800
#   up: 2 592 000 - 388 800 - 25 200 - 4 800 = 2 173 200
#   availability = 2 173 200 / 2 178 000 = 99.7796…%
#   outages: the overrun at 25 Nov 12:00, and 28 Nov 10:00 = 2
EXPECTED_C = Figures(
    up_seconds=2_173_200,
    down_seconds=4_800,
    unreachable_seconds=0,
    not_monitored_seconds=388_800,
    maintenance_seconds=25_200,
    outages=2,
    incidents=2,  # 25 Nov and 30 Nov (October's is not November's)
    sla_breaches=1,  # 25 Nov 20:01 (30 Nov's breached in December)
)
# D, bo-y-te/portal: no history at all; the portal-wide window still covers it.
#   not monitored: 2 592 000 - 7 200 = 2 584 800; availability: none
EXPECTED_D = Figures(not_monitored_seconds=2_584_800, maintenance_seconds=7_200)
# E, bo-y-te/secure-server (UP since October, UNKNOWN 3 Nov 00:00-06:00)
#   not monitored 21 600; maintenance 7 200; up 2 592 000 - 21 600 - 7 200 = 2 563 200; 100 %
EXPECTED_E = Figures(
    up_seconds=2_563_200,
    not_monitored_seconds=21_600,
    maintenance_seconds=7_200,
    sla_breaches=1,  # opened in October, breached 2 Nov
)
# Hà Nội = A + B + C, with req-1 (no system; resolved late: a breach at its due time 13 Nov):
#   up 2 556 000 + 2 559 900 + 2 173 200 = 7 289 100; down 12 600 + 3 600 + 4 800 = 21 000;
#   unreachable 6 900; availability 7 289 100 / 7 317 000 = 99.6186…%
#   incidents 2 + 1 + 2 + 1 = 6; breaches 0 + 1 + 1 + 1 = 3
EXPECTED_HA_NOI = Figures(
    up_seconds=7_289_100,
    down_seconds=21_000,
    unreachable_seconds=6_900,
    not_monitored_seconds=388_800,
    maintenance_seconds=70_200,
    outages=5,
    incidents=6,
    sla_breaches=3,
)
EXPECTED_BO_Y_TE = Figures(
    up_seconds=2_563_200,
    not_monitored_seconds=2_606_400,
    maintenance_seconds=14_400,
    sla_breaches=1,
)


async def test_figures_against_a_hand_computed_history(store: Store, registry: Registry) -> None:
    report = await build_report(store, registry, "2026-11", now=AFTER)

    assert report.starts == hanoi(2026, 11, 1) and report.ends == hanoi(2026, 12, 1)
    assert report.until == report.ends and report.complete
    # The registry's systems in its order; our uplink and removed systems are not reported.
    assert [a.id for a in report.agencies] == ["ha-noi", "bo-y-te"]
    assert [s.key for a in report.agencies for s in a.systems] == [A, B, C, D, E]

    assert figures(report, A) == EXPECTED_A
    assert figures(report, B) == EXPECTED_B
    assert figures(report, C) == EXPECTED_C
    assert figures(report, D) == EXPECTED_D
    assert figures(report, E) == EXPECTED_E
    assert agency_figures(report, "ha-noi") == EXPECTED_HA_NOI
    assert agency_figures(report, "bo-y-te") == EXPECTED_BO_Y_TE
    assert report.totals == EXPECTED_HA_NOI + EXPECTED_BO_Y_TE

    assert figures(report, A).availability == pytest.approx(100 * 2_556_000 / 2_568_600)
    assert figures(report, B).availability == pytest.approx(100 * 2_559_900 / 2_570_400)
    assert figures(report, B).monitored_seconds == 2_570_400
    assert figures(report, B).unavailable_seconds == 10_500
    assert figures(report, C).availability == pytest.approx(100 * 2_173_200 / 2_178_000)
    assert figures(report, D).availability is None
    assert figures(report, E).availability == 100.0
    assert agency_figures(report, "ha-noi").availability == pytest.approx(
        100 * 7_289_100 / 7_317_000
    )
    # Every second of the month is in exactly one bucket.
    for key in (A, B, C, D, E):
        f = figures(report, key)
        assert f.monitored_seconds + f.not_monitored_seconds + f.maintenance_seconds == MONTH


async def test_a_month_in_progress_stops_now(store: Store, registry: Registry) -> None:
    now = hanoi(2026, 11, 10, 10, 15)  # inside A's own window (10:00-10:30)
    report = await build_report(store, registry, "2026-11", now=now)
    assert report.until == now and not report.complete
    a = figures(report, A)
    # UP 1 Nov 00:00 - 10 Nov 09:00 = 9 d 9 h = 810 000; DOWN 09:00-10:00 = 3 600;
    # maintenance 10:00-10:15 = 900; the rest of the month is not counted at all.
    assert (a.up_seconds, a.down_seconds, a.maintenance_seconds) == (810_000, 3_600, 900)
    assert a.outages == 1 and a.incidents == 1
    b = figures(report, B)  # UNREACHABLE since 09:05: 1 h 10 min so far
    assert (b.up_seconds, b.unreachable_seconds) == (810_000 + 5 * 60, 70 * 60)
    # B's incident (29 Nov) is not opened yet; E's breach (2 Nov) is already there.
    assert b.incidents == 0 and figures(report, E).sla_breaches == 1


async def test_an_open_incident_is_a_breach_only_once_past_due(
    store: Store, registry: Registry
) -> None:
    # B's incident is due 30 Nov 15:00 and never resolved: not yet a breach at 14:59.
    report = await build_report(store, registry, "2026-11", now=hanoi(2026, 11, 30, 14, 59))
    assert figures(report, B).sla_breaches == 0 and figures(report, B).incidents == 1
    report = await build_report(store, registry, "2026-11", now=hanoi(2026, 11, 30, 15, 1))
    assert figures(report, B).sla_breaches == 1


async def test_the_next_month_carries_the_outage_over(store: Store, registry: Registry) -> None:
    report = await build_report(store, registry, "2026-12", now=hanoi(2026, 12, 1, 3, 0))
    # A: DOWN since 30 Nov 22:00 until 1 Dec 02:00: 2 h down in December, then UP 1 h; the
    # outage began in November, so it is not a December outage.
    a = figures(report, A)
    assert (a.down_seconds, a.up_seconds, a.outages) == (2 * H, H, 0)
    # B: DOWN at exactly 1 Dec 00:00: December's outage, 3 h down.
    b = figures(report, B)
    assert (b.down_seconds, b.up_seconds, b.outages) == (3 * H, 0, 1)
    # D: opened at 1 Dec 00:00 exactly; C's 30 Nov incident breached 1 Dec 16:01: not yet.
    assert figures(report, D).incidents == 1
    assert figures(report, C).sla_breaches == 0


async def test_an_outage_begun_in_a_window_before_the_month(tmp_path: Path) -> None:
    """A window spanning the month's start: down inside it, still down at its end."""
    store = await Store.open(tmp_path / "state.db")
    try:
        await store.record(
            [
                ev(hanoi(2026, 10, 1), E, P, U),
                ev(hanoi(2026, 10, 31, 23, 0), E, U, DN),  # inside the window
                ev(hanoi(2026, 11, 1, 2, 0), E, DN, U),
                ev(hanoi(2026, 10, 1), D, P, U),
                ev(hanoi(2026, 10, 31, 21, 0), D, U, DN),  # before the window: October's
                ev(hanoi(2026, 11, 1, 2, 0), D, DN, U),
                ev(hanoi(2026, 11, 30, 23, 0), E, U, DN),  # inside the month's last window
                ev(hanoi(2026, 12, 1, 1, 0), E, DN, U),
            ]
        )

        def write(db: Any) -> None:
            for starts, ends in (
                (hanoi(2026, 10, 31, 22, 0), hanoi(2026, 11, 1, 1, 0)),
                (hanoi(2026, 11, 30, 22, 0), hanoi(2026, 12, 1, 0, 0)),  # ends with November
            ):
                db.execute(
                    "INSERT INTO maintenance (scope, starts, ends, reason, announced_at,"
                    " working_days, required, compliant, author, created_at)"
                    " VALUES (?, ?, ?, 'x', 0, 5, 5, 1, 'VPCP', 0)",
                    ('["bo-y-te"]', starts, ends),
                )

        await store.transact(write)
        registry = Registry.from_config(Config.model_validate(config_data(tmp_path / "x.db")))
        november = await build_report(store, registry, "2026-11", now=AFTER)
        december = await build_report(store, registry, "2026-12", now=hanoi(2026, 12, 1, 3, 0))
    finally:
        await store.close()
    e, d = figures(november, E), figures(november, D)
    # Both: maintenance 1 Nov 00:00-01:00 and 30 Nov 22:00-24:00 (3 h), down 1 Nov 01:00-02:00.
    assert (e.maintenance_seconds, e.down_seconds) == (3 * H, H)
    assert (d.maintenance_seconds, d.down_seconds) == (3 * H, H)
    # E went down inside the window and was still down at its end: a November outage at 01:00.
    # D was down before the window began: that outage is October's. E's second outage overran
    # the window ending at exactly 1 Dec 00:00: December's.
    assert (e.outages, d.outages) == (1, 0)
    e_dec = figures(december, E)
    assert (e_dec.down_seconds, e_dec.up_seconds, e_dec.outages) == (H, 2 * H, 1)


async def test_bad_months(store: Store, registry: Registry) -> None:
    for month in ("2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "november", ""):
        with pytest.raises(ReportError, match="invalid month"):
            await build_report(store, registry, month, now=AFTER)
    with pytest.raises(ReportError, match="has not begun"):
        await build_report(store, registry, "2026-12", now=hanoi(2026, 11, 30, 23, 59))


def test_month_bounds_are_vietnam_time() -> None:
    assert month_bounds("2026-12") == (hanoi(2026, 12, 1), hanoi(2027, 1, 1))
    start, end = month_bounds("2026-02")
    assert end - start == 28 * 86400
    assert start == dt.datetime(2026, 1, 31, 17, 0, tzinfo=dt.UTC).timestamp()


def test_formats() -> None:
    assert format_hmm(5400) == "1:30"
    assert format_hmm(90_000) == "25:00"
    assert format_hmm(29) == "0:00" and format_hmm(30) == "0:01"
    assert format_hmm(0) == "0:00"
    assert format_availability(99.9996) == "99.999"  # truncated, never shown as 100
    assert format_availability(100.0) == "100.000"
    assert format_availability(99.5094, "vi") == "99,509"
    assert format_availability(None) == ""


async def test_csv(store: Store, registry: Registry) -> None:
    report = await build_report(store, registry, "2026-11", now=AFTER)
    text = render_csv(report)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["scope"], r["agency"], r["system"]) for r in rows] == [
        ("system", "ha-noi", "secure-server"),
        ("system", "ha-noi", "one-stop"),
        ("system", "ha-noi", "portal"),
        ("agency", "ha-noi", ""),
        ("system", "bo-y-te", "portal"),
        ("system", "bo-y-te", "secure-server"),
        ("agency", "bo-y-te", ""),
        ("portal", "", ""),
    ]
    assert rows[0] == {
        "month": "2026-11",
        "scope": "system",
        "agency": "ha-noi",
        "agency_name": "Thành phố Hà Nội",
        "agency_code": "HN",
        "system": "secure-server",
        "system_name": "Máy chủ bảo mật",
        "system_kind": "secure-server",
        "availability_percent": "99.509",
        "up_seconds": "2556000",
        "down_seconds": "12600",
        "down_hmm": "3:30",
        "unreachable_seconds": "0",
        "unreachable_hmm": "0:00",
        "monitored_seconds": "2568600",
        "not_monitored_seconds": "0",
        "maintenance_seconds": "23400",
        "degraded_seconds": "0",
        "outages": "2",
        "incidents": "2",
        "sla_breaches": "0",
    }
    one_stop, portal, ha_noi = rows[1], rows[2], rows[3]
    assert one_stop["availability_percent"] == "99.591"
    assert (one_stop["unreachable_seconds"], one_stop["unreachable_hmm"]) == ("6900", "1:55")
    assert portal["system_name"] == "Cổng <DVC> & Hà Nội"  # CSV is not HTML: no escaping
    assert (portal["availability_percent"], portal["down_hmm"]) == ("99.779", "1:20")
    assert (ha_noi["availability_percent"], ha_noi["down_seconds"]) == ("99.618", "21000")
    assert (ha_noi["incidents"], ha_noi["sla_breaches"], ha_noi["outages"]) == ("6", "3", "5")
    assert rows[4]["availability_percent"] == ""  # bo-y-te/portal: not measured
    assert rows[4]["not_monitored_seconds"] == "2584800"
    assert rows[7]["up_seconds"] == str(7_289_100 + 2_563_200)
    assert rows[7]["sla_breaches"] == "4"
    assert text.encode("utf-8").decode("utf-8") == text


async def test_html(store: Store, registry: Registry) -> None:
    report = await build_report(store, registry, "2026-11", now=AFTER)
    page = render_html(report)
    assert page.startswith('<!DOCTYPE html>\n<html lang="vi">')
    assert page.rstrip().endswith("</html>")
    assert '<meta charset="utf-8">' in page
    assert "<script" not in page.lower() and "http" not in page  # self-contained
    assert "Báo cáo khả dụng tháng 11/2026" in page
    # The name with "<" and "&" is escaped, never raw markup.
    assert "Cổng &lt;DVC&gt; &amp; Hà Nội" in page and "<DVC>" not in page
    assert page.count("<table>") == 3  # the summary and one table per agency
    assert '<h2 id="ha-noi">Thành phố Hà Nội (HN)</h2>' in page
    # A's row: availability, down h:mm, outages, unreachable, monitored, not monitored,
    # maintenance, of which degraded, incidents, breaches.
    row_a = (
        "<tr><td>Máy chủ bảo mật<br><small>ha-noi/secure-server</small></td>"
        "<td>Máy chủ bảo mật</td>"
        '<td class="n">99,509</td><td class="n">3:30</td><td class="n">2</td>'
        '<td class="n">0:00</td><td class="n">713:30</td><td class="n">0:00</td>'
        '<td class="n">6:30</td><td class="n">0:00</td><td class="n">2</td>'
        '<td class="n">0</td></tr>'
    )
    assert row_a in page
    assert "không đo được" in page  # bo-y-te/portal
    assert "không giám sát" in page.lower()  # the report says what is left out
    assert '<span class="bad">3</span>' in page  # Hà Nội's breaches stand out

    english = render_html(report, "en")
    assert english.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "Availability report 2026-11" in english
    assert "Hanoi City (HN)" in english and "One-stop system" in english
    assert '<td class="n">99.509</td>' in english and "not measured" in english
    assert "Not monitored" in english
    assert "<td>Public service portal</td>" in english


# ----- the command ------------------------------------------------------------------------------


class Cli:
    """The ``report`` command on a fresh parser, at a chosen time."""

    def __init__(self, tmp_path: Path, now: float = AFTER) -> None:
        self.config = tmp_path / "npsp.yaml"
        self.config.write_text(
            yaml.safe_dump(config_data(tmp_path / "state.db"), allow_unicode=True),
            encoding="utf-8",
        )
        self.now = now
        self.parser = argparse.ArgumentParser(prog="npsp-monitor")
        sub = self.parser.add_subparsers(dest="command", required=True)

        def with_config(p: argparse.ArgumentParser) -> None:
            p.add_argument("-c", "--config", type=Path, required=True)

        add_report_commands(sub, with_config, clock=lambda: self.now)

    def __call__(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        args = self.parser.parse_args(["report", "-c", str(self.config), *argv])
        code: int = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err


def filled(tmp_path: Path) -> None:
    """The history in the command's database (the command runs its own event loop)."""

    async def write() -> None:
        store = await Store.open(tmp_path / "state.db")
        try:
            await fill(store)
        finally:
            await store.close()

    asyncio.run(write())


def test_cli_formats_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filled(tmp_path)
    cli = Cli(tmp_path)

    code, out, err = cli(capsys, "--month", "2026-11")  # HTML in Vietnamese by default
    assert (code, err) == (0, "")
    assert out.startswith("<!DOCTYPE html>") and "99,509" in out

    code, out, _ = cli(capsys, "--month", "2026-11", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["complete"] is True and data["starts"] == "2026-11-01T00:00:00+07:00"
    hn = data["agencies"][0]
    assert (hn["id"], hn["incidents"], hn["sla_breaches"]) == ("ha-noi", 6, 3)
    assert hn["systems"][0]["up_seconds"] == 2_556_000
    assert data["agencies"][1]["systems"][0]["availability_percent"] is None

    target = tmp_path / "out" / "nov.csv"
    target.parent.mkdir()
    code, out, _ = cli(capsys, "--month", "2026-11", "--format", "csv", "--output", str(target))
    assert code == 0 and str(target) in out
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == 8 and rows[2]["system_name"] == "Cổng <DVC> & Hà Nội"

    code, out, _ = cli(capsys, "--month", "2026-11", "--language", "en")
    assert code == 0 and '<html lang="en">' in out


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(tmp_path, now=hanoi(2026, 11, 20))

    code, out, err = cli(capsys, "--month", "2026-11")  # no database yet
    assert code == 1 and out == ""
    assert err.startswith("npsp-monitor: no state database at ") and err.count("\n") == 1
    assert not (tmp_path / "state.db").exists()  # a report never creates one

    filled(tmp_path)
    for month in ("2026-13", "11-2026", "2026/11"):
        code, out, err = cli(capsys, "--month", month)
        assert (code, out) == (2, "")
        assert err == f"npsp-monitor: invalid month {month!r}: write YYYY-MM, e.g. 2026-11\n"
    code, out, err = cli(capsys, "--month", "2026-12")
    assert (code, out) == (2, "")
    assert err == "npsp-monitor: month 2026-12 has not begun yet: nothing to report\n"

    code, out, err = cli(capsys, "--month", "2026-11", "--output", str(tmp_path / "no" / "x"))
    assert code == 1 and err.startswith("npsp-monitor: cannot write ") and err.count("\n") == 1

    with pytest.raises(SystemExit) as exc:  # argparse: an unknown format
        cli(capsys, "--month", "2026-11", "--format", "pdf")
    assert exc.value.code == 2


async def test_degraded_is_available_and_shown_apart_maintenance_state_is_maintenance(
    tmp_path: Path,
) -> None:
    """DEGRADED time counts as available (inside up_seconds) and is given on its own; a
    MAINTENANCE state recorded outside any stored window counts as maintenance, and the
    verdict announced at a window's end (MAINTENANCE → DOWN) is an outage."""
    store = await Store.open(tmp_path / "state.db")
    try:
        await store.record(
            [
                ev(hanoi(2026, 10, 1), A, P, U),
                ev(hanoi(2026, 11, 2, 8, 0), A, U, State.DEGRADED),
                ev(hanoi(2026, 11, 2, 10, 0), A, State.DEGRADED, U),
                ev(hanoi(2026, 11, 3, 8, 0), A, U, State.MAINTENANCE),
                ev(hanoi(2026, 11, 3, 9, 0), A, State.MAINTENANCE, DN),
                ev(hanoi(2026, 11, 3, 10, 0), A, DN, U),
            ]
        )
        registry = Registry.from_config(Config.model_validate(config_data(tmp_path / "x.db")))
        report = await build_report(store, registry, "2026-11", now=AFTER)
    finally:
        await store.close()
    a = figures(report, A)
    assert a.degraded_seconds == 2 * H
    assert a.maintenance_seconds == H and a.down_seconds == H
    assert a.up_seconds == MONTH - 2 * H  # the degraded hours are inside it
    assert a.outages == 1
    assert a.availability == pytest.approx(100 * (MONTH - 2 * H) / (MONTH - H))
    assert '"degraded_seconds": 7200' in render_json(report)


# ----- the exact bytes of every format ------------------------------------------------------------

# The sha256 and length of each rendering of November (made after it, and in progress on 10
# November 10:15), as the renderers wrote them when the module became a package (issue 12):
# any change to a single byte of a report shows here. After a deliberate change, print
# ``_digest(...)`` for each case and paste the new values.
# Issue 15: the JSON and the HTML gained the senior-rights section (monitor/reports/senior.py;
# here every agency with nobody); without it each is byte-for-byte the issue 12 output, checked
# when the values were changed. The CSV is unchanged (the section is a CSV of its own).
GOLDEN: dict[str, tuple[str, int]] = {
    "json": ("70a8a77cc94225c03557ce1b0204e627076885d8e10a14b2dafeb1b1c21648fb", 4612),
    "csv": ("8c472eb208a605986b6046f27a6325f5b9ea93ba6beab26534fec9af7e719c44", 1358),
    "html-vi": ("3e1413ec6070eceda0ada1acbedc2964f45f26004f3ae80f59634e78abc43dac", 7530),
    "html-en": ("208d081deb601ee45177ced8a505fdf9d1bba277adbfbd623f3ffc90113472dd", 6569),
    "json-partial": ("a71b9e4fad18403d22185abc30428a808c7e0f8f37902d3ec53fa082a76c3d64", 4548),
    "csv-partial": ("cbc8baa98cc8df671918e52a2a5b42c42d68496381d4aca3685736ca881821b6", 1314),
    "html-vi-partial": ("f09e0d6ba4073e3777979e4f4d2c6dc27acfd60d1e957df48e77605bfaf7f422", 7518),
    "html-en-partial": ("c9ddee81dd617b69442e85414394fbe2b5b1aecccfda78a8fbece3f498647cc5", 6543),
}


def _digest(text: str) -> tuple[str, int]:
    data = text.encode("utf-8")
    return hashlib.sha256(data).hexdigest(), len(data)


async def test_every_format_is_byte_for_byte_unchanged(store: Store, registry: Registry) -> None:
    done = await build_report(store, registry, "2026-11", now=AFTER)
    partial = await build_report(store, registry, "2026-11", now=hanoi(2026, 11, 10, 10, 15))
    outputs = {
        "json": render_json(done),
        "csv": render_csv(done),
        "html-vi": render_html(done),
        "html-en": render_html(done, "en"),
        "json-partial": render_json(partial),
        "csv-partial": render_csv(partial),
        "html-vi-partial": render_html(partial, "vi"),
        "html-en-partial": render_html(partial, "en"),
    }
    assert {name: _digest(text) for name, text in outputs.items()} == GOLDEN


# ----- the pure figures, without a store --------------------------------------------------------


def test_a_window_excludes_from_its_announcement_until_its_cancellation() -> None:
    row = MaintenanceRow(("ha-noi",), starts=100, ends=200, cancelled_at=None, announced_at=50)
    assert excluded(row) == MaintenanceSpan(("ha-noi",), 100, 200)
    late = dataclasses.replace(row, announced_at=150)  # entered after the fact
    assert excluded(late) == MaintenanceSpan(("ha-noi",), 150, 200)
    stopped = dataclasses.replace(row, cancelled_at=120)
    assert excluded(stopped) == MaintenanceSpan(("ha-noi",), 100, 120)
    assert excluded(dataclasses.replace(row, cancelled_at=90)) is None  # before it started
    spans = [MaintenanceSpan((), 0, 10), MaintenanceSpan(("ha-noi/portal",), 10, 20)]
    assert covered(spans, "ha-noi", "portal") == [(0, 20)]  # touching: merged
    assert covered(spans, "ha-noi", "one-stop") == [(0, 10)]
    assert covered(spans, "_gateway", "uplink") == []  # never our own uplink
    assert history_since([(0, 20)], 20) == 0 and history_since([(0, 20)], 21) == 21


def test_a_breach_is_marked_or_late() -> None:
    row = IncidentRow("a", "s", opened_at=0, due_at=10, resolved_at=None, breached_at=None)
    assert breach_time(row, now=5) is None and breach_time(row, now=11) == 10
    assert breach_time(dataclasses.replace(row, resolved_at=9), now=11) is None
    assert breach_time(dataclasses.replace(row, resolved_at=12), now=11) == 10
    assert breach_time(dataclasses.replace(row, breached_at=10.5), now=5) == 10.5


def test_measure_a_plain_history() -> None:
    # UP, DOWN at 40 (an outage), UP at 50, DOWN at 70 inside the window 60-80 (not an
    # outage) and still down when it ends (one at 80), DEGRADED at 90: up 0-40, 50-60 and
    # 90-100 (of which degraded 10); down 40-50 and 80-90; maintenance 60-80.
    history = History([0, 40, 50, 70, 90], [U, DN, U, DN, State.DEGRADED])
    f = measure(history, [(60, 80)], 0, 100)
    assert f == Figures(
        up_seconds=40 + 10 + 10,
        down_seconds=10 + 10,
        maintenance_seconds=20,
        degraded_seconds=10,
        outages=2,
    )
    assert f.monitored_seconds + f.maintenance_seconds == 100
    assert measure(History([0], [None]), [], 0, 100).not_monitored_seconds == 100
