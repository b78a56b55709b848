"""The /api/v1 handlers that act: incidents, announcements, maintenance windows, silences, the
caller's inbox, accounts and the audit log — each behind the role rules of
:mod:`monitor.access` (a national-admin everywhere; the other roles inside their agency).

Every route is declared once in :data:`ROUTES` (a :class:`~monitor.web.routes.Route` each, with
its summary and request model); the aiohttp routes and the OpenAPI document are both generated
from that table (:mod:`monitor.web.routes`), so the document cannot drift from the real routes.
A bad request gets a 4xx with the reason: malformed JSON, unknown fields and wrong types (400
with each field), unknown ids (404), another agency's data (403), a conflict (409). Bodies are
strict: every value has its JSON type (``"443"``, ``443.0`` and ``true`` are not numbers, ``1``
is not true), text is bounded and holds no control characters (line feeds and tabs only in free
text) and no lone surrogates; dates are ISO 8601 text.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from npsp_common.types import LINE, TEXT, Moment, StrictModel, matching

from .. import access, accounts, comments_store, inbox_store, silences_store
from ..access import Action
from ..accounts import Account, AccountError
from ..alerting.messages import local_iso
from ..engine import Engine
from ..rules import incidents as inc
from ..rules import maintenance as mnt
from ..rules.announcements import (
    AnnouncementRejected,
    AnnouncementRequest,
)
from ..rules.announcements import (
    cancel as cancel_announcement,
)
from ..rules.service import RulesService
from .auth import current
from .routes import ApiError, Query, Route

M = TypeVar("M", bound=BaseModel)


@dataclass
class Api:
    """What the handlers need; built once by the daemon."""

    engine: Engine
    rules: RulesService
    clock: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.engine.store

    def inboxes(self) -> dict[str, str | None]:
        """Configured portal accounts → their agency (None: the operations team)."""
        out: dict[str, str | None] = {}
        for agency in self.engine.config.agencies:
            for contact in agency.contacts:
                if contact.portal_account:
                    out[contact.portal_account] = agency.id
        for person in self.engine.config.alerting.operations:
            if person.portal_account:
                out[person.portal_account] = None
        return out

    def agencies(self) -> set[str]:
        return {e.agency.id for e in self.engine.registry.systems.values()} | {
            a.id for a in self.engine.config.agencies
        }


API = web.AppKey("api", Api)
INBOX_LISTED = 200  # the latest messages of the caller's inbox in one answer


# ----- access rules ---------------------------------------------------------------------------


def _me(request: web.Request) -> Account:
    account = current(request)
    if account is None:  # the auth middleware answers 401 before; belt and braces
        raise ApiError(401, "authentication required")
    return account


def _read(request: web.Request, agency: str | None) -> Account:
    me = _me(request)
    if not access.may_read(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not see agency {agency}")
    return me


def _act(request: web.Request, agency: str | None) -> Account:
    me = _me(request)
    if not access.may_act(me, agency, Action.OPERATE):
        raise ApiError(403, f"{me.id} ({me.role}) may not act for {agency or 'the portal'}")
    return me


# ----- request bodies -------------------------------------------------------------------------


async def _body(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "request body too large") from None
    try:
        document = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ApiError(400, problems) from None


Text = Annotated[str, Field(min_length=1, max_length=2000), TEXT]
Name = Annotated[str, Field(min_length=1, max_length=200), LINE]
Id = Annotated[str, Field(min_length=1, max_length=64), LINE]  # an agency or system id
SystemRef = Annotated[str, Field(min_length=1, max_length=130), LINE]  # agency or agency/system
_ACCOUNT_ID = "1 to 64 letters, digits, or . _ -"
AccountId = Annotated[
    str,
    Field(pattern=accounts.ACCOUNT_ID),
    BeforeValidator(matching(accounts.ACCOUNT_ID, _ACCOUNT_ID)),
]
CertSerial = Annotated[
    str,
    Field(pattern=r"^[0-9A-Fa-f]{1,64}$"),
    BeforeValidator(matching(r"[0-9A-Fa-f]{1,64}", "1 to 64 hexadecimal digits")),
]


class Body(StrictModel):
    """A request body: unknown fields refused, and strict — no value is converted."""

    model_config = ConfigDict(strict=True)


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


class Empty(Body):
    pass


class AnnouncementCreate(AnnouncementRequest):
    agency: Id


class MaintenanceCreate(Body):
    starts: Moment
    ends: Moment
    reason: Text
    scope: Annotated[list[SystemRef], Field(max_length=200)] = []
    override_reason: Text | None = None


class MaintenanceCancel(Body):
    reason: Text | None = None


class SilenceCreate(Body):
    agency: Id
    system: Id | None = None
    starts: Moment | None = None
    ends: Moment
    reason: Text


class CertificateMapping(Body):
    """Map an account to a client certificate (both fields), or unmap it (neither): its
    SHA-256 fingerprint and its issuer's DN (RFC 4514), together."""

    cert_sha256: Annotated[str, Field(min_length=64, max_length=95), LINE] | None = None
    cert_issuer: Annotated[str, Field(min_length=1, max_length=1000), LINE] | None = None


