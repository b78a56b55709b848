"""An agency's duty roster: read it (its weekly shifts, its overrides, who is on duty now),
replace its weekly pattern (its agency-admins, national-admins), add or remove a dated override
(also its operators). The rules are :mod:`monitor.rosters.actions`'."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from npsp_common.types import LINE, Moment

from ...alerting.messages import local_iso
from ...contacts import directory as contacts_directory
from ...rosters import actions
from ...rosters.model import CLOCK, MAX_SHIFTS, Roster, RosterError, days_of
from ..routes import ApiError, Route, path_number
from .common import API, Api, Body, body_of, caller, local_time, reading

Clock = Annotated[str, Field(pattern=CLOCK.pattern)]
Weekday = Annotated[int, Field(ge=1, le=7)]
ContactId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Note = Annotated[str, Field(max_length=200), LINE]


class ShiftIn(Body):
    weekdays: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    starts: Clock
    ends: Clock
    contact_id: ContactId
    note: Note = ""


class ShiftsPut(Body):
    """The whole weekly pattern (an empty list: none)."""

    shifts: Annotated[list[ShiftIn], Field(max_length=MAX_SHIFTS)]


class OverrideCreate(Body):
    """``contact_id`` null: nobody on duty then."""

    starts: Moment
    ends: Moment
    contact_id: ContactId | None
    note: Note = ""


def roster_json(
    roster: Roster,
    directory: contacts_directory.Directory,
    on_duty: list[str],
    off_hours: bool,
    now: float,
) -> dict[str, Any]:
    def name(cid: str | None) -> str | None:
        person = None if cid is None else directory.find(roster.agency, cid)
        return None if person is None else person.contact.name

    return {
        "agency": roster.agency,
        "has_roster": roster.held(now),
        "shifts": [
            {
                "id": s.id,
                "weekdays": days_of(s.weekdays),
                "starts": s.starts,
                "ends": s.ends,
                "crosses_midnight": s.crosses_midnight,
                "contact_id": s.contact_id,
                "name": name(s.contact_id),
                "note": s.note,
                "updated_by": s.updated_by,
                "updated_at": local_iso(s.updated_at),
            }
            for s in roster.shifts
        ],
        "overrides": [
            {
                "id": o.id,
                "starts": local_iso(o.starts),
                "ends": local_iso(o.ends),
                "contact_id": o.contact_id,
                "name": name(o.contact_id),
                "note": o.note,
                "created_by": o.created_by,
                "created_at": local_iso(o.created_at),
            }
            for o in roster.overrides
        ],
        "off_hours_now": off_hours,
        "on_duty_now": [{"contact_id": c, "name": name(c)} for c in on_duty],
    }


def _agency(request: web.Request, api: Api) -> str:
    agency = request.match_info["agency"]
    reading(request, agency)  # another agency: 403 before whether it exists
    if agency not in {a.id for a in api.engine.config.agencies}:
        raise ApiError(404, f"no agency {agency!r}")
    return agency


async def _answer(api: Api, agency: str, me: Any, status: int = 200) -> web.Response:
    now = api.clock()
    roster = await actions.load(api.store, agency, now)
    agencies = api.engine.config.agencies
    directory = await api.store.transact(lambda db: contacts_directory.read(db, agencies))
    calendar = api.rules.ctx.calendar
    body = roster_json(
        roster,
        directory,
        roster.on_duty(now, calendar.tz),
        not calendar.is_working_time(now, agency),
        now,
    )
    body["may_edit"] = actions.may_edit(me, agency)
    body["may_swap"] = actions.may_swap(me, agency)
    return web.json_response(body, status=status)


async def roster_get(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    return await _answer(api, _agency(request, api), me)


async def shifts_put(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_edit(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not change {agency}'s weekly shifts")
    body = await body_of(request, ShiftsPut)
    try:
        await actions.replace_shifts(
            api.store,
            actor=me,
            agency=agency,
            shifts=[s.model_dump() for s in body.shifts],
            agencies=api.engine.config.agencies,
            now=api.clock(),
        )
    except RosterError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return await _answer(api, agency, me)


async def override_create(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_swap(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not change {agency}'s roster")
    body = await body_of(request, OverrideCreate)
    try:
        made = await actions.add_override(
            api.store,
            actor=me,
            agency=agency,
            starts=local_time(api, body.starts),
            ends=local_time(api, body.ends),
            contact_id=body.contact_id,
            note=body.note,
            agencies=api.engine.config.agencies,
            now=api.clock(),
        )
    except RosterError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return web.json_response(
        {
            "id": made.id,
            "agency": agency,
            "starts": local_iso(made.starts),
            "ends": local_iso(made.ends),
            "contact_id": made.contact_id,
            "note": made.note,
        },
        status=201,
    )


async def override_delete(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_swap(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not change {agency}'s roster")
    number = path_number(request.match_info["id"])
    if number is None:
        raise ApiError(404, f"no override {request.match_info['id']!r} in {agency}")
    try:
        await actions.remove_override(
            api.store, actor=me, agency=agency, override_id=number, now=api.clock()
        )
    except RosterError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return web.json_response({"removed": number})


_ROSTER = "/api/v1/agencies/{agency}/roster"
ROUTES: tuple[Route, ...] = (
    Route("GET", _ROSTER, roster_get, "An agency's duty roster and who is on duty now"),
    Route(
        "PUT",
        _ROSTER + "/shifts",
        shifts_put,
        "Replace an agency's weekly shifts (its agency-admins, national-admins)",
        body=ShiftsPut,
    ),
    Route(
        "POST",
        _ROSTER + "/overrides",
        override_create,
        "Add a dated override to an agency's roster (a swap; contact_id null: nobody)",
        body=OverrideCreate,
    ),
    Route(
        "DELETE",
        _ROSTER + "/overrides/{id}",
        override_delete,
        "Remove a dated override from an agency's roster",
    ),
)
