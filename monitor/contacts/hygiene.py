"""Contact hygiene: addresses that fail for good are flagged, skipped, told and cleared.

* **flag** (by the outbox, in the transaction that marks the row failed): an SMS Twilio refused
  with 21211 or 21614, an e-mail whose recipient the server refused with 5xx — the address
  goes into ``address_flags`` (:mod:`.flags` says which failures, :mod:`.hygiene_store` holds
  the statements). Keyed by the address, so registry and stored contacts alike.
* **skip**: the directory holds the open flags (:class:`~.directory.ContactsDesk` re-reads
  them within a desk tick of the outbox's write) and the router leaves a flagged channel out
  of a person's recipients; the person's next channel takes its place.
* **tell** (:class:`monitor.rules.hygiene.HygieneDesk`, on the leader, in the words of
  :func:`notice_words`): the agency's admins (technical and
  high-level) are told once per flag, keyed ``address-flag/<id>``, then ``reported_at``.
* **clear**: editing the contact's phone or e-mail clears the old address's flag
  (:func:`monitor.contacts.actions.update`); :func:`clear_flags` (the API's
  ``POST …/contacts/{id}/flags/clear`` and the contacts page's button) clears a contact's
  flags, audited ``contact.flags.clear``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..audit import audit_write
from ..config import Agency, Contact
from ..config.alerting import Target
from ..sqldialect import Handle
from ..store import Store
from . import hygiene_store
from .actions import Actor, ContactError, may_manage
from .directory import read
from .flags import Flag, masked_address

__all__ = ["Words", "addresses_of", "audience_of", "clear_flags", "notice_words"]

_WORDS = {
    "vi": {
        "sms": "Số điện thoại {address} của {name} không nhận được tin nhắn ({code}: {meaning})"
        " — vui lòng cập nhật.",
        "email": "Địa chỉ thư {address} của {name} không nhận được thư ({code}: {meaning})"
        " — vui lòng cập nhật.",
        "after": "Hệ thống đã ngừng gửi tới địa chỉ này và dùng kênh liên lạc khác của người"
        " này cho tới khi địa chỉ được sửa hoặc cờ được gỡ trên trang Danh bạ.",
        "subject": "[NPSP] Địa chỉ liên lạc không dùng được: {name}",
        "sms_text": "NPSP: {address} cua {name} khong nhan duoc tin, vui long cap nhat",
    },
    "en": {
        "sms": "The phone number {address} of {name} does not receive messages ({code}:"
        " {meaning}) — please update it.",
        "email": "The e-mail address {address} of {name} does not receive mail ({code}:"
        " {meaning}) — please update it.",
        "after": "The monitor no longer sends to this address and uses this person's other"
        " channels until the address is edited or the flag cleared on the Contacts page.",
        "subject": "[NPSP] Contact address not working: {name}",
        "sms_text": "NPSP: {address} of {name} gets no messages, please update it",
    },
}


#: A notice's words keyed by language: subject, text, sms.
Words = tuple[dict[str, str], dict[str, str], dict[str, str]]


def notice_words(flag: Flag, name: str) -> Words:
    """The words of one flag's notice, keyed ``address-flag/<id>`` (the address masked: a
    number's last 3 digits, a domain)."""
    address = masked_address(flag.channel, flag.address)
    subject, text, sms = {}, {}, {}
    for i, (lang, w) in enumerate(_WORDS.items()):
        values = {"address": address, "name": name, "code": flag.code, "meaning": flag.meaning[i]}
        line = w["sms" if flag.channel == "sms" else "email"].format(**values)
        subject[lang] = w["subject"].format(**values)
        text[lang] = f"{line}\n{w['after']}"
        sms[lang] = w["sms_text"].format(**values)
    return subject, text, sms


def audience_of(person: str | None) -> tuple[str | None, list[tuple[str, Target]]]:
    """Who is told of a flag on ``person``'s address: its agency's technical and high-level
    admins (operations' own addresses: operations)."""
    if person is None:
        return None, []
    agency, _, _ = person.partition("/")
    if agency == "operations":
        return None, [("", "operations")]
    return agency, [(agency, "technical-admins"), (agency, "high-level-admins")]


def addresses_of(contact: Contact) -> list[tuple[str, str]]:
    """A contact's flaggable addresses: (sms, phone), (email, e-mail)."""
    return [(c, a) for c, a in (("sms", contact.phone), ("email", contact.email)) if a]


async def clear_flags(
    store: Store,
    *,
    actor: Actor,
    agency: str,
    contact_id: str,
    agencies: Sequence[Agency],
    now: float,
    source: str = "api",
) -> list[str]:
    """Clear the open flags of a contact's addresses (registry or stored contact: the flag is
    the address's); the channels cleared. Audited ``contact.flags.clear``."""
    if not may_manage(actor, agency):
        raise ContactError(f"{actor.id} ({actor.role}) may not manage {agency}'s contacts", 403)

    def write(db: Handle) -> list[str]:
        person = read(db, agencies).find(agency, contact_id)
        if person is None:
            raise ContactError(f"no contact {contact_id!r} in {agency}", 404)
        cleared = hygiene_store.clear(db, addresses_of(person.contact), now, actor.id)
        if cleared:
            detail: dict[str, Any] = {"channels": cleared}
            action = "contact.flags.clear"
            audit_write(db, now, actor.id, action, contact_id, agency, detail, source)
        return cleared

    return await store.transact(write)
