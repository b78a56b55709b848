"""The caller's portal inbox: list, mark a message read."""

from __future__ import annotations

from aiohttp import web

from ... import inbox_store
from ..routes import ApiError, Route, path_number
from .common import (
    API,
    Empty,
    body_of,
    caller,
)

INBOX_LISTED = 200  # the latest messages of the caller's inbox in one answer


async def inbox_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    rows = await api.store.transact(
        lambda db: inbox_store.messages(db, me.portal_account, INBOX_LISTED)
    )
    return web.json_response(
        {
            "account": me.portal_account,
            "messages": [
                {
                    "id": m.id,
                    "key": m.key,
                    "subject": m.subject,
                    "text": m.text,
                    "created_at": m.created_at,
                    "read": m.read_at is not None,
                }
                for m in rows
            ],
        }
    )


async def inbox_read(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    raw = request.match_info["id"]
    message = path_number(raw)
    if message is None:
        raise ApiError(404, f"unknown message {raw!r}")
    await body_of(request, Empty)
    now = api.clock()
    changed = await api.store.transact(
        lambda db: inbox_store.mark_read(db, me.portal_account, message, now)
    )
    if not changed:
        raise ApiError(404, f"no message {raw} in your inbox")
    return web.json_response({"id": message, "read": True})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/inbox", inbox_list, "The caller's portal inbox"),
    Route("POST", "/api/v1/inbox/{id}/read", inbox_read, "Mark a message read", Empty),
)
