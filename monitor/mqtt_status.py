"""Retained MQTT topics ``<prefix>status/<agency>/<system>``: every system's current state.

What a topic carries is what the public ``/status`` page shows — the state and since when —
unless ``channels.mqtt.status_detail: full`` adds the failure reason: a reason names hosts,
addresses and errors of systems that are not public, and every broker client that may read the
topic reads it (see config/mosquitto/ for an ACL giving each agency its own topics only).

Best effort and self-healing: a change marks the system dirty; dirty systems are published while
the broker is reachable; after every (re)connection all systems are published again, so a
subscriber always finds the whole picture, whatever was missed while the broker was away.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from notifiers.base import NotifyError

from .aio import wait_event
from .engine import Engine
from .state import Event

if TYPE_CHECKING:
    from .broker import MqttPublisher

log = logging.getLogger(__name__)


class StatusTopics:
    """Publishes the engine's system states as retained messages."""

    def __init__(self, engine: Engine, publisher: MqttPublisher) -> None:
        self.engine = engine
        self.publisher = publisher
        self.dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.published = 0

    def on_events(self, events: list[Event]) -> None:
        """Engine subscriber."""
        self.dirty.update(f"{e.agency}/{e.system}" for e in events if not e.agency.startswith("_"))
        self.wake.set()

    def payload(self, key: str) -> bytes | None:
        status = self.engine.state.systems.get(key)
        if status is None:
            return None
        state = self.engine.state.display_state(status)
        document: dict[str, object] = {
            "agency": status.agency,
            "system": status.system,
            "state": state.value,
            "since": status.since or None,
            "vantage": self.engine.config.vantage,
        }
        if self.publisher.settings.status_detail == "full":
            document["reason"] = status.reason
        return json.dumps(document, ensure_ascii=False).encode()

    async def run(self) -> None:
        was_connected = False
        while True:
            connected = self.publisher.connected
            if connected and not was_connected:
                self.dirty.update(self.engine.state.systems)  # a new session: publish everything
            was_connected = connected
            if connected and self.dirty:
                await self._publish_dirty()
            self.wake.clear()
            await wait_event(self.wake, 1.0)

    async def _publish_dirty(self) -> None:
        for key in sorted(self.dirty):
            payload = self.payload(key)
            try:
                if payload is not None:
                    await self.publisher.publish(f"status/{key}", payload, qos=1, retain=True)
                    self.published += 1
            except NotifyError as exc:
                log.warning("status topic not published (will retry): %s", exc.reason)
                return
            self.dirty.discard(key)
