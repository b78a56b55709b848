"""``/login`` and ``/logout``: a token exchanged for a server-side session (its random id in
an HttpOnly, ``SameSite=Strict`` cookie, ``Secure`` over HTTPS), failed logins throttled and
audited; logging out deletes the session on the server."""

from __future__ import annotations

from aiohttp import web

from .. import accounts, audit, sessions
from . import auth
from .auth import COOKIE
from .browser import cross_site, html, language, redirect, safe_next
from .kit import PageKit
from .templates import render
from .templates.render import Chrome
from .templates.words import WORDS


class Login(PageKit):
    """The login form, the login and the logout."""

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        chrome = await self._chrome(request, auth.current(request))
        next_path = safe_next(request.query.get("next"))
        return html(render.login_page(chrome, next_path=next_path), private=False)

    async def login(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        w = WORDS[lang]
        who = self.ctx.authenticator.client(request)  # behind a trusted proxy, its client
        throttle = self.ctx.authenticator.throttle
        wait = throttle.blocked_for(who)
        if wait:
            response = await self._message(
                request, 429, w["login"], w["too_many"].format(s=int(wait) + 1)
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        form = await request.post()
        raw = form.get("token")
        token = raw.strip() if isinstance(raw, str) else ""
        next_path = safe_next(form.get("next"))
        account = await accounts.by_token(self.ctx.store, token) if token else None
        if account is None:
            throttle.failed(who)
            await audit.audit(
                self.ctx.store,
                ts=self.ctx.clock(),
                actor=f"anonymous@{who}",
                action="login.failed",
                target="/login",
                source="web",
            )
            chrome = Chrome(lang, "/login")
            page = render.login_page(chrome, next_path=next_path, error=w["login_failed"])
            return html(page, 401, private=False)
        await audit.audit(
            self.ctx.store,
            ts=self.ctx.clock(),
            actor=account.id,
            action="login",
            target="/login",
            agency=account.agency,
            source="web",
        )
        http = self.ctx.engine.config.http
        session = await sessions.open_session(
            self.ctx.store,
            account,
            now=self.ctx.clock(),
            idle=http.session_idle,
            lifetime=http.session_max,
        )
        response = redirect(render.link(next_path, lang))
        response.set_cookie(
            COOKIE,
            session,
            httponly=True,
            samesite="Strict",
            secure=self._https(request),
            path="/",
            max_age=int(http.session_max),
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        w = WORDS[lang]
        if cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        account, session = await self._post_account(request)
        if account is not None:
            if not await self._form_ok(request, account, session):
                return await self._message(request, 403, w["forbidden"], w["forged"])
            if session:
                await sessions.end_session(self.ctx.store, session)  # dead server-side too
            await audit.audit(
                self.ctx.store,
                ts=self.ctx.clock(),
                actor=account.id,
                action="logout",
                target="/logout",
                agency=account.agency,
                source="web",
            )
        response = redirect(render.link("/login", lang))
        response.del_cookie(
            COOKIE, path="/", httponly=True, samesite="Strict", secure=self._https(request)
        )
        return response
