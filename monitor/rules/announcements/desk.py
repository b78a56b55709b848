"""The announcements desk: keeps the announcements, confirms each to its agency, tells about
late ones and cancellations, switches expected values in time, and answers the
unannounced-change watch and the catalog (see :mod:`monitor.rules.announcements`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ...alerting.notices import admins_and_operations
from ...registry import Override, Registry
from ..desk import RulesContext
from . import store as rows
from .actions import load_all, save
from .judge import examine
from .model import Announcement, AnnouncementRequest, Changes
from .notices import cancellation, concerned, confirmation, in_effect_notice, late_notice

log = logging.getLogger(__package__)  # the topic's logger, as before the split

CANCEL_TOLD_WITHIN = 86400.0  # cancellations older than this at start are not told again


class AnnouncementDesk:
    """Keeps the announcements, confirms each to its agency, tells about late ones, switches
    expected values in time.

    ``on_overrides`` is called with the overrides in effect whenever they change (the engine
    rebuilds the affected checks); ``on_change`` whenever the catalog may have changed.
    ``status_page_url`` (``alerting.status_page_url``) gives the site of the cancellation
    links in the confirmations; the daemon sets it (and again on reload).
    """

    def __init__(
        self,
        ctx: RulesContext,
        *,
        on_overrides: Callable[[dict[str, Override]], Awaitable[None]] | None = None,
        on_change: Callable[[], None] | None = None,
        status_page_url: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.status_page_url = status_page_url
        self.on_overrides = on_overrides
        self.on_change = on_change
        self.items: list[Announcement] = []
        self._cancel_told: set[int] = set()  # cancellations told since start
        # Cancelled announcements by (system, field), rebuilt when ``items`` is replaced.
        self._revoked_index: dict[tuple[str, str], list[Announcement]] = {}
        self._revoked_from: list[Announcement] | None = None
        self.overrides: dict[str, Override] = {}
        self.violations = 0

    # ----- intake

    async def submit(
        self,
        request: AnnouncementRequest,
        agency: str,
        source: str,
        *,
        author: str | None = None,
    ) -> tuple[Announcement, bool]:
        """Validate, store and act on one announcement; return it and whether it is new.

        ``author`` is who the caller authenticated (``mqtt:<agency>``); without it the request's
        own ``author`` (set by the API from the account) or the source is recorded.
        """
        now = self.ctx.clock()
        a = examine(
            request,
            agency,
            registry=self.ctx.registry(),
            calendar=self.ctx.calendar,
            now=now,
            source=source,
        )
        if author is not None:
            a = replace(a, author=author)
        stored, new = await save(self.ctx.store, a)
        if new:
            log.info(
                "change announced",
                extra={
                    "id": stored.id,
                    "system": stored.key,
                    "working_days": stored.working_days,
                    "compliant": stored.compliant,
                },
            )
            await self.refresh()
            await self.tick(now)
        return stored, new

    # ----- Desk

    async def refresh(self) -> None:
        self.items = await load_all(self.ctx.store)
        if self.on_change is not None:
            self.on_change()

    async def tick(self, now: float) -> None:
        registry = self.ctx.registry()
        handled, late = await self._handle_new(registry)
        await self._tell_cancellations(registry, now)
        due = [
            a.id
            for a in self.items
            if a.applied_at is None and a.cancelled_at is None and a.effective_at <= now
        ]
        if handled or due:
            await self._record(now, handled, late, due)
        await self._publish_overrides(now)

    async def _handle_new(self, registry: Registry) -> tuple[list[int], int]:
        """Confirm every announcement not handled yet and alert the late ones; their ids, and
        how many were late."""
        source = self.ctx.rules.secure_server_change_notice.source
        handled, late = [], 0
        for a in self.items:
            if a.handled_at is not None or a.cancelled_at is not None:
                continue
            # Marked handled only once queued: the outbox key makes a retry a no-op.
            await self._confirm(a, registry)
            if await self._late(a, registry, source):
                late += 1
            handled.append(a.id)
        return handled, late

    async def _confirm(self, a: Announcement, registry: Registry) -> None:
        if a.recorded_in_effect and a.changes.whitelists:
            # Whitelisted at once, with no time to object before it takes effect: the way a
            # backdated notice would hide an intercepting certificate. Its confirmation asks
            # everyone concerned, dependents too, to verify it, whatever notice it claims.
            await self.ctx.notices.send_notice(
                in_effect_notice(a, registry, self.status_page_url), concerned(a, registry)
            )
            log.warning(
                "a change recorded after it took effect: accepted at once, verification asked",
                extra={"id": a.id, "system": a.key, "compliant": a.compliant},
            )
        else:
            # Every other accepted announcement, compliant or late, is confirmed to the
            # agency it speaks for: a forged one is seen (and cancelled) before it takes
            # effect.
            await self.ctx.notices.send_notice(
                confirmation(a, registry, self.status_page_url),
                admins_and_operations(a.agency),
            )

    async def _late(self, a: Announcement, registry: Registry, source: str) -> bool:
        """Whether ``a`` is a late notice (alerted unless it was recorded in effect)."""
        if a.compliant:
            return False
        if a.recorded_in_effect:
            # A paper notice recorded after the change took effect: late, and counted as
            # such, but there is nothing left to prepare for — no late-notice alert.
            log.info(
                "late notice recorded after the change took effect: counted, not alerted",
                extra={"id": a.id, "system": a.key, "working_days": a.working_days},
            )
            return True
        await self.ctx.notices.send_notice(late_notice(a, registry, source), concerned(a, registry))
        log.warning(
            "late notice of a secure-server change",
            extra={"id": a.id, "system": a.key, "working_days": a.working_days},
        )
        return True

    async def _tell_cancellations(self, registry: Registry, now: float) -> None:
        for a in self.items:
            if (
                a.cancelled_at is None
                or a.id in self._cancel_told
                or now - a.cancelled_at > CANCEL_TOLD_WITHIN
            ):
                continue
            await self.ctx.notices.send_notice(
                cancellation(a, registry),
                admins_and_operations(a.agency),
            )
            self._cancel_told.add(a.id)  # the outbox key makes a repeat after a restart a no-op

    async def _record(self, now: float, handled: list[int], late: int, due: list[int]) -> None:
        """Mark the announcements handled and those now in effect, count the late ones."""
        if handled:
            await self.ctx.store.transact(lambda db: rows.mark(db, "handled_at", handled, now))
        for _ in range(late):  # counted once handled: a failure above means a retry
            self.violations += 1
            self.ctx.count("change_notice_violations")
        if due:
            await self.ctx.store.transact(lambda db: rows.mark(db, "applied_at", due, now))
        marked_h, marked_a = set(handled), set(due)
        self.items = [
            replace(
                a,
                handled_at=now if a.id in marked_h else a.handled_at,
                applied_at=now if a.id in marked_a else a.applied_at,
            )
            for a in self.items
        ]
        for a in self.items:
            if a.id in marked_a:
                log.info("announced change took effect", extra={"id": a.id, "system": a.key})
        if self.on_change is not None:
            self.on_change()

    async def _publish_overrides(self, now: float) -> None:
        overrides = self.overrides_at(now)
        if overrides != self.overrides:
            if self.on_overrides is not None:
                await self.on_overrides(overrides)
            self.overrides = overrides  # only once applied: a failure is retried next tick

    def overrides_at(self, now: float) -> dict[str, Override]:
        """What every announcement in effect at ``now`` changed, later ones winning per field."""
        merged: dict[str, dict[str, Any]] = {}
        for a in self.items:  # ordered by effective time
            if a.cancelled_at is not None or a.effective_at > now:
                continue
            fields = merged.setdefault(a.key, {})
            o = a.changes.override()
            for name in ("host", "port", "fingerprint_sha256", "addresses"):
                value = getattr(o, name)
                if value is not None:
                    fields[name] = value
        return {key: Override(**fields) for key, fields in merged.items() if fields}

    # ----- questions from the unannounced-change watch and the catalog

    def covers(self, system_key: str, field: str, value: str, now: float) -> Announcement | None:
        """The announcement that makes ``value`` expected now: the latest one (made by ``now``,
        not cancelled) naming this field — an upcoming change installed early — or the latest
        one of those already in effect. A value superseded since is not covered."""
        naming = [
            a
            for a in self.items  # ordered by effective time
            if a.key == system_key
            and a.cancelled_at is None
            and min(a.announced_at, a.created_at) <= now  # made by now (clock skew aside)
            and _names(a.changes, field)
        ]
        in_effect = [a for a in naming if a.effective_at <= now]
        for a in (naming[-1:] + in_effect[-1:]) if naming else []:
            if _announces(a.changes, field, value):
                return a
        return None

    def revoked(self, system_key: str, field: str, value: str) -> Announcement | None:
        """A cancelled announcement that had named ``value`` for ``field`` (the latest), if
        any: a value it whitelisted, still observed, is news again."""
        if self._revoked_from is not self.items:
            index: dict[tuple[str, str], list[Announcement]] = {}
            for a in self.items:
                if a.cancelled_at is not None:
                    for name in ("fingerprint_sha256", "issuer", "addresses"):
                        if _names(a.changes, name):
                            index.setdefault((a.key, name), []).append(a)
            self._revoked_index, self._revoked_from = index, self.items
        for a in reversed(self._revoked_index.get((system_key, field), [])):
            if _announces(a.changes, field, value):
                return a
        return None

    def upcoming(self, system_key: str, now: float) -> list[Announcement]:
        return [
            a
            for a in self.items
            if a.key == system_key and a.cancelled_at is None and a.effective_at > now
        ]


def _names(changes: Changes, field: str) -> bool:
    return getattr(changes, field, None) is not None


def _announces(changes: Changes, field: str, value: str) -> bool:
    if field == "fingerprint_sha256":
        return changes.fingerprint_sha256 == value
    if field == "addresses":
        return changes.addresses is not None and ",".join(changes.addresses) == value
    if field == "issuer":
        announced = changes.issuer
        return announced is not None and announced.casefold() == value.casefold()
    return False
