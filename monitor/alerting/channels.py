"""The daemon's channels, built once from the ``channels:`` section (:class:`ChannelSettings`)
through the registry :data:`notifiers.CHANNELS`, with the broker connection they share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from notifiers import CHANNELS, ChannelEnv
from notifiers.base import ChannelName, Notifier
from notifiers.settings import ChannelSettings

if TYPE_CHECKING:
    from ..broker import MqttPublisher

__all__ = ["Channels"]


@runtime_checkable
class _Measured(Protocol):
    """A channel that knows whether a text goes out whole (the SMS channel: its segments)."""

    def fits(self, text: str) -> bool: ...


def _always_fits(_text: str) -> bool:
    return True


@dataclass
class Channels:
    """The daemon's notifiers by channel, and the MQTT connection if any."""

    notifiers: dict[ChannelName, Notifier] = field(default_factory=dict)
    publisher: MqttPublisher | None = None
    # Whether a text goes out whole as one SMS of the configured segments (the outbox merges
    # what waits for a number only as far as it fits).
    sms_fits: Callable[[str], bool] = field(default=_always_fits)

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
        settings = _own_client_id(settings, vantage)
        publisher = None
        if settings.mqtt is not None:
            from ..broker import MqttPublisher  # noqa: PLC0415 - aiomqtt, only when used

            publisher = MqttPublisher(settings.mqtt, will=will)
        env = ChannelEnv(publisher=publisher, site=site)
        notifiers = {
            name: notifier
            for name, build in CHANNELS.items()
            if (notifier := build(settings, env)) is not None
        }
        sms = notifiers.get("sms")
        fits = sms.fits if isinstance(sms, _Measured) else _always_fits
        return cls(notifiers, publisher, fits)

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


def _own_client_id(settings: ChannelSettings, vantage: str) -> ChannelSettings:
    """``mqtt.client_id`` defaults to ``npsp-monitor-<vantage>``: two gateway hosts with one
    client id would knock each other off the broker."""
    if settings.mqtt is None or "client_id" in settings.mqtt.model_fields_set:
        return settings
    mqtt = settings.mqtt.model_copy(update={"client_id": f"npsp-monitor-{vantage}"})
    return settings.model_copy(update={"mqtt": mqtt})
