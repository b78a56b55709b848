"""Confirmation reminders: an agency's own contacts confirm their details once a period.

A stored contact (not a registry one: the operations team keeps those) whose ``confirmed_at``
— or ``created_at``, never confirmed — is older than ``contacts.confirm_after`` is reminded,
once per period (periods counted from that time: the reminder of the period starting at
``base + k × confirm_after``), by e-mail and portal inbox, with a link
``{web_base}/contacts/confirm/<token>``: a random 256-bit token, stored as its SHA-256 only,
valid 30 days, single use. Opening it shows the contact's details and a Confirm button (no
login: the token is the credential); confirming sets ``confirmed_at``, audited
``contact.confirm`` (source ``page``). A wrong, used or expired token gets the same 404.

The desk that sends the reminders is :class:`monitor.rules.confirmations.ConfirmationDesk`;
the statements are :mod:`.confirm_store`'s.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from ..audit import audit_write
from ..sqldialect import Handle
from ..store import Store
from . import confirm_store
from . import store as contacts_store
from .model import StoredContact

__all__ = [
    "LINK_VALID",
    "Due",
    "Opened",
    "confirm_by_token",
    "due",
    "hashed",
    "new_token",
    "open_token",
    "period_start",
    "reminder_words",
]

#: How long a reminder's link works.
LINK_VALID = 30 * 86400.0


def new_token() -> str:
    """A link's token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hashed(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def period_start(contact: StoredContact, now: float, every: float) -> float | None:
    """The start of the confirmation period ``now`` is in, if the contact is due (its details
    confirmed, or created, at least ``every`` ago), else None."""
    base = contact.confirmed_at if contact.confirmed_at is not None else contact.created_at
    if now - base < every:
        return None
    return base + every * ((now - base) // every)


@dataclass(frozen=True, slots=True)
class Due:
    contact: StoredContact
    period_start: float


def due(contacts: Iterable[StoredContact], now: float, every: float) -> list[Due]:
    """The contacts due a reminder at ``now``, each with its period (removed ones are not)."""
    out = []
    for c in contacts:
        start = period_start(c, now, every)
        if c.removed_at is None and start is not None:
            out.append(Due(c, start))
    return out


_WORDS = {
    "vi": (
        "[NPSP] Xác nhận thông tin liên lạc của {name}",
        "Kính gửi {name},\n\nThông tin liên lạc của anh/chị trên hệ thống giám sát máy chủ bảo mật"
        " (điện thoại {phone}, thư {email}) đã lâu chưa được xác nhận. Vui lòng mở liên kết sau,"
        " kiểm tra và bấm Xác nhận (liên kết dùng một lần, hết hạn sau 30 ngày):\n{link}\n\n"
        "Nếu thông tin đã thay đổi, vui lòng báo quản trị của cơ quan để cập nhật.",
    ),
    "en": (
        "[NPSP] Please confirm the contact details of {name}",
        "Dear {name},\n\nYour contact details in the secure-server monitor (phone {phone},"
        " e-mail {email}) have not been confirmed for a long time. Please open this link, check"
        " them and press Confirm (single use, valid 30 days):\n{link}\n\n"
        "If they changed, please ask your agency's administrator to update them.",
    ),
}


def reminder_words(contact: StoredContact, link: str) -> tuple[str, str]:
    """A reminder's subject and text in the contact's language."""
    subject, text = _WORDS.get(contact.language, _WORDS["vi"])
    values = {
        "name": contact.name,
        "phone": contact.phone or "—",
        "email": contact.email or "—",
        "link": link,
    }
    return subject.format(**values), text.format(**values)


@dataclass(frozen=True, slots=True)
class Opened:
    """A link that works: its row and the contact it confirms."""

    confirmation_id: int
    contact: StoredContact


def _opened(db: Handle, token: str, now: float) -> Opened | None:
    found = confirm_store.by_hash(db, hashed(token))
    if found is None:
        return None
    confirmation_id, contact_id, _, expires, used = found
    if used is not None or expires <= now:
        return None
    contact = contacts_store.get(db, contact_id)
    if contact is None or contact.removed_at is not None:
        return None
    return Opened(confirmation_id, contact)


async def open_token(store: Store, token: str, now: float) -> Opened | None:
    """The contact a link confirms, or None (unknown, used, expired, or the contact removed:
    the caller says the same thing for all)."""
    return await store.transact(lambda db: _opened(db, token, now))


async def confirm_by_token(store: Store, token: str, now: float) -> StoredContact | None:
    """Spend the link and record the confirmation, audited ``contact.confirm`` (one
    transaction: a link confirms once); None if the link does not work."""

    def write(db: Handle) -> StoredContact | None:
        opened = _opened(db, token, now)
        if opened is None or not confirm_store.use(db, opened.confirmation_id, now):
            return None
        c = opened.contact
        confirm_store.confirm(db, c.id, now)
        detail = {"name": c.name, "confirmation": opened.confirmation_id}
        audit_write(db, now, f"contact:{c.id}", "contact.confirm", c.id, c.agency, detail, "page")
        return c

    return await store.transact(write)
