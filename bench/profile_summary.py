"""Summarise a ``py-spy record --format raw`` file: where the daemon's CPU goes.

    python bench/profile_summary.py PROFILE.txt[.gz] [--top 25]

Prints, per function (file:function, line numbers folded), the share of samples in which it is
on the stack (inclusive) and at the top of the stack (self), and a rough split by category.
py-spy skips idle samples, but a thread-pool worker blocked on its queue (the store's thread) is
sampled as busy; such stacks are dropped. With ``--native`` (bench/measure.py records that way)
OpenSSL, libuv and uvloop frames are visible too, so the shares are of the CPU the daemon used.
"""

from __future__ import annotations

import argparse
import gzip
import re
from collections import Counter

_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")
_IDLE = ("SimpleQueue_get", "PyThread_acquire_lock_timed")
# first match wins, checked against the whole stack
CATEGORIES = (
    ("OpenSSL (handshake, certificates, records)", ("libssl", "libcrypto", "_ssl.c")),
    ("asyncio.timeout machinery", ("asyncio/timeouts.py",)),
    ("dispatcher (Scheduler.run)", ("Scheduler.run",)),
    ("result handling (engine, state, lag metric)", ("Engine._on_result", "Histogram.observe")),
    ("/metrics", ("monitor/metrics.py", "prometheus_client/exposition")),
    ("probe code (Python)", ("probes/",)),
    ("scheduler per-run wrapper (_run_one, _guarded)", ("Scheduler._run_one", "_guarded")),
)


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    func, path = m.groups()
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{func}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    category: Counter[str] = Counter()
    total = dropped = 0
    opener = gzip.open if a.profile.endswith(".gz") else open
    with opener(a.profile, "rt") as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            if any(marker in stack for marker in _IDLE) or stack.endswith(
                "_worker (concurrent/futures/thread.py:81)"
            ):
                dropped += count
                continue
            frames = [frame_name(x) for x in stack.split(";")]
            for label, markers in CATEGORIES:
                if any(m in stack for m in markers):
                    category[label] += count
                    break
            else:
                category["other (event loop, libuv, syscalls, ...)"] += count
            total += count
            for name in set(frames):
                inclusive[name] += count
            own[frames[-1]] += count
    print(f"{total} samples (CPU-busy only; {dropped} idle thread-pool samples dropped)")
    print("\nby category (first match, in this order)")
    for label, _ in (*CATEGORIES, ("other (event loop, libuv, syscalls, ...)", ())):
        print(f"{100 * category[label] / max(1, total):10.1f}% | {label}")
    print("\ninclusive % | function")
    for name, count in inclusive.most_common(a.top):
        print(f"{100 * count / total:10.1f}% | {name}")
    print("\nself %      | function")
    for name, count in own.most_common(a.top):
        print(f"{100 * count / total:10.1f}% | {name}")


if __name__ == "__main__":
    main()
