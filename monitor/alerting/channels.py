"""Building the notifiers of the ``channels:`` section (:class:`ChannelSettings`), once, for the
daemon."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from notifiers.base import ChannelName, Delivery, Message, Notifier
from notifiers.settings import ChannelSettings

if TYPE_CHECKING:
    from notifiers.mqtt import MqttPublisher


class StoredInbox:
    """The inbox channel without a broker: the outbox already stored the notice."""

    channel: ChannelName = "inbox"

    async def send(self, message: Message) -> Delivery:
        return Delivery(message.key)

    async def aclose(self) -> None:
        return None


@dataclass
class Channels:
    """The daemon's notifiers by channel, and the MQTT connection if any."""

    notifiers: dict[ChannelName, Notifier] = field(default_factory=dict)
    publisher: MqttPublisher | None = None
    # Whether a text goes out whole as one SMS of the configured segments (the outbox merges
    # what waits for a number only as far as it fits).
    sms_fits: Callable[[str], bool] = field(default=lambda _text: True)

    @classmethod
    def build(
        cls,
        settings: ChannelSettings,
        vantage: str = "gw-1",
        will: tuple[str, bytes] | None = None,
        site: str | None = None,
    ) -> Channels:
        """Create every configured channel; a missing secret raises ``ValueError`` now.

        ``site`` (``alerting.status_page_url``) is where the links of inbox pushes point."""
        out = cls()
        if settings.mqtt is not None and "client_id" not in settings.mqtt.model_fields_set:
            # Two gateway hosts with one client id would knock each other off the broker.
            settings = settings.model_copy(
                update={
                    "mqtt": settings.mqtt.model_copy(
                        update={"client_id": f"npsp-monitor-{vantage}"}
                    )
                }
            )
        # A channel's module (and its provider's client library) is imported only when used.
        if settings.sms is not None:
            from notifiers.sms import SmsNotifier  # noqa: PLC0415

            sms = SmsNotifier(settings.sms)
            out.notifiers["sms"] = sms
            out.sms_fits = sms.fits
        if settings.email is not None:
            from notifiers.email import EmailNotifier  # noqa: PLC0415

            out.notifiers["email"] = EmailNotifier(settings.email)
        if settings.mqtt is not None:
            from notifiers.mqtt import InboxNotifier, MqttPublisher  # noqa: PLC0415

            out.publisher = MqttPublisher(settings.mqtt, will=will)
            out.notifiers["inbox"] = InboxNotifier(out.publisher, site)
        else:
            out.notifiers["inbox"] = StoredInbox()
        return out

    async def start(self) -> None:
        if self.publisher is not None:
            await self.publisher.start()

    async def aclose(self) -> None:
        for notifier in self.notifiers.values():
            with contextlib.suppress(Exception):
                await notifier.aclose()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.aclose()
