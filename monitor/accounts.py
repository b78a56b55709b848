"""Accounts, roles and the audit log.

Roles, highest first: ``national-admin`` (the Government Office operations team: everything),
``agency-admin`` (the high-level account of one agency: grants and revokes its staff),
``operator`` (acknowledges, announces, schedules for one agency), ``viewer`` (reads one agency).
An agency-admin grants and revokes only inside its agency and only roles below its own.

Bearer tokens are random (256 bits), shown once when made, and stored as SHA-256 hashes: a
stolen database does not log anyone in. A client certificate (mTLS, issued by the configured CA)
maps to an account by its subject or serial number. A revoked account is refused on its very next
request: every request reads the account from the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar, get_args

from .store import Store

T = TypeVar("T")
Role = Literal["national-admin", "agency-admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
RANK: dict[str, int] = {"national-admin": 4, "agency-admin": 3, "operator": 2, "viewer": 1}
ACCOUNT_ID = r"^[A-Za-z0-9._-]{1,64}$"
MAX_TOKEN = 256  # characters; a longer "token" is refused before hashing
# What a bearer token can look like (RFC 6750 token68); ours are "npsp_" + URL-safe base64.
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_NOBODY = object()


class AccountError(ValueError):
    """A request about accounts that cannot be done; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Account:
    """An account as stored (the token hash never leaves this module)."""

    id: str
    name: str
    role: Role
    agency: str | None
    portal_account: str
    cert_subject: str | None
    cert_serial: str | None
    created_at: float
    created_by: str
    revoked_at: float | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def well_formed(token: str) -> bool:
    """Whether ``token`` could be a bearer token at all: a header or cookie holding anything
    else (a non-ASCII byte, a control character, a space) is a failed login, not an error."""
    return 0 < len(token) <= MAX_TOKEN and _TOKEN68.fullmatch(token) is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "npsp_" + secrets.token_urlsafe(32)


_COLUMNS = (
    "id, name, role, agency, portal_account, cert_subject, cert_serial, created_at, created_by,"
    " revoked_at, revoked_by"
)


def _account(row: tuple[Any, ...]) -> Account:
    return Account(*row)


def get(db: sqlite3.Connection, account_id: str) -> Account | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM accounts WHERE id = ?", (account_id,)).fetchone()  # noqa: S608 - constant columns
    return None if row is None else _account(row)


def can_manage(actor: Account, role: str, agency: str | None) -> bool:
    """Whether ``actor`` may create, grant or revoke an account of ``role`` in ``agency``."""
    if not actor.active:
        return False
    if actor.role == "national-admin":
        return True
    return (
        actor.role == "agency-admin"
        and agency is not None
        and agency == actor.agency
        and RANK[role] < RANK[actor.role]
    )


def _check_role(role: str, agency: str | None, agencies: set[str]) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == "national-admin":
        if agency is not None:
            raise AccountError("a national-admin belongs to no agency")
    elif agency is None:
        raise AccountError(f"a {role} belongs to one agency: give agency")
    elif agency not in agencies:
        raise AccountError(f"unknown agency {agency!r}", 404)


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
    portal_account: str | None = None,
    inboxes: dict[str, str | None] | None = None,
    source: str = "api",
) -> tuple[Account, str]:
    """Create an account; return it and its token (shown once). ``actor`` None = bootstrap."""
    _check_role(role, agency, agencies)
    if actor is not None and not can_manage(actor, role, agency):
        raise AccountError(f"{actor.id} may not create a {role} account for {agency}", 403)
    inbox = portal_account or account_id
    if actor is not None and actor.role != "national-admin" and inbox != account_id:
        raise AccountError("only a national-admin sets portal_account", 403)
    # An inbox that belongs to a configured contact is readable only by that contact's agency
    # (operations' inboxes: by national-admins): a new account named like another agency's
    # contact must not read its alerts.
    owner = (inboxes or {}).get(inbox, _NOBODY)
    if owner is not _NOBODY and role != "national-admin" and owner != agency:
        raise AccountError(
            f"portal account {inbox!r} belongs to {owner or 'the operations team'}: "
            "choose another id or portal_account",
            403,
        )
    token = new_token()

    def write(db: sqlite3.Connection) -> Account:
        if get(db, account_id) is not None:
            raise AccountError(f"account {account_id!r} already exists", 409)
        for column, value in (("cert_serial", cert_serial), ("cert_subject", cert_subject)):
            if (
                value is not None
                and db.execute(
                    f"SELECT 1 FROM accounts WHERE {column} = ? AND revoked_at IS NULL",  # noqa: S608 - constant column
                    (value,),
                ).fetchone()
            ):
                raise AccountError(f"another active account has this {column}", 409)
        creator = actor.id if actor is not None else "bootstrap"
        db.execute(
            "INSERT INTO accounts (id, name, role, agency, token_hash, cert_subject, cert_serial,"
            " portal_account, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account_id,
                name,
                role,
                agency,
                hash_token(token),
                cert_subject,
                cert_serial,
                portal_account or account_id,
                now,
                creator,
            ),
        )
        audit_write(db, now, creator, "account.create", account_id, agency, {"role": role}, source)
        created = get(db, account_id)
        assert created is not None
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

    def write(db: sqlite3.Connection) -> Account:
        target = get(db, account_id)
        if target is None:
            raise AccountError(f"no account {account_id!r}", 404)
        if not target.active:
            raise AccountError(f"account {account_id!r} is revoked", 409)
        _check_role(role, target.agency, agencies)
        # Both the role it has and the role it gets must be within the actor's reach.
        if not (
            can_manage(actor, target.role, target.agency) and can_manage(actor, role, target.agency)
        ):
            raise AccountError(f"{actor.id} may not grant {role} to {account_id}", 403)
        db.execute("UPDATE accounts SET role = ? WHERE id = ?", (role, account_id))
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
        return updated

    return await store.transact(write)


