"""The pruning pass, as a rules desk (:class:`monitor.rules.desk.Desk`, held by
:class:`monitor.rules.service.RulesService`): on the leader only
(:func:`monitor.rules.desk.run_desks` ticks desks there), at start and then at most once per
``retention.every``.

A pass deletes in batches of ``retention.batch_size`` rows, each batch its own short
transaction on the store's thread, with ``retention.pause`` between two; a tick runs batches
for at most :data:`BUDGET` seconds and the pass goes on at the next tick, so the other desks
keep their pace and the event loop only ever waits for one batch's hand-over. Before the state
changes of a month go, each system's figures of that whole month are stored
(:mod:`monitor.reports.monthly`): a past month's report stays what it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..config.retention import KINDS, RetentionSettings
from ..reports import monthly
from ..reports.figures import month_bounds
from ..sqldialect import Handle
from ..store import Store
from . import store

#: Outbox rows pruned, by the period that governs them: a revoked person's dropped rows are
#: kept as long as the failed ones (both say who was not told).
OUTBOX_KINDS = (("outbox_sent", "sent"), ("outbox_failed", "failed"), ("outbox_failed", "dropped"))

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["BUDGET", "KINDS", "PassResult", "RetentionDesk"]

#: Seconds of pruning per tick at most (a tick comes once a second).
BUDGET = 0.25


@dataclass
class PassResult:
    """What one pass did."""

    now: float  # the time the cuts were taken from
    pruned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    months: list[str] = field(default_factory=list)  # months whose figures it stored
    batches: int = 0
    step: str = ""  # what it is doing: "figures YYYY-MM", or the kind it prunes
    longest_batch: float = 0.0  # seconds the store's thread spent on one batch, at most
    longest_step: str = ""  # and what that batch did
    finished: bool = False


def _months_before(first: float, cut: float) -> list[str]:
    """The months from the one holding ``first`` to the last that begins before ``cut``."""
    months = []
    month = monthly.month_of(first)
    while (bounds := month_bounds(month))[0] < cut:
        months.append(month)
        month = monthly.month_of(bounds[1])
    return months


def _outbox_batch(status: str, queued_before: float, batch: int) -> Callable[[Handle], int]:
    return lambda db: store.prune_outbox(db, status, queued_before, batch)


class RetentionDesk:
    """Prunes what ``retention:`` says is old enough; a :class:`~monitor.rules.desk.Desk`."""

    def __init__(
        self,
        db: Store,
        settings: Callable[[], RetentionSettings],
        *,
        on_pruned: Callable[[str, int], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = db
        self.settings = settings  # re-read at every pass (a reload changes it)
        self.on_pruned = on_pruned
        self.monotonic = monotonic
        self.last: PassResult | None = None  # the pass running or last run
        self._steps: AsyncIterator[None] | None = None

    async def refresh(self) -> None:
        """Nothing to re-read: every pass reads what it needs."""

    async def tick(self, now: float) -> None:
        """Start a pass when one is due; go on with it for at most :data:`BUDGET` seconds."""
        if self._steps is None:
            last = self.last
            if last is not None and 0 <= now - last.now < self.settings().every:
                return
            self.last = PassResult(now)
            self._steps = self._pass(self.last)
        deadline = self.monotonic() + BUDGET
        try:
            while self.monotonic() < deadline:
                if await anext(self._steps, False) is False:
                    self._steps = None
                    return
        except BaseException:
            self._steps = None  # the next pass starts afresh, every cut taken again
            raise

    async def run(self, now: float) -> PassResult:
        """One whole pass at ``now`` (the command line, the tests and the bench)."""
        result = self.last = PassResult(now)
        async for _ in self._pass(result):
            pass
        return result

    # ----- the pass ----------------------------------------------------------------------------

    async def _pass(self, result: PassResult) -> AsyncIterator[None]:
        settings = self.settings()
        started = self.monotonic()
        now, batch = result.now, settings.batch_size
        keep = settings.state_changes
        if keep is not None:
            cut = await self.store.transact(lambda db: store.state_cut(db, now, keep))
            async for _ in self._store_months(result, cut):
                yield
            async for _ in self._batches(
                result, "state_changes", lambda db: store.prune_state_changes(db, cut, batch)
            ):
                yield
        if settings.verdicts is not None and self.store.shared:
            before = now - settings.verdicts
            async for _ in self._batches(
                result, "verdicts", lambda db: store.prune_verdicts(db, before, batch)
            ):
                yield
        for kind, status in OUTBOX_KINDS:
            period = getattr(settings, kind)
            if period is not None:
                async for _ in self._batches(
                    result, kind, _outbox_batch(status, now - period, batch)
                ):
                    yield
        if settings.inbox is not None:
            delivered_before = now - settings.inbox
            async for _ in self._batches(
                result, "inbox", lambda db: store.prune_inbox(db, delivered_before, batch)
            ):
                yield
        result.finished, result.step = True, ""
        pruned = sum(result.pruned.values())
        if pruned or result.months:
            log.info(
                "retention: pruned %s in %.1f s (%d batches)%s",
                ", ".join(f"{n} {kind}" for kind, n in result.pruned.items() if n) or "nothing",
                self.monotonic() - started,
                result.batches,
                f"; stored the figures of {', '.join(result.months)}" if result.months else "",
            )

    async def _store_months(self, result: PassResult, cut: float) -> AsyncIterator[None]:
        """Store the figures of every month before ``cut`` not stored yet, a few systems per
        transaction; a month is closed with its last systems."""
        first = await self.store.transact(store.earliest_change)
        if first is None or first >= cut:
            return
        closed = await self.store.transact(monthly.closed)
        per_batch = max(1, self.settings().batch_size // 10)  # a system reads a month of rows
        for month in _months_before(first, cut):
            if month in closed:
                continue
            after = ("", "")
            result.step = f"figures {month}"
            while True:

                def step(
                    db: Handle, month: str = month, after: tuple[str, str] = after
                ) -> list[tuple[str, str]]:
                    systems = store.next_systems(db, after, per_batch)
                    store.measure_month(db, month, systems)
                    if len(systems) < per_batch:
                        monthly.close(db, month, result.now)
                    return systems

                systems = await self._timed(result, step)
                yield
                if len(systems) < per_batch:
                    break
                after = systems[-1]
                await asyncio.sleep(self.settings().pause)
            result.months.append(month)

    async def _timed(self, result: PassResult, batch: Callable[[Handle], T]) -> T:
        """Run one batch in its own transaction, and note how long it took."""
        started = self.monotonic()
        done = await self.store.transact(batch)
        result.batches += 1
        took = self.monotonic() - started
        if took > result.longest_batch:
            result.longest_batch, result.longest_step = took, result.step
        return done

    async def _batches(
        self, result: PassResult, kind: str, delete: Callable[[Handle], int]
    ) -> AsyncIterator[None]:
        """Run ``delete`` (one bounded batch) until a batch comes back short."""
        batch, pause = self.settings().batch_size, self.settings().pause
        result.step = kind
        while True:
            count = await self._timed(result, delete)
            if count:
                result.pruned[kind] += count
                if self.on_pruned is not None:
                    self.on_pruned(kind, count)
            yield
            if count < batch:
                return
            await asyncio.sleep(pause)
