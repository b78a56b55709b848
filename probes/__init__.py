"""Probe kinds: one module each, behind the interface in :mod:`probes.base`.

A new kind is one new module plus one line in :data:`PROBES`.
"""

from __future__ import annotations

from . import api, dns, heartbeat, http, tcp, tls
from .base import Probe, ProbeEnv, ProbeKind

PROBES: dict[str, ProbeKind] = {
    "tcp": ProbeKind(tcp.Spec, tcp.build),
    "tls": ProbeKind(tls.Spec, tls.build),
    "http": ProbeKind(http.Spec, http.build),
    "dns": ProbeKind(dns.Spec, dns.build),
    "heartbeat": ProbeKind(heartbeat.Spec, heartbeat.build),
    "api": ProbeKind(api.Spec, api.build),
}

__all__ = ["PROBES", "Probe", "ProbeEnv", "ProbeKind"]
