"""The contact-hygiene desk: on the leader, tells an agency's admins (technical and
high-level) once of each address flagged as failing for good (see
:mod:`monitor.contacts.hygiene`), then marks the flag ``reported_at``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..alerting.notices import Notice, NoticeSink
from ..contacts import hygiene_store
from ..contacts.directory import Directory
from ..contacts.flags import Flag
from ..contacts.hygiene import audience_of, notice_words
from ..sqldialect import Handle
from ..store import Store

log = logging.getLogger(__name__)

__all__ = ["HygieneDesk", "notice_for"]


def notice_for(flag: Flag, name: str) -> Notice:
    """The notice of one flag, keyed by it (queued again: nothing more is sent)."""
    subject, text, sms = notice_words(flag, name)
    return Notice(key=f"address-flag/{flag.id}", subject=subject, text=text, sms=sms)


class HygieneDesk:
    """A :class:`~monitor.rules.desk.Desk`. Its tick reads the flags not yet reported (one
    indexed query): the outbox writes them in this very process, which the store's data version
    does not show."""

    def __init__(
        self, store: Store, notices: NoticeSink, directory: Callable[[], Directory]
    ) -> None:
        self.store = store
        self.notices = notices
        self.directory = directory  # the people in effect: whose address it is

    async def refresh(self) -> None:
        """Nothing kept in memory."""

    def watch(self, db: Handle) -> list[Flag]:
        return hygiene_store.unreported(db)

    async def tick(self, now: float) -> None:
        await self.act(now, await self.store.transact(self.watch))

    async def act(self, now: float, seen: list[Flag]) -> None:
        for flag in seen:
            try:
                await self._tell(flag, now)
            except Exception:
                # One flag's trouble must not hold the others' notices; the next tick retries.
                log.exception("address flag #%d: cannot tell the admins", flag.id)

    async def _tell(self, flag: Flag, now: float) -> None:
        """Queue the notice (keyed by the flag: a second leader, or a restart between queuing
        and marking, queues nothing more), then mark the flag reported."""
        agency, audience = audience_of(flag.person)
        name = flag.person or "?"
        if agency is not None and flag.person is not None:
            found = self.directory().find(agency, flag.person.partition("/")[2])
            name = found.contact.name if found is not None else name
        queued = 0
        if audience:
            queued = await self.notices.send_notice(notice_for(flag, name), audience)
        await self.store.transact(lambda db: hygiene_store.mark_reported(db, flag.id, now))
        log.info(
            "address flag reported",
            extra={"flag": flag.id, "channel": flag.channel, "code": flag.code, "queued": queued},
        )
