"""Print the summary (markdown) of one bench/results/<run>/ directory.

    python bench/summarize.py bench/results/<run>

Medians over the repetitions with (min-max); ratios are daemon median / blackbox median, with
the range of the per-repetition ratios (repetition i of both, run minutes apart) beside it.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

KINDS = ("tcp", "http", "https", "tls")
LABEL = {
    "tcp": "TCP connect",
    "http": "HTTP GET",
    "https": "HTTPS GET",
    "tls": "TLS handshake",
    "mixed": "mixed 10,000",
}
GOAL_RATIO = {"tcp": 0.5, "http": 0.5, "https": 0.8, "tls": 1.1}
NOISY = 0.5  # CPU-s used by others on the measured core in a 20 s window that we flag


def load(directory: Path) -> dict[tuple[str, str], list[dict]]:
    runs: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(directory.glob("*.json")):
        if not re.fullmatch(r"(daemon|blackbox)-[a-z]+-r\d+\.json", path.name):
            continue  # machine.json, metrics-stall.json, *.noisy.json (redone runs)
        data = json.loads(path.read_text())
        runs.setdefault((data["tool"], data["name"]), []).append(data)
    return runs


def values(runs: list[dict], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None]


def mmm(xs: list[float], fmt: str = "{:,.0f}", scale: float = 1.0) -> str:
    if not xs:
        return "-"
    xs = [x * scale for x in xs]
    med = fmt.format(statistics.median(xs))
    if len(xs) == 1:
        return med
    return f"{med} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**pass**" if ok else "**FAIL**")


def main() -> None:
    directory = Path(sys.argv[1])
    runs = load(directory)
    machine_path = directory / "machine.json"
    machine = json.loads(machine_path.read_text()) if machine_path.exists() else {}
    daemon = {name: rs for (tool, name), rs in runs.items() if tool == "npsp-monitor"}
    bb = {name: rs for (tool, name), rs in runs.items() if tool == "blackbox_exporter"}
    reps = max((len(rs) for rs in runs.values()), default=0)
    out: list[str] = []
    p = out.append

    p(f"# Bench summary — {directory.name}\n")
    if machine:
        p("Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + "\n")
    p(f"Medians of {reps} interleaved repetitions, (min–max) across them.\n")
    before, after = directory / "code-before.txt", directory / "code-after.txt"
    if before.exists():
        code = before.read_text().strip()
        p(f"Daemon code: HEAD + source digest `{code}`.\n")
        if after.exists() and after.read_text().strip() != code:
            p(
                f"**Warning: the daemon's sources changed during the bench** "
                f"(`{code}` → `{after.read_text().strip()}`).\n"
            )

    # --- CPU per probe vs blackbox ---
    p("## CPU per probe, paced at the daemon's rate (3,333 checks / 10 s = 333 probes/s)\n")
    p(
        "| kind | npsp-monitor µs/probe | blackbox_exporter µs/probe | ratio (per-rep range) "
        "| goal | verdict | probes ok (daemon / bb) |"
    )
    p("|---|---|---|---|---|---|---|")
    goals: list[tuple[str, str, str, bool | None]] = []
    for kind in KINDS:
        d, b = daemon.get(kind, []), bb.get(kind, [])
        dm, bm = med(values(d, "us_per_probe")), med(values(b, "us_per_probe"))
        ratio = dm / bm if dm and bm else None
        by_rep_b = {r["rep"]: r["us_per_probe"] for r in b}
        paired = [r["us_per_probe"] / by_rep_b[r["rep"]] for r in d if r["rep"] in by_rep_b]
        ok = ratio <= GOAL_RATIO[kind] if ratio is not None else None
        okd = f"{min(values(d, 'success_fraction'), default=float('nan')):.2%}"
        okb = f"{min(values(b, 'success_fraction'), default=float('nan')):.2%}"
        ratio_text = "-" if ratio is None else f"{ratio:.2f}×"
        if len(paired) > 1:
            ratio_text += f" ({min(paired):.2f}–{max(paired):.2f})"
        p(
            f"| {LABEL[kind]} | {mmm(values(d, 'us_per_probe'))} "
            f"| {mmm(values(b, 'us_per_probe'))} "
            f"| {ratio_text} | ≤ {GOAL_RATIO[kind]}× | {verdict(ok)} | {okd} / {okb} |"
        )
        goals.append(
            (
                f"CPU/probe {LABEL[kind]} vs blackbox",
                ratio_text.split(" ")[0],
                f"≤ {GOAL_RATIO[kind]}×",
                ok,
            )
        )
    mix = daemon.get("mixed", [])
    if mix and all(bb.get(k) for k in ("tcp", "http", "https")):
        thirds = ("tcp", "http", "https")
        bb_mix = statistics.mean(med(values(bb[k], "us_per_probe")) for k in thirds)
        dmix = med(values(mix, "us_per_probe"))
        p(
            f"| mixed 10,000 (⅓ each tcp/http/https) | {mmm(values(mix, 'us_per_probe'))} "
            f"| {bb_mix:,.0f} (mean of the three kinds) | {dmix / bb_mix:.2f}× | — | — | "
            f"{min(values(mix, 'success_fraction')):.2%} / — |"
        )
    p("")

    # --- daemon details ---
    p("## The daemon, per scenario (pinned to one core)\n")
    p(
        "| scenario | checks | probes/s | CPU of one core | lag p50 ms | lag p99 ms | lag > 100 ms "
        "| coalesced | RSS MB (max) | startup s | others' CPU on core 0, s |"
    )
    p("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in (*KINDS, "mixed"):
        rs = daemon.get(name, [])
        if not rs:
            continue
        p(
            f"| {LABEL[name]} | {rs[0]['checks']:,.0f} | {mmm(values(rs, 'probes_per_s'))} "
            f"| {mmm(values(rs, 'cpu_fraction'), '{:.2f}')} "
            f"| {mmm(values(rs, 'lag_p50_s'), '{:.2f}', 1e3)} "
            f"| {mmm(values(rs, 'lag_p99_s'), '{:.1f}', 1e3)} "
            f"| {mmm(values(rs, 'lag_over_100ms'))} | {mmm(values(rs, 'coalesced'))} "
            f"| {mmm(values(rs, 'rss_bytes_max'), '{:.0f}', 1 / 2**20)} "
            f"| {mmm(values(rs, 'startup_s'), '{:.1f}')} "
            f"| {mmm(values(rs, 'cpu_other_on_core_s'), '{:.2f}')} |"
        )
    p("")
    if bb:
        p(
            "blackbox_exporter runs: "
            + "; ".join(
                f"{k} RSS {mmm(values(bb[k], 'rss_bytes_end'), '{:.0f}', 1 / 2**20)} MB, "
                f"others' CPU on core 0 {mmm(values(bb[k], 'cpu_other_on_core_s'), '{:.2f}')} s"
                for k in KINDS
                if k in bb
            )
            + "\n"
        )

    # --- /metrics ---
    stall_path = directory / "metrics-stall.json"
    stall = json.loads(stall_path.read_text()) if stall_path.exists() else None
    if mix and "metrics_time_median_s" in mix[0]:
        p("## /metrics at 10,000 checks (scraped while the mixed daemon runs)\n")
        p("| measure | median (min–max) over repetitions | goal | verdict |")
        p("|---|---|---|---|")
        t = values(mix, "metrics_time_median_s")
        p(
            f"| scrape time, curl time_total (median of {len(mix[0]['metrics_time_s'])}) "
            f"| {mmm(t, '{:.1f}', 1e3)} ms | < 100 ms | {verdict(med(t) < 0.1)} |"
        )
        s_max = values(mix, "stall_max_s")
        s_med = values(mix, "stall_median_s")
        p(
            f"| stall: longest /healthz wait during a scrape, worst of the scrapes "
            f"| {mmm(s_max, '{:.1f}', 1e3)} ms | < 50 ms | {verdict(med(s_max) < 0.05)} |"
        )
        p(f"| stall: same, median scrape | {mmm(s_med, '{:.1f}', 1e3)} ms | | |")
        for label, key in (
            ("/healthz wait during scrapes, p99", "healthz_during_scrape_p99_s"),
            ("/healthz wait away from scrapes, p99", "healthz_no_scrape_p99_s"),
            ("/healthz wait away from scrapes, max", "healthz_no_scrape_max_s"),
        ):
            p(f"| {label} | {mmm(values(mix, key), '{:.1f}', 1e3)} ms | | |")
        p(f"| body size | {mmm(values(mix, 'metrics_bytes'), '{:,.0f}')} bytes | | |")
        goals.append(
            ("/metrics time (10,000 checks)", f"{med(t) * 1e3:.1f} ms", "< 100 ms", med(t) < 0.1)
        )
        if stall:
            goals.append(
                (
                    "/metrics event-loop stall: longest slice between yields (in process)",
                    f"{stall['longest_slice_median_s'] * 1e3:.1f} ms "
                    f"(max {stall['longest_slice_max_s'] * 1e3:.1f})",
                    "< 50 ms",
                    stall["longest_slice_max_s"] < 0.05,
                )
            )
        goals.append(
            (
                "/healthz wait during a scrape, worst scrape of a run (full daemon, stricter)",
                f"{med(s_max) * 1e3:.1f} ms",
                "< 50 ms",
                med(s_max) < 0.05,
            )
        )
        if stall:
            p(
                f"| in-process render (monitor.metrics.render), wall | "
                f"{stall['render_wall_median_s'] * 1e3:.1f} ms (median of {stall['reps']}) | | |"
            )
            p(f"| in-process render, CPU | {stall['render_cpu_median_s'] * 1e3:.1f} ms | | |")
            p(
                f"| in-process longest slice between yields | "
                f"{stall['longest_slice_median_s'] * 1e3:.1f} ms "
                f"(max {stall['longest_slice_max_s'] * 1e3:.1f}) | < 50 ms "
                f"| {verdict(stall['longest_slice_max_s'] < 0.05)} |"
            )
        p("")

    # --- SIGHUP reload (RELOAD=1) ---
    rel = [r for r in mix if "reload_window" in r]
    if rel:
        p("## SIGHUP reload of the same config (mixed 10,000, RELOAD=1)\n")
        p(
            f"Per run, two windows of {rel[0]['window_s']:.0f} s in the same daemon: the usual "
            f"one, then one with SIGHUP {rel[0]['reload_at_s']:g} s into it.\n"
        )
        p("| measure | window without reload | window with the reload |")
        p("|---|---|---|")
        win = [r["reload_window"] for r in rel]
        for label, key, fmt, scale in (
            ("lag p50 ms", "lag_p50_s", "{:.2f}", 1e3),
            ("lag p99 ms", "lag_p99_s", "{:.1f}", 1e3),
            ("highest non-empty lag bucket, ms", "lag_max_bucket_le_s", "{:.0f}", 1e3),
            ("lag > 100 ms (probe runs)", "lag_over_100ms", "{:.0f}", 1.0),
            ("probes/s", "probes_per_s", "{:,.0f}", 1.0),
            ("CPU of one core", "cpu_fraction", "{:.2f}", 1.0),
            ("RSS MB, max", "rss_bytes_max", "{:.0f}", 1 / 2**20),
            ("RSS MB, end", "rss_bytes_end", "{:.0f}", 1 / 2**20),
            ("VmHWM MB, after the window", "vm_hwm_bytes", "{:.0f}", 1 / 2**20),
            ("others' CPU on core 0, s", "cpu_other_on_core_s", "{:.2f}", 1.0),
        ):
            before, during = mmm(values(rel, key), fmt, scale), mmm(values(win, key), fmt, scale)
            p(f"| {label} | {before} | {during} |")
        added = [w["lag_p99_s"] - r["lag_p99_s"] for r, w in zip(rel, win, strict=True)]
        took = values(rel, "reload_s")
        outcomes = [str(r.get("reload_outcome_in_log")) for r in rel]
        p(
            f"\nReload, SIGHUP to the success timestamp on /metrics: {mmm(took, '{:.2f}')} s; "
            f"outcome in the log: {', '.join(outcomes)}; lag p99 added by the reload window: "
            f"{mmm(added, '{:+.1f}', 1e3)} ms. Error lines in the daemon logs: "
            f"{sum(int(r.get('log_problem_lines', 0)) for r in rel)}.\n"
        )
        goals.append(
            (
                "scheduler lag p99 added by a SIGHUP reload (mixed 10,000)",
                f"{med(added) * 1e3:+.1f} ms",
                "< 100 ms",
                med(added) < 0.1 and all(o == "reloaded" for o in outcomes),
            )
        )

    if mix:
        lag99 = med(values(mix, "lag_p99_s"))
        rss = med(values(mix, "rss_bytes_max"))
        goals.insert(
            0,
            ("scheduler lag p99 (mixed 10,000)", f"{lag99 * 1e3:.1f} ms", "< 100 ms", lag99 < 0.1),
        )
        goals.insert(
            1, ("RSS (mixed 10,000)", f"{rss / 2**20:.0f} MB", "< 150 MB", rss < 150 * 2**20)
        )
        cpu = med(values(mix, "cpu_fraction"))
        goals.insert(
            2,
            (
                "10,000 checks / 10 s on one core",
                f"{cpu:.2f} of a core",
                "< 1 core",
                cpu < 1.0 and med(values(mix, "lag_p99_s")) < 0.1,
            ),
        )
    gc_path, gc_run_path = directory / "gc-mixed.json", directory / "gc-daemon-mixed.json"
    if gc_path.exists() and gc_run_path.exists():
        gc_info, gc_run = json.loads(gc_path.read_text()), json.loads(gc_run_path.read_text())
        g2 = gc_info["gen2"]
        p("## Garbage collector (diagnosis run of the mixed daemon, bench/daemon_gc.py)\n")
        p(
            f"Full (generation 2) collections over the whole run (start-up included): "
            f"{g2['collections']}, median {g2['median_s'] * 1e3:.0f} ms, longest "
            f"{g2['max_s'] * 1e3:.0f} ms; generations 0/1 longest "
            f"{gc_info['gen0']['max_s'] * 1e3:.1f}/{gc_info['gen1']['max_s'] * 1e3:.1f} ms. "
            f"Lag > 100 ms in that run's window: {gc_run.get('lag_over_100ms', 0):.0f}."
        )
        windows = gc_run.get("scrape_windows_perf_counter", [])
        stalls = gc_run.get("stall_per_scrape_s", [])
        hit = []
        for (w0, w1), stall in zip(windows, stalls, strict=False):
            overlaps = any(
                g["generation"] == 2 and g["at"] <= w1 and g["at"] + g["seconds"] >= w0
                for g in gc_info.get("gen2_pauses", gc_info["longest"])
            )
            hit.append((overlaps, stall))
        with_gc = [st * 1e3 for o, st in hit if o]
        without = [st * 1e3 for o, st in hit if not o]
        if hit:
            p(
                f"Scrapes overlapping a full collection: {len(with_gc)} of {len(hit)}, their stall "
                f"{', '.join(f'{x:.0f}' for x in with_gc) or '-'} ms; the other scrapes' stall "
                f"median {statistics.median(without) if without else float('nan'):.0f} ms, "
                f"max {max(without, default=float('nan')):.0f} ms.\n"
            )
        else:
            p("")

    p("## Goals\n")
    p("| goal | measured (median) | target | verdict |")
    p("|---|---|---|---|")
    for what, measured, target, ok in goals:
        p(f"| {what} | {measured} | {target} | {verdict(ok)} |")
    p("")
    noisy = [
        f"{tool} {name} r{r['rep']} ({r['cpu_other_on_core_s']:.2f} s)"
        for (tool, name), rs in runs.items()
        for r in rs
        if r.get("cpu_other_on_core_s", 0) > NOISY
    ]
    if noisy:
        p("Noisy runs (others used > 0.5 CPU-s on the measured core): " + ", ".join(noisy) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
