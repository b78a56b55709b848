"""How a client certificate maps to an account: its identity (the SHA-256 of its DER and its
issuer's DN, RFC 4514), read from what the TLS layer hands over, from a certificate file, or
from a fingerprint and a DN as typed (checked and put in the certificate's own form).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .accounts_model import AccountError

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_ISSUER = 1000  # characters of an issuer DN


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """What maps a client certificate to an account: the SHA-256 of its DER (lowercase hex)
    and its issuer's DN in RFC 4514 form. Both must match."""

    sha256: str
    issuer: str


def certificate_identity(der: bytes) -> CertIdentity:
    """The identity of a certificate given as DER (as the TLS layer hands it over)."""
    cert = x509.load_der_x509_certificate(der)
    return CertIdentity(hashlib.sha256(der).hexdigest(), cert.issuer.rfc4514_string())


def identity_from_file(data: bytes) -> CertIdentity:
    """The identity of a certificate file (PEM or DER), for the command line."""
    if b"-----BEGIN" in data:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise AccountError(f"not a PEM certificate: {exc}") from None
        return certificate_identity(cert.public_bytes(Encoding.DER))
    try:
        return certificate_identity(data)
    except ValueError as exc:
        raise AccountError(f"not a certificate (PEM or DER): {exc}") from None


def parse_identity(sha256: str, issuer: str) -> CertIdentity:
    """A fingerprint as typed (``AB:CD:…`` or hex, any case) and an issuer DN, checked."""
    digest = sha256.strip().replace(":", "").lower()
    if not _SHA256.fullmatch(digest):
        raise AccountError("cert_sha256: the SHA-256 fingerprint, 64 hex digits")
    issuer = issuer.strip()
    if not issuer or len(issuer) > MAX_ISSUER or any(ord(c) < 0x20 for c in issuer):
        raise AccountError("cert_issuer: the issuer's DN (RFC 4514), one line")
    # The same form as a certificate's own (``certificate_identity``): a DN typed with other
    # spacing or escapes would otherwise be stored, accepted, and never match at login.
    try:
        issuer = x509.Name.from_rfc4514_string(issuer).rfc4514_string()
    except ValueError:
        raise AccountError(
            "cert_issuer: not an RFC 4514 DN (e.g. CN=Gov CA,O=Ban Cơ yếu Chính phủ,C=VN); "
            "or give the certificate file instead"
        ) from None
    return CertIdentity(digest, issuer)


__all__ = [
    "MAX_ISSUER",
    "CertIdentity",
    "certificate_identity",
    "identity_from_file",
    "parse_identity",
]
