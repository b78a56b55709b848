"""``npsp-monitor demo``: the whole daemon against a simulated fleet on loopback.

The fleet: healthy agencies; a secure server that is down, with a one-stop system behind it
(UNREACHABLE, not paged separately); a one-stop system that flaps; a portal that answers too
slowly; a secure server whose certificate expires in 3 days. Certificates come from a demo CA
made at start. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import trustme
import yaml
from aiohttp import web

from . import accounts
from .app import Daemon
from .config import load_config
from .demo_sinks import DEMO_ACCOUNT_SID, DEMO_TOKEN, MailSink, SmsSink, free_port
from .store import Store


class Fleet:
    """The simulated agencies' servers."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ca = trustme.CA(organization_name="NPSP demo CA")
        self.ca_file = workdir / "demo-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}
        self.started = time.monotonic()

    def _ssl(self, days: int | None = None) -> ssl.SSLContext:
        not_after = None
        if days is not None:
            not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        cert = self.ca.issue_cert("localhost", "127.0.0.1", not_after=not_after)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    async def _serve(self, name: str, handler: Any, tls: ssl.SSLContext | None = None) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
        self.runners.append(runner)
        self.ports[name] = port

    async def start(self) -> None:
        async def ok(_r: web.Request) -> web.Response:
            return web.Response(text="ok")

        async def status_api(_r: web.Request) -> web.Response:
            now = dt.datetime.now(dt.UTC).isoformat()
            return web.json_response({"connected": True, "last_sync": now})

        async def flapping(_r: web.Request) -> web.Response:
            # 10 s up, 10 s down, over and over
            phase = int((time.monotonic() - self.started) // 10) % 2
            return (
                web.Response(text="ok")
                if phase == 0
                else web.Response(status=503, text="overloaded")
            )

        async def slow(_r: web.Request) -> web.Response:
            await asyncio.sleep(1.5)
            return web.Response(text="ok, eventually")

        await self._serve("https", ok, self._ssl())
        await self._serve("status-api", status_api, self._ssl())
        await self._serve("http", ok)
        await self._serve("flapping", flapping)
        await self._serve("slow", slow)
        await self._serve("expiring", ok, self._ssl(days=3))
        self.ports["dead"] = free_port()  # nothing listens there

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


def demo_config(
    fleet: Fleet, port: int, state_db: Path, mail: MailSink, sms: SmsSink, token_file: Path
) -> dict[str, Any]:
    p = fleet.ports
    tls = {"ca_file": str(fleet.ca_file), "server_name": "localhost"}

    def https(check_id: str, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": check_id,
            "kind": "http",
            "url": f"https://127.0.0.1:{p[name]}/",
            "tls": tls,
            **extra,
        }

    def http(check_id: str, name: str, **extra: Any) -> dict[str, Any]:
        return {"id": check_id, "kind": "http", "url": f"http://127.0.0.1:{p[name]}/", **extra}

    def tls_check(name: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": "tls",
            "kind": "tls",
            "host": "127.0.0.1",
            "port": p[name],
            "tls": {**tls, **extra},
        }

    phones = iter(range(1, 100))

    def contact(agency: str) -> list[dict[str, Any]]:
        return [
            {
                "name": f"Quản trị kỹ thuật {agency}",
                "role": "technical-admin",
                "phone": f"+8400000000{next(phones):02d}",  # not a real number: the local sink
                "email": f"qtkt@{agency}.dvc.example",
                "portal_account": f"qtkt.{agency}",
                "channels": ["sms", "email", "inbox"],
            },
            {
                "name": f"Quản trị cấp cao {agency}",
                "role": "high-level-admin",
                "email": f"qtcc@{agency}.dvc.example",
                "channels": ["email"],
            },
        ]

    def agency(
        aid: str, kind: str, vi: str, en: str, code: str, systems: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "id": aid,
            "kind": kind,
            "name_vi": vi,
            "name_en": en,
            "code": code,
            "contacts": contact(aid),
            "systems": systems,
        }

    status_check = https(
        "status-api", "status-api", json=[{"path": "$.last_sync", "younger_than": "24h"}]
    )
    return {
        "vantage": "demo-gw",
        "listen": f"127.0.0.1:{port}",
        "state_db": str(state_db),
        "defaults": {
            "interval": "5s",
            "timeout": "2s",
            "failure_threshold": 2,
            "recheck_delay": "1s",
            "flap_window": "10m",
            "flap_threshold": 4,
        },
        "uplink": {
            "checks": [{"id": "portal", "kind": "tcp", "host": "127.0.0.1", "port": p["http"]}]
        },
        "alerting": {
            "operations": [
                {
                    "name": "Tổ trực VPCP (demo)",
                    "email": "vanhanh@vpcp.dvc.example",
                    "portal_account": "vanhanh.vpcp",
                    "channels": ["email", "inbox"],
                }
            ],
            "group_wait": "5s",
            "group_interval": "30s",
            "repeat_interval": "1h",
            "sms_min_interval": "1m",
            "status_page_url": f"http://127.0.0.1:{port}/status",
        },
        "channels": {
            "email": {
                "host": "127.0.0.1",
                "port": mail.port,
                "security": "none",
                "from_addr": "giamsat@npsp.dvc.example",
            },
            "sms": {
                "account_sid": DEMO_ACCOUNT_SID,
                "auth_token": {"file": str(token_file)},
                "from_number": "+84000000000",
                "api_base_url": f"http://127.0.0.1:{sms.port}",
            },
        },
        "agencies": [
            agency(
                "bo-tai-chinh",
                "ministry",
                "Bộ Tài chính",
                "Ministry of Finance",
                "BTC",
                [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [tls_check("https"), status_check],
                    },
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Hệ thống một cửa điện tử",
                        "depends_on": "secure-server",
                        "checks": [http("http", "http")],
                    },
                ],
            ),
            agency(
                "ha-noi",
                "province",
                "Thành phố Hà Nội",
                "Hanoi",
                "01",
                [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật",
                        "checks": [tls_check("https")],
                    },
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Hệ thống một cửa điện tử (chập chờn)",
                        "depends_on": "secure-server",
                        "checks": [http("http", "flapping")],
                    },
                    {
                        "id": "public-service-portal",
                        "kind": "public-service-portal",
                        "name": "Cổng dịch vụ công (chậm)",
                        "depends_on": "secure-server",
                        "checks": [http("http", "slow", max_latency="1s")],
                    },
                ],
            ),
            agency(
                "da-nang",
                "province",
                "Thành phố Đà Nẵng",
                "Da Nang",
                "48",
                [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật (mất kết nối)",
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": p["dead"]}
                        ],
                    },
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Hệ thống một cửa điện tử",
                        "depends_on": "secure-server",
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": p["dead"]}
                        ],
                    },
                ],
            ),
            agency(
                "can-tho",
                "province",
                "Thành phố Cần Thơ",
                "Can Tho",
                "92",
                [
                    {
                        "id": "secure-server",
                        "kind": "secure-server",
                        "name": "Máy chủ bảo mật (chứng thư sắp hết hạn)",
                        "checks": [tls_check("expiring", min_days_valid=14)],
                    },
                ],
            ),
            agency(
                "bo-y-te",
                "ministry",
                "Bộ Y tế",
                "Ministry of Health",
                "BYT",
                [
                    {
                        "id": "public-service-portal",
                        "kind": "public-service-portal",
                        "name": "Cổng dịch vụ công",
                        "checks": [https("https", "https")],
                    },
                ],
            ),
        ],
    }


