"""Scheduling: spreading, no drift, coalescing, rechecks and the concurrency limits."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from monitor.scheduler import Job, Schedule, Scheduler
from npsp_common.types import ProbeResult

OK = ProbeResult(True, "ok", 0.0)


async def never(_timeout: float) -> ProbeResult:  # a probe the pure schedule never runs
    raise AssertionError("not called")


def job(key: str, interval: float = 10.0, host: str = "h") -> Job:
    return Job(key, host, interval, 1.0, never)


def test_first_runs_are_spread_over_the_interval() -> None:
    schedule = Schedule()
    jobs = [job(f"agency-{i // 3}/system-{i}/https") for i in range(10_000)]
    for j in jobs:
        schedule.add(j, now=0.0)
    firsts = sorted(j.next_due for j in jobs)
    assert firsts[0] >= 0.0 and firsts[-1] < 10.0
    per_second = [sum(1 for t in firsts if s <= t < s + 1) for s in range(10)]
    assert min(per_second) > 850 and max(per_second) < 1150, per_second  # ~1,000 each


def test_phase_is_stable_across_restarts() -> None:
    a, b = job("x/y/z"), job("x/y/z")
    Schedule().add(a, now=0.0)
    Schedule().add(b, now=0.0)
    assert a.next_due == b.next_due


def test_no_drift_even_when_runs_start_late() -> None:
    schedule = Schedule()
    j = job("a/b/c", interval=10.0)
    schedule.add(j, now=0.0, phase=0.0)
    starts = []
    now = 0.0
    for _ in range(100):
        now = j.next_due + 0.37  # every run starts 370 ms late
        (ready,) = schedule.pop_due(now)
        starts.append(ready[1])
    # due times stay on the 10 s grid: lateness does not accumulate
    assert starts == [10.0 * i for i in range(100)]


def test_missed_runs_after_a_stall_coalesce_into_one() -> None:
    schedule = Schedule()
    j = job("a/b/c", interval=10.0)
    schedule.add(j, now=0.0, phase=0.0)
    assert len(schedule.pop_due(0.0)) == 1
    # The loop stalls for 95 s: 9 runs were missed; only one runs now.
    assert len(schedule.pop_due(95.0)) == 1
    assert schedule.coalesced == 8
    assert j.next_due == 100.0
    assert schedule.pop_due(99.0) == []


def test_a_run_still_in_flight_is_not_doubled() -> None:
    schedule = Schedule()
    j = job("a/b/c", interval=1.0)
    schedule.add(j, now=0.0, phase=0.0)
    schedule.pop_due(0.0)
    j.running = True
    assert schedule.pop_due(1.0) == []
    assert schedule.coalesced == 1


def test_recheck_runs_early_without_moving_the_phase() -> None:
    schedule = Schedule()
    j = job("a/b/c", interval=60.0)
    schedule.add(j, now=0.0, phase=0.0)
    schedule.pop_due(0.0)
    schedule.recheck(j, 5.0)
    schedule.recheck(j, 7.0)  # a later request does not add a second run
    assert [due for _, due in schedule.pop_due(10.0)] == [5.0]
    assert schedule.pop_due(59.0) == []
    assert [due for _, due in schedule.pop_due(60.0)] == [60.0]


def test_removed_job_never_runs_again() -> None:
    schedule = Schedule()
    j = job("a/b/c")
    schedule.add(j, now=0.0, phase=0.5)
    j.active = False
    assert schedule.pop_due(100.0) == []
    assert schedule.next_wakeup() is None


class Gate:
    """Probes that block until released, counting how many run at once (per host too)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total_peak = 0
        self.started = 0

    def probe(self, host: str):  # type: ignore[no-untyped-def]
        async def run(_timeout: float) -> ProbeResult:
            self.started += 1
            self.running[host] = self.running.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self.running[host])
            self.total_peak = max(self.total_peak, sum(self.running.values()))
            await self.release.wait()
            self.running[host] -= 1
            return OK

        return run


