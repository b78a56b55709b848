"""The daemon's configuration: pydantic models, loading with includes, and cross-checks.

Every error is reported as ``file:line: dotted.path: message``. :func:`load_config` gathers
all of them at once (a person fixing a config wants the whole list, not one per run).
"""

from __future__ import annotations

import gc
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from npsp_common.types import CheckCommon, Duration, StrictModel
from probes import PROBES

from .alerting.channels import ChannelSettings
from .alerting.settings import AlertingSettings
from .deadman import DeadmanSettings
from .workdays import CalendarSettings
from .yamlsource import (
    DEFAULT_LIMITS,
    Limits,
    LineDict,
    LineList,
    Mark,
    YamlError,
    YamlProblem,
    locate,
    new_dict,
    new_list,
    parse_yaml,
    read_regular_file,
)

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
Channel = Literal["sms", "email", "inbox"]


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
    channels: Annotated[list[Channel], Field(min_length=1)] = ["email", "inbox"]
    language: Literal["vi", "en"] = "vi"

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: list[Channel]) -> list[Channel]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    def missing_addresses(self) -> list[str]:
        """Channels asked for without the address they need."""
        need = {"sms": self.phone, "email": self.email, "inbox": self.portal_account}
        field = {"sms": "phone", "email": "email", "inbox": "portal_account"}
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
    state_db: Path = Path("state/npsp-monitor.db")
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

    _check_listen = field_validator("listen")(classmethod(lambda cls, v: _listen_address(v)))


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in the configuration, where a person can find it."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path or '(document)'}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` lists the problems found.

    At most ``Limits.max_errors`` problems are listed, then one line saying how many more
    there are; ``total`` counts them all.
    """

    def __init__(
        self, issues: list[ConfigIssue], total: int | None = None, complete: bool = True
    ) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues
        self.total = len(issues) if total is None else total
        self.complete = complete  # False: checking stopped early, there may be more

    def summary(self) -> str:
        """``3 error(s) in the configuration`` (``at least``: checking stopped early)."""
        count = f"{self.total:,}" if self.complete else f"at least {self.total:,}"
        return f"{count} error(s) in the configuration"


def load_config(path: Path, limits: Limits = DEFAULT_LIMITS) -> Config:
    """Read, merge includes, validate and cross-check; raise :class:`ConfigError`.

    Whatever the files hold, nothing but :class:`ConfigError` comes out: the daemon calls this
    on SIGHUP and must survive any file (a 4,300-digit number was a ``ValueError``, a deep
    list a ``RecursionError``; both ended the daemon).
    """
    return _load_bounded(path, limits, registry_alone=False)[0]


def check_config_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[Config, bool]:
    """What ``check-config`` checks: a daemon config, or a registry file on its own.

    A file with ``schema_version`` is a registry file (what a daemon config includes) and is
    checked as one: its keys, agencies, contacts, systems and checks; True says so. What it
    cannot tell alone — whether the channels its contacts ask for are configured, systems of
    agencies in other files — is checked with the daemon's config that includes it.
    """
    return _load_bounded(path, limits, registry_alone=True)


def _load_bounded(path: Path, limits: Limits, *, registry_alone: bool) -> tuple[Config, bool]:
    name = str(path).replace("\0", "\\0")
    try:
        with _gc_paused():
            return _load_config(path, limits, registry_alone)
    except ConfigError as exc:
        raise _capped(exc, name, limits.max_errors) from None
    except RecursionError:
        message = "nested too deeply to validate"
    except MemoryError:
        message = "out of memory while loading the configuration: it is too large"
    except Exception as exc:  # noqa: BLE001 - the boundary: any surprise becomes an error line
        message = f"cannot load the configuration: {type(exc).__name__}: {exc}"[:500]
    raise ConfigError([ConfigIssue(name, 0, "", message)]) from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building 0.4 million containers triggers dozens of full collections that find nothing
    (the tree has no cycles): pausing the collector makes a 10,000-system load 25% faster."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _capped(exc: ConfigError, name: str, max_errors: int) -> ConfigError:
    """At most ``max_errors`` lines: a merge bomb printed 2.3 million of them."""
    total = max(exc.total, len(exc.issues))
    shown = exc.issues[:max_errors]
    if total <= len(shown) and exc.complete:
        return ConfigError(shown, total)
    if exc.complete:
        more = ConfigIssue(name, 0, "", f"… and {total - len(shown):,} more errors not shown")
    else:
        more = ConfigIssue(name, 0, "", "… and more: checking stopped after these")
    return ConfigError([*shown, more], total, exc.complete)


def _load_config(path: Path, limits: Limits, registry_alone: bool) -> tuple[Config, bool]:
    path = Path(_real_path(str(path)))
    reader = _Reader(limits)
    raw = reader.read_mapping(path)
    fallback = Mark(str(path), 1)
    # A registry file: schema_version, and no key of the daemon's own but agencies.
    alone = registry_alone and "schema_version" in raw and not _DAEMON_KEYS.intersection(raw)
    if alone:  # a registry file on its own: its agencies, as if a config included it
        issues = _registry_file_issues(raw)
        raw = _agencies_only(raw)
    else:
        issues = _merge_includes(raw, path, reader)
    if reader.nodes > _PREFIX_NODES:
        _refuse_garbage(raw, fallback, issues, limits.max_errors)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        shown = _from_validation(raw, exc, fallback, limits.max_errors)
        total = len(issues) + max(exc.error_count(), len(shown))
        raise ConfigError([*issues, *shown], total) from None
    issues.extend(_cross_check(config, raw, fallback, path.parent, alone=alone))
    if issues:
        raise ConfigError(issues)
    if not config.state_db.is_absolute():
        config = config.model_copy(update={"state_db": path.parent / config.state_db})
    return config, alone


_DAEMON_KEYS = frozenset(Config.model_fields) - {"agencies"}


def _agencies_only(raw: LineDict) -> LineDict:
    """The ``agencies`` of a registry file as a config holding nothing else (its other keys
    are reported by :func:`_registry_file_issues`)."""
    result = new_dict(raw.file, raw.line)
    if "agencies" in raw:
        result["agencies"] = raw["agencies"]
        result.key_lines["agencies"] = raw.key_lines.get("agencies", raw.line)
    return result


def _real_path(name: str) -> str:
    """The absolute, symlink-free path; a loop or a NUL byte is reported when the file is read."""
    if "\0" in name:
        return name
    return os.path.realpath(name)  # unlike Path.resolve, no RuntimeError on a symlink loop


class _Reader:
    """Reads the main file and its includes within one shared budget (bytes, values, files)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes = 0
        self.nodes = 0
        self.files = 0

    def read_mapping(self, path: Path) -> LineDict:
        name = str(path)
        try:
            raw = self._parse(name)
        except YamlError as exc:
            raise ConfigError(
                [ConfigIssue(p.mark.file, p.mark.line, p.path, p.message) for p in exc.problems]
            ) from None
        if raw is None:
            raw = new_dict(name, 1)
        if not isinstance(raw, LineDict):
            raise ConfigError([ConfigIssue(name, 1, "", "the file must hold a mapping")])
        return raw

    def _parse(self, name: str) -> Any:
        limits = self.limits
        self.files += 1
        if self.files > limits.max_includes + 1:
            raise YamlError(
                [YamlProblem(Mark(name, 0), "", f"more than {limits.max_includes} includes")]
            )
        left = limits.max_total_bytes - self.bytes
        data = read_regular_file(name, min(limits.max_file_bytes, left))
        self.bytes += len(data)
        root, self.nodes = parse_yaml(data, name, limits, self.nodes)
        return root


