"""An agency's contacts page (:mod:`monitor.web.contact_pages`): its people (the registry's,
read-only, and its own, with those the registry overrides marked), the forms that add, edit
and remove its own for those allowed, and who is told about what."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from urllib.parse import quote

from ...alerting.model import Recipient
from ...alerting.told import Told
from ...contacts.flags import Flag
from ...contacts.model import Person, StoredContact, masked
from .frame import Chrome, layout, link, table
from .words import Lang

__all__ = ["WORDS", "confirm_page", "contact_form_page", "contacts_link", "contacts_page"]

WORDS: dict[Lang, dict[str, str]] = {
    "vi": {
        "title": "Người nhận thông báo — {name}",
        "edit_title": "Sửa người nhận — {name}",
        "name": "Họ tên",
        "role": "Vai trò",
        "technical-admin": "Quản trị kỹ thuật",
        "high-level-admin": "Lãnh đạo",
        "phone": "Điện thoại (E.164)",
        "email": "Thư điện tử",
        "portal_account": "Tài khoản Cổng",
        "webhook": "Webhook",
        "channels": "Kênh",
        "language": "Ngôn ngữ",
        "account_id": "Tài khoản đăng nhập",
        "source": "Nguồn",
        "registry": "Danh bạ trung tâm (chỉ đọc)",
        "store": "Cơ quan quản lý",
        "status": "Trạng thái",
        "active": "Nhận thông báo",
        "shadowed": "Bị danh bạ trung tâm thay thế",
        "revoked": "Tài khoản đã thu hồi",
        "add": "Thêm người nhận",
        "save": "Lưu",
        "edit": "Sửa",
        "remove": "Xoá",
        "none": "Chưa có người nhận nào.",
        "told": "Ai được báo về việc gì",
        "kind": "Loại",
        "who": "Người nhận (kênh)",
        "outage": "Mất kết nối: {system}",
        "degraded": "Suy giảm: {system}",
        "notices": "Thông báo (công bố thay đổi, bảo trì, nhắc việc)",
        "escalation": "Leo thang sau {minutes} phút: {target}",
        "nobody": "Không ai",
        "link": "Người nhận thông báo",
        "flagged": "Không nhận được: {channel} ({code})",
        "clear": "Gỡ cờ (đã kiểm tra địa chỉ)",
        "confirm_title": "Xác nhận thông tin liên lạc",
        "confirm_text": "Vui lòng kiểm tra thông tin dưới đây. Nếu đúng, bấm Xác nhận; nếu đã"
        " thay đổi, vui lòng báo quản trị của cơ quan để cập nhật.",
        "agency": "Cơ quan",
        "confirm": "Xác nhận",
        "confirmed": "Cảm ơn anh/chị: thông tin liên lạc đã được xác nhận.",
        "bad_link": "Liên kết không hợp lệ hoặc đã hết hạn.",
    },
    "en": {
        "title": "Contacts — {name}",
        "edit_title": "Edit contact — {name}",
        "name": "Name",
        "role": "Role",
        "technical-admin": "Technical admin",
        "high-level-admin": "High-level admin",
        "phone": "Phone (E.164)",
        "email": "E-mail",
        "portal_account": "Portal account",
        "webhook": "Webhook",
        "channels": "Channels",
        "language": "Language",
        "account_id": "Login account",
        "source": "Source",
        "registry": "Central registry (read-only)",
        "store": "Managed by the agency",
        "status": "Status",
        "active": "Receives notices",
        "shadowed": "Overridden by the registry",
        "revoked": "Account revoked",
        "add": "Add a contact",
        "save": "Save",
        "edit": "Edit",
        "remove": "Remove",
        "none": "No contact yet.",
        "told": "Who is told about what",
        "kind": "About",
        "who": "Recipients (channel)",
        "outage": "Outage: {system}",
        "degraded": "Degraded: {system}",
        "notices": "Notices (announcements, maintenance, reminders)",
        "escalation": "Escalation after {minutes} min: {target}",
        "nobody": "Nobody",
        "link": "Contacts",
        "flagged": "Not receiving: {channel} ({code})",
        "clear": "Clear the flag (address checked)",
        "confirm_title": "Confirm your contact details",
        "confirm_text": "Please check the details below. If they are right, press Confirm; if"
        " they changed, please ask your agency's administrator to update them.",
        "agency": "Agency",
        "confirm": "Confirm",
        "confirmed": "Thank you: your contact details are confirmed.",
        "bad_link": "This link is not valid or has expired.",
    },
}
CHANNELS = ("sms", "email", "inbox", "webhook")


def _base(agency: str) -> str:
    return f"/agency/{quote(agency, safe='')}/contacts"


def contacts_link(agency: str, lang: Lang) -> str:
    """The line of an agency's page that leads to its contacts."""
    href = link(_base(agency), lang)
    return f'<p><a href="{escape(href)}">{escape(WORDS[lang]["link"])}</a></p>'


