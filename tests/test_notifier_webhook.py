"""Webhook channel: the real notifier (aiohttp) against an aiohttp receiver on loopback, the
config checks, and one notice through the real outbox on a SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from aiohttp import web

from monitor.alerting.facts import digest_facts
from monitor.alerting.group import Digest
from monitor.alerting.messages import MAX_LINES
from monitor.alerting.model import Alert, Recipient
from monitor.alerting.outbox import Outbox, OutboxItem, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.alerting.route import recipients_of
from monitor.config import ConfigError, Contact, load_config
from monitor.config.alerting import OutboxSettings
from monitor.registry import Registry
from monitor.state import Event, State
from monitor.store import Store
from notifiers import CHANNELS, ChannelEnv
from notifiers.base import Message, NotifyError
from notifiers.settings import ChannelSettings
from notifiers.webhook import PAYLOAD_VERSION, Settings, WebhookNotifier, sign
from tests.probe_servers import Certs, free_port, make_certs, unanswered_port

KEY = "k3y-0f-the-h00k-do-not-leak-4a7c9e"
AUTH = "Bearer t0ken-do-not-leak-91b2"
NOW = 1_796_520_000.0  # 2026-12-06T01:20:00Z
DOCS = Path(__file__).resolve().parent.parent / "docs" / "webhook.md"

SUBJECT = "[NPSP] Thành phố Hà Nội: Máy chủ bảo mật mất kết nối"
TEXT = "Máy chủ bảo mật của Thành phố Hà Nội mất kết nối từ 08:12 06/12/2026."


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    text: str = "ok"
    hang: bool = False  # never answer (until the test ends)
    drop: bool = False  # read the request, then close the connection without an answer
    echo: bool = False  # answer with the request's headers (a careless receiver)


@dataclass
class Got:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: object = None  # the client's address: a new one per connection


class Receiver:
    """An HTTP(S) peer on loopback that records every request and answers as scripted."""

    def __init__(self, tls: Certs | None = None) -> None:
        self.tls = tls
        self.got: list[Got] = []
        self.replies: list[Reply] = []
        self.release = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hooks/npsp"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        peer = None if request.transport is None else request.transport.get_extra_info("peername")
        self.got.append(Got(request.path_qs, headers, body, peer))
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.hang:
            await self.release.wait()
        if reply.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        # A careless receiver's echo: the credentials first, so they are not cut off.
        first = {k: headers[k] for k in ("authorization", "x-npsp-signature") if k in headers}
        text = json.dumps({**first, **headers}) if reply.echo else reply.text
        return web.Response(status=reply.status, headers=reply.headers, text=text)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        ssl_context = self.tls.server_context() if self.tls else None
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release.set()
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("webhook-certs"))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as peer:
        yield peer


@pytest.fixture
async def tls_receiver(certs: Certs) -> AsyncIterator[Receiver]:
    async with Receiver(certs) as peer:
        yield peer


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, Path]:
    key, auth = tmp_path / "webhook-key", tmp_path / "webhook-auth"
    key.write_text(KEY + "\n")
    auth.write_text(AUTH + "\n")
    return {"key": key, "auth": auth}


NotifierFactory = Callable[..., WebhookNotifier]


@pytest.fixture
async def make_notifier() -> AsyncIterator[NotifierFactory]:
    made: list[WebhookNotifier] = []

    def make(
        url: str, clock: Callable[[], float] = lambda: NOW, **endpoint: Any
    ) -> WebhookNotifier:
        settings = Settings.model_validate(
            {"endpoints": {"ha-noi-ticketing": {"url": url, "timeout": "2s", **endpoint}}}
        )
        notifier = WebhookNotifier(
            settings, status_page_url="https://npsp.dvc.example/status", clock=clock
        )
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        await notifier.aclose()


def message(key: str = "3f9c2a0d5b7e41c8a6d2e9f0b1c3a5d7", **fields: Any) -> Message:
    values: dict[str, Any] = {
        "key": key,
        "channel": "webhook",
        "to": "ha-noi-ticketing",
        "subject": SUBJECT,
        "text": TEXT,
    }
    values.update(fields)
    return Message(**values)


def docs_verify() -> Callable[[bytes, dict[str, str], bytes, float], bool]:
    """The ``verify`` function of docs/webhook.md, run as written there."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/webhook.md has one Python block: the receiver's check"
    scope: dict[str, Any] = {}
    exec(blocks[0], scope)  # our own documentation
    verify: Callable[[bytes, dict[str, str], bytes, float], bool] = scope["verify"]
    return verify


