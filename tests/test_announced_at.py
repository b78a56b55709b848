"""``announced_at`` means one thing on every path (issue 11, item 10).

The rule (:func:`monitor.rules.announcements.judge_times`, shared by the command line, the HTTP
API and MQTT): a paper notice recorded later keeps its real date (at most a year ago; up to
5 minutes ahead of the monitor's clock for clock differences, no more), and the notice is
counted from that date in working days. One recorded after its effective time is a change in
effect: its values are expected at once, it is confirmed to the agency, a late one is recorded
and counted as late, but no late-notice alert goes out and a certificate that matches it raises
no unannounced-change alarm. Errors are sentences.

The same inputs go through the command line and the MQTT intake on one injected clock and get
the same answers; the API is exercised on a running daemon (its clock is the real one, so its
dates are relative to now)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.cli import build_parser, main
from monitor.cli.announce import cmd_announce
from monitor.config import Config
from monitor.registry import Registry
from monitor.rules.announcements import (
    AnnouncementRejected,
    examine,
    load_all,
    parse_request,
)
from monitor.store import Store
from monitor.workdays import WorkCalendar
from tests.peers import wait_until
from tests.probe_servers import Certs, DNSServer, Server, Zone, make_certs

from .test_alert_pipeline import agency
from .test_announcements import (
    FP_NEW,
    FP_OLD,
    Desk,
    confirmations,
    intake_for,
    signed,
    verifications,
)
from .test_api import World, in_days, world  # noqa: F401  (world: the running daemon)
from .test_daemon import metric, write_config
from .test_unannounced import Watched, _fingerprint_of, wait_for_eof
from .test_unannounced import fleet as watched_fleet

pytestmark = pytest.mark.timeout(90)

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN).timestamp()


# Monday 2026-01-05 09:00, just after the New Year: Thu 01-01 is a holiday, Fri 01-02 a day off
# (12729/VPCP-KGVX, swapped with Saturday 01-10, which is worked), then the weekend.
NOW = at("2026-01-05T09:00")


def fleet_dict() -> dict[str, Any]:
    ha_noi = agency("ha-noi", "Hà Nội", ["secure-server", "one-stop"])
    ha_noi["systems"][0]["checks"] = [
        {
            "id": "tls",
            "kind": "tls",
            "host": "ssv.ha-noi.example",
            "port": 8443,
            "tls": {"expected_fingerprint_sha256": FP_OLD},
        }
    ]
    bo_y_te = agency("bo-y-te", "Bộ Y tế", ["secure-server", "one-stop"])
    bo_y_te["systems"][1]["depends_on"] = ["ha-noi/secure-server"]
    return {
        # The command line reads a file, which must name the channels its contacts use.
        "channels": {"email": {"host": "127.0.0.1", "port": 25, "from_addr": "npsp@vpcp.example"}},
        "agencies": [ha_noi, bo_y_te],
        "alerting": {
            "operations": [
                {"name": "VPCP trực", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
            ]
        },
    }


def fleet() -> Config:
    return Config.model_validate(fleet_dict())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


def judge(payload: dict[str, Any], now: float) -> Any:
    config = fleet()
    return examine(
        parse_request(json.dumps(payload).encode(), "ha-noi"),
        "ha-noi",
        registry=Registry.from_config(config),
        calendar=WorkCalendar(config.calendar),
        now=now,
        source="test",
    )


# ----- the rule's edges -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("announced", "effective", "days", "compliant"),
    [
        # Wed 31/12 → Thu 08/01: not Thu 01/01 (holiday), Fri 02/01 (day off), the weekend;
        # Mon 05, Tue 06, Wed 07 = exactly 3.
        ("2025-12-31T16:59", "2026-01-08T08:00", 3, True),
        ("2025-12-31T16:59", "2026-01-07T23:59", 2, False),
        # Wed 07/01 → Sun 11/01: Thu 08, Fri 09 and Saturday 10/01, the make-up working day.
        ("2026-01-07T08:00", "2026-01-11T00:00", 3, True),
        ("2026-01-07T08:00", "2026-01-10T08:00", 2, False),
    ],
)
def test_notice_is_counted_from_the_real_date_of_a_paper_notice(
    announced: str, effective: str, days: int, compliant: bool
) -> None:
    """Recorded later (here: on Thursday 08/01, 10:00), judged from the day it was given."""
    a = judge(
        {"announced_at": announced, "effective_at": effective, "changes": {"port": 9443}},
        at("2026-01-08T10:00"),
    )
    assert (a.working_days, a.compliant, a.required) == (days, compliant, 3)
    assert a.announced_at == at(announced)


def test_the_recording_date_does_not_shorten_a_paper_notice() -> None:
    """Given on Wed 31/12, recorded on Mon 05/01: 3 working days to Thu 08/01 (from Monday it
    would be 2, Tue and Wed)."""
    paper = judge(
        {
            "announced_at": "2025-12-31T10:00",
            "effective_at": "2026-01-08T08:00",
            "changes": {"port": 9443},
        },
        NOW,
    )
    undated = judge({"effective_at": "2026-01-08T08:00", "changes": {"port": 9443}}, NOW)
    assert (paper.working_days, paper.compliant) == (3, True)
    assert (undated.working_days, undated.compliant) == (2, False)
    assert undated.announced_at == NOW  # no announced_at: when it is recorded


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [(0, True), (4 * 60, True), (5 * 60, True), (5 * 60 + 1, False), (10 * 60, False)],
)
def test_announced_at_may_run_ahead_of_our_clock_by_five_minutes(
    ahead: int, accepted: bool
) -> None:
    announced = dt.datetime.fromtimestamp(NOW + ahead, VN).isoformat()
    payload = {
        "announced_at": announced,
        "effective_at": "2026-01-09T08:00",
        "changes": {"port": 1},
    }
    if accepted:
        assert judge(payload, NOW).announced_at == NOW + ahead
        return
    with pytest.raises(AnnouncementRejected) as caught:
        judge(payload, NOW)
    shown = announced if ahead % 60 else announced[:16] + "+07:00"
    assert str(caught.value).startswith(f"announced_at {shown} is in the future")
    assert "up to 5 minutes ahead is allowed" in str(caught.value)
    assert str(caught.value).endswith(".")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {
                "announced_at": "2025-01-05T08:59",
                "effective_at": "2026-01-09",
                "changes": {"port": 1},
            },
            "announced_at 2025-01-05T08:59+07:00 is more than a year (365 days) ago: a notice that "
            "old is not recorded; announce the change again with today's date.",
        ),
        (
            {
                "announced_at": "2026-01-02T08:00",
                "effective_at": "2026-01-02",
                "changes": {"port": 1},
            },
            "effective_at 2026-01-02T00:00+07:00 is not after announced_at 2026-01-02T08:00+07:00: "
            "a change takes effect after it is announced.",
        ),
        (
            {
                "announced_at": "2026-01-02T08:00",
                "effective_at": "2026-01-02T08:00",
                "changes": {"port": 1},
            },
            "is not after announced_at",
        ),
    ],
)
def test_how_far_back_and_in_which_order_the_dates_may_be(
    payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(AnnouncementRejected) as caught:
        judge(payload, NOW)
    assert reason in str(caught.value)


def test_a_notice_just_under_a_year_old_is_recorded() -> None:
    a = judge(
        {"announced_at": "2025-01-06T09:00", "effective_at": "2025-02-03", "changes": {"port": 1}},
        NOW,
    )
    assert a.announced_at == at("2025-01-06T09:00") and a.recorded_in_effect


# ----- a change already in effect when recorded -----------------------------------------------


async def test_a_late_change_recorded_after_it_took_effect_is_not_alerted(
    store: Store, tmp_path: Path
) -> None:
    """The issue's case: a paper notice recorded 8 days after it was given, effective 5 days
    ago with 2 working days' notice. Recorded as late, counted, applied at once; nobody gets a
    late-notice alert. Its confirmation asks to verify it (a certificate whitelisted with no
    time to object), and goes to the dependents' technical admins too."""
    d = Desk(store, fleet(), at("2026-12-15T09:00"))  # a Tuesday
    intake = intake_for(d.desk, tmp_path)
    answer = await intake.handle(
        "ha-noi",
        signed(
            {
                "ref": "12729/VPCP-KGVX",
                "announced_at": "2026-12-07T09:00",  # Monday
                "effective_at": "2026-12-10T08:00",  # Thursday: Tue, Wed = 2
                "changes": {"fingerprint_sha256": FP_NEW},
            }
        ),
    )
    assert answer == {
        "ref": "12729/VPCP-KGVX",
        "accepted": True,
        "duplicate": False,
        "id": 1,
        "working_days": 2,
        "required": 3,
        "compliant": False,
        "recorded_in_effect": True,
    }
    await d.deliver()
    assert d.world.sent.messages == verifications(d)  # no "không đủ thời hạn" to anyone
    assert sorted(m.to for m in d.world.sent.messages) == sorted(
        [
            "ops@vpcp.dvc.example",
            "kt@ha-noi.dvc.example",
            "kt.ha-noi",
            "cc@ha-noi.dvc.example",
            "kt@bo-y-te.dvc.example",  # depends on ha-noi/secure-server
            "kt.bo-y-te",
        ]
    )
    mail = d.world.sent.to("kt@ha-noi.dvc.example")[0]
    assert "sau thời điểm hiệu lực" in mail.text and "KHÔNG đủ 3" in mail.text
    assert FP_NEW in mail.text and "xác minh trực tiếp" in mail.text
    assert "/api/v1/announcements/1/cancel" in mail.text
    assert d.counted == {"change_notice_violations": 1}  # counted as late all the same
    # In effect at once: the pin switched.
    assert d.overrides[-1]["ha-noi/secure-server"].fingerprint_sha256 == FP_NEW
    (stored,) = await load_all(store)
    assert stored.applied_at == d.world.now and stored.recorded_in_effect
    listed = stored.as_json()
    assert listed["compliant"] is False and listed["recorded_in_effect"] is True
    assert listed["announced_at"] == "2026-12-07T09:00:00+07:00"
    assert listed["recorded_at"] == "2026-12-15T09:00:00+07:00"
    # More ticks, a restarted desk: nothing more.
    await d.desk.tick(d.world.now + 60)
    again = Desk(store, fleet(), d.world.now + 120)
    await again.desk.refresh()
    await again.desk.tick(again.world.now)
    await again.deliver()
    assert again.world.sent.messages == [] and again.counted == {}


