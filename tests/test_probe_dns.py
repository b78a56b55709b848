"""The dns probe against a tiny DNS server on loopback (dnspython on both ends)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from npsp_common.types import ProbeResult
from probes import PROBES, dns
from probes.base import ProbeEnv
from tests.probe_servers import DNSServer, Zone, free_port, run_on_uvloop

pytestmark = pytest.mark.timeout(30)

SLACK = 0.5


def zone() -> Zone:
    return Zone(
        records={
            ("dichvucong.gov.vn", "A"): ["10.0.0.5", "10.0.0.4"],
            ("dichvucong.gov.vn", "AAAA"): ["2001:db8:0:0::1"],
        },
        nxdomain={"khong-ton-tai.gov.vn"},
        servfail={"loi.gov.vn"},
        silent={"im-lang.gov.vn"},
    )


async def lookup(
    server: DNSServer | str, name: str, timeout: float = 1.0, **fields: Any
) -> ProbeResult:
    address = server if isinstance(server, str) else server.address
    spec = dns.Spec.model_validate(
        {"id": "dns-portal", "kind": "dns", "name": name, "nameservers": [address], **fields}
    )
    result = await dns.build(spec, ProbeEnv())(timeout)
    assert result.duration <= timeout + SLACK
    return result


async def test_a_records() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "dichvucong.gov.vn")
    assert result.ok
    assert result.reason == "DNS: A 10.0.0.4,10.0.0.5"
    assert result.observed == {"addresses": "10.0.0.4,10.0.0.5"}


async def test_aaaa_records_are_normalised() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "dichvucong.gov.vn.", record_type="AAAA")
    assert result.observed == {"addresses": "2001:db8::1"}


async def test_expected_addresses() -> None:
    async with DNSServer(zone()) as server:
        same = await lookup(
            server, "dichvucong.gov.vn", expected_addresses=["10.0.0.4", "10.0.0.5"]
        )
        moved = await lookup(server, "dichvucong.gov.vn", expected_addresses=["10.0.0.4"])
    assert same.ok, same.reason
    assert moved.reason == "DNS: got 10.0.0.4,10.0.0.5, expected 10.0.0.4"
    assert moved.observed == {"addresses": "10.0.0.4,10.0.0.5"}


async def test_nxdomain() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "khong-ton-tai.gov.vn")
    assert result.reason == "DNS: NXDOMAIN"


async def test_no_record_of_that_type() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "mail.gov.vn", record_type="AAAA")
    assert result.reason == "DNS: no AAAA record"


async def test_server_failure() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "loi.gov.vn")
    assert result.reason == "DNS: server failure (SERVFAIL from 127.0.0.1)"


async def test_server_never_answers() -> None:
    async with DNSServer(zone()) as server:
        result = await lookup(server, "im-lang.gov.vn", timeout=0.5)
    assert result.reason == "DNS: timeout after 500ms"
    assert server.queries >= 1


async def test_nobody_listening() -> None:
    result = await lookup(f"127.0.0.1:{free_port()}", "dichvucong.gov.vn", timeout=0.5)
    assert not result.ok
    assert result.reason.startswith("DNS: "), result.reason


async def test_ipv6_name_server() -> None:
    async with DNSServer(zone(), host="::1") as server:
        result = await lookup(server, "dichvucong.gov.vn")
    assert result.ok, result.reason


@pytest.mark.parametrize(
    "scenario", [test_a_records, test_nxdomain, test_server_failure, test_server_never_answers]
)
def test_on_uvloop(scenario: Any, request: pytest.FixtureRequest) -> None:
    run_on_uvloop(scenario, request)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("9.9.9.9", ("9.9.9.9", 53)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_parse_nameserver(text: str, parsed: tuple[str, int]) -> None:
    assert dns.parse_nameserver(text) == parsed


def test_spec_defaults_and_target_host() -> None:
    check = PROBES["dns"].spec.model_validate({"id": "d", "kind": "dns", "name": "dvc.gov.vn"})
    assert isinstance(check, dns.Spec)
    assert (check.record_type, check.nameservers, check.expected_addresses) == ("A", [], [])
    assert check.target_host() == "dvc.gov.vn"
    served = dns.Spec(id="d", kind="dns", name="dvc.gov.vn", nameservers=["[::1]:53"])
    assert served.target_host() == "::1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nameservers": ["ns1.gov.vn"]}, "must be an IP address"),
        ({"nameservers": ["127.0.0.1:0"]}, "port out of range"),
        ({"nameservers": ["[::1"]}, r"\[IPv6\]:port"),
        ({"expected_addresses": ["10.0.0.300"]}, "is not an IP address"),
        ({"expected_addresses": ["2001:db8::1"]}, "cannot be an A record"),
        ({"record_type": "MX"}, "record_type"),
        ({"name": "a..b"}, "invalid DNS name"),
    ],
)
def test_bad_specs_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        dns.Spec.model_validate({"id": "d", "kind": "dns", "name": "dvc.gov.vn", **fields})
