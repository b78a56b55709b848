"""Where a probe may connect when the target did not come from the registry.

The registry (the YAML the operators write) is trusted: a host configured there may be anything,
loopback included. Two kinds of target are not: a host or port an agency *announced* (it becomes
the check's target at the effective time, see ``monitor.registry.Override``) and the target of an
HTTP redirect to another host or port. Pointed inward, they would make the gateway a port scanner
of its own networks ("connect: refused" against "peer does not speak TLS") and a reader of its
internal services (a redirect to the daemon's own ``/healthz`` read "HTTP 200").

:class:`AddressPolicy` refuses, for those targets, loopback, link-local, private (RFC 1918, ULA),
unspecified, multicast, reserved and carrier-grade NAT addresses, and the gateway's own addresses
(the daemon's listen address and any address of the host), unless an operator allowed the network
(``security.allow_networks``). :func:`connect` resolves a name once, checks every address it
resolved to, and connects to the checked addresses only: no second lookup that a DNS rebinding
could answer differently.

A leaf module: the standard library and ``npsp_common.types`` only.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from npsp_common.types import Why

__all__ = ["AddressNotAllowed", "AddressPolicy", "connect"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

WHY = "announced targets and redirects may not point inside the gateway's networks"

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
_ULA = ipaddress.IPv6Network("fc00::/7")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Names that always mean this host (RFC 6761), refused at intake without a lookup.
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


# What :func:`category` and :meth:`AddressPolicy.why` say, as reason codes (probes/reasons.py).
_CATEGORY_CODES = {
    "unspecified": "net.unspecified",
    "loopback": "net.loopback",
    "link-local": "net.link_local",
    "multicast": "net.multicast",
    "carrier-grade NAT": "net.cgnat",
    "private": "net.private",
    "reserved": "net.reserved",
    "the gateway's own address": "net.own",
}


class AddressNotAllowed(Exception):
    """A target address the policy refuses; ``str()`` is the probe's reason, ``why`` its code."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"address {address} not allowed ({why}): {WHY}")
        self.address = address
        self.category = why

    @property
    def why(self) -> Why:
        code = _CATEGORY_CODES.get(self.category)
        category = Why(code) if code else Why("text", {"text": self.category})
        return Why("policy.address", {"address": self.address, "category": category})


def _embedded_v4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return inner
    return address


@functools.lru_cache(maxsize=1024)
def category(address: IPAddress) -> str | None:
    """Why ``address`` is inside some network (``"loopback"``, ``"private"``...), else None."""
    address = _embedded_v4(address)
    if address.is_unspecified or address in _THIS_NETWORK:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address):
        if address in _CGNAT:
            return "carrier-grade NAT"
        if any(address in net for net in _RFC1918):
            return "private"
    elif address in _ULA or address.is_site_local:
        return "private"
    if address.is_reserved:
        return "reserved"
    return None


