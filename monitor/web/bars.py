"""The 24-hour bars of the pages: the last :data:`WINDOW` seconds in
:data:`~monitor.web.templates.render.SLOTS` slots, aligned to the clock, each coloured by the
worst state the system was in during that slot (:data:`SEVERITY`); the gateway's own outages
show as unknown. One query over ``state_changes`` since :func:`window_start`
(:func:`monitor.changes_store.since`) feeds every bar of a page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from ..changes_store import ChangeRow
from ..state import GATEWAY_AGENCY, State
from .templates.render import SLOTS, Bar, Run

WINDOW = 86_400.0  # the bar's span, seconds

#: Which state a slot shows when the system was in several: the worst.
#: Pending means "no verdict yet": any verdict in the same slot says more.
SEVERITY: dict[State, int] = {
    State.PENDING: 0,
    State.UP: 1,
    State.MAINTENANCE: 2,
    State.DEGRADED: 3,
    State.UNKNOWN: 4,
    State.FLAPPING: 5,
    State.UNREACHABLE: 6,
    State.DOWN: 7,
}
_BY_SEVERITY = sorted(SEVERITY, key=SEVERITY.__getitem__)

Change = tuple[float, State, State]  # ts, old state, new state


def window_start(now: float, *, window: float = WINDOW, slots: int = SLOTS) -> float:
    """Where slot 0 begins: the window ends at the next slot boundary after ``now``."""
    slot = window / slots
    return math.floor(now / slot) * slot + slot - window


def _fill(levels: list[int], a: float, b: float, level: int, start: float, slot: float) -> None:
    """Raise the slots from ``a`` to ``b`` (slot 0 begins at ``start``) to at least ``level``."""
    last_slot = len(levels) - 1
    first = max(0, min(last_slot, int((a - start) // slot)))
    last = max(first, min(last_slot, math.ceil((b - start) / slot) - 1))
    for i in range(first, last + 1):
        levels[i] = max(levels[i], level)


def _spans(
    history: list[Change], now_state: State, start: float, now: float
) -> Iterator[tuple[float, float, State]]:
    """(from, to, state) from ``start`` to ``now``, from the changes since and the state now."""
    at, state = start, history[0][1] if history else now_state
    for ts, _old, new in history:
        yield at, max(at, ts), state
        at, state = max(at, ts), new
    yield at, now, state


def _runs(levels: list[int]) -> tuple[Run, ...]:
    """Slot levels as runs of one state: (state, first slot, number of slots)."""
    out: list[Run] = []
    for i, level in enumerate(levels):
        state = _BY_SEVERITY[level]
        if out and out[-1][0] is state:
            out[-1] = (state, out[-1][1], out[-1][2] + 1)
        else:
            out.append((state, i, 1))
    return tuple(out)


def _by_system(changes: Iterable[ChangeRow]) -> tuple[dict[str, list[Change]], list[Change]]:
    """The changes per ``agency/system``, and the gateway's own."""
    per_key: dict[str, list[Change]] = {}
    gateway: list[Change] = []
    for ts, agency, system, old, new in changes:
        try:
            change = (ts, State(old), State(new))
        except ValueError:
            continue  # a state this version does not know
        if agency == GATEWAY_AGENCY:
            gateway.append(change)
        else:
            per_key.setdefault(f"{agency}/{system}", []).append(change)
    return per_key, gateway


def timelines(
    changes: Iterable[ChangeRow],
    current: Mapping[str, State],
    now: float,
    *,
    gateway_cut: bool = False,
    window: float = WINDOW,
    slots: int = SLOTS,
) -> dict[str, Bar]:
    """Every system's bar from the state changes since :func:`window_start` (oldest first)
    and each system's state now. Systems without a change in the window share one bar per
    state, so the cost grows with the number of changes, not with slots times systems."""
    start = window_start(now, window=window, slots=slots)
    slot = window / slots
    per_key, gateway = _by_system(changes)
    floor = [0] * slots  # the gateway's outages: nobody can be better than unknown then
    if gateway or gateway_cut:
        for a, b, state in _spans(gateway, State.DOWN if gateway_cut else State.UP, start, now):
            if state is State.DOWN:
                _fill(floor, a, b, SEVERITY[State.UNKNOWN], start, slot)
    shared: dict[State, Bar] = {}
    bars: dict[str, Bar] = {}
    for key, state in current.items():
        history = per_key.get(key)
        if history is None:
            bar = shared.get(state)
            if bar is None:
                bar = shared[state] = Bar(
                    start, slot, _runs([max(SEVERITY[state], f) for f in floor])
                )
            bars[key] = bar
            continue
        levels = list(floor)
        for a, b, held in _spans(history, state, start, now):
            _fill(levels, a, b, SEVERITY[held], start, slot)
        bars[key] = Bar(start, slot, _runs(levels))
    return bars


__all__ = ["SEVERITY", "WINDOW", "timelines", "window_start"]
