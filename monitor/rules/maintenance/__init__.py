"""Maintenance windows, planned by the Government Office for the portal itself or for given
agencies or systems (QĐ 31/2021/QĐ-TTg, Điều 52 khoản 2: at least 5 working days' notice).

* **schedule** (:func:`schedule`, used by the command line): the notice is counted in working
  days by :meth:`WorkCalendar.notice` against ``rules.maintenance_notice``. A late window is
  refused unless overridden with a reason; it is then stored, flagged (``compliant = 0``).
* **notices** (:class:`MaintenanceDesk`): the affected admins and operations hear when a window
  is scheduled, when it starts and when it ends (or that it was cancelled), each exactly once.
  The ``notified_*`` columns record what was told; the notice keys are derived from the window,
  so a crash between queuing a notice and recording it sends nothing twice.
* **mute** (:meth:`MaintenanceDesk.mutes`): alerts of covered systems are held inside a window.
  The alert pipeline keeps a held alert and sends it if it still fires when the window ends.

Windows are rows of the ``maintenance`` table (store migration 4); times are epoch seconds and
``scope`` is a JSON list of ``agency`` or ``agency/system`` refs, empty for the whole portal.

The topic's rooms: :mod:`.model` (the window, what it may be, its notice counted; no I/O),
:mod:`.store` (every statement on the ``maintenance`` table), :mod:`.actions` (schedule, list,
cancel), :mod:`.desk` (:class:`MaintenanceDesk`, the daemon's part) and :mod:`.notices` (the
texts and who hears them). The ``maintenance`` commands are in
:mod:`monitor.cli.maintenance`.
"""

from __future__ import annotations

from .actions import cancel, list_windows, schedule
from .desk import MaintenanceDesk
from .model import (
    MAX_DURATION,
    MAX_TEXT,
    LateNotice,
    MaintenanceError,
    Window,
    prepare,
    resolve_scope,
)
from .notices import audience, notice_for

__all__ = [
    "MAX_DURATION",
    "MAX_TEXT",
    "LateNotice",
    "MaintenanceDesk",
    "MaintenanceError",
    "Window",
    "audience",
    "cancel",
    "list_windows",
    "notice_for",
    "prepare",
    "resolve_scope",
    "schedule",
]
