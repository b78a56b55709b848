"""An agency's duty roster in the pages: ``/agency/{agency}/roster`` (who is on duty now, the
weekly shifts, the dated overrides, and the forms for those allowed), ``.../shifts`` (add a
shift), ``.../shifts/{id}/remove``, ``.../overrides`` (add an override) and
``.../overrides/{id}/remove``. The rules are the API's (:mod:`monitor.rosters.actions`); every
form carries the CSRF token, every change is audited with the source ``page``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from ..accounts import Account
from ..rosters import actions
from ..rosters.model import RosterError
from ..workdays import WorkCalendar
from . import auth
from .browser import html, language, redirect
from .kit import PageKit, PagesContext
from .routes import path_number
from .templates import render
from .templates.rosters import WORDS, base, roster_page

__all__ = ["RosterPages", "roster_routes"]


class RosterPages(PageKit):
    """The handlers."""

    def _calendar(self) -> WorkCalendar:
        if self.ctx.rules is not None:
            return self.ctx.rules.ctx.calendar
        return WorkCalendar(self.ctx.engine.config.calendar)

    async def show(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        agency = request.match_info["agency"]
        name = self._agency_name(agency, language(request))
        if name is None:
            return await self._not_found(request, "agency")
        if not actions.may_read(account, agency):
            return await self._forbidden(request)
        now = self.ctx.clock()
        roster = await actions.load(self.ctx.store, agency, now)
        directory = await self._directory()
        calendar = self._calendar()
        chrome = await self._chrome(request, account)
        page = roster_page(
            chrome,
            name,
            roster,
            directory.people(agency),
            roster.on_duty(now, calendar.tz),
            working_now=calendar.is_working_time(now, agency),
            now_ts=now,
            tz=calendar.tz,
            may_edit=actions.may_edit(account, agency),
            may_swap=actions.may_swap(account, agency),
        )
        return html(page)

    async def _refused(self, request: web.Request, exc: RosterError) -> web.Response:
        w = WORDS[language(request)]
        return await self._message(request, exc.status, w["title"].format(name=""), str(exc))

    def _back(self, request: web.Request, agency: str) -> web.Response:
        return redirect(render.link(base(agency), language(request)))

    async def _current(self, agency: str) -> list[dict[str, Any]]:
        roster = await actions.load(self.ctx.store, agency, self.ctx.clock())
        return [
            {
                "id": s.id,
                "weekdays": [d for d in range(1, 8) if s.weekdays & (1 << (d - 1))],
                "starts": s.starts,
                "ends": s.ends,
                "contact_id": s.contact_id,
                "note": s.note,
            }
            for s in roster.shifts
        ]

    async def _replace(
        self, request: web.Request, account: Account, agency: str, shifts: list[dict[str, Any]]
    ) -> web.Response:
        try:
            await actions.replace_shifts(
                self.ctx.store,
                actor=account,
                agency=agency,
                shifts=shifts,
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except RosterError as exc:
            return await self._refused(request, exc)
        return self._back(request, agency)

    async def add_shift(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        if not actions.may_edit(account, agency):
            return await self._forbidden(request)
        form = await request.post()
        try:
            days = [int(str(d)) for d in form.getall("weekdays", [])]
        except ValueError:
            return await self._refused(request, RosterError("weekdays: 1 (Monday) to 7 (Sunday)"))
        new = {
            "weekdays": days,
            "starts": str(form.get("starts", "")),
            "ends": str(form.get("ends", "")),
            "contact_id": str(form.get("contact_id", "")),
            "note": str(form.get("note", "")),
        }
        return await self._replace(request, account, agency, [*await self._current(agency), new])

    async def remove_shift(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        if not actions.may_edit(account, agency):
            return await self._forbidden(request)
        number = path_number(request.match_info["id"])
        current = await self._current(agency)
        kept = [s for s in current if s["id"] != number]
        if len(kept) == len(current):
            return await self._refused(request, RosterError("no such shift", 404))
        return await self._replace(request, account, agency, kept)

    async def add_override(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        form = await request.post()
        calendar = self._calendar()
        try:
            starts, ends = (
                calendar.local(dt.datetime.fromisoformat(str(form.get(k, "")))).timestamp()
                for k in ("starts", "ends")
            )
        except (ValueError, OverflowError):
            refusal = RosterError("from and to: a date and time (YYYY-MM-DDTHH:MM)")
            return await self._refused(request, refusal)
        contact = str(form.get("contact_id", "")) or None
        try:
            await actions.add_override(
                self.ctx.store,
                actor=account,
                agency=agency,
                starts=starts,
                ends=ends,
                contact_id=contact,
                note=str(form.get("note", "")),
                agencies=self.ctx.engine.config.agencies,
                now=self.ctx.clock(),
                source="page",
            )
        except RosterError as exc:
            return await self._refused(request, exc)
        return self._back(request, agency)

    async def remove_override(self, request: web.Request) -> web.StreamResponse:
        posted = await self._posted_in(request)
        if not isinstance(posted, tuple):
            return posted
        account, agency = posted
        number = path_number(request.match_info["id"])
        try:
            if number is None:
                raise RosterError("no such override", 404)
            await actions.remove_override(
                self.ctx.store,
                actor=account,
                agency=agency,
                override_id=number,
                now=self.ctx.clock(),
                source="page",
            )
        except RosterError as exc:
            return await self._refused(request, exc)
        return self._back(request, agency)


def roster_routes(ctx: PagesContext) -> list[web.RouteDef]:
    """The roster's pages, beside :func:`monitor.web.pages.page_routes`."""
    pages = RosterPages(ctx)
    return [
        web.get("/agency/{agency}/roster", pages.show),
        web.post("/agency/{agency}/roster/shifts", pages.add_shift),
        web.post("/agency/{agency}/roster/shifts/{id}/remove", pages.remove_shift),
        web.post("/agency/{agency}/roster/overrides", pages.add_override),
        web.post("/agency/{agency}/roster/overrides/{id}/remove", pages.remove_override),
    ]
