"""Senior rights (issue 15, QĐ 31/2021/QĐ-TTg Chương VII mục A khoản 2): every grant or
revocation of an agency's high-level account (agency-admin) is recorded with the account change
(create, role change both ways, revoke; API, command line), the leader's desk tells operations
once through a real outbox (not again from a second leader, nor after a crash between queuing
and marking), and the monthly report lists who held the rights at the month's end. A real store
(both backends where it matters), an injected clock; the API through a running daemon."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor import accounts, accounts_store
from monitor.accounts import Account, AccountError
from monitor.alerting.notices import NoticeSender, RunningRouter
from monitor.alerting.outbox import Outbox
from monitor.app import Daemon
from monitor.config import Config, load_config
from monitor.registry import Registry
from monitor.reports import build_report, render_html, render_json, render_senior_csv
from monitor.reports.periods import agency_report
from monitor.rules.desk import RulesContext
from monitor.rules.seniorrights import SeniorRightsDesk, notice_for
from monitor.rules.seniorrights import store as rows
from monitor.rules.seniorrights.model import Change
from monitor.sqldialect import Handle
from monitor.store import Store
from monitor.workdays import WorkCalendar
from tests.conftest import StateLocation, TcpTarget
from tests.test_alert_pipeline import agency, make_config
from tests.test_api import Caller, fleet
from tests.test_daemon import Running, write_config

VN = ZoneInfo("Asia/Ho_Chi_Minh")
OPS = "ops@vpcp.dvc.example"
AGENCIES = {"bo-y-te", "ha-noi"}


def hanoi(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=VN).timestamp()


NOW = hanoi(2026, 11, 9, 9, 0)


class World:
    """One daemon's senior-rights desk on a real outbox, as build.py wires it."""

    def __init__(self, store: Store) -> None:
        self.now = NOW
        self.store = store
        self.config: Config = make_config(
            [agency("bo-y-te", "Bộ Y tế", ["portal"]), agency("ha-noi", "Hà Nội", ["portal"])]
        )
        self.registry = Registry.from_config(self.config)
        self.outbox = Outbox(
            store, self.config.alerting.outbox, clock=lambda: self.now, jitter=lambda: 0.5
        )

    def desk(self) -> SeniorRightsDesk:
        """A desk of its own (a second one: another leader, or the daemon restarted)."""
        settings = lambda: self.config.alerting  # noqa: E731
        sender = NoticeSender(self.outbox, RunningRouter(settings, lambda: self.registry), settings)
        ctx = RulesContext(
            self.store,
            WorkCalendar(self.config.calendar),
            sender,
            lambda: self.registry,
            clock=lambda: self.now,
        )
        return SeniorRightsDesk(ctx)

    async def outbox_rows(self) -> list[tuple[str, str, str, str]]:
        return await self.store.transact(
            lambda db: [
                (str(r[0]), str(r[1]), str(r[2]), str(r[3]))
                for r in db.execute(
                    "SELECT address, person, subject, text FROM outbox ORDER BY id"
                ).fetchall()
            ]
        )

    async def changes(self) -> list[Change]:
        return await self.store.transact(lambda db: rows.before(db, float("inf")))


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    s = await state_location.open()
    yield s
    await s.close()


async def national(store: Store) -> Account:
    made, _ = await accounts.create(
        store,
        actor=None,
        account_id="vpcp",
        name="VPCP",
        role="national-admin",
        agency=None,
        agencies=AGENCIES,
        now=NOW - 86400,
    )
    return made


async def make(
    store: Store, actor: Account | None, account_id: str, role: str, now: float, **kw: Any
) -> Account:
    made, _ = await accounts.create(
        store,
        actor=actor,
        account_id=account_id,
        name=kw.pop("name", f"Người {account_id}"),
        role=role,
        agency=kw.pop("agency", "bo-y-te"),
        agencies=AGENCIES,
        now=now,
        **kw,
    )
    return made


def summary(changes: list[Change]) -> list[tuple[str, str, str, str, str]]:
    return [(c.agency, c.account_id, c.change, c.actor, c.source) for c in changes]


