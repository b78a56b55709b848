#!/usr/bin/env python3
"""Write docs/config-reference.md: every configuration key, generated from the pydantic models.

    .venv/bin/python scripts/config-reference.py           # rewrite docs/config-reference.md
    .venv/bin/python scripts/config-reference.py --check   # exit 1 if it is out of date

Every key of the daemon's config (``monitor.config.Config`` and the models it embeds: alerting,
channels, calendar, http, deadman, security...), of a registry file and of each probe kind,
with its type, default, an example where one is known, and what it means. The meaning is the
field's ``description=``, else an entry of :data:`DESCRIPTIONS` below, else the comment
written beside or right above the field in its model; the example comes from
``config/*.example.yaml``, else :data:`EXAMPLES`. A key with no meaning from any of them is
listed by ``--check`` and by tests/test_config_reference.py: describe it (best: a
``description=`` on the field).

A script rather than an ``npsp-monitor`` subcommand: the reference is a document of this
repository (it is reviewed with the change that alters a model), the installed daemon has no
use for it, and the command line stays what an operator needs.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import inspect
import io
import ipaddress
import re
import sys
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, BeforeValidator, TypeAdapter
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import Config  # noqa: E402
from notifiers.settings import ADDRESS, DOT_ATOM  # noqa: E402
from npsp_common.types import CheckCommon, SecretSource, format_duration, parse_duration  # noqa: E402
from probes import PROBES  # noqa: E402

OUTPUT = ROOT / "docs" / "config-reference.md"
COMMAND = ".venv/bin/python scripts/config-reference.py"
EXAMPLE_FILES = (ROOT / "config" / "npsp-monitor.example.yaml",)
REGISTRY_EXAMPLE = ROOT / "config" / "registry.example.yaml"

# Where a check sits in the daemon's config; its keys are listed relative to it.
CHECK_PATHS = ("agencies[].systems[].checks[]", "uplink.checks[]")

# Meanings of keys whose model says nothing a reader can use (no ``description=``, no comment
# beside the field, or a comment written for developers). Keyed by the key as this reference
# writes it: dotted, ``[]`` for a list item, check keys as ``check.<kind>.<key>`` (``check.*``
# for the fields every check has, ``tls.*`` for the tls block, ``json[].*`` for a condition).
DESCRIPTIONS: dict[str, str] = {
    # --- top level
    "vantage": "Name of this gateway host; tags every probe result, event and message.",
    "listen": "The HTTP listener (`/metrics`, `/healthz`, `/api/v1`, the pages) as HOST:PORT; "
    "loopback by default; port 0 = any free port.",
    "state_db": "The SQLite database (WAL): state, outbox, announcements, incidents, "
    "accounts. A relative path is relative to the config file.",
    "scheduler": "Limits on probes in flight.",
    "defaults": "Values a check takes when it does not set its own.",
    "uplink": "Canary checks of the gateway's own uplink; when all fail, the gateway is cut "
    "off and agencies are not alerted for it.",
    "include": "Registry files whose `agencies` join this configuration; a relative path is "
    "relative to the including file.",
    "agencies": "The agencies (ministries, provinces, sector agencies), their contacts and "
    "systems: in registry files (`include`), or here in the daemon's config.",
    "alerting": "How state changes become SMS, e-mail and portal-inbox messages.",
    "channels": "How to reach the SMS provider, the mail server and the MQTT broker.",
    "calendar": "Working days and hours, and the deadlines of the regulation.",
    "http": "The listener's TLS, client certificates, limits and sessions.",
    "deadman": "The dead man's switch: this daemon says it is alive.",
    "security": "What targets that do not come from this config (announced hosts, redirects) "
    "may reach.",
    # --- scheduler, defaults
    "scheduler.max_concurrency": "Probes in flight at once.",
    "scheduler.max_per_host": "Probes in flight to one host (see `host_key`).",
    "scheduler.stall_after": "`/healthz` fails, and the watchdog is no longer fed, when the "
    "scheduler made no progress for this long.",
    "defaults.interval": "Time between two runs of a check.",
    "defaults.timeout": "A run's total time budget (connect, handshake, answer); must be "
    "shorter than the interval.",
    "defaults.failure_threshold": "Consecutive failures before the confirming recheck (then down).",
    "defaults.success_threshold": "Consecutive successes to be healthy again.",
    "defaults.recheck_delay": "Delay of the confirming recheck.",
    "defaults.flap_window": "Window in which state flips are counted.",
    "defaults.flap_threshold": "Flips within `flap_window` that make a system flapping.",
    "uplink.checks": "The canaries: checks of hosts every working uplink reaches.",
    # --- alerting
    "alerting.operations": "The Government Office operations team (VPCP): told about every "
    "alert of a route that names `operations`, and about the gateway's own uplink.",
    "alerting.routes": "Who is told, in order: the first route that matches wins unless it "
    "says `continue: true`.",
    "alerting.group_wait": "A storm of changes arrives as one digest per person and channel, "
    "sent this long after the first change.",
    "alerting.group_interval": "Later changes: at most one digest per person and channel in "
    "this time.",
    "alerting.repeat_interval": "Reminder while a system stays down.",
    "alerting.status_page_url": "The public status page named in messages.",
    "alerting.hotline": "Telephone number given in messages.",
    "alerting.silences": "Mute alerts of matching systems until a time.",
    "alerting.outbox": "Retries of the durable outbox.",
    "alerting.operations[].name": "Name of the person or desk.",
    "alerting.operations[].phone": "Mobile number in E.164 form (`+84…`); needed for `sms`.",
    "alerting.operations[].email": "E-mail address; needed for `email`.",
    "alerting.operations[].portal_account": "Portal account; needed for `inbox`.",
    "alerting.operations[].channels": "Channels to use, in order of preference.",
    "alerting.operations[].language": "Language of the messages: `vi` or `en`.",
    "alerting.routes[].match": "Which alerts the route takes; an empty list matches everything.",
    "alerting.routes[].notify": "Groups told: `technical-admins` and `high-level-admins` of "
    "the system's agency, `operations` (alerting.operations).",
    "alerting.routes[].continue": "Go on to the next routes after this one matched.",
    "alerting.routes[].match.agency": "Agency ids.",
    "alerting.routes[].match.agency_kind": "Kinds of agency.",
    "alerting.routes[].match.system_kind": "Kinds of system.",
    "alerting.routes[].match.severity": "Severities of the alert.",
    "alerting.silences[].agency": "Agency id.",
    "alerting.silences[].system": "System id within the agency; unset: every system of the agency.",
    "alerting.silences[].starts": "Start, in seconds since the epoch; unset: now.",
    "alerting.silences[].ends": "End, in seconds since the epoch.",
    "alerting.silences[].reason": "Why (shown to the people who look).",
    "alerting.outbox.max_attempts": "Attempts of one notice on one channel before it fails.",
    "alerting.outbox.backoff_base": "First delay between attempts (doubled each time).",
    "alerting.outbox.backoff_max": "Longest delay between attempts.",
    # --- channels
    "channels.sms": "The `sms` channel (Twilio).",
    "channels.email": "The `email` channel (SMTP submission).",
    "channels.mqtt": "The MQTT broker: portal-inbox pushes, retained status topics, "
    "announcements, the dead man's switch.",
    "channels.sms.account_sid": "Twilio account SID (`AC` and 32 hex digits).",
    "channels.sms.auth_token": "Twilio auth token.",
    "channels.sms.from_number": "Sender number in E.164 form; or `messaging_service_sid`.",
    "channels.sms.messaging_service_sid": "Twilio messaging service (`MG` and 32 hex "
    "digits); or `from_number`.",
    "channels.sms.max_segments": "Longest SMS, in segments; a longer text is cut at the end.",
    "channels.sms.timeout": "Bound on one request to the provider.",
    "channels.email.host": "SMTP server.",
    "channels.email.port": "SMTP port (587 submission with STARTTLS, 465 TLS).",
    "channels.email.security": "`starttls`, `tls` (implicit TLS) or `none` (no password "
    "allowed then).",
    "channels.email.username": "SMTP login; with `password`.",
    "channels.email.password": "SMTP password.",
    "channels.email.from_addr": "Sender address.",
    "channels.email.from_name": "Sender name.",
    "channels.email.timeout": "Bound on one SMTP session.",
    "channels.email.message_id_domain": "Domain of the Message-ID header.",
    "channels.mqtt.host": "Broker host.",
    "channels.mqtt.port": "Broker port (8883 with TLS, usually).",
    "channels.mqtt.tls": "Connect with TLS.",
    "channels.mqtt.username": "Broker user (see config/mosquitto/acl).",
    "channels.mqtt.password": "Broker password.",
    "channels.mqtt.topic_prefix": "Prefix of every topic.",
    "channels.mqtt.keepalive": "MQTT keep-alive, in seconds.",
    # --- calendar
    "calendar.timezone": "IANA time zone of working hours and dates.",
    "calendar.working_hours": "Working hours of a working day, as sorted, non-overlapping "
    "[start, end] spans.",
    "calendar.extra_days_off": "Days off beyond the public holidays (swaps); giving the list "
    "replaces the shipped one.",
    "calendar.extra_working_days": "Make-up working days (a Saturday); giving the list "
    "replaces the shipped one.",
    "calendar.agency_working_hours": "Working hours of an agency that differ from "
    "`working_hours`, by agency id.",
    "calendar.rules": "The deadlines the monitor checks, each with its legal source.",
    "calendar.extra_days_off[].date": "The date.",
    "calendar.extra_days_off[].reason": "Where it was decided (the document).",
    "calendar.rules.secure_server_change_notice": "Notice an agency gives before changing its "
    "secure server.",
    "calendar.rules.maintenance_notice": "Notice of a maintenance window.",
    "calendar.rules.incident_sla": "Time to resolve a support request (incident).",
    "calendar.rules.<rule>.value": "How many units.",
    "calendar.rules.<rule>.unit": "`working_days` or `working_hours`.",
    "calendar.rules.<rule>.source": "The legal source (shown beside the deadline).",
    # --- http, deadman
    "http.tls_cert": "PEM certificate (chain) of the listener: with `tls_key`, the listener "
    "speaks HTTPS.",
    "http.tls_key": "PEM private key of `tls_cert` (readable by the service).",
    "http.max_body_bytes": "Largest request body accepted.",
    "http.login_failures_per_minute": "Failed logins allowed per client address and minute.",
    "http.session_idle": "A page login's session ends after this long unused.",
    "http.session_max": "A page login's session ends after this long whatever its use "
    "(logout and revoking the account end it at once).",
    "http.trusted_proxies": "Reverse proxies (networks) whose `X-Forwarded-Proto: https` and "
    "`X-Forwarded-For` are believed; the session cookie is then Secure.",
    "deadman.interval": 'Time between two "alive" messages.',
    "deadman.ping_url": "URL fetched every `interval` (healthchecks-style), while the "
    "scheduler progresses.",
    "deadman.ping_timeout": "Bound on one ping.",
    "security.allow_networks": "Networks that announced hosts and http redirect targets may "
    "reach although internal (loopback, private, link-local, CGNAT, reserved and the "
    "gateway's own addresses are refused for them); registry hosts are not concerned.",
    # --- registry
    "schema_version": "Format of a registry file; this version reads 1.",
    "agencies[].id": "Agency id, unique: lowercase letters, digits and `-`.",
    "agencies[].kind": "Kind of body.",
    "agencies[].name_vi": "Name in Vietnamese.",
    "agencies[].name_en": "Name in English.",
    "agencies[].code": "Abbreviation, or the province's administrative code.",
    "agencies[].contacts": "People told about the agency's systems.",
    "agencies[].systems": "The agency's monitored systems.",
    "agencies[].contacts[].name": "Name of the person or desk.",
    "agencies[].contacts[].role": "`technical-admin` (told first) or `high-level-admin` (told "
    "on escalation).",
    "agencies[].contacts[].phone": "Mobile number in E.164 form (`+84…`); needed for `sms`.",
    "agencies[].contacts[].email": "E-mail address; needed for `email`.",
    "agencies[].contacts[].portal_account": "Portal account; needed for `inbox`.",
    "agencies[].contacts[].channels": "Channels to use, in order of preference.",
    "agencies[].contacts[].language": "Language of the messages: `vi` or `en`.",
    "agencies[].systems[].id": "System id, unique within the agency; referred to as "
    "`agency/system`.",
    "agencies[].systems[].kind": "Kind of system.",
    "agencies[].systems[].name": "Name shown on the pages and in messages.",
    "agencies[].systems[].name_en": "English name; default: `name`.",
    "agencies[].systems[].public": "Shown on the public `/status` page.",
    "agencies[].systems[].depends_on": "Systems this one is reached through: an id of this "
    "agency or `agency/system`; while one is down, this one is unreachable, not down.",
    "agencies[].systems[].checks": "One or more checks (see Checks).",
    # --- checks
    "check.*.id": "Check id, unique within its system.",
    "check.*.kind": "The probe kind: selects the other keys.",
    "check.*.interval": "Time between two runs; default `defaults.interval`.",
    "check.*.timeout": "Time budget of a run; default `defaults.timeout`.",
    "check.*.failure_threshold": "Default `defaults.failure_threshold`.",
    "check.*.success_threshold": "Default `defaults.success_threshold`.",
    "check.tcp.host": "Host name or address.",
    "check.tcp.port": "TCP port.",
    "check.tls.host": "Host name or address.",
    "check.tls.port": "TCP port.",
    "check.tls.tls": "TLS options (see the `tls` block).",
    "check.http.url": "`http://` or `https://` URL.",
    "check.http.method": "Request method.",
    "check.http.headers": "Request headers.",
    "check.http.body": "Request body (POST only).",
    "check.http.expected_status": "Accepted statuses: codes (`200`) or classes (`2xx`).",
    "check.http.body_regex": "The body must match this pattern (RE2 syntax, no "
    "backreferences or lookaround; at most 1,000 characters).",
    "check.http.json": "Conditions on fields of a JSON body (see `json[]`).",
    "check.http.max_latency": "An answer slower than this is a warning (see "
    "`max_latency_severity`).",
    "check.http.follow_redirects": "Redirects followed; 0 judges the 3xx itself.",
    "check.http.max_body_bytes": "Bytes of the body read at most; default 1 MiB.",
    "check.http.tls": "TLS options of an https URL (see the `tls` block).",
    "check.dns.name": "Name to resolve.",
    "check.dns.record_type": "`A` or `AAAA`.",
    "check.heartbeat.interval": "How often the heartbeat is judged (it reads memory only).",
    "check.heartbeat.timeout": "Time budget of a run.",
    "check.heartbeat.failure_threshold": "Down at the first missed deadline.",
    "tls.min_version": "Lowest TLS version accepted.",
    "tls.insecure_skip_verify": "Do not verify the chain or the name (expiry is still "
    "reported); for tests only.",
    "tls.min_days_valid": "Warn (see `min_days_valid_severity`) when the certificate expires "
    "within this many days.",
    "json[].path": "Where the value is: `$.field`, `$.a.b`, `$.list[0]`.",
    "json[].equals": "The value must equal this.",
    "json[].younger_than": "The value is a time (ISO 8601 or epoch seconds) no older than this.",
    "json[].exists": "The field must be there (`true`) or absent (`false`).",
    "json[].severity": "What a failed condition makes the system: `down` or `degraded`.",
    # --- value types
    "secret.file": "A file holding the secret; a relative name is looked up in "
    "`$CREDENTIALS_DIRECTORY` first (systemd `LoadCredential=`).",
    "secret.env": "An environment variable holding the secret.",
}

# Examples of keys the example configs do not show (keys as in DESCRIPTIONS).
EXAMPLES: dict[str, Any] = {
    "channels.sms.account_sid": "AC00000000000000000000000000000000",
    "channels.sms.auth_token": {"file": "twilio-token"},
    "channels.sms.from_number": "+84900000000",
    "channels.sms.api_base_url": "http://127.0.0.1:8080",
    "channels.mqtt.host": "127.0.0.1",
    "channels.mqtt.username": "npsp-monitor",
    "channels.mqtt.password": {"file": "mqtt-password"},
    "channels.mqtt.announcement_tokens": {"ha-noi": {"file": "announce-ha-noi"}},
    "http.tls_cert": "/etc/npsp-monitor/tls/server.crt",
    "http.tls_key": "/etc/npsp-monitor/tls/server.key",
    "http.client_ca": "/etc/npsp-monitor/tls/client-ca.pem",
    "http.trusted_proxies": ["127.0.0.1/32"],
    "security.allow_networks": ["10.20.0.0/16"],
    "deadman.ping_url": "https://hc.dvc.example/ping/gw-1",
    "alerting.web_url": "https://giamsat.npsp.dvc.example",
    "alerting.routes[].match.agency": ["bo-tai-chinh"],
    "alerting.routes[].match.severity": ["critical"],
    "alerting.silences[].agency": "ha-noi",
    "alerting.silences[].ends": 1798761600,
    "calendar.agency_working_hours": {"ha-noi": [["07:30", "11:30"], ["13:00", "17:00"]]},
    "agencies[].contacts[].phone": "+84900000000",
    "agencies[].systems[].depends_on": ["secure-server"],
    "check.http.url": "https://dvc.ha-noi.dvc.example/healthz",
    "check.http.expected_status": ["2xx", 301],
    "check.http.headers": {"Accept": "application/json"},
    "check.http.body_regex": '"status":\\s*"ok"',
    "check.http.max_latency": "1s",
    "check.dns.nameservers": ["127.0.0.1:53"],
    "check.dns.expected_addresses": ["192.0.2.10"],
    "check.heartbeat.period": "5m",
    "check.heartbeat.token": {"file": "heartbeat-ha-noi"},
    "tls.ca_file": "/etc/npsp-monitor/ca/gov-root.pem",
    "tls.server_name": "mcbm.ha-noi.dvc.example",
    "tls.expected_fingerprint_sha256": "AB:12:…",
    "tls.min_days_valid": 14,
    "json[].path": "$.last_sync",
    "json[].younger_than": "24h",
    "secret.file": "smtp-password",
    "secret.env": "NPSP_SMTP_PASSWORD",
}

# Patterns with a name a person reads more easily than the regular expression.
PATTERN_NAMES = {
    r"^[a-z0-9][a-z0-9-]{0,62}$": "id: a-z, 0-9, `-`; up to 63",
    r"^[a-z0-9][a-z0-9_.-]{0,62}$": "id: a-z, 0-9, `_.-`; up to 63",
    r"^\+[1-9][0-9]{6,14}$": "E.164 phone number",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "e-mail address",
    r"^[A-Za-z0-9._-]{1,64}$": "A-Z, a-z, 0-9, `._-`; up to 64",
    r"^https?://[^/?#]+$": "http(s)://host[:port], no path",
    r"^https?://[^\s?#]+$": "http(s) URL",
    r"^https?://": "http(s) URL",
    ADDRESS: "e-mail address",
    DOT_ATOM: "domain name",
}


# ---------------------------------------------------------------------------- rows, sections


@dataclass
class Row:
    key: str  # as shown in the table
    lookup: str  # as in DESCRIPTIONS / EXAMPLES
    type: str
    default: str
    example: str
    description: str


@dataclass
class Section:
    title: str
    anchor: str
    model: str  # ``module.Class``, or "" for a section without one
    intro: str
    rows: list[Row] = field(default_factory=list)


def _slug(text: str) -> str:
    text = re.sub(r"[^a-z0-9 _-]", "", text.lower())
    return text.strip().replace(" ", "-")


# ---------------------------------------------------------------------------- types


def _split_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """The type inside ``Annotated[...]`` (nested too) and the metadata of all levels."""
    metadata: list[Any] = []
    while typing.get_origin(tp) is Annotated:
        tp, *more = typing.get_args(tp)
        for item in more:
            if isinstance(item, FieldInfo):
                metadata.extend(item.metadata)
                if item.discriminator is not None:
                    metadata.append(item)
            else:
                metadata.append(item)
    return tp, metadata


def _union_members(tp: Any) -> list[Any] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return list(typing.get_args(tp))
    return None


def _strip_none(tp: Any) -> Any:
    """``X | None`` -> ``X`` (unset is shown as the default ``none``)."""
    members = _union_members(tp)
    if members is None or type(None) not in members:
        return tp
    rest = [m for m in members if m is not type(None)]
    return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007


def _is_duration(metadata: list[Any]) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in metadata)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _is_check_union(tp: Any) -> bool:
    members = _union_members(tp) or []
    return bool(members) and all(_is_model(m) and issubclass(m, CheckCommon) for m in members)


def _constraints(metadata: list[Any], unit: str = "") -> str:
    parts = []
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    low_x = next((m.gt for m in metadata if isinstance(m, Gt)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    high_x = next((m.lt for m in metadata if isinstance(m, Lt)), None)

    def show(value: Any) -> str:
        if unit == "duration":
            return format_duration(float(value))
        return f"{value:,}" if isinstance(value, int) else str(value)

    if low is not None and high is not None:
        parts.append(f"{show(low)} to {show(high)}")
    else:
        if low is not None:
            parts.append(f"≥ {show(low)}")
        if low_x is not None:
            parts.append(f"> {show(low_x)}")
        if high is not None:
            parts.append(f"≤ {show(high)}")
        if high_x is not None:
            parts.append(f"< {show(high_x)}")
    return ", ".join(parts)


def _lengths(metadata: list[Any], what: str) -> str:
    low = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
    high = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    if low and high:
        return f"{low} to {high:,} {what}"
    if low:
        return f"at least {low} {what}" if low > 1 else "not empty"
    if high:
        return f"at most {high:,} {what}"
    return ""


def _pattern(metadata: list[Any]) -> str | None:
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def type_text(tp: Any, metadata: list[Any] | None = None) -> str:
    """A type as a person reads it: ``duration``, ``integer, 1 to 100``, ``list of text``."""
    inner, more = _split_annotated(tp)
    metadata = [*(metadata or []), *more]
    members = _union_members(inner)
    if members is not None and type(None) in members:
        return type_text(_strip_none(inner), metadata)
    if _is_duration(metadata):
        limits = _constraints(metadata, "duration")
        return "duration" + (f", {limits}" if limits else "")
    if inner is SecretSource:
        return "secret"
    if members is not None:
        if _is_check_union(inner):
            return "check"
        nets = {ipaddress.IPv4Network, ipaddress.IPv6Network}
        if set(members) == nets:
            return "network (CIDR)"
        return " or ".join(type_text(m) for m in members)
    if typing.get_origin(inner) is Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(inner))
    origin = typing.get_origin(inner)
    if origin is list:
        (item,) = typing.get_args(inner)
        lengths = _lengths(metadata, "items")
        text = f"list of {_plural(type_text(item))}"
        return text + (f" ({lengths})" if lengths else "")
    if origin is tuple:
        args = typing.get_args(inner)
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if origin is dict:
        key, value = typing.get_args(inner)
        return f"mapping: {type_text(key)} → {type_text(value)}"
    if _is_model(inner):
        return "mapping"
    return _scalar_text(inner, metadata)


def _scalar_text(inner: Any, metadata: list[Any]) -> str:
    """:func:`type_text` of a type that holds no other: a number, text, a path, a date..."""
    if inner is bool:
        return "boolean"
    if inner is int:
        limits = _constraints(metadata)
        return "integer" + (f", {limits}" if limits else "")
    if inner is float:
        limits = _constraints(metadata)
        return "number" + (f", {limits}" if limits else "")
    if inner is str:
        pattern = _pattern(metadata)
        lengths = _lengths(metadata, "characters")
        if pattern is not None:
            name = PATTERN_NAMES.get(pattern, f"matching `{pattern}`")
            return f"text ({name})"
        return "text" + (f" ({lengths})" if lengths else "")
    if inner is Path:
        return "file path"
    if inner is dt.date:
        return "date (YYYY-MM-DD)"
    if inner is dt.time:
        return "time (HH:MM)"
    if inner is Any or inner is object or str(inner).endswith("JSONValue"):
        return "any YAML value"
    if inner is type(None):
        return "null"
    return getattr(inner, "__name__", str(inner))


def _plural(text: str) -> str:
    words = {
        "text": "text",
        "check": "checks",
        "mapping": "mappings",
        "integer": "integers",
        "number": "numbers",
        "network (CIDR)": "networks (CIDR)",
    }
    first, sep, rest = text.partition(" (")
    return words.get(first, first) + (sep + rest if sep else "")


# ---------------------------------------------------------------------------- values


def _flow(value: Any) -> str:
    """A value as one line of YAML, in backticks."""
    if isinstance(value, str):
        text = value if value and _plain(value) else yaml.safe_dump(value, width=10**6).strip()
        text = text.removesuffix("\n...").strip()
    else:
        text = yaml.safe_dump(
            value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**6
        ).strip()
        text = text.removesuffix("...").strip()
    return "`" + text.replace("|", "\\|") + "`"


def _plain(text: str) -> bool:
    try:
        return yaml.safe_load(text) == text and "\n" not in text
    except yaml.YAMLError:
        return False


def default_text(info: FieldInfo, tp: Any) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    inner, metadata = _split_annotated(tp)
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[(inner, *metadata, *info.metadata)] if (metadata or info.metadata) else inner
    )
    dumped = _tidy(adapter.dump_python(default, mode="json", by_alias=True, exclude_defaults=True))
    if _is_model(_strip_none(inner)) and dumped == {}:
        return "see below"
    if isinstance(dumped, list | dict) and len(_flow(dumped)) > 90:
        return f"{len(dumped)} entries (`{_defining_file(info, default)}`)"
    if isinstance(dumped, list | dict) and not dumped:
        return "`[]`" if isinstance(dumped, list) else "`{}`"
    return _flow(dumped)


def _tidy(value: Any) -> Any:
    """``2.0`` -> ``2``, ``"08:00:00"`` -> ``"08:00"``: values as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\d\d:\d\d:00", value):
        return value[:5]
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


