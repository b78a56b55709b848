"""Monthly availability reports, per system and per agency, from the stored state changes.

``npsp-monitor report -c FILE --month 2026-11`` (the ``report`` command) renders them as
HTML (Vietnamese or English), CSV or JSON. The package in three parts:

* :mod:`~monitor.reports.source`: every query (one transaction on the store) and
  :func:`build_report`;
* :mod:`~monitor.reports.figures`: the figures, pure functions of the rows read, with their
  definitions (the period, the buckets, outages, incidents, SLA breaches); their data in
  :mod:`~monitor.reports.model`;
* the renderings: :mod:`~monitor.reports.formats` (numbers, JSON, CSV) and
  :mod:`~monitor.reports.html` (the page, with :mod:`~monitor.reports.words`).
"""

from __future__ import annotations

from .figures import month_bounds
from .formats import format_availability, format_hmm, render_csv, render_json, report_as_dict
from .html import render_html
from .model import TZ, AgencyReport, Figures, Report, ReportError, SystemReport
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
    "report_as_dict",
]
