"""Hostile input from outside (issue 9, items 9-12), against a real daemon on loopback over real
HTTP (raw sockets for the bytes a client library will not send) and a real Mosquitto broker:

* a malformed credential (a non-ASCII byte, a space, an oversized token; in the header or the
  cookie) is a 401 like a wrong one, never a 500;
* every refused MQTT announcement gets a result with its reason, a malformed ``ref`` too;
* every error answer under /api/ is ``{"error": ...}`` JSON, aiohttp's own included, and a
  request too malformed to reach the app is one warning line in the log, without a traceback;
* bodies are strict: ``true``, ``"443"`` and ``443.0`` are not ports, NUL and lone surrogates
  are not text, an announcement is for a secure server only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import accounts
from monitor.app import Daemon
from monitor.config import load_config
from tests.peers import wait_until
from tests.peers.mosquitto import available

from .conftest import TcpTarget
from .test_announcements_mqtt import iso_in, world
from .test_api import Caller, fleet
from .test_daemon import Running, write_config

pytestmark = pytest.mark.timeout(90)

__all__ = ["world"]  # the MQTT fixture, used below

VN = dt.timezone(dt.timedelta(hours=7))


class Site:
    """The running daemon, a national-admin's token and the log records it wrote."""

    def __init__(self, running: Running, token: str, caplog: pytest.LogCaptureFixture) -> None:
        self.running = running
        self.token = token
        self.caplog = caplog
        self.port = running.daemon.http_port
        self.admin = Caller(running.base, token)

    async def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``request`` as it is over a fresh connection; the status, headers and body."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(request)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body

    async def get(self, target: bytes, *headers: bytes) -> tuple[int, dict[str, str], bytes]:
        lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
        return await self.raw(b"\r\n".join([*lines, *headers, b"", b""]))

    def tracebacks(self) -> list[str]:
        """Log records with a traceback or at error level (a client's mistake makes none)."""
        return [
            f"{r.name}: {r.getMessage()}"
            for r in self.caplog.records
            if r.exc_info or r.levelno >= logging.ERROR
        ]


def _config(tmp_path: Path, port: int) -> dict[str, Any]:
    data = fleet(tmp_path, port)
    data["agencies"][0]["systems"].append(
        {
            "id": "portal",
            "kind": "public-service-portal",
            "name": "Cổng dịch vụ công",
            "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
        }
    )
    return data


@pytest.fixture
async def site(
    tmp_path: Path,
    tcp_target: Callable[[], Awaitable[TcpTarget]],
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Site]:
    caplog.set_level(logging.DEBUG, logger="monitor")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    target = await tcp_target()
    path = write_config(tmp_path / "npsp.yaml", _config(tmp_path, target.port))
    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(daemon, task)
    assert daemon.engine is not None
    _, token = await accounts.create(
        daemon.engine.store, actor=None, account_id="vpcp", name="VPCP",
        role="national-admin", agency=None, agencies={"bo-a", "bo-b"}, now=time.time(),
    )  # fmt: skip
    yield Site(running, token, caplog)
    await running.stop()


def in_days(days: float) -> str:
    return (dt.datetime.now(VN) + dt.timedelta(days=days)).isoformat()


# ----- 9. a malformed credential is a 401 --------------------------------------------------------


