"""Run ``npsp-monitor`` unchanged, timing the parts of every SIGHUP reload (diagnosis only).

    NPSP_BENCH_RELOAD_OUT=reload.json python bench/daemon_reload_timing.py run -c CONFIG.yaml

(``measure.py daemon --wrapper bench/daemon_reload_timing.py --reload-at 5 ...``.) Wraps, from
outside and without changing them, ``Daemon.reload`` and its steps — ``load_config_isolated``
(the child process, then the sliced unpickling), ``Engine.apply`` (with
``Registry.from_config``), ``_freeze_heap`` (``gc.collect()`` + ``gc.freeze()``) — and records
the garbage collector's pauses over 5 ms and the event loop's gaps over 10 ms (a task that sleeps
1 ms; a gap is the time between its turns minus that 1 ms), each with its ``perf_counter`` time,
and ``gc.get_freeze_count()`` after each freeze. At exit it writes them, with the loader
children's CPU time (``RUSAGE_CHILDREN``), as JSON.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import monitor.app as app
import monitor.config_loader as config_loader
from monitor.engine import Engine
from monitor.registry import Registry

_steps: list[dict[str, Any]] = []  # {"step", "at", "seconds"}
_gaps: list[tuple[float, float]] = []  # (at, seconds) of event-loop gaps > 10 ms
_gc: list[tuple[float, int, float]] = []  # (at, generation, seconds) of pauses > 5 ms
_gc_start = [0.0]


def _record(step: str, start: float) -> None:
    _steps.append({"step": step, "at": start, "seconds": time.perf_counter() - start})


def _sync(owner: Any, name: str, step: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _record(step, start)

    setattr(owner, name, wrapper)


def _async(owner: Any, name: str, step: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            _record(step, start)

    setattr(owner, name, wrapper)


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    elif (seconds := time.perf_counter() - _gc_start[0]) > 0.005:
        _gc.append((_gc_start[0], info["generation"], seconds))


async def _ticker() -> None:
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        gap = time.perf_counter() - start - 0.001
        if gap > 0.010:
            _gaps.append((start, gap))


def _with_ticker(run: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.create_task(_ticker())
        try:
            return await run(*args, **kwargs)
        finally:
            task.cancel()

    return wrapper


def _dump() -> None:
    out = os.environ.get("NPSP_BENCH_RELOAD_OUT")
    if not out:
        return
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    reloads = [s for s in _steps if s["step"] == "Daemon.reload"]

    def inside(at: float) -> bool:
        return any(r["at"] <= at <= r["at"] + r["seconds"] for r in reloads)

    summary = {
        "steps": _steps[-50:],
        "loop_gaps_during_reload": [(at, s) for at, s in _gaps if inside(at)],
        "loop_gaps_elsewhere_max_s": max((s for at, s in _gaps if not inside(at)), default=0.0),
        "loop_gaps_elsewhere_count": sum(1 for at, _ in _gaps if not inside(at)),
        "gc_pauses_during_reload": [p for p in _gc if inside(p[0])],
        "gc_pauses_elsewhere_max_s": max((p[2] for p in _gc if not inside(p[0])), default=0.0),
        # both loader children (start-up and the reload): user + system CPU seconds
        "children_cpu_s": children.ru_utime + children.ru_stime,
        # grows by the whole old heap at every reload if the old config is never freed
        "freeze_count_after_each_freeze": _freeze_counts,
        "children_maxrss_kb": children.ru_maxrss,
    }
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)


_async(app.Daemon, "reload", "Daemon.reload")
_async(app, "load_config_isolated", "load_config_isolated")
_sync(config_loader, "_unpickle", "_unpickle")
_async(Engine, "apply", "Engine.apply")
_sync(app, "_freeze_heap", "_freeze_heap")
_freeze_counts: list[int] = []  # gc.get_freeze_count() after each _freeze_heap (start, reloads)
_freeze = app._freeze_heap


def _freeze_and_count() -> None:
    _freeze()
    _freeze_counts.append(gc.get_freeze_count())


app._freeze_heap = _freeze_and_count
original_from_config = Registry.from_config


def _from_config(*args: Any, **kwargs: Any) -> Registry:
    start = time.perf_counter()
    try:
        return original_from_config(*args, **kwargs)
    finally:
        _record("Registry.from_config", start)


Registry.from_config = staticmethod(_from_config)  # type: ignore[method-assign,assignment]
app.Daemon.run = _with_ticker(app.Daemon.run)  # type: ignore[method-assign]
gc.callbacks.append(_gc_callback)
atexit.register(_dump)

if __name__ == "__main__":
    from monitor.cli import main

    sys.argv[0] = "npsp-monitor"
    sys.exit(main())
