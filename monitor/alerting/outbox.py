"""The durable outbox: every notification is written before it is sent.

Rows are keyed by an idempotency key derived from the event, so the same notice is never queued
twice. One worker per channel claims due rows one at a time, sends through its channel, and
records the outcome:

* sent → ``sent``, with the time the provider accepted it;
* a failure worth a retry → back to ``pending`` with exponential backoff and jitter (or the
  channel's ``Retry-After``), until ``max_attempts``;
* a permanent failure (invalid number, refused recipient), attempts exhausted, or a channel
  that has kept failing for ``fallback_after`` → ``failed``, and the same notice is queued on
  the person's next channel (its fallbacks);
* a permanent failure that condemns the address (an invalid number, a refused mailbox) also
  flags it (``address_flags``, in the same transaction; :mod:`monitor.contacts.flags`);
* the person's account revoked → ``dropped`` ("account revoked"): what was pending, by the
  revocation's own transaction (:mod:`monitor.contacts.actions`); anything queued after it, by
  the claim, which checks the person in the claiming transaction. A row on the wire is not
  recalled.

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
import time
from collections.abc import Callable, Iterable

from notifiers.base import Delivery, Notifier, NotifyError

from ..aio import wait_event
from ..config.alerting import OutboxSettings
from ..contacts import hygiene_store
from ..contacts import store as contacts_store
from ..contacts.flags import flag_code
from ..sqldialect import Handle
from ..store import Store, StoreError
from . import outbox_store
from .outbox_items import Claimed, OutboxItem, fallback, fitting, merged_sms

log = logging.getLogger(__name__)

__all__ = ["Outbox", "OutboxItem", "OutboxWorker"]


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
        workers_store: Store | None = None,
    ) -> None:
        self.store = store
        # What the workers claim and mark through, and the alert pipeline queues its digests
        # through (on several hosts, the leader's fenced store: a deposed leader claims and
        # queues nothing); other notices are queued through ``store`` from any host.
        self.workers_store = workers_store or store
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
        *,
        fenced: bool = False,
    ) -> int:
        """Write notices (and the portal-inbox copies); a key already queued is ignored.

        ``told`` (incident, address key) pairs are recorded in the same transaction, and the
        ``forgotten`` incidents (resolved) dropped: after a restart the pipeline knows who was
        already told about an outage that is still going on. ``fenced``: leader's work (the
        alert pipeline's digests), written only while this host still leads.
        """
        batch = list(items)
        told, forgotten = list(told), list(forgotten)
        now = self.clock()

        def write(db: Handle) -> int:
            outbox_store.add_told(db, told)
            outbox_store.forget_told(db, forgotten)
            return outbox_store.queue(db, batch, now)

        store = self.workers_store if fenced else self.store
        added = await store.transact(write) if batch or told or forgotten else 0
        for channel in {i.channel for i in batch}:
            self.wakeup(channel).set()
        return added

    async def told(self) -> set[tuple[str, str]]:
        """Every (incident, address key) already told, for rebuilding the groups at start."""
        return await self.store.transact(outbox_store.told)

    async def recover(self) -> int:
        """After a crash: rows caught mid-send go back to pending and are sent again (at most
        one duplicate message per channel). They keep ``claimed_at``: an SMS that may have
        reached the phone still counts against that number's budget."""
        count = await self.workers_store.transact(outbox_store.recover)
        if count:
            log.warning("resending %d notifications interrupted by a crash", count)
        return count

    async def claim(self, channel: str, now: float) -> Claimed | None:
        """Take the oldest due row of a channel (for SMS: every due row to that number, once
        its budget allows) and mark it ``sending``."""
        if channel == "sms":
            return await self.workers_store.transact(lambda db: self._take_sms(db, now))
        return await self.workers_store.transact(lambda db: self._take_one(db, channel, now))

    @staticmethod
    def _take_one(db: Handle, channel: str, now: float) -> Claimed | None:
        while True:
            due = outbox_store.due_one(db, channel, now)
            if due is None:
                return None
            row_id, attempts, _, item = due
            if _revoked(db, item.person, {}):
                contacts_store.drop_row(db, row_id)  # queued after the revocation
                continue
            outbox_store.mark_sending(db, [row_id], now)
            return Claimed(item, ((row_id, item, attempts + 1),))

    def _take_sms(self, db: Handle, now: float) -> Claimed | None:
        while True:
            address = outbox_store.next_sms_address(db, now)
            if address is None:
                return None
            due = [
                (row_id, item, attempts + 1, claimed_at is not None)
                for row_id, attempts, claimed_at, item in outbox_store.due_sms(db, address, now)
            ]
            # A revoked person's rows are dropped here, in the claiming transaction: none goes
            # out after the revocation commits, even one queued by a directory not yet fresh.
            revoked: dict[str, bool] = {}
            for row_id, item, _, _ in due:
                if _revoked(db, item.person, revoked):
                    contacts_store.drop_row(db, row_id)
            due = [r for r in due if not revoked[r[1].person]]
            if not due:
                continue
            # A message that was on the wire (a crash, or no answer) goes again at once, as it
            # was: it may never have arrived. Its first attempt is what the budget counts from
            # for everything else to this number.
            rows = [r for r in due if r[3]]
            if not rows:
                opens = self._sms_budget_opens(db, address, now)
                if opens is not None and opens > now:
                    # Not yet: everything queued for this number waits for the budget, then
                    # goes out as one SMS. (Each pass moves one number out of the way.)
                    outbox_store.postpone_sms(db, address, opens)
                    continue
                chosen = {id(i) for i in fitting([r[1] for r in due], self.sms_fits)}
                rows = [r for r in due if id(r[1]) in chosen]
            outbox_store.mark_sending(db, [r[0] for r in rows], now)
            taken = tuple((row_id, item, attempts) for row_id, item, attempts, _ in rows)
            return Claimed(merged_sms([item for _, item, _ in taken]), taken)

    def _sms_budget_opens(self, db: Handle, address: str, now: float) -> float | None:
        """When this number may get its next SMS: the budget counts from the last SMS the
        provider accepted, or one that may have reached the phone (on the wire at a crash, or
        unanswered). A last SMS "in the future" means the clock was stepped back: the budget
        is then open, rather than holding the number's SMS for the size of the step."""
        if self.sms_min_interval <= 0:
            return None
        last = outbox_store.last_sms(db, address)
        if last is None or last > now:
            return None  # none yet, or the clock was stepped back: the budget is open
        return last + self.sms_min_interval

    async def sent(self, claimed: Claimed, delivery: Delivery) -> None:
        """Record the provider's acceptance (its time is what the SMS budget counts from)."""
        now = self.clock()

        # Returns nothing: a cursor must not leave the store's thread (handed back, it kept its
        # statement busy and SQLite answered the next use with "API misuse").
        await self.workers_store.transact(
            lambda db: outbox_store.mark_sent(db, claimed.ids, now, delivery.provider_id)
        )

    async def failed(self, claimed: Claimed, error: NotifyError) -> str:
        """Record a failed attempt; return ``retry``, ``failed`` or ``fallback``.

        The failure and the fallback it queues are one transaction: a crash between the two
        must not leave a notice given up on one channel and never queued on the next."""
        now = self.clock()

        reason = error.reason[:500]

        def write(db: Handle) -> tuple[set[str], set[str]]:
            first_failures = outbox_store.first_failures(db, claimed.ids)
            outcomes: set[str] = set()
            fallbacks: list[OutboxItem] = []
            for row_id, item, attempts in claimed.rows:
                first = first_failures.get(row_id) or now
                outcome, retry_at = self._after_failure(item, attempts, first, error, now)
                if retry_at is not None:
                    outbox_store.retry(
                        db,
                        row_id,
                        retry_at,
                        reason,
                        maybe_delivered=error.maybe_delivered,
                        first_failed_at=first,
                    )
                else:
                    outbox_store.give_up(db, row_id, reason, first_failed_at=first)
                outcomes.add(outcome)
                if outcome == "fallback":
                    fallbacks.append(fallback(item, error))
            outbox_store.queue(db, fallbacks, now)
            # An address refused for good is flagged with the failure (the router then leaves
            # it out, and the agency's admins are told once: monitor/contacts/hygiene.py).
            item = claimed.item
            code = flag_code(item.channel, error)
            if code is not None:
                hygiene_store.flag(db, item.channel, item.address, code, reason, item.person, now)
            return outcomes, {f.channel for f in fallbacks}

        outcomes, woken = await self.workers_store.transact(write)
        for channel in woken:
            self.wakeup(channel).set()
        for outcome in ("fallback", "failed", "retry"):
            if outcome in outcomes:
                return outcome
        return "retry"

    def _after_failure(
        self,
        item: OutboxItem,
        attempts: int,
        first_failed_at: float,
        error: NotifyError,
        now: float,
    ) -> tuple[str, float | None]:
        """What to do with one row after a failed attempt (``retry``, ``failed`` or
        ``fallback``), and for a retry when."""
        s = self.settings
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
            return "retry", retry_at
        return ("fallback" if item.fallbacks else "failed"), None

    async def next_due(self, channel: str) -> float | None:
        return await self.store.transact(lambda db: outbox_store.next_due(db, channel))

    async def pending(self) -> dict[str, tuple[int, float | None]]:
        """Per channel: pending rows and the creation time of the oldest."""
        return await self.store.transact(outbox_store.pending)


def _revoked(db: Handle, person: str, seen: dict[str, bool]) -> bool:
    """Whether ``person`` is tied to a revoked account (``seen``: this claim's answers)."""
    if person not in seen:
        agency_person = not person.startswith("operations/")
        seen[person] = agency_person and contacts_store.person_revoked(db, person)
    return seen[person]


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
            except StoreError as exc:  # the database is away, or this host no longer leads
                log.warning("outbox worker %s: %s; retrying in 5 s", self.channel, exc)
                await asyncio.sleep(5)
                continue
            except Exception:  # a store or channel bug must not end the worker
                log.exception("outbox worker %s failed; retrying in 5 s", self.channel)
                await asyncio.sleep(5)
                continue
            if self._finishing:
                return
            due = await self.outbox.next_due(self.channel)
            delay = 60.0 if due is None else max(0.05, min(60.0, due - self.outbox.clock()))
            await wait_event(wake, delay)
