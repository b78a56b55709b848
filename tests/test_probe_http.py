"""The http probe against real HTTP(S) servers on loopback, well-behaved and hostile."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from npsp_common.types import ProbeResult
from probes import PROBES, http
from probes.base import ProbeEnv
from probes.tlsopts import format_day
from tests.probe_servers import (
    Certs,
    OpenSSLServer,
    Server,
    delayed,
    echo,
    endless,
    endless_headers,
    free_port,
    garbage,
    http_server,
    make_certs,
    plain_http_error,
    raw,
    redirect,
    reset,
    response,
    run_on_uvloop,
    silent,
    slowloris,
    unanswered_port,
)

pytestmark = pytest.mark.timeout(30)

SLACK = 0.5  # scheduling noise allowed beyond a probe's timeout
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def spec(url: str, **fields: Any) -> http.Spec:
    return http.Spec.model_validate({"id": "portal-home", "kind": "http", "url": url, **fields})


async def fetch(
    url: str, timeout: float = 2.0, env: ProbeEnv | None = None, **fields: Any
) -> ProbeResult:
    result = await http.build(spec(url, **fields), env or ProbeEnv())(timeout)
    assert result.duration <= timeout + SLACK
    return result


# --- plain requests ----------------------------------------------------------------------


async def test_get_ok_and_what_is_sent() -> None:
    server, app = http_server({"/health": response(200, "fine")})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/health?deep=1")
    assert result.ok
    assert result.reason == "HTTP 200"
    assert result.status_code == 200
    assert result.cert_not_after is None
    (request,) = app.requests
    assert (request.method, request.path) == ("GET", "/health?deep=1")
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"
    assert request.headers["User-Agent"] == "npsp-monitor/0.1"
    assert request.headers["Connection"] == "close"


async def test_unicode_path_is_percent_encoded() -> None:
    server, app = http_server({"/th%E1%BB%A7-t%E1%BB%A5c": response(200)})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/thủ-tục", expected_status=["200"])
    assert result.ok, result.reason
    assert app.requests[0].path == "/th%E1%BB%A7-t%E1%BB%A5c"


def test_idn_host_is_punycode() -> None:
    probe = http.build(spec("https://dịchvụcông.vn/"), ProbeEnv())
    assert b"Host: xn--" in probe._first.request


async def test_custom_headers_replace_defaults() -> None:
    server, app = http_server({"/": response(200)})
    async with server:
        await fetch(
            f"http://127.0.0.1:{server.port}/",
            headers={"user-agent": "probe/2", "X-Agency": "bo-tu-phap", "Host": "dvc.gov.vn"},
        )
    headers = app.requests[0].headers
    assert headers["user-agent"] == "probe/2"
    assert "User-Agent" not in headers
    assert headers["X-Agency"] == "bo-tu-phap"
    assert headers["Host"] == "dvc.gov.vn"


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (503, None, "HTTP 503 (expected 2xx)"),
        (404, ["2xx", 301], "HTTP 404 (expected 2xx, 301)"),
        (503, [503], "HTTP 503"),
        (204, ["2XX"], "HTTP 204"),
    ],
)
async def test_expected_status(status: int, expected: list[Any] | None, reason: str) -> None:
    server, _ = http_server({"/": response(status)})
    fields = {"expected_status": expected} if expected else {}
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", **fields)
    assert result.reason == reason
    assert result.ok is (expected is not None and "expected" not in reason)
    assert result.status_code == status


async def test_head_stops_at_headers() -> None:
    head_only = raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")  # and no body
    server, app = http_server({"/": head_only})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", method="HEAD", timeout=1)
    assert result.reason == "HTTP 200"
    assert result.duration < 0.5
    assert app.requests[0].method == "HEAD"


async def test_post_with_body() -> None:
    server, app = http_server({"/submit": echo()})
    async with server:
        result = await fetch(
            f"http://127.0.0.1:{server.port}/submit",
            method="POST",
            body='{"ma_ho_so": "000.00.01.H01"}',
            headers={"Content-Type": "application/json"},
            body_regex=r"^POST /submit\n",
        )
    assert result.ok, result.reason
    request = app.requests[0]
    assert request.body == b'{"ma_ho_so": "000.00.01.H01"}'
    assert request.headers["Content-Length"] == str(len(request.body))


async def test_interim_response_is_skipped() -> None:
    server, _ = http_server(
        {"/": raw(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK_RESPONSE)}
    )
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", body_regex="ok")
    assert result.reason == "HTTP 200"


async def test_max_latency() -> None:
    server, _ = http_server({"/slow": delayed(0.3, response(200)), "/fast": response(200)})
    async with server:
        slow = await fetch(f"http://127.0.0.1:{server.port}/slow", max_latency="100ms")
        down = await fetch(
            f"http://127.0.0.1:{server.port}/slow",
            max_latency="100ms",
            max_latency_severity="down",
        )
        fast = await fetch(f"http://127.0.0.1:{server.port}/fast", max_latency="1s")
    assert slow.reason.startswith("slow: 0.3s > limit 100ms"), slow.reason
    # Slow is a warning (degraded) by default, a failure when configured so.
    assert slow.ok and slow.degraded
    assert not down.ok and down.reason.startswith("slow: 0.3s > limit 100ms")
    assert fast.ok and not fast.degraded


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_regex(chunked: bool) -> None:
    page = "<title>Cổng Dịch vụ công quốc gia</title>"
    server, _ = http_server({"/": response(200, page, chunked=chunked)})
    async with server:
        url = f"http://127.0.0.1:{server.port}/"
        match = await fetch(url, body_regex="Dịch vụ công")
        miss = await fetch(url, body_regex="Bảo trì|maintenance")
    assert match.ok, match.reason
    assert miss.reason == "body does not match /Bảo trì|maintenance/"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pattern", [r"(a|a)*b", r"(.*a){12}x", r"(a+)+$b"])
async def test_a_pathological_body_regex_costs_linear_time(pattern: str) -> None:
    """A probed server controls the body: with a backtracking engine these patterns on 64 KiB
    of "a" take minutes to years, holding the event loop (every other probe, /healthz, the
    watchdog). RE2 answers at once: the probe ends with its reason, within its timeout."""
    server, _ = http_server({"/": response(200, "a" * 65536)})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", body_regex=pattern)
    assert result.reason == f"body does not match /{pattern}/"


async def test_body_read_until_close() -> None:
    server, _ = http_server(
        {"/": raw(b"HTTP/1.1 200 OK\r\n\r\nno length, ends with the connection")}
    )
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", body_regex="ends with")
    assert result.ok, result.reason


async def test_truncated_body() -> None:
    server, _ = http_server({"/": raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", body_regex="short")
    assert result.reason == "connection closed before the end of the body (after 5 bytes)"


def json_route(document: object) -> Any:
    return response(200, json.dumps(document), {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"path": "$.last_sync", "younger_than": "2h"}, None),
        ({"path": "$.last_sync", "younger_than": "24h"}, None),
        ({"path": "$.last_sync_epoch", "younger_than": "2h"}, None),
        (
            {"path": "$.stale_sync", "younger_than": "24h"},
            "JSON $.stale_sync is 26h old (limit 24h)",
        ),
        (
            {"path": "$.stale_epoch_ms", "younger_than": "1d"},
            "JSON $.stale_epoch_ms is 26h old (limit 24h)",
        ),
        ({"path": "$.data.items[0].state", "equals": "up"}, None),
        (
            {"path": "$.data.items[1].state", "equals": "up"},
            'JSON $.data.items[1].state is "down" (expected "up")',
        ),
        ({"path": "$.data.count", "equals": 2}, None),
        ({"path": "$.data.count", "equals": True}, "JSON $.data.count is 2 (expected true)"),
        ({"path": "$['odd key']", "equals": None}, None),
        ({"path": "$.data", "exists": True}, None),
        ({"path": "$.data.items[5]", "exists": True}, "JSON $.data.items[5] is missing"),
        ({"path": "$.maintenance", "exists": False}, None),
        ({"path": "$.data", "exists": False}, "JSON $.data exists (expected absent)"),
        ({"path": "$.nothing", "equals": 1}, "JSON $.nothing is missing"),
        ({"path": "$.data.count", "younger_than": "1h"}, "JSON $.data.count is "),  # 1970: old
        ({"path": "$.data.items", "younger_than": "1h"}, "JSON $.data.items is not a timestamp"),
    ],
)
async def test_json_conditions(condition: dict[str, Any], reason: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    document = {
        "last_sync": (now - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "last_sync_epoch": now.timestamp() - 60,
        "stale_sync": (now - dt.timedelta(hours=26)).isoformat(),
        "stale_epoch_ms": int((now.timestamp() - 26 * 3600) * 1000),
        "data": {"count": 2, "items": [{"state": "up"}, {"state": "down"}]},
        "odd key": None,
    }
    server, _ = http_server({"/status": json_route(document)})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/status", json=[condition])
    if reason is None:
        assert result.ok, result.reason
    else:
        assert result.reason.startswith(reason), result.reason
        assert not result.ok


async def test_body_is_not_json() -> None:
    server, _ = http_server({"/": response(200, "<html>maintenance</html>")})
    async with server:
        result = await fetch(
            f"http://127.0.0.1:{server.port}/", json=[{"path": "$.a", "exists": True}]
        )
    assert result.reason == "body is not JSON"


async def test_body_checks_skip_unexpected_status() -> None:
    server, _ = http_server({"/": response(503, "{}")})
    async with server:
        result = await fetch(
            f"http://127.0.0.1:{server.port}/", json=[{"path": "$.a", "exists": True}]
        )
    assert result.reason == "HTTP 503 (expected 2xx)"


# --- bounded reads -----------------------------------------------------------------------


async def test_huge_body_is_not_read_when_not_needed() -> None:
    server, _ = http_server({"/": endless()})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/")
    assert result.reason == "HTTP 200"
    assert result.duration < 0.5


@pytest.mark.parametrize("declared", [True, False])
async def test_huge_body_stops_at_the_limit(declared: bool) -> None:
    server, _ = http_server({"/": endless(100 << 20 if declared else None)})
    tracemalloc.start()
    try:
        async with server:
            result = await fetch(f"http://127.0.0.1:{server.port}/", body_regex="x", timeout=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.reason == "response body larger than 1 MiB limit"
    assert result.duration < 2
    assert peak < 8 << 20  # the body buffer is 1 MiB at most; the server's chunks are 64 KiB


async def test_max_body_bytes_of_the_check() -> None:
    server, _ = http_server({"/": response(200, "x" * 5000)})
    async with server:
        url = f"http://127.0.0.1:{server.port}/"
        small = await fetch(url, body_regex="x", max_body_bytes=4096)
        env = ProbeEnv(max_body_bytes=10_000)
        fits = await fetch(url, body_regex="x", env=env)
    assert small.reason == "response body larger than 4 KiB limit"
    assert fits.ok


async def test_endless_headers() -> None:
    server, _ = http_server({"/": endless_headers()})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/")
    assert result.reason == "response headers larger than 64 KiB"
    assert result.duration < 1


# --- redirects ---------------------------------------------------------------------------


def redirect_routes() -> dict[str, Any]:
    return {
        "/r1": redirect("/r2"),
        "/r2": redirect("/r3", 301),
        "/r3": redirect("/ok", 307),
        "/ok": echo(),
        "/loop-a": redirect("/loop-b"),
        "/loop-b": redirect("/loop-a"),
    }


async def test_redirect_not_followed() -> None:
    server, app = http_server(redirect_routes())
    async with server:
        judged = await fetch(f"http://127.0.0.1:{server.port}/r1")
        accepted = await fetch(f"http://127.0.0.1:{server.port}/r1", expected_status=["3xx"])
    assert judged.reason == "HTTP 302 to /r2 (expected 2xx)"
    assert judged.status_code == 302
    assert accepted.ok
    assert len(app.requests) == 2


async def test_redirects_followed() -> None:
    server, app = http_server(redirect_routes())
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/r1", follow_redirects=3)
    assert result.reason == "HTTP 200"
    assert [r.path for r in app.requests] == ["/r1", "/r2", "/r3", "/ok"]


async def test_too_many_redirects() -> None:
    server, app = http_server(redirect_routes())
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/r1", follow_redirects=2)
    assert result.reason == "too many redirects (>2)"
    assert len(app.requests) == 3


async def test_redirect_loop() -> None:
    server, _ = http_server(redirect_routes())
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/loop-a", follow_redirects=10)
    assert result.reason == f"redirect loop: back to http://127.0.0.1:{server.port}/loop-a"


async def test_post_redirected_by_303_becomes_get() -> None:
    server, app = http_server({"/form": redirect("/done", 303), "/done": response(200)})
    async with server:
        result = await fetch(
            f"http://127.0.0.1:{server.port}/form", method="POST", body="a=1", follow_redirects=1
        )
    assert result.ok, result.reason
    assert [(r.method, r.body) for r in app.requests] == [("POST", b"a=1"), ("GET", b"")]


async def test_redirect_from_http_to_https(certs: Certs) -> None:
    secure, secure_app = http_server({"/": response(200)}, tls=certs.server_context())
    async with secure:
        plain, _ = http_server({"/": redirect(f"https://localhost:{secure.port}/")})
        async with plain:
            result = await fetch(
                f"http://127.0.0.1:{plain.port}/",
                follow_redirects=1,
                tls={"ca_file": str(certs.ca_file)},
            )
    assert result.ok, result.reason
    assert result.cert_not_after is not None
    assert secure_app.requests[0].headers["Host"] == f"localhost:{secure.port}"


# --- https -------------------------------------------------------------------------------


async def test_https_ok(certs: Certs) -> None:
    server, _ = http_server({"/": response(200, "xin chào")}, tls=certs.server_context())
    async with server:
        result = await fetch(
            f"https://localhost:{server.port}/", body_regex="chào", tls={"ca_file": certs.ca_file}
        )
    assert result.ok, result.reason
    assert result.cert_not_after == pytest.approx(32503680000.0)


async def test_https_certificate_problems(certs: Certs) -> None:
    expired, _ = http_server({"/": response(200)}, tls=certs.server_context(certs.expired))
    expiring, _ = http_server({"/": response(200)}, tls=certs.server_context(certs.expiring))
    tls_ca = {"ca_file": certs.ca_file}
    async with expired, expiring:
        old = await fetch(f"https://127.0.0.1:{expired.port}/", tls=tls_ca)
        soon = await fetch(
            f"https://127.0.0.1:{expiring.port}/", tls={**tls_ca, "min_days_valid": 7}
        )
        unknown = await fetch(f"https://127.0.0.1:{expiring.port}/")
        pinned = await fetch(
            f"https://127.0.0.1:{expiring.port}/",
            tls={**tls_ca, "expected_fingerprint_sha256": "00" * 32},
        )
    assert old.reason == f"TLS: certificate expired {format_day(time.time() - 2 * 86400)}"
    assert soon.reason.startswith("TLS: certificate expires in 3 days"), soon.reason
    assert soon.cert_not_after is not None
    assert unknown.reason.startswith("TLS: unknown issuer"), unknown.reason
    assert pinned.reason.startswith("TLS: certificate fingerprint "), pinned.reason


async def test_https_rejected_certificate_still_reports_its_expiry(certs: Certs) -> None:
    """Issue 9 #14: a certificate that fails verification keeps its date (for /metrics)."""
    expired, _ = http_server({"/": response(200)}, tls=certs.server_context(certs.expired))
    wrong_host, _ = http_server({"/": response(200)}, tls=certs.server_context(certs.wrong_host))
    tls_ca = {"ca_file": certs.ca_file}
    async with expired, wrong_host:
        old = await fetch(f"https://127.0.0.1:{expired.port}/", tls=tls_ca)
        unknown = await fetch(f"https://127.0.0.1:{expired.port}/")  # and an unknown issuer
        mismatch = await fetch(f"https://127.0.0.1:{wrong_host.port}/", tls=tls_ca)
    two_days_ago = time.time() - 2 * 86400
    assert old.reason == f"TLS: certificate expired {format_day(two_days_ago)}"
    assert old.cert_not_after == pytest.approx(two_days_ago, abs=300)
    assert unknown.reason.startswith("TLS: unknown issuer"), unknown.reason
    assert unknown.cert_not_after == pytest.approx(two_days_ago, abs=300)
    assert mismatch.reason.startswith("TLS: host name mismatch"), mismatch.reason
    assert mismatch.cert_not_after == pytest.approx(32503680000.0)


