"""The cluster's metrics (issue 13): leader, store, takeovers, voting vantages and each system's
failing votes, as /metrics shows them after each setter (the real prometheus-client registry and
renderer, parsed back with prometheus-client's own parser)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_config
from monitor.engine import Engine
from monitor.metrics import SLICE, DaemonMetrics, render
from monitor.store import Store
from probes import ProbeEnv

from .test_prometheus import CLUSTER_ONLY

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> Samples:
    """name -> {sorted labels: value} of every sample of a /metrics text."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def scrape(metrics: DaemonMetrics) -> Samples:
    return parse(generate_latest(metrics.registry).decode())


def value(found: Samples, name: str, **labels: str) -> float:
    return found[name][tuple(sorted(labels.items()))]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    """An engine of vantage gw-1 with an uplink canary (never probed: the scheduler does not run)."""
    data = {
        "vantage": "gw-1",
        "listen": "127.0.0.1:0",
        "state_db": str(tmp_path / "state.db"),
        "uplink": {"checks": [{"id": "canary", "kind": "tcp", "host": "127.0.0.1", "port": 9}]},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    store = await Store.open(config.state_db)
    try:
        engine = Engine(config, store, ProbeEnv())
        await engine.start()
        yield engine
    finally:
        await store.close()


def test_defaults_of_a_single_host() -> None:
    """At start: leader, store up, no takeover yet (the counter at 0, so that ``increase()``
    sees the first one); no vantage known without an engine, so no voting series."""
    found = scrape(DaemonMetrics())
    assert value(found, "npsp_leader") == 1
    assert value(found, "npsp_store_up") == 1
    assert value(found, "npsp_leader_takeovers_total") == 0
    assert "npsp_vantage_voting" not in found
    assert "npsp_vantages_voting" not in found


def test_leader_store_and_takeovers() -> None:
    metrics = DaemonMetrics()
    metrics.set_leader(False)
    metrics.set_store_up(False)
    found = scrape(metrics)
    assert value(found, "npsp_leader") == 0
    assert value(found, "npsp_store_up") == 0
    metrics.set_store_up(True)
    metrics.leader_took_over()  # becoming the leader counts, and makes npsp_leader 1
    found = scrape(metrics)
    assert value(found, "npsp_leader") == 1
    assert value(found, "npsp_store_up") == 1
    assert value(found, "npsp_leader_takeovers_total") == 1
    metrics.set_leader(False)
    metrics.leader_took_over()
    found = scrape(metrics)
    assert value(found, "npsp_leader_takeovers_total") == 2
    assert value(found, "npsp_leader") == 1


def test_vantages_voting_as_set() -> None:
    metrics = DaemonMetrics()
    metrics.set_voting({"gw-2": True, "gw-1": True, "gw-3": False})
    text = generate_latest(metrics.registry).decode()
    found = parse(text)
    assert found["npsp_vantage_voting"] == {
        (("vantage", "gw-1"),): 1,
        (("vantage", "gw-2"),): 1,
        (("vantage", "gw-3"),): 0,
    }
    assert value(found, "npsp_vantages_voting") == 2
    assert "# TYPE npsp_vantage_voting gauge" in text
    # a new reading replaces the old one: a vantage no longer known is no longer exported
    metrics.set_voting({"gw-1": False, "gw-2": True})
    found = scrape(metrics)
    assert found["npsp_vantage_voting"] == {(("vantage", "gw-1"),): 0, (("vantage", "gw-2"),): 1}
    assert value(found, "npsp_vantages_voting") == 1
    metrics.set_voting({})  # nothing known: the family is empty, the count 0
    found = scrape(metrics)
    assert "npsp_vantage_voting" not in found
    assert value(found, "npsp_vantages_voting") == 0


async def test_a_single_host_exports_its_own_vantage(engine: Engine) -> None:
    """Until told otherwise, a daemon's own vantage votes while its canaries pass."""
    metrics = DaemonMetrics(engine=engine)
    found = scrape(metrics)
    assert found["npsp_vantage_voting"] == {(("vantage", "gw-1"),): 1}
    assert value(found, "npsp_vantages_voting") == 1
    engine.state.gateway_cut = True  # what every canary failing sets
    found = scrape(metrics)
    assert found["npsp_vantage_voting"] == {(("vantage", "gw-1"),): 0}
    assert value(found, "npsp_vantages_voting") == 0
    metrics.set_voting({"gw-1": False, "gw-2": True})  # the cluster's reading wins
    found = scrape(metrics)
    assert found["npsp_vantage_voting"] == {(("vantage", "gw-1"),): 0, (("vantage", "gw-2"),): 1}


async def test_system_votes_only_when_set(engine: Engine) -> None:
    metrics = DaemonMetrics(engine=engine)
    text = "".join([c async for c in render(engine, metrics)])
    assert "npsp_system_votes_failing" not in text  # cluster off: not exported at all
    votes = {("ha-noi", "secure-server"): 2, ("bo-y-te", 'odd"name\\'): 0}
    metrics.set_system_votes(votes)
    text = "".join([c async for c in render(engine, metrics)])
    assert 'npsp_system_votes_failing{agency="ha-noi",system="secure-server"} 2\n' in text
    found = parse(text)
    assert found["npsp_system_votes_failing"] == {
        (("agency", "bo-y-te"), ("system", 'odd"name\\')): 0,
        (("agency", "ha-noi"), ("system", "secure-server")): 2,
    }
    assert value(found, "npsp_leader") == 1  # the rest of /metrics is still there
    votes[("ha-noi", "secure-server")] = 3  # the mapping is read at each scrape
    found = parse("".join([c async for c in render(engine, metrics)]))
    assert value(found, "npsp_system_votes_failing", agency="ha-noi", system="secure-server") == 3
    metrics.set_system_votes(None)
    text = "".join([c async for c in render(engine, metrics)])
    assert "npsp_system_votes_failing" not in text


async def test_cluster_only_families_are_what_the_cluster_adds(engine: Engine) -> None:
    """tests/test_prometheus.py lets the rules and the dashboard read CLUSTER_ONLY although a
    single daemon does not export it: it must be exactly what the cluster's votes add."""
    metrics = DaemonMetrics(engine=engine)
    single = set(parse("".join([c async for c in render(engine, metrics)])))
    metrics.set_system_votes({("ha-noi", "secure-server"): 1})
    cluster = set(parse("".join([c async for c in render(engine, metrics)])))
    assert cluster - single == CLUSTER_ONLY
    assert single <= cluster


async def test_system_votes_of_20000_systems_render_in_slices(engine: Engine) -> None:
    """20,000 systems (two slices): one pre-built label string each, rendered with the loop
    getting control back in between (like the per-check series)."""
    metrics = DaemonMetrics(engine=engine)
    systems = 20_000
    votes = {(f"agency-{i % 50:02d}", f"s-{i:05d}"): i % 4 for i in range(systems)}
    metrics.set_system_votes(votes)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    text = "".join([c async for c in render(engine, metrics)])
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = "".join([c async for c in render(engine, metrics)])  # labels built once, reused
    second = time.perf_counter() - started
    stop.set()
    await task
    assert text == again
    assert text.count("npsp_system_votes_failing{") == systems
    assert 'npsp_system_votes_failing{agency="agency-07",system="s-00007"} 3\n' in text
    assert ticks >= systems // SLICE
    found = parse(text)
    assert sum(found["npsp_system_votes_failing"].values()) == sum(votes.values())
    print(f"20,000 systems' votes: first render {first * 1000:.1f} ms, then {second * 1000:.1f} ms")
    assert second < 1.0  # tens of milliseconds in practice; a labelled Gauge takes seconds
