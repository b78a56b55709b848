"""Producing a scheduled report: its figures for the period (one read of the store for every
agency), its renderings, and — in one transaction per report — its ``report_runs`` row and its
messages in the outbox. The row's unique key (schedule, period, scope) makes the second attempt
a no-op, whoever makes it (the same host after a restart, another leader, the command line),
and the messages' keys are derived from the same triple and the address.

The daemon's desk (:mod:`monitor.reports.schedule`) and ``npsp-monitor report send`` call
:meth:`Producer.produce`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..alerting import outbox_store
from ..alerting.outbox import OutboxItem
from ..alerting.route import Router
from ..config.reports import ReportSchedule
from ..registry import Registry
from ..sqldialect import Handle
from ..store import Store
from . import runs_store
from .formats import render_csv, render_json
from .html import render_html
from .letters import Letter, audience, letters
from .model import Report
from .periods import Period, agency_report
from .runs_store import NATIONAL, RunRow
from .source import build_period_report

log = logging.getLogger(__name__)

__all__ = ["Outcome", "Producer"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one :meth:`Producer.produce` did."""

    produced: tuple[str, ...]  # the scopes produced now
    already: tuple[str, ...]  # the scopes produced before
    queued: int  # messages queued


@dataclass(frozen=True, slots=True)
class _Ready:
    row: RunRow
    report: Report


class Producer:
    """Produces reports on ``store`` for the running registry, addressed by the running
    router; ``base_url`` is where the links point; ``wake(channel)`` tells the outbox's
    workers there is work (the command line has none: the daemon's workers find it)."""

    def __init__(
        self,
        store: Store,
        registry: Callable[[], Registry],
        router: Callable[[], Router],
        base_url: Callable[[], str],
        wake: Callable[[str], None] = lambda _channel: None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.router = router
        self.base_url = base_url
        self.wake = wake

    def scopes(self, schedule: ReportSchedule) -> list[str]:
        """The reports one period of ``schedule`` makes: the national one, or one per agency
        of the registry (in its order)."""
        if schedule.scope == "national":
            return [NATIONAL]
        return list(dict.fromkeys(e.agency.id for e in self.registry().systems.values()))

    async def produce(
        self, name: str, schedule: ReportSchedule, period: Period, fired: float, now: float
    ) -> Outcome:
        """Produce ``period``'s reports of schedule ``name`` (those not produced yet) and queue
        their messages."""
        wanted = self.scopes(schedule)
        before = await self.store.transact(lambda db: runs_store.produced(db, name, period.label))
        todo = [s for s in wanted if s not in before]
        already = tuple(s for s in wanted if s in before)
        if not todo:
            return Outcome((), already, 0)
        registry = self.registry()
        full = await build_period_report(self.store, registry, period, now=now)
        ready = []
        for scope in todo:
            report = full if scope == NATIONAL else agency_report(full, scope)
            if report is None:
                continue
            ready.append(_Ready(_row(name, period, scope, fired, now, report), report))
        router, base = self.router(), self.base_url().rstrip("/")
        agencies = [a.id for a in full.agencies]

        def write(db: Handle) -> tuple[list[str], list[str], int, set[str]]:
            made: list[str] = []
            skipped: list[str] = []
            queued = 0
            channels: set[str] = set()
            for item in ready:
                run = runs_store.add(db, item.row)
                if run is None:  # another host, or the command line, was first
                    skipped.append(item.row.scope)
                    continue
                made.append(item.row.scope)
                letter = Letter(
                    name,
                    period.kind,
                    item.row.scope,
                    item.report,
                    f"{base}/reports/{run}",
                    f"{base}/api/v1/reports/{run}?format=csv",
                )
                people = [
                    r
                    for agency, target in audience(schedule.recipients, item.row.scope, agencies)
                    for r in router.people(agency, target)
                ]
                rows: list[OutboxItem] = letters(letter, people)
                added = outbox_store.queue(db, rows, now)
                runs_store.set_queued(db, run, added)
                queued += added
                channels.update(r.channel for r in rows)
            return made, skipped, queued, channels

        made, skipped, queued, channels = await self.store.transact(write)
        for channel in channels:
            self.wake(channel)
        if made:
            log.info(
                "scheduled report produced",
                extra={
                    "schedule": name,
                    "period": period.label,
                    "reports": len(made),
                    "queued": queued,
                },
            )
        return Outcome(tuple(made), (*already, *skipped), queued)


def _row(name: str, period: Period, scope: str, fired: float, now: float, report: Report) -> RunRow:
    return RunRow(
        schedule=name,
        period=period.label,
        scope=scope,
        fired_at=fired,
        produced_at=now,
        starts=period.starts,
        ends=period.ends,
        body_json=render_json(report),
        body_csv=render_csv(report),
        body_html_vi=render_html(report, "vi"),
        body_html_en=render_html(report, "en"),
    )
