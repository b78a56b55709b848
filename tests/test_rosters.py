"""Issue 15, item 3: duty rosters.

* who is on duty (Hanoi time, an injected clock): weekly shifts across a weekend, a night shift
  crossing midnight, a dated override (a swap, or nobody) winning over the pattern; whom an
  off-hours outage pages (:meth:`Rosters.duty_targets`): the normal routing in working hours (a
  swapped Saturday, 22/8/2026, is one), the people on duty outside them (National Day 2/9/2026
  and its swapped Monday 31/8/2026 are days off), the whole team when nobody is on duty;
* the store on both backends: the weekly pattern replaced, overrides added and removed, audited
  ``roster.update``, a contact that is not the agency's refused; the in-memory rosters
  following this process's own writes;
* the gap notice through a real outbox: said once, a day ahead (two ticks: one notice; a
  restart: none more), lunch breaks not counted;
* the API (/api/v1/agencies/{agency}/roster...): the RBAC matrix (own and another agency ×
  each role × a revoked account), malformed input;
* the page /agency/{id}/roster in headless Chromium: an agency-admin adds a shift and an
  override through the forms and sees them; a POST without the CSRF token is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import pytest

from monitor import accounts
from monitor.accounts import Account
from monitor.alerting.notices import NoticeSender, RunningRouter
from monitor.alerting.outbox import Outbox
from monitor.config import Config
from monitor.registry import Registry
from monitor.rosters import GapDesk, Override, Roster, RosterError, Rosters, Shift, actions
from monitor.rosters.model import mask_of
from monitor.rules.desk import RulesContext, run_desks
from monitor.sqldialect import Handle
from monitor.store import Store
from monitor.workdays import WorkCalendar
from tests.conftest import StateLocation, eventually
from tests.test_alert_pipeline import agency, make_config
from tests.test_api import (
    ROLES,
    Caller,
    World,
    world,  # noqa: F401 - the running daemon, a fixture
)
from tests.test_pages import devtools, usable_chromium

pytestmark = pytest.mark.timeout(120)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkCalendar()


def hanoi(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN).timestamp()


def shift(days: list[int], starts: str, ends: str, who: str) -> Shift:
    return Shift("ha-noi", mask_of(days), starts, ends, who)


# Weeknights X; weekend days and nights Y (Sunday's night ends Monday 08:00).
PATTERN = (
    shift([1, 2, 3, 4, 5], "17:00", "08:00", "x"),
    shift([6, 7], "08:00", "17:00", "y"),
    shift([6, 7], "17:00", "08:00", "y"),
)


class Held:
    """A :class:`Rosters` holding a given roster (its store unused)."""

    def __init__(self, roster: Roster) -> None:
        self.rosters = Rosters(None, lambda: CAL)  # type: ignore[arg-type]
        self.rosters._rosters = {roster.agency: roster}


# ----- who is on duty, whom an outage pages --------------------------------------------------


def test_weekly_shifts_across_a_weekend_and_midnight() -> None:
    r = Roster("ha-noi", PATTERN)
    assert r.on_duty(hanoi(8, 27, 20), VN) == ["x"]  # Thursday night
    assert r.on_duty(hanoi(8, 28, 7, 59), VN) == ["x"]  # the night shift past midnight
    assert r.on_duty(hanoi(8, 28, 8, 0), VN) == []  # its end excluded
    assert r.on_duty(hanoi(8, 28, 17, 0), VN) == ["x"]  # Friday night begins
    assert r.on_duty(hanoi(8, 29, 3), VN) == ["x"]  # ... into Saturday morning
    assert r.on_duty(hanoi(8, 29, 10), VN) == ["y"]  # Saturday day
    assert r.on_duty(hanoi(8, 30, 23), VN) == ["y"]  # Sunday night
    assert r.on_duty(hanoi(8, 31, 3), VN) == ["y"]  # ... Monday morning, Sunday's shift
    assert r.on_duty(hanoi(8, 31, 10), VN) == []  # Monday daytime: no shift
    assert r.on_duty(hanoi(9, 1, 3), VN) == ["x"]  # Monday night (a Tuesday morning)
    # A 24-hour shift (start = end), and weekdays named past Sunday refused.
    day_long = Roster("ha-noi", (shift([3], "08:00", "08:00", "z"),))
    assert day_long.on_duty(hanoi(9, 2, 9), VN) == ["z"]
    assert day_long.on_duty(hanoi(9, 3, 7), VN) == ["z"]
    assert day_long.on_duty(hanoi(9, 3, 8), VN) == []
    with pytest.raises(RosterError):
        mask_of([8])


def test_an_override_wins_over_the_pattern() -> None:
    swap = Override("ha-noi", hanoi(8, 28, 17), hanoi(8, 29, 8), "z", "đổi ca với x")
    nobody = Override("ha-noi", hanoi(8, 27, 17), hanoi(8, 28, 8), None)
    r = Roster("ha-noi", PATTERN, (swap, nobody))
    assert r.on_duty(hanoi(8, 28, 20), VN) == ["z"]  # the swap, not x
    assert r.on_duty(hanoi(8, 29, 7, 59), VN) == ["z"]
    assert r.on_duty(hanoi(8, 29, 8), VN) == ["y"]  # the swap over: Saturday's day shift
    assert r.on_duty(hanoi(8, 27, 20), VN) == []  # nobody, over x's shift
    extra = Override("ha-noi", hanoi(8, 28, 18), hanoi(8, 28, 19), "w")
    both = Roster("ha-noi", PATTERN, (swap, extra))
    assert both.on_duty(hanoi(8, 28, 18, 30), VN) == ["z", "w"]  # overlapping overrides: both


def test_duty_targets_follow_the_calendar() -> None:
    held = Held(Roster("ha-noi", PATTERN)).rosters
    targets = held.duty_targets
    assert targets("ha-noi", hanoi(8, 24, 10), CAL) is None  # a Monday at work: normal routing
    assert targets("ha-noi", hanoi(8, 24, 20), CAL) == ["x"]  # its night
    assert targets("ha-noi", hanoi(8, 29, 10), CAL) == ["y"]  # a weekend day
    # 22/8/2026 is a working Saturday: y's shift runs, but the normal routing applies.
    assert held.on_duty("ha-noi", hanoi(8, 22, 10)) == ["y"]
    assert targets("ha-noi", hanoi(8, 22, 10), CAL) is None
    assert targets("ha-noi", hanoi(8, 22, 18), CAL) == ["y"]  # its evening is off hours
    # 31/8 (the Monday swapped for 22/8) and 2/9 (National Day) are days off: nobody is on
    # duty in their daytime, so the whole team (None, and the gap logged).
    assert not CAL.is_working_time(hanoi(8, 31, 10), "ha-noi")
    assert held.on_duty("ha-noi", hanoi(8, 31, 10)) == []
    assert targets("ha-noi", hanoi(8, 31, 10), CAL) is None
    assert targets("ha-noi", hanoi(9, 2, 10), CAL) is None
    assert targets("ha-noi", hanoi(9, 2, 20), CAL) == ["x"]  # but its night is covered
    # An agency without a roster: None from both.
    assert held.on_duty("bo-y-te", hanoi(8, 29, 10)) is None
    assert targets("bo-y-te", hanoi(8, 29, 10), CAL) is None
    # The agency's own working hours count.
    late = WorkCalendar(CAL.settings.model_copy(update={"agency_working_hours": {
        "ha-noi": [(dt.time(8, 0), dt.time(21, 0))]}}))  # fmt: skip
    assert targets("ha-noi", hanoi(8, 24, 20), late) is None
    assert targets("ha-noi", hanoi(8, 24, 22), late) == ["x"]


def test_gaps_of_a_span() -> None:
    r = Roster("ha-noi", PATTERN)

    def working(ts: float) -> bool:
        return CAL.is_working_time(ts, "ha-noi")

    clocks = [t for span in CAL.settings.working_hours for t in span]
    gaps = r.gaps(hanoi(8, 30, 0), hanoi(9, 4, 0), VN, working, clocks)
    # Monday 31/8, Tuesday 1/9 and Wednesday 2/9 are days off; their daytimes are uncovered.
    # On 3/9, a working day, the lunch break is off hours too (the desk ignores it).
    assert gaps == [
        (hanoi(8, 31, 8), hanoi(8, 31, 17)),
        (hanoi(9, 1, 8), hanoi(9, 1, 17)),
        (hanoi(9, 2, 8), hanoi(9, 2, 17)),
        (hanoi(9, 3, 12), hanoi(9, 3, 13)),
    ]


# ----- the store (both backends) and the gap desk through a real outbox ------------------------


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    s = await state_location.open()
    yield s
    await s.close()


async def _account(store: Store, account_id: str, role: str, agency: str | None) -> Account:
    made, _ = await accounts.create(
        store,
        actor=None,
        account_id=account_id,
        name=account_id,
        role=role,
        agency=agency,
        agencies={"ha-noi", "bo-y-te"},
        now=hanoi(8, 1),
    )
    return made


class Desks:
    """The rosters and the gap desk of one daemon, on a real outbox and an injected clock."""

    def __init__(self, store: Store) -> None:
        self.now = hanoi(8, 30, 7)  # Sunday 07:00: tomorrow is the swapped Monday, 31/8
        self.store = store
        self.config: Config = make_config(
            [agency("ha-noi", "Hà Nội", ["portal"]), agency("bo-y-te", "Bộ Y tế", ["portal"])]
        )
        self.registry = Registry.from_config(self.config)
        self.outbox = Outbox(
            store, self.config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5
        )

    @property
    def ids(self) -> list[str]:
        """The registry contacts of ha-noi: its technical admin, its high-level admin."""
        a = next(a for a in self.config.agencies if a.id == "ha-noi")
        return [c.contact_id(a.id) for c in a.contacts]

    def desk(self) -> tuple[Rosters, GapDesk]:
        settings = lambda: self.config.alerting  # noqa: E731
        sender = NoticeSender(self.outbox, RunningRouter(settings, lambda: self.registry), settings)
        ctx = RulesContext(self.store, CAL, sender, lambda: self.registry, clock=lambda: self.now)
        rosters = Rosters(self.store, lambda: CAL, clock=lambda: self.now)
        return rosters, GapDesk(ctx, rosters)

    async def outbox_rows(self) -> list[tuple[str, str, str]]:
        return await self.store.transact(
            lambda db: [
                (str(r[0]), str(r[1]), str(r[2]))
                for r in db.execute("SELECT address, subject, text FROM outbox ORDER BY id")
            ]
        )


async def test_the_store_keeps_a_roster_and_audits_it(store: Store) -> None:
    d = Desks(store)
    kt = d.ids[0]
    national = await _account(store, "vpcp", "national-admin", None)
    op = await _account(store, "op", "operator", "ha-noi")
    rosters, _ = d.desk()
    await rosters.refresh()
    assert rosters.agencies() == [] and rosters.on_duty("ha-noi", d.now) is None
    shift_fields = [
        {"weekdays": [1, 2, 3, 4, 5], "starts": "17:00", "ends": "08:00", "contact_id": kt},
        {"weekdays": [6, 7], "starts": "08:00", "ends": "08:00", "contact_id": kt,
         "note": "cả ngày"},
    ]  # fmt: skip
    made = await actions.replace_shifts(
        store, actor=national, agency="ha-noi", shifts=shift_fields,
        agencies=d.config.agencies, now=d.now,
    )  # fmt: skip
    assert [(s.starts, s.ends, s.note) for s in made] == [
        ("17:00", "08:00", ""),
        ("08:00", "08:00", "cả ngày"),
    ]
    await rosters.tick(d.now)  # this process's own write: seen on the tick
    assert rosters.on_duty("ha-noi", d.now) == [kt]
    # The operator may not touch the weekly pattern, but swaps a night.
    with pytest.raises(RosterError) as refused:
        await actions.replace_shifts(store, actor=op, agency="ha-noi", shifts=[],
                                     agencies=d.config.agencies, now=d.now)  # fmt: skip
    assert refused.value.status == 403
    hl = d.ids[1]
    swap = await actions.add_override(
        store, actor=op, agency="ha-noi", starts=hanoi(8, 31, 17), ends=hanoi(9, 1, 8),
        contact_id=hl, note="đổi ca", agencies=d.config.agencies, now=d.now,
    )  # fmt: skip
    await rosters.tick(d.now)
    assert rosters.on_duty("ha-noi", hanoi(8, 31, 20)) == [hl]
    # Someone who is not the agency's, another agency's roster, an override that is over.
    other = next(a for a in d.config.agencies if a.id == "bo-y-te").contacts[0]
    for kw, status in (
        ({"contact_id": other.contact_id("bo-y-te")}, 400),
        ({"contact_id": "c-000000000000"}, 400),
        ({"agency": "bo-y-te", "contact_id": None}, 403),
        ({"ends": d.now - 1, "starts": d.now - 60, "contact_id": None}, 400),
        ({"ends": hanoi(8, 31, 17), "contact_id": None}, 400),  # ends at its start
        ({"ends": hanoi(10, 5), "contact_id": None}, 400),  # longer than 31 days
    ):
        args: dict[str, Any] = {"agency": "ha-noi", "starts": hanoi(8, 31, 17),
                                "ends": hanoi(9, 1, 8), "note": ""}  # fmt: skip
        args.update(kw)
        with pytest.raises(RosterError) as bad:
            await actions.add_override(store, actor=op, agencies=d.config.agencies, now=d.now,
                                       **args)  # fmt: skip
        assert bad.value.status == status, (kw, bad.value)
    await actions.remove_override(store, actor=op, agency="ha-noi", override_id=swap.id,
                                  now=d.now)  # fmt: skip
    with pytest.raises(RosterError) as gone:
        await actions.remove_override(store, actor=op, agency="ha-noi", override_id=swap.id,
                                      now=d.now)  # fmt: skip
    assert gone.value.status == 404
    await rosters.tick(d.now)
    assert rosters.on_duty("ha-noi", hanoi(8, 31, 20)) == [kt]
    trail = await store.transact(
        lambda db: db.execute(
            "SELECT actor, action, target, agency, detail FROM audit"
            " WHERE action = 'roster.update' ORDER BY id"
        ).fetchall()
    )
    assert [(a, t) for a, _, t, _, _ in trail] == [
        ("vpcp", "ha-noi/shifts"),
        ("op", f"ha-noi/overrides/{swap.id}"),
        ("op", f"ha-noi/overrides/{swap.id}"),
    ]
    assert json.loads(trail[0][4])["shifts"]["to"][1]["weekdays"] == [6, 7]
    assert json.loads(trail[2][4])["override"]["removed"] == swap.id
    # A weekly pattern replaced by none, no override: no roster at all.
    await actions.replace_shifts(store, actor=national, agency="ha-noi", shifts=[],
                                 agencies=d.config.agencies, now=d.now)  # fmt: skip
    await rosters.tick(d.now)
    assert rosters.on_duty("ha-noi", d.now) is None


class BrokenWatch:
    """A desk whose look at the database fails (a bug in it): the others must still look."""

    def __init__(self) -> None:
        self.ticks = 0

    async def refresh(self) -> None:
        pass

    def watch(self, db: Handle) -> NoReturn:
        raise ValueError("a bug in a watch")

    async def act(self, now: float, seen: object) -> None:
        raise AssertionError("nothing was read for it")

    async def tick(self, now: float) -> None:
        self.ticks += 1


@pytest.mark.parametrize("broken", [False, True], ids=["loop", "a-broken-watch"])
async def test_the_desks_loop_sees_this_processs_own_roster_write(
    store: Store, broken: bool
) -> None:
    """The rules loop reads every watching desk's stamp in one call a tick (not a transaction
    per desk); a write through the daemon's own connection, which does not move SQLite's
    data_version, is seen from that read; and a desk whose read fails leaves the others
    reading for themselves."""
    d = Desks(store)
    national = await _account(store, "vpcp", "national-admin", None)
    rosters, gaps = d.desk()
    await rosters.refresh()
    await actions.replace_shifts(
        store, actor=national, agency="ha-noi",
        shifts=[{"weekdays": [7], "starts": "00:00", "ends": "00:00", "contact_id": d.ids[0]}],
        agencies=d.config.agencies, now=d.now,
    )  # fmt: skip
    desks: list[Any] = [rosters, gaps]
    bug = BrokenWatch()
    if broken:
        desks.insert(0, bug)
    loop = asyncio.create_task(run_desks(store, desks, lambda: d.now))
    try:
        await eventually(lambda: rosters.on_duty("ha-noi", d.now) == [d.ids[0]], timeout=5)
        if broken:
            await eventually(lambda: bug.ticks >= 1, timeout=5)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_the_loops_read_takes_no_write_lock_on_sqlite(tmp_path: Path) -> None:
    """While another process (the command line) holds SQLite's write lock, the rules loop's
    once-a-second read still answers at once: it reads outside a transaction. A write
    transaction would wait for the lock (up to the connection's 10 s) and then fail."""
    store = await Store.open(tmp_path / "state.db")
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None, timeout=0)
    try:
        rosters, _ = Desks(store).desk()
        other.execute("BEGIN IMMEDIATE")
        version, (stamp,) = await asyncio.wait_for(store.watch([rosters.watch]), 5)
        assert isinstance(version, int) and stamp == (0, None, 0, None)
        # What a desk's own transaction does meanwhile: it waits for the lock.
        waiting = asyncio.ensure_future(store.transact(rosters.watch))
        done, _ = await asyncio.wait([waiting], timeout=0.5)
        assert not done
        other.execute("ROLLBACK")
        assert await waiting == stamp  # and goes on once it is released
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        await store.close()


