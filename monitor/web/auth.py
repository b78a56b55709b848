"""Who is asking: a bearer token, a page session's cookie, or a TLS client certificate (mTLS)
mapped to an account by its SHA-256 fingerprint and issuer (never by its subject's text).

The middleware puts the caller's :class:`~monitor.accounts.Account` (or None) in
``request["account"]``. Under ``/api/v1`` a request without a valid credential is answered 401
(except the public documents and the heartbeat, which has its own per-system token); the pages
decide for themselves. Failed logins are audited and throttled per client address: after
``max_failures`` within a minute that address gets 429 until the minute is over. Tokens are
never logged or echoed. A malformed credential (a non-ASCII byte, a control character, an
oversized token) is a failed login like a wrong one: 401, never an error of ours.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import accounts, audit, sessions
from ..accounts import Account, CertIdentity
from ..store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Paths under /api/v1 answered without an account.
PUBLIC_API = ("/api/v1/openapi.json", "/api/v1/heartbeat/")
COOKIE = "npsp_session"
MAX_LOGGED_PATH = 200  # characters of the (percent-encoded) path kept in the log and audit
ACCOUNT: web.RequestKey[Account | None] = web.RequestKey("account", object)  # type: ignore[arg-type]
WINDOW = 60.0


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def peer_certificate(request: web.Request) -> CertIdentity | None:
    """The identity (fingerprint of the DER, issuer DN) of the client certificate the TLS layer
    verified against ``http.client_ca``, or None when none was presented."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return accounts.certificate_identity(der)
    except ValueError:  # OpenSSL accepted it; cryptography could not parse it: no login
        return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def via_https(request: web.Request, trusted_proxies: Iterable[Network] = ()) -> bool:
    """Whether the browser reached us over HTTPS: the listener's own TLS, or a trusted reverse
    proxy (its address in ``trusted_proxies``) saying ``X-Forwarded-Proto: https``. The header
    from anyone else is ignored: a client could send it."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto")
    if proto is None:
        return False
    try:
        peer = ipaddress.ip_address((request.remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if not any(peer in network for network in trusted_proxies):
        return False
    # The value the proxy itself added is the last one (a proxy may append to a client's).
    return proto.rsplit(",", 1)[-1].strip().lower() == "https"


def _peer(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        peer = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        return peer.ipv4_mapped
    return peer


def client_address(request: web.Request, trusted_proxies: Iterable[Network] = ()) -> str:
    """The address a request comes from, for throttles and the audit log: the peer, or behind
    a reverse proxy listed in ``trusted_proxies``, the address it put in ``X-Forwarded-For``
    (walking back over trusted proxies; a client's own entries further left are ignored, they
    could be anything). Without it, everyone behind one proxy is one address, and ten wrong
    guesses from anyone would lock everyone out (logins) or silence a system (heartbeats)."""
    remote = request.remote or "?"
    networks = list(trusted_proxies)
    peer = _peer(remote)
    if peer is None or not networks or not any(peer in n for n in networks):
        return remote
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        address = _peer(hop)
        if address is None:
            return remote  # malformed: trust nothing the header says
        if not any(address in n for n in networks):
            return str(address)
    return remote


class Throttle:
    """Failed logins per client address in a sliding minute."""

    def __init__(self, max_failures: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.clock = clock
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, who: str) -> deque[float]:
        now = self.clock()
        q = self.failures.setdefault(who, deque())
        while q and q[0] <= now - WINDOW:
            q.popleft()
        if not q:
            del self.failures[who]
            return deque()
        return q

    def blocked_for(self, who: str) -> float:
        """Seconds ``who`` must wait, or 0."""
        q = self._recent(who)
        if len(q) < self.max_failures:
            return 0.0
        return max(1.0, q[0] + WINDOW - self.clock())

    def failed(self, who: str) -> None:
        self.failures.setdefault(who, deque()).append(self.clock())
        if len(self.failures) > 10_000:  # bounded: forget the oldest addresses
            for key in list(self.failures)[:1000]:
                del self.failures[key]


def bearer(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (empty if none follows), or None."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


class Authenticator:
    """Finds the account of a request; one per daemon."""

    def __init__(
        self,
        store: Store,
        *,
        max_failures: int = 10,
        clock: Callable[[], float] = time.time,
        throttle_clock: Callable[[], float] = time.monotonic,
        trusted_proxies: Callable[[], Iterable[Network]] = lambda: (),
    ) -> None:
        self.store = store
        self.clock = clock
        self.throttle = Throttle(max_failures, throttle_clock)
        self.trusted_proxies = trusted_proxies

    async def account_of(self, request: web.Request) -> tuple[Account | None, bool]:
        """The caller's account, and whether a credential was presented (and failed)."""
        token = bearer(request)
        if token is not None:
            account = await accounts.by_token(self.store, token)
            return account, account is None
        if request.method in ("GET", "HEAD"):
            # The pages keep a session id in an HttpOnly cookie; state-changing API calls must
            # send the header (a cookie alone would invite cross-site requests).
            session = request.cookies.get(COOKIE)
            if session is not None:
                # An unknown, expired or logged-out session is not a guess: the visitor is
                # simply not logged in. Counting it as a failed login let a morning of expired
                # cookies behind one proxy or NAT lock every user of that address out (and
                # page nobody, but fill the audit log with "login failed").
                return await self.session_account(session), False
        cert = peer_certificate(request)
        if cert is not None:
            # A certificate our CA issued but mapped to no account is not a guess: the caller
            # is simply not logged in (and public pages stay public for it).
            return await accounts.by_certificate(self.store, cert), False
        return None, False

    async def session_account(self, session: str) -> Account | None:
        """The account of a page session's cookie, or None (unknown, expired, ended)."""
        return await sessions.by_session(self.store, session, self.clock())

    def client(self, request: web.Request) -> str:
        return client_address(request, self.trusted_proxies())

    async def _failed_login(self, request: web.Request) -> web.Response | None:
        """Count and audit a wrong credential; the 429 answer once the address has too many.

        A valid credential is never refused; a wrong one is counted, and once an address has
        too many, its wrong ones get 429 without another audit row (bounded work).
        """
        who = self.client(request)
        wait = self.throttle.blocked_for(who)
        if wait:
            return web.json_response(
                {"error": "too many failed logins from this address; try again later"},
                status=429,
                headers={"Retry-After": str(int(wait) + 1)},
            )
        self.throttle.failed(who)
        # The path as sent (percent-encoded: printable ASCII), not decoded: a %00 stays text.
        path = request.raw_path[:MAX_LOGGED_PATH]
        log.warning("login failed", extra={"client": who, "path": path})
        await audit.audit(
            self.store,
            ts=self.clock(),
            actor=f"anonymous@{who}",
            action="login.failed",
            target=path,
            source="api",
        )
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(PUBLIC_API):
            # The heartbeat has its own per-system token: never an account login attempt.
            request[ACCOUNT] = None
            return await handler(request)
        api = path.startswith("/api/v1/")
        if api and request.method not in ("GET", "HEAD", "OPTIONS"):
            refused = _cross_site(request)
            if refused is not None:
                return error(403, refused)
        account, failed = await self.account_of(request)
        if failed:
            throttled = await self._failed_login(request)
            if throttled is not None:
                return throttled
        request[ACCOUNT] = account
        if api and account is None:
            return error(
                401,
                "invalid or revoked credentials" if failed else "authentication required",
            )
        return await handler(request)


def _cross_site(request: web.Request) -> str | None:
    """Why a state-changing API call must be refused as cross-site, or None.

    A browser sends a client certificate by itself, so a page elsewhere could make it POST to
    us: such requests announce themselves (``Sec-Fetch-Site``, ``Origin``), and a JSON body
    cannot be sent cross-site without a CORS preflight, which we never answer.
    """
    if request.headers.get("Sec-Fetch-Site", "") == "cross-site":
        return "cross-site request refused"
    origin = request.headers.get("Origin")
    if origin is not None and _netloc(origin) != request.host:
        return "cross-site request refused (Origin does not match)"
    if request.body_exists and request.content_type != "application/json":
        return "send the body as application/json"
    return None


def _netloc(origin: str) -> str | None:
    """The host[:port] of an ``Origin`` header, or None when it is not a URL."""
    try:
        return urlsplit(origin).netloc
    except ValueError:  # "http://[" and the like
        return None


def current(request: web.Request) -> Account | None:
    """The caller's account (set by the middleware), or None."""
    return request.get(ACCOUNT)
