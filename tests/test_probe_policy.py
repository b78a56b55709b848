"""Probes cannot be turned inward (issue 10, item 4).

Each test performs the attack against real loopback servers (and the real daemon for its own
``/healthz``): an agency announces its secure server's new host as loopback or a private
address, or a probed server redirects into the gateway, or a JSON condition fails on a target
that came from an announcement and its reason would echo what the target sent. The registry
(the operators' YAML) stays trusted: its hosts are 127.0.0.1 throughout.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import Config
from monitor.registry import Override, Registry
from monitor.rules.announcements import AnnouncementRejected, examine, parse_request
from monitor.store import Store
from monitor.workdays import WorkCalendar
from npsp_common.types import ProbeResult
from probes import PROBES, ProbeEnv
from probes.addresspolicy import AddressPolicy

from .probe_servers import Server, http_server, redirect, response, run_on_uvloop
from .test_alert_pipeline import agency
from .test_announcements import MONDAY_0900, Desk, intake_for, signed
from .test_daemon import Running, start, write_config

__all__ = ["start"]  # the daemon fixture, used here as it is in test_daemon

WHY = "announced targets and redirects may not point inside the gateway's networks"
INWARD = [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.20.0.9", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("::1", "loopback"),
    ("[::1]", "loopback"),
    ("fd00::5", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("::ffff:127.0.0.1", "loopback"),
]


def config_data(checks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    ha_noi = agency("ha-noi", "Hà Nội", ["secure-server"])
    ha_noi["systems"][0]["checks"] = checks
    return {"agencies": [ha_noi], **extra}


def config_file(path: Path, checks: list[dict[str, Any]], **extra: Any) -> Path:
    """A config file (a daemon's, or the command line's): no contacts, so no channels."""
    data = config_data(checks, state_db=str(path.parent / "state.db"), **extra)
    data["agencies"][0]["contacts"] = []
    return write_config(path, data)


def fleet(*, allow: list[str] | None = None) -> Config:
    extra = {"security": {"allow_networks": allow}} if allow is not None else {}
    tls = {"id": "tls", "kind": "tls", "host": "ssv.ha-noi.example", "port": 8443}
    return Config.model_validate(config_data([tls], **extra))


def announce(host: str, config: Config, **changes: Any) -> Any:
    payload = {"effective_at": "2026-12-20T08:00", "changes": {"host": host, **changes}}
    return examine(
        parse_request(json.dumps(payload).encode(), "ha-noi"),
        "ha-noi",
        registry=Registry.from_config(config),
        calendar=WorkCalendar(config.calendar),
        now=MONDAY_0900,
        source="test",
    )


async def run(
    checks: list[dict[str, Any]], override: Override | None = None, allow: list[str] | None = None
) -> ProbeResult:
    """Run the system's one check as the daemon would: registry (with ``override`` in effect,
    ``allow`` as security.allow_networks) then the probe kind's build."""
    extra = {"security": {"allow_networks": allow}} if allow is not None else {}
    config = Config.model_validate(config_data(checks, **extra))
    registry = Registry.from_config(config, {"ha-noi/secure-server": override} if override else {})
    (entry,) = registry.systems["ha-noi/secure-server"].checks
    return await PROBES[entry.kind].build(entry.spec, ProbeEnv())(3.0)


def listener() -> Server:
    async def answer(_reader: Any, writer: Any) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2 internal-host\r\n")

    return Server(answer)


# --- intake ------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "why"), INWARD)
def test_an_inward_host_is_refused_at_intake(host: str, why: str) -> None:
    with pytest.raises(AnnouncementRejected) as caught:
        announce(host, fleet())
    address = ipaddress.ip_address(host.strip("[]"))  # as stored: ::ffff:7f00:1
    assert str(caught.value) == f"changes.host: address {address} not allowed ({why}): {WHY}"


