"""The one small interface every notification channel implements.

A channel module (``notifiers/<channel>.py``) exposes a class with ``async send(message) ->
Delivery`` and ``async aclose()``, built by its line in :data:`notifiers.CHANNELS` from its part
of the daemon config (in :mod:`notifiers.settings`). ``send`` makes exactly one attempt:
on failure it raises :class:`NotifyError` saying whether the failure is permanent (do not retry:
an invalid number, a refused recipient) or worth a retry (connection lost, 5xx, 429 with its
``Retry-After``). Retrying, backoff and falling back to another channel live in one place, the
daemon's outbox, never inside a channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

ChannelName = Literal["sms", "email", "inbox", "webhook"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (a report's CSV); only the e-mail channel carries it."""

    filename: str
    content_type: str  # "text/csv"
    content: bytes


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one recipient on one channel.

    ``key`` is the idempotency key, derived from the event (never from the host), stable across
    retries and restarts. ``thread_key`` is the key of the first message about the same incident:
    e-mail follow-ups (repeat, escalation, resolved) are threaded to it.
    """

    key: str
    channel: ChannelName
    to: str  # E.164 phone, e-mail address, portal account, or webhook endpoint name
    subject: str
    text: str
    html: str | None = None
    thread_key: str | None = None
    language: str = "vi"
    attachments: tuple[Attachment, ...] = ()  # e-mail only; other channels ignore them
    # What the message is about, as data (an alert digest's systems and states, JSON-ready):
    # the webhook channel sends it; other channels ignore it.
    facts: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the provider said when it accepted the message."""

    provider_id: str | None = None  # Twilio SID, Message-ID, MQTT message id, X-Request-Id


class NotifyError(Exception):
    """A failed attempt; ``permanent`` failures must not be retried on this channel.

    ``maybe_delivered``: the outcome is unknown (no answer, connection lost after the request
    was written): the provider may have accepted it. The SMS budget then counts it as sent.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered
        # The provider's own code when it refused the recipient (Twilio "21211", SMTP "550"
        # on RCPT): the outbox flags such an address (monitor/contacts/hygiene.py).
        self.code = code


class Notifier(Protocol):
    """A channel, created once by the daemon and passed down."""

    channel: ChannelName

    async def send(self, message: Message) -> Delivery: ...

    async def aclose(self) -> None: ...
