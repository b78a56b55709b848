"""One measured run: the npsp-monitor daemon, or blackbox_exporter driven at a paced rate.

Run it pinned to CPU 1 (bench/run.sh does); the process under test is started pinned to CPU 0.

    measure.py daemon   --name mixed --config CFG.yaml --rate 1000 --out R.json [--scrapes 10]
    measure.py blackbox --name http --module http_2xx --target URL --rate 333.3 --out R.json

CPU = utime+stime of the process (all threads) from /proc/PID/stat over the measured window;
for the daemon the window starts after a warm-up of one full interval plus 2 s, for blackbox
after 2 s of paced warm-up, and it ends 0.5 s after the last answer. Probes: the daemon's
``npsp_probes_total`` delta between two scrapes bracketing the window (scrape, read CPU ...
read CPU, scrape: the scrapes' own cost stays outside), blackbox's answers counted by the driver.

``--reload-at S`` (daemon): after that window, a second one of the same length in the same
process, with SIGHUP sent to the daemon S seconds into it (a reload of the unchanged config):
its lag, CPU and RSS beside the first window's, and how long the reload took.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"


# ----- /proc readings ---------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """utime+stime in seconds of the whole process (every thread)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_status(pid: int, key: str) -> int:
    """A ``kB`` value of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_times(cpu: int) -> dict[str, float]:
    """The /proc/stat line of one CPU, in seconds, with the wall-clock time of the reading."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) / TICK for v in line.split()[1:9]]
                out = dict(zip(names, values, strict=True))
                out["wall"] = time.monotonic()
                return out
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def busy(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """(busy seconds, steal seconds) of a CPU between two readings.

    Busy = wall - idle - iowait - steal: with a tickless kernel the idle time is measured
    exactly, while the user/system ticks miss or over-count bursts shorter than a tick.
    """

    def d(key: str) -> float:
        return after[key] - before[key]

    return d("wall") - d("idle") - d("iowait") - d("steal"), d("steal")


def machine_busy(seconds: float = 1.0) -> float:
    """CPUs' worth of work done by everything on the machine during the next ``seconds``."""
    cpus = os.cpu_count() or 1
    before = [cpu_times(c) for c in range(cpus)]
    time.sleep(seconds)
    after = [cpu_times(c) for c in range(cpus)]
    return sum(busy(b, a)[0] for b, a in zip(before, after, strict=True)) / seconds


def wait_quiet(max_wait: float, threshold: float = 0.15) -> dict[str, float]:
    """Wait (bounded) until the machine is nearly idle: others' tests skew every figure."""
    start = time.monotonic()
    load = machine_busy()
    while load > threshold and time.monotonic() - start < max_wait:
        load = machine_busy()
    return {"quiet_wait_s": time.monotonic() - start, "machine_busy_before": load}


# ----- Prometheus text ----------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[str, list[tuple[str, float]]]:
    out: dict[str, list[tuple[str, float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m:
            out.setdefault(m.group(1), []).append((m.group(2) or "", float(m.group(3))))
    return out


def scalar(metrics: dict[str, list[tuple[str, float]]], name: str) -> float:
    values = metrics.get(name)
    return values[0][1] if values else float("nan")


def buckets(metrics: dict[str, list[tuple[str, float]]], name: str) -> list[tuple[float, float]]:
    out = []
    for labels, value in metrics.get(name + "_bucket", []):
        le = re.search(r'le="([^"]+)"', labels)
        if le:
            out.append((float(le.group(1)), value))
    return sorted(out)


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    if not cumulative or cumulative[-1][1] <= 0:
        return float("nan")
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for le, count in cumulative:
        if count >= rank:
            if le == float("inf"):
                return lower  # in the +Inf bucket: the highest finite bound, as Prometheus does
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


def lag_summary(m0: dict, m1: dict) -> dict[str, float]:
    b0 = dict(buckets(m0, "npsp_scheduler_lag_seconds"))
    b1 = buckets(m1, "npsp_scheduler_lag_seconds")
    delta = [(le, count - b0.get(le, 0.0)) for le, count in b1]
    total = delta[-1][1] if delta else 0.0
    top = max((le for le, c in _per_bucket(delta) if c > 0), default=float("nan"))
    s = scalar(m1, "npsp_scheduler_lag_seconds_sum") - scalar(m0, "npsp_scheduler_lag_seconds_sum")
    return {
        "lag_p50_s": quantile(0.50, delta),
        "lag_p99_s": quantile(0.99, delta),
        "lag_mean_s": s / total if total else float("nan"),
        "lag_max_bucket_le_s": top,  # the upper bound of the highest non-empty bucket
        "lag_over_100ms": total - dict(delta).get(0.1, 0.0),
        "lag_observations": total,
    }


def _per_bucket(cumulative: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, prev = [], 0.0
    for le, count in cumulative:
        out.append((le, count - prev))
        prev = count
    return out


def success_by_kind(m: dict) -> dict[str, dict[str, int]]:
    """npsp_probe_success per kind (the bench names checks cNN-KIND): {kind: {ok, total}}."""
    out: dict[str, dict[str, int]] = {}
    for labels, value in m.get("npsp_probe_success", []):
        cid = re.search(r'check="[^"]*-([a-z]+)"', labels)
        kind = cid.group(1) if cid else "?"
        entry = out.setdefault(kind, {"ok": 0, "total": 0})
        entry["total"] += 1
        entry["ok"] += int(value == 1)
    return out


def fetch(url: str, timeout: float = 30.0) -> tuple[str, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:  # loopback only
        body = r.read().decode()
    return body, time.perf_counter() - start


# ----- the daemon -------------------------------------------------------------------------------


class Pinger(threading.Thread):
    """GET /healthz on one keep-alive connection every ``gap`` s; records (start, latency).

    /healthz costs the daemon almost nothing, so its latency is the time the event loop took to
    get to it: while /metrics is rendered, the longest latency is the longest render slice.
    """

    def __init__(self, host: str, port: int, gap: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.gap = host, port, gap
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        while not self.stop.is_set():
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.samples.append((start, time.perf_counter() - start))
            time.sleep(self.gap)
        conn.close()


def _pct(xs: list[float], q: float) -> float | None:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else None


def scrape_timings(base: str, n: int, pid: int) -> dict[str, object]:
    """``curl -w '%{time_total}'`` n times, 0.7 s apart, with a /healthz pinger throughout.

    The pings that overlap a scrape show the loop's stalls during the scrape; the pings at least
    0.1 s away from any scrape show the same loop without one (the probes' own bursts).
    """
    host, port = base.split("//")[1].split(":")
    pinger = Pinger(host, int(port))
    pinger.start()
    time.sleep(1.0)
    windows, times, sizes = [], [], []
    cpu_before = proc_cpu(pid)
    for _ in range(n):
        start = time.perf_counter()
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}",
             base + "/metrics"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        end = time.perf_counter()
        windows.append((start, end))
        times.append(float(out[0]))
        sizes.append(int(out[1]))
        time.sleep(0.7)
    cpu_after = proc_cpu(pid)
    pinger.stop.set()
    pinger.join()
    samples = pinger.samples
    stalls, during = [], []
    for w0, w1 in windows:
        overlapping = [lat for s, lat in samples if s + lat >= w0 and s <= w1]
        during += overlapping
        stalls.append(max(overlapping) if overlapping else float("nan"))
    away = [
        lat for s, lat in samples if all(s + lat < w0 - 0.1 or s > w1 + 0.1 for w0, w1 in windows)
    ]
    return {
        "metrics_time_s": times,
        "metrics_time_median_s": statistics.median(times),
        "metrics_bytes": statistics.median(sizes),
        "stall_per_scrape_s": stalls,
        "scrape_windows_perf_counter": windows,  # to line up with bench/daemon_gc.py pauses
        "stall_median_s": statistics.median(stalls),
        "stall_max_s": max(stalls),
        "healthz_during_scrape_p50_s": _pct(during, 0.5),
        "healthz_during_scrape_p99_s": _pct(during, 0.99),
        "healthz_no_scrape_p50_s": _pct(away, 0.5),
        "healthz_no_scrape_p99_s": _pct(away, 0.99),
        "healthz_no_scrape_max_s": max(away) if away else None,
        "healthz_pings": [len(during), len(away)],
        # CPU of the scrape phase (the scrapes plus probing for ~n*0.7 s): context only
        "scrape_phase_cpu_s": cpu_after - cpu_before,
    }


def run_daemon(a: argparse.Namespace) -> dict[str, object]:
    base = f"http://{a.listen}"
    log = open(a.log, "w") if a.log else subprocess.DEVNULL  # noqa: SIM115
    daemon = [str(VENV_BIN / "npsp-monitor")]
    if a.wrapper:  # e.g. bench/daemon_gc.py: the same daemon, instrumented from outside
        daemon = [str(VENV_BIN / "python"), a.wrapper]
    cmd = ["taskset", "-c", str(a.cpu), *daemon, "run", "-c", a.config]
    if a.fresh_db:  # every run starts from an empty state database
        for suffix in ("", "-wal", "-shm"):
            Path(a.fresh_db + suffix).unlink(missing_ok=True)
    quiet = wait_quiet(a.quiet_wait)
    t_spawn = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    result: dict[str, object] = {"tool": "npsp-monitor", "name": a.name, "command": cmd, **quiet}
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited with {proc.returncode} (see {a.log})")
            try:
                fetch(base + "/healthz", 2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("daemon not ready in 120 s") from None
                time.sleep(0.2)
        result["startup_s"] = time.perf_counter() - t_spawn
        time.sleep(a.interval + a.warmup)
        # window: scrape, CPU ... CPU, scrape
        text0, t_scrape0 = fetch(base + "/metrics")
        m0 = parse_metrics(text0)
        c0, s0, w0 = proc_cpu(proc.pid), cpu_times(a.cpu), time.perf_counter()
        rss = []
        while time.perf_counter() - w0 < a.window:
            time.sleep(min(1.0, max(0.0, a.window - (time.perf_counter() - w0))))
            rss.append(proc_status(proc.pid, "VmRSS"))
        c1, s1, w1 = proc_cpu(proc.pid), cpu_times(a.cpu), time.perf_counter()
        text1, t_scrape1 = fetch(base + "/metrics")
        m1 = parse_metrics(text1)
        cpu = c1 - c0
        wall = w1 - w0
        probes = scalar(m1, "npsp_probes_total") - scalar(m0, "npsp_probes_total")
        cpu_busy, steal = busy(s0, s1)
        ok = success_by_kind(m1)
        result.update(
            {
                "checks": scalar(m1, "npsp_checks"),
                "window_s": wall,
                "cpu_s": cpu,
                "cpu_fraction": cpu / wall,
                "probes": probes,
                "probes_per_s": probes / wall,
                "expected_probes_per_s": a.rate,
                "us_per_probe": 1e6 * cpu / probes if probes else None,
                "coalesced": scalar(m1, "npsp_scheduler_coalesced_total")
                - scalar(m0, "npsp_scheduler_coalesced_total"),
                "success": ok,
                "success_fraction": sum(v["ok"] for v in ok.values())
                / max(1, sum(v["total"] for v in ok.values())),
                "rss_bytes_max": max(rss),
                "rss_bytes_end": rss[-1],
                "vm_hwm_bytes": proc_status(proc.pid, "VmHWM"),
                "cpu_other_on_core_s": cpu_busy - cpu,  # someone else's work on the daemon's CPU
                "steal_s": steal,
                "window_scrape_s": [t_scrape0, t_scrape1],
                **lag_summary(m0, m1),
            }
        )
        if a.reload_at is not None:
            result.update(reload_window(a, proc.pid, base, m1))
        if a.scrapes:
            result.update(scrape_timings(base, a.scrapes, proc.pid))
        if a.profile:
            subprocess.run(
                [str(VENV_BIN / "py-spy"), "record", "--pid", str(proc.pid), "--duration",
                 str(a.profile_seconds), "--rate", "100", "--native", "--format", "raw", "-o",
                 a.profile],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if a.log:
        result.update(log_problems(Path(a.log)))
    return result


RELOAD_TS = "npsp_config_last_reload_success_timestamp_seconds"
_OUTCOMES = (
    ("config reloaded", "reloaded"),
    ("config reload rejected", "rejected"),
    ("config reload failed", "failed"),
)


class LogTail:
    """New lines of the daemon's log file since the tail was made (a cheap read on CPU 1)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = path.stat().st_size if path else 0
        self.rest = b""

    def lines(self) -> list[str]:
        if self.path is None:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *complete, self.rest = (self.rest + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in complete]


def reload_window(a: argparse.Namespace, pid: int, base: str, m_start: dict) -> dict[str, object]:
    """A second window (``a.window`` s, right after the first): SIGHUP ``a.reload_at`` s into it.

    Nothing polls /metrics during the window (a scrape at 10,000 checks holds the loop for tens
    of ms and would add its own lag): the reload's duration is read from the value of
    ``npsp_config_last_reload_success_timestamp_seconds`` in the scrape that closes the window
    (the daemon sets it, with time.time(), the moment it has installed the new config; it is on
    /metrics from then on) minus the time the signal was sent. The log is tailed meanwhile for
    the "config reloaded" / "rejected" / "failed" line.
    """
    tail = LogTail(Path(a.log) if a.log else None)
    ts0 = scalar(m_start, RELOAD_TS)
    c0, s0, w0 = proc_cpu(pid), cpu_times(a.cpu), time.perf_counter()
    rss: list[int] = []
    next_rss = w0 + 1.0
    sent_unix: float | None = None
    sent_at: float | None = None
    outcome: str | None = None
    outcome_after: float | None = None
    reload_lines: list[str] = []
    while (now := time.perf_counter()) - w0 < a.window:
        if sent_at is None and now - w0 >= a.reload_at:
            sent_unix, sent_at = time.time(), time.perf_counter()
            os.kill(pid, signal.SIGHUP)
        if sent_at is not None:
            for line in tail.lines():
                if "reload" in line or "Traceback" in line or "level=error" in line:
                    reload_lines.append(line[:1000])
                for text, name in _OUTCOMES:
                    if outcome is None and text in line:
                        outcome, outcome_after = name, time.perf_counter() - sent_at
        if now >= next_rss:
            rss.append(proc_status(pid, "VmRSS"))
            next_rss += 1.0
        time.sleep(0.02)
    c1, s1, w1 = proc_cpu(pid), cpu_times(a.cpu), time.perf_counter()
    text, t_scrape = fetch(base + "/metrics")
    m_end = parse_metrics(text)
    ts1 = scalar(m_end, RELOAD_TS)
    in_window = ts1 != ts0
    polled = 0
    deadline = time.monotonic() + 60
    while not in_window and outcome in (None, "reloaded") and time.monotonic() < deadline:
        time.sleep(0.5)  # not done within the window: wait for it, outside the window
        ts1 = scalar(parse_metrics(fetch(base + "/metrics")[0]), RELOAD_TS)
        polled += 1
        if ts1 != ts0:
            break
    for line in tail.lines():
        if "reload" in line or "Traceback" in line or "level=error" in line:
            reload_lines.append(line[:1000])
    cpu = c1 - c0
    wall = w1 - w0
    cpu_busy, steal = busy(s0, s1)
    probes = scalar(m_end, "npsp_probes_total") - scalar(m_start, "npsp_probes_total")
    ok = success_by_kind(m_end)
    lag = lag_summary(m_start, m_end)
    return {
        "reload_at_s": a.reload_at,
        "reload_sighup_unix": sent_unix,
        "reload_outcome_in_log": outcome,
        "reload_log_line_after_s": outcome_after,
        "reload_metric_changed": ts1 != ts0,
        "reload_metric_changed_in_window": in_window,
        "reload_metric_polls_after_window": polled,
        # the success timestamp the daemon published minus the moment SIGHUP was sent
        "reload_s": ts1 - sent_unix if ts1 != ts0 and sent_unix else None,
        "reload_log_lines": reload_lines[:20],
        "reload_window": {
            "window_s": wall,
            "cpu_s": cpu,
            "cpu_fraction": cpu / wall,
            "probes": probes,
            "probes_per_s": probes / wall,
            "us_per_probe": 1e6 * cpu / probes if probes else None,
            "coalesced": scalar(m_end, "npsp_scheduler_coalesced_total")
            - scalar(m_start, "npsp_scheduler_coalesced_total"),
            "checks": scalar(m_end, "npsp_checks"),
            "success_fraction": sum(v["ok"] for v in ok.values())
            / max(1, sum(v["total"] for v in ok.values())),
            "rss_bytes": rss,
            "rss_bytes_max": max(rss),
            "rss_bytes_end": rss[-1],
            "vm_hwm_bytes": proc_status(pid, "VmHWM"),
            "cpu_other_on_core_s": cpu_busy - cpu,
            "steal_s": steal,
            "window_scrape_s": t_scrape,
            **lag,
        },
    }


def log_problems(path: Path) -> dict[str, object]:
    """Tracebacks and error lines in the daemon's log (the whole run, start to stop)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    bad = [ln for ln in lines if "Traceback" in ln or "level=error" in ln or "level=critical" in ln]
    return {"log_problem_lines": len(bad), "log_problems": [ln[:2000] for ln in bad[:10]]}


# ----- blackbox_exporter --------------------------------------------------------------------------


async def drive(a: argparse.Namespace, pid: int) -> dict[str, object]:
    import aiohttp  # noqa: PLC0415

    url = f"http://{a.listen}/probe"
    params = {"module": a.module, "target": a.target}
    stats = {"ok": 0, "failed": 0, "errors": 0}
    sample_failure: list[str] = []

    async def one(session: aiohttp.ClientSession, count: bool) -> None:
        try:
            async with session.get(url, params=params) as r:
                body = await r.text()
            good = r.status == 200 and "\nprobe_success 1\n" in body
        except aiohttp.ClientError as exc:
            good, body = False, repr(exc)
            stats["errors"] += count
        if count:
            stats["ok" if good else "failed"] += 1
        if not good and not sample_failure:
            sample_failure.append(body[-400:])

    async def paced(session: aiohttp.ClientSession, seconds: float, count: bool) -> float:
        loop = asyncio.get_running_loop()
        n = round(seconds * a.rate)
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time()
        for i in range(n):
            delay = start + i / a.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(session, count))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)
        return loop.time() - start

    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await paced(session, a.bb_warmup, count=False)
        await asyncio.sleep(0.2)
        c0, s0 = proc_cpu(pid), cpu_times(a.cpu)
        d0 = time.process_time()
        wall = await paced(session, a.window, count=True)
        await asyncio.sleep(0.5)  # aborted in-flight work is charged to the exporter
        c1, s1 = proc_cpu(pid), cpu_times(a.cpu)
        d1 = time.process_time()
    probes = stats["ok"] + stats["failed"]
    cpu = c1 - c0
    cpu_busy, steal = busy(s0, s1)
    return {
        "window_s": wall,
        "cpu_s": cpu,
        "cpu_fraction": cpu / (wall + 0.5),
        "probes": probes,
        "probes_ok": stats["ok"],
        "probes_failed": stats["failed"],
        "client_errors": stats["errors"],
        "success_fraction": stats["ok"] / max(1, probes),
        "sample_failure": sample_failure[0] if sample_failure else None,
        "probes_per_s": probes / wall,
        "expected_probes_per_s": a.rate,
        "us_per_probe": 1e6 * cpu / probes if probes else None,
        "rss_bytes_end": proc_status(pid, "VmRSS"),
        "vm_hwm_bytes": proc_status(pid, "VmHWM"),
        "cpu_other_on_core_s": cpu_busy - cpu,
        "steal_s": steal,
        "driver_cpu_s": d1 - d0,
    }


def run_blackbox(a: argparse.Namespace) -> dict[str, object]:
    log = open(a.log, "w") if a.log else subprocess.DEVNULL  # noqa: SIM115
    cmd = [
        "taskset", "-c", str(a.cpu), a.exporter,
        f"--config.file={a.bb_config}", f"--web.listen-address={a.listen}", "--log.level=warn",
    ]  # fmt: skip
    quiet = wait_quiet(a.quiet_wait)
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    result: dict[str, object] = {
        **quiet,
        "tool": "blackbox_exporter",
        "name": a.name,
        "module": a.module,
        "target": a.target,
        "command": cmd,
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"blackbox_exporter exited with {proc.returncode}")
            try:
                fetch(f"http://{a.listen}/-/healthy", 2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("blackbox_exporter not ready in 30 s") from None
                time.sleep(0.1)
        try:
            import uvloop  # noqa: PLC0415

            result.update(uvloop.run(drive(a, proc.pid)))
        except ImportError:
            result.update(asyncio.run(drive(a, proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("daemon")
    d.add_argument("--config", required=True)
    d.add_argument("--listen", default="127.0.0.1:19477")
    d.add_argument("--interval", type=float, default=10.0)
    d.add_argument("--warmup", type=float, default=2.0, help="seconds beyond one interval")
    d.add_argument("--scrapes", type=int, default=0, help="timed /metrics scrapes after")
    d.add_argument("--profile", help="py-spy raw output file (after the window)")
    d.add_argument("--profile-seconds", type=int, default=20)
    d.add_argument("--fresh-db", help="state database to delete before the start")
    d.add_argument("--wrapper", help="python script to run the daemon through (diagnosis)")
    d.add_argument(
        "--reload-at",
        type=float,
        help="a second window after the first, with SIGHUP (config reload) this many s into it",
    )
    b = sub.add_parser("blackbox")
    b.add_argument("--module", required=True)
    b.add_argument("--target", required=True)
    b.add_argument("--listen", default="127.0.0.1:19115")
    b.add_argument("--bb-config", default=str(ROOT / "bench" / "blackbox.yml"))
    b.add_argument("--exporter", default="/usr/bin/prometheus-blackbox-exporter")
    b.add_argument("--bb-warmup", type=float, default=2.0)
    for q in (d, b):
        q.add_argument("--name", required=True)
        q.add_argument("--rate", type=float, required=True, help="probes/s expected or driven")
        q.add_argument("--window", type=float, default=20.0)
        q.add_argument("--cpu", type=int, default=0, help="CPU the process under test runs on")
        q.add_argument("--rep", type=int, default=0)
        q.add_argument("--quiet-wait", type=float, default=30.0, help="max s to wait for idle")
        q.add_argument("--log")
        q.add_argument("--out", required=True)
    a = p.parse_args()
    result = run_daemon(a) if a.what == "daemon" else run_blackbox(a)
    result.update({"rep": a.rep, "rate": a.rate, "finished": time.strftime("%FT%T%z")})
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    brief = {k: result.get(k) for k in ("name", "us_per_probe", "probes", "success_fraction")}
    print(f"{result['tool']}: {brief}", file=sys.stderr)


if __name__ == "__main__":
    main()
