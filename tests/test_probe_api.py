"""The api probe against a real token endpoint and a real API on loopback (aiohttp, HTTPS with
trustme certificates): steps, extraction, every comparison, the token cache, timeouts, bounds,
bad configs, and secrets that never show."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aiohttp import web
from pydantic import ValidationError

from monitor.config import ConfigError, load_config
from npsp_common.types import ProbeResult
from probes import PROBES, api
from probes.addresspolicy import AddressPolicy
from probes.base import ProbeEnv
from probes.reasons import render
from tests.probe_servers import Certs, make_certs

pytestmark = pytest.mark.timeout(30)

SECRET = "s3cr3t-Kh0ng-Du0c-L0!"  # the client secret: it must never show
STATIC = "static-bearer-0123456789abcdef"
SLACK = 0.5
T0 = 1_796_000_000.0  # the probes' clock (Unix seconds), moved by the tests


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "client-secret"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


# ----- the peer: an identity server and a dossier API in one aiohttp application --------------


@dataclass
class Backend:
    """``POST /oauth2/token`` (client credentials) and ``/api/v1/...`` behind bearer tokens."""

    expires_in: Any = 3600
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    document: Any = field(default_factory=lambda: {"data": {"status": "OK"}})
    raw: bytes | None = None  # a body sent as it is instead of the document
    status: int = 200
    delay: float = 0.0

    async def token(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(("POST", request.path_qs, dict(request.headers), body))
        form = dict(x.split("=", 1) for x in body.decode().split("&"))
        if client_of(request.headers.get("Authorization", "")) != ("npsp-monitor", SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"tok-{len(self.issued) + 1}"
        self.issued.append(token)
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.json_response(answer)

    async def api(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if (token not in self.issued and token != STATIC) or token in self.revoked:
            return web.json_response({"error": "invalid_token"}, status=401)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return web.Response(body=self.raw, status=self.status)
        return web.json_response(self.document, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_route("*", "/api/v1/{tail:.*}", self.api)
        return app


def client_of(authorization: str) -> tuple[str, str] | None:
    """HTTP Basic client credentials, each form-urlencoded first (RFC 6749 2.3.1)."""
    if not authorization.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


@asynccontextmanager
async def serve(app: web.Application, tls: Any = None) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


def token_step(secret_file: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "lấy mã truy cập",
        "token": {
            "url": "/oauth2/token",
            "client_id": "npsp-monitor",
            "client_secret_file": str(secret_file),
            "scope": "dossier.read",
            **extra,
        },
    }


def lookup_step(**extra: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": "tra cứu hồ sơ",
        "method": "POST",
        "path": "/api/v1/dossiers/lookup",
        "body": {"code": "000.00.00.H00-250101-0001"},
        "expect": {"json": [{"path": "$.data.status", "op": "==", "value": "OK"}]},
    }
    step.update(extra)
    return step


def spec(url: str, steps: list[dict[str, Any]], **fields: Any) -> api.Spec:
    return api.Spec.model_validate(
        {"id": "dossier-lookup", "kind": "api", "url": url, "steps": steps, **fields}
    )


async def run(
    probe: Callable[[float], Awaitable[ProbeResult]], timeout: float = 3.0
) -> ProbeResult:
    result = await probe(timeout)
    assert result.duration <= timeout + SLACK
    return result


def vi(result: ProbeResult) -> str:
    assert result.why is not None
    return render(result.why, "vi")


# ----- the transaction -------------------------------------------------------------------------


async def test_token_then_lookup_over_https_reuses_the_token(
    certs: Certs, secret_file: Path
) -> None:
    backend = Backend()
    clock = Clock()
    async with serve(backend.app(), certs.server_context()) as port:
        check = spec(
            f"https://localhost:{port}/",
            [token_step(secret_file), lookup_step()],
            tls={"ca_file": str(certs.ca_file)},
        )
        probe = PROBES["api"].build(check, ProbeEnv(clock=clock))
        first = await run(probe)
        clock.now += 600
        second = await run(probe)
    assert first.ok, first.reason
    assert second.ok, second.reason
    assert not first.degraded
    assert first.reason.startswith("2 steps ok (")
    assert vi(first).startswith("2 bước đều đạt (")
    assert first.status_code == 200
    assert first.cert_not_after is not None
    steps = first.observed["step_ms"].split(",")
    assert len(steps) == 2
    assert all(s.isdigit() for s in steps)
    assert second.observed["step_ms"].split(",")[0] == "0"  # the cached token: no request
    assert backend.issued == ["tok-1"]  # one token for both runs
    token_request, lookup, _ = backend.requests
    assert token_request[1] == "/oauth2/token"
    assert token_request[3] == b"grant_type=client_credentials&scope=dossier.read"
    assert token_request[2]["Content-Type"] == "application/x-www-form-urlencoded"
    assert lookup[:2] == ("POST", "/api/v1/dossiers/lookup")
    assert lookup[2]["Authorization"] == "Bearer tok-1"
    assert lookup[2]["Content-Type"] == "application/json"
    assert json.loads(lookup[3]) == {"code": "000.00.00.H00-250101-0001"}


async def test_the_token_is_fetched_again_shortly_before_it_expires(secret_file: Path) -> None:
    backend = Backend(expires_in=300)
    clock = Clock()

    async def issued_after(seconds: float) -> int:
        clock.now += seconds
        result = await run(probe)
        assert result.ok, result.reason
        return len(backend.issued)

    async with serve(backend.app()) as port:
        check = spec(f"http://127.0.0.1:{port}", [token_step(secret_file), lookup_step()])
        probe = api.build(check, ProbeEnv(clock=clock))
        assert await issued_after(0) == 1
        # kept until a tenth of its life (30 s of 300 s) before it expires
        assert await issued_after(269) == 1
        assert await issued_after(2) == 2
        # a server promising a day is asked again within the hour anyway (3600 s - 60 s)
        backend.expires_in = 86400
        assert await issued_after(300) == 3
        assert await issued_after(3539) == 3
        assert await issued_after(2) == 4
        # one that says nothing: five minutes (300 s - 30 s)
        backend.expires_in = None
        assert await issued_after(3600) == 5
        assert await issued_after(269) == 5
        assert await issued_after(2) == 6
        # nor is a token kept whose life is shorter than the margin
        backend.expires_in = 3
        assert await issued_after(3600) == 7
        assert await issued_after(0) == 8


async def test_a_401_drops_the_cached_token(secret_file: Path) -> None:
    backend = Backend()
    async with serve(backend.app()) as port:
        check = spec(f"http://127.0.0.1:{port}", [token_step(secret_file), lookup_step()])
        probe = api.build(check, ProbeEnv(clock=Clock()))
        assert (await run(probe)).ok
        backend.revoked.add("tok-1")  # the identity server restarted, say
        refused = await run(probe)
        again = await run(probe)
    assert not refused.ok
    assert refused.status_code == 401
    assert refused.reason.startswith("step 2 (tra cứu hồ sơ, ")
    assert refused.reason.endswith(" ms): HTTP 401 (expected 2xx)")
    assert vi(refused).startswith("bước 2 (tra cứu hồ sơ, ")
    assert vi(refused).endswith(" ms): HTTP 401 (cần 2xx)")
    assert again.ok, again.reason
    assert backend.issued == ["tok-1", "tok-2"]


async def test_a_401_with_a_static_token_is_a_failure_and_nothing_more(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(STATIC)
    backend = Backend()
    steps = [{"name": "mã tĩnh", "token": {"token_file": str(token_file)}}, lookup_step()]
    async with serve(backend.app()) as port:
        probe = api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv())
        good = await run(probe)
        backend.revoked.add(STATIC)
        bad = await run(probe)
    assert good.ok, good.reason
    assert backend.requests[0][2]["Authorization"] == f"Bearer {STATIC}"
    assert not bad.ok
    assert "HTTP 401" in bad.reason
    assert STATIC not in bad.reason + json.dumps(bad.why.to_json() if bad.why else None)


async def test_mtls_to_the_api(certs: Certs) -> None:
    backend = Backend(document={"ok": True})
    steps = [{"name": "ping", "path": "/api/v1/ping", "headers": {"Authorization": "Bearer tok"}}]
    backend.issued.append("tok")
    async with serve(backend.app(), certs.server_context(require_client_cert=True)) as port:
        url = f"https://localhost:{port}"
        with_cert = spec(
            url,
            steps,
            tls={
                "ca_file": str(certs.ca_file),
                "client_cert": str(certs.client_cert),
                "client_key": str(certs.client_key),
            },
        )
        without = spec(url, steps, tls={"ca_file": str(certs.ca_file)})
        good = await run(api.build(with_cert, ProbeEnv()))
        bad = await run(api.build(without, ProbeEnv()))
    assert good.ok, good.reason
    assert not bad.ok
    assert bad.reason.startswith("step 1 (ping")


async def test_the_pin_and_validity_rules_are_the_api_hosts_not_the_identity_servers(
    certs: Certs, secret_file: Path
) -> None:
    identity, backend = Backend(), Backend()
    backend.issued = identity.issued  # one realm: the API knows the identity server's tokens
    expiring = certs.server_context(certs.expiring)
    async with (
        serve(identity.app(), expiring) as sso_port,
        serve(backend.app(), certs.server_context()) as api_port,
        serve(backend.app(), expiring) as expiring_api_port,
    ):
        sso = f"https://127.0.0.1:{sso_port}/oauth2/token"
        der = ssl.PEM_cert_to_DER_cert(certs.good.cert_chain_pems[0].bytes().decode())
        tls = {"ca_file": str(certs.ca_file), "min_days_valid": 30}
        pinned = {**tls, "expected_fingerprint_sha256": hashlib.sha256(der).hexdigest()}
        steps = [token_step(secret_file, url=sso), lookup_step()]
        good = await run(
            api.build(spec(f"https://localhost:{api_port}", steps, tls=pinned), ProbeEnv())
        )
        worn = await run(
            api.build(spec(f"https://localhost:{expiring_api_port}", steps, tls=tls), ProbeEnv())
        )
        wrong_pin = await run(
            api.build(spec(f"https://localhost:{expiring_api_port}", steps, tls=pinned), ProbeEnv())
        )
    assert good.ok, good.reason
    assert not good.degraded  # the identity server's certificate expires soon: not ours
    assert worn.ok
    assert worn.degraded
    assert worn.reason.startswith("step 2 (tra cứu hồ sơ, ")
    assert "TLS: certificate expires in 3 days" in worn.reason
    assert not wrong_pin.ok
    assert wrong_pin.reason.startswith("step 2 (tra cứu hồ sơ, ")
    assert "TLS: certificate fingerprint" in wrong_pin.reason
    assert len(identity.issued) == 3  # the token step passed every time


async def test_extracted_values_feed_later_steps() -> None:
    seen: list[web.Request] = []
    bodies: list[bytes] = []

    async def search(request: web.Request) -> web.Response:
        return web.json_response({"items": [{"id": "H00/25 01", "n": 7}, {"id": "other"}]})

    async def dossier(request: web.Request) -> web.Response:
        seen.append(request)
        bodies.append(await request.read())
        return web.json_response({"status": "DONE"})

    app = web.Application()
    app.router.add_get("/search", search)
    app.router.add_route("*", "/dossiers/{id}", dossier)
    steps: list[dict[str, Any]] = [
        {
            "name": "tìm",
            "path": "/search?q=a",
            "extract": {"code": "$.items[0].id", "count": "$.items[0].n"},
        },
        {
            "name": "xem",
            "method": "PUT",
            "path": "/dossiers/${code}?n=${count}",
            "headers": {"X-Count": "${count} items"},
            "body": {"id": "${code}", "n": "${count}", "note": "dossier ${code} (${count})"},
            "expect": {"json": [{"path": "$.status", "op": "==", "value": "DONE"}]},
        },
    ]
    async with serve(app) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()))
    assert result.ok, result.reason
    (request,) = seen
    assert request.raw_path == "/dossiers/H00%2F25%2001?n=7"
    assert request.match_info["id"] == "H00/25 01"
    assert request.headers["X-Count"] == "7 items"
    assert json.loads(bodies[0]) == {"id": "H00/25 01", "n": 7, "note": "dossier H00/25 01 (7)"}


async def test_a_value_that_cannot_be_extracted_fails_the_step() -> None:
    backend = Backend(document={"items": []})
    backend.issued.append("t")
    steps: list[dict[str, Any]] = [
        {
            "name": "tìm",
            "path": "/api/v1/search",
            "headers": {"Authorization": "Bearer t"},
            "extract": {"code": "$.items[0].id"},
        },
        {"name": "xem", "path": "/api/v1/dossiers/${code}"},
    ]
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()))
    assert not result.ok
    assert result.reason.endswith(
        "ms): nothing to extract into code: $.items[0].id selects nothing"
    )
    assert "không lấy được code" in vi(result)
    assert len(backend.requests) == 1  # step 2 never ran


async def test_a_variable_that_cannot_go_in_a_header_fails_the_step() -> None:
    backend = Backend(document={"name": "Hà Nội\r\nX-Evil: 1"})
    backend.issued.append("t")
    steps: list[dict[str, Any]] = [
        {
            "name": "tên",
            "path": "/api/v1/name",
            "headers": {"Authorization": "Bearer t"},
            "extract": {"name": "$.name"},
        },
        {"name": "gửi", "path": "/api/v1/x", "headers": {"X-Name": "${name}"}},
    ]
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()))
    assert not result.ok
    assert result.reason == "step 2 (gửi): the value of name cannot go in header X-Name"
    assert len(backend.requests) == 1


# ----- the comparisons --------------------------------------------------------------------------

DOC = {
    "status": "OK",
    "count": 12,
    "ratio": 0.5,
    "flag": True,
    "none": None,
    "code": "H00-2501",
    "list": [{"state": "OK"}, {"state": "OK"}, {"state": "LATE"}],
    "epoch": T0 - 120,
    "epoch_ms": (T0 - 120) * 1000,
}


def iso_ago(seconds: float) -> str:
    return dt.datetime.fromtimestamp(T0 - seconds, dt.timezone(dt.timedelta(hours=7))).isoformat()


COMPARISONS: list[tuple[str, str, Any, str | None, str | None]] = [
    # path, op, value, None when it holds / else the English reason's tail, the Vietnamese's
    ("$.status", "==", "OK", None, None),
    ("$.status", "==", "ERR", "$.status = 'OK' (expected 'ERR')", "$.status = 'OK' (cần 'ERR')"),
    ("$.count", "==", 12.0, None, None),
    ("$.flag", "==", 1, "$.flag = true (expected 1)", "$.flag = true (cần 1)"),
    ("$.none", "==", None, None, None),
    ("$.status", "!=", "ERR", None, None),
    ("$.status", "!=", "OK", "$.status = 'OK' (expected != 'OK')", "$.status = 'OK' (cần != 'OK')"),
    ("$.count", "<", 13, None, None),
    ("$.count", "<", 12, "$.count = 12 (expected < 12)", "$.count = 12 (cần < 12)"),
    ("$.count", "<=", 12, None, None),
    ("$.count", "<=", 11.5, "$.count = 12 (expected <= 11.5)", "$.count = 12 (cần <= 11.5)"),
    ("$.ratio", ">", 0.25, None, None),
    ("$.ratio", ">", 0.5, "$.ratio = 0.5 (expected > 0.5)", "$.ratio = 0.5 (cần > 0.5)"),
    ("$.count", ">=", 12, None, None),
    ("$.count", ">=", 100, "$.count = 12 (expected >= 100)", "$.count = 12 (cần >= 100)"),
    ("$.code", ">=", "H00", None, None),  # strings compare as text
    (
        "$.code",
        "<",
        5,
        "$.code = 'H00-2501' cannot be compared with 5",
        "$.code = 'H00-2501' không so sánh được với 5",
    ),
    ("$.code", "matches", "^H[0-9]{2}-", None, None),
    ("$.count", "matches", "^1[0-9]$", None, None),  # a number as JSON writes it
    (
        "$.code",
        "matches",
        "^X",
        "$.code = 'H00-2501' does not match /^X/",
        "$.code = 'H00-2501' không khớp mẫu /^X/",
    ),
    ("$.list[*].state", "matches", "^(OK|LATE)$", None, None),
    (
        "$.list[*].state",
        "==",
        "OK",
        "$.list[*].state = 'LATE' (expected 'OK')",
        "$.list[*].state = 'LATE' (cần 'OK')",
    ),
    ("$.list[?@.state == 'LATE'].state", "==", "LATE", None, None),
    ("$.missing", "==", 1, "JSON $.missing is missing", "JSON thiếu trường $.missing"),
    ("$.epoch", "age <", "3m", None, None),
    ("$.epoch", "age <", "2m", "JSON $.epoch is 2m old (limit 2m)", "JSON $.epoch đã cũ 2 phút"),
    ("$.epoch_ms", "age <", "5m", None, None),
    ("$.fresh", "age <", "1h", None, None),
    ("$.stale", "age <", "1h", "JSON $.stale is 1h1m old (limit 1h)", "JSON $.stale đã cũ 1 giờ"),
    # Without an offset, Vietnam's time (as a freshness condition reads it), whatever the
    # gateway's own zone: read as UTC, both would be 7 hours in the future, and pass.
    ("$.local_fresh", "age <", "1h", None, None),
    (
        "$.local_stale",
        "age <",
        "1h",
        "JSON $.local_stale is 1h1m old (limit 1h)",
        "JSON $.local_stale đã cũ 1 giờ",
    ),
    (
        "$.status",
        "age <",
        "1h",
        "JSON $.status is not a timestamp: 'OK'",
        "JSON $.status không phải một thời điểm: 'OK'",
    ),
]


@pytest.mark.parametrize(("path", "op", "value", "english", "vietnamese"), COMPARISONS)
async def test_every_comparison_holds_or_says_why(
    path: str, op: str, value: Any, english: str | None, vietnamese: str | None
) -> None:
    document = {
        **DOC,
        "fresh": iso_ago(59 * 60),
        "stale": iso_ago(61 * 60),
        "local_fresh": iso_ago(59 * 60)[:19],  # the same, without the +07:00
        "local_stale": iso_ago(61 * 60)[:19],
    }
    backend = Backend(document=document)
    backend.issued.append("t")
    step = {
        "name": "đọc",
        "path": "/api/v1/doc",
        "headers": {"Authorization": "Bearer t"},
        "expect": {"json": [{"path": path, "op": op, "value": value}]},
    }
    async with serve(backend.app()) as port:
        check = spec(f"http://127.0.0.1:{port}", [step])
        result = await run(api.build(check, ProbeEnv(clock=Clock())))
    if english is None:
        assert result.ok, result.reason
        return
    assert vietnamese is not None
    assert not result.ok
    assert result.reason.startswith("step 1 (đọc, ")
    assert result.reason.endswith(f" ms): {english}"), result.reason
    assert vietnamese in vi(result)


async def test_the_reason_of_the_issue_reads_as_written(secret_file: Path) -> None:
    backend = Backend(document={"status": "ERR"})
    steps = [
        token_step(secret_file),
        lookup_step(expect={"json": [{"path": "$.status", "op": "==", "value": "OK"}]}),
    ]
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()))
    assert not result.ok
    text = vi(result)
    assert text.startswith("bước 2 (tra cứu hồ sơ, ")
    assert text.endswith(" ms): $.status = 'ERR' (cần 'OK')")
    assert result.reason.endswith(" ms): $.status = 'ERR' (expected 'OK')")
    assert len(result.observed["step_ms"].split(",")) == 2


async def test_values_from_the_server_are_printable_and_short() -> None:
    backend = Backend(document={"status": "E\x1b[31mRR" + "x" * 200})
    backend.issued.append("t")
    step = {
        "name": "đọc",
        "path": "/api/v1/doc",
        "headers": {"Authorization": "Bearer t"},
        "expect": {"json": [{"path": "$.status", "op": "==", "value": "OK"}]},
    }
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", [step]), ProbeEnv()))
    assert "\x1b" not in result.reason
    assert "'E\\x1b[31mRR" in result.reason
    assert "x" * 70 not in result.reason
    assert "…" in result.reason


async def test_an_announced_target_is_not_echoed() -> None:
    backend = Backend(document={"status": "SECRET-ISH-VALUE"})
    backend.issued.append("t")
    step = {
        "name": "đọc",
        "path": "/api/v1/doc",
        "headers": {"Authorization": "Bearer t"},
        "expect": {"json": [{"path": "$.status", "op": "==", "value": "OK"}]},
    }
    policy = AddressPolicy.from_settings(["127.0.0.0/8"])
    async with serve(backend.app()) as port:
        check = spec(f"http://127.0.0.1:{port}", [step]).guarded(policy, announced=True)
        result = await run(api.build(check, ProbeEnv()))
    assert not result.ok
    assert result.reason.endswith(" ms): $.status is not == 'OK'"), result.reason
    assert "SECRET-ISH" not in result.reason + vi(result)


# ----- status, latency, time, size, shape ------------------------------------------------------


async def test_status_lists_and_classes() -> None:
    backend = Backend(status=404, document={"found": False})
    backend.issued.append("t")
    step = {
        "name": "tra cứu",
        "path": "/api/v1/dossiers/none",
        "headers": {"Authorization": "Bearer t"},
        "expect": {"status": [200, 404]},
    }
    async with serve(backend.app()) as port:
        url = f"http://127.0.0.1:{port}"
        found = await run(api.build(spec(url, [step]), ProbeEnv()))
        backend.status = 503
        down = await run(api.build(spec(url, [step]), ProbeEnv()))
        step["expect"] = {"status": ["5xx"]}
        expected_down = await run(api.build(spec(url, [step]), ProbeEnv()))
    assert found.ok, found.reason
    assert found.status_code == 404
    assert not down.ok
    assert down.reason.endswith(" ms): HTTP 503 (expected 200, 404)")
    assert expected_down.ok


async def test_a_slow_step_is_a_warning_or_down_as_configured() -> None:
    backend = Backend(delay=0.3)
    backend.issued.append("t")

    def step(severity: str) -> dict[str, Any]:
        return {
            "name": "chậm",
            "path": "/api/v1/slow",
            "headers": {"Authorization": "Bearer t"},
            "expect": {"max_latency": "100ms", "max_latency_severity": severity},
        }

    async with serve(backend.app()) as port:
        url = f"http://127.0.0.1:{port}"
        slow = await run(api.build(spec(url, [step("degraded")]), ProbeEnv()))
        down = await run(api.build(spec(url, [step("down")]), ProbeEnv()))
    assert slow.ok
    assert slow.degraded
    assert slow.reason.startswith("step 1 (chậm, ")
    assert re.search(r" ms\): slow: 0\.\ds > limit 100ms$", slow.reason), slow.reason
    assert re.search(r" ms\): chậm: 0,\d giây > giới hạn 100 ms$", vi(slow)), vi(slow)
    assert not down.ok
    assert re.search(r" ms\): slow: 0\.\ds > limit 100ms$", down.reason), down.reason


async def test_one_timeout_covers_every_step() -> None:
    backend = Backend(delay=0.4)
    backend.issued.append("t")
    steps = [
        {"name": f"bước {i}", "path": f"/api/v1/{i}", "headers": {"Authorization": "Bearer t"}}
        for i in (1, 2, 3)
    ]
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()), 0.6)
    assert not result.ok
    assert result.duration == 0.6
    assert result.reason == ("step 2 (bước 2): timeout after 600ms (waiting for response headers)")
    assert vi(result).startswith("bước 2 (bước 2): quá thời gian chờ")
    assert len(result.observed["step_ms"].split(",")) == 1


async def test_an_oversized_body_is_not_read() -> None:
    backend = Backend(raw=b'{"pad": "' + b"x" * 5000 + b'"}')
    backend.issued.append("t")
    step = {
        "name": "lớn",
        "path": "/api/v1/big",
        "headers": {"Authorization": "Bearer t"},
        "extract": {"pad": "$.pad"},
    }
    async with serve(backend.app()) as port:
        url = f"http://127.0.0.1:{port}"
        small = await run(api.build(spec(url, [step]), ProbeEnv(max_body_bytes=1000)))
        own = await run(api.build(spec(url, [step], max_body_bytes=10_000), ProbeEnv()))
    assert not small.ok
    assert small.reason.endswith(" ms): response body larger than 1000 bytes limit")
    assert own.ok, own.reason


async def test_a_body_that_is_not_json() -> None:
    backend = Backend(raw=b"<html>maintenance</html>")
    backend.issued.append("t")
    step = {
        "name": "đọc",
        "path": "/api/v1/doc",
        "headers": {"Authorization": "Bearer t"},
        "expect": {"json": [{"path": "$.a", "op": "==", "value": 1}]},
    }
    async with serve(backend.app()) as port:
        result = await run(api.build(spec(f"http://127.0.0.1:{port}", [step]), ProbeEnv()))
    assert not result.ok
    assert result.reason.endswith(" ms): body is not JSON")
    assert vi(result).endswith(" ms): nội dung không phải JSON")


async def test_nobody_listening() -> None:
    async with serve(web.Application()) as port:
        pass
    steps = [{"name": "kết nối", "path": "/x"}]
    result = await run(api.build(spec(f"http://127.0.0.1:{port}", steps), ProbeEnv()))
    assert not result.ok
    assert result.reason.startswith("step 1 (kết nối, ")
    assert "connect: refused" in result.reason


# ----- secrets ----------------------------------------------------------------------------------


async def test_secrets_never_show(
    secret_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = Backend()
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("wrong-" + SECRET)
    results: list[ProbeResult] = []
    async with serve(backend.app()) as port:
        url = f"http://127.0.0.1:{port}"
        for steps in (
            [token_step(secret_file), lookup_step()],
            [token_step(wrong), lookup_step()],
            [token_step(secret_file, client_auth="body"), lookup_step()],
        ):
            results.append(await run(api.build(spec(url, steps), ProbeEnv())))
        backend.document = {"status": "ERR"}
        results.append(
            await run(api.build(spec(url, [token_step(secret_file), lookup_step()]), ProbeEnv()))
        )
    ok, refused, in_body, failed = results
    assert ok.ok
    assert not refused.ok
    assert refused.reason == "step 1 (lấy mã truy cập, " + refused.reason.split(", ", 1)[1]
    assert refused.reason.endswith(" ms): the token endpoint refused: HTTP 401 invalid_client")
    assert "máy chủ cấp mã truy cập từ chối: HTTP 401 invalid_client" in vi(refused)
    assert not in_body.ok  # the peer wants HTTP Basic
    assert not failed.ok
    for result in results:
        shown = " ".join(
            [
                result.reason,
                vi(result),
                json.dumps(result.why.to_json() if result.why else None),
                json.dumps(dict(result.observed)),
                repr(result),
            ]
        )
        assert SECRET not in shown
        assert "tok-" not in shown  # nor the bearer tokens
    assert SECRET not in caplog.text
    assert "tok-" not in caplog.text


async def test_a_secret_file_that_cannot_be_read_names_the_field(tmp_path: Path) -> None:
    steps = [
        {
            "name": "lấy mã",
            "token": {
                "url": "https://sso.dvc.example/oauth2/token",
                "client_id": "npsp-monitor",
                "client_secret_file": "no-such-credential",
            },
        },
        lookup_step(),
    ]
    check = spec("https://mcbm.dvc.example/lgsp", steps)
    result = await run(api.build(check, ProbeEnv()))
    assert not result.ok
    assert result.reason.startswith(
        "step 1 (lấy mã): cannot read steps[0].token.client_secret_file: "
        "cannot read secret file no-such-credential"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    steps[0]["token"]["client_secret_file"] = str(empty)
    result = await run(api.build(spec("https://mcbm.dvc.example/lgsp", steps), ProbeEnv()))
    assert "is empty" in result.reason
    bad = tmp_path / "bad-token"
    bad.write_text("two words")
    token = [{"name": "mã", "token": {"token_file": str(bad)}}]
    result = await run(api.build(spec("https://mcbm.dvc.example/", token), ProbeEnv()))
    assert result.reason == (
        "step 1 (mã): cannot read steps[0].token.token_file: not a bearer token (RFC 6750)"
    )
    assert "two words" not in result.reason


# ----- configs ---------------------------------------------------------------------------------

BAD_CONFIGS: list[tuple[list[dict[str, Any]], str]] = [
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "$.a[", "op": "==", "value": 1}]},
            }
        ],
        "invalid JSONPath '$.a['",
    ),
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "a.b", "op": "==", "value": 1}]},
            }
        ],
        "must start with $",
    ),
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "$.a", "op": "=~", "value": 1}]},
            }
        ],
        "op",
    ),
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "$.a", "op": "<", "value": True}]},
            }
        ],
        "op '<' needs a number or a string",
    ),
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "$.a", "op": "age <", "value": 5}]},
            }
        ],
        "op 'age <' needs a duration",
    ),
    (
        [
            {
                "name": "a",
                "path": "/x",
                "expect": {"json": [{"path": "$.a", "op": "matches", "value": "(a)\\1"}]},
            }
        ],
        "invalid regular expression",
    ),
    (
        [{"name": "a", "path": "/x", "expect": {"json": [{"path": "$.a", "op": "=="}]}}],
        "give the value to compare with",
    ),
    ([{"name": "a", "path": "/x", "extract": {"v": "$..["}}], "extract.v: invalid JSONPath"),
    ([{"name": "a", "path": "/x/${nope}"}], "steps[0] (a).path: ${nope} is not extracted"),
    (
        [
            {"name": "a", "path": "/x", "headers": {"X-A": "${later}"}},
            {"name": "b", "path": "/y", "extract": {"later": "$.a"}},
        ],
        "steps[0] (a).headers.X-A: ${later} is not extracted by an earlier step",
    ),
    ([{"name": "a", "url": "https://${host}/x"}], "${...} may stand in the path and query only"),
    ([{"name": "a", "path": "/x", "url": "https://h.example/"}], "exactly one of url and path"),
    (
        [{"name": "a", "path": "/x", "body": {"a": 1}}],
        "a JSON body is sent with POST, PUT or PATCH",
    ),
    (
        [{"name": "a", "token": {"token_file": "t"}, "path": "/x"}],
        "a token step has only name and token (not path)",
    ),
    (
        [{"name": "a", "token": {"token_file": "t", "client_id": "x"}}],
        "token_file or an OAuth2 grant, not both",
    ),
    (
        [{"name": "a", "token": {"url": "/t", "client_id": "x"}}],
        "missing: client_secret_file",
    ),
    (
        [{"name": "a", "token": {"token_file": "/nonexistent/token"}}],
        "token_file: file /nonexistent/token does not exist",
    ),
    (
        [{"name": "a", "token": {"token_file": "t"}}, {"name": "b", "token": {"token_file": "u"}}],
        "one token step at most",
    ),
    ([{"name": "a", "path": "/x", "headers": {"Content-Length": "1"}}], "set by the probe itself"),
    ([{"name": "a", "path": "/x", "expect": {"status": [700]}}], "not an HTTP status"),
    ([], "at least 1 item"),
]


@pytest.mark.parametrize(("steps", "message"), BAD_CONFIGS)
def test_bad_configs_are_refused_naming_what(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        spec("https://mcbm.dvc.example/lgsp", steps)
    assert message in str(info.value), str(info.value)


CONFIG = """\
vantage: gw-test
listen: 127.0.0.1:0
state_db: state.db
agencies:
  - id: ha-noi
    kind: province
    name_vi: Thành phố Hà Nội
    name_en: Hanoi
    code: "01"
    contacts:
      - name: Quản trị kỹ thuật
        role: technical-admin
        portal_account: qtkt.ha-noi
        channels: [inbox]
    systems:
      - id: secure-server
        kind: secure-server
        name: Máy chủ bảo mật
        checks:
          - id: dossier-lookup
            kind: api
            url: https://mcbm.ha-noi.dvc.example/lgsp
            steps:
              - name: lấy mã truy cập
                token:
                  url: https://sso.ha-noi.dvc.example/oauth2/token
                  client_id: npsp-monitor
                  client_secret_file: lgsp-client-secret
              - name: tra cứu hồ sơ
                method: POST
                path: /api/v1/dossiers/lookup
                body: {code: "000.00.00.H00-250101-0001"}
                expect:
                  json:
                    - {path: $.data.status, op: "==", value: OK}
"""


def test_the_config_file_names_the_line_and_field(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG, encoding="utf-8")
    config = load_config(good)
    (check,) = config.agencies[0].systems[0].checks
    assert isinstance(check, api.Spec)
    assert check.target_host() == "mcbm.ha-noi.dvc.example"
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("$.data.status, op", "$.data.status), op"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    issues = [str(i) for i in info.value.issues]
    assert any(
        ":35: agencies[0].systems[0].checks[0].steps[1].expect.json[0]" in i
        and "invalid JSONPath '$.data.status)'" in i
        for i in issues
    ), issues
