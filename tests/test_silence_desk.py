"""The API's silences as the alert pipeline's muter (monitor/rules/silences/): on a real store,
with the rules context of a wired daemon (tests/test_incidents.py's world)."""

from __future__ import annotations

from pathlib import Path

from monitor.alerting.model import Alert
from monitor.rules.silences import SilenceDesk
from monitor.rules.silences import store as silences
from monitor.state import State
from monitor.store import Store

from .test_incidents import (
    hanoi,
    make_world,
    store,  # noqa: F401 - a fixture
)


async def test_of_two_silences_covering_an_alert_the_older_is_named(
    store: Store,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Review of issue 12: the desk read the silences in the API's order (soonest end first)
    and so named the younger of two covering silences; it names the one made first, as it
    always did. An expired or cancelled one mutes nothing."""
    w = make_world(store, tmp_path, hanoi(2026, 12, 7, 9, 0))
    now = w.now
    for ends, reason in ((now + 7200, "đổi cáp"), (now + 3600, "khởi động lại")):
        await store.transact(
            lambda db, e=ends, r=reason: silences.add(
                db,
                agency="ha-noi",
                system=None,
                starts=now - 1,
                ends=e,
                reason=r,
                created_by="vpcp.ops",
                created_at=now,
            )
        )
    desk = SilenceDesk(w.ctx)
    await desk.refresh()
    w.event("ha-noi/portal", State.UP, State.DOWN)
    alert = w.pipeline.alerts["ha-noi/portal"]
    assert isinstance(alert, Alert)
    assert desk.mutes(alert, now) == "silence #1: đổi cáp"
    assert desk.mutes(alert, now + 3700) == "silence #1: đổi cáp"
    await desk.tick(now + 7201)
    assert desk.mutes(alert, now + 7201) is None
