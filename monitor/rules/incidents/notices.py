"""The SLA reminders' texts (Vietnamese and English) and who gets them: at 50 % of the SLA the
agency's technical admins; at the breach also its high-level admins and the operations team."""

from __future__ import annotations

import hashlib

from ...alerting.messages import local_time
from ...alerting.notices import Audience, Notice, everyone
from ...registry import Registry
from ...workdays import WorkCalendar
from .model import Incident, hours_left, sla_hours

Texts = dict[str, str]  # language → text

DIGEST_LINES = 200  # incidents listed in one message; more are counted


def names(registry: Registry, incident: Incident) -> tuple[Texts, str]:
    """The agency's names by language, and the system concerned (name and id)."""
    found_names = {"vi": incident.agency, "en": incident.agency}
    for entry in registry.systems.values():
        if entry.agency.id == incident.agency:
            found_names = {"vi": entry.agency.name_vi, "en": entry.agency.name_en}
            break
    system = ""
    if incident.system:
        found = registry.systems.get(incident.key)
        system = f"{found.system.name} ({incident.key})" if found else incident.key
    return found_names, system


# ----- one incident -----------------------------------------------------------------------------


def _facts(
    calendar: WorkCalendar, registry: Registry, i: Incident, source: str
) -> tuple[Texts, Texts]:
    """What the incident is (agency, system, summary, receipt, due time and its basis), and
    who acknowledged it (empty if nobody did)."""
    agency, system = names(registry, i)
    sla = sla_hours(calendar, i)
    due, received = local_time(i.due_at), local_time(i.received)
    if i.complex:
        basis_vi = f"yêu cầu phức tạp: thời gian hoàn thành dự kiến đã công bố, {source}"
        basis_en = f"a complex request: the published expected completion time, {source}"
    else:
        basis_vi = f"{sla:g} giờ làm việc, {source}"
        basis_en = f"{sla:g} working hours, {source}"
    entered_vi = entered_en = ""
    if i.opened_at != i.received:
        entered_vi = f" (nhập lúc {local_time(i.opened_at)})"
        entered_en = f" (entered {local_time(i.opened_at)})"
    acked = {"vi": "", "en": ""}
    if i.acknowledged_at is not None:
        at = local_time(i.acknowledged_at)
        acked = {
            "vi": f"Đã tiếp nhận: {i.acknowledged_by} lúc {at}.",
            "en": f"Acknowledged by {i.acknowledged_by} at {at}.",
        }
    about_vi = f"Hệ thống: {system}\n" if system else ""
    about_en = f"System: {system}\n" if system else ""
    facts = {
        "vi": f"Đơn vị: {agency['vi']}\n{about_vi}Nội dung: {i.summary}\n"
        f"Tiếp nhận lúc: {received}{entered_vi}\nHạn xử lý: {due} ({basis_vi})\n",
        "en": f"Agency: {agency['en']}\n{about_en}Summary: {i.summary}\n"
        f"Received: {received}{entered_en}\nDue: {due} ({basis_en})\n",
    }
    return facts, acked


def _half(i: Incident, left: float, facts: Texts, acked: Texts) -> tuple[Texts, Texts, Texts]:
    """Subject, text and SMS of the 50 % reminder."""
    due = local_time(i.due_at)
    subject = {
        "vi": f"[NPSP] Sự cố {i.id}: đã dùng một nửa thời hạn xử lý",
        "en": f"[NPSP] Incident {i.id}: half of the SLA used",
    }
    text = {
        "vi": f"Sự cố {i.id} chưa được xử lý xong; còn {left:.1f} giờ làm việc.\n\n"
        + facts["vi"]
        + (acked["vi"] or "Chưa ai tiếp nhận sự cố này."),
        "en": f"Incident {i.id} is not resolved yet; {left:.1f} working hours left.\n\n"
        + facts["en"]
        + (acked["en"] or "Nobody has acknowledged it yet."),
    }
    sms = {
        "vi": f"NPSP: sự cố {i.id} còn {left:.1f} giờ làm việc, hạn {due}."
        + (f" Đã tiếp nhận: {i.acknowledged_by}." if acked["vi"] else " Chưa ai tiếp nhận."),
        "en": f"NPSP: incident {i.id} has {left:.1f} working h left, due {due}."
        + (f" Ack: {i.acknowledged_by}." if acked["en"] else " Not acknowledged."),
    }
    return subject, text, sms


def _breach(i: Incident, facts: Texts, acked: Texts) -> tuple[Texts, Texts, Texts]:
    """Subject, text and SMS of the breach."""
    due = local_time(i.due_at)
    subject = {
        "vi": f"[NPSP] Sự cố {i.id} quá hạn xử lý",
        "en": f"[NPSP] Incident {i.id} breached its SLA",
    }
    text = {
        "vi": f"Sự cố {i.id} chưa được xử lý xong khi hết thời hạn; chuyển lên lãnh đạo "
        "đơn vị và bộ phận vận hành (VPCP).\n\n"
        + facts["vi"]
        + (acked["vi"] or "Chưa ai tiếp nhận sự cố này."),
        "en": f"Incident {i.id} was not resolved within its SLA; escalated to the "
        "agency's high-level admins and the operations team.\n\n"
        + facts["en"]
        + (acked["en"] or "Nobody acknowledged it."),
    }
    sms = {
        "vi": f"NPSP: !! sự cố {i.id} ({i.key}) quá hạn xử lý từ {due}."
        + (f" Đã tiếp nhận: {i.acknowledged_by}." if acked["vi"] else " Chưa ai tiếp nhận."),
        "en": f"NPSP: !! incident {i.id} ({i.key}) breached its SLA, due {due}."
        + (f" Ack: {i.acknowledged_by}." if acked["en"] else " Not acknowledged."),
    }
    return subject, text, sms


