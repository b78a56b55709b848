"""Announcements over MQTT: ``<prefix>announcements/<agency>`` in, one JSON object each.

The sender learns the outcome on ``<prefix>announcements/<agency>/result`` (QoS 1, not
retained): ``{"ref", "accepted", "id", "working_days", "required", "compliant"}`` or
``{"ref", "accepted": false, "reason"}``. A malformed message is rejected with its reason and
disturbs nothing else; messages wait in a bounded queue, so a flood cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from notifiers.base import NotifyError

from .announcements import MAX_PAYLOAD, AnnouncementDesk, AnnouncementRejected, parse_request

log = logging.getLogger(__name__)

TOPIC_FILTER = "announcements/+"
QUEUE = 1000  # messages waiting to be handled; more are refused


def _ref_of(payload: bytes) -> str | None:
    """The sender's ref, if the payload is readable enough to have one (for the result)."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        ref = json.loads(payload).get("ref")
    except (ValueError, AttributeError, RecursionError):
        return None
    return ref if isinstance(ref, str) and len(ref) <= 128 else None


class MqttAnnouncements:
    """Takes announcements from the broker into the desk."""

    def __init__(
        self,
        desk: AnnouncementDesk,
        publish: Callable[[str, bytes], Awaitable[Any]] | None = None,
    ) -> None:
        self.desk = desk
        self.publish = publish
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE)
        self.rejected = 0

    def on_message(self, topic_suffix: str, payload: bytes) -> None:
        """MQTT handler (synchronous): queue the message."""
        agency = topic_suffix.split("/")[1] if topic_suffix.count("/") == 1 else ""
        # What waits is bounded in bytes too: an oversized payload is kept only as long as it
        # takes to see that it is oversized.
        try:
            self.queue.put_nowait((agency, payload[: MAX_PAYLOAD + 1]))
        except asyncio.QueueFull:
            self.rejected += 1
            self.desk.ctx.count("announcements_rejected")
            log.warning("announcement from %s dropped: too many waiting", agency)

    async def run(self) -> None:
        while True:
            agency, payload = await self.queue.get()
            try:
                await self.handle(agency, payload)
            except Exception:
                log.exception("announcement from %s could not be handled", agency)

    async def handle(self, agency: str, payload: bytes) -> dict[str, Any]:
        """Validate, store and answer one message; return the answer."""
        started = time.monotonic()
        try:
            request = parse_request(payload, agency)
            stored, new = await self.desk.submit(request, agency, "mqtt")
        except AnnouncementRejected as exc:
            self.rejected += 1
            self.desk.ctx.count("announcements_rejected")
            log.warning(
                "announcement rejected", extra={"agency": agency or "?", "reason": str(exc)}
            )
            answer: dict[str, Any] = {
                "ref": _ref_of(payload),  # what the sender gave, if readable
                "accepted": False,
                "reason": str(exc),
            }
        else:
            answer = {
                "ref": stored.ref,
                "accepted": True,
                "duplicate": not new,
                "id": stored.id,
                "working_days": stored.working_days,
                "required": stored.required,
                "compliant": stored.compliant,
            }
        if self.publish is not None and agency:
            body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            try:
                await self.publish(f"announcements/{agency}/result", body)
            except NotifyError as exc:
                log.info("announcement result not published: %s", exc)
        log.debug("announcement handled in %.1f ms", (time.monotonic() - started) * 1000)
        return answer
