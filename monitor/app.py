"""The daemon's lifecycle: build everything in one place, run, reload on SIGHUP, stop cleanly.

Start-up: open the store → build the engine and restore states → start the HTTP listener →
start the scheduler. Stop (SIGTERM/SIGINT): stop scheduling, let in-flight probes finish within
a grace period, save the last events, close the listener and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web

from probes import ProbeEnv

from .alerting.channels import Channels
from .alerting.notices import Audience, Notice, NoticeSink
from .alerting.outbox import Outbox, OutboxWorker
from .alerting.pipeline import AlertPipeline
from .config import Config, ConfigError, HttpSettings
from .config_loader import load_config_isolated
from .deadman import DeadMansSwitch, last_will
from .engine import Engine
from .heartbeats import PATH as HEARTBEAT_PATH
from .heartbeats import TOPIC_FILTER as HEARTBEAT_TOPICS
from .heartbeats import HeartbeatReceiver, heartbeat_routes
from .http_api import build_app
from .metrics import DaemonMetrics
from .mqtt_status import StatusTopics
from .rules.desk import RulesContext, run_desks
from .rules.service import RulesService
from .sdnotify import Notifier, making_progress, status_loop, watchdog_loop
from .state import State
from .store import Store
from .web.auth import Authenticator
from .web.pages import PagesContext, page_routes
from .workdays import WorkCalendar

log = logging.getLogger(__name__)

GRACE = 5.0  # seconds in-flight probes get to finish at shutdown
OUTBOX_STATS_EVERY = 5.0
STATUS_EVERY = 10.0  # seconds between two STATUS= lines to systemd
STOP_TASKS_TIMEOUT = 5.0  # seconds the daemon's tasks get to end once cancelled, at a stop


def _freeze_heap() -> None:
    """Move the long-lived objects (config, registry, probes: ~250,000 at 10,000 checks) out of
    the collector's sight: a full collection over them stalled the loop for ~100-300 ms.

    Unfrozen first: what the previous config left in reference cycles is in the frozen set,
    where no collection would ever see it (six reloads grew the daemon by 41 MB)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


HEARTBEAT_OPENAPI = {
    "post": {
        "summary": "A push heartbeat from a system that reports instead of being probed; "
        "authenticated by that system's own token (Bearer or X-Heartbeat-Token)",
        "security": [],
        "parameters": [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in ("agency", "system")
        ],
        "responses": {
            "202": {"description": "Accepted"},
            "400": {"description": "Malformed"},
            "401": {"description": "Missing or wrong token"},
            "404": {"description": "Unknown system, or no heartbeat check"},
            "409": {"description": "Two systems share this token"},
            "413": {"description": "Body over 1 KiB"},
            "429": {"description": "Too many wrong tokens"},
        },
    }
}


class _LateBound:
    """The notice sink, bound once the alert pipeline exists (the rules desks are built
    before it: announced changes in effect shape the first registry)."""

    sink: NoticeSink | None = None

    async def send_notice(self, notice: Notice, audience: Iterable[Audience]) -> int:
        if self.sink is None:
            raise RuntimeError("notices sent before the alert pipeline was built")
        return await self.sink.send_notice(notice, audience)


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
        raise StartupError(f"http TLS: {exc}") from None
    return ctx


class StartupError(Exception):
    """The daemon cannot start (a secret cannot be read, ...); the message says why."""


