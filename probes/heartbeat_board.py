"""The board heartbeat receivers write and heartbeat probes read (:mod:`probes.heartbeat`).

Apart from the probe so that :class:`probes.base.ProbeEnv`, which holds the daemon's one board,
and the probe, which is built from a ``ProbeEnv``, do not import each other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

__all__ = ["HeartbeatBoard"]


class HeartbeatBoard:
    """When each heartbeat check last heard from its system.

    One per daemon (``ProbeEnv.heartbeats``): the receiver writes, the probes read. ``clock``
    is monotonic by default: beats are only compared with each other inside this process
    (nothing is persisted), so a wall-clock step (NTP) must not make every system look silent.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        # Only to date a beat for a freshness condition (working hours are on the calendar):
        # a beat's wall time is now's, less its age on the monotonic clock.
        self.wall_clock = wall_clock
        self.started = clock()
        self._salt = secrets.token_bytes(16)
        self._last: dict[bytes, float] = {}
        # Slots that serve several systems (same check id and token), with those systems;
        # set by the receiver from the running registry.
        self.conflicts: dict[bytes, tuple[str, ...]] = {}
        # Slots whose system was already down when the daemon started (its stored state): no
        # start-up grace for them, or a restart would announce a silent system as recovered.
        self.silent: set[bytes] = set()

    def key(self, check_id: str, token: str) -> bytes:
        """The slot of one check: its id and token, keyed-hashed with a per-process salt."""
        return hmac.new(self._salt, f"{check_id}\x00{token}".encode(), hashlib.sha256).digest()

    def beat(self, key: bytes, now: float | None = None) -> None:
        """Record a heartbeat (authenticated by the caller) at ``now`` (default: the clock)."""
        self._last[key] = self.clock() if now is None else now

    def last(self, key: bytes) -> float | None:
        """When the slot last heard a heartbeat, on the board's clock; None if never."""
        return self._last.get(key)

    def __repr__(self) -> str:
        return f"<HeartbeatBoard: {len(self._last)} checks heard>"
