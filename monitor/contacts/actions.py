"""What may be done to an agency's contacts, checked and audited: create, edit, remove (the
caller words nothing: a :class:`ContactError` carries the status and the reason), and what
revoking an account does to the person tied to it (:func:`on_account_revoked`, inside the
revocation's transaction).

Registry (YAML) contacts are read-only here (409): the operations team edits the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from .. import access, accounts_store
from ..access import Action, Holder
from ..audit import audit_write
from ..config import Agency, Contact
from ..sqldialect import Handle
from ..store import Store
from . import hygiene_store
from . import store as contacts_store
from .directory import Directory, read
from .model import Person, StoredContact, new_id

READ_ONLY = "managed by the operations team in the registry"


class ContactError(ValueError):
    """A refusal, with the HTTP status that says it (400, 403, 404, 409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Actor(Holder, Protocol):
    @property
    def id(self) -> str: ...


def may_manage(actor: Holder, agency: str) -> bool:
    return actor.active and access.may_act(actor, agency, Action.MANAGE_CONTACTS)


def _check(actor: Actor, agency: str) -> None:
    if not may_manage(actor, agency):
        raise ContactError(f"{actor.id} ({actor.role}) may not manage {agency}'s contacts", 403)


def _validated(fields: Mapping[str, Any]) -> Contact:
    """The contact ``fields`` describe (the registry's rules: E.164, e-mail, channels with
    their addresses, language)."""
    data = {k: v for k, v in fields.items() if k != "account_id"}
    data["account"] = fields.get("account_id")
    try:
        contact = Contact.model_validate(data)
    except ValidationError as exc:
        raise ContactError(
            "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'contact'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
        ) from None
    missing = contact.missing_addresses()
    if missing:
        raise ContactError("; ".join(missing))
    return contact


def _check_account(db: Handle, account_id: str | None, agency: str) -> None:
    if account_id is None:
        return
    account = accounts_store.get(db, account_id)
    if account is None:
        raise ContactError(f"no account {account_id!r}", 404)
    if not account.active:
        raise ContactError(f"account {account_id!r} is revoked", 409)
    if account.agency != agency:
        raise ContactError(f"account {account_id!r} is not {agency}'s", 400)


def _stored(db: Handle, agency: str, contact_id: str, registry: Directory) -> StoredContact:
    if registry.find(agency, contact_id) is not None:
        raise ContactError(f"contact {contact_id} is {READ_ONLY}", 409)
    row = contacts_store.get(db, contact_id)
    if row is None or row.agency != agency or row.removed_at is not None:
        raise ContactError(f"no contact {contact_id!r} in {agency}", 404)
    return row


def _person(db: Handle, agencies: Iterable[Agency], agency: str, contact_id: str) -> Person:
    found = read(db, agencies).find(agency, contact_id)
    assert found is not None
    return found


def _fields(c: Contact) -> dict[str, Any]:
    return {
        "name": c.name,
        "role": c.role,
        "phone": c.phone,
        "email": c.email,
        "portal_account": c.portal_account,
        "webhook": c.webhook,
        "channels": list(c.channels),
        "language": c.language,
        "account_id": c.account,
    }


async def create(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    fields: Mapping[str, Any],
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> Person:
    """Add a contact to ``agency`` (``fields``: the :data:`~.store.EDITABLE` names)."""
    _check(actor, agency)
    contact = _validated(fields)

    def write(db: Handle) -> Person:
        _check_account(db, contact.account, agency)
        cid = new_id()
        values = _fields(contact)
        row = StoredContact(
            id=cid,
            agency=agency,
            name=contact.name,
            role=contact.role,
            phone=contact.phone,
            email=contact.email,
            portal_account=contact.portal_account,
            webhook=contact.webhook,
            channels=tuple(contact.channels),
            language=contact.language,
            account_id=contact.account,
            created_at=now,
            updated_at=now,
            confirmed_at=None,
            removed_at=None,
        )
        contacts_store.add(db, row)
        audit_write(db, now, actor.id, "contact.create", cid, agency, values, source)
        return _person(db, agencies, agency, cid)

    return await store.transact(write)


async def update(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    contact_id: str,
    changes: Mapping[str, Any],
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> Person:
    """Change some fields of a stored contact (a registry contact: 409)."""
    _check(actor, agency)
    registry = Directory(agencies)
    unknown = set(changes) - set(contacts_store.EDITABLE)
    if unknown:
        raise ContactError(f"not editable: {', '.join(sorted(unknown))}")

    def write(db: Handle) -> Person:
        row = _stored(db, agency, contact_id, registry)
        before = _fields(row.as_contact())
        contact = _validated({**before, **changes})
        after = _fields(contact)
        if contact.account != row.account_id:
            _check_account(db, contact.account, agency)
        changed = {k: after[k] for k in after if after[k] != before[k]}
        if changed:
            contacts_store.update(db, contact_id, changed, now)
            detail: dict[str, Any] = {k: {"from": before[k], "to": v} for k, v in changed.items()}
            # A new address is a fresh start: the old one's flag (it failed for good) goes.
            moved = (("sms", "phone"), ("email", "email"))
            old = [(c, before[f]) for c, f in moved if f in changed and before[f]]
            cleared = hygiene_store.clear(db, old, now, actor.id)
            if cleared:
                detail["flags_cleared"] = cleared
            audit_write(db, now, actor.id, "contact.update", contact_id, agency, detail, source)
        return _person(db, agencies, agency, contact_id)

    return await store.transact(write)


async def remove(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    contact_id: str,
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> None:
    """Remove a stored contact (kept in the database, no longer listed nor paged)."""
    _check(actor, agency)
    registry = Directory(agencies)

    def write(db: Handle) -> None:
        row = _stored(db, agency, contact_id, registry)
        contacts_store.remove(db, contact_id, now)
        detail = {"name": row.name, "role": row.role}
        audit_write(db, now, actor.id, "contact.remove", contact_id, agency, detail, source)

    await store.transact(write)


def on_account_revoked(db: Handle, account_id: str) -> tuple[list[str], int]:
    """Inside an account's revocation: the people tied to it, and how many of their pending
    outbox rows were dropped (status ``dropped``, "account revoked"). The directory stops
    routing to them on its next refresh; until then the outbox's claim drops their rows."""
    people = contacts_store.people_of_account(db, account_id)
    return people, contacts_store.drop_pending(db, people)


__all__ = [
    "READ_ONLY",
    "ContactError",
    "create",
    "may_manage",
    "on_account_revoked",
    "remove",
    "update",
]