class Counter:
    """A plain desk (no watch of its own) that counts its refreshes and ticks."""

    def __init__(self) -> None:
        self.refreshes = 0
        self.ticks = 0

    async def refresh(self) -> None:
        self.refreshes += 1

    async def tick(self, now: float) -> None:
        self.ticks += 1


@pytest.mark.parametrize("leading", [True, False], ids=["leader-a-broken-watch", "follower"])
async def test_a_write_by_another_host_refreshes_the_desks(
    store: Store, state_location: StateLocation, leading: bool
) -> None:
    """A roster written through another connection (another host, the command line) moves the
    database's version, so every host refreshes its desks: a follower, whose desks do not tick
    (on PostgreSQL the roster tables move the version too), and a leader one of whose desks'
    looks at the database fails (a bug in it must not stop the others refreshing)."""
    other = await state_location.open()
    try:
        d = Desks(store)
        national = await _account(other, "vpcp", "national-admin", None)
        rosters, _ = d.desk()
        counter = Counter()
        desks: list[Any] = [counter, rosters] + ([BrokenWatch()] if leading else [])
        loop = asyncio.create_task(run_desks(store, desks, lambda: d.now, lambda: leading))
        try:
            await eventually(lambda: counter.refreshes >= 1, timeout=5)  # the first round
            assert rosters.on_duty("ha-noi", d.now) is None
            await actions.replace_shifts(
                other, actor=national, agency="ha-noi",
                shifts=[{"weekdays": [7], "starts": "00:00", "ends": "00:00",
                         "contact_id": d.ids[0]}],
                agencies=d.config.agencies, now=d.now,
            )  # fmt: skip
            await eventually(lambda: rosters.on_duty("ha-noi", d.now) == [d.ids[0]], timeout=5)
            assert counter.refreshes >= 2
            assert (counter.ticks > 0) is leading
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
    finally:
        await other.close()


