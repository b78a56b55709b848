"""Logins as an attacker would try them, against the whole daemon over real HTTP(S) on loopback
(issue 10, items 1, 2, 7 and 9): certificates made with trustme CAs (and leaves of our own
making signed by them, for subjects trustme will not write), the login form's ``next``
resolved by a real Chromium, and page sessions that logout, revocation and time end."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor import accounts, audit
from monitor.accounts import cli_actor
from monitor.app import Daemon
from monitor.config import load_config
from monitor.web.auth import COOKIE

from .conftest import TcpTarget
from .test_api import fleet
from .test_daemon import Running, write_config
from .test_pages import devtools, usable_chromium

pytestmark = pytest.mark.timeout(120)
AGENCIES = {"bo-a", "bo-b"}


# ----- certificates -----------------------------------------------------------------------------


@dataclass
class Leaf:
    cert: Path
    key: Path

    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER
        )

    def serial(self) -> str:
        return f"{x509.load_pem_x509_certificate(self.cert.read_bytes()).serial_number:X}"


def issue(ca: trustme.CA, folder: Path, name: str, *attributes: tuple[Any, str]) -> Leaf:
    """A client certificate signed by ``ca`` whose subject is exactly ``attributes`` (trustme
    always adds an O and an OU of its own, and the attack needs a lone CN)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = Leaf(folder / f"{name}.pem", folder / f"{name}.key")
    leaf.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    leaf.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return leaf


# ----- the daemon -------------------------------------------------------------------------------


@dataclass
class Site:
    running: Running
    ca: trustme.CA
    other_ca: trustme.CA
    base: str

    @property
    def store(self) -> Any:
        engine = self.running.daemon.engine
        assert engine is not None
        return engine.store

    def tls(self, leaf: Leaf | None = None) -> ssl.SSLContext | None:
        if not self.base.startswith("https:"):
            return None
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if leaf is not None:
            ctx.load_cert_chain(leaf.cert, leaf.key)
        return ctx

    async def call(
        self,
        method: str,
        path: str,
        *,
        leaf: Leaf | None = None,
        token: str | None = None,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        cookie: str | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["Cookie"] = f"{COOKIE}={cookie}"
        data: Any = form
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        # Cookies are sent by hand: a Secure one would not leave a jar over plain HTTP.
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
            http.request(
                method,
                self.base + path,
                data=data,
                headers=sent,
                ssl=self.tls(leaf) or False,
                allow_redirects=False,
            ) as r,
        ):
            text = await r.text()
            try:
                return r.status, json.loads(text), r
            except ValueError:
                return r.status, text, r

    async def account(self, account_id: str, role: str, agency: str | None = None) -> str:
        _, token = await accounts.create(
            self.store,
            actor=None,
            account_id=account_id,
            name=f"Tài khoản {account_id}",
            role=role,
            agency=agency,
            agencies=AGENCIES,
            now=time.time(),
        )
        return token

    async def whoami(self, leaf: Leaf) -> str | None:
        status, me, _ = await self.call("GET", "/api/v1/whoami", leaf=leaf)
        assert status in (200, 401), (status, me)
        return me["id"] if status == 200 else None

    async def column(self, sql: str, *args: Any) -> list[Any]:
        return await self.store.transact(  # type: ignore[no-any-return]
            lambda db: [r[0] for r in db.execute(sql, args)]
        )


SiteFactory = Callable[..., Awaitable[Site]]


