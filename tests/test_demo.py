"""The demo a new user runs first: it must show the failures it promises."""

from __future__ import annotations

from pathlib import Path

from monitor.demo import run_demo
from monitor.state import State
from monitor.store import Store


async def test_demo_shows_down_unreachable_slow_and_expiring(tmp_path: Path) -> None:
    await run_demo(port=0, state_dir=tmp_path, duration=15)
    store = await Store.open(tmp_path / "state.db")
    try:
        states = await store.states()
    finally:
        await store.close()
    assert states["da-nang/secure-server"].state is State.DOWN
    assert states["da-nang/one-stop"].state is State.UNREACHABLE
    assert states["ha-noi/public-service-portal"].state is State.DOWN
    assert states["ha-noi/public-service-portal"].reason.startswith("check http: slow:")
    assert states["can-tho/secure-server"].state is State.DOWN
    assert "certificate expires in" in states["can-tho/secure-server"].reason
    for healthy in (
        "bo-tai-chinh/secure-server",
        "bo-tai-chinh/one-stop",
        "bo-y-te/public-service-portal",
    ):
        assert states[healthy].state is State.UP, healthy
