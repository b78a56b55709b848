"""Maintenance windows: the notice against 5 working days, the scope, muting, the three notices
(once each, also across a restart), cancellation, alerts held by the real alert pipeline, and the
``maintenance`` command line. A real SQLite store, the real pipeline as the notice sink, an
injected clock; channels are function fakes (as in test_alert_pipeline)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from monitor.alerting.model import Alert
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.cli.maintenance import add_maintenance_commands
from monitor.config import Config
from monitor.registry import Registry
from monitor.rules.desk import RulesContext
from monitor.rules.incidents import IncidentDesk, list_incidents
from monitor.rules.maintenance import (
    LateNotice,
    MaintenanceDesk,
    MaintenanceError,
    Window,
    cancel,
    list_windows,
    notice_for,
    resolve_scope,
    schedule,
)
from monitor.state import Event, State
from monitor.store import Store
from monitor.workdays import WorkCalendar
from notifiers.textfold import fold_vietnamese, sms_segments
from tests.conftest import StateLocation
from tests.test_alert_pipeline import Sent, agency, make_config

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A moment in Hanoi time."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN)


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return at(year, month, day, hour, minute).timestamp()


MONDAY = ts(2026, 12, 7, 9, 0)  # the announcement: Monday 2026-12-07 09:00
START = at(2026, 12, 15, 20, 0)  # Tuesday: Tue 8 … Mon 14 = 5 working days of notice
END = at(2026, 12, 15, 22, 0)
LATE_START = at(2026, 12, 14, 20, 0)  # Monday: Tue 8 … Fri 11 = 4 working days: late
SOURCE = "QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2"

AGENCIES = [
    agency("ha-noi", "Hà Nội", ["secure-server", "one-stop"]),
    agency("hue", "Huế", ["secure-server"]),
]
OPS = "ops@vpcp.dvc.example"


def make_alert(key: str) -> Alert:
    agency_id, _, system = key.partition("/")
    return Alert(
        key,
        agency_id,
        system,
        system,
        "Đơn vị",
        "Agency",
        "ministry",
        "secure-server",
        State.DOWN,
        MONDAY,
        "check tcp: connect: refused",
        "critical",
        f"{key}@1",
    )


class World:
    """One daemon's maintenance desk wired to a real alert pipeline and outbox."""

    def __init__(self, store: Store, config: Config | None = None) -> None:
        self.now = MONDAY
        self.store = store
        self.config = config or make_config(AGENCIES)
        self.registry = Registry.from_config(self.config)
        self.calendar = WorkCalendar(self.config.calendar)
        self.outbox = Outbox(
            store, self.config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5
        )
        self.pipeline = AlertPipeline(
            self.config.alerting, self.registry, self.outbox, clock=lambda: self.now
        )
        self.late: list[float] = []
        self.ctx = RulesContext(
            store,
            self.calendar,
            self.pipeline,
            lambda: self.registry,
            clock=lambda: self.now,
            counters={"maintenance_late": lambda: self.late.append(self.now)},
        )
        self.desk = MaintenanceDesk(self.ctx)
        self.pipeline.muter.muters.append(self.desk)  # as the daemon wires it
        self.sent = Sent()
        self.workers = [
            OutboxWorker(self.outbox, self.sent.channel(c)) for c in ("sms", "email", "inbox")
        ]

    async def schedule(self, **kwargs: Any) -> Window:
        args: dict[str, Any] = {
            "starts": START,
            "ends": END,
            "reason": "Nâng cấp máy chủ",
            "author": "vpcp.ops",
            "now": self.now,
        }
        return await schedule(self.store, self.calendar, self.registry, **(args | kwargs))

    def event(self, key: str, old: State, new: State) -> None:
        agency_id, system = key.split("/")
        self.pipeline.on_events(
            [Event(self.now, agency_id, system, old, new, "check tcp: connect: refused", "gw")]
        )

    async def round(self) -> None:
        """What the daemon's loops do at ``now``: the desk, the pipeline, the outbox workers."""
        await self.desk.tick(self.now)
        await self.pipeline.tick()
        for worker in self.workers:
            while await worker.run_once():
                pass

    async def run_to(self, moment: float) -> None:
        """Let time pass until ``moment``, stopping wherever something falls due."""
        await self.round()
        while True:
            due = [self.pipeline.grouper.next_due()]
            due += [t for w in self.desk.windows.values() for t in (w.starts, w.ends)]
            later = [t for t in due if t is not None and self.now < t <= moment]
            if not later:
                break
            self.now = min(later)
            await self.round()
        self.now = moment
        await self.round()

    async def outbox_rows(self) -> int:
        return int(
            await self.store.transact(
                lambda db: db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            )
        )

    async def notified(self, window_id: int) -> tuple[float | None, float | None, float | None]:
        row = await self.store.transact(
            lambda db: db.execute(
                "SELECT notified_scheduled, notified_started, notified_ended"
                " FROM maintenance WHERE id = ?",
                (window_id,),
            ).fetchone()
        )
        return row[0], row[1], row[2]


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    s = await state_location.open()
    yield s
    await s.close()


