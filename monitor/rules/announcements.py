"""Change announcements of a secure server's registered information (regulation C.2).

An agency announces that its secure server's address, host name, port, certificate or CA changes
at a given time. The notice is counted in working days strictly between the day announced and
the day it takes effect (:meth:`monitor.workdays.WorkCalendar.notice`); short of the rule
(3 working days) it is a violation: counted in ``npsp_change_notice_violations_total`` and told,
once, to operations, to the agency's admins and to every agency whose systems depend on that
server. Every accepted announcement, compliant or late, is confirmed once to the agency's
technical and high-level admins and to operations, with the way to cancel it: an announcement
whitelists a certificate, host or address, so nobody may make one in an agency's name unseen.
At the effective time the expected values of the system's checks switch
(:class:`monitor.registry.Override`).

Announcements come from the command line (written straight to the database; the daemon notices
within a second), from MQTT ``<prefix>announcements/<agency>`` (JSON, validated here,
authenticated by the agency's token in :mod:`monitor.rules.intake`) and from the HTTP API
(accounts). Who announced is recorded in ``author``: ``mqtt:<agency>``, the API account, or
``cli:<user>``. ``ref`` is the sender's own id: a message delivered twice is stored once.

**When it was announced** (:func:`judge_times`, the one rule for every path). ``announced_at``
is when the agency gave notice; it defaults to when the announcement is recorded. A notice
given on paper and recorded later keeps its real date (at most :data:`MAX_BACKDATED` ago); a
date ahead of the monitor's clock by more than :data:`CLOCK_SKEW` (5 minutes) is refused, and
``effective_at`` must come after it. The notice is judged against that real date. One recorded
when its effective time has already passed is a change *in effect*: its values are expected at
once (no unannounced-change alarm for them), it is confirmed to the agency as every
announcement is, a late one is recorded and counted as late (``compliant`` false,
``npsp_change_notice_violations_total``) but no late-notice alert goes out — there is nothing
left to prepare for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from notifiers.settings import site_base
from npsp_common.types import LINE, TEXT, Moment, StrictModel, matching
from probes.addresspolicy import AddressPolicy
from probes.tlsopts import format_fingerprint

from ..alerting.messages import local_iso, local_time
from ..alerting.notices import Notice, admins_and_operations, everyone
from ..registry import Override, Registry
from ..store import Store
from ..workdays import WorkCalendar
from .desk import RulesContext

log = logging.getLogger(__name__)

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


def _aware(calendar: WorkCalendar, moment: dt.datetime) -> dt.datetime:
    return calendar.local(moment)


@dataclass(frozen=True, slots=True)
class Timing:
    """An announcement's dates as judged by :func:`judge_times`."""

    announced_at: float
    effective_at: float
    working_days: int
    required: int
    compliant: bool
    in_effect: bool  # effective_at had already passed when it was recorded


def _shown(moment: dt.datetime) -> str:
    """A moment as people write it: to the minute, or to the second when it has seconds."""
    whole = moment.replace(microsecond=0)
    return whole.isoformat(timespec="minutes") if whole.second == 0 else whole.isoformat()


