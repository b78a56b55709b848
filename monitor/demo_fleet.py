"""The demo's simulated agencies' servers on 127.0.0.1 (:mod:`monitor.demo`), and the CA that
issues their certificates.

Each server shows one state: plain answers (up), a port where nothing listens (down), a server
that answers for ``FLAP_PHASE`` seconds then fails as long (flapping), a slow one and one whose
certificate expires within days (degraded), a dossier API behind an OAuth2 token (the ``api``
check's transaction) and a one-stop system whose last synchronisation is a month old (stale in
working hours: degraded).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import logging
import os
import re
import secrets
import ssl
import time
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from cryptography import x509

from .demo_sinks import free_port

log = logging.getLogger("monitor.demo")

DAY = 86400.0
#: The expiring certificate lives 3 days and a half: the probe counts whole days left, so it
#: says "3 days" for the first 12 hours; it is renewed when less than a day is left.
EXPIRING_LIFETIME = 3.5 * DAY
#: The flapping one-stop system answers this many seconds, then fails as long; probed every
#: 2 s, it changes state about every FLAP_PHASE seconds and is FLAPPING after 4 changes.
FLAP_PHASE = 6
#: The dossier API's OAuth2 client (the ``api`` check's token step); its secret is a file.
DOSSIER_CLIENT_ID = "npsp-monitor-demo"
#: How old the stale one-stop system's last synchronisation is.
STALE_SYNC_AGE = 30 * DAY
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\s*", re.S)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, 0600 whatever the umask (a key, or a key with its chain)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _not_after(pem: bytes) -> float:
    """Expiry (epoch seconds) of the first certificate in ``pem``."""
    found = _PEM_CERT.search(pem)
    if found is None:
        raise ValueError("no certificate in the file")
    return x509.load_pem_x509_certificate(found.group(0)).not_valid_after_utc.timestamp()


class DemoCertificates:
    """The demo CA and its servers' certificates, kept in the state folder across restarts:
    a CA made anew at every start would make every secure server's certificate look changed."""

    def __init__(self, folder: Path) -> None:
        self.ca_file = folder / "demo-ca.pem"
        key_file = folder / "demo-ca.key"
        self.folder = folder / "certs"
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self.ca: trustme.CA | None = None
        if self.ca_file.exists() and key_file.exists():
            try:
                self.ca = trustme.CA.from_pem(self.ca_file.read_bytes(), key_file.read_bytes())
            except ValueError:
                log.warning("the demo CA in %s is unreadable: making a new one", folder)
        if self.ca is None:
            self.ca = trustme.CA(organization_name="NPSP demo CA")
            _write_private(key_file, self.ca.private_key_pem.bytes())
            self.ca.cert_pem.write_to_path(str(self.ca_file))
            for old in self.folder.glob("*.pem"):  # issued by the CA that is gone
                old.unlink()

    def server(self, name: str, lifetime: float | None = None) -> tuple[ssl.SSLContext, float]:
        """A server context with the certificate ``name`` (kept, or issued now) and its expiry.

        ``lifetime``: the certificate lives that long and is renewed when less than a day is
        left; without it, it is valid for centuries (trustme's default)."""
        assert self.ca is not None
        path = self.folder / f"{name}.pem"
        pem = path.read_bytes() if path.exists() else None
        try:
            not_after = _not_after(pem) if pem is not None else 0.0
        except ValueError:
            pem, not_after = None, 0.0
        if pem is None or (lifetime is not None and not_after - time.time() < DAY):
            expiry = None
            if lifetime is not None:
                expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
            leaf = self.ca.issue_cert("localhost", "127.0.0.1", not_after=expiry)
            pem = leaf.private_key_and_cert_chain_pem.bytes()
            _write_private(path, pem)
            not_after = _not_after(pem)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(path)
        return ctx, not_after


class Fleet:
    """The simulated agencies' servers."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.certs = DemoCertificates(workdir)
        self.ca_file = self.certs.ca_file
        self.runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}
        self.started = time.monotonic()
        self.expiring_not_after = 0.0
        # The dossier API's client secret, in a file the api check reads (as a credential).
        self.client_secret_file = workdir / "dossier-api-client-secret"
        if not self.client_secret_file.exists():
            _write_private(self.client_secret_file, secrets.token_urlsafe(24).encode())
        self._client_secret = self.client_secret_file.read_text().strip()
        self._tokens: set[str] = set()

    def _ssl(self, name: str) -> ssl.SSLContext:
        return self.certs.server(name)[0]

    def expiring_days(self, now: float) -> int:
        """Whole days the expiring certificate has left, counted as the tls probe counts."""
        return int((self.expiring_not_after - now) // DAY)

    async def _serve(self, name: str, handler: Any, tls: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
        self.runners.append(runner)
        self.ports[name] = port

    async def start(self) -> None:
        async def ok(_r: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def status_api(_r: web.Request) -> web.Response:
            now = dt.datetime.now(dt.UTC).isoformat()
            return web.json_response({"connected": True, "last_sync": now})

        async def flapping(_r: web.Request) -> web.Response:
            # FLAP_PHASE seconds up, as many down, over and over
            phase = int((time.monotonic() - self.started) // FLAP_PHASE) % 2
            return (
                web.Response(text="ok")
                if phase == 0
                else web.Response(status=503, text="overloaded")
            )

        async def slow(_r: web.Request) -> web.Response:
            await asyncio.sleep(1.5)
            return web.Response(text="ok, eventually")

        async def stale_sync(_r: web.Request) -> web.Response:
            last = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=STALE_SYNC_AGE)
            return web.json_response({"connected": True, "last_sync": last.isoformat()})

        await self._serve("https", ok, self._ssl("https"))
        await self._serve("dossier-api", self._dossier_api, self._ssl("dossier-api"))
        await self._serve("stale-sync", stale_sync)
        await self._serve("status-api", status_api, self._ssl("status-api"))
        await self._serve("http", ok)
        await self._serve("flapping", flapping)
        await self._serve("slow", slow)
        expiring, self.expiring_not_after = self.certs.server("expiring", EXPIRING_LIFETIME)
        await self._serve("expiring", ok, expiring)
        self.ports["dead"] = free_port()  # nothing listens there

    async def _dossier_api(self, request: web.Request) -> web.Response:
        """A secure server's dossier API: an OAuth2 token (client credentials, HTTP Basic), then
        a lookup by code and the dossier's progress, each with the bearer."""
        now = dt.datetime.now(dt.UTC).isoformat()
        if request.path == "/oauth2/token" and request.method == "POST":
            pair = f"{DOSSIER_CLIENT_ID}:{self._client_secret}".encode()
            expected = "Basic " + base64.b64encode(pair).decode()
            if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
                return web.json_response({"error": "invalid_client"}, status=401)
            token = secrets.token_urlsafe(24)
            self._tokens = {*list(self._tokens)[-20:], token}  # a few live tokens, bounded
            return web.json_response(
                {"access_token": token, "token_type": "Bearer", "expires_in": 300}
            )
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self._tokens:
            return web.json_response({"error": "invalid_token"}, status=401)
        if request.path == "/api/v1/dossiers/lookup" and request.method == "POST":
            wanted = await request.json()
            code = wanted.get("code") if isinstance(wanted, dict) else None
            return web.json_response(
                {"data": {"id": "HS-2026-000123", "code": code, "status": "OK", "updated_at": now}}
            )
        if request.path == "/api/v1/dossiers/HS-2026-000123/progress":
            return web.json_response({"step": "đang xử lý", "updated_at": now})
        return web.json_response({"error": "not_found"}, status=404)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
