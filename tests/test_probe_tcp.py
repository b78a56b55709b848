"""The tcp probe against real listeners on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from npsp_common.types import ProbeResult
from probes import PROBES, tcp
from probes.base import ProbeEnv
from tests.probe_servers import Server, free_port, reset, run_on_uvloop, silent, unanswered_port

pytestmark = pytest.mark.timeout(30)

SLACK = 0.5


async def connect(port: int, timeout: float = 1.0, host: str = "127.0.0.1") -> ProbeResult:
    spec = tcp.Spec(id="lgsp-port", kind="tcp", host=host, port=port)
    result = await tcp.build(spec, ProbeEnv())(timeout)
    assert result.duration <= timeout + SLACK
    return result


async def test_connected() -> None:
    async with Server(silent) as server:
        result = await connect(server.port)
    assert result.ok
    assert result.reason == "connected"
    assert server.accepted == 1


async def test_ipv6_loopback() -> None:
    async with Server(silent, host="::1") as server:
        result = await connect(server.port, host="::1")
    assert result.ok, result.reason


async def test_a_server_that_resets_still_accepted_the_connection() -> None:
    async with Server(reset) as server:
        result = await connect(server.port)
    assert result.ok


async def test_refused() -> None:
    result = await connect(free_port())
    assert result.reason == "connect: refused"
    assert not result.ok


async def test_syn_dropped_times_out() -> None:
    with unanswered_port() as port:
        result = await connect(port, timeout=0.5)
    assert result.reason == "timeout after 500ms"
    assert result.duration == pytest.approx(0.5, abs=SLACK)


@pytest.mark.parametrize("scenario", [test_connected, test_refused, test_syn_dropped_times_out])
def test_on_uvloop(scenario: Any, request: pytest.FixtureRequest) -> None:
    run_on_uvloop(scenario, request)


def test_spec() -> None:
    check = PROBES["tcp"].spec.model_validate({"id": "t", "kind": "tcp", "host": "h", "port": 22})
    assert check.target_host() == "h"
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        tcp.Spec.model_validate({"id": "t", "kind": "tcp", "host": "h", "port": 70000})
