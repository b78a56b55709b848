"""The secure-server catalog (regulation C.3): every secure server's current registered
information and its announced upcoming changes, from which agencies configure their side.

Published as JSON by the HTTP API and on the retained MQTT topic
``<prefix>catalog/secure-servers`` (re-published when it changes and after a reconnect).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from notifiers.base import NotifyError

from ...alerting.messages import local_iso
from ...registry import CheckEntry, Registry
from .changewatch import ChangeWatch
from .desk import AnnouncementDesk

# The catalog's logger keeps its name from before the topic became a folder (log lines print it).
log = logging.getLogger("monitor.rules.catalog")

TOPIC = "catalog/secure-servers"


def _check_info(entry: CheckEntry, watch: ChangeWatch | None) -> dict[str, Any]:
    spec = entry.spec
    info: dict[str, Any] = {"check": entry.check_id, "kind": entry.kind}
    for name in ("host", "port", "url", "name"):
        value = getattr(spec, name, None)
        if value is not None:
            info[name] = value
    tls = getattr(spec, "tls", None)
    if tls is not None and tls.expected_fingerprint_sha256 is not None:
        info["fingerprint_sha256"] = tls.expected_fingerprint_sha256
    addresses = getattr(spec, "expected_addresses", None)
    if addresses:
        info["addresses"] = list(addresses)
    if watch is not None:
        observed = {
            field: watch.accepted[(entry.key, field)]
            for field in ("fingerprint_sha256", "issuer", "addresses")
            if (entry.key, field) in watch.accepted
        }
        if observed:
            info["observed"] = observed
    return info


def build_catalog(
    registry: Registry, desk: AnnouncementDesk, watch: ChangeWatch | None, now: float
) -> dict[str, Any]:
    """The catalog as a JSON-ready document."""
    servers = []
    for key, entry in sorted(registry.systems.items()):
        if entry.system.kind != "secure-server":
            continue
        servers.append(
            {
                "agency": entry.agency.id,
                "agency_name_vi": entry.agency.name_vi,
                "agency_name_en": entry.agency.name_en,
                "agency_code": entry.agency.code,
                "system": entry.system.id,
                "name": entry.system.name,
                "current": [_check_info(c, watch) for c in entry.checks],
                "upcoming": [a.as_json() for a in desk.upcoming(key, now)],
            }
        )
    rule = desk.ctx.rules.secure_server_change_notice
    return {
        "generated_at": local_iso(now),
        "notice_rule": {"working_days": rule.value, "source": rule.source},
        "secure_servers": servers,
    }


class CatalogPublisher:
    """Keeps the retained catalog topic current; a Desk (it publishes on tick when dirty)."""

    def __init__(
        self,
        build: Callable[[float], dict[str, Any]],
        publish: Callable[[str, bytes], Any],
        generation: Callable[[], int] = lambda: 0,
    ) -> None:
        self.build = build
        self.publish = publish
        self.generation = generation  # the broker connection's number: a new one republishes
        self.dirty = True
        self._last: bytes | None = None
        self._published_on = -1

    def changed(self) -> None:
        self.dirty = True

    async def refresh(self) -> None:
        self.dirty = True

    async def tick(self, now: float) -> None:
        if self.generation() != self._published_on:
            # A new connection: a broker restarted without persistence forgot the retained copy.
            self._last, self.dirty = None, True
        if not self.dirty:
            return
        document = self.build(now)
        document.pop("generated_at", None)  # only a real change is worth a new retained message
        payload = json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
        if payload == self._last:
            self.dirty = False
            return
        try:
            await self.publish(TOPIC, payload)
        except NotifyError as exc:
            log.debug("catalog not published yet: %s", exc)  # retried on the next tick
            return
        self._last, self.dirty = payload, False
        self._published_on = self.generation()
        log.info("secure-server catalog published", extra={"bytes": len(payload)})
