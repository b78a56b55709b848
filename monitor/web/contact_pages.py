"""An agency's contacts in the pages: ``/agency/{agency}/contacts`` (its people, the registry's
marked read-only and those it overrides marked, who is told about what, and for its
agency-admins and national-admins the form that adds one), ``/agency/{agency}/contacts/{id}``
(the edit form; POST saves it), ``.../{id}/remove`` and ``.../{id}/flags/clear`` (the
button beside an address that failed for good); ``/contacts/confirm/{token}``, a confirmation
reminder's link (:class:`ConfirmPages`). The rules are the API's
(:mod:`monitor.contacts.actions`, :mod:`monitor.access`); every form carries the CSRF token,
every change is audited with the source ``page``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from aiohttp import web

from .. import access
from ..alerting import told as routing
from ..contacts import actions, confirm, hygiene
from ..contacts import directory as contacts_directory
from . import auth
from .browser import cross_site, html, language, redirect
from .kit import PageKit, PagesContext
from .templates import render
from .templates.contacts import WORDS, confirm_page, contact_form_page, contacts_page
from .templates.words import WORDS as WORDS_COMMON

__all__ = ["ConfirmPages", "ContactPages", "contact_routes"]

_OPTIONAL = ("phone", "email", "portal_account", "webhook", "account_id")


def _fields(form: Any) -> dict[str, Any]:
    """A contact's fields from a posted form (an empty box is no value)."""
    out: dict[str, Any] = {
        "name": str(form.get("name", "")).strip(),
        "role": str(form.get("role", "")),
        "channels": [str(c) for c in form.getall("channels", [])],
        "language": str(form.get("language", "vi")),
    }
    for name in _OPTIONAL:
        value = str(form.get(name, "")).strip()
        out[name] = value or None
    return out


