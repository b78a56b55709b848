"""The merged directory: who an agency's people are, as the router reads them.

Per agency: the registry's (YAML) contacts first, in their order, then the stored ones, oldest
first. **The registry wins**: a stored contact that names the same person as a registry
contact of its agency (the same phone, e-mail, portal account or account) is *shadowed* —
listed as overridden by the registry, never paged, so no one is paged twice. A contact tied to
a revoked account is listed as revoked and not paged either; a removed one is not listed.

A :class:`Directory` is an immutable value; :class:`ContactsDesk` keeps the current one,
rebuilt when the database changes (a desk's ``refresh``) or the registry is reloaded, and
keeps ``contact_ties`` (the registry contacts tied to an account) in step for the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..config import Agency, Contact
from ..sqldialect import Handle
from ..store import Store
from . import hygiene_store
from . import store as contacts_store
from .flags import Flag, key_of
from .model import Person, StoredContact


def _keys(contact: Contact) -> set[tuple[str, str]]:
    return {
        (field, value)
        for field, value in (
            ("phone", contact.phone),
            ("email", contact.email and contact.email.lower()),
            ("portal_account", contact.portal_account),
            ("account", contact.account),
        )
        if value
    }


class Directory:
    """Every agency's people (registry and stored), with who is paged."""

    def __init__(
        self,
        agencies: Iterable[Agency],
        stored: Iterable[StoredContact] = (),
        revoked: frozenset[str] = frozenset(),
        flags: Iterable[Flag] = (),
    ) -> None:
        self.agency_ids: list[str] = []
        # The open flags (an address that failed for good), by (channel, address): the router
        # leaves those channels out (see monitor.contacts.flags).
        self.flags: dict[tuple[str, str], Flag] = {f.key: f for f in flags}
        self.flagged: frozenset[tuple[str, str]] = frozenset(self.flags)
        self._people: dict[str, list[Person]] = {}
        claimed: dict[str, dict[tuple[str, str], str]] = {}
        for agency in agencies:
            if agency.id in self._people:
                continue
            self.agency_ids.append(agency.id)
            people = self._people.setdefault(agency.id, [])
            owners = claimed.setdefault(agency.id, {})
            for contact in agency.contacts:
                cid = contact.contact_id(agency.id)
                people.append(
                    Person(
                        agency.id,
                        cid,
                        contact,
                        "registry",
                        account_id=contact.account,
                        revoked=contact.account in revoked,
                    )
                )
                for key in _keys(contact):
                    owners.setdefault(key, cid)
        for row in stored:
            if row.removed_at is not None:
                continue
            contact = row.as_contact()
            owners = claimed.get(row.agency, {})
            shadow = next((owners[k] for k in sorted(_keys(contact)) if k in owners), None)
            self._people.setdefault(row.agency, []).append(
                Person(
                    row.agency,
                    row.id,
                    contact,
                    "store",
                    account_id=row.account_id,
                    shadowed_by=shadow,
                    revoked=row.account_id in revoked,
                    stored=row,
                )
            )

    @classmethod
    def of_registry(cls, agencies: Iterable[Agency]) -> Directory:
        """The registry's contacts alone (check-config, tests, code without a store)."""
        return cls(agencies)

    def people(self, agency: str) -> list[Person]:
        """Every listed person of ``agency``, paged or not."""
        return list(self._people.get(agency, ()))

    def find(self, agency: str, contact_id: str) -> Person | None:
        return next((p for p in self._people.get(agency, ()) if p.id == contact_id), None)

    def active(self, agency: str, role: str) -> list[Person]:
        """Who of ``agency`` in ``role`` is paged, in the directory's order."""
        return [p for p in self._people.get(agency, ()) if p.active and p.contact.role == role]

    def flags_of(self, contact: Contact) -> list[Flag]:
        """The open flags of a contact's phone number and e-mail address."""
        keys = [
            key_of(channel, address)
            for channel, address in (("sms", contact.phone), ("email", contact.email))
            if address
        ]
        return [self.flags[k] for k in keys if k in self.flags]

    def ties(self) -> dict[str, str]:
        """Registry contacts tied to an account: person id → account id."""
        return {
            p.person: p.account_id
            for people in self._people.values()
            for p in people
            if p.source == "registry" and p.account_id is not None
        }


def read(db: Handle, agencies: Iterable[Agency]) -> Directory:
    """The directory of ``agencies`` and the store's contacts, read in one transaction."""
    return Directory(
        agencies,
        contacts_store.listed(db),
        contacts_store.revoked_accounts(db),
        hygiene_store.open_flags(db),
    )


class ContactsDesk:
    """Keeps the current :class:`Directory` (a rules desk: refreshed when the database
    changes); call it for the directory in effect."""

    def __init__(self, store: Store, agencies: Callable[[], Sequence[Agency]]) -> None:
        self.store = store
        self.agencies = agencies
        self._seen: Sequence[Agency] = agencies()
        self._stored: list[StoredContact] = []
        self._revoked: frozenset[str] = frozenset()
        self._flags: list[Flag] = []
        self._directory = Directory(self._seen)
        self._synced: dict[str, str] | None = None
        self._tied_for: Sequence[Agency] | None = None
        self._stamp: tuple[Any, ...] | None = None

    def __call__(self) -> Directory:
        agencies = self.agencies()
        if agencies is not self._seen:  # a config reload: the registry's part is new
            self._seen = agencies
            self._directory = Directory(agencies, self._stored, self._revoked, self._flags)
        return self._directory

    async def refresh(self) -> None:
        agencies = self.agencies()
        wanted = Directory(agencies).ties()
        sync = wanted != self._synced

        def work(
            db: Handle,
        ) -> tuple[tuple[Any, ...], list[StoredContact], frozenset[str], list[Flag]]:
            if sync:
                contacts_store.set_ties(db, wanted)
            seen = _stamp(db)
            flags = hygiene_store.open_flags(db)
            return seen, contacts_store.listed(db), contacts_store.revoked_accounts(db), flags

        self._stamp, stored, revoked, flags = await self.store.transact(work)
        self._synced = wanted
        self._stored, self._revoked, self._flags, self._seen = stored, revoked, flags, agencies
        self._tied_for = agencies
        self._directory = Directory(agencies, stored, revoked, flags)

    def watch(self, db: Handle) -> tuple[Any, ...]:
        """What moves when a contact, a revocation or an address flag is written (the
        database's data_version does not see this process's own writes: the outbox flags an
        address in this process)."""
        return _stamp(db)

    async def act(self, now: float, seen: tuple[Any, ...]) -> None:
        """Re-read when :meth:`watch` moved, or the registry was reloaded (its ties go to the
        database, for the outbox)."""
        if seen != self._stamp or self.agencies() is not self._tied_for:
            await self.refresh()

    async def tick(self, now: float) -> None:
        await self.act(now, await self.store.transact(self.watch))


def _stamp(db: Handle) -> tuple[Any, ...]:
    return (*contacts_store.stamp(db), *hygiene_store.stamp(db))


async def refresh_among(desks: Iterable[object]) -> None:
    """Refresh the :class:`ContactsDesk` among ``desks`` (the daemon's), if there is one: after
    a change made in this process, the router sees it at once."""
    for desk in desks:
        if isinstance(desk, ContactsDesk):
            await desk.refresh()


__all__ = ["ContactsDesk", "Directory", "read", "refresh_among"]
