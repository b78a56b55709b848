"""The tls probe against real TLS servers on loopback, with trustme certificates."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from npsp_common.types import ProbeResult
from probes import PROBES, tls
from probes.base import ProbeEnv
from probes.tlsopts import SSLContextCache, TLSOptions, format_day
from tests.probe_servers import (
    Certs,
    OpenSSLServer,
    Server,
    free_port,
    garbage,
    make_certs,
    plain_http_error,
    reset,
    run_on_uvloop,
    silent,
    unanswered_port,
)

pytestmark = pytest.mark.timeout(30)

SLACK = 0.5  # scheduling noise allowed beyond a probe's timeout


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def wait_for_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


def spec(port: int, host: str = "127.0.0.1", **tls_options: Any) -> tls.Spec:
    return tls.Spec.model_validate(
        {"id": "gw-tls", "kind": "tls", "host": host, "port": port, "tls": tls_options}
    )


async def run(spec_: tls.Spec, timeout: float = 2.0) -> ProbeResult:
    result = await tls.build(spec_, ProbeEnv())(timeout)
    assert result.duration <= timeout + SLACK
    return result


def der_sha256(certs: Certs) -> str:
    der = ssl.PEM_cert_to_DER_cert(certs.good.cert_chain_pems[0].bytes().decode())
    return hashlib.sha256(der).hexdigest()


# --- good servers --------------------------------------------------------------------------


async def test_valid_certificate(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.ok, result.reason
    assert result.reason == "TLSv1.3 ok, certificate valid until 3000-01-01"
    assert result.cert_not_after == pytest.approx(32503680000.0)
    assert result.observed["tls_version"] == "TLSv1.3"
    assert result.observed["issuer"].startswith("O=trustme")
    assert "Testing cert" in result.observed["subject"]
    fingerprint = result.observed["fingerprint_sha256"]
    assert fingerprint.replace(":", "").lower() == der_sha256(certs)


async def test_server_name_is_sent_and_verified(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        good = await run(spec(server.port, ca_file=certs.ca_file, server_name="localhost"))
        bad = await run(spec(server.port, ca_file=certs.ca_file, server_name="portal.example"))
    assert good.ok, good.reason
    assert bad.reason.startswith("TLS: host name mismatch"), bad.reason


async def test_tls12_server(certs: Certs) -> None:
    ctx = certs.server_context(max_version=ssl.TLSVersion.TLSv1_2)
    async with Server(wait_for_eof, tls=ctx) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.ok, result.reason
    assert result.observed["tls_version"] == "TLSv1.2"


@pytest.mark.parametrize("separator", [":", ""])
async def test_fingerprint_match(certs: Certs, separator: str) -> None:
    hex_digest = der_sha256(certs)
    expected = separator.join(hex_digest[i : i + 2] for i in range(0, 64, 2)).lower()
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        result = await run(
            spec(server.port, ca_file=certs.ca_file, expected_fingerprint_sha256=expected)
        )
    assert result.ok, result.reason


async def test_fingerprint_mismatch(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        result = await run(
            spec(server.port, ca_file=certs.ca_file, expected_fingerprint_sha256="AB" * 32)
        )
    assert not result.ok
    assert result.reason.startswith("TLS: certificate fingerprint ")
    assert result.reason.endswith("differs from expected AB:AB:AB:AB:AB:AB…")
    assert result.observed["fingerprint_sha256"].replace(":", "").lower() == der_sha256(certs)


# --- certificates with problems ----------------------------------------------------------


async def test_expired_certificate_names_the_date(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context(certs.expired)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    expiry = format_day(time.time() - 2 * 86400)
    assert result.reason == f"TLS: certificate expired {expiry}"
    assert not result.ok


async def test_expired_certificate_still_reports_its_expiry(certs: Certs) -> None:
    """Issue 9 #14: the date of a certificate that fails verification stays on /metrics, read
    from the failed handshake itself: no second, unverified handshake (which the asyncio
    server would have completed and counted as accepted)."""
    async with Server(wait_for_eof, tls=certs.server_context(certs.expired)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
        accepted = server.accepted
    assert not result.ok
    assert result.reason == f"TLS: certificate expired {format_day(time.time() - 2 * 86400)}"
    assert result.cert_not_after == pytest.approx(time.time() - 2 * 86400, abs=300)
    assert accepted == 0  # the one connection never completed a handshake


@pytest.mark.parametrize(
    ("leaf", "ca", "days_left", "reason"),
    [
        ("not_yet_valid", "ca_file", 90, "TLS: certificate not valid before "),
        ("wrong_host", "ca_file", None, "TLS: host name mismatch"),
        ("good", "other_ca_file", None, "TLS: unknown issuer"),
    ],
)
async def test_rejected_certificates_still_report_their_expiry(
    certs: Certs, leaf: str, ca: str, days_left: int | None, reason: str
) -> None:
    ctx = certs.server_context(getattr(certs, leaf))
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx.maximum_version = version
        async with Server(wait_for_eof, tls=ctx) as server:
            result = await run(spec(server.port, ca_file=getattr(certs, ca)))
        assert not result.ok
        assert result.reason.startswith(reason), result.reason
        if days_left is None:  # trustme's default: valid until 3000-01-01
            assert result.cert_not_after == pytest.approx(32503680000.0), version
        else:
            expected = time.time() + days_left * 86400
            assert result.cert_not_after == pytest.approx(expected, abs=300), version


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)
async def test_refused_client_still_reports_the_server_certificate(
    certs: Certs, version: ssl.TLSVersion
) -> None:
    """The server's certificate was seen (and verified) before it refused ours."""
    ctx = certs.server_context(require_client_cert=True, max_version=version)
    async with OpenSSLServer(ctx) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert not result.ok
    assert result.cert_not_after == pytest.approx(32503680000.0), result.reason


