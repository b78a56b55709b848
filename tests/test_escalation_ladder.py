"""Outages escalate around the clock; support requests keep the working-hour SLA (issue 11,
item 2), on an injected clock.

* an outage on Friday 19:00 goes to the high-level admins at 19:30 and to operations at 20:00
  (not on Monday), and the steps taken are recorded on its incident; an acknowledged one is
  not escalated; an outage has no working-hours due time;
* a support request received on Thursday 16:00 and entered on Friday is due 8 working hours
  after Thursday 16:00, and reminded from there; a complex one needs its published expected
  completion time, which is its due time; the refusals are sentences;
* the ladder's configuration: a retired ``escalate_after_working_hours`` names its file, line
  and field and says what to write; durations must increase; groups must be known;
* the migration of an existing database; the command line and the API, round trip; the
  incidents table of the pages.

The pipeline, outbox, incident desk and store are the real ones (tests/test_incidents.World);
the daemon for the API is the whole daemon on loopback (tests/test_api).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from monitor.config import ConfigError, load_config
from monitor.rules.incidents import (
    NO_DUE,
    OUTAGE,
    REQUEST,
    Incident,
    IncidentError,
    get_incident,
    list_incidents,
    mark_complex,
    open_incident,
)
from monitor.rules.incidents.model import check_received
from monitor.schema import MIGRATIONS
from monitor.state import State
from monitor.store import Store
from monitor.web.templates.render import incidents_table

from .test_api import World as ApiWorld
from .test_api import world  # noqa: F401 - the running daemon, a fixture
from .test_incidents import (
    CC,
    HANOI,
    KT,
    KT_INBOX,
    KT_PHONE,
    OPS,
    Cli,
    config_data,
    hanoi,
    make_world,
    store,  # noqa: F401 - a fixture
    write_config,
)

# The subject of an escalation message, in Vietnamese and in English (CC reads English).
ESCALATED = ("[NPSP] Chưa được xử lý", "[NPSP] Not handled")


def escalations(w: object, address: str) -> list[str]:
    sent = w.sent  # type: ignore[attr-defined]
    return [m.subject for m in sent.to(address) if m.subject.startswith(ESCALATED)]


# ----- outages: wall-clock escalation -------------------------------------------------------------


async def test_an_outage_on_friday_evening_escalates_that_evening(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    friday = hanoi(2026, 12, 4, 19, 0)  # Friday, after working hours
    w = make_world(store, tmp_path, friday)  # the default ladder: 30 min, 1 h
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.walk(hanoi(2026, 12, 4, 19, 29), every=60)
    # The alert itself went out at once.
    assert [m.subject.lower() for m in w.sent.to(KT)] == [
        "[npsp] hệ thống portal của tỉnh ha-noi: mất kết nối"
    ]
    assert escalations(w, CC) == [] and escalations(w, OPS) == []

    await w.walk(hanoi(2026, 12, 4, 19, 31), every=60)
    assert len(escalations(w, CC)) == 1  # high-level admins at 19:30
    assert escalations(w, OPS) == []
    incident_id = w.pipeline.alerts["ha-noi/portal"].incident
    stored = await get_incident(store, incident_id)
    assert stored is not None
    assert (stored.escalation_step, stored.escalated_to) == (1, "high-level-admins")
    assert stored.escalated_at is not None
    assert hanoi(2026, 12, 4, 19, 30) <= stored.escalated_at <= hanoi(2026, 12, 4, 19, 31)

    await w.walk(hanoi(2026, 12, 4, 20, 1), every=60)
    assert len(escalations(w, OPS)) == 1  # operations at 20:00, not Monday
    stored = await get_incident(store, incident_id)
    assert stored is not None
    assert (stored.escalation_step, stored.escalated_to) == (2, "operations")
    # An outage has no working-hours due time, so no SLA reminder or breach, all weekend.
    assert stored.due_at == NO_DUE
    await w.walk(hanoi(2026, 12, 8, 9, 0), every=3600)
    assert w.sent.incident(incident_id) == []
    assert w.breaches == 0
    assert len(escalations(w, CC)) == 1 and len(escalations(w, OPS)) == 1  # each step once


async def test_an_acknowledged_outage_is_not_escalated(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 19, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.at(hanoi(2026, 12, 4, 19, 10))
    incident_id = w.pipeline.alerts["ha-noi/portal"].incident
    from monitor.rules.incidents import acknowledge

    await acknowledge(store, incident_id, "Trực ban Hà Nội", w.now)
    await w.walk(hanoi(2026, 12, 5, 9, 0), every=60 * 5)
    assert escalations(w, CC) == [] and escalations(w, OPS) == []
    stored = await get_incident(store, incident_id)
    assert stored is not None and stored.escalation_step == 0 and stored.escalated_to is None


async def test_a_restart_takes_no_step_twice(store: Store, tmp_path: Path) -> None:  # noqa: F811
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 19, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.walk(hanoi(2026, 12, 4, 19, 40), every=60)
    assert len(escalations(w, CC)) == 1
    restarted = make_world(store, tmp_path, w.now)
    await restarted.start()
    await restarted.walk(hanoi(2026, 12, 4, 20, 5), every=60)
    assert escalations(restarted, CC) == []  # the outbox knew that message already
    assert len(escalations(restarted, OPS)) == 1
    incident_id = restarted.pipeline.alerts["ha-noi/portal"].incident
    stored = await get_incident(store, incident_id)
    assert stored is not None and (stored.escalation_step, stored.escalated_to) == (
        2,
        "operations",
    )


async def test_a_restart_after_a_flap_counts_the_ladder_from_the_outage_s_start(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Down at 19:00, escalated at 19:30; behind its parent for a minute at 19:40 (the stored
    state's 'since' moves to 19:41); restarted at 19:45: the step taken is not taken again
    under the rebuilt incident id, and operations are told at 20:00, not an hour after 19:41."""
    w = make_world(store, tmp_path, hanoi(2026, 12, 4, 19, 0))
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.walk(hanoi(2026, 12, 4, 19, 40), every=60)
    assert len(escalations(w, CC)) == 1
    w.event("ha-noi/portal", State.DOWN, State.UNREACHABLE, "ha-noi/one-stop is down")
    await w.at(hanoi(2026, 12, 4, 19, 41))
    w.event("ha-noi/portal", State.UNREACHABLE, State.DOWN)
    await w.at(hanoi(2026, 12, 4, 19, 45))
    restarted = make_world(store, tmp_path, w.now)
    await restarted.start()
    assert (
        restarted.pipeline.alerts["ha-noi/portal"].incident
        != w.pipeline.alerts["ha-noi/portal"].incident
    )  # rebuilt from the stored state's later 'since'
    await restarted.walk(hanoi(2026, 12, 4, 19, 59), every=60)
    assert escalations(restarted, CC) == [] and escalations(restarted, OPS) == []
    await restarted.walk(hanoi(2026, 12, 4, 20, 2), every=60)
    assert escalations(restarted, CC) == []
    assert len(escalations(restarted, OPS)) == 1


