"""A contact kept in the database, and one person of the merged directory.

A stored contact's id is ``c-`` and 12 random hex digits; a registry (YAML) contact's is its
``id:`` or ``y-`` and 10 hex digits of sha256(agency, name) (:meth:`Contact.contact_id`). The
person id the outbox and the alert pipeline know is ``<agency>/<contact id>``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from ..config import Contact

Source = Literal["registry", "store"]
ROLES = ("technical-admin", "high-level-admin")


def new_id() -> str:
    """A new stored contact's id."""
    return "c-" + secrets.token_hex(6)


def person_id(agency: str, contact_id: str) -> str:
    return f"{agency}/{contact_id}"


def masked(value: str | None) -> str | None:
    """A phone number or e-mail address as a viewer sees it: the last 3 digits of a number,
    the domain of an address (``*********678``, ``***@hanoi.gov.vn``)."""
    if value is None:
        return None
    if "@" in value:
        return "***@" + value.rpartition("@")[2]
    return "*" * max(0, len(value) - 3) + value[-3:]


@dataclass(frozen=True, slots=True)
class StoredContact:
    """One row of ``contacts``."""

    id: str
    agency: str
    name: str
    role: str
    phone: str | None
    email: str | None
    portal_account: str | None
    webhook: str | None
    channels: tuple[str, ...]
    language: str
    account_id: str | None
    created_at: float
    updated_at: float
    confirmed_at: float | None
    removed_at: float | None

    def as_contact(self) -> Contact:
        """The contact as the router reads it (the registry's model)."""
        return Contact.model_validate(
            {
                "name": self.name,
                "role": self.role,
                "phone": self.phone,
                "email": self.email,
                "portal_account": self.portal_account,
                "webhook": self.webhook,
                "channels": list(self.channels),
                "language": self.language,
                "id": self.id,
                "account": self.account_id,
            }
        )


@dataclass(frozen=True, slots=True)
class Person:
    """One contact of an agency in the merged directory."""

    agency: str
    id: str
    contact: Contact
    source: Source
    account_id: str | None = None
    shadowed_by: str | None = None  # the registry contact that overrides this stored one
    revoked: bool = False  # the account it is tied to is revoked
    stored: StoredContact | None = None

    @property
    def person(self) -> str:
        return person_id(self.agency, self.id)

    @property
    def active(self) -> bool:
        """Paged: not overridden by the registry, and its account (if any) not revoked."""
        return self.shadowed_by is None and not self.revoked


__all__ = ["ROLES", "Person", "Source", "StoredContact", "masked", "new_id", "person_id"]
