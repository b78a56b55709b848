"""Where the state database is: a file path (embedded SQLite, one gateway host) or a
``postgresql://`` URL (PostgreSQL, several gateway hosts sharing one database).

The URL names the user, host, port and database and may carry libpq's TLS options
(``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``) and ``connect_timeout``; never a
password: that comes from ``state_db_password_file`` (a systemd credential), so that the config
file, the logs and ``/metrics`` never hold it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

__all__ = ["DatabaseLocation", "PostgresUrl", "describe", "parse_location"]

_SCHEMES = ("postgresql", "postgres")
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name")


class PostgresUrl(str):
    """A checked ``postgresql://USER@HOST[:PORT]/DB[?options]`` with no password in it."""

    __slots__ = ()

    @property
    def options(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self).query))


DatabaseLocation = Path | PostgresUrl


def _check_url(text: str) -> PostgresUrl:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a PostgreSQL URL ({exc})") from None
    if parts.password is not None:
        raise ValueError(
            "the URL holds a password: put it in state_db_password_file (a credential file) "
            "and leave it out of the config"
        )
    if not parts.username or not parts.hostname:
        raise ValueError("a PostgreSQL URL names a user and a host: postgresql://USER@HOST:PORT/DB")
    if not parts.path.strip("/") or "/" in parts.path.strip("/"):
        raise ValueError("a PostgreSQL URL names one database: postgresql://USER@HOST:PORT/DB")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OPTIONS:
            raise ValueError(f"unknown option {name!r} in the URL (known: {', '.join(_OPTIONS)})")
        if name == "sslmode" and value not in _SSLMODES:
            raise ValueError(f"sslmode {value!r} is none of {', '.join(_SSLMODES)}")
        if name == "connect_timeout" and not value.isdigit():
            raise ValueError("connect_timeout is a whole number of seconds")
    if parts.fragment:
        raise ValueError("a PostgreSQL URL has no #fragment")
    return PostgresUrl(text)


def parse_location(value: object) -> DatabaseLocation:
    """``value`` from the config: a ``postgresql://`` URL, or a path."""
    if isinstance(value, PostgresUrl | Path):
        return value
    if not isinstance(value, str):
        raise ValueError("give a file path or a postgresql:// URL")
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in _SCHEMES:
        return _check_url(value)
    if scheme:
        raise ValueError(f"{scheme}:// is not a database this daemon speaks (postgresql://)")
    if not value.strip():
        raise ValueError("an empty path")
    return Path(value)


def describe(location: DatabaseLocation) -> str:
    """How a message names the database (a URL holds no password to hide)."""
    return str(location)
