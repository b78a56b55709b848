"""Silences: list, create (a national-admin only), end."""

from __future__ import annotations

from aiohttp import web

from npsp_common.types import Moment

from ... import access, audit
from ...access import Action
from ...rules.silences import store as silences_store
from ...sqldialect import Handle
from ..routes import ApiError, Route, path_number
from .common import (
    API,
    Body,
    Empty,
    Id,
    Text,
    acting,
    body_of,
    caller,
    local_time,
)


class SilenceCreate(Body):
    agency: Id
    system: Id | None = None
    starts: Moment | None = None
    ends: Moment
    reason: Text


async def silences_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    now = api.clock()
    rows = await api.store.transact(lambda db: silences_store.active(db, now))
    return web.json_response(
        {"silences": [s.as_json() for s in rows if access.may_read(me, s.agency)]}
    )


async def silence_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await body_of(request, SilenceCreate)
    me = caller(request)
    if not access.may_act(me, body.agency, Action.SILENCE):
        # Agencies plan maintenance windows instead.
        raise ApiError(403, "only a national-admin creates silences; plan maintenance instead")
    if body.agency not in api.agencies():
        raise ApiError(404, f"unknown agency {body.agency!r}")
    if (
        body.system is not None
        and f"{body.agency}/{body.system}" not in api.engine.registry.systems
    ):
        raise ApiError(404, f"unknown system {body.agency}/{body.system}")
    now = api.clock()
    starts = now if body.starts is None else local_time(api, body.starts)
    ends = local_time(api, body.ends)
    if ends <= max(starts, now):
        raise ApiError(400, "ends must be in the future and after starts")
    if ends - starts > 7 * 86400:
        raise ApiError(400, "a silence lasts at most 7 days (plan longer work as maintenance)")

    def write(db: Handle) -> int:
        silence_id = silences_store.add(
            db,
            agency=body.agency,
            system=body.system,
            starts=starts,
            ends=ends,
            reason=body.reason,
            created_by=me.id,
            created_at=now,
        )
        audit.audit_write(
            db,
            now,
            me.id,
            "silence.create",
            str(silence_id),
            body.agency,
            {"system": body.system, "ends": ends, "reason": body.reason},
            "api",
        )
        return silence_id

    silence_id = await api.store.transact(write)
    await api.rules.silences.refresh()
    return web.json_response(
        {
            "id": silence_id,
            "agency": body.agency,
            "system": body.system,
            "starts": starts,
            "ends": ends,
            "reason": body.reason,
        },
        status=201,
    )


async def silence_cancel(request: web.Request) -> web.Response:
    api = request.app[API]
    raw = request.match_info["id"]
    number = path_number(raw)
    if number is None:
        raise ApiError(404, f"unknown silence {raw!r}")
    row = await api.store.transact(lambda db: silences_store.state(db, number))
    if row is None:
        raise ApiError(404, f"unknown silence {raw!r}")
    me = acting(request, row[0])
    await body_of(request, Empty)
    if row[1] is not None:
        raise ApiError(409, f"silence {raw} is already cancelled")
    now = api.clock()

    def write(db: Handle) -> None:
        silences_store.cancel(db, number, now)
        audit.audit_write(db, now, me.id, "silence.cancel", raw, row[0], {}, "api")

    await api.store.transact(write)
    await api.rules.silences.refresh()
    return web.json_response({"id": number, "cancelled_at": now})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/silences", silences_list, "Active silences"),
    Route("POST", "/api/v1/silences", silence_create, "Silence alerts for a while", SilenceCreate),
    Route("POST", "/api/v1/silences/{id}/cancel", silence_cancel, "End a silence", Empty),
)