async def test_https_client_refused_still_reports_the_server_certificate(certs: Certs) -> None:
    ctx = certs.server_context(require_client_cert=True, max_version=ssl.TLSVersion.TLSv1_2)
    async with OpenSSLServer(ctx, reply=OK_RESPONSE) as server:
        result = await fetch(f"https://127.0.0.1:{server.port}/", tls={"ca_file": certs.ca_file})
    assert not result.ok
    assert result.cert_not_after == pytest.approx(32503680000.0), result.reason


async def test_https_mtls(certs: Certs) -> None:
    ctx = certs.server_context(require_client_cert=True)
    client = {"client_cert": certs.client_cert, "client_key": certs.client_key}
    async with OpenSSLServer(ctx, reply=OK_RESPONSE) as server:
        url = f"https://127.0.0.1:{server.port}/"
        with_cert = await fetch(url, tls={"ca_file": certs.ca_file, **client})
        without = await fetch(url, tls={"ca_file": certs.ca_file})
    assert with_cert.ok, with_cert.reason
    # Without a certificate of its own to care about, the probe sends its request at once,
    # and the server's alert can be lost to the reset that request provokes: either reason.
    assert without.reason in (
        "TLS: server requires a client certificate",
        "connection reset by peer before response",
        "connection closed before response",
    )


