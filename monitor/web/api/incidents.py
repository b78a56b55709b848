"""Incidents: list, open a support request, acknowledge, resolve, comment, mark complex."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from npsp_common.types import Moment

from ... import access, audit
from ...alerting.messages import local_iso
from ...rules import incidents as inc
from ...rules.incidents import store as incidents_store
from ...sqldialect import Handle
from ..routes import ApiError, Query, Route
from .common import (
    API,
    Api,
    Body,
    Empty,
    Id,
    Text,
    acting,
    body_of,
    caller,
    flag,
    local_time,
    reading,
    record,
)


class IncidentOpen(Body):
    """A support request. ``received_at``: when it was received (default: now; it may precede
    its entry, never follow it), from which its SLA counts; a ``complex`` one needs its
    published ``expected_completion``, which is then its due time."""

    agency: Id
    system: Id | None = None
    summary: Text
    received_at: Moment | None = None
    complex: bool = False
    expected_completion: Moment | None = None


class IncidentComplex(Body):
    """Mark a support request complex, with the expected completion time published for it."""

    expected_completion: Moment


class IncidentResolve(Body):
    resolution: Text = "resolved"


class Comment(Body):
    text: Text


def _incident_json(i: inc.Incident) -> dict[str, Any]:
    """An incident: a request with its receipt, due time (in working hours, or its published
    expected completion when complex); an outage with no due time but the last step of the
    escalation ladder taken (``escalation_step``, ``escalated_to``, ``escalated``)."""
    out = i.as_dict()
    out["due_at"] = None if i.due_at == inc.NO_DUE else i.due_at
    out["opened"], out["due"] = local_iso(i.opened_at), local_iso(out["due_at"])
    out["received"] = local_iso(i.received_at)
    out["expected"] = local_iso(i.expected_completion)
    out["escalated"] = local_iso(i.escalated_at)
    return out


def _incident_error(exc: inc.IncidentError) -> ApiError:
    text = str(exc)
    return ApiError(404 if text.startswith("unknown incident") else 409, text)


async def incidents_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    everything = flag(request, "all")
    rows = await inc.list_incidents(api.store, open_only=not everything)
    return web.json_response(
        {"incidents": [_incident_json(i) for i in rows if access.may_read(me, i.agency)]}
    )


async def incident_open(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await body_of(request, IncidentOpen)
    me = acting(request, body.agency)
    received = None if body.received_at is None else local_time(api, body.received_at)
    expected = (
        None if body.expected_completion is None else local_time(api, body.expected_completion)
    )
    try:
        opened = await inc.open_incident(
            api.store,
            api.engine.registry,
            api.rules.ctx.calendar,
            agency=body.agency,
            system=body.system,
            summary=body.summary,
            now=api.clock(),
            received_at=received,
            is_complex=body.complex,
            expected_completion=expected,
        )
    except inc.IncidentError as exc:
        raise ApiError(404 if "unknown" in str(exc) else 400, str(exc)) from None
    await record(api, me, "incident.open", opened.id, opened.agency, summary=body.summary)
    return web.json_response(_incident_json(opened), status=201)


async def incident_complex(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = acting(request, found.agency)
    body = await body_of(request, IncidentComplex)
    expected = local_time(api, body.expected_completion)
    try:
        done = await inc.mark_complex(api.store, api.rules.ctx.calendar, found.id, expected)
    except inc.IncidentError as exc:
        text = str(exc)
        raise ApiError(409 if "already resolved" in text else 400, text) from None
    await record(api, me, "incident.complex", found.id, found.agency, expected=local_iso(expected))
    await api.rules.incidents.refresh()  # the reminders follow the new due time
    return web.json_response(_incident_json(done))


async def _incident_for(request: web.Request) -> tuple[Api, inc.Incident]:
    api = request.app[API]
    found = await inc.get_incident(api.store, request.match_info["id"])
    if found is None:
        raise ApiError(404, f"unknown incident {request.match_info['id']!r}")
    return api, found


async def incident_get(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    reading(request, found.agency)
    comments = await api.store.transact(lambda db: incidents_store.comments(db, found.id))
    view = _incident_json(found)
    view["comments"] = [{"ts": ts, "author": author, "text": text} for ts, author, text in comments]
    return web.json_response(view)


async def incident_ack(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = acting(request, found.agency)
    await body_of(request, Empty)
    try:
        done = await inc.acknowledge(api.store, found.id, f"{me.name} ({me.id})", api.clock())
    except inc.IncidentError as exc:
        raise _incident_error(exc) from None
    await record(api, me, "incident.ack", found.id, found.agency)
    await api.rules.incidents.refresh()  # escalation stops now, not at the next desk tick
    return web.json_response(_incident_json(done))


async def incident_resolve(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = acting(request, found.agency)
    body = await body_of(request, IncidentResolve)
    try:
        done = await inc.resolve(
            api.store, found.id, f"{me.name} ({me.id})", body.resolution, api.clock()
        )
    except inc.IncidentError as exc:
        raise _incident_error(exc) from None
    await record(api, me, "incident.resolve", found.id, found.agency, resolution=body.resolution)
    await api.rules.incidents.refresh()
    return web.json_response(_incident_json(done))


async def incident_comment(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = acting(request, found.agency)
    body = await body_of(request, Comment)
    now = api.clock()

    def write(db: Handle) -> None:
        incidents_store.add_comment(db, found.id, now, me.id, body.text)
        audit.audit_write(db, now, me.id, "incident.comment", found.id, found.agency, {}, "api")

    await api.store.transact(write)
    return web.json_response({"incident": found.id, "ts": now, "author": me.id}, status=201)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/v1/incidents",
        incidents_list,
        "Open incidents (all=1: also resolved)",
        query=(Query("all"),),
    ),
    Route("POST", "/api/v1/incidents", incident_open, "Open a support request", IncidentOpen),
    Route("POST", "/api/v1/incidents/{id:.+}/ack", incident_ack, "Acknowledge", Empty),
    Route(
        "POST",
        "/api/v1/incidents/{id:.+}/complex",
        incident_complex,
        "Mark a support request complex, with its published expected completion time",
        IncidentComplex,
    ),
    Route(
        "POST", "/api/v1/incidents/{id:.+}/resolve", incident_resolve, "Resolve", IncidentResolve
    ),
    Route("POST", "/api/v1/incidents/{id:.+}/comments", incident_comment, "Comment", Comment),
    Route("GET", "/api/v1/incidents/{id:.+}", incident_get, "One incident with its comments"),
)
