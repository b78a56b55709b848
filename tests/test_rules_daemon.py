"""The command line and the running daemon share the database: announcements, maintenance
windows and incident actions written by ``npsp-monitor`` (a separate process) reach the daemon
within a few seconds, and it acts on them (late-notice alert, maintenance notice, the
acknowledgement that stops escalation)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.peers import free_port, wait_until

from .test_daemon import Running, start, write_config

pytestmark = pytest.mark.timeout(90)
__all__ = ["start"]  # the fixture, imported for this module's tests

VN = dt.timezone(dt.timedelta(hours=7))


def config(tmp_path: Path) -> Path:
    def people(aid: str) -> list[dict[str, Any]]:
        return [
            {
                "name": f"KT {aid}",
                "role": "technical-admin",
                "portal_account": f"kt.{aid}",
                "channels": ["inbox"],
            },
            {
                "name": f"CC {aid}",
                "role": "high-level-admin",
                "portal_account": f"cc.{aid}",
                "channels": ["inbox"],
            },
        ]

    data = {
        "vantage": "gw-test",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {"interval": "200ms", "timeout": "100ms", "failure_threshold": 1},
        "alerting": {
            "operations": [{"name": "VPCP", "portal_account": "ops.vpcp", "channels": ["inbox"]}],
            "group_wait": "100ms",
        },
        "agencies": [
            {
                "id": "bo-a",
                "kind": "ministry",
                "name_vi": "Bộ A",
                "name_en": "Ministry A",
                "code": "BA",
                "contacts": people("bo-a"),
                "systems": [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": free_port()}
                        ],
                    }
                ],
            }
        ],
    }
    return write_config(tmp_path / "npsp.yaml", data)


async def cli(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def inbox(running: Running, account: str) -> list[dict[str, Any]]:
    engine = running.daemon.engine
    assert engine is not None
    rows = await engine.store.transact(
        lambda db: db.execute(
            "SELECT subject, text FROM inbox WHERE account = ? ORDER BY id", (account,)
        ).fetchall()
    )
    return [{"subject": s, "text": t} for s, t in rows]


async def eventually_async(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(150):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not reached within 15 s")


async def test_cli_actions_reach_the_running_daemon(
    tmp_path: Path, start: Callable[[Path], Awaitable[Running]]
) -> None:
    path = config(tmp_path)
    running = await start(path)
    c = ["-c", str(path)]

    # 1. A late announcement written by the command line is alerted by the daemon.
    tomorrow = (dt.datetime.now(VN) + dt.timedelta(days=1)).isoformat()
    code, out, err = await cli("announce", *c, "--agency", "bo-a", "--effective", tomorrow,
                               "--port", "9443", "--ref", "cv-1", "--json")  # fmt: skip
    assert code == 0, err
    stored = json.loads(out)
    assert stored["compliant"] is False and stored["working_days"] == 0

    async def ops_told() -> bool:
        return any("không đủ thời hạn" in m["subject"] for m in await inbox(running, "ops.vpcp"))

    await eventually_async(ops_told, "the late-notice alert")
    code, out, _ = await cli("announcements", *c, "--json")
    assert code == 0 and [a["ref"] for a in json.loads(out)] == ["cv-1"]

    # 2. A maintenance window with short notice needs an override; then its notice goes out.
    starts = (dt.datetime.now(VN) + dt.timedelta(hours=2)).isoformat()
    ends = (dt.datetime.now(VN) + dt.timedelta(hours=3)).isoformat()
    window = ["--start", starts, "--end", ends, "--reason", "Thay thiết bị", "--scope", "bo-a"]
    code, _, err = await cli("maintenance", "schedule", *c, *window)
    assert code == 2 and "--override" in err and "Traceback" not in err
    code, out, err = await cli(
        "maintenance", "schedule", *c, *window, "--override", "sự cố phần cứng"
    )
    assert code == 0, err

    async def admins_told() -> bool:
        return any("Thay thiết bị" in m["text"] for m in await inbox(running, "kt.bo-a"))

    await eventually_async(admins_told, "the maintenance-scheduled notice")

    # 3. The secure server is down (nothing listens): an incident is open with the pipeline's id;
    #    acknowledging it from the command line reaches the daemon's desk.
    daemon = running.daemon
    await wait_until(
        lambda: daemon.rules is not None and bool(daemon.pipeline and daemon.pipeline.alerts),
        15,
        "an alert",
    )
    assert daemon.pipeline is not None and daemon.rules is not None
    incident_id = daemon.pipeline.alerts["bo-a/secure-server"].incident

    async def listed() -> bool:
        _, out, _ = await cli("incident", "list", *c, "--json")
        return incident_id in {i["id"] for i in json.loads(out)}

    await eventually_async(listed, "the incident stored")
    assert not daemon.rules.incidents.acknowledged(incident_id)
    code, _, err = await cli("incident", "ack", *c, incident_id, "--by", "Trực ban Bộ A")
    assert code == 0, err
    await wait_until(
        lambda: daemon.rules is not None and daemon.rules.incidents.acknowledged(incident_id),
        10,
        "ack seen",
    )
    code, _, err = await cli("incident", "ack", *c, "req-404", "--by", "x")
    assert code == 2 and "req-404" in err and "Traceback" not in err
