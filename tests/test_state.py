"""The state machine's rules, driven by an injected time (no sleeps, no network)."""

from __future__ import annotations

from monitor.reasons import say
from monitor.state import (
    GATEWAY_AGENCY,
    CheckStatus,
    Event,
    State,
    StateMachine,
    SystemStatus,
    Thresholds,
)
from npsp_common.types import ProbeResult, Why
from probes.reasons import warn, why

OK = ProbeResult(True, "HTTP 200", 0.01)
FAIL = ProbeResult(False, "connect: refused", 0.001)


def system(
    key: str, *, parents: tuple[str, ...] = (), checks: int = 1, fail: int = 2, succ: int = 1
) -> SystemStatus:
    agency, name = key.split("/")
    return SystemStatus(
        agency=agency,
        system=name,
        kind="other",
        parents=parents,
        checks={f"{key}/c{i}": CheckStatus(f"{key}/c{i}", fail, succ) for i in range(checks)},
    )


def machine(*systems: SystemStatus, canaries: int = 0, flap: int = 6) -> StateMachine:
    sm = StateMachine("gw-test", Thresholds(flap_window=3600, flap_threshold=flap))
    sm.set_systems(systems, [CheckStatus(f"_gateway/uplink/k{i}", 1, 1) for i in range(canaries)])
    return sm


class Feed:
    """Feeds results at an advancing fake time and collects events."""

    def __init__(self, sm: StateMachine) -> None:
        self.sm = sm
        self.now = 1_000_000.0
        self.events: list[Event] = []
        self.rechecks: list[str] = []

    def __call__(self, check: str, result: ProbeResult, advance: float = 10.0) -> list[Event]:
        self.now += advance
        out = self.sm.observe(check, result, self.now)
        if out.recheck:
            self.rechecks.append(check)
        self.events += out.events
        return out.events

    def transitions(self, key: str | None = None) -> list[tuple[str, State, State]]:
        return [
            (f"{e.agency}/{e.system}", e.old, e.new)
            for e in self.events
            if key is None or f"{e.agency}/{e.system}" == key
        ]


def test_first_success_announces_up() -> None:
    feed = Feed(machine(system("a/s")))
    assert feed("a/s/c0", OK) == [
        Event(feed.now, "a", "s", State.PENDING, State.UP, "all checks pass", "gw-test")
    ]


def test_down_needs_threshold_failures_then_a_failed_recheck() -> None:
    feed = Feed(machine(system("a/s", fail=3)))
    feed("a/s/c0", OK)
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    assert feed.rechecks == []
    assert feed("a/s/c0", FAIL) == []  # third failure: threshold reached -> recheck first
    assert feed.rechecks == ["a/s/c0"]
    events = feed("a/s/c0", FAIL, advance=1)  # the quick recheck fails too
    assert [(e.old, e.new) for e in events] == [(State.UP, State.DOWN)]
    assert events[0].reason == "check c0: connect: refused"


def test_recheck_success_cancels_the_down() -> None:
    feed = Feed(machine(system("a/s", fail=2)))
    feed("a/s/c0", OK)
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    assert feed.rechecks == ["a/s/c0"]
    feed("a/s/c0", OK, advance=1)
    feed("a/s/c0", FAIL)
    assert feed.transitions() == [("a/s", State.PENDING, State.UP)]


def test_success_threshold_before_up_again() -> None:
    feed = Feed(machine(system("a/s", fail=1, succ=3)))
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    assert feed.transitions()[-1][2] is State.DOWN
    feed("a/s/c0", OK)
    feed("a/s/c0", OK)
    assert feed.transitions()[-1][2] is State.DOWN
    feed("a/s/c0", OK)
    assert feed.transitions()[-1] == ("a/s", State.DOWN, State.UP)


def test_any_failing_check_makes_the_system_down() -> None:
    feed = Feed(machine(system("a/s", checks=2, fail=1)))
    feed("a/s/c0", OK)
    feed("a/s/c1", OK)
    assert feed.transitions() == [("a/s", State.PENDING, State.UP)]
    feed("a/s/c1", FAIL)
    feed("a/s/c1", FAIL)
    assert feed.transitions()[-1] == ("a/s", State.UP, State.DOWN)


