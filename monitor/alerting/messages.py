"""Messages: what a digest says, in Vietnamese (default) or English, per channel.

Every message names the agency, the systems, what failed and why, since when, who else was told,
the status-page link and the support hotline. SMS text stays short.
"""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

from ..state import State
from .group import Digest
from .model import Alert

VN = ZoneInfo("Asia/Ho_Chi_Minh")

_WORDS = {
    "vi": {
        State.DOWN: "MẤT KẾT NỐI",
        State.FLAPPING: "CHẬP CHỜN",
        State.UNREACHABLE: "KHÔNG TRUY CẬP ĐƯỢC (hệ thống nó phụ thuộc đang mất kết nối)",
        "resolved": "ĐÃ KẾT NỐI LẠI",
        "since": "từ",
        "affected": "ảnh hưởng",
        "told": "Đã thông báo",
        "status": "Trang trạng thái",
        "hotline": "Hỗ trợ",
        "subject_firing": "{n} hệ thống của {agency} mất kết nối",
        "subject_one": "{system} của {agency}: {state}",
        "subject_resolved": "{n} hệ thống của {agency} đã kết nối lại",
        "subject_repeat": "Nhắc lại: {n} hệ thống của {agency} vẫn mất kết nối",
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
        "resolved": "CONNECTED AGAIN",
        "since": "since",
        "affected": "affected",
        "told": "Also told",
        "status": "Status page",
        "hotline": "Support",
        "subject_firing": "{n} systems of {agency} lost connection",
        "subject_one": "{system} of {agency}: {state}",
        "subject_resolved": "{n} systems of {agency} are connected again",
        "subject_repeat": "Reminder: {n} systems of {agency} still without connection",
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


def _agency(alert: Alert, lang: str) -> str:
    return alert.agency_name_vi if lang == "vi" else alert.agency_name_en


def _line(alert: Alert, lang: str, *, resolved: bool) -> str:
    w = _WORDS[lang]
    state = w["resolved"] if resolved else w.get(alert.state, alert.state.value.upper())
    when = local_time(alert.resolved_at if resolved and alert.resolved_at else alert.since)
    text = f"- {alert.name} ({alert.key}): {state} {w['since']} {when}"
    if not resolved:
        text += f" — {alert.reason}"
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
        state = w.get(a.state, a.state.value)
        return "[NPSP] " + w["subject_one"].format(system=a.name, agency=agency, state=state)
    template = w["subject_repeat"] if digest.kind == "repeat" else w["subject_firing"]
    return "[NPSP] " + template.format(n=len(digest.firing), agency=agency)


MAX_LINES = 200  # a storm digest lists this many systems; the status page has the rest


def body(digest: Digest, lang: str, *, status_url: str, hotline: str, also_told: list[str]) -> str:
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
    if also_told:
        lines.append(f"{w['told']}: {', '.join(sorted(also_told))}")
    lines.append(f"{w['status']}: {status_url}")
    lines.append(f"{w['hotline']}: {hotline}")
    return "\n".join(lines)


def sms_text(digest: Digest, lang: str, *, status_url: str, hotline: str) -> str:
    """Short: the state words and the system ids, the link and the hotline."""
    w = _WORDS[lang]
    parts = []
    for alerts, word in ((digest.firing, None), (digest.resolved, w["resolved"])):
        if len(alerts) > 3:  # a count fits an SMS; a list of 185 ids does not
            state = word or w.get(alerts[0].state, alerts[0].state.value)
            parts.append(f"{w['systems'].format(n=len(alerts))} {state} ({alerts[0].key}, ...)")
            continue
        for a in alerts:
            parts.append(f"{a.key} {word or w.get(a.state, a.state.value)}")
    prefix = "NPSP: " + ("!! " if digest.kind == "escalation" else "")
    return f"{prefix}{'; '.join(parts)}. {status_url} HT {hotline}"


def as_html(text: str) -> str:
    """The HTML alternative of an e-mail: the same text, escaped, in a readable font."""
    return (
        '<html><body><pre style="font-family: sans-serif">'
        + html.escape(text)
        + "</pre></body></html>"
    )
