"""Webhooks: one ``POST`` of a versioned JSON body to a receiver named in the daemon config.

For agencies that relay alerts into their own systems (an SMS brandname gateway, a ticketing
system). A contact names an endpoint (``webhook: <name>``); its URL, keys and headers are in
``channels.webhook.endpoints.<name>``, never in the registry. The body and the headers are
documented, with a receiver's signature check, in ``docs/webhook.md``.

One ``send`` is one request on a new connection (aiohttp, one session per notifier; no
keep-alive, so a connection the receiver closed while idle never fails a send; no redirects
followed, no cookies kept, no proxy from the environment). How the answer is classed:

=============================================  =========  ====================================
what happened                                  permanent  why
=============================================  =========  ====================================
2xx                                            -          delivered
3xx                                            yes        redirects are refused: configure the
                                                          final URL
408, 429, 5xx                                  no         ``retry_after`` from ``Retry-After``
other 4xx (400, 401, 403, 404, 413...)         yes        the receiver refuses this request
certificate not trusted                        yes        a configuration error (``ca_file``)
connection refused, no route, DNS, timeout     no         not sent: retried
  before the request was written
timeout or connection lost after the request   no         ``maybe_delivered``: the receiver may
  was written                                             have it (the retry carries the same
                                                          ``Idempotency-Key``)
=============================================  =========  ====================================
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from notifiers.base import ChannelName, Delivery, Message, NotifyError
from notifiers.settings import WebhookEndpoint
from notifiers.settings import WebhookSettings as Settings
from npsp_common.types import SecretSource

__all__ = [
    "PAYLOAD_VERSION",
    "Settings",
    "WebhookNotifier",
    "payload",
    "sign",
]

log = logging.getLogger(__name__)

#: The ``version`` of the JSON body; a change a receiver could trip on gets a new one.
PAYLOAD_VERSION = "1"
USER_AGENT = f"npsp-monitor-webhook/{PAYLOAD_VERSION}"
# Of an answer, read at most this much (only for the reason of a refusal).
MAX_ANSWER_BYTES = 4096
_REASON_CHARS = 200
_RETRY_STATUSES = frozenset({408, 429})


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-NPSP-Signature`` value: ``sha256=`` and the hex HMAC-SHA256, under ``key``, of
    ``<timestamp>.`` followed by the exact body bytes."""
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(message: Message, *, sent_at: float, status_page_url: str | None = None) -> bytes:
    """The JSON body of ``message`` (UTF-8, compact): what ``docs/webhook.md`` documents."""
    thread = message.thread_key or message.key
    body: dict[str, object] = {
        "version": PAYLOAD_VERSION,
        "id": message.key,
        "thread_id": thread,
        "follow_up": thread != message.key,
        "receiver": message.to,
        "language": message.language,
        "subject": message.subject,
        "text": message.text,
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent_at)),
        "sender": "npsp-monitor",
    }
    if status_page_url:
        body["status_page_url"] = status_page_url
    if message.facts is not None:  # an alert digest: its kind and alerts, as data
        body.update({k: message.facts[k] for k in ("kind", "alerts", "more") if k in message.facts})
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _read_secret(name: str, field: str, source: SecretSource | None) -> SecretStr | None:
    if source is None:
        return None
    try:
        secret = source.read()
    except ValueError as exc:
        raise ValueError(f"webhook.endpoints.{name}.{field}: {exc}") from None
    if not secret.get_secret_value():
        raise ValueError(f"webhook.endpoints.{name}.{field}: the secret is empty")
    if any(c in secret.get_secret_value() for c in "\r\n\x00"):
        raise ValueError(f"webhook.endpoints.{name}.{field}: the secret has a line break inside")
    return secret


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One receiver, its secrets read and its TLS context built."""

    name: str
    settings: WebhookEndpoint
    where: str  # scheme://host:port, for reasons (the path and query may carry a token)
    key: SecretStr | None
    authorization: SecretStr | None
    tls: ssl.SSLContext | None

    @classmethod
    def build(cls, name: str, settings: WebhookEndpoint) -> _Endpoint:
        parts = urlsplit(settings.url)
        tls = None
        if parts.scheme == "https":
            try:
                tls = ssl.create_default_context(
                    cafile=None if settings.ca_file is None else str(settings.ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"webhook.endpoints.{name}.ca_file: cannot load {settings.ca_file}: {exc}"
                ) from None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            name,
            settings,
            f"{parts.scheme}://{parts.hostname}:{port}",
            _read_secret(name, "secret", settings.secret),
            _read_secret(name, "authorization", settings.authorization),
            tls,
        )

    def redact(self, text: str) -> str:
        """``text`` without the URL's path and query, the key or the authorization."""
        text = text.replace(self.settings.url, self.where)
        for secret in (self.key, self.authorization):
            if secret is not None:
                text = text.replace(secret.get_secret_value(), "********")
        return text


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _printable(raw: bytes, redact: Callable[[str], str] = str) -> str:
    """``raw`` on one line, printable, redacted (before it is cut: a secret cut in two would
    not be found), at most ``_REASON_CHARS`` characters."""
    text = raw.decode("utf-8", "replace")
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return redact(text)[:_REASON_CHARS]


