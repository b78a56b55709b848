"""/metrics at scale (slices, no stall by construction), the probe command, reload of files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import yaml

from monitor.cli import main
from monitor.config import load_config
from monitor.engine import Engine
from monitor.metrics import SLICE, DaemonMetrics, render
from monitor.store import Store
from npsp_common.types import ProbeResult
from probes import ProbeEnv

from .conftest import TcpTarget


def big_config(tmp_path: Path, systems: int) -> Path:
    data = {
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "agencies": [
            {
                "id": f"agency-{a:02d}",
                "kind": "province",
                "name_vi": f"Tỉnh {a}",
                "name_en": f"Province {a}",
                "code": f"{a:02d}",
                "systems": [
                    {
                        "id": f"s-{s:04d}",
                        "kind": "other",
                        "name": f"system {s}",
                        "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 9}],
                    }
                    for s in range(systems // 50)
                ],
            }
            for a in range(50)
        ],
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_metrics_render_in_slices_and_cover_every_check(tmp_path: Path) -> None:
    config = load_config(big_config(tmp_path, 10_000))
    store = await Store.open(config.state_db)
    try:
        engine = Engine(config, store, ProbeEnv())
        await engine.start()
        result = ProbeResult(True, "connected", 0.000123)
        for status in engine.state.systems.values():
            for check in status.checks.values():
                check.last = result
        metrics = DaemonMetrics()
        metrics.engine = engine

        # Another task counts how often the loop gets control back while rendering.
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        chunks = [c async for c in render(engine, metrics)]
        stop.set()
        await task
        text = "".join(chunks)
    finally:
        await store.close()
    assert text.count("npsp_probe_success{") == 10_000
    assert text.count("npsp_probe_duration_seconds{") == 10_000
    assert text.count("npsp_system_state{") == 10_000
    assert "npsp_tls_cert_not_after_timestamp_seconds{" not in text  # tcp has no certificate
    assert (
        'npsp_probe_duration_seconds{agency="agency-00",system="s-0000",check="tcp",kind="tcp"} 0.000123'
        in text
    )
    # 10,000 checks in slices of SLICE for each per-check family: the loop ran in between.
    assert ticks >= 3 * (10_000 // SLICE) - 1
    assert text.endswith("\n")


async def test_probe_command_table_json_and_errors(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    up = await tcp_target()
    down = await tcp_target()
    await down.down()
    data = {
        "state_db": str(tmp_path / "s.db"),
        "agencies": [
            {
                "id": "ha-noi",
                "kind": "province",
                "name_vi": "Hà Nội",
                "name_en": "Hanoi",
                "code": "01",
                "systems": [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "MCBM",
                        "checks": [
                            {"id": "up", "kind": "tcp", "host": "127.0.0.1", "port": up.port},
                            {"id": "down", "kind": "tcp", "host": "127.0.0.1", "port": down.port},
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")

    code = await asyncio.to_thread(
        main, ["probe", "-c", str(path), "ha-noi/secure-server", "--json"]
    )
    assert code == 1  # one check fails
    rows = {r["check"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["up"]["ok"] is True and rows["up"]["reason"] == "connected"
    assert rows["down"]["ok"] is False and rows["down"]["reason"] == "connect: refused"

    await down.up()
    assert await asyncio.to_thread(main, ["probe", "-c", str(path), "ha-noi/secure-server"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["CHECK", "KIND", "RESULT", "TIME", "REASON"]
    assert [line.split()[:3] for line in table[1:]] == [["up", "tcp", "ok"], ["down", "tcp", "ok"]]

    assert await asyncio.to_thread(main, ["probe", "-c", str(path), "ha-noi/nope"]) == 2
    assert "unknown system 'ha-noi/nope'" in capsys.readouterr().err