def _merge_includes(raw: LineDict, path: Path, reader: _Reader) -> list[ConfigIssue]:
    """Append the ``agencies`` of each included file to ``raw['agencies']``, keeping positions."""
    issues: list[ConfigIssue] = []
    includes = raw.get("include") or []
    if not isinstance(includes, LineList):
        return []  # the model reports the wrong type
    agencies = raw.get("agencies")
    if not isinstance(agencies, LineList):
        if raw.get("agencies") is not None:
            return []  # wrong type, reported by the model
        agencies = raw["agencies"] = new_list(raw.file, raw.line)
        raw.key_lines.setdefault("agencies", raw.line)
    for index, name in enumerate(includes):
        if not isinstance(name, str):
            continue
        mark = includes.item_mark(index)
        if "\0" in name:
            issues.append(
                ConfigIssue(mark.file, mark.line, f"include[{index}]", "a NUL byte in the path")
            )
            continue
        try:
            sub = reader.read_mapping(Path(_real_path(os.path.join(path.parent, name))))
        except ConfigError as exc:
            if exc.issues and exc.issues[0].line == 0:
                # The include itself could not be read: say which file was tried.
                message = _naming_file(exc.issues[0].message, exc.issues[0].file)
                issues.append(ConfigIssue(mark.file, mark.line, f"include[{index}]", message))
            else:
                issues.extend(exc.issues)
            continue
        issues.extend(_registry_file_issues(sub))
        sub_agencies = sub.get("agencies") or []
        if not isinstance(sub_agencies, LineList):
            at = sub.key_mark("agencies") or sub.mark
            issues.append(ConfigIssue(at.file, at.line, "agencies", "must be a list"))
            continue
        agencies.extend_from(sub_agencies)
    return issues


