"""The one HTTP listener: /metrics, /healthz and the read-only /api/v1 of the core daemon.

Every error answer under ``/api/`` is ``{"error": reason}`` JSON, aiohttp's own included (an
unknown route, a wrong method, a body too large). A request too malformed to reach the app (a
NUL or a non-ASCII byte in the request line, an oversized line or header) gets aiohttp's plain
400 and one warning line in the log, without a traceback: it is the client's mistake.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from .access import may_read, sees_all
from .engine import Engine
from .metrics import CONTENT_TYPE, DaemonMetrics, render
from .rules.service import RulesService
from .state import State
from .web.api import API, ROUTES, Api
from .web.auth import Authenticator, current
from .web.routes import Query, Route, aiohttp_routes, openapi_document

ENGINE = web.AppKey("engine", Engine)
METRICS = web.AppKey("metrics", DaemonMetrics)
RULES = web.AppKey("rules", RulesService)
SECURED = web.AppKey("secured", bool)
OPENAPI_DOC = web.AppKey("openapi", dict)

log = logging.getLogger(__name__)
#: aiohttp's per-connection messages (handler_args "logger"), with client mistakes made brief.
SERVER_LOG = logging.getLogger("monitor.http")


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False, indent=1),
        status=status,
        content_type="application/json",
    )


def _error(status: int, reason: str) -> web.Response:
    return _json({"error": reason}, status)


class _ClientMistakes(logging.Filter):
    """aiohttp logs a request it cannot parse as an error with a traceback; it is the client's
    mistake and was answered 400: one warning line, with the client and what was wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "malformed HTTP request answered 400", ()
            record.client, record.problem = client, _problem(exc)  # logfmt fields
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _problem(exc: HttpProcessingError) -> str:
    """What was wrong, in a line and without the bytes the client sent (they could hold a
    credential: an oversized Authorization header is reported, not echoed)."""
    if isinstance(exc, LineTooLong):
        return "request line or header too long"
    first = (exc.message or type(exc).__name__).strip().splitlines()[0]
    return first.partition(": b'")[0].rstrip(":")[:200]


SERVER_LOG.addFilter(_ClientMistakes())

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _http_error_reason(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no such endpoint: {request.method} {request.raw_path[:200]}"
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return f"method {request.method} not allowed here (allowed: {allowed})"
    if exc.status == 413:
        return "request body too large"
    return (exc.text or exc.reason).removeprefix(f"{exc.status}: ").strip() or exc.reason


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, every error answer is ``{"error": reason}``: aiohttp's own (unknown route,
    wrong method, body too large) and, logged in full, an error of ours (500). The pages keep
    aiohttp's answers."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        response = _error(exc.status, _http_error_reason(request, exc))
        response.headers.update(headers)
        return response
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.raw_path[:200])
        return _error(500, "internal error of the monitor (see its log)")


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
        return _error(
            503, f"scheduler has made no progress for {stalled_for:.0f}s (limit {limit:g}s)"
        )
    return _json(
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
    return _json(
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
        return _error(404, f"unknown system {key!r}")
    if not _sees(request, request.match_info["agency"]):
        return _error(403, f"not allowed to see agency {request.match_info['agency']}")
    view = _system_view(engine, key)
    for check in view["checks"]:
        samples = engine.history.get(f"{key}/{check['id']}", ())
        check["recent"] = [
            {"time": s.time, "vantage": s.vantage, "ok": s.result.ok, "reason": s.result.reason}
            for s in samples
        ]
    view["state_changes"] = [_event_view(e) for e in await engine.store.changes(50, key)]
    return _json(view)


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
        return _error(400, "limit must be a whole number from 1 to 1000")
    limit = int(raw)
    account = current(request)
    if not request.app[SECURED] or (account is not None and sees_all(account)):
        events = await request.app[ENGINE].store.changes(limit)
    else:
        agency = account.agency if account is not None else None
        events = await request.app[ENGINE].store.changes(limit, agency=agency or "-")
    return _json({"state_changes": [_event_view(e) for e in events]})


async def openapi(request: web.Request) -> web.Response:
    return _json(request.app[OPENAPI_DOC])


async def catalog(request: web.Request) -> web.Response:
    # Every agency configures its side from the whole catalog (regulation C.3).
    return _json(request.app[RULES].catalog_document())


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


def build_app(
    engine: Engine,
    metrics: DaemonMetrics,
    rules: RulesService | None = None,
    *,
    authenticator: Authenticator | None = None,
    routes: Iterable[Route] = (),
    extra_routes: Iterable[web.RouteDef] = (),
    extra_paths: Mapping[str, Any] | None = None,
    max_body: int = 64 * 1024,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The one HTTP app. With an ``authenticator`` every /api/v1 call needs an account and
    sees only what its role allows; without one (tests of the core alone) everything is open.

    Its /api/v1 is :data:`CORE_ROUTES`, with ``rules`` the catalog and the acting
    :data:`~monitor.web.api.ROUTES`, and ``routes``; the OpenAPI document is generated from
    them. ``extra_routes`` (the pages, which are not documented) and ``extra_paths`` (routes
    served elsewhere with their OpenAPI paths, such as the heartbeat's) are added as given."""
    middlewares = [json_errors]
    if authenticator is not None:
        middlewares.append(authenticator.middleware)
    app = web.Application(
        client_max_size=max_body,
        middlewares=middlewares,
        handler_args={"logger": SERVER_LOG},
    )
    app[ENGINE] = engine
    app[METRICS] = metrics
    app[SECURED] = authenticator is not None
    table = list(CORE_ROUTES)
    if rules is not None:
        app[RULES] = rules
        app[API] = Api(engine, rules, clock)
        table += [CATALOG_ROUTE, *ROUTES]
    table += routes
    app[OPENAPI_DOC] = openapi_document(table, extra_paths)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.add_routes(aiohttp_routes(table))
    app.add_routes(list(extra_routes))
    return app


__all__ = ["CORE_ROUTES", "State", "build_app"]