async def test_the_gap_notice_is_said_once_a_day_ahead(store: Store) -> None:
    d = Desks(store)
    kt = d.ids[0]
    national = await _account(store, "vpcp", "national-admin", None)
    await actions.replace_shifts(
        store, actor=national, agency="ha-noi",
        shifts=[{"weekdays": [1, 2, 3, 4, 5], "starts": "17:00", "ends": "08:00", "contact_id": kt},
                {"weekdays": [6, 7], "starts": "17:00", "ends": "08:00", "contact_id": kt}],
        agencies=d.config.agencies, now=d.now,
    )  # fmt: skip
    rosters, gaps = d.desk()
    await rosters.refresh()
    # Sunday 07:00: the window is Monday 07:00 to Tuesday 07:00. Monday 31/8 is a day off
    # (swapped for Saturday 22/8) with no daytime shift: one gap, 08:00 to 17:00. Sunday's
    # daytime (a gap too) starts within the day: not told now.
    assert gaps.gaps("ha-noi", d.now) == [(hanoi(8, 31, 8), hanoi(8, 31, 17))]
    await gaps.tick(d.now)
    told = await d.outbox_rows()
    assert told, "no gap notice"
    addresses = {a for a, _, _ in told}
    # The agency's technical and high-level admins (and not operations).
    assert "cc@ha-noi.dvc.example" in addresses
    assert addresses & {"kt@ha-noi.dvc.example", "kt.ha-noi"}
    assert "ops@vpcp.dvc.example" not in addresses
    subjects = {s for _, s, _ in told}
    assert any("không có người trực ngày 31/08" in s for s in subjects), subjects
    text = next(t for _, _, t in told)
    assert "Không có người trực ngày 31/08 (08:00 31/08 – 17:00 31/08)." in text
    assert "/agency/ha-noi/roster" in text
    # A second tick, a minute later: nothing more. A restart (a new desk): nothing more.
    d.now += 60
    await gaps.tick(d.now)
    rosters2, again = d.desk()
    await rosters2.refresh()
    await again.tick(d.now)
    assert await d.outbox_rows() == told
    # A day later: Tuesday 1/9 (National Day, off) has its gap told, once.
    d.now = hanoi(8, 31, 7)
    await gaps.tick(d.now)
    later = await d.outbox_rows()
    assert len(later) == 2 * len(told)
    assert all("01/09" in s for _, s, _ in later[len(told) :])
    # Covered by a swap the day after, no gap on 2/9 daytime; an agency without a roster: no
    # notice; a working day's lunch break: no notice.
    await actions.add_override(
        store, actor=national, agency="ha-noi", starts=hanoi(9, 2, 8), ends=hanoi(9, 2, 17),
        contact_id=kt, note="trực lễ", agencies=d.config.agencies, now=d.now,
    )  # fmt: skip
    await rosters.tick(d.now)
    d.now = hanoi(9, 1, 7)
    assert gaps.gaps("ha-noi", d.now) == []
    await gaps.tick(d.now)
    d.now = hanoi(9, 2, 7)  # the window holds Thursday 3/9, a working day
    assert gaps.gaps("ha-noi", d.now) == []
    await gaps.tick(d.now)
    assert len(await d.outbox_rows()) == len(later)


