"""Structured log lines (logfmt) for the journal: one event per line, its fields as key=value."""

from __future__ import annotations

import logging
import sys
import time

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


# Every control character (C0, DEL, C1) and the Unicode line and paragraph separators, escaped
# in logged values: a request path or a probed server's header holding ESC, CR or 0x9b must not
# write terminal sequences or a forged-looking event into the journal.
_ESCAPES = {
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}
for _code in [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]:
    _ESCAPES.setdefault(_code, f"\\x{_code:02x}" if _code < 0x100 else f"\\u{_code:04x}")


def _quote(value: object) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in "-_./:@+" for c in text):
        return text
    text = text.translate(_ESCAPES)
    if not text.isprintable():  # format and bidi controls (U+202E, U+200B...) too
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return '"' + text + '"'


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=info logger=monitor.engine msg="state change" system=... new=down``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={ts}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        parts += [f"{k}={_quote(v)}" for k, v in record.__dict__.items() if k not in _STANDARD]
        if record.exc_info:
            parts.append(f"error={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


class _BadRequestsBriefly(logging.Filter):
    """aiohttp logs a client's malformed request (a NUL in a header, garbage instead of HTTP)
    as an error with a traceback; it is the client's fault and was answered 400: one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ in ("BadHttpMessage", "BadStatusLine",
                                                      "InvalidHeader", "LineTooLong",
                                                      "HttpProcessingError"):  # fmt: skip
            record.msg, record.args = f"malformed request answered 400: {exc}".splitlines()[0], ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def setup_logging(level: str = "info") -> None:
    """Log to stderr (the journal under systemd); called once by the command line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_BadRequestsBriefly())
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd, per connection
