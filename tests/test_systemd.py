"""systemd integration: the notify protocol on a real AF_UNIX datagram socket, the watchdog fed
only while the scheduler makes progress, and the daemon as a real subprocess under a pretend
service manager (READY, STATUS, WATCHDOG, RELOADING on SIGHUP, STOPPING and the outbox drained
on SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from monitor.alerting.outbox import Outbox, OutboxItem
from monitor.config import load_config
from monitor.config.alerting import OutboxSettings
from monitor.engine import Engine
from monitor.sdnotify import (
    SystemdNotifier,
    making_progress,
    status_loop,
    watchdog_interval,
    watchdog_loop,
)
from monitor.store import Store
from probes import ProbeEnv
from tests.peers import free_port

from .conftest import TcpTarget, eventually
from .test_daemon import config_dict, write_config

ROOT = Path(__file__).resolve().parent.parent


Fields = dict[str, str]


class NotifySocket:
    """What systemd listens on: a bound AF_UNIX datagram socket. A thread receives and stamps
    each message, so arrival times are right even while the test's event loop is blocked."""

    def __init__(self, address: str) -> None:
        self.address = address  # as in $NOTIFY_SOCKET: a path or @abstract-name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self._lock = threading.Lock()
        self._messages: list[tuple[float, Fields]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="notify-socket", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode().splitlines():
                key, _, value = line.partition("=")
                fields[key] = value
            with self._lock:
                self._messages.append((time.monotonic(), fields))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def messages(self) -> list[tuple[float, Fields]]:
        with self._lock:
            return list(self._messages)

    def fields(self) -> list[Fields]:
        return [f for _, f in self.messages()]

    def count(self, key: str, after: float = 0.0) -> int:
        return sum(1 for t, f in self.messages() if key in f and t > after)

    def times(self, key: str) -> list[float]:
        return [t for t, f in self.messages() if key in f]

    async def next(
        self, condition: Callable[[Fields], bool], after: int, timeout: float, what: str
    ) -> tuple[int, Fields]:
        """The first message from index ``after`` on that meets ``condition``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, fields in enumerate(self.fields()[after:], start=after):
                if condition(fields):
                    return i, fields
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not received within {timeout}s: {self.fields()}")
            await asyncio.sleep(0.02)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: a socket path has at most 107 bytes, pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="npsp-sd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notify_socket(short_dir: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(short_dir / "notify"))
    yield sock
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket(f"@npsp-monitor-test-{uuid.uuid4().hex}")
    yield sock
    sock.close()


# ----- the protocol ------------------------------------------------------------------------------


async def test_every_message_arrives_on_a_real_socket(notify_socket: NotifySocket) -> None:
    notifier = SystemdNotifier(notify_socket.address)
    assert notifier.enabled
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.status("starting: opening the state database")
    assert notifier.ready("monitoring 3 checks")
    assert notifier.watchdog()
    assert notifier.reloading("reloading the config")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.stopping()
    assert notifier.notify(STATUS="multi\nline\r\ntext", ERRNO=0)
    await notify_socket.next(lambda f: "ERRNO" in f, 0, 5, "the last message")
    notifier.close()
    got = notify_socket.fields()
    reload = got[3]
    assert before <= int(reload.pop("MONOTONIC_USEC")) <= after
    assert got == [
        {"STATUS": "starting: opening the state database"},
        {"READY": "1", "STATUS": "monitoring 3 checks"},
        {"WATCHDOG": "1"},
        {"RELOADING": "1", "STATUS": "reloading the config"},
        {"STOPPING": "1"},
        {"STATUS": "multi line  text", "ERRNO": "0"},  # a newline would start a new field
    ]
    assert notifier.sent == 6 and notifier.errors == 0


async def test_abstract_namespace_socket(abstract_socket: NotifySocket) -> None:
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": abstract_socket.address})
    assert notifier.ready()
    _, fields = await abstract_socket.next(lambda f: "READY" in f, 0, 5, "READY")
    assert fields == {"READY": "1"}
    notifier.close()


def test_outside_systemd_nothing_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    notifier = SystemdNotifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()
    assert notifier.sent == notifier.errors == 0
    assert caplog.records == []


def test_an_address_of_another_kind_disables_it(caplog: pytest.LogCaptureFixture) -> None:
    notifier = SystemdNotifier("vsock:2:1234")
    assert not notifier.enabled and not notifier.ready()
    assert "neither a path nor an abstract name" in caplog.text


def test_a_missing_manager_never_raises_and_is_logged_once(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier(str(short_dir / "nobody-listens"))
    with caplog.at_level(logging.WARNING, logger="monitor.sdnotify"):
        for _ in range(5):
            assert notifier.watchdog() is False
    assert notifier.errors == 5
    assert [r.getMessage() for r in caplog.records] == [
        "cannot notify systemd (further failures are not logged)"
    ]
    notifier.close()


def test_a_manager_that_does_not_read_never_blocks(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deaf.bind(str(short_dir / "deaf"))
    try:
        notifier = SystemdNotifier(str(short_dir / "deaf"))
        start = time.monotonic()
        results = [notifier.status(f"line {i}") for i in range(2000)]
        assert time.monotonic() - start < 2.0  # the queue fills up: EAGAIN, not a wait
        assert results[0] is True and results[-1] is False
        assert "cannot notify systemd" in caplog.text
        notifier.close()
    finally:
        deaf.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),  # half the period, as systemd advises
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "4242"}, 0.2),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env, pid=4242) == expected


def test_watchdog_interval_reads_this_process_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 1.0


# ----- the watchdog follows the scheduler --------------------------------------------------------


async def test_watchdog_is_fed_only_while_progressing(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor.sdnotify")
    progressing = [True]
    notifier = SystemdNotifier(notify_socket.address)
    task = asyncio.create_task(watchdog_loop(notifier, lambda: progressing[0], interval=0.05))
    try:
        await eventually(lambda: notify_socket.count("WATCHDOG") >= 3)
        progressing[0] = False
        await asyncio.sleep(0.2)  # a ping sent just before may still be on its way
        held = time.monotonic()
        await asyncio.sleep(0.4)
        assert notify_socket.count("WATCHDOG", after=held) == 0
        assert caplog.text.count("watchdog not fed") == 1  # once, not once per period
        progressing[0] = True
        resumed = time.monotonic()
        await eventually(lambda: notify_socket.count("WATCHDOG", after=resumed) >= 2)
        assert "making progress again" in caplog.text
    finally:
        task.cancel()
        notifier.close()


async def test_a_failing_progress_check_counts_as_no_progress(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bool:
        raise RuntimeError("bug")

    notifier = SystemdNotifier(notify_socket.address)
    task = asyncio.create_task(watchdog_loop(notifier, broken, interval=0.05))
    await asyncio.sleep(0.3)
    task.cancel()
    assert notify_socket.count("WATCHDOG") == 0
    assert "progress check failed" in caplog.text
    notifier.close()


async def test_without_a_watchdog_the_loop_waits_until_cancelled(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    for notifier in (SystemdNotifier(notify_socket.address), SystemdNotifier(None)):
        task = asyncio.create_task(watchdog_loop(notifier, lambda: True))
        await asyncio.sleep(0.1)
        assert not task.done()  # it may sit among the daemon's long-running tasks
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert notify_socket.count("WATCHDOG") == 0


async def test_status_loop_reports_and_survives_a_failing_description(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    calls = [0]

    def describe() -> str:
        calls[0] += 1
        if calls[0] == 2:
            raise RuntimeError("bug")
        return f"monitoring {calls[0]} checks"

    notifier = SystemdNotifier(notify_socket.address)
    task = asyncio.create_task(status_loop(notifier, describe, every=0.05))
    await eventually(lambda: notify_socket.count("STATUS") >= 3)
    task.cancel()
    statuses = [f["STATUS"] for f in notify_socket.fields()]
    assert statuses[:3] == ["monitoring 1 checks", "monitoring 3 checks", "monitoring 4 checks"]
    assert "cannot describe" in caplog.text
    notifier.close()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """A real engine and scheduler (probing a closed port), its dispatcher not yet started."""
    data = config_dict(tmp_path, {"secure-server": free_port()})
    data["scheduler"] = {"stall_after": "300ms"}
    config = load_config(write_config(tmp_path / "c.yaml", data))
    store = await Store.open(config.state_db)
    engine = Engine(config, store, ProbeEnv())
    await engine.start()
    yield engine
    engine.scheduler.stop()
    await engine.scheduler.drain(1)
    await store.close()


def progress_of(engine: Engine) -> Callable[[], bool]:
    """The daemon's rule (as for /healthz): the dispatcher ran within scheduler.stall_after."""
    return making_progress(engine.scheduler, lambda: engine.config.scheduler.stall_after)


async def test_watchdog_stops_when_the_dispatcher_stalls(
    engine: Engine, notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier(notify_socket.address)
    dispatcher = asyncio.create_task(engine.scheduler.run())
    watchdog = asyncio.create_task(watchdog_loop(notifier, progress_of(engine), interval=0.05))
    try:
        await eventually(lambda: notify_socket.count("WATCHDOG") >= 5)
        assert engine.scheduler.runs > 0  # it really dispatches probes
        # The dispatcher stops turning while the event loop (and the watchdog task) run on.
        engine.scheduler.stop()
        await dispatcher
        await asyncio.sleep(0.3 + 0.3)  # stall_after, and a margin
        held = time.monotonic()
        await asyncio.sleep(0.5)
        assert notify_socket.count("WATCHDOG", after=held) == 0
        assert "scheduler makes no progress" in caplog.text
    finally:
        watchdog.cancel()
        notifier.close()


async def test_watchdog_stops_when_the_scheduler_clock_shows_no_progress(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    # As tests/test_daemon.py's /healthz test: the dispatcher has not run for 31 s (limit 30 s).
    path = write_config(tmp_path / "c.yaml", config_dict(tmp_path, {"secure-server": 9}))
    config = load_config(path)
    now = [1000.0]
    store = await Store.open(config.state_db)
    notifier = SystemdNotifier(notify_socket.address)
    try:
        engine = Engine(config, store, ProbeEnv(), monotonic=lambda: now[0])
        await engine.start()
        task = asyncio.create_task(watchdog_loop(notifier, progress_of(engine), interval=0.05))
        await eventually(lambda: notify_socket.count("WATCHDOG") >= 2)
        now[0] += 31
        await asyncio.sleep(0.2)
        held = time.monotonic()
        await asyncio.sleep(0.3)
        task.cancel()
        assert notify_socket.count("WATCHDOG", after=held) == 0
    finally:
        notifier.close()
        await store.close()


async def test_a_blocked_event_loop_sends_no_watchdog(
    engine: Engine, notify_socket: NotifySocket
) -> None:
    notifier = SystemdNotifier(notify_socket.address)
    dispatcher = asyncio.create_task(engine.scheduler.run())
    watchdog = asyncio.create_task(watchdog_loop(notifier, progress_of(engine), interval=0.05))
    try:
        await eventually(lambda: notify_socket.count("WATCHDOG") >= 3)
        blocked = time.monotonic()
        time.sleep(0.8)  # noqa: ASYNC251 - the point: a stuck loop, as a blocking call makes it
        unblocked = time.monotonic()
        await asyncio.sleep(0.3)
        pings = notify_socket.times("WATCHDOG")
        assert not [t for t in pings if blocked + 0.05 < t < unblocked]
        assert [t for t in pings if t > unblocked]  # fed again once the scheduler turns
    finally:
        watchdog.cancel()
        engine.scheduler.stop()
        await dispatcher
        notifier.close()


# ----- the daemon under a pretend service manager ------------------------------------------------


class Service:
    """``npsp-monitor run`` as systemd would start it: $NOTIFY_SOCKET, $WATCHDOG_USEC and
    $WATCHDOG_PID (set to the daemon's own pid: the shell execs it)."""

    def __init__(self, config: Path, sock: NotifySocket, http_port: int, log: Path) -> None:
        self.config = config
        self.sock = sock
        self.http_port = http_port
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, watchdog_usec: int = 400_000) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        env.update(NOTIFY_SOCKET=self.sock.address, WATCHDOG_USEC=str(watchdog_usec))
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"',
                "sh",
                sys.executable,
                "-m",
                "monitor",
                "run",
                "-c",
                str(self.config),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    async def ready(self, timeout: float = 30) -> Fields:
        """READY=1; fails at once if the daemon runs (it logged so) but does not say so."""
        deadline = time.monotonic() + timeout
        running_since: float | None = None
        while True:
            for fields in self.sock.fields():
                if fields.get("READY") == "1":
                    return fields
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}:\n{self.tail()}")
            if running_since is None and "npsp-monitor running" in self.log.read_text():
                running_since = time.monotonic()
            if running_since is not None and time.monotonic() - running_since > 3:
                raise AssertionError("daemon runs but sent no READY=1:\n" + self.tail())
            if time.monotonic() > deadline:
                raise AssertionError("no READY=1:\n" + self.tail())
            await asyncio.sleep(0.02)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.http_port}{path}") as response,
        ):
            return response.status, await response.text()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def service(
    tmp_path: Path, abstract_socket: NotifySocket
) -> AsyncIterator[Callable[[dict[str, Any]], Service]]:
    made: list[Service] = []

    def make(data: dict[str, Any]) -> Service:
        port = free_port()
        data["listen"] = f"127.0.0.1:{port}"
        path = write_config(tmp_path / "npsp.yaml", data)
        made.append(Service(path, abstract_socket, port, tmp_path / "daemon.log"))
        return made[-1]

    yield make
    for svc in made:
        svc.kill()
        if svc.process is not None:
            await svc.process.wait()


