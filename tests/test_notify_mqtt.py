"""MQTT publisher and the inbox channel, against a real Mosquitto broker started by each test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pydantic
import pytest
import trustme

from monitor.broker import MqttPublisher, Settings
from notifiers.base import Message, NotifyError
from notifiers.inbox import InboxNotifier
from tests.peers import wait_until
from tests.peers.mosquitto import Mosquitto, available

pytestmark = pytest.mark.skipif(not available(), reason="mosquitto is not installed")

USER, PASSWORD = "npsp-monitor", "mqtt-secret-Hq4vZ8nB"  # made up; searched for in logs


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    async with Mosquitto(tmp_path) as server:
        yield server


@pytest.fixture
async def make_publisher(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., MqttPublisher]]:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", PASSWORD)
    made: list[MqttPublisher] = []

    def make(port: int, **overrides: Any) -> MqttPublisher:
        fields: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "client_id": f"npsp-monitor-test-{uuid.uuid4().hex[:8]}",
            "timeout": "3s",
            "reconnect_max": "200ms",
        }
        fields.update(overrides)
        publisher = MqttPublisher(Settings.model_validate(fields))
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        await publisher.aclose()


@contextlib.asynccontextmanager
async def subscriber(port: int, topic: str, **options: Any) -> AsyncIterator[aiomqtt.Client]:
    """A separate client (the portal's side), subscribed to ``topic`` with QoS 1."""
    client = aiomqtt.Client(
        "127.0.0.1", port, identifier=f"portal-test-{uuid.uuid4().hex[:8]}", **options
    )
    async with client:
        await client.subscribe(topic, qos=1)
        yield client


async def next_message(client: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    async with asyncio.timeout(timeout):
        return await anext(client.messages)


async def started(publisher: MqttPublisher) -> MqttPublisher:
    await publisher.start()
    await wait_until(lambda: publisher.connected, 10.0, "publisher connected")
    return publisher


def inbox_message(account: str = "qtkt.sotttt-hanoi") -> Message:
    return Message(
        key="inc-42.inbox.qtkt",
        channel="inbox",
        to=account,
        subject="Mất kết nối: Máy chủ bảo mật – Sở TT&TT Hà Nội",
        text="Máy chủ bảo mật mất kết nối từ 10:32 ngày 29/11/2026.",
        thread_key="inc-42.open",
    )


# --------------------------------------------------------------------------------------------
# Delivered


async def test_inbox_notification_reaches_a_subscriber_with_qos1_without_content(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = await started(make_publisher(broker.port))
    inbox = InboxNotifier(publisher, "https://npsp.dvc.example/status")
    async with subscriber(broker.port, "npsp/inbox/+") as portal:
        delivery = await inbox.send(inbox_message())
        got = await next_message(portal)
    assert delivery.provider_id == "inc-42.inbox.qtkt"
    assert str(got.topic) == "npsp/inbox/qtkt.sotttt-hanoi"
    assert got.qos == 1 and got.retain is False
    assert isinstance(got.payload, bytes)
    # That there is a message and where to read it (after logging in), never what it says.
    assert json.loads(got.payload.decode("utf-8")) == {
        "key": "inc-42.inbox.qtkt",
        "notification": "Bạn có thông báo mới",
        "language": "vi",
        "link": "https://npsp.dvc.example/inbox",
        "api": "https://npsp.dvc.example/api/v1/inbox",
    }
    assert "Mất kết nối".encode() not in got.payload
    assert "Bạn có".encode() in got.payload  # ensure_ascii=False: UTF-8, not \\u escapes


async def test_retained_status_reaches_a_later_subscriber(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = await started(make_publisher(broker.port, topic_prefix="gw1/npsp/"))
    status = json.dumps({"state": "DOWN", "since": "2026-11-29T10:32:00+07:00"}).encode()
    await publisher.publish("status/ha-noi/secure-server", status, qos=1, retain=True)
    # subscribes only now: the broker hands over the retained message
    async with subscriber(broker.port, "gw1/npsp/status/#") as dashboard:
        got = await next_message(dashboard)
    assert str(got.topic) == "gw1/npsp/status/ha-noi/secure-server"
    assert got.retain is True and got.payload == status


async def test_reconnects_by_itself_after_a_broker_restart(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = await started(make_publisher(broker.port))
    inbox = InboxNotifier(publisher)
    await broker.stop()
    await wait_until(lambda: not publisher.connected, 10.0, "publisher noticed the broker left")
    with pytest.raises(NotifyError) as caught:
        await inbox.send(inbox_message())
    assert caught.value.permanent is False
    assert "not connected" in caught.value.reason

    await broker.start()
    await wait_until(lambda: publisher.connected, 10.0, "publisher reconnected")
    async with subscriber(broker.port, "npsp/inbox/#") as portal:
        await inbox.send(inbox_message())
        got = await next_message(portal)
    assert isinstance(got.payload, bytes)
    assert json.loads(got.payload)["key"] == "inc-42.inbox.qtkt"


async def test_connection_lost_while_waiting_for_puback_fails_fast(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = await started(make_publisher(broker.port, timeout="30s"))
    broker.pause()  # the PUBLISH is written, the PUBACK never comes
    publish = asyncio.create_task(publisher.publish("status/a/b", b"{}"))
    done, _ = await asyncio.wait({publish}, timeout=0.2)
    assert not done, "a frozen broker cannot have acknowledged"
    await broker.kill()
    async with asyncio.timeout(5):  # far less than the 30 s PUBACK timeout
        with pytest.raises(NotifyError) as caught:
            await publish
    assert caught.value.permanent is False
    assert "connection lost before the broker acknowledged" in caught.value.reason
    assert not publisher.connected


async def test_broker_down_at_start_then_up(
    tmp_path: Path, make_publisher: Callable[..., MqttPublisher]
) -> None:
    broker = Mosquitto(tmp_path)
    publisher = make_publisher(broker.port)
    await publisher.start()  # returns at once although nothing listens
    await wait_until(lambda: publisher.last_error is not None, 10.0, "first attempt failed")
    assert not publisher.connected
    async with broker:
        await wait_until(lambda: publisher.connected, 10.0, "publisher connected")
        await publisher.publish("status/x/y", b"{}")


async def test_publish_before_start_is_a_retry(
    make_publisher: Callable[..., MqttPublisher],
) -> None:
    publisher = make_publisher(1883)
    with pytest.raises(NotifyError) as caught:
        await publisher.publish("status/a/b", b"{}")
    assert caught.value.permanent is False


async def test_password_auth(tmp_path: Path, make_publisher: Callable[..., MqttPublisher]) -> None:
    async with Mosquitto(tmp_path, users={USER: PASSWORD}) as secured:
        publisher = await started(
            make_publisher(secured.port, username=USER, password={"env": "TEST_MQTT_PASSWORD"})
        )
        async with subscriber(
            secured.port, "npsp/inbox/#", username=USER, password=PASSWORD
        ) as portal:
            await InboxNotifier(publisher).send(inbox_message())
            got = await next_message(portal)
        assert got.qos == 1


async def test_wrong_password_never_connects_and_never_leaks(
    tmp_path: Path,
    make_publisher: Callable[..., MqttPublisher],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "mqtt-wrong-Tt5pWc2L"
    caplog.set_level(logging.DEBUG)
    async with Mosquitto(tmp_path, users={USER: PASSWORD}) as secured:
        monkeypatch.setenv("TEST_MQTT_PASSWORD", wrong)
        publisher = make_publisher(
            secured.port, username=USER, password={"env": "TEST_MQTT_PASSWORD"}
        )
        await publisher.start()
        await wait_until(lambda: publisher.last_error is not None, 10.0, "refused once")
        assert not publisher.connected
        assert "authori" in (publisher.last_error or "").lower()  # "Not authorized"
        with pytest.raises(NotifyError) as caught:
            await publisher.publish("status/a/b", b"{}")
        error = caught.value
        assert error.permanent is False
        for text in (str(error), repr(error), publisher.last_error or "", caplog.text):
            assert wrong not in text
            assert PASSWORD not in text
        assert any("mqtt" in r.name and r.levelno == logging.WARNING for r in caplog.records)


async def test_tls_with_our_ca(
    tmp_path: Path, make_publisher: Callable[..., MqttPublisher]
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    leaf.private_key_pem.write_to_path(str(key_file))
    for i, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert_file), append=i > 0)
    async with Mosquitto(tmp_path, tls=(ca_file, cert_file, key_file)) as secured:
        publisher = await started(make_publisher(secured.port, tls=True, ca_file=str(ca_file)))
        await publisher.publish("status/a/b", b"{}", retain=True)
        # and a CA that did not sign the broker's certificate never connects
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        untrusting = make_publisher(secured.port, tls=True, ca_file=str(other))
        await untrusting.start()
        await wait_until(lambda: untrusting.last_error is not None, 10.0, "TLS refused once")
        assert not untrusting.connected
        assert "certificate" in (untrusting.last_error or "").lower()


# --------------------------------------------------------------------------------------------
# Permanent failures and settings


@pytest.mark.parametrize("account", ["", "a/b", "a+b", "#", "qtkt#1", "a\x00b", "\udcff"])
async def test_invalid_account_is_permanent(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher], account: str
) -> None:
    publisher = await started(make_publisher(broker.port))
    with pytest.raises(NotifyError) as caught:
        await InboxNotifier(publisher).send(inbox_message(account))
    assert caught.value.permanent is True


async def test_aclose_disconnects_and_stops_reconnecting(
    broker: Mosquitto, make_publisher: Callable[..., MqttPublisher]
) -> None:
    publisher = await started(make_publisher(broker.port))
    await publisher.aclose()
    assert not publisher.connected
    with pytest.raises(NotifyError):
        await publisher.publish("status/a/b", b"{}")
    await publisher.aclose()  # twice is fine


def test_settings_rules() -> None:
    Settings.model_validate({"host": "broker"})
    with pytest.raises(pydantic.ValidationError, match="needs a username"):
        Settings.model_validate({"host": "b", "password": {"env": "X"}})
    with pytest.raises(pydantic.ValidationError, match="tls is false"):
        Settings.model_validate({"host": "b", "ca_file": "/etc/ssl/certs/ca-certificates.crt"})
    with pytest.raises(pydantic.ValidationError, match="topic_prefix"):
        Settings.model_validate({"host": "b", "topic_prefix": "npsp/#/"})
    assert Settings.model_validate({"host": "b"}).status_detail == "public"
    with pytest.raises(pydantic.ValidationError, match="status_detail"):
        Settings.model_validate({"host": "b", "status_detail": "everything"})
    with pytest.raises(pydantic.ValidationError, match="announcement_tokens"):
        Settings.model_validate({"host": "b", "announcement_tokens": {"Hà Nội": {"env": "T"}}})
    with pytest.raises(pydantic.ValidationError, match="exactly one of file or env"):
        Settings.model_validate({"host": "b", "announcement_tokens": {"ha-noi": {}}})
