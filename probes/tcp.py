"""``tcp``: can a TCP connection be opened to host:port?"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from pydantic import Field

from monitor.types import CheckCommon, ProbeResult, format_duration

from .base import Probe, ProbeEnv
from .errors import describe_os_error


class Spec(CheckCommon):
    """A TCP connect check."""

    kind: Literal["tcp"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]

    def target_host(self) -> str:
        return self.host_key or self.host


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Return a probe that connects and closes at once."""
    del env
    host, port = spec.host, spec.port

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109 (the Probe contract)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                # a bare Protocol: stream reader/writer objects would only cost allocations
                transport, _ = await asyncio.get_running_loop().create_connection(
                    asyncio.Protocol, host, port
                )
        except TimeoutError:
            return ProbeResult(False, f"timeout after {format_duration(timeout)}", timeout)
        except OSError as exc:
            return ProbeResult(
                False, f"connect: {describe_os_error(exc)}", time.perf_counter() - start
            )
        elapsed = time.perf_counter() - start
        transport.abort()  # no FIN handshake to wait for: the answer is already known
        return ProbeResult(True, "connected", elapsed)

    return probe