@pytest.mark.timeout(60)
async def test_the_daemon_notifies_ready_status_watchdog_and_stopping(
    tmp_path: Path,
    tcp_target: Callable[[], Any],
    service: Callable[[dict[str, Any]], Service],
) -> None:
    target: TcpTarget = await tcp_target()
    svc = service(config_dict(tmp_path, {"secure-server": target.port}))
    await svc.start(watchdog_usec=400_000)
    ready = await svc.ready()
    # READY only once the listener is up and the checks are scheduled.
    status, body = await svc.get("/healthz")
    assert status == 200 and json.loads(body)["checks"] == 1
    assert ready["STATUS"].startswith("monitoring 1 checks; 0 systems down; outbox 0 pending")
    before_ready = svc.sock.fields()[: svc.sock.fields().index(ready)]
    assert any(f.get("STATUS", "").startswith("starting") for f in before_ready), before_ready

    # WATCHDOG=1 every WATCHDOG_USEC/2 = 0.2 s (the pid matched: the shell exec'd the daemon).
    since = time.monotonic()
    await asyncio.sleep(1.5)
    assert svc.sock.count("WATCHDOG", after=since) >= 4

    seen = len(svc.sock.fields())
    svc.signal(signal.SIGTERM)
    _, stopping = await svc.sock.next(lambda f: "STOPPING" in f, seen, 10, "STOPPING=1")
    assert stopping["STOPPING"] == "1"
    assert await svc.wait(30) == 0
    assert "Traceback" not in svc.log.read_text()


