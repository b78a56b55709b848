"""Run ``npsp-monitor`` unchanged, recording every garbage-collector pause (diagnosis only).

    NPSP_BENCH_GC_OUT=gc.json python bench/daemon_gc.py run -c CONFIG.yaml

With NPSP_BENCH_GC_FREEZE_AFTER=S it also calls ``gc.freeze()`` S seconds after start (from a
timer thread), to try what freezing the start-up objects (config, registry, probes) would do.

At exit, writes per generation: collections, total and longest pause, and the 20 longest
pauses with their time (monotonic) so they can be lined up with lag and /healthz stalls.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time

_pauses: list[tuple[float, int, float, int]] = []  # (start, generation, seconds, collected)
_start = [0.0]


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _start[0] = time.perf_counter()
    else:
        _pauses.append(
            (_start[0], info["generation"], time.perf_counter() - _start[0], info["collected"])
        )


def _dump() -> None:
    out = os.environ.get("NPSP_BENCH_GC_OUT")
    if not out:
        return
    summary = {}
    for gen in (0, 1, 2):
        p = sorted(s for _, g, s, _ in _pauses if g == gen)
        summary[f"gen{gen}"] = {
            "collections": len(p),
            "total_s": sum(p),
            "max_s": p[-1] if p else 0.0,
            "median_s": p[len(p) // 2] if p else 0.0,
        }
    longest = sorted(_pauses, key=lambda x: -x[2])[:20]
    summary["longest"] = [
        {"at": a, "generation": g, "seconds": s, "collected": c} for a, g, s, c in longest
    ]
    summary["gen2_pauses"] = [
        {"at": a, "generation": g, "seconds": s, "collected": c} for a, g, s, c in _pauses if g == 2
    ]
    summary["thresholds"] = gc.get_threshold()
    summary["tracked_objects_at_exit"] = len(gc.get_objects())
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)


gc.callbacks.append(_callback)
atexit.register(_dump)
if os.environ.get("NPSP_BENCH_GC_FREEZE_AFTER"):
    import threading

    _timer = threading.Timer(float(os.environ["NPSP_BENCH_GC_FREEZE_AFTER"]), gc.freeze)
    _timer.daemon = True
    _timer.start()

if __name__ == "__main__":
    from monitor.cli import main

    sys.argv[0] = "npsp-monitor"
    sys.exit(main())
