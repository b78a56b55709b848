"""The senior-rights desk: on the leader, tells operations of each recorded grant or
revocation of an agency's high-level account, once (see :mod:`monitor.rules.seniorrights`)."""

from __future__ import annotations

import logging

from ...sqldialect import Handle
from ..desk import RulesContext
from . import store as rows
from .model import Change
from .notices import AUDIENCE, notice_for

log = logging.getLogger(__package__)


class SeniorRightsDesk:
    """A :class:`~monitor.rules.desk.Desk`. Its tick reads the rows not yet told (one indexed
    query, on the leader only): a change made through this very process's API does not move
    the store's data version, so waiting for :meth:`refresh` would miss it."""

    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx

    async def refresh(self) -> None:
        """Nothing kept in memory: every tick reads what is owed."""

    def watch(self, db: Handle) -> list[Change]:
        return rows.pending(db)

    async def tick(self, now: float) -> None:
        await self.act(now, await self.ctx.store.transact(self.watch))

    async def act(self, now: float, seen: list[Change]) -> None:
        for change in seen:
            try:
                await self._tell(change, now)
            except Exception:
                # One row's trouble must not hold the others' notices; the next tick retries.
                log.exception("senior rights change #%d: cannot tell operations", change.id)

    async def _tell(self, change: Change, now: float) -> None:
        """Queue the notice (keyed by the row: a second leader, or a restart between queuing
        and marking, queues nothing more), then mark the row told."""
        notice = notice_for(change, self.ctx.registry())
        queued = await self.ctx.notices.send_notice(notice, AUDIENCE)
        marked = await self.ctx.store.transact(lambda db: rows.mark_notified(db, change.id, now))
        log.info(
            "senior rights notice",
            extra={
                "senior_rights": change.id,
                "agency": change.agency,
                "change": change.change,
                "queued": queued,
                "marked": marked,
            },
        )
