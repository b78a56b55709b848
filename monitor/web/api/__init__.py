"""The /api/v1 handlers that act: incidents, announcements, maintenance windows, silences, the
caller's inbox, accounts and the audit log, one module each (what they share is in
:mod:`.common`) — each behind the role rules of :mod:`monitor.access` (a national-admin
everywhere; the other roles inside their agency).

Every route is declared once, in its module's ``ROUTES`` (a :class:`~monitor.web.routes.Route`
each, with its summary and request model), gathered here in :data:`ROUTES`; the aiohttp routes
and the OpenAPI document are both generated from that table (:mod:`monitor.web.routes`), so the
document cannot drift from the real routes.
A bad request gets a 4xx with the reason: malformed JSON, unknown fields and wrong types (400
with each field), unknown ids (404), another agency's data (403), a conflict (409). Bodies are
strict: every value has its JSON type (``"443"``, ``443.0`` and ``true`` are not numbers, ``1``
is not true), text is bounded and holds no control characters (line feeds and tabs only in free
text) and no lone surrogates; dates are ISO 8601 text.
"""

from __future__ import annotations

from ..routes import Route
from . import (
    accounts,
    agencies,
    announcements,
    contacts,
    inbox,
    incidents,
    maintenance,
    reports,
    rosters,
    silences,
)
from .common import API, Api

#: Every acting route, in the order they are matched and documented.
ROUTES: tuple[Route, ...] = (
    *agencies.ROUTES,
    *contacts.ROUTES,
    *rosters.ROUTES,
    *incidents.ROUTES,
    *announcements.ROUTES,
    *maintenance.ROUTES,
    *silences.ROUTES,
    *inbox.ROUTES,
    *reports.ROUTES,
    *accounts.ROUTES,
)

__all__ = ["API", "ROUTES", "Api"]
