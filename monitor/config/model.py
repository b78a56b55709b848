"""The daemon's configuration as pydantic models: the agencies, their contacts, systems and
checks, and the daemon's own sections (the ``alerting:`` section is in :mod:`.alerting`, the
channels' settings beside their channels in :mod:`notifiers.settings`)."""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from notifiers.settings import ChannelSettings
from npsp_common.types import CheckCommon, Duration, SecretSource, StrictModel
from probes import PROBES

from ..dblocation import DatabaseLocation, PostgresUrl, parse_location
from ..deadman import DeadmanSettings
from ..workdays import CalendarSettings
from .alerting import AlertingSettings
from .cluster import ClusterSettings
from .contacts import ContactsSettings
from .reports import ReportsSettings
from .retention import RetentionSettings

if TYPE_CHECKING:
    AnyCheck = CheckCommon
else:
    # One union member per probe kind, chosen by `kind`: a new kind in probes.PROBES is
    # accepted here without touching this module.
    AnyCheck = Annotated[
        Union[tuple(kind.spec for kind in PROBES.values())],  # noqa: UP007
        Field(discriminator="kind"),
    ]

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
E164 = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
Channel = Literal["sms", "email", "inbox", "webhook"]


def _as_list(value: object) -> object:
    """Let a single string stand for a one-item list (``depends_on: secure-server``)."""
    return [value] if isinstance(value, str) else value


class Contact(StrictModel):
    """A person who is told about an agency's systems."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Literal["technical-admin", "high-level-admin"]
    phone: E164 | None = None
    email: Email | None = None
    portal_account: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    webhook: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] | None = Field(
        default=None,
        description="The name of a receiver in channels.webhook.endpoints (its URL and keys"
        " are there, not here).",
    )
    channels: Annotated[list[Channel], Field(min_length=1)] = ["email", "inbox"]
    language: Literal["vi", "en"] = "vi"
    id: Slug | None = Field(
        default=None,
        description="The contact's stable id in its agency (default: `y-` and 10 hex digits"
        " of its agency and name); the API and the outbox know the person by it.",
    )
    account: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = Field(
        default=None,
        description="The account this person logs in with: revoking it stops every message"
        " to them.",
    )

    def contact_id(self, agency: str) -> str:
        """This contact's stable id in ``agency`` (see :mod:`monitor.contacts`)."""
        if self.id is not None:
            return self.id
        digest = hashlib.sha256(f"{agency}\0{self.name}".encode()).hexdigest()
        return "y-" + digest[:10]

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    def missing_addresses(self) -> list[str]:
        """Channels asked for without the address they need."""
        need = {
            "sms": self.phone,
            "email": self.email,
            "inbox": self.portal_account,
            "webhook": self.webhook,
        }
        field = {"sms": "phone", "email": "email", "inbox": "portal_account", "webhook": "webhook"}
        return [f"channel {c} needs {field[c]}" for c in self.channels if need[c] is None]


class System(StrictModel):
    """One monitored system of an agency (its secure server, one-stop system, portal, ...)."""

    id: Slug
    kind: Literal["secure-server", "one-stop", "public-service-portal", "integration", "other"]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: str | None = None
    public: bool = False
    depends_on: Annotated[list[str], BeforeValidator(_as_list)] = []
    checks: Annotated[list[AnyCheck], Field(min_length=1)]


class Agency(StrictModel):
    """A ministry, province or sector agency connected to the portal."""

    id: Slug
    kind: Literal["ministry", "province", "sector-agency"]
    name_vi: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: Annotated[str, Field(min_length=1, max_length=200)]
    code: Annotated[str, Field(min_length=1, max_length=32)]
    contacts: list[Contact] = []
    systems: list[System] = []

    @model_validator(mode="after")
    def _contact_ids_unique(self) -> Agency:
        seen: set[str] = set()
        for contact in self.contacts:
            cid = contact.contact_id(self.id)
            if contact.id is not None and cid.startswith("c-"):
                raise ValueError(f"contact id {cid}: ids starting with c- are the database's")
            if cid in seen:
                raise ValueError(f"contact id {cid} is used twice (give one contact an id:)")
            seen.add(cid)
        return self


class Defaults(StrictModel):
    """Values a check or system takes when it does not set its own."""

    interval: Duration = 60.0
    timeout: Duration = 10.0
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    success_threshold: Annotated[int, Field(ge=1, le=100)] = 1
    recheck_delay: Duration = 5.0
    flap_window: Duration = 3600.0
    flap_threshold: Annotated[int, Field(ge=2, le=1000)] = 6


class SchedulerConfig(StrictModel):
    """Limits on probes in flight."""

    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 1000
    max_per_host: Annotated[int, Field(ge=1, le=10_000)] = 8
    stall_after: Duration = 30.0  # /healthz fails when the dispatcher has not run for this long


class Uplink(StrictModel):
    """Canary checks of the gateway's own uplink; when all fail, the gateway is cut off."""

    checks: Annotated[list[AnyCheck], Field(min_length=1)]