def judge_times(
    announced_at: dt.datetime | None,
    effective_at: dt.datetime,
    *,
    calendar: WorkCalendar,
    now: float,
) -> Timing:
    """The one rule for an announcement's dates, whichever way it came (command line, HTTP API,
    MQTT): :class:`AnnouncementRejected` with a sentence saying why, or its notice.

    * ``announced_at`` (default: ``now``, when it is recorded) is when the agency gave notice.
      A notice given on paper and recorded later keeps its real date, at most
      :data:`MAX_BACKDATED` (a year) ago; a date later than ``now`` by more than
      :data:`CLOCK_SKEW` (5 minutes, for the sender's clock) is refused.
    * ``effective_at`` comes after ``announced_at``, within :data:`MAX_AHEAD` of it.
    * The notice is counted against the real ``announced_at`` (working days strictly between
      the two days, :meth:`monitor.workdays.WorkCalendar.notice`): at least the rule's
      3 working days is compliant.
    * ``effective_at`` at or before ``now``: the change is already in effect (``in_effect``).
    """
    try:
        announced = (
            _aware(calendar, announced_at)
            if announced_at is not None
            else dt.datetime.fromtimestamp(now, calendar.tz)
        )
        effective = _aware(calendar, effective_at)
        announced_ts, effective_ts = announced.timestamp(), effective.timestamp()
        recorded = dt.datetime.fromtimestamp(now, calendar.tz)
    except (OverflowError, ValueError):
        raise AnnouncementRejected(
            "A date is out of range: give dates such as 2026-12-14T08:00+07:00."
        ) from None
    if announced_ts > now + CLOCK_SKEW:
        raise AnnouncementRejected(
            f"announced_at {_shown(announced)} is in the future (the monitor's clock says "
            f"{_shown(recorded)}; up to {int(CLOCK_SKEW // 60)} minutes ahead is allowed for "
            "clock differences): give the date the notice was actually given, or leave "
            "announced_at out to use the time it is recorded."
        )
    if announced_ts < now - MAX_BACKDATED.total_seconds():
        raise AnnouncementRejected(
            f"announced_at {_shown(announced)} is more than a year ({MAX_BACKDATED.days} days) "
            "ago: a notice that old is not recorded; announce the change again with today's "
            "date."
        )
    if effective <= announced:
        raise AnnouncementRejected(
            f"effective_at {_shown(effective)} is not after announced_at {_shown(announced)}: "
            "a change takes effect after it is announced."
        )
    if effective - announced > MAX_AHEAD:
        raise AnnouncementRejected(
            f"effective_at {_shown(effective)} is more than {MAX_AHEAD.days} days ahead of "
            "announced_at: announce it nearer the time."
        )
    rule = calendar.settings.rules.secure_server_change_notice
    try:
        notice = calendar.notice(announced, effective)
    except (OverflowError, ValueError) as exc:
        raise AnnouncementRejected(f"The notice cannot be counted: {exc}.") from None
    return Timing(
        announced_at=announced_ts,
        effective_at=effective_ts,
        working_days=notice.working_days,
        required=rule.value,
        compliant=notice.meets(rule),
        in_effect=effective_ts <= now,
    )


def examine(
    request: AnnouncementRequest,
    agency: str,
    *,
    registry: Registry,
    calendar: WorkCalendar,
    now: float,
    source: str,
) -> Announcement:
    """Check an announcement against the registry and the calendar; compute its notice."""
    systems = [e for e in registry.systems.values() if e.agency.id == agency]
    if not systems:
        raise AnnouncementRejected(f"unknown agency {agency!r}")
    if request.system is None:
        secure = [e for e in systems if e.system.kind == "secure-server"]
        if len(secure) != 1:
            raise AnnouncementRejected(
                f"agency {agency} has {len(secure)} secure servers: name the system"
            )
        entry = secure[0]
    else:
        found = registry.systems.get(f"{agency}/{request.system}")
        if found is None:
            raise AnnouncementRejected(f"agency {agency} has no system {request.system!r}")
        if found.system.kind != "secure-server":
            raise AnnouncementRejected(
                f"{found.key} is a {found.system.kind}, not a secure server: change "
                "announcements are for secure servers only (regulation C.2)"
            )
        entry = found
    problem = _inward(request.changes, registry.address_policy)
    if problem is not None:
        raise AnnouncementRejected(problem)
    times = judge_times(request.announced_at, request.effective_at, calendar=calendar, now=now)
    # Without the sender's own ref, the content is the identity: a message delivered twice
    # (MQTT QoS 1) is stored, and alerted, once.
    ref = (
        request.ref
        or "auto-"
        + hashlib.sha256(
            json.dumps(
                [entry.system.id, times.effective_at, request.changes.model_dump(mode="json")],
                sort_keys=True,
            ).encode()
        ).hexdigest()[:24]
    )
    return Announcement(
        id=0,
        agency=agency,
        system=entry.system.id,
        ref=ref,
        announced_at=times.announced_at,
        effective_at=times.effective_at,
        changes=request.changes,
        source=source,
        author=request.author or source,
        working_days=times.working_days,
        required=times.required,
        compliant=times.compliant,
        created_at=now,
    )


