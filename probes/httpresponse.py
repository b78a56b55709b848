"""Reading one HTTP/1.1 response for the ``http`` probe (:mod:`probes.http`): an
``asyncio.Protocol`` fed by the transport (http) or by a TLS client (https), parsed by the C
parser of ``httptools`` (llhttp), within bounds on the head and the body.
"""

from __future__ import annotations

import asyncio
import ssl

import httptools

from npsp_common.types import Why

from .errors import describe_os_error, describe_ssl_error
from .reasons import Problem, why
from .tls import describe_first_record

__all__ = ["Exchange"]

_MAX_HEAD_BYTES = 64 << 10  # llhttp has no limit of its own; httptools joins header pieces


def _format_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class Exchange(asyncio.Protocol):
    """One request's response, fed by the transport (http) or by a TLSClient (https).

    ``done`` gets ``None`` when the response is complete (or, if the body is not needed, when
    its headers are), else the reason it failed.
    """

    __slots__ = (
        "_head_bytes",
        "_limit",
        "_parser",
        "_wanted",
        "body",
        "cert_warning",
        "content_length",
        "done",
        "framed",
        "location",
        "phase",
        "status",
    )

    def __init__(self, body_statuses: frozenset[int], limit: int) -> None:
        self.done: asyncio.Future[Why | None] = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._wanted = body_statuses
        self._limit = limit
        self._head_bytes = 0
        self.phase = why("phase.connecting")
        self.status = 0
        self.location: bytes | None = None
        self.content_length = -1
        self.framed = False
        self.body: bytearray | None = None
        # A certificate warning (expiring within min_days_valid, as a warning): the request
        # still goes out, and the response is judged as well.
        self.cert_warning: Problem | None = None

    # The transport's side --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.done.done():
                self._finish(_describe_parser_error(exc, data if self._head_bytes == 0 else b""))
            return
        if self.status == 0:
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD_BYTES:
                self._finish(why("http.headers_too_large", size=_format_size(_MAX_HEAD_BYTES)))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if isinstance(exc, ssl.SSLError):
            self._finish(describe_first_record(exc) or describe_ssl_error(exc))
        elif self.status == 0:
            if exc is not None and not isinstance(exc, ConnectionResetError | OSError):
                self._finish(why("http.lost", detail=str(exc)))
            elif isinstance(exc, OSError):
                self._finish(why("http.error_before_response", error=describe_os_error(exc)))
            elif self._head_bytes:
                self._finish(why("http.closed_in_headers"))
            else:
                self._finish(why("http.closed_before_response"))
        elif self.framed or exc is not None:
            got = len(self.body) if self.body is not None else 0
            self._finish(why("http.closed_in_body", got=got))
        else:
            self._finish(None)  # no length, not chunked: the body ends with the connection

    # The parser's side -----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"location":
            self.location = value
        elif lower == b"content-length":
            self.framed = True
            if value.isdigit():
                self.content_length = int(value)
        elif lower == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # interim response: the real one follows
            self.location, self.framed, self.content_length = None, False, -1
            return
        self.status = status
        if status not in self._wanted:
            self._finish(None)  # the status decides: no need for the body
        elif self.content_length > self._limit:
            self._finish(self._too_large())
        else:
            self.phase = why("phase.body")
            self.body = bytearray()

    def on_body(self, chunk: bytes) -> None:
        body = self.body
        if body is None or self.done.done():
            return
        if len(body) + len(chunk) > self._limit:
            self._finish(self._too_large())
        else:
            body += chunk

    def on_message_complete(self) -> None:
        if self.status and not self.done.done():
            self._finish(None)

    def _too_large(self) -> Why:
        return why("http.body_too_large", size=_format_size(self._limit))

    def _finish(self, failure: Why | None) -> None:
        self.done.set_result(failure)


def _describe_parser_error(exc: httptools.HttpParserError, first: bytes) -> Why:
    if first.startswith(b"\x16\x03"):
        return why("http.speaks_tls")
    text = str(exc)
    if text.startswith("Expected HTTP/"):
        return why("http.not_http")
    return why("http.malformed", detail=f"{text[:1].lower()}{text[1:]}")
