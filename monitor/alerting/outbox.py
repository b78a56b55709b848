"""The durable outbox: every notification is written before it is sent.

Rows are keyed by an idempotency key derived from the event, so the same notice is never queued
twice. One worker per channel claims due rows one at a time, sends through its channel, and
records the outcome:

* sent → ``sent``;
* a failure worth a retry → back to ``pending`` with exponential backoff and jitter (or the
  channel's ``Retry-After``), until ``max_attempts``;
* a permanent failure (invalid number, refused recipient) or attempts exhausted → ``failed``,
  and the same notice is queued on the person's next channel (its fallbacks).

Crash safety: a row is marked ``sending`` (committed) before the attempt and ``sent`` after it.
A kill -9 in between leaves it ``sending``; at start :meth:`Outbox.recover` puts such rows back to
``pending``, so each one is sent again: **at least once, with at most one duplicate per crash**
(the message that was on the wire when the process died).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from notifiers.base import ChannelName, Delivery, Message, Notifier, NotifyError

from ..aio import wait_event
from ..store import Store
from .settings import OutboxSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notice for one person on one channel, with the texts every channel may need."""

    key: str
    channel: ChannelName
    address: str
    person: str
    subject: str
    text: str  # full text (e-mail, inbox)
    short: str  # SMS text
    html: str | None
    thread_key: str | None
    language: str
    fallbacks: tuple[tuple[ChannelName, str], ...] = ()

    def message(self) -> Message:
        return Message(
            key=self.key,
            channel=self.channel,
            to=self.address,
            subject=self.subject,
            text=self.short if self.channel == "sms" else self.text,
            html=self.html if self.channel == "email" else None,
            thread_key=self.thread_key,
            language=self.language,
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row being sent."""

    id: int
    item: OutboxItem
    attempts: int


_COLUMNS = (
    "key, channel, address, person, subject, text, short, html, thread_key, language, fallbacks"
)


def _row_values(item: OutboxItem) -> tuple[object, ...]:
    *fields, fallbacks = dataclasses.astuple(item)  # in _COLUMNS order
    return (*fields, json.dumps(fallbacks))


def _item(row: tuple[object, ...]) -> OutboxItem:
    key, channel, address, person, subject, text, short, html, thread, language, fallbacks = row
    return OutboxItem(
        str(key),
        channel,  # type: ignore[arg-type]
        str(address),
        str(person),
        str(subject),
        str(text),
        str(short),
        None if html is None else str(html),
        None if thread is None else str(thread),
        str(language),
        tuple((c, a) for c, a in json.loads(str(fallbacks))),
    )


class Outbox:
    """The queue, on the daemon's store."""

    def __init__(
        self,
        store: Store,
        settings: OutboxSettings,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.jitter = jitter
        self.wakeups: dict[str, asyncio.Event] = {}

    def wakeup(self, channel: str) -> asyncio.Event:
        return self.wakeups.setdefault(channel, asyncio.Event())

    async def enqueue(
        self,
        items: Iterable[OutboxItem],
        told: Iterable[tuple[str, str]] = (),
        forgotten: Iterable[str] = (),
    ) -> int:
        """Write notices (and the portal-inbox copies); a key already queued is ignored.

        ``told`` (incident, address key) pairs are recorded in the same transaction, and the
        ``forgotten`` incidents (resolved) dropped: after a restart the pipeline knows who was
        already told about an outage that is still going on.
        """
        batch = list(items)
        told, forgotten = list(told), list(forgotten)
        now = self.clock()

        def write(db: sqlite3.Connection) -> int:
            db.executemany(
                "INSERT INTO alert_notices (incident, address_key) VALUES (?, ?)"
                " ON CONFLICT (incident, address_key) DO NOTHING",
                told,
            )
            db.executemany(
                "DELETE FROM alert_notices WHERE incident = ?", [(i,) for i in forgotten]
            )
            added = 0
            for item in batch:
                cur = db.execute(
                    f"INSERT INTO outbox ({_COLUMNS}, status, next_attempt_at, created_at)"  # noqa: S608 - constant columns; values are bound
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    (*_row_values(item), now, now),
                )
                added += cur.rowcount
                if cur.rowcount and item.channel == "inbox":
                    db.execute(
                        "INSERT INTO inbox (account, key, subject, text, created_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                        (item.address, item.key, item.subject, item.text, now),
                    )
            return added

        added = await self.store.transact(write) if batch or told or forgotten else 0
        for channel in {i.channel for i in batch}:
            self.wakeup(channel).set()
        return added

    async def told(self) -> set[tuple[str, str]]:
        """Every (incident, address key) already told, for rebuilding the groups at start."""
        rows = await self.store.transact(
            lambda db: db.execute("SELECT incident, address_key FROM alert_notices").fetchall()
        )
        return {(incident, key) for incident, key in rows}

    async def recover(self) -> int:
        """After a crash: rows caught mid-send go back to pending (sent again: at most one
        duplicate per crash)."""

        def reset(db: sqlite3.Connection) -> int:
            return db.execute(
                "UPDATE outbox SET status = 'pending' WHERE status = 'sending'"
            ).rowcount

        count = await self.store.transact(reset)
        if count:
            log.warning("resending %d notifications interrupted by a crash", count)
        return count

    async def claim(self, channel: str, now: float) -> Claimed | None:
        """Take the oldest due row of a channel and mark it ``sending``."""

        def take(db: sqlite3.Connection) -> Claimed | None:
            row = db.execute(
                f"SELECT id, attempts, {_COLUMNS} FROM outbox"  # noqa: S608 - constant columns; values are bound
                " WHERE channel = ? AND status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT 1",
                (channel, now),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?",
                (row[0],),
            )
            return Claimed(row[0], _item(row[2:]), row[1] + 1)

        return await self.store.transact(take)

    async def sent(self, claimed: Claimed, delivery: Delivery) -> None:
        now = self.clock()
        await self.store.transact(
            lambda db: db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL"
                " WHERE id = ?",
                (now, delivery.provider_id, claimed.id),
            )
        )

    async def failed(self, claimed: Claimed, error: NotifyError) -> str:
        """Record a failed attempt; return ``retry``, ``failed`` or ``fallback``."""
        now = self.clock()
        s = self.settings
        give_up = error.permanent or claimed.attempts >= s.max_attempts
        if not give_up:
            backoff = min(s.backoff_max, s.backoff_base * 2 ** (claimed.attempts - 1))
            delay = backoff * (0.5 + self.jitter())
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, s.backoff_max))
            await self.store.transact(
                lambda db: db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?"
                    " WHERE id = ?",
                    (now + delay, error.reason[:500], claimed.id),
                )
            )
            return "retry"
        item = claimed.item
        fallback = None
        if item.fallbacks:
            (channel, address), rest = item.fallbacks[0], item.fallbacks[1:]
            fallback = dataclasses.replace(
                item, key=f"{item.key}>{channel}", channel=channel, address=address, fallbacks=rest
            )

        def give_up_row(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?",
                (error.reason[:500], claimed.id),
            )

        await self.store.transact(give_up_row)
        if fallback is not None:
            await self.enqueue([fallback])
            return "fallback"
        return "failed"

    async def next_due(self, channel: str) -> float | None:
        return await self.store.transact(
            lambda db: db.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE channel = ? AND status = 'pending'",
                (channel,),
            ).fetchone()[0]
        )

    async def pending(self) -> dict[str, tuple[int, float | None]]:
        """Per channel: pending rows and the creation time of the oldest."""
        rows = await self.store.transact(
            lambda db: db.execute(
                "SELECT channel, COUNT(*), MIN(created_at) FROM outbox"
                " WHERE status IN ('pending', 'sending') GROUP BY channel"
            ).fetchall()
        )
        return {channel: (count, oldest) for channel, count, oldest in rows}


