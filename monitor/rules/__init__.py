"""The working-day rules acting on the fleet: change announcements (and unannounced changes),
maintenance windows and incidents with their SLA clock.

Each is a *desk*: it keeps its rows in the store, re-reads them when another process (the
command line) wrote some, and acts when time passes (:class:`.desk.Desk`). Notices go out
through the alert pipeline's outbox (:mod:`monitor.alerting.notices`); deadlines are counted
by :class:`monitor.workdays.WorkCalendar`.
"""
