"""Announcements over MQTT: ``<prefix>announcements/<agency>`` in, one JSON object each.

The sender learns the outcome on ``<prefix>announcements/<agency>/result`` (QoS 1, not
retained): ``{"ref", "accepted", "id", "working_days", "required", "compliant"}`` or
``{"ref", "accepted": false, "reason"}``. A malformed message is rejected with its reason and
disturbs nothing else (a ``ref`` that is itself malformed is answered as ``null``); messages
wait in a bounded queue, so a flood cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from notifiers.base import NotifyError

from .announcements import (
    MAX_PAYLOAD,
    AnnouncementDesk,
    AnnouncementRejected,
    parse_request,
    valid_ref,
)

log = logging.getLogger(__name__)

TOPIC_FILTER = "announcements/+"
QUEUE = 1000  # messages waiting to be handled; more are refused


def _ref_of(payload: bytes) -> str | None:
    """The sender's ref, if the payload is readable enough to have a well-formed one (it is
    echoed in the result: a lone surrogate or a control character must not be)."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return valid_ref(document.get("ref")) if isinstance(document, dict) else None


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
        answer = await self._decide(agency, payload)
        if self.publish is not None and agency:
            # Every text in the answer is ours or checked, and repr() escapes what the sender
            # gave; "backslashreplace" only keeps a slip from costing the sender its answer.
            body = json.dumps(answer, ensure_ascii=False).encode("utf-8", "backslashreplace")
            try:
                await self.publish(f"announcements/{agency}/result", body)
            except NotifyError as exc:
                log.info("announcement result not published: %s", exc)
        log.debug("announcement handled in %.1f ms", (time.monotonic() - started) * 1000)
        return answer

    async def _decide(self, agency: str, payload: bytes) -> dict[str, Any]:
        try:
            request = parse_request(payload, agency)
            stored, new = await self.desk.submit(request, agency, "mqtt")
        except AnnouncementRejected as exc:
            return self._refused(agency, payload, str(exc))
        except Exception:  # ours, not the sender's: logged in full, and the sender is told
            log.exception("announcement from %s could not be handled", agency or "?")
            # Not counted as rejected: that counter is about what senders get wrong.
            return {
                "ref": _ref_of(payload),
                "accepted": False,
                "reason": "the monitor could not store it (see its log); send it again",
            }
        return {
            "ref": stored.ref,
            "accepted": True,
            "duplicate": not new,
            "id": stored.id,
            "working_days": stored.working_days,
            "required": stored.required,
            "compliant": stored.compliant,
        }

    def _refused(self, agency: str, payload: bytes, reason: str) -> dict[str, Any]:
        self.rejected += 1
        self.desk.ctx.count("announcements_rejected")
        log.warning("announcement rejected", extra={"agency": agency or "?", "reason": reason})
        # The ref the sender gave, if it is well-formed (null otherwise: the reason says why).
        return {"ref": _ref_of(payload), "accepted": False, "reason": reason}