@pytest.fixture
async def make_site(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[SiteFactory]:
    """Start the real daemon: over TLS with two client CAs (``tls=True``), or plain HTTP."""
    started: list[Running] = []

    async def make(*, tls: bool = False, **http: Any) -> Site:
        folder = tmp_path / f"site-{len(started)}"
        folder.mkdir()
        ca, other_ca = trustme.CA(), trustme.CA()
        if tls:
            server = ca.issue_cert("127.0.0.1", "localhost")
            server.cert_chain_pems[0].write_to_path(folder / "server.pem")
            server.private_key_pem.write_to_path(folder / "server.key")
            # http.client_ca lists two CAs: both may issue client certificates.
            (folder / "client-ca.pem").write_bytes(ca.cert_pem.bytes() + other_ca.cert_pem.bytes())
            http.update(
                tls_cert=str(folder / "server.pem"),
                tls_key=str(folder / "server.key"),
                client_ca=str(folder / "client-ca.pem"),
            )
        target = await tcp_target()
        path = write_config(folder / "npsp.yaml", fleet(folder, target.port, **http))
        ready = asyncio.Event()
        daemon = Daemon(path, load_config(path))
        task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        running = Running(daemon, task)
        started.append(running)
        scheme = "https" if tls else "http"
        return Site(running, ca, other_ca, f"{scheme}://127.0.0.1:{daemon.http_port}")

    yield make
    for running in started:
        await running.stop()


VPCP = ((NameOID.COMMON_NAME, "alice"), (NameOID.ORGANIZATION_NAME, "VPCP"))


# ----- 1. a crafted subject, another CA -----------------------------------------------------------


async def test_a_crafted_certificate_subject_does_not_log_in_as_someone_else(
    make_site: SiteFactory, tmp_path: Path
) -> None:
    site = await make_site(tls=True)
    await site.account("alice", "national-admin")
    # Alice's certificate as earlier versions mapped it: by the subject text "CN=alice,O=VPCP".
    await site.store.transact(
        lambda db: db.execute(
            "UPDATE accounts SET cert_subject = 'CN=alice,O=VPCP' WHERE id = 'alice'"
        )
    )
    alice = issue(site.ca, tmp_path, "alice", *VPCP)
    # From the configured CA, one CN holding "alice,O=VPCP": the old code read it as alice's.
    crafted = issue(site.ca, tmp_path, "crafted", (NameOID.COMMON_NAME, "alice,O=VPCP"))
    # The very same subject as alice's, from the other CA http.client_ca lists.
    twin = issue(site.other_ca, tmp_path, "twin", *VPCP)

    assert await site.whoami(crafted) is None
    status, _, _ = await site.call(
        "POST",
        "/api/v1/accounts",
        leaf=crafted,
        body={"id": "mallory", "name": "Mallory", "role": "national-admin"},
    )
    assert status == 401
    assert await site.column("SELECT id FROM accounts WHERE id = 'mallory'") == []
    assert await site.whoami(twin) is None
    # Subjects no longer log anyone in, not even alice's own certificate: she is re-mapped.
    assert await site.whoami(alice) is None
    (listed,) = [a for a in await accounts.list_accounts(site.store) if a.id == "alice"]
    assert listed.legacy_certificate and listed.as_json()["legacy_certificate"]

    identity = accounts.certificate_identity(alice.der())
    assert identity.sha256 == hashlib.sha256(alice.der()).hexdigest()
    ca_name = x509.load_pem_x509_certificate(site.ca.cert_pem.bytes()).subject
    assert identity.issuer == ca_name.rfc4514_string()
    await accounts.map_certificate(
        site.store, actor=None, account_id="alice", cert=identity, now=time.time(), source="cli"
    )
    assert await site.whoami(alice) == "alice"
    assert await site.whoami(crafted) is None
    assert await site.whoami(twin) is None
    # The fingerprint alone is not enough: the issuer recorded with it must be the one that
    # signed the certificate presented.
    other_issuer = x509.load_pem_x509_certificate(site.other_ca.cert_pem.bytes()).subject
    await site.store.transact(
        lambda db: db.execute(
            "UPDATE accounts SET cert_issuer = ? WHERE id = 'alice'",
            (other_issuer.rfc4514_string(),),
        )
    )
    assert await site.whoami(alice) is None


# ----- 2. an agency-admin maps someone else's certificate -----------------------------------------


async def test_an_agency_admin_cannot_take_over_a_certificate_login(
    make_site: SiteFactory, tmp_path: Path
) -> None:
    site = await make_site(tls=True)
    await site.account("ops", "national-admin")
    admin = await site.account("admin-bo-a", "agency-admin", "bo-a")
    ops = issue(site.ca, tmp_path, "ops", (NameOID.COMMON_NAME, "Tổ vận hành"))
    # Mapped by its subject, as earlier versions did.
    await site.store.transact(
        lambda db: db.execute(
            "UPDATE accounts SET cert_subject = 'CN=Tổ vận hành' WHERE id = 'ops'"
        )
    )

    # The attack: a viewer of bo-a "mapped" to the national-admin's certificate (the old code
    # preferred a serial match over a subject match: ops would have logged in as mole).
    for mapping in ({"cert_serial": ops.serial()}, {"cert_subject": "CN=Tổ vận hành"}):
        status, answer, _ = await site.call(
            "POST",
            "/api/v1/accounts",
            token=admin,
            body={"id": "mole", "name": "Mole", "role": "viewer", "agency": "bo-a", **mapping},
        )
        assert status == 403, answer
        assert await site.whoami(ops) != "mole"
    assert await site.column("SELECT id FROM accounts WHERE id = 'mole'") == []

    identity = accounts.certificate_identity(ops.der())
    await accounts.map_certificate(
        site.store, actor=None, account_id="ops", cert=identity, now=time.time(), source="cli"
    )
    assert await site.whoami(ops) == "ops"

    # Through the library too: an agency-admin maps no certificate, not even on its own staff.
    (me,) = [a for a in await accounts.list_accounts(site.store) if a.id == "admin-bo-a"]
    await site.account("viewer-bo-a", "viewer", "bo-a")
    with pytest.raises(accounts.AccountError) as refused:
        await accounts.map_certificate(
            site.store, actor=me, account_id="viewer-bo-a", cert=identity, now=time.time()
        )
    assert refused.value.status == 403
    with pytest.raises(accounts.AccountError) as refused:
        await accounts.create(
            site.store, actor=me, account_id="mole", name="Mole", role="viewer", agency="bo-a",
            agencies=AGENCIES, now=time.time(), cert=identity,
        )  # fmt: skip
    assert refused.value.status == 403
    # A national-admin cannot bind one certificate to two accounts either: identities are unique.
    (national,) = [a for a in await accounts.list_accounts(site.store) if a.id == "ops"]
    with pytest.raises(accounts.AccountError) as refused:
        await accounts.map_certificate(
            site.store, actor=national, account_id="viewer-bo-a", cert=identity, now=time.time()
        )
    assert refused.value.status == 409
    with pytest.raises(accounts.AccountError) as refused:
        await accounts.create(
            site.store, actor=national, account_id="twin", name="Twin", role="viewer",
            agency="bo-a", agencies=AGENCIES, now=time.time(), cert=identity,
        )  # fmt: skip
    assert refused.value.status == 409
    assert await site.whoami(ops) == "ops"

    # Unmapped by a national-admin: the change is in the audit log, with who and what.
    await accounts.map_certificate(
        site.store, actor=national, account_id="ops", cert=None, now=time.time()
    )
    assert await site.whoami(ops) is None
    rows = await audit.audit_log(site.store)
    changes = [r for r in rows if r["action"] == "account.certificate"]
    assert [(r["actor"], r["target"]) for r in changes] == [("ops", "ops"), (cli_actor(), "ops")]
    assert changes[0]["detail"] == {
        "from": {"sha256": identity.sha256, "issuer": identity.issuer},
        "to": None,
    }


async def test_only_a_national_admin_maps_a_certificate_over_http(
    make_site: SiteFactory, tmp_path: Path
) -> None:
    site = await make_site(tls=True)
    national = await site.account("ops", "national-admin")
    admin = await site.account("admin-bo-a", "agency-admin", "bo-a")
    await site.account("kt-bo-a", "operator", "bo-a")
    leaf = issue(site.ca, tmp_path, "kt", (NameOID.COMMON_NAME, "Nguyễn Văn A"))
    identity = accounts.certificate_identity(leaf.der())
    body = {"cert_sha256": identity.sha256, "cert_issuer": identity.issuer}
    path = "/api/v1/accounts/kt-bo-a/certificate"
    status, answer, _ = await site.call("POST", path, token=admin, body=body)
    assert status == 403, answer  # its own staff included
    assert await site.whoami(leaf) is None
    status, answer, _ = await site.call("POST", path, token=national, body=body)
    assert status == 200, answer
    assert await site.whoami(leaf) == "kt-bo-a"
    half = {"cert_sha256": identity.sha256}
    status, answer, _ = await site.call("POST", path, token=national, body=half)
    assert status == 400, answer  # a fingerprint means nothing without its issuer
    status, answer, _ = await site.call("POST", path, token=national, body={})
    assert status == 200, answer
    assert await site.whoami(leaf) is None


def test_the_command_line_maps_certificates_and_flags_old_mappings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main
    from monitor.config import load_config
    from monitor.store import run_with_store

    ca = trustme.CA()
    leaf = issue(ca, tmp_path, "kt", (NameOID.COMMON_NAME, "Nguyễn Văn A"))
    config = write_config(
        tmp_path / "c.yaml",
        {"state_db": str(tmp_path / "state.db"), "agencies": fleet(tmp_path, 1)["agencies"]},
    )
    c = ["-c", str(config)]
    create = ["accounts", "create", *c, "--role", "operator", "--agency", "bo-a"]
    assert main([*create, "--id", "kt", "--name", "A", "--cert", str(leaf.cert), "--init"]) == 0
    capsys.readouterr()
    assert main([*create, "--id", "kt2", "--name", "B", "--cert", str(leaf.cert)]) == 2
    assert "already mapped" in capsys.readouterr().err
    assert main([*create, "--id", "old", "--name", "C", "--cert-serial", "5A3F"]) == 2
    assert "no longer by subject or serial" in capsys.readouterr().err

    def legacy(db: Any) -> None:  # as an earlier version left it
        db.execute("UPDATE accounts SET cert_serial = '5A3F' WHERE id = 'kt2'")

    assert main([*create, "--id", "kt2", "--name", "B"]) == 0
    run_with_store(load_config(config), lambda store: store.transact(legacy))
    capsys.readouterr()
    assert main(["accounts", "list", *c]) == 0
    out = capsys.readouterr()
    assert "NOT MAPPED" in out.out and "re-map" in out.err
    assert f"sha256:{hashlib.sha256(leaf.der()).hexdigest()[:16]}" in out.out

    other = issue(ca, tmp_path, "kt2", (NameOID.COMMON_NAME, "Nguyễn Văn B"))
    assert main(["accounts", "map-cert", *c, "kt2", "--cert", str(other.cert)]) == 0
    capsys.readouterr()
    assert main(["accounts", "list", *c]) == 0
    assert "NOT MAPPED" not in capsys.readouterr().out
    assert main(["accounts", "map-cert", *c, "kt2", "--clear"]) == 0


# ----- 7. where the login form sends the browser --------------------------------------------------

#: ``next`` values a browser would take to another host, and what we must answer instead.
BYPASSES = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\/evil.example/x",
    "\\\\evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r/evil.example/x",
    "\t//evil.example/x",
    " //evil.example/x",
    "//evil.example/x ",
    "/\\\t/evil.example/x",
    "https://evil.example/x",
    "https:evil.example/x",
    "https:/evil.example/x",
    "HTTPS://evil.example/x",
    "javascript:alert(1)",
    "evil.example/x",
    "/\x00/evil.example/x",
    "/\x0c/evil.example/x",
    "///evil.example/x",
]
#: Local paths that stay what they are.
LOCAL = [
    "/inbox",
    "/system/bo-a/secure-server",
    "/%09/evil.example/x",
    "/%2F/evil.example",
    "/.//x",
]