async def revoke(
    store: Store, *, actor: Account | None, account_id: str, now: float, source: str = "api"
) -> Account:
    """Revoke an account: refused from its very next request."""

    def write(db: sqlite3.Connection) -> Account:
        target = get(db, account_id)
        if target is None:
            raise AccountError(f"no account {account_id!r}", 404)
        if actor is not None and not can_manage(actor, target.role, target.agency):
            raise AccountError(f"{actor.id} may not revoke {account_id}", 403)
        if not target.active:
            raise AccountError(f"account {account_id!r} is already revoked", 409)
        who = actor.id if actor is not None else "cli"
        db.execute(
            "UPDATE accounts SET revoked_at = ?, revoked_by = ?, token_hash = NULL WHERE id = ?",
            (now, who, account_id),
        )
        audit_write(db, now, who, "account.revoke", account_id, target.agency, {}, source)
        updated = get(db, account_id)
        assert updated is not None
        return updated

    return await store.transact(write)


async def by_token(store: Store, token: str) -> Account | None:
    """The active account holding ``token``, or None (also for a malformed one)."""
    if not well_formed(token):
        return None
    digest = hash_token(token)

    def read(db: sqlite3.Connection) -> Account | None:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE token_hash = ? AND revoked_at IS NULL",  # noqa: S608
            (digest,),
        ).fetchone()
        return None if row is None else _account(row)

    return await store.transact(read)


async def by_certificate(store: Store, subject: str, serial: str) -> Account | None:
    """The active account mapped to a client certificate's subject or serial, or None."""

    def read(db: sqlite3.Connection) -> Account | None:
        row = db.execute(
            f"SELECT {_COLUMNS} FROM accounts WHERE revoked_at IS NULL"  # noqa: S608
            " AND (cert_serial = ? OR (cert_serial IS NULL AND cert_subject = ?))"
            " ORDER BY cert_serial IS NULL, created_at LIMIT 1",
            (serial, subject),
        ).fetchone()
        return None if row is None else _account(row)

    return await store.transact(read)


async def list_accounts(store: Store, agency: str | None = None) -> list[Account]:
    def read(db: sqlite3.Connection) -> list[Account]:
        if agency is None:
            rows = db.execute(f"SELECT {_COLUMNS} FROM accounts ORDER BY id").fetchall()  # noqa: S608
        else:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM accounts WHERE agency = ? ORDER BY id",  # noqa: S608
                (agency,),
            ).fetchall()
        return [_account(r) for r in rows]

    return await store.transact(read)


# ----- audit ----------------------------------------------------------------------------------


def audit_write(
    db: sqlite3.Connection,
    ts: float,
    actor: str,
    action: str,
    target: str,
    agency: str | None,
    detail: dict[str, Any],
    source: str,
) -> None:
    db.execute(
        "INSERT INTO audit (ts, actor, action, target, agency, detail, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ts, actor, action, target, agency, json.dumps(detail, ensure_ascii=False), source),
    )


async def audit(
    store: Store,
    *,
    ts: float,
    actor: str,
    action: str,
    target: str,
    agency: str | None = None,
    detail: dict[str, Any] | None = None,
    source: str = "api",
) -> None:
    await store.transact(
        lambda db: audit_write(db, ts, actor, action, target, agency, detail or {}, source)
    )


async def audited(
    store: Store,
    work: Awaitable[T],
    *,
    actor: str,
    action: str,
    target: Callable[[T], str],
    agency: Callable[[T], str | None],
    source: str = "cli",
) -> T:
    """Await ``work`` (an action on the store) and record it in the audit log."""
    result = await work
    await audit(
        store,
        ts=time.time(),
        actor=actor,
        action=action,
        target=target(result),
        agency=agency(result),
        source=source,
    )
    return result


async def audit_log(
    store: Store, *, agency: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
        sql = "SELECT id, ts, actor, action, target, agency, detail, source FROM audit"
        args: list[Any] = []
        if agency is not None:
            sql += " WHERE agency = ?"
            args.append(agency)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return db.execute(sql, args).fetchall()

    return [
        {
            "id": i,
            "ts": ts,
            "actor": actor,
            "action": action,
            "target": target,
            "agency": agency_,
            "detail": json.loads(detail),
            "source": source,
        }
        for i, ts, actor, action, target, agency_, detail, source in await store.transact(read)
    ]
