"""The scheduled reports in the pages: ``/reports`` (every report the account may see),
``/agency/{agency}/reports`` (one agency's) and ``/reports/{id}`` (a report as it was
produced, in the page's language). Who sees what is :mod:`monitor.web.api.reports`' rule: an
agency's reports to its accounts and the national-admins, the national ones to the
national-admins only (403 otherwise, as for another agency's page)."""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

from .. import access
from ..reports import runs_store
from ..reports.words import STYLE
from . import auth
from .browser import html, language
from .kit import PageKit, PagesContext
from .routes import path_number
from .templates.reports import WORDS, reports_page

__all__ = ["LISTED", "ReportPages", "report_routes"]

LISTED = 200  # reports on one page
# A stored report is a whole page with its own stylesheet (the report's): allowed by its hash.
_REPORT_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


class ReportPages(PageKit):
    """The handlers."""

    def _names(self, lang: str) -> dict[str, str]:
        return {
            a.id: a.name_en if lang == "en" else a.name_vi for a in self.ctx.engine.config.agencies
        }

    async def listing(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        wanted = request.match_info.get("agency")
        if wanted is not None and wanted not in self._names("vi"):
            return await self._not_found(request, "agency")
        if wanted is not None and not access.may_read(account, wanted):
            return await self._forbidden(request)
        scope = access.read_scope(account)
        scopes = [wanted] if wanted is not None else None if scope is None else [scope]
        runs = await self.ctx.store.transact(lambda db: runs_store.listed(db, scopes, LISTED))
        runs = [r for r in runs if access.may_read(account, r.agency)]
        chrome = await self._chrome(request, account)
        text = reports_page(chrome, runs, self._names(chrome.lang), agency=wanted)
        return html(text)

    async def report(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        lang = language(request)
        number = path_number(request.match_info["id"])
        run = None
        if number is not None:
            run = await self.ctx.store.transact(lambda db: runs_store.find(db, number))
        if run is None:
            w = WORDS[lang]
            return await self._message(request, 404, w["not_found"], w["not_found_text"])
        if not access.may_read(account, run.agency):
            return await self._forbidden(request)
        form = f"html-{lang}"
        body = await self.ctx.store.transact(lambda db: runs_store.body(db, run.id, form))
        return web.Response(
            text=body or "",
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": _REPORT_CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )


def report_routes(ctx: PagesContext) -> list[web.RouteDef]:
    """The reports' pages, beside :func:`monitor.web.pages.page_routes`."""
    pages = ReportPages(ctx)
    return [
        web.get("/reports", pages.listing),
        web.get("/reports/{id}", pages.report),
        web.get("/agency/{agency}/reports", pages.listing),
    ]
