"""The incidents store's statements, one by one, on a real database; and the dialect helpers
they are written with (:mod:`monitor.sqldialect`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitor import sqldialect
from monitor.rules.incidents import store as rows
from monitor.rules.incidents.model import (
    NO_DUE,
    REQUEST,
    Incident,
    next_request_id,
    outage,
)
from monitor.sqldialect import Handle
from monitor.store import Store
from tests.conftest import StateLocation


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    opened = await state_location.open()
    try:
        yield opened
    finally:
        await opened.close()


def request(ident: str, opened_at: float, due_at: float, agency: str = "ha-noi") -> Incident:
    return Incident(ident, agency, None, REQUEST, "help", opened_at, due_at, received_at=opened_at)


def test_the_dialect_writes_portable_inserts() -> None:
    assert sqldialect.placeholders(3) == "?, ?, ?"
    assert sqldialect.insert("t", ("a", "b"), returning="id") == (
        "INSERT INTO t (a, b) VALUES (?, ?) RETURNING id"
    )
    assert sqldialect.insert_ignore("t", ("a", "b"), key=("a",)) == (
        "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING"
    )
    assert sqldialect.upsert("t", ("a", "b", "c"), key=("a",), update=("b", "c")) == (
        "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"
        " ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = excluded.c"
    )


async def test_the_dialect_runs_on_the_store(store: Store) -> None:
    def work(db: Handle) -> tuple[int, int, list[tuple[str, str]]]:
        upsert = sqldialect.upsert(
            "observed_values",
            ("check_key", "field", "value", "since"),
            key=("check_key", "field"),
            update=("value", "since"),
        )
        db.execute(upsert, ("k", "f", "one", 1.0))
        db.execute(upsert, ("k", "f", "two", 2.0))
        columns = ("ts", "agency", "system", "old_state", "new_state", "reason", "vantage")
        statement = sqldialect.insert("state_changes", columns, returning="id")
        first = db.execute(statement, (1.0, "a", "s", "UP", "DOWN", "r", "v")).fetchone()[0]
        second = db.execute(statement, (2.0, "a", "s", "DOWN", "UP", "r", "v")).fetchone()[0]
        values = db.execute("SELECT field, value FROM observed_values").fetchall()
        return first, second, values

    first, second, values = await store.transact(work)
    assert second == first + 1
    assert values == [("f", "two")]


async def test_an_existing_incident_keeps_its_row(store: Store) -> None:
    def work(db: Handle) -> Incident | None:
        rows.add(db, outage("ha-noi/portal@1", "ha-noi", "portal", 1.0, "first"))
        rows.add(db, outage("ha-noi/portal@1", "ha-noi", "portal", 2.0, "again"))
        return rows.get(db, "ha-noi/portal@1")

    found = await store.transact(work)
    assert found is not None
    assert (found.summary, found.opened_at, found.due_at) == ("first", 1.0, NO_DUE)
    assert found.complex is False
    assert await store.transact(lambda db: rows.get(db, "nothing")) is None


async def test_request_numbers_follow_the_highest(store: Store) -> None:
    def work(db: Handle) -> str:
        for ident in ("req-2", "req-10"):
            rows.add(db, request(ident, 1.0, 100.0))
        rows.add(db, outage("ha-noi/portal@7", "ha-noi", "portal", 7.0, "down"))
        return next_request_id(rows.request_ids(db))

    assert await store.transact(work) == "req-11"
    assert next_request_id([]) == "req-1"


async def test_reminders_and_the_breach_are_recorded_once(store: Store) -> None:
    def work(db: Handle) -> list[bool]:
        rows.add(db, request("req-1", 1.0, 100.0))
        return [
            rows.mark_reminded(db, "req-1", 50),
            rows.mark_reminded(db, "req-1", 50),
            rows.mark_breached(db, "req-1", 101.0),
            rows.mark_breached(db, "req-1", 102.0),
        ]

    assert await store.transact(work) == [True, False, True, False]
    found = await store.transact(lambda db: rows.get(db, "req-1"))
    assert found is not None
    assert (found.reminded, found.breached_at) == (100, 101.0)


async def test_a_recovery_resolves_the_outages_up_to_it(store: Store) -> None:
    def work(db: Handle) -> tuple[list[str], list[str]]:
        rows.add(db, outage("ha-noi/portal@1", "ha-noi", "portal", 1.0, "down"))
        rows.add(db, outage("ha-noi/portal@5", "ha-noi", "portal", 5.0, "down"))
        rows.add(db, outage("ha-noi/portal@9", "ha-noi", "portal", 9.0, "down"))
        rows.add(db, outage("hue/portal@1", "hue", "portal", 1.0, "down"))
        ended = rows.open_outages(db, "ha-noi", "portal", 6.0)
        rows.resolve_outages(db, "ha-noi", "portal", 6.0, "connection restored")
        return sorted(ended), [i.id for i in rows.unresolved(db)]

    ended, still = await store.transact(work)
    assert ended == ["ha-noi/portal@1", "ha-noi/portal@5"]
    assert still == ["hue/portal@1", "ha-noi/portal@9"]  # oldest first
    closed = await store.transact(lambda db: rows.get(db, "ha-noi/portal@5"))
    assert closed is not None
    assert (closed.resolved_at, closed.resolved_by, closed.resolution) == (
        6.0,
        "system",
        "connection restored",
    )


async def test_an_escalation_step_is_recorded_once(store: Store) -> None:
    def work(db: Handle) -> Incident | None:
        rows.add(db, outage("ha-noi/portal@1", "ha-noi", "portal", 1.0, "down"))
        rows.record_escalation(db, "ha-noi/portal@1", 1, "first", 10.0)
        rows.record_escalation(db, "ha-noi/portal@1", 1, "first", 20.0)  # a restart took it again
        rows.record_escalation(db, "ha-noi/portal@1", 2, "second", 30.0)
        return rows.get(db, "ha-noi/portal@1")

    found = await store.transact(work)
    assert found is not None
    assert (found.escalation_step, found.escalated_to, found.escalated_at) == (2, "second", 30.0)


async def test_late_resolutions_are_found_and_marked(store: Store) -> None:
    def work(db: Handle) -> tuple[list[str], list[str]]:
        rows.add(db, request("req-1", 1.0, 100.0))
        rows.add(db, request("req-2", 1.0, 100.0))
        rows.set_resolved(db, "req-1", 150.0, "an", "done")  # late
        rows.set_resolved(db, "req-2", 50.0, "an", "done")  # in time
        late = rows.resolved_late(db)
        rows.mark_late(db, late, 200.0)
        return late, rows.resolved_late(db)

    assert await store.transact(work) == (["req-1"], [])
    found = await store.transact(lambda db: rows.get(db, "req-1"))
    assert found is not None
    assert (found.breached_at, found.reminded) == (200.0, 100)


async def test_select_filters_and_limits_newest_first(store: Store) -> None:
    def work(db: Handle) -> None:
        rows.add(db, request("req-1", 1.0, 100.0))
        rows.add(db, request("req-2", 2.0, 100.0, agency="hue"))
        rows.add(db, request("req-3", 3.0, 100.0))
        rows.set_acknowledged(db, "req-3", 4.0, "an")
        rows.set_complex(db, "req-3", 500.0)
        rows.set_resolved(db, "req-1", 5.0, "an", "done")

    await store.transact(work)

    async def ids(
        open_only: bool = False, agency: str | None = None, limit: int | None = None
    ) -> list[str]:
        found = await store.transact(
            lambda db: rows.select(db, open_only=open_only, agency=agency, system=None, limit=limit)
        )
        return [i.id for i in found]

    assert await ids() == ["req-3", "req-2", "req-1"]
    assert await ids(open_only=True) == ["req-3", "req-2"]
    assert await ids(agency="ha-noi") == ["req-3", "req-1"]
    assert await ids(limit=1) == ["req-3"]
    found = await store.transact(lambda db: rows.get(db, "req-3"))
    assert found is not None
    assert (found.complex, found.due_at, found.expected_completion) == (True, 500.0, 500.0)
    assert (found.acknowledged_at, found.acknowledged_by) == (4.0, "an")


async def test_comments_come_back_oldest_first(store: Store) -> None:
    def work(db: Handle) -> tuple[list[tuple[float, str, str]], list[tuple[float, str, str]]]:
        rows.add_comment(db, "req-1", 2.0, "an", "called them")
        rows.add_comment(db, "req-1", 1.0, "binh", "first look")  # entered second
        rows.add_comment(db, "req-2", 3.0, "an", "elsewhere")
        return rows.comments(db, "req-1"), rows.comments(db, "req-9")

    assert await store.transact(work) == (
        [(2.0, "an", "called them"), (1.0, "binh", "first look")],
        [],
    )
