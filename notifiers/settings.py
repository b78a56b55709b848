"""The channels' settings: light models the daemon's config embeds.

They live apart from the channels themselves so that loading a config never imports a provider's
client library (twilio alone costs ~16 MB): the registry :data:`notifiers.CHANNELS` imports a
channel's module only when that channel is configured. The daemon's config
(:mod:`monitor.config`) embeds :class:`ChannelSettings` as its ``channels:`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from npsp_common.types import Duration, SecretSource, StrictModel

__all__ = [
    "ADDRESS",
    "AGENCY_ID",
    "DOT_ATOM",
    "E164",
    "ChannelSettings",
    "EmailSettings",
    "MqttSettings",
    "SmsSettings",
    "WebhookEndpoint",
    "WebhookSettings",
    "site_base",
]

E164 = r"^\+[1-9][0-9]{6,14}$"
# Deliberately simple: one @, no spaces or angle brackets. The server has the final word.
ADDRESS = r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
DOT_ATOM = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$"
AGENCY_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"  # monitor.config.Slug


def site_base(url: str | None) -> str:
    """``https://npsp.dvc.example`` of ``https://npsp.dvc.example/status`` (scheme and host of a
    configured page, for links to other pages of the same site); ``""`` when there is none."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


class SmsSettings(StrictModel):
    """The ``sms`` channel: a Twilio account and the sender it sends as."""

    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: SecretSource
    from_number: Annotated[str, Field(pattern=E164)] | None = None
    messaging_service_sid: Annotated[str, Field(pattern=r"^MG[0-9a-fA-F]{32}$")] | None = None
    fold_diacritics: bool = Field(
        default=True,
        description="Write Vietnamese without diacritics: GSM-7 (160 chars) instead of UCS-2 (70).",
    )
    max_segments: Annotated[int, Field(ge=1, le=10)] = 2
    api_base_url: Annotated[str, Field(pattern=r"^https?://[^/?#]+$")] | None = Field(
        default=None,
        description="Only for tests and private gateways, e.g. http://127.0.0.1:8080.",
    )
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _one_sender(self) -> SmsSettings:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("give exactly one of from_number or messaging_service_sid")
        return self


class EmailSettings(StrictModel):
    """The ``email`` channel: the SMTP server (submission) and the sender."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretSource | None = None
    from_addr: Annotated[str, Field(pattern=ADDRESS)]
    from_name: str = "Cổng DVC quốc gia - Giám sát kết nối"
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the server with; default: system store."
    )
    timeout: Duration = 15.0
    message_id_domain: Annotated[str, Field(pattern=DOT_ATOM)] = "npsp-monitor.invalid"

    @model_validator(mode="after")
    def _credentials(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both username and password, or neither")
        if self.password is not None and self.security == "none":
            raise ValueError("a password would cross the network in clear: use starttls or tls")
        return self


class MqttSettings(StrictModel):
    """The broker the daemon publishes to (inbox alerts, status) and reads from."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    tls: bool = False
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the broker with; default: system store."
    )
    username: str | None = None
    password: SecretSource | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        default="npsp-monitor",
        description="Unique per host: the broker disconnects an older client with the same id"
        " (unset: npsp-monitor-<vantage>).",
    )
    topic_prefix: Annotated[str, Field(pattern=r"^[^+#\x00]*$")] = "npsp/"
    keepalive: Annotated[int, Field(ge=5, le=65535)] = 30
    timeout: Duration = Field(
        default=10.0, description="Bound on connecting and on the broker's PUBACK."
    )
    reconnect_max: Duration = Field(
        default=30.0, description="Cap of the jittered reconnect backoff."
    )
    status_detail: Literal["public", "full"] = Field(
        default="public",
        description="What <prefix>status/<agency>/<system> carries: 'public' is what the public "
        "/status page shows (state, since); 'full' adds the failure reason.",
    )
    announcement_tokens: dict[Annotated[str, Field(pattern=AGENCY_ID)], SecretSource] = Field(
        default={},
        description="Per agency, the token its MQTT announcements must carry (file or env; 16 "
        "to 256 characters). An agency without one cannot announce over MQTT.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false")
        return self


_HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"  # an RFC 9110 token
# Headers the webhook channel writes itself, and those that carry credentials (a secret
# belongs in ``authorization``, read from a file, never in the config).
_WEBHOOK_OWN_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "content-type",
        "cookie",
        "host",
        "idempotency-key",
        "proxy-authorization",
        "transfer-encoding",
        "user-agent",
    }
)


class WebhookEndpoint(StrictModel):
    """One receiver of the ``webhook`` channel: a contact names it (``webhook: <name>``)."""

    url: Annotated[str, Field(min_length=8, max_length=2048)] = Field(
        description="Where each message is POSTed: http:// or https://, no user:password@,"
        " no #fragment. Redirects are not followed: give the final URL."
    )
    secret: SecretSource | None = Field(
        default=None,
        description="HMAC-SHA256 key (a credential file, or env): each request then carries"
        " X-NPSP-Timestamp and X-NPSP-Signature: sha256=<hex> over '<timestamp>.<body>'"
        " (docs/webhook.md).",
    )
    authorization: SecretSource | None = Field(
        default=None,
        description="Sent as the Authorization header, verbatim (e.g. a file holding"
        " 'Bearer <token>'); https only.",
    )
    headers: dict[Annotated[str, Field(pattern=_HEADER_NAME)], str] = Field(
        default={},
        description="Extra request headers (not secret: no Authorization or Cookie here, and"
        " none of the headers the channel sets itself).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="CA bundle to verify an https receiver with; default: system store.",
    )
    timeout: Duration = Field(
        default=10.0, description="Bound on one attempt: connecting, sending, the answer."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the url must be http:// or https:// with a host, not {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("the url must not carry user:password@ (use authorization)")
        if parts.fragment or any(c.isspace() for c in url):
            raise ValueError("the url must have no #fragment and no spaces")
        return url

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, timeout: float) -> float:
        if not 0 < timeout <= 30:
            # The outbox's worker gives one attempt 60 s; a receiver slower than 30 s is down.
            raise ValueError("timeout must be more than 0s and at most 30s")
        return timeout

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name.lower() in _WEBHOOK_OWN_HEADERS or name.lower().startswith("x-npsp-"):
                raise ValueError(f"{name} is set by the channel itself or is a credential")
            if any(c in value for c in "\r\n\x00"):
                raise ValueError(f"the value of {name} has a line break")
        return headers

    @model_validator(mode="after")
    def _https_only(self) -> WebhookEndpoint:
        if urlsplit(self.url).scheme == "https":
            return self
        if self.ca_file is not None:
            raise ValueError("ca_file is set but the url is not https")
        if self.authorization is not None:
            raise ValueError("authorization would cross the network in clear: use an https url")
        return self


class WebhookSettings(StrictModel):
    """The ``webhook`` channel: the receivers contacts may name, by name."""

    endpoints: Annotated[
        dict[Annotated[str, Field(pattern=AGENCY_ID)], WebhookEndpoint], Field(min_length=1)
    ] = Field(
        description="Receivers by name (lower-case letters, digits, '-'); a contact's"
        " `webhook:` names one. URLs and keys live here, never in the registry (the request"
        " and its signature: docs/webhook.md)."
    )


class ChannelSettings(StrictModel):
    """How to reach the SMS provider, the mail server, the MQTT broker and webhook receivers.

    The portal inbox needs nothing: every inbox notice is stored in the daemon's database;
    with ``mqtt`` set, that a new one is there (not what it says) is pushed on
    ``<prefix>inbox/<account>``.
    """

    sms: SmsSettings | None = None
    email: EmailSettings | None = None
    mqtt: MqttSettings | None = None
    webhook: WebhookSettings | None = Field(
        default=None,
        description="Receivers of the webhook channel (a JSON POST per message, optionally"
        " signed; docs/webhook.md); a contact names one with `webhook:`.",
    )
