"""Every message links to the page that answers it, in the reader's language, and that page opens
after logging in; the system page's checks table says of each check what its last result says.

The pipeline part runs on an injected clock with a real SQLite outbox (as test_alert_pipeline);
the pages part runs a real engine probing loopback servers, behind the real login.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor import accounts
from monitor.alerting.notices import Notice
from monitor.config import load_config
from monitor.config.alerting import AlertingSettings
from monitor.engine import Engine
from monitor.state import Event, State
from monitor.store import Store
from monitor.web.auth import Authenticator
from monitor.web.pages import PagesContext, page_routes
from notifiers.textfold import fit_segments, fold_vietnamese, sms_segments
from npsp_common.types import Why
from probes import ProbeEnv
from probes.reasons import why
from tests.conftest import TcpTarget, eventually
from tests.probe_servers import delayed, http_server, response
from tests.test_alert_pipeline import PHONE_HA_NOI, World, agency, make_config

pytestmark = pytest.mark.timeout(60)

WEB = "https://giamsat.npsp.dvc.example"


@dataclass(frozen=True, slots=True)
class CodedEvent(Event):
    """A state change with its reason as a code, as the engine announces it (``Event.why``)."""

    why: Why | None = None


def refused(check: str = "tcp") -> Why:
    failing = Why("check", {"id": check, "why": why("connect", error=why("os.refused"))})
    return Why("system.checks", {"checks": (failing,)})


def down(w: World, key: str, reason: Why | None) -> None:
    agency_id, system = key.split("/")
    text = "check tcp: connect: refused"
    w.pipeline.on_events(
        [CodedEvent(w.now, agency_id, system, State.UP, State.DOWN, text, "gw", why=reason)]
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


# ----- links and reasons in messages ------------------------------------------------------------


async def test_email_and_inbox_link_to_the_system_page_with_the_reason_in_vietnamese(
    store: Store,
) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])], web_url=WEB))
    down(w, "ha-noi/secure-server", refused())
    await w.advance(31)
    email = w.sent.to("kt@ha-noi.dvc.example")
    inbox = w.sent.to("kt.ha-noi")
    assert len(email) == 1 and len(inbox) == 1
    for message in (*email, *inbox):
        assert f"Xem trên trang giám sát: {WEB}/system/ha-noi/secure-server\n" in message.text
        assert "kiểm tra tcp: không kết nối được: bị từ chối" in message.text
        assert "connect: refused" not in message.text  # no English inside a Vietnamese message
        assert "Trang trạng thái: https://npsp.dvc.example/status" in message.text  # kept


async def test_an_english_reader_gets_english_and_the_english_page(store: Store) -> None:
    config = make_config([agency("ha-noi", "Hà Nội", ["secure-server"])], web_url=WEB)
    ops = config.alerting.operations[0].model_copy(update={"language": "en"})
    config = config.model_copy(
        update={"alerting": config.alerting.model_copy(update={"operations": [ops]})}
    )
    w = World(store, config)
    down(w, "ha-noi/secure-server", refused())
    await w.advance(31)
    (message,) = w.sent.to("ops@vpcp.dvc.example")
    assert f"Open in the monitor: {WEB}/system/ha-noi/secure-server?lang=en\n" in message.text
    assert "check tcp: connect: refused" in message.text
    assert "không" not in message.text


async def test_sms_says_what_since_when_the_link_and_why(store: Store) -> None:
    w = World(
        store,
        make_config([agency("ha-noi", "Hà Nội", ["secure-server"], sms=True)], web_url=WEB),
    )
    down(w, "ha-noi/secure-server", refused())
    await w.advance(31)
    (sms,) = w.sent.to(PHONE_HA_NOI)
    link = f"{WEB}/system/ha-noi/secure-server"
    # The clock of World starts on Monday 2026-11-30 07:53 in Hanoi.
    assert sms.text == (
        f"NPSP: ha-noi/secure-server MẤT KẾT NỐI từ 07:53 30/11. {link} HT 1900.1096. "
        "Lý do: kiểm tra tcp: không kết nối được: bị từ chối"
    )
    # As the SMS channel sends it (folded to GSM-7), it fits the default two segments; and the
    # reason comes last, so even a one-segment cut keeps the link and the hotline.
    folded = fold_vietnamese(sms.text)
    assert sms_segments(folded) <= 2
    assert "Ly do: kiem tra tcp: khong ket noi duoc: bi tu choi" in folded
    assert f"{link} HT 1900.1096" in fit_segments(folded, 1)


async def test_a_long_reason_is_cut_in_the_sms_not_the_link(store: Store) -> None:
    w = World(
        store,
        make_config([agency("ha-noi", "Hà Nội", ["secure-server"], sms=True)], web_url=WEB),
    )
    long = Why(
        "system.checks",
        {
            "checks": tuple(
                Why("check", {"id": f"c{i}", "why": why("os.refused")}) for i in range(30)
            )
        },
    )
    down(w, "ha-noi/secure-server", long)
    await w.advance(31)
    (sms,) = w.sent.to(PHONE_HA_NOI)
    assert sms.text.endswith("…")
    assert sms_segments(fold_vietnamese(sms.text)) <= 2
    assert f"{WEB}/system/ha-noi/secure-server HT 1900.1096" in sms.text


async def test_an_sms_of_systems_down_and_back_together_keeps_its_link(store: Store) -> None:
    """Three systems with long names come back as three others go down: the SMS counts them
    rather than listing six, so the link and the hotline survive the two-segment cut."""
    old = [f"cong-dich-vu-cong-truc-tuyen-{i}" for i in range(3)]
    new = [f"he-thong-mot-cua-dien-tu-cap-xa-{i}" for i in range(3)]
    w = World(
        store,
        make_config([agency("ha-noi", "Hà Nội", [*old, *new], sms=True)], web_url=WEB),
    )
    for system in old:
        down(w, f"ha-noi/{system}", refused())
    await w.advance(31)
    for system in new:
        down(w, f"ha-noi/{system}", refused())
    for system in old:
        w.pipeline.on_events(
            [Event(w.now, "ha-noi", system, State.DOWN, State.UP, "all checks pass", "gw")]
        )
    await w.advance(600)
    both = [m.text for m in w.sent.to(PHONE_HA_NOI) if "KẾT NỐI LẠI" in m.text]
    assert both, [m.text for m in w.sent.to(PHONE_HA_NOI)]
    sms = both[0]
    assert "3 hệ thống" in sms and "MẤT KẾT NỐI" in sms
    sent = fit_segments(fold_vietnamese(sms), 2)  # as the SMS channel cuts it
    assert f"{WEB}/agency/ha-noi HT 1900.1096" in sent


async def test_a_digest_links_to_the_agency_or_the_overview(store: Store) -> None:
    w = World(
        store,
        make_config(
            [
                agency("ha-noi", "Hà Nội", ["secure-server", "a"]),
                agency("hue", "Huế", ["secure-server"]),
            ],
            web_url=WEB + "/",
        ),
    )
    for key in ("ha-noi/secure-server", "ha-noi/a", "hue/secure-server"):
        down(w, key, refused())
    await w.advance(31)
    (agency_digest,) = w.sent.to("kt@ha-noi.dvc.example")
    assert f"Xem trên trang giám sát: {WEB}/agency/ha-noi\n" in agency_digest.text
    (everything,) = w.sent.to("ops@vpcp.dvc.example")  # several agencies: the overview
    assert f"Xem trên trang giám sát: {WEB}/\n" in everything.text


async def test_a_reason_without_a_code_is_shown_as_stored(store: Store) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])], web_url=WEB))
    w.event("ha-noi/secure-server", State.UP, State.DOWN, "an older row's reason")
    await w.advance(31)
    (email,) = w.sent.to("kt@ha-noi.dvc.example")
    assert "— an older row's reason" in email.text


def test_the_pages_address_defaults_to_the_site_of_the_status_page() -> None:
    assert AlertingSettings().web_base == "https://npsp.dvc.example"
    prefixed = AlertingSettings(status_page_url="https://dvc.example/giamsat/status")
    assert prefixed.web_base == "https://dvc.example/giamsat"
    assert AlertingSettings(web_url="http://10.0.0.5:9477/").web_base == "http://10.0.0.5:9477"


# ----- the link opens after logging in; the checks table -------------------------------------


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: Engine
    token: str


@pytest.fixture
async def site(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[Site]:
    up = await tcp_target()
    broken, _ = http_server({"/": response(503)})
    slow, _ = http_server({"/": delayed(0.05, response(200))})
    async with broken, slow:
        config_path = tmp_path / "c.yaml"
        checks = [
            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": up.port},
            {"id": "http", "kind": "http", "url": f"http://127.0.0.1:{broken.port}/"},
            {
                "id": "flaky",
                "kind": "http",
                "url": f"http://127.0.0.1:{broken.port}/",
                "failure_threshold": 100,
            },
            {
                "id": "slow",
                "kind": "http",
                "url": f"http://127.0.0.1:{slow.port}/",
                "max_latency": "10ms",
            },
        ]
        config_path.write_text(
            yaml.safe_dump(
                {
                    "vantage": "gw-test",
                    "state_db": str(tmp_path / "state.db"),
                    "defaults": {
                        "interval": "300ms",
                        "timeout": "250ms",
                        "failure_threshold": 1,
                        "recheck_delay": "10ms",
                    },
                    "alerting": {"web_url": WEB},
                    "agencies": [
                        {
                            "id": "ha-noi",
                            "kind": "province",
                            "name_vi": "Thành phố Hà Nội",
                            "name_en": "Hanoi City",
                            "code": "01",
                            "systems": [
                                {
                                    "id": "portal",
                                    "kind": "public-service-portal",
                                    "name": "Cổng dịch vụ công Hà Nội",
                                    "checks": checks,
                                }
                            ],
                        }
                    ],
                },
                allow_unicode=True,
            ),
            encoding="utf-8",
        )
        config = load_config(config_path)
        store = await Store.open(config.state_db)
        engine = Engine(config, store, ProbeEnv())
        await engine.start()
        task = asyncio.create_task(engine.scheduler.run())
        try:
            checks_of = engine.state.systems["ha-noi/portal"].checks
            await eventually(
                lambda: (
                    all(c.last is not None for c in checks_of.values())
                    and checks_of["ha-noi/portal/http"].healthy is False
                )
            )
            _, token = await accounts.create(
                store,
                actor=None,
                account_id="hanoi",
                name="Quản trị Hà Nội",
                role="agency-admin",
                agency="ha-noi",
                agencies={"ha-noi"},
                now=time.time(),
            )
            authenticator = Authenticator(store, max_failures=3)
            app = web.Application(middlewares=[authenticator.middleware])
            app.add_routes(page_routes(PagesContext(engine, store, None, authenticator)))
            async with TestClient(TestServer(app)) as client:
                yield Site(client, engine, token)
        finally:
            engine.scheduler.stop()
            await engine.scheduler.drain(1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()


async def message_link(site: Site, store_path: Path, lang: str) -> str:
    """The link of a real message about the site's system (as the pipeline writes it)."""
    store = await Store.open(store_path)
    try:
        config = make_config([agency("ha-noi", "Hà Nội", ["portal"])], web_url=WEB)
        if lang == "en":
            ops = config.alerting.operations[0].model_copy(update={"language": "en"})
            config = config.model_copy(
                update={"alerting": config.alerting.model_copy(update={"operations": [ops]})}
            )
        w = World(store, config)
        w.event("ha-noi/portal", State.UP, State.DOWN)
        await w.advance(31)
        (message,) = w.sent.to("ops@vpcp.dvc.example")
    finally:
        await store.close()
    found = re.search(rf"{re.escape(WEB)}(\S+)", message.text)
    assert found is not None, message.text
    return found.group(1)


