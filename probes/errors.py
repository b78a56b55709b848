"""Turning low-level errors into reasons a person understands."""

from __future__ import annotations

import errno
import socket

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
    if exc.errno in _ERRNO_TEXT:
        return _ERRNO_TEXT[exc.errno]
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