# ----- the request -------------------------------------------------------------------------


async def test_body_is_the_documented_versioned_json(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(receiver.url, headers={"X-Tenant": "ha-noi"})
    delivery = await notifier.send(message())
    assert delivery.provider_id is None  # the receiver gave no X-Request-Id
    [got] = receiver.got
    assert got.path == "/hooks/npsp"
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.headers["idempotency-key"] == "3f9c2a0d5b7e41c8a6d2e9f0b1c3a5d7"
    assert got.headers["user-agent"] == "npsp-monitor-webhook/1"
    assert got.headers["x-tenant"] == "ha-noi"
    assert "x-npsp-signature" not in got.headers  # no secret configured: not signed
    assert "authorization" not in got.headers
    assert "cookie" not in got.headers
    body = json.loads(got.body.decode("utf-8"))
    assert body == {
        "version": PAYLOAD_VERSION,
        "id": "3f9c2a0d5b7e41c8a6d2e9f0b1c3a5d7",
        "thread_id": "3f9c2a0d5b7e41c8a6d2e9f0b1c3a5d7",
        "follow_up": False,
        "receiver": "ha-noi-ticketing",
        "language": "vi",
        "subject": SUBJECT,
        "text": TEXT,
        "sent_at": "2026-12-06T01:20:00Z",
        "sender": "npsp-monitor",
        "status_page_url": "https://npsp.dvc.example/status",
    }
    assert PAYLOAD_VERSION == "1"
    # Every field of the body is in the documentation's table, and the example is this shape.
    documented = DOCS.read_text(encoding="utf-8")
    assert all(f"| `{name}`" in documented or f"`{name}`" in documented for name in body)
    example = re.search(r"```json\n(.*?)```", documented, re.S)
    assert example is not None
    # The example is an alert's: a notice's body is the same without its alert fields.
    assert set(json.loads(example.group(1))) == set(body) | {"kind", "alerts", "more"}


async def test_a_follow_up_names_its_thread_and_keeps_the_language(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(receiver.url)
    await notifier.send(message("later-key", thread_key="first-key", language="en"))
    body = json.loads(receiver.got[0].body)
    assert (body["id"], body["thread_id"], body["follow_up"]) == ("later-key", "first-key", True)
    assert body["language"] == "en"


async def test_signature_verifies_with_the_key_and_the_documented_check(
    receiver: Receiver, make_notifier: NotifierFactory, secret_files: dict[str, Path]
) -> None:
    notifier = make_notifier(receiver.url, secret={"file": str(secret_files["key"])})
    await notifier.send(message())
    [got] = receiver.got
    assert got.headers["x-npsp-timestamp"] == str(int(NOW))
    signature = got.headers["x-npsp-signature"]
    assert re.fullmatch(r"sha256=[0-9a-f]{64}", signature)
    # A receiver with the key, by hand: HMAC-SHA256 over "<timestamp>." + the exact body.
    expected = hmac.new(KEY.encode(), f"{int(NOW)}.".encode() + got.body, hashlib.sha256)
    assert signature == "sha256=" + expected.hexdigest()
    assert signature == sign(KEY.encode(), int(NOW), got.body)
    verify = docs_verify()
    assert verify(KEY.encode(), got.headers, got.body, NOW + 10)
    # Anything else fails: another key, a changed body, a replay later, a moved timestamp.
    assert not verify(b"another key", got.headers, got.body, NOW)
    assert not verify(KEY.encode(), got.headers, got.body.replace(b"08:12", b"08:13"), NOW)
    assert not verify(KEY.encode(), got.headers, got.body, NOW + 3600)
    moved = {**got.headers, "x-npsp-timestamp": str(int(NOW) + 60)}
    assert not verify(KEY.encode(), moved, got.body, NOW + 60)
    assert not verify(KEY.encode(), {}, got.body, NOW)
    assert KEY not in json.dumps(got.headers) + got.body.decode()


async def test_https_with_the_configured_ca_and_authorization(
    tls_receiver: Receiver,
    make_notifier: NotifierFactory,
    certs: Certs,
    secret_files: dict[str, Path],
) -> None:
    notifier = make_notifier(
        tls_receiver.url,
        ca_file=str(certs.ca_file),
        authorization={"file": str(secret_files["auth"])},
    )
    tls_receiver.replies.append(Reply(202, headers={"X-Request-Id": "req-77"}))
    delivery = await notifier.send(message())
    assert delivery.provider_id == "req-77"
    assert tls_receiver.got[0].headers["authorization"] == AUTH


async def test_an_untrusted_certificate_is_a_permanent_failure(
    tls_receiver: Receiver, make_notifier: NotifierFactory, certs: Certs
) -> None:
    notifier = make_notifier(tls_receiver.url, ca_file=str(certs.other_ca_file))
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    assert info.value.permanent and not info.value.maybe_delivered
    assert "not trusted" in info.value.reason and "ca_file" in info.value.reason
    assert tls_receiver.got == []


# ----- how answers are classed ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_delivered(
    receiver: Receiver, make_notifier: NotifierFactory, status: int
) -> None:
    receiver.replies.append(Reply(status, text=""))
    await make_notifier(receiver.url).send(message())
    assert len(receiver.got) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_other_4xx_is_permanent(
    receiver: Receiver, make_notifier: NotifierFactory, status: int
) -> None:
    receiver.replies.append(Reply(status, text=f"refused: bad request {status}"))
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message())
    error = info.value
    assert error.permanent and not error.maybe_delivered and error.retry_after is None
    assert f"HTTP {status}" in error.reason and f"bad request {status}" in error.reason
    assert "ha-noi-ticketing" in error.reason
    assert "/hooks/npsp" not in error.reason  # the path (or a token in it) is not told


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_5xx_and_408_are_retried(
    receiver: Receiver, make_notifier: NotifierFactory, status: int
) -> None:
    receiver.replies.append(Reply(status, text="busy"))
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message())
    error = info.value
    assert not error.permanent and not error.maybe_delivered and error.retry_after is None
    assert f"HTTP {status}: busy" in error.reason


