"""Unannounced changes: a secure server whose certificate, issuer or addresses changed without
an announcement — a misconfiguration, or someone in the middle.

The expected value of each observed field is what the config pins (a check's
``expected_fingerprint_sha256`` or ``expected_addresses``, after announced overrides), else what
was last observed and accepted (kept in the store, so a restart remembers it). A new value that
an announcement covers is accepted quietly; one that none covers raises one "unannounced
change" notice to operations and the agency's admins, and becomes the accepted value — the next
probe does not alert again, and a change *back* is a change of its own. A pinned value stays
expected until announced otherwise (the probe keeps failing meanwhile), but is told once.

Observation runs inside the engine's result callback: it compares strings in memory; anything
that needs the database or the outbox is queued for :meth:`ChangeWatch.tick`. Its statements
(``observed_values``, ``unannounced_changes``) are in :mod:`.store`, its notice in
:mod:`.notices`.
"""

from __future__ import annotations

import ipaddress
import logging

from npsp_common.types import ProbeResult

from ...alerting.notices import admins_and_operations
from ...registry import CheckEntry
from ...sqldialect import Handle
from ..desk import RulesContext
from . import store as rows
from .desk import AnnouncementDesk
from .model import FIELDS, Finding, WatchedField
from .notices import unannounced_notice

# The watch's logger keeps its name from before the topic became a folder (log lines print it).
log = logging.getLogger("monitor.rules.changewatch")

Field = WatchedField  # the observed fields the watch compares
WATCHED_KINDS = frozenset({"secure-server"})  # routine renewals elsewhere are not news


def _pinned(entry: CheckEntry, field: Field) -> str | None:
    spec = entry.spec
    if field == "fingerprint_sha256":
        tls = getattr(spec, "tls", None)
        return None if tls is None else tls.expected_fingerprint_sha256
    if field == "addresses":
        addresses = getattr(spec, "expected_addresses", None)
        return canonical_addresses(addresses) if addresses else None
    return None


def canonical_addresses(addresses: list[str]) -> str:
    """The dns probe's form of an address set: sorted as addresses, comma-separated."""
    parsed = {ipaddress.ip_address(x) for x in addresses}
    return ",".join(str(a) for a in sorted(parsed, key=lambda a: (a.version, int(a))))


class ChangeWatch:
    """Compares what probes observe with what is expected; a Desk for its slow half."""

    def __init__(self, ctx: RulesContext, announcements: AnnouncementDesk) -> None:
        self.ctx = ctx
        self.announcements = announcements
        self.accepted: dict[tuple[str, str], str] = {}
        # (check, field) -> the value last alerted: the same value is not news again until the
        # accepted value moved on (then a return to it is a change of its own).
        self.told: dict[tuple[str, str], str] = {}
        self._unsaved: dict[tuple[str, str], tuple[str, float]] = {}
        self._findings: list[Finding] = []
        self.loaded = False

    # ----- the fast half: in the engine's result callback

    def observe(self, check_key: str, result: ProbeResult, now: float) -> None:
        if not self.loaded:
            return  # before the accepted values are read, nothing can be judged
        entry = self.ctx.registry().checks.get(check_key)
        if entry is None:
            return
        system = self.ctx.registry().systems.get(f"{entry.agency}/{entry.system}")
        if system is None or system.system.kind not in WATCHED_KINDS:
            return
        for field in FIELDS:
            value = result.observed.get(field)
            if not value:
                continue
            pinned = _pinned(entry, field)
            accepted = self.accepted.get((check_key, field))
            expected = pinned if pinned is not None else accepted
            if value == expected or (pinned is not None and value == accepted):
                self._still_revoked(system.key, check_key, field, value, now)
                continue
            self._accept(check_key, field, value, now)
            if self.told.get((check_key, field)) not in (None, value):
                del self.told[(check_key, field)]  # moved on from the value last alerted
            if expected is None:
                continue  # first sight: this is the baseline
            announcement = self.announcements.covers(system.key, field, value, now)
            if announcement is not None:
                log.info(
                    "observed an announced change",
                    extra={"check": check_key, "field": field, "announcement": announcement.id},
                )
                continue
            if self.told.get((check_key, field)) == value:
                continue
            self.told[(check_key, field)] = value
            self._findings.append(Finding(check_key, field, expected, value, now))
            log.warning(
                "unannounced change",
                extra={"check": check_key, "field": field, "old": expected, "new": value},
            )

    def _still_revoked(
        self, system_key: str, check_key: str, field: Field, value: str, now: float
    ) -> None:
        """A value accepted because an announcement named it, and that announcement has been
        cancelled since (perhaps after it took effect: a late announcement by someone holding
        the agency's credential): still served, it is news again, told once."""
        revoked = self.announcements.revoked(system_key, field, value)
        if revoked is None or self.told.get((check_key, field)) == value:
            return
        if self.announcements.covers(system_key, field, value, now) is not None:
            return  # announced again since, by an announcement that stands
        self.told[(check_key, field)] = value
        before = f"#{revoked.id} ({revoked.ref or '-'}), cancelled / đã huỷ"
        self._findings.append(Finding(check_key, field, before, value, now))
        log.warning(
            "a cancelled announcement's value is still observed",
            extra={"check": check_key, "field": field, "announcement": revoked.id, "new": value},
        )

    def _accept(self, check_key: str, field: str, value: str, now: float) -> None:
        self.accepted[(check_key, field)] = value
        self._unsaved[(check_key, field)] = (value, now)

    # ----- the slow half (Desk)

    async def load(self) -> None:
        """Read the accepted values and the changes already told (at start)."""

        accepted, told = await self.ctx.store.transact(
            lambda db: (rows.accepted(db), rows.told(db))
        )
        self.accepted = {(c, f): v for c, f, v in accepted}
        self.told = {(c, f): v for c, f, v in told}  # the latest per check and field
        for key, value in list(self.told.items()):
            if self.accepted.get(key) != value:
                del self.told[key]
        self.loaded = True

    async def refresh(self) -> None:
        if not self.loaded:
            await self.load()

    async def tick(self, now: float) -> None:
        del now
        if not self.loaded:
            await self.load()
        unsaved, self._unsaved = self._unsaved, {}
        findings, self._findings = self._findings, []
        if not unsaved and not findings:
            return

        def write(db: Handle) -> None:
            rows.accept(db, [(c, f, v, t) for (c, f), (v, t) in unsaved.items()])
            rows.tell(db, findings)

        try:
            # Queued first (their keys are stable, so a second try queues nothing twice), then
            # recorded as told: a failure in between means a retry, never a lost alert.
            for group in _by_observation(findings):
                agency = group[0].system_key.partition("/")[0]
                audience = admins_and_operations(agency)
                await self.ctx.notices.send_notice(
                    unannounced_notice(group, self.ctx.registry()), audience
                )
            await self.ctx.store.transact(write)
        except Exception:
            # Keep them for the next tick (newer observations win).
            self._unsaved = {**unsaved, **self._unsaved}
            self._findings[:0] = findings
            raise
        for _ in findings:
            self.ctx.count("unannounced_changes")


def _by_observation(findings: list[Finding]) -> list[list[Finding]]:
    """Findings grouped by the probe result that produced them (same check, same time)."""
    groups: dict[tuple[str, float], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.check_key, finding.time), []).append(finding)
    return list(groups.values())