def _banner(daemon: Daemon, config_path: Path, state_db: Path, token: str) -> None:
    base = f"http://127.0.0.1:{daemon.http_port}"
    folder = state_db.parent
    print(
        f"""
npsp-monitor demo is running against a simulated fleet on 127.0.0.1.
  pages              {base}/            (log in at {base}/login with the token below)
  public status      {base}/status
  metrics            {base}/metrics
  API token (demo)   {token}
  systems (JSON)     curl -H "Authorization: Bearer $TOKEN" {base}/api/v1/systems
  state changes      {base}/api/v1/state-changes
  health             {base}/healthz
  config used        {config_path}
  state database     {state_db}   (tables state_changes, outbox, inbox)
  e-mails sent       {folder}/mail/*.eml      (local SMTP sink)
  SMS sent           {folder}/sms.jsonl       (local Twilio-API sink)
  portal inbox       {base}/inbox (page) or {base}/api/v1/inbox (qtkt.da-nang's messages)
Expect within a minute: da-nang/secure-server DOWN and da-nang/one-stop UNREACHABLE,
ha-noi/public-service-portal DOWN (slow), can-tho/secure-server DOWN (certificate expires in
3 days), ha-noi/one-stop flipping and then FLAPPING. State changes are logged below; about
5 seconds after each, the administrators get one SMS, one e-mail and one inbox message per
agency (a digest), and the operations team one e-mail for everything.
Stop with Ctrl-C.
""",
        flush=True,
    )


async def _demo_account(state_db: Path) -> str:
    """A national-admin for the demo, reading da-nang's technical admin's inbox; its token."""
    store = await Store.open(state_db)
    try:
        _, token = await accounts.create(
            store,
            actor=None,
            account_id=f"demo-{int(time.time())}",
            name="Demo",
            role="national-admin",
            agency=None,
            agencies=set(),
            now=time.time(),
            portal_account="qtkt.da-nang",
            source="demo",
        )
    finally:
        await store.close()
    return token


async def run_demo(
    port: int = 9477, state_dir: Path | None = None, duration: float | None = None
) -> None:
    """Start the fleet and the daemon; run until interrupted (or for ``duration`` seconds)."""
    port = port or free_port()  # known before the config is written: the links name it
    with contextlib.ExitStack() as stack:
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="npsp-demo-")))
        state_dir.mkdir(parents=True, exist_ok=True)
        fleet = Fleet(state_dir)
        await fleet.start()
        mail, sms = MailSink(state_dir), SmsSink(state_dir)
        mail.start()
        await sms.start()
        try:
            state_db = state_dir / "state.db"
            token_file = state_dir / "twilio-token"
            token_file.write_text(DEMO_TOKEN)
            token_file.chmod(0o600)
            config_path = state_dir / "npsp-monitor.demo.yaml"
            config = demo_config(fleet, port, state_db, mail, sms, token_file)
            config_path.write_text(
                yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
            token = await _demo_account(state_db)
            daemon = Daemon(config_path, load_config(config_path))
            if duration is not None:
                asyncio.get_running_loop().call_later(duration, daemon.request_stop)
            await daemon.run(on_ready=lambda d: _banner(d, config_path, state_db, token))
        finally:
            await sms.stop()
            mail.stop()
            await fleet.stop()
