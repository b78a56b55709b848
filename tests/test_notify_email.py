"""E-mail channel: aiosmtplib against a real aiosmtpd server on loopback (STARTTLS, TLS, AUTH)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
from collections.abc import AsyncIterator, Callable
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pydantic
import pytest

from notifiers.base import Message, NotifyError
from notifiers.email import EmailNotifier, Settings, message_id
from tests.peers import free_port
from tests.peers.smtp import SMTP_PASSWORD, SMTP_USER, Certs, SmtpPeer

FROM = "giamsat@npsp.example.invalid"
TO = "quantri@soict.example.invalid"
SUBJECT = "[NGHIÊM TRỌNG] Mất kết nối: Máy chủ bảo mật – Sở TT&TT Đắk Lắk"
TEXT = "Máy chủ bảo mật mất kết nối từ 10:32 ngày 29/11/2026.\nĐề nghị kiểm tra đường truyền."
HTML = "<p>Máy chủ bảo mật <b>mất kết nối</b> từ 10:32.</p>"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs.make(tmp_path_factory.mktemp("smtp-certs"))


async def _let_clients_close() -> None:
    """A refused or dropped send leaves aiosmtplib's transport closing; the test's loop must
    run until it has closed, or it is collected during a later test as an unclosed
    transport of a closed loop (a ResourceWarning that fails that test: seen once in CI)."""
    await asyncio.sleep(0.05)


@pytest.fixture
async def smtp(certs: Certs) -> AsyncIterator[SmtpPeer]:
    async with SmtpPeer(certs) as peer:
        yield peer
        await _let_clients_close()


@pytest.fixture
async def smtp_tls(certs: Certs) -> AsyncIterator[SmtpPeer]:
    async with SmtpPeer(certs, mode="tls") as peer:
        yield peer
        await _let_clients_close()


@pytest.fixture
async def smtp_plain(certs: Certs) -> AsyncIterator[SmtpPeer]:
    async with SmtpPeer(certs, mode="plain") as peer:
        yield peer
        await _let_clients_close()


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def put(value: str) -> None:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", value)

    put(SMTP_PASSWORD)
    return put


@pytest.fixture
def make_notifier(
    certs: Certs, password_env: Callable[[str], None]
) -> Callable[..., EmailNotifier]:
    def make(port: int, **overrides: Any) -> EmailNotifier:
        fields: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "security": "starttls",
            "username": SMTP_USER,
            "password": {"env": "TEST_SMTP_PASSWORD"},
            "from_addr": FROM,
            "ca_file": str(certs.ca_file),
            "timeout": "3s",
        }
        fields.update(overrides)
        return EmailNotifier(Settings.model_validate(fields))

    return make


def message(
    key: str = "evt-7.email.0", thread_key: str | None = None, to: str = TO, html: str | None = HTML
) -> Message:
    return Message(
        key=key,
        channel="email",
        to=to,
        subject=SUBJECT,
        text=TEXT,
        html=html,
        thread_key=thread_key,
    )


async def send_failing(notifier: EmailNotifier, msg: Message | None = None) -> NotifyError:
    with pytest.raises(NotifyError) as caught:
        await notifier.send(msg or message())
    return caught.value


# --------------------------------------------------------------------------------------------
# Delivered


async def test_delivered_over_starttls_with_auth(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    delivery = await make_notifier(smtp.port).send(message())
    assert len(smtp.received) == 1
    got = smtp.received[0]
    assert (got.mail_from, got.rcpt_tos) == (FROM, [TO])
    mail = got.message
    assert mail["Subject"] == SUBJECT  # RFC 2047 on the wire, exact text once decoded
    assert b"Subject: =?utf-8?" in got.raw
    assert got.raw.isascii()  # nothing 8-bit in headers or bodies: any relay passes it
    # RFC 2047: the space between two adjacent encoded words is not text. The generator splits
    # the name in two words; the modern parser (CPython) wrongly keeps that space, so decode
    # the way mail clients do.
    name = str(make_header(decode_header(mail["From"].addresses[0].display_name)))
    raw_from = email.message_from_bytes(got.raw, policy=email.policy.compat32)["From"]
    assert str(make_header(decode_header(raw_from))) == (
        f"Cổng DVC quốc gia - Giám sát kết nối <{FROM}>"
    )
    assert name.startswith("Cổng DVC quốc gia")
    assert mail["From"].addresses[0].addr_spec == FROM
    assert mail["To"] == TO
    assert mail["Message-ID"] == "<evt-7.email.0@npsp-monitor.invalid>"
    assert delivery.provider_id == mail["Message-ID"]
    assert mail["In-Reply-To"] is None and mail["References"] is None
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Date"] is not None
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    # text in base64 is in canonical form (CRLF line ends, RFC 2045 6.8)
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == HTML
    assert plain.get_content_charset() == "utf-8"


async def test_text_only_message_is_single_part(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    await make_notifier(smtp.port).send(message(html=None))
    mail = smtp.received[0].message
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT


async def test_follow_up_is_threaded_to_the_first_message(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    notifier = make_notifier(smtp.port, message_id_domain="canhbao.example.invalid")
    first = await notifier.send(message(key="inc-42.open"))
    second = await notifier.send(message(key="inc-42.resolved", thread_key="inc-42.open"))
    assert first.provider_id == "<inc-42.open@canhbao.example.invalid>"
    assert second.provider_id == "<inc-42.resolved@canhbao.example.invalid>"
    follow_up = smtp.received[1].message
    assert follow_up["In-Reply-To"] == first.provider_id
    assert follow_up["References"] == first.provider_id


async def test_delivered_over_implicit_tls(
    smtp_tls: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    delivery = await make_notifier(smtp_tls.port, security="tls").send(message())
    assert smtp_tls.received[0].message["Message-ID"] == delivery.provider_id


def test_message_id_is_valid_and_reversible() -> None:
    assert message_id("evt-1.sms.0", "d.invalid") == "<evt-1.sms.0@d.invalid>"
    assert message_id("a b:c", "d") == "<a=20b=3Ac@d>"
    assert message_id("a=b", "d") == "<a=3Db@d>"  # the escape character is escaped
    assert message_id(".a..b.", "d") == "<=2Ea.=2Eb=2E@d>"
    assert message_id("sự-cố", "d") == "<s=E1=BB=B1-c=E1=BB=91@d>"
    assert message_id("", "d") == "<=00@d>"


# --------------------------------------------------------------------------------------------
# Failures


async def test_421_is_retried_and_the_next_send_delivers(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    notifier = make_notifier(smtp.port)
    smtp.fail_next("MAIL", "421 4.7.0 Too many connections, try again later")
    error = await send_failing(notifier)
    assert error.permanent is False
    assert "421" in error.reason
    assert smtp.received == []
    await notifier.send(message())
    assert len(smtp.received) == 1


@pytest.mark.parametrize(
    ("command", "reply", "permanent"),
    [
        ("MAIL", "451 4.3.0 Local error in processing", False),
        ("RCPT", "450 4.2.0 Mailbox busy", False),
        ("DATA", "452 4.3.1 Insufficient system storage", False),
        ("MAIL", "553 5.7.1 Sender address rejected: not owned by user", True),
        ("DATA", "554 5.7.1 Message rejected as spam", True),
    ],
)
async def test_reply_codes_decide_retry(
    smtp: SmtpPeer,
    make_notifier: Callable[..., EmailNotifier],
    command: Any,
    reply: str,
    permanent: bool,
) -> None:
    smtp.fail_next(command, reply)
    error = await send_failing(make_notifier(smtp.port))
    assert error.permanent is permanent
    assert reply.split(maxsplit=1)[0] in error.reason


async def test_recipient_refused_is_permanent(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    gone = "nghiviec@soict.example.invalid"
    smtp.refuse(gone, "550 5.1.1 <nghiviec@soict.example.invalid>: User unknown")
    error = await send_failing(make_notifier(smtp.port), message(to=gone))
    assert error.permanent is True
    assert "550" in error.reason and "User unknown" in error.reason
    assert smtp.received == []


async def test_disconnect_after_data_is_retried(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    smtp.drop_next_data()
    notifier = make_notifier(smtp.port)
    error = await send_failing(notifier)
    assert smtp.handler.dropped.is_set()
    assert error.permanent is False
    await notifier.send(message())
    assert len(smtp.received) == 1


async def test_wrong_password_is_permanent_and_never_leaks(
    smtp: SmtpPeer,
    make_notifier: Callable[..., EmailNotifier],
    password_env: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "smtp-wrong-Ub3nQ8"
    password_env(wrong)
    caplog.set_level(logging.DEBUG)
    notifier = make_notifier(smtp.port)
    error = await send_failing(notifier)
    assert error.permanent is True
    assert "535" in error.reason and "authentication failed" in error.reason
    assert smtp.received == []
    for text in (str(error), repr(error), repr(notifier), repr(notifier.settings), caplog.text):
        assert wrong not in text
        assert SMTP_PASSWORD not in text


async def test_server_not_listening_is_retried(make_notifier: Callable[..., EmailNotifier]) -> None:
    error = await send_failing(make_notifier(free_port()))
    assert error.permanent is False
    assert "connection to 127.0.0.1" in error.reason


async def test_untrusted_certificate_is_permanent(
    smtp: SmtpPeer, smtp_tls: SmtpPeer, certs: Certs, make_notifier: Callable[..., EmailNotifier]
) -> None:
    # A certificate we cannot verify stays unverifiable until someone fixes ca_file or the
    # server: retrying only delays the fallback to another channel, so it is permanent.
    for notifier in (
        make_notifier(smtp.port, ca_file=str(certs.other_ca_file)),
        make_notifier(smtp_tls.port, security="tls", ca_file=str(certs.other_ca_file)),
    ):
        error = await send_failing(notifier)
        assert error.permanent is True
        assert "is not trusted" in error.reason
    assert smtp.received == [] and smtp_tls.received == []


async def test_delivered_to_a_plain_local_relay(
    smtp_plain: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    notifier = make_notifier(smtp_plain.port, security="none", username=None, password=None)
    await notifier.send(message())
    assert len(smtp_plain.received) == 1


async def test_starttls_required_but_not_offered_is_permanent(
    smtp_plain: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    # Never a silent downgrade to clear text: a configuration error, not a passing failure.
    error = await send_failing(make_notifier(smtp_plain.port))
    assert error.permanent is True
    assert "STARTTLS" in error.reason
    assert smtp_plain.received == []


async def test_starttls_against_an_implicit_tls_port_is_a_retry_after_the_timeout(
    smtp_tls: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    # Both sides wait for the other to speak first: indistinguishable from a slow server.
    notifier = make_notifier(smtp_tls.port, timeout="300ms")
    error = await send_failing(notifier)
    assert error.permanent is False
    assert "no answer" in error.reason


async def test_invalid_recipient_address_is_permanent(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    error = await send_failing(make_notifier(smtp.port), message(to="not an address"))
    assert error.permanent is True


async def test_header_injection_is_neutralised(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    evil = Message(
        key="k", channel="email", to=TO, subject="Sự cố\r\nBcc: x@evil.invalid", text="t"
    )
    await make_notifier(smtp.port).send(evil)
    got = smtp.received[0]
    assert got.rcpt_tos == [TO]
    assert got.message["Bcc"] is None
    assert got.message["Subject"] == "Sự cố Bcc: x@evil.invalid"


# --------------------------------------------------------------------------------------------
# Settings


def test_settings_rules(certs: Certs, tmp_path: Path) -> None:
    base: dict[str, Any] = {"host": "127.0.0.1", "port": 587, "from_addr": FROM}
    Settings.model_validate(base)
    with pytest.raises(pydantic.ValidationError, match="both username and password"):
        Settings.model_validate({**base, "username": "u"})
    with pytest.raises(pydantic.ValidationError, match="in clear"):
        Settings.model_validate(
            {**base, "security": "none", "username": "u", "password": {"env": "X"}}
        )
    with pytest.raises(pydantic.ValidationError, match="from_addr"):
        Settings.model_validate({**base, "from_addr": "nobody"})
    missing_ca = Settings.model_validate({**base, "ca_file": str(tmp_path / "none.pem")})
    with pytest.raises(ValueError, match="cannot load ca_file"):
        EmailNotifier(missing_ca)


async def test_long_vietnamese_subject_keeps_every_space(
    smtp: SmtpPeer, make_notifier: Callable[..., EmailNotifier]
) -> None:
    # Regression: the modern email policy folded such a subject at a space between two encoded
    # words, and decoders (rightly) drop that space: clients showed "Thành phố HàNội".
    subject = "[NPSP] 2 hệ thống của Thành phố Hà Nội mất kết nối, chi tiết trong thư này nhé"
    msg = Message(key="long-subject", channel="email", to=TO, subject=subject, text="t")
    await make_notifier(smtp.port).send(msg)
    got = smtp.received[-1]
    assert got.message["Subject"] == subject
    raw_subject = email.message_from_bytes(got.raw, policy=email.policy.compat32)["Subject"]
    assert str(make_header(decode_header(raw_subject))) == subject
