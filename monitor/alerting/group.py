"""Group: one digest per recipient and channel instead of one message per system.

As in Alertmanager: a new group waits ``group_wait`` so that a storm arrives as one message;
later changes go out at most every ``group_interval``; while alerts keep firing unchanged the
digest is repeated every ``repeat_interval``. SMS costs money, so a recipient gets at most one
SMS per ``sms_min_interval``: whatever happens meanwhile is folded into the next digest. Pure:
every method takes ``now``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from ..config.alerting import AlertingSettings
from .model import Alert, Recipient
from .mute import Muter

DigestKind = Literal["firing", "repeat", "resolved", "escalation"]


@dataclass(frozen=True, slots=True)
class Digest:
    """What one message to one recipient says."""

    recipient: Recipient
    kind: DigestKind
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    new: frozenset[str]  # keys of alerts this recipient hears about for the first time
    key: str  # idempotency key, derived from the content (never from the host)
    thread_key: str | None  # key of the first message about these alerts: follow-ups thread to it


@dataclass(slots=True)
class _Group:
    recipient: Recipient
    alerts: dict[str, Alert] = field(default_factory=dict)
    told: dict[str, str] = field(default_factory=dict)  # alert key -> incident told as firing
    roots: dict[str, str] = field(default_factory=dict)  # alert key -> key of its first message
    # Resolved alerts still owed their notice whose system has a new alert meanwhile (an
    # outage that ended degraded): both go out in the next digest.
    closing: list[Alert] = field(default_factory=list)
    dirty: bool = False
    next_flush: float | None = None
    last_flush: float | None = None
    held_check: float | None = None  # when to look again at firing alerts held by a mute
    muted: set[str] = field(default_factory=set)  # firing alerts a mute kept out of the last flush


class Grouper:
    """Holds one group per recipient and channel and says which are due."""

    def __init__(self, settings: AlertingSettings, muter: Muter) -> None:
        self.settings = settings
        self.muter = muter
        self.groups: dict[str, _Group] = {}

    def add(self, recipient: Recipient, alert: Alert, now: float) -> None:
        """An alert fired (or changed) for this recipient, or was resolved."""
        group = self.groups.get(recipient.group_key)
        if group is None:
            if not alert.firing:
                return  # never told about it: nothing to resolve
            group = self.groups[recipient.group_key] = _Group(recipient)
        if not alert.firing and alert.key not in group.told:
            group.alerts.pop(alert.key, None)
            return
        previous = group.alerts.get(alert.key)
        if (
            alert.firing
            and previous is not None
            and not previous.firing
            and previous.incident != alert.incident
        ):
            group.closing.append(previous)  # its recovery is still owed
        group.alerts[alert.key] = alert
        group.dirty = True
        self._schedule(group, now)

    def remember(self, recipient: Recipient, alert: Alert, now: float) -> None:
        """Restore, after a restart, an alert this recipient was already told about: no new
        message now; a reminder after ``repeat_interval``; the resolved notice when it ends."""
        group = self.groups.get(recipient.group_key)
        if group is None:
            group = self.groups[recipient.group_key] = _Group(recipient)
        group.alerts[alert.key] = alert
        group.told[alert.key] = alert.incident
        alert.notified = True
        if group.last_flush is None:
            # As if flushed one interval ago: what this person has not heard yet (lost in the
            # crash) goes out at once; the reminder comes a repeat interval from now, roughly.
            group.last_flush = now - self.settings.group_interval
        self._schedule(group, now)

    def forget(self, alert: Alert) -> None:
        """Drop ``alert`` from every group, silently: it was replaced by news that says more
        (a degraded system now down, or behind a parent that is down). Without this, a group
        whose recipient does not hear of the replacement would remind them of it forever."""
        for key, group in list(self.groups.items()):
            if group.alerts.get(alert.key) is alert:
                del group.alerts[alert.key]
                group.told.pop(alert.key, None)
                group.roots.pop(alert.key, None)
                if not group.alerts and not group.closing:
                    del self.groups[key]

    def _schedule(self, group: _Group, now: float) -> None:
        s = self.settings
        if group.last_flush is None:
            when = now + s.group_wait if group.next_flush is None else group.next_flush
        elif group.dirty:
            when = max(now, group.last_flush + s.group_interval)
        else:
            when = group.last_flush + s.repeat_interval
        if group.recipient.channel == "sms" and group.last_flush is not None:
            when = max(when, group.last_flush + s.sms_min_interval)
        group.next_flush = when

    def due(self, now: float) -> list[Digest]:
        """Flush every group whose time has come; return the digests to send."""
        out = []
        for key, group in list(self.groups.items()):
            if group.held_check is not None and group.held_check <= now:
                self._recheck_held(group, now)
            if group.next_flush is None or group.next_flush > now:
                continue
            digest = self._flush(group, now)
            if digest is not None:
                out.append(digest)
            if not group.alerts:
                del self.groups[key]
            elif digest is not None:
                self._schedule(group, now)
            # else: everything is held by a mute; _flush set when to look again
        return out

    def _held(self, group: _Group, now: float) -> bool:
        """Whether a firing alert of this group is held by a mute."""
        return any(a.firing and self.muter.mutes(a, now) is not None for a in group.alerts.values())

    def _recheck_held(self, group: _Group, now: float) -> None:
        """A mute may have ended: an alert it held goes out (as a change, so ``group_interval``
        and the SMS budget still apply) even when the group's next flush is a distant repeat."""
        released = any(
            a.firing
            and (a.key not in group.told or a.key in group.muted)
            and self.muter.mutes(a, now) is None
            for a in group.alerts.values()
        )
        group.held_check = None
        if released:
            group.dirty = True
            self._schedule(group, now)
        if self._held(group, now):
            group.held_check = now + min(60.0, self.settings.group_interval)

    def next_due(self) -> float | None:
        return min(
            (
                t
                for g in self.groups.values()
                for t in (g.next_flush, g.held_check)
                if t is not None
            ),
            default=None,
        )

    def _flush(self, group: _Group, now: float) -> Digest | None:
        # Muted (a maintenance window, a silence): held, even if already told, so no reminder
        # goes out while it lasts; a recovery is still told, and an alert still firing when
        # the mute ends goes out again then.
        firing = [a for a in group.alerts.values() if a.firing and self.muter.mutes(a, now) is None]
        group.muted = {a.key for a in group.alerts.values() if a.firing} - {a.key for a in firing}
        resolved = [a for a in group.alerts.values() if not a.firing and a.key in group.told]
        closing, group.closing = group.closing, []
        new = frozenset(a.key for a in firing if group.told.get(a.key) != a.incident)
        changed = group.dirty
        group.dirty = False
        root = next(
            (group.roots[a.key] for a in [*firing, *resolved] if a.key in group.roots), None
        )
        for a in resolved:
            del group.alerts[a.key]
            del group.told[a.key]
            group.roots.pop(a.key, None)
        if closing:
            # Their systems stay in the group with their new alert; if that one ended too
            # before anyone heard of it, the recovery of the one told is the news.
            ended = {a.key for a in closing}
            resolved = [a for a in resolved if a.key not in ended] + closing
        if not firing and not resolved:
            # Everything is muted: hold it; it goes out if the mute ends while it still fires.
            group.next_flush = now + min(60.0, self.settings.group_interval)
            return None
        kind: DigestKind = "firing" if new else ("resolved" if not firing else "repeat")
        if kind == "repeat" and changed:
            kind = "firing"  # details changed (e.g. a child became unreachable)
        for a in firing:
            group.told[a.key] = a.incident
            a.notified = True
        group.last_flush = now
        if group.held_check is None and self._held(group, now):
            group.held_check = now + min(60.0, self.settings.group_interval)
        ordinal = ""
        if kind == "repeat":
            first = min(a.since for a in firing)
            ordinal = str(int((now - first) // self.settings.repeat_interval))
        elif kind == "firing" and not new:
            # News of alerts already told (settled from flapping, a window that held them is
            # over): its content may equal an earlier digest's, which the outbox would drop as
            # a duplicate; when it is due keeps its key apart.
            ordinal = f"at{int(now)}"
        digest = _digest(group.recipient, kind, firing, resolved, new, ordinal, root)
        for a in firing:
            group.roots.setdefault(a.key, digest.key)
        return digest


def _digest(
    recipient: Recipient,
    kind: DigestKind,
    firing: list[Alert],
    resolved: list[Alert],
    new: frozenset[str],
    ordinal: str = "",
    thread: str | None = None,
) -> Digest:
    firing.sort(key=lambda a: (a.agency, a.system))
    resolved.sort(key=lambda a: (a.agency, a.system))
    content = "|".join(
        [
            recipient.person,
            recipient.channel,
            kind,
            ",".join(f"{a.incident}:{a.state.value}:{len(a.affected)}" for a in firing),
            ",".join(f"{a.incident}:resolved" for a in resolved),
            ordinal,
        ]
    )
    key = hashlib.sha256(content.encode()).hexdigest()[:32]
    return Digest(recipient, kind, tuple(firing), tuple(resolved), new, key, thread)


def escalation_digest(recipient: Recipient, alert: Alert, level: int) -> Digest:
    """A message to a higher level about one unacknowledged incident (no grouping wait)."""
    return _digest(recipient, "escalation", [alert], [], frozenset({alert.key}), f"level{level}")