async def test_https_client_certificate_refused(certs: Certs, tmp_path: Path) -> None:
    other = make_certs(tmp_path)  # a client certificate from a CA the server does not know
    ctx = certs.server_context(require_client_cert=True)
    client = {"client_cert": other.client_cert, "client_key": other.client_key}
    async with OpenSSLServer(ctx, reply=OK_RESPONSE) as server:
        result = await fetch(
            f"https://127.0.0.1:{server.port}/", tls={"ca_file": certs.ca_file, **client}
        )
    assert result.reason == "TLS: server rejected the client certificate (unknown CA)"


async def test_https_to_a_plain_http_server() -> None:
    async with Server(plain_http_error) as server:
        result = await fetch(f"https://127.0.0.1:{server.port}/", timeout=1)
    assert result.reason.startswith("TLS: handshake failed: peer does not speak TLS"), result.reason


async def test_http_to_a_tls_server(certs: Certs) -> None:
    async with Server(garbage) as server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", timeout=1)
    assert result.reason == "malformed HTTP response: does not start with HTTP/"


# --- hostile and absent peers ------------------------------------------------------------


async def test_connection_refused() -> None:
    result = await fetch(f"http://127.0.0.1:{free_port()}/")
    assert result.reason == "connect: refused"


async def test_connect_timeout() -> None:
    with unanswered_port() as port:
        result = await fetch(f"http://127.0.0.1:{port}/", timeout=0.5)
    assert result.reason == "timeout after 500ms (connecting)"