# ----- every path records, in the account change's transaction ----------------------------------


async def test_each_path_records_one_row_and_operations_hear_once(store: Store) -> None:
    w = World(store)
    admin = await national(store)
    await make(store, admin, "nva", "agency-admin", NOW, name="Nguyễn Văn A")
    await make(store, admin, "op", "operator", NOW + 60)  # below senior: nothing recorded
    await accounts.grant(
        store, actor=admin, account_id="op", role="agency-admin", agencies=AGENCIES, now=NOW + 120
    )
    await accounts.grant(
        store, actor=admin, account_id="op", role="operator", agencies=AGENCIES, now=NOW + 180
    )
    await accounts.grant(  # operator → viewer: still no senior rights, nothing recorded
        store, actor=admin, account_id="op", role="viewer", agencies=AGENCIES, now=NOW + 200
    )
    await accounts.revoke(store, actor=admin, account_id="nva", now=NOW + 240)
    await accounts.revoke(store, actor=admin, account_id="op", now=NOW + 260)  # a viewer
    assert summary(await w.changes()) == [
        ("bo-y-te", "nva", "granted", "vpcp", "api"),
        ("bo-y-te", "op", "granted", "vpcp", "api"),
        ("bo-y-te", "op", "revoked", "vpcp", "api"),
        ("bo-y-te", "nva", "revoked", "vpcp", "api"),
    ]
    assert [c.at for c in await w.changes()] == [NOW, NOW + 120, NOW + 180, NOW + 240]
    assert all(c.notified_at is None for c in await w.changes())

    desk = w.desk()
    w.now = NOW + 300
    await desk.tick(w.now)
    sent = await w.outbox_rows()
    # One notice per row, to operations only (not the agency's own admins).
    assert len(sent) == 4 and {address for address, *_ in sent} == {OPS}
    assert all(person.startswith("operations/") for _, person, *_ in sent)
    first = sent[0][3]
    assert first.startswith(
        "Bộ Y tế: cấp quyền quản trị cấp cao cho Nguyễn Văn A (tài khoản nva)"
        " lúc 09:00 09/11/2026, bởi vpcp."
    )
    assert "QĐ 31/2021/QĐ-TTg" in first
    assert sent[3][2] == "[NPSP] Bộ Y tế: thu hồi quyền quản trị cấp cao của Nguyễn Văn A"
    assert all(c.notified_at == NOW + 300 for c in await w.changes())

    # Told once: the same desk later, another leader's desk, a restarted one: nothing more.
    w.now += 60
    await desk.tick(w.now)
    await w.desk().tick(w.now)
    assert len(await w.outbox_rows()) == 4


async def test_a_crash_between_queuing_and_marking_sends_nothing_twice(store: Store) -> None:
    """Two leaders (or one restarted) see the row still owed: the notice's key is the row's,
    so the outbox keeps the first one only."""
    w = World(store)
    admin = await national(store)
    await make(store, admin, "nva", "agency-admin", NOW)
    await w.desk().tick(NOW)
    assert len(await w.outbox_rows()) == 1
    await store.transact(
        lambda db: db.execute("UPDATE senior_rights_changes SET notified_at = NULL")
    )
    await w.desk().tick(NOW + 5)
    assert len(await w.outbox_rows()) == 1
    assert [c.notified_at for c in await w.changes()] == [NOW + 5]


