"""The acting /api/v1 on the whole daemon (in-process, real loopback targets): an RBAC matrix of
every role × every endpoint × own and another agency; revocation on the next request; grants
within reach only; the audit log; throttled failed logins; clear 4xx answers; the OpenAPI
document against the real routes; mTLS login with trustme certificates; schemathesis over the
OpenAPI document against a daemon subprocess finds no 5xx."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from monitor import accounts
from monitor.app import Daemon
from monitor.config import load_config

from .conftest import TcpTarget
from .peers import free_port
from .test_daemon import Running, write_config

pytestmark = pytest.mark.timeout(120)

VN = dt.timezone(dt.timedelta(hours=7))
ROLES = ("national-admin", "agency-admin", "operator", "viewer")


def fleet(tmp_path: Path, port: int, **http: Any) -> dict[str, Any]:
    def agency(aid: str) -> dict[str, Any]:
        return {
            "id": aid,
            "kind": "ministry",
            "name_vi": f"Bộ {aid}",
            "name_en": f"Ministry {aid}",
            "code": aid.upper(),
            "contacts": [
                {
                    "name": f"KT {aid}",
                    "role": "technical-admin",
                    "portal_account": f"kt.{aid}",
                    "channels": ["inbox"],
                }
            ],
            "systems": [
                {
                    "id": "secure-server",
                    "kind": "secure-server",
                    "name": "Máy chủ bảo mật",
                    "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
                }
            ],
        }

    return {
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {"interval": "500ms", "timeout": "200ms"},
        "agencies": [agency("bo-a"), agency("bo-b")],
        **({"http": http} if http else {}),
    }


class Caller:
    """HTTP calls to the running daemon as one account (or none)."""

    def __init__(self, base: str, token: str | None, ssl_ctx: ssl.SSLContext | None = None):
        self.base = base
        self.token = token
        self.ssl = ssl_ctx

    async def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.base + path, data=data, headers=headers, ssl=self.ssl
            ) as r,
        ):
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


class World:
    def __init__(self, running: Running) -> None:
        self.running = running
        self.tokens: dict[tuple[str, str | None], str] = {}
        self.ids = itertools.count(1)

    @property
    def store(self) -> Any:
        engine = self.running.daemon.engine
        assert engine is not None
        return engine.store

    async def account(self, role: str, agency: str | None) -> str:
        key = (role, agency)
        if key not in self.tokens:
            _, self.tokens[key] = await accounts.create(
                self.store,
                actor=None,
                account_id=f"{role}-{agency or 'vpcp'}",
                name=f"{role} {agency}",
                role=role,
                agency=None if role == "national-admin" else agency,
                agencies={"bo-a", "bo-b"},
                now=time.time(),
            )
        return self.tokens[key]

    async def caller(self, role: str | None, agency: str | None = "bo-a") -> Caller:
        token = None if role is None else await self.account(role, agency)
        return Caller(self.running.base, token)


@pytest.fixture
async def world(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[World]:
    target = await tcp_target()
    path = write_config(tmp_path / "npsp.yaml", fleet(tmp_path, target.port))
    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(daemon, task)
    yield World(running)
    await running.stop()


def in_days(days: int) -> str:
    return (dt.datetime.now(VN) + dt.timedelta(days=days)).isoformat()


# ----- the RBAC matrix -------------------------------------------------------------------------

# (method, path, body for agency X or None, expected by role for own agency and for another one)
# "own"/"other" refer to the agency in the path or body; a national-admin has no agency.
Matrix = dict[str, tuple[int, int]]  # role -> (own, other)


def expect(
    national: int, admin: tuple[int, int], operator: tuple[int, int], viewer: tuple[int, int]
) -> Matrix:
    return {
        "national-admin": (national, national),
        "agency-admin": admin,
        "operator": operator,
        "viewer": viewer,
    }


READ = expect(200, (200, 200), (200, 200), (200, 200))  # lists: filtered, never refused
SCOPED_READ = expect(200, (200, 403), (200, 403), (200, 403))
ACT = expect(201, (201, 403), (201, 403), (403, 403))
ADMIN_ONLY = expect(200, (200, 200), (403, 403), (403, 403))


def endpoints(n: int) -> list[tuple[str, str, Callable[[str], Any], Matrix]]:
    """Each endpoint with a body builder for agency X; ``n`` makes ids unique per cell."""
    return [
        ("GET", "/api/v1/whoami", lambda a: None, READ),
        ("GET", "/api/v1/agencies", lambda a: None, READ),
        ("GET", "/api/v1/systems", lambda a: None, READ),
        ("GET", "/api/v1/systems/{a}/secure-server", lambda a: None, SCOPED_READ),
        ("GET", "/api/v1/state-changes", lambda a: None, READ),
        ("GET", "/api/v1/catalog/secure-servers", lambda a: None, READ),
        ("GET", "/api/v1/incidents", lambda a: None, READ),
        ("POST", "/api/v1/incidents", lambda a: {"agency": a, "summary": f"req {n}"}, ACT),
        ("GET", "/api/v1/announcements", lambda a: None, READ),
        (
            "POST",
            "/api/v1/announcements",
            lambda a: {
                "agency": a,
                "ref": f"r{n}",
                "effective_at": in_days(30),
                "changes": {"port": 9000 + n},
            },
            ACT,
        ),
        ("GET", "/api/v1/maintenance", lambda a: None, READ),
        (
            "POST",
            "/api/v1/maintenance",
            lambda a: {
                "starts": in_days(20),
                "ends": in_days(20.1),
                "reason": f"m{n}",
                "scope": [a],
            },  # type: ignore[arg-type]
            ACT,
        ),
        ("GET", "/api/v1/silences", lambda a: None, READ),
        (
            "POST",
            "/api/v1/silences",
            lambda a: {"agency": a, "ends": in_days(1), "reason": "x"},
            expect(201, (403, 403), (403, 403), (403, 403)),  # the Government Office only
        ),
        ("GET", "/api/v1/inbox", lambda a: None, READ),
        ("GET", "/api/v1/accounts", lambda a: None, ADMIN_ONLY),
        (
            "POST",
            "/api/v1/accounts",
            lambda a: {"id": f"new-{n}", "name": "Người mới", "role": "viewer", "agency": a},
            expect(201, (201, 403), (403, 403), (403, 403)),
        ),
        ("GET", "/api/v1/audit", lambda a: None, ADMIN_ONLY),
    ]


async def test_rbac_matrix(world: World) -> None:
    failures = []
    n = itertools.count(1)
    for role in ROLES:
        caller = await world.caller(role, "bo-a")
        for which, agency in (("own", "bo-a"), ("other", "bo-b")):
            for method, path, _body, matrix in endpoints(0):
                cell = next(n)
                builder = dict((p, b) for _, p, b, _ in endpoints(cell))  # fresh ids per cell
                status, answer = await caller.call(
                    method, path.format(a=agency), builder[path](agency)
                )
                want = matrix[role][0 if which == "own" else 1]
                if status != want:
                    failures.append(
                        f"{role:<15} {which:<5} {method} {path}: {status} != {want} {answer}"
                    )
    # Without credentials: 401 everywhere.
    anonymous = await world.caller(None)
    for method, path, body, _ in endpoints(0):
        status, answer = await anonymous.call(method, path.format(a="bo-a"), body("bo-a"))
        if status != 401:
            failures.append(f"anonymous {method} {path}: {status} != 401 {answer}")
    assert not failures, "\n".join(failures)


async def test_lists_show_only_the_callers_agency(world: World) -> None:
    admin = await world.caller("national-admin", None)
    for agency in ("bo-a", "bo-b"):
        status, _ = await admin.call(
            "POST", "/api/v1/incidents", {"agency": agency, "summary": "x"}
        )
        assert status == 201
    viewer = await world.caller("viewer", "bo-a")
    _, listed = await viewer.call("GET", "/api/v1/incidents")
    assert {i["agency"] for i in listed["incidents"]} == {"bo-a"}
    _, systems = await viewer.call("GET", "/api/v1/systems")
    assert {s["agency"] for s in systems["systems"]} == {"bo-a"}
    _, everything = await admin.call("GET", "/api/v1/incidents")
    assert {i["agency"] for i in everything["incidents"]} == {"bo-a", "bo-b"}


# ----- accounts: revocation, grants, audit --------------------------------------------------------


async def test_revoked_account_is_refused_on_its_next_request(world: World) -> None:
    admin = await world.caller("agency-admin", "bo-a")
    status, made = await admin.call(
        "POST",
        "/api/v1/accounts",
        {"id": "op-1", "name": "Trực ca", "role": "operator", "agency": "bo-a"},
    )
    assert status == 201 and made["token"].startswith("npsp_")
    operator = Caller(world.running.base, made["token"])
    assert (await operator.call("GET", "/api/v1/whoami"))[0] == 200
    status, _ = await admin.call("POST", "/api/v1/accounts/op-1/revoke", {})
    assert status == 200
    status, answer = await operator.call("GET", "/api/v1/whoami")
    assert status == 401 and answer == {"error": "invalid or revoked credentials"}
    # The token is stored hashed only, and never appears in any listing.
    rows = await world.store.transact(lambda db: db.execute("SELECT * FROM accounts").fetchall())
    assert made["token"] not in json.dumps(rows)
    _, listed = await admin.call("GET", "/api/v1/accounts")
    assert made["token"] not in json.dumps(listed)


async def test_grants_stay_within_reach(world: World) -> None:
    admin_a = await world.caller("agency-admin", "bo-a")
    await world.account("viewer", "bo-b")
    await world.account("viewer", "bo-a")
    cases = [
        ("viewer-bo-a", "operator", 200),  # below its own role, own agency
        ("viewer-bo-a", "agency-admin", 403),  # not below its own role
        ("viewer-bo-b", "operator", 403),  # another agency
        ("nobody", "viewer", 404),
    ]
    for target, role, want in cases:
        status, answer = await admin_a.call(
            "POST", f"/api/v1/accounts/{target}/grant", {"role": role}
        )
        assert status == want, (target, role, answer)
    national = await world.caller("national-admin", None)
    status, _ = await national.call(
        "POST", "/api/v1/accounts/viewer-bo-b/grant", {"role": "agency-admin"}
    )
    assert status == 200


async def test_the_audit_log_records_who_did_what(world: World) -> None:
    operator = await world.caller("operator", "bo-a")
    status, opened = await operator.call(
        "POST", "/api/v1/incidents", {"agency": "bo-a", "summary": "mất kết nối"}
    )
    assert status == 201
    assert (await operator.call("POST", f"/api/v1/incidents/{opened['id']}/ack", {}))[0] == 200
    assert (
        await operator.call(
            "POST", f"/api/v1/incidents/{opened['id']}/comments", {"text": "đang xử lý"}
        )
    )[0] == 201
    bad = Caller(world.running.base, "npsp_wrong")
    assert (await bad.call("GET", "/api/v1/whoami"))[0] == 401
    national = await world.caller("national-admin", None)
    _, log = await national.call("GET", "/api/v1/audit")
    actions = [(e["actor"], e["action"]) for e in log["audit"]]
    assert ("operator-bo-a", "incident.open") in actions
    assert ("operator-bo-a", "incident.ack") in actions
    assert ("operator-bo-a", "incident.comment") in actions
    assert any(a == "login.failed" for _, a in actions)
    assert "npsp_wrong" not in json.dumps(log)
    _, detail = await operator.call("GET", f"/api/v1/incidents/{opened['id']}")
    assert detail["acknowledged_by"] == "operator bo-a (operator-bo-a)"
    assert detail["comments"][0]["text"] == "đang xử lý"


async def test_failed_logins_are_throttled(world: World) -> None:
    bad = Caller(world.running.base, "npsp_guess")
    statuses = [(await bad.call("GET", "/api/v1/whoami"))[0] for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    # Guessing costs the guesser only: a valid token from the same address still works.
    good = await world.caller("viewer", "bo-a")
    assert (await good.call("GET", "/api/v1/whoami"))[0] == 200
    rows = await world.store.transact(
        lambda db: db.execute("SELECT COUNT(*) FROM audit WHERE action = 'login.failed'").fetchone()
    )
    assert rows[0] == 10  # blocked guesses are not written again and again


async def test_cross_site_posts_are_refused(world: World) -> None:
    """A browser sends a client certificate (or would send a cookie) by itself: a page on
    another site must not make it act."""
    admin = await world.caller("national-admin", None)
    body = json.dumps({"agency": "bo-a", "summary": "x"}).encode()
    base = world.running.base
    cases = [
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403),
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ({"Content-Type": "text/plain"}, 403),  # a form-like body: no CORS preflight needed
        ({"Origin": base, "Content-Type": "application/json"}, 201),
    ]
    for headers, want in cases:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                base + "/api/v1/incidents",
                data=body,
                headers={"Authorization": f"Bearer {admin.token}", **headers},
            ) as r,
        ):
            assert r.status == want, (headers, await r.text())


async def test_an_account_cannot_take_another_agencys_inbox(world: World) -> None:
    engine = world.running.daemon.engine
    assert engine is not None
    admin_a = await world.caller("agency-admin", "bo-a")
    # Named like a configured contact of bo-b (see fleet(): kt.bo-b), or asking for it.
    status, answer = await admin_a.call(
        "POST",
        "/api/v1/accounts",
        {"id": "kt.bo-b", "name": "x", "role": "viewer", "agency": "bo-a"},
    )
    assert status == 403 and "belongs to bo-b" in answer["error"]
    status, answer = await admin_a.call(
        "POST",
        "/api/v1/accounts",
        {"id": "x1", "name": "x", "role": "viewer", "agency": "bo-a", "portal_account": "kt.bo-b"},
    )
    assert status == 403


async def test_heartbeats_are_not_login_attempts(world: World) -> None:
    for _ in range(15):
        status, _ = await Caller(world.running.base, "some-heartbeat-token").call(
            "POST", "/api/v1/heartbeat/bo-a/secure-server", {}
        )
        assert status == 404  # no heartbeat check there; never 401/429 from the login throttle
    good = await world.caller("viewer", "bo-a")
    assert (await good.call("GET", "/api/v1/whoami"))[0] == 200


# ----- clear 4xx answers ---------------------------------------------------------------------------


async def test_bad_requests_get_a_reason(world: World) -> None:
    op = await world.caller("national-admin", None)
    cases: list[tuple[str, str, Any, bytes | None, int, str]] = [
        ("POST", "/api/v1/incidents", None, b"{not json", 400, "not JSON"),
        ("POST", "/api/v1/incidents", None, b"[1]", 400, "JSON object"),
        (
            "POST",
            "/api/v1/incidents",
            {"agency": "bo-a", "summary": "x", "colour": 1},
            None,
            400,
            "colour: Extra inputs",
        ),
        (
            "POST",
            "/api/v1/incidents",
            {"agency": "bo-a", "summary": 5},
            None,
            400,
            "summary: Input should be a valid string",
        ),
        ("POST", "/api/v1/incidents/nope@1/ack", {}, None, 404, "unknown incident"),
        ("POST", "/api/v1/announcements/999/cancel", {}, None, 404, "unknown announcement"),
        ("POST", "/api/v1/maintenance/abc/cancel", {}, None, 404, "unknown maintenance"),
        (
            "POST",
            "/api/v1/silences",
            {"agency": "bo-a", "system": "nope", "ends": in_days(1), "reason": "x"},
            None,
            404,
            "unknown system",
        ),
        (
            "POST",
            "/api/v1/silences",
            {"agency": "bo-a", "ends": in_days(30), "reason": "x"},
            None,
            400,
            "at most 7 days",
        ),
        (
            "POST",
            "/api/v1/announcements",
            {"agency": "bo-a", "effective_at": "2020-01-01", "changes": {"port": 1}},
            None,
            400,
            "is not after announced_at",
        ),
        (
            "POST",
            "/api/v1/maintenance",
            {"starts": in_days(1), "ends": in_days(1.1), "reason": "r", "scope": ["bo-a"]},
            None,
            400,
            "--override",
        ),
        ("POST", "/api/v1/incidents", None, b"{" + b'"a": "' + b"x" * 70_000 + b'"}', 413, ""),
    ]
    cases += [
        ("GET", "/api/v1/state-changes?limit=²", None, None, 400, "whole number"),
        ("POST", "/api/v1/silences/²/cancel", {}, None, 404, "unknown silence"),
        ("POST", "/api/v1/inbox/¹²/read", {}, None, 404, "unknown message"),
        (
            "POST",
            "/api/v1/maintenance",
            {
                "starts": in_days(-5),
                "ends": in_days(1),
                "reason": "r",
                "scope": ["bo-a"],
                "override_reason": "x",
            },
            None,
            400,
            "cannot start in the past",
        ),
        (
            "POST",
            "/api/v1/maintenance",
            {
                "starts": "0001-01-01T00:00:00+14:00",
                "ends": in_days(1),
                "reason": "r",
                "scope": ["bo-a"],
            },
            None,
            400,
            "out of range",
        ),
    ]
    for method, path, body, raw, want, reason in cases:
        status, answer = await op.call(method, path, body, raw)
        assert status == want, (path, body, answer)
        if reason:
            assert reason in answer["error"], (path, answer)


# ----- the OpenAPI document matches the real routes ------------------------------------------------


async def test_openapi_document_matches_the_routes(world: World) -> None:
    status, doc = await Caller(world.running.base, None).call("GET", "/api/v1/openapi.json")
    assert status == 200
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    app_routes = set()
    runner = world.running.daemon
    assert runner.engine is not None
    # The real routes, from a fresh app built the way the daemon builds it.
    from monitor.metrics import DaemonMetrics
    from monitor.web.app import build_app

    assert runner.rules is not None
    app = build_app(
        runner.engine,
        DaemonMetrics(),
        runner.rules,
        authenticator=runner.authenticator,
        routes=runner.api_routes,
        extra_routes=runner.extra_routes,
    )
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if (
            path.startswith("/api/v1/")
            and route.method != "HEAD"
            and path != "/api/v1/openapi.json"
        ):
            app_routes.add((route.method, path.replace("{id:.+}", "{id}")))
    assert app_routes == documented - {("GET", "/api/v1/openapi.json")}
    assert ("POST", "/api/v1/heartbeat/{agency}/{system}") in app_routes


# ----- mTLS ---------------------------------------------------------------------------------------


async def test_mtls_login(tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]) -> None:
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.pem")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "client-ca.pem")
    target = await tcp_target()
    path = write_config(
        tmp_path / "npsp.yaml",
        fleet(
            tmp_path,
            target.port,
            tls_cert=str(tmp_path / "server.pem"),
            tls_key=str(tmp_path / "server.key"),
            client_ca=str(tmp_path / "client-ca.pem"),
        ),
    )
    good = ca.issue_cert("nguyen-van-a@bo-a.example")
    expired = ca.issue_cert(
        "expired@bo-a.example",
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
        not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    stranger = other_ca.issue_cert("nguyen-van-a@bo-a.example")

    def identity(leaf: trustme.LeafCert) -> accounts.CertIdentity:
        return accounts.identity_from_file(leaf.cert_chain_pems[0].bytes())

    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(daemon, task)
    try:
        assert daemon.engine is not None
        for leaf, account_id in ((good, "cert-a"), (expired, "cert-expired")):
            await accounts.create(
                daemon.engine.store, actor=None, account_id=account_id, name=account_id,
                role="operator", agency="bo-a", agencies={"bo-a", "bo-b"}, now=time.time(),
                cert=identity(leaf),
            )  # fmt: skip
        base = f"https://127.0.0.1:{daemon.http_port}"

        def client(leaf: trustme.LeafCert | None) -> ssl.SSLContext:
            ctx = ssl.create_default_context()
            ca.configure_trust(ctx)
            if leaf is not None:
                leaf.configure_cert(ctx)
            return ctx

        status, me = await Caller(base, None, client(good)).call("GET", "/api/v1/whoami")
        assert status == 200 and me["id"] == "cert-a"
        status, _ = await Caller(base, None, client(None)).call("GET", "/api/v1/whoami")
        assert status == 401  # no certificate, no token
        for leaf in (stranger, expired):
            with pytest.raises(aiohttp.ClientError):
                await Caller(base, None, client(leaf)).call("GET", "/api/v1/whoami")
        # The listener still serves token logins and /healthz over TLS.
        _, token = await accounts.create(
            daemon.engine.store, actor=None, account_id="tok", name="tok", role="viewer",
            agency="bo-b", agencies={"bo-a", "bo-b"}, now=time.time(),
        )  # fmt: skip
        status, me = await Caller(base, token, client(None)).call("GET", "/api/v1/whoami")
        assert status == 200 and me["agency"] == "bo-b"
    finally:
        await running.stop()


# ----- schemathesis ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None,
    reason="schemathesis is not installed",
)
async def test_schemathesis_finds_no_server_error(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> None:
    target = await tcp_target()
    port = free_port()
    data = fleet(tmp_path, target.port)
    data["listen"] = f"127.0.0.1:{port}"
    path = write_config(tmp_path / "npsp.yaml", data)
    config = load_config(path)
    from monitor.store import Store

    store = await Store.open(config.state_db)
    _, token = await accounts.create(
        store, actor=None, account_id="fuzz", name="fuzz", role="national-admin", agency=None,
        agencies=set(), now=time.time(),
    )  # fmt: skip
    await store.close()
    with (tmp_path / "daemon.log").open("wb") as log_file:
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "-c", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                async with aiohttp.ClientSession() as s, s.get(base + "/healthz") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        st = str(Path(sys.executable).parent / "schemathesis")
        result = await asyncio.to_thread(
            subprocess.run,
            [
                st, "run", f"{base}/api/v1/openapi.json",
                "-H", f"Authorization: Bearer {token}",
                "--checks", "not_a_server_error",
                "--max-examples", "15",
                "--request-timeout", "10",
                "--generation-deterministic",
            ],
            capture_output=True, text=True, timeout=100, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        assert "Unresolvable" not in result.stdout, result.stdout[-3000:]
    finally:
        daemon.terminate()
        await daemon.wait()
    log = (tmp_path / "daemon.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_accounts_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bootstrap a national-admin, list, revoke; a second revocation is refused with exit 2."""
    from monitor.cli import main

    config = write_config(
        tmp_path / "c.yaml", {"state_db": str(tmp_path / "state.db"), "agencies": []}
    )
    c = ["-c", str(config)]
    assert (
        main(
            [
                "accounts",
                "create",
                *c,
                "--id",
                "ops",
                "--name",
                "Ops",
                "--role",
                "national-admin",
                "--json",
                "--init",
            ]
        )
        == 0
    )
    made = json.loads(capsys.readouterr().out)
    assert made["account"]["role"] == "national-admin" and made["token"].startswith("npsp_")
    assert main(["accounts", "list", *c]) == 0
    assert "ops" in capsys.readouterr().out
    assert main(["accounts", "revoke", *c, "ops"]) == 0
    assert main(["accounts", "revoke", *c, "ops"]) == 2
    assert "already revoked" in capsys.readouterr().err
    assert main(["accounts", "create", *c, "--id", "x", "--name", "X", "--role", "viewer"]) == 2
    assert "belongs to one agency" in capsys.readouterr().err
