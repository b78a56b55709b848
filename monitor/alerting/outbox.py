"""The durable outbox: every notification is written before it is sent.

Rows are keyed by an idempotency key derived from the event, so the same notice is never queued
twice. One worker per channel claims due rows one at a time, sends through its channel, and
records the outcome:

* sent → ``sent``, with the time the provider accepted it;
* a failure worth a retry → back to ``pending`` with exponential backoff and jitter (or the
  channel's ``Retry-After``), until ``max_attempts``;
* a permanent failure (invalid number, refused recipient), attempts exhausted, or a channel
  that has kept failing for ``fallback_after`` → ``failed``, and the same notice is queued on
  the person's next channel (its fallbacks).

**The SMS budget** lives here, the one place every SMS passes (alert digests and notices
alike): a number gets at most one SMS per ``sms_min_interval``, counted from when the provider
accepted the previous one (or, after a crash, from when it went on the wire), as stored in
this table, so a restart or a slow provider cannot shorten it. Whatever is queued for a
number meanwhile waits and goes out as one SMS (newest first) when the budget allows.

Crash safety: rows are marked ``sending`` (committed) before the attempt and ``sent`` after it.
A kill -9 in between leaves them ``sending``; at start :meth:`Outbox.recover` puts such rows back
to ``pending``, so they are sent again: **at least once, with at most one duplicate message per
channel per crash** (each channel's worker has one message on the wire at a time; a merged SMS
is one message).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable

from notifiers.base import Delivery, Notifier, NotifyError

from ..aio import wait_event
from ..config.alerting import OutboxSettings
from ..store import Store
from .outbox_items import (
    COLUMNS,
    MAX_MERGED,
    SMS_JOINER,
    Claimed,
    OutboxItem,
    fallback,
    fitting,
    item_of_row,
    merged_sms,
    row_values,
)

log = logging.getLogger(__name__)

__all__ = [
    "MAX_MERGED",
    "SMS_JOINER",
    "Claimed",
    "Outbox",
    "OutboxItem",
    "OutboxWorker",
    "merged_sms",
]


class Outbox:
    """The queue, on the daemon's store."""

    def __init__(
        self,
        store: Store,
        settings: OutboxSettings,
        *,
        sms_min_interval: float = 0.0,
        sms_fits: Callable[[str], bool] = lambda _text: True,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.settings = settings
        self.sms_min_interval = sms_min_interval
        self.sms_fits = sms_fits  # whether a text goes out whole as one SMS (the channel knows)
        self.clock = clock
        self.jitter = jitter
        self.wakeups: dict[str, asyncio.Event] = {}

    def reconfigure(self, settings: OutboxSettings, sms_min_interval: float) -> None:
        """A config reload: new retry and budget settings (the rows stay as they are)."""
        self.settings = settings
        self.sms_min_interval = sms_min_interval

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
            return _insert(db, batch, now)

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
        """After a crash: rows caught mid-send go back to pending and are sent again (at most
        one duplicate message per channel). They keep ``claimed_at``: an SMS that may have
        reached the phone still counts against that number's budget."""

        def reset(db: sqlite3.Connection) -> int:
            return db.execute(
                "UPDATE outbox SET status = 'pending' WHERE status = 'sending'"
            ).rowcount

        count = await self.store.transact(reset)
        if count:
            log.warning("resending %d notifications interrupted by a crash", count)
        return count

    async def claim(self, channel: str, now: float) -> Claimed | None:
        """Take the oldest due row of a channel (for SMS: every due row to that number, once
        its budget allows) and mark it ``sending``."""
        if channel == "sms":
            return await self.store.transact(lambda db: self._take_sms(db, now))
        return await self.store.transact(lambda db: self._take_one(db, channel, now))

    @staticmethod
    def _take_one(db: sqlite3.Connection, channel: str, now: float) -> Claimed | None:
        row = db.execute(
            f"SELECT id, attempts, {COLUMNS} FROM outbox"  # noqa: S608 - constant columns; values are bound
            " WHERE channel = ? AND status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT 1",
            (channel, now),
        ).fetchone()
        if row is None:
            return None
        _mark_sending(db, [row[0]], now)
        item = item_of_row(row[2:])
        return Claimed(item, ((row[0], item, row[1] + 1),))

    def _take_sms(self, db: sqlite3.Connection, now: float) -> Claimed | None:
        while True:
            head = db.execute(
                "SELECT address FROM outbox WHERE channel = 'sms' AND status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
                (now,),
            ).fetchone()
            if head is None:
                return None
            address = head[0]
            due = [
                (r[0], item_of_row(r[3:]), r[1] + 1, r[2] is not None)
                for r in db.execute(
                    f"SELECT id, attempts, claimed_at, {COLUMNS} FROM outbox"  # noqa: S608 - constant columns; values are bound
                    " WHERE channel = 'sms' AND address = ? AND status = 'pending'"
                    " AND next_attempt_at <= ? ORDER BY created_at DESC, id DESC",
                    (address, now),
                )
            ]
            # A message that was on the wire (a crash, or no answer) goes again at once, as it
            # was: it may never have arrived. Its first attempt is what the budget counts from
            # for everything else to this number.
            rows = [r for r in due if r[3]]
            if not rows:
                opens = self._sms_budget_opens(db, address, now)
                if opens is not None and opens > now:
                    # Not yet: everything queued for this number waits for the budget, then
                    # goes out as one SMS. (Each pass moves one number out of the way.)
                    db.execute(
                        "UPDATE outbox SET next_attempt_at = ? WHERE channel = 'sms'"
                        " AND address = ? AND status = 'pending' AND next_attempt_at < ?"
                        " AND claimed_at IS NULL",  # a retry of one on the wire keeps its time
                        (opens, address, opens),
                    )
                    continue
                chosen = {id(i) for i in fitting([r[1] for r in due], self.sms_fits)}
                rows = [r for r in due if id(r[1]) in chosen]
            _mark_sending(db, [r[0] for r in rows], now)
            taken = tuple((row_id, item, attempts) for row_id, item, attempts, _ in rows)
            return Claimed(merged_sms([item for _, item, _ in taken]), taken)

    def _sms_budget_opens(self, db: sqlite3.Connection, address: str, now: float) -> float | None:
        """When this number may get its next SMS: the budget counts from the last SMS the
        provider accepted, or one that may have reached the phone (on the wire at a crash, or
        unanswered). A last SMS "in the future" means the clock was stepped back: the budget
        is then open, rather than holding the number's SMS for the size of the step."""
        if self.sms_min_interval <= 0:
            return None
        last = db.execute(
            "SELECT MAX(CASE WHEN status = 'sent' THEN sent_at ELSE claimed_at END)"
            " FROM outbox WHERE channel = 'sms' AND address = ?"
            " AND (status = 'sent' OR claimed_at IS NOT NULL)",
            (address,),
        ).fetchone()[0]
        if last is None or float(last) > now:
            return None  # none yet, or the clock was stepped back: the budget is open
        return float(last) + self.sms_min_interval

    async def sent(self, claimed: Claimed, delivery: Delivery) -> None:
        """Record the provider's acceptance (its time is what the SMS budget counts from)."""
        now = self.clock()

        def write(db: sqlite3.Connection) -> None:
            # Returns nothing: a cursor must not leave the store's thread (handed back, it
            # kept its statement busy and SQLite answered the next use with "API misuse").
            db.executemany(
                "UPDATE outbox SET status = 'sent', sent_at = ?, provider_id = ?, last_error = NULL"
                " WHERE id = ?",
                [(now, delivery.provider_id, row_id) for row_id in claimed.ids],
            )

        await self.store.transact(write)

    async def failed(self, claimed: Claimed, error: NotifyError) -> str:
        """Record a failed attempt; return ``retry``, ``failed`` or ``fallback``.

        The failure and the fallback it queues are one transaction: a crash between the two
        must not leave a notice given up on one channel and never queued on the next."""
        now = self.clock()

        def write(db: sqlite3.Connection) -> tuple[set[str], set[str]]:
            ids = claimed.ids
            first_failures = dict(
                db.execute(
                    f"SELECT id, first_failed_at FROM outbox WHERE id IN ({_marks(ids)})",  # noqa: S608 - placeholders only
                    ids,
                ).fetchall()
            )
            outcomes: set[str] = set()
            fallbacks: list[OutboxItem] = []
            for row_id, item, attempts in claimed.rows:
                first = first_failures.get(row_id) or now
                outcome, (sql, args) = self._after_failure(
                    row_id, item, attempts, first, error, now
                )
                db.execute(sql, args)
                outcomes.add(outcome)
                if outcome == "fallback":
                    fallbacks.append(fallback(item, error))
            _insert(db, fallbacks, now)
            return outcomes, {f.channel for f in fallbacks}

        outcomes, woken = await self.store.transact(write)
        for channel in woken:
            self.wakeup(channel).set()
        for outcome in ("fallback", "failed", "retry"):
            if outcome in outcomes:
                return outcome
        return "retry"

    def _after_failure(
        self,
        row_id: int,
        item: OutboxItem,
        attempts: int,
        first_failed_at: float,
        error: NotifyError,
        now: float,
    ) -> tuple[str, tuple[str, tuple[object, ...]]]:
        """What to do with one row after a failed attempt, and the UPDATE that records it."""
        s = self.settings
        reason = error.reason[:500]
        # A channel that keeps failing gives way to the next one, but only if there is one.
        too_long = bool(item.fallbacks) and now - first_failed_at >= s.fallback_after
        if not (error.permanent or attempts >= s.max_attempts or too_long):
            backoff = min(s.backoff_max, s.backoff_base * 2 ** (attempts - 1))
            delay = backoff * (0.5 + self.jitter())
            if error.retry_after is not None:
                delay = max(delay, min(error.retry_after, s.backoff_max))
            retry_at = now + delay
            if item.fallbacks:  # the next channel is tried when the time budget says, not later
                retry_at = min(retry_at, max(now, first_failed_at + s.fallback_after))
            # An attempt that may have reached the phone keeps counting against its budget.
            return "retry", (
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?,"
                " claimed_at = CASE WHEN ? = 1 THEN claimed_at END, first_failed_at = ?"
                " WHERE id = ?",
                (retry_at, reason, int(error.maybe_delivered), first_failed_at, row_id),
            )
        outcome = "fallback" if item.fallbacks else "failed"
        return outcome, (
            "UPDATE outbox SET status = 'failed', last_error = ?, claimed_at = NULL,"
            " first_failed_at = ? WHERE id = ?",
            (reason, first_failed_at, row_id),
        )

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


def _as_notify_error(exc: Exception, channel: str, send_timeout: float) -> NotifyError:
    """A failed send as the outbox records it: the channel's own verdict, or for a timeout or
    a bug in a channel, a failure worth a retry (rows claimed must never stay ``sending``)."""
    if isinstance(exc, NotifyError):
        return exc
    if isinstance(exc, TimeoutError):
        return NotifyError(
            f"no answer within {send_timeout:g}s", permanent=False, maybe_delivered=True
        )
    log.error("the %s channel failed unexpectedly", channel, exc_info=exc)
    return NotifyError(f"{channel}: internal error ({type(exc).__name__})", permanent=False)


def _insert(db: sqlite3.Connection, items: list[OutboxItem], now: float) -> int:
    """Queue ``items`` (and the portal-inbox copies); a key already queued is ignored."""
    added = 0
    for item in items:
        cur = db.execute(
            f"INSERT INTO outbox ({COLUMNS}, status, next_attempt_at, created_at)"  # noqa: S608 - constant columns; values are bound
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (*row_values(item), now, now),
        )
        added += cur.rowcount
        if cur.rowcount and item.channel == "inbox":
            db.execute(
                "INSERT INTO inbox (account, key, subject, text, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (item.address, item.key, item.subject, item.text, now),
            )
    return added


def _marks(values: list[int]) -> str:
    return ", ".join("?" for _ in values)


def _mark_sending(db: sqlite3.Connection, ids: list[int], now: float) -> None:
    db.executemany(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, claimed_at = ?"
        " WHERE id = ?",
        [(now, row_id) for row_id in ids],
    )


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
        except Exception as exc:  # noqa: BLE001 - whatever the channel did, the rows are kept
            error = _as_notify_error(exc, self.channel, self.send_timeout)
            outcome = await self.outbox.failed(claimed, error)
            log.warning(
                "notification not sent",
                extra={
                    "notification": claimed.item.key,
                    "channel": self.channel,
                    "attempt": claimed.attempts,
                    "outcome": outcome,
                    "reason": error.reason,
                },
            )
            self.count(self.channel, outcome)
            return True
        await self.outbox.sent(claimed, delivery)
        extra: dict[str, object] = {
            "notification": claimed.item.key,
            "channel": self.channel,
            "to": claimed.item.person,
        }
        if len(claimed.rows) > 1:
            extra["merged"] = len(claimed.rows)  # several notices to one number, one SMS
        log.info("notification sent", extra=extra)
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
