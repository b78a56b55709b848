"""The systemd notification protocol (``sd_notify``), in the standard library.

systemd passes ``$NOTIFY_SOCKET`` (an ``AF_UNIX`` datagram socket: a path, or ``@name`` in the
abstract namespace) to a ``Type=notify`` service; the service sends newline-separated
``KEY=value`` lines to it:

* ``READY=1`` once it serves (systemd holds back ``systemctl start`` and the units ordered
  after it until then), and again after a reload;
* ``STATUS=...``: one line shown by ``systemctl status``;
* ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds when ``WatchdogSec=`` is set,
  or systemd kills and (with ``Restart=``) restarts the service;
* ``RELOADING=1`` (with ``MONOTONIC_USEC=``, which ``Type=notify-reload`` requires) when a
  reload starts, ``READY=1`` when it is over;
* ``STOPPING=1`` when the stop begins.

Outside systemd (``$NOTIFY_SOCKET`` unset) every call does nothing. A notification that
cannot be sent is logged once and never raises: a monitor must not stop monitoring because
its supervisor is gone.

The watchdog is fed by :func:`watchdog_loop` only while the caller says it is making progress
(for the daemon: the scheduler's dispatcher has run within ``scheduler.stall_after``). A loop
that is stuck (a blocking call) cannot ping at all; a scheduler that stalls while the loop still
runs stops the pings too: either way systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Protocol

__all__ = [
    "Progress",
    "SystemdNotifier",
    "making_progress",
    "status_loop",
    "watchdog_interval",
    "watchdog_loop",
]

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notifications to the service manager; a no-op without an address.

    ``address`` is the value of ``$NOTIFY_SOCKET``: an absolute path, or ``@name`` for the
    abstract namespace. Any other form (``vsock:``, a relative path) disables the notifier
    with one warning.
    """

    def __init__(self, address: str | None) -> None:
        self._address: str | None = None
        self._socket: socket.socket | None = None
        self._failed = False  # one warning per notifier, not one per watchdog ping
        self.sent = 0
        self.errors = 0
        if not address:
            return
        if address.startswith("@"):
            self._address = "\0" + address[1:]  # Linux abstract namespace
        elif address.startswith("/"):
            self._address = address
        else:
            log.warning(
                "NOTIFY_SOCKET is neither a path nor an abstract name; not notifying systemd",
                extra={"notify_socket": address},
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """The notifier systemd asked for (``$NOTIFY_SOCKET``), or a no-op one."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` fields in one datagram; True when it was sent.

        Values are made one line (a newline would start a new field).
        """
        if self._address is None or not fields:
            return False
        payload = "".join(
            f"{key}={str(value).replace(chr(10), ' ').replace(chr(13), ' ')}\n"
            for key, value in fields.items()
        ).encode()
        try:
            if self._socket is None:
                # Non-blocking: a manager that does not read must never stall the event loop.
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)
                self._socket = sock
            self._socket.sendto(payload, self._address)
        except OSError as exc:
            self.errors += 1
            if not self._failed:
                self._failed = True
                log.warning(
                    "cannot notify systemd (further failures are not logged)",
                    extra={"notify_socket": self._address.replace("\0", "@"), "error": str(exc)},
                )
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) is complete."""
        return self.notify(READY=1, **({} if status is None else {"STATUS": status}))

    def status(self, text: str) -> bool:
        """What the service is doing, for ``systemctl status``."""
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        """Still alive (``WatchdogSec=``)."""
        return self.notify(WATCHDOG=1)

    def reloading(self, status: str | None = None) -> bool:
        """A reload starts; send :meth:`ready` when it is over."""
        fields: dict[str, str | int] = {
            "RELOADING": 1,
            "MONOTONIC_USEC": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
        }
        if status is not None:
            fields["STATUS"] = status
        return self.notify(**fields)

    def stopping(self, status: str | None = None) -> bool:
        """The stop begins."""
        return self.notify(STOPPING=1, **({} if status is None else {"STATUS": status}))

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_interval(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between two watchdog pings (half of ``$WATCHDOG_USEC``, as systemd advises), or
    None when no watchdog is asked of this process (unset, invalid, zero, or ``$WATCHDOG_PID``
    naming another process)."""
    env = os.environ if environ is None else environ
    usec, owner = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        period = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC is not a number; watchdog not fed", extra={"value": usec})
        return None
    if period <= 0:
        return None
    return period / 2_000_000


class Progress(Protocol):
    """What :func:`making_progress` reads: the scheduler's clock and last dispatcher run."""

    last_progress: float

    def now(self) -> float: ...


def making_progress(scheduler: Progress, limit: Callable[[], float]) -> Callable[[], bool]:
    """A predicate for :func:`watchdog_loop`: the dispatcher has run within ``limit()`` seconds
    (the same rule as ``/healthz``; ``limit`` is read each time, so a reload may change it)."""

    def check() -> bool:
        return scheduler.now() - scheduler.last_progress <= limit()

    return check


async def watchdog_loop(
    notifier: SystemdNotifier,
    is_progressing: Callable[[], bool],
    interval: float | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds (default: :func:`watchdog_interval`) while
    ``is_progressing()`` is true; withhold it, with one error line, while it is false (an error
    in the predicate counts as no progress). Runs until cancelled, also when there is no
    watchdog to feed, so it can sit among the daemon's other long-running tasks."""
    period = watchdog_interval() if interval is None else interval
    if period is None or not notifier.enabled:
        await asyncio.Event().wait()  # nothing to feed: park until cancelled
        return
    stalled = False
    while True:
        try:
            progressing = is_progressing()
        except Exception:
            log.exception("watchdog progress check failed; counted as no progress")
            progressing = False
        if progressing:
            notifier.watchdog()
            if stalled:
                stalled = False
                log.info("scheduler making progress again; watchdog fed")
        elif not stalled:
            stalled = True
            log.error(
                "scheduler makes no progress: watchdog not fed, systemd will restart the service"
            )
        await asyncio.sleep(period)


async def status_loop(
    notifier: SystemdNotifier, describe: Callable[[], str], every: float = 10.0
) -> None:
    """Send ``STATUS=describe()`` every ``every`` seconds until cancelled (parks when there is no
    service manager to tell)."""
    if not notifier.enabled:
        await asyncio.Event().wait()
        return
    while True:
        try:
            notifier.status(describe())
        except Exception:  # a status line must never end the daemon
            log.exception("cannot describe the daemon's status")
        await asyncio.sleep(every)
