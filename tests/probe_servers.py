"""Real loopback servers for the probe tests: well-behaved ones and hostile ones.

Every server is an async context manager that listens on an ephemeral port of 127.0.0.1 and,
on exit, closes its listener and every connection it accepted (the suite turns unclosed
transports into errors). Certificates come from ``trustme``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import trustme
import uvloop

# --------------------------------------------------------------------------------------------
# Certificates


@dataclass
class Certs:
    """A CA, server certificates in every state a probe must notice, and a client certificate."""

    ca: trustme.CA
    ca_file: Path
    other_ca_file: Path
    client_cert: Path
    client_key: Path
    good: trustme.LeafCert
    expired: trustme.LeafCert
    expiring: trustme.LeafCert  # in 3 days and a bit
    not_yet_valid: trustme.LeafCert
    wrong_host: trustme.LeafCert

    def server_context(
        self,
        leaf: trustme.LeafCert | None = None,
        *,
        max_version: ssl.TLSVersion | None = None,
        require_client_cert: bool = False,
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (leaf or self.good).configure_cert(ctx)
        if max_version is not None:
            ctx.maximum_version = max_version
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
        return ctx


def make_certs(directory: Path) -> Certs:
    now = dt.datetime.now(dt.UTC)
    ca, other_ca = trustme.CA(), trustme.CA()
    names = ("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("probe-client@example.test")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "other", "client", "key")}
    ca.cert_pem.write_to_path(paths["ca"])
    other_ca.cert_pem.write_to_path(paths["other"])
    client.cert_chain_pems[0].write_to_path(paths["client"])
    client.private_key_pem.write_to_path(paths["key"])
    return Certs(
        ca=ca,
        ca_file=paths["ca"],
        other_ca_file=paths["other"],
        client_cert=paths["client"],
        client_key=paths["key"],
        good=ca.issue_cert(*names),
        expired=ca.issue_cert(
            *names, not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=2)
        ),
        expiring=ca.issue_cert(*names, not_after=now + dt.timedelta(days=3, hours=12)),
        not_yet_valid=ca.issue_cert(
            *names, not_before=now + dt.timedelta(days=5), not_after=now + dt.timedelta(days=90)
        ),
        wrong_host=ca.issue_cert("other.example"),
    )


# --------------------------------------------------------------------------------------------
# A TCP/TLS server with a per-connection handler

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """``asyncio.start_server`` on loopback that cleans up every connection on exit."""

    def __init__(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._handler = handler
        self._tls = tls
        self.host = host
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let aborted transports run connection_lost

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            await self._handler(reader, writer)
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # our own __aexit__; finishing normally keeps asyncio.streams from logging it
        finally:
            writer.transport.abort()


class OpenSSLServer:
    """A blocking ``ssl`` server in a thread, for what asyncio's TLS server does not do.

    Like nginx, OpenSSL sends the alert when it refuses a handshake (no client certificate, no
    common version); asyncio's server just drops the connection. Serves one connection at a
    time: reads one chunk, answers ``reply`` if the chunk was not empty, then closes politely.
    """

    def __init__(self, tls: ssl.SSLContext, reply: bytes = b"") -> None:
        self._tls = tls
        self._reply = reply
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="openssl-server", daemon=True)

    async def __aenter__(self) -> OpenSSLServer:
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        await asyncio.to_thread(self._thread.join)
        self._listener.close()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    with self._tls.wrap_socket(conn, server_side=True) as tls:
                        if tls.recv(4096) and self._reply:
                            tls.sendall(self._reply)
                        tls.unwrap()
                except (OSError, ssl.SSLError) as exc:
                    self.errors.append(str(exc))


# --------------------------------------------------------------------------------------------
# Hostile handlers


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, then say nothing, ever."""
    await asyncio.Event().wait()


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, then reset the connection (RST, not FIN)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer whatever comes with bytes that are neither TLS nor HTTP, then hold the line."""
    await reader.read(1024)
    writer.write(b"\x00\xffSSH-2.0-not-what-you-expected\r\n" * 4)
    await asyncio.Event().wait()


async def plain_http_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server on a port where TLS was expected."""
    await reader.read(1024)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def slowloris(
    payload: bytes = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: y\r\n" * 10_000, head: bytes = b""
) -> Handler:
    """After reading the request, send ``head`` at once, then one byte every 100 ms."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(head)
        for i in range(len(payload)):
            writer.write(payload[i : i + 1])
            await asyncio.sleep(0.1)

    return handler


# --------------------------------------------------------------------------------------------
# A small HTTP/1.1 server with routes


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


def response(
    status: int = 200,
    body: bytes | str = b"",
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> Route:
    """A route that answers with a fixed response, ``Content-Length`` or chunked."""
    payload = body.encode() if isinstance(body, str) else body
    head = [f"HTTP/1.1 {status} Whatever", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        half = len(payload) // 2
        parts = [p for p in (payload[:half], payload[half:]) if p]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(payload)}")
        framed = payload
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + framed

    async def route(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)

    return route


def raw(data: bytes) -> Route:
    """A route that sends exactly ``data`` (for malformed responses) and closes."""

    async def route(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    return route


def redirect(location: str, status: int = 302) -> Route:
    return response(status, headers={"Location": location})


def endless(content_length: int | None = 100 << 20) -> Route:
    """Headers, then zeros forever (or ``content_length`` of them) as fast as TCP takes them."""

    async def route(request: Request, writer: asyncio.StreamWriter) -> None:
        length = f"Content-Length: {content_length}\r\n" if content_length is not None else ""
        writer.write(f"HTTP/1.1 200 OK\r\n{length}Connection: close\r\n\r\n".encode())
        chunk = bytes(64 << 10)
        while not writer.is_closing():  # asyncio's TLS transport does not raise once closed
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)  # drain() may not yield, and connection_lost must run

    return route


def delayed(seconds: float, route: Route) -> Route:
    """``route``, after a pause."""

    async def delayed_route(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(seconds)
        await route(request, writer)

    return delayed_route


def endless_headers() -> Route:
    """A status line, then header lines as fast as TCP takes them, never an empty line."""

    async def route(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        while not writer.is_closing():
            writer.write(line * 64)
            await writer.drain()
            await asyncio.sleep(0)

    return route


def echo() -> Route:
    """Answer 200 with the request as JSON-ish text, to check what the probe sent."""

    async def route(request: Request, writer: asyncio.StreamWriter) -> None:
        headers = "".join(f"{k}: {v}\n" for k, v in request.headers.items())
        body = f"{request.method} {request.path}\n{headers}\n".encode() + request.body
        await response(200, body)(request, writer)

    return route


@dataclass
class HTTPApp:
    """Routes by path; remembers every request it served."""

    routes: dict[str, Route]
    requests: list[Request] = field(default_factory=list)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines if line)
        length = int(headers.get("Content-Length", "0"))
        body = await reader.readexactly(length) if length else b""
        request = Request(method, path, headers, body)
        self.requests.append(request)
        route = self.routes.get(path.split("?")[0]) or response(404, "no such route")
        await route(request, writer)


def http_server(
    routes: dict[str, Route], *, tls: ssl.SSLContext | None = None
) -> tuple[Server, HTTPApp]:
    app = HTTPApp(routes)
    return Server(app, tls=tls), app


# --------------------------------------------------------------------------------------------
# A tiny UDP DNS server


@dataclass
class Zone:
    """What the DNS server answers: records by (name, type) and names that misbehave."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    nxdomain: set[str] = field(default_factory=set)
    servfail: set[str] = field(default_factory=set)
    silent: set[str] = field(default_factory=set)


