"""The alert pipeline on an injected clock: route, mute, group, repeat, SMS budget, escalation,
storm. A real SQLite outbox; channels are function fakes here (real channels: test_notify_*)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from monitor.alerting.escalation import Acknowledgements
from monitor.alerting.outbox import Outbox, OutboxWorker
from monitor.alerting.pipeline import AlertPipeline
from monitor.config import Config
from monitor.config.alerting import AlertingSettings
from monitor.registry import Registry
from monitor.sqldialect import Handle
from monitor.state import Event, State
from monitor.store import Deposed, Store, StoreError
from notifiers.base import Delivery, Message, NotifyError
from tests.conftest import StateLocation

T0 = 1_796_000_000.0  # Monday 2026-11-30 07:53 in Hanoi


def phone_of(agency_id: str) -> str:
    """An obviously fake number, distinct per agency."""
    return f"+840{zlib.crc32(agency_id.encode()) % 10**8:08d}"


PHONE_HA_NOI = phone_of("ha-noi")


def agency(aid: str, name: str, systems: list[str], *, sms: bool = False) -> dict[str, Any]:
    contacts = [
        {
            "name": f"KT {aid}",
            "role": "technical-admin",
            "email": f"kt@{aid}.dvc.example",
            "portal_account": f"kt.{aid}",
            **({"phone": phone_of(aid)} if sms else {}),
            "channels": ["sms", "email"] if sms else ["email", "inbox"],
        },
        {
            "name": f"CC {aid}",
            "role": "high-level-admin",
            "email": f"cc@{aid}.dvc.example",
            "channels": ["email"],
        },
    ]
    return {
        "id": aid,
        "kind": "ministry",
        "name_vi": name,
        "name_en": f"{name} (en)",
        "code": aid[:4].upper(),
        "contacts": contacts,
        "systems": [
            {
                "id": s,
                "kind": "secure-server" if s == "secure-server" else "one-stop",
                "name": f"Hệ thống {s}",
                **({"depends_on": "secure-server"} if s != "secure-server" else {}),
                "checks": [{"id": "tcp", "kind": "tcp", "host": "h.example", "port": 1}],
            }
            for s in systems
        ],
    }


def make_config(agencies: list[dict[str, Any]], **alerting: Any) -> Config:
    return Config.model_validate(
        {
            "agencies": agencies,
            "alerting": {
                "operations": [
                    {"name": "VPCP trực", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
                ],
                **alerting,
            },
        }
    )


class Sent:
    """Everything handed to the fake channels, by channel."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.fail_next: dict[str, NotifyError] = {}

    def channel(self, name: str) -> Any:
        sent = self

        class Fake:
            channel = name

            async def send(self, message: Message) -> Delivery:
                error = sent.fail_next.pop(message.to, None)
                if error is not None:
                    raise error
                sent.messages.append(message)
                return Delivery(f"id-{len(sent.messages)}")

            async def aclose(self) -> None:
                return None

        return Fake()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m.to == address]


class World:
    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        acks: Acknowledgements | None = None,
        fence: Callable[[Handle], None] | None = None,
    ) -> None:
        self.now = T0
        self.config = config
        self.outbox = Outbox(
            store,
            config.alerting.outbox,
            clock=lambda: self.now,
            jitter=lambda: 0.5,
            workers_store=None if fence is None else store.fenced(fence),
        )
        self.pipeline = AlertPipeline(
            config.alerting,
            Registry.from_config(config),
            self.outbox,
            acks=acks,
            clock=lambda: self.now,
        )
        self.sent = Sent()
        self.workers = [
            OutboxWorker(self.outbox, self.sent.channel(c)) for c in ("sms", "email", "inbox")
        ]

    def event(
        self, key: str, old: State, new: State, reason: str = "check tcp: connect: refused"
    ) -> None:
        agency_id, system = key.split("/")
        self.pipeline.on_events([Event(self.now, agency_id, system, old, new, reason, "gw")])

    async def advance(self, seconds: float) -> None:
        """Let time pass, in steps, flushing groups and sending everything due."""
        end = self.now + seconds
        while True:
            await self.pipeline.tick()
            for worker in self.workers:
                while await worker.run_once():
                    pass
            due = self.pipeline.grouper.next_due()
            if due is None or due > end:
                break
            self.now = max(self.now, due)
        self.now = end
        await self.pipeline.tick()
        for worker in self.workers:
            while await worker.run_once():
                pass


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    s = await state_location.open()
    yield s
    await s.close()


