"""Every statement on the ``accounts`` table: one function per query, each taking the database
handle of a transaction (:meth:`monitor.store.Store.transact` runs them, several in one
transaction when they must go together). Dialect details come from :mod:`monitor.sqldialect`.
Who may do what to an account is :mod:`monitor.accounts`'.
"""

from __future__ import annotations

from typing import Any

from .accounts_model import Account
from .certificates import CertIdentity
from .sqldialect import Handle, insert, sql

COLUMNS = (
    "id, name, role, agency, portal_account, cert_subject, cert_serial, created_at, created_by,"
    " revoked_at, revoked_by, cert_sha256, cert_issuer"
)
_SELECT = f"SELECT {COLUMNS} FROM accounts"  # noqa: S608 - constant columns; values are bound
_GET = sql(_SELECT + " WHERE id = ?")
_BY_TOKEN = sql(_SELECT + " WHERE token_hash = ? AND revoked_at IS NULL")
_BY_CERTIFICATE = sql(_SELECT + " WHERE revoked_at IS NULL AND cert_sha256 = ? AND cert_issuer = ?")
_ALL = sql(_SELECT + " ORDER BY id")
_OF_AGENCY = sql(_SELECT + " WHERE agency = ? ORDER BY id")
_CERTIFICATE_HOLDER = sql(
    "SELECT id FROM accounts WHERE cert_sha256 = ? AND revoked_at IS NULL AND id != ?"
)
_ADD = insert(
    "accounts",
    (
        "id",
        "name",
        "role",
        "agency",
        "token_hash",
        "cert_sha256",
        "cert_issuer",
        "portal_account",
        "created_at",
        "created_by",
    ),
)
_SET_ROLE = sql("UPDATE accounts SET role = ? WHERE id = ?")
_REVOKE = sql("UPDATE accounts SET revoked_at = ?, revoked_by = ?, token_hash = NULL WHERE id = ?")
_END_SESSIONS = sql("DELETE FROM sessions WHERE account = ?")
_SET_CERTIFICATE = sql("UPDATE accounts SET cert_sha256 = ?, cert_issuer = ? WHERE id = ?")


def _account(row: Any) -> Account | None:
    return None if row is None else Account(*row)


def get(db: Handle, account_id: str) -> Account | None:
    """The account ``account_id``, revoked or not."""
    return _account(db.execute(_GET, (account_id,)).fetchone())


def by_token_hash(db: Handle, digest: str) -> Account | None:
    """The active account whose token hashes to ``digest``."""
    return _account(db.execute(_BY_TOKEN, (digest,)).fetchone())


def by_certificate(db: Handle, sha256: str, issuer: str) -> Account | None:
    """The active account mapped to the certificate of fingerprint ``sha256`` and ``issuer``."""
    return _account(db.execute(_BY_CERTIFICATE, (sha256, issuer)).fetchone())


def listed(db: Handle, agency: str | None) -> list[Account]:
    """Every account (of ``agency``, if given), by id."""
    cursor = db.execute(_ALL) if agency is None else db.execute(_OF_AGENCY, (agency,))
    return [Account(*row) for row in cursor.fetchall()]


def certificate_holder(db: Handle, sha256: str, other_than: str) -> str | None:
    """The active account other than ``other_than`` mapped to the fingerprint ``sha256``."""
    row = db.execute(_CERTIFICATE_HOLDER, (sha256, other_than)).fetchone()
    return None if row is None else str(row[0])


def add(
    db: Handle,
    account_id: str,
    *,
    name: str,
    role: str,
    agency: str | None,
    token_hash: str,
    cert: CertIdentity | None,
    portal_account: str,
    at: float,
    by: str,
) -> None:
    """Store a new account (``cert``: the certificate it is mapped to, if any)."""
    sha256, issuer = (None, None) if cert is None else (cert.sha256, cert.issuer)
    db.execute(
        _ADD,
        (account_id, name, role, agency, token_hash, sha256, issuer, portal_account, at, by),
    )


def set_role(db: Handle, account_id: str, role: str) -> None:
    db.execute(_SET_ROLE, (role, account_id))


def revoke(db: Handle, account_id: str, at: float, by: str) -> None:
    """Revoke an account: its token goes, and its page sessions end at once (the one statement
    on ``sessions`` outside :mod:`monitor.sessions_store`: it belongs to the revocation)."""
    db.execute(_REVOKE, (at, by, account_id))
    db.execute(_END_SESSIONS, (account_id,))


def set_certificate(db: Handle, account_id: str, cert: CertIdentity | None) -> None:
    """Map an account to the certificate ``cert`` (None: unmap it)."""
    sha256, issuer = (None, None) if cert is None else (cert.sha256, cert.issuer)
    db.execute(_SET_CERTIFICATE, (sha256, issuer, account_id))


__all__ = [
    "COLUMNS",
    "add",
    "by_certificate",
    "by_token_hash",
    "certificate_holder",
    "get",
    "listed",
    "revoke",
    "set_certificate",
    "set_role",
]