def _naming_file(message: str, file: str) -> str:
    """``cannot read /etc/npsp-monitor/registry.yaml: No such file or directory``."""
    if message.startswith("cannot read: "):
        return f"cannot read {file}: {message.removeprefix('cannot read: ')}"
    return f"{file}: {message}"


def _registry_file_issues(sub: LineDict) -> list[ConfigIssue]:
    """An included file holds ``schema_version`` (1) and ``agencies``, nothing else."""
    issues = []
    for key in sub:
        if key not in ("schema_version", "agencies"):
            at = sub.key_mark(key) or sub.mark
            issues.append(
                ConfigIssue(
                    at.file,
                    at.line,
                    key,
                    "unknown key in a registry file (allowed: schema_version, agencies)",
                )
            )
    version = sub.get("schema_version", 1)
    if version != 1:
        at = sub.key_mark("schema_version") or sub.mark
        issues.append(
            ConfigIssue(
                at.file,
                at.line,
                "schema_version",
                f"unsupported schema_version {version!r} (this version reads 1)",
            )
        )
    return issues


_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


# Beyond this many errors, pydantic's list of them costs more than the validation itself
# (a million errors: 2 s and 500 MB for ``errors()``): only the first ones are rendered.
_MANY_ERRORS = 10_000
_PREFIX_NODES = 20_000


def _refuse_garbage(
    raw: LineDict, fallback: Mark, issues: list[ConfigIssue], max_errors: int
) -> None:
    """Stop when the start of a large document already has ``max_errors`` errors.

    Validating a million wrong values holds a million errors (2 s, 500 MB); a person
    fixes the first hundred first anyway.
    """
    try:
        Config.model_validate(_prefix(raw, [_PREFIX_NODES]))
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False) if e["type"] != "missing"]
        if len(issues) + len(errors) >= max_errors:
            shown = [*issues, *_render(raw, errors[:max_errors], fallback)]
            raise ConfigError(shown, len(shown), complete=False) from None


def _first_errors(raw: LineDict, exc: ValidationError, max_errors: int) -> list[ErrorDetails]:
    """The first ``max_errors`` of ``exc``'s errors, without rendering all of them."""
    if exc.error_count() <= _MANY_ERRORS:
        return exc.errors(include_url=False)[:max_errors]
    # Validate the start of the document again (its first nodes, marks kept). Cutting the
    # document short makes fields after the cut "missing": those errors are not shown.
    try:
        Config.model_validate(_prefix(raw, [_PREFIX_NODES]))
    except ValidationError as again:
        errors = [e for e in again.errors(include_url=False) if e["type"] != "missing"]
        return errors[:max_errors]
    return []


def _prefix(value: Any, budget: list[int]) -> Any:
    """A copy of the first ``budget[0]`` values of ``value`` (depth first), marks kept."""
    budget[0] -= 1
    if isinstance(value, LineDict):
        result = new_dict(value.file, value.line)
        for key, item in value.items():
            if budget[0] <= 0:
                break
            result[key] = _prefix(item, budget)
            result.key_lines[key] = value.key_lines.get(key, value.line)
        return result
    if isinstance(value, LineList):
        result_list = new_list(value.file, value.line)
        for index, item in enumerate(value):
            if budget[0] <= 0:
                break
            result_list.append(_prefix(item, budget))
            result_list.item_lines.append(value.item_lines[index])
        count = len(result_list)
        result_list.item_files = None if value.item_files is None else value.item_files[:count]
        result_list.origins = None if value.origins is None else value.origins[:count]
        return result_list
    return value


def _from_validation(
    raw: LineDict, exc: ValidationError, fallback: Mark, max_errors: int
) -> list[ConfigIssue]:
    return _render(raw, _first_errors(raw, exc, max_errors), fallback)


def _render(raw: LineDict, errors: list[ErrorDetails], fallback: Mark) -> list[ConfigIssue]:
    issues = []
    for error in errors:
        loc = list(error["loc"])
        message = _PYDANTIC_PREFIX.sub("", error["msg"])
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif error["type"] == "union_tag_invalid":
            kinds = ", ".join(PROBES)
            message = f"unknown check kind {error.get('ctx', {}).get('tag')!r} (known: {kinds})"
            loc.append("kind")
        elif error["type"] == "missing":
            message = "required field is missing"
        mark, dotted = locate(raw, loc, fallback)
        issues.append(ConfigIssue(mark.file, mark.line, dotted, message))
    return issues


