"""TLS options shared by the ``tls`` and ``http`` probes: the model, a cache of SSL contexts,
and how a server's certificate is read and judged against the options.

An ``ssl.SSLContext`` that loads a CA bundle costs about 1 MB and a few ms; thousands of checks
that name the same bundle must share one context. The options that shape a context (CA file,
client certificate, minimum version, verification) form the cache key; per-check options
(server name, fingerprint, minimum days valid) are applied by the probe, not the context.
"""

from __future__ import annotations

import _ssl
import calendar
import hashlib
import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from cryptography import x509
from pydantic import Field, field_validator, model_validator

from npsp_common.types import StrictModel

from .reasons import Problem, why

__all__ = [
    "PeerCert",
    "SSLContextCache",
    "TLSOptions",
    "check_peer_cert",
    "format_day",
    "format_fingerprint",
    "read_peer_cert",
    "read_rejected_cert",
]

_HEX_SHA256 = re.compile(r"[0-9A-F]{64}")


def format_fingerprint(hex_digest: str) -> str:
    """``ab12…`` → ``AB:12:…``, the way ``openssl x509 -fingerprint`` prints it."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


class TLSOptions(StrictModel):
    """The ``tls:`` block of a ``tls`` or ``https`` check."""

    ca_file: Path | None = Field(
        default=None, description="PEM bundle to trust instead of the system store."
    )
    client_cert: Path | None = Field(default=None, description="PEM client certificate (mTLS).")
    client_key: Path | None = Field(default=None, description="PEM key of client_cert.")
    server_name: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        default=None, description="Name sent as SNI and verified; defaults to the host."
    )
    min_version: Literal["1.2", "1.3"] = "1.2"
    insecure_skip_verify: bool = False
    expected_fingerprint_sha256: str | None = Field(
        default=None, description="SHA-256 of the leaf certificate (DER); colons optional."
    )
    min_days_valid: Annotated[int, Field(ge=0, le=3650)] | None = None
    min_days_valid_severity: Literal["degraded", "down"] = Field(
        default="degraded",
        description=(
            "What a certificate expiring within min_days_valid makes the system: degraded (a"
            " warning) or down. An expired certificate always fails."
        ),
    )

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ValueError(f"file {path} does not exist or is not readable")
        return path

    @field_validator("expected_fingerprint_sha256")
    @classmethod
    def _normalise_fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        hex_digest = value.replace(":", "").replace(" ", "").upper()
        if not _HEX_SHA256.fullmatch(hex_digest):
            raise ValueError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
        return format_fingerprint(hex_digest)

    @model_validator(mode="after")
    def _client_pair(self) -> TLSOptions:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together: give both or neither")
        return self

    def context_key(self) -> tuple[object, ...]:
        """The options an ``SSLContext`` depends on; equal keys share one context."""
        return (
            self.ca_file,
            self.client_cert,
            self.client_key,
            self.min_version,
            self.insecure_skip_verify,
        )


class SSLContextCache:
    """SSL contexts keyed by their options, so 3,000 HTTPS checks share a handful of contexts.

    One cache lives in the daemon's ``ProbeEnv``; a config reload builds a new one, so a renewed
    CA bundle on disk is picked up by reloading.
    """

    def __init__(self) -> None:
        self._contexts: dict[tuple[object, ...], ssl.SSLContext] = {}

    def get(self, opts: TLSOptions) -> ssl.SSLContext:
        """The shared context for ``opts``; raises ``ssl.SSLError``/``OSError`` on bad files."""
        key = opts.context_key()
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = _make_context(opts, verify=not opts.insecure_skip_verify)
        return ctx

    def clear(self) -> None:
        self._contexts.clear()

    def __len__(self) -> int:
        return len(self._contexts)


def _make_context(opts: TLSOptions, *, verify: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if opts.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    if verify:
        if opts.ca_file is not None:
            ctx.load_verify_locations(cafile=opts.ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if opts.client_cert is not None:
        ctx.load_cert_chain(opts.client_cert, opts.client_key)
    return ctx


# --------------------------------------------------------------------------------------------
# The peer's certificate

# OpenSSL's long attribute names (as in ``SSLObject.getpeercert()``) → RFC 4514 short names.
_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}
_MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class PeerCert:
    """The facts of a leaf certificate that checks and rules look at."""

    der: bytes
    not_before: float
    not_after: float
    subject: str
    issuer: str

    @property
    def expiry(self) -> float | None:
        """``not_after``, or None when unknown (0.0: dates that did not parse)."""
        return self.not_after or None

    @property
    def fingerprint_sha256(self) -> str:
        return format_fingerprint(hashlib.sha256(self.der).hexdigest())


def format_day(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _openssl_time(text: str) -> float:
    """``'Jan  1 00:00:00 2030 GMT'`` → epoch; 10× cheaper than ``ssl.cert_time_to_seconds``."""
    month, day, clock, year, _ = text.split()
    hour, minute, second = clock.split(":")
    return float(
        calendar.timegm((int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second)))
    )


def _format_name(rdns: tuple[tuple[tuple[str, str], ...], ...]) -> str:
    return ", ".join(f"{_SHORT_NAMES.get(key, key)}={value}" for rdn in rdns for key, value in rdn)


def _from_der(der: bytes) -> PeerCert:
    """Parse a certificate the verifier did not vouch for (``getpeercert()`` is then empty)."""
    cert = x509.load_der_x509_certificate(der)

    def name(value: x509.Name) -> str:
        return _format_name(
            tuple(tuple((attr.oid._name, str(attr.value)) for attr in rdn) for rdn in value.rdns)
        )

    return PeerCert(
        der,
        cert.not_valid_before_utc.timestamp(),
        cert.not_valid_after_utc.timestamp(),
        name(cert.subject),
        name(cert.issuer),
    )


def read_peer_cert(ssl_object: ssl.SSLObject | None) -> PeerCert | None:
    """The leaf certificate of an established connection, verified or not."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    info = ssl_object.getpeercert()
    if not info:  # CERT_NONE: OpenSSL does not decode what it did not verify
        try:
            return _from_der(der)
        except ValueError:
            return PeerCert(der, 0.0, 0.0, "?", "?")
    return PeerCert(
        der,
        _openssl_time(info["notBefore"]),  # type: ignore[arg-type]
        _openssl_time(info["notAfter"]),  # type: ignore[arg-type]
        _format_name(info["subject"]),  # type: ignore[arg-type]
        _format_name(info["issuer"]),  # type: ignore[arg-type]
    )


