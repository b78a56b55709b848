"""Where the daemon's memory goes at 10,000 checks, stage by stage (diagnosis, no network).

    python bench/memory_breakdown.py CONFIG.yaml [--tracemalloc]

Stages: imports → load_config → Engine.start (registry, probes, state) → a full history
(engine.HISTORY results per check, fed through the engine like the scheduler does). Prints
VmRSS and the number of GC-tracked objects after each stage; with --tracemalloc (slow) also the
top allocation sites of what is alive at the end.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def report(stage: str) -> None:
    gc.collect()
    print(f"{stage:<42} RSS {rss_mb():7.1f} MB   GC-tracked objects {len(gc.get_objects()):>9,}")


async def main(config_path: Path, trace: bool) -> None:
    if trace:
        tracemalloc.start(8)
    # imported here so that tracemalloc sees the modules load
    from monitor.config import load_config  # noqa: PLC0415
    from monitor.engine import HISTORY, Engine  # noqa: PLC0415
    from monitor.metrics import DaemonMetrics  # noqa: PLC0415
    from monitor.store import Store  # noqa: PLC0415
    from npsp_common.types import ProbeResult  # noqa: PLC0415
    from probes import ProbeEnv  # noqa: PLC0415

    report("imports (monitor, probes, aiohttp, ...)")
    config = load_config(config_path)
    report("load_config (pydantic models)")
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(Path(tmp) / "state.db")
        metrics = DaemonMetrics()
        engine = Engine(config, store, ProbeEnv(), observe_lag=metrics.lag.observe)
        await engine.start()
        report("Engine.start (registry, jobs, probes, state)")
        jobs = engine.scheduler.jobs()
        expiry = time.time() + 90 * 86400
        for _ in range(HISTORY):
            for key, job in jobs.items():
                if "-https" in key:
                    result = ProbeResult(
                        True, f"HTTP {200}", 0.0012, cert_not_after=expiry, status_code=200
                    )
                elif "-http" in key:
                    result = ProbeResult(True, f"HTTP {200}", 0.0008, status_code=200)
                else:
                    result = ProbeResult(True, "connected", 0.0003)
                engine._on_result(job, result, 0.0)
        report(f"+ {HISTORY} results per check (history full)")
        if trace:
            snap = tracemalloc.take_snapshot()
            print("\ntop allocation sites alive at the end (tracemalloc, traceback grouped):")
            for stat in snap.statistics("filename")[:15]:
                frame = stat.traceback[0]
                print(f"{stat.size / 2**20:8.1f} MB {stat.count:>9,} blocks  {frame.filename}")
            print("\ntop lines:")
            for stat in snap.statistics("lineno")[:15]:
                frame = stat.traceback[0]
                print(
                    f"{stat.size / 2**20:8.1f} MB {stat.count:>9,} blocks  "
                    f"{frame.filename}:{frame.lineno}"
                )
        await store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("config", type=Path)
    p.add_argument("--tracemalloc", action="store_true")
    a = p.parse_args()
    import uvloop

    uvloop.run(main(a.config, a.tracemalloc))