async def test_429_and_503_honour_retry_after_seconds_or_date(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    notifier = make_notifier(receiver.url)
    receiver.replies.append(Reply(429, headers={"Retry-After": "120"}))
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    assert not info.value.permanent and info.value.retry_after == 120.0
    # An HTTP date, counted from the notifier's clock (NOW = Sun, 06 Dec 2026 01:20:00 GMT).
    receiver.replies.append(Reply(503, headers={"Retry-After": "Sun, 06 Dec 2026 01:25:00 GMT"}))
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    assert not info.value.permanent and info.value.retry_after == 300.0
    receiver.replies.append(Reply(429, headers={"Retry-After": "soon"}))
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    assert not info.value.permanent and info.value.retry_after is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_refused_not_followed(
    receiver: Receiver, make_notifier: NotifierFactory, status: int
) -> None:
    elsewhere = f"http://127.0.0.1:{receiver.port}/elsewhere"
    receiver.replies.append(Reply(status, headers={"Location": elsewhere}))
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message())
    assert info.value.permanent
    assert "redirect" in info.value.reason and "endpoints.ha-noi-ticketing.url" in info.value.reason
    assert [g.path for g in receiver.got] == ["/hooks/npsp"]  # /elsewhere never asked


async def test_connection_refused_is_retried_and_certainly_not_delivered(
    make_notifier: NotifierFactory,
) -> None:
    port = free_port()
    notifier = make_notifier(f"http://127.0.0.1:{port}/hooks/npsp?token=abc")
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    error = info.value
    assert not error.permanent and not error.maybe_delivered
    assert f"127.0.0.1:{port}" in error.reason and "cannot reach" in error.reason
    assert "token=abc" not in error.reason and "/hooks" not in error.reason