async def test_refused_changes_record_nothing(store: Store) -> None:
    w = World(store)
    admin = await national(store)
    boss = await make(store, admin, "boss", "agency-admin", NOW)
    await make(store, admin, "op", "operator", NOW)
    # An agency-admin grants only below its own role, and only in its agency.
    with pytest.raises(AccountError) as refused:
        await accounts.grant(
            store, actor=boss, account_id="op", role="agency-admin", agencies=AGENCIES, now=NOW
        )
    assert refused.value.status == 403
    with pytest.raises(AccountError):
        await make(store, boss, "boss2", "agency-admin", NOW)
    with pytest.raises(AccountError) as taken:  # an id already taken: 409, rolled back
        await make(store, admin, "boss", "agency-admin", NOW)
    assert taken.value.status == 409
    await accounts.revoke(store, actor=admin, account_id="boss", now=NOW + 1)
    with pytest.raises(AccountError):  # already revoked
        await accounts.revoke(store, actor=admin, account_id="boss", now=NOW + 2)
    with pytest.raises(AccountError):  # a revoked account's role cannot change
        await accounts.grant(
            store, actor=admin, account_id="boss", role="operator", agencies=AGENCIES, now=NOW
        )
    assert summary(await w.changes()) == [
        ("bo-y-te", "boss", "granted", "vpcp", "api"),
        ("bo-y-te", "boss", "revoked", "vpcp", "api"),
    ]


def test_the_notice_in_both_languages() -> None:
    registry = Registry.from_config(make_config([agency("bo-y-te", "Bộ Y tế", ["portal"])]))
    change = Change(7, "bo-y-te", "nva", "Nguyễn Văn A", "revoked", NOW, "cli:root", "cli")
    notice = notice_for(change, registry)
    assert notice.key == "senior-rights/7"
    assert notice.text["en"].startswith(
        "Bộ Y tế (en): senior administrator rights (agency-admin) revoked from Nguyễn Văn A"
        " (account nva) at 09:00 09/11/2026, by cli:root."
    )
    assert "Thực hiện qua: dòng lệnh trên máy chủ." in notice.text["vi"]
    assert notice.sms["vi"] == "NPSP: BO-Y thu hồi quyền QT cấp cao của nva"
    unknown = notice_for(
        Change(8, "gone", "x", "X", "granted", NOW, "vpcp", "api"), registry
    )  # an agency no longer configured: named by its id
    assert unknown.subject["vi"] == "[NPSP] gone: cấp quyền quản trị cấp cao cho X"


# ----- the command line -------------------------------------------------------------------------


def test_the_command_line_records_and_names_the_os_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main

    data = {
        "state_db": str(tmp_path / "state.db"),
        "agencies": [
            {
                "id": "bo-y-te",
                "kind": "ministry",
                "name_vi": "Bộ Y tế",
                "name_en": "Ministry of Health",
                "code": "BYT",
                "systems": [],
            }
        ],
    }
    config = write_config(tmp_path / "c.yaml", data)
    c = ["-c", str(config)]
    made = [*c, "--id", "nva", "--name", "Nguyễn Văn A", "--role", "agency-admin"]
    assert main(["accounts", "create", *made, "--agency", "bo-y-te", "--init"]) == 0
    assert main(["accounts", "create", *c, "--id", "v", "--name", "V", "--role", "viewer",
                 "--agency", "bo-y-te"]) == 0  # fmt: skip
    assert main(["accounts", "revoke", *c, "nva"]) == 0
    capsys.readouterr()
    month = dt.datetime.now(VN).strftime("%Y-%m")
    assert main(["report", *c, "--month", month, "--format", "senior-csv"]) == 0
    lines = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [(r[1], r[3], r[4], r[8]) for r in lines[1:]] == [
        ("bo-y-te", "granted", "nva", "cli"),
        ("bo-y-te", "revoked", "nva", "cli"),
    ]

    async def check() -> None:
        store = await Store.open(tmp_path / "state.db")
        try:
            w = World(store)
            found = await w.changes()
            assert [(c.change, c.source) for c in found] == [("granted", "cli"), ("revoked", "cli")]
            assert all(c.actor == accounts.cli_actor() for c in found)
            await w.desk().tick(time.time())
            sent = await w.outbox_rows()
            assert len(sent) == 2 and {a for a, *_ in sent} == {OPS}
            assert f"bởi {accounts.cli_actor()}." in sent[0][3]
        finally:
            await store.close()

    asyncio.run(check())


# ----- the API, through a running daemon whose desk tells operations ----------------------------


