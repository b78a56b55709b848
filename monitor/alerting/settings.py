"""The ``alerting:`` section's models, for the pipeline's modules: they live in
:mod:`monitor.config.alerting`, beside the rest of the config (which the pipeline reads), so that
the config does not import the pipeline."""

from __future__ import annotations

from ..config.alerting import (
    DEFAULT_ESCALATION,
    AlertingSettings,
    EscalationStep,
    OperationsContact,
    OutboxSettings,
    Route,
    RouteMatch,
    Severity,
    Silence,
    Target,
)

__all__ = [
    "DEFAULT_ESCALATION",
    "AlertingSettings",
    "EscalationStep",
    "OperationsContact",
    "OutboxSettings",
    "Route",
    "RouteMatch",
    "Severity",
    "Silence",
    "Target",
]
