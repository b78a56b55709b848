"""The SMS budget and fallbacks as the outbox keeps them (issue 9, items 2, 3, 5 and 6).

A real SQLite outbox and the real pipeline on an injected clock; the channel is a function fake
(the outermost seam; the real Twilio client against a Twilio-API peer is in
tests/test_crash_recovery.py). The fake records *when* the provider accepted each message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from monitor.alerting.notices import Notice
from monitor.state import Event, State
from monitor.store import Store
from notifiers.base import NotifyError
from notifiers.textfold import fold_vietnamese, sms_segments
from tests.conftest import StateLocation

from .test_alert_pipeline import PHONE_HA_NOI, World, agency, make_config


@pytest.fixture
async def store(state_location: StateLocation) -> AsyncIterator[Store]:
    """On both backends (tests/conftest.py)."""
    s = await state_location.open()
    yield s
    await s.close()


def sms_world(store: Store, **alerting: object) -> World:
    settings: dict[str, object] = {
        "group_wait": "1s",
        "group_interval": "5s",
        "sms_min_interval": "30s",
        **alerting,
    }
    cfg = make_config(
        [agency("ha-noi", "Hà Nội", ["secure-server", "a", "b"], sms=True)], **settings
    )
    w = World(store, cfg)
    w.outbox.sms_min_interval = cfg.alerting.sms_min_interval
    return w


def notices_sent(w: World) -> list[str]:
    """The notices' SMS to the phone, without the agency link every notice SMS ends with."""
    texts = [m.text for m in w.sent.to(PHONE_HA_NOI)]
    assert all(t.endswith("/agency/ha-noi") for t in texts), texts
    return [t.rsplit(" ", 1)[0] for t in texts]