def _status(p: Person, w: dict[str, str]) -> str:
    if p.revoked:
        return f'<span class="badge revoked">{escape(w["revoked"])}</span>'
    if p.shadowed_by is not None:
        return f'<span class="badge shadowed">{escape(w["shadowed"])}</span>'
    return escape(w["active"])


def _csrf(chrome: Chrome) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(chrome.csrf or "")}">'


def _flags(p: Person, flags: Sequence[Flag], w: dict[str, str]) -> str:
    """A badge per open flag on the person's addresses (an address that failed for good)."""
    return "".join(
        ' <span class="badge flagged">'
        + escape(w["flagged"].format(channel=f.channel.upper(), code=f.code))
        + "</span>"
        for f in flags
    )


def _row(chrome: Chrome, p: Person, whole: bool, editable: bool, flags: Sequence[Flag] = ()) -> str:
    lang, w, c = chrome.lang, WORDS[chrome.lang], p.contact
    phone = c.phone if whole else masked(c.phone)
    email = c.email if whole else masked(c.email)
    actions = ""
    one = f"{_base(p.agency)}/{quote(p.id, safe='')}"
    if editable and p.source == "store":
        actions = (
            f'<a href="{escape(link(one, lang))}">{escape(w["edit"])}</a> '
            f'<form method="post" action="{escape(link(one + "/remove", lang))}" class="inline">'
            f'{_csrf(chrome)}<button type="submit">{escape(w["remove"])}</button></form>'
        )
    if editable and flags:
        clear = link(one + "/flags/clear", lang)
        actions += (
            f' <form method="post" action="{escape(clear)}" class="inline clear-flags">'
            f'{_csrf(chrome)}<button type="submit">{escape(w["clear"])}</button></form>'
        )
    cells = [
        escape(c.name),
        escape(w[c.role]),
        escape(phone or "—"),
        escape(email or "—"),
        escape(", ".join(c.channels)),
        escape(c.language),
        escape(w[p.source]),
        _status(p, w) + _flags(p, flags, w),
        actions,
    ]
    tds = "".join(f"<td>{cell}</td>" for cell in cells)
    return f'<tr data-id="{escape(p.id)}" data-source="{p.source}">{tds}</tr>'


