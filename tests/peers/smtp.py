"""A real SMTP server (aiosmtpd) on loopback, with TLS, AUTH and scripted failures.

``SmtpPeer`` runs an aiosmtpd ``Controller`` (its own thread and loop) on a free port of
127.0.0.1: ``mode="starttls"`` requires STARTTLS, then AUTH for one user; ``mode="tls"`` speaks TLS
from the first byte and requires AUTH; ``mode="plain"`` is a local relay without either. Accepted messages
are parsed with the ``email`` package's modern policy and kept in ``received``. Failures are
scripted for the next commands: ``fail_next("MAIL", "421 ...")``, ``refuse(address, "550 ...")``,
``drop_next_data()`` (the connection closes after the message data arrived, before the reply).
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.peers import free_port

SMTP_USER = "canhbao@example.invalid"
SMTP_PASSWORD = "smtp-secret-Vx9qR4tW2"  # made up; tests look for it in logs and errors

Command = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    raw: bytes


class ScriptedHandler:
    """aiosmtpd handler: records messages, answers the next commands as scripted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the server runs in the controller's thread
        self.received: list[Received] = []
        self.failures: dict[Command, deque[str]] = {
            "MAIL": deque(),
            "RCPT": deque(),
            "DATA": deque(),
        }
        self.refused: dict[str, str] = {}
        self.drops = 0
        self.dropped = threading.Event()
        self.require_auth = False  # checked at MAIL (aiosmtpd checks it itself on STARTTLS)

    def _scripted(self, command: Command) -> str | None:
        with self._lock:
            queue = self.failures[command]
            return queue.popleft() if queue else None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        failure = self._scripted("MAIL")
        if failure is not None:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._scripted("RCPT")
        if failure is not None:
            return failure
        with self._lock:
            refusal = self.refused.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            drop = self.drops > 0
            if drop:
                self.drops -= 1
        if drop:
            # The data has arrived, the reply never will: the client cannot know whether the
            # message was taken (the at-least-once case).
            transport = server.transport
            assert isinstance(transport, asyncio.WriteTransport)
            transport.abort()
            self.dropped.set()
            return "451 4.3.0 never sent"
        failure = self._scripted("DATA")
        if failure is not None:
            return failure
        raw = envelope.original_content or b""
        # Stored the way a mailbox stores it: "\n" line ends.
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        with self._lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw)
            )
        return "250 2.0.0 OK: queued"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535 itself


@dataclass
class Certs:
    """A CA and a server certificate for 127.0.0.1/localhost, plus an unrelated CA."""

    ca_file: Path
    other_ca_file: Path
    server: trustme.LeafCert

    @classmethod
    def make(cls, directory: Path) -> Certs:
        ca, other = trustme.CA(), trustme.CA()
        ca_file, other_file = directory / "smtp-ca.pem", directory / "other-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        other.cert_pem.write_to_path(str(other_file))
        return cls(ca_file, other_file, ca.issue_cert("127.0.0.1", "localhost"))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server.configure_cert(ctx)
        return ctx


class SmtpPeer:
    """``async with SmtpPeer(certs) as smtp``: a listening server on ``smtp.port``."""

    def __init__(
        self, certs: Certs, *, mode: Literal["starttls", "tls", "plain"] = "starttls"
    ) -> None:
        self.handler = ScriptedHandler()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if mode == "starttls":
            kwargs.update(
                tls_context=certs.server_context(),
                require_starttls=True,
                authenticator=_authenticator,
                auth_required=True,
                auth_require_tls=True,
            )
        elif mode == "tls":
            # aiosmtpd counts only STARTTLS as TLS for AUTH (and warns about AUTH required
            # without TLS); this connection is TLS from byte one, so the handler requires AUTH.
            kwargs.update(
                ssl_context=certs.server_context(),
                authenticator=_authenticator,
                auth_required=False,
                auth_require_tls=False,
            )
            self.handler.require_auth = True
        # "plain": no TLS, no AUTH (a local relay)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mail.example.invalid",
            ready_timeout=5.0,
            **kwargs,
        )

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def fail_next(self, command: Command, reply: str) -> None:
        """Answer the next ``command`` with ``reply`` (e.g. ``"421 4.7.0 Try again later"``)."""
        self.handler.failures[command].append(reply)

    def refuse(self, address: str, reply: str) -> None:
        """Answer every RCPT TO ``address`` with ``reply``."""
        self.handler.refused[address] = reply

    def drop_next_data(self) -> None:
        """Close the connection once the next message's data has arrived, before replying."""
        self.handler.drops += 1

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.controller.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.controller.stop)