# ----- the notice, counted in working days -----------------------------------------------------


async def test_five_working_days_of_notice_is_compliant(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["ha-noi"])
    assert (window.working_days, window.required, window.compliant) == (5, 5, True)
    assert window.override_reason is None
    assert window.announced_at == MONDAY
    assert window.starts == START.timestamp() and window.ends == END.timestamp()
    (stored,) = await list_windows(store, now=w.now)
    assert stored == window and stored.id == 1
    assert stored.notified_scheduled is None  # the desk has not told anyone yet


async def test_late_window_is_refused_without_an_override_and_nothing_is_stored(
    store: Store,
) -> None:
    w = World(store)
    with pytest.raises(LateNotice) as info:
        await w.schedule(starts=LATE_START, ends=LATE_START + dt.timedelta(hours=2))
    message = str(info.value)
    assert "4 working day(s)" in message
    assert "Tue 08/12, Wed 09/12, Thu 10/12, Fri 11/12" in message
    assert "at least 5 are required" in message
    assert SOURCE in message
    assert "--override REASON" in message
    assert "Start on 15/12/2026 or later" in message
    assert (info.value.working_days, info.value.required) == (4, 5)
    assert await list_windows(store, now=w.now, include_past=True) == []


async def test_late_window_with_an_override_is_stored_and_flagged(store: Store) -> None:
    w = World(store)
    late = await w.schedule(
        starts=LATE_START,
        ends=LATE_START + dt.timedelta(hours=2),
        override_reason="Vá lỗ hổng bảo mật khẩn cấp",
    )
    assert (late.working_days, late.compliant) == (4, False)
    assert late.override_reason == "Vá lỗ hổng bảo mật khẩn cấp"
    # An override on a window with enough notice is not needed, and not kept.
    fine = await w.schedule(override_reason="không cần")
    assert fine.compliant and fine.override_reason is None
    rows = await list_windows(store, now=w.now)
    assert [(r.id, r.compliant, r.override_reason) for r in rows] == [
        (1, False, "Vá lỗ hổng bảo mật khẩn cấp"),
        (2, True, None),
    ]


async def test_the_notice_skips_public_holidays_and_swapped_days_off(store: Store) -> None:
    """Wed 2026-08-26 → Fri 2026-09-04: Mon 31/8 (swapped day off), Tue 1/9 and Wed 2/9
    (National Day) are not working days, so only Thu 27, Fri 28 and Thu 3 count: late
    (counting weekdays alone would give 6)."""
    w = World(store)
    w.now = ts(2026, 8, 26, 10, 0)
    with pytest.raises(LateNotice) as info:
        await w.schedule(starts=at(2026, 9, 4, 20, 0), ends=at(2026, 9, 4, 23, 0))
    assert info.value.working_days == 3
    assert "Thu 27/08, Fri 28/08, Thu 03/09" in str(info.value)
    assert "Start on 08/09/2026 or later" in str(info.value)  # after Fri 4 and Mon 7 count


async def test_a_window_already_under_way_has_no_notice(store: Store) -> None:
    w = World(store)
    w.now = ts(2026, 12, 15, 21, 0)
    with pytest.raises(LateNotice, match="0 working day"):
        await w.schedule()
    window = await w.schedule(override_reason="sự cố phải xử lý ngay")
    assert (window.working_days, window.compliant) == (0, False)


async def test_an_earlier_announcement_counts_from_its_own_day(store: Store) -> None:
    w = World(store)
    w.now = ts(2026, 12, 10, 9, 0)  # Thursday: only 2 working days before Tuesday 15
    window = await w.schedule(announced_at=at(2026, 12, 4, 16, 0))  # Friday: Mon 7 … Mon 14
    assert (window.working_days, window.compliant) == (6, True)
    assert window.announced_at == ts(2026, 12, 4, 16, 0)
    with pytest.raises(MaintenanceError, match="cannot be in the future"):
        await w.schedule(announced_at=at(2026, 12, 11, 9, 0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ends": START - dt.timedelta(hours=1)}, "must end after it starts"),
        ({"ends": START}, "must end after it starts"),
        ({"ends": START + dt.timedelta(days=8)}, "at most 7 days"),
        ({"starts": at(2026, 12, 1, 20, 0), "ends": at(2026, 12, 1, 22, 0)}, "already over"),
        ({"reason": "  \n "}, "the reason must not be empty"),
        ({"reason": "x" * 501}, "at most 500"),
        ({"override_reason": " "}, "the override reason must not be empty"),
        ({"author": ""}, "the author must not be empty"),
    ],
)
async def test_invalid_windows_are_refused_with_a_clear_message(
    store: Store, changes: dict[str, Any], message: str
) -> None:
    w = World(store)
    with pytest.raises(MaintenanceError, match=message):
        await w.schedule(**changes)
    assert await list_windows(store, now=w.now, include_past=True) == []


