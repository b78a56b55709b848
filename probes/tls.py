"""``tls``: open TCP, complete a TLS handshake, and report what the certificate says.

Also home of :class:`TLSClient`, the TLS connection the ``http`` probe uses for ``https``, and of
:func:`explain_rejected_cert`, which turns an "expired" verification error into a date.

A failed probe still reports the expiry of any certificate the server sent (``cert_not_after``):
an expired certificate fails verification, and that is exactly when its date must stay on
``/metrics`` for the ``NpspCertificateExpired`` alert and the dashboard.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Annotated, Literal, Protocol, cast

from pydantic import Field

from npsp_common.types import ProbeResult, Why

from .addresspolicy import AddressNotAllowed, AddressPolicy, connect
from .base import Probe, ProbeEnv, TargetSpec
from .errors import describe_os_error, describe_ssl_error
from .reasons import fail, passed, warn, why
from .tlsopts import (
    PeerCert,
    TLSOptions,
    check_peer_cert,
    read_peer_cert,
    read_rejected_cert,
)

__all__ = [
    "PlainReceiver",
    "Spec",
    "TLSClient",
    "broken_probe",
    "build",
    "describe_first_record",
    "explain_rejected_cert",
]

# How long a TLS 1.3 probe waits, after its own handshake, for the server's first record: in
# TLS 1.3 the client finishes first, and a server that refuses the client certificate says so
# only in that record (an alert); a server that accepts sends session tickets. Servers that
# send nothing cost this much wall time, not CPU.
TLS13_VERDICT_SECONDS = 0.5

_VERIFY_NOT_YET_VALID = 9  # X509_V_ERR_CERT_NOT_YET_VALID
_VERIFY_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED
_READ_SIZE = 64 << 10


class Spec(TargetSpec):
    """A TLS handshake check."""

    kind: Literal["tls"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    tls: TLSOptions = TLSOptions()

    def target_host(self) -> str:
        return self.host_key or self.host


class PlainReceiver(Protocol):
    """What sits on top of a :class:`TLSClient`: the decrypted side of the connection."""

    def data_received(self, data: bytes) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class TLSClient(asyncio.Protocol):
    """A TLS client connection driven by hand, through memory BIOs, over a plain transport.

    ``loop.start_tls`` hides the first record the server sends after the handshake, and the
    tls probe needs it (see ``TLS13_VERDICT_SECONDS``). The http probe uses this class too, so
    both kinds speak TLS, and describe its failures, the same way.
    """

    def __init__(
        self, ctx: ssl.SSLContext, server_name: str, app: PlainReceiver | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = ctx.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)
        self.transport: asyncio.Transport | None = None
        self.app = app
        # The handshake's outcome: None, or the error that ended it. A result, not an exception,
        # so that one nobody awaits any more (the probe timed out) is not logged as unretrieved.
        self._handshake: asyncio.Future[Exception | None] = loop.create_future()
        # What the server's first record after the handshake was: None for something benign
        # (a session ticket, data), else the error it raised (an alert, a close).
        self.first_record: asyncio.Future[Exception | None] = loop.create_future()
        self._app_told = False

    async def handshake(self) -> None:
        """Wait for the handshake; raise what ended it (``ssl.SSLError``, ``OSError``)."""
        exc = await self._handshake
        if exc is not None:
            raise exc

    async def refusal(self, budget: float) -> Why | None:
        """After a TLS 1.3 handshake, wait (within ``budget`` seconds) for the server's first
        record; the reason if it refused us, else None. Nothing to wait for in TLS 1.2."""
        if self.ssl_object.version() != "TLSv1.3":
            return None
        try:
            async with asyncio.timeout(max(0.0, min(TLS13_VERDICT_SECONDS, budget))):
                return describe_first_record(await self.first_record)
        except TimeoutError:  # the server sent nothing: nothing said it refused us
            return None

    def seen_cert(self) -> PeerCert | None:
        """The leaf certificate the server sent, verified or not, even when the handshake then
        failed (expired, unknown issuer, wrong name, our client certificate refused); None if
        no certificate came. Read from this connection: no second handshake."""
        try:
            return read_peer_cert(self.ssl_object)
        except ValueError:  # "handshake not done": it failed, or an alert after it ended it
            return read_rejected_cert(self.ssl_object)

    def seen_not_after(self) -> float | None:
        """``seen_cert()``'s expiry (epoch seconds), None if no certificate or no date."""
        cert = self.seen_cert()
        return cert.expiry if cert is not None else None

    def abort(self) -> None:
        """Drop the connection at once (RST): a probe has nothing more to say."""
        if self.transport is not None:
            self.transport.abort()

    def write(self, data: bytes) -> None:
        """Encrypt and send application data (after the handshake)."""
        self.ssl_object.write(data)
        self._flush()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport
        self._shake()

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        self._advance()

    def eof_received(self) -> None:
        self._incoming.write_eof()
        self._advance()

    def _advance(self) -> None:
        if self._handshake.done():
            self._read()
        else:
            self._shake()

    def connection_lost(self, exc: Exception | None) -> None:
        lost = exc or ConnectionResetError("connection closed by peer")
        if not self._handshake.done():
            self._handshake.set_result(lost)
        if not self.first_record.done():
            self.first_record.set_result(lost)
        self._tell_app(exc)

    def _shake(self) -> None:
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:  # includes certificate verification errors
            if not self._handshake.done():
                self._handshake.set_result(exc)
            return
        self._flush()
        if not self._handshake.done():
            self._handshake.set_result(None)
        if self._incoming.pending:
            self._read()

    def _read(self) -> None:
        try:
            while not self._app_told:
                data = self.ssl_object.read(_READ_SIZE)
                if not data:
                    raise ssl.SSLZeroReturnError("TLS connection closed")
                self._note_first_record(None)
                if self.app is not None:
                    self.app.data_received(data)
        except ssl.SSLWantReadError:
            self._note_first_record(None)
            self._flush()  # TLS 1.3 post-handshake messages may need an answer
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as exc:
            self._note_first_record(exc)
            self._tell_app(None)  # a close, polite or not, ends a read-until-close body
        except ssl.SSLError as exc:
            self._note_first_record(exc)
            self._tell_app(exc)

    def _note_first_record(self, exc: Exception | None) -> None:
        if not self.first_record.done():
            self.first_record.set_result(exc)

    def _tell_app(self, exc: Exception | None) -> None:
        if not self._app_told:
            self._app_told = True
            if self.app is not None:
                self.app.connection_lost(exc)

    def _flush(self) -> None:
        if self._outgoing.pending and self.transport is not None:
            self.transport.write(self._outgoing.read())


