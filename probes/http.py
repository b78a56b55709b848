"""``http``: send one HTTP/1.1 request (over TLS for ``https``) and judge the response.

Runs on a bare ``asyncio.Protocol`` with the C parser of ``httptools`` instead of an HTTP client
library: at 10,000 checks per 10 s every microsecond counts, and aiohttp costs about three times
the CPU per probe (shared/perf-anchors.md). One new connection per probe, ``Connection: close``,
aborted as soon as the verdict is known. The body is read only when a check needs it, and never
beyond ``max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from pydantic import Field, field_validator, model_validator

from npsp_common.types import Duration, Freshness, ProbeResult, Why

from .addresspolicy import AddressNotAllowed, AddressPolicy, connect, gateway_itself
from .base import Probe, ProbeEnv, TargetSpec
from .errors import describe_os_error, describe_ssl_error
from .httpbody import JSONCondition, compile_body_regex, judge_body_data, parse_json_path
from .httpresponse import Exchange
from .reasons import Problem, fail, passed, warn, why, worst
from .tls import TLSClient, broken_probe, explain_rejected_cert
from .tlsopts import TLSOptions, check_peer_cert, read_peer_cert

__all__ = [
    "JSONCondition",
    "Spec",
    "Target",
    "build",
    "check_headers",
    "check_statuses",
    "encode_request",
    "expand_statuses",
    "fetch",
    "header_value_ok",
    "split_url",
]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_STATUS_CLASS = re.compile(r"[1-5]xx")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_OWN_HEADERS = frozenset({"connection", "content-length", "transfer-encoding"})
_HTTP_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what may stay as it is in a request target
_Proto = TypeVar("_Proto", bound=asyncio.BaseProtocol)


def _default_statuses() -> list[int | str]:
    return ["2xx"]


class Spec(TargetSpec):
    """An HTTP(S) request check."""

    kind: Literal["http"]
    url: Annotated[str, Field(min_length=8, max_length=2048)]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expected_status: list[int | str] = Field(default_factory=_default_statuses, min_length=1)
    # Bounded: a 5 MB pattern took 20 s to compile at load; see _check_body_regex.
    body_regex: Annotated[str, Field(max_length=MAX_REGEX_CHARS)] | None = None
    json_conditions: list[JSONCondition] = Field(default_factory=list, alias="json")
    max_latency: Duration | None = None
    max_latency_severity: Literal["degraded", "down"] = Field(
        default="degraded",
        description="What an answer slower than max_latency makes the system: degraded or down.",
    )
    follow_redirects: Annotated[int, Field(ge=0, le=20)] = 0
    max_body_bytes: Annotated[int, Field(ge=1, le=1 << 30)] | None = None
    tls: TLSOptions = TLSOptions()
    freshness: Freshness | None = Field(
        default=None,
        description="How old the data in a JSON field of the answer may be, in working hours "
        "of the agency (path names the field).",
    )

    def target_host(self) -> str:
        return self.host_key or (urlsplit(self.url).hostname or "-")

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        split_url(url)  # raises ValueError with the reason
        return url

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @field_validator("expected_status")
    @classmethod
    def _check_statuses(cls, values: list[int | str]) -> list[int | str]:
        return check_statuses(values)

    @field_validator("body_regex")
    @classmethod
    def _check_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            _check_body_regex(pattern)
        return pattern

    @model_validator(mode="after")
    def _check_method(self) -> Spec:
        if self.method == "HEAD" and (self.body_regex or self.json_conditions or self.freshness):
            raise ValueError("body_regex, json and freshness need a response body: HEAD has none")
        if self.freshness is not None:
            if self.freshness.path is None:
                raise ValueError("freshness: an http check names the JSON field (path) to read")
            parse_json_path(self.freshness.path)
        if self.body is not None and self.method != "POST":
            raise ValueError(f"a request body is sent with POST only, not {self.method}")
        return self


MAX_REGEX_CHARS = 1000


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Request headers a check may set (ValueError naming the bad one)."""
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"header {name} is set by the probe itself")
        if not header_value_ok(value):
            raise ValueError(f"header {name}: value must be one line of ASCII")
    return headers


