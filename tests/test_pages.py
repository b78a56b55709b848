"""The web pages against a real engine probing loopback targets, a real store and real accounts;
in a real browser (Debian's headless ``chromium``) too, with screenshots kept as artifacts.

Screenshots and the overview's timing land in ``.artifacts/pages/`` at the repository root
(``NPSP_ARTIFACTS`` overrides the folder).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor import accounts, audit
from monitor.config import load_config
from monitor.engine import Engine
from monitor.rules.announcements import Announcement, Changes, save
from monitor.rules.incidents import open_incident
from monitor.state import GATEWAY_AGENCY, GATEWAY_SYSTEM, Event, State
from monitor.store import Store
from monitor.web.auth import COOKIE, Authenticator
from monitor.web.bars import SEVERITY, timelines, window_start
from monitor.web.pages import PagesContext, page_routes
from monitor.web.templates.render import SLOTS
from monitor.web.templates.words import AGENCY_KINDS, STATE_NAMES, SYSTEM_KINDS, WORDS
from monitor.workdays import WorkCalendar
from probes import ProbeEnv

from .conftest import TcpTarget, eventually
from .peers import free_port

ARTIFACTS = Path(os.environ.get("NPSP_ARTIFACTS") or Path(__file__).parents[1] / ".artifacts")
AGENCIES = {"bo-tai-chinh", "ha-noi"}


def artifacts() -> Path:
    folder = ARTIFACTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ----- the site under test ----------------------------------------------------------------------


def fleet(tmp_path: Path, up: int, down: int) -> dict[str, Any]:
    def tcp(port: int) -> list[dict[str, Any]]:
        return [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}]

    return {
        "vantage": "gw-test",
        "state_db": str(tmp_path / "state.db"),
        "defaults": {
            "interval": "200ms",
            "timeout": "150ms",
            "failure_threshold": 1,
            "recheck_delay": "10ms",
        },
        "agencies": [
            {
                "id": "bo-tai-chinh",
                "kind": "ministry",
                "name_vi": "Bộ Tài chính",
                "name_en": "Ministry of Finance",
                "code": "BTC",
                "systems": [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật BTC",
                        "name_en": "MoF secure server",
                        "public": True,
                        "checks": tcp(up),
                    },
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Một cửa điện tử BTC",
                        "depends_on": "secure-server",
                        "checks": tcp(down),
                    },
                ],
            },
            {
                "id": "ha-noi",
                "kind": "province",
                "name_vi": "Thành phố Hà Nội",
                "name_en": "Hanoi City",
                "code": "01",
                "systems": [
                    {
                        "id": "public-service-portal",
                        "kind": "public-service-portal",
                        "name": "Cổng dịch vụ công Hà Nội",
                        "name_en": "Hanoi public service portal",
                        "public": True,
                        "checks": tcp(up),
                    },
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật Hà Nội",
                        "checks": tcp(up),
                    },
                ],
            },
        ],
    }


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: Engine
    store: Store
    tokens: dict[str, str]
    messages: dict[str, int]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.client.server.port}"

    async def get(self, path: str, who: str | None = None, **kw: Any) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        response = await self.client.get(path, headers=headers, allow_redirects=False, **kw)
        return response.status, await response.text()

    async def login(self, who: str) -> aiohttp.ClientResponse:
        self.client.session.cookie_jar.clear()
        return await self.client.post(
            "/login", data={"token": self.tokens[who]}, allow_redirects=False
        )

    async def read_at(self, message: int) -> float | None:
        value: float | None = await self.store.transact(
            lambda db: db.execute("SELECT read_at FROM inbox WHERE id = ?", (message,)).fetchone()[
                0
            ]
        )
        return value


async def add_message(store: Store, account: str, subject: str, text: str, at: float) -> int:
    def write(db: Any) -> int:
        cur = db.execute(
            "INSERT INTO inbox (account, key, subject, text, created_at) VALUES (?, ?, ?, ?, ?)",
            (account, f"{account}/{at}", subject, text, at),
        )
        return int(cur.lastrowid)

    return await store.transact(write)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def rows_of(page: str) -> dict[str, str]:
    """``agency/system`` → shown state, from a systems table."""
    return dict(re.findall(r'<tr data-system="([^"]+)" data-state="([a-z]+)">', page))


def problems_of(page: str) -> list[tuple[str, str]]:
    """The overview's list on top, in its order: (``agency/system``, state)."""
    return re.findall(r'<tr class="problem" data-problem="([^"]+)" data-state="([a-z]+)">', page)