async def _after_login(site: Site, token: str, next_path: str) -> str:
    status, _, response = await site.call(
        "POST", "/login?lang=en", form={"token": token, "next": next_path}
    )
    assert status == 303, next_path
    location = response.headers["Location"]
    assert location.endswith("?lang=en")
    return location.removesuffix("?lang=en")


async def test_login_never_sends_the_browser_to_another_site(make_site: SiteFactory) -> None:
    site = await make_site()
    token = await site.account("kt", "viewer", "bo-a")
    for next_path in BYPASSES:
        assert await _after_login(site, token, next_path) == "/", repr(next_path)
    for next_path in LOCAL:
        assert await _after_login(site, token, next_path) == next_path
    # The form shown for a hostile next carries "/" instead.
    _, page, _ = await site.call("GET", "/login?next=/%09/evil.example")
    assert 'name="next" value="/"' in page
    _, page, _ = await site.call("GET", "/login?next=/%5Cevil.example")
    assert 'name="next" value="/"' in page


async def test_chromium_resolves_every_location_to_our_own_origin(
    make_site: SiteFactory, tmp_path: Path
) -> None:
    """What a browser makes of each ``Location`` we send, asked of a real one."""
    base = await usable_chromium(tmp_path)
    site = await make_site()
    token = await site.account("kt", "viewer", "bo-a")
    locations = [await _after_login(site, token, n) for n in BYPASSES + LOCAL]
    async with devtools(base) as page:
        await page.go(site.base + "/login")
        resolved = await page.js(
            f"{json.dumps(locations)}.map(l => new URL(l, location.href).href)"
        )
        raw = await page.js(f"{json.dumps(BYPASSES)}.map(l => new URL(l, location.href).host)")
    ours = site.base.split("/")[2]
    assert [r.split("/")[2] for r in resolved] == [ours] * len(locations), resolved
    # And the bypasses are real: taken as they came, the browser would go to evil.example.
    hosts = dict(zip(BYPASSES, raw, strict=True))
    for bypass in (
        "/\t/evil.example/x",
        "/\\evil.example/x",
        "\\/evil.example/x",
        "//evil.example/x",
    ):
        assert hosts[bypass] == "evil.example", hosts


