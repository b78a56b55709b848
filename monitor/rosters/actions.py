"""What may be done to an agency's duty roster, checked and audited (``roster.update``): read
it, replace its weekly pattern, add or remove a dated override.

Who may (the rules of :mod:`monitor.access`, applied here): a national-admin every agency's
roster; an agency-admin its own agency's, all of it; an operator its agency's dated overrides (a
swap) only; a viewer reads; another agency's account is refused (403). A contact named must be
one of the agency's listed people (:mod:`monitor.contacts.directory`: the registry's ``y-…``
and slug ids, the stored ``c-…`` ids; a removed one is not listed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .. import access
from ..access import Action, Holder
from ..alerting.messages import local_iso
from ..audit import audit_write
from ..config import Agency
from ..contacts import directory as contacts_directory
from ..sqldialect import Handle
from ..store import Store
from . import store as rows
from .model import (
    MAX_OVERRIDE,
    MAX_SHIFTS,
    Override,
    Roster,
    RosterError,
    Shift,
    days_of,
    mask_of,
    minutes,
    roster_of,
)

MAX_NOTE = 200
#: How long a finished override stays listed (and in memory): a week, to see last night's swap.
KEPT = 7 * 86400.0


class Actor(Holder, Protocol):
    @property
    def id(self) -> str: ...


def may_read(actor: Holder, agency: str) -> bool:
    return actor.active and access.may_read(actor, agency)


def may_edit(actor: Holder, agency: str) -> bool:
    """The weekly pattern: the agency's agency-admins, national-admins."""
    return actor.active and access.may_act(actor, agency, Action.MANAGE_CONTACTS)


def may_swap(actor: Holder, agency: str) -> bool:
    """Dated overrides: also the agency's operators."""
    return actor.active and access.may_act(actor, agency, Action.OPERATE)


def _refuse(actor: Actor, agency: str, what: str) -> RosterError:
    return RosterError(f"{actor.id} ({actor.role}) may not {what} {agency}'s roster", 403)


def _check_contacts(db: Handle, agencies: Iterable[Agency], agency: str, ids: set[str]) -> None:
    directory = contacts_directory.read(db, agencies)
    unknown = sorted(i for i in ids if directory.find(agency, i) is None)
    if unknown:
        raise RosterError(f"no contact {', '.join(map(repr, unknown))} in {agency}", 400)


def note_of(value: object) -> str:
    """A note: one line of at most 200 characters."""
    note = str(value or "").strip()
    if len(note) > MAX_NOTE or any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise RosterError(f"a note is one line of at most {MAX_NOTE} characters")
    return note


def _shift_json(s: Shift) -> dict[str, Any]:
    return {
        "weekdays": days_of(s.weekdays),
        "starts": s.starts,
        "ends": s.ends,
        "contact_id": s.contact_id,
        "note": s.note,
    }


def validated_shifts(
    agency: str, shifts: Sequence[Mapping[str, Any]], by: str, now: float
) -> list[Shift]:
    """Shifts from their fields (``weekdays``: ISO days 1-7, ``starts``/``ends``: HH:MM, the
    end before the start for a night shift, equal for 24 hours; ``contact_id``; ``note``)."""
    if len(shifts) > MAX_SHIFTS:
        raise RosterError(f"at most {MAX_SHIFTS} shifts")
    out = []
    for n, f in enumerate(shifts, 1):
        days = list(f.get("weekdays") or [])
        if not days:
            raise RosterError(f"shift {n}: no weekday")
        if len(set(days)) != len(days):
            raise RosterError(f"shift {n}: a weekday given twice")
        try:
            mask = mask_of(days)
            minutes(str(f.get("starts")))
            minutes(str(f.get("ends")))
            if not f.get("contact_id"):
                raise RosterError("no contact")
        except RosterError as exc:
            raise RosterError(f"shift {n}: {exc}") from None
        out.append(
            Shift(
                agency=agency,
                weekdays=mask,
                starts=str(f["starts"]),
                ends=str(f["ends"]),
                contact_id=str(f["contact_id"]),
                note=note_of(f.get("note")),
                created_by=by,
                created_at=now,
                updated_by=by,
                updated_at=now,
            )
        )
    return out


async def load(store: Store, agency: str, now: float) -> Roster:
    """The agency's roster: its weekly shifts, its overrides not ended a week before ``now``."""

    def read(db: Handle) -> Roster:
        return roster_of(agency, rows.shifts(db, agency), rows.overrides(db, now - KEPT, agency))

    return await store.transact(read)


async def replace_shifts(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    shifts: Sequence[Mapping[str, Any]],
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> list[Shift]:
    """The agency's weekly pattern becomes ``shifts`` (an empty list: no weekly shifts)."""
    if not may_edit(actor, agency):
        raise _refuse(actor, agency, "change")
    new = validated_shifts(agency, shifts, actor.id, now)

    def write(db: Handle) -> list[Shift]:
        _check_contacts(db, agencies, agency, {s.contact_id for s in new})
        before = [_shift_json(s) for s in rows.shifts(db, agency)]
        rows.replace_shifts(db, agency, new)
        detail = {"shifts": {"from": before, "to": [_shift_json(s) for s in new]}}
        audit_write(db, now, actor.id, "roster.update", f"{agency}/shifts", agency, detail, source)
        return rows.shifts(db, agency)

    return await store.transact(write)


async def add_override(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    starts: float,
    ends: float,
    contact_id: str | None,
    note: str,
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> Override:
    """Put ``contact_id`` (None: nobody) on duty in ``[starts, ends)``, over the pattern."""
    if not may_swap(actor, agency):
        raise _refuse(actor, agency, "change")
    if ends <= starts:
        raise RosterError("an override must end after it starts")
    if ends - starts > MAX_OVERRIDE:
        raise RosterError("an override lasts at most 31 days (change the weekly shifts instead)")
    if ends <= now:
        raise RosterError("this override would be over already")
    note = note_of(note)
    made = Override(agency, starts, ends, contact_id, note, 0, actor.id, now, actor.id, now)

    def write(db: Handle) -> Override:
        if contact_id is not None:
            _check_contacts(db, agencies, agency, {contact_id})
        oid = rows.add_override(db, made)
        detail = {
            "override": {
                "added": oid,
                "starts": local_iso(starts),
                "ends": local_iso(ends),
                "contact_id": contact_id,
                "note": note,
            }
        }
        audit_write(db, now, actor.id, "roster.update", f"{agency}/overrides/{oid}", agency,
                    detail, source)  # fmt: skip
        found = rows.override(db, oid)
        assert found is not None
        return found

    return await store.transact(write)


async def remove_override(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    override_id: int,
    now: float,
    source: str = "api",
) -> None:
    if not may_swap(actor, agency):
        raise _refuse(actor, agency, "change")

    def write(db: Handle) -> None:
        found = rows.override(db, override_id)
        if found is None or found.agency != agency:
            raise RosterError(f"no override {override_id} in {agency}", 404)
        rows.remove_override(db, override_id)
        detail = {
            "override": {
                "removed": override_id,
                "starts": local_iso(found.starts),
                "ends": local_iso(found.ends),
                "contact_id": found.contact_id,
            }
        }
        target = f"{agency}/overrides/{override_id}"
        audit_write(db, now, actor.id, "roster.update", target, agency, detail, source)

    await store.transact(write)


__all__ = [
    "KEPT",
    "add_override",
    "load",
    "may_edit",
    "may_read",
    "may_swap",
    "remove_override",
    "replace_shifts",
    "validated_shifts",
]
