"""Off hours, an outage pages the people on duty (the agency's roster), not the whole technical
team: the real router, directory and rosters (on a real store), on an injected clock, across a
weekend, a public holiday, a dated override and a roster naming a high-level admin."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.alerting.model import Alert
from monitor.alerting.notices import RunningRouter
from monitor.config import Config
from monitor.contacts.directory import Directory
from monitor.registry import Registry
from monitor.rosters import Override, Rosters, Shift
from monitor.rosters import store as roster_store
from monitor.rosters.model import mask_of
from monitor.state import State
from monitor.store import Store
from monitor.workdays import WorkCalendar
from tests.test_api import World as ApiWorld
from tests.test_api import world as world_daemon  # noqa: F401 - the running daemon, a fixture

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CAL = WorkCalendar()


def hanoi(month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=VN).timestamp()


def config() -> Config:
    people = [
        {"id": "kt-an", "name": "KT An", "role": "technical-admin", "email": "an@hn.dvc.example"},
        {
            "id": "kt-binh",
            "name": "KT Bình",
            "role": "technical-admin",
            "email": "b@hn.dvc.example",
        },
        {"id": "cc-cuc", "name": "CC Cúc", "role": "high-level-admin", "email": "c@hn.dvc.example"},
    ]
    return Config.model_validate(
        {
            "agencies": [
                {
                    "id": "ha-noi",
                    "kind": "province",
                    "name_vi": "Hà Nội",
                    "name_en": "Hanoi",
                    "code": "01",
                    "contacts": [{**p, "channels": ["email"]} for p in people],
                    "systems": [
                        {
                            "id": "secure-server",
                            "kind": "secure-server",
                            "name": "Máy chủ bảo mật",
                            "checks": [
                                {"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}
                            ],
                        }
                    ],
                }
            ],
            "alerting": {
                "operations": [
                    {"name": "VPCP", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
                ]
            },
        }
    )


class World:
    def __init__(self, store: Store) -> None:
        self.now = hanoi(12, 12, 2)
        self.config = config()
        self.registry = Registry.from_config(self.config)
        self.rosters = Rosters(store, lambda: CAL, clock=lambda: self.now)
        directory = Directory.of_registry(self.config.agencies)
        self.router = RunningRouter(
            lambda: self.config.alerting,
            lambda: self.registry,
            lambda: directory,
            clock=lambda: self.now,
        )
        self.router.duty = lambda agency, ts: self.rosters.duty_targets(agency, ts, CAL)

    def told(self, state: State = State.DOWN) -> set[str]:
        """Whom an alert of ``state`` told to ha-noi's technical-admins reaches now."""
        alert = Alert(
            key="ha-noi/secure-server",
            agency="ha-noi",
            system="secure-server",
            name="Máy chủ bảo mật",
            agency_name_vi="Hà Nội",
            agency_name_en="Hanoi",
            agency_kind="province",
            system_kind="secure-server",
            state=state,
            since=self.now,
            reason="connect: refused",
            severity="critical",
            incident=f"ha-noi/secure-server@{int(self.now)}",
        )
        return {r.address for r in self.router().recipients(alert, ["technical-admins"])}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await Store.open(tmp_path / "state.db")
    shifts = [
        # Weeknights An (17:00 → 08:00, Friday's night into Saturday), the weekend Bình from
        # 08:00 for 24 hours (an equal end), Sunday's into Monday 08:00.
        Shift("ha-noi", mask_of([1, 2, 3, 4, 5]), "17:00", "08:00", "kt-an"),
        Shift("ha-noi", mask_of([6, 7]), "08:00", "08:00", "kt-binh"),
    ]
    await store.transact(lambda db: roster_store.replace_shifts(db, "ha-noi", shifts))
    w = World(store)
    await w.rosters.refresh()
    yield w
    await store.close()


EVERYONE = {"an@hn.dvc.example", "b@hn.dvc.example"}