class Daemon:
    """One running npsp-monitor."""

    def __init__(
        self, config_path: Path | None, config: Config, *, notifier: Notifier | None = None
    ) -> None:
        self.config_path = config_path
        self.config = config
        # systemd's $NOTIFY_SOCKET (READY, STATUS, WATCHDOG, RELOADING, STOPPING); a no-op
        # outside systemd.
        self.notifier = Notifier.from_env() if notifier is None else notifier
        self.stop_requested = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.engine: Engine | None = None
        self.pipeline: AlertPipeline | None = None
        self.outbox: Outbox | None = None
        self.rules: RulesService | None = None
        self.authenticator: Authenticator | None = None
        # More routes (pages, heartbeats) and their OpenAPI paths, added before ``run``.
        self.extra_routes: list[web.RouteDef] = []
        self.extra_paths: dict[str, object] = {}
        self.metrics = DaemonMetrics()
        self.http_port: int | None = None

    def request_stop(self) -> None:
        self.stop_requested.set()

    def request_reload(self) -> None:
        self.reload_requested.set()

    async def reload(self) -> bool:
        """Re-read the config file; on any error keep running the old one and say why."""
        if self.config_path is None or self.engine is None:
            return False
        try:
            # In a child process: the parse neither holds the event loop nor leaves its peak
            # in this process's heap, and a hostile file cannot take the daemon down.
            new = await load_config_isolated(self.config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                log.error("config reload rejected; keeping the running config: %s", issue)
            self.metrics.reload_result(False)
            return False
        for field in ("listen", "state_db", "vantage", "http", "deadman"):
            if getattr(new, field) != getattr(self.config, field):
                log.warning("%s changed: takes effect only after a restart", field)
        try:
            await self.engine.apply(new)
        except Exception:
            # Not a config error, but the new config could not be installed (a database
            # error while forgetting removed systems...): say so; the daemon keeps running.
            log.exception("config reload failed while applying it")
            self.metrics.reload_result(False)
            return False
        _freeze_heap()
        if self.pipeline is not None:
            self.pipeline.update_registry(new.alerting, self.engine.registry)
        if self.outbox is not None:
            self.outbox.settings = new.alerting.outbox
            self.outbox.sms_min_interval = new.alerting.sms_min_interval
        if new.calendar != self.config.calendar:
            calendar = WorkCalendar(new.calendar)  # new swaps, working hours or rules
            if self.rules is not None:
                self.rules.ctx.calendar = calendar
        if self.rules is not None:
            self.rules.announcements.status_page_url = new.alerting.status_page_url
        if new.channels != self.config.channels:
            log.warning("channels changed: takes effect only after a restart")
        self.config = new
        self.metrics.reload_result(True)
        log.info("config reloaded", extra={"file": str(self.config_path)})
        return True

    def status_line(self) -> str:
        """What the daemon is doing, in one line (``systemctl status``)."""
        engine = self.engine
        if engine is None:
            return "starting"
        if engine.state.gateway_cut:
            systems = "gateway uplink cut off"
        else:
            down = sum(1 for s in engine.state.systems.values() if s.announced is State.DOWN)
            systems = f"{down} systems down"
        pending = sum(count for count, _ in self.metrics.outbox_pending.values())
        checks = len(engine.registry.checks)
        line = f"monitoring {checks} checks; {systems}; outbox {pending} pending"
        if not self.metrics.reload_ok:
            line += "; last config reload rejected"
        return line

    async def run(self, on_ready: Callable[[Daemon], None] | None = None) -> None:
        """Run until a stop is requested (a SIGTERM during start-up stops it once started)."""
        self._install_signals()
        self.notifier.status("starting: opening the state database")
        store = await Store.open(self.config.state_db)
        runner: web.AppRunner | None = None
        channels: Channels | None = None
        try:
            try:
                vantage = self.config.vantage
                will = last_will(vantage) if self.config.deadman.mqtt else None
                channels = Channels.build(
                    self.config.channels, vantage, will, site=self.config.alerting.status_page_url
                )
            except ValueError as exc:
                raise StartupError(f"channels: {exc}") from None
            probe_env = ProbeEnv()  # one heartbeat board, shared by the probes and the receiver
            engine = self.engine = Engine(
                self.config, store, probe_env, observe_lag=self.metrics.lag.observe
            )
            heartbeats = HeartbeatReceiver(probe_env.heartbeats, lambda: engine.registry)
            self.extra_routes += heartbeat_routes(
                heartbeats, lambda: self.config.http.trusted_proxies
            )
            self.extra_paths[HEARTBEAT_PATH] = HEARTBEAT_OPENAPI
            if channels.publisher is not None:
                channels.publisher.subscribe(HEARTBEAT_TOPICS, heartbeats.on_mqtt)
            self.metrics.engine = engine
            calendar = WorkCalendar(self.config.calendar)
            notices = _LateBound()
            ctx = RulesContext(
                store,
                calendar,
                notices,
                lambda: engine.registry,
                counters={n: c.inc for n, c in self.metrics.rule_counters.items()},
            )
            rules = self.rules = RulesService(
                ctx, set_overrides=engine.set_overrides, publisher=channels.publisher
            )
            # Confirmations of announcements link to the page where one can be cancelled.
            rules.announcements.status_page_url = self.config.alerting.status_page_url
            self.notifier.status("starting: restoring states, scheduling the checks")
            await rules.load()
            # Announced changes already in effect shape the very first registry.
            engine.overrides = rules.announcements.overrides_at(ctx.clock())
            rules.announcements.overrides = dict(engine.overrides)
            await engine.start()
            outbox = self.outbox = Outbox(
                store,
                self.config.alerting.outbox,
                sms_min_interval=self.config.alerting.sms_min_interval,
                sms_fits=channels.sms_fits,
            )
            await outbox.recover()
            self.metrics.outbox_source = outbox.pending  # re-read at every scrape
            pipeline = self.pipeline = AlertPipeline(self.config.alerting, engine.registry, outbox)
            notices.sink = pipeline
            pipeline.muter.muters.append(rules.maintenance)
            pipeline.muter.muters.append(rules.silences)
            engine.observers.append(rules.watch.observe)
            states = await store.states()
            heartbeats.silent_since_before(states)
            pipeline.acks = rules.incidents  # before restore: it reads the steps taken
            pipeline.restore(states, await outbox.told())
            await rules.incidents.restore(states)
            _freeze_heap()
            engine.subscribers.append(pipeline.on_events)
            engine.subscribers.append(rules.incidents.on_events)
            await channels.start()
            status_topics = None
            if channels.publisher is not None:
                status_topics = StatusTopics(engine, channels.publisher)
                engine.subscribers.append(status_topics.on_events)
            workers = [
                OutboxWorker(outbox, notifier, count=self.metrics.count_notification)
                for notifier in channels.notifiers.values()
            ]
            http = self.config.http
            self.authenticator = Authenticator(
                store,
                max_failures=http.login_failures_per_minute,
                trusted_proxies=lambda: self.config.http.trusted_proxies,
            )
            self.extra_routes += page_routes(
                PagesContext(engine, store, rules, self.authenticator, ctx.clock)
            )
            app = build_app(
                engine,
                self.metrics,
                rules,
                authenticator=self.authenticator,
                extra_routes=self.extra_routes,
                extra_paths=self.extra_paths,
                max_body=http.max_body_bytes,
            )
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            host, _, port = self.config.listen.rpartition(":")
            site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=listener_tls(http))
            await site.start()
            server = getattr(site, "_server", None)
            sockets = getattr(server, "sockets", None) or []
            self.http_port = sockets[0].getsockname()[1] if sockets else int(port)
            senders = [
                asyncio.create_task(w.run(), name=f"npsp.outbox.{w.channel}") for w in workers
            ]
            progressing = making_progress(
                engine.scheduler, lambda: self.config.scheduler.stall_after
            )
            tasks = [
                asyncio.create_task(engine.scheduler.run(), name="npsp.scheduler"),
                asyncio.create_task(engine.persist_forever(), name="npsp.store-writer"),
                asyncio.create_task(
                    engine.maintenance_forever(rules.maintenance.covered),
                    name="npsp.maintenance-states",
                ),
                asyncio.create_task(self._reload_loop(), name="npsp.reloader"),
                asyncio.create_task(pipeline.run(), name="npsp.alert-pipeline"),
                asyncio.create_task(self._outbox_stats(outbox), name="npsp.outbox-stats"),
                asyncio.create_task(run_desks(store, rules.desks(), ctx.clock), name="npsp.rules"),
                asyncio.create_task(
                    watchdog_loop(self.notifier, progressing), name="npsp.watchdog"
                ),
                asyncio.create_task(
                    status_loop(self.notifier, self.status_line, STATUS_EVERY), name="npsp.status"
                ),
                *senders,
            ]
            if status_topics is not None:
                tasks.append(asyncio.create_task(status_topics.run(), name="npsp.mqtt-status"))
            if rules.mqtt is not None:
                tasks.append(asyncio.create_task(rules.mqtt.run(), name="npsp.announcements"))
            publisher = channels.publisher

            async def publish_retained(suffix: str, payload: bytes) -> None:
                assert publisher is not None
                await publisher.publish(suffix, payload, retain=True)

            deadman = DeadMansSwitch(
                self.config.deadman,
                self.config.vantage,
                progressing=progressing,
                publish=publish_retained if publisher is not None else None,
                checks=lambda: len(engine.registry.checks),
            )
            tasks.append(asyncio.create_task(deadman.run(), name="npsp.deadman"))
            log.info(
                "npsp-monitor running",
                extra={"listen": f"{host}:{self.http_port}", "checks": len(engine.registry.checks)},
            )
            self.notifier.ready(self.status_line())
            if on_ready is not None:
                on_ready(self)
            stop = asyncio.create_task(self.stop_requested.wait(), name="npsp.stop")
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            crashed = [t for t in done if t is not stop]
            log.info("stopping")
            self.notifier.stopping("stopping: letting probes in flight finish")
            self._remove_signals()  # no reload (nor a second stop) while stopping
            for quiet in tasks:
                if quiet.get_name() in ("npsp.reloader", "npsp.status", "npsp.deadman"):
                    quiet.cancel()  # nothing may say "reloaded", "monitoring" or "alive" now
            engine.scheduler.stop()
            await engine.scheduler.drain(GRACE)
            others = [stop, *(t for t in tasks if t not in senders)]
            for task in others:
                task.cancel()
            # Bounded: a task that ignored its cancellation must not hold the stop forever.
            _, stuck = await asyncio.wait(others, timeout=STOP_TASKS_TIMEOUT)
            for task in stuck:
                log.error("task %s did not stop when cancelled; leaving it", task.get_name())
            # A crash is not a clean stop: those watching must not read "stopped".
            await deadman.stop("crashed" if crashed else "stopped")
            await engine.flush()
            await rules.incidents.flush()
            await pipeline.tick()  # whatever is due now is at least written to the outbox
            await self._drain_outbox(workers, senders)
            for task in crashed:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self._remove_signals()
            self.notifier.close()
            if runner is not None:
                await runner.cleanup()
            if channels is not None:
                await channels.aclose()
            await store.close()

    async def _drain_outbox(
        self, workers: list[OutboxWorker], senders: list[asyncio.Task[None]]
    ) -> None:
        """At a stop: the workers send what is due (the send in flight first) for up to
        ``alerting.outbox.drain_timeout``; what is left stays in the outbox for the next start."""
        if not senders:
            return
        timeout = self.config.alerting.outbox.drain_timeout
        self.notifier.status(f"stopping: sending the outbox (at most {timeout:g}s)")
        for worker in workers:
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

    async def _outbox_stats(self, outbox: Outbox) -> None:
        """Refresh the outbox gauges for the systemd STATUS line (a scrape of /metrics
        re-reads them itself: ``DaemonMetrics.refresh``)."""
        while True:
            try:
                self.metrics.outbox_pending = await outbox.pending()
            except Exception:
                log.exception("cannot read outbox statistics")
            await asyncio.sleep(OUTBOX_STATS_EVERY)

    async def _reload_loop(self) -> None:
        while True:
            await self.reload_requested.wait()
            self.reload_requested.clear()
            self.notifier.reloading("reloading the config")
            ok = False
            try:
                ok = await self.reload()
            finally:
                outcome = "reloaded" if ok else "reload rejected, previous config kept"
                self.notifier.ready(f"config {outcome}; {self.status_line()}")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            loop.add_signal_handler(signal.SIGINT, self.request_stop)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
