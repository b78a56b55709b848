"""Messages: what a digest says, in Vietnamese (default) or English, per channel.

Every message names the agency, the systems, what failed and why (in the reader's language:
:func:`monitor.reasons.say`), since when, who else was told, the link to the page that answers
it (the system's page; for several systems the agency's page, or the overview), the status-page
link and the support hotline.

An SMS says what, since when, the link and the hotline first, and the reason last: the SMS
channel folds Vietnamese to ASCII (``sms.fold_diacritics``) and cuts a text longer than
``sms.max_segments`` at its end, so what a cut removes is the end of a reason, never the link.
"""

from __future__ import annotations

import datetime as dt
import html
from urllib.parse import quote
from zoneinfo import ZoneInfo

from ..reasons import say
from ..state import GATEWAY_AGENCY, State
from .group import Digest
from .model import Alert

VN = ZoneInfo("Asia/Ho_Chi_Minh")

_WORDS = {
    "vi": {
        State.DOWN: "MẤT KẾT NỐI",
        State.FLAPPING: "CHẬP CHỜN",
        State.UNREACHABLE: "KHÔNG TRUY CẬP ĐƯỢC (hệ thống nó phụ thuộc đang mất kết nối)",
        State.DEGRADED: "SUY GIẢM",
        State.MAINTENANCE: "ĐANG BẢO TRÌ",
        State.UNKNOWN: "KHÔNG XÁC ĐỊNH",
        State.UP: "HOẠT ĐỘNG",
        State.PENDING: "CHỜ KẾT QUẢ",
        "resolved": "ĐÃ KẾT NỐI LẠI",
        "since": "từ",
        "at": "lúc",
        "reason": "Lý do",
        "see": "Xem trên trang giám sát",
        "ht": "HT",
        "affected": "ảnh hưởng",
        "told": "Đã thông báo",
        "status": "Trang trạng thái",
        "hotline": "Hỗ trợ",
        "subject_firing": "{n} hệ thống của {agency} mất kết nối",
        "subject_degraded": "{n} hệ thống của {agency} suy giảm",
        "subject_one": "{system} của {agency}: {state}",
        "subject_resolved": "{n} hệ thống của {agency} đã kết nối lại",
        "subject_repeat": "Nhắc lại: {n} hệ thống của {agency} vẫn mất kết nối",
        "subject_repeat_degraded": "Nhắc lại: {n} hệ thống của {agency} vẫn suy giảm",
        "and_degraded": ", {n} suy giảm",
        "subject_escalation": "Chưa được xử lý: {system} của {agency} mất kết nối",
        "escalation": "Sự cố chưa được tiếp nhận trong thời hạn; chuyển lên cấp trên.",
        "gateway": (
            "Cổng kết nối của NPSP mất đường truyền: các kết quả giám sát tạm thời không tin cậy."
        ),
        "many": "nhiều đơn vị",
        "more": "… và {n} hệ thống khác: xem trang trạng thái.",
        "systems": "{n} hệ thống",
    },
    "en": {
        State.DOWN: "LOST CONNECTION",
        State.FLAPPING: "FLAPPING",
        State.UNREACHABLE: "UNREACHABLE (a system it depends on is down)",
        State.DEGRADED: "DEGRADED",
        State.MAINTENANCE: "IN MAINTENANCE",
        State.UNKNOWN: "UNKNOWN",
        State.UP: "UP",
        State.PENDING: "PENDING",
        "resolved": "CONNECTED AGAIN",
        "since": "since",
        "at": "at",
        "reason": "Reason",
        "see": "Open in the monitor",
        "ht": "Support",
        "affected": "affected",
        "told": "Also told",
        "status": "Status page",
        "hotline": "Support",
        "subject_firing": "{n} system(s) of {agency} lost connection",
        "subject_degraded": "{n} system(s) of {agency} degraded",
        "subject_one": "{system} of {agency}: {state}",
        "subject_resolved": "{n} systems of {agency} are connected again",
        "subject_repeat": "Reminder: {n} system(s) of {agency} still without connection",
        "subject_repeat_degraded": "Reminder: {n} system(s) of {agency} still degraded",
        "and_degraded": ", {n} degraded",
        "subject_escalation": "Not handled: {system} of {agency} lost connection",
        "escalation": "The incident was not acknowledged in time; escalated.",
        "gateway": "The NPSP gateway lost its uplink: monitoring results are unreliable for now.",
        "many": "several agencies",
        "more": "… and {n} more systems: see the status page.",
        "systems": "{n} systems",
    },
}