async def test_the_reason_is_one_line(store: Store) -> None:
    window = await World(store).schedule(reason="Nâng cấp\n  máy chủ\tbảo mật ")
    assert window.reason == "Nâng cấp máy chủ bảo mật"


# ----- the scope ---------------------------------------------------------------------------------


def test_scope_is_checked_against_the_registry() -> None:
    registry = Registry.from_config(make_config(AGENCIES))
    with pytest.raises(MaintenanceError, match=r"unknown agency 'bo-y-te'.*known: ha-noi, hue"):
        resolve_scope(registry, ["bo-y-te"])
    with pytest.raises(
        MaintenanceError,
        match=r"unknown system 'ha-noi/portal': agency ha-noi has one-stop, secure-server",
    ):
        resolve_scope(registry, ["ha-noi/portal"])
    for bad in ["", "ha-noi/", "/one-stop", "ha-noi/one-stop/x", "ha noi"]:
        with pytest.raises(MaintenanceError, match="write AGENCY or AGENCY/SYSTEM"):
            resolve_scope(registry, [bad])
    # Duplicates go, and so does a system whose whole agency is in scope.
    refs = ["hue/secure-server", "ha-noi/one-stop", " ha-noi ", "hue/secure-server"]
    assert resolve_scope(registry, refs) == ("hue/secure-server", "ha-noi")
    assert resolve_scope(registry, []) == ()  # the whole portal


async def test_an_unknown_scope_stores_nothing(store: Store) -> None:
    w = World(store)
    with pytest.raises(MaintenanceError, match="unknown system 'hue/one-stop'"):
        await w.schedule(scope=["ha-noi", "hue/one-stop"])
    assert await list_windows(store, now=w.now, include_past=True) == []


# ----- muting ------------------------------------------------------------------------------------


async def test_a_window_mutes_the_systems_it_covers_only_while_it_lasts(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["ha-noi/secure-server"])
    await w.desk.refresh()
    starts, ends = START.timestamp(), END.timestamp()
    down = make_alert("ha-noi/secure-server")
    assert w.desk.mutes(down, starts - 1) is None
    assert w.desk.mutes(down, starts) == f"maintenance #{window.id}: Nâng cấp máy chủ"
    assert w.desk.mutes(down, ends - 1) is not None
    assert w.desk.mutes(down, ends) is None
    assert w.desk.mutes(make_alert("ha-noi/one-stop"), starts + 60) is None
    assert w.desk.mutes(make_alert("hue/secure-server"), starts + 60) is None


async def test_an_agency_window_mutes_every_system_of_that_agency(store: Store) -> None:
    w = World(store)
    await w.schedule(scope=["ha-noi"])
    await w.desk.refresh()
    inside = START.timestamp() + 60
    assert w.desk.mutes(make_alert("ha-noi/secure-server"), inside) is not None
    assert w.desk.mutes(make_alert("ha-noi/one-stop"), inside) is not None
    assert w.desk.mutes(make_alert("hue/secure-server"), inside) is None


async def test_a_portal_window_mutes_everything_but_our_own_uplink(store: Store) -> None:
    w = World(store)
    await w.schedule()
    await w.desk.refresh()
    inside = START.timestamp() + 60
    assert w.desk.mutes(make_alert("ha-noi/one-stop"), inside) is not None
    assert w.desk.mutes(make_alert("hue/secure-server"), inside) is not None
    assert w.desk.mutes(make_alert("_gateway/uplink"), inside) is None


async def test_mutes_reads_memory_only(store: Store) -> None:
    w = World(store)
    await w.desk.refresh()
    await w.schedule()  # written by "the command line": unseen until the next refresh
    inside = START.timestamp() + 60
    assert w.desk.mutes(make_alert("hue/secure-server"), inside) is None
    await w.desk.refresh()
    assert w.desk.mutes(make_alert("hue/secure-server"), inside) is not None


# ----- the three notices ------------------------------------------------------------------------