@pytest.mark.parametrize("lang", ["vi", "en"])
async def test_a_message_link_opens_the_system_page_after_login(
    site: Site, tmp_path: Path, lang: str
) -> None:
    path = await message_link(site, tmp_path / f"outbox-{lang}.db", lang)
    assert urlsplit(path).path == "/system/ha-noi/portal"
    client = site.client
    client.session.cookie_jar.clear()
    # Not logged in: to the login page, which remembers where to go back to.
    first = await client.get(path, allow_redirects=False)
    assert first.status == 303
    login = first.headers["Location"]
    assert login.startswith("/login?next=%2Fsystem%2Fha-noi%2Fportal")
    form = await (await client.get(login)).text()
    assert 'name="next" value="/system/ha-noi/portal"' in form
    action = re.search(r'<form class="login" method="post" action="([^"]+)"', form)
    assert action is not None
    answer = await client.post(
        action.group(1).replace("&amp;", "&"),
        data={"token": site.token, "next": "/system/ha-noi/portal"},
        allow_redirects=False,
    )
    assert answer.status == 303
    assert answer.headers["Location"] == path  # back to the page, in the reader's language
    page = await client.get(answer.headers["Location"], allow_redirects=False)
    assert page.status == 200
    text = await page.text()
    assert "Cổng dịch vụ công Hà Nội" in text
    assert ("Các phép kiểm tra" if lang == "vi" else "Checks") in text