@pytest.mark.parametrize(
    ("scheme", "phase"), [("http", "waiting for response headers"), ("https", "TLS handshake")]
)
async def test_silent_server(scheme: str, phase: str) -> None:
    async with Server(silent) as server:
        result = await fetch(f"{scheme}://127.0.0.1:{server.port}/", timeout=0.5)
    assert result.reason == f"timeout after 500ms ({phase})"
    assert result.duration == pytest.approx(0.5, abs=SLACK)


async def test_slowloris() -> None:
    async with Server(slowloris()) as server:
        result = await fetch(f"http://127.0.0.1:{server.port}/", timeout=0.7)
    assert result.reason == "timeout after 700ms (waiting for response headers)"


async def test_slowloris_body(certs: Certs) -> None:
    trickle = slowloris(b"." * 1000, head=b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    server = Server(trickle, tls=certs.server_context())
    async with server:
        result = await fetch(
            f"https://127.0.0.1:{server.port}/",
            timeout=1,
            body_regex="x",
            tls={"ca_file": certs.ca_file},
        )
    assert result.reason == "timeout after 1s (reading body)"


async def test_reset() -> None:
    async with Server(reset) as server:
        result = await fetch(f"http://127.0.0.1:{server.port}/")
    assert result.reason in (
        "connection reset by peer before response",
        "connection closed before response",
    )


async def test_closed_without_answer() -> None:
    server, _ = http_server({"/": raw(b"")})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/")
    assert result.reason == "connection closed before response"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed HTTP response: invalid response status"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "malformed HTTP response: invalid header token"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "malformed HTTP response: does not start with HTTP/"),
        (b"\x16\x03\x01\x02\x00", "malformed HTTP response: the server speaks TLS (use https://)"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "connection closed in the middle of the response headers",
        ),
    ],
)
async def test_malformed_responses(data: bytes, reason: str) -> None:
    server, _ = http_server({"/": raw(data)})
    async with server:
        result = await fetch(f"http://127.0.0.1:{server.port}/")
    assert result.reason == reason