async def test_scheduled_started_and_ended_are_each_told_once_to_the_affected(
    store: Store,
) -> None:
    w = World(store)
    window = await w.schedule(scope=["ha-noi"])
    await w.desk.refresh()
    await w.run_to(MONDAY + 1)
    told = ["kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example", OPS]
    for address in told:
        (msg,) = w.sent.to(address)
        assert msg.subject == "[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026"
    assert w.sent.to("kt@hue.dvc.example") == []  # not in scope
    (email,) = w.sent.to("kt@ha-noi.dvc.example")
    assert "- mọi hệ thống của Hà Nội (ha-noi)" in email.text
    assert "Thời gian: 20:00–22:00 15/12/2026" in email.text
    assert "Lý do: Nâng cấp máy chủ" in email.text
    assert f"Thông báo trước 5 ngày làm việc (yêu cầu ít nhất 5; {SOURCE})" in email.text
    assert "MUỘN" not in email.text
    assert email.thread_key == "maintenance/1"
    assert (await w.notified(window.id))[0] == MONDAY  # told at once

    await w.run_to(START.timestamp() - 1)
    assert len(w.sent.messages) == 4  # nothing more until the start
    await w.run_to(START.timestamp() + 5)
    assert [m.subject for m in w.sent.to(OPS)][-1] == (
        "[NPSP] Bắt đầu bảo trì #1 (đến 22:00 15/12/2026)"
    )
    assert len(w.sent.messages) == 8
    await w.run_to(END.timestamp() + 5)
    assert [m.subject for m in w.sent.to("cc@ha-noi.dvc.example")] == [
        "[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026",
        "[NPSP] Bắt đầu bảo trì #1 (đến 22:00 15/12/2026)",
        "[NPSP] Kết thúc bảo trì #1",
    ]
    assert "Cảnh báo mất kết nối hoạt động trở lại" in w.sent.to(OPS)[-1].text
    assert len(w.sent.messages) == 12
    assert w.desk.windows == {}  # done with: no longer held in memory
    scheduled, started, ended = await w.notified(window.id)
    assert scheduled == MONDAY and started is not None and ended is not None
    await w.run_to(END.timestamp() + 86400)
    assert len(w.sent.messages) == 12


async def test_a_restarted_desk_repeats_nothing(store: Store) -> None:
    w = World(store)
    await w.schedule(scope=["hue/secure-server"])
    await w.desk.refresh()
    await w.run_to(START.timestamp() + 5)  # scheduled and started told
    rows = await w.outbox_rows()
    assert rows > 0
    # A new process on the same database.
    w.desk = MaintenanceDesk(w.ctx)
    await w.desk.refresh()
    await w.desk.tick(w.now)
    assert await w.outbox_rows() == rows
    # Killed after queuing "started" but before recording it: queuing it again is a no-op.
    await store.transact(lambda db: db.execute("UPDATE maintenance SET notified_started = NULL"))
    w.desk = MaintenanceDesk(w.ctx)
    await w.desk.refresh()
    await w.desk.tick(w.now)
    assert await w.outbox_rows() == rows
    assert (await w.notified(1))[1] == w.now
    await w.run_to(END.timestamp())
    assert await w.outbox_rows() > rows  # the end is still told
    assert [m.subject for m in w.sent.to(OPS)] == [
        "[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026",
        "[NPSP] Bắt đầu bảo trì #1 (đến 22:00 15/12/2026)",
        "[NPSP] Kết thúc bảo trì #1",
    ]


async def test_a_window_missed_while_the_daemon_was_down_is_told_in_order(store: Store) -> None:
    w = World(store)
    await w.schedule(scope=["hue"])
    w.now = END.timestamp() + 3600  # the daemon comes back after the window
    await w.desk.refresh()
    await w.run_to(w.now)
    assert [m.subject for m in w.sent.to("kt@hue.dvc.example")] == [
        "[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026",
        "[NPSP] Bắt đầu bảo trì #1 (đến 22:00 15/12/2026)",
        "[NPSP] Kết thúc bảo trì #1",
    ]
    (started,) = [m for m in w.sent.to(OPS) if "Bắt đầu" in m.subject]
    assert "đã bắt đầu lúc 20:00 15/12/2026" in started.text  # when it started, not when told


