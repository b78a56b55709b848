"""What an alert digest is about, as data: the agency, system, state and times of each alert it
names. The webhook channel sends it beside the text (docs/webhook.md), so a receiver (a ticketing
system) need not read Vietnamese prose to open or close a ticket."""

from __future__ import annotations

import time
from typing import Any

from .group import Digest
from .messages import MAX_LINES
from .model import Alert


def _utc(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _alert(alert: Alert, status: str) -> dict[str, Any]:
    return {
        "agency": alert.agency,
        "system": alert.system,
        "name": alert.name,
        "state": alert.state.value,
        "status": status,  # firing | resolved
        "since": _utc(alert.since),
        "resolved_at": _utc(alert.resolved_at),
        "incident": alert.incident,
        "severity": alert.severity,
        "reason": alert.reason,
        "affected": list(alert.affected),
    }


def digest_facts(digest: Digest) -> dict[str, Any]:
    """``kind`` (firing, repeat, resolved, escalation), ``alerts`` (the firing ones first, in
    the digest's order, then the resolved ones) and ``more``: the alerts left out. A storm's body
    lists :data:`~.messages.MAX_LINES` of them, as its text does, so that a receiver's size
    limit (a 413, permanent) does not turn it away; the status page has the rest."""
    alerts = [(a, "firing") for a in digest.firing] + [(a, "resolved") for a in digest.resolved]
    return {
        "kind": digest.kind,
        "alerts": [_alert(a, status) for a, status in alerts[:MAX_LINES]],
        "more": max(0, len(alerts) - MAX_LINES),
    }


__all__ = ["digest_facts"]
