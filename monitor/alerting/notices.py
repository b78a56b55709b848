"""Notices: one-off messages about an event rather than a system's state.

A late change announcement, an unannounced certificate change, a maintenance window scheduled,
started or ended, an incident's SLA reminder: each is one :class:`Notice`, written in both
languages, sent once to an audience (agencies' admins and/or operations) through the same
durable outbox as the alerts. Its key is derived from the event, so queuing it again (after a
restart, or by a second gateway host) is a no-op.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from ..config.alerting import AlertingSettings, Target
from .messages import as_html
from .outbox import Outbox, OutboxItem
from .route import DutyRule, Router

if TYPE_CHECKING:
    from ..contacts.directory import Directory
    from ..registry import Registry

#: Who hears of a notice: (agency id, group of people); the agency is ignored for "operations".
Audience = tuple[str, Target]


@dataclass(frozen=True, slots=True)
class Notice:
    """An event told once, in Vietnamese and English (``subject``, ``text`` and ``sms`` are
    keyed by language: "vi", "en")."""

    key: str  # stable id of the event, e.g. "change-late/42"
    subject: Mapping[str, str]
    text: Mapping[str, str]
    sms: Mapping[str, str]
    thread_key: str | None = None  # e-mails of one story (a window's three notices) thread

    def item_key(self, group_key: str) -> str:
        """The outbox idempotency key of this notice for one address."""
        return hashlib.sha256(f"notice|{self.key}|{group_key}".encode()).hexdigest()[:32]


class NoticeSink(Protocol):
    """Sends a notice to an audience; returns how many messages were newly queued."""

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int: ...


def everyone(agencies: Iterable[str], *targets: Target) -> list[Audience]:
    """Every (agency, target) pair, e.g. ``everyone(["ha-noi"], "technical-admins")``."""
    chosen = list(dict.fromkeys(agencies))
    return [(a, t) for t in targets for a in chosen]


def admins_and_operations(agency: str) -> list[Audience]:
    """The operations team and the agency's technical and high-level admins: who is told of
    what concerns an agency's secure server (announcements, unannounced changes)."""
    return [("", "operations"), *everyone([agency], "technical-admins", "high-level-admins")]


class NoticeSender:
    """Sends notices through the outbox, to the people the routes name (a :class:`NoticeSink`).

    Apart from the alert pipeline: the rules desks that send notices are built before the
    pipeline, which takes the incident desk (acknowledgements) and the maintenance and silence
    desks (muters) when it is built. ``router`` and ``settings`` return the ones in effect
    (they change on reload)."""

    def __init__(
        self,
        outbox: Outbox,
        router: Callable[[], Router],
        settings: Callable[[], AlertingSettings],
    ) -> None:
        self.outbox = outbox
        self.router = router
        self.settings = settings

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int:
        """Queue ``notice`` once for every address of the audience (deduplicated by address).

        Notices are not muted: they are about the rules (a late announcement, a maintenance
        window), which matter precisely when alerts are quiet.
        """
        seen: set[str] = set()
        items = []
        s = self.settings()
        router = self.router()
        audience = list(audience)
        # The page to open: the agency's, when the notice concerns one, else the overview.
        agencies = {a for a, target in audience if target != "operations" and a}
        path = f"/agency/{quote(next(iter(agencies)), safe='')}" if len(agencies) == 1 else "/"
        link = {"vi": f"{s.web_base}{path}", "en": f"{s.web_base}{path}?lang=en"}
        footer = {
            lang: (
                f"\n\n{label[0]}: {s.web_base}{path}{query}"
                f"\n{label[1]}: {s.status_page_url}\n{label[2]}: {s.hotline}"
            )
            for lang, label, query in (
                ("vi", ("Xem trên trang giám sát", "Trang trạng thái", "Hỗ trợ"), ""),
                ("en", ("Open in the monitor", "Status page", "Support"), "?lang=en"),
            )
        }
        for agency, target in audience:
            for r in router.people(agency, target):
                if r.group_key in seen:
                    continue
                seen.add(r.group_key)
                lang = r.language if r.language in notice.text else "vi"
                text = notice.text[lang] + footer.get(lang, "")
                items.append(
                    OutboxItem(
                        key=notice.item_key(r.group_key),
                        channel=r.channel,
                        address=r.address,
                        person=r.person,
                        subject=notice.subject[lang],
                        text=text,
                        # Every SMS links to the page that answers it (a notice's SMS is a
                        # few words, so the link fits within the segment budget).
                        short=f"{notice.sms[lang]} {link[lang]}",
                        html=as_html(text) if r.channel == "email" else None,
                        thread_key=notice.thread_key,
                        language=lang,
                        fallbacks=r.fallbacks,
                    )
                )
        return await self.outbox.enqueue(items) if items else 0


class RunningRouter:
    """The router of the settings and registry in effect, rebuilt when either changes (for a
    :class:`NoticeSender` built before the alert pipeline, whose router it equals)."""

    def __init__(
        self,
        settings: Callable[[], AlertingSettings],
        registry: Callable[[], Registry],
        directory: Callable[[], Directory] | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.directory = directory  # the people in effect (None: the registry's alone)
        self.clock = clock
        # The agencies' rosters (set by the daemon's assembly once the rules exist; read at
        # each routing, so it may come after the router).
        self.duty: DutyRule | None = None
        self._built: tuple[AlertingSettings, Registry, Router] | None = None

    def _duty(self, agency: str, ts: float) -> list[str] | None:
        return None if self.duty is None else self.duty(agency, ts)

    def __call__(self) -> Router:
        settings, registry = self.settings(), self.registry()
        built = self._built
        if built is None or built[0] is not settings or built[1] is not registry:
            agencies = [e.agency for e in registry.systems.values()]
            router = Router(settings, agencies, self.directory, duty=self._duty, clock=self.clock)
            self._built = built = (settings, registry, router)
        return built[2]
