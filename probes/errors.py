"""Turning low-level errors into reasons a person understands (codes of
:mod:`probes.reasons`, rendered in the reader's language)."""

from __future__ import annotations

import errno
import socket
import ssl

from npsp_common.types import Why

from .reasons import why

_ERRNO_WHY = {
    errno.ECONNREFUSED: why("os.refused"),
    errno.ECONNRESET: why("os.reset"),
    errno.EHOSTUNREACH: why("os.host_unreachable"),
    errno.ENETUNREACH: why("os.network_unreachable"),
    errno.ETIMEDOUT: why("os.timed_out"),
    errno.EPIPE: why("os.closed"),
}
_RESOLVE_WHY = {
    socket.EAI_NONAME: why("os.no_such_name"),
    socket.EAI_AGAIN: why("os.resolve_later"),
}


def describe_os_error(exc: OSError) -> Why:
    """``refused`` rather than ``[Errno 111] Connect call failed ('127.0.0.1', 1)``."""
    if isinstance(exc, socket.gaierror):
        known = _RESOLVE_WHY.get(exc.errno) if isinstance(exc.errno, int) else None
        return known or why("os.resolve", detail=exc.strerror or str(exc))
    if isinstance(exc, ConnectionRefusedError):
        return why("os.refused")
    if exc.errno is None and isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return why("os.closed")  # asyncio's "Connection lost", no errno to go by
    if exc.errno in _ERRNO_WHY:
        return _ERRNO_WHY[exc.errno]
    if exc.strerror:
        return why("os.other", detail=exc.strerror.lower())
    return why("os.other", detail=str(exc) or type(exc).__name__)


# OpenSSL X509_V_ERR_* codes a person needs explained, not just quoted.
_VERIFY_WHY = {
    9: why("cert.not_yet_valid"),
    10: why("cert.expired"),
    18: why("cert.self_signed"),
    19: why("cert.unknown_issuer"),
    20: why("cert.unknown_issuer"),
    21: why("cert.unknown_issuer"),
    2: why("cert.unknown_issuer"),
    62: why("cert.name_mismatch"),
    64: why("cert.name_mismatch"),
}

# Handshake failures by OpenSSL reason code, client side.
_PROTOCOL_TOO_OLD = frozenset(
    {"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"}
)
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
_REFUSED = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": why("tls.client_cert_required"),
    "SSLV3_ALERT_BAD_CERTIFICATE": why("tls.client_cert_bad"),
    "TLSV1_ALERT_UNKNOWN_CA": why("tls.client_cert_unknown_ca"),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": why("tls.client_cert_expired"),
    "TLSV1_ALERT_ACCESS_DENIED": why("tls.access_denied"),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": why("tls.handshake_refused"),
}


def describe_ssl_error(exc: ssl.SSLError) -> Why:
    """A ``TLS: …`` reason for a failed handshake or a TLS error on an open connection."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        what = _VERIFY_WHY.get(exc.verify_code)
        if what is None:
            return why("tls.verify", detail=message)
        return why("tls.verify_known", what=what, detail=message)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return why("tls.closed_in_handshake")
    reason = getattr(exc, "reason", None) or ""
    if reason in _PROTOCOL_TOO_OLD:
        return why("tls.protocol_too_old")
    if reason in _NOT_TLS:
        return why("tls.not_tls", detail=_humane(reason))
    if reason in _REFUSED:
        return _REFUSED[reason]
    return why("tls.handshake", detail=_humane(reason) if reason else str(exc))


def _humane(openssl_reason: str) -> str:
    """``SSLV3_ALERT_HANDSHAKE_FAILURE`` → ``sslv3 alert handshake failure``."""
    return openssl_reason.replace("_", " ").lower()