async def _headers_sent(
    _session: aiohttp.ClientSession,
    context: SimpleNamespace,
    _params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    # From here on the receiver may act on the request: an unanswered one may be delivered.
    state = context.trace_request_ctx
    if isinstance(state, _Attempt):
        state.written = True


class _Attempt:
    """Whether one request reached the wire (set by the session's trace hook)."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = False


class WebhookNotifier:
    """POSTs one JSON body per ``send`` to the endpoint the message names; created once.

    Every endpoint's secrets and CA are read when it is built: a missing file fails at
    startup, naming ``webhook.endpoints.<name>.<field>``, not at the first outage.
    """

    channel: ChannelName = "webhook"

    def __init__(
        self,
        settings: Settings,
        *,
        status_page_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.status_page_url = status_page_url
        self.clock = clock
        self._endpoints: Mapping[str, _Endpoint] = {
            name: _Endpoint.build(name, endpoint) for name, endpoint in settings.endpoints.items()
        }
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_headers_sent)
            # Created on first use, inside the running loop. A connection per request (a
            # pooled one the receiver closed while idle would fail the POST, which aiohttp
            # does not retry), no cookies kept between receivers, no proxy from the environment.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                trace_configs=[trace],
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    def request(self, message: Message) -> tuple[_Endpoint, bytes, dict[str, str]]:
        """The endpoint, body and headers of one attempt at ``message`` (signed now)."""
        endpoint = self._endpoints.get(message.to)
        if endpoint is None:
            raise NotifyError(
                f"webhook: no endpoint named {message.to!r} in channels.webhook.endpoints",
                permanent=True,
            )
        now = self.clock()
        body = payload(message, sent_at=now, status_page_url=self.status_page_url)
        headers = dict(endpoint.settings.headers)
        headers.update(
            {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Idempotency-Key": message.key,
            }
        )
        if endpoint.key is not None:
            timestamp = int(now)
            headers["X-NPSP-Timestamp"] = str(timestamp)
            headers["X-NPSP-Signature"] = sign(
                endpoint.key.get_secret_value().encode(), timestamp, body
            )
        if endpoint.authorization is not None:
            headers["Authorization"] = endpoint.authorization.get_secret_value()
        return endpoint, body, headers

    async def send(self, message: Message) -> Delivery:
        """Make one attempt to POST ``message`` to its endpoint; return the receiver's
        ``X-Request-Id`` if it gave one.

        An attempt that timed out or lost its connection after the request was written may
        have been acted on: it is marked ``maybe_delivered``, and the retry carries the same
        ``Idempotency-Key`` (and body ``id``) so the receiver can drop the copy.
        """
        endpoint, body, headers = self.request(message)
        attempt = _Attempt()
        name, timeout = endpoint.name, endpoint.settings.timeout
        try:
            async with self._client().post(
                endpoint.settings.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                ssl=endpoint.tls if endpoint.tls is not None else True,
                timeout=aiohttp.ClientTimeout(total=timeout),
                trace_request_ctx=attempt,
            ) as response:
                status = response.status
                if 200 <= status < 300:
                    request_id = response.headers.get("X-Request-Id")
                    log.debug("webhook %s accepted by %s (HTTP %d)", message.key, name, status)
                    return Delivery(None if not request_id else _printable(request_id.encode()))
                answer = await response.content.read(MAX_ANSWER_BYTES)
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorCertificateError as exc:
            raise NotifyError(
                f"webhook {name}: the certificate of {endpoint.where} is not trusted "
                f"({getattr(exc.certificate_error, 'verify_message', None) or 'verify failed'});"
                f" check channels.webhook.endpoints.{name}.ca_file and the url's host",
                permanent=True,
            ) from None
        except TimeoutError:
            raise NotifyError(
                f"webhook {name}: no answer from {endpoint.where} within {timeout:g}s"
                + (" (the receiver may have it)" if attempt.written else ""),
                permanent=False,
                maybe_delivered=attempt.written,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise NotifyError(
                endpoint.redact(
                    f"webhook {name}: {'connection to' if attempt.written else 'cannot reach'} "
                    f"{endpoint.where} failed: {type(exc).__name__}: {exc}"
                ),
                permanent=False,
                maybe_delivered=attempt.written,
            ) from None
        raise self._refused(endpoint, status, answer, retry_after)

    def _refused(
        self, endpoint: _Endpoint, status: int, answer: bytes, retry_after: str | None
    ) -> NotifyError:
        name = endpoint.name
        detail = _printable(answer, endpoint.redact)
        reason = endpoint.redact(
            f"webhook {name}: {endpoint.where} answered HTTP {status}"
            + (f": {detail}" if detail else "")
        )
        if 300 <= status < 400:
            return NotifyError(
                f"webhook {name}: {endpoint.where} answered HTTP {status} (a redirect, not "
                f"followed: give the final URL in channels.webhook.endpoints.{name}.url)",
                permanent=True,
            )
        if status in _RETRY_STATUSES or status >= 500:
            return NotifyError(
                reason, permanent=False, retry_after=_retry_after(retry_after, self.clock())
            )
        if 400 <= status < 500:
            return NotifyError(reason, permanent=True)
        return NotifyError(reason, permanent=False)  # 1xx as a final answer: odd, try again

    async def aclose(self) -> None:
        """Close the HTTP session (and its connections)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"WebhookNotifier(endpoints={sorted(self._endpoints)!r})"
