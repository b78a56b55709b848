"""The vantages' votes: every host's verdict per check in the shared store, and the quorum.

Each host (a *vantage*) probes every check itself. It writes only the **flips** of its own
verdicts (pass, degraded, fail, and the reason's code) into ``verdicts``, a bounded buffer of
one row per check flushed about once a second, and a liveness **beat** into ``vantages`` (the
database's clock; whether its uplink canaries pass; whether it has probed every check once since
it started: ``ready``). It reads the other vantages' new rows by their sequence number.

A vantage **votes** while its beat is fresh (``cluster.vote_stale_after``), its canaries pass
and it is ready. Every result of this host's own probe is combined with the voting vantages'
latest verdicts for that check (:func:`combine`) before the state machine sees it:

* it fails when at least ``quorum`` voting vantages see it failing (``majority``: more than
  half of those voting; a number is capped at the number voting), and the reason says so:
  "… (seen from 2/3 vantages)";
* else it is degraded when that many see it failing or degraded;
* a heartbeat (pushed to one host, over HTTP, or to all over MQTT) fails only when every voting
  vantage sees it fail: one host that received it is enough;
* else it passes; a check failing from a minority while the others see it pass is a **path**
  problem (:attr:`VoteBoard.minorities`), for the operations team only.

A vantage that has no row for a check sees it pass (rows are flips; a restart deletes a
vantage's rows, and others drop what they held of it when its ``started_at`` changes). When this
host cannot reach the store for ``vote_stale_after``, it stops trusting what it last read and
decides alone (nothing can be sent meanwhile anyway: the outbox is in the same database).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from npsp_common.types import ProbeResult, Why

from ..config.cluster import ClusterSettings
from ..sqldialect import Handle
from ..store import Store, StoreError

log = logging.getLogger(__name__)

__all__ = ["DEGRADED", "FAIL", "PASS", "Minority", "Tally", "VoteBoard", "combine", "needed"]

PASS, DEGRADED, FAIL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Verdict:
    """One vantage's verdict on one check."""

    level: int
    reason: str
    why: Why | None
    ts: float = 0.0  # when the vantage's verdict became this (its flip), by its clock


_PASSING = Verdict(PASS, "", None)


def level_of(result: ProbeResult) -> int:
    if not result.ok:
        return FAIL
    return DEGRADED if result.degraded else PASS


def verdict_of(result: ProbeResult) -> Verdict:
    return Verdict(level_of(result), result.reason, result.why)


def needed(quorum: str | int, voting: int) -> int:
    """How many of ``voting`` vantages must agree: a majority, or the number (capped)."""
    if voting <= 0:
        return 1
    if quorum == "majority":
        return voting // 2 + 1
    return max(1, min(int(quorum), voting))


@dataclass(frozen=True, slots=True)
class Tally:
    """How the voting vantages see one check."""

    failing: tuple[str, ...]  # the vantages that see it fail
    degraded: tuple[str, ...]
    voting: int
    need: int


def combine(
    own: ProbeResult,
    own_vantage: str | None,
    peers: Iterable[tuple[str, Verdict]],
    quorum: str | int,
    *,
    push: bool = False,
) -> tuple[ProbeResult, Tally]:
    """The check's result as the quorum sees it. ``own_vantage`` is this host's name while it
    votes (None: its canaries fail, or it is not ready); ``peers`` are the other *voting*
    vantages' verdicts."""
    votes = [(name, v) for name, v in peers]
    if own_vantage is not None:
        votes.insert(0, (own_vantage, verdict_of(own)))
    if not votes:
        return own, Tally((), (), 0, 1)
    # A push (a heartbeat) reaches one host, not each: it fails only when no vantage got it.
    need = len(votes) if push else needed(quorum, len(votes))
    failing = tuple(n for n, v in votes if v.level == FAIL)
    degraded = tuple(n for n, v in votes if v.level == DEGRADED)
    tally = Tally(failing, degraded, len(votes), need)
    if len(failing) >= need:
        return _seen(own, votes, FAIL, len(failing), len(votes)), tally
    if len(failing) + len(degraded) >= need:
        return _seen(own, votes, DEGRADED, len(failing) + len(degraded), len(votes)), tally
    if own.ok and not own.degraded:
        return own, tally
    return ProbeResult(True, "", own.duration, status_code=own.status_code), tally


