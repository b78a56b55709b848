"""``heartbeat``: a push check. The system reports; the monitor notices when it stops.

Some systems cannot be probed from the gateway (they sit behind the agency's firewall, or what
matters is a job that runs, not a port that answers). They send heartbeats instead:
``POST /api/v1/heartbeat/<agency>/<system>`` with their token, or an MQTT message on
``<prefix>heartbeat/<agency>/<system>`` (both received by :mod:`monitor.heartbeats`). The receiver
marks the daemon's one :class:`HeartbeatBoard` (``ProbeEnv.heartbeats``); this probe only reads
it, so it is cheap enough to run every few seconds:

* a heartbeat younger than ``period + grace`` → ok;
* older → failing, ``no heartbeat for 5m12s (period 5m, grace 30s)``;
* none since monitoring of the check began → ok for ``period + grace`` (a restart does not flip
  every push-reporting system to DOWN), failing after that with ``no heartbeat received yet``.

Defaults differ from the other kinds: ``interval`` 10s (detection lags by at most one interval,
plus ``recheck_delay``), ``timeout`` 1s, ``failure_threshold`` 1 (the verdict is already about
time: counting consecutive failures would only add ``(threshold - 1) x interval``); grace is 10%
of the period, at least 5s.

The build contract gives a probe its spec, not its system, so the board keys beats by the check
id and the token (keyed-hashed: the board never holds a token). Two systems with the same check
id and the same token would share a slot; the receiver finds such pairs, refuses their
heartbeats and lists them in :attr:`HeartbeatBoard.conflicts`, and the probe fails saying so.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from npsp_common.types import (
    CheckCommon,
    DataTime,
    Duration,
    Freshness,
    ProbeResult,
    SecretSource,
    Why,
)

from .base import Probe, ProbeEnv
from .heartbeat_board import HeartbeatBoard
from .reasons import fail, passed, why

__all__ = [
    "MAX_TOKEN",
    "MIN_GRACE",
    "MIN_TOKEN",
    "HeartbeatBoard",
    "Spec",
    "build",
    "read_token",
]

MIN_GRACE = 5.0  # seconds: a sender's clock tick and the network need some slack
MIN_TOKEN = 16  # characters: a short token can be guessed
MAX_TOKEN = 256  # characters: longer offered tokens are refused before any comparison


class Spec(CheckCommon):
    """A heartbeat check: DOWN when no heartbeat arrived within ``period`` + ``grace``."""

    kind: Literal["heartbeat"]
    period: Duration = Field(description="How often the system promises to send a heartbeat.")
    grace: Duration | None = Field(
        default=None, description="Extra wait before failing; default 10% of period, >= 5s."
    )
    token: SecretSource = Field(description="The system's own token (file or env variable).")
    # The probe reads memory only: run it often so that silence is noticed within seconds.
    interval: Duration | None = 10.0
    timeout: Duration | None = 1.0
    failure_threshold: Annotated[int, Field(ge=1, le=100)] | None = 1
    freshness: Freshness | None = Field(
        default=None,
        description="How old the last push may be, in working hours of the agency (no path).",
    )

    @model_validator(mode="after")
    def _sane_period(self) -> Spec:
        if self.period < 1.0:
            raise ValueError("period must be at least 1s")
        if self.freshness is not None and self.freshness.path is not None:
            raise ValueError("freshness: a heartbeat's data time is its last push; no path")
        return self

    @property
    def grace_seconds(self) -> float:
        """The grace in effect: as configured, else 10% of the period, at least 5s."""
        return self.grace if self.grace is not None else max(MIN_GRACE, self.period / 10)

    @property
    def deadline(self) -> float:
        """Seconds of silence tolerated: ``period + grace``."""
        return self.period + self.grace_seconds

    def target_host(self) -> str:
        # No peer to protect from concurrent probes: every heartbeat check shares one name.
        return self.host_key or "heartbeat"


def read_token(source: SecretSource) -> str:
    """Read a heartbeat token; ``ValueError`` naming the source (never the value) if unusable."""
    token = source.read().get_secret_value()
    where = f"file {source.file}" if source.file is not None else f"variable {source.env}"
    if len(token) < MIN_TOKEN:
        raise ValueError(f"the token in {where} is shorter than {MIN_TOKEN} characters")
    if len(token) > MAX_TOKEN:
        raise ValueError(f"the token in {where} is longer than {MAX_TOKEN} characters")
    return token


def _span(seconds: float) -> float:
    """A duration as a person reads it: whole seconds from 1s up (``5m12s``, not ``312.4s``)."""
    seconds = max(0.0, seconds)
    return float(round(seconds)) if seconds >= 1 else seconds


def _broken(reason: Why) -> Probe:
    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109 (the Probe contract)
        del timeout
        return fail(reason, 0.0)

    return probe


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Return a probe that judges the age of the check's last heartbeat on ``env.heartbeats``."""
    board = env.heartbeats
    try:
        key = board.key(spec.id, read_token(spec.token))
    except ValueError as exc:
        return _broken(why("heartbeat.token", detail=str(exc)))
    limit = spec.deadline
    terms = {"period": spec.period, "grace": spec.grace_seconds}
    # Counting from the build, not the board's start: a check added by a reload gets its grace.
    since = board.clock()
    dated = spec.freshness is not None

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109 (the Probe contract)
        del timeout
        shared = board.conflicts.get(key)
        if shared:
            return fail(why("heartbeat.shared", systems=", ".join(shared)), 0.0)
        now = board.clock()
        last = board.last(key)
        # Freshness: the last push, or (none heard by this process: beats are not kept across
        # a restart) the start of watching — the age then counts from the restart, never less.
        extra = {}
        if dated:
            heard = since if last is None else last
            extra["data"] = DataTime(board.wall_clock() - (now - heard), since_start=last is None)
        if last is None:
            waited = now - since
            if key in board.silent:
                return fail(why("heartbeat.none_before_restart", **terms), 0.0, **extra)
            if waited <= limit:
                return passed(why("heartbeat.waiting", limit=_span(limit)), 0.0, **extra)
            return fail(why("heartbeat.none", waited=_span(waited), **terms), 0.0, **extra)
        age = now - last
        if age <= limit:
            return passed(why("heartbeat.ok", age=_span(age)), 0.0, **extra)
        return fail(why("heartbeat.late", age=_span(age), **terms), 0.0, **extra)

    return probe