@pytest.fixture
async def site(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[Site]:
    up = await tcp_target()
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(fleet(tmp_path, up.port, free_port()), allow_unicode=True), encoding="utf-8"
    )
    config = load_config(path)
    store = await Store.open(config.state_db)
    engine = Engine(config, store, ProbeEnv())
    await engine.start()
    tasks = [
        asyncio.create_task(engine.scheduler.run()),
        asyncio.create_task(engine.persist_forever()),
    ]
    try:
        expected = {
            "bo-tai-chinh/secure-server": State.UP,
            "bo-tai-chinh/one-stop": State.DOWN,
            "ha-noi/public-service-portal": State.UP,
            "ha-noi/secure-server": State.UP,
        }
        await eventually(
            lambda: all(engine.state.systems[k].announced is s for k, s in expected.items())
        )
        await engine.flush()
        now = time.time()
        tokens = {}
        for account_id, role, agency, portal in [
            ("vpcp", "national-admin", None, "vpcp.ops"),
            ("btc", "viewer", "bo-tai-chinh", "qtkt.btc"),
            ("hanoi", "agency-admin", "ha-noi", "qtkt.hanoi"),
        ]:
            _, tokens[account_id] = await accounts.create(
                store,
                actor=None,
                account_id=account_id,
                name=f"Tài khoản {account_id}",
                role=role,
                agency=agency,
                agencies=AGENCIES,
                now=now,
                portal_account=portal,
            )
        messages = {
            "btc-old": await add_message(
                store, "qtkt.btc", "Bộ Tài chính: 1 hệ thống mất kết nối", "Một cửa…", now - 60
            ),
            "btc-new": await add_message(
                store,
                "qtkt.btc",
                "<b>Nhắc lại</b>: vẫn mất kết nối",
                "<script>alert(1)</script>\nHỗ trợ 1900.1096",
                now - 10,
            ),
            "hanoi": await add_message(store, "qtkt.hanoi", "Thư của Hà Nội", "riêng", now - 5),
        }
        await open_incident(
            store,
            engine.registry,
            WorkCalendar(config.calendar),
            agency="bo-tai-chinh",
            system="one-stop",
            summary="Một cửa điện tử không kết nối được",
            now=now,
        )
        await save(
            store,
            Announcement(
                id=0,
                agency="bo-tai-chinh",
                system="secure-server",
                ref="CV-123/BTC",
                announced_at=now,
                effective_at=now + 7 * 86400,
                changes=Changes(host="ssv2.btc.dvc.example", text="gia hạn chứng thư số"),
                source="cli",
                author="Phòng CNTT",
                working_days=4,
                required=3,
                compliant=True,
                created_at=now,
            ),
        )
        authenticator = Authenticator(store, max_failures=3)
        app = web.Application(middlewares=[authenticator.middleware])
        app.add_routes(page_routes(PagesContext(engine, store, None, authenticator)))
        async with TestClient(TestServer(app)) as client:
            yield Site(client, engine, store, tokens, messages)
    finally:
        engine.scheduler.stop()
        await engine.scheduler.drain(1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


# ----- login and scope --------------------------------------------------------------------------


async def test_private_pages_send_a_visitor_to_the_login_page(site: Site) -> None:
    for path in ("/", "/inbox", "/agency/ha-noi", "/system/ha-noi/secure-server"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=%2F"), path
    response = await site.client.get("/inbox?lang=en", allow_redirects=False)
    assert response.headers["Location"] == "/login?next=%2Finbox&lang=en"
    status, page = await site.get("/login?next=/inbox")
    assert status == 200
    assert 'name="token"' in page and 'type="password"' in page
    assert 'name="next" value="/inbox"' in page
    assert "Mã truy cập" in page


async def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(site: Site) -> None:
    response = await site.login("btc")
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.cookies[COOKIE]
    # A server-side session's id, never the account's permanent token.
    assert cookie.value.startswith("npsps_") and cookie.value != site.tokens["btc"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP here; Secure over TLS

    status, page = await site.get("/")
    assert status == 200
    assert "Tài khoản btc" in page  # logged in through the cookie alone
    token = csrf_of(page)

    # Logging out is a form with its token: a forged one leaves the session alone.
    response = await site.client.post("/logout", allow_redirects=False)
    assert response.status == 403
    assert (await site.get("/"))[0] == 200
    response = await site.client.post("/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert response.cookies[COOKIE].value == ""
    assert (await site.get("/"))[0] == 303

    actions = await site.store.transact(
        lambda db: [r[0] for r in db.execute("SELECT action FROM audit WHERE source = 'web'")]
    )
    assert actions == ["login", "logout"]


async def test_a_bad_token_is_refused_audited_and_throttled(site: Site) -> None:
    response = await site.client.post("/login", data={"token": "npsp_wrong"}, allow_redirects=False)
    assert response.status == 401
    page = await response.text()
    assert WORDS["vi"]["login_failed"] in page
    assert "npsp_wrong" not in page  # never echoed
    assert COOKIE not in response.cookies
    for _ in range(2):
        await site.client.post("/login", data={"token": "npsp_wrong"}, allow_redirects=False)
    # Three failures (the limit here): even the right token waits now.
    response = await site.client.post(
        "/login", data={"token": site.tokens["vpcp"]}, allow_redirects=False
    )
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    failed = await site.store.transact(
        lambda db: db.execute("SELECT COUNT(*) FROM audit WHERE action = 'login.failed'").fetchone()
    )
    assert failed[0] == 3


async def test_login_goes_back_only_to_a_local_page(site: Site) -> None:
    for next_path, location in [
        ("/inbox", "/inbox"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        site.client.session.cookie_jar.clear()
        response = await site.client.post(
            "/login?lang=en",
            data={"token": site.tokens["btc"], "next": next_path},
            allow_redirects=False,
        )
        assert response.headers["Location"] == location + "?lang=en", next_path


async def test_a_revoked_account_is_logged_out_at_once(site: Site) -> None:
    await site.login("btc")
    assert (await site.get("/"))[0] == 200
    await accounts.revoke(site.store, actor=None, account_id="btc", now=time.time())
    response = await site.client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")
    assert response.cookies[COOKIE].value == ""  # the dead cookie is dropped


async def test_a_cross_site_login_post_is_refused(site: Site) -> None:
    response = await site.client.post(
        "/login",
        data={"token": site.tokens["btc"]},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert COOKIE not in response.cookies


# ----- overview, agency, system -----------------------------------------------------------------


async def test_overview_lists_every_agency_with_states_and_bars(site: Site) -> None:
    status, page = await site.get("/", "vpcp")
    assert status == 200
    assert 'lang="vi"' in page
    assert "Bộ Tài chính" in page and "Thành phố Hà Nội" in page
    assert rows_of(page) == {
        "bo-tai-chinh/secure-server": "up",
        "bo-tai-chinh/one-stop": "down",
        "ha-noi/public-service-portal": "up",
        "ha-noi/secure-server": "up",
    }
    assert STATE_NAMES["vi"][State.DOWN] in page and STATE_NAMES["vi"][State.UP] in page
    assert SYSTEM_KINDS["vi"]["one-stop"] in page
    # Each system has a bar; the failing one ends down (its last slot is now).
    bars = re.findall(r'<span class="bar"[^>]*>(.*?)</span>', page)
    assert len(bars) == 4
    one_stop = page.split('data-system="bo-tai-chinh/one-stop"')[1].split("</tr>")[0]
    assert re.findall(r'class="s-([a-z]+) w\d+"', one_stop)[-1] == "down"
    assert 'href="/system/bo-tai-chinh/one-stop"' in page
    # What is wrong comes first, with its reason; the healthy agency is one line.
    assert problems_of(page) == [("bo-tai-chinh/one-stop", "down")]
    assert page.index('class="problem"') < page.index("<tr data-system=")
    problem = page.split('class="problem"')[1].split("</tr>")[0]
    assert "connect: refused" in problem or "bị từ chối" in problem
    assert '<details class="agency" id="agency-ha-noi">' in page
    assert '<h2 id="agency-bo-tai-chinh">' in page

    status, page = await site.get("/?problems=1", "vpcp")
    assert rows_of(page) == {"bo-tai-chinh/one-stop": "down"}
    response = await site.client.head(
        "/", headers={"Authorization": f"Bearer {site.tokens['vpcp']}"}
    )
    assert response.status == 200


async def test_while_the_gateway_is_cut_off_every_state_is_unknown(site: Site) -> None:
    state = site.engine.state
    cut = Event(time.time() - 60, GATEWAY_AGENCY, GATEWAY_SYSTEM, State.UP, State.DOWN, "cut", "gw")
    await site.store.record([cut])
    state.gateway_cut, state.gateway_since = True, cut.time
    try:
        _, page = await site.get("/", "vpcp")
        public = (await site.get("/status"))[1]
    finally:
        state.gateway_cut = False
    assert set(rows_of(page).values()) == {"unknown"}
    assert "Cổng kết nối của NPSP đang mất đường truyền" in page
    assert 'class="s-unknown w1"' in page  # the bars' last slot
    assert set(re.findall(r'data-state="([a-z]+)"', public)) == {"unknown"}


async def test_pages_speak_english_with_lang_en_and_keep_it_in_links(site: Site) -> None:
    status, page = await site.get("/?lang=en", "vpcp")
    assert status == 200
    assert 'lang="en"' in page
    assert "Ministry of Finance" in page and "Hanoi City" in page
    assert "Bộ Tài chính" not in page
    assert ">Down<" in page and ">Up<" in page
    assert "MoF secure server" in page  # name_en where the config gives one
    assert 'href="/system/bo-tai-chinh/one-stop?lang=en"' in page
    assert 'href="/inbox?lang=en"' in page
    assert 'href="/?lang=en"' in page
    assert 'href="/" hreflang="vi"' in page  # the switch back to Vietnamese
    status, page = await site.get("/system/bo-tai-chinh/one-stop?lang=en", "vpcp")
    assert "Recent results" in page and "Kết quả gần đây" not in page


async def test_an_agency_account_sees_only_its_agency(site: Site) -> None:
    status, page = await site.get("/", "btc")
    assert status == 200
    assert set(rows_of(page)) == {"bo-tai-chinh/secure-server", "bo-tai-chinh/one-stop"}
    assert "Hà Nội" not in page
    assert 'href="/agency/bo-tai-chinh"' in page  # "my agency"
    for path in ("/agency/ha-noi", "/system/ha-noi/secure-server"):
        status, page = await site.get(path, "btc")
        assert status == 403, path
        assert WORDS["vi"]["forbidden"] in page
        assert "Máy chủ bảo mật Hà Nội" not in page
    assert (await site.get("/agency/nowhere", "btc"))[0] == 404
    assert (await site.get("/system/bo-tai-chinh/nothing", "btc"))[0] == 404
    assert (await site.get("/agency/ha-noi", "vpcp"))[0] == 200
    assert (await site.get("/agency/ha-noi", "hanoi"))[0] == 200


async def test_agency_page_shows_systems_incidents_announcements_and_changes(site: Site) -> None:
    status, page = await site.get("/agency/bo-tai-chinh", "btc")
    assert status == 200
    assert "<h1>Bộ Tài chính</h1>" in page
    assert AGENCY_KINDS["vi"]["ministry"] in page
    assert rows_of(page) == {"bo-tai-chinh/secure-server": "up", "bo-tai-chinh/one-stop": "down"}
    assert "Một cửa điện tử không kết nối được" in page  # the open incident
    assert "req-1" in page
    assert "CV-123/BTC" in page and "ssv2.btc.dvc.example" in page
    assert "4/3 ngày làm việc" in page and "Đúng hạn" in page
    # The state change's reason (a private page), in the page's language.
    assert "không kết nối được: bị từ chối" in page and "connect: refused" not in page


async def test_system_page_shows_recent_results_incident_and_announcement(site: Site) -> None:
    status, page = await site.get("/system/bo-tai-chinh/one-stop", "btc")
    assert status == 200
    assert "<h1>Một cửa điện tử BTC</h1>" in page
    assert "kiểm tra tcp: không kết nối được: bị từ chối" in page  # why it is down
    # Recent results straight from the engine's history: real probes of a closed port.
    history = site.engine.history["bo-tai-chinh/one-stop/tcp"]
    assert history
    results = re.findall(r'<tr class="result" data-ok="(\d)">', page)
    assert len(results) >= len(history) - 1 and set(results) == {"0"}
    assert "gw-test" in page  # the vantage
    assert "Một cửa điện tử không kết nối được" in page
    assert 'href="/system/bo-tai-chinh/secure-server"' in page  # what it depends on
    changes = page.split(WORDS["vi"]["state_changes"])[1]
    assert STATE_NAMES["vi"][State.PENDING] in changes and STATE_NAMES["vi"][State.DOWN] in changes

    status, page = await site.get("/system/bo-tai-chinh/secure-server", "btc")
    assert "CV-123/BTC" in page
    assert "host → ssv2.btc.dvc.example; text → gia hạn chứng thư số" in page
    assert "Không có sự cố." in page  # the incident is the one-stop system's


async def test_an_announcement_is_cancelled_from_its_system_page(site: Site) -> None:
    """Where the confirmation of an announcement sends people ("if this was not you, cancel
    it"): a button for those who may act on the agency, CSRF-bound, audited (issue 10.3)."""
    page_path = "/system/bo-tai-chinh/secure-server"
    await site.login("btc")  # a viewer of the agency: sees the announcement, cannot cancel it
    _, page = await site.get(page_path)
    assert "CV-123/BTC" in page and "/cancel" not in page
    await site.login("vpcp")
    _, page = await site.get(page_path)
    (action,) = re.findall(r'action="(/announcements/\d+/cancel)"', page)
    token = csrf_of(page)
    for who, expected in (("btc", 403), ("hanoi", 404)):  # a viewer; another agency
        await site.login(who)
        theirs = csrf_of((await site.get("/inbox"))[1])
        response = await site.client.post(action, data={"csrf": theirs}, allow_redirects=False)
        assert response.status == expected, who
    await site.login("vpcp")
    response = await site.client.post(action, data={"csrf": token}, allow_redirects=False)
    assert response.status == 403  # the token of an earlier session
    token = csrf_of((await site.get(page_path))[1])
    response = await site.client.post(action, data={"csrf": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == page_path
    cancelled = await site.store.transact(
        lambda db: db.execute(
            "SELECT cancelled_at FROM announcements WHERE ref = 'CV-123/BTC'"
        ).fetchone()[0]
    )
    assert cancelled is not None
    _, page = await site.get(page_path)
    assert WORDS["vi"]["cancelled"] in page and "/cancel" not in page
    rows = await audit.audit_log(site.store)
    assert any(r["action"] == "announcement.cancel" and r["actor"] == "vpcp" for r in rows)


# ----- inbox ------------------------------------------------------------------------------------


async def test_inbox_shows_own_messages_newest_first_escaped(site: Site) -> None:
    await site.login("btc")
    status, page = await site.get("/inbox")
    assert status == 200
    ids = [int(i) for i in re.findall(r'<article class="msg unread" data-id="(\d+)"', page)]
    assert ids == [site.messages["btc-new"], site.messages["btc-old"]]
    assert "Thư của Hà Nội" not in page
    assert "&lt;b&gt;Nhắc lại&lt;/b&gt;" in page and "<b>Nhắc lại</b>" not in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "2 chưa đọc" in page
    assert "Hộp thư (2)" in page  # in the navigation of every page
    assert "script-src" not in page  # no script anywhere: the CSP forbids them
    response = await site.client.get("/inbox")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


async def test_mark_as_read_needs_the_form_token(site: Site) -> None:
    await site.login("btc")
    _, page = await site.get("/inbox")
    token = csrf_of(page)
    message = site.messages["btc-old"]
    url = f"/inbox/{message}/read"

    # A forged form: no token, a wrong one, the right one but posted from another site.
    for data, headers in [
        ({}, {}),
        ({"csrf": "0" * 64}, {}),
        ({"csrf": token}, {"Origin": "https://evil.example"}),
        ({"csrf": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        response = await site.client.post(url, data=data, headers=headers, allow_redirects=False)
        assert response.status == 403, (data, headers)
        assert WORDS["vi"]["forged"] in await response.text()
    assert await site.read_at(message) is None

    # Another account's token does not work with this cookie either.
    await site.login("hanoi")
    _, other = await site.get("/inbox")
    await site.login("btc")
    response = await site.client.post(url, data={"csrf": csrf_of(other)}, allow_redirects=False)
    assert response.status == 403
    # Nor does the form token of btc's earlier session: it is bound to that session.
    response = await site.client.post(url, data={"csrf": token}, allow_redirects=False)
    assert response.status == 403
    token = csrf_of((await site.get("/inbox"))[1])

    response = await site.client.post(url + "?lang=en", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/inbox?lang=en"
    assert await site.read_at(message) is not None
    _, page = await site.get("/inbox")
    assert "1 chưa đọc" in page
    assert f'<article class="msg read" data-id="{message}"' in page

    # Someone else's message: not found, and left alone.
    hanoi = site.messages["hanoi"]
    response = await site.client.post(
        f"/inbox/{hanoi}/read", data={"csrf": token}, allow_redirects=False
    )
    assert response.status == 404
    assert await site.read_at(hanoi) is None


async def test_mark_as_read_with_a_bearer_header_needs_no_form_token(site: Site) -> None:
    message = site.messages["hanoi"]
    response = await site.client.post(
        f"/inbox/{message}/read",
        headers={"Authorization": f"Bearer {site.tokens['hanoi']}"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert await site.read_at(message) is not None
    response = await site.client.post(f"/inbox/{message}/read", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/login")


# ----- the public status page -------------------------------------------------------------------


async def test_status_page_shows_public_systems_only_and_no_reasons(site: Site) -> None:
    status, page = await site.get("/status")
    assert status == 200
    assert "Máy chủ bảo mật BTC" in page and "Cổng dịch vụ công Hà Nội" in page
    assert "Bộ Tài chính" in page and "Thành phố Hà Nội" in page
    for private in ("Một cửa điện tử BTC", "Máy chủ bảo mật Hà Nội", "one-stop"):
        assert private not in page
    for secret in ("refused", "127.0.0.1", "check tcp", "gw-test", "/system/", "ssv2"):
        assert secret not in page
    assert page.count('data-state="up"') == 2
    assert "Tổng quan" not in page  # a visitor gets no private navigation
    status, page = await site.get("/status?lang=en")
    assert "Hanoi public service portal" in page and "MoF secure server" in page
    assert "Public status" in page


# ----- the bars ---------------------------------------------------------------------------------


def test_timelines_colour_each_slot_by_its_worst_state() -> None:
    now = 1_800_000_000.0 + 600  # ten minutes into a half hour
    start = window_start(now)
    assert start == 1_800_000_000.0 + 1800 - 86_400
    slot = 86_400 / SLOTS
    rows = [
        # a: down for five minutes inside slot 40, then flapping from slot 44 on
        (start + 40 * slot + 60, "a", "x", "up", "down"),
        (start + 40 * slot + 360, "a", "x", "down", "up"),
        (start + 44 * slot, "a", "x", "up", "flapping"),
        (start + 45 * slot, "a", "x", "flapping", "no-such-state"),  # ignored
    ]
    bars = timelines(rows, {"a/x": State.FLAPPING, "b/y": State.UP, "c/z": State.UP}, now)
    assert bars["a/x"].runs == (
        (State.UP, 0, 40),
        (State.DOWN, 40, 1),
        (State.UP, 41, 3),
        (State.FLAPPING, 44, 4),
    )
    assert bars["b/y"].runs == ((State.UP, 0, SLOTS),)
    assert bars["b/y"] is bars["c/z"]  # systems without changes share one bar

    # The gateway was cut off for an hour: nobody looks better than unknown then.
    cut = [
        (start + 10 * slot, GATEWAY_AGENCY, GATEWAY_SYSTEM, "up", "down"),
        (start + 12 * slot, GATEWAY_AGENCY, GATEWAY_SYSTEM, "down", "up"),
    ]
    bars = timelines(cut + rows, {"a/x": State.FLAPPING, "b/y": State.UP}, now)
    assert bars["b/y"].runs == (
        (State.UP, 0, 10),
        (State.UNKNOWN, 10, 2),
        (State.UP, 12, SLOTS - 12),
    )
    assert bars["a/x"].runs[1] == (State.UNKNOWN, 10, 2)
    # Still cut off now: from the cut to the end.
    bars = timelines(cut[:1], {"b/y": State.DOWN}, now, gateway_cut=True)
    assert bars["b/y"].runs == ((State.DOWN, 0, SLOTS),)  # down is worse than unknown
    bars = timelines(cut[:1], {"b/y": State.UP}, now, gateway_cut=True)
    assert bars["b/y"].runs == ((State.UP, 0, 10), (State.UNKNOWN, 10, SLOTS - 10))
    # A system first seen in the window was pending before its first verdict; in the slot
    # where the verdict came, the verdict is what counts.
    bars = timelines([(now - 300, "n", "s", "pending", "up")], {"n/s": State.UP}, now)
    assert bars["n/s"].runs == ((State.PENDING, 0, 47), (State.UP, 47, 1))
    assert max(SEVERITY, key=SEVERITY.__getitem__) is State.DOWN
    # Every state has a place: degraded and maintenance show over up, under any failure.
    assert set(SEVERITY) == set(State)
    rows = [
        (start + 20 * slot + 60, "d", "x", "up", "maintenance"),
        (start + 20 * slot + 120, "d", "x", "maintenance", "degraded"),
        (start + 30 * slot + 60, "d", "x", "degraded", "down"),
        (start + 30 * slot + 120, "d", "x", "down", "maintenance"),
    ]
    assert timelines(rows, {"d/x": State.MAINTENANCE}, now)["d/x"].runs == (
        (State.UP, 0, 20),
        (State.DEGRADED, 20, 10),
        (State.DOWN, 30, 1),
        (State.MAINTENANCE, 31, SLOTS - 31),
    )


def test_both_languages_say_everything() -> None:
    assert WORDS["vi"].keys() == WORDS["en"].keys()
    for table in (STATE_NAMES, AGENCY_KINDS, SYSTEM_KINDS):
        assert table["vi"].keys() == table["en"].keys()
    assert set(STATE_NAMES["vi"]) == set(State)


# ----- 10,000 checks ----------------------------------------------------------------------------


async def test_overview_with_10000_checks_is_measured(tmp_path: Path) -> None:
    """3,334 systems x 3 checks; 510 state changes in the last 24 hours. The timing is
    recorded (printed and in .artifacts/pages/overview-timing.txt), not asserted: the
    machine is shared. The content is asserted."""
    agencies = 63 + 30  # provinces and ministries, about 36 systems each
    per_agency = -(-3334 // agencies)
    data: dict[str, Any] = {
        "state_db": str(tmp_path / "state.db"),
        "agencies": [
            {
                "id": f"agency-{a:02d}",
                "kind": "province" if a < 63 else "ministry",
                "name_vi": f"Đơn vị {a}",
                "name_en": f"Agency {a}",
                "code": f"{a:02d}",
                "systems": [
                    {
                        "id": f"s-{s:03d}",
                        "kind": "other",
                        "name": f"Hệ thống {a}.{s}",
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 9},
                            {"id": "http", "kind": "http", "url": "http://127.0.0.1:9/"},
                            {"id": "tls", "kind": "tls", "host": "127.0.0.1", "port": 9},
                        ],
                    }
                    for s in range(per_agency)
                    if a * per_agency + s < 3334
                ],
            }
            for a in range(agencies)
        ],
    }
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    store = await Store.open(config.state_db)
    try:
        engine = Engine(config, store, ProbeEnv())
        await engine.start()
        assert len(engine.registry.checks) == 10_002
        now = time.time()
        events = []
        keys = list(engine.state.systems)
        for i, key in enumerate(keys):
            status = engine.state.systems[key]
            status.announced, status.since = State.UP, now - 3 * 86400
            if i % 100 == 0:  # 34 systems down; each went down and up a few times today
                status.announced, status.since = State.DOWN, now - 600
                agency, _, system = key.partition("/")
                for k in range(14):
                    t = now - 80_000 + k * 5000 + i
                    old, new = (State.UP, State.DOWN) if k % 2 == 0 else (State.DOWN, State.UP)
                    events.append(Event(t, agency, system, old, new, "test", "gw"))
                events.append(Event(now - 600, agency, system, State.UP, State.DOWN, "t", "gw"))
        await store.record(events)
        assert len(events) == 510

        authenticator = Authenticator(store)
        _, token = await accounts.create(
            store,
            actor=None,
            account_id="vpcp",
            name="VPCP",
            role="national-admin",
            agency=None,
            agencies={a["id"] for a in data["agencies"]},
            now=now,
        )
        app = web.Application(middlewares=[authenticator.middleware])
        app.add_routes(page_routes(PagesContext(engine, store, None, authenticator)))
        timings: dict[str, list[float]] = {"gzip": [], "identity": []}
        sizes: dict[str, int] = {}
        async with TestClient(TestServer(app)) as client:
            for encoding in ("identity", "gzip") * 6:
                started = time.perf_counter()
                response = await client.get(
                    "/",
                    headers={"Authorization": f"Bearer {token}", "Accept-Encoding": encoding},
                    auto_decompress=False,
                )
                body = await response.read()
                timings[encoding].append(time.perf_counter() - started)
                sizes[encoding] = len(body)
                assert response.status == 200
            response = await client.get("/", headers={"Authorization": f"Bearer {token}"})
            page = await response.text()
        shown = rows_of(page)
        assert len(shown) == 3334
        assert sum(1 for s in shown.values() if s == "down") == 34
        assert page.count('<span class="bar"') == 3334
    finally:
        await store.close()
    report = (
        "overview, 3,334 systems / 10,002 checks / 510 state changes in 24 h, national-admin:\n"
        + "".join(
            f"  {enc}: median {statistics.median(t[1:]) * 1000:.0f} ms, "
            f"min {min(t[1:]) * 1000:.0f} ms, body {sizes[enc] / 1024:.0f} KiB\n"
            for enc, t in timings.items()
        )
        + "  (GET / through aiohttp on loopback: query, render, compression, transfer; "
        "first request of each kind dropped)\n"
    )
    print(report)
    (artifacts() / "overview-timing.txt").write_text(report, encoding="utf-8")


# ----- in a real browser ------------------------------------------------------------------------


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def browser_args(binary: str, profile: Path) -> list[str]:
    return [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--lang=vi",
        f"--user-data-dir={profile}",
    ]


def browser_env(args: list[str]) -> dict[str, str]:
    """Chromium keeps its files in the test's folder, not in the user's home."""
    profile = next(a.split("=", 1)[1] for a in args if a.startswith("--user-data-dir="))
    return {**os.environ, "HOME": profile}


async def run_chromium(args: list[str], timeout: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=browser_env(args),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"chromium did not finish within {timeout}s: {args}") from None
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def usable_chromium(tmp_path: Path) -> list[str]:
    """Chromium's arguments, or skip when this machine cannot run it at all."""
    profile = tmp_path / "profile"
    profile.mkdir()
    base = browser_args(chromium(), profile)
    code, out, err = await run_chromium([*base, "--dump-dom", "data:text/html,<p>ok</p>"])
    if code != 0 or "<p>ok</p>" not in out:
        pytest.skip(f"chromium cannot run here (exit {code}): {err.strip()[-300:]}")
    return base


def keep(png: Path) -> Path:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    kept = artifacts() / png.name
    shutil.copyfile(png, kept)
    return kept


async def test_chromium_renders_the_status_and_login_pages(site: Site, tmp_path: Path) -> None:
    base = await usable_chromium(tmp_path)
    code, dom, err = await run_chromium([*base, "--dump-dom", site.base + "/status"])
    assert code == 0, err
    assert "Máy chủ bảo mật BTC" in dom and "Cổng dịch vụ công Hà Nội" in dom
    assert "Một cửa điện tử BTC" not in dom and "refused" not in dom
    assert dom.count('data-state="up"') == 2
    for name, path in [("status.png", "/status"), ("login-en.png", "/login?lang=en")]:
        shot = tmp_path / name
        code, _, err = await run_chromium(
            [*base, f"--screenshot={shot}", "--window-size=1280,900", site.base + path]
        )
        assert code == 0 and shot.exists(), err
        keep(shot)


class DevTools:
    """Just enough of the Chrome DevTools Protocol to drive one tab of a headless Chromium:
    follow links, submit forms, read the DOM, take screenshots."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session = ""
        self.ids = 0
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self.waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("method") == "Page.loadEventFired":
                self.loaded.set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.ids] = future
        message: dict[str, Any] = {"id": self.ids, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send_str(json.dumps(message))
        data = await asyncio.wait_for(future, 30)
        assert "error" not in data, (method, data)
        result: dict[str, Any] = data["result"]
        return result

    async def open_tab(self) -> None:
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]  # from now on every call goes to the tab
        await self.call("Page.enable")
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def loading(self, action: Awaitable[Any]) -> None:
        """Run ``action`` and wait for the page it leads to."""
        self.loaded.clear()
        await action
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def go(self, url: str) -> None:
        await self.loading(self.call("Page.navigate", url=url))

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return keep(path)


@contextlib.asynccontextmanager
async def devtools(base: list[str]) -> AsyncIterator[DevTools]:
    """A headless Chromium with one tab, driven over its DevTools socket."""
    proc = await asyncio.create_subprocess_exec(
        *base,
        "--remote-debugging-port=0",
        "--window-size=1280,900",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=browser_env(base),
    )
    assert proc.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        url = ""
        async with asyncio.timeout(30):
            while not url:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("chromium exited before its DevTools listened")
                if "DevTools listening on " in line:
                    url = line.split("DevTools listening on ", 1)[1].strip()
        drain = asyncio.create_task(proc.stderr.read())  # keep its pipe from filling up
        async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
            tab = DevTools(ws)
            try:
                await tab.open_tab()
                yield tab
            finally:
                tab.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tab.reader
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


async def test_chromium_logs_in_reads_the_overview_and_marks_a_message_read(
    site: Site, tmp_path: Path
) -> None:
    base = await usable_chromium(tmp_path)
    async with devtools(base) as page:
        await page.go(site.base + "/inbox")  # private: the browser lands on the login form
        assert await page.js("location.pathname") == "/login"
        assert await page.js("document.querySelectorAll('header form').length") == 0
        token = json.dumps(site.tokens["btc"])
        await page.loading(
            page.js(f"document.getElementById('token').value = {token}; document.forms[0].submit()")
        )
        # Back where it wanted to go, logged in by the HttpOnly cookie the form set.
        assert await page.js("location.pathname") == "/inbox"
        assert await page.js("document.cookie") == ""  # HttpOnly: invisible to scripts
        unread = "document.querySelectorAll('article.msg.unread').length"
        assert await page.js(unread) == 2
        await page.screenshot(tmp_path / "inbox.png")
        await page.loading(page.js("document.querySelector('article.msg.unread form').submit()"))
        assert await page.js("location.pathname") == "/inbox"
        assert await page.js(unread) == 1
        assert await site.read_at(site.messages["btc-new"]) is not None

        await page.go(site.base + "/")
        dom = await page.js("document.documentElement.outerHTML")
        assert set(rows_of(dom)) == {"bo-tai-chinh/secure-server", "bo-tai-chinh/one-stop"}
        assert "Mất kết nối" in dom
        # Bars are drawn: the down system's last segment has a width on screen.
        width = await page.js(
            "document.querySelector('tr[data-system=\"bo-tai-chinh/one-stop\"] .bar i:last-child')"
            ".getBoundingClientRect().width"
        )
        assert width > 0
        await page.screenshot(tmp_path / "overview.png")

        await page.go(site.base + "/system/bo-tai-chinh/one-stop?lang=en")
        assert "Recent results" in await page.js("document.body.innerText")
        await page.screenshot(tmp_path / "system-en.png")


async def test_the_anonymous_status_page_is_rendered_at_most_every_few_seconds(site: Site) -> None:
    """A flood of anonymous /status requests must not become probe lag: within STATUS_CACHE
    the same page (same "updated at" second) is served; a logged-in viewer gets a fresh one."""
    import re

    def updated(page: str) -> str:
        found = re.search(r'<p class="muted">([^<]*\d\d:\d\d:\d\d[^<]*)</p>', page)
        assert found is not None
        return found.group(1)

    _, first = await site.get("/status")
    await asyncio.sleep(1.2)
    _, again = await site.get("/status")
    assert updated(again) == updated(first)  # from memory
    _, fresh = await site.get("/status", who=next(iter(site.tokens)))
    assert updated(fresh) != updated(first)  # logged in: rendered now
    _, english = await site.get("/status?lang=en")
    assert "Public status" in english  # cached per language