async def test_global_and_per_host_limits_hold() -> None:
    gate = Gate()
    results: list[str] = []
    sched = Scheduler(lambda j, r, d: results.append(j.key), max_concurrency=10, max_per_host=3)
    for i in range(40):
        host = f"host-{i % 4}"
        sched.add(Job(f"a/s{i}/c", host, 3600.0, 5.0, gate.probe(host)), phase=0.0)
    runner = asyncio.create_task(sched.run())
    while gate.started < 10:
        await asyncio.sleep(0)
    for _ in range(20):  # give any excess run a chance to start
        await asyncio.sleep(0)
    assert gate.total_peak == 10
    assert max(gate.peak.values()) <= 3
    gate.release.set()
    while len(results) < 40:
        await asyncio.sleep(0.01)
    sched.stop()
    await runner
    assert sorted(results) == sorted(f"a/s{i}/c" for i in range(40))


async def test_a_probe_that_raises_becomes_a_failure_and_the_scheduler_lives_on() -> None:
    got: list[ProbeResult] = []

    async def broken(_timeout: float) -> ProbeResult:
        raise RuntimeError("bug in a probe")

    sched = Scheduler(lambda j, r, d: got.append(r), max_concurrency=5, max_per_host=5)
    sched.add(Job("a/b/c", "h", 3600.0, 1.0, broken), phase=0.0)
    runner = asyncio.create_task(sched.run())
    while not got:
        await asyncio.sleep(0.01)
    sched.stop()
    await runner
    assert got[0].ok is False
    assert got[0].reason == "internal probe error: RuntimeError"


async def test_drain_cancels_probes_that_overrun_the_grace() -> None:
    gate = Gate()
    sched = Scheduler(lambda j, r, d: None, max_concurrency=5, max_per_host=5)
    j = Job("a/b/c", "h", 3600.0, 30.0, gate.probe("h"))
    sched.add(j, phase=0.0)
    runner = asyncio.create_task(sched.run())
    while not gate.started:
        await asyncio.sleep(0.01)
    sched.stop()
    await runner
    await sched.drain(grace=0.05)
    assert sched.in_flight == 0
    assert j.running is False


def test_spread_is_even_statistically() -> None:
    schedule = Schedule()
    jobs = [job(f"k{i}", interval=1.0) for i in range(2000)]
    for j in jobs:
        schedule.add(j, now=0.0)
    assert abs(statistics.mean(j.next_due for j in jobs) - 0.5) < 0.03


async def test_a_probe_that_ignores_its_timeout_is_cancelled_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import monitor.scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "OVERRUN_GRACE", 0.05)
    got: list[ProbeResult] = []
    forever = asyncio.Event()

    async def stuck(_timeout: float) -> ProbeResult:
        await forever.wait()  # a buggy probe: never returns by itself
        raise AssertionError("unreachable")

    sched = Scheduler(lambda j, r, d: got.append(r), max_concurrency=5, max_per_host=5)
    sched.add(Job("a/b/c", "h", 3600.0, 0.1, stuck), phase=0.0)
    runner = asyncio.create_task(sched.run())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while not got and loop.time() < deadline:
        await asyncio.sleep(0.02)
    sched.stop()
    await runner
    assert got, "the watchdog did not cancel the stuck probe"
    assert got[0].ok is False and got[0].reason == "timeout after 100ms"
    assert sched.in_flight == 0


async def test_a_finished_run_is_never_mistaken_for_an_overrun(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression: a finished run's deadline stayed on the job, and the watchdog cancelled the
    # *next* run before its first step, leaving the check "running" forever: never probed again.
    import monitor.scheduler as scheduler_module

    monkeypatch.setattr(scheduler_module, "OVERRUN_GRACE", 0.01)
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def quick(_timeout: float) -> ProbeResult:
        return OK

    sched = Scheduler(lambda j, r, d: times.append(loop.time()), max_concurrency=5, max_per_host=5)
    sched.add(Job("a/b/c", "h", 0.2, 0.05, quick), phase=0.0)
    runner = asyncio.create_task(sched.run())
    deadline = loop.time() + 10
    while len(times) < 14 and loop.time() < deadline:  # spans several watchdog passes (1 s)
        await asyncio.sleep(0.05)
    sched.stop()
    await runner
    assert len(times) >= 14, f"the check stopped being probed after {len(times)} runs"