def check_rows(page: str) -> dict[str, tuple[str, str, str]]:
    """check id -> (verdict, words, reason) from the checks table."""
    rows = re.findall(
        r'<tr class="check" data-verdict="([a-z]+)"><td>([^<]+)</td><td>[^<]*</td>'
        r"<td>([^<]*)</td><td>([^<]*)</td>",
        page,
    )
    return {check: (verdict, words, reason) for verdict, check, words, reason in rows}


async def test_each_check_row_says_what_its_last_result_says(site: Site) -> None:
    headers = {"Authorization": f"Bearer {site.token}"}
    vi = await (await site.client.get("/system/ha-noi/portal", headers=headers)).text()
    rows = check_rows(vi)
    assert rows["tcp"] == ("ok", "Tốt", "kết nối được")
    assert rows["http"] == ("failing", "Lỗi", "HTTP 503 (cần 2xx)")
    verdict, words, reason = rows["flaky"]
    # Failing, not yet confirmed by its threshold: never "Tốt" beside a failure.
    assert verdict == "failing" and reason == "HTTP 503 (cần 2xx)"
    assert re.fullmatch(r"Lỗi \(chưa xác nhận: \d+/100 lần\)", words), words
    verdict, words, reason = rows["slow"]
    assert (verdict, words) == ("warning", "Cảnh báo")
    assert reason.startswith("chậm: ") and "giới hạn 10 ms" in reason
    en = await (await site.client.get("/system/ha-noi/portal?lang=en", headers=headers)).text()
    rows = check_rows(en)
    assert rows["http"] == ("failing", "Failing", "HTTP 503 (expected 2xx)")
    assert rows["slow"][:2] == ("warning", "Warning")
    assert rows["slow"][2].startswith("slow: ")
    assert rows["flaky"][1].startswith("Failing (not confirmed yet: ")


async def test_a_notice_sms_links_to_its_agency_page(store: Store) -> None:
    """Notices (late announcements, maintenance windows, SLA reminders) link too, by SMS."""
    w = World(
        store,
        make_config([agency("ha-noi", "Hà Nội", ["secure-server"], sms=True)], web_url=WEB),
    )
    notice = Notice(
        key="test/1",
        subject={"vi": "Thông báo", "en": "Notice"},
        text={"vi": "Nội dung", "en": "Text"},
        sms={"vi": "NPSP: thong bao", "en": "NPSP: notice"},
    )
    assert await w.pipeline.send_notice(notice, [("ha-noi", "technical-admins")]) >= 1
    await w.advance(1)
    (sms,) = w.sent.to(PHONE_HA_NOI)
    assert sms.text == f"NPSP: thong bao {WEB}/agency/ha-noi"