class Clocked:
    """Runs the world second by second; ``times`` says when the provider accepted each SMS
    to the phone (the outbox's own record of it)."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.times: list[float] = []

    async def run(self, seconds: int) -> None:
        for _ in range(seconds):
            await self.w.advance(1)
        rows = await self.w.outbox.store.transact(
            lambda db: db.execute(
                "SELECT DISTINCT sent_at FROM outbox WHERE channel = 'sms' AND address = ?"
                " AND status = 'sent' ORDER BY sent_at",
                (PHONE_HA_NOI,),
            ).fetchall()
        )
        self.times = [t for (t,) in rows]

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


async def test_the_budget_counts_from_the_providers_acceptance_not_the_queueing(
    store: Store,
) -> None:
    w = sms_world(store)
    clock = Clocked(w)
    # The provider refuses the first attempt for 20 s (429 with Retry-After).
    w.sent.fail_next[PHONE_HA_NOI] = NotifyError("429", permanent=False, retry_after=20)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await clock.run(10)
    w.event("ha-noi/a", State.UP, State.DOWN)  # folded into the next digest
    await clock.run(80)
    assert len(clock.times) == 2
    assert clock.gaps()[0] >= 30, clock.times  # queued 30 s apart, but accepted 30 s apart too


async def test_a_restart_honours_the_last_sms_sent_before_it(store: Store) -> None:
    w = sms_world(store, group_interval="25s")
    clock = Clocked(w)
    down = [_down("secure-server", w.now)]
    await store.record(down)  # as the engine does: stored, then handed to the pipeline
    w.pipeline.on_events(down)
    await clock.run(3)
    assert len(clock.times) == 1
    down = [_down("a", w.now)]  # stored, but not told yet when the daemon dies
    await store.record(down)
    w.pipeline.on_events(down)

    # The restarted daemon: a new pipeline and outbox on the same database.
    again = sms_world(store, group_interval="25s")
    again.now = w.now + 1
    again.pipeline.restore(await store.states(), await again.outbox.told())
    later = Clocked(again)
    await later.run(60)
    (told,) = again.sent.to(PHONE_HA_NOI)  # "a" is told, but not before the first SMS's budget
    assert "ha-noi/a" in told.text
    assert later.gaps() == [pytest.approx(30, abs=1)], later.times


async def test_notices_share_the_budget_and_fold_into_one_sms(store: Store) -> None:
    w = sms_world(store)
    clock = Clocked(w)
    for n in range(4):  # a late announcement, a maintenance notice, ... within seconds
        notice = Notice(
            key=f"test/{n}",
            subject={"vi": f"Thông báo {n}"},
            text={"vi": f"Nội dung {n}"},
            sms={"vi": f"NPSP: thong bao {n}"},
        )
        await w.pipeline.send_notice(notice, [("ha-noi", "technical-admins")])
        await clock.run(4)
    await clock.run(40)
    sms = w.sent.to(PHONE_HA_NOI)
    assert len(sms) == 2, [m.text for m in sms]
    assert sms[0].text.startswith("NPSP: thong bao 0")
    # The three that waited: one SMS, the newest first.
    assert sms[1].text.index("thong bao 3") < sms[1].text.index("thong bao 1")
    assert clock.gaps()[0] >= 30
    # E-mail is not budgeted: every notice went out on its own.
    assert len([m for m in w.sent.to("kt@ha-noi.dvc.example") if "Thông báo" in m.subject]) == 4


async def test_a_channel_that_keeps_failing_gives_way_after_its_time_budget(
    store: Store,
) -> None:
    w = sms_world(store, outbox={"fallback_after": "2m", "backoff_base": "5s"})
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    for _ in range(40):
        w.sent.fail_next[PHONE_HA_NOI] = NotifyError("HTTP 503", permanent=False)
        await w.advance(5)
        fallback = [m for m in w.sent.to("kt@ha-noi.dvc.example") if "Không gửi được" in m.text]
        if fallback:
            break
    assert len(fallback) == 1, "the SMS outage was never handed to the next channel"
    assert 120 <= w.now - 1_796_000_000.0 <= 127  # at the 2-minute budget, not 12 attempts
    assert "HTTP 503" in fallback[0].text


def _down(system: str, at: float) -> Event:
    return Event(at, "ha-noi", system, State.UP, State.DOWN, "connect: refused", "gw")


def two_segments(text: str) -> bool:
    """What the real SMS channel says with ``max_segments: 2`` and Vietnamese folding."""
    return sms_segments(fold_vietnamese(text.strip())) <= 2


async def test_a_merged_sms_never_cuts_a_notice(store: Store) -> None:
    """The review found a merged SMS cut to its segments with every row marked sent: the
    oldest notices were lost. Only what fits whole goes together; the rest waits its turn."""
    w = sms_world(store)
    w.outbox.sms_fits = two_segments
    texts = [f"NPSP: thong bao so {n}: " + "chi tiet " * 12 for n in range(5)]  # ~130 each
    for n, text in enumerate(texts):
        notice = Notice(
            key=f"long/{n}", subject={"vi": f"TB {n}"}, text={"vi": text}, sms={"vi": text}
        )
        await w.pipeline.send_notice(notice, [("ha-noi", "technical-admins")])
        await w.advance(1)
    clock = Clocked(w)
    await clock.run(200)
    sms = [m.text for m in w.sent.to(PHONE_HA_NOI)]
    for text in texts:
        assert sum(text in m for m in sms) == 1, (text, sms)  # each whole, exactly once
    assert all(two_segments(m) for m in sms)
    assert min(clock.gaps()) >= 30


async def test_an_unanswered_sms_counts_against_the_budget(store: Store) -> None:
    """No answer from the provider: it may have reached the phone. The retry of that SMS goes
    at its backoff, but nothing else goes to the number before the budget."""
    w = sms_world(store)
    w.sent.fail_next[PHONE_HA_NOI] = NotifyError("timeout", permanent=False, maybe_delivered=True)
    w.event("ha-noi/secure-server", State.UP, State.DOWN)
    await w.advance(2)
    started = w.now
    assert w.sent.to(PHONE_HA_NOI) == []
    notice = Notice(key="n", subject={"vi": "TB"}, text={"vi": "x"}, sms={"vi": "NPSP: tb"})
    await w.pipeline.send_notice(notice, [("ha-noi", "technical-admins")])
    clock = Clocked(w)
    await clock.run(12)
    (first,) = w.sent.to(PHONE_HA_NOI)  # the retry of the unanswered one, not the notice
    assert "MẤT KẾT NỐI" in first.text
    await clock.run(30)
    second = w.sent.to(PHONE_HA_NOI)[1]
    assert "NPSP: tb" in second.text
    assert clock.times[1] - started >= 28, clock.times


async def test_a_message_cut_off_by_a_crash_is_resent_at_once(store: Store) -> None:
    """The SMS on the wire at a kill -9 goes again at the restart (it may never have left);
    what else waits for the number still waits for the budget counted from it."""
    w = sms_world(store)
    notice = Notice(key="a", subject={"vi": "A"}, text={"vi": "A"}, sms={"vi": "NPSP: A"})
    await w.pipeline.send_notice(notice, [("ha-noi", "technical-admins")])
    claimed = await w.outbox.claim("sms", w.now)  # on the wire ... and the daemon dies
    assert claimed is not None
    again = sms_world(store)
    again.now = w.now + 2
    assert await again.outbox.recover() == 1
    later = Notice(key="b", subject={"vi": "B"}, text={"vi": "B"}, sms={"vi": "NPSP: B"})
    await again.pipeline.send_notice(later, [("ha-noi", "technical-admins")])
    await again.advance(1)
    assert notices_sent(again) == ["NPSP: A"]
    await again.advance(30)
    assert notices_sent(again) == ["NPSP: A", "NPSP: B"]


async def test_a_clock_stepped_back_does_not_hold_a_number_for_the_step(store: Store) -> None:
    w = sms_world(store)
    first = Notice(key="a", subject={"vi": "A"}, text={"vi": "A"}, sms={"vi": "NPSP: A"})
    await w.pipeline.send_notice(first, [("ha-noi", "technical-admins")])
    await w.advance(1)
    w.now -= 3600  # NTP steps the clock back an hour
    second = Notice(key="b", subject={"vi": "B"}, text={"vi": "B"}, sms={"vi": "NPSP: B"})
    await w.pipeline.send_notice(second, [("ha-noi", "technical-admins")])
    for _ in range(31):
        await w.advance(1)
    assert notices_sent(w) == ["NPSP: A", "NPSP: B"]