def explain_rejected_cert(exc: ssl.SSLCertVerificationError, cert: PeerCert | None) -> Why:
    """Reason for a verification failure; a date problem names the date of ``cert``.

    ``cert`` is the leaf that failed (``TLSClient.seen_cert()``: OpenSSL rejects an expired
    certificate inside the handshake, and it is read from the chain that handshake received).
    Without it the reason simply has no date.
    """
    reason = describe_ssl_error(exc)
    if exc.verify_code not in (_VERIFY_EXPIRED, _VERIFY_NOT_YET_VALID):
        return reason
    if cert is None or not cert.not_after:
        return reason
    if exc.verify_code == _VERIFY_NOT_YET_VALID:
        return why("tls.not_valid_before", day=cert.not_before)
    if cert.not_after <= time.time():
        return why("tls.expired", day=cert.not_after)
    return why("tls.chain_date", reason=reason)


def describe_first_record(exc: Exception | None) -> Why | None:
    """Failure reason for what a TLS 1.3 server said right after the handshake, if any."""
    if exc is None:
        return None
    if isinstance(exc, ssl.SSLError) and not isinstance(
        exc, ssl.SSLEOFError | ssl.SSLZeroReturnError
    ):
        return describe_ssl_error(exc)
    return why("tls.closed_after_handshake")


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Return a probe that connects, shakes hands, reads the certificate and hangs up."""
    host, port, opts = spec.host, spec.port, spec.tls
    server_name = opts.server_name or host
    policy = spec.address_policy if spec.announced else None  # None: the registry's own target
    try:
        ctx = env.ssl_contexts.get(opts)
    except (OSError, ssl.SSLError) as exc:
        return broken_probe(why("tls.files", detail=str(exc)))

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        deadline = loop.time() + timeout
        client = TLSClient(ctx, server_name)
        try:
            try:
                failure = await _open(client, host, port, deadline, timeout, policy)
            except ssl.SSLCertVerificationError as exc:
                failure = explain_rejected_cert(exc, client.seen_cert())
            elapsed = time.perf_counter() - start
            if failure is None:
                failure = await client.refusal(deadline - loop.time())
        finally:
            client.abort()
        if failure is not None:
            # a certificate that failed (expired...) still has its date on /metrics
            not_after = client.seen_not_after()
            return fail(failure, time.perf_counter() - start, cert_not_after=not_after)
        return _judge(client, opts, elapsed)

    return probe


async def _open(
    client: TLSClient,
    host: str,
    port: int,
    deadline: float,
    budget: float,
    policy: AddressPolicy | None = None,
) -> Why | None:
    """Connect and shake hands by ``deadline`` (``budget`` after the start): None, or why not.
    With a ``policy`` (an announced target), only to an address it allows.

    Raises ``ssl.SSLCertVerificationError`` for the caller to explain.
    """
    loop = asyncio.get_running_loop()
    phase = why("phase.connecting")
    try:
        async with asyncio.timeout_at(deadline):
            if policy is None:
                await loop.create_connection(lambda: client, host, port)
            else:
                await connect(lambda: client, host, port, policy)
            phase = why("phase.handshake")
            await client.handshake()
    except TimeoutError:
        return why("timeout.phase", timeout=budget, phase=phase)
    except AddressNotAllowed as exc:
        return exc.why
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        return describe_ssl_error(exc)
    except OSError as exc:
        what = "connect" if phase.code == "phase.connecting" else "tls.handshake_os"
        return why(what, error=describe_os_error(exc))
    return None


def _judge(client: TLSClient, opts: TLSOptions, elapsed: float) -> ProbeResult:
    version = client.ssl_object.version()
    cert = read_peer_cert(client.ssl_object)
    if cert is None:
        return fail(why("tls.no_certificate"), elapsed)
    observed = {
        "fingerprint_sha256": cert.fingerprint_sha256,
        "issuer": cert.issuer,
        "subject": cert.subject,
        "tls_version": version or "?",
    }
    problem = check_peer_cert(cert, opts, time.time())
    if problem is None:
        ok = why("tls.ok", version=version or "?", day=cert.not_after)
        return passed(ok, elapsed, cert_not_after=cert.expiry, observed=observed)
    judge = fail if problem.down else warn
    return judge(problem.why, elapsed, cert_not_after=cert.expiry, observed=observed)


def broken_probe(reason: Why) -> Probe:
    """A probe for a check whose TLS files could not be loaded: it says so on every run."""

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109
        return fail(reason, 0.0)

    return probe