@pytest.mark.timeout(90)
async def test_sighup_reloads_a_good_file_and_keeps_running_on_a_bad_one(
    tmp_path: Path,
    tcp_target: Callable[[], Any],
    service: Callable[[dict[str, Any]], Service],
) -> None:
    a: TcpTarget = await tcp_target()
    b: TcpTarget = await tcp_target()
    data = config_dict(tmp_path, {"secure-server": a.port})
    svc = service(data)
    await svc.start()
    await svc.ready()

    # A good file: one more system. RELOADING=1 (with the time), then READY=1 again.
    seen = len(svc.sock.fields())
    bigger = config_dict(tmp_path, {"secure-server": a.port, "one-stop": b.port})
    write_config(svc.config, {**bigger, "listen": data["listen"]})
    svc.signal(signal.SIGHUP)
    i, reloading = await svc.sock.next(lambda f: "RELOADING" in f, seen, 10, "RELOADING=1")
    assert int(reloading["MONOTONIC_USEC"]) > 0
    _, done = await svc.sock.next(lambda f: "READY" in f, i, 10, "READY=1 after the reload")
    assert done["STATUS"].startswith("config reloaded; monitoring 2 checks")

    # A bad file: rejected, logged with its line, the previous config goes on running.
    svc.config.write_text(svc.config.read_text() + "\nbogus: 1\n")
    seen = len(svc.sock.fields())
    svc.signal(signal.SIGHUP)
    i, _ = await svc.sock.next(lambda f: "RELOADING" in f, seen, 10, "RELOADING=1")
    _, done = await svc.sock.next(lambda f: "READY" in f, i, 10, "READY=1 after the reload")
    assert done["STATUS"].startswith("config reload rejected, previous config kept")
    assert "monitoring 2 checks" in done["STATUS"]
    log = svc.log.read_text()
    assert "config reload rejected; keeping the running config" in log
    assert "bogus" in log
    status, _ = await svc.get("/healthz")
    assert status == 200
    _, metrics = await svc.get("/metrics")
    assert "npsp_config_last_reload_successful 0.0" in metrics
    since = time.monotonic()
    await asyncio.sleep(1.0)
    assert svc.sock.count("WATCHDOG", after=since) >= 2  # still alive and progressing

    svc.signal(signal.SIGTERM)
    assert await svc.wait(30) == 0
    assert "Traceback" not in svc.log.read_text()


