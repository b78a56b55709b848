"""Leadership of several gateway hosts: a lease row in PostgreSQL, with a fencing epoch.

Exactly one host at a time runs the alert pipeline, the rules desks' timed work and the outbox
workers: the one holding the ``leader_lease`` row named ``alerts``. Every time is the
database's own clock (``now()``), so the hosts' clocks never decide who leads.

* A host takes the lease when it is free or expired, and renews it every
  ``cluster.renew_every``; a lease lasts ``cluster.lease_ttl``. Taking an expired lease (or one
  held by somebody else) raises the **epoch**.
* The **fence**: every transaction of the leader's work (claiming and marking outbox rows,
  recording state changes) first reads the lease row ``FOR SHARE`` with its holder and epoch,
  unexpired. A deposed leader that wakes up (a pause, a partition healed) fails there and sends
  nothing; while a fenced transaction runs, a takeover's ``UPDATE`` of the row waits for it, so
  the old leader's last claim and the new leader's first can never overlap.
* A host also stops believing it leads when it could not renew for ``lease_ttl`` by its own
  monotonic clock, counted from *before* its last successful renewal: by then the database has
  expired the lease anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..config.cluster import ClusterSettings
from ..sqldialect import Handle
from ..store import Deposed, Store, StoreError

log = logging.getLogger(__name__)

__all__ = ["LEASE", "Deposed", "Leadership", "LeaseHolder", "fence", "release", "take"]

LEASE = "alerts"

_TAKE = (
    "INSERT INTO leader_lease (name, holder, vantage, epoch, expires_at)"
    " VALUES (?, ?, ?, 1, now() + make_interval(secs => ?))"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, vantage = excluded.vantage,"
    "  epoch = CASE WHEN leader_lease.holder = excluded.holder"
    "   AND leader_lease.expires_at > now() THEN leader_lease.epoch"
    "   ELSE leader_lease.epoch + 1 END,"
    "  expires_at = excluded.expires_at"
    " WHERE leader_lease.holder = excluded.holder OR leader_lease.expires_at <= now()"
    " RETURNING epoch"
)
_FENCE = (
    "SELECT epoch FROM leader_lease WHERE name = ? AND holder = ? AND epoch = ?"
    " AND expires_at > now() FOR SHARE"
)
_RELEASE = "UPDATE leader_lease SET expires_at = now() WHERE name = ? AND holder = ?"
_CURRENT = (
    "SELECT holder, vantage, epoch, EXTRACT(EPOCH FROM expires_at - now())"
    " FROM leader_lease WHERE name = ?"
)


def take(db: Handle, holder: str, vantage: str, ttl: float) -> int | None:
    """Take or renew the lease for ``ttl`` seconds: its epoch, or None while another holds it."""
    row = db.execute(_TAKE, (LEASE, holder, vantage, ttl)).fetchone()
    return None if row is None else int(row[0])


def fence(db: Handle, holder: str, epoch: int) -> None:
    """Raise :class:`Deposed` unless ``holder`` still holds the lease with ``epoch``; the row
    stays locked (shared) until the transaction ends."""
    if db.execute(_FENCE, (LEASE, holder, epoch)).fetchone() is None:
        raise Deposed(f"this host no longer leads (epoch {epoch} is over)")


def release(db: Handle, holder: str) -> None:
    """Give the lease up at once (a clean stop): another host takes it on its next try."""
    db.execute(_RELEASE, (LEASE, holder))


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the lease now, and for how many more seconds (negative: expired)."""

    holder: str
    vantage: str
    epoch: int
    expires_in: float


def current(db: Handle) -> LeaseHolder | None:
    row = db.execute(_CURRENT, (LEASE,)).fetchone()
    if row is None:
        return None
    return LeaseHolder(str(row[0]), str(row[1]), int(row[2]), float(row[3]))


def new_holder(vantage: str) -> str:
    """A name for this process's claim: a restarted daemon is a new holder (a new epoch)."""
    return f"{vantage}:{os.getpid()}:{secrets.token_hex(4)}"


Hook = Callable[[], Awaitable[None]]