async def test_no_connection_within_the_timeout_is_not_delivered(
    make_notifier: NotifierFactory,
) -> None:
    with unanswered_port() as port:
        notifier = make_notifier(f"http://127.0.0.1:{port}/hooks/npsp", timeout="300ms")
        with pytest.raises(NotifyError) as info:
            await notifier.send(message())
    assert not info.value.permanent and not info.value.maybe_delivered
    assert "within 0.3s" in info.value.reason


async def test_a_timeout_after_the_request_was_written_may_be_delivered(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    receiver.replies.append(Reply(hang=True))
    notifier = make_notifier(receiver.url, timeout="300ms")
    with pytest.raises(NotifyError) as info:
        await notifier.send(message())
    error = info.value
    assert not error.permanent and error.maybe_delivered
    assert "within 0.3s" in error.reason and "may have it" in error.reason
    assert len(receiver.got) == 1  # it did arrive: hence "maybe"


async def test_a_connection_dropped_after_the_request_may_be_delivered(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    receiver.replies.append(Reply(drop=True))
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message())
    assert not info.value.permanent and info.value.maybe_delivered
    assert len(receiver.got) == 1


async def test_an_unknown_endpoint_is_permanent(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message(to="gone"))
    assert info.value.permanent and "'gone'" in info.value.reason
    assert receiver.got == []


async def test_a_long_answer_is_read_only_in_part(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    receiver.replies.append(Reply(400, text="x" * 5_000_000))
    with pytest.raises(NotifyError) as info:
        await make_notifier(receiver.url).send(message())
    assert info.value.permanent and len(info.value.reason) < 400


async def test_secrets_never_in_errors_or_logs(
    receiver: Receiver,
    tls_receiver: Receiver,
    make_notifier: NotifierFactory,
    certs: Certs,
    secret_files: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = {"secret": {"file": str(secret_files["key"])}}
    # A careless receiver that echoes the request headers (Authorization, the signature).
    tls = make_notifier(
        tls_receiver.url,
        ca_file=str(certs.ca_file),
        authorization={"file": str(secret_files["auth"])},
        **secrets,
    )
    plain = make_notifier(receiver.url, **secrets)
    errors: list[NotifyError] = []
    for notifier, peer, reply in (
        (tls, tls_receiver, Reply(400, echo=True)),
        (tls, tls_receiver, Reply(503, echo=True)),
        (plain, receiver, Reply(401, echo=True)),
        (plain, receiver, Reply(302, headers={"Location": f"/x?{KEY}"})),
        # The authorization astride the cut of the reason: no part of it stays.
        (tls, tls_receiver, Reply(500, text="x" * 185 + AUTH)),
    ):
        peer.replies.append(reply)
        with pytest.raises(NotifyError) as info:
            await notifier.send(message())
        errors.append(info.value)
    assert '"authorization": "********"' in errors[0].reason  # the echo is there, redacted
    assert errors[-1].reason.endswith("x" * 185 + "********")
    tls_receiver.replies.append(Reply(200))
    await tls.send(message())
    texts = [caplog.text, repr(tls), repr(plain), *(f"{e} {e.reason!r}" for e in errors)]
    texts += [str(record.args) for record in caplog.records]
    for text in texts:
        assert KEY not in text
        assert AUTH not in text and "t0ken-do-not-leak" not in text


# ----- config ----------------------------------------------------------------------------------

CONFIG = """\
vantage: gw-test
listen: 127.0.0.1:0
state_db: state.db
channels:
  webhook:
    endpoints:
      ha-noi-ticketing:
        url: {url}
agencies:
  - id: ha-noi
    kind: province
    name_vi: Thành phố Hà Nội
    name_en: Ha Noi
    code: HN
    contacts:
      - name: Hệ thống tiếp nhận sự cố
        role: technical-admin
        webhook: {endpoint}
        channels: [webhook]
    systems:
      - id: secure-server
        kind: secure-server
        name: Máy chủ bảo mật
        checks:
          - {{id: tcp, kind: tcp, host: mcbm.ha-noi.dvc.example, port: 443}}
"""


def config_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "npsp.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(i) for i in info.value.issues]


def test_a_contact_naming_a_configured_endpoint_loads(tmp_path: Path) -> None:
    path = tmp_path / "npsp.yaml"
    path.write_text(
        CONFIG.format(url="https://tickets.ha-noi.dvc.example/h", endpoint="ha-noi-ticketing")
    )
    config = load_config(path)
    assert config.agencies[0].contacts[0].webhook == "ha-noi-ticketing"
    assert config.channels.webhook is not None


def test_a_contact_naming_an_unknown_endpoint_is_refused(tmp_path: Path) -> None:
    text = CONFIG.format(url="https://tickets.ha-noi.dvc.example/h", endpoint="ha-noi-other")
    assert config_errors(tmp_path, text) == [
        f"{tmp_path / 'npsp.yaml'}:18: agencies[0].contacts[0].webhook: unknown webhook"
        " endpoint 'ha-noi-other' (channels.webhook.endpoints has: ha-noi-ticketing)"
    ]


def test_a_webhook_contact_without_the_channel_configured_is_refused(tmp_path: Path) -> None:
    text = CONFIG.format(url="https://x.example/h", endpoint="ha-noi-ticketing")
    text = re.sub(r"channels:\n  webhook:\n    endpoints:\n.*\n.*\n", "", text)
    found = config_errors(tmp_path, text)
    assert any(
        "agencies[0].contacts[0].channels: channel webhook is not configured" in e for e in found
    )
    assert any(
        "agencies[0].contacts[0].webhook: webhook 'ha-noi-ticketing' is not" in e for e in found
    )


def test_the_webhook_channel_needs_an_endpoint_name(tmp_path: Path) -> None:
    text = CONFIG.format(url="https://x.example/h", endpoint="ha-noi-ticketing")
    text = text.replace("        webhook: ha-noi-ticketing\n", "")
    assert any(
        "agencies[0].contacts[0].channels: channel webhook needs webhook" in e
        for e in config_errors(tmp_path, text)
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://tickets.ha-noi.dvc.example/h", "must be http:// or https://"),
        ("https://user:pw@tickets.ha-noi.dvc.example/h", "user:password@"),
        ("https://tickets.ha-noi.dvc.example/h#frag", "no #fragment"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field(tmp_path: Path, url: str, words: str) -> None:
    found = config_errors(tmp_path, CONFIG.format(url=url, endpoint="ha-noi-ticketing"))
    assert len(found) == 1
    assert ":8: channels.webhook.endpoints.ha-noi-ticketing.url: " in found[0]
    assert words in found[0]
    assert "pw@" not in found[0] or "user:pw" in url  # the message may quote the bad url


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ({"url": "http://h.example/", "authorization": {"file": "a"}}, "in clear"),
        ({"url": "http://h.example/", "ca_file": "/ca.pem"}, "not https"),
        ({"url": "https://h.example/", "headers": {"Authorization": "x"}}, "credential"),
        ({"url": "https://h.example/", "headers": {"X-NPSP-Signature": "x"}}, "set by the channel"),
        ({"url": "https://h.example/", "headers": {"X-A": "a\r\nX-B: b"}}, "line break"),
        ({"url": "https://h.example/", "timeout": "45s"}, "at most 30s"),
        ({"url": "https://h.example/", "secret": {"file": "k", "env": "K"}}, "exactly one"),
    ],
)
def test_endpoint_settings_are_checked(endpoint: dict[str, Any], words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Settings.model_validate({"endpoints": {"ha-noi-ticketing": endpoint}})
    assert words in str(info.value)


def test_a_missing_secret_file_stops_the_start_naming_the_field(tmp_path: Path) -> None:
    settings = ChannelSettings.model_validate(
        {
            "webhook": {
                "endpoints": {
                    "ha-noi-ticketing": {
                        "url": "https://h.example/",
                        "secret": {"file": str(tmp_path / "absent")},
                    }
                }
            }
        }
    )
    with pytest.raises(ValueError, match="cannot read secret file") as info:
        CHANNELS["webhook"](settings, ChannelEnv())
    assert str(info.value).startswith("webhook.endpoints.ha-noi-ticketing.secret: ")


def test_an_unreadable_ca_file_stops_the_start_naming_the_field(tmp_path: Path) -> None:
    settings = ChannelSettings.model_validate(
        {
            "webhook": {
                "endpoints": {
                    "h": {"url": "https://h.example/", "ca_file": str(tmp_path / "absent.pem")}
                }
            }
        }
    )
    with pytest.raises(ValueError, match=r"^webhook\.endpoints\.h\.ca_file: cannot load"):
        CHANNELS["webhook"](settings, ChannelEnv())


def test_the_channel_is_built_only_when_configured() -> None:
    assert CHANNELS["webhook"](ChannelSettings(), ChannelEnv()) is None


# ----- through the outbox ----------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "state.db")
    yield opened
    await opened.close()


async def test_through_the_outbox_two_503_then_delivered_once_with_one_key(
    store: Store, receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    now = [NOW]
    clock = lambda: now[0]  # noqa: E731
    outbox = Outbox(
        store,
        OutboxSettings(max_attempts=5, backoff_base="10s", backoff_max="10m"),
        clock=clock,
        jitter=lambda: 0.5,  # the backoff exactly: 10 s, then 20 s
    )
    notifier = make_notifier(receiver.url, clock=clock)
    worker = OutboxWorker(outbox, notifier)
    item = OutboxItem(
        key="digest-7f1c",
        channel="webhook",
        address="ha-noi-ticketing",
        person="ha-noi/0",
        subject=SUBJECT,
        text=TEXT,
        short="SMS text",
        html=None,
        thread_key="digest-7f1c",
        language="vi",
        fallbacks=(("email", "qtkt@ha-noi.dvc.example"),),
    )
    assert await outbox.enqueue([item]) == 1
    assert await outbox.enqueue([item]) == 0  # queued once, whatever happens
    receiver.replies += [
        Reply(503, text="maintenance"),
        Reply(503, headers={"Retry-After": "120"}, text="still"),
        Reply(200),
    ]
    assert await worker.run_once()  # attempt 1: 503, back off 10 s
    assert not await worker.run_once()
    now[0] += 9
    assert not await worker.run_once()
    now[0] += 1
    assert await worker.run_once()  # attempt 2: 503 with Retry-After: 120 beats the 20 s
    now[0] += 119
    assert not await worker.run_once()
    now[0] += 1
    assert await worker.run_once()  # attempt 3: accepted
    now[0] += 3600
    assert not await worker.run_once()  # delivered once: nothing more to send

    assert len(receiver.got) == 3
    assert {g.headers["idempotency-key"] for g in receiver.got} == {"digest-7f1c"}
    bodies = [json.loads(g.body) for g in receiver.got]
    assert {b["id"] for b in bodies} == {"digest-7f1c"}
    assert [b["text"] for b in bodies] == [TEXT] * 3  # the full text, not the SMS one
    assert [b["sent_at"] for b in bodies] == [
        "2026-12-06T01:20:00Z",
        "2026-12-06T01:20:10Z",
        "2026-12-06T01:22:10Z",
    ]
    rows = await store.transact(
        lambda db: db.execute("SELECT channel, status, attempts FROM outbox").fetchall()
    )
    assert [tuple(r) for r in rows] == [("webhook", "sent", 3)]  # and no fallback queued


async def test_through_the_outbox_a_4xx_falls_back_to_the_next_channel(
    store: Store, receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    outbox = Outbox(store, OutboxSettings(), clock=lambda: NOW, jitter=lambda: 0.5)
    worker = OutboxWorker(outbox, make_notifier(receiver.url))
    item = OutboxItem(
        "n-1", "webhook", "ha-noi-ticketing", "ha-noi/0", SUBJECT, TEXT, "s", None, None, "vi",
        (("email", "qtkt@ha-noi.dvc.example"),),
    )  # fmt: skip
    await outbox.enqueue([item])
    receiver.replies.append(Reply(404, text="no such hook"))
    assert await worker.run_once()
    rows = await store.transact(
        lambda db: db.execute("SELECT key, channel, status FROM outbox ORDER BY id").fetchall()
    )
    assert [tuple(r) for r in rows] == [
        ("n-1", "webhook", "failed"),
        ("n-1>email", "email", "pending"),
    ]
    assert len(receiver.got) == 1


def alert_world(
    tmp_path: Path, store: Store, url: str, channels: str = "[webhook]"
) -> tuple[Any, Outbox, AlertPipeline, list[float]]:
    """A config with Hà Nội's ticketing system (on ``channels``, e-mail first when listed) and
    operations on e-mail; its outbox and alert pipeline on a clock the test moves."""
    path = tmp_path / "npsp.yaml"
    text = CONFIG.format(url=url, endpoint="ha-noi-ticketing").replace(
        "channels:\n",
        "channels:\n  email: {host: 127.0.0.1, port: 25, security: none,"
        " from_addr: giamsat@npsp.dvc.example}\n",
    )
    text = text.replace(
        "        channels: [webhook]",
        f"        email: sc@ha-noi.dvc.example\n        channels: {channels}",
    )
    operations = "alerting:\n  operations:\n    - {name: VPCP, email: ops@vpcp.dvc.example}\n"
    path.write_text(text + operations)
    config = load_config(path)
    now = [NOW]
    outbox = Outbox(store, config.alerting.outbox, clock=lambda: now[0], jitter=lambda: 0.5)
    pipeline = AlertPipeline(
        config.alerting, Registry.from_config(config), outbox, clock=lambda: now[0]
    )
    return config, outbox, pipeline, now


async def test_an_alert_digest_carries_its_alerts_as_data_and_an_e_mail_does_not(
    tmp_path: Path, store: Store, receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    """A system going down and coming back, through the alert pipeline and the outbox to the
    webhook: each body names the agency, system, state, status and times as fields (a ticketing
    system need not read the Vietnamese text), and the outbox keeps no such copy on rows no
    webhook can send."""
    _config, outbox, pipeline, now = alert_world(tmp_path, store, receiver.url)
    worker = OutboxWorker(outbox, make_notifier(receiver.url, clock=lambda: now[0]))
    down_at = now[0]
    pipeline.on_events(
        [Event(down_at, "ha-noi", "secure-server", State.UP, State.DOWN, "refused", "gw-test")]
    )
    now[0] += 31  # past group_wait
    await pipeline.tick()
    assert await worker.run_once()
    pipeline.on_events(
        [Event(now[0], "ha-noi", "secure-server", State.DOWN, State.UP, "ok", "gw-test")]
    )
    now[0] += 301  # past group_interval
    await pipeline.tick()
    assert await worker.run_once()
    bodies = [json.loads(g.body) for g in receiver.got]
    assert [(b["kind"], len(b["alerts"]), b["more"]) for b in bodies] == [
        ("firing", 1, 0),
        ("resolved", 1, 0),
    ]
    first, last = (b["alerts"][0] for b in bodies)
    assert {k: first[k] for k in ("agency", "system", "name", "state", "status")} == {
        "agency": "ha-noi",
        "system": "secure-server",
        "name": "Máy chủ bảo mật",
        "state": "down",
        "status": "firing",
    }
    assert first["since"] == "2026-12-06T01:20:00Z" and first["resolved_at"] is None
    assert first["reason"] == "refused" and first["incident"] == last["incident"]
    assert last["status"] == "resolved" and last["resolved_at"] is not None
    assert bodies[1]["thread_id"] == bodies[0]["id"]  # one ticket: closed by the recovery
    # The fields are those docs/webhook.md documents, and every one of them is in its table.
    documented = DOCS.read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", documented, re.S)
    assert example is not None
    assert set(first) == set(json.loads(example.group(1))["alerts"][0])
    assert all(f"`{name}`" in documented for name in first)
    # The operations team's e-mails of the same digests carry no copy of the data.
    rows = await store.transact(
        lambda db: db.execute("SELECT channel, facts FROM outbox ORDER BY id").fetchall()
    )
    assert {channel for channel, _ in rows} >= {"webhook", "email"}
    assert all((facts is not None) == (channel == "webhook") for channel, facts in rows)


class RefusingMail:
    """The e-mail channel's outermost seam: every address refused for good (a 550 at RCPT)."""

    channel = "email"

    async def send(self, message: Message) -> Any:
        raise NotifyError("550 no such mailbox", permanent=True, code="550")

    async def aclose(self) -> None:
        return None


async def test_an_alert_falling_back_to_the_webhook_still_carries_its_alerts(
    tmp_path: Path, store: Store, receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    """A contact on e-mail whose webhook is only its fallback: the mailbox refuses for good,
    the digest goes to the webhook, and its body still has the alert as data (the e-mail row
    kept it for that)."""
    _config, outbox, pipeline, now = alert_world(tmp_path, store, receiver.url, channels="[email]")
    mail = OutboxWorker(outbox, RefusingMail())  # type: ignore[arg-type]
    hook = OutboxWorker(outbox, make_notifier(receiver.url, clock=lambda: now[0]))
    pipeline.on_events(
        [Event(now[0], "ha-noi", "secure-server", State.UP, State.DOWN, "refused", "gw-test")]
    )
    now[0] += 31
    await pipeline.tick()
    while await mail.run_once():
        pass
    assert await hook.run_once()
    [got] = receiver.got
    body = json.loads(got.body)
    assert body["id"].endswith(">webhook")  # the fallback of the e-mail
    assert [(a["agency"], a["system"], a["state"]) for a in body["alerts"]] == [
        ("ha-noi", "secure-server", "down")
    ]


def test_a_storm_lists_as_many_alerts_as_its_text_and_counts_the_rest() -> None:
    """A receiver's size limit must not turn a storm away (a 413 is permanent): the body lists
    the first MAX_LINES alerts, as the text does, and says how many more there were."""
    alerts = tuple(
        Alert(
            key=f"ag/s{i}", agency="ag", system=f"s{i}", name=f"S{i}", agency_name_vi="A",
            agency_name_en="A", agency_kind="province", system_kind="one-stop",
            state=State.DOWN, since=NOW, reason="refused", severity="critical",
            incident=f"ag/s{i}@{int(NOW)}",
        )
        for i in range(MAX_LINES + 7)
    )  # fmt: skip
    recipient = Recipient("ag/0", "SC", "webhook", "ha-noi-ticketing", "vi")
    digest = Digest(recipient, "firing", alerts, (), frozenset(), "k", None)
    facts = digest_facts(digest)
    assert len(facts["alerts"]) == MAX_LINES and facts["more"] == 7
    assert facts["alerts"][0]["system"] == "s0"


def test_a_contact_on_webhook_is_routed_to_its_endpoint_with_fallbacks() -> None:
    contact = Contact(
        name="Hệ thống tiếp nhận sự cố",
        role="technical-admin",
        email="qtkt@ha-noi.dvc.example",
        webhook="ha-noi-ticketing",
        channels=["webhook", "email"],
    )
    first, second = recipients_of("ha-noi/0", contact)
    assert (first.channel, first.address) == ("webhook", "ha-noi-ticketing")
    assert first.fallbacks == (("email", "qtkt@ha-noi.dvc.example"),)
    assert first.group_key == "webhook|ha-noi-ticketing"  # one digest per endpoint
    assert (second.channel, second.fallbacks) == ("email", ())
    # Not listed but named: the webhook is a fallback of the channels listed.
    listed_email = contact.model_copy(update={"channels": ["email"]})
    [only] = recipients_of("ha-noi/0", listed_email)
    assert only.fallbacks == (("webhook", "ha-noi-ticketing"),)


async def test_each_attempt_has_its_own_connection(
    receiver: Receiver, make_notifier: NotifierFactory
) -> None:
    """No keep-alive: a pooled connection the receiver closed while idle would fail a send."""
    notifier = make_notifier(receiver.url)
    for key in ("a", "b", "c"):
        await notifier.send(message(key))
    peers = [g.peer for g in receiver.got]
    assert None not in peers and len(set(map(str, peers))) == 3


def test_the_documented_config_example_is_valid() -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    example = yaml.safe_load(block)
    settings = ChannelSettings.model_validate(example["channels"])
    assert settings.webhook is not None and list(settings.webhook.endpoints) == ["ha-noi-ticketing"]
    [contact] = example["agencies"][0]["contacts"]
    assert Contact.model_validate(contact).webhook == "ha-noi-ticketing"