async def test_a_late_change_recorded_before_it_takes_effect_is_still_alerted(
    store: Store,
) -> None:
    """The other side of the line: a late notice backdated but still ahead of its effective
    time is alerted (dependents have something to prepare)."""
    d = Desk(store, fleet(), at("2026-12-09T09:00"))
    stored, _ = await d.submit(
        {
            "announced_at": "2026-12-07T09:00",
            "effective_at": "2026-12-10T08:00",
            "changes": {"port": 9443},
        }
    )
    assert not stored.compliant and not stored.recorded_in_effect
    await d.deliver()
    late = [m for m in d.world.sent.messages if "không đủ thời hạn" in m.subject]
    assert "kt@bo-y-te.dvc.example" in {m.to for m in late}
    confirmation = d.world.sent.to("kt@ha-noi.dvc.example")
    assert any("được ghi nhận lúc" in m.text for m in confirmation)  # both dates are shown


async def test_a_backdated_compliant_certificate_change_is_not_whitelisted_quietly(
    store: Store,
) -> None:
    """The attacker's way: a notice dated 10 days ago, effective a minute ago, naming their own
    certificate. Its notice is compliant, so no late alert; it is in effect at once, so nobody
    had time to object. Everyone concerned is asked to verify it, by SMS too."""
    d = Desk(store, fleet(), at("2026-12-15T09:00"))
    stored, _ = await d.submit(
        {
            "announced_at": "2026-12-01T09:00",
            "effective_at": "2026-12-15T08:59",
            "changes": {"fingerprint_sha256": FP_NEW},
        }
    )
    assert stored.compliant and stored.recorded_in_effect
    await d.deliver()
    told = {m.to for m in verifications(d)}
    assert told >= {"ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt@bo-y-te.dvc.example"}
    assert confirmations(d) == []  # the verification is its confirmation: one message each
    mail = d.world.sent.to("kt@bo-y-te.dvc.example")[0]
    assert FP_NEW in mail.text and "đủ 3 ngày" in mail.text
    assert d.counted == {}  # compliant: not a violation
    assert d.overrides[-1]["ha-noi/secure-server"].fingerprint_sha256 == FP_NEW


