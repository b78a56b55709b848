"""The overview puts problems first (issue 11, item 5), at the size of the real portal: 54
agencies and 170 systems, generated. The states are the daemon's own objects — the engine's
:class:`~monitor.state.SystemStatus` of each system, set as a restart restores them, with the
state changes in the store — and the outage incidents come from the real incident desk.

Screenshots (a down, a degraded and a maintenance system, in Vietnamese and in English) and the
page's size and time land in ``.artifacts/pages/`` at the repository root (git-ignored;
``NPSP_ARTIFACTS`` overrides the folder).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor import accounts
from monitor.alerting.notices import Audience, Notice
from monitor.config import load_config
from monitor.engine import Engine
from monitor.rules.desk import RulesContext
from monitor.rules.incidents import IncidentDesk, acknowledge, outage_id
from monitor.state import GATEWAY_AGENCY, GATEWAY_SYSTEM, Event, State
from monitor.store import Store
from monitor.web.auth import Authenticator
from monitor.web.pages import PagesContext, page_routes
from monitor.web.templates.render import when
from monitor.web.templates.words import STATE_NAMES, WORDS
from monitor.workdays import WorkCalendar
from probes import ProbeEnv

from .test_pages import artifacts, devtools, problems_of, rows_of, usable_chromium

AGENCIES = 54
SYSTEMS = 170
NOW = float(int(time.time()))  # the pages' clock: every duration below is exact

# agency/system → (state, since, stored reason); everything else is up for three days.
TROUBLE: dict[str, tuple[State, float, str]] = {
    "dv-00/s-0": (State.DOWN, NOW - 7500, "check tcp: connect: refused"),
    "dv-00/s-1": (State.UNREACHABLE, NOW - 9000, "dv-00/s-0 is down; failing"),
    "dv-10/s-2": (State.DOWN, NOW - 60, "check http: HTTP 503 (expected 2xx)"),
    "dv-20/s-0": (State.FLAPPING, NOW - 30_000, "6 state changes within 1h"),
    "dv-30/s-1": (State.DEGRADED, NOW - 1920, "check tls: certificate expires in 2 days"),
    "dv-40/s-0": (State.MAINTENANCE, NOW - 3600, "in an announced maintenance window"),
}
#: The list on top: the most severe first (down, unreachable, flapping, degraded), then the
#: oldest; maintenance apart and last.
ORDER = [
    ("dv-00/s-0", "down"),
    ("dv-10/s-2", "down"),
    ("dv-00/s-1", "unreachable"),
    ("dv-20/s-0", "flapping"),
    ("dv-30/s-1", "degraded"),
    ("dv-40/s-0", "maintenance"),
]
ACKED_BY = "Nguyễn Văn A"
PUBLIC = {"dv-30/s-1", "dv-40/s-0", "dv-12/s-0"}  # degraded, maintenance, up


def registry() -> list[dict[str, Any]]:
    """54 agencies (34 provinces, 20 ministries), 170 systems: the first eight have four."""
    per = [4 if a < SYSTEMS - 3 * AGENCIES else 3 for a in range(AGENCIES)]
    assert sum(per) == SYSTEMS
    kinds = ["secure-server", "one-stop", "public-service-portal", "integration"]
    return [
        {
            "id": f"dv-{a:02d}",
            "kind": "province" if a < 34 else "ministry",
            "name_vi": f"Đơn vị số {a}",
            "name_en": f"Agency no. {a}",
            "code": f"{a:02d}",
            "systems": [
                {
                    "id": f"s-{s}",
                    "kind": kinds[s],
                    "name": f"Hệ thống {a}.{s}",
                    "name_en": f"System {a}.{s}",
                    "checks": [{"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 9}],
                    "public": f"dv-{a:02d}/s-{s}" in PUBLIC,
                }
                for s in range(per[a])
            ],
        }
        for a in range(AGENCIES)
    ]


class Told:
    """Where the incident desk's notices go (SLA reminders; none are due here)."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int:
        self.notices.append(notice)
        return 0


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: Engine
    store: Store
    tokens: dict[str, str]

    async def get(self, path: str, who: str, **kw: Any) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        response = await self.client.get(path, headers=headers, allow_redirects=False, **kw)
        return response.status, await response.text()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.client.server.port}"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    data = {"state_db": str(tmp_path / "state.db"), "agencies": registry()}
    path = tmp_path / "portal.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    store = await Store.open(config.state_db)
    try:
        # What the daemon wrote before: a state change into each state (for the bars and the
        # restore), then the engine starts and holds them as its systems' statuses.
        events = [
            Event(since, key.split("/")[0], key.split("/")[1], State.UP, state, reason, "gw")
            for key, (state, since, reason) in TROUBLE.items()
        ]
        await store.record(events)
        engine = Engine(config, store, ProbeEnv())
        await engine.start()
        assert len(engine.state.systems) == SYSTEMS
        for key, status in engine.state.systems.items():
            state, since, reason = TROUBLE.get(key, (State.UP, NOW - 3 * 86400, "all pass"))
            status.announced, status.since, status.reason = state, since, reason

        # The outage incidents, as the desk opens them from the engine's events; one is
        # acknowledged as the API and the command line do it.
        desk = IncidentDesk(
            RulesContext(
                store=store,
                calendar=WorkCalendar(config.calendar),
                notices=Told(),
                registry=lambda: engine.registry,
                clock=lambda: NOW,
            )
        )
        await desk.refresh()
        desk.on_events(events)
        await desk.flush()
        await acknowledge(store, outage_id("dv-00", "s-0", NOW - 7500), ACKED_BY, NOW - 600)

        tokens: dict[str, str] = {}
        for account_id, role, agency in [
            ("vpcp", "national-admin", None),
            ("a00", "agency-admin", "dv-00"),
            ("a12", "viewer", "dv-12"),
        ]:
            _, tokens[account_id] = await accounts.create(
                store,
                actor=None,
                account_id=account_id,
                name=f"Tài khoản {account_id}",
                role=role,
                agency=agency,
                agencies={a["id"] for a in data["agencies"]},
                now=NOW,
            )
        authenticator = Authenticator(store)
        app = web.Application(middlewares=[authenticator.middleware])
        ctx = PagesContext(engine, store, None, authenticator, clock=lambda: NOW)
        app.add_routes(page_routes(ctx))
        async with TestClient(TestServer(app)) as client:
            yield Site(client, engine, store, tokens)
    finally:
        await store.close()