def _cross_check(
    config: Config, raw: LineDict, fallback: Mark, base: Path, *, alone: bool = False
) -> list[ConfigIssue]:
    """Checks that span several objects: unique ids, references, cycles, timing.

    ``alone``: a registry file checked on its own, without the config that includes it: its
    contacts' channels and its references to agencies of other files are not judged.
    """
    del base
    issues: list[ConfigIssue] = []

    def issue(loc: Iterable[int | str], message: str) -> None:
        mark, dotted = locate(raw, list(loc), fallback)
        issues.append(ConfigIssue(mark.file, mark.line, dotted, message))

    dflt = config.defaults
    if dflt.timeout >= dflt.interval:
        issue(
            ("defaults", "timeout"),
            f"timeout ({dflt.timeout:g}s) must be shorter than the interval ({dflt.interval:g}s)",
        )
    seen_agencies: dict[str, int] = {}
    systems: dict[str, tuple[int, int]] = {}
    for a, agency in enumerate(config.agencies):
        if agency.id in seen_agencies:
            issue(("agencies", a, "id"), f"duplicate agency id {agency.id!r}")
        seen_agencies.setdefault(agency.id, a)
        for c, contact in enumerate(agency.contacts):
            for problem in contact.missing_addresses():
                issue(("agencies", a, "contacts", c, "channels"), problem)
            for problem in [] if alone else _unconfigured(config, contact.channels):
                issue(("agencies", a, "contacts", c, "channels"), problem)
        for s, system in enumerate(agency.systems):
            key = f"{agency.id}/{system.id}"
            if key in systems:
                issue(
                    ("agencies", a, "systems", s, "id"),
                    f"duplicate system id {system.id!r} in agency {agency.id!r}",
                )
            systems.setdefault(key, (a, s))
            issues_for_checks(system.checks, ("agencies", a, "systems", s), config.defaults, issue)
    for o, person in enumerate(config.alerting.operations):
        for problem in _unconfigured(config, person.channels):
            issue(("alerting", "operations", o, "channels"), problem)
    if config.uplink is not None:
        issues_for_checks(config.uplink.checks, ("uplink",), config.defaults, issue)

    graph: dict[str, list[str]] = {}
    for a, agency in enumerate(config.agencies):
        for s, system in enumerate(agency.systems):
            key = f"{agency.id}/{system.id}"
            parents = graph.setdefault(key, [])
            for d, ref in enumerate(system.depends_on):
                target = ref if "/" in ref else f"{agency.id}/{ref}"
                if alone and target.split("/", 1)[0] not in seen_agencies:
                    continue  # an agency of another file: judged with the whole config
                if target not in systems:
                    issue(("agencies", a, "systems", s, "depends_on", d), f"unknown system {ref!r}")
                elif target == key:
                    issue(
                        ("agencies", a, "systems", s, "depends_on", d),
                        "a system cannot depend on itself",
                    )
                else:
                    parents.append(target)
    for cycle in _find_cycles(graph):
        a, s = systems[cycle[0]]
        issue(
            ("agencies", a, "systems", s, "depends_on"),
            "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
        )
    return issues


def _unconfigured(config: Config, wanted: Iterable[str]) -> list[str]:
    """A channel asked for but not set up would drop alerts silently: refuse it at load."""
    return [
        f"channel {c} is not configured (add channels.{c})"
        for c in wanted
        if c in ("sms", "email") and getattr(config.channels, c) is None
    ]


def issues_for_checks(
    checks: list[CheckCommon], loc: tuple[int | str, ...], defaults: Defaults, issue: Any
) -> None:
    """Unique check ids within a system, and a timeout shorter than the interval."""
    seen: set[str] = set()
    for c, check in enumerate(checks):
        if check.id in seen:
            issue((*loc, "checks", c, "id"), f"duplicate check id {check.id!r}")
        seen.add(check.id)
        if check.interval is None and check.timeout is None:
            continue  # both from defaults: reported once, at defaults.timeout
        interval = check.interval or defaults.interval
        timeout = check.timeout or defaults.timeout
        if timeout >= interval:
            field = "timeout" if check.timeout is not None else "interval"
            issue(
                (*loc, "checks", c, field),
                f"timeout ({timeout:g}s) must be shorter than the interval ({interval:g}s)",
            )


def _find_cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Yield each dependency cycle once (iterative DFS; registries can be deep)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start, first_parents in graph.items():
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(first_parents))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour.get(child, BLACK) == GREY:
                yield path[path.index(child) :]
            elif colour.get(child) == WHITE:
                colour[child] = GREY
                stack.append((child, iter(graph[child])))
                path.append(child)