async def test_a_text_only_change_recorded_in_effect_is_only_confirmed(store: Store) -> None:
    """Nothing whitelisted, nothing to verify: the usual confirmation to the agency."""
    d = Desk(store, fleet(), at("2026-12-15T09:00"))
    stored, _ = await d.submit(
        {
            "announced_at": "2026-12-01T09:00",
            "effective_at": "2026-12-15T08:59",
            "changes": {"text": "đổi người phụ trách"},
        }
    )
    assert stored.recorded_in_effect
    await d.deliver()
    assert verifications(d) == [] and len(confirmations(d)) == 4


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def test_a_certificate_matching_a_change_recorded_in_effect_raises_no_alarm(
    store: Store, certs: Certs
) -> None:
    """The server has served its new certificate since the change; the paper notice is recorded
    afterwards: the certificate is expected, no man-in-the-middle alarm."""
    zone = Zone(records={("ssv.ha-noi.example", "A"): ["192.0.2.10"]})
    tls = certs.server_context(certs.good)
    renewed = certs.ca.issue_cert("localhost", "127.0.0.1")
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        w = Watched(store, watched_fleet(server.port, dns_server.address, certs.ca_file))
        w.world.now = at("2026-12-15T09:00")
        await w.start()
        await w.probe()  # the baseline: the old certificate
        fp = await _fingerprint_of(renewed, certs)
        request = parse_request(
            json.dumps(
                {
                    "announced_at": "2026-12-07T09:00",
                    "effective_at": "2026-12-10T08:00",
                    "changes": {"fingerprint_sha256": fp},
                }
            ).encode(),
            "ha-noi",
        )
        await w.desk.submit(request, "ha-noi", "cli")
        renewed.configure_cert(tls)
        await w.probe(3)
    assert w.unannounced == [] and w.counted == 0
    assert [m.subject for m in w.world.sent.messages if "không đủ thời hạn" in m.subject] == []