# ----- the API --------------------------------------------------------------------------------

ROSTER = "/api/v1/agencies/{a}/roster"


async def _kt(world: World, agency: str) -> str:  # noqa: F811
    caller = await world.caller("national-admin", None)
    status, listed = await caller.call("GET", f"/api/v1/agencies/{agency}/contacts")
    assert status == 200, listed
    return str(listed["contacts"][0]["id"])


def _future(days: int, hour: int) -> str:
    moment = dt.datetime.now(VN).replace(minute=0, second=0, microsecond=0)
    moment = moment + dt.timedelta(days=days)
    return moment.replace(hour=hour).isoformat()


async def _override(caller: Caller, agency: str, who: str | None) -> int:
    status, answer = await caller.call(
        "POST", ROSTER.format(a=agency) + "/overrides",
        {"starts": _future(2, 17), "ends": _future(3, 8), "contact_id": who},
    )  # fmt: skip
    assert status == 201, answer
    return int(answer["id"])


async def test_roster_rbac_matrix(world: World) -> None:  # noqa: F811
    national = await world.caller("national-admin", None)
    kt = {a: await _kt(world, a) for a in ("bo-a", "bo-b")}
    failures = []
    table: list[tuple[str, str, Any, dict[str, tuple[int, int]]]] = [
        ("GET", ROSTER, None, {"national-admin": (200, 200), "agency-admin": (200, 403),
                               "operator": (200, 403), "viewer": (200, 403)}),
        ("PUT", ROSTER + "/shifts", "shifts", {"national-admin": (200, 200),
                                                "agency-admin": (200, 403),
                                                "operator": (403, 403), "viewer": (403, 403)}),
        ("POST", ROSTER + "/overrides", "override", {"national-admin": (201, 201),
                                                     "agency-admin": (201, 403),
                                                     "operator": (201, 403),
                                                     "viewer": (403, 403)}),
        ("DELETE", ROSTER + "/overrides/{fresh}", None, {"national-admin": (200, 200),
                                                         "agency-admin": (200, 403),
                                                         "operator": (200, 403),
                                                         "viewer": (403, 403)}),
    ]  # fmt: skip

    def body(kind: Any, agency: str) -> Any:
        if kind == "shifts":
            return {"shifts": [{"weekdays": [6, 7], "starts": "08:00", "ends": "17:00",
                                "contact_id": kt[agency]}]}  # fmt: skip
        if kind == "override":
            return {"starts": _future(2, 17), "ends": _future(3, 8), "contact_id": None}
        return kind

    for role in ROLES:
        caller = await world.caller(role, "bo-a")
        for which, aid in (("own", "bo-a"), ("other", "bo-b")):
            for method, path, kind, matrix in table:
                fresh = await _override(national, aid, None) if "{fresh}" in path else ""
                url = path.format(a=aid, fresh=fresh)
                status, answer = await caller.call(method, url, body(kind, aid))
                want = matrix[role][0 if which == "own" else 1]
                if status != want:
                    failures.append(f"{role:<15} {which:<5} {method} {path}: {status} != {want}")
                if method == "GET" and status == 200:
                    assert answer["may_edit"] == (role in ("national-admin", "agency-admin"))
                    assert answer["may_swap"] == (role != "viewer")
    _, token = await accounts.create(
        world.store, actor=None, account_id="gone", name="Đã nghỉ", role="agency-admin",
        agency="bo-a", agencies={"bo-a", "bo-b"}, now=time.time(),
    )  # fmt: skip
    await accounts.revoke(world.store, actor=None, account_id="gone", now=time.time())
    victim = await _override(national, "bo-a", None)
    for who in (Caller(world.running.base, token), Caller(world.running.base, None)):
        for method, path, kind, _ in table:
            url = path.format(a="bo-a", fresh=victim)
            status, _answer = await who.call(method, url, body(kind, "bo-a"))
            if status != 401:
                failures.append(f"{who.token and 'revoked'} {method} {path}: {status} != 401")
    assert not failures, "\n".join(failures)
    # What the roster says now, and the audit trail of the changes.
    viewer = await world.caller("viewer", "bo-a")
    status, roster = await viewer.call("GET", ROSTER.format(a="bo-a"))
    assert status == 200 and roster["has_roster"]
    assert roster["shifts"][0]["name"] == "KT bo-a" and roster["shifts"][0]["weekdays"] == [6, 7]
    assert isinstance(roster["on_duty_now"], list) and isinstance(roster["off_hours_now"], bool)
    status, audit = await national.call("GET", "/api/v1/audit")
    entries = [e for e in audit["audit"] if e["action"] == "roster.update"]
    assert {e["agency"] for e in entries} == {"bo-a", "bo-b"}
    actors = {e["actor"] for e in entries}
    assert actors >= {"agency-admin-bo-a", "operator-bo-a", "national-admin-vpcp"}