async def test_route_and_group_three_systems_into_one_digest(store: Store) -> None:
    cfg = make_config(
        [
            agency("bo-tai-chinh", "Bộ Tài chính", ["secure-server", "a", "b"]),
            agency("bo-y-te", "Bộ Y tế", ["secure-server"]),
        ]
    )
    w = World(store, cfg)
    for s in ("secure-server", "a", "b"):
        w.event(f"bo-tai-chinh/{s}", State.UP, State.DOWN)
        w.now += 5
    await w.advance(14)  # the first event was 29 s ago
    assert w.sent.messages == []  # group_wait (30 s) not over yet
    await w.advance(2)
    kt = w.sent.to("kt@bo-tai-chinh.dvc.example")
    assert len(kt) == 1
    assert kt[0].subject == "[NPSP] 3 hệ thống của Bộ Tài chính mất kết nối"
    for s in ("secure-server", "a", "b"):
        assert f"bo-tai-chinh/{s}" in kt[0].text
    assert "Hỗ trợ: 1900.1096" in kt[0].text and "https://npsp.dvc.example/status" in kt[0].text
    assert "Đã thông báo: VPCP trực" in kt[0].text
    assert len(w.sent.to("kt.bo-tai-chinh")) == 1  # the inbox copy
    assert len(w.sent.to("ops@vpcp.dvc.example")) == 1
    assert w.sent.to("cc@bo-tai-chinh.dvc.example") == []  # high-level admins: only on escalation
    assert w.sent.to("kt@bo-y-te.dvc.example") == []  # other agencies are not told


async def test_unreachable_child_is_listed_in_the_parent_alert(store: Store) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server", "one-stop"])]))
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    w.event("ha-noi/one-stop", State.UP, State.UNREACHABLE, "ha-noi/secure-server is down")
    await w.advance(31)
    (msg,) = w.sent.to("kt@ha-noi.dvc.example")
    assert "ảnh hưởng: Hệ thống one-stop" in msg.text
    assert "ha-noi/one-stop" not in msg.text  # no alert of its own


async def test_gateway_cut_goes_to_operations_only(store: Store) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])]))
    w.pipeline.on_events(
        [Event(w.now, "_gateway", "uplink", State.UP, State.DOWN, "gateway cut off", "gw")]
    )
    await w.advance(31)
    assert [m.to for m in w.sent.messages] == ["ops@vpcp.dvc.example"]
    assert "mất đường truyền" in w.sent.messages[0].text


async def test_resolved_notice_threads_and_repeat_while_down(store: Store) -> None:
    w = World(
        store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])], repeat_interval="1h")
    )
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    (first,) = w.sent.to("kt@ha-noi.dvc.example")
    assert first.thread_key is None
    await w.advance(3600)
    repeat = w.sent.to("kt@ha-noi.dvc.example")[-1]
    assert repeat.subject.startswith("[NPSP] Nhắc lại")
    assert repeat.thread_key == first.key
    w.event("ha-noi/secure-server", State.DOWN, State.UP)
    await w.advance(301)
    resolved = w.sent.to("kt@ha-noi.dvc.example")[-1]
    assert "đã kết nối lại" in resolved.subject
    assert resolved.thread_key == first.key
    count = len(w.sent.messages)
    await w.advance(10 * 3600)
    assert len(w.sent.messages) == count  # nothing more once resolved


