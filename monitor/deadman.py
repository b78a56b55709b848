"""The dead man's switch: this daemon says it is alive, so that a second gateway host or an
external checker notices when it dies or hangs.

* MQTT: a retained JSON document on ``<prefix>monitor/<vantage>/alive`` every ``interval``
  (``"status": "alive"``, with the time and the number of checks), ``"stopped"`` on a clean stop,
  and — set as the connection's last will, published by the broker when the connection dies
  without a goodbye (kill -9, power cut, network) — ``"dead"``.
* HTTP: an optional ping URL (healthchecks-style) fetched every ``interval``.

Both are sent only while the scheduler makes progress: a daemon whose loop is stuck stops
saying it is alive, which is the point.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import aiohttp
from pydantic import Field

from npsp_common.types import Duration, StrictModel

log = logging.getLogger(__name__)


class DeadmanSettings(StrictModel):
    """The ``deadman:`` section."""

    interval: Duration = 30.0
    mqtt: bool = True  # publish on <prefix>monitor/<vantage>/alive when channels.mqtt is set
    ping_url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] | None = None
    ping_timeout: Duration = 10.0


def topic(vantage: str) -> str:
    return f"monitor/{vantage}/alive"


def document(vantage: str, status: str, *, timed: bool = True, **extra: Any) -> bytes:
    body: dict[str, Any] = {"vantage": vantage, "status": status, **extra}
    if timed:
        body["ts"] = round(time.time(), 3)
    return json.dumps(body, separators=(",", ":")).encode()


def last_will(vantage: str) -> tuple[str, bytes]:
    """What the broker publishes (retained) if this daemon's connection dies unannounced. It
    is written at start, so it carries no time: the death is when it is received."""
    return topic(vantage), document(vantage, "dead", timed=False)


Publish = Callable[[str, bytes], Awaitable[None]]


class DeadMansSwitch:
    """Says "alive" every ``interval`` while ``progressing()``; "stopped" at :meth:`stop`."""

    def __init__(
        self,
        settings: DeadmanSettings,
        vantage: str,
        *,
        progressing: Callable[[], bool],
        publish: Publish | None = None,
        checks: Callable[[], int] = lambda: 0,
    ) -> None:
        self.settings = settings
        self.vantage = vantage
        self.progressing = progressing
        self.publish = publish if settings.mqtt else None
        self.checks = checks
        self.sent = 0
        self.pings = 0

    async def beat(self, session: aiohttp.ClientSession | None) -> None:
        """One "alive": skipped while the scheduler is stuck."""
        if not self.progressing():
            log.warning("scheduler is not making progress: not saying alive")
            return
        if self.publish is not None:
            try:
                await self.publish(
                    topic(self.vantage), document(self.vantage, "alive", checks=self.checks())
                )
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - the broker may be down; try next time
                log.debug("alive not published: %s", exc)
        if session is not None and self.settings.ping_url is not None:
            try:
                async with session.get(self.settings.ping_url) as response:
                    if response.status >= 400:
                        log.warning("dead man's switch ping answered HTTP %d", response.status)
                    else:
                        self.pings += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("dead man's switch ping failed: %s", exc.__class__.__name__)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.ping_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.beat(session if self.settings.ping_url else None)
                await asyncio.sleep(self.settings.interval)

    async def stop(self, status: str = "stopped") -> None:
        """A stop: say so ("stopped", or "crashed" after a failure), so that nobody mistakes a
        clean stop for a death, nor a crash for a clean stop."""
        if self.publish is not None:
            try:
                await self.publish(topic(self.vantage), document(self.vantage, status))
            except Exception as exc:  # noqa: BLE001
                log.debug("stopped not published: %s", exc)
