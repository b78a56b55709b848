"""Types shared by the daemon and its leaf packages (``probes/``, ``notifiers/``).

It imports none of them (an import-linter contract says so), and holds no logic beyond parsing
of small value types, so that a probe or a channel stays a leaf.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "LINE",
    "TEXT",
    "CheckCommon",
    "DataTime",
    "Duration",
    "Freshness",
    "Moment",
    "ProbeResult",
    "SecretSource",
    "StrictModel",
    "Why",
    "parse_duration",
]


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Parse ``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d`` into seconds.

    A bare number is refused: ``timeout: 5`` could mean seconds or minutes, and a monitor that
    guesses wrong misses an outage.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a duration must be a string such as 30s, 5m or 1h30m")
    if isinstance(value, int | float):
        raise ValueError(f"duration {value!r} has no unit: write e.g. {value}s or {value}m")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use e.g. 500ms, 30s, 5m, 1h30m, 2d")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError("empty duration")
    if total <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way a person writes them (``5s``, ``1m30s``, ``250ms``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""A duration in seconds, written in config as ``30s``, ``5m``, ``1h30m``."""


class SecretSource(StrictModel):
    """Where a secret comes from: a file (systemd credential) or an environment variable.

    Secrets never sit in the YAML itself. A relative ``file`` is looked up in
    ``$CREDENTIALS_DIRECTORY`` first (systemd ``LoadCredential=``).
    """

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretSource:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of file or env")
        return self

    def read(self) -> SecretStr:
        """Return the secret; raise ``ValueError`` naming the source (never the value)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(value)
        assert self.file is not None
        path = self.file
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if not path.is_absolute() and creds and (Path(creds) / path).exists():
            path = Path(creds) / path
        try:
            return SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


class CheckCommon(StrictModel):
    """Fields every check has, whatever its kind; a probe's spec model extends this.

    Unset values (None) take the daemon's ``defaults``.
    """

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
    kind: str
    interval: Duration | None = None
    timeout: Duration | None = None
    failure_threshold: Annotated[int, Field(ge=1, le=100)] | None = None
    success_threshold: Annotated[int, Field(ge=1, le=100)] | None = None
    host_key: str | None = Field(
        default=None,
        description="Key of the per-host concurrency limit; defaults to the target's host.",
    )

    def target_host(self) -> str:
        """The host this check talks to, for the per-host concurrency limit."""
        return self.host_key or "-"


class Freshness(StrictModel):
    """How old a system's data may be, counted in *working hours of its agency* (its calendar:
    weekends, public holidays, swapped days, the agency's own hours), so that a province that
    sends nothing on Sunday is not stale on Monday at 08:05.

    The probe finds the data's time — a JSON field of an ``http`` or ``api`` response
    (``path``), or the last push of a ``heartbeat`` check (no ``path``) — and the daemon, which
    knows the calendar, judges its age (``monitor.freshness``).
    """

    path: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        default=None,
        description="http/api: the JSON field holding the data's time (ISO 8601, or epoch "
        "seconds or milliseconds); heartbeat: leave unset (the time of the last push).",
    )
    max_working_hours: Annotated[float, Field(gt=0, le=10000)] = Field(
        description="Stale when the data is older than this many working hours of the agency."
    )
    severity: Literal["degraded", "down"] = Field(
        default="degraded", description="What stale data makes the system: degraded or down."
    )


_NOTHING_OBSERVED: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Why:
    """A reason as a code and its parameters, rendered later in the reader's language.

    ``code`` names a template (``tcp.refused``, ``http.status``, ``system.flapping``...);
    ``params`` holds what fills it: text, numbers, or nested reasons (a ``Why``, or a tuple of
    them) for reasons built from others. Stored as JSON (:meth:`to_json`).
    """

    code: str
    params: Mapping[str, Any] = field(default_factory=lambda: _NOTHING_OBSERVED)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": {k: _why_out(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: object) -> Why | None:
        """The reason stored by :meth:`to_json`; None for anything else (an older row)."""
        if not isinstance(data, dict) or not isinstance(data.get("code"), str):
            return None
        raw = data.get("params")
        params = raw if isinstance(raw, dict) else {}
        return cls(data["code"], {str(k): _why_in(v) for k, v in params.items()})


def _why_out(value: Any) -> Any:
    if isinstance(value, Why):
        return value.to_json()
    if isinstance(value, tuple | list):
        return [_why_out(v) for v in value]
    return value


def _why_in(value: Any) -> Any:
    if isinstance(value, dict):
        return Why.from_json(value)
    if isinstance(value, list):
        return tuple(_why_in(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class DataTime:
    """When a check's data was last new (epoch seconds, as the probe read it) and, once the
    daemon judged it with the agency's calendar, its age in working hours."""

    at: float
    age_working_hours: float | None = None
    # A push check that heard nothing since this process started: ``at`` is that start.
    since_start: bool = False


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe run found.

    ``reason`` is a sentence a technical administrator understands ("connect: refused",
    "HTTP 503", "TLS: certificate expired 2026-11-01", "timeout after 5s"). ``observed`` holds
    facts that later rules compare with what was announced (``fingerprint_sha256``, ``issuer``,
    ``addresses``). A probe never raises: every failure is a result.
    """

    ok: bool
    reason: str
    duration: float
    cert_not_after: float | None = None
    # Shared empty default: a fresh dict per result cost ~6 MB of history at 10,000 checks.
    observed: Mapping[str, str] = field(default_factory=lambda: _NOTHING_OBSERVED)
    status_code: int | None = None
    # The reason as a code, for the reader's language; None: only ``reason`` is known.
    why: Why | None = None
    # Passed, but a warning condition holds (slow, certificate expiring soon): with ``ok`` true,
    # the check is healthy and its system DEGRADED rather than UP.
    degraded: bool = False
    # A check with a freshness condition: when its data was last new (one slot, None for every
    # other check: results are kept by the ten thousand).
    data: DataTime | None = None


def printable(text: str) -> str:
    """``text`` with every non-printable character (controls C0 and C1, DEL, line and paragraph
    separators...) written as ``\\xNN`` / ``\\uNNNN``: safe on a terminal, a page and an SMS."""
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


ProbeKindName = Literal["tcp", "tls", "http", "dns"]
JSONValue = Any


# ----- strict input from outside (HTTP bodies, MQTT payloads) ----------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # \t and \n allowed


def _plain(value: object, controls: re.Pattern[str], allowed: str) -> object:
    """Refuse lone surrogates and control characters; other types are left to the strict
    ``str`` check, which names the wrong type."""
    if not isinstance(value, str):
        return value
    found = _SURROGATE.search(value)
    if found is not None:
        raise PydanticCustomError(
            "lone_surrogate",
            "is not valid Unicode (a lone surrogate at character {at})",
            {"at": found.start() + 1},
        )
    found = controls.search(value)
    if found is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters{allowed} (U+{code} at character {at})",
            {"allowed": allowed, "code": f"{ord(found.group()):04X}", "at": found.start() + 1},
        )
    return value


def plain_line(value: object) -> object:
    """One line of text: no control characters at all, valid Unicode."""
    return _plain(value, _CONTROL_IN_LINE, "")


def plain_text(value: object) -> object:
    """Text of several lines: line feeds and tabs, no other control characters. Windows line
    ends (CR LF, and a lone CR) become line feeds: tools on Windows send them."""
    if isinstance(value, str) and "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _plain(value, _CONTROL_IN_TEXT, " other than line feeds and tabs")


LINE = BeforeValidator(plain_line)
"""Marks a string from outside as one line: ``Annotated[str, Field(max_length=…), LINE]`` (the
length bounds go before it, and the model is strict or the field has ``Strict()``)."""
TEXT = BeforeValidator(plain_text)
"""Marks a string from outside that may hold line feeds and tabs (as :data:`LINE`)."""


def _moment(value: object) -> object:
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise PydanticCustomError(
                "datetime_text", "a date and time is ISO 8601 text, e.g. 2026-12-14T08:00+07:00"
            )
        return _LAX_MOMENT.validate_python(value)
    if isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "datetime_text", "a date and time is written as text, e.g. 2026-12-14T08:00+07:00"
    )


_LAX_MOMENT: TypeAdapter[datetime] = TypeAdapter(datetime)
# A Unix time written as text ("1798000000") is not ISO 8601: pydantic's lax mode would take it.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:$|[T ])")
Moment = Annotated[datetime, BeforeValidator(_moment)]
"""A date and time from outside: ISO 8601 text only (no Unix numbers); it works in strict
models, where a plain ``datetime`` field would refuse text."""


def matching(pattern: str, what: str) -> Callable[[object], object]:
    """A ``BeforeValidator`` that refuses a string not matching ``pattern``, saying ``what``
    it should be (a person reads the answer, not the regular expression)."""
    compiled = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise PydanticCustomError("text_pattern", "must be {what}", {"what": what})
        return value

    return check
