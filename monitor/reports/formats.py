"""The report as numbers people read (``h:mm``, truncated percentages), as JSON and as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from typing import Any

from .model import TZ, Figures, Report
from .senior import senior_as_dict
from .words import Lang

__all__ = [
    "CSV_HEADER",
    "format_availability",
    "format_hmm",
    "moment",
    "render_csv",
    "render_json",
    "report_as_dict",
]


def format_hmm(seconds: float) -> str:
    """``h:mm``, to the nearest minute (hours go past 24): 5400 → ``1:30``."""
    minutes = math.floor(seconds / 60 + 0.5)
    return f"{minutes // 60}:{minutes % 60:02d}"


def format_availability(value: float | None, language: Lang = "en") -> str:
    """Three decimals, truncated (99.9996 is ``99.999``, not ``100.000``); ``""`` for None.

    Vietnamese writes a decimal comma.
    """
    if value is None:
        return ""
    truncated = math.floor(round(value * 1000, 6)) / 1000
    text = f"{truncated:.3f}"
    return text.replace(".", ",") if language == "vi" else text


def moment(ts: float) -> dt.datetime:
    """A time of the report, in Vietnam's time zone."""
    return dt.datetime.fromtimestamp(ts, TZ)


def _iso(ts: float) -> str:
    return moment(ts).isoformat(timespec="seconds")


def report_as_dict(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data (seconds unrounded, availability in percent); one
    agency's part (:func:`monitor.reports.periods.agency_report`) says which (``agency``), its
    totals being the agency's."""
    scoped = {} if report.agency is None else {"agency": report.agency}
    return {
        **scoped,
        "month": report.month,
        "starts": _iso(report.starts),
        "ends": _iso(report.ends),
        "until": _iso(report.until),
        "complete": report.complete,
        "generated_at": _iso(report.generated_at),
        "time_zone": "Asia/Ho_Chi_Minh",
        "totals": report.totals.as_dict(),
        "agencies": [
            {
                "id": a.id,
                "name_vi": a.name_vi,
                "name_en": a.name_en,
                "code": a.code,
                "kind": a.kind,
                **a.figures.as_dict(),
                "systems": [
                    {
                        "system": s.system,
                        "key": s.key,
                        "name": s.name,
                        "name_en": s.name_en,
                        "kind": s.kind,
                        **s.figures.as_dict(),
                    }
                    for s in a.systems
                ],
            }
            for a in report.agencies
        ],
        # Who held each agency's senior rights at the end, and the changes (monitor.reports.senior).
        "senior_rights": senior_as_dict(report),
    }


def render_json(report: Report) -> str:
    return json.dumps(report_as_dict(report), ensure_ascii=False, indent=1) + "\n"


CSV_HEADER = (
    "month",
    "scope",
    "agency",
    "agency_name",
    "agency_code",
    "system",
    "system_name",
    "system_kind",
    "availability_percent",
    "up_seconds",
    "down_seconds",
    "down_hmm",
    "unreachable_seconds",
    "unreachable_hmm",
    "monitored_seconds",
    "not_monitored_seconds",
    "maintenance_seconds",
    "degraded_seconds",
    "outages",
    "incidents",
    "sla_breaches",
)


def _csv_figures(f: Figures) -> list[str]:
    return [
        format_availability(f.availability, "en"),
        f"{f.up_seconds:.0f}",
        f"{f.down_seconds:.0f}",
        format_hmm(f.down_seconds),
        f"{f.unreachable_seconds:.0f}",
        format_hmm(f.unreachable_seconds),
        f"{f.monitored_seconds:.0f}",
        f"{f.not_monitored_seconds:.0f}",
        f"{f.maintenance_seconds:.0f}",
        f"{f.degraded_seconds:.0f}",
        str(f.outages),
        str(f.incidents),
        str(f.sla_breaches),
    ]


def render_csv(report: Report) -> str:
    """A header, then per agency one row per system (scope ``system``) and one for the agency
    (scope ``agency``), then the portal's totals (scope ``portal``). Vietnamese names; write it
    as UTF-8. Seconds are rounded to whole seconds; an empty availability: not measured."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # A week's report (monitor.reports.periods) names its first column for what it holds.
    writer.writerow(CSV_HEADER if "-W" not in report.month else ("period", *CSV_HEADER[1:]))
    for a in report.agencies:
        for s in a.systems:
            writer.writerow(
                [
                    report.month,
                    "system",
                    a.id,
                    a.name_vi,
                    a.code,
                    s.system,
                    s.name,
                    s.kind,
                    *_csv_figures(s.figures),
                ]
            )
        writer.writerow(
            [report.month, "agency", a.id, a.name_vi, a.code, "", "", "", *_csv_figures(a.figures)]
        )
    if report.agency is None:  # one agency's report has no portal line
        writer.writerow(
            [report.month, "portal", "", "", "", "", "", "", *_csv_figures(report.totals)]
        )
    return out.getvalue()