# ----- the command line and MQTT give the same answer -----------------------------------------

# (ref, announced_at, effective_at) → what both must answer, on the clock NOW.
CASES: list[tuple[str, str | None, str, dict[str, Any] | str]] = [
    (
        "12729/VPCP-KGVX",
        "2025-12-31T10:00",
        "2026-01-08T08:00",
        {"working_days": 3, "compliant": True, "recorded_in_effect": False},
    ),
    (
        "CV-123/BTC",
        "2025-12-31T10:00",
        "2026-01-07T08:00",
        {"working_days": 2, "compliant": False, "recorded_in_effect": False},
    ),
    (
        "ahead-4min",
        "2026-01-05T09:04",
        "2026-01-09T08:00",
        {"working_days": 3, "compliant": True, "recorded_in_effect": False},
    ),
    ("ahead-10min", "2026-01-05T09:10", "2026-01-09T08:00", "is in the future"),
    (
        "in-effect",
        "2025-12-26T08:00",
        "2025-12-29T08:00",
        {"working_days": 0, "compliant": False, "recorded_in_effect": True},
    ),
    ("too-old", "2025-01-01T08:00", "2025-02-01T08:00", "more than a year"),
    ("backwards", "2026-01-02T08:00", "2025-12-30T08:00", "is not after announced_at"),
    ("CV 123", None, "2026-01-20T08:00", "ref: must be 1 to 128 letters (Vietnamese too)"),
    ("now", None, "2026-01-08T08:00", {"working_days": 2, "compliant": False}),
]