def test_localhost_by_name_and_inward_addresses_are_refused_at_intake() -> None:
    with pytest.raises(AnnouncementRejected, match=r"host localhost not allowed \(loopback\)"):
        announce("localhost", fleet())
    with pytest.raises(AnnouncementRejected, match=r"changes\.addresses: address 10\.9\.8\.7"):
        announce("ssv2.ha-noi.example", fleet(), addresses=["192.0.2.20", "10.9.8.7"])
    # names are judged when resolved, at connect time; public addresses pass
    assert announce("ssv2.ha-noi.example", fleet(), addresses=["192.0.2.20"]).changes.host
    assert announce("203.0.113.9", fleet()).changes.host == "203.0.113.9"


def test_allow_networks_permits_an_internal_network_at_intake() -> None:
    config = fleet(allow=["10.20.0.0/16", "fd00:1::/48"])
    assert announce("10.20.3.4", config).changes.host == "10.20.3.4"
    assert announce("fd00:1::7", config).changes.host == "fd00:1::7"
    with pytest.raises(AnnouncementRejected, match=r"10\.21\.0\.1 not allowed \(private\)"):
        announce("10.21.0.1", config)
    with pytest.raises(AnnouncementRejected, match=r"127\.0\.0\.1 not allowed \(loopback\)"):
        announce("127.0.0.1", config)


def test_allow_networks_must_be_networks() -> None:
    with pytest.raises(ValueError, match=r"not a network like 10\.20\.0\.0/16"):
        fleet(allow=["10.20.1.0/16"])
    with pytest.raises(ValueError, match="not a network"):
        fleet(allow=["intranet"])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.8", "169.254.0.1", "[::1]"])
