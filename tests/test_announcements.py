"""Change announcements on an injected clock: validation and notice, the late-notice alert
(once, to the right people), the switch of expected values, the catalog, cancellation.

A real SQLite store and the real alert pipeline; channels are fakes at the outermost seam (the
real ones are tested in test_notify_*; MQTT intake end to end in test_announcements_mqtt)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.config import Config
from monitor.registry import Registry
from monitor.rules.announcements import (
    MAX_PAYLOAD,
    AnnouncementDesk,
    AnnouncementRejected,
    cancel,
    examine,
    load_all,
    parse_request,
    save,
)
from monitor.rules.announcements.catalog import build_catalog
from monitor.rules.announcements.intake import MqttAnnouncements
from monitor.rules.desk import RulesContext
from monitor.store import Store
from monitor.workdays import WorkCalendar
from npsp_common.types import SecretSource
from tests.conftest import StateLocation

from .test_alert_pipeline import World, agency

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FP_OLD = ":".join(["AB"] * 32)
FP_NEW = ":".join(["CD"] * 32)


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN).timestamp()


def fleet() -> Config:
    ha_noi = agency("ha-noi", "Hà Nội", ["secure-server", "one-stop"])
    ha_noi["systems"][0]["checks"] = [
        {
            "id": "tls",
            "kind": "tls",
            "host": "ssv.ha-noi.example",
            "port": 8443,
            "tls": {"expected_fingerprint_sha256": FP_OLD},
        },
        {
            "id": "api",
            "kind": "http",
            "url": "https://ssv.ha-noi.example:8443/status",
        },
        {
            "id": "dns",
            "kind": "dns",
            "name": "ssv.ha-noi.example",
            "expected_addresses": ["192.0.2.10"],
        },
    ]
    # Bộ Y tế's one-stop system reaches the portal through Hà Nội's secure server.
    bo_y_te = agency("bo-y-te", "Bộ Y tế", ["secure-server", "one-stop"])
    bo_y_te["systems"][1]["depends_on"] = ["ha-noi/secure-server"]
    bystander = agency("bo-cong-an", "Bộ Công an", ["secure-server"])
    return Config.model_validate(
        {
            "agencies": [ha_noi, bo_y_te, bystander],
            "alerting": {
                "operations": [
                    {"name": "VPCP trực", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
                ]
            },
        }
    )


class Desk:
    """The desk with the real pipeline of a World as its notice sink, and counted metrics."""

    def __init__(self, store: Store, config: Config, now: float) -> None:
        self.world = World(store, config)
        self.world.now = now
        self.registry = Registry.from_config(config)
        self.counted: dict[str, int] = {}
        self.overrides: list[dict[str, Any]] = []
        self.ctx = RulesContext(
            store,
            WorkCalendar(config.calendar),
            self.world.pipeline,
            lambda: self.registry,
            clock=lambda: self.world.now,
            counters={
                "change_notice_violations": lambda: self._count("change_notice_violations"),
                "announcements_rejected": lambda: self._count("announcements_rejected"),
            },
        )

        async def on_overrides(overrides: dict[str, Any]) -> None:
            self.overrides.append(overrides)

        self.desk = AnnouncementDesk(self.ctx, on_overrides=on_overrides)

    def _count(self, name: str) -> None:
        self.counted[name] = self.counted.get(name, 0) + 1

    async def submit(self, payload: dict[str, Any], agency_id: str = "ha-noi") -> Any:
        request = parse_request(json.dumps(payload).encode(), agency_id)
        return await self.desk.submit(request, agency_id, "test")

    async def deliver(self) -> None:
        await self.world.advance(0)


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    s = await state_location.open()
    yield s
    await s.close()


MONDAY_0900 = at("2026-12-07T09:00")
TOKEN = "ha-noi-announce-token-0123456789abcdef"


def intake_for(desk: AnnouncementDesk, tmp_path: Path) -> MqttAnnouncements:
    """The MQTT intake with ha-noi's announcement token in a file (no broker: answers are
    returned)."""
    (tmp_path / "announce-ha-noi").write_text(TOKEN + "\n", encoding="utf-8")
    return MqttAnnouncements(
        desk, tokens={"ha-noi": SecretSource(file=tmp_path / "announce-ha-noi")}
    )


def signed(payload: dict[str, Any], token: str = TOKEN) -> bytes:
    return json.dumps({"token": token, **payload}).encode()


def confirmations(d: Desk) -> list[Any]:
    return [m for m in d.world.sent.messages if "Xác nhận thông báo thay đổi" in m.subject]


def verifications(d: Desk) -> list[Any]:
    """The confirmations of changes recorded after they took effect: they ask to verify."""
    return [m for m in d.world.sent.messages if m.subject.startswith("[NPSP] CẦN XÁC MINH")]


# ----- notice -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("effective", "days", "compliant"),
    [
        ("2026-12-11T00:00", 3, True),  # PRODUCT.md: Tue, Wed, Thu
        ("2026-12-10T23:59", 2, False),  # Tue, Wed
        ("2026-12-14T08:00", 4, True),  # the weekend does not count
        ("2026-12-07T18:00", 0, False),  # the same day
    ],
)
def test_notice_is_counted_in_working_days(effective: str, days: int, compliant: bool) -> None:
    config = fleet()
    request = parse_request(
        json.dumps({"effective_at": effective, "changes": {"fingerprint_sha256": FP_NEW}}).encode(),
        "ha-noi",
    )
    a = examine(
        request,
        "ha-noi",
        registry=Registry.from_config(config),
        calendar=WorkCalendar(config.calendar),
        now=MONDAY_0900,
        source="test",
    )
    assert (a.working_days, a.compliant, a.required) == (days, compliant, 3)
    assert a.system == "secure-server"  # the agency's only secure server by default
    assert a.announced_at == MONDAY_0900


def test_the_new_year_swap_shortens_a_notice() -> None:
    """2026-01-02 is a day off (the package lacks it): Wed 31/12 → Tue 06/01 has only Mon 5/1."""
    config = fleet()
    request = parse_request(
        json.dumps({"effective_at": "2026-01-06T08:00", "changes": {"text": "new rack"}}).encode(),
        "ha-noi",
    )
    a = examine(
        request,
        "ha-noi",
        registry=Registry.from_config(config),
        calendar=WorkCalendar(config.calendar),
        now=at("2025-12-31T10:00"),
        source="test",
    )
    assert (a.working_days, a.compliant) == (1, False)


# ----- malformed announcements are refused with a reason --------------------------------------


@pytest.mark.parametrize(
    ("payload", "agency_id", "reason"),
    [
        (b"\xff\xfe", "ha-noi", "not UTF-8"),
        (b"{not json", "ha-noi", "not JSON"),
        (b"[1, 2]", "ha-noi", "must be a JSON object"),
        (b"x" * (MAX_PAYLOAD + 1), "ha-noi", "exceeds"),
        (
            json.dumps({"effective_at": "2026-13-45", "changes": {"port": 443}}).encode(),
            "ha-noi",
            "effective_at",
        ),
        (json.dumps({"effective_at": "2026-12-20"}).encode(), "ha-noi", "changes: Field required"),
        (
            json.dumps({"effective_at": "2026-12-20", "changes": {}}).encode(),
            "ha-noi",
            "announce at least one change",
        ),
        (
            json.dumps(
                {"effective_at": "2026-12-20", "changes": {"fingerprint_sha256": "abc"}}
            ).encode(),
            "ha-noi",
            "not a SHA-256 fingerprint",
        ),
        (
            json.dumps({"effective_at": "2026-12-20", "changes": {"port": 70000}}).encode(),
            "ha-noi",
            "changes.port",
        ),
        (
            json.dumps(
                {
                    "effective_at": "2026-12-20",
                    "changes": {"addresses": ["192.0.2.1", "2001:db8::1"]},
                }
            ).encode(),
            "ha-noi",
            "not both",
        ),
        (
            json.dumps(
                {"effective_at": "2026-12-20", "changes": {"port": 443}, "colour": "red"}
            ).encode(),
            "ha-noi",
            "colour: Extra inputs are not permitted",
        ),
        (
            json.dumps(
                {"agency": "bo-y-te", "effective_at": "2026-12-20", "changes": {"port": 443}}
            ).encode(),
            "ha-noi",
            "only its own servers",
        ),
    ],
)
def test_malformed_payloads_are_refused(payload: bytes, agency_id: str, reason: str) -> None:
    with pytest.raises(AnnouncementRejected) as caught:
        parse_request(payload, agency_id)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("agency_id", "payload", "reason"),
    [
        ("so-khong-co", {"effective_at": "2026-12-20", "changes": {"port": 1}}, "unknown agency"),
        (
            "ha-noi",
            {"system": "nope", "effective_at": "2026-12-20", "changes": {"port": 1}},
            "has no system 'nope'",
        ),
        (
            "ha-noi",
            {"effective_at": "2026-12-01T08:00", "changes": {"port": 1}},
            "is not after announced_at",
        ),
        (
            "ha-noi",
            {
                "announced_at": "2026-12-09T08:00",
                "effective_at": "2026-12-20",
                "changes": {"port": 1},
            },
            "is in the future",
        ),
        ("ha-noi", {"effective_at": "2028-12-20", "changes": {"port": 1}}, "days ahead"),
    ],
)
def test_announcements_that_contradict_the_registry_or_time_are_refused(
    agency_id: str, payload: dict[str, Any], reason: str
) -> None:
    config = fleet()
    with pytest.raises(AnnouncementRejected) as caught:
        examine(
            parse_request(json.dumps(payload).encode(), agency_id),
            agency_id,
            registry=Registry.from_config(config),
            calendar=WorkCalendar(config.calendar),
            now=MONDAY_0900,
            source="test",
        )
    assert reason in str(caught.value)


async def test_a_rejected_message_disturbs_nothing_and_says_why(
    store: Store, tmp_path: Path
) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    intake = intake_for(d.desk, tmp_path)
    bad = await intake.handle("ha-noi", signed({"ref": "r-1", "effective_at": "yesterday"}))
    assert bad["accepted"] is False and bad["ref"] == "r-1"
    assert "effective_at" in bad["reason"]
    unknown = await intake.handle(
        "so-khong-co", signed({"effective_at": "2026-12-20", "changes": {"port": 1}})
    )
    assert unknown == {
        "ref": None,
        "accepted": False,
        "reason": "not authenticated: no announcement token is configured for agency "
        "'so-khong-co'; announce through the HTTP API",
    }
    good = await intake.handle(
        "ha-noi", signed({"ref": "r-2", "effective_at": "2026-12-20", "changes": {"port": 9443}})
    )
    assert good["accepted"] is True and good["compliant"] is True
    assert [a.ref for a in await load_all(store)] == ["r-2"]
    assert d.counted == {"announcements_rejected": 2}
    await d.deliver()
    # Only the confirmation of the good one to its agency and operations.
    assert d.world.sent.messages == confirmations(d) and len(confirmations(d)) == 4


# ----- the late-notice alert ------------------------------------------------------------------


async def test_late_notice_alerts_operations_agency_and_dependents_once(store: Store) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    payload = {
        "ref": "cv-123",
        "effective_at": "2026-12-09T22:00",  # one working day (Tue)
        "changes": {"fingerprint_sha256": FP_NEW, "text": "gia hạn chứng thư số"},
        "author": "Nguyễn Văn A",
    }
    stored, new = await d.submit(payload)
    assert new and not stored.compliant and stored.working_days == 1
    await d.deliver()
    to = sorted(m.to for m in d.world.sent.messages if m not in confirmations(d))
    assert to == sorted(
        [
            "ops@vpcp.dvc.example",
            "kt@ha-noi.dvc.example",
            "kt.ha-noi",  # the technical admin's portal inbox
            "cc@ha-noi.dvc.example",
            "kt@bo-y-te.dvc.example",  # depends on ha-noi/secure-server
            "kt.bo-y-te",
        ]
    )
    mail = next(
        m
        for m in d.world.sent.messages
        if m.to == "kt@ha-noi.dvc.example" and m not in confirmations(d)
    )
    assert "không đủ thời hạn" in mail.subject
    assert "chỉ 1 ngày làm việc" in mail.text and "ít nhất 3 ngày làm việc" in mail.text
    assert "QĐ 31/2021/QĐ-TTg" in mail.text  # the legal source of the rule
    assert FP_NEW in mail.text
    assert d.counted == {"change_notice_violations": 1}

    # The same message again (MQTT redelivery), more ticks, a restarted desk: nothing more.
    again, new = await d.submit(payload)
    assert not new and again.id == stored.id
    await d.desk.tick(d.world.now + 60)
    restarted = Desk(store, fleet(), MONDAY_0900 + 120)
    await restarted.desk.refresh()
    await restarted.desk.tick(restarted.world.now)
    await restarted.deliver()
    await d.deliver()
    # Six late notices, and the four confirmations to the agency's admins and operations.
    assert len(d.world.sent.messages) == 10 and restarted.world.sent.messages == []
    assert len(confirmations(d)) == 4
    assert d.counted == {"change_notice_violations": 1} and restarted.counted == {}


async def test_a_compliant_notice_is_only_confirmed_to_the_agency(store: Store) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    stored, _ = await d.submit({"effective_at": "2026-12-11T00:00", "changes": {"port": 9443}})
    assert stored.compliant
    await d.deliver()
    assert d.counted == {}
    assert d.world.sent.messages == confirmations(d)
    assert sorted(m.to for m in d.world.sent.messages) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    )


async def test_an_announcement_written_by_the_cli_is_handled_by_the_daemon(store: Store) -> None:
    """The CLI writes to the database only; the daemon's desk finds it on refresh."""
    config = fleet()
    d = Desk(store, config, MONDAY_0900)
    request = parse_request(
        json.dumps({"effective_at": "2026-12-08T08:00", "changes": {"port": 9443}}).encode(),
        "ha-noi",
    )
    await save(
        store,
        examine(
            request,
            "ha-noi",
            registry=d.registry,
            calendar=d.ctx.calendar,
            now=MONDAY_0900,
            source="cli",
        ),
    )
    await d.desk.refresh()
    await d.desk.tick(MONDAY_0900)
    await d.deliver()
    told = d.world.sent.to("ops@vpcp.dvc.example")
    assert len(told) == 2  # the late notice and the confirmation
    assert len([m for m in told if "không đủ thời hạn" in m.subject]) == 1