def header_value_ok(value: str) -> bool:
    """Can ``value`` go on the wire as a header value (one line of ASCII)?"""
    return "\r" not in value and "\n" not in value and value.isascii()


def check_statuses(values: list[int | str]) -> list[int | str]:
    """Expected statuses (``200``, ``"2xx"``), normalised; ValueError naming a bad one."""
    checked: list[int | str] = []
    for given in values:
        value = int(given) if isinstance(given, str) and given.isdigit() else given
        if isinstance(value, int):
            if not 100 <= value <= 599:
                raise ValueError(f"status {value} is not an HTTP status (100-599)")
            checked.append(value)
        elif _STATUS_CLASS.fullmatch(value.lower()):
            checked.append(value.lower())
        else:
            raise ValueError(f"{value!r} is neither a status nor a class like 2xx")
    return checked


def _check_body_regex(pattern: str) -> None:
    """Compile the pattern now (RE2: see ``compile_body_regex``), so that the config names it."""
    compile_body_regex(pattern)


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, request-target)`` of a URL the probe can fetch."""
    if any(c.isspace() for c in url):
        raise ValueError(f"URL {url!r} contains white space")
    parts = urlsplit(url)
    if parts.scheme not in _HTTP_DEFAULT_PORTS:
        raise ValueError(f"URL {url!r}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"URL {url!r} has no host")
    if parts.username is not None:
        raise ValueError(f"URL {url!r}: put credentials in headers, not in the URL")
    try:
        port = parts.port or _HTTP_DEFAULT_PORTS[parts.scheme]
        host = parts.hostname.encode("idna").decode("ascii")  # xn--… for a Vietnamese name
    except (ValueError, UnicodeError):
        raise ValueError(f"URL {url!r} has an invalid host or port") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # a path with Vietnamese letters goes on the wire percent-encoded, as browsers send it
    return parts.scheme, host, port, quote(target, safe=_URL_SAFE)


def encode_request(
    method: str,
    scheme: str,
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    body: bytes | None,
    user_agent: str,
) -> bytes:
    """One HTTP/1.1 request on the wire: our Host, User-Agent and Accept unless ``headers``
    set them (names compared without case), Content-Length when there is a body, and
    ``Connection: close``."""
    host_header = f"[{host}]" if ":" in host else host
    if port != _HTTP_DEFAULT_PORTS[scheme]:
        host_header += f":{port}"
    sent = {"Host": host_header, "User-Agent": user_agent, "Accept": "*/*"}
    given = {k.lower(): k for k in sent}
    for name, value in headers.items():
        sent.pop(given.get(name.lower(), name), None)
        sent[name] = value
    if body is not None:
        sent["Content-Length"] = str(len(body))
    sent["Connection"] = "close"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in sent.items())
    return (head + "\r\n").encode() + (body or b"")


@dataclass(frozen=True, slots=True)
class Target:
    """One URL, ready to connect to and with its request already encoded."""

    url: str
    method: str
    https: bool
    host: str
    port: int
    server_name: str
    request: bytes
    # The address policy governs it (an announced target, or a redirect to another host or
    # port): connected to only where the policy allows, its answers not echoed in reasons.
    guarded: bool = False


class _HTTPProbe:
    """A prepared http check; calling it runs the probe once."""

    def __init__(self, spec: Spec, env: ProbeEnv, ctx: ssl.SSLContext) -> None:
        self._spec = spec
        self._ctx = ctx
        self._env = env
        self._opts = spec.tls
        self._limit = spec.max_body_bytes or env.max_body_bytes
        self._allowed = expand_statuses(spec.expected_status)
        self._expected = ", ".join(str(v) for v in spec.expected_status)
        needs_body = bool(spec.body_regex or spec.json_conditions or spec.freshness)
        follows = _REDIRECTS if spec.follow_redirects else frozenset()
        self._body_statuses = (self._allowed - follows) if needs_body else frozenset()
        self._regex = compile_body_regex(spec.body_regex) if spec.body_regex else None
        _, self._first_host, first_port, _ = split_url(spec.url)
        self._first_origin = (self._first_host, first_port)
        self._policy = spec.address_policy
        self._announced = spec.announced and self._policy is not None
        self._first = self._target(spec.url, spec.method)

    def _target(self, url: str, method: str) -> Target:
        scheme, host, port, path = split_url(url)
        spec = self._spec
        body = (spec.body or "").encode() if method == "POST" else None
        request = encode_request(
            method, scheme, host, port, path, spec.headers, body, self._env.user_agent
        )
        # tls.server_name is about the configured host, not where a redirect may lead
        same_host = host == self._first_host
        server_name = (self._opts.server_name if same_host else None) or host
        # The registry's own host is trusted on any port (http:80 -> https:443 is the usual
        # redirect), unless it is the gateway itself (a redirect to another local port could
        # reach the daemon); an announced host, or another host a redirect leads to, is not.
        guarded = self._policy is not None and (
            self._announced
            or host != self._first_host
            or ((host, port) != self._first_origin and gateway_itself(host))
        )
        return Target(url, method, scheme == "https", host, port, server_name, request, guarded)

    async def __call__(self, timeout: float) -> ProbeResult:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        deadline = loop.time() + timeout
        target = self._first
        visited = {target.url}
        exchange = Exchange(self._body_statuses, self._limit)
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    failure, cert_not_after = await self._fetch(target, exchange, deadline)
                    if failure is None:
                        hop = self._redirect(target, exchange, visited)
                        if hop is None:
                            break
                        if isinstance(hop, Target):
                            target = hop
                            exchange = Exchange(self._body_statuses, self._limit)
                            continue
                        failure = hop
                    return fail(
                        failure,
                        time.perf_counter() - start,
                        cert_not_after=cert_not_after,
                        status_code=exchange.status or None,
                    )
        except TimeoutError:
            return fail(why("timeout.phase", timeout=timeout, phase=exchange.phase), timeout)
        return self._judge(exchange, time.perf_counter() - start, cert_not_after, target)

    def _redirect(
        self, target: Target, exchange: Exchange, visited: set[str]
    ) -> Target | Why | None:
        """Where a response sends the probe next: a target, a failure reason, or None (stay)."""
        status, location, limit = exchange.status, exchange.location, self._spec.follow_redirects
        if not limit or location is None or status not in _REDIRECTS:
            return None
        if len(visited) > limit:
            return why("http.too_many_redirects", limit=limit)
        url = urljoin(target.url, location.decode("latin-1"))
        if url in visited:
            return (
                why("http.redirect_loop")
                if target.guarded
                else why("http.redirect_loop_to", url=url)
            )
        visited.add(url)
        method = target.method
        if status == 303 or (status in (301, 302) and method == "POST"):
            method = "GET"  # what browsers do, and what servers expect
        try:
            return self._target(url, method)
        except ValueError as exc:
            if target.guarded:
                return why("http.bad_redirect")
            return why("http.bad_redirect_detail", detail=str(exc))

    async def _fetch(
        self, target: Target, exchange: Exchange, deadline: float
    ) -> tuple[Why | None, float | None]:
        return await fetch(target, exchange, deadline, self._ctx, self._opts, self._policy)

    def _judge(
        self, exchange: Exchange, elapsed: float, cert_not_after: float | None, target: Target
    ) -> ProbeResult:
        status = exchange.status
        fields: dict[str, object] = {"cert_not_after": cert_not_after, "status_code": status}
        if status not in self._allowed:
            if status in _REDIRECTS and exchange.location is not None and not target.guarded:
                location = exchange.location.decode("latin-1")
                reason = why(
                    "http.status_redirect",
                    status=status,
                    location=location,
                    expected=self._expected,
                )
            else:
                reason = why("http.status", status=status, expected=self._expected)
            return fail(reason, elapsed, **fields)
        # Every condition is judged: one that makes the system down wins over a warning.
        problems = [exchange.cert_warning] if exchange.cert_warning is not None else []
        if exchange.body is not None:
            found, data = judge_body_data(
                bytes(exchange.body),
                self._regex,
                self._spec.json_conditions,
                echo=not target.guarded,
                freshness=self._spec.freshness,
            )
            problems += found
            if data is not None:
                fields["data"] = data
        limit = self._spec.max_latency
        if limit is not None and elapsed > limit:
            slow = why("http.slow", elapsed=round(elapsed, 1), limit=limit)
            problems.append(Problem(slow, down=self._spec.max_latency_severity == "down"))
        problem = worst(problems)
        if problem is None:
            return passed(why("http.ok", status=status), elapsed, **fields)
        return (fail if problem.down else warn)(problem.why, elapsed, **fields)


async def fetch(
    target: Target,
    exchange: Exchange,
    deadline: float,
    ctx: ssl.SSLContext,
    opts: TLSOptions,
    policy: AddressPolicy | None,
) -> tuple[Why | None, float | None]:
    """Connect, send, and wait for ``exchange`` to settle: (failure reason, cert expiry).

    The one HTTP exchange of the ``http`` and ``api`` probes. A ``guarded`` target connects
    only where ``policy`` allows. The caller bounds the whole by ``deadline`` (asyncio.timeout_at).
    """
    loop = asyncio.get_running_loop()
    transport: asyncio.Transport | None = None
    send: Callable[[bytes], None]
    not_after: float | None = None
    client: TLSClient | None = None
    try:
        if target.https:
            client = TLSClient(ctx, target.server_name, app=exchange)
            transport, _ = await _connect(lambda: client, target, policy)
            exchange.phase = why("phase.handshake")
            await client.handshake()
            cert = read_peer_cert(client.ssl_object)
            not_after = cert.expiry if cert is not None else None
            if opts.client_cert is not None:
                # TLS 1.3: hear the server's verdict on our certificate before writing, or
                # the request can make it reset the connection before its alert is read
                refusal = await client.refusal(deadline - loop.time() - 0.01)
                if refusal is not None:
                    return refusal, not_after
            if cert is not None:
                problem = check_peer_cert(cert, opts, time.time())
                if problem is not None and problem.down:
                    return problem.why, not_after
                exchange.cert_warning = problem
            send = client.write
        else:
            transport, _ = await _connect(lambda: exchange, target, policy)
            send = transport.write
        exchange.phase = why("phase.headers")
        send(target.request)
        return await exchange.done, not_after
    # A failed https fetch still reports the certificate the server sent, if any (expired,
    # unknown issuer...): its expiry stays on /metrics exactly when it matters.
    except ssl.SSLCertVerificationError as exc:
        seen = client.seen_cert() if client is not None else None
        not_after = seen.expiry if seen is not None else None
        return explain_rejected_cert(exc, seen), not_after
    except ssl.SSLError as exc:
        seen_not_after = client.seen_not_after() if client is not None else None
        return describe_ssl_error(exc), seen_not_after
    except OSError as exc:
        what = "connect" if exchange.phase.code == "phase.connecting" else "tls.handshake_os"
        seen_not_after = client.seen_not_after() if client is not None else None
        return why(what, error=describe_os_error(exc)), seen_not_after
    except AddressNotAllowed as exc:
        return exc.why, None
    finally:
        if transport is not None:
            transport.abort()


async def _connect(
    factory: Callable[[], _Proto], target: Target, policy: AddressPolicy | None
) -> tuple[asyncio.Transport, _Proto]:
    if target.guarded and policy is not None:
        return await connect(factory, target.host, target.port, policy)
    loop = asyncio.get_running_loop()
    return await loop.create_connection(factory, target.host, target.port)


def expand_statuses(values: list[int | str]) -> frozenset[int]:
    """``[200, "3xx"]`` → every status code it allows, for a set lookup per probe."""
    return _expand_status_tuple(tuple(values))


@functools.lru_cache(maxsize=256)
def _expand_status_tuple(values: tuple[int | str, ...]) -> frozenset[int]:
    # Shared between checks: one 100-code frozenset per check cost 36 MB at 6,666 checks.
    allowed: set[int] = set()
    for value in values:
        if isinstance(value, int):
            allowed.add(value)
        else:
            base = int(value[0]) * 100
            allowed.update(range(base, base + 100))
    return frozenset(allowed)


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Prepare the request once; the returned probe sends it on a new connection each run."""
    try:
        # also for http:// URLs that may redirect to https: contexts are shared, so it is cheap
        ctx = env.ssl_contexts.get(spec.tls)
    except (OSError, ssl.SSLError) as exc:
        return broken_probe(why("tls.files", detail=str(exc)))
    return _HTTPProbe(spec, env, ctx)
