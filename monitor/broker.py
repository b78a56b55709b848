"""The MQTT broker connection, on aiomqtt 2.5: not a channel, but what the inbox channel
(:mod:`notifiers.inbox`) pushes through, and what the daemon's status topics, heartbeats and
announcements use.

``MqttPublisher`` keeps one connection to the broker for the daemon's whole life: a named
background task connects, notices the connection drop, and reconnects after a capped, jittered
backoff (``uniform(0, min(cap, base * 2**n))``). ``publish`` makes one attempt on the current
connection and raises ``NotifyError(permanent=False)`` when there is none or the broker does not
acknowledge in time: the daemon's outbox retries, the publisher never queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import aiomqtt

from notifiers.base import NotifyError
from notifiers.settings import MqttSettings as Settings

__all__ = ["MqttPublisher", "Settings"]

log = logging.getLogger("notifiers.mqtt")  # the name its log lines have always had

RECONNECT_BASE = 0.5  # seconds: the first reconnect waits up to this, then 1, 2, 4... up to the cap

T = TypeVar("T")


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.

    paho-mqtt 2.2 (``Client._ssl_wrap_socket``) leaves the socket open when ``do_handshake``
    raises (an untrusted broker certificate): one file descriptor per reconnect attempt until
    the garbage collector finds it.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class MqttPublisher:
    """One long-lived broker connection, shared by every publisher in the daemon.

    ``start()`` returns at once (the broker may be down when the daemon starts); ``connected``
    says whether a connection is up now.
    """

    def __init__(self, settings: Settings, *, will: tuple[str, bytes] | None = None) -> None:
        self.settings = settings
        # (topic suffix, payload): retained by the broker if this connection dies unannounced
        # (MQTT "last will") — how another host learns this one is gone.
        self.will = will
        # Read the password and the CA now: a missing file fails at startup.
        self._password = None if settings.password is None else settings.password.read()
        self._tls: ssl.SSLContext | None = None
        if settings.tls:
            try:
                self._tls = ssl.create_default_context(
                    cafile=None if settings.ca_file is None else str(settings.ca_file)
                )
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load ca_file {settings.ca_file}: {exc}") from None
            self._tls.sslsocket_class = _ClosingSSLSocket
        self._client: aiomqtt.Client | None = None
        self._lost = asyncio.Event()  # replaced per connection; set when that connection ends
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        self.where = f"{settings.host}:{settings.port}"
        self._subscriptions: list[tuple[str, Callable[[str, bytes], None]]] = []
        self.generation = 0  # connections made so far: retained topics are re-published after

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Subscribe (QoS 1) to ``<prefix><topic_filter>`` on every connection from now on;
        ``handler(topic_suffix, payload)`` is called for each message, synchronously (it must
        be quick: queue the work)."""
        self._subscriptions.append((topic_filter, handler))

    def _dispatch(self, message: aiomqtt.Message) -> None:
        if message.retain:
            # A retained copy is an old message replayed on every (re)subscription: commands
            # (announcements) must be acted on once, when they are sent.
            log.warning("mqtt: ignoring retained message on %s", message.topic.value)
            return
        topic = message.topic.value
        prefix = self.settings.topic_prefix
        suffix = topic[len(prefix) :] if topic.startswith(prefix) else topic
        payload = message.payload if isinstance(message.payload, bytes) else b""
        for topic_filter, handler in self._subscriptions:
            if message.topic.matches(prefix + topic_filter):
                try:
                    handler(suffix, payload)
                except Exception:
                    log.exception("mqtt: handler for %s failed", topic_filter)

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is up."""
        return self._client is not None

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed or the last connection ended (no secrets)."""
        return self._last_error

    def topic(self, suffix: str) -> str:
        """The full topic for ``suffix`` (``status/ha-noi/secure-server`` → ``npsp/status/...``)."""
        return self.settings.topic_prefix + suffix

    async def start(self) -> None:
        """Start the connection task (once); it runs until ``aclose``."""
        if self._task is None:
            self._task = asyncio.create_task(
                self._run(), name=f"mqtt[{self.settings.client_id}].connection"
            )

    async def aclose(self) -> None:
        """Disconnect and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._client = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _new_client(self) -> aiomqtt.Client:
        settings = self.settings
        return aiomqtt.Client(
            hostname=settings.host,
            port=settings.port,
            identifier=settings.client_id,
            username=settings.username,
            password=None if self._password is None else self._password.get_secret_value(),
            tls_context=self._tls,
            keepalive=settings.keepalive,
            timeout=settings.timeout,
            will=None
            if self.will is None
            else aiomqtt.Will(self.topic(self.will[0]), self.will[1], qos=1, retain=True),
        )

    async def _run(self) -> None:
        failures = 0
        while True:
            was_up = False
            try:
                # A fresh client per connection: paho keeps unacknowledged QoS 1 messages of a
                # dropped connection and would resend them later; the outbox already retries.
                client = self._new_client()
                async with client:
                    was_up, failures = True, 0
                    for topic_filter, _ in self._subscriptions:
                        granted = await client.subscribe(self.topic(topic_filter), qos=1)
                        # A broker's ACL refuses with a reason code (>= 0x80) instead of an
                        # error: without this, heartbeats and announcements would silently
                        # never arrive.
                        for code in granted or ():
                            value = code if isinstance(code, int) else int(code.value)
                            if value >= 0x80:
                                log.error(
                                    "mqtt: the broker refused the subscription to %s (code %d)",
                                    self.topic(topic_filter),
                                    value,
                                )
                    self._client, self._lost = client, asyncio.Event()
                    self._last_error = None
                    self.generation += 1
                    log.info("mqtt: connected to %s as %s", self.where, self.settings.client_id)
                    try:
                        # The iterator ends, by raising MqttError, when the connection drops.
                        async for message in client.messages:
                            self._dispatch(message)
                    finally:
                        self._client = None
                        self._lost.set()
            except (aiomqtt.MqttError, OSError) as exc:  # aiomqtt wraps OSError; belt and braces
                self._note_failure(("connection lost" if was_up else "cannot connect"), exc)
            except Exception as exc:  # the connection task must outlive a bug
                log.exception("mqtt: unexpected error in the connection task")
                self._note_failure("unexpected error", exc)
            cap = min(self.settings.reconnect_max, RECONNECT_BASE * 2**failures)
            failures = min(failures + 1, 30)
            await asyncio.sleep(random.uniform(0, cap))

    def _note_failure(self, what: str, exc: BaseException) -> None:
        cause = exc.__cause__
        detail = f"{exc} ({cause})" if cause is not None and str(cause) not in str(exc) else exc
        reason = self._redact(f"{what}: {detail}")
        # Log when the reason changes, not on every attempt of a long outage.
        level = logging.DEBUG if reason == self._last_error else logging.WARNING
        log.log(level, "mqtt: %s: %s; reconnecting with backoff", self.where, reason)
        self._last_error = reason

    def _redact(self, text: str) -> str:
        if self._password is None or not self._password.get_secret_value():
            return text
        return text.replace(self._password.get_secret_value(), "********")

    async def publish(
        self, topic_suffix: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Publish once on the current connection; ``NotifyError(permanent=False)`` if none.

        With QoS 1 this returns once the broker acknowledged (PUBACK), within ``timeout``.
        """
        if not topic_suffix or any(ch in topic_suffix for ch in "+#\x00"):
            raise NotifyError(f"mqtt: invalid topic {topic_suffix!r}", permanent=True)
        if qos not in (0, 1, 2):
            raise NotifyError(f"mqtt: invalid qos {qos}", permanent=True)
        client, lost = self._client, self._lost
        if client is None:
            last = f" ({self._last_error})" if self._last_error else ""
            raise NotifyError(f"mqtt: not connected to {self.where}{last}", permanent=False)
        topic = self.topic(topic_suffix)
        try:
            await self._unless_lost(
                client.publish(topic, payload, qos=qos, retain=retain), lost, topic
            )
        except aiomqtt.MqttError as exc:
            raise NotifyError(
                self._redact(f"mqtt: publish to {topic} on {self.where} failed: {exc}"),
                permanent=False,
            ) from None

    @staticmethod
    async def _unless_lost(operation: Awaitable[T], lost: asyncio.Event, topic: str) -> T:
        """Await ``operation``, failing at once if the connection drops meanwhile.

        Without this, a PUBACK that will never come (the connection is gone) costs the whole
        ``timeout``.
        """
        work = asyncio.ensure_future(operation)
        watch = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, watch):
                task.cancel()
            await asyncio.gather(work, watch, return_exceptions=True)
        if work.cancelled():
            raise aiomqtt.MqttError(f"connection lost before the broker acknowledged {topic}")
        return work.result()