# ----- expected values switch at the effective time -------------------------------------------


async def test_expected_values_switch_at_the_effective_time(store: Store) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    await d.submit(
        {
            "effective_at": "2026-12-14T08:00",
            "changes": {
                "fingerprint_sha256": FP_NEW,
                "host": "ssv2.ha-noi.example",
                "port": 9443,
                "addresses": ["192.0.2.20", "192.0.2.11"],
            },
        }
    )
    await d.desk.tick(at("2026-12-14T07:59"))
    assert d.overrides == []
    await d.desk.tick(at("2026-12-14T08:00"))
    (overrides,) = d.overrides
    registry = Registry.from_config(fleet(), overrides)
    checks = registry.systems["ha-noi/secure-server"].checks
    tls, http, dns = (c.spec for c in checks)
    assert tls.tls.expected_fingerprint_sha256 == FP_NEW  # type: ignore[attr-defined]
    assert (tls.host, tls.port) == ("ssv2.ha-noi.example", 9443)  # type: ignore[attr-defined]
    assert http.url == "https://ssv2.ha-noi.example:9443/status"  # type: ignore[attr-defined]
    # The http check pinned no fingerprint: it is not pinned now either.
    assert http.tls.expected_fingerprint_sha256 is None  # type: ignore[attr-defined]
    assert dns.expected_addresses == ["192.0.2.11", "192.0.2.20"]  # type: ignore[attr-defined]
    # Other systems untouched; the changed checks get a new fingerprint (they are rebuilt).
    before = Registry.from_config(fleet())
    assert registry.systems["bo-y-te/secure-server"].checks[0].fingerprint == (
        before.systems["bo-y-te/secure-server"].checks[0].fingerprint
    )
    assert checks[0].fingerprint != before.systems["ha-noi/secure-server"].checks[0].fingerprint
    # A restarted desk computes the same overrides from the store.
    again = Desk(store, fleet(), at("2026-12-15T08:00"))
    await again.desk.refresh()
    assert again.desk.overrides_at(again.world.now) == overrides


