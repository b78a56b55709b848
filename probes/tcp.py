"""``tcp``: can a TCP connection be opened to host:port?"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from pydantic import Field

from npsp_common.types import ProbeResult

from .addresspolicy import AddressNotAllowed, connect
from .base import Probe, ProbeEnv, TargetSpec
from .errors import describe_os_error
from .reasons import fail, passed, why


class Spec(TargetSpec):
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
    policy = spec.address_policy if spec.announced else None  # None: the registry's own target

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109 (the Probe contract)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                # a bare Protocol: stream reader/writer objects would only cost allocations
                if policy is None:
                    transport, _ = await asyncio.get_running_loop().create_connection(
                        asyncio.Protocol, host, port
                    )
                else:
                    transport, _ = await connect(asyncio.Protocol, host, port, policy)
        except TimeoutError:
            return fail(why("timeout", timeout=timeout), timeout)
        except AddressNotAllowed as exc:
            return fail(exc.why, time.perf_counter() - start)
        except OSError as exc:
            return fail(why("connect", error=describe_os_error(exc)), time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        transport.abort()  # no FIN handshake to wait for: the answer is already known
        return passed(why("tcp.connected"), elapsed)

    return probe
