"""``dns``: ask a name server for a name's A or AAAA records, and compare the answer.

``getaddrinfo`` cannot name the server to ask and hides why a lookup failed, so this uses
dnspython's asyncio resolver. Each check builds its resolver once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Annotated, Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.resolver
from pydantic import Field, field_validator, model_validator

from npsp_common.types import CheckCommon, ProbeResult

from .base import Probe, ProbeEnv
from .reasons import fail, passed, why

__all__ = ["Spec", "build", "parse_nameserver"]

_DEFAULT_PORT = 53
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_nameserver(text: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:5353"``, ``"::1"``, ``"9.9.9.9"`` → (address, port)."""
    host, port = text, _DEFAULT_PORT
    try:
        return str(ipaddress.ip_address(text)), port  # includes a bare IPv6 address
    except ValueError:
        pass
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"name server {text!r}: write [IPv6]:port")
        port_text = rest[1:]
    else:
        host, _, port_text = text.rpartition(":")
    try:
        address = ipaddress.ip_address(host)
        port = int(port_text) if port_text else _DEFAULT_PORT
    except ValueError:
        raise ValueError(
            f"name server {text!r} must be an IP address, optionally with :port"
        ) from None
    if not 1 <= port <= 65535:
        raise ValueError(f"name server {text!r}: port out of range")
    return str(address), port


class Spec(CheckCommon):
    """A DNS resolution check."""

    kind: Literal["dns"]
    name: Annotated[str, Field(min_length=1, max_length=253)]
    record_type: Literal["A", "AAAA"] = "A"
    nameservers: list[str] = Field(
        default_factory=list, description="Servers to ask; empty means /etc/resolv.conf."
    )
    expected_addresses: list[str] = Field(
        default_factory=list, description="If given, the answer must be exactly this set."
    )

    def target_host(self) -> str:
        if self.host_key:
            return self.host_key
        return parse_nameserver(self.nameservers[0])[0] if self.nameservers else self.name

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        try:
            dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise ValueError(f"invalid DNS name {name!r}: {exc}") from None
        return name

    @field_validator("nameservers")
    @classmethod
    def _check_nameservers(cls, servers: list[str]) -> list[str]:
        for server in servers:
            parse_nameserver(server)
        return servers

    @model_validator(mode="after")
    def _check_addresses(self) -> Spec:
        version = 4 if self.record_type == "A" else 6
        for text in self.expected_addresses:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise ValueError(f"expected address {text!r} is not an IP address") from None
            if address.version != version:
                raise ValueError(f"expected address {text} cannot be an {self.record_type} record")
        return self


def _format(addresses: list[IPAddress]) -> str:
    return ",".join(str(a) for a in sorted(addresses))


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Build the resolver once; the probe sends one query (with dnspython's retries)."""
    del env
    try:
        resolver = _resolver(spec.nameservers)
    except dns.exception.DNSException as exc:
        reason = why("dns.no_server", detail=str(exc))

        async def broken(timeout: float) -> ProbeResult:  # noqa: ASYNC109
            return fail(reason, 0.0)

        return broken
    qname = dns.name.from_text(spec.name)
    rdtype = spec.record_type
    expected = _format([ipaddress.ip_address(a) for a in spec.expected_addresses])

    async def probe(timeout: float) -> ProbeResult:  # noqa: ASYNC109
        start = time.perf_counter()
        try:
            # dnspython's lifetime bounds the query; asyncio.timeout guards the rest
            async with asyncio.timeout(timeout):
                answer = await resolver.resolve(qname, rdtype, lifetime=timeout, search=False)
        except (TimeoutError, dns.resolver.LifetimeTimeout):
            return fail(why("dns.timeout", timeout=timeout), timeout)
        except dns.resolver.NXDOMAIN:
            failed = why("dns.nxdomain")
        except dns.resolver.NoAnswer:
            failed = why("dns.no_record", rdtype=rdtype)
        except dns.resolver.NoNameservers as exc:
            answers = _rcodes(exc)
            failed = (
                why("dns.server_failure_from", answers=answers)
                if answers
                else why("dns.server_failure")
            )
        except dns.exception.DNSException as exc:
            failed = why("dns.error", detail=str(exc))
        else:
            elapsed = time.perf_counter() - start
            got = _format([ipaddress.ip_address(rr.address) for rr in answer])
            observed = {"addresses": got}
            if expected and got != expected:
                wrong = (
                    why("dns.mismatch", got=got, expected=expected)
                    if got
                    else why("dns.nothing", expected=expected)
                )
                return fail(wrong, elapsed, observed=observed)
            return passed(why("dns.ok", rdtype=rdtype, got=got), elapsed, observed=observed)
        return fail(failed, time.perf_counter() - start)

    return probe


def _resolver(nameservers: list[str]) -> dns.asyncresolver.Resolver:
    if not nameservers:
        return dns.asyncresolver.Resolver()  # reads /etc/resolv.conf
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [
        dns.nameserver.Do53Nameserver(*parse_nameserver(server)) for server in nameservers
    ]
    return resolver


def _rcodes(exc: dns.resolver.NoNameservers) -> str:
    """``SERVFAIL from 127.0.0.1`` — what each server answered, when it answered."""
    parts = []
    for server, _tcp, _port, _error, response in exc.kwargs.get("errors", []):
        if response is not None:
            address = str(server).removeprefix("Do53:").partition("@")[0]
            parts.append(f"{dns.rcode.to_text(response.rcode())} from {address}")
    return ", ".join(parts)