def local_iso(ts: float | None) -> str | None:
    """ISO 8601 in Hanoi time (``2026-12-14T08:00:00+07:00``), for JSON; None stays None."""
    return None if ts is None else dt.datetime.fromtimestamp(ts, VN).isoformat(timespec="seconds")


def local_time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, VN).strftime("%H:%M %d/%m/%Y")


def short_time(ts: float) -> str:
    """``08:05 14/12``: when, in an SMS."""
    return dt.datetime.fromtimestamp(ts, VN).strftime("%H:%M %d/%m")


def reason(alert: Alert, lang: str) -> str:
    """Why ``alert`` fires, in ``lang`` (its stored English text if it has no code)."""
    return say(alert.why, lang, alert.reason)


def page_path(alerts: tuple[Alert, ...] | list[Alert]) -> str:
    """The page that answers a message about ``alerts``: the system's page for one system, the
    agency's page for several of one agency, else the overview (``/``)."""
    keys = {a.key for a in alerts}
    agencies = {a.agency for a in alerts}
    if len(agencies) != 1 or GATEWAY_AGENCY in agencies:
        return "/"
    (agency,) = agencies
    if len(keys) == 1:
        return f"/system/{quote(agency, safe='')}/{quote(alerts[0].system, safe='')}"
    return f"/agency/{quote(agency, safe='')}"


def page_link(digest: Digest, lang: str, base: str) -> str:
    """The absolute link (on the pages' site ``base``) to the page of ``digest``, in the
    reader's language; it opens after logging in if needed."""
    path = page_path([*digest.firing, *digest.resolved])
    return base + path + ("?lang=en" if lang == "en" else "")


def _state(alert: Alert, lang: str) -> str:
    return _WORDS[lang].get(alert.state, alert.state.value.upper())


def _agency(alert: Alert, lang: str) -> str:
    return alert.agency_name_vi if lang == "vi" else alert.agency_name_en


def _line(alert: Alert, lang: str, *, resolved: bool) -> str:
    w = _WORDS[lang]
    state = w["resolved"] if resolved else _state(alert, lang)
    when = local_time(alert.resolved_at if resolved and alert.resolved_at else alert.since)
    text = f"- {alert.name} ({alert.key}): {state} {w['since']} {when}"
    if not resolved:
        text += f" — {reason(alert, lang)}"
        if alert.affected:
            text += f"; {w['affected']}: {', '.join(alert.affected)}"
    return text


def subject(digest: Digest, lang: str) -> str:
    w = _WORDS[lang]
    alerts = digest.firing or digest.resolved
    agencies = {a.agency for a in alerts}
    agency = _agency(alerts[0], lang) if len(agencies) == 1 else w["many"]
    n = len(alerts)
    if digest.kind == "escalation":
        return "[NPSP] " + w["subject_escalation"].format(system=alerts[0].name, agency=agency)
    if digest.kind == "resolved" and not digest.firing:
        return "[NPSP] " + w["subject_resolved"].format(n=n, agency=agency)
    if n == 1 and digest.kind == "firing":
        a = alerts[0]
        state = _state(a, lang)
        return "[NPSP] " + w["subject_one"].format(system=a.name, agency=agency, state=state)
    # A degraded system is reachable: it is counted apart, never as a lost connection.
    degraded = sum(a.state is State.DEGRADED for a in digest.firing)
    lost = len(digest.firing) - degraded
    if not lost:
        template = (
            w["subject_repeat_degraded"] if digest.kind == "repeat" else w["subject_degraded"]
        )
        return "[NPSP] " + template.format(n=degraded, agency=agency)
    template = w["subject_repeat"] if digest.kind == "repeat" else w["subject_firing"]
    text = template.format(n=lost, agency=agency)
    return "[NPSP] " + text + (w["and_degraded"].format(n=degraded) if degraded else "")