async def test_a_malformed_credential_is_a_401_not_an_error(site: Site) -> None:
    malformed = [
        b"Authorization: Bearer \xf4",  # a non-ASCII byte (issue 9, item 9)
        b"Authorization: Bearer \xc3\xa9t\xc3\xa9",  # UTF-8, but no token has it
        b"Authorization: Bearer npsp_abc def",  # a space inside
        b"Authorization: Bearer " + b"A" * 300,  # longer than any token
        b"Authorization: Bearer",  # no token at all
        b"Cookie: npsp_session=\xf4",
        b"Cookie: npsp_session=npsp_\xff\xfe",
    ]
    for header in malformed:
        status, headers, body = await site.get(b"/api/v1/whoami", header)
        assert status == 401, (header, body)
        assert headers["content-type"].startswith("application/json"), header
        # A malformed session cookie is no credential at all (a session that ended is not a
        # guess, and is not throttled): "authentication required", still a 401.
        expected = (
            "authentication required"
            if header.startswith(b"Cookie")
            else "invalid or revoked credentials"
        )
        assert json.loads(body)["error"] == expected, (header, body)
    # A page with such a cookie is simply not logged in.
    status, _, body = await site.get(b"/", b"Cookie: npsp_session=\xf4")
    assert status in (200, 303), body
    # A state-changing call with an Origin that is not a URL is refused, not an error.
    status, _, body = await site.raw(
        b"POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Origin: http://[\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert status == 403 and "Origin" in json.loads(body)["error"], body
    # Each bad token was a failed login, audited with the path as sent; a bad session cookie
    # is not (it only means "not logged in").
    status, audit = await site.admin.call("GET", "/api/v1/audit")
    assert status == 200
    failed = [a["target"] for a in audit["audit"] if a["action"] == "login.failed"]
    tokens = [h for h in malformed if h.startswith(b"Authorization")]
    assert sorted(failed) == ["/api/v1/whoami"] * len(tokens)
    # The right token still works, and nothing above was an error of ours.
    status, me = await site.admin.call("GET", "/api/v1/whoami")
    assert status == 200 and me["id"] == "vpcp"
    assert site.tracebacks() == []


# ----- 11. one JSON error shape; a client's mistake is one warning line --------------------------


async def test_aiohttps_own_errors_are_json_under_api(site: Site) -> None:
    auth = f"Authorization: Bearer {site.token}".encode()
    status, headers, body = await site.get(b"/api/v1/no-such-thing", auth)
    assert (status, json.loads(body)) == (
        404,
        {"error": "no such endpoint: GET /api/v1/no-such-thing"},
    )
    status, headers, body = await site.raw(
        b"DELETE /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + auth
        + b"\r\n\r\n"
    )
    assert status == 405 and headers["allow"] == "GET,HEAD", headers
    assert json.loads(body) == {"error": "method DELETE not allowed here (allowed: GET, HEAD)"}
    assert headers["content-type"].startswith("application/json")
    # A path whose escapes decode to NUL or to no UTF-8 at all: an unknown system, in JSON.
    status, _, body = await site.get(b"/api/v1/systems/%00/%ff%fe", auth)
    assert status == 404 and "unknown system" in json.loads(body)["error"], body
    # The pages keep aiohttp's answers, but never a 500.
    status, _, _ = await site.get(b"/no-such-page")
    assert status == 404
    status, _, _ = await site.get(b"/system/%00/%ff")
    assert status < 500
    assert site.tracebacks() == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # NUL in the path (issue 9, item 11)
        b"GET /api/v1/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # not UTF-8
        b"GET /api/v1/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # URL too long
        b"GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + b"s3cr3t" * 2000
        + b"\r\n\r\n",  # a header too long
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad\x01: 1\r\n\r\n",  # a control byte
    ],
    ids=["nul-in-path", "invalid-utf8-path", "oversized-url", "oversized-header", "bad-header"],
)
async def test_a_malformed_request_is_one_warning_line(site: Site, request_bytes: bytes) -> None:
    await site.get(b"/healthz")  # the connection below is not the first one: no debug excuse
    site.caplog.clear()
    status, _, _ = await site.raw(request_bytes)
    assert status == 400
    lines = [r for r in site.caplog.records if r.name == "monitor.http"]
    assert len(lines) == 1, [r.getMessage() for r in site.caplog.records]
    line = lines[0]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert line.getMessage() == "malformed HTTP request answered 400"
    assert line.__dict__["client"] == "127.0.0.1" and line.__dict__["problem"]
    assert "s3cr3t" not in line.__dict__["problem"]  # what the client sent is not echoed
    assert site.tracebacks() == []
    status, _, _ = await site.get(b"/healthz")  # and the daemon carries on
    assert status == 200


# ----- 12. strict types, announcements for secure servers only -----------------------------------