def _cli(tmp_path: Path, ref: str, announced: str | None, effective: str) -> int:
    data = {**fleet_dict(), "state_db": str(tmp_path / "cli" / "state.db")}
    path = write_config(tmp_path / "npsp.yaml", data)
    argv = ["announce", "-c", str(path), "--agency", "ha-noi", "--effective", effective]
    argv += ["--port", "9443", "--ref", ref, "--json", "--init"]
    if announced is not None:
        argv += ["--announced", announced]
    return cmd_announce(build_parser().parse_args(argv), clock=lambda: NOW)


async def _mqtt(tmp_path: Path) -> list[dict[str, Any]]:
    s = await Store.open(tmp_path / "mqtt.db")
    try:
        d = Desk(s, fleet(), NOW)
        intake = intake_for(d.desk, tmp_path)
        answers = []
        for ref, announced, effective, _ in CASES:
            payload: dict[str, Any] = {"ref": ref, "effective_at": effective}
            if announced is not None:
                payload["announced_at"] = announced
            payload["changes"] = {"port": 9443}
            answers.append(await intake.handle("ha-noi", signed(payload)))
        return answers
    finally:
        await s.close()


def test_the_command_line_and_mqtt_answer_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mqtt = asyncio.run(_mqtt(tmp_path))
    for (ref, announced, effective, want), by_mqtt in zip(CASES, mqtt, strict=True):
        code = _cli(tmp_path, ref, announced, effective)
        out, err = capsys.readouterr()
        if isinstance(want, str):
            assert code == 2 and by_mqtt["accepted"] is False, (ref, by_mqtt, out)
            assert want in by_mqtt["reason"], by_mqtt
            # The same sentence, word for word.
            assert err == f"npsp-monitor: announcement refused: {by_mqtt['reason']}\n"
            assert "^" not in err and "Value error" not in err
            continue
        assert code == 0, err
        by_cli = json.loads(out)
        assert by_mqtt["accepted"] is True, by_mqtt
        for key, value in want.items():
            assert by_cli[key] == by_mqtt[key] == value, (ref, key, by_cli, by_mqtt)
        assert by_cli["ref"] == by_mqtt["ref"] == ref
        assert by_cli["required"] == by_mqtt["required"] == 3
        assert by_cli["recorded_in_effect"] == by_mqtt["recorded_in_effect"]


def test_the_command_line_says_a_change_recorded_in_effect_is_not_alerted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {**fleet_dict(), "state_db": str(tmp_path / "state.db")}
    path = write_config(tmp_path / "npsp.yaml", data)
    argv = ["announce", "-c", str(path), "--agency", "ha-noi", "--init", "--port", "9443"]
    argv += ["--announced", "2025-12-26T08:00", "--effective", "2025-12-29T08:00"]
    assert cmd_announce(build_parser().parse_args(argv), clock=lambda: NOW) == 0
    out = capsys.readouterr().out
    assert "announced 2025-12-26T08:00:00+07:00, effective 2025-12-29T08:00:00+07:00" in out
    assert "notice 0 working days of 3 required: LATE" in out
    assert "recorded after it took effect: in effect now, no late-notice alert" in out

    # The daemon's desk picks it up: confirmed, counted, applied, not alerted as late.
    async def daemon_side() -> Desk:
        s = await Store.open(tmp_path / "state.db")
        d = Desk(s, fleet(), NOW + 1)
        await d.desk.refresh()
        await d.desk.tick(d.world.now)
        await d.deliver()
        await s.close()
        return d

    d = asyncio.run(daemon_side())
    assert d.world.sent.messages == verifications(d) and len(verifications(d)) == 6
    assert d.counted == {"change_notice_violations": 1}
    assert d.overrides[-1]["ha-noi/secure-server"].port == 9443