async def test_a_later_announcement_wins_and_a_cancelled_one_never_applies(store: Store) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    await d.submit({"effective_at": "2026-12-14T08:00", "changes": {"port": 9443}})
    later, _ = await d.submit({"effective_at": "2026-12-21T08:00", "changes": {"port": 10443}})
    withdrawn, _ = await d.submit(
        {"effective_at": "2026-12-22T08:00", "changes": {"host": "x.ha-noi.example"}}
    )
    await cancel(store, withdrawn.id, at("2026-12-15T08:00"))
    with pytest.raises(AnnouncementRejected, match="already cancelled"):
        await cancel(store, withdrawn.id, at("2026-12-15T08:00"))
    await d.desk.refresh()
    overrides = d.desk.overrides_at(at("2026-12-23T08:00"))
    assert overrides["ha-noi/secure-server"].port == 10443
    assert overrides["ha-noi/secure-server"].host is None
    # One already in effect can be cancelled too (review of issue 10: a late announcement
    # took effect before anyone could act on its confirmation); the earlier one stands again.
    await cancel(store, later.id, at("2026-12-21T09:00"))
    await d.desk.refresh()
    overrides = d.desk.overrides_at(at("2026-12-23T08:00"))
    assert overrides["ha-noi/secure-server"].port == 9443
    with pytest.raises(AnnouncementRejected, match="no announcement #999"):
        await cancel(store, 999, MONDAY_0900)