async def test_request_bodies_are_strict(site: Site) -> None:
    def announce(**changes: Any) -> dict[str, Any]:
        return {"agency": "bo-a", "effective_at": in_days(30), "changes": changes}

    refused: list[tuple[str, Any, str]] = [
        ("/api/v1/announcements", announce(port=True), "changes.port: Input should be a valid"),
        ("/api/v1/announcements", announce(port="443"), "changes.port: Input should be a valid"),
        ("/api/v1/announcements", announce(port=443.0), "changes.port: Input should be a valid"),
        ("/api/v1/announcements", announce(text="gia\x00hạn"), "changes.text: must not contain"),
        ("/api/v1/announcements", announce(issuer="CA\nX"), "changes.issuer: must not contain"),
        (
            "/api/v1/announcements",
            {**announce(port=8443), "system": "portal"},
            "bo-a/portal is a public-service-portal, not a secure server",
        ),
        (
            "/api/v1/announcements",
            {**announce(port=8443), "ref": "CV 1\x00"},
            "ref: must be 1 to 128 letters (Vietnamese too), digits, or . _ : / -",
        ),
        (
            "/api/v1/announcements",
            {**announce(port=8443), "effective_at": 1796004000},
            "effective_at: a date and time is written as text",
        ),
        ("/api/v1/incidents", {"agency": "bo-a", "summary": "a\x00b"}, "summary: must not"),
        ("/api/v1/incidents", {"agency": "bo-a", "summary": "x" * 2001}, "summary: String"),
        ("/api/v1/incidents", {"agency": "bo-a" * 20, "summary": "x"}, "agency: String"),
        (
            "/api/v1/accounts",
            {"id": "a b", "name": "A", "role": "viewer", "agency": "bo-a"},
            "id: must be 1 to 64 letters, digits, or . _ -",
        ),
        (
            "/api/v1/silences",
            {"agency": "bo-a", "ends": in_days(1), "reason": "x", "starts": True},
            "starts: a date and time is written as text",
        ),
    ]
    for path, body, reason in refused:
        status, answer = await site.admin.call("POST", path, body)
        assert status == 400, (path, body, answer)
        assert reason in answer["error"], (path, answer)
        assert "^" not in answer["error"], answer  # no regular expression for people
    # A lone surrogate, as JSON escapes it (json.dumps would refuse to write it as UTF-8).
    status, answer = await site.admin.call(
        "POST", "/api/v1/incidents", raw=b'{"agency": "bo-a", "summary": "x\\ud800"}'
    )
    assert status == 400 and "summary: is not valid Unicode" in answer["error"], answer
    status, answer = await site.admin.call("GET", "/api/v1/incidents?all=yes")
    assert status == 400 and "all must be given once" in answer["error"]
    # Well-typed ones are taken: multi-line text, and the agency's secure server.
    status, answer = await site.admin.call(
        "POST", "/api/v1/incidents", {"agency": "bo-a", "summary": "dòng 1\n\tdòng 2"}
    )
    assert status == 201, answer
    status, answer = await site.admin.call(
        "POST", "/api/v1/announcements", {**announce(port=8443), "ref": "CV-123/BTC"}
    )
    assert status == 201 and answer["changes"] == {"port": 8443}, answer
    status, answer = await site.admin.call("GET", "/api/v1/incidents?all=true")
    assert status == 200
    assert site.tracebacks() == []


# ----- 10 and 12 over MQTT -----------------------------------------------------------------------


