"""A recorded grant or revocation of senior rights (the ``agency-admin`` role), a holder, and
the replay that says who held them at a moment. Plain data, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "SENIOR_ROLE",
    "AgencySeniorRights",
    "Change",
    "ChangeKind",
    "Holder",
    "LegacyAccount",
    "change_of",
    "replay",
]

#: The role that holds an agency's senior (high-level) rights.
SENIOR_ROLE = "agency-admin"

ChangeKind = Literal["granted", "revoked"]


def change_of(before: str | None, after: str | None) -> ChangeKind | None:
    """What a role change does to senior rights (None: a role before or after, e.g. a new
    account or a revocation): granted, revoked, or nothing."""
    was, now = before == SENIOR_ROLE, after == SENIOR_ROLE
    if was == now:
        return None
    return "granted" if now else "revoked"


@dataclass(frozen=True, slots=True)
class Change:
    """One row of ``senior_rights_changes``."""

    id: int
    agency: str
    account_id: str
    name: str
    change: ChangeKind
    at: float
    actor: str
    source: str  # api, page, cli
    notified_at: float | None = None


@dataclass(frozen=True, slots=True)
class LegacyAccount:
    """An active agency-admin account as stored (for those made before the records began)."""

    account_id: str
    name: str
    agency: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds an agency's senior rights, since when; ``from_creation``: no record of the
    grant (the account predates the records), so counted from the account's creation."""

    account_id: str
    name: str
    since: float
    from_creation: bool = False


@dataclass(frozen=True, slots=True)
class AgencySeniorRights:
    """One agency's part of a report: the holders at its end, the changes during it."""

    agency: str
    holders: tuple[Holder, ...]
    changes: tuple[Change, ...]


def replay(
    changes: Sequence[Change], legacy: Iterable[LegacyAccount], start: float, end: float
) -> dict[str, AgencySeniorRights]:
    """Per agency: who held senior rights at ``end`` and the changes in ``[start, end)``.

    ``changes``: every row before ``end``; ``legacy``: the accounts that held the rights before
    the records began (an active agency-admin with no row, or one whose first row is a
    revocation): each holds them from its creation until its first row.
    """
    ordered = sorted(changes, key=lambda c: (c.at, c.id))
    holding: dict[tuple[str, str], Holder] = {
        (a.agency, a.account_id): Holder(a.account_id, a.name, a.created_at, True)
        for a in legacy
        if a.created_at < end
    }
    for c in ordered:
        key = (c.agency, c.account_id)
        if c.change == "granted":
            holding[key] = Holder(c.account_id, c.name, c.at)
        else:
            holding.pop(key, None)
    out: dict[str, AgencySeniorRights] = {}
    agencies = {a for a, _ in holding} | {c.agency for c in ordered if c.at >= start}
    for agency in sorted(agencies):
        holders = sorted(
            (h for (a, _), h in holding.items() if a == agency), key=lambda h: h.account_id
        )
        during = tuple(c for c in ordered if c.agency == agency and start <= c.at < end)
        out[agency] = AgencySeniorRights(agency, tuple(holders), during)
    return out