def _defining_file(info: FieldInfo, default: Any) -> str:
    del info
    first = default[0] if isinstance(default, list) and default else default
    module = sys.modules.get(type(first).__module__)
    path = Path(getattr(module, "__file__", "") or "")
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


# ---------------------------------------------------------------------------- comments


@cache
def _field_comments(cls: type) -> dict[str, str]:
    """The comment beside each field of ``cls``, else the comment block right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if not re.match(r"(noqa|type:|pragma)", text):
                comments[token.start[0]] = text
    lines = source.splitlines()
    found: dict[str, str] = {}
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    for item in node.body:
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        end = item.end_lineno or item.lineno
        beside = [comments[n] for n in range(item.lineno, end + 1) if n in comments]
        above: list[str] = []
        line = item.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments.get(line, ""))
            line -= 1
        text = " ".join(beside or above).strip()
        if text:
            found[item.target.id] = text[0].upper() + text[1:] + ("" if text[-1] in ".)" else ".")
    return found


def _own_source(cls: type, name: str) -> type:
    """The class (``cls`` or a base) whose body defines field ``name``."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return klass
    return cls


# ---------------------------------------------------------------------------- walking


class Builder:
    def __init__(self, examples: dict[str, Any]) -> None:
        self.examples = examples
        self.sections: list[Section] = []
        self.seen: dict[type, Section] = {}
        self.missing: list[str] = []

    # A model's fields become a section; its model-typed fields open sections of their own.
    def model_section(
        self,
        cls: type[BaseModel],
        title: str,
        prefix: str,
        lookup_prefix: str,
        *,
        skip: frozenset[str] = frozenset(),
        intro: str | None = None,
    ) -> Section:
        section = Section(
            title=title,
            anchor=_slug(title),
            model=f"{cls.__module__}.{cls.__qualname__}",
            intro=_doc(cls) if intro is None else intro,
        )
        self.sections.append(section)
        self.seen.setdefault(cls, section)
        later: list[tuple[type[BaseModel], Row, str]] = []
        for name, info in cls.model_fields.items():
            if name in skip:
                continue
            key = info.alias or name
            tp = _with_metadata(info, cls, name)
            path = f"{prefix}{key}"
            lookup = f"{lookup_prefix}{key}"
            row = self.row(cls, name, info, tp, path, lookup)
            section.rows.append(row)
            target = _model_inside(tp)
            if target is not None and target is not SecretSource:
                row.example = ""  # the block's own keys show examples
                later.append((target, row, "[]" if _is_list(tp) else ""))
            elif _is_check_union(_list_item(tp) or _strip_none(_split_annotated(tp)[0])):
                row.example = ""
                row.type += " (see [Checks](#checks))"
        direct = [target for target, _row, suffix in later if not suffix]
        for target, row, suffix in later:
            sub = self.seen.get(target)
            here = sub.title if sub is not None else "below"
            if sub is None:
                path = row.key.strip("`")
                if direct.count(target) > 1:  # calendar.rules.<rule>: one block, several keys
                    path = f"{prefix}<{target.__name__.lower()}>"
                # Blocks inside a check are the same for every kind: tls.*, json[].*
                relative = path.removeprefix(prefix) + suffix
                lookup = relative if lookup_prefix.startswith("check.") else path + suffix
                sub = self.model_section(
                    target, f"`{path}{suffix}`", f"{path}{suffix}.", f"{lookup}."
                )
            row.type += f" (see [{here}](#{sub.anchor}))"
        return section

    def row(
        self, cls: type[BaseModel], name: str, info: FieldInfo, tp: Any, path: str, lookup: str
    ) -> Row:
        description = info.description or DESCRIPTIONS.get(lookup)
        if not description:
            description = _field_comments(_own_source(cls, name)).get(name, "")
        if not description:
            self.missing.append(lookup)
        if lookup in self.examples:
            example = _flow(self.examples[lookup])
        elif lookup in EXAMPLES:
            example = _flow(EXAMPLES[lookup])
        elif info.examples:
            example = _flow(info.examples[0])
        else:
            example = ""
        return Row(
            key=f"`{path}`",
            lookup=lookup,
            type=type_text(tp),
            default=default_text(info, tp),
            example=example,
            description=description,
        )