# ----- 9. page sessions ---------------------------------------------------------------------------


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def _login(site: Site, token: str, **kw: Any) -> tuple[str, Any]:
    status, _, response = await site.call("POST", "/login", form={"token": token}, **kw)
    assert status == 303
    cookie = response.cookies[COOKIE]
    return cookie.value, cookie


async def test_logout_ends_the_session_on_the_server(make_site: SiteFactory) -> None:
    site = await make_site()
    token = await site.account("kt", "operator", "bo-a")
    session, cookie = await _login(site, token)
    status, page, _ = await site.call("GET", "/", cookie=session)
    assert status == 200 and "Tài khoản kt" in page
    status, _, _ = await site.call("POST", "/logout", form={"csrf": _csrf(page)}, cookie=session)
    assert status == 303
    # A copy of the cookie kept from before the logout (a shared computer, a stolen one) is dead.
    status, _, response = await site.call("GET", "/", cookie=session)
    assert status == 303 and response.headers["Location"].startswith("/login")
    assert await site.column("SELECT COUNT(*) FROM sessions") == [0]

    # The cookie holds a session id, never the token; the server keeps only its hash, and the
    # lifetimes of the config (defaults: 8 h idle, 7 days at most).
    assert session != token and session.startswith("npsps_")
    assert int(cookie["max-age"]) == 7 * 86400
    session, _ = await _login(site, token)
    stored = await site.column("SELECT id_hash FROM sessions WHERE account = 'kt'")
    assert stored == [hashlib.sha256(session.encode()).hexdigest()]
    row = await site.store.transact(
        lambda db: db.execute("SELECT created_at, expires_at, idle FROM sessions").fetchone()
    )
    assert row[1] - row[0] == 7 * 86400 and row[2] == 8 * 3600
    # And the account's permanent token is no cookie: it logs in only as a bearer header.
    status, _, _ = await site.call("GET", "/", cookie=token)
    assert status == 303
    status, _, _ = await site.call("GET", "/", token=token)
    assert status == 200


