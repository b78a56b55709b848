"""SMS text: folding Vietnamese to plain ASCII, counting segments, fitting a segment budget.

One character outside the GSM 03.38 alphabet (any Vietnamese letter with a tone mark, a curly
quote, a non-breaking space) switches the whole SMS to UCS-2: 70 characters per single message,
67 per part of a long one, instead of 160 / 153. A 200-character Vietnamese alert therefore costs
4 segments as written and 2 once folded to "không dấu" (khong dau), which every Vietnamese reader
reads without effort.
"""

from __future__ import annotations

import unicodedata

__all__ = ["fit_segments", "fold_vietnamese", "is_gsm7", "sms_segments"]

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM7_SINGLE, _GSM7_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67

# Letters NFD does not decompose, and punctuation that would force UCS-2 for nothing.
_FOLD_TABLE = str.maketrans(
    {
        "đ": "d",
        "Đ": "D",
        "\u00a0": " ",  # no-break space
        "\u2009": " ",  # thin space
        "\u202f": " ",  # narrow no-break space
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "`": "'",  # not in GSM 03.38 at all
    }
)


def fold_vietnamese(text: str) -> str:
    """Return ``text`` without diacritics: "Cổng DVC – mất kết nối" → "Cong DVC - mat ket noi".

    đ/Đ become d/D, tone and vowel marks are dropped (NFD, then every combining mark removed),
    typographic quotes, dashes, ellipsis and special spaces become their ASCII forms. Characters
    with no ASCII form (CJK, emoji) are kept: the message then stays UCS-2, which is still correct.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_TABLE))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped)


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM 03.38 alphabet or its extension."""
    return all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in text)


def _gsm7_units(text: str) -> list[int]:
    return [2 if ch in _GSM7_EXTENSION else 1 for ch in text]


def _ucs2_units(text: str) -> list[int]:
    # UTF-16 code units: a character outside the BMP (an emoji) takes a surrogate pair.
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count_parts(units: list[int], part_size: int) -> int:
    # A character (escape pair, surrogate pair) is never split between two parts.
    parts, used = 1, 0
    for size in units:
        if used + size > part_size:
            parts += 1
            used = 0
        used += size
    return parts


def sms_segments(text: str) -> int:
    """Number of SMS segments ``text`` is billed as (an empty text still is one message).

    GSM-7 when every character is in the GSM 03.38 alphabet (160 septets in a single message,
    153 per part of a concatenated one; an extension character such as ``€`` or ``[`` takes two),
    otherwise UCS-2 (70 UTF-16 units, 67 per part).
    """
    if is_gsm7(text):
        units, single, part = _gsm7_units(text), _GSM7_SINGLE, _GSM7_PART
    else:
        units, single, part = _ucs2_units(text), _UCS2_SINGLE, _UCS2_PART
    if sum(units) <= single:
        return 1
    return _count_parts(units, part)


def fit_segments(text: str, max_segments: int) -> str:
    """Return ``text`` cut to fit ``max_segments`` segments, ending with an ellipsis when cut.

    The ellipsis is "..." when the text is GSM-7 (the single character "…" is not in GSM 03.38 and
    would turn the whole SMS into UCS-2), "…" otherwise.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if sms_segments(text) <= max_segments:
        return text
    ellipsis = "..." if is_gsm7(text) else "…"
    # The segment count grows with the prefix length: find the longest prefix that still fits.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if sms_segments(text[:middle].rstrip() + ellipsis) <= max_segments:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ellipsis
