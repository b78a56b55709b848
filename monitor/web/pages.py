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
opens a server-side session (:func:`monitor.accounts.open_session`: ``http.session_idle``,
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
start feeds every bar of a page.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from .. import accounts, changes_store, inbox_store
from ..access import Action, may_act, may_read, read_scope
from ..accounts import Account
from ..changes_store import ChangeRow
from ..config import Agency
from ..engine import Engine
from ..reasons import say
from ..registry import SystemEntry
from ..rules.announcements import (
    Announcement,
    AnnouncementRejected,
    load_all,
)
from ..rules.announcements import cancel as cancel_announcement
from ..rules.incidents import OUTAGE, Incident, list_incidents
from ..rules.service import RulesService
from ..state import GATEWAY_AGENCY, Event, State
from ..store import Store
from . import auth
from .auth import COOKIE, Authenticator
from .templates import render
from .templates.render import PROBLEMS, SLOTS, Bar, Chrome, Message, Problem, Row, Run
from .templates.words import WORDS, Lang

WINDOW = 86_400.0  # the bar's span, seconds
MAX_MESSAGES = 200  # inbox messages on one page
MAX_LISTED = 30  # state changes, incidents and announcements on one agency or system page

#: Which state a slot shows when the system was in several: the worst.
#: Pending means "no verdict yet": any verdict in the same slot says more.
SEVERITY: dict[State, int] = {
    State.PENDING: 0,
    State.UP: 1,
    State.MAINTENANCE: 2,
    State.DEGRADED: 3,
    State.UNKNOWN: 4,
    State.FLAPPING: 5,
    State.UNREACHABLE: 6,
    State.DOWN: 7,
}
_BY_SEVERITY = sorted(SEVERITY, key=SEVERITY.__getitem__)


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


# ----- the 24-hour bars -------------------------------------------------------------------------


def window_start(now: float, *, window: float = WINDOW, slots: int = SLOTS) -> float:
    """Where slot 0 begins: the window ends at the next slot boundary after ``now``."""
    slot = window / slots
    return math.floor(now / slot) * slot + slot - window


def timelines(
    changes: Iterable[ChangeRow],
    current: Mapping[str, State],
    now: float,
    *,
    gateway_cut: bool = False,
    window: float = WINDOW,
    slots: int = SLOTS,
) -> dict[str, Bar]:
    """Every system's bar from the state changes since :func:`window_start` (oldest first)
    and each system's state now. Systems without a change in the window share one bar per
    state, so the cost grows with the number of changes, not with slots times systems."""
    start = window_start(now, window=window, slots=slots)
    slot = window / slots
    per_key: dict[str, list[tuple[float, State, State]]] = {}
    gateway: list[tuple[float, State, State]] = []
    for ts, agency, system, old, new in changes:
        try:
            change = (ts, State(old), State(new))
        except ValueError:
            continue  # a state this version does not know
        if agency == GATEWAY_AGENCY:
            gateway.append(change)
        else:
            per_key.setdefault(f"{agency}/{system}", []).append(change)

    def fill(levels: list[int], a: float, b: float, level: int) -> None:
        first = max(0, min(slots - 1, int((a - start) // slot)))
        last = max(first, min(slots - 1, math.ceil((b - start) / slot) - 1))
        for i in range(first, last + 1):
            levels[i] = max(levels[i], level)

    def spans(
        history: list[tuple[float, State, State]], now_state: State
    ) -> Iterable[tuple[float, float, State]]:
        at, state = start, history[0][1] if history else now_state
        for ts, _old, new in history:
            yield at, max(at, ts), state
            at, state = max(at, ts), new
        yield at, now, state

    floor = [0] * slots  # the gateway's outages: nobody can be better than unknown then
    gateway_now = State.DOWN if gateway_cut else State.UP
    if gateway or gateway_cut:
        for a, b, state in spans(gateway, gateway_now):
            if state is State.DOWN:
                fill(floor, a, b, SEVERITY[State.UNKNOWN])

    def runs(levels: list[int]) -> tuple[Run, ...]:
        out: list[Run] = []
        for i, level in enumerate(levels):
            state = _BY_SEVERITY[level]
            if out and out[-1][0] is state:
                out[-1] = (state, out[-1][1], out[-1][2] + 1)
            else:
                out.append((state, i, 1))
        return tuple(out)

    shared: dict[State, Bar] = {}
    bars: dict[str, Bar] = {}
    for key, state in current.items():
        history = per_key.get(key)
        if history is None:
            bar = shared.get(state)
            if bar is None:
                bar = Bar(start, slot, runs([max(SEVERITY[state], f) for f in floor]))
                shared[state] = bar
            bars[key] = bar
            continue
        levels = list(floor)
        for a, b, held in spans(history, state):
            fill(levels, a, b, SEVERITY[held])
        bars[key] = Bar(start, slot, runs(levels))
    return bars


# ----- helpers ----------------------------------------------------------------------------------


def language(request: web.Request) -> Lang:
    return "en" if request.query.get("lang") == "en" else "vi"


def _kept_query(request: web.Request) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in request.query.items() if k != "lang")


def _html(text: str, status: int = 200, *, private: bool = True) -> web.Response:
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


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _cross_site(request: web.Request) -> bool:
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


def _safe_next(value: object) -> str:
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


def _session(request: web.Request) -> str | None:
    """What authenticated this GET, as a CSRF binding: the cookie's value, ``""`` for a client
    certificate, None for a bearer header (browsers never add one by themselves)."""
    if auth.bearer(request) is not None:
        return None
    return request.cookies.get(COOKIE) or ""


# ----- the pages --------------------------------------------------------------------------------


STATUS_CACHE = 5.0  # seconds an anonymous /status page is served from memory
SYSTEM_INCIDENTS = 50  # the latest incidents shown on a system page


class Pages:
    """The handlers; one instance per app."""

    def __init__(self, ctx: PagesContext) -> None:
        self.ctx = ctx
        # The anonymous /status page by language: (rendered at, HTML). Rendering it takes tens
        # of milliseconds at 10,000 checks on the event loop; a flood of anonymous requests
        # must not turn into probe lag, so it is rendered at most once per STATUS_CACHE.
        self._status_cache: dict[str, tuple[float, str]] = {}

    # ----- plumbing

    def csrf(self, account: Account, session: str) -> str:
        message = f"{account.id}\0{session}".encode()
        return hmac.new(self.ctx.secret, message, hashlib.sha256).hexdigest()

    async def _chrome(self, request: web.Request, account: Account | None) -> Chrome:
        lang = language(request)
        if account is None:
            return Chrome(lang, request.path, _kept_query(request))
        portal = account.portal_account
        unread = await self.ctx.store.transact(lambda db: inbox_store.unread(db, portal))
        session = _session(request)
        return Chrome(
            lang,
            request.path,
            _kept_query(request),
            account=account.name,
            my_agency=account.agency,
            unread=unread,
            csrf=self.csrf(account, session or ""),
            logout=bool(session),
        )

    def _to_login(self, request: web.Request) -> web.Response:
        lang = language(request)
        response = _redirect(render.link("/login", lang, [("next", request.path)]))
        if request.cookies.get(COOKIE):
            response.del_cookie(COOKIE, path="/")  # revoked or unknown: forget it
        return response

    async def _message(
        self, request: web.Request, status: int, title: str, text: str
    ) -> web.Response:
        chrome = await self._chrome(request, auth.current(request))
        return _html(render.message_page(chrome, title, text), status)

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

    async def _form_ok(self, request: web.Request, account: Account, session: str | None) -> bool:
        if session is None:
            return True
        form = await request.post()
        given = form.get("csrf")
        return isinstance(given, str) and hmac.compare_digest(given, self.csrf(account, session))

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
        )
        response = _html(text)
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
        )
        return _html(text)

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
        )
        return _html(text)

    # ----- POST /announcements/{id}/cancel

    async def announcement_cancel(self, request: web.Request) -> web.StreamResponse:
        """The "if this was not you, cancel it" of an announcement's confirmation: the same
        rule as the API (an operator or above of the agency, or a national-admin), audited."""
        lang = language(request)
        w = WORDS[lang]
        if _cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        account, session = await self._post_account(request)
        if account is None:
            return _redirect(render.link("/login", lang))
        if not await self._form_ok(request, account, session):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        raw = request.match_info["id"]
        wanted = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 12 else None
        found = next(iter(await self._announcements(lambda a: a.id == wanted)), None)
        if found is None or not may_read(account, found.agency):
            return await self._not_found(request, "announcements")
        if not may_act(account, found.agency, Action.OPERATE):
            return await self._forbidden(request)
        try:
            await cancel_announcement(self.ctx.store, found.id, self.ctx.clock())
        except AnnouncementRejected as exc:
            return await self._message(request, 409, w["forbidden"], str(exc))
        await accounts.audit(
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
        return _redirect(render.link(f"/system/{found.key}", lang))

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
        messages = [Message(m.id, m.subject, m.text, m.created_at, m.read_at) for m in rows]
        return _html(render.inbox_page(chrome, messages, csrf=chrome.csrf))

    async def inbox_read(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        w = WORDS[lang]
        if _cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        account, session = await self._post_account(request)
        if account is None:
            return _redirect(render.link("/login", lang, [("next", "/inbox")]))
        if not await self._form_ok(request, account, session):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        message = inbox_store.message_id(request.match_info["id"])
        if message is None:
            return await self._not_found(request, "messages")
        now, portal = self.ctx.clock(), account.portal_account
        changed = await self.ctx.store.transact(
            lambda db: inbox_store.mark_read(db, portal, message, now)
        )
        if not changed:  # not a message of this account: say nothing more about it
            return await self._not_found(request, "messages")
        return _redirect(render.link("/inbox", lang))

    # ----- GET /status

    async def status(self, request: web.Request) -> web.StreamResponse:
        account = auth.current(request)
        now = self.ctx.clock()
        cached = self._status_cache.get(language(request)) if account is None else None
        if cached is not None and 0 <= now - cached[0] < STATUS_CACHE:
            return _html(cached[1], private=False)
        text = await self._status_text(request, account, now)
        if account is None:
            self._status_cache[language(request)] = (now, text)
        return _html(text, private=False)

    async def _status_text(self, request: web.Request, account: Account | None, now: float) -> str:
        public = [e for e in self.ctx.engine.registry.systems.values() if e.system.public]
        bars = await self._bars([e.key for e in public])
        groups: dict[str, tuple[Agency, list[Row]]] = {}
        for row in self._rows(public, bars):
            groups.setdefault(row.entry.agency.id, (row.entry.agency, []))[1].append(row)
        chrome = await self._chrome(request, account)
        return render.status_page(chrome, list(groups.values()), now=now)

    # ----- /login, /logout

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        chrome = await self._chrome(request, auth.current(request))
        next_path = _safe_next(request.query.get("next"))
        return _html(render.login_page(chrome, next_path=next_path), private=False)

    async def login(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        w = WORDS[lang]
        who = request.remote or "?"
        throttle = self.ctx.authenticator.throttle
        wait = throttle.blocked_for(who)
        if wait:
            response = await self._message(
                request, 429, w["login"], w["too_many"].format(s=int(wait) + 1)
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        if _cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        form = await request.post()
        raw = form.get("token")
        token = raw.strip() if isinstance(raw, str) else ""
        next_path = _safe_next(form.get("next"))
        account = await accounts.by_token(self.ctx.store, token) if token else None
        if account is None:
            throttle.failed(who)
            await accounts.audit(
                self.ctx.store,
                ts=self.ctx.clock(),
                actor=f"anonymous@{who}",
                action="login.failed",
                target="/login",
                source="web",
            )
            chrome = Chrome(lang, "/login")
            page = render.login_page(chrome, next_path=next_path, error=w["login_failed"])
            return _html(page, 401, private=False)
        await accounts.audit(
            self.ctx.store,
            ts=self.ctx.clock(),
            actor=account.id,
            action="login",
            target="/login",
            agency=account.agency,
            source="web",
        )
        http = self.ctx.engine.config.http
        session = await accounts.open_session(
            self.ctx.store,
            account,
            now=self.ctx.clock(),
            idle=http.session_idle,
            lifetime=http.session_max,
        )
        response = _redirect(render.link(next_path, lang))
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

    def _https(self, request: web.Request) -> bool:
        return auth.via_https(request, self.ctx.engine.config.http.trusted_proxies)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        lang = language(request)
        w = WORDS[lang]
        if _cross_site(request):
            return await self._message(request, 403, w["forbidden"], w["forged"])
        account, session = await self._post_account(request)
        if account is not None:
            if not await self._form_ok(request, account, session):
                return await self._message(request, 403, w["forbidden"], w["forged"])
            if session:
                await accounts.end_session(self.ctx.store, session)  # dead server-side too
            await accounts.audit(
                self.ctx.store,
                ts=self.ctx.clock(),
                actor=account.id,
                action="logout",
                target="/logout",
                agency=account.agency,
                source="web",
            )
        response = _redirect(render.link("/login", lang))
        response.del_cookie(
            COOKIE, path="/", httponly=True, samesite="Strict", secure=self._https(request)
        )
        return response


def page_routes(ctx: PagesContext) -> list[web.RouteDef]:
    """The pages' routes, to add to the daemon's one HTTP app (behind the authentication
    middleware of ``ctx.authenticator``)."""
    pages = Pages(ctx)
    return [
        web.get("/", pages.overview),
        web.get("/agency/{agency}", pages.agency),
        web.get("/system/{agency}/{system}", pages.system),
        web.post("/announcements/{id}/cancel", pages.announcement_cancel),
        web.get("/inbox", pages.inbox),
        web.post("/inbox/{id}/read", pages.inbox_read),
        web.get("/status", pages.status),
        web.get("/login", pages.login_form),
        web.post("/login", pages.login),
        web.post("/logout", pages.logout),
    ]


__all__ = ["SEVERITY", "WINDOW", "Pages", "PagesContext", "page_routes", "timelines"]
