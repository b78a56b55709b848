"""Receiving heartbeats: the systems that report instead of being probed.

Two ways in, one rule:

* HTTP ``POST /api/v1/heartbeat/{agency}/{system}`` with ``Authorization: Bearer <token>`` (or
  ``X-Heartbeat-Token: <token>``); the body is ignored (at most 1 KiB). Answers JSON:
  ``202 {"accepted": true}``, or ``{"error": "..."}`` with 400 (malformed), 401 (missing or
  wrong token), 404 (unknown system, or one without a heartbeat check), 409 (the token is
  shared with another system), 413 (body too large), 429 (too many failed attempts),
  503 (the monitor cannot read the system's token).
* MQTT ``<prefix>heartbeat/<agency>/<system>`` with the payload ``{"token": "..."}`` (at most
  1 KiB; QoS 1; a retained copy is ignored by the publisher). A refused message is logged at
  warning level with its reason and otherwise dropped.

A heartbeat counts for every heartbeat check of the system whose token it carries; the
:class:`probes.heartbeat.HeartbeatBoard` keeps the time, the heartbeat probes judge it.
Tokens are compared with :func:`hmac.compare_digest`, never logged and never echoed. Failed
HTTP attempts are throttled per sender address and system (10 a minute by default): then that
address gets 429 *without any comparison* until the minute is over, so a wrong-token flood
neither guesses on nor fills the log. MQTT has one source for everyone (the broker), so there
a throttle would let any broker client silence another agency's heartbeats and page it
falsely: MQTT heartbeats are always compared (constant time, cheap), and only the logging of
refusals is held back.

Tokens are read when the running registry changes (SIGHUP, an announced change taking effect),
not per heartbeat: a replaced token file takes effect on reload, as for every other check file.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from probes.heartbeat import MAX_TOKEN, HeartbeatBoard, Spec, read_token

from .registry import Registry
from .state import State
from .store import StoredState
from .web.auth import Network, client_address
from .web.routes import Route

__all__ = [
    "MAX_BODY",
    "MAX_PAYLOAD",
    "PATH",
    "TOPIC_FILTER",
    "HeartbeatReceiver",
    "heartbeat_route",
]

log = logging.getLogger(__name__)

PATH = "/api/v1/heartbeat/{agency}/{system}"
TOPIC_FILTER = "heartbeat/+/+"  # for MqttPublisher.subscribe: <prefix>heartbeat/<agency>/<system>
MAX_BODY = 1024  # bytes of an HTTP heartbeat's (ignored) body
MAX_PAYLOAD = 1024  # bytes of an MQTT heartbeat
FAIL_LIMIT = 10  # failed attempts per source and system within FAIL_WINDOW, then 429
FAIL_WINDOW = 60.0  # seconds
MAX_SOURCES = 10_000  # (source, system) pairs whose failures are remembered; the oldest go first

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # agency and system ids (monitor.config.Slug)
_NEVER_IN_TOKEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls, lone surrogates


@dataclass(frozen=True, slots=True)
class _Expected:
    """One heartbeat check of a system, as the receiver checks it."""

    check: str  # the check's key, agency/system/check
    slot: bytes | None  # its board key; None when the token cannot be read
    token: bytes | None = field(repr=False)


@dataclass(slots=True)
class _Failures:
    window_start: float
    count: int


class HeartbeatReceiver:
    """Checks heartbeats against the running registry and marks the board.

    ``registry_getter`` returns the registry in effect (``lambda: engine.registry``); a new
    registry object is noticed at the next heartbeat, or at once with :meth:`refresh`.
    """

    def __init__(
        self,
        board: HeartbeatBoard,
        registry_getter: Callable[[], Registry],
        *,
        fail_limit: int = FAIL_LIMIT,
        fail_window: float = FAIL_WINDOW,
    ) -> None:
        self.board = board
        self.registry_getter = registry_getter
        self.fail_limit = fail_limit
        self.fail_window = fail_window
        self._indexed: Registry | None = None
        self._expected: dict[str, tuple[_Expected, ...]] = {}
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self.counts: Counter[int] = Counter()  # answers given, by status (for metrics)

    def __repr__(self) -> str:
        return f"<HeartbeatReceiver: {len(self._expected)} systems with heartbeat checks>"

    # ----- the running registry ----------------------------------------------------------------

    def refresh(self) -> None:
        """Read the heartbeat checks (and their tokens) of the running registry, if it changed.

        Logs, once per registry, every token that cannot be used and every pair of systems that
        would share a board slot (same check id and token); the probes of those fail saying so.
        """
        registry = self.registry_getter()
        if registry is self._indexed:
            return
        expected: dict[str, tuple[_Expected, ...]] = {}
        owners: dict[bytes, set[str]] = {}
        for system_key, entry in registry.systems.items():
            found = []
            for check in entry.checks:
                spec = check.spec
                if not isinstance(spec, Spec):
                    continue
                try:
                    token = read_token(spec.token)
                except ValueError as exc:
                    log.error("heartbeat check %s: token cannot be used: %s", check.key, exc)
                    found.append(_Expected(check.key, None, None))
                    continue
                slot = self.board.key(spec.id, token)
                owners.setdefault(slot, set()).add(system_key)
                found.append(_Expected(check.key, slot, token.encode()))
            if found:
                expected[system_key] = tuple(found)
        conflicts = {slot: tuple(sorted(s)) for slot, s in owners.items() if len(s) > 1}
        for systems in sorted(set(conflicts.values())):
            log.error(
                "systems %s have a heartbeat check with the same id and token: their heartbeats "
                "are refused until each system has its own token",
                ", ".join(systems),
            )
        self.board.conflicts = conflicts
        self._expected = expected
        self._indexed = registry

    # ----- one heartbeat -----------------------------------------------------------------------

    def accept(
        self,
        agency: str,
        system: str,
        token: str | None,
        now: float | None = None,
        *,
        source: str = "-",
        via: str = "http",
    ) -> tuple[int, str]:
        """Check one heartbeat and record it; return an HTTP status and a reason.

        ``now`` is on the board's clock (default: read it). ``source`` names the sender for the
        throttle (an IP address; ``mqtt`` for the broker). The reason never holds the token.
        """
        now = self.board.clock() if now is None else now
        status, reason = self._accept(agency, system, token, now, source)
        self.counts[status] += 1
        where = f"{agency}/{system}" if _SLUG.match(agency) and _SLUG.match(system) else "?"
        sender = via if source == via else f"{via} from {source}"
        if status == 202:
            log.debug("heartbeat for %s accepted (%s)", where, sender)
        elif status in (404, 429):
            log.debug("heartbeat for %s refused (%s): %s", where, sender, reason)
        else:
            log.warning("heartbeat for %s refused (%s): %s", where, sender, reason)
        return status, reason

    def _accept(
        self, agency: str, system: str, token: str | None, now: float, source: str
    ) -> tuple[int, str]:
        if not (_SLUG.match(agency) and _SLUG.match(system)):
            return 400, "malformed agency or system id"
        self.refresh()
        key = f"{agency}/{system}"
        if self._indexed is None or key not in self._indexed.systems:
            return 404, f"unknown system {key}"
        expected = self._expected.get(key)
        if not expected:
            return 404, f"system {key} has no heartbeat check"
        failures = self._failures.get((source, key))
        if failures is not None and now - failures.window_start >= self.fail_window:
            del self._failures[(source, key)]
            failures = None
        throttled = failures is not None and failures.count >= self.fail_limit
        if throttled and source != "mqtt":
            # That address sent too many wrong tokens this minute: no comparison at all.
            assert failures is not None
            wait = max(1, math.ceil(failures.window_start + self.fail_window - now))
            return 429, f"too many failed attempts; retry in {wait}s"
        # Over MQTT every sender is "mqtt": the right token is never refused there, or a flood
        # of wrong ones from any broker client would make a live system look DOWN.
        matched = []
        if token and len(token) <= MAX_TOKEN:
            offered = token.encode("utf-8", "surrogateescape")
            matched = [
                e for e in expected if e.token is not None and hmac.compare_digest(offered, e.token)
            ]
        if not matched and throttled:
            assert failures is not None
            wait = max(1, math.ceil(failures.window_start + self.fail_window - now))
            return 429, f"too many failed attempts; retry in {wait}s"
        if not token:
            return self._failed(source, key, now, 401, "missing token")
        if len(token) > MAX_TOKEN:
            return self._failed(source, key, now, 400, f"token longer than {MAX_TOKEN} characters")
        if not matched:
            if all(e.token is None for e in expected):
                return 503, "the monitor cannot read this system's heartbeat token (see its log)"
            return self._failed(source, key, now, 401, "invalid token")
        if any(e.slot in self.board.conflicts for e in matched):
            return 409, "this system shares its heartbeat check id and token with another system"
        for e in matched:
            assert e.slot is not None
            self.board.beat(e.slot, now)
        self._failures.pop((source, key), None)
        return 202, "accepted"

    def retry_after(self, source: str, agency: str, system: str, now: float | None = None) -> int:
        """Whole seconds until ``source`` may try ``agency/system`` again (0: it may now)."""
        now = self.board.clock() if now is None else now
        failures = self._failures.get((source, f"{agency}/{system}"))
        if failures is None or failures.count < self.fail_limit:
            return 0
        return max(0, math.ceil(failures.window_start + self.fail_window - now))

    def _failed(
        self, source: str, key: str, now: float, status: int, reason: str
    ) -> tuple[int, str]:
        failures = self._failures.get((source, key))
        if failures is None:
            failures = self._failures[(source, key)] = _Failures(now, 0)
            while len(self._failures) > MAX_SOURCES:
                self._failures.popitem(last=False)
        failures.count += 1
        if failures.count == self.fail_limit:
            log.warning(
                "heartbeat for %s: %d failed attempts from %s; %s for %gs",
                key,
                failures.count,
                source,
                "logging its refusals no more"
                if source == "mqtt"
                else "refusing its attempts without comparing them",
                self.fail_window,
            )
        return status, reason

    # ----- MQTT ------------------------------------------------------------------------------

    def silent_since_before(self, states: Mapping[str, StoredState]) -> None:
        """At start: the heartbeat checks of systems stored as down get no start-up grace (a
        restart must not announce a system that went silent as recovered)."""
        registry = self.registry_getter()
        for key, stored in states.items():
            entry = registry.systems.get(key)
            if entry is None or stored.state not in (State.DOWN, State.FLAPPING):
                continue
            for check in entry.checks:
                if not isinstance(check.spec, Spec):
                    continue
                try:
                    token = read_token(check.spec.token)
                except (OSError, ValueError):
                    continue  # the probe reports an unreadable token itself
                self.board.silent.add(self.board.key(check.check_id, token))

    def on_mqtt(self, topic_suffix: str, payload: bytes) -> None:
        """MQTT handler for ``heartbeat/<agency>/<system>`` (synchronous, quick, never raises)."""
        parts = topic_suffix.split("/")
        if len(parts) != 3 or parts[0] != "heartbeat":
            log.warning("mqtt heartbeat ignored: unexpected topic %r", topic_suffix[:200])
            return
        _, agency, system = parts
        token, problem = _token_of(payload)
        if problem is not None:
            self.counts[400] += 1
            where = f"{agency}/{system}" if _SLUG.match(agency) and _SLUG.match(system) else "?"
            log.warning("heartbeat for %s refused (mqtt): %s", where, problem)
            return
        self.accept(agency, system, token, source="mqtt", via="mqtt")


def _token_of(payload: bytes) -> tuple[str | None, str | None]:
    """(token, None) from an MQTT heartbeat payload, or (None, why it is malformed)."""
    if len(payload) > MAX_PAYLOAD:
        return None, f"payload larger than {MAX_PAYLOAD} bytes"
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, 'payload is not JSON (expected {"token": "..."})'
    if not isinstance(document, dict) or not isinstance(document.get("token"), str):
        return None, 'payload must be a JSON object {"token": "..."}'
    extra = sorted(str(key) for key in document if key != "token")
    if extra:
        return None, f"unknown fields {', '.join(map(repr, extra))[:200]} (only token is sent)"
    token: str = document["token"]
    if _NEVER_IN_TOKEN.search(token):
        return None, "the token holds a control character or a lone surrogate"
    return token, None


# ----- HTTP ----------------------------------------------------------------------------------


def _answer(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"accepted": True} if status == 202 else {"error": reason}
    return web.json_response(body, status=status, headers=headers)


def _token_from(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else of ``X-Heartbeat-Token``."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" else None
    token = request.headers.get("X-Heartbeat-Token")
    return None if token is None else token.strip()


async def _body_too_large(request: web.Request) -> bool:
    """Read (and drop) the body; True as soon as it exceeds :data:`MAX_BODY`."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return True
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY:
            return True
    return False


