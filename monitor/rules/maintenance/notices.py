"""The texts of a window's notices (Vietnamese and English), and who hears of it: the admins
of the agencies in scope (every agency's technical admins for the whole portal) and
operations, when it is scheduled, when it starts and ends, or that it was cancelled."""

from __future__ import annotations

from ...alerting.messages import local_time
from ...alerting.notices import Audience, Notice, everyone
from ...registry import Registry
from ...workdays import Rule
from .model import NoticeKind, Window

_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "portal": "toàn bộ Cổng Dịch vụ công quốc gia (mọi hệ thống)",
        "portal_short": "toàn cổng",
        "agency": "mọi hệ thống của {agency} ({ref})",
        "system": "{system} của {agency} ({ref})",
        "subject_scheduled": "[NPSP] Lịch bảo trì #{id}: {when}",
        "subject_started": "[NPSP] Bắt đầu bảo trì #{id} (đến {ends})",
        "subject_ended": "[NPSP] Kết thúc bảo trì #{id}",
        "subject_cancelled": "[NPSP] Hủy bảo trì #{id}",
        "lead_scheduled": "Đã lên lịch bảo trì #{id}.",
        "lead_started": "Bảo trì #{id} đã bắt đầu lúc {starts}; dự kiến kết thúc lúc {ends}.",
        "lead_ended": "Bảo trì #{id} đã kết thúc lúc {ends}.",
        "lead_cancelled": "Bảo trì #{id} ({when}) đã bị hủy lúc {at}.",
        "lead_stopped": "Bảo trì #{id} đã dừng sớm lúc {at} (dự kiến đến {ends}).",
        "muted": "Trong thời gian bảo trì, cảnh báo mất kết nối của các hệ thống này tạm dừng.",
        "resumed": (
            "Cảnh báo mất kết nối hoạt động trở lại: hệ thống nào vẫn mất kết nối sẽ được báo."
        ),
        "scope": "Phạm vi",
        "time": "Thời gian",
        "reason": "Lý do",
        "cancel_reason": "Lý do hủy",
        "notice": "Thông báo trước {n} ngày làm việc (yêu cầu ít nhất {required}; {source}).",
        "late": (
            "THÔNG BÁO MUỘN: chỉ trước {n} ngày làm việc, ít hơn {required} ngày làm việc "
            "theo quy định ({source}). Lý do vẫn thực hiện: {override}"
        ),
        "sms_scheduled": "NPSP: lịch bảo trì #{id} {scope} {when}{late}",
        "sms_late": " (BÁO MUỘN)",
        "sms_started": "NPSP: bắt đầu bảo trì #{id} {scope} đến {ends}; tạm dừng cảnh báo",
        "sms_ended": "NPSP: kết thúc bảo trì #{id} {scope}; cảnh báo hoạt động lại",
        "sms_cancelled": "NPSP: hủy bảo trì #{id} {scope} ({when})",
    },
    "en": {
        "portal": "the whole National Public Service Portal (every system)",
        "portal_short": "whole portal",
        "agency": "every system of {agency} ({ref})",
        "system": "{system} of {agency} ({ref})",
        "subject_scheduled": "[NPSP] Maintenance #{id} scheduled: {when}",
        "subject_started": "[NPSP] Maintenance #{id} started (until {ends})",
        "subject_ended": "[NPSP] Maintenance #{id} ended",
        "subject_cancelled": "[NPSP] Maintenance #{id} cancelled",
        "lead_scheduled": "Maintenance #{id} is scheduled.",
        "lead_started": "Maintenance #{id} started at {starts}; it is planned to end at {ends}.",
        "lead_ended": "Maintenance #{id} ended at {ends}.",
        "lead_cancelled": "Maintenance #{id} ({when}) was cancelled at {at}.",
        "lead_stopped": "Maintenance #{id} was stopped early at {at} (planned until {ends}).",
        "muted": "During the maintenance, connection alerts for these systems are held.",
        "resumed": "Connection alerts are back on: any system still down will be reported.",
        "scope": "Scope",
        "time": "Time",
        "reason": "Reason",
        "cancel_reason": "Cancellation reason",
        "notice": "Announced {n} working days ahead (at least {required} required; {source}).",
        "late": (
            "LATE NOTICE: announced only {n} working days ahead, fewer than the {required} "
            "working days required ({source}). Reason for going ahead: {override}"
        ),
        "sms_scheduled": "NPSP: maintenance #{id} {scope} {when}{late}",
        "sms_late": " (LATE NOTICE)",
        "sms_started": "NPSP: maintenance #{id} {scope} started, until {ends}; alerts held",
        "sms_ended": "NPSP: maintenance #{id} {scope} ended; alerts back on",
        "sms_cancelled": "NPSP: maintenance #{id} {scope} ({when}) cancelled",
    },
}


