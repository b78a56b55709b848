"""What an announcement is (no I/O): the changes it names and how they are validated, the
request a sender gives and how a payload is read into one (the same sentences for MQTT, the API
and the command line), the stored announcement, the judged dates of one
(:class:`Timing`, computed in :mod:`.judge`), and a finding of the unannounced-change watch."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from npsp_common.types import LINE, TEXT, Moment, StrictModel, matching
from probes.tlsopts import format_fingerprint

from ...alerting.messages import local_iso
from ...registry import Override

MAX_PAYLOAD = 16 * 1024  # bytes of one MQTT announcement
MAX_AHEAD = dt.timedelta(days=400)  # an effective date further out is a typo
MAX_BACKDATED = dt.timedelta(days=365)  # a paper notice recorded later: at most a year old
CLOCK_SKEW = 300.0  # seconds an announcement's own time may run ahead of ours (5 minutes)
_HEX64 = re.compile(r"[0-9A-F]{64}")
# The sender's reference, e.g. CV-123/BTC or a dispatch number 123/QĐ-TTg (\w: Unicode letters
# and digits, so Vietnamese ones too; no spaces, no controls).
REF = r"[\w.:/-]{1,128}"
_REF_RULE = "1 to 128 letters (Vietnamese too), digits, or . _ : / -"
_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})?)*\.?$"
)


def _wrong(template: str, **context: str) -> PydanticCustomError:
    """A field's problem as the sender reads it (a plain ``ValueError`` would be shown with
    pydantic's "Value error," before it); ``context`` fills the template's ``{names}``."""
    return PydanticCustomError("announcement", template, context)


class Changes(StrictModel):
    """The registered information that changes; at least one field. Strict: ``"443"``,
    ``443.0`` or ``true`` is not a port."""

    model_config = ConfigDict(strict=True)

    host: Annotated[str, Field(max_length=253), LINE] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    addresses: (
        Annotated[
            list[Annotated[str, Field(max_length=64), LINE]], Field(min_length=1, max_length=16)
        ]
        | None
    ) = None
    fingerprint_sha256: Annotated[str, Field(max_length=200), LINE] | None = None
    issuer: Annotated[str, Field(min_length=1, max_length=512), LINE] | None = None
    text: Annotated[str, Field(min_length=1, max_length=2000), TEXT] | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:  # an IPv6 address may come in brackets, as in a URL
            bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
            return str(ipaddress.ip_address(bare))
        except ValueError:
            pass
        if not _HOST.match(value):
            raise _wrong("{value} is not a host name or IP address", value=repr(value))
        return value.lower().rstrip(".")

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            parsed = [ipaddress.ip_address(a) for a in value]
        except ValueError as exc:
            raise _wrong("{problem}", problem=str(exc)) from None
        if len({a.version for a in parsed}) > 1:
            raise _wrong("give IPv4 or IPv6 addresses, not both (one DNS record type)")
        return [str(a) for a in sorted(set(parsed))]  # the dns probe's canonical order

    @field_validator("fingerprint_sha256")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(":", "").replace(" ", "").upper()
        if not _HEX64.fullmatch(digits):
            raise _wrong("{value} is not a SHA-256 fingerprint (64 hex digits)", value=repr(value))
        return format_fingerprint(digits)

    @model_validator(mode="after")
    def _something(self) -> Changes:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise _wrong(
                "announce at least one change: host, port, addresses, fingerprint_sha256, "
                "issuer or text"
            )
        return self

    def override(self) -> Override:
        return Override(
            host=self.host,
            port=self.port,
            fingerprint_sha256=self.fingerprint_sha256,
            addresses=tuple(self.addresses) if self.addresses is not None else None,
        )

    @property
    def whitelists(self) -> bool:
        """Whether it names a value the checks will accept (not only a text)."""
        return any(
            getattr(self, name) is not None
            for name in ("host", "port", "addresses", "fingerprint_sha256", "issuer")
        )

    def summary(self) -> str:
        parts = []
        for name in ("host", "port", "addresses", "fingerprint_sha256", "issuer", "text"):
            value = getattr(self, name)
            if value is not None:
                shown = ", ".join(value) if isinstance(value, list) else str(value)
                parts.append(f"{name} → {shown}")
        return "; ".join(parts)


class AnnouncementRequest(StrictModel):
    """What a sender gives (MQTT JSON, CLI, API); the agency comes from the topic or caller.
    Strict: every value has its JSON type, text has no control characters."""

    model_config = ConfigDict(strict=True)

    system: Annotated[str, Field(min_length=1, max_length=64), LINE] | None = None
    effective_at: Moment
    announced_at: Moment | None = None  # when the agency registered it; default: received
    changes: Changes
    ref: (
        Annotated[str, Field(pattern=f"^{REF}$"), BeforeValidator(matching(REF, _REF_RULE))] | None
    ) = None
    author: Annotated[str, Field(min_length=1, max_length=200), LINE] | None = None


def valid_ref(value: object) -> str | None:
    """``value`` if it is a well-formed ``ref`` (to echo in an answer), else None."""
    return value if isinstance(value, str) and re.fullmatch(REF, value) else None


class AnnouncementRejected(ValueError):
    """An announcement that cannot be taken; the message says why, for the sender."""


@dataclass(frozen=True, slots=True)
class Announcement:
    """A stored announcement and what was computed of it."""

    id: int
    agency: str
    system: str
    ref: str | None
    announced_at: float
    effective_at: float
    changes: Changes
    source: str
    author: str
    working_days: int
    required: int
    compliant: bool
    created_at: float
    cancelled_at: float | None = None
    handled_at: float | None = None
    applied_at: float | None = None

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.system}"

    @property
    def recorded_in_effect(self) -> bool:
        """Recorded when its effective time had already passed (a paper notice recorded
        late): in effect at once, and not alerted as a late notice (it is counted as one)."""
        return self.created_at >= self.effective_at

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agency": self.agency,
            "system": self.system,
            "ref": self.ref,
            "announced_at": local_iso(self.announced_at),
            "effective_at": local_iso(self.effective_at),
            "changes": self.changes.model_dump(exclude_none=True),
            "source": self.source,
            "author": self.author,
            "working_days": self.working_days,
            "required": self.required,
            "compliant": self.compliant,
            "recorded_at": local_iso(self.created_at),
            "recorded_in_effect": self.recorded_in_effect,
            "cancelled_at": local_iso(self.cancelled_at),
            "applied_at": local_iso(self.applied_at),
        }


def describe(exc: ValidationError) -> str:
    """What is wrong with an announcement, for the person who sent it: each field and its
    problem (the same text from MQTT, the API and the command line), without pydantic's
    ``Value error,`` prefix, class names or regular expressions."""
    out = []
    for e in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"]) or "payload"
        msg = e["msg"].removeprefix("Value error, ").replace(" or instance of Changes", "")
        out.append(f"{where}: {msg}")
    return "; ".join(out)


_errors = describe


def load_document(payload: bytes) -> dict[str, Any]:
    """An MQTT/HTTP payload → its JSON object, or :class:`AnnouncementRejected` saying why."""
    if len(payload) > MAX_PAYLOAD:
        raise AnnouncementRejected(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD} bytes")
    try:
        document = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise AnnouncementRejected("payload is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise AnnouncementRejected(f"payload is not JSON: {exc.msg} at {exc.pos}") from None
    except RecursionError:
        raise AnnouncementRejected("payload is nested too deeply") from None
    if not isinstance(document, dict):
        raise AnnouncementRejected("payload must be a JSON object")
    return document


def request_from(document: dict[str, Any], agency: str) -> AnnouncementRequest:
    """A payload's JSON object for ``agency`` (from the topic or the URL) → a request, or
    :class:`AnnouncementRejected` saying why."""
    document = dict(document)
    named = document.pop("agency", agency)
    if named != agency:
        raise AnnouncementRejected(
            f"payload names agency {named!r} but was sent for {agency!r}: an agency announces "
            "only its own servers"
        )
    try:
        return AnnouncementRequest.model_validate(document)
    except ValidationError as exc:
        raise AnnouncementRejected(_errors(exc)) from None


def parse_request(payload: bytes, agency: str) -> AnnouncementRequest:
    """An MQTT/HTTP payload for ``agency`` (from the topic or the URL) → a request, or
    :class:`AnnouncementRejected` saying why."""
    return request_from(load_document(payload), agency)


@dataclass(frozen=True, slots=True)
class Timing:
    """An announcement's dates as judged by :func:`.judge.judge_times`."""

    announced_at: float
    effective_at: float
    working_days: int
    required: int
    compliant: bool
    in_effect: bool  # effective_at had already passed when it was recorded


# ----- what the unannounced-change watch finds (:mod:`.changewatch`)

WatchedField = Literal["fingerprint_sha256", "issuer", "addresses"]
FIELDS: tuple[WatchedField, ...] = ("fingerprint_sha256", "issuer", "addresses")


@dataclass(frozen=True, slots=True)
class Finding:
    """One unannounced change, as observed."""

    check_key: str
    field: WatchedField
    old: str
    new: str
    time: float

    @property
    def system_key(self) -> str:
        return self.check_key.rsplit("/", 1)[0]