def test_child_of_a_down_parent_is_unreachable_not_down() -> None:
    parent, child = system("a/mcbm", fail=1), system("a/motcua", parents=("a/mcbm",), fail=1)
    feed = Feed(machine(parent, child))
    for key in ("a/mcbm/c0", "a/motcua/c0"):
        feed(key, OK)
    # Both lose their connection; the child happens to notice first.
    feed("a/motcua/c0", FAIL)
    feed("a/mcbm/c0", FAIL)
    feed("a/motcua/c0", FAIL, advance=1)  # child's failure confirmed while the parent is suspect
    assert feed.transitions("a/motcua") == [("a/motcua", State.PENDING, State.UP)]
    feed("a/mcbm/c0", FAIL, advance=1)  # parent confirmed
    assert feed.transitions()[-2:] == [
        ("a/mcbm", State.UP, State.DOWN),
        ("a/motcua", State.UP, State.UNREACHABLE),
    ]
    assert feed.events[-1].reason.startswith("a/mcbm is down")
    # No DOWN was ever announced for the child.
    assert all(new is not State.DOWN for _, _, new in feed.transitions("a/motcua"))


def test_child_already_down_becomes_unreachable_when_parent_fails() -> None:
    parent, child = system("a/p", fail=1), system("a/c", parents=("a/p",), fail=1)
    feed = Feed(machine(parent, child))
    feed("a/p/c0", OK)
    feed("a/c/c0", OK)
    feed("a/c/c0", FAIL)
    out = feed.sm.observe("a/c/c0", FAIL, feed.now + 1)
    # Confirmed failing, but the parent has not been seen working since: ask it first.
    assert out.events == [] and out.probe_now == ["a/p/c0"]
    feed("a/p/c0", OK, advance=1)
    assert feed.transitions()[-1] == ("a/c", State.UP, State.DOWN)
    feed("a/p/c0", FAIL)
    feed("a/p/c0", FAIL)
    assert feed.transitions()[-2:] == [
        ("a/p", State.UP, State.DOWN),
        ("a/c", State.DOWN, State.UNREACHABLE),
    ]


def test_parent_recovery_waits_for_a_fresh_child_result() -> None:
    parent, child = system("a/p", fail=1), system("a/c", parents=("a/p",), fail=1)
    feed = Feed(machine(parent, child))
    feed("a/p/c0", OK)
    feed("a/c/c0", OK)
    for key in ("a/p/c0", "a/p/c0", "a/c/c0", "a/c/c0"):
        feed(key, FAIL)
    assert feed.transitions("a/c")[-1][2] is State.UNREACHABLE
    feed("a/p/c0", OK)  # parent back: the child's failures are older than that
    assert feed.transitions()[-1] == ("a/p", State.DOWN, State.UP)
    assert feed.transitions("a/c")[-1][2] is State.UNREACHABLE
    feed("a/c/c0", OK)  # and the child is fine too: no DOWN page in between
    assert feed.transitions("a/c")[-1] == ("a/c", State.UNREACHABLE, State.UP)
    assert State.DOWN not in [new for _, _, new in feed.transitions("a/c")]


def test_flapping_raises_one_event_then_settles() -> None:
    feed = Feed(machine(system("a/s", fail=1), flap=4))
    feed("a/s/c0", OK)
    for _ in range(6):
        feed("a/s/c0", FAIL)
        feed("a/s/c0", FAIL, advance=1)
        feed("a/s/c0", OK)
    news = [new for _, _, new in feed.transitions()]
    assert news.count(State.FLAPPING) == 1
    # up, down, up, down; the 4th flip (back up) makes it FLAPPING; nothing announced after that
    assert news == [State.UP, State.DOWN, State.UP, State.DOWN, State.FLAPPING]
    flapping_since = len(feed.events)
    feed("a/s/c0", OK, advance=3600)  # an hour of calm: the flips age out of the window
    assert feed.transitions()[flapping_since:] == [("a/s", State.FLAPPING, State.UP)]
    assert feed.events[-1].reason.startswith("settled")