def _with_metadata(info: FieldInfo, cls: type | None = None, name: str = "") -> Any:
    tp = info.annotation
    if isinstance(tp, typing.ForwardRef | str) and cls is not None:
        # Not resolved yet where the model is defined (a name defined after the class).
        tp = typing.get_type_hints(_own_source(cls, name), include_extras=True)[name]
    return Annotated[(tp, *info.metadata)] if info.metadata else tp


def _list_item(tp: Any) -> Any:
    inner = _strip_none(_split_annotated(tp)[0])
    if typing.get_origin(inner) is list:
        return _split_annotated(typing.get_args(inner)[0])[0]
    return None


def _is_list(tp: Any) -> bool:
    return _list_item(tp) is not None


def _model_inside(tp: Any) -> type[BaseModel] | None:
    """The model a field holds directly or as list items (not a union of several)."""
    inner = _strip_none(_split_annotated(tp)[0])
    item = _list_item(tp)
    candidate = item if item is not None else inner
    return candidate if _is_model(candidate) else None


def _doc(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first.replace("``", "`")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Dotted keys of an example document (``[]`` for list items), first value seen."""
    if prefix and prefix not in out:
        out[prefix] = value
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, f"{prefix}[]", out)


def collect_examples() -> dict[str, Any]:
    """Examples from the shipped config files; checks under ``check.<kind>.``."""
    found: dict[str, Any] = {}
    documents = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in EXAMPLE_FILES]
    documents.append(yaml.safe_load(REGISTRY_EXAMPLE.read_text(encoding="utf-8")))
    checks: list[dict[str, Any]] = []
    for document in documents:
        _flatten(document, "", found)
        checks += (document.get("uplink") or {}).get("checks") or []
        for agency in document.get("agencies") or []:
            for system in agency.get("systems") or []:
                checks += system.get("checks") or []
    for check in checks:
        kind = check.get("kind")
        for key, value in check.items():
            if key == "tls" and isinstance(value, dict):
                for sub, item in value.items():
                    found.setdefault(f"tls.{sub}", item)
            elif key == "json" and isinstance(value, list):
                for condition in value:
                    for sub, item in condition.items():
                        found.setdefault(f"json[].{sub}", item)
            found.setdefault(f"check.{kind}.{key}", value)
            if key in CheckCommon.model_fields:
                found.setdefault(f"check.*.{key}", value)
    # Examples of a daemon key are not those of the inline agencies' checks.
    return {k: v for k, v in found.items() if "checks[]" not in k}


# ---------------------------------------------------------------------------- the document


def build() -> tuple[list[Section], list[str]]:
    builder = Builder(collect_examples())
    daemon = builder.model_section(
        Config,
        "Daemon config: top level",
        "",
        "",
        intro="The file given to `npsp-monitor run -c FILE` "
        "(`/etc/npsp-monitor/config.yaml`; example: `config/npsp-monitor.example.yaml`).",
    )
    registry_first = Section(
        title="Registry files",
        anchor="registry-files",
        model="",
        intro="Files named by `include` (example: `config/registry.example.yaml`). They hold "
        "`schema_version` and `agencies`, nothing else; `agencies` may also be written in the "
        "daemon's config itself. `npsp-monitor check-config -c FILE` checks a registry file "
        "on its own.",
    )
    builder.sections.append(registry_first)
    registry_first.rows.append(
        Row("`schema_version`", "schema_version", "integer", "`1`", "`1`", "")
    )
    registry_first.rows[0].description = DESCRIPTIONS["schema_version"]
    registry_first.rows += [row for row in daemon.rows if row.lookup == "agencies"]
    # The agencies' sections follow the registry's, where a reader looks for them.
    moved = [s for s in builder.sections if s.title.startswith("`agencies[]")]
    builder.sections = [s for s in builder.sections if s not in moved] + moved
    check_sections(builder)
    value_sections(builder)
    return builder.sections, builder.missing


def check_sections(builder: Builder) -> None:
    common = builder.model_section(
        CheckCommon,
        "Checks",
        "",
        "check.*.",
        intro="Every check, whatever its kind, has these keys. A check sits at "
        + " and ".join(f"`{p}`" for p in CHECK_PATHS)
        + "; its keys are written relative to it. Unset values take `defaults`.",
    )
    common_fields = CheckCommon.model_fields
    for kind, probe in PROBES.items():
        spec = probe.spec
        inherited = frozenset(
            name
            for name, info in spec.model_fields.items()
            if name in common_fields and name != "kind" and _same_default(info, common_fields[name])
        ) | {"kind"}
        builder.model_section(
            spec,
            f"Check kind `{kind}`",
            "",
            f"check.{kind}.",
            skip=inherited,
            intro=f"`kind: {kind}` — {_doc(spec)}",
        )
    (kind_row,) = [row for row in common.rows if row.lookup == "check.*.kind"]
    kind_row.type = " \\| ".join(f"`{name}`" for name in PROBES)


def _same_default(a: FieldInfo, b: FieldInfo) -> bool:
    if a.is_required() or b.is_required():
        return a.is_required() == b.is_required()
    return bool(
        a.get_default(call_default_factory=True) == b.get_default(call_default_factory=True)
    )


def value_sections(builder: Builder) -> None:
    builder.model_section(
        SecretSource,
        "Secrets",
        "",
        "secret.",
        intro="Wherever a key's type is `secret`, the value is never in the YAML: it is "
        "`{file: NAME}` or `{env: NAME}`, exactly one of them.",
    )


HEADER = f"""\
# Configuration reference

<!-- GENERATED by scripts/config-reference.py from the pydantic models: do not edit by hand.
     After changing a model, run: {COMMAND} -->

Every key of the daemon's configuration file, of a registry file and of each check kind, with
its type, default, an example and its meaning. It is generated from the models that validate the
file (each section names its model), so it lists exactly what `npsp-monitor check-config`
accepts; tests/test_config_reference.py fails when it is out of date. Regenerate it with:

    {COMMAND}

The README's "Configuration reference" explains the file as a whole: includes, limits, secrets.

How to read it:

- A key is written with dots for nesting and `[]` for an item of a list:
  `alerting.outbox.max_attempts`, `alerting.operations[].email`.
- **duration**: a number with a unit, `500ms`, `30s`, `5m`, `1h30m`, `2d` (a bare number is
  refused).
  **secret**: `{{file: NAME}}` or `{{env: NAME}}`, never the value itself (see [Secrets](#secrets)).
  **file path**: an absolute path, or relative to the directory the daemon runs in.
- Default **required**: the key must be given; **none**: unset, the feature is off or another key
  decides; **see below**: a block whose own keys have defaults.
- Unknown keys are errors.
"""


def _cell(text: str) -> str:
    """A table cell: one line, every ``|`` escaped (in code spans too, as GFM wants)."""
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))


def render() -> str:
    sections, _missing = build()
    out = [HEADER, "## Contents\n"]
    for section in sections:
        title = section.title
        out.append(f"- [{title}](#{section.anchor})")
    out.append("")
    for section in sections:
        out.append(f"## {section.title}\n")
        if section.intro:
            out.append(section.intro + "\n")
        if section.model:
            out.append(f"Model: `{section.model}`.\n")
        if not section.rows:
            continue
        out.append("| key | type | default | example | meaning |")
        out.append("|---|---|---|---|---|")
        for row in section.rows:
            cells = (row.key, row.type, row.default, row.example, row.description or "—")
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def undescribed() -> list[str]:
    return build()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    missing = undescribed()
    for key in missing:
        print(f"config-reference: no description for {key}", file=sys.stderr)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 1 if missing else 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