async def test_a_late_window_is_flagged_in_its_notice_and_counted_once(store: Store) -> None:
    w = World(store)
    await w.schedule(
        scope=["ha-noi/secure-server"],
        starts=LATE_START,
        ends=LATE_START + dt.timedelta(hours=2),
        override_reason="Vá lỗ hổng bảo mật khẩn cấp",
    )
    await w.desk.refresh()
    await w.run_to(MONDAY + 1)
    (email,) = w.sent.to("kt@ha-noi.dvc.example")
    assert (
        "THÔNG BÁO MUỘN: chỉ trước 4 ngày làm việc, ít hơn 5 ngày làm việc theo quy định "
        f"({SOURCE}). Lý do vẫn thực hiện: Vá lỗ hổng bảo mật khẩn cấp"
    ) in email.text
    assert "- Hệ thống secure-server của Hà Nội (ha-noi/secure-server)" in email.text
    assert w.late == [MONDAY]
    w.desk = MaintenanceDesk(w.ctx)  # restart: not counted again
    await w.desk.refresh()
    await w.run_to(LATE_START.timestamp() + 3 * 3600)
    assert w.late == [MONDAY]
    # The other notices mention it too; a compliant window is not counted.
    assert all("THÔNG BÁO MUỘN" in m.text for m in w.sent.to("kt@ha-noi.dvc.example"))
    await w.schedule(scope=["hue"], starts=at(2026, 12, 22, 20, 0), ends=at(2026, 12, 22, 22, 0))
    await w.desk.refresh()
    await w.run_to(w.now + 1)
    assert len(w.sent.to("kt@hue.dvc.example")) == 1
    assert w.late == [MONDAY]


async def test_a_portal_window_tells_operations_and_every_agencys_technical_admins(
    store: Store,
) -> None:
    w = World(store)
    await w.schedule()
    await w.desk.refresh()
    await w.run_to(MONDAY + 1)
    told = sorted(m.to for m in w.sent.messages)
    assert told == sorted(
        [OPS, "kt@ha-noi.dvc.example", "kt.ha-noi", "kt@hue.dvc.example", "kt.hue"]
    )
    assert "- toàn bộ Cổng Dịch vụ công quốc gia (mọi hệ thống)" in w.sent.to(OPS)[0].text


def test_notices_in_both_languages_and_short_sms() -> None:
    registry = Registry.from_config(make_config(AGENCIES))
    calendar = WorkCalendar()
    rule = calendar.settings.rules.maintenance_notice
    window = Window(
        id=12,
        scope=("ha-noi", "hue/secure-server"),
        starts=ts(2026, 12, 15, 22, 0),
        ends=ts(2026, 12, 16, 4, 0),
        reason="Chuyển đổi trung tâm dữ liệu " * 3,
        announced_at=MONDAY,
        working_days=4,
        required=5,
        compliant=False,
        override_reason="Yêu cầu của nhà cung cấp",
        author="vpcp.ops",
        created_at=MONDAY,
        cancelled_at=ts(2026, 12, 15, 23, 0),
    )
    for kind in ("scheduled", "started", "ended", "cancelled"):
        notice = notice_for(window, kind, registry, rule)
        assert notice.key == f"maintenance/12/{kind}"
        assert set(notice.text) == set(notice.sms) == set(notice.subject) == {"vi", "en"}
        for lang in ("vi", "en"):
            assert sms_segments(fold_vietnamese(notice.sms[lang])) == 1, notice.sms[lang]
            assert "ha-noi +1" in notice.sms[lang]
    scheduled = notice_for(window, "scheduled", registry, rule)
    assert scheduled.subject["en"] == (
        "[NPSP] Maintenance #12 scheduled: 22:00 15/12/2026 – 04:00 16/12/2026"
    )
    en = scheduled.text["en"]
    assert "- every system of Hà Nội (en) (ha-noi)" in en
    assert "- Hệ thống secure-server of Huế (en) (hue/secure-server)" in en
    assert "LATE NOTICE: announced only 4 working days ahead" in en
    assert "Reason for going ahead: Yêu cầu của nhà cung cấp" in en
    assert scheduled.sms["vi"].endswith("(BÁO MUỘN)")
    stopped = notice_for(window, "cancelled", registry, rule).text["en"]
    assert stopped.startswith("Maintenance #12 was stopped early at 23:00 15/12/2026")


# ----- cancellation ------------------------------------------------------------------------------


async def test_a_cancelled_window_is_told_as_cancelled_and_never_starts(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["hue"])
    await w.desk.refresh()
    await w.run_to(MONDAY + 1)
    assert len(w.sent.to("kt@hue.dvc.example")) == 1
    w.now = ts(2026, 12, 10, 9, 0)
    cancelled = await cancel(store, window.id, now=w.now, reason="Hoãn")
    assert cancelled.cancelled_at == w.now
    await w.desk.refresh()
    assert w.desk.mutes(make_alert("hue/secure-server"), START.timestamp() + 60) is None
    await w.run_to(END.timestamp() + 3600)
    subjects = [m.subject for m in w.sent.to("kt@hue.dvc.example")]
    assert subjects == ["[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026", "[NPSP] Hủy bảo trì #1"]
    assert "đã bị hủy lúc 09:00 10/12/2026" in w.sent.to(OPS)[-1].text
    assert (await w.notified(window.id))[1:] == (None, ts(2026, 12, 10, 9, 0))
    assert await list_windows(store, now=w.now) == []
    (listed,) = await list_windows(store, now=w.now, include_past=True)
    assert listed.status(w.now) == "cancelled"


