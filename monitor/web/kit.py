"""What every page handler shares: :class:`PagesContext` (what the pages need, built once by
the daemon) and :class:`PageKit`, the plumbing of a page — its chrome (the account, the unread
count, the forms' CSRF token), the redirect to the login, the 403 and 404 pages, the account
behind a POST and its CSRF check, whether the browser came over HTTPS."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .. import inbox_store
from ..accounts import Account
from ..contacts.directory import Directory
from ..contacts.directory import read as read_directory
from ..engine import Engine
from ..rules.service import RulesService
from ..store import Store
from . import auth
from .auth import COOKIE, Authenticator
from .browser import cross_site, html, kept_query, language, redirect, session_of
from .templates import render
from .templates.render import Chrome
from .templates.words import WORDS


@dataclass
class PagesContext:
    """What the pages need; built once by the daemon."""

    engine: Engine
    store: Store
    rules: RulesService | None
    authenticator: Authenticator
    clock: Callable[[], float] = time.time
    #: Key of the forms' CSRF tokens. Random per process unless the daemon passes one.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))


class PageKit:
    """The plumbing of the page handlers."""

    def __init__(self, ctx: PagesContext) -> None:
        self.ctx = ctx

    def csrf(self, account: Account, session: str) -> str:
        message = f"{account.id}\0{session}".encode()
        return hmac.new(self.ctx.secret, message, hashlib.sha256).hexdigest()

    async def _chrome(self, request: web.Request, account: Account | None) -> Chrome:
        lang = language(request)
        if account is None:
            return Chrome(lang, request.path, kept_query(request))
        portal = account.portal_account
        unread = await self.ctx.store.transact(lambda db: inbox_store.unread(db, portal))
        session = session_of(request)
        return Chrome(
            lang,
            request.path,
            kept_query(request),
            account=account.name,
            my_agency=account.agency,
            unread=unread,
            csrf=self.csrf(account, session or ""),
            logout=bool(session),
        )

    def _to_login(self, request: web.Request) -> web.Response:
        lang = language(request)
        response = redirect(render.link("/login", lang, [("next", request.path)]))
        if request.cookies.get(COOKIE):
            response.del_cookie(COOKIE, path="/")  # revoked or unknown: forget it
        return response

    async def _message(
        self, request: web.Request, status: int, title: str, text: str
    ) -> web.Response:
        chrome = await self._chrome(request, auth.current(request))
        return html(render.message_page(chrome, title, text), status)

    async def _forbidden(self, request: web.Request) -> web.Response:
        w = WORDS[language(request)]
        return await self._message(request, 403, w["forbidden"], w["forbidden_text"])

    async def _not_found(self, request: web.Request, what: str) -> web.Response:
        w = WORDS[language(request)]
        text = w["not_found_text"].format(what=w[what].lower())
        return await self._message(request, 404, w["not_found"], text)

    async def _post_account(self, request: web.Request) -> tuple[Account | None, str | None]:
        """The account behind a POST and the session its CSRF token is bound to (None when
        the request carries a bearer header, which no other site can make a browser send)."""
        if auth.bearer(request) is not None:
            return auth.current(request), None
        cookie = request.cookies.get(COOKIE)
        if cookie:
            # An expired session is not a guess (256-bit ids are not guessed): not throttled.
            return await self.ctx.authenticator.session_account(cookie), cookie
        return auth.current(request), ""  # a client certificate, or nobody

    async def _form_account(self, request: web.Request, login: str) -> Account | web.Response:
        """The account behind a form's POST, or the answer that refuses it: a cross-site or
        forged form (403), nobody logged in (to ``login``, a link to the login page)."""
        w = WORDS[language(request)]
        if cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        account, session = await self._post_account(request)
        if account is None:
            return redirect(login)
        if not await self._form_ok(request, account, session):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        return account

    async def _form_ok(self, request: web.Request, account: Account, session: str | None) -> bool:
        if session is None:
            return True
        form = await request.post()
        given = form.get("csrf")
        return isinstance(given, str) and hmac.compare_digest(given, self.csrf(account, session))

    def _agency_name(self, agency: str, lang: str) -> str | None:
        """The agency's name in ``lang``; None: no such agency in the registry."""
        for a in self.ctx.engine.config.agencies:
            if a.id == agency:
                return a.name_en if lang == "en" else a.name_vi
        return None

    async def _directory(self) -> Directory:
        """The people of every agency, the registry's and their own, read now."""
        agencies = self.ctx.engine.config.agencies
        return await self.ctx.store.transact(lambda db: read_directory(db, agencies))

    async def _posted_in(self, request: web.Request) -> tuple[Account, str] | web.StreamResponse:
        """The account behind a form's POST about the agency of the path, or the answer that
        refuses it (see :meth:`_form_account`; 404 for an agency the registry lacks)."""
        account = await self._form_account(request, render.link("/login", language(request)))
        if not isinstance(account, Account):
            return account
        agency = request.match_info["agency"]
        if self._agency_name(agency, "vi") is None:
            return await self._not_found(request, "agency")
        return account, agency

    def _https(self, request: web.Request) -> bool:
        return auth.via_https(request, self.ctx.engine.config.http.trusted_proxies)