def _seen(
    own: ProbeResult, votes: list[tuple[str, Verdict]], level: int, count: int, voting: int
) -> ProbeResult:
    """A failing (or degraded) result whose reason is the first such vantage's (this host's if
    it is one), saying how many vantages see it."""
    reason, why = next((v.reason, v.why) for _, v in votes if v.level >= level)
    alone = voting == 1
    suffix = (
        f"seen from the only vantage voting, {votes[0][0]}"
        if alone
        else f"seen from {count}/{voting} vantages"
    )
    wrapped = Why(
        "cluster.seen" if not alone else "cluster.alone",
        {
            "why": why or Why("text", {"text": reason}),
            "count": count,
            "voting": voting,
            "vantage": votes[0][0],
        },
    )
    return dataclasses.replace(
        own,
        ok=level != FAIL,
        degraded=level == DEGRADED,
        reason=f"{reason} ({suffix})",
        why=wrapped,
    )


@dataclass(slots=True)
class Minority:
    """A check failing from some voting vantages only, since ``since``."""

    since: float
    vantages: tuple[str, ...]
    voting: int
    reason: str
    noticed: bool = False


@dataclass(slots=True)
class _Peer:
    started_at: float
    voting: bool
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # its failing and degraded
    passed_at: dict[str, float] = field(default_factory=dict)  # when a check last passed again
    last_seq: int = -1


_BEAT = (
    "INSERT INTO vantages (vantage, holder, beat_at, started_at, canaries_ok, ready)"
    " VALUES (?, ?, now(), to_timestamp(?), ?, ?)"
    " ON CONFLICT (vantage) DO UPDATE SET holder = excluded.holder, beat_at = now(),"
    " started_at = excluded.started_at, canaries_ok = excluded.canaries_ok,"
    " ready = excluded.ready"
)
_VANTAGES = (
    "SELECT vantage, EXTRACT(EPOCH FROM started_at),"
    " beat_at > now() - make_interval(secs => ?) AND canaries_ok AND ready"
    " FROM vantages"
)
_WRITE = (
    "INSERT INTO verdicts (vantage, check_key, level, reason, why, ts)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (vantage, check_key) DO UPDATE SET level = excluded.level,"
    " reason = excluded.reason, why = excluded.why, ts = excluded.ts,"
    " seq = nextval('verdicts_seq')"
)
_NEWER = (
    "SELECT check_key, level, reason, why, seq, ts FROM verdicts"
    " WHERE vantage = ? AND seq > ? ORDER BY seq"
)
_FORGET_OWN = "DELETE FROM verdicts WHERE vantage = ?"


def _why_of(text: str | None) -> Why | None:
    if not text:
        return None
    try:
        return Why.from_json(json.loads(text))
    except ValueError:
        return None