def problem(page: str, key: str) -> str:
    """One row of the list on top."""
    found = re.search(rf'<tr class="problem" data-problem="{re.escape(key)}"[^>]*>(.*?)</tr>', page)
    assert found is not None, f"{key} is not on the list"
    return found.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# ----- the list on top --------------------------------------------------------------------------


async def test_problems_come_first_most_severe_then_oldest(site: Site) -> None:
    status, page = await site.get("/", "vpcp")
    assert status == 200
    assert problems_of(page) == ORDER
    # Above every agency's table, maintenance in its own section after the problems.
    assert page.index('id="problems"') < page.index('id="maintenance"')
    assert page.index('id="maintenance"') < page.index("<tr data-system=")
    problems = page.split('id="problems"')[1].split("</section>")[0]
    assert "Đang gặp sự cố (5)" in problems
    assert 'data-state="maintenance"' not in problems
    maintenance = page.split('id="maintenance"')[1].split("</section>")[0]
    assert "Đang bảo trì (1)" in maintenance
    assert problems_of(maintenance) == [("dv-40/s-0", "maintenance")]


async def test_each_problem_says_how_long_why_who_and_which_incident(site: Site) -> None:
    _, page = await site.get("/", "vpcp")
    down = problem(page, "dv-00/s-0")
    assert text(down).startswith("Đơn vị số 0 Hệ thống 0.0 Mất kết nối 2 giờ 5 phút")
    # The exact time on hover.
    assert f'title="{when(NOW - 7500, seconds=True)}">2 giờ 5 phút</time>' in down
    assert "check tcp: connect: refused" in down
    assert ACKED_BY in down
    assert f'title="tiếp nhận lúc {when(NOW - 600)}"' in down
    incident = outage_id("dv-00", "s-0", NOW - 7500)
    assert f'<a href="/system/dv-00/s-0">{incident}</a>' in down
    assert '<a href="/agency/dv-00">Đơn vị số 0</a>' in down

    newer = problem(page, "dv-10/s-2")
    assert ">1 phút</time>" in newer
    assert "chưa ai tiếp nhận" in newer  # an incident nobody took yet
    assert outage_id("dv-10", "s-2", NOW - 60) in newer

    degraded = problem(page, "dv-30/s-1")
    assert STATE_NAMES["vi"][State.DEGRADED] in degraded and ">32 phút</time>" in degraded
    assert "certificate expires in 2 days" in degraded
    assert degraded.endswith("<td>—</td><td>—</td>")  # no incident: nobody to acknowledge
    maintenance = problem(page, "dv-40/s-0")
    assert STATE_NAMES["vi"][State.MAINTENANCE] in maintenance
    assert ">1 giờ</time>" in maintenance
    assert ">8 giờ 20 phút</time>" in problem(page, "dv-20/s-0")


