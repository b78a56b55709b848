"""The ``inbox`` channel: the portal account's inbox.

Every inbox notice is stored in the daemon's database (the outbox keeps it) and read through
the authenticated pages and API. With a broker (``channels.mqtt``), :class:`InboxNotifier` also
pushes that there is a new one: one JSON message per notice on ``{prefix}inbox/{account}``, QoS
1, not retained — a notification without content (its id, "new message", the links to the
inbox), never the message itself, which whoever can read a topic would read. Without a broker,
:class:`StoredInbox` has nothing to send.
"""

from __future__ import annotations

import json
from typing import Protocol

from notifiers.base import ChannelName, Delivery, Message, NotifyError
from notifiers.settings import site_base

__all__ = ["InboxNotifier", "Publisher", "StoredInbox", "check_topic_level"]


class Publisher(Protocol):
    """What the push needs of the broker connection (:class:`monitor.broker.MqttPublisher`)."""

    async def publish(
        self, topic_suffix: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None: ...


def check_topic_level(value: str, what: str) -> str:
    """Return ``value`` if it is one safe topic level: not empty, no ``+ # /`` or NUL."""
    if not value or any(ch in value for ch in "+#/\x00"):
        raise ValueError(f"{what} {value!r} is not a valid MQTT topic level")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid UTF-8") from None
    return value


class StoredInbox:
    """The inbox channel without a broker: the outbox already stored the notice."""

    channel: ChannelName = "inbox"

    async def send(self, message: Message) -> Delivery:
        return Delivery(message.key)

    async def aclose(self) -> None:
        return None


_NEW_MESSAGE = {"vi": "Bạn có thông báo mới", "en": "You have a new message"}


class InboxNotifier:
    """The ``inbox`` channel: that a portal account has a new message, as JSON on
    ``inbox/{account}`` — without its subject or text (operations' digests name every agency's
    failing systems and why; a topic is read by whoever the broker lets read it).

    ``site`` is the portal's address (``alerting.status_page_url``: its scheme and host are
    used) for the links; without it they are paths. The publisher is shared and owned by the
    daemon: ``aclose`` leaves it open.
    """

    channel: ChannelName = "inbox"

    def __init__(self, publisher: Publisher, site: str | None = None) -> None:
        self.publisher = publisher
        self.base = site_base(site)

    def payload(self, message: Message) -> bytes:
        """The JSON document the portal reads: the id and where to read the message."""
        document = {
            "key": message.key,
            "notification": _NEW_MESSAGE.get(message.language, _NEW_MESSAGE["vi"]),
            "language": message.language,
            "link": f"{self.base}/inbox",
            "api": f"{self.base}/api/v1/inbox",
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send(self, message: Message) -> Delivery:
        """Publish ``message`` once, QoS 1, not retained; the idempotency key is the id."""
        try:
            account = check_topic_level(message.to, "portal account")
        except ValueError as exc:
            raise NotifyError(f"inbox: {exc}", permanent=True) from None
        await self.publisher.publish(f"inbox/{account}", self.payload(message), qos=1)
        return Delivery(provider_id=message.key)

    async def aclose(self) -> None:
        """Nothing of its own to close."""
