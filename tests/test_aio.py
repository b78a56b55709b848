"""wait_event: a loop that waits with it always ends when cancelled, even when the
cancellation and the timeout coincide (asyncio.timeout + except TimeoutError did not)."""

from __future__ import annotations

import asyncio

from monitor.aio import wait_event


async def test_returns_on_the_event_or_the_timeout() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await wait_event(event, 0.05)
    assert loop.time() - start >= 0.04
    loop.call_later(0.01, event.set)
    start = loop.time()
    await wait_event(event, 5.0)
    assert loop.time() - start < 1.0


async def test_a_waiting_loop_always_ends_when_cancelled() -> None:
    event = asyncio.Event()

    async def forever() -> None:
        while True:
            await wait_event(event, 0.001)

    for attempt in range(300):
        task = asyncio.create_task(forever())
        await asyncio.sleep(0.001 * (attempt % 3))  # cancel at every phase, near the timeout
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        assert done == {task} and task.cancelled()
    assert len(asyncio.all_tasks()) == 1  # no waiter left behind