async def test_roster_api_refuses_malformed_input(world: World) -> None:  # noqa: F811
    admin = await world.caller("agency-admin", "bo-a")
    kt = await _kt(world, "bo-a")
    url = ROSTER.format(a="bo-a") + "/shifts"
    good = {"weekdays": [1, 2, 3, 4, 5], "starts": "17:00", "ends": "08:00", "contact_id": kt}
    status, answer = await admin.call("PUT", url, {"shifts": [good]})
    assert status == 200 and answer["shifts"][0]["crosses_midnight"], answer
    other = await _kt(world, "bo-b")
    bad: list[tuple[Any, str]] = [
        ({"shifts": [{**good, "weekdays": [0]}]}, "weekdays"),
        ({"shifts": [{**good, "weekdays": [8]}]}, "weekdays"),
        ({"shifts": [{**good, "weekdays": ["1"]}]}, "weekdays"),
        ({"shifts": [{**good, "weekdays": [1, 1]}]}, "twice"),
        ({"shifts": [{**good, "weekdays": []}]}, "weekdays"),
        ({"shifts": [{**good, "weekdays": 1}]}, "weekdays"),
        ({"shifts": [{**good, "starts": "24:00"}]}, "starts"),
        ({"shifts": [{**good, "starts": "8:00"}]}, "starts"),
        ({"shifts": [{**good, "ends": "17:00:00"}]}, "ends"),
        ({"shifts": [{**good, "contact_id": "c-000000000000"}]}, "no contact"),
        ({"shifts": [{**good, "contact_id": other}]}, "no contact"),
        ({"shifts": [{**good, "contact_id": "../x"}]}, "contact_id"),
        ({"shifts": [{**good, "note": "a\nb"}]}, "note"),
        ({"shifts": [{**good, "note": "x" * 201}]}, "note"),
        ({"shifts": [{**good, "extra": 1}]}, "extra"),
        ({"shifts": [good] * 101}, "shifts"),
        ({"shifts": good}, "shifts"),
        ({}, "shifts"),
    ]
    for body, reason in bad:
        status, answer = await admin.call("PUT", url, body)
        assert status == 400 and reason in answer["error"], (body, status, answer)
    status, answer = await admin.call("PUT", url, raw=b"{not json")
    assert status == 400
    overrides = ROSTER.format(a="bo-a") + "/overrides"
    ok = {"starts": _future(2, 17), "ends": _future(3, 8), "contact_id": kt}
    bad = [
        ({k: v for k, v in ok.items() if k != "contact_id"}, "contact_id"),
        ({**ok, "ends": ok["starts"]}, "end after"),
        ({**ok, "ends": _future(40, 8)}, "31 days"),
        ({**ok, "starts": _future(-3, 8), "ends": _future(-2, 8)}, "over already"),
        ({**ok, "starts": "mai"}, "starts"),
        ({**ok, "starts": 1780000000}, "starts"),
        ({**ok, "contact_id": "c-000000000000"}, "no contact"),
    ]
    for body, reason in bad:
        status, answer = await admin.call("POST", overrides, body)
        assert status == 400 and reason in answer["error"], (body, status, answer)
    for path in ("/abc", "/999999", "/1" + "0" * 20):
        status, _ = await admin.call("DELETE", overrides + path)
        assert status == 404, path
    national = await world.caller("national-admin", None)
    status, _ = await national.call("GET", ROSTER.format(a="bo-zz"))
    assert status == 404
    # Another agency's override id, through this agency's path: unknown here.
    theirs = await _override(national, "bo-b", None)
    status, _ = await admin.call("DELETE", f"{overrides}/{theirs}")
    assert status == 404
    status, roster = await admin.call("GET", ROSTER.format(a="bo-a"))
    assert [s["starts"] for s in roster["shifts"]] == ["17:00"]  # nothing bad was stored
    # The daemon's rosters (for its router) see the change made through its own API.
    parts = world.running.daemon._life.parts
    assert parts is not None
    rosters = parts.core.rules.rosters

    def held() -> list[str]:
        found = rosters.roster("bo-a")
        return [] if found is None else [s.starts for s in found.shifts]

    # Both changes, each in its own refresh (the override for bo-b came last).
    await eventually(lambda: held() == ["17:00"] and rosters.roster("bo-b") is not None)