def _inward(changes: Changes, policy: AddressPolicy) -> str | None:
    """Why announced values would point the probes inside the gateway's networks, if they do.
    A host name is judged here only when it always means this host (``localhost``); others are
    judged on every connection, after they are resolved (``probes.addresspolicy``)."""
    if changes.host is not None:
        why = policy.host_refusal(changes.host)
        if why is not None:
            return f"changes.host: {why}"
    for address in changes.addresses or ():
        why = policy.refusal(address)
        if why is not None:
            return f"changes.addresses: {why}"
    return None


# ----- the store ------------------------------------------------------------------------------

_SELECT = (
    "SELECT id, agency, system, ref, announced_at, effective_at, changes, source, author,"
    " working_days, required, compliant, created_at, cancelled_at, handled_at, applied_at"
    " FROM announcements"
)


def _row(row: tuple[Any, ...]) -> Announcement:
    (id_, agency, system, ref, ann, eff, changes, source, author, wd, req, ok, created, *rest) = row
    cancelled, handled, applied = rest
    return Announcement(
        int(id_),
        agency,
        system,
        ref,
        ann,
        eff,
        Changes.model_validate_json(changes),
        source,
        author,
        int(wd),
        int(req),
        bool(ok),
        created,
        cancelled,
        handled,
        applied,
    )


async def save(store: Store, a: Announcement) -> tuple[Announcement, bool]:
    """Store ``a``; return the stored row and whether it is new (False: same ``ref`` again)."""

    def write(db: sqlite3.Connection) -> tuple[Announcement, bool]:
        if a.ref is not None:
            old = db.execute(
                _SELECT + " WHERE agency = ? AND ref = ?", (a.agency, a.ref)
            ).fetchone()
            if old is not None:
                return _row(old), False
        cur = db.execute(
            "INSERT INTO announcements (agency, system, ref, announced_at, effective_at, changes,"
            " source, author, working_days, required, compliant, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.agency,
                a.system,
                a.ref,
                a.announced_at,
                a.effective_at,
                a.changes.model_dump_json(exclude_none=True),
                a.source,
                a.author,
                a.working_days,
                a.required,
                int(a.compliant),
                a.created_at,
            ),
        )
        return replace(a, id=int(cur.lastrowid or 0)), True

    return await store.transact(write)


async def load_all(store: Store) -> list[Announcement]:
    """Every announcement, oldest effective first."""
    rows = await store.transact(
        lambda db: db.execute(_SELECT + " ORDER BY effective_at, id").fetchall()
    )
    return [_row(r) for r in rows]


async def cancel(store: Store, announcement_id: int, now: float) -> Announcement:
    """Withdraw an announcement — also one already in effect: "if this was not you, cancel it"
    must work when the notice came late and the change took effect before anyone read the
    confirmation. Its values are then no longer expected: the checks return to what the
    registry (and the announcements still standing) say, and a value it had whitelisted that
    is still being served raises the unannounced-change alarm (see ``ChangeWatch``)."""

    def write(db: sqlite3.Connection) -> Announcement:
        row = db.execute(_SELECT + " WHERE id = ?", (announcement_id,)).fetchone()
        if row is None:
            raise AnnouncementRejected(f"no announcement #{announcement_id}")
        a = _row(row)
        if a.cancelled_at is not None:
            raise AnnouncementRejected(f"announcement #{announcement_id} is already cancelled")
        db.execute("UPDATE announcements SET cancelled_at = ? WHERE id = ?", (now, a.id))
        return replace(a, cancelled_at=now)

    return await store.transact(write)


_MARK = {
    "handled_at": "UPDATE announcements SET handled_at = ? WHERE id = ?",
    "applied_at": "UPDATE announcements SET applied_at = ? WHERE id = ?",
}


async def _mark(store: Store, column: str, ids: Iterable[int], now: float) -> None:
    sql = _MARK[column]
    batch = [(now, i) for i in ids]
    if batch:
        await store.transact(lambda db: db.executemany(sql, batch))