def _is_local(address: IPAddress) -> bool:
    """Is ``address`` one of this host's own? The kernel answers with the source address it
    would use to reach it, which for a local address is the address itself. No packet is sent
    (a UDP connect only looks up the route)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((str(address), 9))
            source = sock.getsockname()[0]
    except OSError:  # no route, no IPv6: not an address of ours
        return False
    return bool(ipaddress.ip_address(source.partition("%")[0]) == address)


def _parse(address: str | IPAddress) -> IPAddress:
    if isinstance(address, str):
        return ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone
    return address


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address the C library reads in ``host`` (the short, decimal, octal and hex
    forms too), or None."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def gateway_itself(host: str) -> bool:
    """Whether ``host`` names the gateway itself (a loopback, unspecified or local literal, or
    ``localhost``): the one host the registry's trust in a host does not extend to other
    ports of (a local tunnel to an agency must not let it reach every port of the gateway)."""
    name = host.lower().rstrip(".").strip("[]")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = _parse(name)
    except ValueError:
        numeric = _inet_aton(name)
        if numeric is None:
            return False
        address = numeric
    inner = _embedded_v4(address)
    return inner.is_loopback or inner.is_unspecified or _is_local(inner)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Addresses that announced targets and redirect targets may not reach.

    ``allow``: networks an operator permits explicitly (``security.allow_networks``); an address
    in one is allowed whatever it is, the gateway's own addresses in it included. ``own``: the
    daemon's listen address (any other address of this host is found at connect time).
    """

    allow: tuple[IPNetwork, ...] = ()
    own: frozenset[IPAddress] = field(default_factory=frozenset)

    @classmethod
    def from_settings(
        cls, allow_networks: Iterable[str], listen: str | None = None
    ) -> AddressPolicy:
        """From the config: ``["10.20.0.0/16", "fd00:1::/48"]`` and ``"0.0.0.0:9477"``."""
        allow = tuple(ipaddress.ip_network(n) for n in allow_networks)
        own: set[IPAddress] = set()
        if listen is not None:
            host = listen.rpartition(":")[0].strip("[]")
            try:
                address = ipaddress.ip_address(host)
            except ValueError:  # "localhost": loopback, refused anyway
                pass
            else:
                if not address.is_unspecified:
                    own.add(address)
        return cls(allow, frozenset(own))

    @property
    def key(self) -> str:
        """What shapes the policy, for a check's fingerprint (a change rebuilds its probe)."""
        return (
            ",".join(sorted(str(n) for n in self.allow))
            + "|"
            + ",".join(sorted(str(a) for a in self.own))
        )

    def why(self, address: str | IPAddress) -> str | None:
        """Why ``address`` may not be reached (``"loopback"``...), or None if it may."""
        parsed = _parse(address)
        inner = _embedded_v4(parsed)
        for net in self.allow:
            if any(a.version == net.version and a in net for a in (parsed, inner)):
                return None
        why = category(parsed)
        if why is None and (parsed in self.own or inner in self.own or _is_local(inner)):
            why = "the gateway's own address"
        return why

    def refusal(self, address: str | IPAddress) -> str | None:
        """The reason to refuse ``address`` (the probe's reason), or None if it may be reached."""
        why = self.why(address)
        return None if why is None else str(AddressNotAllowed(str(address), why))

    def check(self, address: str) -> None:
        """Raise :class:`AddressNotAllowed` if ``address`` may not be reached."""
        why = self.why(address)
        if why is not None:
            raise AddressNotAllowed(address, why)

    def host_refusal(self, host: str) -> str | None:
        """For an announced host, before any lookup: a literal address judged as at connect time,
        a name that always means this host (``localhost``) refused; other names are judged when
        they are resolved, at connect time."""
        try:
            return self.refusal(host)
        except ValueError:
            pass
        numeric = _inet_aton(host)
        if numeric is not None:  # 127.1, 2130706433, 0x7f.1: resolvers read them as addresses
            why = self.refusal(numeric)
            return None if why is None else f"host {host} is {numeric}: {why}"
        name = host.lower().rstrip(".")
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            return f"host {host} not allowed (loopback): {WHY}"
        return None


async def connect(
    factory: Callable[[], _P], host: str, port: int, policy: AddressPolicy
) -> tuple[asyncio.Transport, _P]:
    """``loop.create_connection(factory, host, port)`` for a target the policy governs.

    ``host`` is resolved once; if any address it resolves to is refused, nothing is connected
    (:class:`AddressNotAllowed`). Otherwise the checked addresses are tried in order, and the
    first connection made is returned; if none can be made, the first error is raised.
    """
    loop = asyncio.get_running_loop()
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        policy.check(address)
    first: OSError | None = None
    for address in addresses:
        try:
            transport, protocol = await loop.create_connection(factory, address, port)
        except OSError as exc:
            first = first or exc
            continue
        return transport, protocol
    assert first is not None  # getaddrinfo returns at least one address or raises
    raise first