class Leadership:
    """This host's side of the election. :meth:`run` tries to take or renew the lease every
    ``renew_every`` (only while ``eligible()``: a host whose uplink is cut gives it up), and
    calls ``on_gain`` when it starts leading (before :attr:`leading` is true: the takeover
    rebuilds what it needs first) and ``on_loss`` when it stops."""

    def __init__(
        self,
        store: Store,
        settings: ClusterSettings,
        vantage: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.vantage = vantage
        self.holder = new_holder(vantage)
        self.eligible: Callable[[], bool] = lambda: True  # set by run()
        self.monotonic = monotonic
        self.epoch: int | None = None  # the epoch this host leads with; None: not leading
        self._valid_until = 0.0
        self._gained = False  # the takeover for this epoch is done
        self._active = False  # on_gain ran and on_loss has not yet
        self.takeovers = 0
        self._failing = False

    @property
    def holds(self) -> bool:
        """This host holds the lease (its takeover may still be running), and it cannot have
        expired yet."""
        return self.epoch is not None and self.monotonic() < self._valid_until

    @property
    def leading(self) -> bool:
        """This host leads: it holds the lease and its takeover is done."""
        return self._gained and self.holds

    def fence(self, db: Handle) -> None:
        """The fence of this host's leader work (:meth:`monitor.store.Store.fenced`)."""
        epoch = self.epoch  # set during the takeover already: it recovers the outbox
        if epoch is None:
            raise Deposed("this host does not lead")
        fence(db, self.holder, epoch)

    async def step(self) -> bool:
        """One try at taking or renewing the lease; True when this host holds it now."""
        settings = self.settings
        if not self.eligible():
            if self.epoch is not None:
                await self._release()
            return False
        asked = self.monotonic()
        try:
            epoch = await self.store.transact(
                lambda db: take(db, self.holder, self.vantage, settings.lease_ttl)
            )
        except StoreError as exc:
            if not self._failing:  # once per outage
                log.warning("cannot take or renew the leader's lease: %s", exc)
            self._failing = True
            return self.leading
        self._failing = False
        if epoch is None:
            self.epoch = None
            return False
        if epoch != self.epoch:
            self._gained = False  # a new epoch is a new takeover (even for this host)
        self.epoch = epoch
        self._valid_until = asked + settings.lease_ttl
        return True

    async def _release(self) -> None:
        self.epoch = None
        try:
            await self.store.transact(lambda db: release(db, self.holder))
        except StoreError as exc:
            log.warning("cannot release the leader's lease: %s", exc)

    async def run(
        self, on_gain: Hook, on_loss: Hook, eligible: Callable[[], bool] = lambda: True
    ) -> None:
        """Forever: renew while ``eligible()`` (a host whose uplink is cut gives the lease up),
        and follow this host's leadership with the hooks (``on_loss`` once for every
        ``on_gain`` that succeeded; a new epoch while leading is a loss, then a gain)."""
        self.eligible = eligible
        try:
            while True:
                try:
                    holds = await self.step()
                except Exception:  # an unexpected database answer: not leading, try again
                    log.exception("the election failed; retrying")
                    holds = False
                    self.epoch = None
                if holds and not self._gained:
                    if self._active:
                        await self._lose(on_loss)
                    await self._take_over(on_gain)
                elif self._active and not self.leading:
                    await self._lose(on_loss)
                await asyncio.sleep(self.settings.renew_every)
        finally:
            if self.epoch is not None:
                await self._release()

    async def _take_over(self, on_gain: Hook) -> None:
        log.warning(
            "taking over as the leader", extra={"vantage": self.vantage, "epoch": self.epoch}
        )
        try:
            await on_gain()
        except Exception:
            # The takeover could not rebuild what it needs (the database went away): give the
            # lease up, so that another host (or this one, next round) does it whole.
            log.exception("takeover failed; giving the lease up")
            await self._release()
            return
        self._gained = self._active = True
        self.takeovers += 1

    async def _lose(self, on_loss: Hook) -> None:
        log.warning("no longer the leader", extra={"vantage": self.vantage})
        self._gained = self._active = False
        try:
            await on_loss()
        except Exception:
            log.exception("stepping down failed")