async def test_silence_mutes_but_an_alert_already_sent_gets_its_resolved_notice(
    store: Store,
) -> None:
    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server", "portal"])],
        silences=[
            {"agency": "ha-noi", "system": "portal", "ends": T0 + 86400, "reason": "bảo trì"}
        ],
    )
    w = World(store, cfg)
    w.event("ha-noi/portal", State.UP, State.DOWN)
    await w.advance(600)
    assert w.sent.messages == []  # silenced: nobody paged
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    (msg,) = w.sent.to("kt@ha-noi.dvc.example")
    assert "ha-noi/secure-server" in msg.text and "ha-noi/portal" not in msg.text
    # Now the fired alert gets silenced too; its recovery must still be announced.
    w.pipeline.update_registry(
        AlertingSettings.model_validate(
            {
                **cfg.alerting.model_dump(by_alias=True),
                "silences": [{"agency": "ha-noi", "ends": T0 + 86400, "reason": "bảo trì"}],
            }
        ),
        w.pipeline.registry,
    )
    w.event("ha-noi/secure-server", State.DOWN, State.UP)
    w.event("ha-noi/portal", State.DOWN, State.UP)
    await w.advance(301)
    last = w.sent.to("kt@ha-noi.dvc.example")[-1]
    assert "đã kết nối lại" in last.subject and "ha-noi/secure-server" in last.text
    assert "ha-noi/portal" not in last.text  # never announced, so no resolved notice either


async def test_sms_budget_folds_changes_into_the_next_digest(store: Store) -> None:
    w = World(
        store,
        make_config(
            [agency("ha-noi", "Hà Nội", ["secure-server", "a", "b", "c"], sms=True)],
            group_interval="1m",
            sms_min_interval="5m",
        ),
    )
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    assert len(w.sent.to(PHONE_HA_NOI)) == 1
    for s in ("a", "b", "c"):
        w.event(f"ha-noi/{s}", State.UP, State.DOWN)
        await w.advance(60)
    # e-mail follows group_interval (1 min); SMS waits out its 5-minute budget
    assert len(w.sent.to("kt@ha-noi.dvc.example")) >= 3
    assert len(w.sent.to(PHONE_HA_NOI)) == 1
    await w.advance(150)
    sms = w.sent.to(PHONE_HA_NOI)
    assert len(sms) == 2
    assert sms[1].text.startswith("NPSP: 4 hệ thống MẤT KẾT NỐI")  # a count, not 4 ids


async def test_escalation_up_the_ladder_on_wall_clock_time(store: Store) -> None:
    """A configured ladder: operations after 10 min, the high-level admins after 45 min,
    counted from the outage's start on wall-clock time (here a Monday 09:00)."""
    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server"])],
        escalation=[
            {"after": "10m", "to": "operations"},
            {"after": "45m", "to": "high-level-admins"},
        ],
        repeat_interval="24h",
    )
    w = World(store, cfg)
    w.now = 1_796_004_000.0  # Monday 2026-11-30 09:00 in Hanoi
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    ops_before = len(w.sent.to("ops@vpcp.dvc.example"))  # the alert itself
    await w.advance(10 * 60 - 60)
    assert len(w.sent.to("ops@vpcp.dvc.example")) == ops_before
    await w.advance(60)  # 09:10
    (esc,) = w.sent.to("ops@vpcp.dvc.example")[ops_before:]
    assert esc.subject.startswith("[NPSP] Chưa được xử lý")
    await w.advance(34 * 60)
    assert w.sent.to("cc@ha-noi.dvc.example") == []
    await w.advance(60)  # 09:45
    (cc,) = w.sent.to("cc@ha-noi.dvc.example")
    assert cc.subject.startswith("[NPSP] Chưa được xử lý")
    await w.advance(23 * 3600)  # the ladder has no third step
    escalations = [m for m in w.sent.messages if m.subject.startswith("[NPSP] Chưa được xử lý")]
    assert [m.to for m in escalations] == ["ops@vpcp.dvc.example", "cc@ha-noi.dvc.example"]


