"""The web pages, rendered on the server: they work without JavaScript, in Vietnamese by default
and in English with ``?lang=en`` (kept in every link and form).

* ``/`` — the national overview, problems first: on top every system that is down,
  unreachable, flapping or degraded (most severe first, then the oldest), each with how long,
  the reason in the page's language, who acknowledged its incident and the incident; then the
  systems in maintenance; then the agencies with a problem, expanded, and the others
  collapsed to one line each (a ``<details>``: no script). Every system's last 24 hours is a
  bar; ``?problems=1`` lists only systems that are not up;
* ``/agency/{agency}`` and ``/system/{agency}/{system}`` — one agency, one system (recent
  results, state changes, incidents, change announcements);
* ``/inbox`` — the logged-in account's portal inbox, with "mark as read";
* ``/status`` — public, no login: only the systems the config marks ``public: true``, and of
  them only the name, the agency, the state, the last change and the bar; never a reason or
  a host;
* ``/login`` and ``/logout``.

**Who sees what.** A national-admin sees every agency; every other role only its own (403 for
another agency's page). A private page without a login redirects to ``/login``. Logging in
opens a server-side session (:func:`monitor.sessions.open_session`: ``http.session_idle``,
``http.session_max``) whose random id, never the account's token, goes in an HttpOnly,
``SameSite=Strict`` cookie, ``Secure`` whenever the page was reached over HTTPS (the
listener's TLS, or a ``http.trusted_proxies`` proxy's ``X-Forwarded-Proto: https``); the
authentication middleware reads it on GET and HEAD only. Logging out deletes the session.

**Forms and CSRF.** A POST is authenticated by a bearer header, the cookie or a client
certificate. A browser sends the cookie and the certificate on its own, so a POST that relies
on one of them must carry a token in a hidden field: HMAC-SHA256 of the account and the
cookie's value under a per-process secret (:attr:`PagesContext.secret`). A forged form, made on
another site, cannot know it; a form loaded before a restart is refused once ("reload the
page"). Requests that say they come from another site (``Origin``, ``Sec-Fetch-Site``) are
refused before anything else. The cookie's ``SameSite=Strict`` is a third fence.

**The bar.** The last 24 hours in :data:`~monitor.web.templates.render.SLOTS` half-hour slots,
aligned to the clock, each coloured by the worst state the system was in during that slot
(down > unreachable > flapping > unknown > degraded > maintenance > up > pending); the
gateway's own outages show as unknown. One query over ``state_changes`` since the window's
start feeds every bar of a page (:mod:`monitor.web.bars`).

The plumbing every handler shares is :class:`~monitor.web.kit.PageKit`; the login and logout
are :mod:`monitor.web.login`; what a page answers a browser with is :mod:`monitor.web.browser`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from aiohttp import web

from .. import audit, changes_store, inbox_store
from ..access import Action, may_act, may_read, read_scope
from ..accounts import Account
from ..config import Agency
from ..reasons import say
from ..registry import SystemEntry
from ..rules.announcements import (
    Announcement,
    AnnouncementRejected,
    load_all,
)
from ..rules.announcements import cancel as cancel_announcement
from ..rules.incidents import OUTAGE, Incident, list_incidents
from ..state import Event, State
from . import auth
from .bars import timelines, window_start
from .browser import html, language, redirect
from .contact_pages import contact_routes
from .kit import PageKit, PagesContext
from .login import Login
from .report_pages import report_routes
from .roster_pages import roster_routes
from .routes import path_number
from .templates import render
from .templates.frame import agency_name
from .templates.render import PROBLEMS, Bar, InboxItem, Problem, Row
from .templates.rosters import duty_line, duty_section
from .templates.words import WORDS, Lang

MAX_MESSAGES = 200  # inbox messages on one page
MAX_LISTED = 30  # state changes, incidents and announcements on one agency or system page


# ----- the pages --------------------------------------------------------------------------------


STATUS_CACHE = 5.0  # seconds an anonymous /status page is served from memory
SYSTEM_INCIDENTS = 50  # the latest incidents shown on a system page


class Pages(PageKit):
    """The handlers of the pages that show and act; one instance per app."""

    def __init__(self, ctx: PagesContext) -> None:
        super().__init__(ctx)
        # The anonymous /status page by language: (rendered at, HTML). Rendering it takes tens
        # of milliseconds at 10,000 checks on the event loop; a flood of anonymous requests
        # must not turn into probe lag, so it is rendered at most once per STATUS_CACHE.
        self._status_cache: dict[str, tuple[float, str]] = {}

    async def _bars(
        self, keys: Sequence[str], *, agency: str | None = None, system: str | None = None
    ) -> dict[str, Bar]:
        """The bars of ``keys`` from one query (narrowed to an agency or a system)."""
        engine = self.ctx.engine
        now = self.ctx.clock()
        since = window_start(now)
        rows = await self.ctx.store.transact(
            lambda db: changes_store.since(db, since, agency=agency, system=system)
        )
        systems = engine.state.systems
        current = {k: systems[k].announced for k in keys if k in systems}
        return timelines(rows, current, now, gateway_cut=engine.state.gateway_cut)

    def _rows(self, entries: Iterable[SystemEntry], bars: Mapping[str, Bar]) -> list[Row]:
        state = self.ctx.engine.state
        out = []
        for entry in entries:
            status = state.systems.get(entry.key)
            if status is None:
                continue
            out.append(Row(entry, state.display_state(status), status.since, bars[entry.key]))
        return out

    def _gateway_since(self) -> float | None:
        state = self.ctx.engine.state
        return state.gateway_since if state.gateway_cut else None

    async def _announcements(self, keep: Callable[[Announcement], bool]) -> list[Announcement]:
        items = (
            self.ctx.rules.announcements.items
            if self.ctx.rules is not None
            else await load_all(self.ctx.store)
        )
        chosen = [a for a in items if keep(a)]
        chosen.sort(key=lambda a: (a.effective_at, a.id), reverse=True)
        return chosen[:MAX_LISTED]

    async def _agency_changes(self, agency: str) -> list[Event]:
        return await self.ctx.store.transact(
            lambda db: changes_store.of_agency(db, agency, MAX_LISTED)
        )

    def _agency(self, agency_id: str) -> Agency | None:
        return next((a for a in self.ctx.engine.config.agencies if a.id == agency_id), None)

    # ----- GET /

    async def overview(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        scope = read_scope(account)
        entries = [
            e
            for e in self.ctx.engine.registry.systems.values()
            if scope is None or e.agency.id == scope
        ]
        bars = await self._bars([e.key for e in entries], agency=scope)
        rows = self._rows(entries, bars)
        now = self.ctx.clock()
        problems = await self._problems(rows, language(request), scope)
        problems_only = request.query.get("problems") == "1"
        groups: dict[str, tuple[Agency, list[Row]]] = {}
        for row in rows:
            if problems_only and row.state is State.UP:
                continue
            agency = row.entry.agency
            groups.setdefault(agency.id, (agency, []))[1].append(row)
        chrome = await self._chrome(request, account)
        text = render.overview(
            chrome,
            list(groups.values()),
            total=len(rows),
            all_rows=rows,
            problems=problems,
            problems_only=problems_only,
            gateway_since=self._gateway_since(),
            now=now,
            duty=self._duty_section(groups.values(), chrome.lang),
        )
        response = html(text)
        response.enable_compression()  # about 1 MB of HTML at 3,300 systems
        return response

    async def _problems(self, rows: Sequence[Row], lang: Lang, scope: str | None) -> list[Problem]:
        """The overview's list on top: the rows in a :data:`~render.PROBLEMS` state, most
        severe first, then the oldest; each with its reason in ``lang`` and its open outage
        incident (the newest of the system's), which says who acknowledged it."""
        chosen = [row for row in rows if row.state in PROBLEMS]
        if not chosen:
            return []
        outages: dict[str, Incident] = {}
        for incident in await list_incidents(self.ctx.store, agency=scope):  # oldest first
            if incident.source == OUTAGE and incident.system:
                outages[incident.key] = incident
        systems = self.ctx.engine.state.systems
        out = []
        for row in chosen:
            status = systems[row.entry.key]
            reason = say(status.why, lang, status.reason)
            out.append(Problem(row, reason, outages.get(row.entry.key)))
        out.sort(key=lambda p: (PROBLEMS[p.row.state], p.row.since, p.row.entry.key))
        return out

    # ----- GET /agency/{agency}

    async def agency(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        agency = self._agency(request.match_info["agency"])
        if agency is None:
            return await self._not_found(request, "agency")
        if not may_read(account, agency.id):
            return await self._forbidden(request)
        entries = [e for e in self.ctx.engine.registry.systems.values() if e.agency.id == agency.id]
        bars = await self._bars([e.key for e in entries], agency=agency.id)
        rows = self._rows(entries, bars)
        lang = language(request)
        names = {e.key: render.system_name(e, lang) for e in entries}
        incidents = await list_incidents(self.ctx.store, agency=agency.id)
        text = render.agency_page(
            await self._chrome(request, account),
            agency,
            rows,
            incidents=incidents[-MAX_LISTED:][::-1],
            announcements=await self._announcements(
                lambda a: a.agency == agency.id and a.cancelled_at is None
            ),
            changes=await self._agency_changes(agency.id),
            names=names,
            gateway_since=self._gateway_since(),
            duty=duty_line(agency.id, self._on_duty(agency.id), lang),
        )
        return html(text)

    def _on_duty(self, agency: str) -> list[str] | None:
        """Who is on duty now in ``agency`` (names); None: it has no roster."""
        rules = self.ctx.rules
        return None if rules is None else rules.rosters.on_duty_now(agency)

    def _duty_section(self, groups: Iterable[tuple[Agency, Sequence[Row]]], lang: Lang) -> str:
        lines = []
        for agency, _rows in groups:
            names = self._on_duty(agency.id)
            if names is not None:
                lines.append((agency.id, agency_name(agency, lang), names))
        return duty_section(lines, lang)

    # ----- GET /system/{agency}/{system}

    async def system(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        engine = self.ctx.engine
        agency_id, system_id = request.match_info["agency"], request.match_info["system"]
        key = f"{agency_id}/{system_id}"
        entry = engine.registry.systems.get(key)
        status = engine.state.systems.get(key)
        if entry is None or status is None:
            return await self._not_found(request, "system")
        if not may_read(account, agency_id):
            return await self._forbidden(request)
        bars = await self._bars([key], agency=agency_id, system=system_id)
        (row,) = self._rows([entry], bars)
        lang = language(request)
        parents = []
        for parent in entry.parents:
            found = engine.registry.systems.get(parent)
            name = render.system_name(found, lang) if found else parent
            parents.append((parent, name, found is not None and may_read(account, found.agency.id)))
        checks = [
            (c, status.checks.get(c.key), tuple(engine.history.get(c.key, ())))
            for c in entry.checks
        ]
        # Resolved ones too: what happened to this system lately.
        incidents = await list_incidents(
            self.ctx.store,
            open_only=False,
            agency=entry.agency.id,
            system=entry.system.id,
            limit=SYSTEM_INCIDENTS,
        )
        chrome = await self._chrome(request, account)
        text = render.system_page(
            chrome,
            row,
            reason=say(status.why, lang, status.reason),
            parents=parents,
            checks=checks,
            changes=await engine.store.changes(MAX_LISTED, key),
            incidents=incidents[-MAX_LISTED:][::-1],
            announcements=await self._announcements(lambda a: a.key == key),
            gateway_since=self._gateway_since(),
            cancel_csrf=chrome.csrf if may_act(account, agency_id, Action.OPERATE) else None,
            views=(
                None
                if engine.votes is None
                else {c.key: engine.votes.tally(c.key) for c in entry.checks}
            ),
        )
        return html(text)

    # ----- POST /announcements/{id}/cancel

    async def announcement_cancel(self, request: web.Request) -> web.StreamResponse:
        """The "if this was not you, cancel it" of an announcement's confirmation: the same
        rule as the API (an operator or above of the agency, or a national-admin), audited."""
        lang = language(request)
        w = WORDS[lang]
        account = await self._form_account(request, render.link("/login", lang))
        if not isinstance(account, Account):
            return account
        wanted = path_number(request.match_info["id"])
        found = next(iter(await self._announcements(lambda a: a.id == wanted)), None)
        if found is None or not may_read(account, found.agency):
            return await self._not_found(request, "announcements")
        if not may_act(account, found.agency, Action.OPERATE):
            return await self._forbidden(request)
        try:
            await cancel_announcement(self.ctx.store, found.id, self.ctx.clock())
        except AnnouncementRejected as exc:
            return await self._message(request, 409, w["forbidden"], str(exc))
        await audit.audit(
            self.ctx.store,
            ts=self.ctx.clock(),
            actor=account.id,
            action="announcement.cancel",
            target=str(found.id),
            agency=found.agency,
            detail={"system": found.key, "changes": found.changes.summary()},
            source="page",
        )
        if self.ctx.rules is not None:
            await self.ctx.rules.announcements.refresh()
        return redirect(render.link(f"/system/{found.key}", lang))

    # ----- GET /inbox, POST /inbox/{id}/read

    async def inbox(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        if account is None:
            return self._to_login(request)
        portal = account.portal_account
        rows = await self.ctx.store.transact(
            lambda db: inbox_store.messages(db, portal, MAX_MESSAGES)
        )
        chrome = await self._chrome(request, account)
        messages = [InboxItem(m.id, m.subject, m.text, m.created_at, m.read_at) for m in rows]
        return html(render.inbox_page(chrome, messages, csrf=chrome.csrf))

    async def inbox_read(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        account = await self._form_account(
            request, render.link("/login", lang, [("next", "/inbox")])
        )
        if not isinstance(account, Account):
            return account
        message = path_number(request.match_info["id"])
        if message is None:
            return await self._not_found(request, "messages")
        now, portal = self.ctx.clock(), account.portal_account
        changed = await self.ctx.store.transact(
            lambda db: inbox_store.mark_read(db, portal, message, now)
        )
        if not changed:  # not a message of this account: say nothing more about it
            return await self._not_found(request, "messages")
        return redirect(render.link("/inbox", lang))

    # ----- GET /status

    async def status(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        now = self.ctx.clock()
        cached = self._status_cache.get(language(request)) if account is None else None
        if cached is not None and 0 <= now - cached[0] < STATUS_CACHE:
            return html(cached[1], private=False)
        text = await self._status_text(request, account, now)
        if account is None:
            self._status_cache[language(request)] = (now, text)
        return html(text, private=False)

    async def _status_text(self, request: web.Request, account: Account | None, now: float) -> str:
        public = [e for e in self.ctx.engine.registry.systems.values() if e.system.public]
        bars = await self._bars([e.key for e in public])
        groups: dict[str, tuple[Agency, list[Row]]] = {}
        for row in self._rows(public, bars):
            groups.setdefault(row.entry.agency.id, (row.entry.agency, []))[1].append(row)
        chrome = await self._chrome(request, account)
        return render.status_page(chrome, list(groups.values()), now=now)


def page_routes(ctx: PagesContext) -> list[web.RouteDef]:
    """The pages' routes, to add to the daemon's one HTTP app (behind the authentication
    middleware of ``ctx.authenticator``)."""
    pages, login = Pages(ctx), Login(ctx)
    return [
        web.get("/", pages.overview),
        web.get("/agency/{agency}", pages.agency),
        web.get("/system/{agency}/{system}", pages.system),
        web.post("/announcements/{id}/cancel", pages.announcement_cancel),
        web.get("/inbox", pages.inbox),
        web.post("/inbox/{id}/read", pages.inbox_read),
        web.get("/status", pages.status),
        *report_routes(ctx),
        *contact_routes(ctx),
        *roster_routes(ctx),
        web.get("/login", login.login_form),
        web.post("/login", login.login),
        web.post("/logout", login.logout),
    ]


__all__ = ["Pages", "PagesContext", "page_routes"]