async def test_cancelling_inside_the_window_ends_the_mute_and_says_so(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["hue"])
    await w.desk.refresh()
    await w.run_to(START.timestamp() + 600)
    down = make_alert("hue/secure-server")
    assert w.desk.mutes(down, w.now) is not None
    await cancel(store, window.id, now=w.now)
    await w.desk.refresh()
    assert w.desk.mutes(down, w.now) is None
    await w.run_to(w.now + 1)
    last = w.sent.to(OPS)[-1]
    assert last.subject == "[NPSP] Hủy bảo trì #1"
    assert last.text.startswith("Bảo trì #1 đã dừng sớm lúc 20:10 15/12/2026")
    assert len(w.sent.to(OPS)) == 3  # scheduled, started, cancelled: no "ended" later
    await w.run_to(END.timestamp() + 60)
    assert len(w.sent.to(OPS)) == 3


async def test_a_window_cancelled_before_anyone_heard_of_it_stays_quiet(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["hue"])
    await cancel(store, window.id, now=w.now)
    await w.desk.refresh()
    await w.run_to(END.timestamp() + 60)
    assert w.sent.messages == []


async def test_what_cannot_be_cancelled(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["hue"])
    with pytest.raises(MaintenanceError, match="there is no maintenance window #7"):
        await cancel(store, 7, now=w.now)
    await cancel(store, window.id, now=w.now)
    with pytest.raises(MaintenanceError, match="#1 was already cancelled 09:00 07/12/2026"):
        await cancel(store, window.id, now=w.now)
    other = await w.schedule(scope=["hue"])
    with pytest.raises(MaintenanceError, match="#2 is already over"):
        await cancel(store, other.id, now=END.timestamp())


async def test_the_cancellation_reason_is_kept_and_told(store: Store) -> None:
    w = World(store)
    window = await w.schedule(scope=["hue"])
    await w.desk.refresh()
    await w.run_to(MONDAY + 1)
    cancelled = await cancel(store, window.id, now=w.now, reason="Hoãn theo đề nghị của Huế")
    assert cancelled.cancel_reason == "Hoãn theo đề nghị của Huế"
    await w.desk.refresh()
    await w.run_to(w.now + 1)
    assert "Lý do hủy: Hoãn theo đề nghị của Huế" in w.sent.to(OPS)[-1].text


# ----- the alert pipeline holds alerts inside a window --------------------------------------------


async def test_alerts_inside_a_window_are_held_and_sent_after_it_if_still_down(
    store: Store,
) -> None:
    w = World(store)
    await w.schedule(scope=["ha-noi"])
    await w.desk.refresh()
    await w.run_to(START.timestamp() + 600)
    before, ops_before = len(w.sent.messages), len(w.sent.to(OPS))
    w.event("ha-noi/secure-server", State.UP, State.DOWN)  # still down after the window
    w.event("ha-noi/one-stop", State.UP, State.DOWN)  # back up inside the window
    w.event("hue/secure-server", State.UP, State.DOWN)  # not covered
    await w.run_to(w.now + 31)
    (hue,) = w.sent.to("kt@hue.dvc.example")
    assert "hue/secure-server" in hue.text  # alerted at once
    ops = w.sent.to(OPS)[ops_before:]
    assert len(ops) == 1 and "ha-noi" not in ops[0].text
    assert all("ha-noi/" not in m.text for m in w.sent.messages[before:])
    await w.run_to(START.timestamp() + 1800)
    w.event("ha-noi/one-stop", State.DOWN, State.UP)
    await w.run_to(END.timestamp() - 1)
    assert all("ha-noi/" not in m.text for m in w.sent.messages[before:])
    await w.run_to(END.timestamp() + 60)
    alerts = [m for m in w.sent.to("kt@ha-noi.dvc.example") if "bảo trì" not in m.subject]
    assert len(alerts) == 1
    assert "ha-noi/secure-server" in alerts[0].text
    assert "ha-noi/one-stop" not in alerts[0].text  # recovered inside: never alerted
    assert "ha-noi/one-stop" not in "".join(m.text for m in w.sent.messages)