class OutboxWorker:
    """Sends one channel's notices, one at a time, in order."""

    def __init__(
        self,
        outbox: Outbox,
        notifier: Notifier,
        *,
        count: Callable[[str, str], None] = lambda _channel, _outcome: None,
        send_timeout: float = 60.0,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.channel = notifier.channel
        self.count = count
        self.send_timeout = send_timeout
        self._finishing = False

    def finish(self) -> None:
        """Return from :meth:`run` once nothing is due (the daemon is stopping): the send in
        flight and the notices due now go out; rows waiting for a retry stay for the next start."""
        self._finishing = True
        self.outbox.wakeup(self.channel).set()

    async def run_once(self) -> bool:
        """Send the next due notice, if any; True when one was handled."""
        claimed = await self.outbox.claim(self.channel, self.outbox.clock())
        if claimed is None:
            return False
        try:
            async with asyncio.timeout(self.send_timeout):
                delivery = await self.notifier.send(claimed.item.message())
        except NotifyError as exc:
            outcome = await self.outbox.failed(claimed, exc)
            log.warning(
                "notification not sent",
                extra={
                    "notification": claimed.item.key,
                    "channel": self.channel,
                    "attempt": claimed.attempts,
                    "outcome": outcome,
                    "reason": exc.reason,
                },
            )
            self.count(self.channel, outcome)
            return True
        except TimeoutError:
            reason = f"no answer within {self.send_timeout:g}s"
            outcome = await self.outbox.failed(claimed, NotifyError(reason, permanent=False))
            log.warning(
                "notification not sent",
                extra={
                    "notification": claimed.item.key,
                    "channel": self.channel,
                    "attempt": claimed.attempts,
                    "outcome": outcome,
                    "reason": reason,
                },
            )
            self.count(self.channel, outcome)
            return True
        await self.outbox.sent(claimed, delivery)
        log.info(
            "notification sent",
            extra={
                "notification": claimed.item.key,
                "channel": self.channel,
                "to": claimed.item.person,
            },
        )
        self.count(self.channel, "sent")
        return True

    async def run(self) -> None:
        """Forever: send what is due, then sleep until the next due row or new work."""
        wake = self.outbox.wakeup(self.channel)
        while True:
            wake.clear()
            try:
                while await self.run_once():
                    pass
            except Exception:  # a store or channel bug must not end the worker
                log.exception("outbox worker %s failed; retrying in 5 s", self.channel)
                await asyncio.sleep(5)
                continue
            if self._finishing:
                return
            due = await self.outbox.next_due(self.channel)
            delay = 60.0 if due is None else max(0.05, min(60.0, due - self.outbox.clock()))
            await wait_event(wake, delay)
