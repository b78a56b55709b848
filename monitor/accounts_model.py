"""An account as stored, and the error of a request about accounts: the accounts' model, which
:mod:`monitor.accounts` (what may be done to accounts) and :mod:`monitor.certificates` (how a
client certificate is identified) share without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .access import Role


class AccountError(ValueError):
    """A request about accounts that cannot be done; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Account:
    """An account as stored (the token hash never leaves :mod:`monitor.accounts`)."""

    id: str
    name: str
    role: Role
    agency: str | None
    portal_account: str
    cert_subject: str | None  # legacy mapping: readable, no longer logs in
    cert_serial: str | None  # legacy mapping: readable, no longer logs in
    created_at: float
    created_by: str
    revoked_at: float | None = None
    revoked_by: str | None = None
    cert_sha256: str | None = None  # SHA-256 of the client certificate's DER, lowercase hex
    cert_issuer: str | None = None  # its issuer's DN, RFC 4514

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def legacy_certificate(self) -> bool:
        """Mapped to a certificate only by subject or serial: to be re-mapped by fingerprint."""
        return self.cert_sha256 is None and bool(self.cert_subject or self.cert_serial)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "legacy_certificate": self.legacy_certificate}


__all__ = ["Account", "AccountError"]
