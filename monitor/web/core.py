"""The core daemon's own endpoints: ``/metrics``, ``/healthz`` and the read-only ``/api/v1``
(systems, one system, state changes, the secure-server catalog) in :data:`CORE_ROUTES` and
:data:`CATALOG_ROUTE`, and the application keys they read (the engine, the metrics, the rules
desks, whether accounts are required)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..access import may_read, sees_all
from ..engine import Engine
from ..metrics import CONTENT_TYPE, DaemonMetrics, render
from ..rules.service import RulesService
from .auth import current
from .routes import Query, Route

ENGINE = web.AppKey("engine", Engine)


METRICS = web.AppKey("metrics", DaemonMetrics)


RULES = web.AppKey("rules", RulesService)


SECURED = web.AppKey("secured", bool)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=1),
        status=status,
        content_type="application/json",
    )


def json_error(status: int, reason: str) -> web.Response:
    return json_response({"error": reason}, status)


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    await request.app[METRICS].refresh()
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    await response.prepare(request)
    async for chunk in render(request.app[ENGINE], request.app[METRICS]):
        await response.write(chunk.encode())
    await response.write_eof()
    return response


async def healthz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    scheduler = engine.scheduler
    stalled_for = scheduler.now() - scheduler.last_progress
    limit = engine.config.scheduler.stall_after
    if stalled_for > limit:
        return json_error(
            503, f"scheduler has made no progress for {stalled_for:.0f}s (limit {limit:g}s)"
        )
    return json_response(
        {"status": "ok", "checks": len(engine.registry.checks), "in_flight": scheduler.in_flight}
    )


def _system_view(engine: Engine, key: str) -> dict[str, Any]:
    entry = engine.registry.systems[key]
    status = engine.state.systems[key]
    checks = []
    for check in entry.checks:
        cs = status.checks.get(check.key)
        last = cs.last if cs else None
        checks.append(
            {
                "id": check.check_id,
                "kind": check.kind,
                "healthy": cs.healthy if cs else None,
                "consecutive_failures": cs.failures if cs else 0,
                "last": None
                if last is None
                else {
                    "ok": last.ok,
                    "reason": last.reason,
                    "duration_seconds": round(last.duration, 6),
                    "time": cs.last_time if cs else None,
                },
            }
        )
    shown = engine.state.display_state(status)
    return {
        "agency": entry.agency.id,
        "system": entry.system.id,
        "name": entry.system.name,
        "kind": entry.system.kind,
        "state": shown.value,
        "since": status.since or None,
        "reason": status.reason,
        "depends_on": list(entry.parents),
        "checks": checks,
    }


def _sees(request: web.Request, agency: str) -> bool:
    """Whether the caller may see an agency's data (everything when the app has no accounts,
    as in the tests of the core alone)."""
    if not request.app[SECURED]:
        return True
    account = current(request)
    return account is not None and may_read(account, agency)


async def systems(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return json_response(
        {
            "systems": [
                _system_view(engine, key)
                for key, entry in engine.registry.systems.items()
                if _sees(request, entry.agency.id)
            ]
        }
    )


async def system(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    key = f"{request.match_info['agency']}/{request.match_info['system']}"
    if key not in engine.registry.systems:
        return json_error(404, f"unknown system {key!r}")
    if not _sees(request, request.match_info["agency"]):
        return json_error(403, f"not allowed to see agency {request.match_info['agency']}")
    view = _system_view(engine, key)
    for check in view["checks"]:
        samples = engine.history.get(f"{key}/{check['id']}", ())
        check["recent"] = [
            {"time": s.time, "vantage": s.vantage, "ok": s.result.ok, "reason": s.result.reason}
            for s in samples
        ]
    view["state_changes"] = [_event_view(e) for e in await engine.store.changes(50, key)]
    return json_response(view)


def _event_view(event: Any) -> dict[str, Any]:
    return {
        "time": event.time,
        "agency": event.agency,
        "system": event.system,
        "old": event.old.value,
        "new": event.new.value,
        "reason": event.reason,
        "vantage": event.vantage,
    }


async def state_changes(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        return json_error(400, "limit must be a whole number from 1 to 1000")
    limit = int(raw)
    account = current(request)
    if not request.app[SECURED] or (account is not None and sees_all(account)):
        events = await request.app[ENGINE].store.changes(limit)
    else:
        agency = account.agency if account is not None else None
        events = await request.app[ENGINE].store.changes(limit, agency=agency or "-")
    return json_response({"state_changes": [_event_view(e) for e in events]})


async def catalog(request: web.Request) -> web.Response:
    # Every agency configures its side from the whole catalog (regulation C.3).
    return json_response(request.app[RULES].catalog_document())


#: The core's own /api/v1 routes (the acting ones are :data:`monitor.web.api.ROUTES`).
CORE_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/systems",
        systems,
        "Every system with its current state and checks",
        responses=(("200", "OK"),),
    ),
    Route(
        "GET",
        "/api/v1/systems/{agency}/{system}",
        system,
        "One system with recent results and state changes",
        responses=(("200", "OK"), ("404", "Unknown system")),
    ),
    Route(
        "GET",
        "/api/v1/state-changes",
        state_changes,
        "Latest state changes, newest first",
        query=(Query("limit", "integer", 1, 1000),),
        responses=(("200", "OK"), ("400", "Bad limit")),
    ),
)


#: The catalog needs the rules desks.
CATALOG_ROUTE = Route(
    "GET",
    "/api/v1/catalog/secure-servers",
    catalog,
    "The secure-server catalog: current and upcoming registered information of every secure"
    " server (regulation C.3)",
    responses=(("200", "OK"),),
)


__all__ = [
    "CATALOG_ROUTE",
    "CORE_ROUTES",
    "ENGINE",
    "METRICS",
    "RULES",
    "SECURED",
    "healthz",
    "json_error",
    "json_response",
    "metrics_handler",
]