async def test_mqtt_announcement_of_an_inward_host_is_refused(
    host: str, store: Store, tmp_path: Path
) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    intake = intake_for(d.desk, tmp_path)
    answer = await intake.handle(
        "ha-noi",
        signed({"ref": "cv-7", "effective_at": "2026-12-20T08:00", "changes": {"host": host}}),
    )
    assert answer["accepted"] is False, answer
    assert f"changes.host: address {host.strip('[]')} not allowed" in answer["reason"]
    assert d.desk.items == [] and d.counted == {"announcements_rejected": 1}


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.8", "169.254.0.1", "[::1]"])
def test_cli_announcement_of_an_inward_host_is_refused(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = {"id": "tls", "kind": "tls", "host": "ssv.ha-noi.example", "port": 8443}
    path = config_file(tmp_path / "npsp.yaml", [tls])
    effective = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    code = main(
        [
            *("announce", "-c", str(path), "--agency", "ha-noi", "--effective", effective),
            *("--host", host, "--ref", "cv-8"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"address {host.strip('[]')} not allowed" in err and WHY in err


# --- announced targets, at connect time ----------------------------------------------------


async def test_an_announced_name_that_resolves_to_loopback_is_refused_at_connect() -> None:
    """``localhost`` stands for a name whose DNS answer points inside: the probe resolves it
    once, checks every address, and connects to none."""
    async with listener() as server:
        tcp = {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 1}
        result = await run([tcp], Override(host="localhost", port=server.port))
        assert not result.ok
        assert result.reason.startswith("address ") and f"not allowed (loopback): {WHY}" in (
            result.reason
        )
        assert server.accepted == 0


@pytest.mark.parametrize("kind", ["tcp", "tls"])
async def test_an_announced_port_on_loopback_cannot_be_scanned(kind: str) -> None:
    """The registry's host is trusted with its port, not with any port an agency names: the
    "refused" against "does not speak TLS" difference is not handed out."""
    async with listener() as server:
        check = {"id": kind, "kind": kind, "host": "127.0.0.1", "port": 1}
        result = await run([check], Override(port=server.port))
        closed = await run([check], Override(port=1))
    assert result.reason == f"address 127.0.0.1 not allowed (loopback): {WHY}"
    assert closed.reason == result.reason  # open and closed ports look the same
    assert server.accepted == 0


async def test_an_announced_http_host_is_checked_and_its_body_is_not_echoed() -> None:
    secret = json.dumps({"status": "internal: db=10.0.0.5 user=sa password=hunter2"})
    server, app = http_server({"/status": response(200, secret)})
    async with server:
        check = {
            "id": "api",
            "kind": "http",
            "url": "http://ssv.ha-noi.example/status",
            "json": [{"path": "$.status", "equals": "ok"}],
        }
        moved = Override(host="127.0.0.1", port=server.port)
        refused = await run([check], moved)
        assert refused.reason == f"address 127.0.0.1 not allowed (loopback): {WHY}"
        assert app.requests == []
        # allowed explicitly, the target is reached, and its body stays out of the reason
        allowed = await run([check], moved, allow=["127.0.0.0/8"])
    assert len(app.requests) == 1
    assert allowed.reason == 'JSON $.status is not "ok"'
    assert "hunter2" not in allowed.reason and "internal" not in allowed.reason


async def test_the_registry_own_loopback_target_still_works_and_still_says_why() -> None:
    """Not announced: trusted as before, reasons unchanged."""
    server, _ = http_server({"/status": response(200, '{"status": "degraded"}')})
    async with server, listener() as plain:
        url = f"http://127.0.0.1:{server.port}/status"
        check = {"id": "api", "kind": "http", "url": url}
        result = await run([{**check, "json": [{"path": "$.status", "equals": "ok"}]}])
        tcp = await run([{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": plain.port}])
    assert result.reason == 'JSON $.status is "degraded" (expected "ok")'
    assert tcp.ok, tcp.reason


async def test_announced_targets_allowed_by_the_config_connect() -> None:
    allow = ["127.0.0.0/8", "::1/128"]
    async with listener() as server:
        tcp = {"id": "tcp", "kind": "tcp", "host": "192.0.2.1", "port": 1}
        result = await run([tcp], Override(host="localhost", port=server.port), allow)
    assert result.ok, result.reason
    assert server.accepted == 1


# --- redirects ------------------------------------------------------------------------------


async def healthz_redirect(running: Running, *, allow: list[str] | None = None) -> ProbeResult:
    """A server on loopback (trusted: the registry names it) that redirects the probe to the
    daemon's own ``/healthz``."""
    healthz = f"http://127.0.0.1:{running.daemon.http_port}/healthz"
    server, _ = http_server({"/": redirect(healthz)})
    async with server:
        check = {
            "id": "web",
            "kind": "http",
            "url": f"http://127.0.0.1:{server.port}/",
            "follow_redirects": 3,
        }
        return await run([check], allow=allow)


@pytest.fixture
async def daemon(tmp_path: Path, start: Callable[[Path], Awaitable[Running]]) -> Running:
    path = config_file(
        tmp_path / "npsp.yaml",
        [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 1}],
        listen="127.0.0.1:0",
        defaults={"interval": "1h", "timeout": "1s"},
    )
    return await start(path)


async def test_a_redirect_into_the_daemon_is_refused(daemon: Running) -> None:
    result = await healthz_redirect(daemon)
    assert not result.ok
    assert result.reason == f"address 127.0.0.1 not allowed (loopback): {WHY}"
    assert result.status_code is None


async def test_allow_networks_permits_a_redirect(daemon: Running) -> None:
    result = await healthz_redirect(daemon, allow=["127.0.0.0/8"])
    assert result.ok and result.reason == "HTTP 200"


async def test_a_redirect_to_another_host_is_checked_after_resolution() -> None:
    target, app = http_server({"/": response(200)})
    async with target:
        server, _ = http_server({"/": redirect(f"http://localhost:{target.port}/")})
        async with server:
            url = f"http://127.0.0.1:{server.port}/"
            result = await run([{"id": "w", "kind": "http", "url": url, "follow_redirects": 1}])
    assert "not allowed (loopback)" in result.reason
    assert app.requests == []


async def test_a_redirect_within_the_configured_origin_is_followed_and_echoes_as_before() -> None:
    server, _ = http_server({"/": redirect("/v2"), "/v2": response(200, '{"status": "down"}')})
    async with server:
        url = f"http://127.0.0.1:{server.port}/"
        check = {"id": "w", "kind": "http", "url": url, "follow_redirects": 2}
        result = await run([{**check, "json": [{"path": "$.status", "equals": "ok"}]}])
    assert result.reason == 'JSON $.status is "down" (expected "ok")'


async def test_a_target_reached_by_redirect_echoes_no_body() -> None:
    body = '{"status": "secret-from-inside", "at": "not a time"}'
    target, _ = http_server({"/data": response(200, body), "/moved": redirect("/elsewhere")})
    async with target:
        server, _ = http_server({"/": redirect(f"http://127.0.0.1:{target.port}/data")})
        async with server:
            url = f"http://127.0.0.1:{server.port}/"
            base = {"id": "w", "kind": "http", "url": url, "follow_redirects": 2}
            allow = ["127.0.0.0/8"]
            equals = await run(
                [{**base, "json": [{"path": "$.status", "equals": "ok"}]}], None, allow
            )
            young = await run(
                [{**base, "json": [{"path": "$.at", "younger_than": "1h"}]}], None, allow
            )
    assert equals.reason == 'JSON $.status is not "ok"'
    assert young.reason == "JSON $.at is not a timestamp"


# --- the policy itself ----------------------------------------------------------------------


def test_the_gateway_own_addresses_are_refused() -> None:
    from probes.addresspolicy import AddressPolicy

    listening = AddressPolicy.from_settings([], "203.0.113.7:9477")
    assert listening.why("203.0.113.7") == "the gateway's own address"
    assert listening.why("203.0.113.8") is None
    # any address of this host, whatever the daemon listens on
    own = _a_public_looking_local_address()
    if own is not None:
        assert AddressPolicy().why(own) == "the gateway's own address"
        assert AddressPolicy.from_settings([f"{own}/32"]).why(own) is None


def _a_public_looking_local_address() -> str | None:
    """An address of this host in no denied range (documentation ranges count), if any."""
    from probes.addresspolicy import category

    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if category(address) is None:
            return str(address)
    return None


def test_a_change_of_the_allow_list_rebuilds_the_guarded_checks() -> None:
    check = {"id": "w", "kind": "http", "url": "http://127.0.0.1:1/", "follow_redirects": 1}
    plain = {"id": "t", "kind": "tcp", "host": "127.0.0.1", "port": 1}

    def fingerprints(**extra: Any) -> list[str]:
        config = Config.model_validate(config_data([check, plain], **extra))
        return [e.fingerprint for e in Registry.from_config(config).checks.values()]

    before = fingerprints()
    after = fingerprints(security={"allow_networks": ["10.0.0.0/8"]})
    assert before[0] != after[0]  # follows redirects: under the policy
    assert before[1] == after[1]  # the registry's own target: untouched


# --- on uvloop, the daemon's loop --------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        test_an_announced_name_that_resolves_to_loopback_is_refused_at_connect,
        test_announced_targets_allowed_by_the_config_connect,
        test_an_announced_http_host_is_checked_and_its_body_is_not_echoed,
        test_a_redirect_to_another_host_is_checked_after_resolution,
    ],
)
def test_on_uvloop(scenario: Any, request: pytest.FixtureRequest) -> None:
    run_on_uvloop(scenario, request)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001"])
def test_numeric_forms_of_loopback_are_refused_at_intake(host: str) -> None:
    """The C library reads these as 127.0.0.1: refused when announced, not only at connect
    time (where an accepted one would turn into a false DOWN at the effective time)."""
    why = AddressPolicy().host_refusal(host)
    assert why is not None and "127.0.0.1" in why and "loopback" in why


def test_a_new_port_is_trusted_on_the_registrys_host_but_not_on_the_gateway_itself() -> None:
    """Review of issue 10: a secure server on the government's private network announcing a
    new port must not go DOWN for "private address" — the registry vouched for that host. The
    gateway itself (a local tunnel the registry names) is the exception: its other ports are
    the daemon's and other services'."""
    from monitor.registry import Override
    from probes.addresspolicy import gateway_itself
    from probes.tcp import Spec as TcpSpec

    remote = TcpSpec(id="t", kind="tcp", host="10.20.0.5", port=443)
    local = TcpSpec(id="t", kind="tcp", host="127.0.0.1", port=443)
    assert not Override(port=8443).moves(remote)
    assert Override(port=8443).moves(local)
    assert Override(host="10.20.0.6").moves(remote)
    for host in ("127.0.0.1", "localhost", "::1", "127.1", "2130706433", "[::1]"):
        assert gateway_itself(host), host
    for host in ("10.20.0.5", "ssv.ha-noi.example", "192.0.2.10"):
        assert not gateway_itself(host), host