async def test_no_certificate_no_expiry() -> None:
    async with Server(garbage) as server:
        result = await run(spec(server.port), timeout=1)
    assert not result.ok
    assert result.cert_not_after is None


async def test_not_yet_valid_certificate(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context(certs.not_yet_valid)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert (
        result.reason == f"TLS: certificate not valid before {format_day(time.time() + 5 * 86400)}"
    )


async def test_expiring_soon(certs: Certs) -> None:
    ctx = certs.server_context(certs.expiring)
    async with Server(wait_for_eof, tls=ctx) as server:
        soon = await run(spec(server.port, ca_file=certs.ca_file, min_days_valid=7))
        down = await run(
            spec(
                server.port,
                ca_file=certs.ca_file,
                min_days_valid=7,
                min_days_valid_severity="down",
            )
        )
        fine = await run(spec(server.port, ca_file=certs.ca_file, min_days_valid=2))
    day = format_day(time.time() + 3.5 * 86400)
    assert soon.reason == f"TLS: certificate expires in 3 days ({day})"
    # Within the warning window: a warning (degraded) by default, a failure when configured.
    assert soon.ok and soon.degraded
    assert down.reason == soon.reason
    assert not down.ok
    assert soon.cert_not_after is not None
    assert fine.ok and not fine.degraded, fine.reason


async def test_unknown_issuer(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        other_ca = await run(spec(server.port, ca_file=certs.other_ca_file))
        system_store = await run(spec(server.port))
    for result in (other_ca, system_store):
        assert result.reason.startswith("TLS: unknown issuer ("), result.reason
        assert "local issuer" in result.reason


async def test_host_name_mismatch(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context(certs.wrong_host)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.reason.startswith("TLS: host name mismatch"), result.reason


async def test_insecure_skip_verify(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context()) as server:
        result = await run(
            spec(server.port, ca_file=certs.other_ca_file, insecure_skip_verify=True)
        )
    assert result.ok, result.reason
    assert result.observed["issuer"].startswith("O=trustme")
    assert result.cert_not_after == pytest.approx(32503680000.0)


async def test_insecure_skip_verify_still_reports_expiry(certs: Certs) -> None:
    async with Server(wait_for_eof, tls=certs.server_context(certs.expired)) as server:
        result = await run(spec(server.port, insecure_skip_verify=True))
    assert result.reason.startswith("TLS: certificate expired ")


# --- client certificates and versions (OpenSSL's own server sends the alerts) -------------


async def test_mtls_with_client_certificate(certs: Certs) -> None:
    ctx = certs.server_context(require_client_cert=True)
    async with OpenSSLServer(ctx) as server:
        result = await run(
            spec(
                server.port,
                ca_file=certs.ca_file,
                client_cert=certs.client_cert,
                client_key=certs.client_key,
            )
        )
    assert result.ok, result.reason


async def test_mtls_without_client_certificate_tls13(certs: Certs) -> None:
    """In TLS 1.3 the refusal comes after the client's handshake: the probe waits for it."""
    async with OpenSSLServer(certs.server_context(require_client_cert=True)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.reason == "TLS: server requires a client certificate"


async def test_mtls_without_client_certificate_tls12(certs: Certs) -> None:
    ctx = certs.server_context(require_client_cert=True, max_version=ssl.TLSVersion.TLSv1_2)
    async with OpenSSLServer(ctx) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.reason.startswith("TLS: handshake failed: server refused"), result.reason


async def test_mtls_refusal_without_alert(certs: Certs) -> None:
    """asyncio's TLS server drops the connection without an alert; still a failure."""
    async with Server(wait_for_eof, tls=certs.server_context(require_client_cert=True)) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file))
    assert result.reason == "TLS: server closed the connection right after the handshake"


async def test_min_version_13_against_tls12_server(certs: Certs) -> None:
    ctx = certs.server_context(max_version=ssl.TLSVersion.TLSv1_2)
    async with OpenSSLServer(ctx) as server:
        result = await run(spec(server.port, ca_file=certs.ca_file, min_version="1.3"))
    assert result.reason.startswith("TLS: protocol version too old"), result.reason


# --- hostile and absent peers ------------------------------------------------------------


async def test_connection_refused() -> None:
    result = await run(spec(free_port()))
    assert result.reason == "connect: refused"


async def test_connect_timeout() -> None:
    with unanswered_port() as port:
        result = await run(spec(port), timeout=0.5)
    assert result.reason == "timeout after 500ms (connecting)"


async def test_silent_server() -> None:
    async with Server(silent) as server:
        result = await run(spec(server.port), timeout=0.5)
    assert result.reason == "timeout after 500ms (TLS handshake)"
    assert result.duration == pytest.approx(0.5, abs=SLACK)


@pytest.mark.parametrize("handler", [garbage, plain_http_error])
async def test_peer_that_does_not_speak_tls(handler: Any) -> None:
    async with Server(handler) as server:
        result = await run(spec(server.port), timeout=1)
    assert result.reason.startswith("TLS: handshake failed: peer does not speak TLS")
    assert result.duration < 0.5


async def test_reset_during_handshake() -> None:
    async with Server(reset) as server:
        result = await run(spec(server.port), timeout=1)
    assert result.reason in (
        "TLS: handshake failed: reset by peer",
        "TLS: handshake failed: connection closed by peer",
    )


async def test_unreadable_ca_file_fails_every_run(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    result = await run(spec(free_port(), ca_file=bogus))
    assert result.reason.startswith("TLS: cannot load the tls files:"), result.reason


# --- the same scenarios on uvloop, the daemon's loop --------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        test_valid_certificate,
        test_expired_certificate_names_the_date,
        test_expired_certificate_still_reports_its_expiry,
        test_host_name_mismatch,
        test_mtls_without_client_certificate_tls13,
        test_mtls_refusal_without_alert,
        test_min_version_13_against_tls12_server,
        test_silent_server,
        test_reset_during_handshake,
        test_connection_refused,
    ],
)
def test_on_uvloop(scenario: Any, request: pytest.FixtureRequest) -> None:
    run_on_uvloop(scenario, request)


# --- options and the context cache -------------------------------------------------------


def test_spec_defaults_and_target_host() -> None:
    check = PROBES["tls"].spec.model_validate({"id": "a", "kind": "tls", "host": "dvc.gov.vn"})
    assert isinstance(check, tls.Spec)
    assert check.port == 443
    assert check.tls == TLSOptions()
    assert check.target_host() == "dvc.gov.vn"
    keyed = tls.Spec(id="a", kind="tls", host="dvc.gov.vn", host_key="gw")
    assert keyed.target_host() == "gw"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"client_cert": "CLIENT"}, "client_cert and client_key go together"),
        ({"client_key": "KEY"}, "client_cert and client_key go together"),
        ({"ca_file": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem does not exist"),
        ({"expected_fingerprint_sha256": "AB:CD"}, "is not a SHA-256 fingerprint"),
        ({"min_version": "1.1"}, "min_version"),
        ({"verify": False}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused(certs: Certs, options: dict[str, Any], message: str) -> None:
    files = {"CLIENT": str(certs.client_cert), "KEY": str(certs.client_key)}
    options = {k: files.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(ValidationError, match=message):
        TLSOptions.model_validate(options)


def test_fingerprint_is_normalised() -> None:
    opts = TLSOptions(expected_fingerprint_sha256="ab" * 32)
    assert opts.expected_fingerprint_sha256 == ":".join(["AB"] * 32)


def test_contexts_are_shared_by_options_that_shape_them(certs: Certs) -> None:
    cache = SSLContextCache()
    base = cache.get(TLSOptions(ca_file=certs.ca_file))
    assert cache.get(TLSOptions(ca_file=certs.ca_file, server_name="x", min_days_valid=3)) is base
    assert cache.get(TLSOptions(ca_file=certs.ca_file, min_version="1.3")) is not base
    assert cache.get(TLSOptions(ca_file=certs.other_ca_file)) is not base
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0
    assert cache.get(TLSOptions(ca_file=certs.ca_file)) is not base