async def test_the_list_speaks_english(site: Site) -> None:
    _, page = await site.get("/?lang=en", "vpcp")
    assert problems_of(page) == ORDER
    assert "Problems now (5)" in page and "In maintenance (1)" in page
    assert ">2 h 5 min</time>" in problem(page, "dv-00/s-0")
    assert ">32 min</time>" in problem(page, "dv-30/s-1")
    assert ">1 min</time>" in problem(page, "dv-10/s-2")
    assert ">8 h 20 min</time>" in problem(page, "dv-20/s-0")
    assert ">Degraded<" in page and ">Maintenance<" in page and ">Down<" in page
    assert "nobody yet" in problem(page, "dv-10/s-2")
    assert 'href="/system/dv-00/s-0?lang=en"' in problem(page, "dv-00/s-0")
    assert "49 agencies: every system up" in page
    for word in ("phút", "giờ", "Đang gặp sự cố", "chưa ai tiếp nhận"):
        assert word not in page, word


# ----- the agencies below -----------------------------------------------------------------------


async def test_agencies_with_problems_open_and_the_healthy_ones_collapsed(site: Site) -> None:
    _, page = await site.get("/", "vpcp")
    troubled = {key.split("/")[0] for key in TROUBLE}
    assert len(troubled) == 5
    collapsed = re.findall(r'<details class="agency" id="agency-([^"]+)">', page)
    assert len(collapsed) == AGENCIES - len(troubled) == 49
    assert not troubled & set(collapsed)
    for agency in troubled:
        assert f'<h2 id="agency-{agency}">' in page
    # One line each: its name, and the count of its systems by state, e.g. "Hoạt động: 3".
    line = page.split('<details class="agency" id="agency-dv-12">')[1].split("</summary>")[0]
    assert "Đơn vị số 12" in line and f"{STATE_NAMES['vi'][State.UP]}: 3" in line
    assert "49 đơn vị: mọi hệ thống hoạt động" in page
    # The collapsed tables are still there (they open without a script): every system listed.
    assert len(rows_of(page)) == SYSTEMS
    # The agencies with a problem come before the healthy ones.
    assert page.index('<h2 id="agency-dv-40">') < page.index('id="quiet"')

    # The filter still works: only the systems that are not up, nothing collapsed.
    _, page = await site.get("/?problems=1", "vpcp")
    assert rows_of(page) == dict(ORDER)
    assert problems_of(page) == ORDER
    assert "<details" not in page


async def test_an_agency_account_sees_only_its_agency(site: Site) -> None:
    _, page = await site.get("/", "a00")
    assert problems_of(page) == [("dv-00/s-0", "down"), ("dv-00/s-1", "unreachable")]
    assert set(rows_of(page)) == {f"dv-00/s-{s}" for s in range(4)}
    assert "Đơn vị số 10" not in page and "dv-30" not in page
    assert 'id="maintenance"' not in page
    assert ACKED_BY in page
    for path in ("/agency/dv-10", "/system/dv-30/s-1"):
        assert (await site.get(path, "a00"))[0] == 403, path

    # A healthy agency: nothing wrong, its one line collapsed.
    _, page = await site.get("/", "a12")
    assert problems_of(page) == []
    assert WORDS["vi"]["no_problems"] in page
    assert '<details class="agency" id="agency-dv-12">' in page
    assert "1 đơn vị: mọi hệ thống hoạt động" in page
    assert set(rows_of(page)) == {f"dv-12/s-{s}" for s in range(3)}
    assert ACKED_BY not in page and "Đơn vị số 0<" not in page


async def test_the_gateway_banner_stays_on_top(site: Site) -> None:
    state = site.engine.state
    cut = Event(NOW - 120, GATEWAY_AGENCY, GATEWAY_SYSTEM, State.UP, State.DOWN, "cut", "gw")
    await site.store.record([cut])
    state.gateway_cut, state.gateway_since = True, cut.time
    try:
        _, page = await site.get("/", "vpcp")
    finally:
        state.gateway_cut = False
    banner = page.index("Cổng kết nối của NPSP đang mất đường truyền")
    assert banner < page.index('id="problems"')
    # Nobody's state is known meanwhile: no list, and no claim that nothing is wrong.
    assert problems_of(page) == []
    assert WORDS["vi"]["no_problems"] not in page


async def test_every_page_shows_degraded_and_maintenance(site: Site) -> None:
    """The agency, system and public pages too (a degraded system used to fail them all)."""
    status, page = await site.get("/agency/dv-30", "vpcp")
    assert status == 200 and rows_of(page)["dv-30/s-1"] == "degraded"
    assert 'class="st st-degraded">Suy giảm<' in page
    row = page.split('data-system="dv-30/s-1"')[1].split("</tr>", maxsplit=1)[0]
    assert re.findall(r'class="s-([a-z]+) w\d+"', row) == ["up", "degraded"]  # its bar
    status, page = await site.get("/system/dv-40/s-0?lang=en", "vpcp")
    assert status == 200 and 'class="st st-maintenance">Maintenance<' in page
    response = await site.client.get("/status")
    page = await response.text()
    assert response.status == 200
    assert set(re.findall(r'<tr data-state="([a-z]+)">', page)) == {"up", "degraded", "maintenance"}
    assert "Suy giảm" in page and "Đang bảo trì" in page
    assert "certificate" not in page  # never a reason on the public page