async def test_a_recipient_told_of_other_outages_hears_of_the_held_one_when_the_window_ends(
    store: Store,
) -> None:
    w = World(store)
    await w.schedule(scope=["ha-noi"])
    await w.desk.refresh()
    await w.run_to(START.timestamp() + 600)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    w.event("hue/secure-server", State.UP, State.DOWN)  # operations hear of this one at once
    await w.run_to(END.timestamp() - 1)
    assert all("ha-noi/secure-server" not in m.text for m in w.sent.to(OPS))
    await w.run_to(END.timestamp() + 60)
    assert any("ha-noi/secure-server" in m.text for m in w.sent.to(OPS))


# ----- the command line --------------------------------------------------------------------------


def cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "npsp-monitor.yaml"
    document = {
        "state_db": "state.db",
        "agencies": AGENCIES,
        "alerting": {"operations": [{"name": "VPCP trực", "email": OPS, "channels": ["email"]}]},
        "channels": {"email": {"host": "127.0.0.1", "port": 25, "from_addr": "npsp@vpcp.example"}},
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def cli(
    argv: list[str], capsys: pytest.CaptureFixture[str], now: float = MONDAY
) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="npsp-monitor")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=Path, required=True)

    add_maintenance_commands(sub, with_config, clock=lambda: now)
    args = parser.parse_args(argv)
    code = args.func(args)
    assert isinstance(code, int)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_schedules_lists_and_cancels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ["-c", str(cli_config(tmp_path))]
    window = ["--start", "2026-12-15T20:00", "--end", "2026-12-15T22:00"]
    reason = ["--reason", "Nâng cấp máy chủ"]

    code, out, err = cli(
        ["maintenance", "schedule", *config, *window, *reason, "--json", "--init"], capsys
    )
    assert (code, err) == (0, "")
    stored = json.loads(out)
    assert stored["id"] == 1 and stored["scope"] == [] and stored["portal_wide"] is True
    assert stored["starts"] == "2026-12-15T20:00:00+07:00"
    assert (stored["working_days"], stored["required"], stored["compliant"]) == (5, 5, True)
    assert stored["status"] == "scheduled"

    late = ["--start", "2026-12-14T20:00", "--end", "2026-12-14T22:00"]
    code, out, err = cli(
        ["maintenance", "schedule", *config, *late, *reason, "--scope", "hue"], capsys
    )
    assert code == 2 and out == ""
    assert err.startswith("npsp-monitor: late notice:") and err.count("\n") == 1
    assert "--override REASON" in err and SOURCE in err

    code, out, err = cli(
        [
            "maintenance",
            "schedule",
            *config,
            *late,
            *reason,
            "--scope",
            "hue",
            "ha-noi/one-stop",
            "--override",
            "Khẩn cấp",
            "--author",
            "nguyen.van.a",
        ],
        capsys,
    )
    assert code == 0 and err == ""
    assert "scheduled maintenance #2" in out
    assert "scope   hue, ha-noi/one-stop" in out
    assert "LATE: 4 working day(s) ahead (at least 5); overridden: Khẩn cấp" in out

    code, out, err = cli(
        ["maintenance", "schedule", *config, *window, *reason, "--scope", "hue/portal"], capsys
    )
    assert code == 2 and "unknown system 'hue/portal'" in err
    backwards = ["--start", "2026-12-15T22:00", "--end", "2026-12-15T20:00"]
    code, out, err = cli(["maintenance", "schedule", *config, *backwards, *reason], capsys)
    assert code == 2 and "must end after it starts" in err

    code, out, _ = cli(["maintenance", "list", *config, "--json"], capsys)
    listed = json.loads(out)
    assert [(w["id"], w["compliant"], w["author"]) for w in listed] == [
        (2, False, "nguyen.van.a"),
        (1, True, listed[1]["author"]),
    ]
    code, out, _ = cli(["maintenance", "list", *config], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "STARTS", "ENDS", "NOTICE", "SCOPE", "REASON"]
    assert lines[1].startswith("#2  scheduled  2026-12-14 20:00  2026-12-14 22:00  4/5 LATE")

    code, out, err = cli(["maintenance", "cancel", *config, "2", "--reason", "Hoãn"], capsys)
    assert code == 0 and "cancelled maintenance #2" in out
    code, out, err = cli(["maintenance", "cancel", *config, "2"], capsys)
    assert code == 2 and "already cancelled" in err
    code, out, err = cli(["maintenance", "cancel", *config, "9"], capsys)
    assert code == 2 and err == "npsp-monitor: there is no maintenance window #9\n"
    code, out, _ = cli(["maintenance", "list", *config, "--json"], capsys)
    assert [w["id"] for w in json.loads(out)] == [1]
    code, out, _ = cli(["maintenance", "list", *config, "--all", "--json"], capsys)
    assert [(w["id"], w["status"]) for w in json.loads(out)] == [(2, "cancelled"), (1, "scheduled")]


