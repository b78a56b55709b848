"""Turning low-level errors into reasons a person understands."""

from __future__ import annotations

import errno
import socket
import ssl

_ERRNO_TEXT = {
    errno.ECONNREFUSED: "refused",
    errno.ECONNRESET: "reset by peer",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EPIPE: "connection closed by peer",
}


def describe_os_error(exc: OSError) -> str:
    """``connect: refused`` rather than ``[Errno 111] Connect call failed ('127.0.0.1', 1)``."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.errno is None and isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return "connection closed by peer"  # asyncio's "Connection lost", no errno to go by
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


# OpenSSL X509_V_ERR_* codes a person needs explained, not just quoted.
_VERIFY_TEXT = {
    9: "certificate not yet valid",
    10: "certificate expired",
    18: "self-signed certificate",
    19: "unknown issuer",
    20: "unknown issuer",
    21: "unknown issuer",
    2: "unknown issuer",
    62: "host name mismatch",
    64: "host name mismatch",
}

# Handshake failures by OpenSSL reason code, client side.
_PROTOCOL_TOO_OLD = frozenset(
    {"TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE"}
)
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
_REFUSED = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "server requires a client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "server rejected the client certificate (bad certificate)",
    "TLSV1_ALERT_UNKNOWN_CA": "server rejected the client certificate (unknown CA)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "server rejected the client certificate (expired)",
    "TLSV1_ALERT_ACCESS_DENIED": "server denied access (alert access denied)",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (
        "handshake failed: server refused (alert handshake failure: no shared cipher,"
        " or a client certificate required)"
    ),
}


def describe_ssl_error(exc: ssl.SSLError) -> str:
    """A ``TLS: …`` reason for a failed handshake or a TLS error on an open connection."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or str(exc)
        what = _VERIFY_TEXT.get(exc.verify_code)
        if what is None:
            return f"TLS: certificate verify failed: {message}"
        return f"TLS: {what} ({message})"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "TLS: handshake failed: connection closed by peer"
    reason = getattr(exc, "reason", None) or ""
    if reason in _PROTOCOL_TOO_OLD:
        return "TLS: protocol version too old (server and client share no TLS version)"
    if reason in _NOT_TLS:
        return f"TLS: handshake failed: peer does not speak TLS ({_humane(reason)})"
    if reason in _REFUSED:
        return f"TLS: {_REFUSED[reason]}"
    return f"TLS: handshake failed: {_humane(reason) if reason else exc}"


def _humane(openssl_reason: str) -> str:
    """``SSLV3_ALERT_HANDSHAKE_FAILURE`` → ``sslv3 alert handshake failure``."""
    return openssl_reason.replace("_", " ").lower()
