"""Change announcements of secure servers: list, announce, withdraw."""

from __future__ import annotations

from aiohttp import web

from ... import access
from ...rules.announcements import AnnouncementRejected, AnnouncementRequest
from ...rules.announcements import cancel as cancel_announcement
from ..routes import ApiError, Route, path_number
from .common import (
    API,
    Empty,
    Id,
    acting,
    body_of,
    caller,
    record,
)


class AnnouncementCreate(AnnouncementRequest):
    agency: Id


async def announcements_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    items = [
        a.as_json()
        for a in reversed(api.rules.announcements.items)
        if access.may_read(me, a.agency)
    ]
    return web.json_response({"announcements": items})


async def announcement_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await body_of(request, AnnouncementCreate)
    me = acting(request, body.agency)
    # Who announced is the account, not a claim; the body is validated once, as it came.
    request_ = body.model_copy(update={"author": f"{me.name} ({me.id})"})
    try:
        stored, new = await api.rules.announcements.submit(request_, body.agency, "api")
    except AnnouncementRejected as exc:
        raise ApiError(404 if "unknown agency" in str(exc) else 400, str(exc)) from None
    if new:
        await record(
            api,
            me,
            "announcement.create",
            str(stored.id),
            stored.agency,
            compliant=stored.compliant,
            working_days=stored.working_days,
        )
    return web.json_response({**stored.as_json(), "new": new}, status=201 if new else 200)


async def announcement_cancel(request: web.Request) -> web.Response:
    api = request.app[API]
    raw = request.match_info["id"]
    number = path_number(raw)
    if number is None:
        raise ApiError(404, f"unknown announcement {raw!r}")
    found = next((a for a in api.rules.announcements.items if a.id == number), None)
    if found is None:
        raise ApiError(404, f"unknown announcement {raw!r}")
    me = acting(request, found.agency)
    await body_of(request, Empty)
    try:
        done = await cancel_announcement(api.store, found.id, api.clock())
    except AnnouncementRejected as exc:
        raise ApiError(409, str(exc)) from None
    await record(api, me, "announcement.cancel", raw, found.agency)
    await api.rules.announcements.refresh()
    return web.json_response(done.as_json())


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/announcements", announcements_list, "Change announcements"),
    Route(
        "POST",
        "/api/v1/announcements",
        announcement_create,
        "Announce a change of a secure server (the answer carries the notice verdict)",
        AnnouncementCreate,
    ),
    Route("POST", "/api/v1/announcements/{id}/cancel", announcement_cancel, "Withdraw", Empty),
)