async def test_sessions_end_when_idle_too_long_and_after_their_lifetime(
    make_site: SiteFactory,
) -> None:
    site = await make_site(session_idle="2m", session_max="10m")
    token = await site.account("kt", "viewer", "bo-a")

    def age(column: str, by: float) -> Callable[[Any], Any]:
        return lambda db: db.execute(f"UPDATE sessions SET {column} = {column} - ?", (by,))

    # Unused for longer than session_idle: over.
    session, _ = await _login(site, token)
    assert (await site.call("GET", "/", cookie=session))[0] == 200
    await site.store.transact(age("last_seen", 121))
    assert (await site.call("GET", "/", cookie=session))[0] == 303
    assert await site.column("SELECT COUNT(*) FROM sessions") == [0]  # deleted when met

    # Used all along but older than session_max: over too.
    session, _ = await _login(site, token)
    await site.store.transact(age("created_at", 601))
    await site.store.transact(age("expires_at", 601))
    assert (await site.call("GET", "/", cookie=session))[0] == 303

    # Use keeps a session alive past one idle period.
    session, _ = await _login(site, token)
    await site.store.transact(age("last_seen", 100))
    assert (await site.call("GET", "/", cookie=session))[0] == 200
    await site.store.transact(age("created_at", 100))
    assert (await site.call("GET", "/", cookie=session))[0] == 200


