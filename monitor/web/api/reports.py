"""The scheduled reports produced (:mod:`monitor.reports.schedule`): the list, and one report
as JSON or CSV.

Who reads what, by :mod:`monitor.access` as everything else: an agency's report is read by
that agency's accounts (any role: they see its figures on every page already) and the
national-admins; the national report — every agency's figures — is the portal's own data
(``may_read(account, None)``), read by the national-admins only. Another agency's report, or a
national one, answers 403 to an agency's account, as another agency's incident does.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ... import access
from ...alerting.messages import local_iso
from ...reports import runs_store
from ...reports.runs_store import Run
from ..routes import ApiError, Query, Route, path_number
from .common import API, caller, reading

LISTED = 200  # the latest reports in one answer
FORMATS = ("json", "csv")


def _links(run: Run) -> dict[str, str]:
    return {
        "json": f"/api/v1/reports/{run.id}",
        "csv": f"/api/v1/reports/{run.id}?format=csv",
        "page": f"/reports/{run.id}",
    }


def run_json(run: Run) -> dict[str, Any]:
    """A report's facts (not its figures)."""
    return {
        "id": run.id,
        "schedule": run.schedule,
        "period": run.period,
        "scope": "national" if run.agency is None else "agency",
        "agency": run.agency,
        "starts": local_iso(run.starts),
        "ends": local_iso(run.ends),
        "fired_at": local_iso(run.fired_at),
        "produced_at": local_iso(run.produced_at),
        "messages_queued": run.queued,
        "links": _links(run),
    }


async def reports_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    scope = access.read_scope(me)
    scopes = None if scope is None else [scope]
    runs = await api.store.transact(lambda db: runs_store.listed(db, scopes, LISTED))
    return web.json_response(
        {"reports": [run_json(r) for r in runs if access.may_read(me, r.agency)]}
    )


async def report_get(request: web.Request) -> web.StreamResponse:
    api = request.app[API]
    raw = request.match_info["id"]
    formats = request.query.getall("format", ["json"])
    if len(formats) != 1 or formats[0] not in FORMATS:
        raise ApiError(400, "format must be given at most once, as json or csv")
    number = path_number(raw)
    run = (
        None if number is None else await api.store.transact(lambda db: runs_store.find(db, number))
    )
    if run is None:
        raise ApiError(404, f"unknown report {raw!r}")
    reading(request, run.agency)
    form = formats[0]
    body = await api.store.transact(lambda db: runs_store.body(db, run.id, form))
    if body is None:  # gone between the two reads
        raise ApiError(404, f"unknown report {raw!r}")
    if form == "csv":
        return web.Response(
            text=body,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="npsp-{run.schedule}-'
                f'{run.period}{"" if run.agency is None else "-" + run.agency}.csv"'
            },
        )
    return web.json_response({**run_json(run), "report": json.loads(body)})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/reports", reports_list, "Scheduled reports produced, newest first"),
    Route(
        "GET",
        "/api/v1/reports/{id}",
        report_get,
        "One scheduled report: its facts and figures (JSON), or its CSV",
        query=(Query("format", "string", choices=FORMATS),),
    ),
)
