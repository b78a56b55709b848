"""Running every check on its interval, in plain asyncio.

One dispatcher task pops due jobs from a heap and starts one short task per probe run. Why not
APScheduler: for per-check jobs it cost twice the CPU and its jitter drifted the period
(PRODUCT.md). The rules:

* first runs are spread over the interval by a stable hash of the check's key, so 10,000
  checks never start at once and a restart keeps the same phases;
* no drift: the next run is due one interval after the previous *due* time, not after the
  previous run ended;
* coalescing: a run still in flight when its next one falls due is not doubled, and after a
  stall the missed runs collapse into one;
* a global limit on probes in flight and a limit per target host;
* a quick recheck can be asked for (the state machine wants a failure confirmed).

:class:`Schedule` is the pure part (heap and arithmetic, time passed in); :class:`Scheduler`
adds the tasks, the limits and the clock.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from npsp_common.types import ProbeResult
from probes.base import Probe
from probes.reasons import fail, why

log = logging.getLogger(__name__)

QUANTUM = 0.01  # the dispatcher wakes at most once per 10 ms: one wake-up per probe cost ~25 %
OVERRUN_GRACE = 1.0  # a probe still running this long after its timeout is cancelled


@dataclass(eq=False, slots=True)
class Job:
    """One check as the scheduler sees it."""

    key: str
    host: str
    interval: float
    timeout: float
    probe: Probe
    next_due: float = 0.0
    running: bool = False
    active: bool = True
    recheck_at: float | None = None
    deadline: float = 0.0  # when the run in flight must be over (timeout + grace)
    task: asyncio.Task[None] | None = None
    overrun: bool = False


@dataclass(slots=True)
class Schedule:
    """The heap of due times. Pure: every method takes ``now``."""

    heap: list[tuple[float, int, Job]] = field(default_factory=list)
    seq: int = 0
    coalesced: int = 0  # runs skipped because the previous one was still in flight or missed

    def add(self, job: Job, now: float, phase: float | None = None) -> None:
        """Schedule a new job's first run, spread over its interval by its key."""
        if phase is None:
            phase = (zlib.crc32(job.key.encode()) % 1_000_003) / 1_000_003
        job.next_due = now + phase * job.interval
        self._push(job.next_due, job)

    def _push(self, due: float, job: Job) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, job))

    def recheck(self, job: Job, when: float) -> None:
        """Run ``job`` once more at ``when`` (before its regular turn), without moving its phase."""
        if job.recheck_at is None or when < job.recheck_at:
            job.recheck_at = when
            self._push(when, job)

    def next_wakeup(self) -> float | None:
        while self.heap and not self.heap[0][2].active:
            heapq.heappop(self.heap)
        return self.heap[0][0] if self.heap else None

    def pop_due(self, now: float) -> list[tuple[Job, float]]:
        """Jobs to start now, each with the time it was due (for the lag)."""
        ready: list[tuple[Job, float]] = []
        while self.heap and self.heap[0][0] <= now:
            due, _, job = heapq.heappop(self.heap)
            if not job.active:
                continue
            if job.recheck_at is not None and due == job.recheck_at:
                job.recheck_at = None
                if not job.running:
                    ready.append((job, due))
                continue
            if due != job.next_due:
                continue  # a stale entry (the job was re-added)
            next_due = due + job.interval
            if next_due <= now:
                missed = math.floor((now - due) / job.interval)
                self.coalesced += missed
                next_due = due + (missed + 1) * job.interval
            job.next_due = next_due
            self._push(next_due, job)
            if job.running:
                self.coalesced += 1
                continue
            ready.append((job, due))
        return ready


ResultSink = Callable[[Job, ProbeResult, float], None]