# --- on uvloop, the daemon's loop --------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        test_get_ok_and_what_is_sent,
        test_redirects_followed,
        test_huge_body_is_not_read_when_not_needed,
        test_endless_headers,
        test_https_ok,
        test_https_certificate_problems,
        test_https_rejected_certificate_still_reports_its_expiry,
        test_https_mtls,
        test_https_client_certificate_refused,
        test_silent_server,
        test_reset,
        test_truncated_body,
    ],
)
def test_on_uvloop(scenario: Any, request: pytest.FixtureRequest) -> None:
    if scenario is test_silent_server:
        run_on_uvloop(lambda: test_silent_server("https", "TLS handshake"), request)
    else:
        run_on_uvloop(scenario, request)


# --- the spec ----------------------------------------------------------------------------


def test_spec_defaults_and_target_host() -> None:
    check = PROBES["http"].spec.model_validate(
        {"id": "a", "kind": "http", "url": "https://dichvucong.gov.vn/p/home"}
    )
    assert isinstance(check, http.Spec)
    assert check.method == "GET"
    assert check.expected_status == ["2xx"]
    assert check.follow_redirects == 0
    assert check.json_conditions == []
    assert check.target_host() == "dichvucong.gov.vn"
    assert spec("http://[::1]:8080/", host_key="lgsp").target_host() == "lgsp"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body_regex": "(unclosed"}, r"invalid regular expression /\(unclosed/"),
        ({"expected_status": ["6xx"]}, "'6xx' is neither a status nor a class"),
        ({"expected_status": [999]}, "status 999 is not an HTTP status"),
        ({"expected_status": []}, "at least 1 item"),
        ({"json": [{"path": "last_sync", "exists": True}]}, "must start with \\$"),
        ({"json": [{"path": "$.a[*]", "exists": True}]}, "cannot read"),
        ({"json": [{"path": "$.a", "exists": True, "equals": 1}]}, "exactly one of"),
        ({"json": [{"path": "$.a"}]}, "exactly one of"),
        ({"json": [{"path": "$.a", "younger_than": "soon"}]}, "invalid duration"),
        ({"method": "HEAD", "body_regex": "x"}, "HEAD has none"),
        ({"body": "a=1"}, "sent with POST only, not GET"),
        ({"url": "ftp://dvc.gov.vn/"}, "scheme must be http or https"),
        ({"url": "https:///path"}, "has no host"),
        ({"url": "https://user:pw@dvc.gov.vn/"}, "credentials"),
        ({"url": "https://dvc.gov.vn:99999/"}, "invalid host or port"),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, "one line of ASCII"),
        ({"headers": {"Content-Length": "5"}}, "set by the probe itself"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"max_latency": 5}, "has no unit"),
        ({"tls": {"client_cert": "/nonexistent.pem"}}, "does not exist"),
        ({"follow": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(fields.pop("url", "https://dvc.gov.vn/"), **fields)


def test_tls_version_option_reaches_the_context(certs: Certs) -> None:
    env = ProbeEnv()
    http.build(spec("https://dvc.gov.vn/", tls={"min_version": "1.3"}), env)
    (ctx,) = env.ssl_contexts._contexts.values()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