@pytest.fixture
async def daemon(
    tmp_path: Path, tcp_target: Callable[[], Awaitable[TcpTarget]]
) -> AsyncIterator[Running]:
    target = await tcp_target()
    data = fleet(tmp_path, target.port)
    data["alerting"] = {
        "operations": [{"name": "VPCP trực", "portal_account": "ops.vpcp", "channels": ["inbox"]}]
    }
    path = write_config(tmp_path / "npsp.yaml", data)
    ready = asyncio.Event()
    d = Daemon(path, load_config(path))
    task = asyncio.create_task(d.run(on_ready=lambda _d: ready.set()))
    await asyncio.wait_for(ready.wait(), 10)
    running = Running(d, task)
    yield running
    await running.stop()


async def test_the_api_records_and_the_daemon_tells_operations(daemon: Running) -> None:
    admin = Caller(daemon.base, await daemon.token())
    status, _ = await admin.call(
        "POST",
        "/api/v1/accounts",
        {"id": "nva", "name": "Nguyễn Văn A", "role": "agency-admin", "agency": "bo-a"},
    )
    assert status == 201
    status, _ = await admin.call(
        "POST", "/api/v1/accounts", {"id": "op", "name": "Op", "role": "operator", "agency": "bo-a"}
    )
    assert status == 201
    for role in ("agency-admin", "operator"):
        status, _ = await admin.call("POST", "/api/v1/accounts/op/grant", {"role": role})
        assert status == 200
    assert (await admin.call("POST", "/api/v1/accounts/nva/revoke", {}))[0] == 200
    # A refused request records nothing: the agency-admin of bo-b cannot touch bo-a.
    status, made = await admin.call(
        "POST",
        "/api/v1/accounts",
        {"id": "b", "name": "B", "role": "agency-admin", "agency": "bo-b"},
    )
    other = Caller(daemon.base, made["token"])
    status, _ = await other.call("POST", "/api/v1/accounts/op/grant", {"role": "viewer"})
    assert status == 403

    engine = daemon.daemon.engine
    assert engine is not None
    store = engine.store
    expected = [("nva", "granted"), ("op", "granted"), ("op", "revoked"), ("nva", "revoked")]
    expected.append(("b", "granted"))

    async def told() -> tuple[list[Change], list[str]]:
        found = await store.transact(lambda db: rows.before(db, float("inf")))
        people = await store.transact(
            lambda db: [str(r[0]) for r in db.execute("SELECT person FROM outbox").fetchall()]
        )
        return found, people

    # The desk ticks once a second on the daemon's own clock: wait for it, boundedly.
    deadline = time.monotonic() + 15
    while True:
        found, people = await told()
        if all(c.notified_at is not None for c in found) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert [(c.account_id, c.change) for c in found] == expected
    assert {c.source for c in found} == {"api"} and {c.actor for c in found} == {"test-admin"}
    assert all(c.notified_at is not None for c in found)
    assert len(people) == 5 and set(people) == {"operations/0"}


# ----- the monthly report -----------------------------------------------------------------------


