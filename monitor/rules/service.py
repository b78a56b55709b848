"""The rules desks of one daemon, built in one place and wired to the engine and the broker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..registry import Override
from ..rosters import GapDesk, Rosters
from ..workdays import WorkCalendar
from .announcements import AnnouncementDesk
from .announcements.catalog import CatalogPublisher, build_catalog
from .announcements.changewatch import ChangeWatch
from .announcements.intake import TOPIC_FILTER, MqttAnnouncements
from .desk import Desk, RulesContext
from .incidents import IncidentDesk
from .maintenance import MaintenanceDesk
from .seniorrights import SeniorRightsDesk
from .silences import SilenceDesk

if TYPE_CHECKING:
    from ..broker import MqttPublisher


class RulesService:
    """Announcements (with the catalog and the unannounced-change watch), maintenance windows
    and incidents."""

    def __init__(
        self,
        ctx: RulesContext,
        *,
        set_overrides: Callable[[dict[str, Override]], Awaitable[None]] | None = None,
        publisher: MqttPublisher | None = None,
        status_page_url: str | None = None,
        desks: Sequence[Desk] = (),
    ) -> None:
        self.ctx = ctx
        # Desks built elsewhere on this context, run with these (the scheduled reports':
        # monitor.reports sits above the rules and cannot be imported here).
        self.others = list(desks)
        # Confirmations of announcements link to the page where one can be cancelled.
        self.announcements = AnnouncementDesk(
            ctx,
            on_overrides=set_overrides,
            on_change=self._catalog_changed,
            status_page_url=status_page_url,
        )
        self.watch = ChangeWatch(ctx, self.announcements)
        self.maintenance = MaintenanceDesk(ctx)
        self.incidents = IncidentDesk(ctx, maintenance=self.maintenance.covering)
        self.silences = SilenceDesk(ctx)
        # Grants and revocations of agencies' senior rights, told to operations.
        self.senior_rights = SeniorRightsDesk(ctx)
        # Duty rosters: who is on duty (every host, for the router and the pages), and the
        # leader's daily notice of the uncovered off-hours a day ahead.
        self.rosters = Rosters(ctx.store, lambda: self.ctx.calendar, clock=ctx.clock)
        self.roster_gaps = GapDesk(ctx, self.rosters)
        self.catalog: CatalogPublisher | None = None
        self.mqtt: MqttAnnouncements | None = None
        if publisher is not None:

            async def publish_retained(topic: str, payload: bytes) -> None:
                await publisher.publish(topic, payload, retain=True)

            self.catalog = CatalogPublisher(
                self.catalog_document, publish_retained, lambda: publisher.generation
            )
            self.mqtt = MqttAnnouncements(
                self.announcements,
                publisher.publish,
                tokens=publisher.settings.announcement_tokens,
            )
            publisher.subscribe(TOPIC_FILTER, self.mqtt.on_message)

    def _catalog_changed(self) -> None:
        if self.catalog is not None:
            self.catalog.changed()

    def catalog_document(self, now: float | None = None) -> dict[str, Any]:
        return build_catalog(
            self.ctx.registry(),
            self.announcements,
            self.watch,
            self.ctx.clock() if now is None else now,
        )

    async def load(self) -> dict[str, Override]:
        """Read everything from the store (at start, before the first probe); return the
        announced changes in effect now, which shape the very first registry."""
        await self.announcements.refresh()
        await self.watch.load()
        await self.maintenance.refresh()
        await self.incidents.refresh()
        await self.silences.refresh()
        await self.rosters.refresh()
        overrides = self.announcements.overrides_at(self.ctx.clock())
        self.announcements.overrides = dict(overrides)
        return overrides

    def reconfigure(self, calendar: WorkCalendar, status_page_url: str | None) -> None:
        """A config reload: the working-day calendar and the status page's address."""
        self.ctx.calendar = calendar
        self.announcements.status_page_url = status_page_url

    def desks(self) -> list[Desk]:
        desks: list[Desk] = [
            self.announcements,
            self.watch,
            self.maintenance,
            self.incidents,
            self.silences,
            self.senior_rights,
            self.rosters,
            self.roster_gaps,
        ]
        if self.catalog is not None:
            desks.append(self.catalog)
        return desks + self.others


__all__ = ["RulesService"]