async def test_acknowledged_incident_does_not_escalate(store: Store) -> None:
    cfg = make_config([agency("ha-noi", "Hà Nội", ["secure-server"])])
    steps: list[tuple[str, int, str, float]] = []

    class Acks:
        def acknowledged(self, incident: str) -> bool:
            return incident.startswith("ha-noi/secure-server@")

        def escalated(self, incident: str, step: int, target: str, at: float) -> None:
            steps.append((incident, step, target, at))

        def steps_taken(self, incident: str) -> tuple[int, float | None]:
            return 0, None

    w = World(store, cfg, acks=Acks())
    w.now = 1_796_004_000.0
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(8 * 3600)
    assert w.sent.to("cc@ha-noi.dvc.example") == []
    assert steps == []


async def test_an_empty_ladder_never_escalates(store: Store) -> None:
    cfg = make_config([agency("ha-noi", "Hà Nội", ["secure-server"])], escalation=[])
    w = World(store, cfg)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(3 * 24 * 3600)
    assert w.sent.to("cc@ha-noi.dvc.example") == []


async def test_storm_2000_systems_54_agencies_one_message_per_recipient_and_channel(
    store: Store,
) -> None:
    agencies = [
        agency(
            f"ag-{i:02d}",
            f"Đơn vị {i}",
            ["secure-server", *[f"s{j}" for j in range(36 + (i < 2))]],
            sms=True,
        )
        for i in range(54)
    ]
    w = World(store, make_config(agencies))
    keys = [f"ag-{i:02d}/{s['id']}" for i, a in enumerate(agencies) for s in a["systems"]][:2000]
    assert len(keys) == 2000
    for n, key in enumerate(keys):
        w.now = T0 + n * 0.03  # all within one minute
        w.event(key, State.UP, State.DOWN)
    await w.advance(60)
    by_target: dict[str, int] = {}
    for m in w.sent.messages:
        by_target[m.to] = by_target.get(m.to, 0) + 1
    assert max(by_target.values()) == 1  # one message per recipient and channel
    assert len(w.sent.messages) == 54 * 2 + 1  # sms + e-mail per agency, one for operations
    (ops,) = w.sent.to("ops@vpcp.dvc.example")
    # the first 200 systems are listed, the rest counted (the status page has them all)
    assert sum(f"({k})" in ops.text for k in keys) == 200
    assert "… và 1800 hệ thống khác: xem trang trạng thái." in ops.text
    assert ops.subject == "[NPSP] 2000 hệ thống của nhiều đơn vị mất kết nối"


async def test_outbox_retries_then_falls_back_to_the_next_channel(store: Store) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"], sms=True)]))
    w.sent.fail_next[PHONE_HA_NOI] = NotifyError("HTTP 500", permanent=False)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    assert w.sent.to(PHONE_HA_NOI) == []
    await w.advance(10)  # backoff 5 s x (0.5 + 0.5) jitter
    assert len(w.sent.to(PHONE_HA_NOI)) == 1
    # An invalid number is final: the notice moves to the contact's next listed channel
    # (e-mail: the contact lists [sms, email]), saying why it comes that way.
    w.sent.fail_next[PHONE_HA_NOI] = NotifyError("21211 invalid number", permanent=True)
    w.event("ha-noi/secure-server", State.DOWN, State.UP)
    await w.advance(301)
    assert len(w.sent.to(PHONE_HA_NOI)) == 1
    fallback = [m for m in w.sent.to("kt@ha-noi.dvc.example") if "Không gửi được" in m.text]
    assert len(fallback) == 1 and fallback[0].channel == "email"
    assert "đã kết nối lại" in fallback[0].subject
    assert f"qua sms tới {PHONE_HA_NOI}: 21211 invalid number" in fallback[0].text
    assert w.sent.to("kt.ha-noi") == []  # not listed, and e-mail took it: no third copy