class SlowMailbox:
    """An SMTP server that takes ``delay`` seconds to accept each message."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: list[str] = []
        self.first_data = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        self.first_data.set()
        await asyncio.sleep(self.delay)
        self.received.append(envelope.rcpt_tos[0])
        return "250 OK"


def mail_config(tmp_path: Path, target: int, smtp_port: int) -> dict[str, Any]:
    data = config_dict(tmp_path, {"secure-server": target})
    data["channels"] = {
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from_addr": "giamsat@npsp.dvc.example",
        }
    }
    return data


async def queue_mail(db: Path, count: int) -> list[str]:
    """Notices already in the outbox (written before the daemon starts, as after a storm)."""
    store = await Store.open(db)
    try:
        items = [
            OutboxItem(
                key=f"drain-test-{i}",
                channel="email",
                address=f"kt{i}@bo-tai-chinh.dvc.example",
                person=f"Quản trị kỹ thuật {i}",
                subject=f"[NPSP] Thử {i}",
                text=f"Tin thử {i}",
                short=f"Tin thu {i}",
                html=None,
                thread_key=None,
                language="vi",
            )
            for i in range(count)
        ]
        await Outbox(store, OutboxSettings()).enqueue(items)
    finally:
        await store.close()
    return [item.address for item in items]


def outbox_rows(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT key, status FROM outbox").fetchall())


@pytest.mark.timeout(90)
async def test_sigterm_drains_the_outbox_within_the_deadline(
    tmp_path: Path,
    tcp_target: Callable[[], Any],
    service: Callable[[dict[str, Any]], Service],
) -> None:
    target: TcpTarget = await tcp_target()
    mailbox = SlowMailbox(delay=0.4)
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    try:
        data = mail_config(tmp_path, target.port, controller.port)
        addresses = await queue_mail(Path(data["state_db"]), 4)
        svc = service(data)
        await svc.start()
        await svc.ready()
        await asyncio.to_thread(mailbox.first_data.wait, 10)  # the first one is on the wire
        seen = len(svc.sock.fields())
        stopped_at = time.monotonic()
        svc.signal(signal.SIGTERM)
        await svc.sock.next(lambda f: "STOPPING" in f, seen, 10, "STOPPING=1")
        assert await svc.wait(40) == 0
        elapsed = time.monotonic() - stopped_at
    finally:
        await asyncio.to_thread(controller.stop)
    # Everything queued went out before the exit: the one in flight and the three due.
    assert sorted(mailbox.received) == sorted(addresses)
    assert set(outbox_rows(Path(data["state_db"])).values()) == {"sent"}
    assert elapsed < 20  # alerting.outbox.drain_timeout (default), well under TimeoutStopSec
    assert "Traceback" not in svc.log.read_text()


@pytest.mark.timeout(90)
async def test_sigterm_gives_up_on_a_hung_mail_server_at_the_deadline(
    tmp_path: Path,
    tcp_target: Callable[[], Any],
    service: Callable[[dict[str, Any]], Service],
) -> None:
    target: TcpTarget = await tcp_target()
    mailbox = SlowMailbox(delay=60)  # answers nothing within the deadline
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    await asyncio.to_thread(controller.start)
    try:
        data = mail_config(tmp_path, target.port, controller.port)
        data["alerting"] = {"outbox": {"drain_timeout": "1s"}}
        await queue_mail(Path(data["state_db"]), 2)
        svc = service(data)
        await svc.start()
        await svc.ready()
        await asyncio.to_thread(mailbox.first_data.wait, 10)
        stopped_at = time.monotonic()
        svc.signal(signal.SIGTERM)
        assert await svc.wait(40) == 0
        elapsed = time.monotonic() - stopped_at
    finally:
        await asyncio.to_thread(controller.stop)
    assert elapsed < 1 + 4  # the drain deadline and some slack, not the 60 s send timeout
    # Nothing is lost: both notices stay in the outbox and go out at the next start.
    rows = outbox_rows(Path(data["state_db"]))
    assert len(rows) == 2 and "sent" not in rows.values()
    assert "Traceback" not in svc.log.read_text()


async def test_the_daemon_withholds_its_watchdog_pings_while_its_scheduler_stalls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring in monitor/app.py: a real Daemon whose real scheduler stalls (nothing else
    does): the pings stop within scheduler.stall_after."""
    import os
    import socket as socket_module
    import uuid

    from monitor.app import Daemon
    from monitor.config import load_config
    from monitor.sdnotify import SystemdNotifier

    from .test_daemon import write_config

    name = f"npsp-test-{uuid.uuid4().hex[:8]}"
    sock = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    path = write_config(
        tmp_path / "npsp.yaml",
        {
            "listen": "127.0.0.1:0",
            "state_db": str(tmp_path / "state.db"),
            "scheduler": {"stall_after": "1s"},
            "defaults": {"interval": "1s", "timeout": "500ms"},
        },
    )
    ready = asyncio.Event()
    daemon = Daemon(path, load_config(path), notifier=SystemdNotifier("@" + name))
    task = asyncio.create_task(daemon.run(on_ready=lambda _d: ready.set()))

    def pings() -> int:
        count = 0
        while True:
            try:
                count += sock.recv(4096).count(b"WATCHDOG=1")
            except BlockingIOError:
                return count

    try:
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(0.6)
        assert pings() >= 3  # healthy: pinging
        assert daemon.engine is not None
        # The dispatcher never wakes again (its timer's callback does nothing), while its task
        # and the event loop go on: a stall, not a stop.
        monkeypatch.setattr(daemon.engine.scheduler, "_wake", lambda: None)
        await asyncio.sleep(1.5)  # past stall_after
        pings()  # drop what was sent before the stall was noticed
        await asyncio.sleep(0.8)
        assert pings() == 0
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 15)
        sock.close()