# ----- the catalog ----------------------------------------------------------------------------


async def test_catalog_lists_every_secure_server_with_current_and_upcoming(store: Store) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    await d.submit({"ref": "cv-9", "effective_at": "2026-12-14T08:00", "changes": {"port": 9443}})
    catalog = build_catalog(d.registry, d.desk, None, MONDAY_0900)
    servers = {s["agency"]: s for s in catalog["secure_servers"]}
    assert set(servers) == {"ha-noi", "bo-y-te", "bo-cong-an"}
    ha_noi = servers["ha-noi"]
    assert ha_noi["current"][0]["fingerprint_sha256"] == FP_OLD
    assert ha_noi["current"][0]["port"] == 8443
    (upcoming,) = ha_noi["upcoming"]
    assert upcoming["ref"] == "cv-9" and upcoming["changes"] == {"port": 9443}
    assert upcoming["effective_at"] == "2026-12-14T08:00:00+07:00"
    assert servers["bo-y-te"]["upcoming"] == []
    assert catalog["notice_rule"] == {"working_days": 3, "source": "QĐ 31/2021/QĐ-TTg, Chương VII"}
    # Once in effect, it is no longer upcoming.
    later = build_catalog(d.registry, d.desk, None, at("2026-12-14T08:00"))
    assert all(s["upcoming"] == [] for s in later["secure_servers"])


