"""Duty rosters (issue 15): per agency, weekly shifts and dated overrides in Hanoi time, who
is on duty at a moment, and whom an off-hours outage pages.

* **routing** (:meth:`Rosters.duty_targets`): an outage alert (DOWN, FLAPPING, UNREACHABLE) to
  an agency's technical-admins outside its working hours (:meth:`WorkCalendar.is_working_time`
  with the agency: weekends, public holidays and swapped Saturdays understood) pages the people
  on duty, when the agency has a roster; in working hours, without a roster, or with nobody on
  duty (logged), the normal routing: the whole technical team.
* **gaps** (:class:`GapDesk`, the leader's): once a day, each uncovered off-hours stretch
  starting in ``[now + 24 h, now + 48 h)`` is told to the agency's admins, once.
* **changes** (:mod:`.actions`): the agency-admin replaces its weekly pattern; an operator adds
  or removes a dated override (a swap); every change audited ``roster.update``.

Rooms: :mod:`.model` (shifts, overrides, who is on duty, the gaps; no I/O), :mod:`.store` (the
statements on ``roster_shifts`` and ``roster_overrides``), :mod:`.actions`, :mod:`.desk`,
:mod:`.notices`.
"""

from __future__ import annotations

from .desk import GapDesk, Rosters, names_of
from .model import Override, Roster, RosterError, Shift

__all__ = ["GapDesk", "Override", "Roster", "RosterError", "Rosters", "Shift", "names_of"]
