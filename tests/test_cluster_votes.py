"""The vantages' votes (monitor/cluster/votes.py): the quorum rule on its own, then three
vote boards sharing a real PostgreSQL, as three gateway hosts would."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitor.alerting.notices import NoticeSender, RunningRouter
from monitor.alerting.outbox import Outbox
from monitor.cluster.paths import tell_path_problems
from monitor.cluster.votes import DEGRADED, FAIL, PASS, Verdict, VoteBoard, combine, needed
from monitor.config.cluster import ClusterSettings
from monitor.reasons import say
from monitor.registry import Registry
from monitor.store import Store
from monitor.web.templates.tables import checks_table
from npsp_common.types import ProbeResult, Why
from tests.conftest import ManualClock
from tests.test_alert_pipeline import agency, make_config

REFUSED = ProbeResult(
    False, "connect: refused", 0.01, why=Why("text", {"text": "connect: refused"})
)
OK = ProbeResult(True, "", 0.01)
SLOW = ProbeResult(True, "slow: 3.2s", 3.2, degraded=True)
KEY = "ha-noi/secure-server/tcp"


def v(level: int, reason: str = "connect: timeout") -> Verdict:
    return Verdict(level, reason, None)


@pytest.mark.parametrize(
    ("quorum", "voting", "need"),
    [
        ("majority", 1, 1),
        ("majority", 2, 2),
        ("majority", 3, 2),
        ("majority", 4, 3),
        ("majority", 5, 3),
        (1, 3, 1),
        (2, 3, 2),
        (5, 3, 3),
        (2, 1, 1),
    ],
)
def test_how_many_must_agree(quorum: str | int, voting: int, need: int) -> None:
    assert needed(quorum, voting) == need


def test_down_from_a_majority_says_how_many_saw_it() -> None:
    result, tally = combine(OK, "gw-1", [("gw-2", v(FAIL)), ("gw-3", v(FAIL))], "majority")
    assert not result.ok
    assert result.reason == "connect: timeout (seen from 2/3 vantages)"
    assert say(result.why, "vi", "") == "connect: timeout (thấy từ 2/3 điểm đo)"
    assert tally.failing == ("gw-2", "gw-3") and tally.need == 2

    result, _ = combine(REFUSED, "gw-1", [("gw-2", v(FAIL)), ("gw-3", v(FAIL))], "majority")
    assert result.reason == "connect: refused (seen from 3/3 vantages)", "own reason first"


def test_a_minority_failing_is_not_down() -> None:
    result, tally = combine(REFUSED, "gw-1", [("gw-2", v(PASS)), ("gw-3", v(PASS))], "majority")
    assert result.ok and not result.degraded
    assert tally.failing == ("gw-1",)
    # ...but a quorum of one makes any vantage's failure count.
    result, _ = combine(OK, "gw-1", [("gw-2", v(FAIL)), ("gw-3", v(PASS))], 1)
    assert not result.ok and "1/3" in result.reason


def test_degraded_when_enough_see_it_degraded_or_failing() -> None:
    result, _ = combine(SLOW, "gw-1", [("gw-2", v(FAIL)), ("gw-3", v(PASS))], "majority")
    assert result.ok and result.degraded
    assert result.reason == "slow: 3.2s (seen from 2/3 vantages)"
    result, _ = combine(SLOW, "gw-1", [("gw-2", v(PASS)), ("gw-3", v(PASS))], "majority")
    assert result.ok and not result.degraded


def test_the_last_vantage_voting_decides_alone_and_says_so() -> None:
    result, _ = combine(REFUSED, "gw-2", [], "majority")
    assert not result.ok
    assert result.reason == "connect: refused (seen from the only vantage voting, gw-2)"
    assert "điểm đo duy nhất" in say(result.why, "vi", "")
    # A host that does not vote (canaries cut) takes the others' word.
    result, _ = combine(REFUSED, None, [("gw-1", v(PASS)), ("gw-3", v(PASS))], "majority")
    assert result.ok


# ----- three boards on one PostgreSQL ------------------------------------------------------------


@pytest.fixture
def store(pg_store: Store) -> Store:
    return pg_store


SETTINGS = ClusterSettings()


def board(store: Store, name: str, clock: ManualClock | None = None) -> VoteBoard:
    b = VoteBoard(store, SETTINGS, name, f"{name}:1", monotonic=clock or ManualClock())
    b.expect([KEY, "other/portal/http"])
    return b


async def ready(*boards: VoteBoard) -> None:
    """Each has probed every check once and shared it; all see each other voting."""
    for b in boards:
        b.decide(KEY, OK, 1.0)
        b.decide("other/portal/http", OK, 1.0)
        assert b.ready
    for _ in range(2):
        for b in boards:
            assert await b.sync()


async def test_three_vantages_see_each_others_flips(store: Store) -> None:
    gw1, gw2, gw3 = (board(store, f"gw-{i}") for i in (1, 2, 3))
    await ready(gw1, gw2, gw3)
    assert gw1.voting and gw1.voting_peers() == ["gw-2", "gw-3"]

    # gw-2 and gw-3 lose the target; gw-1 still reaches it.
    assert gw2.decide(KEY, REFUSED, 2.0).ok, "gw-2 alone of three: up"
    gw3.decide(KEY, REFUSED, 2.0)
    await gw2.sync()
    await gw3.sync()
    await gw1.sync()
    decided = gw1.decide(KEY, OK, 3.0)
    assert not decided.ok
    assert decided.reason == "connect: refused (seen from 2/3 vantages)"
    assert gw1.tally(KEY) == (["gw-2", "gw-3"], [], ["gw-1"])
    assert gw1.failing_systems(lambda k: ("ha-noi", "secure-server") if k == KEY else None) == {
        ("ha-noi", "secure-server"): 2
    }

    # gw-2 gets it back: a minority (gw-3) now, a path problem.
    gw2.decide(KEY, OK, 4.0)
    await gw2.sync()
    await gw1.sync()
    assert gw1.decide(KEY, OK, 5.0).ok
    minority = gw1.minorities[KEY]
    # Dated from the store: gw-2's recovery at 4.0 made gw-3 a minority (not gw-1's look at 5.0).
    assert minority.vantages == ("gw-3",) and minority.since == 4.0
    assert minority.reason == "connect: refused"
    # All pass again: no more path problem, and only flips were written.
    gw3.decide(KEY, OK, 6.0)
    await gw3.sync()
    await gw1.sync()
    assert gw1.decide(KEY, OK, 7.0).ok and KEY not in gw1.minorities
    assert gw3.writes == 2, "passing is what no row means: the failure and the recovery only"


async def test_a_vantage_with_cut_canaries_or_a_stale_beat_does_not_vote(store: Store) -> None:
    clock = ManualClock()
    gw1, gw2 = board(store, "gw-1"), board(store, "gw-2", clock)
    gw3 = board(store, "gw-3")
    await ready(gw1, gw2, gw3)
    gw3.decide(KEY, REFUSED, 2.0)
    gw2.decide(KEY, REFUSED, 2.0)
    await gw3.sync(canaries_ok=False)  # gw-3's own uplink is cut: its failure means nothing
    await gw2.sync()
    await gw1.sync()
    assert gw1.voting_peers() == ["gw-2"]
    # Two voting (gw-1, gw-2): a majority is 2, and only gw-2 fails: up.
    assert gw1.decide(KEY, OK, 3.0).ok
    assert gw1.voting_map() == {"gw-1": True, "gw-2": True, "gw-3": False}

    # gw-2 loses the database for longer than vote_stale_after: it stops trusting what it read
    # and decides alone, and says so.
    clock.now += SETTINGS.vote_stale_after + 1
    alone = gw2.decide(KEY, REFUSED, 4.0)
    assert not alone.ok and "only vantage voting, gw-2" in alone.reason


async def test_a_restarted_vantage_starts_clean_and_the_others_forget_its_old_verdicts(
    store: Store,
) -> None:
    gw1, gw2 = board(store, "gw-1"), board(store, "gw-2")
    await ready(gw1, gw2)
    gw2.decide(KEY, REFUSED, 2.0)
    await gw2.sync()
    await gw1.sync()
    assert gw1.peers["gw-2"].verdicts[KEY].level == FAIL

    again = VoteBoard(store, SETTINGS, "gw-2", "gw-2:2")  # the host restarted
    again.started_at += 5.0
    again.expect([KEY, "other/portal/http"])
    assert await again.sync()
    await gw1.sync()
    assert KEY not in gw1.peers["gw-2"].verdicts, "its rows from before the restart are gone"
    assert gw1.voting_peers() == [], "not ready yet: it has not probed every check"
    assert gw1.decide(KEY, OK, 3.0).ok


async def test_degraded_votes_travel(store: Store) -> None:
    gw1, gw2, gw3 = (board(store, f"gw-{i}") for i in (1, 2, 3))
    await ready(gw1, gw2, gw3)
    gw2.decide(KEY, SLOW, 2.0)
    gw3.decide(KEY, SLOW, 2.0)
    for b in (gw2, gw3, gw1):
        await b.sync()
    assert gw1.peers["gw-2"].verdicts[KEY].level == DEGRADED
    decided = gw1.decide(KEY, OK, 3.0)
    assert decided.ok and decided.degraded and "2/3" in decided.reason


async def test_a_path_problem_is_told_to_operations_once_and_never_to_the_agency(
    store: Store,
) -> None:
    config = make_config([agency("ha-noi", "Hà Nội", ["secure-server"])])
    registry = Registry.from_config(config)
    outbox = Outbox(store, config.alerting.outbox)
    settings = lambda: config.alerting  # noqa: E731
    notices = NoticeSender(outbox, RunningRouter(settings, lambda: registry), settings)
    gw1, gw2, gw3 = (board(store, f"gw-{i}") for i in (1, 2, 3))
    await ready(gw1, gw2, gw3)
    gw2.decide(KEY, REFUSED, 2.0)  # gw-2's route to Hà Nội is cut; gw-1 and gw-3 reach it
    await gw2.sync()
    await gw1.sync()
    assert gw1.decide(KEY, OK, 100.0).ok
    after = SETTINGS.path_notice_after
    # The episode began with gw-2's failure at 2.0, as the store says, whoever looks when.
    assert await tell_path_problems(gw1, SETTINGS, notices, 2.0 + after - 1) == 0, "not yet"
    assert await tell_path_problems(gw1, SETTINGS, notices, 2.0 + after) == 1
    assert await tell_path_problems(gw1, SETTINGS, notices, 2.0 + after + 60) == 0, "once"
    # gw-1 dies; gw-3 leads now and looks at another time: the same episode, the same notice,
    # which the outbox already holds.
    await gw3.sync()
    assert gw3.decide(KEY, OK, 150.0).ok
    assert gw3.minorities[KEY].since == 2.0
    await tell_path_problems(gw3, SETTINGS, notices, 150.0 + after)
    rows = await store.transact(
        lambda db: db.execute("SELECT address, subject, text FROM outbox").fetchall()
    )
    assert [r[0] for r in rows] == ["ops@vpcp.dvc.example"], "operations only, not the agency"
    assert rows[0][1] == f"Sự cố đường truyền: {KEY} không kết nối được chỉ từ gw-2"
    assert "1/3 điểm đo" in rows[0][2] and "connect: refused" in rows[0][2]


def test_a_heartbeat_received_by_one_host_is_enough() -> None:
    """Pushed over HTTP to one gateway host, a heartbeat is fresh there only: the others'
    "stale" must not outvote it."""
    stale = v(FAIL, "no heartbeat for 10m")
    result, _ = combine(OK, "gw-1", [("gw-2", stale), ("gw-3", stale)], "majority", push=True)
    assert result.ok
    result, _ = combine(REFUSED, "gw-1", [("gw-2", stale), ("gw-3", stale)], "majority", push=True)
    assert not result.ok and "3/3" in result.reason


async def test_the_system_page_shows_how_each_vantage_sees_a_check(store: Store) -> None:
    config = make_config([agency("ha-noi", "Hà Nội", ["secure-server"])])
    entry = Registry.from_config(config).systems["ha-noi/secure-server"].checks[0]
    gw1, gw2, gw3 = (board(store, f"gw-{i}") for i in (1, 2, 3))
    await ready(gw1, gw2, gw3)
    gw2.decide(entry.key, REFUSED, 2.0)
    await gw2.sync()
    await gw1.sync()
    gw1.decide(entry.key, OK, 3.0)
    html = checks_table([(entry, None, ())], "vi", {entry.key: gw1.tally(entry.key)})
    assert "<th>Điểm đo</th>" in html
    assert '<span class="down">gw-2 ✗</span> · <span class="up">gw-3, gw-1 ✓</span>' in html
    assert "Điểm đo" not in checks_table([(entry, None, ())], "vi"), "one host: no column"


async def test_a_beat_says_ready_only_with_the_verdicts_that_made_it_ready(store: Store) -> None:
    """The exchange runs in the database's thread while probes go on deciding. A host that
    becomes ready during it must not beat "ready" without the failure that completed it: the
    others would count the missing failure as a pass (found in a storm with leader kills: a
    freshly restarted host, deciding on its peers' votes alone, resolved an outage falsely)."""
    slow = store.fenced(lambda _db: time.sleep(0.3))  # the transaction takes its time
    gw1 = VoteBoard(slow, SETTINGS, "gw-1", "gw-1:1", monotonic=ManualClock())
    gw1.expect([KEY, "other/portal/http"])
    gw1.decide("other/portal/http", REFUSED, 1.0)
    exchange = asyncio.create_task(gw1.sync())
    await asyncio.sleep(0.1)  # the exchange is in the database's thread now
    gw1.decide(KEY, REFUSED, 1.1)
    assert gw1.ready, "both checks have a verdict"
    assert await exchange
    gw2 = board(store, "gw-2")
    await gw2.sync()
    if "gw-1" in gw2.voting_peers():
        assert gw2.peers["gw-1"].verdicts.get(KEY) is not None, "voting without its failure"
    assert await gw1.sync()  # the next exchange carries it
    await gw2.sync()
    assert gw2.voting_peers() == ["gw-1"]
    assert gw2.peers["gw-1"].verdicts[KEY].level == FAIL


async def test_a_failure_seen_first_is_probed_again_once_the_others_see_it(store: Store) -> None:
    """gw-1 probes first when the target goes away: alone, its failure is overruled (a pass for
    its state machine). Once the others see it fail too, gw-1 is told to probe it again at
    once, so that the outage is counted from then, not from its next turn an interval later
    (found by bench/cluster_scale.py: DOWN came ~50 s later than on one host, at 60 s)."""
    gw1, gw2, gw3 = (board(store, f"gw-{i}") for i in (1, 2, 3))
    await ready(gw1, gw2, gw3)
    assert gw1.decide(KEY, REFUSED, 2.0).ok, "alone of three: overruled"
    assert gw1.joined() == [], "the others do not see it yet"
    await gw1.sync()
    gw2.decide(KEY, REFUSED, 3.0)
    gw2.decide("other/portal/http", REFUSED, 3.0)  # gw-1 passes this one: nothing to redo
    await gw2.sync()
    await gw1.sync()
    assert gw1.joined() == [KEY]
    decided = gw1.decide(KEY, REFUSED, 3.5)  # the probe run again
    assert not decided.ok and "2/3" in decided.reason
    assert gw1.joined() == [], "counted now: no more rechecks"