async def test_expired_sessions_are_no_failed_logins(make_site: SiteFactory) -> None:
    """Review of issue 10: a morning of expired cookies behind one proxy or NAT counted as
    failed logins, wrote "login failed" to the audit log and locked the address out — the
    right token included. An ended session only means "not logged in"."""
    site = await make_site(session_idle="2m")
    token = await site.account("kt", "viewer", "bo-a")
    sessions = [(await _login(site, token))[0] for _ in range(15)]
    await site.store.transact(
        lambda db: db.execute("UPDATE sessions SET last_seen = last_seen - 121")
    )
    for session in sessions:
        assert (await site.call("GET", "/", cookie=session))[0] == 303  # to the login page
    assert await site.column("SELECT COUNT(*) FROM audit WHERE action = 'login.failed'") == [0]
    session, _ = await _login(site, token)  # the right token still logs in
    assert (await site.call("GET", "/", cookie=session))[0] == 200


async def test_revoking_an_account_ends_its_sessions_at_once(make_site: SiteFactory) -> None:
    site = await make_site()
    admin = await site.account("admin-bo-a", "agency-admin", "bo-a")
    token = await site.account("kt", "operator", "bo-a")
    first, _ = await _login(site, token)
    second, _ = await _login(site, token)
    for session in (first, second):
        assert (await site.call("GET", "/inbox", cookie=session))[0] == 200
    status, _, _ = await site.call("POST", "/api/v1/accounts/kt/revoke", token=admin, body={})
    assert status == 200
    for session in (first, second):
        assert (await site.call("GET", "/inbox", cookie=session))[0] == 303
    assert await site.column("SELECT COUNT(*) FROM sessions WHERE account = 'kt'") == [0]