# ----- hostile or sloppy senders (review findings) --------------------------------------------


async def test_hostile_messages_are_refused_with_a_reason(store: Store, tmp_path: Path) -> None:
    # (A message dated in the past is a paper notice recorded later, and is taken with its real
    # date: tests/test_announced_at.py.)
    d = Desk(store, fleet(), MONDAY_0900)
    intake = intake_for(d.desk, tmp_path)
    cases = {
        "out of range": {"effective_at": "9999-12-31T23:59:59-12:00", "changes": {"port": 1}},
        "is in the future": {
            "announced_at": "2026-12-07T09:10",
            "effective_at": "2026-12-14T08:00",
            "changes": {"port": 1},
        },
    }
    for reason, payload in cases.items():
        answer = await intake.handle("ha-noi", signed(payload))
        assert answer["accepted"] is False and reason in answer["reason"], answer
    nested = b'{"ref": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = await intake.handle("ha-noi", nested)
    assert answer == {"ref": None, "accepted": False, "reason": "payload is nested too deeply"}
    assert await load_all(store) == []


async def test_a_message_without_ref_delivered_twice_is_stored_and_alerted_once(
    store: Store,
) -> None:
    d = Desk(store, fleet(), MONDAY_0900)
    payload = {"effective_at": "2026-12-08T08:00", "changes": {"port": 9443}}  # late
    first, new = await d.submit(payload)
    again, new_again = await d.submit(payload)
    assert new and not new_again and again.id == first.id and first.ref.startswith("auto-")
    await d.deliver()
    told = d.world.sent.to("ops@vpcp.dvc.example")
    assert len(told) == 2  # one late notice, one confirmation
    assert d.counted == {"change_notice_violations": 1}
