"""Maintenance windows: list, schedule (an agency's own, or portal-wide by a national-admin),
cancel."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from npsp_common.types import Moment

from ... import access
from ...access import Action
from ...alerting.messages import local_iso
from ...rules import maintenance as mnt
from ..routes import ApiError, Query, Route, path_number
from .common import (
    API,
    Body,
    SystemRef,
    Text,
    acting,
    body_of,
    caller,
    flag,
    local_time,
    record,
)


class MaintenanceCreate(Body):
    starts: Moment
    ends: Moment
    reason: Text
    scope: Annotated[list[SystemRef], Field(max_length=200)] = []
    override_reason: Text | None = None


class MaintenanceCancel(Body):
    reason: Text | None = None


def _window_json(w: mnt.Window, now: float) -> dict[str, Any]:
    return {
        "id": w.id,
        "status": w.status(now),
        "scope": list(w.scope),
        "portal_wide": w.portal_wide,
        "starts": local_iso(w.starts),
        "ends": local_iso(w.ends),
        "reason": w.reason,
        "announced_at": local_iso(w.announced_at),
        "working_days": w.working_days,
        "required": w.required,
        "compliant": w.compliant,
        "override_reason": w.override_reason,
        "author": w.author,
        "cancelled_at": local_iso(w.cancelled_at),
        "cancel_reason": w.cancel_reason,
    }


def _window_agencies(w: mnt.Window) -> set[str]:
    return {ref.partition("/")[0] for ref in w.scope}


async def maintenance_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    now = api.clock()
    windows = await mnt.list_windows(api.store, now=now, include_past=flag(request, "all"))
    visible = [
        _window_json(w, now)
        for w in windows
        if w.portal_wide or any(access.may_read(me, a) for a in _window_agencies(w))
    ]
    return web.json_response({"maintenance": visible})


async def maintenance_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await body_of(request, MaintenanceCreate)
    me = caller(request)
    try:
        scope = mnt.resolve_scope(api.engine.registry, body.scope)
    except mnt.MaintenanceError as exc:
        raise ApiError(400, str(exc)) from None
    agencies_in_scope = {ref.partition("/")[0] for ref in scope}
    only = next(iter(agencies_in_scope)) if len(agencies_in_scope) == 1 else None
    # The portal itself (no scope) or several agencies: the Government Office only.
    if only is None and not access.may_act(me, None, Action.OPERATE):
        raise ApiError(403, "only a national-admin schedules portal-wide maintenance")
    if only is not None:
        acting(request, only)
    now = api.clock()
    starts, _ = local_time(api, body.starts), local_time(api, body.ends)
    if starts < now - 60:
        raise ApiError(400, "a maintenance window cannot start in the past")
    try:
        window = await mnt.schedule(
            api.store,
            api.rules.ctx.calendar,
            api.engine.registry,
            starts=body.starts,
            ends=body.ends,
            reason=body.reason,
            scope=scope,
            override_reason=body.override_reason,
            author=f"{me.name} ({me.id})",
            now=api.clock(),
        )
    except mnt.MaintenanceError as exc:
        raise ApiError(400, str(exc)) from None
    await record(
        api,
        me,
        "maintenance.create",
        str(window.id),
        only,
        scope=list(scope),
        late=not window.compliant,
    )
    await api.rules.maintenance.refresh()
    return web.json_response(_window_json(window, api.clock()), status=201)


async def maintenance_cancel(request: web.Request) -> web.Response:
    api = request.app[API]
    raw = request.match_info["id"]
    number = path_number(raw)
    if number is None:
        raise ApiError(404, f"unknown maintenance window {raw!r}")
    now = api.clock()
    windows = await mnt.list_windows(api.store, now=now, include_past=True)
    found = next((w for w in windows if w.id == number), None)
    if found is None:
        raise ApiError(404, f"unknown maintenance window {raw!r}")
    me = caller(request)
    agencies_in_scope = _window_agencies(found)
    only = next(iter(agencies_in_scope)) if len(agencies_in_scope) == 1 else None
    if not access.may_act(me, only, Action.OPERATE):
        raise ApiError(403, f"{me.id} may not cancel maintenance #{raw}")
    body = await body_of(request, MaintenanceCancel)
    try:
        done = await mnt.cancel(api.store, found.id, now=now, reason=body.reason)
    except mnt.MaintenanceError as exc:
        raise ApiError(409, str(exc)) from None
    await record(api, me, "maintenance.cancel", raw, None, reason=body.reason)
    await api.rules.maintenance.refresh()
    return web.json_response(_window_json(done, now))


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/maintenance",
        maintenance_list,
        "Maintenance windows (all=1: past)",
        query=(Query("all"),),
    ),
    Route(
        "POST",
        "/api/v1/maintenance",
        maintenance_create,
        "Schedule a maintenance window (5 working days' notice, or override_reason)",
        MaintenanceCreate,
    ),
    Route(
        "POST",
        "/api/v1/maintenance/{id}/cancel",
        maintenance_cancel,
        "Cancel a window",
        MaintenanceCancel,
    ),
)
