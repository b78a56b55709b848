"""What a page answers a browser with, and what it believes of one: HTML with the pages'
headers, redirects, the page's language and kept query, a cross-site form refused, the local
path to go to after logging in (:func:`safe_next`, judged as a browser reads it) and what
authenticated a request, as the binding of its forms' CSRF tokens (:func:`session_of`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from . import auth
from .auth import COOKIE
from .templates import render
from .templates.words import Lang


def language(request: web.Request) -> Lang:
    return "en" if request.query.get("lang") == "en" else "vi"


def kept_query(request: web.Request) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in request.query.items() if k != "lang")


def html(text: str, status: int = 200, *, private: bool = True) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": render.CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store" if private else "no-cache",
        },
    )


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def cross_site(request: web.Request) -> bool:
    """The browser says this POST comes from another site."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()


#: What a browser removes from a URL anywhere in it before parsing (the URL standard).
_BROWSER_DROPS = {0x09: None, 0x0A: None, 0x0D: None}
#: What it trims at both ends: C0 controls and the space.
_BROWSER_TRIMS = "".join(map(chr, range(0x21)))


def safe_next(value: object) -> str:
    """A local path to go to after logging in; anything else (another site, the login page
    itself) becomes ``/``.

    Judged as a browser will read the ``Location``: the URL standard removes tabs, line feeds
    and carriage returns anywhere, reads a backslash as ``/`` (so ``/<TAB>/evil.example`` and
    ``/\\evil.example`` are ``//evil.example``: another host) and trims controls and spaces
    at the ends. What it sees must be what we were given (a value the browser would rewrite is
    refused, not repaired), and that must be ``/`` followed by something other than ``/`` or
    ``\\``, with no scheme and no authority, in printable ASCII (our paths are). ``/%09/x``
    stays a path: percent-escapes are not decoded before a URL is parsed.
    """
    if not isinstance(value, str) or len(value) > 512:
        return "/"
    seen = value.translate(_BROWSER_DROPS).replace("\\", "/").strip(_BROWSER_TRIMS)
    if (
        seen != value
        or not value.isascii()
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or not value.startswith("/")
        or value.startswith("//")
        or any(c in value for c in "?#")
        or value in ("/login", "/logout")
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path != value:
        return "/"
    return value


def session_of(request: web.Request) -> str | None:
    """What authenticated this GET, as a CSRF binding: the cookie's value, ``""`` for a client
    certificate, None for a bearer header (browsers never add one by themselves)."""
    if auth.bearer(request) is not None:
        return None
    return request.cookies.get(COOKIE) or ""
