"""The validated config flattened into what the daemon runs: systems and their checks.

Each check has a stable key ``agency/system/check`` and a fingerprint of everything that shapes
its runs; a reload keeps the state and schedule of every check whose fingerprint is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from npsp_common.types import CheckCommon
from probes.addresspolicy import AddressPolicy, gateway_itself
from probes.base import TargetSpec

from .config import Agency, Config, System
from .state import GATEWAY_AGENCY, GATEWAY_SYSTEM


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class Override:
    """Registered values of a system changed by an announcement that took effect.

    They replace what the config says in the system's checks: the host and port probed, a
    pinned certificate fingerprint, a DNS check's expected addresses. A value the config does
    not pin (no fingerprint, no expected addresses) stays unpinned: unannounced-change
    detection compares against what was observed and announced instead.

    A check whose host or port it changes is marked announced (see :meth:`Registry.from_config`):
    its probe connects only where the address policy allows and echoes nothing it reads.
    """

    host: str | None = None
    port: int | None = None
    fingerprint_sha256: str | None = None
    addresses: tuple[str, ...] | None = None

    def apply(self, spec: CheckCommon) -> CheckCommon:
        """``spec`` with these values in place (the same object when nothing applies)."""
        update: dict[str, Any] = {}
        fields = type(spec).model_fields
        if "url" in fields and (self.host is not None or self.port is not None):
            update["url"] = _with_netloc(spec.url, self.host, self.port)  # type: ignore[attr-defined]
        if "host" in fields and self.host is not None:
            update["host"] = self.host
        if "port" in fields and self.port is not None:
            update["port"] = self.port
        tls = getattr(spec, "tls", None)
        if (
            self.fingerprint_sha256 is not None
            and tls is not None
            and tls.expected_fingerprint_sha256 is not None
        ):
            update["tls"] = tls.model_copy(
                update={"expected_fingerprint_sha256": self.fingerprint_sha256}
            )
        if self.addresses is not None and getattr(spec, "expected_addresses", None):
            update["expected_addresses"] = list(self.addresses)
        return spec.model_copy(update=update) if update else spec

    def moves(self, spec: CheckCommon) -> bool:
        """Does this override send ``spec`` to another host? A new port on the registry's own
        host does not: that host is trusted as the operators configured it (a secure server on
        the government's private network moving to another port must not go DOWN)."""
        fields = type(spec).model_fields
        if self.host is not None and ("url" in fields or "host" in fields):
            return True
        # Another port of the gateway itself (a local tunnel the registry names) is not trusted.
        return self.port is not None and gateway_itself(spec.target_host())


def _with_netloc(url: str, host: str | None, port: int | None) -> str:
    parts = urlsplit(url)
    new_host = host if host is not None else (parts.hostname or "")
    if ":" in new_host:
        new_host = f"[{new_host}]"  # an IPv6 literal
    new_port = port if port is not None else parts.port
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + new_host
    if new_port is not None:
        netloc += f":{new_port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class CheckEntry:
    """One check, with the daemon's defaults applied."""

    key: str
    agency: str
    system: str
    spec: CheckCommon
    interval: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    fingerprint: str
    labels: str  # pre-rendered Prometheus labels: rendering /metrics must stay cheap

    @property
    def check_id(self) -> str:
        return self.spec.id

    @property
    def kind(self) -> str:
        return self.spec.kind


@dataclass(frozen=True, slots=True)
class SystemEntry:
    """One system and its resolved dependencies."""

    key: str
    agency: Agency
    system: System
    parents: tuple[str, ...]
    checks: tuple[CheckEntry, ...]
    labels: str


@dataclass(frozen=True, slots=True)
class Registry:
    """Every system and check of one config, by key."""

    systems: dict[str, SystemEntry]
    checks: dict[str, CheckEntry]
    canaries: tuple[CheckEntry, ...]
    # What announced hosts and addresses, and redirect targets, may reach (config.security).
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)

    @classmethod
    def from_config(
        cls, config: Config, overrides: Mapping[str, Override] | None = None
    ) -> Registry:
        """The registry of ``config``, with announced changes (by system key) in effect."""
        overrides = overrides or {}
        policy = AddressPolicy.from_settings(config.security.allow_networks, config.listen)
        systems: dict[str, SystemEntry] = {}
        checks: dict[str, CheckEntry] = {}
        for agency in config.agencies:
            for system in agency.systems:
                key = f"{agency.id}/{system.id}"
                override = overrides.get(key)
                entries = tuple(
                    _entry(config, agency.id, system.id, _guard(spec, override, policy))
                    for spec in system.checks
                )
                parents = tuple(
                    ref if "/" in ref else f"{agency.id}/{ref}" for ref in system.depends_on
                )
                labels = (
                    f'agency="{_label_value(agency.id)}",system="{_label_value(system.id)}",'
                    f'kind="{_label_value(system.kind)}"'
                )
                systems[key] = SystemEntry(key, agency, system, parents, entries, labels)
                checks.update((e.key, e) for e in entries)
        canaries = tuple(
            _entry(config, GATEWAY_AGENCY, GATEWAY_SYSTEM, _guard(spec, None, policy))
            for spec in (config.uplink.checks if config.uplink else [])
        )
        return cls(systems, checks, canaries, policy)

    def find_system(self, ref: str) -> SystemEntry | None:
        """Look a system up by ``agency/system``."""
        return self.systems.get(ref)


def _guard(spec: CheckCommon, override: Override | None, policy: AddressPolicy) -> CheckCommon:
    """``spec`` with the announced values in place, under the address policy where it needs it:
    a check whose host or port was announced (its target is checked) and an http check that
    follows redirects (a redirect to another host or port is checked). Others stay as they are,
    and so cost nothing more per probe."""
    announced = override is not None and override.moves(spec)
    if override is not None:
        spec = override.apply(spec)
    if isinstance(spec, TargetSpec) and (announced or getattr(spec, "follow_redirects", 0) > 0):
        return spec.guarded(policy, announced=announced)
    return spec


def _entry(config: Config, agency: str, system: str, spec: CheckCommon) -> CheckEntry:
    d = config.defaults
    interval = spec.interval or d.interval
    timeout = spec.timeout or d.timeout
    failure = spec.failure_threshold or d.failure_threshold
    success = spec.success_threshold or d.success_threshold
    # Files a check reads (CA bundle, client certificate) count too: replacing one and sending
    # SIGHUP must rebuild the check's TLS context even though the config text is unchanged.
    files = "|".join(_file_stamp(p) for p in _paths(spec.model_dump()))
    shape = f"{spec.model_dump_json()}|{interval}|{timeout}|{failure}|{success}|{files}"
    if isinstance(spec, TargetSpec) and spec.address_policy is not None:
        # not in the dump: a new allow-list, or a newly announced target, rebuilds the probe
        shape += f"|{spec.announced}|{spec.address_policy.key}"
    fingerprint = hashlib.sha256(shape.encode()).hexdigest()[:16]
    labels = (
        f'agency="{_label_value(agency)}",system="{_label_value(system)}",'
        f'check="{_label_value(spec.id)}",kind="{_label_value(spec.kind)}"'
    )
    return CheckEntry(
        key=f"{agency}/{system}/{spec.id}",
        agency=agency,
        system=system,
        spec=spec,
        interval=interval,
        timeout=timeout,
        failure_threshold=failure,
        success_threshold=success,
        fingerprint=fingerprint,
        labels=labels,
    )


def _paths(value: Any) -> Iterator[Path]:
    if isinstance(value, Path):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _paths(item)


def _file_stamp(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_mtime_ns}:{st.st_size}"