async def test_enqueue_is_idempotent_and_a_crash_mid_send_resends_once(store: Store) -> None:
    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])]))
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    w.now += 31
    assert await w.pipeline.tick() == 3  # e-mail, inbox, operations
    claimed = await w.outbox.claim("email", w.now)
    assert claimed is not None
    # A second host (or a re-run) queues the same digest: ignored by its key.
    assert await w.outbox.enqueue([claimed.item]) == 0
    # kill -9 here: the row stays 'sending'. At the next start it is sent again.
    assert await w.outbox.recover() == 1
    for worker in w.workers:
        while await worker.run_once():
            pass
    assert [m.key for m in w.sent.to("kt@ha-noi.dvc.example")] == [claimed.item.key]
    assert (await w.outbox.pending()) == {}


async def test_restart_does_not_page_again_but_a_lost_digest_is_sent(store: Store) -> None:
    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server"]), agency("hue", "Huế", ["secure-server"])]
    )
    w = World(store, cfg)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await store.record(
        [
            Event(
                w.now,
                "ha-noi",
                "secure-server",
                State.UP,
                State.DOWN,
                "check tcp: connect: refused",
                "gw",
            )
        ]
    )
    await w.advance(31)
    assert len(w.sent.to("kt@ha-noi.dvc.example")) == 1
    # hue goes down and its state is saved, but the daemon dies before the digest is written
    await store.record(
        [
            Event(
                w.now,
                "hue",
                "secure-server",
                State.UP,
                State.DOWN,
                "check tcp: connect: refused",
                "gw",
            )
        ]
    )

    after = World(store, cfg)  # a new process on the same database
    after.now = w.now + 60
    after.pipeline.restore(await store.states(), await after.outbox.told())
    await after.advance(31)
    assert after.sent.to("kt@ha-noi.dvc.example") == []  # already told: a restart pages nobody
    assert len(after.sent.to("kt@hue.dvc.example")) == 1  # the lost digest is sent
    ops = after.sent.to("ops@vpcp.dvc.example")
    assert len(ops) == 1 and "hue/secure-server" in ops[0].text
    # and the resolved notice still reaches those told before the restart
    after.event("ha-noi/secure-server", State.DOWN, State.UP)
    await after.advance(301)
    (resolved,) = after.sent.to("kt@ha-noi.dvc.example")
    assert "đã kết nối lại" in resolved.subject


async def test_a_child_already_paged_down_that_becomes_unreachable_is_not_paged_again(
    store: Store,
) -> None:
    w = World(
        store,
        make_config(
            [agency("ha-noi", "Hà Nội", ["secure-server", "one-stop"])], repeat_interval="1h"
        ),
    )
    w.event("ha-noi/one-stop", State.UP, State.DOWN)
    await w.advance(31)
    assert len(w.sent.to("kt@ha-noi.dvc.example")) == 1
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    w.event("ha-noi/one-stop", State.DOWN, State.UNREACHABLE, "ha-noi/secure-server is down")
    await w.advance(301)
    second = w.sent.to("kt@ha-noi.dvc.example")[-1]
    assert "ảnh hưởng: Hệ thống one-stop" in second.text  # inside the parent's alert
    assert "(ha-noi/one-stop): KHÔNG TRUY CẬP ĐƯỢC" in second.text  # no longer called down
    w.event("ha-noi/secure-server", State.DOWN, State.UP)
    w.event("ha-noi/one-stop", State.UNREACHABLE, State.UP)
    await w.advance(301)
    last = w.sent.to("kt@ha-noi.dvc.example")[-1]
    assert "ha-noi/one-stop" in last.text and "ha-noi/secure-server" in last.text
    assert "đã kết nối lại" in last.subject


