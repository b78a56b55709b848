"""E-mail over SMTP (aiosmtplib): one connection per message, STARTTLS or implicit TLS, AUTH.

How a failure is classed (``permanent`` means: do not retry this message on this channel):

===========================================  =========  =========================================
what happened                                permanent  why
===========================================  =========  =========================================
RCPT refused with 5xx (550 no such user)     yes        the address is wrong
535 authentication failed, other 5xx reply   yes        credentials / policy: retrying won't help
server certificate not trusted               yes        a configuration error (``ca_file``, host)
server lacks STARTTLS or AUTH                yes        a configuration error (``security``)
4xx reply (421, 450, 451, 452, 454)          no         the server says "later"
connection refused / lost, timeout           no         may have been delivered (see ``send``)
===========================================  =========  =========================================
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import re
import ssl
from email import encoders
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import cast

import aiosmtplib

from notifiers.base import Attachment, ChannelName, Delivery, Message, NotifyError
from notifiers.settings import ADDRESS
from notifiers.settings import EmailSettings as Settings

__all__ = ["EmailNotifier", "Settings", "message_id"]

log = logging.getLogger(__name__)

_ADDRESS = re.compile(ADDRESS)

# RFC 5322 atext, minus "=" (our escape character).
_ID_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/?^_`{|}~"
)


# CRLF line ends, RFC 2047 headers, and 7-bit bodies (quoted-printable or base64, whichever is
# shorter): a relay without 8BITMIME passes the message unchanged.


def _id_part(key: str) -> str:
    """``key`` as the left part of a Message-ID: RFC 5322 dot-atom text, reversibly.

    Characters outside atext become ``=XX`` (the UTF-8 bytes in hex, "=" itself included), and so
    does a dot that would begin or end the id or follow another dot; two keys never share an id.
    """
    out: list[str] = []
    for index, ch in enumerate(key):
        keep_dot = ch == "." and 0 < index < len(key) - 1 and key[index - 1] != "."
        if ch in _ID_CHARS or keep_dot:
            out.append(ch)
        else:
            out.extend(f"={byte:02X}" for byte in ch.encode())
    return "".join(out) or "=00"


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the message whose idempotency key is ``key``, brackets included."""
    return f"<{_id_part(key)}@{domain}>"


def _one_line(text: str) -> str:
    # A header never carries a line break (header injection); collapse all whitespace runs.
    return " ".join(text.split())


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    for _ in range(5):  # the chain is short: SMTPConnectError from SSLCertVerificationError
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _attachment(attachment: Attachment) -> MIMEBase:
    """A file as a base64 part, its name in RFC 2231 (UTF-8) when it is not plain ASCII."""
    main, _, sub = attachment.content_type.partition("/")
    if main == "text":
        part = MIMEBase(main, sub or "plain", charset="utf-8")
    else:
        part = MIMEBase(main or "application", sub or "octet-stream")
    part.set_payload(attachment.content)
    encoders.encode_base64(part)
    name = _one_line(attachment.filename).replace('"', "") or "attachment"
    filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


