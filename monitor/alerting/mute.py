"""Mute: silences (and, with the working-day rules, maintenance windows) hold alerts back.

One small interface serves every reason to stay quiet, as Alertmanager's ``Muter`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..config.alerting import Silence
from .model import Alert


class Muter(Protocol):
    """Says why an alert must not be sent now, or None."""

    def mutes(self, alert: Alert, now: float) -> str | None: ...


class Silences:
    """Silences from the config: ``silences`` returns those in effect (a reload changes
    them)."""

    def __init__(self, silences: Callable[[], Iterable[Silence]]) -> None:
        self.silences = silences

    def mutes(self, alert: Alert, now: float) -> str | None:
        for s in self.silences():
            if s.agency != alert.agency or (s.system is not None and s.system != alert.system):
                continue
            if (s.starts is None or s.starts <= now) and now < s.ends:
                return f"silenced: {s.reason}"
        return None


class AnyMuter:
    """The first muter that objects wins."""

    def __init__(self, muters: Iterable[Muter]) -> None:
        self.muters = list(muters)

    def mutes(self, alert: Alert, now: float) -> str | None:
        for muter in self.muters:
            reason = muter.mutes(alert, now)
            if reason is not None:
                return reason
        return None