async def test_digests_the_database_refused_go_out_later_and_a_deposed_leader_drops_them(
    store: Store,
) -> None:
    """The outbox is away when a digest falls due: it is written, as it was, at the next tick
    (not lost with its group's "told"). On several hosts, a leader deposed in the meantime
    writes nothing: the next leader tells whoever the store does not say was told."""
    refuse: list[StoreError] = []

    def fence(db: Handle) -> None:
        del db
        if refuse:
            raise refuse[0]

    w = World(store, make_config([agency("ha-noi", "Hà Nội", ["secure-server"])]), fence=fence)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    refuse.append(StoreError("the database is away"))
    w.now += 31
    with pytest.raises(StoreError):
        await w.pipeline.tick()
    with pytest.raises(StoreError):
        await w.pipeline.tick()  # still away: still waiting, nothing else taken
    refuse.clear()
    await w.advance(1)
    (msg,) = w.sent.to("kt@ha-noi.dvc.example")
    assert "ha-noi/secure-server" in msg.text
    assert {incident for incident, _ in await w.outbox.told()} == {
        f"ha-noi/secure-server@{int(T0)}"
    }

    w.event("ha-noi/secure-server", State.DOWN, State.UP, "all checks pass")
    refuse.append(Deposed("this host no longer leads"))
    w.now = max(w.now, w.pipeline.grouper.next_due() or w.now)  # the recovery notice is due
    with pytest.raises(Deposed):
        await w.pipeline.tick()
    refuse.clear()
    await w.advance(60)
    assert len(w.sent.to("kt@ha-noi.dvc.example")) == 1, "a deposed leader's digest was queued"


async def test_an_escalation_step_is_recorded_only_with_its_page(store: Store) -> None:
    """The step's page is refused (the database away, then this host deposed): the step is
    not recorded, or the next leader, which takes no recorded step again, would never page."""
    steps: list[tuple[str, int, str, float]] = []

    class Acks:
        def acknowledged(self, incident: str) -> bool:
            return False

        def escalated(self, incident: str, step: int, target: str, at: float) -> None:
            steps.append((incident, step, target, at))

        def steps_taken(self, incident: str) -> tuple[int, float | None]:
            return 0, None

    refuse: list[StoreError] = []

    def fence(db: Handle) -> None:
        del db
        if refuse:
            raise refuse[0]

    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server"])],
        escalation=[{"after": "10m", "to": "operations"}],
        repeat_interval="24h",
    )
    w = World(store, cfg, acks=Acks(), fence=fence)
    w.now = 1_796_004_000.0
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(31)
    refuse.append(StoreError("the database is away"))
    w.now += 10 * 60
    with pytest.raises(StoreError):
        await w.pipeline.tick()
    assert steps == [], "recorded although its page was not queued"
    refuse[0] = Deposed("this host no longer leads")
    with pytest.raises(Deposed):
        await w.pipeline.tick()
    assert steps == []
    refuse.clear()
    await w.advance(1)
    assert steps == [], "the deposed batch is dropped whole: the next leader takes the step"


async def test_a_recovery_recorded_but_never_told_is_told_after_a_restart(store: Store) -> None:
    """The leader recorded the recovery and died before queuing its notice (or was deposed and
    its batch dropped): whoever was told of the outage hears of the recovery from the next
    one, and nobody else does."""
    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server"]), agency("hue", "Huế", ["secure-server"])]
    )
    w = World(store, cfg)
    down = Event(w.now, "ha-noi", "secure-server", State.UP, State.DOWN, "connect: refused", "gw")
    await store.record([down])
    w.pipeline.on_events([down])
    await w.advance(31)
    assert len(w.sent.to("kt@ha-noi.dvc.example")) == 1
    up = Event(w.now + 60, "ha-noi", "secure-server", State.DOWN, State.UP, "all pass", "gw")
    await store.record([up])  # ...and the process dies here

    after = World(store, cfg)
    after.now = w.now + 120
    after.pipeline.restore(await store.states(), await after.outbox.told())
    await after.advance(301)
    (resolved,) = after.sent.to("kt@ha-noi.dvc.example")
    assert "đã kết nối lại" in resolved.subject
    assert after.sent.to("kt@hue.dvc.example") == [], "only those told of it"
    assert await after.outbox.told() == set(), "told rows of the ended outage are dropped"
    again = World(store, cfg)  # one more restart: nothing owed any more
    again.now = after.now + 600
    again.pipeline.restore(await store.states(), await again.outbox.told())
    await again.advance(301)
    assert again.sent.to("kt@ha-noi.dvc.example") == []
