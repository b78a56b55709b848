"""Small asyncio helpers the daemon's loops share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109 - see below
    """Return when ``event`` is set or ``timeout`` seconds have passed, whichever is first.

    Not ``asyncio.timeout`` + ``except TimeoutError``: on Python 3.11 a cancellation that
    arrives as the timeout expires can come out as a TimeoutError, which such a loop swallows —
    the task then ignores its cancellation and a stop waits for it forever (seen once in the
    demo). ``asyncio.wait`` never raises on a timeout, so a cancellation always propagates.
    """
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
