"""Accounts (create, grant, revoke, map a certificate) and the audit log, within the reach
of :func:`monitor.access.may_manage`."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from npsp_common.types import LINE

from ... import access, accounts, audit
from ...access import Action
from ...accounts import AccountError
from ..routes import ApiError, Route
from .common import (
    API,
    AccountId,
    Body,
    CertSerial,
    Empty,
    Id,
    Name,
    body_of,
    caller,
)


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


async def accounts_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    if not access.may_act(me, me.agency, Action.ADMINISTER):
        raise ApiError(403, f"{me.id} ({me.role}) may not list accounts")
    rows = await accounts.list_accounts(api.store, access.read_scope(me))
    return web.json_response({"accounts": [a.as_json() for a in rows]})


def _account_error(exc: AccountError) -> ApiError:
    return ApiError(exc.status, str(exc))


async def account_create(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    body = await body_of(request, AccountCreate)
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
    api, me = request.app[API], caller(request)
    body = await body_of(request, CertificateMapping)
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
    api, me = request.app[API], caller(request)
    body = await body_of(request, Grant)
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
    api, me = request.app[API], caller(request)
    await body_of(request, Empty)
    try:
        done = await accounts.revoke(
            api.store, actor=me, account_id=request.match_info["id"], now=api.clock()
        )
    except AccountError as exc:
        raise _account_error(exc) from None
    return web.json_response(done.as_json())


async def audit_list(request: web.Request) -> web.Response:
    api, me = request.app[API], caller(request)
    if not access.may_act(me, me.agency, Action.ADMINISTER):
        raise ApiError(403, f"{me.id} ({me.role}) may not read the audit log")
    rows = await audit.audit_log(api.store, agency=access.read_scope(me))
    return web.json_response({"audit": rows})


ROUTES: tuple[Route, ...] = (
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