def _listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("listen must be HOST:PORT, e.g. 127.0.0.1:9477")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"listen host {host!r} must be an IP address or localhost") from None
    return value


class HttpSettings(StrictModel):
    """The listener: TLS (and client certificates for mTLS login), limits."""

    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = Field(
        default=None, description="CA whose client certificates may log in (mTLS)."
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=16 << 20)] = 64 * 1024
    login_failures_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 10
    # A page login's server-side session ends after this long unused, and after session_max
    # whatever its use (logout and revoking the account end it at once).
    session_idle: Annotated[Duration, Field(ge=60, le=30 * 86400)] = 8 * 3600.0
    session_max: Annotated[Duration, Field(ge=60, le=366 * 86400)] = 7 * 86400.0
    # Reverse proxies whose X-Forwarded-Proto: https is believed (the session cookie is then
    # Secure); a request from any other address is judged by the listener's own TLS only.
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    @model_validator(mode="after")
    def _pairs(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.client_ca is not None and self.tls_cert is None:
            raise ValueError("client_ca (mTLS) needs tls_cert and tls_key")
        if self.session_idle > self.session_max:
            raise ValueError("session_idle cannot be longer than session_max")
        for path in (self.tls_cert, self.tls_key, self.client_ca):
            if path is not None and not path.is_file():
                raise ValueError(f"file {path} does not exist")
        return self


class SecuritySettings(StrictModel):
    """What targets that do not come from this config may reach.

    A host or port an agency announces (it becomes the check's target at the effective time) and
    the target of an http redirect to another host or port may not be a loopback, link-local,
    private (RFC 1918, ULA), unspecified, multicast, reserved or carrier-grade NAT address, nor an
    address of the gateway itself: pointed inward they would make the gateway a port scanner of
    its own networks. Hosts written in the config (the registry) may be anything, as before.
    ``allow_networks`` lists networks an operator permits all the same, e.g. the private WAN
    the agencies' secure servers live on: ``["10.20.0.0/16"]``. Empty (the default): none.
    """

    allow_networks: Annotated[list[str], Field(max_length=1000)] = []

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        out = []
        for text in value:
            try:
                out.append(str(ipaddress.ip_network(text)))
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a network like 10.20.0.0/16 ({exc})") from None
        return out


class Config(StrictModel):
    """The whole configuration of one gateway host's daemon."""

    vantage: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "gw-1"
    listen: Annotated[str, BeforeValidator(str)] = "127.0.0.1:9477"
    state_db: Annotated[
        DatabaseLocation,
        PlainValidator(parse_location),
        PlainSerializer(str),
        WithJsonSchema({"type": "string"}),
    ] = Field(
        Path("state/npsp-monitor.db"),
        description=(
            "The state database (state, outbox, announcements, incidents, accounts): a file "
            "path (embedded SQLite in WAL mode, one gateway host; relative to the config "
            "file) or "
            "`postgresql://USER@HOST:PORT/DB` (several hosts; TLS options such as "
            "`?sslmode=verify-full&sslrootcert=/etc/npsp-monitor/pg-ca.pem` in the URL, never "
            "a password)."
        ),
    )
    state_db_password_file: Path | None = Field(
        None,
        description=(
            "The PostgreSQL password, in a credential file (a relative name is looked up in "
            "$CREDENTIALS_DIRECTORY first)."
        ),
    )
    cluster: ClusterSettings = ClusterSettings()
    scheduler: SchedulerConfig = SchedulerConfig()
    defaults: Defaults = Defaults()
    uplink: Uplink | None = None
    include: list[str] = []
    agencies: list[Agency] = []
    alerting: AlertingSettings = AlertingSettings()
    channels: ChannelSettings = ChannelSettings()
    calendar: CalendarSettings = CalendarSettings()
    http: HttpSettings = HttpSettings()
    deadman: DeadmanSettings = DeadmanSettings()
    security: SecuritySettings = SecuritySettings()
    reports: ReportsSettings = ReportsSettings()
    retention: RetentionSettings = Field(
        RetentionSettings(),
        description=(
            "How long the state database keeps state changes, verdicts, notifications and "
            "inbox messages; the leader prunes the rest in small batches (the audit log, "
            "incidents, maintenance windows and each month's report figures are kept)."
        ),
    )
    contacts: ContactsSettings = Field(
        ContactsSettings(),
        description="The agencies' own contacts: how often they are asked to confirm them.",
    )

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _listen_address(v)))

    @model_validator(mode="after")
    def _password_for_postgres(self) -> Config:
        if self.state_db_password_file is not None and not self.shared_store:
            raise ValueError("state_db_password_file is for a postgresql:// state_db")
        return self

    @property
    def shared_store(self) -> bool:
        """The state database is PostgreSQL: several gateway hosts may share it."""
        return isinstance(self.state_db, PostgresUrl)

    def state_db_password(self) -> str | None:
        """The PostgreSQL password from its credential file (``ValueError`` naming the file,
        never the value)."""
        if self.state_db_password_file is None:
            return None
        return SecretSource(file=self.state_db_password_file).read().get_secret_value()