# ----- the page, in a real browser --------------------------------------------------------------


async def test_chromium_an_agency_admin_edits_the_roster(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    base = await usable_chromium(tmp_path)
    token = await world.account("agency-admin", "bo-a")
    kt = await _kt(world, "bo-a")
    site = world.running.base
    async with devtools(base) as page:
        await page.go(site + "/agency/bo-a/roster")
        assert await page.js("location.pathname") == "/login"
        await page.loading(
            page.js(
                f"document.getElementById('token').value = {json.dumps(token)};"
                " document.forms[document.forms.length - 1].submit()"
            )
        )
        assert await page.js("location.pathname") == "/agency/bo-a/roster"
        assert "Chưa có lịch trực" in await page.js("document.querySelector('p.on-duty').innerText")
        fill = (
            "const f = document.querySelector('form.shift');"
            "for (const b of f.querySelectorAll('input[name=weekdays]'))"
            " b.checked = ['1', '2', '3', '4', '5'].includes(b.value);"
            "f.starts.value = '17:00'; f.ends.value = '08:00';"
            f"f.contact_id.value = {json.dumps(kt)}; f.note.value = 'trực đêm';"
            "f.submit()"
        )
        await page.loading(page.js(fill))
        assert await page.js("location.pathname") == "/agency/bo-a/roster"
        row = await page.js("document.querySelector('table.shifts tbody tr').innerText")
        assert "T2 T3 T4 T5 T6" in row and "17:00–08:00" in row and "KT bo-a" in row, row
        assert "trực đêm" in row
        starts, ends = _future(2, 17)[:16], _future(3, 8)[:16]
        fill = (
            "const g = document.querySelector('form.override');"
            f"g.starts.value = {json.dumps(starts)}; g.ends.value = {json.dumps(ends)};"
            "g.contact_id.value = ''; g.note.value = 'không ai';"
            "g.submit()"
        )
        await page.loading(page.js(fill))
        row = await page.js("document.querySelector('table.overrides tbody tr').innerText")
        assert "Không ai" in row and "không ai" in row, row
        await page.screenshot(tmp_path / "roster.png")
        # A bad time: refused with the reason, nothing stored.
        await page.loading(
            page.js(
                "const h = document.querySelector('form.shift');"
                "h.querySelector('input[name=weekdays]').checked = true;"
                "h.starts.value = ''; h.submit()"
            )
        )
        assert "HH:MM" in await page.js("document.body.innerText")
        # A form without its CSRF token (what another page could make the browser send).
        await page.go(site + "/agency/bo-a/roster")
        await page.loading(
            page.js(
                "const k = document.createElement('form'); k.method = 'post';"
                " k.action = '/agency/bo-a/roster/shifts';"
                " for (const [n, v] of [['weekdays', '6'], ['starts', '08:00'],"
                f" ['ends', '17:00'], ['contact_id', {json.dumps(kt)}]]) {{"
                " const i = document.createElement('input'); i.name = n; i.value = v;"
                " k.appendChild(i); }"
                " document.body.appendChild(k); k.submit()"
            )
        )
        assert "không hợp lệ" in await page.js("document.body.innerText")
    viewer = await world.caller("viewer", "bo-a")
    status, roster = await viewer.call("GET", ROSTER.format(a="bo-a"))
    assert status == 200
    assert [(s["weekdays"], s["starts"], s["ends"]) for s in roster["shifts"]] == [
        ([1, 2, 3, 4, 5], "17:00", "08:00")
    ]  # the forged form added nothing, nor the bad one
    assert [o["contact_id"] for o in roster["overrides"]] == [None]
    _, audit = await (await world.caller("agency-admin", "bo-a")).call("GET", "/api/v1/audit")
    mine = [e for e in audit["audit"] if e["action"] == "roster.update"]
    assert len(mine) == 2 and all(e["source"] == "page" for e in mine)


async def test_the_roster_page_shows_each_role_its_forms(world: World) -> None:  # noqa: F811
    """Read with a bearer token (no form is posted: the browser test does that)."""
    want = {
        "national-admin": (200, True, True),
        "agency-admin": (200, True, True),
        "operator": (200, False, True),
        "viewer": (200, False, False),
    }
    for role, (status_wanted, shifts, overrides) in want.items():
        caller = await world.caller(role, "bo-a")
        status, page = await caller.call("GET", "/agency/bo-a/roster")
        assert status == status_wanted, (role, status)
        assert ('class="shift"' in page) == shifts, role
        assert ('class="override"' in page) == overrides, role
        assert "Đang trực" in page
        if role != "national-admin":
            status, _ = await caller.call("GET", "/agency/bo-b/roster")
            assert status == 403, role
    status, _ = await (await world.caller("viewer", "bo-a")).call("GET", "/agency/bo-zz/roster")
    assert status == 404


def test_a_past_swap_alone_is_no_roster() -> None:
    """An agency whose only override is over has no roster: the normal routing, no gaps."""
    past = Override("ha-noi", hanoi(8, 20, 17), hanoi(8, 21, 8), "z")
    held = Held(Roster("ha-noi", (), (past,))).rosters
    assert held.on_duty("ha-noi", hanoi(8, 20, 20)) == ["z"]
    assert held.duty_targets("ha-noi", hanoi(8, 20, 20), CAL) == ["z"]
    assert held.on_duty("ha-noi", hanoi(8, 24, 20)) is None
    assert held.duty_targets("ha-noi", hanoi(8, 24, 20), CAL) is None
