"""The validated config flattened into what the daemon runs: systems and their checks.

Each check has a stable key ``agency/system/check`` and a fingerprint of everything that shapes
its runs; a reload keeps the state and schedule of every check whose fingerprint is unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Agency, Config, System
from .state import GATEWAY_AGENCY, GATEWAY_SYSTEM
from .types import CheckCommon


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


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

    @classmethod
    def from_config(cls, config: Config) -> Registry:
        systems: dict[str, SystemEntry] = {}
        checks: dict[str, CheckEntry] = {}
        for agency in config.agencies:
            for system in agency.systems:
                key = f"{agency.id}/{system.id}"
                entries = tuple(
                    _entry(config, agency.id, system.id, spec) for spec in system.checks
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
            _entry(config, GATEWAY_AGENCY, GATEWAY_SYSTEM, spec)
            for spec in (config.uplink.checks if config.uplink else [])
        )
        return cls(systems, checks, canaries)

    def find_system(self, ref: str) -> SystemEntry | None:
        """Look a system up by ``agency/system``."""
        return self.systems.get(ref)


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