def reminder(
    calendar: WorkCalendar,
    registry: Registry,
    incident: Incident,
    level: int,
    now: float,
    *,
    source: str,
) -> tuple[Notice, list[Audience]]:
    """The reminder at ``level`` % (50, or 100: the breach) of one incident's SLA, whose rule
    comes from ``source``."""
    facts, acked = _facts(calendar, registry, incident, source)
    left = hours_left(calendar, incident, now)
    if level == 50:
        subject, text, sms = _half(incident, left, facts, acked)
        audience = everyone([incident.agency], "technical-admins")
    else:
        subject, text, sms = _breach(incident, facts, acked)
        audience = everyone(
            [incident.agency], "technical-admins", "high-level-admins", "operations"
        )
    notice = Notice(
        key=f"incident/{incident.id}/sla-{level}",
        subject=subject,
        text=text,
        sms=sms,
        thread_key=f"incident/{incident.id}",
    )
    return notice, audience


# ----- several incidents ------------------------------------------------------------------------


def _lines(calendar: WorkCalendar, level: int, incidents: list[Incident], now: float) -> str:
    lines = []
    for i in incidents[:DIGEST_LINES]:
        left = hours_left(calendar, i, now)
        what = i.key if i.system else i.agency
        ack = f"; tiếp nhận / ack: {i.acknowledged_by}" if i.acknowledged_by else ""
        lines.append(
            f"- {i.id} ({what}): {i.summary}; hạn / due {local_time(i.due_at)}"
            + (f", {left:.1f} h" if level == 50 else "")
            + ack
        )
    if len(incidents) > DIGEST_LINES:
        lines.append(f"… (+{len(incidents) - DIGEST_LINES})")
    return "\n".join(lines)


def _digest_heads(level: int, n: int, agency_names: Texts) -> tuple[Texts, Texts, Texts]:
    """Subject, first line and the state (for the SMS) of a digest."""
    if level == 50:
        subject = {
            "vi": f"[NPSP] {n} sự cố của {agency_names['vi']}: đã dùng một nửa thời hạn xử lý",
            "en": f"[NPSP] {n} incidents of {agency_names['en']}: half of the SLA used",
        }
        head = {
            "vi": f"{n} sự cố chưa được xử lý xong đã dùng một nửa thời hạn:",
            "en": f"{n} incidents not resolved yet have used half of their SLA:",
        }
        return subject, head, {"vi": "đã dùng nửa thời hạn", "en": "at half SLA"}
    subject = {
        "vi": f"[NPSP] {n} sự cố của {agency_names['vi']} quá hạn xử lý",
        "en": f"[NPSP] {n} incidents of {agency_names['en']} breached their SLA",
    }
    head = {
        "vi": f"{n} sự cố chưa được xử lý xong khi hết thời hạn:",
        "en": f"{n} incidents were not resolved within their SLA:",
    }
    return subject, head, {"vi": "quá hạn xử lý", "en": "breached their SLA"}


def digest(
    calendar: WorkCalendar,
    registry: Registry,
    agency: str,
    level: int,
    incidents: list[Incident],
    now: float,
) -> tuple[Notice, list[Audience]]:
    """One message about several incidents of one agency (or, with ``agency`` empty, of
    every agency, for operations)."""
    incidents = sorted(incidents, key=lambda i: (i.agency, i.due_at, i.id))
    body = _lines(calendar, level, incidents, now)
    agency_names = (
        names(registry, incidents[0])[0]
        if agency
        else {"vi": "nhiều đơn vị", "en": "several agencies"}
    )
    n = len(incidents)
    subject, head, state = _digest_heads(level, n, agency_names)
    if level == 50:
        audience = everyone([agency], "technical-admins")
    else:
        audience = everyone([agency], "technical-admins", "high-level-admins", "operations")
    # A short list fits an SMS; a long one is a count and the first few.
    ids_text = ", ".join(i.id for i in incidents[:3]) + (", ..." if n > 3 else "")
    ids = hashlib.sha256("|".join(sorted(i.id for i in incidents)).encode()).hexdigest()[:24]
    notice = Notice(
        key=f"incidents/{agency or 'all'}/sla-{level}/{ids}",
        subject=subject,
        text={lang: f"{head[lang]}\n\n{body}" for lang in ("vi", "en")},
        sms={
            "vi": f"NPSP: {n} sự cố {state['vi']} ({ids_text}).",
            "en": f"NPSP: {n} incidents {state['en']} ({ids_text}).",
        },
    )
    return notice, audience