@pytest.mark.skipif(not available(), reason="mosquitto is not installed")
async def test_every_refused_announcement_gets_a_result(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    running, portal, _certs, _tls = await world()
    effective = json.dumps(iso_in(30 * 86400))
    bad: list[tuple[str, bytes, str | None, str]] = [
        # (agency, payload, the ref answered, the reason)
        (
            "bo-a",
            b'{"ref": "\\ud800", "effective_at": %s, "changes": {"port": 9443}}'
            % effective.encode(),
            None,
            "ref: must be 1 to 128 letters",
        ),
        (
            "bo-a",
            b'{"ref": "r\\u0000", "effective_at": %s, "changes": {"port": 9443}}'
            % effective.encode(),
            None,
            "ref: must be 1 to 128",
        ),
        (
            "bo-a",
            b'{"ref": 7, "effective_at": %s, "changes": {"port": 9443}}' % effective.encode(),
            None,
            "ref: Input should be a valid string",
        ),
        (
            "bo-a",
            b'{"ref": "p1", "effective_at": %s, "changes": {"port": true}}' % effective.encode(),
            "p1",
            "changes.port: Input should be a valid integer",
        ),
        (
            "bo-a",
            b'{"ref": "p2", "effective_at": %s, "changes": {"port": "443"}}' % effective.encode(),
            "p2",
            "changes.port: Input should be a valid integer",
        ),
        (
            "bo-a",
            b'{"ref": "p3", "effective_at": %s, "changes": {"port": 443.0}}' % effective.encode(),
            "p3",
            "changes.port: Input should be a valid integer",
        ),
        (
            "bo-a",
            b'{"ref": "t1", "effective_at": %s, "changes": {"text": "a\\u0000b"}}'
            % effective.encode(),
            "t1",
            "changes.text: must not contain control characters",
        ),
        (
            "bo-b",
            b'{"ref": "s1", "system": "one-stop", "effective_at": %s, "changes": {"port": 1}}'
            % effective.encode(),
            "s1",
            "bo-b/one-stop is a one-stop, not a secure server",
        ),
    ]
    for agency, payload, _ref, _reason in bad:
        await portal.announce(agency, payload)
    await wait_until(lambda: len(portal.results) == len(bad), 10, "every message answered")
    for (_agency, payload, ref, reason), result in zip(bad, portal.results, strict=True):
        assert result["accepted"] is False, (payload, result)
        assert result["ref"] == ref and reason in result["reason"], (payload, result)
    # Nothing was stored, the daemon is well, and no traceback was logged for any of them.
    listed = await running.api("/api/v1/announcements")
    assert listed["announcements"] == []
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    # A well-formed one is still taken.
    await portal.announce(
        "bo-a", {"ref": "ok-1", "effective_at": iso_in(30 * 86400), "changes": {"port": 9443}}
    )
    await wait_until(lambda: len(portal.results) == len(bad) + 1, 10, "the good one answered")
    assert portal.results[-1]["accepted"] is True, portal.results[-1]


def test_an_mqtt_heartbeat_payload_is_strict() -> None:
    from monitor.heartbeats import _token_of

    assert _token_of(b'{"token": "hb-token-A1"}') == ("hb-token-A1", None)
    for payload, reason in [
        (b'{"token": "hb-token-A1", "at": 1}', "unknown fields 'at'"),
        (b'{"token": 12345678901234567}', 'payload must be a JSON object {"token": "..."}'),
        (b'{"token": "hb\\u0000token"}', "control character or a lone surrogate"),
        (b'{"token": "hb\\ud800token"}', "control character or a lone surrogate"),
    ]:
        token, problem = _token_of(payload)
        assert token is None and problem is not None and reason in problem, (payload, problem)


def test_review_findings_on_strict_text_and_dates() -> None:
    """CR LF from Windows tools is a line end, not a refused control character; a Unix time
    written as text is not ISO 8601; a dispatch number in Vietnamese is a valid ref."""
    from monitor.rules.announcements import AnnouncementRejected, parse_request

    request = parse_request(
        json.dumps(
            {
                "ref": "123/QĐ-TTg",
                "effective_at": "2026-12-14T08:00+07:00",
                "changes": {"port": 8443, "text": "gia hạn\r\nchứng thư"},
            }
        ).encode(),
        "ha-noi",
    )
    assert request.ref == "123/QĐ-TTg"
    assert request.changes.text == "gia hạn\nchứng thư"
    with pytest.raises(AnnouncementRejected, match="ISO 8601"):
        parse_request(
            json.dumps({"effective_at": "1798000000", "changes": {"port": 8443}}).encode(),
            "ha-noi",
        )