def _told(chrome: Chrome, told: Sequence[Told], address: Callable[[Recipient], str]) -> str:
    w = WORDS[chrome.lang]
    rows = []
    for t in told:
        if t.kind in ("outage", "degraded"):
            what = w[t.kind].format(system=t.system)
        elif t.kind == "escalation":
            what = w["escalation"].format(minutes=int((t.after or 0) // 60), target=t.target)
        else:
            what = w["notices"]
        who = ", ".join(f"{r.name} ({r.channel}: {address(r)})" for r in t.recipients)
        rows.append(
            f'<tr data-kind="{escape(t.kind)}"><td>{escape(what)}</td>'
            f"<td>{escape(who or w['nobody'])}</td></tr>"
        )
    return f"<h2>{escape(w['told'])}</h2>" + table([w["kind"], w["who"]], rows, css="list told")


def _field(name: str, label: str, value: str | None, kind: str = "text") -> str:
    return (
        f'<label>{escape(label)} <input type="{kind}" name="{name}"'
        f' value="{escape(value or "")}"></label><br>'
    )


def _form(chrome: Chrome, action: str, p: Person | None) -> str:
    w = WORDS[chrome.lang]
    c = None if p is None else p.contact
    roles = "".join(
        f'<option value="{r}"{" selected" if c is not None and c.role == r else ""}>'
        f"{escape(w[r])}</option>"
        for r in ("technical-admin", "high-level-admin")
    )
    chosen = ["email", "inbox"] if c is None else list(c.channels)
    boxes = "".join(
        f'<label><input type="checkbox" name="channels" value="{ch}"'
        f"{' checked' if ch in chosen else ''}> {ch}</label> "
        for ch in CHANNELS
    )
    langs = "".join(
        f'<option value="{x}"{" selected" if c is not None and c.language == x else ""}>'
        f"{x}</option>"
        for x in ("vi", "en")
    )
    return (
        f'<form method="post" action="{escape(link(action, chrome.lang))}" class="contact">'
        + _csrf(chrome)
        + _field("name", w["name"], None if c is None else c.name)
        + f'<label>{escape(w["role"])} <select name="role">{roles}</select></label><br>'
        + _field("phone", w["phone"], None if c is None else c.phone, "tel")
        + _field("email", w["email"], None if c is None else c.email, "email")
        + _field("portal_account", w["portal_account"], None if c is None else c.portal_account)
        + _field("webhook", w["webhook"], None if c is None else c.webhook)
        + f"<fieldset><legend>{escape(w['channels'])}</legend>{boxes}</fieldset>"
        + f'<label>{escape(w["language"])} <select name="language">{langs}</select></label><br>'
        + _field("account_id", w["account_id"], None if p is None else p.account_id)
        + f'<button type="submit">{escape(w["save"] if p else w["add"])}</button></form>'
    )


def contacts_page(
    chrome: Chrome,
    agency: str,
    name: str,
    people: Sequence[Person],
    told: Sequence[Told],
    *,
    whole: bool,
    editable: bool,
    flags: Callable[[Person], Sequence[Flag]] = lambda _p: (),
) -> str:
    """The list, the add form (``editable``) and who is told about what; ``whole``: phones
    and e-mails unmasked; ``flags``: the open flags of a person's addresses (a badge each, and
    for whoever may edit, the button that clears them)."""
    w = WORDS[chrome.lang]
    head = [w[k] for k in ("name", "role", "phone", "email", "channels", "language")]
    head += [w["source"], w["status"], ""]
    rows = [_row(chrome, p, whole, editable, flags(p)) for p in people]
    body = table(head, rows, css="list contacts") if rows else f"<p>{escape(w['none'])}</p>"
    if editable:
        body += f"<h2>{escape(w['add'])}</h2>" + _form(chrome, _base(agency), None)

    def address(r: Recipient) -> str:
        return r.address if whole or r.channel not in ("sms", "email") else masked(r.address) or ""

    body += _told(chrome, told, address)
    return layout(chrome, w["title"].format(name=name), body)


def confirm_page(
    chrome: Chrome, contact: StoredContact, agency: str, action: str, token_csrf: str
) -> str:
    """The page of a confirmation link: the contact's details and the Confirm button (a form
    bound to the link's token)."""
    w = WORDS[chrome.lang]
    rows = [
        (w["name"], contact.name),
        (w["agency"], agency),
        (w["role"], w.get(contact.role, contact.role)),
        (w["phone"], contact.phone or "—"),
        (w["email"], contact.email or "—"),
        (w["portal_account"], contact.portal_account or "—"),
        (w["channels"], ", ".join(contact.channels)),
    ]
    details = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    body = (
        f"<p>{escape(w['confirm_text'])}</p>"
        f'<table class="details confirm">{details}</table>'
        f'<form method="post" action="{escape(action)}" class="confirm">'
        f'<input type="hidden" name="csrf" value="{escape(token_csrf)}">'
        f'<button type="submit">{escape(w["confirm"])}</button></form>'
    )
    return layout(chrome, w["confirm_title"], body)


def contact_form_page(chrome: Chrome, name: str, person: Person) -> str:
    """The edit form of one of the agency's own contacts."""
    w = WORDS[chrome.lang]
    action = f"{_base(person.agency)}/{quote(person.id, safe='')}"
    return layout(chrome, w["edit_title"].format(name=name), _form(chrome, action, person))