async def test_the_cookie_is_secure_over_tls_and_behind_a_trusted_proxy(
    make_site: SiteFactory,
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    site = await make_site(trusted_proxies=["127.0.0.0/8", "::1/128"])
    token = await site.account("kt", "viewer", "bo-a")
    _, cookie = await _login(site, token)
    assert not cookie["secure"]  # plain HTTP, no proxy said otherwise
    session, cookie = await _login(site, token, headers=https)
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    status, page, _ = await site.call("GET", "/", cookie=session, headers=https)
    assert status == 200
    _, _, response = await site.call(
        "POST", "/logout", form={"csrf": _csrf(page)}, cookie=session, headers=https
    )
    assert response.cookies[COOKIE]["secure"]

    # Nobody is trusted by default: the header from a client is ignored.
    site = await make_site()
    token = await site.account("kt", "viewer", "bo-a")
    _, cookie = await _login(site, token, headers=https)
    assert not cookie["secure"]

    # The listener's own TLS.
    site = await make_site(tls=True)
    token = await site.account("kt", "viewer", "bo-a")
    _, cookie = await _login(site, token)
    assert cookie["secure"]


def test_an_issuer_is_stored_in_the_form_a_certificate_gives() -> None:
    """Review of issue 10: an issuer typed in another form (hex escapes, OpenSSL's
    "C = VN, O = …") was stored, accepted, and never matched at login."""
    fingerprint = "ab" * 32
    typed = r"CN=CA phục vụ các cơ quan\2C tổ chức,O=Ban Cơ yếu\20Chính phủ,C=VN"
    same = accounts.parse_identity(fingerprint, typed)
    assert same.issuer == r"CN=CA phục vụ các cơ quan\, tổ chức,O=Ban Cơ yếu Chính phủ,C=VN"
    with pytest.raises(accounts.AccountError, match="not an RFC 4514 DN"):
        accounts.parse_identity(fingerprint, "C = VN, O = Ban Co yeu")


async def test_behind_a_trusted_proxy_one_guesser_does_not_lock_everyone_out(
    make_site: SiteFactory,
) -> None:
    """Behind a reverse proxy every client was the proxy's address: ten wrong tokens from one
    of them got every user of the portal 429. The proxy listed in http.trusted_proxies, the
    address it forwards is the client."""
    site = await make_site(trusted_proxies=["127.0.0.0/8", "::1/128"], login_failures_per_minute=3)
    token = await site.account("kt", "viewer", "bo-a")
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    statuses = [
        (await site.call("GET", "/api/v1/whoami", token="npsp_wrong", headers=guesser))[0]
        for _ in range(5)
    ]
    assert statuses[-1] == 429, statuses
    someone_else = {"X-Forwarded-For": "198.51.100.7"}
    assert (await site.call("GET", "/api/v1/whoami", token=token, headers=someone_else))[0] == 200
    # Nor can the guesser pick another address by sending the header itself: the proxy
    # appends the real one, and that is the one counted.
    spoofed = {"X-Forwarded-For": "198.51.100.8, 203.0.113.66"}
    assert (await site.call("GET", "/api/v1/whoami", token="npsp_x", headers=spoofed))[0] == 429


async def test_behind_a_trusted_proxy_the_login_page_counts_the_forwarded_client(
    make_site: SiteFactory,
) -> None:
    """The same for the login form (review of issue 12): it counted and audited the proxy's own
    address, so one guesser behind the proxy locked every person out of the pages."""
    site = await make_site(trusted_proxies=["127.0.0.0/8", "::1/128"], login_failures_per_minute=3)
    token = await site.account("kt", "viewer", "bo-a")
    guesser = {"X-Forwarded-For": "203.0.113.66"}
    statuses = [
        (await site.call("POST", "/login", form={"token": "npsp_wrong"}, headers=guesser))[0]
        for _ in range(5)
    ]
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429, statuses
    await _login(site, token, headers={"X-Forwarded-For": "198.51.100.7"})  # not locked out
    actors = await site.column("SELECT actor FROM audit WHERE action = 'login.failed'")
    assert set(actors) == {"anonymous@203.0.113.66"}
