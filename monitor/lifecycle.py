"""The daemon's lifecycle: startup → serve → shutdown, each a short step.

* **startup**: open the store, build the parts (:mod:`monitor.build`: the desks load, the
  announced changes in effect shape the first registry, the engine restores its states), rebuild
  the alerts and incidents of systems still failing, start the broker connection and the HTTP
  listener;
* **serve**: start the loops (probes, store writer, alert pipeline, desks, outbox workers,
  watchdog, ...), tell systemd READY, and wait for a stop (SIGTERM/SIGINT) or a loop's crash;
* **shutdown**: stop scheduling, let in-flight probes finish within a grace period, stop the
  loops, say "stopped" (or "crashed"), save the last events, queue what is due and drain the
  outboxes for a while.

What is opened (the store, the channels, the listener) is held by an
:class:`contextlib.AsyncExitStack` and closed in the reverse order, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from . import build
from .alerting.outbox import Outbox
from .cluster.paths import tell_path_problems
from .config import Config, HttpSettings
from .metrics import DaemonMetrics
from .rules.desk import run_desks
from .sdnotify import SystemdNotifier, status_loop, watchdog_loop
from .store import StoreError, open_configured

log = logging.getLogger("monitor.app")  # the daemon's lines keep the name they always had

GRACE = 5.0  # seconds in-flight probes get to finish at shutdown
OUTBOX_STATS_EVERY = 5.0
STATUS_EVERY = 10.0  # seconds between two STATUS= lines to systemd
VOTES_EVERY = 1.0  # seconds between two exchanges of the vantages' verdicts
STOP_TASKS_TIMEOUT = 5.0  # seconds the daemon's tasks get to end once cancelled, at a stop
QUIET_AT_STOP = ("npsp.reloader", "npsp.status", "npsp.deadman")


class Host(Protocol):
    """What the lifecycle needs of the daemon it runs (:class:`monitor.app.Daemon`)."""

    @property
    def config(self) -> Config: ...

    notifier: SystemdNotifier
    stop_requested: asyncio.Event

    def request_stop(self) -> None: ...

    def request_reload(self) -> None: ...

    def status_line(self) -> str: ...

    def freeze(self) -> None: ...

    async def reload_forever(self) -> None: ...


def listener_tls(http: HttpSettings) -> ssl.SSLContext | None:
    """The listener's TLS context; with ``client_ca``, client certificates are asked for (not
    required: token logins and /healthz keep working) and verified against that CA only."""
    if http.tls_cert is None or http.tls_key is None:
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(http.tls_cert, http.tls_key)
        if http.client_ca is not None:
            ctx.load_verify_locations(cafile=http.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as exc:
        raise build.StartupError(f"http TLS: {exc}") from None
    return ctx


@dataclass(slots=True)
class Loops:
    """The tasks of a serving daemon."""

    stop: asyncio.Task[Any]  # ends when a stop is requested
    senders: list[asyncio.Task[Any]]  # the outbox workers, drained last (the leader's)
    others: list[asyncio.Task[Any]]
    leading: list[asyncio.Task[Any]]  # on several hosts: the leader's alert pipeline
    election: asyncio.Task[Any] | None = None  # on several hosts: ends last (frees the lease)

    @property
    def all(self) -> list[asyncio.Task[Any]]:
        return [*self.others, *self.leading, *self.senders]


class Lifecycle:
    """Runs one daemon once: :meth:`run`. ``core`` and ``parts`` are what is built so far."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.core: build.Core | None = None
        self.parts: build.Parts | None = None
        self.http_port: int | None = None
        self.loops: Loops | None = None

    async def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until a stop is requested (a SIGTERM during start-up stops it once started)."""
        async with contextlib.AsyncExitStack() as held:
            with contextlib.closing(self.host.notifier), self._signals():
                parts = await self._startup(held)
                loops = self._serve(parts)
                self._ready(parts, on_ready)
                crashed = await self._until_stop(loops)
                await self._shutdown(parts, loops, crashed)
                for task in crashed:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]

    # ----- startup -------------------------------------------------------------------------------

    async def _startup(self, held: contextlib.AsyncExitStack) -> build.Parts:
        host = self.host
        host.notifier.status("starting: opening the state database")
        store = await open_configured(host.config)
        held.push_async_callback(store.close)
        channels = build.channels(host.config)
        held.push_async_callback(channels.aclose)
        core = self.core = build.core(lambda: host.config, store, channels)
        host.notifier.status("starting: restoring states, scheduling the checks")
        await build.load(core)
        parts = self.parts = build.parts(
            lambda: host.config,
            core,
            count_notification=core.metrics.count_notification,
        )
        await self._restore(parts)
        host.freeze()
        await channels.start()
        await self._listen(parts, held)
        return parts

    async def _restore(self, parts: build.Parts) -> None:
        """Rebuild the alerts and incidents of systems still failing. The pipeline's restore
        reads the steps of the escalation ladder taken (its acknowledgements: the incident
        desk), and people already told are not paged again."""
        core = parts.core
        states = await core.store.states()
        core.heartbeats.silent_since_before(states)
        if core.cluster is not None:
            return  # the alerts and incidents are the leader's, rebuilt at its takeover
        parts.pipeline.restore(states, await core.outbox.told())
        await core.rules.incidents.restore(states)

    async def _listen(self, parts: build.Parts, held: contextlib.AsyncExitStack) -> None:
        """Start the HTTP listener; :attr:`http_port` is the port it bound (``:0`` picks one)."""
        config = self.host.config
        runner = web.AppRunner(parts.app, access_log=None)
        held.push_async_callback(runner.cleanup)
        await runner.setup()
        host, _, port = config.listen.rpartition(":")
        site = web.TCPSite(
            runner, host.strip("[]"), int(port), ssl_context=listener_tls(config.http)
        )
        await site.start()
        addresses = runner.addresses
        self.http_port = int(addresses[0][1]) if addresses else int(port)

    # ----- serve ---------------------------------------------------------------------------------

    def _serve(self, parts: build.Parts) -> Loops:
        core = parts.core
        engine, rules, host = core.engine, core.rules, self.host
        ticking = lambda: core.leading  # noqa: E731
        others = [
            _task(engine.probe_forever(parts.observers), "npsp.scheduler"),
            _task(engine.persist_forever(parts.subscribers), "npsp.store-writer"),
            _task(engine.maintenance_forever(rules.maintenance.covered), "npsp.maintenance-states"),
            _task(host.reload_forever(), "npsp.reloader"),
            _task(outbox_stats(core.metrics, core.outbox), "npsp.outbox-stats"),
            _task(run_desks(core.store, rules.desks(), rules.ctx.clock, ticking), "npsp.rules"),
            _task(watchdog_loop(host.notifier, parts.progressing), "npsp.watchdog"),
            _task(status_loop(host.notifier, host.status_line, STATUS_EVERY), "npsp.status"),
        ]
        if parts.status_topics is not None:
            others.append(_task(parts.status_topics.run(), "npsp.mqtt-status"))
        if rules.mqtt is not None:
            others.append(_task(rules.mqtt.run(), "npsp.announcements"))
        others.append(_task(parts.deadman.run(), "npsp.deadman"))
        stop = _task(host.stop_requested.wait(), "npsp.stop")
        loops = self.loops = Loops(stop, [], others, [])
        cluster = core.cluster
        if cluster is None:
            self._start_leading(parts, loops)
            return loops
        others.append(_task(self._share_votes(core, cluster), "npsp.votes"))
        loops.election = _task(
            cluster.leadership.run(
                lambda: self._take_over(parts, loops),
                lambda: self._step_down(parts, loops),
                eligible=lambda: not engine.state.gateway_cut or not cluster.votes.voting_peers(),
            ),
            "npsp.election",
        )
        return loops

    @staticmethod
    def _start_leading(parts: build.Parts, loops: Loops) -> None:
        """Start the alert pipeline and the outbox workers (the leader's work)."""
        loops.senders[:] = [_task(w.run(), f"npsp.outbox.{w.channel}") for w in parts.workers]
        loops.leading[:] = [_task(parts.pipeline.run(), "npsp.alert-pipeline")]

    async def _take_over(self, parts: build.Parts, loops: Loops) -> None:
        """This host now holds the lease: rebuild the incidents and the alert pipeline from
        the store, hand on what changed since the last leader recorded, take back what it left
        half-sent, then start the leader's work. Everything that can fail (the database) comes
        before the engine starts recording: a takeover that fails leaves nothing half-on."""
        core = parts.core
        states = await core.store.states()
        await core.outbox.recover()
        told = await core.outbox.told()
        await core.rules.incidents.restore(states)
        # From here on nothing awaits: no batch of events slips in between.
        parts.pipeline.reset()
        parts.pipeline.restore(states, told)
        core.engine.take_over(states, self.host.config.vantage)
        core.metrics.leader_took_over()
        self._start_leading(parts, loops)

    async def _step_down(self, parts: build.Parts, loops: Loops) -> None:
        """Another host leads now (or this one cannot renew): stop recording and sending at
        once. A message on the wire is cut off; the next leader sends it again (at most one
        duplicate)."""
        parts.core.engine.step_down()
        tasks = [*loops.leading, *loops.senders]
        loops.leading.clear()
        loops.senders.clear()
        await _cancel(tasks)

    async def _share_votes(self, core: build.Core, cluster: build.Cluster) -> None:
        """Every second (or every beat, if shorter): this host's verdicts and beat out, the
        others' in."""
        engine, votes, metrics = core.engine, cluster.votes, core.metrics

        def system_of(key: str) -> tuple[str, str] | None:
            check = engine.registry.checks.get(key)
            return None if check is None else (check.agency, check.system)

        while True:
            try:
                metrics.set_store_up(await votes.sync(canaries_ok=not engine.state.gateway_cut))
                for key in votes.joined():  # the others now see what this host saw first
                    engine.scheduler.recheck(key, 0.0)
                metrics.set_leader(cluster.leadership.leading)
                metrics.set_voting(votes.voting_map())
                metrics.set_system_votes(votes.failing_systems(system_of))
                if cluster.leadership.leading:
                    await tell_path_problems(
                        votes, self.host.config.cluster, core.rules.ctx.notices, engine.wall_clock()
                    )
            except Exception:  # a bug or an unexpected database answer must not stop probing
                log.exception("cannot exchange the vantages' votes; retrying")
            await asyncio.sleep(min(VOTES_EVERY, self.host.config.cluster.beat_interval))

    def _ready(self, parts: build.Parts, on_ready: Callable[[], None] | None) -> None:
        host, _, _ = self.host.config.listen.rpartition(":")
        log.info(
            "npsp-monitor running",
            extra={
                "listen": f"{host}:{self.http_port}",
                "checks": len(parts.core.engine.registry.checks),
            },
        )
        self.host.notifier.ready(self.host.status_line())
        if on_ready is not None:
            on_ready()

    async def _until_stop(self, loops: Loops) -> list[asyncio.Task[Any]]:
        """Wait for a stop, or for a loop to end (a crash); return the loops that ended."""
        watched = [loops.stop, *loops.others]
        if loops.election is not None:
            watched.append(loops.election)
        else:
            watched.extend(loops.senders)  # a single host's workers live as long as it does
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        return [t for t in done if t is not loops.stop]

    # ----- shutdown ------------------------------------------------------------------------------

    async def _shutdown(
        self, parts: build.Parts, loops: Loops, crashed: list[asyncio.Task[Any]]
    ) -> None:
        core = parts.core
        log.info("stopping")
        self.host.notifier.stopping("stopping: letting probes in flight finish")
        self._remove_signals()  # no reload (nor a second stop) while stopping
        for quiet in loops.all:
            if quiet.get_name() in QUIET_AT_STOP:
                quiet.cancel()  # nothing may say "reloaded", "monitoring" or "alive" now
        core.engine.scheduler.stop()
        await core.engine.scheduler.drain(GRACE)
        await _cancel([loops.stop, *loops.others, *loops.leading])
        # A crash is not a clean stop: those watching must not read "stopped".
        await parts.deadman.stop("crashed" if crashed else "stopped")
        await core.engine.flush()  # to the subscribers its store-writer ran with
        if core.leading:
            await core.rules.incidents.flush()
            await parts.pipeline.tick()  # whatever is due now is at least written to the outbox
            await self._drain_outbox(parts, loops.senders)
        if loops.election is not None:
            await _cancel([loops.election])  # gives the lease up: another host takes over now

    async def _drain_outbox(self, parts: build.Parts, senders: list[asyncio.Task[Any]]) -> None:
        """At a stop: the workers send what is due (the send in flight first) for up to
        ``alerting.outbox.drain_timeout``; what is left stays in the outbox for the next start."""
        if not senders:
            return
        timeout = self.host.config.alerting.outbox.drain_timeout
        self.host.notifier.status(f"stopping: sending the outbox (at most {timeout:g}s)")
        for worker in parts.workers:
            worker.finish()
        _, late = await asyncio.wait(senders, timeout=timeout)
        unfinished = late
        while unfinished:
            # Once more if need be: a cancelled send may wait on its library's goodbye
            # (aiosmtplib sends QUIT and waits up to the channel's timeout for the answer).
            for task in unfinished:
                task.cancel()
            _, unfinished = await asyncio.wait(unfinished, timeout=0.5)
        if late:
            log.warning(
                "outbox not drained in time; the rest is sent at the next start",
                extra={"drain_timeout": timeout, "channels": len(late)},
            )

    # ----- signals -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGHUP reloads, SIGTERM and SIGINT stop, for as long as the daemon runs."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.host.request_reload)
            loop.add_signal_handler(signal.SIGTERM, self.host.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.host.request_stop)
        try:
            yield
        finally:
            self._remove_signals()

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


def _task(coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=name)


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them, bounded: a task that ignored its cancellation must
    not hold the stop forever."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    _, stuck = await asyncio.wait(tasks, timeout=STOP_TASKS_TIMEOUT)
    for task in stuck:
        log.error("task %s did not stop when cancelled; leaving it", task.get_name())


async def outbox_stats(metrics: DaemonMetrics, outbox: Outbox) -> None:
    """Refresh the outbox gauges for the systemd STATUS line (a scrape of /metrics re-reads
    them itself: ``DaemonMetrics.refresh``)."""
    while True:
        try:
            metrics.outbox_pending = await outbox.pending()
        except StoreError as exc:  # the database is away (metrics' npsp_store_up says so)
            log.warning("cannot read outbox statistics: %s", exc)
        except Exception:
            log.exception("cannot read outbox statistics")
        await asyncio.sleep(OUTBOX_STATS_EVERY)
