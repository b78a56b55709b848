"""Monthly availability reports, per system and per agency, from the stored state changes.

``npsp-monitor report -c FILE --month 2026-11`` (the ``report`` command) renders them as
HTML (Vietnamese or English), CSV or JSON. The package in three parts:

* :mod:`~monitor.reports.source`: every query (one transaction on the store) and
  :func:`build_report`;
* :mod:`~monitor.reports.figures`: the figures, pure functions of the rows read, with their
  definitions (the period, the buckets, outages, incidents, SLA breaches); their data in
  :mod:`~monitor.reports.model`;
* the renderings: :mod:`~monitor.reports.formats` (numbers, JSON, CSV) and
  :mod:`~monitor.reports.html` (the page, with :mod:`~monitor.reports.words`);
* :mod:`~monitor.reports.senior`: who held each agency's senior rights (agency-admin) at the
  end, and the grants and revocations during the period (a part of the JSON and of the HTML,
  and a CSV of its own);
* :mod:`~monitor.reports.periods`: weeks beside months, the period before a moment, one
  agency's part of a report.

The scheduled reports (the config's ``reports:``): :mod:`~monitor.reports.triggers`
(APScheduler's triggers on the working-day calendar), :mod:`~monitor.reports.schedule` (the
daemon's desk: when a report is due, misfires), :mod:`~monitor.reports.produce` (a report made,
recorded and queued in one transaction), :mod:`~monitor.reports.letters` (its messages: the
HTML and the CSV by e-mail, a link in the inbox) and :mod:`~monitor.reports.runs_store` (the
``report_runs`` table). ``npsp-monitor report send --now`` makes one at once.
"""

from __future__ import annotations

from .figures import month_bounds
from .formats import format_availability, format_hmm, render_csv, render_json, report_as_dict
from .html import render_html
from .model import TZ, AgencyReport, Figures, Report, ReportError, SystemReport
from .senior import render_senior_csv
from .source import build_report

__all__ = [
    "TZ",
    "AgencyReport",
    "Figures",
    "Report",
    "ReportError",
    "SystemReport",
    "build_report",
    "format_availability",
    "format_hmm",
    "month_bounds",
    "render_csv",
    "render_html",
    "render_json",
    "render_senior_csv",
    "report_as_dict",
]
