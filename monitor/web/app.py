"""The one HTTP application (:func:`build_app`): the core's endpoints (:mod:`.core`), the acting
``/api/v1`` (:mod:`.api`) and the OpenAPI document generated from their route table
(:mod:`.routes`), the pages and the heartbeat added by the daemon.

Every error answer under ``/api/`` is ``{"error": reason}`` JSON, aiohttp's own included (an
unknown route, a wrong method, a body too large). A request too malformed to reach the app (a
NUL or a non-ASCII byte in the request line, an oversized line or header) gets aiohttp's plain
400 and one warning line in the log, without a traceback: it is the client's mistake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from ..engine import Engine
from ..metrics import DaemonMetrics
from ..rules.service import RulesService
from .api import API, ROUTES, Api
from .auth import Authenticator
from .core import (
    CATALOG_ROUTE,
    CORE_ROUTES,
    ENGINE,
    METRICS,
    RULES,
    SECURED,
    healthz,
    json_error,
    json_response,
    metrics_handler,
)
from .routes import Route, aiohttp_routes, openapi_document

OPENAPI_DOC = web.AppKey("openapi", dict)


log = logging.getLogger("monitor.http_api")  # the name its lines have always had


#: aiohttp's per-connection messages (handler_args "logger"), with client mistakes made brief.
SERVER_LOG = logging.getLogger("monitor.http")


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
        response = json_error(exc.status, _http_error_reason(request, exc))
        response.headers.update(headers)
        return response
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.raw_path[:200])
        return json_error(500, "internal error of the monitor (see its log)")


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_DOC])


def build_app(
    engine: Engine,
    metrics: DaemonMetrics,
    rules: RulesService | None = None,
    *,
    authenticator: Authenticator | None = None,
    routes: Iterable[Route] = (),
    extra_routes: Iterable[web.RouteDef] = (),
    max_body: int = 64 * 1024,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The one HTTP app. With an ``authenticator`` every /api/v1 call needs an account and
    sees only what its role allows; without one (tests of the core alone) everything is open.

    Its /api/v1 is :data:`CORE_ROUTES`, with ``rules`` the catalog and the acting
    :data:`~monitor.web.api.ROUTES`, and ``routes``; the OpenAPI document is generated from
    them. ``extra_routes`` (the pages, which are not documented) are added as given."""
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
    app[OPENAPI_DOC] = openapi_document(table)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.add_routes(aiohttp_routes(table))
    app.add_routes(list(extra_routes))
    return app


__all__ = ["OPENAPI_DOC", "SERVER_LOG", "build_app", "json_errors"]
