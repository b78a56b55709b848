"""The text of a roster gap notice (Vietnamese and English), told a day ahead to the agency's
technical and high-level admins: "Không có người trực đêm 31/12 (17:00 31/12 – 08:00 01/01)"."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ..alerting.notices import Audience, Notice, everyone

__all__ = ["audience", "notice_for"]

_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "night": "đêm {day}",
        "day": "ngày {day}",
        "lead": "Không có người trực {when} ({span}).",
        "agency": "Đơn vị: {agency}",
        "then": (
            "Nếu một hệ thống mất kết nối trong khoảng này, cảnh báo sẽ gửi đến toàn bộ cán bộ"
            " kỹ thuật của đơn vị. Hãy phân công người trực trên trang lịch trực: {page}"
        ),
        "subject": "[NPSP] {agency}: không có người trực {when}",
        "sms": "NPSP: {code} không có người trực {span}",
    },
    "en": {
        "night": "the night of {day}",
        "day": "on {day}",
        "lead": "Nobody is on duty {when} ({span}).",
        "agency": "Agency: {agency}",
        "then": (
            "If a system goes down in this time, the alert goes to the agency's whole technical"
            " team. Put someone on duty on the roster page: {page}"
        ),
        "subject": "[NPSP] {agency}: nobody on duty {when}",
        "sms": "NPSP: {code} nobody on duty {span}",
    },
}


def _clock(ts: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%H:%M %d/%m")


def notice_for(
    agency: str,
    names: dict[str, str],
    code: str,
    starts: float,
    ends: float,
    tz: ZoneInfo,
    page: str,
) -> Notice:
    """The notice of one uncovered stretch ``[starts, ends)`` of ``agency`` (``names``: its
    name by language; ``page``: the roster page's path). Keyed by the agency and the start:
    told once, however often the desk looks."""
    first = dt.datetime.fromtimestamp(starts, tz)
    span = f"{_clock(starts, tz)} – {_clock(ends, tz)}"
    subject, text, sms = {}, {}, {}
    for lang, w in _WORDS.items():
        when = w["night" if first.hour >= 12 else "day"].format(day=first.strftime("%d/%m"))
        name = names.get(lang, agency)
        lines = [
            w["lead"].format(when=when, span=span),
            w["agency"].format(agency=name),
            "",
            w["then"].format(page=page),
        ]
        subject[lang] = w["subject"].format(agency=name, when=when)
        text[lang] = "\n".join(lines)
        sms[lang] = w["sms"].format(code=code, span=span)
    return Notice(
        key=f"roster-gap/{agency}/{int(starts)}",
        subject=subject,
        text=text,
        sms=sms,
        thread_key=f"roster-gap/{agency}",
    )


def audience(agency: str) -> list[Audience]:
    """The agency's technical and high-level admins."""
    return everyone([agency], "technical-admins", "high-level-admins")