MAX_LINES = 200  # a storm digest lists this many systems; the status page has the rest


def body(
    digest: Digest,
    lang: str,
    *,
    link: str,
    status_url: str,
    hotline: str,
    also_told: list[str],
) -> str:
    """The text of an e-mail or an inbox message; ``link`` is :func:`page_link`'s."""
    w = _WORDS[lang]
    lines = []
    if digest.kind == "escalation":
        lines.append(w["escalation"])
    if any(a.agency == "_gateway" for a in digest.firing):
        lines.append(w["gateway"])
    entries = [_line(a, lang, resolved=False) for a in digest.firing]
    entries += [_line(a, lang, resolved=True) for a in digest.resolved]
    lines += entries[:MAX_LINES]
    if len(entries) > MAX_LINES:
        lines.append(w["more"].format(n=len(entries) - MAX_LINES))
    lines.append("")
    lines.append(f"{w['see']}: {link}")
    if also_told:
        lines.append(f"{w['told']}: {', '.join(sorted(also_told))}")
    lines.append(f"{w['status']}: {status_url}")
    lines.append(f"{w['hotline']}: {hotline}")
    return "\n".join(lines)


SMS_REASON = 120  # characters of one system's reason in an SMS (several: half each)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sms_text(digest: Digest, lang: str, *, link: str, hotline: str) -> str:
    """Short: what (the systems and their state), since when, the link, the hotline, and last
    why (see the module's docstring: a cut takes the end of the reason, not the link)."""
    w = _WORDS[lang]
    parts, reasons = [], []
    # Up to 3 systems in all are named one by one; beyond, a kind with several is counted (a
    # count fits an SMS; a list of 185 ids, or 3 down and 3 back, would push the link out).
    listed = len(digest.firing) + len(digest.resolved) <= 3
    for alerts, resolved in ((digest.firing, False), (digest.resolved, True)):
        if not alerts:
            continue
        if not listed and len(alerts) > 1:
            state = w["resolved"] if resolved else _state(alerts[0], lang)
            first = min(a.since for a in alerts)
            since = f" {w['since']} {short_time(first)}" if not resolved else ""
            parts.append(
                f"{w['systems'].format(n=len(alerts))} {state}{since} ({alerts[0].key}, ...)"
            )
            continue
        for a in alerts:
            if resolved:
                when = short_time(a.resolved_at or a.since)
                parts.append(f"{a.key} {w['resolved']} {w['at']} {when}")
            else:
                parts.append(f"{a.key} {_state(a, lang)} {w['since']} {short_time(a.since)}")
                reasons.append((a.key, reason(a, lang)))
    prefix = "NPSP: " + ("!! " if digest.kind == "escalation" else "")
    text = f"{prefix}{'; '.join(parts)}. {link} {w['ht']} {hotline}"
    if len(reasons) == 1:
        text += f". {w['reason']}: {_cap(reasons[0][1], SMS_REASON)}"
    elif reasons:
        each = SMS_REASON // 2
        text += f". {w['reason']}: " + "; ".join(f"{k}: {_cap(r, each)}" for k, r in reasons)
    return text


def as_html(text: str) -> str:
    """The HTML alternative of an e-mail: the same text, escaped, in a readable font."""
    return (
        '<html><body><pre style="font-family: sans-serif">'
        + html.escape(text)
        + "</pre></body></html>"
    )