def test_the_command_line_as_run_records_a_paper_notice_in_effect_without_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``npsp-monitor announce`` as a person runs it (the real clock): the issue's 8-day-old
    change is recorded with its date, and the daemon neither alerts it as late nor holds it."""
    data = {**fleet_dict(), "state_db": str(tmp_path / "state.db")}
    path = write_config(tmp_path / "npsp.yaml", data)
    code = main(
        ["announce", "-c", str(path), "--agency", "ha-noi", "--init", "--port", "9443",
         "--announced", _ago(8), "--effective", _ago(7), "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    stored = json.loads(out)
    assert stored["working_days"] == 0 and stored["compliant"] is False
    assert stored["recorded_in_effect"] is True
    # Listed as in effect (and late, recorded in effect) before any daemon has applied it.
    assert main(["announcements", "-c", str(path), "--all"]) == 0
    listed = capsys.readouterr().out
    assert "in effect  LATE (0/3 days)  recorded in effect  port=9443" in listed, listed

    async def daemon_side() -> Desk:
        s = await Store.open(tmp_path / "state.db")
        d = Desk(s, fleet(), time.time())
        await d.desk.refresh()
        await d.desk.tick(d.world.now)
        await d.deliver()
        await s.close()
        return d

    d = asyncio.run(daemon_side())
    assert [m for m in d.world.sent.messages if "không đủ thời hạn" in m.subject] == []
    assert len(verifications(d)) == 6 and d.counted == {"change_notice_violations": 1}


# ----- the HTTP API (a running daemon, the real clock) ----------------------------------------


def _ago(days: float) -> str:
    return (dt.datetime.now(VN) - dt.timedelta(days=days)).isoformat(timespec="seconds")


def _ahead(minutes: float) -> str:
    return (dt.datetime.now(VN) + dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")


async def test_the_api_takes_the_same_rule(world: World) -> None:  # noqa: F811
    op = await world.caller("operator", "bo-a")

    async def post(ref: str, **body: Any) -> tuple[int, Any]:
        return await op.call(
            "POST",
            "/api/v1/announcements",
            {"agency": "bo-a", "ref": ref, "changes": {"port": 9443}, **body},
        )

    status, answer = await post("ahead-4", announced_at=_ahead(4), effective_at=in_days(30))
    assert status == 201 and answer["compliant"] is True, answer
    status, answer = await post("ahead-10", announced_at=_ahead(10), effective_at=in_days(30))
    assert status == 400 and "is in the future" in answer["error"], answer
    assert "up to 5 minutes ahead is allowed" in answer["error"]
    status, answer = await post("old", announced_at=_ago(400), effective_at=_ago(390))
    assert status == 400 and "more than a year (365 days) ago" in answer["error"], answer
    status, answer = await post("bad ref", effective_at=in_days(30))
    assert status == 400 and answer["error"] == (
        "ref: must be 1 to 128 letters (Vietnamese too), digits, or . _ : / -"
    )
    # A paper notice of 20 days ago for a change effective the next day, 19 days ago: late
    # (no working day strictly between two consecutive days), in effect, not alerted.
    status, answer = await post("12729/VPCP-KGVX", announced_at=_ago(20), effective_at=_ago(19))
    assert status == 201, answer
    assert answer["ref"] == "12729/VPCP-KGVX" and answer["working_days"] == 0
    assert answer["compliant"] is False and answer["recorded_in_effect"] is True
    running = world.running
    rules = running.daemon.rules
    assert rules is not None
    await wait_until(
        lambda: all(a.handled_at is not None for a in rules.announcements.items), 10, "handled"
    )
    subjects = await world.store.transact(
        lambda db: [s for (s,) in db.execute("SELECT subject FROM outbox").fetchall()]
    )
    assert any("Xác nhận thông báo thay đổi" in s for s in subjects), subjects
    assert not any("không đủ thời hạn" in s for s in subjects), subjects
    _, text = await running.get("/metrics")
    assert metric(text, "npsp_change_notice_violations_total") == 1.0
