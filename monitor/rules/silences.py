"""Silences made through the API (stored; the config's own are in monitor.config.alerting).

A Muter for the alert pipeline, answered from memory; re-read when the database changes.
"""

from __future__ import annotations

from ..alerting.model import Alert
from .desk import RulesContext


class SilenceDesk:
    """The active API silences, as a Desk and a Muter."""

    def __init__(self, ctx: RulesContext) -> None:
        self.ctx = ctx
        self.active: list[tuple[int, str, str | None, float, float, str]] = []

    async def refresh(self) -> None:
        now = self.ctx.clock()
        rows = await self.ctx.store.transact(
            lambda db: db.execute(
                "SELECT id, agency, system, starts, ends, reason FROM silences"
                " WHERE cancelled_at IS NULL AND ends > ?",
                (now,),
            ).fetchall()
        )
        self.active = [(int(i), a, s, float(b), float(e), str(r)) for i, a, s, b, e, r in rows]

    async def tick(self, now: float) -> None:
        self.active = [s for s in self.active if s[4] > now]

    def mutes(self, alert: Alert, now: float) -> str | None:
        for silence_id, agency, system, starts, ends, reason in self.active:
            if agency == alert.agency and system in (None, alert.system) and starts <= now < ends:
                return f"silence #{silence_id}: {reason}"
        return None