class AccountCreate(CertificateMapping):
    id: AccountId
    name: Name
    role: access.Role
    agency: Id | None = None
    cert_subject: Annotated[str, Field(min_length=1, max_length=1000), LINE] | None = None
    cert_serial: CertSerial | None = None
    portal_account: AccountId | None = None


class Grant(Body):
    role: access.Role


# ----- helpers --------------------------------------------------------------------------------


def _local(api: Api, moment: dt.datetime) -> float:
    try:
        return api.rules.ctx.calendar.local(moment).timestamp()
    except (OverflowError, ValueError):
        raise ApiError(400, f"date out of range: {moment!r}") from None


async def _audit(
    api: Api, me: Account, action: str, target: str, agency: str | None, **detail: Any
) -> None:
    await accounts.audit(
        api.store,
        ts=api.clock(),
        actor=me.id,
        action=action,
        target=target,
        agency=agency,
        detail=detail,
    )


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


def _flag(request: web.Request, name: str) -> bool:
    """A yes/no query parameter: absent is no; 0, 1, false and true, nothing else."""
    raw = request.query.getall(name, ["0"])
    if len(raw) != 1 or raw[0] not in ("0", "1", "false", "true"):
        raise ApiError(400, f"{name} must be given once, as 0, 1, false or true")
    return raw[0] in ("1", "true")


def _incident_error(exc: inc.IncidentError) -> ApiError:
    text = str(exc)
    return ApiError(404 if text.startswith("unknown incident") else 409, text)


# ----- handlers: agencies ---------------------------------------------------------------------


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(_me(request).as_json())