# ----- size and time ----------------------------------------------------------------------------


async def test_the_overview_at_54_agencies_is_measured(site: Site) -> None:
    """The page's size and time with 54 agencies and 170 systems, recorded (printed and in
    .artifacts/pages/overview-54-timing.txt), not asserted: the machine is shared."""
    timings: dict[str, list[float]] = {"gzip": [], "identity": []}
    sizes: dict[str, int] = {}
    for encoding in ("identity", "gzip") * 11:
        started = time.perf_counter()
        response = await site.client.get(
            "/",
            headers={
                "Authorization": f"Bearer {site.tokens['vpcp']}",
                "Accept-Encoding": encoding,
            },
            auto_decompress=False,
        )
        body = await response.read()
        timings[encoding].append(time.perf_counter() - started)
        sizes[encoding] = len(body)
        assert response.status == 200
    report = (
        f"overview, {AGENCIES} agencies / {SYSTEMS} systems / {len(TROUBLE)} not up, "
        "national-admin:\n"
        + "".join(
            f"  {enc}: median {statistics.median(t[1:]) * 1000:.1f} ms, "
            f"min {min(t[1:]) * 1000:.1f} ms, body {sizes[enc] / 1024:.0f} KiB\n"
            for enc, t in timings.items()
        )
        + "  (GET / through aiohttp on loopback: query, render, compression, transfer; "
        "first request of each kind dropped)\n"
    )
    print(report)
    (artifacts() / "overview-54-timing.txt").write_text(report, encoding="utf-8")


# ----- in a real browser ------------------------------------------------------------------------


async def test_chromium_shows_a_down_a_degraded_and_a_maintenance_system_first(
    site: Site, tmp_path: Path
) -> None:
    base = await usable_chromium(tmp_path)
    async with devtools(base) as page:
        await page.go(site.base + "/login")
        token = json.dumps(site.tokens["vpcp"])
        await page.loading(
            page.js(f"document.getElementById('token').value = {token}; document.forms[0].submit()")
        )
        assert await page.js("location.pathname") == "/"
        shown = await page.js("document.body.innerText")
        for words in (
            "Đang gặp sự cố (5)",
            "Mất kết nối",
            "2 giờ 5 phút",
            ACKED_BY,
            "Suy giảm",
            "32 phút",
            "Đang bảo trì (1)",
            "Đang bảo trì",
            "49 đơn vị: mọi hệ thống hoạt động",
        ):
            assert words in shown, words
        # What is wrong is answered without scrolling: the list and the maintenance are
        # inside the first 900 pixels of a 1280x900 window.
        bottom = await page.js(
            "document.getElementById('maintenance').getBoundingClientRect().bottom"
        )
        assert 0 < bottom <= 900
        # Each state looks different, and says so in words: the rows' edges and badges.
        edges = await page.js(
            "[...document.querySelectorAll('tr.problem td:first-child')]"
            ".map(td => getComputedStyle(td).borderLeftColor)"
        )
        badges = await page.js(
            "[...document.querySelectorAll('tr.problem .st')]"
            ".map(b => [b.innerText, getComputedStyle(b).backgroundColor])"
        )
        assert len(edges) == len(ORDER)
        by_state = dict(zip([s for _, s in ORDER], edges, strict=True))
        assert len({by_state["down"], by_state["degraded"], by_state["maintenance"]}) == 3
        colours = {text: colour for text, colour in badges}
        assert len({colours["Mất kết nối"], colours["Suy giảm"], colours["Đang bảo trì"]}) == 3
        # A healthy agency is one closed line: its table is not on screen until opened.
        shown_table = "document.querySelector('#agency-dv-12 table').checkVisibility()"
        assert await page.js(shown_table) is False
        await page.screenshot(tmp_path / "overview-problems.png")
        await page.js("document.getElementById('agency-dv-12').open = true")
        assert await page.js(shown_table) is True
        await page.js("document.getElementById('quiet').scrollIntoView()")
        await page.screenshot(tmp_path / "overview-collapsed.png")

        await page.go(site.base + "/?lang=en")
        shown = await page.js("document.body.innerText")
        for words in ("Problems now (5)", "2 h 5 min", "Degraded", "32 min", "In maintenance"):
            assert words in shown, words
        await page.screenshot(tmp_path / "overview-problems-en.png")