class _DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".")
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name in self.zone.silent:
            return
        reply = dns.message.make_response(query)
        if name in self.zone.nxdomain:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif name in self.zone.servfail:
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif addresses := self.zone.records.get((name, rdtype)):
            reply.answer.append(
                dns.rrset.from_text_list(question.name, 60, "IN", rdtype, addresses)
            )
        assert self.transport is not None
        self.transport.sendto(reply.to_wire(), addr)


class DNSServer:
    """UDP DNS server on 127.0.0.1 (or ``host``) answering from a :class:`Zone`."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1") -> None:
        self.zone = zone
        self.host = host
        self.port = 0
        self._protocol: _DNSProtocol | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def queries(self) -> int:
        return self._protocol.queries if self._protocol else 0

    async def __aenter__(self) -> DNSServer:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _DNSProtocol(self.zone), local_addr=(self.host, 0)
        )
        self._protocol = protocol
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._protocol is not None and self._protocol.transport is not None
        self._protocol.transport.close()
        await asyncio.sleep(0)


# --------------------------------------------------------------------------------------------
# Running a test scenario on uvloop too (the daemon's loop)


def run_on_uvloop(
    scenario: Callable[..., Coroutine[Any, Any, None]], request: pytest.FixtureRequest
) -> None:
    """Run an ``async def test_…`` on a fresh uvloop, passing the fixtures it names.

    pytest-asyncio runs the suite on the default loop; the daemon runs uvloop, whose transports
    raise and report differently, so the key scenarios run on both.
    """
    kwargs = {
        name: request.getfixturevalue(name) for name in inspect.signature(scenario).parameters
    }
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario(**kwargs))


@contextlib.contextmanager
def unanswered_port() -> Iterator[int]:
    """A port whose SYNs go unanswered, like a firewall that drops: a full accept queue.

    With ``listen(0)`` and the queue filled by connections nobody accepts, Linux drops further
    SYNs, so a connect hangs until its timeout.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
