"""Accounts and their roles (decided by :mod:`monitor.access`); the audit log they write to is
:mod:`monitor.audit` (its functions are also here, as before). The account and its error are
:mod:`monitor.accounts_model`'s, the statements :mod:`monitor.accounts_store`'s, a client
certificate's identity :mod:`monitor.certificates`'; every name is importable from here.

Roles, highest first: ``national-admin`` (the Government Office operations team: everything),
``agency-admin`` (the high-level account of one agency: grants and revokes its staff),
``operator`` (acknowledges, announces, schedules for one agency), ``viewer`` (reads one agency).
An agency-admin grants and revokes only inside its agency and only roles below its own.

Bearer tokens are random (256 bits), shown once when made, and stored as SHA-256 hashes: a
stolen database does not log anyone in. A client certificate (mTLS, issued by the configured CA)
maps to an account by its identity: the SHA-256 fingerprint of its DER together with its
issuer's DN (RFC 4514), both compared exactly. Subjects and serial numbers are not identities (a
CN may contain ``,O=``; another CA may issue the same subject or serial): the columns of the
old mappings stay readable, but they no longer log anyone in. A fingerprint belongs to one
active account, and only a national-admin (or the command line on the gateway host) maps one,
each change audited.

A page login opens a server-side session (:mod:`monitor.sessions`): the cookie holds a random
256-bit id, stored as its SHA-256, ending after an idle and an absolute lifetime, at logout and
when the account is revoked. A revoked account is refused on its very next request: every
request reads the account from the database.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import secrets
from typing import Any

from . import access, accounts_store
from .access import NATIONAL_ADMIN, Action, Principal
from .accounts_model import Account, AccountError
from .accounts_store import get
from .audit import audit_write
from .certificates import (
    MAX_ISSUER,
    CertIdentity,
    certificate_identity,
    identity_from_file,
    parse_identity,
)
from .contacts.actions import on_account_revoked
from .rules.seniorrights import store as senior_rights
from .rules.seniorrights.model import ChangeKind, change_of
from .sqldialect import Handle
from .store import Store

ROLES = access.ROLES  # the command line's choices
ACCOUNT_ID = r"^[A-Za-z0-9._-]{1,64}$"
MAX_TOKEN = 256  # characters; a longer "token" is refused before hashing
# What a bearer token can look like (RFC 6750 token68); ours are "npsp_" + URL-safe base64.
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def cli_actor(claimed: str | None = None) -> str:
    """Who acts from the command line: ``cli:<the effective OS account>`` (what the host
    authenticated; ``$USER`` is the caller's to set), then a name the caller gives."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid-{os.geteuid()}"
    return f"cli:{user}" + (f" ({claimed})" if claimed else "")


def well_formed(token: str) -> bool:
    """Whether ``token`` could be a bearer token at all: a header or cookie holding anything
    else (a non-ASCII byte, a control character, a space) is a failed login, not an error."""
    return 0 < len(token) <= MAX_TOKEN and _TOKEN68.fullmatch(token) is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "npsp_" + secrets.token_urlsafe(32)


def _certificate_taken(db: Handle, cert: CertIdentity, account_id: str) -> None:
    if accounts_store.certificate_holder(db, cert.sha256, account_id) is not None:
        raise AccountError("this certificate is already mapped to another active account", 409)


def _active(db: Handle, account_id: str) -> Account:
    """An account to change: it exists (else 404) and is not revoked (else 409)."""
    target = get(db, account_id)
    if target is None:
        raise AccountError(f"no account {account_id!r}", 404)
    if not target.active:
        raise AccountError(f"account {account_id!r} is revoked", 409)
    return target


def _senior_rights(
    db: Handle,
    account: Account,
    change: ChangeKind | None,
    *,
    at: float,
    by: str,
    source: str,
) -> None:
    """Record a grant or revocation of an agency's senior rights (agency-admin) in the
    account change's transaction: the leader tells the Government Office of it
    (:mod:`monitor.rules.seniorrights`)."""
    if change is not None and account.agency is not None:
        senior_rights.record(
            db,
            agency=account.agency,
            account_id=account.id,
            name=account.name,
            change=change,
            at=at,
            actor=by,
            source=source,
        )


def _check_role(role: str, agency: str | None, agencies: set[str]) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == NATIONAL_ADMIN:
        if agency is not None:
            raise AccountError("a national-admin belongs to no agency")
    elif agency is None:
        raise AccountError(f"{_article(role)} {role} belongs to one agency: give agency")
    elif agency not in agencies:
        raise AccountError(f"unknown agency {agency!r}", 404)


def _check_creator(
    actor: Account | None,
    role: str,
    agency: str | None,
    cert: CertIdentity | None,
    legacy_cert: bool,
) -> None:
    """Refuse an account ``actor`` may not create (None: the command line, which may)."""
    if actor is not None and not access.may_manage(actor, role, agency):
        raise AccountError(
            f"{actor.id} may not create {_article(role)} {role} account for {agency}", 403
        )
    if (cert is not None or legacy_cert) and not access.may_map_certificates(actor):
        raise AccountError("only a national-admin maps client certificates to accounts", 403)
    if legacy_cert:
        raise AccountError(
            "client certificates are mapped by SHA-256 fingerprint and issuer, no longer by"
            " subject or serial number"
        )


def _check_inbox(
    actor: Account | None,
    account_id: str,
    role: str,
    agency: str | None,
    inbox: str,
    owners: dict[str, str | None],
) -> None:
    """Refuse a portal inbox the new account may not hold."""
    if (
        inbox != account_id
        and actor is not None
        and not access.may_act(actor, None, Action.NAME_INBOX)
    ):
        raise AccountError("only a national-admin sets portal_account", 403)
    # An inbox that belongs to a configured contact is readable only by that contact's agency
    # (operations' inboxes: by national-admins): a new account named like another agency's
    # contact must not read its alerts.
    owner = owners.get(inbox)
    if inbox in owners and not access.may_read_inbox(Principal(role, agency), owner):
        raise AccountError(
            f"portal account {inbox!r} belongs to {owner or 'the operations team'}: "
            "choose another id or portal_account",
            403,
        )


async def create(
    store: Store,
    *,
    actor: Account | None,
    account_id: str,
    name: str,
    role: str,
    agency: str | None,
    agencies: set[str],
    now: float,
    cert_subject: str | None = None,
    cert_serial: str | None = None,
    cert: CertIdentity | None = None,
    portal_account: str | None = None,
    inboxes: dict[str, str | None] | None = None,
    source: str = "api",
) -> tuple[Account, str]:
    """Create an account; return it and its token (shown once). ``actor`` None = bootstrap.

    ``cert`` maps a client certificate (national-admins and the command line only).
    ``cert_subject`` and ``cert_serial`` are refused: they no longer identify a certificate.
    """
    _check_role(role, agency, agencies)
    _check_creator(actor, role, agency, cert, bool(cert_subject or cert_serial))
    _check_inbox(actor, account_id, role, agency, portal_account or account_id, inboxes or {})
    token = new_token()

    def write(db: Handle) -> Account:
        if get(db, account_id) is not None:
            raise AccountError(f"account {account_id!r} already exists", 409)
        if cert is not None:
            _certificate_taken(db, cert, account_id)
        creator = actor.id if actor is not None else "bootstrap"
        accounts_store.add(
            db,
            account_id,
            name=name,
            role=role,
            agency=agency,
            token_hash=hash_token(token),
            cert=cert,
            portal_account=portal_account or account_id,
            at=now,
            by=creator,
        )
        detail: dict[str, Any] = {"role": role}
        if cert is not None:
            detail["certificate"] = {"sha256": cert.sha256, "issuer": cert.issuer}
        audit_write(db, now, creator, "account.create", account_id, agency, detail, source)
        created = get(db, account_id)
        assert created is not None
        # The command line names its OS account (the audit keeps saying "bootstrap").
        by = cli_actor() if actor is None and source == "cli" else creator
        _senior_rights(db, created, change_of(None, role), at=now, by=by, source=source)
        return created

    return await store.transact(write), token


async def grant(
    store: Store,
    *,
    actor: Account,
    account_id: str,
    role: str,
    agencies: set[str],
    now: float,
    source: str = "api",
) -> Account:
    """Give an account another role (in its agency)."""

    def write(db: Handle) -> Account:
        target = _active(db, account_id)
        _check_role(role, target.agency, agencies)
        # Both the role it has and the role it gets must be within the actor's reach.
        if not (
            access.may_manage(actor, target.role, target.agency)
            and access.may_manage(actor, role, target.agency)
        ):
            raise AccountError(f"{actor.id} may not grant {role} to {account_id}", 403)
        accounts_store.set_role(db, account_id, role)
        audit_write(
            db,
            now,
            actor.id,
            "account.grant",
            account_id,
            target.agency,
            {"from": target.role, "to": role},
            source,
        )
        updated = get(db, account_id)
        assert updated is not None
        change = change_of(target.role, role)
        _senior_rights(db, updated, change, at=now, by=actor.id, source=source)
        return updated

    return await store.transact(write)


async def revoke(
    store: Store, *, actor: Account | None, account_id: str, now: float, source: str = "api"
) -> Account:
    """Revoke an account: refused from its very next request."""

    def write(db: Handle) -> Account:
        target = get(db, account_id)
        if target is None:
            raise AccountError(f"no account {account_id!r}", 404)
        if actor is not None and not access.may_manage(actor, target.role, target.agency):
            raise AccountError(f"{actor.id} may not revoke {account_id}", 403)
        if not target.active:
            raise AccountError(f"account {account_id!r} is already revoked", 409)
        who = actor.id if actor is not None else cli_actor()
        accounts_store.revoke(db, account_id, now, who)  # and logged out at once
        # The person tied to it is told nothing more: their pending messages go, now.
        people, dropped = on_account_revoked(db, account_id)
        detail = {"contacts": people, "dropped": dropped} if people else {}
        audit_write(db, now, who, "account.revoke", account_id, target.agency, detail, source)
        updated = get(db, account_id)
        assert updated is not None
        _senior_rights(db, updated, change_of(target.role, None), at=now, by=who, source=source)
        return updated

    return await store.transact(write)


async def by_token(store: Store, token: str) -> Account | None:
    """The active account holding ``token``, or None (also for a malformed one)."""
    if not well_formed(token):
        return None
    digest = hash_token(token)

    return await store.transact(lambda db: accounts_store.by_token_hash(db, digest))


async def by_certificate(store: Store, cert: CertIdentity) -> Account | None:
    """The active account mapped to this certificate (fingerprint and issuer), or None."""
    return await store.transact(
        lambda db: accounts_store.by_certificate(db, cert.sha256, cert.issuer)
    )


async def map_certificate(
    store: Store,
    *,
    actor: Account | None,
    account_id: str,
    cert: CertIdentity | None,
    now: float,
    source: str = "api",
) -> Account:
    """Map ``account_id`` to a client certificate (None: unmap it), audited.

    Only a national-admin (or the command line, ``actor`` None) may; a certificate already
    mapped to another active account is refused (409): revoke or unmap that one first.
    """
    if not access.may_map_certificates(actor):
        raise AccountError("only a national-admin maps client certificates to accounts", 403)

    def write(db: Handle) -> Account:
        target = _active(db, account_id)
        if cert is not None:
            _certificate_taken(db, cert, account_id)
        accounts_store.set_certificate(db, account_id, cert)
        old = (
            None
            if target.cert_sha256 is None
            else {"sha256": target.cert_sha256, "issuer": target.cert_issuer}
        )
        new = None if cert is None else {"sha256": cert.sha256, "issuer": cert.issuer}
        who = actor.id if actor is not None else cli_actor()
        audit_write(
            db,
            now,
            who,
            "account.certificate",
            account_id,
            target.agency,
            {"from": old, "to": new},
            source,
        )
        updated = get(db, account_id)
        assert updated is not None
        return updated

    return await store.transact(write)


async def list_accounts(store: Store, agency: str | None = None) -> list[Account]:
    """Every account (of ``agency``, if given), by id."""
    return await store.transact(lambda db: accounts_store.listed(db, agency))


__all__ = [
    "ACCOUNT_ID",
    "MAX_ISSUER",
    "MAX_TOKEN",
    "ROLES",
    "Account",
    "AccountError",
    "CertIdentity",
    "by_certificate",
    "by_token",
    "certificate_identity",
    "cli_actor",
    "create",
    "get",
    "grant",
    "hash_token",
    "identity_from_file",
    "list_accounts",
    "map_certificate",
    "new_token",
    "parse_identity",
    "revoke",
    "well_formed",
]
