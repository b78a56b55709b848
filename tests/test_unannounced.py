"""Unannounced changes: a real TLS server (trustme) whose certificate is swapped, a real DNS
server whose answer changes, the real tls/dns probes, the real store and alert pipeline.

Swapped without an announcement: one alert, not one per probe. Swapped after an announcement
that names the new certificate: none."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config
from monitor.registry import Registry
from monitor.rules.announcements import AnnouncementDesk, parse_request
from monitor.rules.announcements.catalog import build_catalog
from monitor.rules.announcements.changewatch import ChangeWatch
from monitor.rules.desk import RulesContext
from monitor.store import Store
from monitor.workdays import WorkCalendar
from probes import PROBES, ProbeEnv
from probes.tls import Spec
from tests.probe_servers import Certs, DNSServer, Server, Zone, make_certs

from .test_alert_pipeline import World, agency
from .test_announcements import MONDAY_0900

pytestmark = pytest.mark.timeout(60)


async def wait_for_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    del writer
    await reader.read()


def fleet(tls_port: int, dns_address: str, ca_file: Path, kind: str = "secure-server") -> Config:
    ha_noi = agency("ha-noi", "Hà Nội", ["secure-server"])
    ha_noi["systems"][0]["kind"] = kind
    ha_noi["systems"][0]["checks"] = [
        {
            "id": "tls",
            "kind": "tls",
            "host": "127.0.0.1",
            "port": tls_port,
            "tls": {"ca_file": str(ca_file)},
        },
        {"id": "dns", "kind": "dns", "name": "ssv.ha-noi.example", "nameservers": [dns_address]},
    ]
    return Config.model_validate(
        {
            "agencies": [ha_noi],
            "alerting": {
                "operations": [
                    {"name": "VPCP trực", "email": "ops@vpcp.dvc.example", "channels": ["email"]}
                ]
            },
        }
    )


class Watched:
    """The watch over a real TLS and DNS server, on an injected clock."""

    def __init__(self, store: Store, config: Config) -> None:
        self.world = World(store, config)
        self.world.now = MONDAY_0900
        self.registry = Registry.from_config(config)
        self.counted = 0

        def count() -> None:
            self.counted += 1

        self.ctx = RulesContext(
            store,
            WorkCalendar(config.calendar),
            self.world.pipeline,
            lambda: self.registry,
            clock=lambda: self.world.now,
            counters={"unannounced_changes": count},
        )
        self.desk = AnnouncementDesk(self.ctx)
        self.watch = ChangeWatch(self.ctx, self.desk)
        self.probes = {
            key: PROBES[c.kind].build(c.spec, ProbeEnv()) for key, c in self.registry.checks.items()
        }

    async def start(self) -> Watched:
        await self.desk.refresh()
        await self.watch.load()
        return self

    async def probe(self, times: int = 1) -> None:
        """Probe every check ``times`` times, a minute apart, and deliver what is due."""
        for _ in range(times):
            for key, probe in self.probes.items():
                result = await probe(3.0)
                assert result.observed, result.reason
                self.watch.observe(key, result, self.world.now)
            await self.watch.tick(self.world.now)
            await self.world.advance(60)

    async def announce(self, changes: dict[str, Any], effective: str = "2026-12-14T08:00") -> None:
        request = parse_request(
            json.dumps({"effective_at": effective, "changes": changes}).encode(), "ha-noi"
        )
        await self.desk.submit(request, "ha-noi", "test")

    @property
    def unannounced(self) -> list[Any]:
        return [m for m in self.world.sent.messages if "chưa được thông báo" in m.subject]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def zone() -> Zone:
    return Zone(records={("ssv.ha-noi.example", "A"): ["192.0.2.10"]})


async def test_certificate_swapped_without_announcement_alerts_once(
    store: Store, certs: Certs, zone: Zone
) -> None:
    tls = certs.server_context(certs.good)
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        w = await Watched(store, fleet(server.port, dns_server.address, certs.ca_file)).start()
        await w.probe(2)  # the first sight is the baseline
        assert w.world.sent.messages == []

        # Same CA, new key and certificate: the fingerprint changes, the issuer does not.
        swapped = certs.ca.issue_cert("localhost", "127.0.0.1")
        swapped.configure_cert(tls)
        await w.probe(5)

    alerts = w.unannounced
    assert sorted(m.to for m in alerts) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    )
    mail = next(m for m in alerts if m.to == "kt@ha-noi.dvc.example")
    assert "dấu vân tay chứng chỉ" in mail.subject
    assert "ha-noi/secure-server/tls" in mail.text
    assert "tấn công xen giữa" in mail.text  # says why it matters
    assert w.counted == 1
    assert len(w.world.sent.messages) == 4  # nothing else (the probes all succeeded)


async def test_a_new_certificate_from_a_new_issuer_is_one_notice(
    store: Store, certs: Certs, zone: Zone
) -> None:
    """The fingerprint and the issuer change in one probe result: one notice naming both, not
    two (issue 9.6: one certificate change gave two SMS 2 ms apart)."""
    tls = certs.server_context(certs.good)
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        w = await Watched(store, fleet(server.port, dns_server.address, certs.ca_file)).start()
        await w.probe(2)
        # An intermediate of the same root: the chain still verifies, the issuer is new.
        certs.ca.create_child_ca().issue_cert("localhost", "127.0.0.1").configure_cert(tls)
        await w.probe(3)
    alerts = w.unannounced
    assert sorted(m.to for m in alerts) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    )
    mail = next(m for m in alerts if m.to == "kt@ha-noi.dvc.example")
    assert "dấu vân tay chứng chỉ, đơn vị cấp chứng chỉ" in mail.subject
    assert w.counted == 2  # two values changed; one message tells both


async def test_certificate_swapped_after_an_announcement_is_quiet(
    store: Store, certs: Certs, zone: Zone
) -> None:
    tls = certs.server_context(certs.good)
    swapped = certs.ca.issue_cert("localhost", "127.0.0.1")
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        w = await Watched(store, fleet(server.port, dns_server.address, certs.ca_file)).start()
        await w.probe()
        # The agency announces the new certificate (compliant notice), then installs it.
        new_fp = await _fingerprint_of(swapped, certs)
        await w.announce({"fingerprint_sha256": new_fp})
        swapped.configure_cert(tls)
        await w.probe(3)
    assert w.unannounced == []  # only the announcement's confirmation went out
    assert w.counted == 0
    catalog = build_catalog(w.registry, w.desk, w.watch, w.world.now)
    observed = catalog["secure_servers"][0]["current"][0]["observed"]
    assert observed["fingerprint_sha256"] == new_fp  # the catalog shows what is served now


async def test_a_late_announcement_cancelled_after_it_took_effect_rearms_the_alarm(
    store: Store, certs: Certs, zone: Zone
) -> None:
    """Review of issue 10: someone holding the agency's credential announces an interceptor's
    certificate effective in two minutes (late: the confirmation goes out, but before anyone
    reads it the change is in effect and the new certificate accepted quietly). Cancelling it
    must still work, and the certificate still being served is then news."""
    from monitor.rules.announcements import cancel

    tls = certs.server_context(certs.good)
    interceptor = certs.ca.issue_cert("localhost", "127.0.0.1")
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        w = await Watched(store, fleet(server.port, dns_server.address, certs.ca_file)).start()
        await w.probe()
        fp = await _fingerprint_of(interceptor, certs)
        await w.announce({"fingerprint_sha256": fp}, effective="2026-12-07T09:03")
        interceptor.configure_cert(tls)
        await w.probe(4)  # in effect since 09:03: accepted quietly
        assert w.unannounced == []
        (announced,) = w.desk.items
        await cancel(store, announced.id, w.world.now)  # "if this was not you, cancel it"
        await w.desk.refresh()
        await w.desk.tick(w.world.now)  # the cancellation is told, like the announcement was
        await w.probe(3)
    cancelled = [m for m in w.world.sent.messages if "Đã hủy thông báo" in m.subject]
    assert sorted(m.to for m in cancelled) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    )
    alerts = w.unannounced
    assert sorted(m.to for m in alerts) == sorted(
        ["ops@vpcp.dvc.example", "kt@ha-noi.dvc.example", "kt.ha-noi", "cc@ha-noi.dvc.example"]
    ), "told once, to the agency's admins and operations"
    mail = next(m for m in alerts if m.to == "kt@ha-noi.dvc.example")
    assert fp in mail.text and f"#{announced.id}" in mail.text and "đã huỷ" in mail.text


async def test_an_address_change_is_caught_and_a_restart_does_not_repeat_it(
    store: Store, certs: Certs, zone: Zone
) -> None:
    async with (
        Server(wait_for_eof, tls=certs.server_context()) as server,
        DNSServer(zone) as dns_server,
    ):
        config = fleet(server.port, dns_server.address, certs.ca_file)
        w = await Watched(store, config).start()
        await w.probe()
        zone.records[("ssv.ha-noi.example", "A")] = ["198.51.100.7"]
        await w.probe(2)
        assert len(w.unannounced) == 4
        assert "địa chỉ IP" in w.unannounced[0].subject
        assert "198.51.100.7" in w.unannounced[0].text and "192.0.2.10" in w.unannounced[0].text

        # A restarted daemon remembers what it accepted: the same value is not news.
        again = await Watched(store, config).start()
        await again.probe(2)
        assert again.world.sent.messages == []

        # Changing back is a change of its own (announced this time: quiet).
        await again.announce({"addresses": ["192.0.2.10"]})
        zone.records[("ssv.ha-noi.example", "A")] = ["192.0.2.10"]
        await again.probe()
        assert again.unannounced == []


async def test_systems_other_than_secure_servers_are_not_watched(
    store: Store, certs: Certs, zone: Zone
) -> None:
    """A public portal renews its certificate routinely: that is not news."""
    tls = certs.server_context(certs.good)
    async with Server(wait_for_eof, tls=tls) as server, DNSServer(zone) as dns_server:
        config = fleet(server.port, dns_server.address, certs.ca_file, "public-service-portal")
        w = await Watched(store, config).start()
        await w.probe()
        certs.ca.issue_cert("localhost", "127.0.0.1").configure_cert(tls)
        await w.probe(2)
    assert w.world.sent.messages == []


async def _fingerprint_of(leaf: Any, certs: Certs) -> str:
    """What the tls probe reports for ``leaf`` (served once on a throwaway server)."""
    async with Server(wait_for_eof, tls=certs.server_context(leaf)) as server:
        spec = Spec.model_validate(
            {
                "id": "t",
                "kind": "tls",
                "host": "127.0.0.1",
                "port": server.port,
                "tls": {"ca_file": str(certs.ca_file)},
            }
        )
        result = await PROBES["tls"].build(spec, ProbeEnv())(3.0)
    return result.observed["fingerprint_sha256"]


async def test_pinned_addresses_in_any_order_are_no_change(store: Store, certs: Certs) -> None:
    """The config lists the addresses in its own order; the probe reports them sorted."""
    zone = Zone(records={("ssv.ha-noi.example", "A"): ["192.0.2.20", "192.0.2.3"]})
    async with (
        Server(wait_for_eof, tls=certs.server_context()) as server,
        DNSServer(zone) as dns_server,
    ):
        config = fleet(server.port, dns_server.address, certs.ca_file)
        checks = config.agencies[0].systems[0].checks
        dns_spec = checks[1].model_copy(update={"expected_addresses": ["192.0.2.20", "192.0.2.3"]})
        agencies = (
            config.agencies[0].systems[0].model_copy(update={"checks": [checks[0], dns_spec]})
        )
        config = config.model_copy(
            update={"agencies": [config.agencies[0].model_copy(update={"systems": [agencies]})]}
        )
        w = await Watched(store, config).start()
        await w.probe(3)
    assert w.world.sent.messages == []
