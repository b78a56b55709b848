"""In-process: how long can rendering /metrics keep the event loop from everything else?

    python bench/metrics_stall.py CONFIG.yaml [--reps 10] [--out R.json]

Builds the daemon's real Engine and DaemonMetrics for CONFIG (10,000 checks in the bench),
gives every check a result (successes, with a certificate expiry for http/tls checks), then
renders /metrics with ``monitor.metrics.render`` --- the generator the /metrics handler streams
--- while a heartbeat task that does nothing but ``await asyncio.sleep(0)`` records the time
between its turns. The longest gap is the longest stretch the loop could not run anything else
(a probe's callback, the dispatcher): the stall a scrape causes. The text is encoded as the
handler does; the socket write is not included (bench/measure.py measures the whole path from
outside, with /healthz pings during real scrapes).
Runs on uvloop like the daemon, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from monitor.config import load_config
from monitor.engine import Engine
from monitor.metrics import DaemonMetrics, render
from monitor.store import Store
from npsp_common.types import ProbeResult
from probes import ProbeEnv


async def heartbeat(gaps: list[float], stop: asyncio.Event) -> None:
    """Yield to the loop over and over; record the time between two turns."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0)
        t = time.perf_counter()
        gaps.append(t - last)
        last = t


async def measure(config_path: Path, reps: int) -> dict[str, object]:
    config = load_config(config_path)
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "state.db")
        metrics = DaemonMetrics()
        engine = Engine(config, store, ProbeEnv(), observe_lag=metrics.lag.observe)
        metrics.engine = engine
        await engine.start()
        now = time.time()
        expiry = now + 90 * 86400
        for key, job in engine.scheduler.jobs().items():
            kind = engine.registry.checks[key].kind
            tls = kind == "tls" or "-https" in key
            result = ProbeResult(True, "ok", 0.00123, cert_not_after=expiry if tls else None)
            engine._on_result(job, result, 0.0)  # the scheduler's own path into the engine
        for _ in range(10_000):
            metrics.lag.observe(0.0005)

        runs = []
        for _ in range(reps):
            gaps: list[float] = []
            stop = asyncio.Event()
            beat = asyncio.create_task(heartbeat(gaps, stop))
            await asyncio.sleep(0)
            w0, c0 = time.perf_counter(), time.process_time()
            size = 0
            async for chunk in render(engine, metrics):
                size += len(chunk.encode())
            w1, c1 = time.perf_counter(), time.process_time()
            stop.set()
            await beat
            runs.append(
                {
                    "render_wall_s": w1 - w0,
                    "render_cpu_s": c1 - c0,
                    "longest_slice_s": max(gaps),
                    "slices": len(gaps),
                    "bytes": size,
                }
            )
        await store.close()

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return {
        "checks": len(engine.registry.checks),
        "reps": reps,
        "runs": runs,
        "render_wall_median_s": med("render_wall_s"),
        "render_cpu_median_s": med("render_cpu_s"),
        "longest_slice_median_s": med("longest_slice_s"),
        "longest_slice_max_s": max(r["longest_slice_s"] for r in runs),
        "bytes": runs[0]["bytes"],
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config", type=Path)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    import uvloop  # noqa: PLC0415

    result = uvloop.run(measure(a.config, a.reps))
    text = json.dumps(result, indent=1)
    if a.out:
        a.out.write_text(text + "\n", encoding="utf-8")
    brief = {k: v for k, v in result.items() if k != "runs"}
    print(json.dumps(brief))


if __name__ == "__main__":
    main()