class Scheduler:
    """Starts probe runs when due, within the concurrency limits, and reports each result."""

    def __init__(
        self,
        on_result: ResultSink,
        *,
        max_concurrency: int,
        max_per_host: int,
        observe_lag: Callable[[float], None] = lambda _lag: None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._on_result = on_result
        self._observe_lag = observe_lag
        self._clock = clock
        self._global = asyncio.Semaphore(max_concurrency)
        self._max_per_host = max_per_host
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._schedule = Schedule()
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._stopping = False
        self._next_watchdog = 0.0
        self.last_progress = self.now()
        self.runs = 0

    def now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    @property
    def coalesced(self) -> int:
        return self._schedule.coalesced

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def jobs(self) -> dict[str, Job]:
        return self._jobs

    def add(self, job: Job, phase: float | None = None) -> None:
        """Schedule ``job`` (replacing one with the same key); ``phase`` 0 means due now."""
        old = self._jobs.pop(job.key, None)
        if old is not None:
            old.active = False
        self._jobs[job.key] = job
        self._schedule.add(job, self.now(), phase)
        self._wake()

    def remove(self, key: str) -> None:
        job = self._jobs.pop(key, None)
        if job is not None:
            job.active = False

    def recheck(self, key: str, delay: float) -> None:
        job = self._jobs.get(key)
        if job is not None:
            self._schedule.recheck(job, self.now() + delay)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def run(self, on_result: ResultSink | None = None) -> None:
        """Dispatch until :meth:`stop`; wakes at least once a second to show progress. Each
        result goes to ``on_result`` (default: the one given when built)."""
        sink = self._on_result if on_result is None else on_result
        loop = asyncio.get_running_loop()
        while not self._stopping:
            now = self.now()
            self.last_progress = now
            for job, due in self._schedule.pop_due(now):
                job.running, job.deadline = True, 0.0
                job.task = task = loop.create_task(
                    self._run_one(job, due, sink), name=f"probe:{job.key}"
                )
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._finished, job))
            if now >= self._next_watchdog:
                self._next_watchdog = now + 1.0
                self._cancel_overruns(now)
            wakeup = self._schedule.next_wakeup()
            delay = 1.0 if wakeup is None else min(1.0, max(QUANTUM, wakeup - self.now()))
            # One reusable future and one timer: cheaper than asyncio.timeout + Event per wake.
            self._waiter = waiter = loop.create_future()
            handle = loop.call_later(delay, self._wake)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiter = None

    def _finished(self, job: Job, task: asyncio.Task[None]) -> None:
        """Whatever way a run ended (even cancelled before its first step), it is over."""
        self._tasks.discard(task)
        if job.task is task:
            job.running, job.deadline, job.task = False, 0.0, None

    def _cancel_overruns(self, now: float) -> None:
        """The backstop: probes bound themselves; one that does not is cancelled here.
        Only runs that have started (``deadline`` set) are watched."""
        for job in self._jobs.values():
            if job.running and 0.0 < job.deadline < now and job.task is not None:
                job.overrun = True
                job.task.cancel()

    async def _run_one(self, job: Job, due: float, on_result: ResultSink) -> None:
        host_limit = self._per_host.get(job.host)
        if host_limit is None:
            host_limit = self._per_host[job.host] = asyncio.Semaphore(self._max_per_host)
        try:
            async with self._global, host_limit:
                if not job.active:
                    return
                start = self.now()
                self._observe_lag(max(0.0, start - due))
                job.deadline, job.overrun = start + job.timeout + OVERRUN_GRACE, False
                result = await self._guarded(job)
            self.runs += 1
            if job.active:
                on_result(job, result, due)
        except Exception:  # a bug must not kill the scheduler; it is logged with the check
            log.exception("internal error handling the result of %s", job.key)

    @staticmethod
    async def _guarded(job: Job) -> ProbeResult:
        """Run the probe; a crash or an overrun (cancelled by the watchdog) is a failure."""
        try:
            return await job.probe(job.timeout)
        except asyncio.CancelledError:
            if not job.overrun:
                raise  # the daemon is stopping
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            log.error("probe %s overran its timeout and was cancelled", job.key)
            return fail(why("timeout", timeout=job.timeout), job.timeout)
        except Exception as exc:
            log.exception("probe %s raised", job.key)
            return fail(why("probe.internal", error=type(exc).__name__), 0.0)

    def stop(self) -> None:
        """Stop starting new runs (in-flight runs go on; see :meth:`drain`)."""
        self._stopping = True
        self._wake()

    async def drain(self, grace: float) -> None:
        """Let in-flight probes finish for up to ``grace`` seconds, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
