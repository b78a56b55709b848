"""Who may see and do what: the one access policy of the API, the pages and the inbox.

Roles, highest first: a ``national-admin`` (the Government Office's operations team) sees and
does everything, the portal itself included; every other role belongs to one agency and sees
only that agency. Inside it, what a role may do is a minimum rank per :class:`Action`: a
``viewer`` reads, an ``operator`` acts on incidents, announcements, maintenance windows and
silences, an ``agency-admin`` also manages the agency's lower accounts and reads its audit log.
Some acts are the national-admin's alone whatever the agency (a silence, a certificate mapping,
an inbox under another name) and a portal-wide act (``agency`` None) is too.

Callers ask :func:`may_read`, :func:`may_act` or :func:`may_manage` and word the refusal
themselves; this module decides and imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, Protocol, get_args

Role = Literal["national-admin", "agency-admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
NATIONAL_ADMIN: Final = "national-admin"
AGENCY_ADMIN: Final = "agency-admin"
OPERATOR: Final = "operator"
VIEWER: Final = "viewer"
#: Higher sees and does more; an agency-admin manages only accounts ranked below its own.
RANK: dict[str, int] = {NATIONAL_ADMIN: 4, AGENCY_ADMIN: 3, OPERATOR: 2, VIEWER: 1}


class Action(StrEnum):
    """What an account asks to do, for :func:`may_act`."""

    #: Open, acknowledge, resolve and comment incidents; announce and withdraw changes;
    #: schedule and cancel maintenance; end a silence.
    OPERATE = "operate"
    #: List the agency's accounts and read its audit log.
    ADMINISTER = "administer"
    #: Silence alerts: it hides them from everyone routed to them (operations, and agencies
    #: behind the system), so only the Government Office decides it.
    SILENCE = "silence"
    #: Map an account to a client certificate: in anyone else's hands, a takeover of a login.
    MAP_CERTIFICATE = "map-certificate"
    #: Give an account an inbox under another name than its own.
    NAME_INBOX = "name-inbox"
    #: Add, edit and remove the agency's contacts (the people it pages).
    MANAGE_CONTACTS = "manage-contacts"


#: The lowest role that may do each action inside its own agency.
MINIMUM: dict[Action, Role] = {
    Action.OPERATE: OPERATOR,
    Action.ADMINISTER: AGENCY_ADMIN,
    Action.SILENCE: NATIONAL_ADMIN,
    Action.MAP_CERTIFICATE: NATIONAL_ADMIN,
    Action.NAME_INBOX: NATIONAL_ADMIN,
    Action.MANAGE_CONTACTS: AGENCY_ADMIN,
}


class Holder(Protocol):
    """Whoever holds a role: an account (:class:`monitor.accounts.Account`) or one about to be."""

    @property
    def role(self) -> str: ...

    @property
    def agency(self) -> str | None: ...

    @property
    def active(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """A role in an agency, not (yet) an account: who would read an inbox."""

    role: str
    agency: str | None
    active: bool = True


def sees_all(account: Holder) -> bool:
    """Whether ``account`` sees every agency (and the portal's own data)."""
    return account.role == NATIONAL_ADMIN


def read_scope(account: Holder) -> str | None:
    """The one agency ``account`` may read, or None when it reads every agency."""
    return None if sees_all(account) else account.agency


def may_read(account: Holder, agency: str | None) -> bool:
    """Whether ``account`` may see ``agency``'s data (None: the portal's own)."""
    return sees_all(account) or (agency is not None and account.agency == agency)


def may_act(account: Holder, agency: str | None, action: Action) -> bool:
    """Whether ``account`` may do ``action`` for ``agency`` (None: for the portal as a whole,
    or several agencies at once: the national-admin's alone)."""
    if sees_all(account):
        return True
    return may_read(account, agency) and RANK[account.role] >= RANK[MINIMUM[action]]


def may_manage(actor: Holder, role: str, agency: str | None) -> bool:
    """Whether ``actor`` may create, grant or revoke an account of ``role`` in ``agency``: a
    national-admin any; an agency-admin its agency's accounts of a lower role."""
    if not actor.active:
        return False
    return may_act(actor, agency, Action.ADMINISTER) and (
        sees_all(actor) or RANK[role] < RANK[actor.role]
    )


def sees_addresses(account: Holder, agency: str | None) -> bool:
    """Whether ``account`` reads ``agency``'s contacts' phone numbers and e-mail addresses
    whole (a viewer sees them masked)."""
    return may_read(account, agency) and RANK[account.role] >= RANK[OPERATOR]


def may_map_certificates(actor: Holder | None) -> bool:
    """Whether ``actor`` may map client certificates to accounts (None: the command line on the
    gateway host, which may)."""
    return actor is None or (actor.active and may_act(actor, None, Action.MAP_CERTIFICATE))


def may_read_inbox(reader: Holder, owner: str | None) -> bool:
    """Whether an account may hold an inbox that belongs to a configured contact of ``owner``
    (an agency; None: the operations team, whose inboxes national-admins alone read)."""
    return may_read(reader, owner)


__all__ = [
    "AGENCY_ADMIN",
    "NATIONAL_ADMIN",
    "OPERATOR",
    "RANK",
    "ROLES",
    "VIEWER",
    "Action",
    "Holder",
    "Principal",
    "Role",
    "may_act",
    "may_manage",
    "may_map_certificates",
    "may_read",
    "may_read_inbox",
    "read_scope",
    "sees_addresses",
    "sees_all",
]