# ----- support requests ---------------------------------------------------------------------------


async def test_a_request_is_due_from_when_it_was_received(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    entered = hanoi(2026, 12, 4, 10, 0)  # Friday
    received = hanoi(2026, 12, 3, 16, 0)  # Thursday
    w = make_world(store, tmp_path, entered)
    request = await open_incident(
        store,
        w.registry,
        w.calendar,
        agency="ha-noi",
        system="portal",
        summary="Không đồng bộ hồ sơ",
        now=entered,
        received_at=received,
    )
    assert (request.source, request.received_at, request.opened_at) == (REQUEST, received, entered)
    # Thursday 16:00–17:00, Friday 08:00–12:00 and 13:00–16:00: 8 working hours.
    assert request.due_at == hanoi(2026, 12, 4, 16, 0)
    # Half of it is used on Friday 11:00 (1 h on Thursday, 3 h on Friday), not 4 h after entry.
    await w.walk(hanoi(2026, 12, 4, 10, 59), every=60)
    assert w.sent.incident(request.id) == []
    await w.walk(hanoi(2026, 12, 4, 11, 1), every=60)
    half = w.sent.incident(request.id)
    assert sorted(m.to for m in half) == sorted([KT, KT_INBOX, KT_PHONE])
    text = next(m.text for m in half if m.to == KT)
    assert "Tiếp nhận lúc: 16:00 03/12/2026 (nhập lúc 10:00 04/12/2026)" in text
    assert "Hạn xử lý: 16:00 04/12/2026 (8 giờ làm việc" in text
    await w.walk(hanoi(2026, 12, 4, 16, 1), every=60)
    assert w.breaches == 1


async def test_request_refusals_are_sentences(store: Store, tmp_path: Path) -> None:  # noqa: F811
    now = hanoi(2026, 12, 4, 10, 0)
    w = make_world(store, tmp_path, now)

    async def refused(**kwargs: object) -> str:
        with pytest.raises(IncidentError) as info:
            await open_incident(
                store, w.registry, w.calendar, agency="ha-noi", summary="x", now=now, **kwargs
            )  # type: ignore[arg-type]
        return str(info.value)

    assert await refused(is_complex=True) == (
        "a complex request needs the expected completion time published for it"
        " (--expected-completion; QĐ 31/2021, Chương VII, D.1)"
    )
    assert "cannot have been received in the future (10:01 04/12/2026)" in await refused(
        received_at=now + 60
    )
    # Nor long before: a request received 31 days ago would open already breached.
    assert "was received more than 30 days ago (" in await refused(received_at=now - 31 * 86400)
    check_received(now - 29 * 86400, now)  # within the month: accepted
    assert await refused(
        is_complex=True,
        received_at=hanoi(2026, 12, 3, 16, 0),
        expected_completion=hanoi(2026, 12, 3, 15, 0),
    ) == (
        "the expected completion time (15:00 03/12/2026) is before the request was received"
        " (16:00 03/12/2026)"
    )
    assert (await refused(expected_completion=now + 3600)).startswith(
        "only a complex request has a published expected completion time"
    )
    # Twenty years on: the reminders could not measure it in working hours.
    assert (await refused(is_complex=True, expected_completion=now + 20 * 365 * 86400)).startswith(
        "cannot use that expected completion time: "
    )
    assert await list_incidents(store) == []  # nothing was written


async def test_a_complex_request_is_due_at_its_expected_completion(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    now = hanoi(2026, 12, 4, 10, 0)
    w = make_world(store, tmp_path, now)
    expected = hanoi(2026, 12, 11, 17, 0)
    request = await open_incident(
        store,
        w.registry,
        w.calendar,
        agency="ha-noi",
        summary="Tích hợp lại chữ ký số",
        now=now,
        is_complex=True,
        expected_completion=expected,
    )
    assert (request.complex, request.expected_completion, request.due_at) == (
        True,
        expected,
        expected,
    )
    # 8 working hours later (Monday 10:00) nothing is late: its published time is what counts.
    await w.walk(hanoi(2026, 12, 7, 10, 30), every=1800)
    assert w.breaches == 0
    # A plain request found complex later: the time published for it becomes its due time.
    plain = await open_incident(
        store, w.registry, w.calendar, agency="ha-noi", summary="Lỗi kết nối", now=w.now
    )
    later = hanoi(2026, 12, 10, 17, 0)
    marked = await mark_complex(store, w.calendar, plain.id, later)
    assert (marked.complex, marked.due_at) == (True, later)
    stored = await get_incident(store, plain.id)
    assert stored is not None and (stored.complex, stored.expected_completion) == (True, later)
    with pytest.raises(IncidentError, match="is before the request was received"):
        await mark_complex(store, w.calendar, plain.id, hanoi(2026, 12, 1, 8, 0))
    # An outage is not a support request.
    w.event("ha-noi/one-stop", State.UP, State.DOWN)
    await w.step()
    outage = w.pipeline.alerts["ha-noi/one-stop"].incident
    with pytest.raises(IncidentError, match="is an outage, not a support request"):
        await mark_complex(store, w.calendar, outage, later)
    await w.walk(hanoi(2026, 12, 10, 16, 0), every=3600)
    assert w.breaches == 0


# ----- configuration -----------------------------------------------------------------------------


def write(tmp_path: Path, **alerting: object) -> Path:
    data = config_data(tmp_path / "state.db", **alerting)
    path = tmp_path / "npsp.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def issue_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    return str(issue)


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


def test_the_retired_working_hours_key_says_what_to_write(tmp_path: Path) -> None:
    path = write(tmp_path, escalate_after_working_hours=[2, 4])
    line = line_of(path, "escalate_after_working_hours")
    assert issue_of(path) == (
        f"{path}:{line}: alerting.escalate_after_working_hours: escalate_after_working_hours"
        " is no longer read: an outage escalates on wall-clock time, day and night. Write"
        " instead, for example, escalation: [{after: 30m, to: high-level-admins}, {after: 1h,"
        " to: operations}] (the durations count from the start of the outage); the"
        " working-hour SLA now applies to support requests only (calendar.rules.incident_sla)"
    )


def test_the_ladder_is_validated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        escalation=[{"after": "1h", "to": "operations"}, {"after": "30m", "to": "operations"}],
    )
    assert issue_of(path).endswith(
        "alerting.escalation[1].after: each escalation step comes later than the one before:"
        " 30m is not after 1h"
    )
    path = write(tmp_path, escalation=[{"after": "30m", "to": "boss"}])
    assert issue_of(path).endswith(
        "alerting.escalation[0].to: unknown group 'boss': an escalation step goes to"
        " high-level-admins, operations or technical-admins"
    )
    path = write(tmp_path, escalation=[{"after": "10m", "to": "operations"}])
    config = load_config(path)
    assert [(s.after, s.to) for s in config.alerting.escalation] == [(600.0, "operations")]
    assert [(s.after, s.to) for s in load_config(write(tmp_path)).alerting.escalation] == [
        (1800.0, "high-level-admins"),
        (3600.0, "operations"),
    ]


def test_the_example_config_has_a_ladder() -> None:
    example = Path(__file__).resolve().parent.parent / "config" / "npsp-monitor.example.yaml"
    raw = yaml.safe_load(example.read_text(encoding="utf-8"))
    assert raw["alerting"]["escalation"] == [
        {"after": "30m", "to": "high-level-admins"},
        {"after": "1h", "to": "operations"},
    ]


# ----- the migration -----------------------------------------------------------------------------


async def test_an_existing_database_is_migrated(tmp_path: Path) -> None:
    """A database of the previous schema: its requests were received when they were opened;
    an open outage loses its working-hours due time (it would otherwise breach on Monday);
    a resolved one keeps its history."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path, isolation_level=None)
    # The schema just before the migration that brought received_at (others came after it).
    at = next(i for i, m in enumerate(MIGRATIONS) if "received_at" in m)
    previous = MIGRATIONS[:at]
    for script in previous:
        for statement in filter(None, (s.strip() for s in script.split(";"))):
            db.execute(statement)
    db.execute(f"PRAGMA user_version={len(previous)}")
    rows = [
        ("req-1", "ha-noi", None, "request", "x", 100.0, 200.0, None),
        ("ha-noi/portal@100", "ha-noi", "portal", "outage", "y", 100.0, 200.0, None),
        ("ha-noi/portal@50", "ha-noi", "portal", "outage", "z", 50.0, 80.0, 90.0),
    ]
    db.executemany(
        "INSERT INTO incidents (id, agency, system, source, summary, opened_at, due_at,"
        " resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.close()
    s = await Store.open(path)
    try:
        request = await get_incident(s, "req-1")
        open_outage = await get_incident(s, "ha-noi/portal@100")
        old_outage = await get_incident(s, "ha-noi/portal@50")
    finally:
        await s.close()
    assert request is not None and open_outage is not None and old_outage is not None
    assert (request.received_at, request.complex, request.due_at) == (100.0, False, 200.0)
    assert (open_outage.due_at, open_outage.received_at, open_outage.escalation_step) == (
        NO_DUE,
        None,
        0,
    )
    assert old_outage.due_at == 80.0  # history is not rewritten


# ----- the command line --------------------------------------------------------------------------


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(write_config(tmp_path), hanoi(2026, 12, 4, 10, 0))  # entered on Friday
    code, out, err = cli(
        capsys, "open", "--agency", "ha-noi", "--summary", "Hỏi về tích hợp",
        "--received", "2026-12-03T16:00", "--init",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "opened req-1 for ha-noi: Hỏi về tích hợp",
        "received 2026-12-03T16:00+07:00",
        "due    2026-12-04T16:00+07:00 (8 working hours, QĐ 31/2021/QĐ-TTg, Điều 52 khoản 1)",
    ]
    code, out, err = cli(
        capsys, "open", "--agency", "ha-noi", "--summary", "Đổi chứng thư", "--complex",
        "--expected-completion", "2026-12-11T17:00", "--json",
    )  # fmt: skip
    assert (code, err) == (0, "")
    opened = json.loads(out)
    assert opened["complex"] is True
    assert opened["expected"] == opened["due"] == "2026-12-11T17:00+07:00"
    assert opened["received"] == "2026-12-04T10:00+07:00"

    code, out, err = cli(capsys, "open", "--agency", "ha-noi", "--summary", "x", "--complex")
    assert code == 2 and out == ""
    assert err == (
        "npsp-monitor: a complex request needs the expected completion time published for it"
        " (--expected-completion; QĐ 31/2021, Chương VII, D.1)\n"
    )
    code, _, err = cli(
        capsys, "open", "--agency", "ha-noi", "--summary", "x", "--received", "2026-12-05T09:00"
    )
    assert code == 2 and "cannot have been received in the future" in err

    code, out, err = cli(
        capsys, "complex", "req-1", "--expected-completion", "2026-12-09T12:00", "--by", "Lê C"
    )
    assert (code, err) == (0, "")
    assert out == "req-1 is complex; expected completion (its due time) 2026-12-09T12:00+07:00\n"

    # An outage, as the daemon opens it, lists how long it has lasted and how far it went.
    async def an_outage() -> None:
        s = await Store.open(tmp_path / "state.db")
        try:
            w = make_world(s, tmp_path, hanoi(2026, 12, 4, 19, 0))
            w.event("ha-noi/portal", State.UP, State.DOWN)
            await w.walk(hanoi(2026, 12, 4, 19, 35), every=60)
        finally:
            await s.close()

    asyncio.run(an_outage())
    cli.now = hanoi(2026, 12, 4, 20, 10)
    code, out, _ = cli(capsys, "list")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    # Complex, due Wednesday 12:00: Monday, Tuesday and Wednesday morning are left.
    assert rows["req-1"].split()[2:7] == [
        "2026-12-03T16:00+07:00",
        "2026-12-09T12:00+07:00",
        "20.0h",
        "open,",
        "complex",
    ]
    outage = next(line for key, line in rows.items() if key.startswith("ha-noi/portal@"))
    assert outage.split()[2:6] == ["2026-12-04T19:00+07:00", "-", "down", "1h10m"]
    assert "escalated to high-level-admins" in outage
    code, out, _ = cli(capsys, "list", "--json")
    listed = {r["id"]: r for r in json.loads(out)}
    portal = next(r for key, r in listed.items() if key.startswith("ha-noi/portal@"))
    assert (portal["due"], portal["remaining_working_hours"]) == (None, None)
    assert (portal["escalated_to"], portal["lasted_seconds"]) == ("high-level-admins", 4200)
    assert listed["req-1"]["complex"] is True


# ----- the API -----------------------------------------------------------------------------------


async def test_api_round_trip(world: ApiWorld) -> None:  # noqa: F811
    operator = await world.caller("operator", "bo-a")
    now = dt.datetime.now(HANOI)
    received = (now - dt.timedelta(hours=2)).isoformat()
    expected = (now + dt.timedelta(days=5)).replace(microsecond=0)
    status, opened = await operator.call(
        "POST",
        "/api/v1/incidents",
        {
            "agency": "bo-a",
            "summary": "Yêu cầu phức tạp",
            "received_at": received,
            "complex": True,
            "expected_completion": expected.isoformat(),
        },
    )
    assert status == 201, opened
    assert opened["complex"] is True and opened["source"] == "request"
    assert opened["received_at"] == pytest.approx(dt.datetime.fromisoformat(received).timestamp())
    assert opened["expected"] == opened["due"] == expected.isoformat(timespec="seconds")
    _, detail = await operator.call("GET", f"/api/v1/incidents/{opened['id']}")
    assert (detail["complex"], detail["expected_completion"]) == (True, expected.timestamp())

    status, answer = await operator.call(
        "POST", "/api/v1/incidents", {"agency": "bo-a", "summary": "x", "complex": True}
    )
    assert status == 400
    assert answer["error"].startswith("a complex request needs the expected completion time")
    future = (now + dt.timedelta(hours=1)).isoformat()
    status, answer = await operator.call(
        "POST", "/api/v1/incidents", {"agency": "bo-a", "summary": "x", "received_at": future}
    )
    assert status == 400 and "cannot have been received in the future" in answer["error"]

    status, plain = await operator.call(
        "POST", "/api/v1/incidents", {"agency": "bo-a", "summary": "thường"}
    )
    assert status == 201 and plain["complex"] is False and plain["received"] == plain["opened"]
    later = (now + dt.timedelta(days=3)).replace(microsecond=0)
    status, marked = await operator.call(
        "POST",
        f"/api/v1/incidents/{plain['id']}/complex",
        {"expected_completion": later.isoformat()},
    )
    assert status == 200, marked
    assert (marked["complex"], marked["due"]) == (True, later.isoformat(timespec="seconds"))
    status, answer = await operator.call(
        "POST", f"/api/v1/incidents/{plain['id']}/complex", {"expected_completion": received}
    )
    assert status == 400 and "is before the request was received" in answer["error"]
    viewer = await world.caller("viewer", "bo-a")
    status, _ = await viewer.call(
        "POST", f"/api/v1/incidents/{plain['id']}/complex", {"expected_completion": received}
    )
    assert status == 403


# ----- the pages ---------------------------------------------------------------------------------


def test_the_incidents_table_shows_escalation_and_complex_requests() -> None:
    outage = Incident(
        "ha-noi/portal@1", "ha-noi", "portal", OUTAGE, "down", hanoi(2026, 12, 4, 19, 0), NO_DUE
    )
    outage.escalation_step, outage.escalated_to = 2, "operations"
    outage.escalated_at = hanoi(2026, 12, 4, 20, 0)
    quiet = Incident("ha-noi/one-stop@1", "ha-noi", "one-stop", OUTAGE, "down", 1.0, NO_DUE)
    request = Incident(
        "req-1",
        "ha-noi",
        None,
        REQUEST,
        "hỏi",
        hanoi(2026, 12, 4, 10, 0),
        hanoi(2026, 12, 11, 17, 0),
        received_at=hanoi(2026, 12, 3, 16, 0),
        complex=True,
        expected_completion=hanoi(2026, 12, 11, 17, 0),
    )
    vi = incidents_table([outage, quiet, request], "vi", {})
    assert "đã chuyển lên bộ phận vận hành (VPCP) lúc 20:00 04/12/2026" in vi
    assert "chưa chuyển cấp" in vi
    assert "17:00 11/12/2026 (yêu cầu phức tạp: thời gian hoàn thành dự kiến)" in vi
    assert "16:00 03/12/2026" in vi  # received, not entered
    en = incidents_table([outage, request], "en", {})
    assert "escalated to operations (VPCP) at 20:00 04/12/2026" in en
    assert "(complex request: expected completion)" in en
