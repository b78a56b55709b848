"""The confirmation desk: on the leader, reminds each stored contact whose details are due a
confirmation, once per period, by e-mail and portal inbox (see :mod:`monitor.contacts.confirm`).

The reminder's row (unique per contact and period, its token hashed) and its outbox rows are
one transaction: a second leader, or a restart, sends nothing twice, and no link goes out that
the database does not know."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

from notifiers.base import ChannelName

from ..alerting import outbox_store
from ..alerting.messages import as_html
from ..alerting.outbox_items import OutboxItem
from ..config.contacts import ContactsSettings
from ..contacts import confirm, confirm_store
from ..contacts import store as contacts_store
from ..contacts.model import StoredContact, person_id
from ..sqldialect import Handle
from ..store import Store

log = logging.getLogger(__name__)

__all__ = ["EVERY", "ConfirmationDesk"]

#: How often the desk looks (the periods are a year long: a look per tick would be waste).
EVERY = 600.0


class ConfirmationDesk:
    """A :class:`~monitor.rules.desk.Desk`."""

    def __init__(
        self,
        store: Store,
        settings: Callable[[], ContactsSettings],
        web_base: Callable[[], str],
        wake: Callable[[str], None] = lambda _channel: None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.web_base = web_base
        self.wake = wake
        self._looked: float | None = None

    async def refresh(self) -> None:
        """Nothing kept in memory."""

    async def tick(self, now: float) -> None:
        if self._looked is not None and 0 <= now - self._looked < EVERY:
            return
        self._looked = now
        every = self.settings().confirm_after
        base = self.web_base()

        def write(db: Handle) -> tuple[int, set[str]]:
            told, channels = 0, set[str]()
            for d in confirm.due(contacts_store.listed(db), now, every):
                items = _reminders(d.contact, d.period_start)
                if not items:
                    continue  # nowhere to send it (no e-mail, no portal account)
                token = confirm.new_token()
                link = f"{base}/contacts/confirm/{token}"
                items = [_worded(i, d.contact, link) for i in items]
                expires = now + confirm.LINK_VALID
                added = confirm_store.add(
                    db, d.contact.id, d.period_start, confirm.hashed(token), now, expires
                )
                if added:
                    outbox_store.queue(db, items, now)
                    told += 1
                    channels.update(str(i.channel) for i in items)
            return told, channels

        told, channels = await self.store.transact(write)
        for channel in channels:
            self.wake(channel)
        if told:
            log.info("contact confirmation reminders queued", extra={"contacts": told})


def _reminders(c: StoredContact, period: float) -> list[OutboxItem]:
    """The reminder's rows (without their words): one per e-mail and portal inbox."""
    targets: list[tuple[ChannelName, str | None]] = [
        ("email", c.email),
        ("inbox", c.portal_account),
    ]
    return [
        OutboxItem(
            key=f"contact-confirm/{quote(c.id)}/{int(period)}/{channel}",
            channel=channel,
            address=address,
            person=person_id(c.agency, c.id),
            subject="",
            text="",
            short="",
            html=None,
            thread_key=None,
            language=c.language,
        )
        for channel, address in targets
        if address
    ]


def _worded(item: OutboxItem, c: StoredContact, link: str) -> OutboxItem:
    subject, text = confirm.reminder_words(c, link)
    html = as_html(text) if item.channel == "email" else None
    return OutboxItem(
        item.key,
        item.channel,
        item.address,
        item.person,
        subject,
        text,
        subject,
        html,
        None,
        item.language,
    )
