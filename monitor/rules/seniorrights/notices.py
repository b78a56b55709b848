"""The text of a senior-rights notice (Vietnamese and English), told to the Government Office's
operations team: "Bộ Y tế: cấp quyền quản trị cấp cao cho Nguyễn Văn A (tài khoản nva) lúc
09:00 07/12/2026, bởi vpcp.ops"."""

from __future__ import annotations

from ...alerting.messages import local_time
from ...alerting.notices import Audience, Notice
from ...registry import Registry
from .model import Change

__all__ = ["AUDIENCE", "SOURCE", "notice_for"]

#: Who is told: the Government Office's operations team (and no one else).
AUDIENCE: list[Audience] = [("", "operations")]

#: Where the duty to tell comes from.
SOURCE = "QĐ 31/2021/QĐ-TTg, Chương VII, mục A khoản 2"

_WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "granted": "{agency}: cấp quyền quản trị cấp cao cho {name} (tài khoản {account})"
        " lúc {at}, bởi {actor}.",
        "revoked": "{agency}: thu hồi quyền quản trị cấp cao của {name} (tài khoản {account})"
        " lúc {at}, bởi {actor}.",
        "subject_granted": "[NPSP] {agency}: cấp quyền quản trị cấp cao cho {name}",
        "subject_revoked": "[NPSP] {agency}: thu hồi quyền quản trị cấp cao của {name}",
        "sms_granted": "NPSP: {code} cấp quyền QT cấp cao cho {account}",
        "sms_revoked": "NPSP: {code} thu hồi quyền QT cấp cao của {account}",
        "via": "Thực hiện qua: {source}.",
        "why": "Thông báo cho Văn phòng Chính phủ theo {rule}.",
        "sources": "api=API,page=trang giám sát,cli=dòng lệnh trên máy chủ",
    },
    "en": {
        "granted": "{agency}: senior administrator rights (agency-admin) granted to {name}"
        " (account {account}) at {at}, by {actor}.",
        "revoked": "{agency}: senior administrator rights (agency-admin) revoked from {name}"
        " (account {account}) at {at}, by {actor}.",
        "subject_granted": "[NPSP] {agency}: senior rights granted to {name}",
        "subject_revoked": "[NPSP] {agency}: senior rights revoked from {name}",
        "sms_granted": "NPSP: {code} senior rights granted to {account}",
        "sms_revoked": "NPSP: {code} senior rights revoked from {account}",
        "via": "Done through: {source}.",
        "why": "The Government Office is told under {rule}.",
        "sources": "api=the API,page=the monitor's pages,cli=the command line on the gateway",
    },
}


def notice_for(change: Change, registry: Registry) -> Notice:
    """The notice of one recorded change, in Vietnamese and English."""
    agencies = {e.agency.id: e.agency for e in registry.systems.values()}
    agency = agencies.get(change.agency)
    subject, text, sms = {}, {}, {}
    for lang, w in _WORDS.items():
        if agency is None:
            name, code = change.agency, change.agency
        else:
            name = agency.name_vi if lang == "vi" else agency.name_en
            code = agency.code
        sources = dict(pair.split("=", 1) for pair in w["sources"].split(","))
        values = {
            "agency": name,
            "code": code,
            "name": change.name,
            "account": change.account_id,
            "at": local_time(change.at),
            "actor": change.actor,
        }
        subject[lang] = w[f"subject_{change.change}"].format(**values)
        text[lang] = "\n".join(
            [
                w[change.change].format(**values),
                w["via"].format(source=sources.get(change.source, change.source)),
                w["why"].format(rule=SOURCE),
            ]
        )
        sms[lang] = w[f"sms_{change.change}"].format(**values)
    return Notice(key=f"senior-rights/{change.id}", subject=subject, text=text, sms=sms)
