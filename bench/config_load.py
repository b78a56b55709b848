"""Config load at 10,000 systems: parse + validate time, loop lag of a reload, memory.

    python bench/config_load.py [--systems 10000] [--runs 3]

Writes a registry of N systems (``config/registry.example.yaml``'s 54 bodies repeated with new
ids, comments included: 10,044 systems, 13,392 checks, 5.5 MB) and a main file including it,
in a temporary directory, then prints:

- ``load_config`` in process: best of ``--runs``, and its split (YAML, pydantic, cross-checks);
- the child-process load (``load_config_isolated``): wall time and the child's peak RSS (the
  parser's peak memory);
- the event loop's lag (a 5 ms ticker) while a reload loads the file, in a thread as
  ``Daemon.reload`` did (``asyncio.to_thread(load_config)``) and in a child process;
- the RSS a process keeps after loading the config in process vs from the child.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_registry(directory: Path, systems: int) -> Path:
    source = (ROOT / "config" / "registry.example.yaml").read_text(encoding="utf-8")
    body = source[source.index("agencies:\n") + len("agencies:\n") :]
    body = body.replace("[email, inbox]", "[inbox]")  # no channels.email in this main file
    per_copy = len(re.findall(r"^      - id: ", body, flags=re.MULTILINE))
    parts = ["schema_version: 1", "agencies:"]
    for copy in range(-(-systems // per_copy)):
        parts.append(
            re.sub(r"^(  - id: )([a-z0-9-]+)$", rf"\g<1>\g<2>-{copy}", body, flags=re.MULTILINE)
        )
    (directory / "registry.yaml").write_text("\n".join(parts), encoding="utf-8")
    main = directory / "npsp.yaml"
    main.write_text(f"state_db: {directory / 'state.db'}\ninclude: [registry.yaml]\n")
    return main


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def split(path: Path) -> str:
    from monitor.config import Config, crosscheck  # noqa: PLC0415
    from monitor.config import load as c  # noqa: PLC0415
    from monitor.yamlsource import DEFAULT_LIMITS, Mark  # noqa: PLC0415

    gc.disable()
    t0 = time.perf_counter()
    reader = c._Reader(DEFAULT_LIMITS)
    raw = reader.read_mapping(path)
    c._merge_includes(raw, path, reader)
    t1 = time.perf_counter()
    config = Config.model_validate(raw)
    t2 = time.perf_counter()
    crosscheck.cross_check(config, raw, Mark(str(path), 1), path.parent)
    t3 = time.perf_counter()
    gc.enable()
    return (
        f"YAML {t1 - t0:.3f} s ({reader.nodes:,} values), pydantic {t2 - t1:.3f} s, "
        f"cross-checks {t3 - t2:.3f} s"
    )


async def lag_during(load: object) -> tuple[float, float, float, int]:
    """(seconds the load took, p99 and max lag of a 5 ms ticker in ms, ticks)."""
    lags: list[float] = []

    async def tick() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await load  # type: ignore[misc]
    took = time.perf_counter() - started
    ticker.cancel()
    lags.sort()
    return took, lags[int(len(lags) * 0.99)] * 1000, lags[-1] * 1000, len(lags)


def rss_after(mode: str, path: Path) -> str:
    """In a fresh interpreter: RSS after importing, then after loading the config."""
    code = (
        "import gc, sys; sys.path.insert(0, sys.argv[3]);"
        "from pathlib import Path; from bench.config_load import rss_mb;"
        "from monitor.config import load_config;"
        "from monitor.config_loader import load_config_isolated_sync;"
        "before = rss_mb();"
        "load = load_config if sys.argv[1] == 'inproc' else load_config_isolated_sync;"
        "config = load(Path(sys.argv[2])); gc.collect();"
        "print(f'{before:.1f} MB before, {rss_mb():.1f} MB after')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, mode, str(path), str(ROOT)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--systems", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    from monitor.config import load_config  # noqa: PLC0415
    from monitor.config_loader import load_config_isolated, load_config_isolated_sync  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        path = write_registry(Path(tmp), a.systems)
        size = (Path(tmp) / "registry.yaml").stat().st_size
        config = load_config(path)
        systems = sum(len(ag.systems) for ag in config.agencies)
        checks = sum(len(s.checks) for ag in config.agencies for s in ag.systems)
        print(f"registry: {systems:,} systems, {checks:,} checks, {size / 1e6:.1f} MB")
        times = []
        for _ in range(a.runs):
            started = time.perf_counter()
            load_config(path)
            times.append(time.perf_counter() - started)
        print(
            f"load_config in process: best {min(times):.3f} s of {a.runs} "
            f"({max(times):.3f} s worst)"
        )
        print(f"  split: {split(path)}")
        started = time.perf_counter()
        load_config_isolated_sync(path)
        took = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"load_config_isolated_sync: {took:.3f} s; parser's peak RSS (child) {peak:.0f} MB")
        thread = asyncio.run(lag_during_thread(path, load_config))
        child = asyncio.run(lag_during(load_config_isolated(path)))
        for name, (took, p99, worst, ticks) in (
            ("reload in a thread (asyncio.to_thread)", thread),
            ("reload in a child (load_config_isolated)", child),
        ):
            print(
                f"{name}: {took:.3f} s; loop lag p99 {p99:.1f} ms, "
                f"max {worst:.1f} ms ({ticks} ticks)"
            )
        print(f"RSS, load in process:  {rss_after('inproc', path)}")
        print(f"RSS, load in a child:  {rss_after('isolated', path)}")


async def lag_during_thread(path: Path, load: object) -> tuple[float, float, float, int]:
    return await lag_during(asyncio.to_thread(load, path))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