# ----- the daemon's desk ------------------------------------------------------------------------


def _late_notice(a: Announcement, registry: Registry, source: str) -> Notice:
    entry = registry.systems.get(a.key)
    name = entry.system.name if entry else a.system
    vi_agency = entry.agency.name_vi if entry else a.agency
    en_agency = entry.agency.name_en if entry else a.agency
    when = local_time(a.effective_at)
    announced = local_time(a.announced_at)
    changes = a.changes.summary()
    return Notice(
        key=f"change-late/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Thông báo thay đổi máy chủ bảo mật không đủ thời hạn: {name} "
            f"của {vi_agency}",
            "en": f"[NPSP] Late notice of a secure-server change: {name} of {en_agency}",
        },
        text={
            "vi": (
                f"{vi_agency} thông báo thay đổi thông tin {name} ({a.key}) lúc {announced}, "
                f"có hiệu lực lúc {when}: chỉ {a.working_days} ngày làm việc, "
                f"trong khi quy định yêu cầu ít nhất {a.required} ngày làm việc ({source}).\n"
                f"Thay đổi: {changes}\n"
                "Các đơn vị kết nối qua máy chủ này cần cập nhật cấu hình trước thời điểm hiệu lực."
            ),
            "en": (
                f"{en_agency} announced a change of {name} ({a.key}) at {announced}, "
                f"effective {when}: {a.working_days} working days' notice where the rule "
                f"requires at least {a.required} ({source}).\n"
                f"Changes: {changes}\n"
                "Agencies connecting through this server must update their configuration "
                "before it takes effect."
            ),
        },
        sms={
            "vi": f"NPSP: {a.key} thay doi luc {when}, bao truoc {a.working_days}/{a.required} "
            "ngay lam viec (tre han).",
            "en": f"NPSP: {a.key} changes at {when} with {a.working_days}/{a.required} "
            "working days' notice (late).",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def _in_effect_notice(a: Announcement, registry: Registry, status_page_url: str | None) -> Notice:
    """The confirmation of a change whose values the monitor accepts the moment it is recorded
    (its effective time had passed): nobody had a chance to object first, so everyone
    concerned, dependents too, is asked to verify it with the agency — a backdated notice must
    not whitelist an intercepting certificate quietly."""
    page, call = cancel_links(a, status_page_url)
    entry = registry.systems.get(a.key)
    name = entry.system.name if entry else a.system
    vi_agency = entry.agency.name_vi if entry else a.agency
    en_agency = entry.agency.name_en if entry else a.agency
    when, announced = local_time(a.effective_at), local_time(a.announced_at)
    recorded, changes = local_time(a.created_at), a.changes.summary()
    return Notice(
        key=f"change-in-effect/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] CẦN XÁC MINH: thay đổi {name} của {vi_agency} có hiệu lực ngay khi "
            "ghi nhận",
            "en": f"[NPSP] VERIFY: a change to {name} of {en_agency} took effect as it was "
            "recorded",
        },
        text={
            "vi": (
                f"Thông báo số {a.id} (ref {a.ref or '-'}) về thay đổi {name} ({a.key}) của "
                f"{vi_agency} được {a.author} ghi nhận lúc {recorded} qua {a.source}, sau thời "
                f"điểm hiệu lực {when} (ngày thông báo ghi trên đó: {announced}).\n"
                f"Thay đổi: {changes}\n"
                f"Báo trước {a.working_days} ngày làm việc tính từ ngày thông báo đó, "
                f"{'đủ' if a.compliant else 'KHÔNG đủ'} {a.required} ngày theo quy định.\n"
                "Hệ thống giám sát đã chấp nhận các giá trị mới này ngay, không có thời gian để "
                "phản đối trước. Hãy xác minh trực tiếp với đơn vị (qua điện thoại, không qua "
                "thông tin trong thông báo); nếu không đúng, hủy thông báo ngay (tại trang "
                f"{page}, hoặc {call} bằng tài khoản của đơn vị): cảnh báo thay đổi không được "
                "thông báo sẽ được gửi nếu giá trị đó vẫn đang được dùng."
            ),
            "en": (
                f"Announcement #{a.id} (ref {a.ref or '-'}) of a change to {name} ({a.key}) of "
                f"{en_agency} was recorded by {a.author} at {recorded} via {a.source}, after "
                f"its effective time {when} (the notice date it gives: {announced}).\n"
                f"Changes: {changes}\n"
                f"{a.working_days} working days' notice counted from that date, which "
                f"{'meets' if a.compliant else 'does NOT meet'} the {a.required} required.\n"
                "The monitor accepted these values at once, with no time to object beforehand. "
                "Verify it with the agency directly (by phone, not through details in the "
                f"announcement); if it is wrong, cancel it now ({page}, or {call} with the "
                "agency's account): the unannounced-change alarm follows if the value is still "
                "being served."
            ),
        },
        sms={
            "vi": f"NPSP: CAN XAC MINH thay doi {a.key} (so {a.id}) co hieu luc ngay khi ghi nhan "
            f"luc {recorded}.",
            "en": f"NPSP: VERIFY change {a.key} (#{a.id}), in effect as recorded at {recorded}.",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def cancel_links(a: Announcement, status_page_url: str | None) -> tuple[str, str]:
    """Where ``a`` is withdrawn: the system's page (it lists the announcement) and the API
    call, on the site of the configured status page (relative paths when there is none)."""
    base = site_base(status_page_url)
    return (
        f"{base}/system/{a.agency}/{a.system}",
        f"POST {base}/api/v1/announcements/{a.id}/cancel",
    )


CANCEL_TOLD_WITHIN = 86400.0  # cancellations older than this at start are not told again


def _cancellation(a: Announcement, registry: Registry) -> Notice:
    """Told to the same people as the confirmation: a withdrawn announcement (perhaps a
    legitimate renewal withdrawn by someone else) must not go unnoticed either."""
    entry = registry.systems.get(a.key)
    name = entry.system.name if entry else a.system
    cancelled = local_time(a.cancelled_at if a.cancelled_at is not None else a.created_at)
    changes = a.changes.summary()
    return Notice(
        key=f"change-cancelled/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Đã hủy thông báo thay đổi {name} ({a.key}), số {a.id}",
            "en": f"[NPSP] Cancelled: the announced change to {name} ({a.key}), #{a.id}",
        },
        text={
            "vi": (
                f"Thông báo thay đổi số {a.id} (ref {a.ref or '-'}) của {a.key} đã bị hủy lúc "
                f"{cancelled}.\nThay đổi đã thông báo: {changes}\n"
                "Các giá trị này không còn được chấp nhận; nếu máy chủ vẫn dùng chúng, hệ thống "
                "sẽ cảnh báo thay đổi chưa được thông báo. Ai đã hủy: xem nhật ký kiểm tra."
            ),
            "en": (
                f"Announcement #{a.id} (ref {a.ref or '-'}) of {a.key} was cancelled at "
                f"{cancelled}.\nChanges it announced: {changes}\n"
                "These values are no longer expected; a server still using them raises the "
                "unannounced-change alarm. Who cancelled it: see the audit log."
            ),
        },
        sms={
            "vi": f"NPSP: thong bao thay doi #{a.id} cua {a.key} da bi huy luc {cancelled}.",
            "en": f"NPSP: announcement #{a.id} of {a.key} was cancelled at {cancelled}.",
        },
    )


def _confirmation(a: Announcement, registry: Registry, status_page_url: str | None) -> Notice:
    """Told to the agency's admins and operations for every accepted announcement: nobody can
    whitelist a new certificate, host or address in the agency's name without its knowing."""
    entry = registry.systems.get(a.key)
    name = entry.system.name if entry else a.system
    vi_agency = entry.agency.name_vi if entry else a.agency
    en_agency = entry.agency.name_en if entry else a.agency
    when = local_time(a.effective_at)
    announced = local_time(a.announced_at)
    changes = a.changes.summary()
    page, call = cancel_links(a, status_page_url)
    ref = a.ref or "-"
    vi_notice = "đủ" if a.compliant else "KHÔNG đủ"
    en_notice = "meets" if a.compliant else "does NOT meet"
    recorded = local_time(a.created_at)
    if a.recorded_in_effect:
        vi_when = (
            f"Thông báo được ghi nhận lúc {recorded}, sau thời điểm hiệu lực: thay đổi được coi "
            "là đã có hiệu lực; không gửi cảnh báo báo trước không đủ thời hạn.\n"
        )
        en_when = (
            f"It was recorded at {recorded}, after it took effect: the change is taken as in "
            "effect; no late-notice alert is sent.\n"
        )
    elif a.created_at - a.announced_at > CLOCK_SKEW:
        vi_when = f"Thông báo (ngày {announced}) được ghi nhận lúc {recorded}.\n"
        en_when = f"The notice (given {announced}) was recorded at {recorded}.\n"
    else:
        vi_when = en_when = ""
    return Notice(
        key=f"change-confirm/{a.agency}/{a.id}",
        subject={
            "vi": f"[NPSP] Xác nhận thông báo thay đổi {name} của {vi_agency} (hiệu lực {when})",
            "en": f"[NPSP] Confirm: a change to {name} of {en_agency} was announced for {when}",
        },
        text={
            "vi": (
                f"Một thay đổi {name} ({a.key}) của {vi_agency} đã được thông báo, "
                f"có hiệu lực lúc {when}.\n"
                f"Thay đổi: {changes}\n"
                f"Thông báo số {a.id} (ref {ref}), do {a.author} gửi qua {a.source} "
                f"lúc {announced}; báo trước {a.working_days} ngày làm việc, "
                f"{vi_notice} {a.required} ngày theo quy định.\n"
                f"{vi_when}"
                "Từ thời điểm hiệu lực, hệ thống giám sát chấp nhận các giá trị mới này "
                "(chứng chỉ, tên máy, địa chỉ) mà không cảnh báo.\n"
                "NẾU KHÔNG PHẢI ĐƠN VỊ CỦA QUÝ VỊ THÔNG BÁO, hãy hủy ngay (kể cả khi đã có "
                f"hiệu lực): tại trang {page}, hoặc {call} bằng tài khoản của đơn vị, "
                "hoặc gọi Tổ trực vận hành."
            ),
            "en": (
                f"A change to your secure server {name} ({a.key}) of {en_agency} was "
                f"announced for {when}.\n"
                f"Changes: {changes}\n"
                f"Announcement #{a.id} (ref {ref}), by {a.author} via {a.source} at "
                f"{announced}; {a.working_days} working days' notice, which {en_notice} the "
                f"{a.required} the rule requires.\n"
                f"{en_when}"
                "From then on the monitor accepts these values (certificate, host, addresses) "
                "without an alarm.\n"
                "IF THIS WAS NOT YOU, cancel it at once (also once in effect): on the page "
                f"{page}, or {call} with an account of your agency, or call operations."
            ),
        },
        sms={
            "vi": f"NPSP: da nhan thong bao thay doi {a.key} hieu luc {when} (#{a.id}). "
            f"Khong phai quy vi? Huy tai {page}",
            "en": f"NPSP: a change of {a.key} was announced for {when} (#{a.id}). "
            f"Not you? Cancel at {page}",
        },
        thread_key=f"announcement/{a.agency}/{a.id}",
    )


def dependents(registry: Registry, key: str) -> list[str]:
    """Agencies (other than the owner) with a system that depends on system ``key``."""
    owner = key.partition("/")[0]
    return sorted({e.agency.id for e in registry.systems.values() if key in e.parents} - {owner})


class AnnouncementDesk:
    """Keeps the announcements, confirms each to its agency, tells about late ones, switches
    expected values in time.

    ``on_overrides`` is called with the overrides in effect whenever they change (the engine
    rebuilds the affected checks); ``on_change`` whenever the catalog may have changed.
    ``status_page_url`` (``alerting.status_page_url``) gives the site of the cancellation
    links in the confirmations; the daemon sets it (and again on reload).
    """

    def __init__(
        self,
        ctx: RulesContext,
        *,
        on_overrides: Callable[[dict[str, Override]], Awaitable[None]] | None = None,
        on_change: Callable[[], None] | None = None,
        status_page_url: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.status_page_url = status_page_url
        self.on_overrides = on_overrides
        self.on_change = on_change
        self.items: list[Announcement] = []
        self._cancel_told: set[int] = set()  # cancellations told since start
        # Cancelled announcements by (system, field), rebuilt when ``items`` is replaced.
        self._revoked_index: dict[tuple[str, str], list[Announcement]] = {}
        self._revoked_from: list[Announcement] | None = None
        self.overrides: dict[str, Override] = {}
        self.violations = 0

    # ----- intake

    async def submit(
        self,
        request: AnnouncementRequest,
        agency: str,
        source: str,
        *,
        author: str | None = None,
    ) -> tuple[Announcement, bool]:
        """Validate, store and act on one announcement; return it and whether it is new.

        ``author`` is who the caller authenticated (``mqtt:<agency>``); without it the request's
        own ``author`` (set by the API from the account) or the source is recorded.
        """
        now = self.ctx.clock()
        a = examine(
            request,
            agency,
            registry=self.ctx.registry(),
            calendar=self.ctx.calendar,
            now=now,
            source=source,
        )
        if author is not None:
            a = replace(a, author=author)
        stored, new = await save(self.ctx.store, a)
        if new:
            log.info(
                "change announced",
                extra={
                    "id": stored.id,
                    "system": stored.key,
                    "working_days": stored.working_days,
                    "compliant": stored.compliant,
                },
            )
            await self.refresh()
            await self.tick(now)
        return stored, new

    # ----- Desk

    async def refresh(self) -> None:
        self.items = await load_all(self.ctx.store)
        if self.on_change is not None:
            self.on_change()

    async def tick(self, now: float) -> None:
        registry = self.ctx.registry()
        rule = self.ctx.rules.secure_server_change_notice
        handled, late = [], 0
        for a in self.items:
            if a.handled_at is not None or a.cancelled_at is not None:
                continue
            audience = [
                ("", "operations"),
                *everyone([a.agency], "technical-admins", "high-level-admins"),
                *everyone(dependents(registry, a.key), "technical-admins"),
            ]
            # Marked handled only once queued: the outbox key makes a retry a no-op.
            if a.recorded_in_effect and a.changes.whitelists:
                # Whitelisted at once, with no time to object before it takes effect: the way a
                # backdated notice would hide an intercepting certificate. Its confirmation asks
                # everyone concerned, dependents too, to verify it, whatever notice it claims.
                await self.ctx.notices.send_notice(
                    _in_effect_notice(a, registry, self.status_page_url), audience
                )
                log.warning(
                    "a change recorded after it took effect: accepted at once, verification asked",
                    extra={"id": a.id, "system": a.key, "compliant": a.compliant},
                )
            else:
                # Every other accepted announcement, compliant or late, is confirmed to the
                # agency it speaks for: a forged one is seen (and cancelled) before it takes
                # effect.
                await self.ctx.notices.send_notice(
                    _confirmation(a, registry, self.status_page_url),
                    admins_and_operations(a.agency),
                )
            if not a.compliant and a.recorded_in_effect:
                # A paper notice recorded after the change took effect: late, and counted as
                # such, but there is nothing left to prepare for — no late-notice alert.
                late += 1
                log.info(
                    "late notice recorded after the change took effect: counted, not alerted",
                    extra={"id": a.id, "system": a.key, "working_days": a.working_days},
                )
            elif not a.compliant:
                await self.ctx.notices.send_notice(_late_notice(a, registry, rule.source), audience)
                late += 1
                log.warning(
                    "late notice of a secure-server change",
                    extra={"id": a.id, "system": a.key, "working_days": a.working_days},
                )
            handled.append(a.id)
        for a in self.items:
            if (
                a.cancelled_at is None
                or a.id in self._cancel_told
                or now - a.cancelled_at > CANCEL_TOLD_WITHIN
            ):
                continue
            await self.ctx.notices.send_notice(
                _cancellation(a, registry),
                admins_and_operations(a.agency),
            )
            self._cancel_told.add(a.id)  # the outbox key makes a repeat after a restart a no-op
        due = [
            a.id
            for a in self.items
            if a.applied_at is None and a.cancelled_at is None and a.effective_at <= now
        ]
        if handled or due:
            await _mark(self.ctx.store, "handled_at", handled, now)
            for _ in range(late):  # counted once handled: a failure above means a retry
                self.violations += 1
                self.ctx.count("change_notice_violations")
            await _mark(self.ctx.store, "applied_at", due, now)
            marked_h, marked_a = set(handled), set(due)
            self.items = [
                replace(
                    a,
                    handled_at=now if a.id in marked_h else a.handled_at,
                    applied_at=now if a.id in marked_a else a.applied_at,
                )
                for a in self.items
            ]
            for a in self.items:
                if a.id in marked_a:
                    log.info("announced change took effect", extra={"id": a.id, "system": a.key})
            if self.on_change is not None:
                self.on_change()
        await self._publish_overrides(now)

    async def _publish_overrides(self, now: float) -> None:
        overrides = self.overrides_at(now)
        if overrides != self.overrides:
            if self.on_overrides is not None:
                await self.on_overrides(overrides)
            self.overrides = overrides  # only once applied: a failure is retried next tick

    def overrides_at(self, now: float) -> dict[str, Override]:
        """What every announcement in effect at ``now`` changed, later ones winning per field."""
        merged: dict[str, dict[str, Any]] = {}
        for a in self.items:  # ordered by effective time
            if a.cancelled_at is not None or a.effective_at > now:
                continue
            fields = merged.setdefault(a.key, {})
            o = a.changes.override()
            for name in ("host", "port", "fingerprint_sha256", "addresses"):
                value = getattr(o, name)
                if value is not None:
                    fields[name] = value
        return {key: Override(**fields) for key, fields in merged.items() if fields}

    # ----- questions from the unannounced-change watch and the catalog

    def covers(self, system_key: str, field: str, value: str, now: float) -> Announcement | None:
        """The announcement that makes ``value`` expected now: the latest one (made by ``now``,
        not cancelled) naming this field — an upcoming change installed early — or the latest
        one of those already in effect. A value superseded since is not covered."""
        naming = [
            a
            for a in self.items  # ordered by effective time
            if a.key == system_key
            and a.cancelled_at is None
            and min(a.announced_at, a.created_at) <= now  # made by now (clock skew aside)
            and _names(a.changes, field)
        ]
        in_effect = [a for a in naming if a.effective_at <= now]
        for a in (naming[-1:] + in_effect[-1:]) if naming else []:
            if _announces(a.changes, field, value):
                return a
        return None

    def revoked(self, system_key: str, field: str, value: str) -> Announcement | None:
        """A cancelled announcement that had named ``value`` for ``field`` (the latest), if
        any: a value it whitelisted, still observed, is news again."""
        if self._revoked_from is not self.items:
            index: dict[tuple[str, str], list[Announcement]] = {}
            for a in self.items:
                if a.cancelled_at is not None:
                    for name in ("fingerprint_sha256", "issuer", "addresses"):
                        if _names(a.changes, name):
                            index.setdefault((a.key, name), []).append(a)
            self._revoked_index, self._revoked_from = index, self.items
        for a in reversed(self._revoked_index.get((system_key, field), [])):
            if _announces(a.changes, field, value):
                return a
        return None

    def upcoming(self, system_key: str, now: float) -> list[Announcement]:
        return [
            a
            for a in self.items
            if a.key == system_key and a.cancelled_at is None and a.effective_at > now
        ]


def _names(changes: Changes, field: str) -> bool:
    return getattr(changes, field, None) is not None


def _announces(changes: Changes, field: str, value: str) -> bool:
    if field == "fingerprint_sha256":
        return changes.fingerprint_sha256 == value
    if field == "addresses":
        return changes.addresses is not None and ",".join(changes.addresses) == value
    if field == "issuer":
        announced = changes.issuer
        return announced is not None and announced.casefold() == value.casefold()
    return False