#: What a heartbeat is answered (its OpenAPI ``responses``).
ANSWERS = (
    ("202", "Accepted"),
    ("400", "Malformed"),
    ("401", "Missing or wrong token"),
    ("404", "Unknown system, or no heartbeat check"),
    ("409", "Two systems share this token"),
    ("413", "Body over 1 KiB"),
    ("429", "Too many wrong tokens"),
)


def heartbeat_route(
    receiver: HeartbeatReceiver,
    trusted_proxies: Callable[[], Iterable[Network]] = lambda: (),
) -> Route:
    """``POST /api/v1/heartbeat/{agency}/{system}``, an entry of the API's route table (served
    and documented with it; public: the system's own token authenticates it). Senders are told
    apart by their address — behind a ``trusted_proxies`` proxy, the one it forwards — so one
    sender's wrong tokens do not throttle another behind the same proxy."""

    async def heartbeat(request: web.Request) -> web.Response:
        if await _body_too_large(request):
            receiver.counts[413] += 1
            return _answer(413, f"body larger than {MAX_BODY} bytes (it is ignored: send none)")
        source = client_address(request, trusted_proxies())
        status, reason = receiver.accept(
            request.match_info["agency"],
            request.match_info["system"],
            _token_from(request),
            source=source,
        )
        headers = None
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="npsp-monitor heartbeat"'}
        elif status == 429:
            wait = receiver.retry_after(
                source, request.match_info["agency"], request.match_info["system"]
            )
            headers = {"Retry-After": str(max(1, wait))}
        return _answer(status, reason, headers)

    return Route(
        "POST",
        PATH,
        heartbeat,
        "A push heartbeat from a system that reports instead of being probed; "
        "authenticated by that system's own token (Bearer or X-Heartbeat-Token)",
        responses=ANSWERS,
        security="public",
    )