def test_gateway_cut_off_is_one_event_and_systems_show_unknown() -> None:
    systems = [system(f"ag{i}/s", fail=1) for i in range(50)]
    sm = machine(*systems, canaries=2)
    feed = Feed(sm)
    for s in systems:
        feed(f"{s.key}/c0", OK)
    feed("_gateway/uplink/k0", OK)
    feed("_gateway/uplink/k1", OK)
    before = len(feed.events)
    # The uplink dies: every system and both canaries fail.
    for _ in range(2):
        for s in systems:
            feed(f"{s.key}/c0", FAIL, advance=0.1)
    feed("_gateway/uplink/k0", FAIL)
    feed("_gateway/uplink/k1", FAIL)
    feed("_gateway/uplink/k0", FAIL, advance=0.1)
    feed("_gateway/uplink/k1", FAIL, advance=0.1)
    for _ in range(3):
        for s in systems:
            feed(f"{s.key}/c0", FAIL, advance=0.1)
    new_events = feed.events[before:]
    assert [(e.agency, e.old, e.new) for e in new_events] == [
        (GATEWAY_AGENCY, State.UP, State.DOWN)
    ]
    assert new_events[0].reason.startswith("gateway cut off")
    assert {sm.display_state(s) for s in systems} == {State.UNKNOWN}
    # The uplink comes back; the systems were fine all along: no system event at all.
    feed("_gateway/uplink/k0", OK)
    for s in systems:
        feed(f"{s.key}/c0", OK, advance=0.1)
    assert [(e.agency, e.new) for e in feed.events[before:]] == [
        (GATEWAY_AGENCY, State.DOWN),
        (GATEWAY_AGENCY, State.UP),
    ]
    assert {sm.display_state(s) for s in systems} == {State.UP}


def test_one_canary_failing_alone_is_not_a_cut() -> None:
    s = system("a/s", fail=1)
    feed = Feed(machine(s, canaries=2))
    feed("a/s/c0", OK)
    feed("_gateway/uplink/k0", OK)
    feed("_gateway/uplink/k1", OK)
    feed("_gateway/uplink/k0", FAIL)
    feed("_gateway/uplink/k0", FAIL)
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    # Not yet: no canary has been seen working since a/s began failing. Ask them now.
    assert feed.transitions() == [("a/s", State.PENDING, State.UP)]
    assert feed.sm.observe("a/s/c0", FAIL, feed.now + 1).probe_now == [
        "_gateway/uplink/k0",
        "_gateway/uplink/k1",
    ]
    feed("_gateway/uplink/k1", OK, advance=1)  # the other canary answers: it is them, not us
    assert feed.transitions() == [("a/s", State.PENDING, State.UP), ("a/s", State.UP, State.DOWN)]


def test_real_outage_during_cut_is_reported_after_restore() -> None:
    s = system("a/s", fail=1)
    feed = Feed(machine(s, canaries=1))
    feed("a/s/c0", OK)
    feed("_gateway/uplink/k0", OK)
    feed("_gateway/uplink/k0", FAIL)
    feed("_gateway/uplink/k0", FAIL)
    assert feed.sm.gateway_cut
    feed("a/s/c0", FAIL)
    feed("_gateway/uplink/k0", OK)
    assert not feed.sm.gateway_cut
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    feed("_gateway/uplink/k0", OK, advance=1)
    assert feed.transitions("a/s")[-1] == ("a/s", State.UP, State.DOWN)


def test_restored_state_is_not_announced_again() -> None:
    s = system("a/s", fail=1)
    sm = machine(s)
    sm.restore("a/s", State.DOWN, 5.0, "c0: connect: refused")
    feed = Feed(sm)
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)
    assert feed.events == []
    feed("a/s/c0", OK)
    assert feed.transitions() == [("a/s", State.DOWN, State.UP)]


def test_result_for_removed_check_is_ignored() -> None:
    feed = Feed(machine(system("a/s")))
    assert feed("gone/x/c0", FAIL) == []


# ----- DEGRADED and MAINTENANCE (issue 11) ---------------------------------------------------

SLOW = warn(why("http.slow", elapsed=1.5, limit=1.0), 1.5)


def test_a_warning_confirmed_like_a_failure_makes_the_system_degraded_not_down() -> None:
    feed = Feed(machine(system("a/s", fail=2, succ=2)))
    feed("a/s/c0", OK)
    feed("a/s/c0", OK)
    assert feed("a/s/c0", SLOW) == []  # one slow answer is not news
    [event] = feed("a/s/c0", SLOW)
    assert (event.old, event.new) == (State.UP, State.DEGRADED)
    assert event.reason == "check c0: slow: 1.5s > limit 1s"
    assert event.why is not None and event.why.code == "system.degraded"
    assert say(event.why, "vi", "?").startswith("kiểm tra c0:")
    feed("a/s/c0", OK)
    assert feed.sm.systems["a/s"].announced is State.DEGRADED  # one clean answer is not enough
    [back] = feed("a/s/c0", OK)
    assert (back.old, back.new) == (State.DEGRADED, State.UP)