class ContactPages(PageKit):
    """The handlers."""

    async def listing(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        agency = request.match_info["agency"]
        name = self._agency_name(agency, language(request))
        if name is None:
            return await self._not_found(request, "agency")
        if not access.may_read(account, agency):
            return await self._forbidden(request)
        directory = await self._directory()
        engine = self.ctx.engine
        router = routing.router_over(engine.config.alerting, engine.registry, directory)
        told = routing.who_is_told(router, engine.registry, agency)
        chrome = await self._chrome(request, account)
        page = contacts_page(
            chrome,
            agency,
            name,
            directory.people(agency),
            told,
            whole=access.sees_addresses(account, agency),
            editable=actions.may_manage(account, agency),
            flags=lambda p: directory.flags_of(p.contact),
        )
        return html(page)

    async def edit_form(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        agency = request.match_info["agency"]
        name = self._agency_name(agency, language(request))
        if name is None:
            return await self._not_found(request, "agency")
        if not actions.may_manage(account, agency):
            return await self._forbidden(request)
        person = (await self._directory()).find(agency, request.match_info["id"])
        if person is None or person.source != "store":
            return await self._not_found(request, "agency")
        chrome = await self._chrome(request, account)
        return html(contact_form_page(chrome, name, person))

    async def _refused(self, request: web.Request, exc: actions.ContactError) -> web.Response:
        w = WORDS[language(request)]
        return await self._message(request, exc.status, w["title"].format(name=""), str(exc))

    async def _back(self, request: web.Request, agency: str) -> web.Response:
        if self.ctx.rules is not None:  # the daemon's directory: fresh at once
            await contacts_directory.refresh_among(self.ctx.rules.others)
        return redirect(render.link(f"/agency/{agency}/contacts", language(request)))

    async def create(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        try:
            await actions.create(
                self.ctx.store,
                actor=account,
                agency=agency,
                fields=_fields(await request.post()),
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except actions.ContactError as exc:
            return await self._refused(request, exc)
        return await self._back(request, agency)

    async def update(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        try:
            await actions.update(
                self.ctx.store,
                actor=account,
                agency=agency,
                contact_id=request.match_info["id"],
                changes=_fields(await request.post()),
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except actions.ContactError as exc:
            return await self._refused(request, exc)
        return await self._back(request, agency)

    async def clear_flags(self, request: web.Request) -> web.StreamResponse:
        """The button beside a flagged address: its flags go (the address was checked)."""
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        try:
            await hygiene.clear_flags(
                self.ctx.store,
                actor=account,
                agency=agency,
                contact_id=request.match_info["id"],
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except actions.ContactError as exc:
            return await self._refused(request, exc)
        return await self._back(request, agency)

    async def remove(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        try:
            await actions.remove(
                self.ctx.store,
                actor=account,
                agency=agency,
                contact_id=request.match_info["id"],
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except actions.ContactError as exc:
            return await self._refused(request, exc)
        return await self._back(request, agency)


class ConfirmPages(PageKit):
    """``/contacts/confirm/{token}``: a stored contact confirms its details (no login: the
    link's token is the credential). A wrong, used or expired token gets one 404 that says
    nothing more, and counts as a failed login for the caller's address (the login page's
    throttle: too many, and 429)."""

    def _token_csrf(self, token: str) -> str:
        message = f"contact-confirm\0{confirm.hashed(token)}".encode()
        return hmac.new(self.ctx.secret, message, hashlib.sha256).hexdigest()

    async def _throttled(self, request: web.Request) -> web.Response | None:
        wait = self.ctx.authenticator.throttle.blocked_for(self.ctx.authenticator.client(request))
        if not wait:
            return None
        w = WORDS[language(request)]
        response = await self._message(request, 429, w["confirm_title"], w["bad_link"])
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response

    async def _bad_link(self, request: web.Request) -> web.Response:
        self.ctx.authenticator.throttle.failed(self.ctx.authenticator.client(request))
        w = WORDS[language(request)]
        return await self._message(request, 404, w["confirm_title"], w["bad_link"])

    async def form(self, request: web.Request) -> web.StreamResponse:
        throttled = await self._throttled(request)
        if throttled is not None:
            return throttled
        token = request.match_info["token"]
        opened = await confirm.open_token(self.ctx.store, token, self.ctx.clock())
        if opened is None:
            return await self._bad_link(request)
        lang = language(request)
        chrome = await self._chrome(request, None)
        c = opened.contact
        action = render.link(request.path, lang)
        page = confirm_page(
            chrome,
            c,
            self._agency_name(c.agency, lang) or c.agency,
            action,
            self._token_csrf(token),
        )
        return html(page)

    async def confirm(self, request: web.Request) -> web.StreamResponse:
        throttled = await self._throttled(request)
        if throttled is not None:
            return throttled
        w = WORDS[language(request)]
        token = request.match_info["token"]
        form = await request.post()
        given = form.get("csrf")
        if (
            cross_site(request)
            or not isinstance(given, str)
            or not hmac.compare_digest(given, self._token_csrf(token))
        ):
            words = WORDS_COMMON[language(request)]
            return await self._message(request, 403, words["forbidden"], words["forged"])
        done = await confirm.confirm_by_token(self.ctx.store, token, self.ctx.clock())
        if done is None:
            return await self._bad_link(request)
        if self.ctx.rules is not None:
            await contacts_directory.refresh_among(self.ctx.rules.others)
        return await self._message(request, 200, w["confirm_title"], w["confirmed"])


def contact_routes(ctx: PagesContext) -> list[web.RouteDef]:
    """The contacts' pages, beside :func:`monitor.web.pages.page_routes`."""
    pages = ContactPages(ctx)
    confirming = ConfirmPages(ctx)
    return [
        web.get("/contacts/confirm/{token}", confirming.form),
        web.post("/contacts/confirm/{token}", confirming.confirm),
        web.get("/agency/{agency}/contacts", pages.listing),
        web.post("/agency/{agency}/contacts", pages.create),
        web.get("/agency/{agency}/contacts/{id}", pages.edit_form),
        web.post("/agency/{agency}/contacts/{id}", pages.update),
        web.post("/agency/{agency}/contacts/{id}/remove", pages.remove),
        web.post("/agency/{agency}/contacts/{id}/flags/clear", pages.clear_flags),
    ]
