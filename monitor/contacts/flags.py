"""Flagged addresses: a phone number or an e-mail address that failed for good (pure values
and rules, no I/O; the statements are :mod:`.hygiene_store`'s, the notices :mod:`.hygiene`'s).

What flags an address — the provider refused *the recipient*, not the message or our account:

* SMS: Twilio 21211 (an invalid 'To' number), 21614 ('To' is not a mobile number);
* e-mail: the recipient refused with a permanent 5xx on RCPT (550 no such user).

A flag is keyed by channel and address (registry and stored contacts alike: whoever has that
address), one open at a time. The router leaves a flagged channel out of a person's recipients
(the person's other channels take over) until the flag is cleared: the address edited, or
cleared by an agency-admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from notifiers.base import NotifyError

__all__ = ["SMS_CODES", "Flag", "flag_code", "key_of", "masked_address"]

#: Twilio's codes that flag a number, and what they mean (vi, en).
SMS_CODES: dict[str, tuple[str, str]] = {
    "21211": ("số không hợp lệ", "invalid number"),
    "21614": ("không phải số di động", "not a mobile number"),
}


def flag_code(channel: str, error: NotifyError) -> str | None:
    """The code to flag the address with after ``error`` on ``channel``, or None (the failure
    says nothing about the address: retryable, our account, the message)."""
    code = error.code
    if code is None or not error.permanent:
        return None
    if channel == "sms":
        return code if code in SMS_CODES else None
    if channel == "email":
        return code if code.startswith("5") else None
    return None


def key_of(channel: str, address: str) -> tuple[str, str]:
    """How a flag is keyed: e-mail addresses compare without case."""
    return (channel, address.lower() if channel == "email" else address)


def masked_address(channel: str, address: str) -> str:
    """An address as a notice shows it: a number's country code and last 3 digits
    (``+84…123``), an e-mail address's domain (``***@hanoi.gov.vn``)."""
    if channel == "email" or "@" in address:
        return "***@" + address.rpartition("@")[2]
    head = address[:3] if address.startswith("+") else ""
    return f"{head}…{address[-3:]}"


@dataclass(frozen=True, slots=True)
class Flag:
    """One row of ``address_flags``."""

    id: int
    channel: str
    address: str
    code: str
    reason: str
    person: str | None  # <agency>/<contact id> (or operations/<i>) of the failed row
    flagged_at: float
    reported_at: float | None = None
    cleared_at: float | None = None
    cleared_by: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return key_of(self.channel, self.address)

    @property
    def meaning(self) -> tuple[str, str]:
        """What the code says (vi, en)."""
        if self.channel == "sms":
            return SMS_CODES.get(self.code, ("bị từ chối", "refused"))
        return ("địa chỉ bị máy chủ thư từ chối", "address refused by the mail server")
