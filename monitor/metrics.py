"""Prometheus metrics: our own cheap renderer for per-check state, prometheus-client for the rest.

A labelled Gauge per check costs 750-825 ms to render at 10,000 checks (PRODUCT.md); rendering
straight from the engine's own structures with pre-built label strings costs a few tens of
milliseconds, and it is done in slices with a yield between them so that a scrape never stalls
the probes for long. Series of a removed check vanish by construction: only what is in the
running registry is rendered.

Every counter exists from the start, at 0, every label pair included: Prometheus' ``increase()``
and ``rate()`` see nothing of a series born at 1 (no earlier sample to compare with), so an
alert on the first failed notification would never fire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from notifiers.base import ChannelName

from .config.retention import KINDS as RETENTION_KINDS
from .engine import Engine
from .registry import _label_value
from .state import State
from .store import StoreError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Checks rendered between two yields to the event loop: one slice of 10,000 takes ~12 ms, and
# every yield waits a full turn of probe callbacks (2,000 made a scrape take over 100 ms).
SLICE = 10_000

REFRESH_WAIT = 0.25  # seconds a scrape waits for the store before using the last reading

LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CHANNELS: tuple[str, ...] = get_args(ChannelName)  # sms, email, inbox, webhook
# What OutboxWorker counts per attempt (monitor/alerting/outbox.py): sent, or Outbox.failed()'s
# retry / failed / fallback.
NOTIFICATION_OUTCOMES = ("sent", "retry", "failed", "fallback")


def lag_histogram() -> Histogram:
    """The scheduler's lag, registered nowhere yet: the engine observes it from the start, and
    the :class:`DaemonMetrics` built after the engine (which it reads) takes it in."""
    return Histogram(
        "npsp_scheduler_lag_seconds",
        "Delay between a probe run's due time and its start.",
        buckets=LAG_BUCKETS,
        registry=None,
    )


class DaemonMetrics:
    """The prometheus-client side: a private registry (never the global one), built once.

    ``engine`` is read at every scrape; ``outbox_source`` reads the outbox backlog from the
    store; ``lag`` is the histogram the engine's scheduler observes (a new one by default)."""

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        outbox_source: Callable[[], Awaitable[dict[str, tuple[int, float | None]]]] | None = None,
        lag: Histogram | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag = lag_histogram() if lag is None else lag
        self.registry.register(self.lag)
        self.notifications = Counter(
            "npsp_notifications",
            "Notification attempts by channel and outcome (sent, retry, failed, fallback).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        for channel in CHANNELS:  # every pair at 0 from the start (see the module's docstring)
            for outcome in NOTIFICATION_OUTCOMES:
                self.notifications.labels(channel, outcome)
        # The working-day rules: counted by the rules desks through ``RulesContext.count``.
        rule_counters = {  # counter name used by the desks -> (metric, help)
            "change_notice_violations": (
                "npsp_change_notice_violations",
                "Change announcements made with less notice than the rule requires "
                "(3 working days by default).",
            ),
            "unannounced_changes": (
                "npsp_unannounced_changes",
                "Certificate, issuer or address changes of a secure server that no "
                "announcement covered.",
            ),
            "announcements_rejected": (
                "npsp_announcements_rejected",
                "Announcements refused as malformed or invalid.",
            ),
            "incident_sla_breaches": (
                "npsp_incident_sla_breaches",
                "Incidents not resolved within their SLA (working hours).",
            ),
            "maintenance_late": (
                "npsp_maintenance_late_notices",
                "Maintenance windows scheduled with less notice than the rule requires "
                "(allowed only with an override).",
            ),
        }
        self.rule_counters = {
            name: Counter(metric, doc, registry=self.registry)
            for name, (metric, doc) in rule_counters.items()
        }
        self.retention_pruned = Counter(
            "npsp_retention_pruned_rows",
            "Rows pruned by the retention pass, by kind (the retention: setting's name).",
            ["kind"],
            registry=self.registry,
        )
        for kind in RETENTION_KINDS:  # every kind at 0 from the start
            self.retention_pruned.labels(kind)
        self.outbox_pending: dict[str, tuple[int, float | None]] = {}
        self.outbox_source = outbox_source  # re-read at every scrape
        self.reload_ok = 1
        self.reload_time = time.time()
        self.engine = engine
        # Several gateway hosts on one PostgreSQL (issue 13); a single SQLite host keeps these
        # defaults: it is the leader, its store answers, it never took over from anyone.
        self.leader = 1
        self.store_up = 1
        self.takeovers = Counter(
            "npsp_leader_takeovers",
            "Times this host became the leader (ran the alert stream after another host).",
            registry=self.registry,
        )
        # vantage -> votes now, as this host reads the shared store; None until set (a daemon
        # with an engine then exports its own vantage, voting while its canaries pass).
        self.voting: dict[str, bool] | None = None
        # (agency, system) -> voting vantages that see it failing; None: cluster off, not
        # exported. Label strings are built once per system and kept (see ``vote_labels``).
        self.system_votes: Mapping[tuple[str, str], int] | None = None
        self._vote_labels: dict[tuple[str, str], str] = {}
        self.registry.register(_EngineCollector(self))

    async def refresh(self) -> None:
        """Before a scrape: re-read what lives in the database (the outbox backlog), so that
        the scrape shows it as it is now. Bounded: a store busy with a long write leaves the
        last reading (at most ``REFRESH_WAIT`` old news rather than a stalled scrape)."""
        if self.outbox_source is None:
            return
        try:
            async with asyncio.timeout(REFRESH_WAIT):
                self.outbox_pending = await self.outbox_source()
        except TimeoutError:
            return  # busy, not down: npsp_store_up keeps its last value
        except StoreError as exc:  # the database is away: said, not a bug
            self.set_store_up(False)
            log.warning("cannot read the outbox backlog for /metrics: %s", exc)
        except Exception:  # a store error must not fail the scrape
            self.set_store_up(False)
            log.warning("cannot read the outbox backlog for /metrics", exc_info=True)
        else:
            self.set_store_up(True)

    def count_notification(self, channel: str, outcome: str) -> None:
        self.notifications.labels(channel, outcome).inc()

    def count_pruned(self, kind: str, rows: int) -> None:
        """Rows of one kind the retention pass deleted."""
        self.retention_pruned.labels(kind).inc(rows)

    def reload_result(self, ok: bool) -> None:
        self.reload_ok = 1 if ok else 0
        if ok:
            self.reload_time = time.time()

    # -- the cluster (issue 13): set by whoever knows, read at every scrape --------------------

    def set_leader(self, leader: bool) -> None:
        """Whether this host runs the alert stream now (``npsp_leader``)."""
        self.leader = 1 if leader else 0

    def set_store_up(self, up: bool) -> None:
        """Whether the state database answered the last operation or ping (``npsp_store_up``)."""
        self.store_up = 1 if up else 0

    def leader_took_over(self) -> None:
        """This host just became the leader (``npsp_leader_takeovers_total``); also sets
        ``npsp_leader`` to 1."""
        self.takeovers.inc()
        self.leader = 1

    def set_voting(self, voting: Mapping[str, bool]) -> None:
        """Every vantage known in the shared store -> whether it votes now (fresh liveness beat
        and passing canaries), as this host reads it. Replaces the previous reading: a vantage
        left out is no longer exported."""
        self.voting = dict(voting)

    def set_system_votes(self, votes: Mapping[tuple[str, str], int] | None) -> None:
        """(agency, system) -> how many voting vantages see the system failing (down or
        unreachable); None stops exporting ``npsp_system_votes_failing`` (cluster off). The
        mapping is kept, not copied: a scrape reads a snapshot of its items."""
        self.system_votes = votes
        if votes is not None and len(self._vote_labels) > 2 * len(votes) + 1000:
            self._vote_labels = {}  # systems removed since: forget their labels

    def vote_labels(self, key: tuple[str, str]) -> str:
        """The pre-rendered ``agency="…",system="…"`` of a system, built once."""
        labels = self._vote_labels.get(key)
        if labels is None:
            agency, system = key
            labels = f'agency="{_label_value(agency)}",system="{_label_value(system)}"'
            self._vote_labels[key] = labels
        return labels

    def voting_now(self) -> dict[str, bool] | None:
        """What ``npsp_vantage_voting`` shows: the last ``set_voting``, or else this daemon's
        own vantage voting while its canaries pass (a single host), or nothing (no engine)."""
        if self.voting is not None:
            return self.voting
        if self.engine is None:
            return None
        state = self.engine.state
        return {state.vantage: not state.gateway_cut}


class _EngineCollector(Collector):
    """Counters and gauges read from the engine when scraped (a handful of series)."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m = self._metrics
        yield GaugeMetricFamily(
            "npsp_config_last_reload_successful",
            "Whether the last configuration (re)load succeeded.",
            value=m.reload_ok,
        )
        yield GaugeMetricFamily(
            "npsp_config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load.",
            value=m.reload_time,
        )
        pending = GaugeMetricFamily(
            "npsp_outbox_pending", "Notifications waiting to be sent.", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "npsp_outbox_oldest_pending_age_seconds",
            "Age of the oldest notification waiting to be sent.",
            labels=["channel"],
        )
        now = time.time()
        for channel in CHANNELS:
            count, first = m.outbox_pending.get(channel, (0, None))
            pending.add_metric([channel], count)
            oldest.add_metric([channel], 0.0 if first is None else max(0.0, now - first))
        yield pending
        yield oldest
        yield GaugeMetricFamily(
            "npsp_leader",
            "1 on the host that runs the alert stream now (always on a single host), 0 elsewhere.",
            value=m.leader,
        )
        yield GaugeMetricFamily(
            "npsp_store_up",
            "1 while the state database answers (last operation or ping succeeded), 0 otherwise.",
            value=m.store_up,
        )
        voting = m.voting_now()
        if voting is not None:
            per_vantage = GaugeMetricFamily(
                "npsp_vantage_voting",
                "1 while the vantage votes (fresh liveness beat, uplink canaries pass), 0 "
                "otherwise; every vantage this host knows of.",
                labels=["vantage"],
            )
            for vantage, votes in sorted(voting.items()):
                per_vantage.add_metric([vantage], 1 if votes else 0)
            yield per_vantage
            yield GaugeMetricFamily(
                "npsp_vantages_voting",
                "Vantages voting now, as this host reads them.",
                value=sum(1 for votes in voting.values() if votes),
            )
        engine = m.engine
        if engine is None:
            return
        sched = engine.scheduler
        yield CounterMetricFamily("npsp_probes", "Probe runs completed.", value=sched.runs)
        yield CounterMetricFamily(
            "npsp_scheduler_coalesced",
            "Probe runs skipped because the previous run was still in flight or the loop stalled.",
            value=sched.coalesced,
        )
        yield GaugeMetricFamily(
            "npsp_scheduler_in_flight", "Probe runs in flight.", value=sched.in_flight
        )
        yield GaugeMetricFamily(
            "npsp_checks", "Checks configured.", value=len(engine.registry.checks)
        )
        yield CounterMetricFamily(
            "npsp_state_changes", "State changes announced.", value=engine.events_total
        )
        yield CounterMetricFamily(
            "npsp_store_write_failures",
            "Failed writes to the state database.",
            value=engine.store_failures,
        )
        if engine.registry.canaries:
            yield GaugeMetricFamily(
                "npsp_gateway_uplink_up",
                "1 unless every uplink canary fails (the gateway is cut off).",
                value=0 if engine.state.gateway_cut else 1,
            )


async def render(engine: Engine, metrics: DaemonMetrics) -> AsyncIterator[str]:
    """Yield the /metrics text in pieces, yielding to the loop between slices."""
    checks = list(engine.registry.checks.values())
    statuses = {k: c for s in engine.state.systems.values() for k, c in s.checks.items()}

    families = (
        (
            "npsp_probe_success",
            "Whether the last probe of the check succeeded.",
            lambda r: 1 if r.ok else 0,
        ),
        (
            "npsp_probe_duration_seconds",
            "Duration of the last probe of the check.",
            lambda r: r.duration,
        ),
        (
            "npsp_tls_cert_not_after_timestamp_seconds",
            "Expiry time of the leaf certificate seen by the last probe, valid or not.",
            lambda r: r.cert_not_after,
        ),
        (
            "npsp_data_age_working_hours",
            "Age of the check's data (a JSON field's time, or the last push) in working hours of"
            " its agency; only checks with a freshness condition.",
            lambda r: None if r.data is None else r.data.age_working_hours,
        ),
    )
    for name, help_text, value_of in families:
        parts = [f"# HELP {name} {help_text}\n# TYPE {name} gauge\n"]
        for index, entry in enumerate(checks, 1):
            status = statuses.get(entry.key)
            result = status.last if status is not None else None
            if result is not None:
                value = value_of(result)
                if value is not None:
                    parts.append(f"{name}{{{entry.labels}}} {value!r}\n")
            if index % SLICE == 0:
                yield "".join(parts)
                parts = []
                await asyncio.sleep(0)
        yield "".join(parts)

    systems = list(engine.registry.systems.values())
    up = [
        "# HELP npsp_system_up 1 when the system is up or degraded, 0 when down, unreachable or"
        " flapping; absent while pending, unknown or in maintenance.\n"
        "# TYPE npsp_system_up gauge\n"
    ]
    states = [
        "# HELP npsp_system_state The system's current state (one series, value 1).\n"
        "# TYPE npsp_system_state gauge\n"
    ]
    for sys_entry in systems:
        sys_status = engine.state.systems.get(sys_entry.key)
        if sys_status is None:
            continue
        shown = engine.state.display_state(sys_status)
        if shown not in (State.PENDING, State.UNKNOWN, State.MAINTENANCE):
            reachable = shown in (State.UP, State.DEGRADED)
            up.append(f"npsp_system_up{{{sys_entry.labels}}} {1 if reachable else 0}\n")
        states.append(f'npsp_system_state{{{sys_entry.labels},state="{shown.value}"}} 1\n')
    yield "".join(up)
    yield "".join(states)
    await asyncio.sleep(0)
    if metrics.system_votes is not None:
        async for chunk in _render_votes(metrics, list(metrics.system_votes.items())):
            yield chunk
        await asyncio.sleep(0)
    yield generate_latest(metrics.registry).decode()


async def _render_votes(
    metrics: DaemonMetrics, votes: list[tuple[tuple[str, str], int]]
) -> AsyncIterator[str]:
    """``npsp_system_votes_failing``, from a snapshot of the votes, in slices like the checks."""
    parts = [
        "# HELP npsp_system_votes_failing Voting vantages that see the system failing (down or"
        " unreachable).\n"
        "# TYPE npsp_system_votes_failing gauge\n"
    ]
    for index, (key, count) in enumerate(votes, 1):
        parts.append(f"npsp_system_votes_failing{{{metrics.vote_labels(key)}}} {count}\n")
        if index % SLICE == 0:
            yield "".join(parts)
            parts = []
            await asyncio.sleep(0)
    yield "".join(parts)
