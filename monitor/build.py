"""Builds every part of one daemon, in dependency order, each through its constructor.

What a part needs is built before it and handed to its constructor; nothing is appended or
assigned afterwards (but for the broker connection, whose API takes a topic's handler by
``subscribe``). The order, and what breaks the two cycles of the running daemon:

1. the broker connection and channels, the engine (it depends on nothing built after it), the
   heartbeat receiver, the outbox and the metrics;
2. the notice sender (:class:`.alerting.notices.NoticeSender`: one-off notices go through the
   outbox by the routes in effect), then the rules desks, which send their notices through it;
3. (loading) the desks read the store, and the announced changes in effect shape the engine's
   first registry; the outbox takes back the sends a crash interrupted;
4. the alert pipeline, with the incident desk as its acknowledgements and the maintenance and
   silence desks as its muters, then the MQTT status topics, the outbox workers, the HTTP app
   and the dead man's switch.

The alert pipeline and the desks used to need each other (the desks' notices went through the
pipeline, the pipeline reads the desks): notices now have a sender of their own. The engine and
the desks still do at run time (results and events flow to the desks, announced changes back to
the engine): the engine is built first, and what listens to it — :attr:`Parts.observers`,
:attr:`Parts.subscribers` — is named where the lifecycle starts its loops
(:mod:`monitor.lifecycle`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from probes import ProbeEnv

from .alerting.channels import Channels
from .alerting.notices import NoticeSender, RunningRouter
from .alerting.outbox import Outbox, OutboxWorker
from .alerting.pipeline import AlertPipeline
from .cluster.lease import Leadership
from .cluster.votes import VoteBoard
from .config import Config
from .contacts.directory import ContactsDesk
from .deadman import DeadMansSwitch, last_will
from .engine import Engine, EventSink, ResultObserver
from .freshness import FreshnessJudge
from .heartbeats import TOPIC_FILTER as HEARTBEAT_TOPICS
from .heartbeats import HeartbeatReceiver, heartbeat_route
from .metrics import DaemonMetrics, lag_histogram
from .mqtt_status import StatusTopics
from .reports.produce import Producer
from .reports.schedule import ReportDesk
from .retention import RetentionDesk
from .rules.confirmations import ConfirmationDesk
from .rules.desk import RulesContext
from .rules.hygiene import HygieneDesk
from .rules.service import RulesService
from .sdnotify import making_progress
from .store import Store
from .web.app import build_app
from .web.auth import Authenticator
from .web.pages import PagesContext, page_routes
from .web.routes import Route
from .workdays import WorkCalendar

if TYPE_CHECKING:
    from .broker import MqttPublisher

#: Where the daemon's config is read: the one running now (a reload replaces it).
ConfigSource = Callable[[], Config]


class StartupError(Exception):
    """The daemon cannot start (a secret cannot be read, ...); the message says why."""


@dataclass(frozen=True, slots=True)
class Cluster:
    """This host's part in several (a PostgreSQL store): its leadership and its votes."""

    leadership: Leadership
    votes: VoteBoard


@dataclass(frozen=True, slots=True)
class Core:
    """What is built before anything is loaded (steps 1 and 2)."""

    store: Store
    channels: Channels
    engine: Engine
    heartbeats: HeartbeatReceiver
    outbox: Outbox
    metrics: DaemonMetrics
    rules: RulesService
    cluster: Cluster | None
    contacts: ContactsDesk | None = None  # the people in effect (the router reads it)

    @property
    def leading(self) -> bool:
        """Whether this host runs the alert pipeline, the desks' timed work and the outbox
        workers now (a single host always does)."""
        return self.cluster is None or self.cluster.leadership.leading


@dataclass(frozen=True, slots=True)
class Parts:
    """Every part of a running daemon (step 4 on top of :class:`Core`)."""

    core: Core
    pipeline: AlertPipeline
    status_topics: StatusTopics | None
    workers: list[OutboxWorker]
    authenticator: Authenticator
    api_routes: list[Route]  # in the API's table besides its own: the heartbeat's
    routes: list[web.RouteDef]  # beside the API, undocumented: the pages
    app: web.Application
    progressing: Callable[[], bool]  # whether the scheduler makes progress
    deadman: DeadMansSwitch

    @property
    def observers(self) -> list[ResultObserver]:
        """Hear of the engine's results that carry observed values."""
        return [self.core.rules.watch.observe]

    @property
    def subscribers(self) -> list[EventSink]:
        """Hear of each batch of state changes, once committed (in this order)."""
        out: list[EventSink] = [self.pipeline.on_events, self.core.rules.incidents.on_events]
        if self.status_topics is not None:
            out.append(self.status_topics.on_events)
        return out


def channels(config: Config) -> Channels:
    """The notifiers and the broker connection (not started yet)."""
    try:
        will = last_will(config.vantage) if config.deadman.mqtt else None
        return Channels.build(
            config.channels, config.vantage, will, site=config.alerting.status_page_url
        )
    except ValueError as exc:
        raise StartupError(f"channels: {exc}") from None


