"""An agency's contacts: list, add, read, edit, remove (its agency-admins and national-admins;
its operators and viewers read, a viewer's phones and e-mails masked), and who in the agency is
told about what. The registry's (YAML) contacts are listed, read-only (409)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field

from ... import access
from ...alerting import told as routing
from ...alerting.messages import local_iso
from ...alerting.model import Recipient
from ...config.model import E164, Channel, Email
from ...contacts import actions, hygiene
from ...contacts import directory as contacts_directory
from ...contacts.flags import Flag, masked_address
from ...contacts.model import Person, masked
from ..routes import ApiError, Route
from .common import API, AccountId, Api, Body, Name, body_of, caller, reading

Portal = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
Webhook = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Role = Literal["technical-admin", "high-level-admin"]
Language = Literal["vi", "en"]
Channels = Annotated[list[Channel], Field(min_length=1, max_length=4)]


class ContactCreate(Body):
    name: Name
    role: Role
    phone: E164 | None = None
    email: Email | None = None
    portal_account: Portal | None = None
    webhook: Webhook | None = None
    channels: Channels = ["email", "inbox"]
    language: Language = "vi"
    account_id: AccountId | None = None


class ContactPatch(Body):
    """The fields to change (null clears an optional one)."""

    name: Name | None = None
    role: Role | None = None
    phone: E164 | None = None
    email: Email | None = None
    portal_account: Portal | None = None
    webhook: Webhook | None = None
    channels: Channels | None = None
    language: Language | None = None
    account_id: AccountId | None = None


def flag_json(f: Flag, whole: bool) -> dict[str, Any]:
    """An open flag on a contact's address (``whole``: the address and the provider's words)."""
    return {
        "id": f.id,
        "channel": f.channel,
        "address": f.address if whole else masked_address(f.channel, f.address),
        "code": f.code,
        "meaning": f.meaning[1],
        "reason": f.reason if whole else None,
        "flagged_at": local_iso(f.flagged_at),
        "reported_at": None if f.reported_at is None else local_iso(f.reported_at),
    }


def person_json(p: Person, whole: bool, flags: Sequence[Flag] = ()) -> dict[str, Any]:
    """A person as the API shows it (``whole``: phones and e-mails unmasked), with the open
    flags of its addresses."""
    c, row = p.contact, p.stored
    return {
        "id": p.id,
        "person": p.person,
        "agency": p.agency,
        "source": p.source,
        "read_only": p.source == "registry",
        "name": c.name,
        "role": c.role,
        "phone": c.phone if whole else masked(c.phone),
        "email": c.email if whole else masked(c.email),
        "portal_account": c.portal_account,
        "webhook": c.webhook,
        "channels": list(c.channels),
        "language": c.language,
        "account_id": p.account_id,
        "active": p.active,
        "overridden_by_registry": p.shadowed_by is not None,
        "shadowed_by": p.shadowed_by,
        "revoked": p.revoked,
        "created_at": None if row is None else local_iso(row.created_at),
        "updated_at": None if row is None else local_iso(row.updated_at),
        "confirmed_at": None if row is None else local_iso(row.confirmed_at),
        "flags": [flag_json(f, whole) for f in flags],
    }


def _agency(request: web.Request, api: Api) -> str:
    agency = request.match_info["agency"]
    reading(request, agency)  # another agency: 403 before whether it exists
    if agency not in {a.id for a in api.engine.config.agencies}:
        raise ApiError(404, f"no agency {agency!r}")
    return agency


async def _directory(api: Api) -> contacts_directory.Directory:
    agencies = api.engine.config.agencies
    return await api.store.transact(lambda db: contacts_directory.read(db, agencies))  # type: ignore[no-any-return]


async def _act(api: Api, call: Any) -> Any:
    """Run a change; its refusal as the API's; the daemon's directory refreshed after it."""
    try:
        done = await call
    except actions.ContactError as exc:
        raise ApiError(exc.status, str(exc)) from None
    await contacts_directory.refresh_among(api.rules.others)
    return done


async def contacts_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    whole = access.sees_addresses(me, agency)
    directory = await _directory(api)
    people = directory.people(agency)
    return web.json_response(
        {
            "contacts": [person_json(p, whole, directory.flags_of(p.contact)) for p in people],
            "may_edit": actions.may_manage(me, agency),
        }
    )


async def contacts_create(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_manage(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not manage {agency}'s contacts")
    body = await body_of(request, ContactCreate)
    person = await _act(
        api,
        actions.create(
            api.store,
            actor=me,
            agency=agency,
            fields=body.model_dump(),
            agencies=api.engine.config.agencies,
            now=api.clock(),
        ),
    )
    return web.json_response(person_json(person, True), status=201)


async def contact_get(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    directory = await _directory(api)
    person = directory.find(agency, request.match_info["id"])
    if person is None:
        raise ApiError(404, f"no contact {request.match_info['id']!r} in {agency}")
    whole = access.sees_addresses(me, agency)
    return web.json_response(person_json(person, whole, directory.flags_of(person.contact)))


async def contact_patch(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_manage(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not manage {agency}'s contacts")
    body = await body_of(request, ContactPatch)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    person = await _act(
        api,
        actions.update(
            api.store,
            actor=me,
            agency=agency,
            contact_id=request.match_info["id"],
            changes=changes,
            agencies=api.engine.config.agencies,
            now=api.clock(),
        ),
    )
    return web.json_response(person_json(person, True))


async def contact_delete(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_manage(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not manage {agency}'s contacts")
    contact_id = request.match_info["id"]
    await _act(
        api,
        actions.remove(
            api.store,
            actor=me,
            agency=agency,
            contact_id=contact_id,
            agencies=api.engine.config.agencies,
            now=api.clock(),
        ),
    )
    return web.json_response({"removed": contact_id})


async def contact_flags_clear(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    if not actions.may_manage(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not manage {agency}'s contacts")
    contact_id = request.match_info["id"]
    cleared = await _act(
        api,
        hygiene.clear_flags(
            api.store,
            actor=me,
            agency=agency,
            contact_id=contact_id,
            agencies=api.engine.config.agencies,
            now=api.clock(),
        ),
    )
    return web.json_response({"contact": contact_id, "cleared": cleared})


async def agency_routing(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    agency = _agency(request, api)
    whole = access.sees_addresses(me, agency)
    directory = await _directory(api)
    router = routing.router_over(api.engine.config.alerting, api.engine.registry, directory)

    def address(r: Recipient) -> str:
        shown = r.address if whole or r.channel not in ("sms", "email") else masked(r.address)
        return shown or ""

    told = routing.who_is_told(router, api.engine.registry, agency)
    return web.json_response({"agency": agency, "told": routing.as_json(told, address)})


_ONE = "/api/v1/agencies/{agency}/contacts/{id}"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/agencies/{agency}/contacts", contacts_list, "An agency's contacts"),
    Route(
        "POST",
        "/api/v1/agencies/{agency}/contacts",
        contacts_create,
        "Add a contact to an agency (its agency-admins, national-admins)",
        body=ContactCreate,
    ),
    Route("GET", _ONE, contact_get, "One contact of an agency"),
    Route(
        "PATCH",
        _ONE,
        contact_patch,
        "Change a contact the agency manages (a registry contact: 409)",
        body=ContactPatch,
    ),
    Route("DELETE", _ONE, contact_delete, "Remove a contact the agency manages"),
    Route(
        "POST",
        _ONE + "/flags/clear",
        contact_flags_clear,
        "Clear the flags of a contact's addresses that failed for good (its agency-admins,"
        " national-admins)",
    ),
    Route(
        "GET",
        "/api/v1/agencies/{agency}/routing",
        agency_routing,
        "Who in an agency is told about what: outages, degradations, notices, escalation",
    ),
)
