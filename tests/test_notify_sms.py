"""SMS channel: the real ``twilio`` client against a loopback server speaking Twilio's REST API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pydantic
import pytest

from notifiers.base import Message, NotifyError
from notifiers.sms import Settings, SmsNotifier
from notifiers.textfold import fit_segments, fold_vietnamese, is_gsm7, sms_segments
from tests.peers import free_port
from tests.peers.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    SERVICE_SID,
    FakeTwilio,
    Reply,
)

TO = "+84000000001"  # obviously fake: +84 followed by zeros

LONG_VI = (
    "Cổng DVC quốc gia: máy chủ bảo mật của Sở Thông tin và Truyền thông tỉnh Đắk Lắk "
    "mất kết nối từ 10:32 ngày 29/11. Đề nghị quản trị kỹ thuật kiểm tra đường truyền, "
    "tường lửa và chứng chỉ số, sau đó xác nhận sự cố trên Cổng. Đây là tin nhắn tự động."
)


@pytest.fixture
async def api() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def put(value: str) -> None:
        monkeypatch.setenv("TEST_TWILIO_TOKEN", value)

    put(AUTH_TOKEN)
    return put


def settings(base_url: str, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": {"env": "TEST_TWILIO_TOKEN"},
        "from_number": FROM_NUMBER,
        "api_base_url": base_url,
        "timeout": "2s",
    }
    fields.update(overrides)
    return Settings.model_validate(fields)


@pytest.fixture
async def make_notifier(
    token_env: Callable[[str], None],
) -> AsyncIterator[Callable[..., SmsNotifier]]:
    made: list[SmsNotifier] = []

    def make(base_url: str, **overrides: Any) -> SmsNotifier:
        notifier = SmsNotifier(settings(base_url, **overrides))
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.aclose()


def message(text: str = "Mất kết nối: Sở TT&TT Hà Nội", to: str = TO) -> Message:
    return Message(key="evt-1-sms-0", channel="sms", to=to, subject="Cảnh báo", text=text)


async def send_failing(notifier: SmsNotifier, msg: Message | None = None) -> NotifyError:
    with pytest.raises(NotifyError) as caught:
        await notifier.send(msg or message())
    return caught.value


# --------------------------------------------------------------------------------------------
# Delivered


async def test_delivered_with_sid_form_fields_and_basic_auth(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    notifier = make_notifier(api.base_url, fold_diacritics=False)
    delivery = await notifier.send(message())
    assert len(api.sent) == 1
    sent = api.sent[0]
    assert delivery.provider_id == sent.sid
    assert sent.sid.startswith("SM")
    assert sent.account_sid == ACCOUNT_SID
    assert (sent.to, sent.from_, sent.messaging_service_sid) == (TO, FROM_NUMBER, None)
    assert sent.body == "Mất kết nối: Sở TT&TT Hà Nội"  # UTF-8 form encoding round-trips


async def test_messaging_service_sid_instead_of_from(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    notifier = make_notifier(api.base_url, from_number=None, messaging_service_sid=SERVICE_SID)
    await notifier.send(message())
    assert (api.sent[0].from_, api.sent[0].messaging_service_sid) == (None, SERVICE_SID)


async def test_vietnamese_folded_to_gsm7_halves_the_segments(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    assert sms_segments(LONG_VI) == 4  # UCS-2 as written
    notifier = make_notifier(api.base_url)  # fold_diacritics=True, max_segments=2
    await notifier.send(message(LONG_VI))
    body = api.sent[0].body
    assert body.isascii() and is_gsm7(body)
    assert body == fold_vietnamese(LONG_VI)  # whole: 2 segments once folded
    assert body.startswith("Cong DVC quoc gia: may chu bao mat cua So Thong tin va Truyen thong")
    assert "tinh Dak Lak mat ket noi" in body
    assert sms_segments(body) == 2


async def test_folded_text_cut_to_the_segment_budget(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    notifier = make_notifier(api.base_url, max_segments=2)
    await notifier.send(message(LONG_VI + " " + LONG_VI))
    body = api.sent[0].body
    assert is_gsm7(body) and sms_segments(body) == 2
    assert body.endswith("...") and len(body) <= 306
    assert fold_vietnamese(LONG_VI + " " + LONG_VI).startswith(body[:-3])


async def test_unfolded_text_keeps_diacritics_within_budget(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    notifier = make_notifier(api.base_url, fold_diacritics=False, max_segments=2)
    await notifier.send(message(LONG_VI))
    body = api.sent[0].body
    assert body.startswith("Cổng DVC quốc gia")
    assert sms_segments(body) == 2 and len(body) <= 134
    assert body.endswith("…")


async def test_twilio_region_in_environment_does_not_move_the_host(
    api: FakeTwilio,
    make_notifier: Callable[..., SmsNotifier],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # twilio treats environment={} as "use os.environ"; the notifier pins region and edge.
    monkeypatch.setenv("TWILIO_REGION", "au1")
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    await make_notifier(api.base_url).send(message())
    assert len(api.sent) == 1


# --------------------------------------------------------------------------------------------
# Failures: permanent or worth a retry


async def test_rate_limited_is_retried_after_retry_after(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    api.script.append(Reply.rate_limited(retry_after=17))
    error = await send_failing(make_notifier(api.base_url))
    assert error.permanent is False
    assert error.retry_after == 17
    assert "429" in error.reason and api.sent == []


async def test_concurrent_sends_keep_their_own_retry_after(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    api.script.append(Reply.rate_limited(retry_after=17))
    notifier = make_notifier(api.base_url)
    outcomes = await asyncio.gather(
        *(notifier.send(message()) for _ in range(4)), return_exceptions=True
    )
    errors = [o for o in outcomes if isinstance(o, NotifyError)]
    assert len(errors) == 1 and errors[0].retry_after == 17
    assert len(api.sent) == 3


async def test_shared_session_is_used_and_left_open(
    api: FakeTwilio, token_env: Callable[[str], None]
) -> None:
    async with aiohttp.ClientSession() as session:
        notifier = SmsNotifier(settings(api.base_url), http_client=session)
        await notifier.send(message())
        await notifier.aclose()
        assert not session.closed
        await notifier.send(message())  # still usable: the session is the daemon's
    assert len(api.sent) == 2


async def test_server_error_is_retried(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    api.script.append(Reply.server_error())
    notifier = make_notifier(api.base_url)
    error = await send_failing(notifier)
    assert (error.permanent, error.retry_after) == (False, None)
    assert "500" in error.reason
    # the next attempt (made by the outbox, not by the notifier) goes through
    assert (await notifier.send(message())).provider_id == api.sent[0].sid
    assert api.requests == 2


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply.invalid_number(TO), "invalid 'To'"),
        (Reply.error(21614, f"'To' number {TO} is not a valid mobile number"), "not a mobile"),
        (Reply.error(21610, "Attempt to send to unsubscribed recipient"), "unsubscribed"),
        (Reply.error(21606, "The 'From' phone number provided is not valid"), "21606"),
    ],
)
async def test_bad_recipient_or_request_is_permanent(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier], reply: Reply, words: str
) -> None:
    api.script.append(reply)
    error = await send_failing(make_notifier(api.base_url))
    assert error.permanent is True
    assert words in error.reason


async def test_not_an_e164_number_is_refused_without_a_request(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    error = await send_failing(make_notifier(api.base_url), message(to="0900000000"))
    assert error.permanent is True and api.requests == 0


async def test_no_answer_is_a_retry_within_the_timeout(
    api: FakeTwilio, make_notifier: Callable[..., SmsNotifier]
) -> None:
    api.script.append(Reply.hanging())
    notifier = make_notifier(api.base_url, timeout="300ms")
    error = await send_failing(notifier)
    assert api.hanging.is_set()
    assert error.permanent is False
    assert "may have been sent" in error.reason


async def test_connection_refused_is_a_retry(
    make_notifier: Callable[..., SmsNotifier],
) -> None:
    error = await send_failing(make_notifier(f"http://127.0.0.1:{free_port()}"))
    assert error.permanent is False
    assert "cannot reach Twilio" in error.reason


async def test_wrong_token_is_permanent_and_never_leaks(
    api: FakeTwilio,
    make_notifier: Callable[..., SmsNotifier],
    token_env: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "tw-wrong-Hh7Qd93LxP"
    token_env(wrong)
    caplog.set_level(logging.DEBUG)
    notifier = make_notifier(api.base_url)
    error = await send_failing(notifier)
    assert error.permanent is True
    assert "401" in error.reason and "auth_token" in error.reason
    assert api.sent == []
    for text in (str(error), repr(error), error.reason, repr(notifier), caplog.text):
        assert wrong not in text
        assert AUTH_TOKEN not in text
    assert all(wrong not in str(r.args) for r in caplog.records)


async def test_secret_absent_from_settings_repr_and_unreachable_failures(
    make_notifier: Callable[..., SmsNotifier], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = make_notifier(f"http://127.0.0.1:{free_port()}")
    error = await send_failing(notifier)
    for text in (str(error), repr(notifier), repr(notifier.settings), caplog.text):
        assert AUTH_TOKEN not in text


async def test_unreadable_token_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_TWILIO_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TEST_TWILIO_TOKEN is not set"):
        SmsNotifier(settings("http://127.0.0.1:1"))


# --------------------------------------------------------------------------------------------
# Settings and text


def test_settings_need_exactly_one_sender() -> None:
    with pytest.raises(pydantic.ValidationError, match="exactly one of from_number"):
        settings("http://127.0.0.1:1", messaging_service_sid=SERVICE_SID)
    with pytest.raises(pydantic.ValidationError, match="exactly one of from_number"):
        settings("http://127.0.0.1:1", from_number=None)
    with pytest.raises(pydantic.ValidationError, match="from_number"):
        settings("http://127.0.0.1:1", from_number="0900000000")


def test_fold_vietnamese() -> None:
    assert fold_vietnamese("Đường dây nóng – “khẩn” … Ứng dụng") == (
        'Duong day nong - "khan" ... Ung dung'
    )
    assert fold_vietnamese("Cổng Dịch vụ công quốc gia") == "Cong Dich vu cong quoc gia"
    assert fold_vietnamese("ăâêôơư ĂÂÊÔƠƯ đĐ") == "aaeoou AAEOOU dD"


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("ư" * 70, 1),
        ("ư" * 71, 2),
        ("ư" * 134, 2),
        ("ư" * 135, 3),
        ("a" * 69 + "`", 1),  # one non-GSM character makes the whole text UCS-2
        ("a" * 70 + "`", 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_fit_segments_cuts_with_the_right_ellipsis() -> None:
    assert fit_segments("short", 1) == "short"
    gsm = fit_segments("word " * 100, 1)
    assert gsm.endswith("...") and sms_segments(gsm) == 1 and len(gsm) <= 160
    ucs = fit_segments("chữ " * 100, 1)
    assert ucs.endswith("…") and sms_segments(ucs) == 1 and len(ucs) <= 70