class VoteBoard:
    """This host's votes and what it knows of the others'. :meth:`sync` (about once a second)
    writes and reads; :meth:`decide` is called on the probe path and never waits."""

    def __init__(
        self,
        store: Store,
        settings: ClusterSettings,
        vantage: str,
        holder: str,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.vantage = vantage
        self.holder = holder
        self.canaries_ok = True  # as last told by sync()
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.started_at = wall_clock()
        self.own: dict[str, Verdict] = {}  # this host's verdicts as last written (or queued)
        self._unwritten: dict[str, Verdict] = {}  # bounded: one entry per check
        self._checks: set[str] = set()  # the checks due a first verdict before this host is ready
        self._seen: set[str] = set()
        self.ready = False
        self.peers: dict[str, _Peer] = {}
        self._last_seq = 0
        self._synced_at: float | None = None  # monotonic time of the last good sync
        self._self_voting = False  # as the database saw this host's last beat
        self._started = False
        self._failing = False  # the last exchange failed (logged once per outage)
        self.minorities: dict[str, Minority] = {}
        self.writes = 0  # verdict rows written (the bench reads it)

    # ----- the probe path ----------------------------------------------------------------------

    def expect(self, checks: Iterable[str]) -> None:
        """The checks to probe (a reload changes them): ready once each has a verdict."""
        self._checks = set(checks)
        for gone in [k for k in self.own if k not in self._checks]:
            del self.own[gone]
            self._unwritten[gone] = _PASSING
        self._update_ready()

    def _update_ready(self) -> None:
        if not self.ready and self._checks <= self._seen:
            self.ready = True
            self._seen.clear()

    @property
    def trusted(self) -> bool:
        """Whether what was last read of the others is recent enough to count."""
        return (
            self._synced_at is not None
            and self.monotonic() - self._synced_at < self.settings.vote_stale_after
        )

    def voting_peers(self) -> list[str]:
        if not self.trusted:
            return []
        return sorted(n for n, p in self.peers.items() if p.voting)

    @property
    def voting(self) -> bool:
        """Whether this host votes now (as the others see it)."""
        return self.trusted and self._self_voting and self.ready and self.canaries_ok

    def decide(
        self, key: str, result: ProbeResult, now: float, *, push: bool = False
    ) -> ProbeResult:
        """Note this host's verdict on ``key`` and give back the quorum's (``push``: a
        heartbeat, received by one host: it fails only when every voting vantage says so)."""
        verdict = verdict_of(result)
        last = self.own.get(key, _PASSING)
        if verdict.level != last.level or _code(verdict.why) != _code(last.why):
            verdict = dataclasses.replace(verdict, ts=now)
            self.own[key] = verdict
            self._unwritten[key] = verdict
        if not self.ready:
            self._seen.add(key)
            self._update_ready()
        peers = [
            (name, self.peers[name].verdicts.get(key, _PASSING)) for name in self.voting_peers()
        ]
        own_name = self.vantage if self.voting or not peers else None
        combined, tally = combine(result, own_name, peers, self.settings.quorum, push=push)
        self._follow_minority(key, tally, combined, result, now, push)
        return combined

    def _follow_minority(
        self,
        key: str,
        tally: Tally,
        combined: ProbeResult,
        own: ProbeResult,
        now: float,
        push: bool,
    ) -> None:
        if tally.voting < 2 or not tally.failing or not combined.ok or push:
            self.minorities.pop(key, None)
            return
        seen = self.minorities.get(key)
        if seen is None or seen.vantages != tally.failing:
            reason = own.reason if not own.ok else self._peer_reason(key, tally.failing)
            since = self._last_flip(key) or now
            self.minorities[key] = Minority(since, tally.failing, tally.voting, reason)

    def _last_flip(self, key: str) -> float:
        """When the voting vantages' verdicts on ``key`` last changed (0: never, as far as is
        known): the start of a path problem as every host reads it from the store, so that the
        leader after a failover names the same episode (one notice, not one per leader)."""
        times = [self.own.get(key, _PASSING).ts] if self.voting else []
        for name in self.voting_peers():
            peer = self.peers[name]
            verdict = peer.verdicts.get(key)
            times.append(verdict.ts if verdict is not None else peer.passed_at.get(key, 0.0))
        return max(times, default=0.0)

    def joined(self) -> list[str]:
        """Checks this host saw failing while the others did not yet (its failure was
        overruled, and counted as a pass) that enough voting vantages now see failing too.
        Probed again at once, the state machine counts the outage from when the quorum formed,
        not from this host's next turn a whole interval later."""
        out = []
        peers = self.voting_peers()
        need = needed(self.settings.quorum, len(peers) + 1)
        for key, minority in self.minorities.items():
            if self.vantage not in minority.vantages or self.own.get(key, _PASSING).level == PASS:
                continue
            failing = 1 + sum(
                self.peers[name].verdicts.get(key, _PASSING).level != PASS for name in peers
            )
            if failing >= need:
                out.append(key)
        return out

    def _peer_reason(self, key: str, names: tuple[str, ...]) -> str:
        for name in names:
            peer = self.peers.get(name)
            if peer is not None and key in peer.verdicts:
                return peer.verdicts[key].reason
        return ""

    def voting_map(self) -> dict[str, bool]:
        """Every vantage known → whether it votes now (as this host reads it)."""
        out = {name: peer.voting and self.trusted for name, peer in self.peers.items()}
        out[self.vantage] = self.voting
        return out

    def failing_systems(
        self, system_of: Callable[[str], tuple[str, str] | None]
    ) -> dict[tuple[str, str], int]:
        """(agency, system) → how many voting vantages see one of its checks fail (the most
        of any check); ``system_of`` maps a check to its system (None: not a check now)."""
        counts: dict[str, int] = {}
        voters = [self.peers[n].verdicts for n in self.voting_peers()]
        if self.voting:
            voters.append(self.own)
        for verdicts in voters:
            for key, verdict in verdicts.items():
                if verdict.level == FAIL:
                    counts[key] = counts.get(key, 0) + 1
        out: dict[tuple[str, str], int] = {}
        for key, count in counts.items():
            system = system_of(key)
            if system is not None and count > out.get(system, 0):
                out[system] = count
        return out

    def tally(self, key: str) -> tuple[list[str], list[str], list[str]]:
        """Who sees ``key`` how now (failing, degraded, passing), for the pages."""
        out: tuple[list[str], list[str], list[str]] = ([], [], [])
        names = self.voting_peers()
        for name in names:
            out[2 - self.peers[name].verdicts.get(key, _PASSING).level].append(name)
        if self.voting:
            out[2 - self.own.get(key, _PASSING).level].append(self.vantage)
        return out

    # ----- the store ---------------------------------------------------------------------------

    async def sync(self, canaries_ok: bool = True) -> bool:
        """Write this host's new verdicts and its beat (with whether its uplink canaries pass),
        read the others'; False on a store failure (the verdicts stay queued, the newest per
        check)."""
        self.canaries_ok = canaries_ok
        # The batch and "ready" are taken together, here on the event loop: the transaction
        # runs in the database's thread while probes go on deciding, and a beat saying "ready"
        # must never go out without the verdicts that made this host ready (the others would
        # count its missing failures as passes, and could resolve an outage falsely).
        batch, ready = dict(self._unwritten), self.ready
        self._unwritten.clear()
        try:
            read = await self.store.transact(lambda db: self._exchange(db, batch, ready))
        except StoreError as exc:
            for k, v in batch.items():
                self._unwritten.setdefault(k, v)
            if not self._failing:  # once per outage, not four times a second
                log.warning("cannot share this vantage's verdicts (will retry): %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("sharing this vantage's verdicts again")
        self._failing = False
        self._started = True
        self.writes += len(batch)
        self._apply(read)
        self._synced_at = self.monotonic()
        return True

    def _exchange(self, db: Handle, batch: dict[str, Verdict], ready: bool) -> _Read:
        """One transaction: this host's rows and beat out, the others' news in. Each vantage
        writes on one connection, one transaction after another, so its rows' sequence numbers
        commit in order: reading each vantage past the last number seen of it misses nothing."""
        if not self._started:
            db.execute(_FORGET_OWN, (self.vantage,))
        now = self.wall_clock()
        rows = [
            (self.vantage, k, v.level, v.reason, _why_text(v.why), v.ts or now)
            for k, v in batch.items()
        ]
        if rows:
            db.executemany(_WRITE, rows)
        beat = (self.vantage, self.holder, self.started_at, self.canaries_ok, ready)
        db.execute(_BEAT, beat)
        read = _Read()
        for row in db.execute(_VANTAGES, (self.settings.vote_stale_after,)):
            name, began = str(row[0]), float(row[1])
            read.vantages.append((name, began, bool(row[2])))
            if name == self.vantage:
                continue
            known = self.peers.get(name)
            after = known.last_seq if known is not None and known.started_at == began else -1
            read.rows[name] = list(db.execute(_NEWER, (name, after)))
        return read

    def _apply(self, read: _Read) -> None:
        present = set()
        for name, began, voting in read.vantages:
            present.add(name)
            if name == self.vantage:
                self._self_voting = voting
                continue
            peer = self.peers.get(name)
            if peer is None or peer.started_at != began:
                peer = self.peers[name] = _Peer(began, voting)  # restarted: read whole
            peer.voting = voting
            for key, level, reason, why, seq, ts in read.rows.get(name, ()):
                peer.last_seq = max(peer.last_seq, int(seq))
                if int(level) == PASS:
                    peer.verdicts.pop(str(key), None)
                    peer.passed_at[str(key)] = float(ts)
                else:
                    verdict = Verdict(int(level), str(reason), _why_of(why), float(ts))
                    peer.verdicts[str(key)] = verdict
        for gone in self.peers.keys() - present:
            del self.peers[gone]


@dataclass(slots=True)
class _Read:
    vantages: list[tuple[str, float, bool]] = field(default_factory=list)
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


def _why_text(why: Why | None) -> str | None:
    return None if why is None else json.dumps(why.to_json())


def _code(why: Why | None) -> str | None:
    return None if why is None else why.code
