"""Alert storm benchmark: 10,000 state changes -> digests -> outbox -> real channels -> local sinks.

Measures (in one process, uvloop):
  * handling cost of the state changes: saved to the store in batches (as the engine does,
    before anything reads them), then the pipeline (route + group), per event;
  * state change -> outbox latency with group_wait 0 (p50/p99), i.e. the pipeline's own delay
    beyond the grouping wait a user configures;
  * the time until every notification reached the local SMTP and Twilio-API sinks;
  * messages sent versus a naive one-message-per-event-per-recipient-channel count.

Run: .venv/bin/python bench/storm.py [--events 10000] [--agencies 54]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.alerting.channels import Channels
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.config import Config
from monitor.demo_sinks import DEMO_ACCOUNT_SID, DEMO_TOKEN, MailSink, SmsSink
from monitor.registry import Registry
from monitor.state import Event, State
from monitor.store import Store


def build_config(events: int, agencies: int, mail: MailSink, sms: SmsSink, token: Path) -> Config:
    per = -(-events // agencies)
    return Config.model_validate(
        {
            "agencies": [
                {
                    "id": f"ag-{a:02d}",
                    "kind": "province",
                    "name_vi": f"Tỉnh {a}",
                    "name_en": f"Province {a}",
                    "code": f"{a:02d}",
                    "contacts": [
                        {
                            "name": f"KT {a}",
                            "role": "technical-admin",
                            "phone": f"+8400000{a:04d}",
                            "email": f"kt@ag-{a:02d}.dvc.example",
                            "portal_account": f"kt.ag-{a:02d}",
                            "channels": ["sms", "email", "inbox"],
                        }
                    ],
                    "systems": [
                        {
                            "id": f"s{s:04d}",
                            "kind": "other",
                            "name": f"Hệ thống {s}",
                            "checks": [
                                {"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}
                            ],
                        }
                        for s in range(per)
                    ],
                }
                for a in range(agencies)
            ],
            "alerting": {
                "operations": [
                    {"name": "VPCP", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
                ],
                "group_wait": "1ms",
                "group_interval": "5m",
            },
            "channels": {
                "email": {
                    "host": "127.0.0.1",
                    "port": mail.port,
                    "security": "none",
                    "from_addr": "g@npsp.dvc.example",
                },
                "sms": {
                    "account_sid": DEMO_ACCOUNT_SID,
                    "auth_token": {"file": str(token)},
                    "from_number": "+84000000000",
                    "api_base_url": f"http://127.0.0.1:{sms.port}",
                },
            },
        }
    )


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run(events: int, agencies: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="npsp-storm-"))
    mail, sms = MailSink(folder), SmsSink(folder)
    mail.start()
    await sms.start()
    token = folder / "token"
    token.write_text(DEMO_TOKEN)
    config = build_config(events, agencies, mail, sms, token)
    store = await Store.open(folder / "state.db")
    outbox = Outbox(
        store, config.alerting.outbox, sms_min_interval=config.alerting.sms_min_interval
    )
    registry = Registry.from_config(config)
    pipeline = AlertPipeline(config.alerting, registry, outbox)
    channels = Channels.build(config.channels)
    workers = [OutboxWorker(outbox, n) for n in channels.notifiers.values()]
    keys = list(registry.systems)[:events]

    # 1. the events arrive one by one (as the engine hands them over); the pipeline's task
    # flushes whatever is due between them, as in the daemon (here: every 100 events)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    changed_at: dict[str, float] = {}
    first_notice: list[float] = []
    tick_times: list[float] = []

    async def flush() -> None:
        before = time.perf_counter()
        _, digests = await pipeline.flush_due()
        done = time.perf_counter()
        tick_times.append(done - before)
        for digest in digests:
            for alert in digest.firing:
                if alert.key in digest.new and alert.key in changed_at:
                    first_notice.append(done - changed_at[alert.key])

    batch: list[Event] = []
    commits: list[float] = []

    async def commit_and_hand_over() -> None:
        # What Engine.flush does: the batch is committed, then the pipeline is handed it.
        before = time.perf_counter()
        await store.record(batch)
        commits.append(time.perf_counter() - before)
        pipeline.on_events(list(batch))
        batch.clear()

    for i, key in enumerate(keys):
        agency, _, system = key.partition("/")
        changed_at[key] = time.perf_counter()
        batch.append(
            Event(
                time.time(),
                agency,
                system,
                State.UP,
                State.DOWN,
                "check tcp: connect: refused",
                "bench",
            )
        )
        if i % 100 == 99:
            await commit_and_hand_over()
            await flush()
    if batch:
        await commit_and_hand_over()
    await asyncio.sleep(0.002)
    await flush()
    to_outbox = time.perf_counter() - t0
    pipeline_cpu = time.process_time() - cpu0
    pending = await outbox.pending()
    total_rows = sum(c for c, _ in pending.values())

    # 2. send everything to the sinks, one worker per channel, as the daemon does
    send0 = time.perf_counter()
    await asyncio.gather(*(drain(w) for w in workers))
    send_time = time.perf_counter() - send0
    mails = len(list((folder / "mail").glob("*.eml")))
    sms_file = folder / "sms.jsonl"
    smses = len(sms_file.read_text().splitlines()) if sms_file.exists() else 0
    await channels.aclose()
    await store.close()
    await sms.stop()
    mail.stop()
    # naive: one message per state change for each of its recipients' channels
    naive = len(keys) * 4  # technical admin sms + e-mail + inbox, operations e-mail
    return {
        "events": len(keys),
        "agencies": agencies,
        "pipeline_cpu_us_per_event": round(pipeline_cpu / len(keys) * 1e6, 1),
        "all_events_to_outbox_s": round(to_outbox, 3),
        "first_notice_to_outbox_ms_p50": round(statistics.median(first_notice) * 1e3, 1),
        "first_notice_to_outbox_ms_p99": round(pct(first_notice, 0.99) * 1e3, 1),
        "flush_ms_max": round(max(tick_times) * 1e3, 1),
        "commit_ms_p50_per_100_events": round(statistics.median(commits) * 1e3, 2),
        "commit_ms_max": round(max(commits) * 1e3, 2),
        "messages_queued": total_rows,
        "naive_messages": naive,
        "send_all_to_sinks_s": round(send_time, 3),
        "emails_in_sink": mails,
        "sms_in_sink": smses,
    }


async def drain(worker: OutboxWorker) -> None:
    while await worker.run_once():
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--agencies", type=int, default=54)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [uvloop.run(run(args.events, args.agencies)) for _ in range(args.repeat)]
    for r in runs:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
