"""The outbox's rows: what one notification carries, its columns, SMS merging, fallbacks.

Pure values and functions (no database access): :mod:`.outbox` decides, :mod:`.outbox_store`
holds the statements.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from notifiers.base import Attachment, ChannelName, Message, NotifyError


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notice for one person on one channel, with the texts every channel may need."""

    key: str
    channel: ChannelName
    address: str
    person: str
    subject: str
    text: str  # full text (e-mail, inbox)
    short: str  # SMS text
    html: str | None
    thread_key: str | None
    language: str
    fallbacks: tuple[tuple[ChannelName, str], ...] = ()
    attachments: tuple[Attachment, ...] = ()  # a report's CSV: e-mail only
    facts: dict[str, Any] | None = None  # an alert digest as data: webhook only

    def message(self) -> Message:
        return Message(
            key=self.key,
            channel=self.channel,
            to=self.address,
            subject=self.subject,
            text=self.short if self.channel == "sms" else self.text,
            html=self.html if self.channel == "email" else None,
            thread_key=self.thread_key,
            language=self.language,
            attachments=self.attachments if self.channel == "email" else (),
            facts=self.facts if self.channel == "webhook" else None,
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    """What is being sent: one row, or for SMS every due row to one number merged into one
    message (``item`` is then the merged text; ``rows`` keeps each row and its attempts)."""

    item: OutboxItem
    rows: tuple[tuple[int, OutboxItem, int], ...]  # (id, item, attempts including this one)

    @property
    def attempts(self) -> int:
        return max(attempts for _, _, attempts in self.rows)

    @property
    def ids(self) -> list[int]:
        return [row_id for row_id, _, _ in self.rows]


# Separates the texts of several notices merged into one SMS (ASCII: survives the GSM fold).
SMS_JOINER = "\n--\n"
MAX_MERGED = 20  # rows in one merged SMS at most (they must also fit its segments)


def merged_sms(items: list[OutboxItem]) -> OutboxItem:
    """One SMS for several rows to one number (``items`` newest first)."""
    if len(items) == 1:
        return items[0]
    return dataclasses.replace(items[0], short=SMS_JOINER.join(i.short for i in items))


def fitting(items: list[OutboxItem], fits: Callable[[str], bool]) -> list[OutboxItem]:
    """The newest items whose merged text goes out whole (at least the newest one: alone, the
    channel cuts it as it always did). What does not fit waits for the next SMS: a notice
    marked sent must have been read in full."""
    chosen = items[:1]
    for item in items[1:MAX_MERGED]:
        if not fits(SMS_JOINER.join(i.short for i in [*chosen, item])):
            break
        chosen.append(item)
    return chosen


COLUMNS = (
    "key, channel, address, person, subject, text, short, html, thread_key, language, fallbacks,"
    " attachments, facts"
)


def _attachments_json(attachments: tuple[Attachment, ...]) -> str | None:
    if not attachments:
        return None
    return json.dumps(
        [[a.filename, a.content_type, base64.b64encode(a.content).decode()] for a in attachments]
    )


def _attachments_of(value: object) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    return tuple(
        Attachment(str(name), str(kind), base64.b64decode(str(data)))
        for name, kind, data in json.loads(str(value))
    )


def row_values(item: OutboxItem) -> tuple[object, ...]:
    """The values of :data:`COLUMNS` (attachments as JSON of [name, type, base64], facts as
    JSON)."""
    fields = [getattr(item, f.name) for f in dataclasses.fields(item)][:10]
    facts = None if item.facts is None else json.dumps(item.facts, ensure_ascii=False)
    return (*fields, json.dumps(item.fallbacks), _attachments_json(item.attachments), facts)


def item_of_row(row: tuple[object, ...]) -> OutboxItem:
    key, channel, address, person, subject, text, short, html, thread, language = row[:10]
    fallbacks, attachments, facts = row[10:13]
    return OutboxItem(
        str(key),
        channel,  # type: ignore[arg-type]
        str(address),
        str(person),
        str(subject),
        str(text),
        str(short),
        None if html is None else str(html),
        None if thread is None else str(thread),
        str(language),
        tuple((c, a) for c, a in json.loads(str(fallbacks))),
        _attachments_of(attachments),
        None if facts is None else json.loads(str(facts)),
    )


FALLBACK_NOTE = {
    "vi": "(Không gửi được qua {channel} tới {address}: {reason}. Nội dung được gửi lại qua "
    "kênh này.)",
    "en": "(Could not be delivered by {channel} to {address}: {reason}. Sent again on this "
    "channel.)",
}


def fallback(item: OutboxItem, error: NotifyError) -> OutboxItem:
    """The same notice on the person's next channel, saying why it comes this way."""
    (channel, address), rest = item.fallbacks[0], item.fallbacks[1:]
    note = FALLBACK_NOTE.get(item.language, FALLBACK_NOTE["vi"]).format(
        channel=item.channel, address=item.address, reason=error.reason[:200]
    )
    return dataclasses.replace(
        item,
        key=f"{item.key}>{channel}",
        channel=channel,
        address=address,
        fallbacks=rest,
        text=f"{note}\n\n{item.text}",
        html=None if channel != "email" else _note_html(note, item),
    )


def _note_html(note: str, item: OutboxItem) -> str | None:
    if item.html is None:
        return None
    return f"<p>{html.escape(note)}</p>{item.html}"