async def test_the_daemons_desk_sees_what_the_command_line_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli_config(tmp_path)
    store = await Store.open(tmp_path / "state.db")
    try:
        w = World(store)
        await w.desk.refresh()
        version = await store.data_version()

        def run_cli() -> int:
            argv = ["maintenance", "schedule", "-c", str(path), "--scope", "hue"]
            argv += ["--start", "2026-12-15T20:00", "--end", "2026-12-15T22:00"]
            return cli([*argv, "--reason", "Nâng cấp"], capsys)[0]

        assert await asyncio.to_thread(run_cli) == 0  # another process, another connection
        assert await store.data_version() != version  # what wakes run_desks' refresh
        await w.desk.refresh()
        await w.run_to(MONDAY + 1)
        assert [m.subject for m in w.sent.to("kt@hue.dvc.example")] == [
            "[NPSP] Lịch bảo trì #1: 20:00–22:00 15/12/2026"
        ]
    finally:
        await store.close()


def test_cli_refuses_a_malformed_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ["-c", str(cli_config(tmp_path))]
    with pytest.raises(SystemExit) as info:
        cli(["maintenance", "schedule", *config, "--start", "15/12", "--end", "x"], capsys)
    assert info.value.code == 2
    assert "invalid date/time '15/12'" in capsys.readouterr().err


# ----- maintenance, incidents and escalation together ---------------------------------------------


async def test_an_outage_inside_a_window_is_no_incident_and_its_clocks_start_at_the_end(
    store: Store,
) -> None:
    """Down at 09:10 inside a 09:00–12:00 window and still down after it: no incident, no
    escalation inside the window; the incident (with the alert's id) and the escalation clock
    (the default ladder: high-level admins after 30 minutes) start at 12:00."""
    w = World(store)
    incidents = IncidentDesk(w.ctx, maintenance=w.desk.covering)
    w.pipeline.acks = incidents
    await w.schedule(starts=at(2026, 12, 15, 9, 0), ends=at(2026, 12, 15, 12, 0))
    await w.desk.refresh()
    await incidents.refresh()
    await w.run_to(ts(2026, 12, 15, 9, 10))
    event = Event(w.now, "ha-noi", "secure-server", State.UP, State.DOWN, "refused", "gw")
    w.pipeline.on_events([event])
    incidents.on_events([event])
    for moment in (ts(2026, 12, 15, 11, 30), ts(2026, 12, 15, 12, 0) - 1):
        await w.run_to(moment)
        await incidents.tick(w.now)
    assert await list_incidents(store) == []
    assert w.sent.to("kt@ha-noi.dvc.example") == [] or all(
        "maintenance" in m.subject.lower() or "bảo trì" in m.subject.lower()
        for m in w.sent.to("kt@ha-noi.dvc.example")
    )
    assert w.sent.to("cc@ha-noi.dvc.example") == [] or all(
        "Chưa được xử lý" not in m.subject for m in w.sent.to("cc@ha-noi.dvc.example")
    )
    await w.run_to(ts(2026, 12, 15, 12, 1))
    await incidents.tick(w.now)
    (incident,) = await list_incidents(store)
    assert incident.id == w.pipeline.alerts["ha-noi/secure-server"].incident
    assert incident.opened_at == ts(2026, 12, 15, 12, 1)
    # The escalation clock counts from the window's end: 12:00 + 30 min = 12:30; from the
    # outage's start it would have fallen at 09:40.
    await w.run_to(ts(2026, 12, 15, 12, 29))
    assert all("Chưa được xử lý" not in m.subject for m in w.sent.to("cc@ha-noi.dvc.example"))
    await w.run_to(ts(2026, 12, 15, 12, 31))
    assert any("Chưa được xử lý" in m.subject for m in w.sent.to("cc@ha-noi.dvc.example"))


async def test_a_group_holding_only_muted_alerts_does_not_spin(store: Store) -> None:
    w = World(store)
    await w.schedule(starts=at(2026, 12, 15, 9, 0), ends=at(2026, 12, 15, 12, 0))
    await w.desk.refresh()
    await w.run_to(ts(2026, 12, 15, 9, 10))
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.run_to(ts(2026, 12, 15, 10, 0))
    due = w.pipeline.grouper.next_due()
    assert due is not None and due > w.now  # the next look is in the future, not a busy loop