def _span(starts: float, ends: float) -> str:
    """``20:00–22:00 15/12/2026``, or both moments in full when the days differ."""
    a, b = local_time(starts), local_time(ends)
    if a[6:] == b[6:]:
        return f"{a[:5]}–{b}"
    return f"{a} – {b}"


def _scope_lines(window: Window, registry: Registry, lang: str) -> list[str]:
    w = _WORDS[lang]
    if window.portal_wide:
        return [w["portal"]]
    agencies = {e.agency.id: e.agency for e in registry.systems.values()}
    lines = []
    for ref in window.scope:
        agency_id = ref.partition("/")[0]
        agency = agencies.get(agency_id)
        agency_name = (
            agency_id if agency is None else (agency.name_vi if lang == "vi" else agency.name_en)
        )
        entry = registry.systems.get(ref)
        if "/" not in ref:
            lines.append(w["agency"].format(agency=agency_name, ref=ref))
        else:
            system = ref if entry is None else entry.system.name
            if entry is not None and lang == "en" and entry.system.name_en:
                system = entry.system.name_en
            lines.append(w["system"].format(system=system, agency=agency_name, ref=ref))
    return lines


def _scope_short(window: Window, lang: str) -> str:
    if window.portal_wide:
        return _WORDS[lang]["portal_short"]
    first, more = window.scope[0], len(window.scope) - 1
    return first if not more else f"{first} +{more}"


def notice_for(window: Window, kind: NoticeKind, registry: Registry, rule: Rule) -> Notice:
    """The notice of one event of a window, in Vietnamese and English."""
    subject, text, sms = {}, {}, {}
    when = _span(window.starts, window.ends)
    for lang, w in _WORDS.items():
        values = {
            "id": window.id,
            "when": when,
            "starts": local_time(window.starts),
            "ends": local_time(window.ends),
            "at": local_time(window.cancelled_at or window.ends),
            "scope": _scope_short(window, lang),
        }
        lines = []
        if kind == "cancelled":
            stopped = window.cancelled_at is not None and window.cancelled_at > window.starts
            lines.append(w["lead_stopped" if stopped else "lead_cancelled"].format(**values))
            if stopped:
                lines.append(w["resumed"])
        else:
            lines.append(w[f"lead_{kind}"].format(**values))
            lines.append(w["resumed" if kind == "ended" else "muted"])
        lines.append("")
        lines.append(f"{w['scope']}:")
        lines += [f"- {line}" for line in _scope_lines(window, registry, lang)]
        lines.append(f"{w['time']}: {when}")
        lines.append(f"{w['reason']}: {window.reason}")
        if kind == "cancelled" and window.cancel_reason:
            lines.append(f"{w['cancel_reason']}: {window.cancel_reason}")
        rule_values = {"n": window.working_days, "required": window.required, "source": rule.source}
        if window.compliant:
            lines.append(w["notice"].format(**rule_values))
        else:
            override = window.override_reason or "—"
            lines.append(w["late"].format(**rule_values, override=override))
        subject[lang] = w[f"subject_{kind}"].format(**values)
        text[lang] = "\n".join(lines)
        late = w["sms_late"] if kind == "scheduled" and not window.compliant else ""
        sms[lang] = w[f"sms_{kind}"].format(**values, late=late)
    return Notice(
        key=f"maintenance/{window.id}/{kind}",
        subject=subject,
        text=text,
        sms=sms,
        thread_key=f"maintenance/{window.id}",
    )


def audience(window: Window, registry: Registry) -> list[Audience]:
    """Who hears of a window: the technical and high-level admins of each agency in scope and
    operations; for the whole portal, operations and every agency's technical admins."""
    operations: Audience = ("", "operations")
    if window.portal_wide:
        agencies = sorted({e.agency.id for e in registry.systems.values()})
        return [operations, *everyone(agencies, "technical-admins")]
    agencies = [ref.partition("/")[0] for ref in window.scope]
    return [*everyone(agencies, "technical-admins", "high-level-admins"), operations]
