"""Write a daemon config with N checks of the given kinds against the loopback nginx.

    python bench/gen_config.py OUT.yaml --kinds tcp,http,https --checks 10000 \
        --http-port 18080 --https-port 18443 --ca CA.pem --listen 127.0.0.1:19477 --db STATE.db

100 agencies x 10 systems x up to 10 checks each; with several kinds, check i gets kind
i mod len(kinds), so every system mixes them and each kind gets a third (3,334/3,333/3,333).
"""

from __future__ import annotations

import argparse
from pathlib import Path

AGENCIES = 100
CHECKS_PER_SYSTEM = 10


def check_line(kind: str, cid: str, a: argparse.Namespace) -> str:
    tls = f"tls: {{ca_file: {a.ca}, server_name: localhost}}"
    if kind == "tcp":
        return f"{{id: {cid}, kind: tcp, host: 127.0.0.1, port: {a.http_port}}}"
    if kind == "http":
        return f'{{id: {cid}, kind: http, url: "http://127.0.0.1:{a.http_port}/"}}'
    if kind == "https":
        return f'{{id: {cid}, kind: http, url: "https://127.0.0.1:{a.https_port}/", {tls}}}'
    if kind == "tls":
        return f"{{id: {cid}, kind: tls, host: 127.0.0.1, port: {a.https_port}, {tls}}}"
    raise SystemExit(f"unknown kind {kind}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--kinds", required=True)
    p.add_argument("--checks", type=int, required=True)
    p.add_argument("--http-port", type=int, default=18080)
    p.add_argument("--https-port", type=int, default=18443)
    p.add_argument("--ca", required=True)
    p.add_argument("--listen", default="127.0.0.1:19477")
    p.add_argument("--db", required=True)
    p.add_argument("--interval", default="10s")
    a = p.parse_args()
    kinds = a.kinds.split(",")

    lines = [
        "vantage: bench",
        f"listen: {a.listen}",
        f"state_db: {a.db}",
        "scheduler: {max_concurrency: 1000, max_per_host: 1000}",
        f"defaults: {{interval: {a.interval}, timeout: 5s, failure_threshold: 3, "
        "success_threshold: 1}",
        "agencies:",
    ]
    n = 0
    systems_per_agency = -(-a.checks // (AGENCIES * CHECKS_PER_SYSTEM))  # ceil
    systems_per_agency = max(systems_per_agency, 1)
    per_system = -(-a.checks // (AGENCIES * systems_per_agency))
    for ag in range(AGENCIES):
        if n >= a.checks:
            break
        lines += [
            f"  - id: bench-{ag:03d}",
            "    kind: ministry",
            f'    name_vi: "Bench {ag:03d}"',
            f'    name_en: "Bench {ag:03d}"',
            f'    code: "B{ag:03d}"',
            "    systems:",
        ]
        for sy in range(systems_per_agency):
            if n >= a.checks:
                break
            lines += [
                f"      - id: s-{ag:03d}-{sy:02d}",
                "        kind: other",
                f'        name: "s {ag:03d} {sy:02d}"',
                "        checks:",
            ]
            for c in range(per_system):
                if n >= a.checks:
                    break
                kind = kinds[n % len(kinds)]
                lines.append("          - " + check_line(kind, f"c{c:02d}-{kind}", a))
                n += 1
    a.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{a.out}: {n} checks ({','.join(kinds)})")


if __name__ == "__main__":
    main()
