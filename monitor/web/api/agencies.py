"""Who calls, and the agencies it may see."""

from __future__ import annotations

from aiohttp import web

from ... import access
from ..routes import Route
from .common import (
    API,
    caller,
)


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(caller(request).as_json())


async def agencies(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    out = []
    for agency in api.engine.config.agencies:
        if not access.may_read(me, agency.id):
            continue
        out.append(
            {
                "id": agency.id,
                "kind": agency.kind,
                "name_vi": agency.name_vi,
                "name_en": agency.name_en,
                "code": agency.code,
                "systems": [s.id for s in agency.systems],
            }
        )
    return web.json_response({"agencies": out})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/whoami", whoami, "The calling account"),
    Route("GET", "/api/v1/agencies", agencies, "Agencies the caller may see"),
)