def test_a_failure_wins_over_a_warning_and_degraded_down_flips_count() -> None:
    feed = Feed(machine(system("a/s", fail=1, succ=1), flap=4))
    feed("a/s/c0", SLOW)
    assert feed.sm.systems["a/s"].announced is State.DEGRADED
    feed("a/s/c0", FAIL)
    feed("a/s/c0", FAIL)  # the recheck confirms
    assert feed.sm.systems["a/s"].announced is State.DOWN
    for _ in range(3):
        feed("a/s/c0", SLOW)
        feed("a/s/c0", FAIL)
        feed("a/s/c0", FAIL)
    assert feed.sm.systems["a/s"].announced is State.FLAPPING


def test_maintenance_holds_the_verdict_until_the_window_ends() -> None:
    sm = machine(system("a/s", fail=1, succ=1), system("a/t", fail=1, succ=1))
    feed = Feed(sm)
    feed("a/s/c0", OK)
    feed("a/t/c0", OK)
    window = Why("system.maintenance", {"until": feed.now + 3600})
    [entered] = sm.set_maintenance({"a/s": window}, feed.now)
    assert (entered.old, entered.new) == (State.UP, State.MAINTENANCE)
    assert sm.set_maintenance({"a/s": window}, feed.now) == []  # told once
    assert feed("a/s/c0", FAIL) + feed("a/s/c0", FAIL) == []  # nothing announced inside
    assert sm.systems["a/s"].underlying is State.DOWN
    [ended] = sm.set_maintenance({}, feed.now + 1)
    assert (ended.old, ended.new) == (State.MAINTENANCE, State.DOWN)  # still failing: news now
    # A system that comes back inside its window simply shows its verdict at the end.
    sm.set_maintenance({"a/t": window}, feed.now)
    feed("a/t/c0", FAIL)
    feed("a/t/c0", FAIL)
    feed("a/t/c0", OK)
    [ok] = sm.set_maintenance({}, feed.now + 1)
    assert (ok.old, ok.new) == (State.MAINTENANCE, State.UP)


def test_a_window_ending_before_any_verdict_shows_pending_not_maintenance() -> None:
    sm = machine(system("a/s"))
    window = Why("system.maintenance", {"until": 2e9})
    assert [e.new for e in sm.set_maintenance({"a/s": window}, 1.0)] == [State.MAINTENANCE]
    [ended] = sm.set_maintenance({}, 2.0)  # said: stored states and topics follow
    assert (ended.old, ended.new) == (State.MAINTENANCE, State.PENDING)
    assert say(ended.why, "vi", "?") == "hết thời gian bảo trì; đang chờ kết quả kiểm tra"
    assert sm.systems["a/s"].announced is State.PENDING


def test_a_restart_inside_a_window_keeps_maintenance_and_judges_afresh() -> None:
    sm = machine(system("a/s", fail=1, succ=1))
    sm.restore("a/s", State.MAINTENANCE, 5.0, "in an announced maintenance window")
    window = Why("system.maintenance", {"until": 2e9})
    assert sm.set_maintenance({"a/s": window}, 6.0) == []
    feed = Feed(sm)
    feed("a/s/c0", OK)
    assert feed.events == [] and sm.systems["a/s"].underlying is State.UP
    [ended] = sm.set_maintenance({}, feed.now)
    assert (ended.old, ended.new) == (State.MAINTENANCE, State.UP)


def test_a_restart_of_a_degraded_system_announces_nothing_until_it_is_clean() -> None:
    """The warning was confirmed before the restart: slow answers after it change nothing
    (no false "up" then "degraded" again); clean ones clear it."""
    sm = machine(system("a/s", fail=3, succ=1))
    sm.restore("a/s", State.DEGRADED, 5.0, "check c0: slow")
    feed = Feed(sm)
    for _ in range(4):
        feed("a/s/c0", SLOW)
    assert feed.events == []
    [clean] = feed("a/s/c0", OK)
    assert (clean.old, clean.new) == (State.DEGRADED, State.UP)


def test_a_latency_hovering_at_its_limit_stays_degraded_until_it_settles() -> None:
    feed = Feed(machine(system("a/s", fail=1, succ=1), flap=6))
    for _ in range(10):  # slow, fast, slow, fast... every 10 s
        feed("a/s/c0", SLOW)
        feed("a/s/c0", OK)
    # up, degraded, up, degraded: then it stays degraded (3 changes = half of flap_threshold)
    assert [e.new for e in feed.events] == [State.DEGRADED, State.UP, State.DEGRADED]
    assert feed.sm.systems["a/s"].announced is State.DEGRADED
    # An hour of fast answers: the changes leave the window, and it is up again.
    for _ in range(7):
        feed("a/s/c0", OK, advance=600)
    assert feed.sm.systems["a/s"].announced is State.UP
    assert [e.new for e in feed.events][-1] is State.UP
