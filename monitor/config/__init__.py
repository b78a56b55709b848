"""The daemon's configuration: pydantic models, loading with includes, and cross-checks.

* :mod:`.model` — the models: agencies, contacts, systems, checks, the daemon's sections;
* :mod:`.alerting` — the ``alerting:`` section (routes, escalation, outbox);
* :mod:`.load` — reading the YAML and its includes within limits, validating;
* :mod:`.crosscheck` — what spans several objects (unique ids, references, cycles);
* :mod:`.issues` — :class:`ConfigIssue` and :class:`ConfigError`, what a failed load reports.

The channels' settings live beside their channels (:mod:`notifiers.settings`). The config
imports none of the daemon's running parts: they import it.
"""

from __future__ import annotations

from .crosscheck import issues_for_checks
from .issues import ConfigError, ConfigIssue
from .load import check_config_file, load_config
from .model import (
    Agency,
    AnyCheck,
    Config,
    Contact,
    Defaults,
    HttpSettings,
    SchedulerConfig,
    SecuritySettings,
    Slug,
    System,
    Uplink,
)

__all__ = [
    "Agency",
    "AnyCheck",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Contact",
    "Defaults",
    "HttpSettings",
    "SchedulerConfig",
    "SecuritySettings",
    "Slug",
    "System",
    "Uplink",
    "check_config_file",
    "issues_for_checks",
    "load_config",
]