async def test_the_monthly_report_lists_holders_at_the_months_end(store: Store) -> None:
    w = World(store)
    admin = await national(store)

    # Made before the records began: put straight into the accounts table.
    def legacy(db: Handle) -> None:
        for i, a, created in (
            ("old-byt", "bo-y-te", hanoi(2025, 3, 1)),
            ("old-hn", "ha-noi", hanoi(2025, 4, 1)),
        ):
            accounts_store.add(
                db,
                i,
                name=f"Cũ {i}",
                role="agency-admin",
                agency=a,
                token_hash=f"h-{i}",
                cert=None,
                portal_account=i,
                at=created,
                by="bootstrap",
            )

    await store.transact(legacy)
    await make(store, admin, "kept", "agency-admin", hanoi(2026, 10, 20, 8, 0), name="Trần B")
    await make(store, admin, "nva", "agency-admin", hanoi(2026, 11, 3, 9, 0), name="Nguyễn Văn A")
    await make(store, admin, "short", "operator", hanoi(2026, 11, 2))
    await accounts.grant(  # granted and taken back within November
        store,
        actor=admin,
        account_id="short",
        role="agency-admin",
        agencies=AGENCIES,
        now=hanoi(2026, 11, 5, 10, 0),
    )
    await accounts.grant(
        store,
        actor=admin,
        account_id="short",
        role="operator",
        agencies=AGENCIES,
        now=hanoi(2026, 11, 20, 10, 0),
    )
    # The old Hanoi account, never recorded, is revoked in November; old-byt stays.
    await accounts.revoke(store, actor=admin, account_id="old-hn", now=hanoi(2026, 11, 25))
    # After the month: not in November's report.
    await accounts.revoke(store, actor=admin, account_id="kept", now=hanoi(2026, 12, 2))
    await make(store, admin, "dec", "agency-admin", hanoi(2026, 12, 3))

    report = await build_report(store, w.registry, "2026-11", now=hanoi(2026, 12, 5))
    data = json.loads(render_json(report))["senior_rights"]
    assert data["as_of"] == "2026-12-01T00:00:00+07:00"
    byt, hn = data["agencies"]
    assert byt["agency"] == "bo-y-te" and hn["agency"] == "ha-noi"
    assert [(h["account"], h["since"], h["from_creation"]) for h in byt["holders"]] == [
        ("kept", "2026-10-20T08:00:00+07:00", False),
        ("nva", "2026-11-03T09:00:00+07:00", False),
        ("old-byt", "2025-03-01T00:00:00+07:00", True),
    ]
    assert [(c["account"], c["change"], c["at"], c["by"]) for c in byt["changes"]] == [
        ("nva", "granted", "2026-11-03T09:00:00+07:00", "vpcp"),
        ("short", "granted", "2026-11-05T10:00:00+07:00", "vpcp"),
        ("short", "revoked", "2026-11-20T10:00:00+07:00", "vpcp"),
    ]
    assert hn["holders"] == []
    assert [(c["account"], c["change"]) for c in hn["changes"]] == [("old-hn", "revoked")]

    # October: the old Hanoi account held the rights from its creation; "kept" since 20/10.
    october = await build_report(store, w.registry, "2026-10", now=hanoi(2026, 12, 5))
    held = {r.agency: [h.account_id for h in r.holders] for r in october.senior_rights}
    assert held == {"bo-y-te": ["kept", "old-byt"], "ha-noi": ["old-hn"]}

    page = render_html(report, "en")
    assert "Nguyễn Văn A (nva), since 09:00 03/11/2026" in page
    assert "10:00 20/11/2026: revoked from Người short (short) by vpcp" in page
    assert "Cũ old-byt (old-byt), since 00:00 01/03/2025*" in page
    assert "counted from its creation" in page
    assert "nobody" in page  # Hanoi at the end of November
    table = list(csv.reader(io.StringIO(render_senior_csv(report))))
    assert table[0][:4] == ["month", "agency", "agency_name", "row"]
    assert table[3][:5] == ["2026-11", "bo-y-te", "Bộ Y tế", "holder", "old-byt"]
    assert table[3][-1] == "yes"
    assert [r[3] for r in table[1:]] == ["holder"] * 3 + ["granted", "granted", "revoked"] + [
        "revoked"
    ]

    # One agency's report holds no other agency.
    scoped = agency_report(report, "ha-noi")
    assert scoped is not None
    assert [r.agency for r in scoped.senior_rights] == ["ha-noi"]
    text = render_json(scoped) + render_html(scoped) + render_senior_csv(scoped)
    assert "bo-y-te" not in text and "nva" not in text and "old-byt" not in text

    # A month in progress: the holders now, the changes so far.
    partial = await build_report(store, w.registry, "2026-11", now=hanoi(2026, 11, 10))
    byt_now = next(r for r in partial.senior_rights if r.agency == "bo-y-te")
    assert [h.account_id for h in byt_now.holders] == ["kept", "nva", "old-byt", "short"]
    assert [c.change for c in byt_now.changes] == ["granted", "granted"]