async def agencies(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
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


# ----- incidents ------------------------------------------------------------------------------


async def incidents_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    everything = _flag(request, "all")
    rows = await inc.list_incidents(api.store, open_only=not everything)
    return web.json_response(
        {"incidents": [_incident_json(i) for i in rows if access.may_read(me, i.agency)]}
    )


async def incident_open(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await _body(request, IncidentOpen)
    me = _act(request, body.agency)
    received = None if body.received_at is None else _local(api, body.received_at)
    expected = None if body.expected_completion is None else _local(api, body.expected_completion)
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
    await _audit(api, me, "incident.open", opened.id, opened.agency, summary=body.summary)
    return web.json_response(_incident_json(opened), status=201)


async def incident_complex(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = _act(request, found.agency)
    body = await _body(request, IncidentComplex)
    expected = _local(api, body.expected_completion)
    try:
        done = await inc.mark_complex(api.store, api.rules.ctx.calendar, found.id, expected)
    except inc.IncidentError as exc:
        text = str(exc)
        raise ApiError(409 if "already resolved" in text else 400, text) from None
    await _audit(api, me, "incident.complex", found.id, found.agency, expected=local_iso(expected))
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
    _read(request, found.agency)
    comments = await api.store.transact(lambda db: comments_store.of_incident(db, found.id))
    view = _incident_json(found)
    view["comments"] = [{"ts": c.ts, "author": c.author, "text": c.text} for c in comments]
    return web.json_response(view)


async def incident_ack(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = _act(request, found.agency)
    await _body(request, Empty)
    try:
        done = await inc.acknowledge(api.store, found.id, f"{me.name} ({me.id})", api.clock())
    except inc.IncidentError as exc:
        raise _incident_error(exc) from None
    await _audit(api, me, "incident.ack", found.id, found.agency)
    await api.rules.incidents.refresh()  # escalation stops now, not at the next desk tick
    return web.json_response(_incident_json(done))


async def incident_resolve(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = _act(request, found.agency)
    body = await _body(request, IncidentResolve)
    try:
        done = await inc.resolve(
            api.store, found.id, f"{me.name} ({me.id})", body.resolution, api.clock()
        )
    except inc.IncidentError as exc:
        raise _incident_error(exc) from None
    await _audit(api, me, "incident.resolve", found.id, found.agency, resolution=body.resolution)
    await api.rules.incidents.refresh()
    return web.json_response(_incident_json(done))


async def incident_comment(request: web.Request) -> web.Response:
    api, found = await _incident_for(request)
    me = _act(request, found.agency)
    body = await _body(request, Comment)
    now = api.clock()

    def write(db: sqlite3.Connection) -> None:
        comments_store.add(db, found.id, now, me.id, body.text)
        accounts.audit_write(db, now, me.id, "incident.comment", found.id, found.agency, {}, "api")

    await api.store.transact(write)
    return web.json_response({"incident": found.id, "ts": now, "author": me.id}, status=201)


# ----- announcements --------------------------------------------------------------------------


async def announcements_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    items = [
        a.as_json()
        for a in reversed(api.rules.announcements.items)
        if access.may_read(me, a.agency)
    ]
    return web.json_response({"announcements": items})


async def announcement_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await _body(request, AnnouncementCreate)
    me = _act(request, body.agency)
    # Who announced is the account, not a claim; the body is validated once, as it came.
    request_ = body.model_copy(update={"author": f"{me.name} ({me.id})"})
    try:
        stored, new = await api.rules.announcements.submit(request_, body.agency, "api")
    except AnnouncementRejected as exc:
        raise ApiError(404 if "unknown agency" in str(exc) else 400, str(exc)) from None
    if new:
        await _audit(
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
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise ApiError(404, f"unknown announcement {raw!r}")
    found = next((a for a in api.rules.announcements.items if a.id == int(raw)), None)
    if found is None:
        raise ApiError(404, f"unknown announcement {raw!r}")
    me = _act(request, found.agency)
    await _body(request, Empty)
    try:
        done = await cancel_announcement(api.store, found.id, api.clock())
    except AnnouncementRejected as exc:
        raise ApiError(409, str(exc)) from None
    await _audit(api, me, "announcement.cancel", raw, found.agency)
    await api.rules.announcements.refresh()
    return web.json_response(done.as_json())


# ----- maintenance ----------------------------------------------------------------------------


async def maintenance_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    now = api.clock()
    windows = await mnt.list_windows(api.store, now=now, include_past=_flag(request, "all"))
    visible = [
        _window_json(w, now)
        for w in windows
        if w.portal_wide or any(access.may_read(me, a) for a in _window_agencies(w))
    ]
    return web.json_response({"maintenance": visible})


async def maintenance_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await _body(request, MaintenanceCreate)
    me = _me(request)
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
        _act(request, only)
    now = api.clock()
    starts, _ = _local(api, body.starts), _local(api, body.ends)
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
    await _audit(
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
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise ApiError(404, f"unknown maintenance window {raw!r}")
    now = api.clock()
    windows = await mnt.list_windows(api.store, now=now, include_past=True)
    found = next((w for w in windows if w.id == int(raw)), None)
    if found is None:
        raise ApiError(404, f"unknown maintenance window {raw!r}")
    me = _me(request)
    agencies_in_scope = _window_agencies(found)
    only = next(iter(agencies_in_scope)) if len(agencies_in_scope) == 1 else None
    if not access.may_act(me, only, Action.OPERATE):
        raise ApiError(403, f"{me.id} may not cancel maintenance #{raw}")
    body = await _body(request, MaintenanceCancel)
    try:
        done = await mnt.cancel(api.store, found.id, now=now, reason=body.reason)
    except mnt.MaintenanceError as exc:
        raise ApiError(409, str(exc)) from None
    await _audit(api, me, "maintenance.cancel", raw, None, reason=body.reason)
    await api.rules.maintenance.refresh()
    return web.json_response(_window_json(done, now))


# ----- silences -------------------------------------------------------------------------------


async def silences_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    now = api.clock()
    rows = await api.store.transact(lambda db: silences_store.active(db, now))
    return web.json_response(
        {"silences": [s.as_json() for s in rows if access.may_read(me, s.agency)]}
    )


async def silence_create(request: web.Request) -> web.Response:
    api = request.app[API]
    body = await _body(request, SilenceCreate)
    me = _me(request)
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
    starts = now if body.starts is None else _local(api, body.starts)
    ends = _local(api, body.ends)
    if ends <= max(starts, now):
        raise ApiError(400, "ends must be in the future and after starts")
    if ends - starts > 7 * 86400:
        raise ApiError(400, "a silence lasts at most 7 days (plan longer work as maintenance)")

    def write(db: sqlite3.Connection) -> int:
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
        accounts.audit_write(
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
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise ApiError(404, f"unknown silence {raw!r}")
    row = await api.store.transact(lambda db: silences_store.state(db, int(raw)))
    if row is None:
        raise ApiError(404, f"unknown silence {raw!r}")
    me = _act(request, row[0])
    await _body(request, Empty)
    if row[1] is not None:
        raise ApiError(409, f"silence {raw} is already cancelled")
    now = api.clock()

    def write(db: sqlite3.Connection) -> None:
        silences_store.cancel(db, int(raw), now)
        accounts.audit_write(db, now, me.id, "silence.cancel", raw, row[0], {}, "api")

    await api.store.transact(write)
    await api.rules.silences.refresh()
    return web.json_response({"id": int(raw), "cancelled_at": now})


# ----- the caller's inbox ---------------------------------------------------------------------


async def inbox_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
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
    api, me = request.app[API], _me(request)
    raw = request.match_info["id"]
    message = inbox_store.message_id(raw)
    if message is None:
        raise ApiError(404, f"unknown message {raw!r}")
    await _body(request, Empty)
    now = api.clock()
    changed = await api.store.transact(
        lambda db: inbox_store.mark_read(db, me.portal_account, message, now)
    )
    if not changed:
        raise ApiError(404, f"no message {raw} in your inbox")
    return web.json_response({"id": message, "read": True})


# ----- accounts and the audit log -------------------------------------------------------------


async def accounts_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    if not access.may_act(me, me.agency, Action.ADMINISTER):
        raise ApiError(403, f"{me.id} ({me.role}) may not list accounts")
    rows = await accounts.list_accounts(api.store, access.read_scope(me))
    return web.json_response({"accounts": [a.as_json() for a in rows]})


def _account_error(exc: AccountError) -> ApiError:
    return ApiError(exc.status, str(exc))


async def account_create(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    body = await _body(request, AccountCreate)
    try:
        cert = _identity(body.cert_sha256, body.cert_issuer)
        created, token = await accounts.create(
            api.store,
            actor=me,
            account_id=body.id,
            name=body.name,
            role=body.role,
            agency=body.agency,
            agencies=api.agencies(),
            now=api.clock(),
            cert_subject=body.cert_subject,
            cert_serial=body.cert_serial.upper() if body.cert_serial else None,
            cert=cert,
            portal_account=body.portal_account,
            inboxes=api.inboxes(),
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    # The token is shown this once, to its creator; only its hash is kept.
    return web.json_response({"account": created.as_json(), "token": token}, status=201)


def _identity(sha256: str | None, issuer: str | None) -> accounts.CertIdentity | None:
    """A certificate identity from a request: both fields, or neither."""
    if sha256 is None and issuer is None:
        return None
    return accounts.parse_identity(sha256 or "", issuer or "")


async def account_certificate(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    body = await _body(request, CertificateMapping)
    try:
        done = await accounts.map_certificate(
            api.store,
            actor=me,
            account_id=request.match_info["id"],
            cert=_identity(body.cert_sha256, body.cert_issuer),
            now=api.clock(),
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return web.json_response(done.as_json())


async def account_grant(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    body = await _body(request, Grant)
    try:
        done = await accounts.grant(
            api.store,
            actor=me,
            account_id=request.match_info["id"],
            role=body.role,
            agencies=api.agencies(),
            now=api.clock(),
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return web.json_response(done.as_json())


async def account_revoke(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    await _body(request, Empty)
    try:
        done = await accounts.revoke(
            api.store, actor=me, account_id=request.match_info["id"], now=api.clock()
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return web.json_response(done.as_json())


async def audit_list(request: web.Request) -> web.Response:
    api, me = request.app[API], _me(request)
    if not access.may_act(me, me.agency, Action.ADMINISTER):
        raise ApiError(403, f"{me.id} ({me.role}) may not read the audit log")
    rows = await accounts.audit_log(api.store, agency=access.read_scope(me))
    return web.json_response({"audit": rows})


# ----- the route table (the OpenAPI document is generated from it) ---------------------------


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/whoami", whoami, "The calling account"),
    Route("GET", "/api/v1/agencies", agencies, "Agencies the caller may see"),
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
    Route("GET", "/api/v1/announcements", announcements_list, "Change announcements"),
    Route(
        "POST",
        "/api/v1/announcements",
        announcement_create,
        "Announce a change of a secure server (the answer carries the notice verdict)",
        AnnouncementCreate,
    ),
    Route("POST", "/api/v1/announcements/{id}/cancel", announcement_cancel, "Withdraw", Empty),
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
    Route("GET", "/api/v1/silences", silences_list, "Active silences"),
    Route("POST", "/api/v1/silences", silence_create, "Silence alerts for a while", SilenceCreate),
    Route("POST", "/api/v1/silences/{id}/cancel", silence_cancel, "End a silence", Empty),
    Route("GET", "/api/v1/inbox", inbox_list, "The caller's portal inbox"),
    Route("POST", "/api/v1/inbox/{id}/read", inbox_read, "Mark a message read", Empty),
    Route("GET", "/api/v1/accounts", accounts_list, "Accounts the caller manages"),
    Route(
        "POST",
        "/api/v1/accounts",
        account_create,
        "Create an account (the token is in this answer only)",
        AccountCreate,
    ),
    Route("POST", "/api/v1/accounts/{id}/grant", account_grant, "Change a role", Grant),
    Route(
        "POST",
        "/api/v1/accounts/{id}/certificate",
        account_certificate,
        "Map the account to a client certificate, or unmap it (national-admin only)",
        CertificateMapping,
    ),
    Route("POST", "/api/v1/accounts/{id}/revoke", account_revoke, "Revoke an account", Empty),
    Route("GET", "/api/v1/audit", audit_list, "The audit log"),
)