class EmailNotifier:
    """Sends one e-mail per ``send``; created once, shared by every send."""

    channel: ChannelName = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Read the password and the CA now: a missing file fails at startup, not at an outage.
        self._password = None if settings.password is None else settings.password.read()
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            try:
                self._tls = ssl.create_default_context(
                    cafile=None if settings.ca_file is None else str(settings.ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load ca_file {settings.ca_file}: {exc}") from None

    def build(self, message: Message) -> MIMEBase:
        """The MIME message for ``message``: UTF-8 text, an HTML alternative if given, the
        attachments after them (multipart/mixed), Message-ID from the key, threaded to
        ``thread_key``.

        Built with the compat32 classes on purpose: the modern ``email.policy`` folds a long
        RFC 2047 subject *at a space between two encoded words*, and decoders drop such spaces,
        so every client showed "Thành phố HàNội". ``email.header.Header`` keeps the spaces
        inside the encoded words.
        """
        domain = self.settings.message_id_domain
        mail: MIMEBase = MIMEText(message.text, "plain", "utf-8")
        if message.html is not None:
            mail = MIMEMultipart(
                "alternative", _subparts=[mail, MIMEText(message.html, "html", "utf-8")]
            )
        if message.attachments:
            mail = MIMEMultipart("mixed", _subparts=[mail, *map(_attachment, message.attachments)])
        mail["From"] = email.utils.formataddr(
            (Header(_one_line(self.settings.from_name), "utf-8").encode(), self.settings.from_addr)
        )
        mail["To"] = message.to
        # A Header object, not its text: compat32 writes it out without refolding (typeshed
        # types header values as str, hence the cast).
        mail["Subject"] = cast(str, Header(_one_line(message.subject), "utf-8"))
        mail["Date"] = email.utils.formatdate(localtime=True)
        mail["Message-ID"] = message_id(message.key, domain)
        if message.thread_key is not None and message.thread_key != message.key:
            first = message_id(message.thread_key, domain)
            mail["In-Reply-To"] = first
            mail["References"] = first
        mail["Content-Language"] = _one_line(message.language)
        # RFC 3834: an automatic message; well-behaved servers send no vacation replies to it.
        mail["Auto-Submitted"] = "auto-generated"
        return mail

    async def send(self, message: Message) -> Delivery:
        """Make one attempt to hand ``message`` to the SMTP server; return its Message-ID.

        When the connection is lost after the data was sent but before the server's reply, the
        server may have queued the message: the retry sends it again (at-least-once, the outbox's
        rule), with the same Message-ID, which lets mail systems that deduplicate show it once.
        """
        if not _ADDRESS.match(message.to):
            raise NotifyError(f"email: {message.to!r} is not an e-mail address", permanent=True)
        mail = self.build(message)
        settings = self.settings
        try:
            async with asyncio.timeout(settings.timeout):
                await aiosmtplib.send(
                    mail,
                    sender=settings.from_addr,
                    recipients=[message.to],
                    hostname=settings.host,
                    port=settings.port,
                    username=settings.username,
                    password=None if self._password is None else self._password.get_secret_value(),
                    timeout=settings.timeout,
                    use_tls=settings.security == "tls",
                    start_tls=settings.security == "starttls",
                    validate_certs=settings.security != "none",
                    tls_context=self._tls,
                )
        except (aiosmtplib.SMTPException, OSError) as exc:  # TimeoutError is an OSError
            raise self._classify(exc) from None
        provider_id = str(mail["Message-ID"])
        log.debug("email %s accepted by %s as %s", message.key, settings.host, provider_id)
        return Delivery(provider_id=provider_id)

    def _classify(self, exc: aiosmtplib.SMTPException | OSError) -> NotifyError:
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            permanent = all(refused.code >= 500 for refused in exc.recipients)
            return NotifyError(
                self._redact(f"email: recipient refused: {detail}"),
                permanent=permanent,
                code=str(exc.recipients[0].code) if permanent and exc.recipients else None,
            )
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            stage = {
                aiosmtplib.SMTPAuthenticationError: "authentication failed "
                "(check username and password)",
                aiosmtplib.SMTPSenderRefused: "sender refused",
                aiosmtplib.SMTPRecipientRefused: "recipient refused",
                aiosmtplib.SMTPDataError: "message refused",
                aiosmtplib.SMTPHeloError: "EHLO refused",
                aiosmtplib.SMTPConnectResponseError: "greeting refused",
            }.get(type(exc), "refused")
            # 4xx: "try again later" (421 closing, 450/451/452 temporary, 454 auth unavailable).
            refused = isinstance(exc, aiosmtplib.SMTPRecipientRefused) and exc.code >= 500
            return NotifyError(
                self._redact(f"email: {stage}: {exc.code} {exc.message}"),
                permanent=exc.code >= 500,
                code=str(exc.code) if refused else None,
            )
        cert = _cert_error(exc)
        if cert is not None:
            return NotifyError(
                f"email: the certificate of {where} is not trusted ({cert.verify_message}); "
                "check ca_file and host",
                permanent=True,
            )
        if isinstance(exc, TimeoutError):  # ours, or aiosmtplib's SMTPTimeoutError
            return NotifyError(
                f"email: no answer from {where} within {settings.timeout:g}s "
                "(the message may have been delivered)",
                permanent=False,
            )
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is aiosmtplib.SMTPException:
            # aiosmtplib raises the base class for capability mismatches: no STARTTLS, no AUTH.
            return NotifyError(
                self._redact(f"email: {where} does not offer what the settings ask: {exc}"),
                permanent=True,
            )
        # Connection refused, reset or lost (SMTPConnectError, SMTPServerDisconnected, OSError).
        return NotifyError(
            self._redact(f"email: connection to {where} failed: {type(exc).__name__}: {exc}"),
            permanent=False,
        )

    def _redact(self, text: str) -> str:
        if self._password is None or not self._password.get_secret_value():
            return text
        return text.replace(self._password.get_secret_value(), "********")

    async def aclose(self) -> None:
        """Nothing to close: every send uses its own connection."""

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.settings.host!r}, port={self.settings.port})"
