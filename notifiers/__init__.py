"""Notification channels: one module each, named after the channel (:mod:`.sms`, :mod:`.email`,
:mod:`.inbox`, :mod:`.webhook`), behind the interface in :mod:`notifiers.base`.

A new channel is one new module, its settings in :mod:`notifiers.settings` (a field of
:class:`~notifiers.settings.ChannelSettings`) and one line in :data:`CHANNELS`. A channel's
module, and its provider's client library, is imported only when the channel is configured
(twilio alone costs ~16 MB). The broker connection (:mod:`monitor.broker`) is not a channel:
the inbox pushes through it, the daemon's status topics too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import ChannelName, Notifier
from .inbox import Publisher
from .settings import ChannelSettings

__all__ = ["CHANNELS", "ChannelBuilder", "ChannelEnv"]


@dataclass(frozen=True, slots=True)
class ChannelEnv:
    """What the daemon hands every channel's builder besides the settings."""

    # The broker connection, when ``channels.mqtt`` is set (owned by the daemon).
    publisher: Publisher | None = None
    # ``alerting.status_page_url``: where the links of inbox pushes point (and a webhook
    # body's ``status_page_url``).
    site: str | None = None


ChannelBuilder = Callable[[ChannelSettings, ChannelEnv], Notifier | None]
"""Build a channel from the ``channels:`` section; ``None`` when it is not configured. A missing
secret raises ``ValueError``."""


def _sms(settings: ChannelSettings, env: ChannelEnv) -> Notifier | None:
    if settings.sms is None:
        return None
    from .sms import SmsNotifier  # noqa: PLC0415 - twilio, only when configured

    return SmsNotifier(settings.sms)


def _email(settings: ChannelSettings, env: ChannelEnv) -> Notifier | None:
    if settings.email is None:
        return None
    from .email import EmailNotifier  # noqa: PLC0415 - aiosmtplib, only when configured

    return EmailNotifier(settings.email)


def _inbox(settings: ChannelSettings, env: ChannelEnv) -> Notifier:
    from .inbox import InboxNotifier, StoredInbox  # noqa: PLC0415 - like the others

    # Always there: the notice is stored whatever happens; a broker only adds the push.
    return StoredInbox() if env.publisher is None else InboxNotifier(env.publisher, env.site)


def _webhook(settings: ChannelSettings, env: ChannelEnv) -> Notifier | None:
    if settings.webhook is None:
        return None
    from .webhook import WebhookNotifier  # noqa: PLC0415 - like the others

    return WebhookNotifier(settings.webhook, status_page_url=env.site)


#: Every channel by name: the daemon builds those its config sets up, in this order.
CHANNELS: dict[ChannelName, ChannelBuilder] = {
    "sms": _sms,
    "email": _email,
    "inbox": _inbox,
    "webhook": _webhook,
}
