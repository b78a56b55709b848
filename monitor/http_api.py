"""Where the daemon and the tests have always found :func:`build_app`: it is
:func:`monitor.web.app.build_app` (the HTTP application lives in :mod:`monitor.web`)."""

from __future__ import annotations

from .web.app import build_app

__all__ = ["build_app"]