def core(config: ConfigSource, store: Store, chans: Channels) -> Core:
    """Steps 1 and 2: the engine, the outbox and the rules desks, nothing loaded yet."""
    now = config()
    probe_env = ProbeEnv()  # one heartbeat board, shared by the probes and the receiver
    lag = lag_histogram()
    cluster = _cluster(now, store)
    leader_store = store if cluster is None else store.fenced(cluster.leadership.fence)
    engine = Engine(
        now,
        store,
        probe_env,
        observe_lag=lag.observe,
        votes=None if cluster is None else cluster.votes,
        # A follower's state changes are neither recorded nor alerted on: the leader's are,
        # from its takeover's reconcile (Engine.take_over) while it holds the lease.
        leading=(lambda: True) if cluster is None else (lambda: cluster.leadership.holds),
        record_store=leader_store,
    )
    heartbeats = HeartbeatReceiver(probe_env.heartbeats, lambda: engine.registry)
    if chans.publisher is not None:
        chans.publisher.subscribe(HEARTBEAT_TOPICS, heartbeats.on_mqtt)
    outbox = Outbox(
        store,
        now.alerting.outbox,
        sms_min_interval=now.alerting.sms_min_interval,
        sms_fits=chans.sms_fits,
        workers_store=leader_store,
    )
    metrics = DaemonMetrics(engine=engine, outbox_source=outbox.pending, lag=lag)
    settings = lambda: config().alerting  # noqa: E731
    contacts = ContactsDesk(store, lambda: config().agencies)
    router = RunningRouter(settings, lambda: engine.registry, contacts)
    notices = NoticeSender(outbox, router, settings)
    ctx = RulesContext(
        store,
        WorkCalendar(now.calendar),
        notices,
        lambda: engine.registry,
        counters={n: c.inc for n, c in metrics.rule_counters.items()},
    )
    reports = Producer(
        store,
        lambda: engine.registry,
        router,
        lambda: config().reports.base_url or config().alerting.web_base,
        wake=lambda channel: outbox.wakeup(channel).set(),
    )
    rules = RulesService(
        ctx,
        set_overrides=engine.set_overrides,
        publisher=chans.publisher,
        status_page_url=now.alerting.status_page_url,
        desks=[
            ReportDesk(ctx, reports, lambda: config().reports),
            RetentionDesk(store, lambda: config().retention, on_pruned=metrics.count_pruned),
            contacts,
            # Addresses that failed for good, told once to their agency's admins.
            HygieneDesk(store, notices, contacts),
            # The agencies' own contacts reminded to confirm their details once a period.
            ConfirmationDesk(
                store,
                lambda: config().contacts,
                lambda: config().alerting.web_base,
                wake=lambda channel: outbox.wakeup(channel).set(),
            ),
        ],
    )
    # Off hours, an outage pages the agency's people on duty (its roster), not the whole team.
    router.duty = lambda agency, ts: rules.rosters.duty_targets(agency, ts, ctx.calendar)
    rules.rosters.directory = contacts  # the names on duty, for the pages
    engine.freshness = FreshnessJudge(lambda: ctx.calendar)  # the calendar of the day (reloads)
    return Core(store, chans, engine, heartbeats, outbox, metrics, rules, cluster, contacts)


def _cluster(config: Config, store: Store) -> Cluster | None:
    """On a shared (PostgreSQL) store, this host's leadership and votes; else None."""
    if not store.shared:
        return None
    leadership = Leadership(store, config.cluster, config.vantage)
    votes = VoteBoard(store, config.cluster, config.vantage, leadership.holder)
    return Cluster(leadership, votes)


async def load(c: Core) -> None:
    """Step 3: the desks read the store; the announced changes already in effect shape the
    very first registry; the outbox takes back what a crash left half-sent (a single host: on
    several, the host taking over as the leader does)."""
    overrides = await c.rules.load()
    if c.contacts is not None:
        await c.contacts.refresh()  # the agencies' own contacts, before the first alert
    await c.engine.start(overrides)
    if c.cluster is None:
        await c.outbox.recover()  # on several hosts: the leader's, at its takeover


def parts(
    config: ConfigSource,
    c: Core,
    *,
    count_notification: Callable[[str, str], None],
) -> Parts:
    """Step 4, once loaded: the alert pipeline on the running registry and what serves."""
    now = config()
    engine, rules = c.engine, c.rules
    pipeline = AlertPipeline(
        now.alerting,
        engine.registry,
        c.outbox,
        muters=[rules.maintenance, rules.silences],
        acks=rules.incidents,
        directory=c.contacts,
    )
    publisher = c.channels.publisher
    status_topics = StatusTopics(engine, publisher) if publisher is not None else None
    workers = [
        OutboxWorker(c.outbox, notifier, count=count_notification)
        for notifier in c.channels.notifiers.values()
    ]
    authenticator = Authenticator(
        c.store,
        max_failures=now.http.login_failures_per_minute,
        trusted_proxies=lambda: config().http.trusted_proxies,
    )
    api_routes = [heartbeat_route(c.heartbeats, lambda: config().http.trusted_proxies)]
    routes = page_routes(PagesContext(engine, c.store, rules, authenticator, rules.ctx.clock))
    app = _app(now, c, authenticator, api_routes, routes)
    progressing = making_progress(engine.scheduler, lambda: config().scheduler.stall_after)
    deadman = DeadMansSwitch(
        now.deadman,
        now.vantage,
        progressing=progressing,
        publish=_retained(publisher) if publisher is not None else None,
        checks=lambda: len(engine.registry.checks),
    )
    return Parts(
        c,
        pipeline,
        status_topics,
        workers,
        authenticator,
        api_routes,
        routes,
        app,
        progressing,
        deadman,
    )


def _app(
    config: Config,
    c: Core,
    authenticator: Authenticator,
    api_routes: list[Route],
    routes: list[web.RouteDef],
) -> web.Application:
    """The one HTTP application: the API with ``api_routes`` (the heartbeat's) in its table, and
    ``routes`` (the pages, not part of the API's document) beside it."""
    return build_app(
        c.engine,
        c.metrics,
        c.rules,
        authenticator=authenticator,
        routes=api_routes,
        extra_routes=routes,
        max_body=config.http.max_body_bytes,
    )


def _retained(publisher: MqttPublisher) -> Callable[[str, bytes], Awaitable[None]]:
    async def publish(suffix: str, payload: bytes) -> None:
        await publisher.publish(suffix, payload, retain=True)

    return publish
