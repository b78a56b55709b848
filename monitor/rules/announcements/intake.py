"""Announcements over MQTT: ``<prefix>announcements/<agency>`` in, one JSON object each.

The sender learns the outcome on ``<prefix>announcements/<agency>/result`` (QoS 1, not
retained): ``{"ref", "accepted", "duplicate", "id", "working_days", "required", "compliant",
"recorded_in_effect"}`` or
``{"ref", "accepted": false, "reason"}``. A malformed message is rejected with its reason and
disturbs nothing else (a ``ref`` that is itself malformed is answered as ``null``); messages
wait in a bounded queue, so a flood cannot exhaust memory.

**Authentication.** An announcement whitelists a certificate, host or addresses: whoever could
publish one could disarm the unannounced-change alarm. So the monitor does not trust the broker's
ACL alone: every message carries its agency's token, ``{"token": "...", ...}``, configured as
``channels.mqtt.announcement_tokens: {<agency>: {file: ...}}`` (16 to 256 characters, like a
heartbeat token). The token is read from its file when a message arrives (a replaced file takes
effect at once), compared as SHA-256 digests with :func:`hmac.compare_digest`, never logged,
stored or echoed. A message without a valid token is refused before its content is looked at,
and counted as rejected. After :data:`FAIL_LIMIT` wrong tokens for one agency within
:data:`FAIL_WINDOW`, that agency's messages are refused without any comparison until the window
ends (the answer says when to retry; the HTTP API, authenticated by accounts, stays open).
What is recorded as the author is ``mqtt:<agency>``, the credential's agency (the name the
payload claims, if any, follows in parentheses).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from notifiers.base import NotifyError
from notifiers.settings import AGENCY_ID
from npsp_common.types import SecretSource
from probes.heartbeat import MAX_TOKEN, read_token

from .desk import AnnouncementDesk
from .model import MAX_PAYLOAD, AnnouncementRejected, load_document, request_from, valid_ref

# The intake's logger keeps its name from before the topic became a folder (log lines print it).
log = logging.getLogger("monitor.rules.intake")

TOPIC_FILTER = "announcements/+"
QUEUE = 1000  # messages waiting to be handled; more are refused
FAIL_LIMIT = 10  # wrong or missing tokens per agency within FAIL_WINDOW, then no comparison
FAIL_WINDOW = 60.0  # seconds
MAX_AGENCIES = 10_000  # agencies (topic levels) whose failures are remembered; oldest go first
_AGENCY = re.compile(AGENCY_ID)


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


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class _NotOurs(Exception):
    """The monitor, not the sender, failed (an unreadable token file): not a rejection."""


@dataclass(slots=True)
class _Failures:
    window_start: float
    count: int


class MqttAnnouncements:
    """Takes announcements from the broker into the desk, each authenticated by the token of
    the agency it speaks for (``tokens``: agency id → where its token is)."""

    def __init__(
        self,
        desk: AnnouncementDesk,
        publish: Callable[[str, bytes], Awaitable[Any]] | None = None,
        *,
        tokens: Mapping[str, SecretSource] | None = None,
        fail_limit: int = FAIL_LIMIT,
        fail_window: float = FAIL_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desk = desk
        self.publish = publish
        self.tokens = dict(tokens or {})
        self.fail_limit = fail_limit
        self.fail_window = fail_window
        self.clock = clock
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE)
        self.rejected = 0
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __repr__(self) -> str:  # never the tokens
        return f"<MqttAnnouncements: tokens for {len(self.tokens)} agencies>"

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
        """Authenticate, validate, store and answer one message; return the answer."""
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
            document = load_document(payload)
            self._authenticate(agency, document.pop("token", None))
            request = request_from(document, agency)
            claimed = f" ({request.author})" if request.author else ""
            stored, new = await self.desk.submit(
                request, agency, "mqtt", author=f"mqtt:{agency}{claimed}"
            )
        except AnnouncementRejected as exc:
            return self._refused(agency, payload, str(exc))
        except _NotOurs as exc:
            return {"ref": _ref_of(payload), "accepted": False, "reason": str(exc)}
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
            "recorded_in_effect": stored.recorded_in_effect,
        }

    # ----- the agency's credential ---------------------------------------------------------------

    def _authenticate(self, agency: str, offered: object) -> None:
        """Return if ``offered`` is ``agency``'s token; else raise :class:`AnnouncementRejected`
        (the sender's fault) or :class:`_NotOurs` (the monitor cannot read the token)."""
        now = self.clock()
        failures = self._failures.get(agency)
        if failures is not None and now - failures.window_start >= self.fail_window:
            del self._failures[agency]
            failures = None
        # Always compared, even after many failures: over MQTT every sender shares one source,
        # and refusing the right token while "throttled" would let any broker client that can
        # publish on an agency's topic block that agency's announcements for good (a 256-bit
        # token is not guessed, and a constant-time compare is cheap). Only the log is spared.
        if offered is None:
            self._failed(agency, now)
            raise AnnouncementRejected(
                "not authenticated: the payload carries no token (add your agency's "
                'announcement token as "token")'
            )
        if not isinstance(offered, str) or not 0 < len(offered) <= MAX_TOKEN:
            self._failed(agency, now)
            raise AnnouncementRejected(
                f"not authenticated: token must be a string of 1 to {MAX_TOKEN} characters"
            )
        source = self.tokens.get(agency) if _is_agency_id(agency) else None
        if source is None:
            self._failed(agency, now)
            raise AnnouncementRejected(
                f"not authenticated: no announcement token is configured for agency {agency!r}; "
                "announce through the HTTP API"
            )
        try:
            expected = read_token(source)
        except ValueError as exc:  # names the file or variable, never the value
            log.error("announcement token of %s cannot be used: %s", agency, exc)
            raise _NotOurs(
                "the monitor cannot read this agency's announcement token (see its log); "
                "send it again later"
            ) from None
        if not hmac.compare_digest(_digest(offered), _digest(expected)):
            self._failed(agency, now)
            raise AnnouncementRejected("not authenticated: wrong token for this agency")
        self._failures.pop(agency, None)

    def _failed(self, agency: str, now: float) -> None:
        failures = self._failures.get(agency)
        if failures is None:
            failures = self._failures[agency] = _Failures(now, 0)
            while len(self._failures) > MAX_AGENCIES:
                self._failures.popitem(last=False)
        failures.count += 1
        if failures.count == self.fail_limit:
            log.warning(
                "announcements for %s: %d with a wrong or missing token; the next refusals "
                "are not logged for %gs",
                agency if _is_agency_id(agency) else "?",
                failures.count,
                self.fail_window,
            )

    def _refused(self, agency: str, payload: bytes, reason: str) -> dict[str, Any]:
        self.rejected += 1
        self.desk.ctx.count("announcements_rejected")
        failures = self._failures.get(agency)
        flood = failures is not None and failures.count > self.fail_limit
        log.log(
            logging.DEBUG if flood else logging.WARNING,  # a flood must not fill the journal
            "announcement rejected",
            extra={"agency": agency or "?", "reason": reason},
        )
        # The ref the sender gave, if it is well-formed (null otherwise: the reason says why).
        return {"ref": _ref_of(payload), "accepted": False, "reason": reason}


def _is_agency_id(value: str) -> bool:
    return _AGENCY.match(value) is not None