def read_rejected_cert(ssl_object: ssl.SSLObject) -> PeerCert | None:
    """The leaf certificate of a handshake that failed after the server sent it (verification).

    ``getpeercert()`` refuses once a handshake failed ("handshake not done yet"), but OpenSSL
    keeps the chain the server sent, verified or not: ``SSLObject.get_unverified_chain()``
    returns it from Python 3.13 (DER bytes), and the same method of the private ``_ssl`` object
    behind it since 3.10 (``_ssl.Certificate`` objects). Reading it costs no second connection.
    None when the server sent no certificate, or this Python has neither method.
    """
    read = getattr(ssl_object, "get_unverified_chain", None)
    if read is None:
        read = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if read is None:
        return None
    try:
        chain = read()
        if not chain:
            return None
        leaf = chain[0]  # a client's peer chain starts with the server's own certificate
        der = leaf if isinstance(leaf, bytes) else leaf.public_bytes(_ssl.ENCODING_DER)
        return _from_der(der)
    except Exception:  # noqa: BLE001 - a private API: whatever it does, it only adds a date
        return None


def check_peer_cert(cert: PeerCert, opts: TLSOptions, now: float) -> Problem | None:
    """The per-check rules a verified chain must still pass: the problem found, or None.

    A wrong fingerprint and an expired certificate fail; a certificate expiring within
    ``min_days_valid`` makes the system what ``min_days_valid_severity`` says (by default
    degraded: a warning, not an outage).
    """
    if opts.expected_fingerprint_sha256 is not None:
        actual = cert.fingerprint_sha256
        if actual != opts.expected_fingerprint_sha256:
            return Problem(
                why(
                    "tls.fingerprint",
                    actual=actual[:17],
                    expected=opts.expected_fingerprint_sha256[:17],
                )
            )
    if cert.not_after and cert.not_after <= now:  # reachable with insecure_skip_verify only
        return Problem(why("tls.expired", day=cert.not_after))
    if opts.min_days_valid is not None and cert.not_after:
        days = int((cert.not_after - now) // 86400)
        if days < opts.min_days_valid:
            return Problem(
                why("tls.expires_soon", days=days, day=cert.not_after),
                down=opts.min_days_valid_severity == "down",
            )
    return None