async def test_off_hours_an_outage_pages_only_whoever_is_on_duty(world: World) -> None:
    world.now = hanoi(12, 12, 2)  # Saturday 02:00: Friday's night shift
    assert world.told() == {"an@hn.dvc.example"}
    world.now = hanoi(12, 12, 14)  # Saturday 14:00
    assert world.told() == {"b@hn.dvc.example"}
    world.now = hanoi(12, 14, 7)  # Monday 07:00: Sunday's shift, until 08:00
    assert world.told() == {"b@hn.dvc.example"}
    world.now = hanoi(12, 15, 20)  # Tuesday 20:00
    assert world.told() == {"an@hn.dvc.example"}
    world.now = hanoi(12, 15, 10)  # Tuesday 10:00: working hours, the normal routing
    assert world.told() == EVERYONE
    world.now = hanoi(12, 15, 20)
    assert world.told(State.DEGRADED) == EVERYONE  # a warning is not an outage
    assert world.told(State.FLAPPING) == {"an@hn.dvc.example"}


async def test_a_holiday_with_nobody_on_duty_pages_the_whole_team_and_an_override_fixes_it(
    world: World,
) -> None:
    world.now = hanoi(9, 2, 10)  # National Day, a Wednesday: off hours, no day shift
    assert not CAL.is_working_time(world.now, "ha-noi")
    assert world.told() == EVERYONE
    duty = Override("ha-noi", hanoi(9, 2, 8), hanoi(9, 2, 17), "cc-cuc", note="trực lễ")
    await world.rosters.store.transact(lambda db: roster_store.add_override(db, duty))
    await world.rosters.refresh()
    # A roster may name a high-level admin: she is the one paged for the technical team.
    assert world.told() == {"c@hn.dvc.example"}
    # "Nobody" for a night wins over the weekly shift: the whole team, and the gap is logged.
    nobody = Override("ha-noi", hanoi(12, 15, 17), hanoi(12, 16, 8), None, note="không ai")
    await world.rosters.store.transact(lambda db: roster_store.add_override(db, nobody))
    await world.rosters.refresh()
    world.now = hanoi(12, 15, 20)
    assert world.told() == EVERYONE


async def test_a_roster_naming_someone_unknown_pages_the_whole_team(world: World) -> None:
    gone = Override("ha-noi", hanoi(12, 15, 17), hanoi(12, 16, 8), "kt-da-nghi", note="đã nghỉ")
    await world.rosters.store.transact(lambda db: roster_store.add_override(db, gone))
    await world.rosters.refresh()
    world.now = hanoi(12, 15, 22)
    assert world.told() == EVERYONE


# ----- the pages say who is on duty now --------------------------------------------------------


async def test_the_overview_and_the_agency_page_say_who_is_on_duty_now(
    world_daemon: ApiWorld,  # noqa: F811
) -> None:
    national = await world_daemon.caller("national-admin", None)
    status, listed = await national.call("GET", "/api/v1/agencies/bo-a/contacts")
    assert status == 200, listed
    person = listed["contacts"][0]
    every_day = {"weekdays": [1, 2, 3, 4, 5, 6, 7], "starts": "00:00", "ends": "00:00"}
    status, answer = await national.call(
        "PUT",
        "/api/v1/agencies/bo-a/roster/shifts",
        {"shifts": [{**every_day, "contact_id": person["id"], "note": "cả ngày"}]},
    )
    assert status == 200, answer
    viewer = await world_daemon.caller("viewer", "bo-a")
    line = f"Đang trực: {person['name']}"
    for _ in range(50):  # the daemon's rosters refresh within a second or two
        _, page = await viewer.call("GET", "/agency/bo-a")
        if line in page:
            break
        await asyncio.sleep(0.1)
    assert line in page
    _, overview = await national.call("GET", "/")
    assert 'id="duty"' in overview and person["name"] in overview
    _, other = await national.call("GET", "/agency/bo-b")
    assert "Đang trực" not in other  # bo-b has no roster: no line
