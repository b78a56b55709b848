"""``npsp-monitor demo``: the whole daemon against a simulated fleet on loopback.

The fleet shows every state within a minute: healthy systems (up); a secure server that is down,
with a one-stop system behind it (unreachable, not paged separately); a one-stop system that
flaps; a portal that answers more slowly than its ``max_latency`` and a portal whose certificate
expires within its ``min_days_valid`` (both degraded); a one-stop system whose data is stale in
its agency's working hours (degraded; its agency's ticketing system is told by webhook); a
dossier lookup through a secure server (an ``api`` check: a token, then two calls); a one-stop
system inside a maintenance window that the demo records at start (maintenance). Several
systems are ``public: true``, so ``/status`` lists them. Nothing leaves 127.0.0.1.

A restart with the same ``--state-dir`` tells no lies: the demo CA and the servers'
certificates are kept in the folder (keys 0600), so no certificate looks changed (an
"unannounced change" of a secure server is an alarm: someone in the middle); the maintenance
window is recorded once; the mail sink numbers on after the previous run's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from . import accounts
from .app import Daemon, StartupError
from .config import Config, load_config
from .registry import Registry
from .rules.maintenance import list_windows, schedule
from .store import Store
from .workdays import WorkCalendar

#: The packages of the ``demo`` extra (pyproject.toml): a production install goes without.
DEMO_EXTRA = ("trustme", "aiosmtpd")
try:
    from .demo_fleet import DOSSIER_CLIENT_ID, Fleet
    from .demo_sinks import (
        DEMO_ACCOUNT_SID,
        DEMO_TOKEN,
        DEMO_WEBHOOK_KEY,
        MailSink,
        SmsSink,
        WebhookSink,
        free_port,
    )
except ModuleNotFoundError as exc:
    if (exc.name or "").partition(".")[0] not in DEMO_EXTRA:
        raise
    raise StartupError(
        "the demo needs the packages of the `demo` extra: install them with"
        " pip install 'npsp-monitor[demo]' (in a checkout, make run does)"
    ) from None

#: The system inside the maintenance window the demo records, and the window's length.
MAINTAINED = "bo-y-te/one-stop"
MAINTENANCE_LENGTH = 2 * 3600.0


def demo_config(
    fleet: Fleet,
    port: int,
    state_db: Path,
    mail: MailSink,
    sms: SmsSink,
    token_file: Path,
    webhook: WebhookSink,
    webhook_key_file: Path,
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
        "status-api",
        "status-api",
        json=[{"path": "$.last_sync", "younger_than": "24h"}],
        # Synchronised just now: fresh in any agency's working hours.
        freshness={"path": "$.last_sync", "max_working_hours": 8},
    )
    # A short transaction through the secure server: an OAuth2 token, a dossier looked up by
    # its code, then its progress (the api check kind; the client secret is a file).
    dossier_lookup = {
        "id": "dossier-lookup",
        "kind": "api",
        "url": f"https://127.0.0.1:{p['dossier-api']}",
        "tls": tls,
        "steps": [
            {
                "name": "lấy mã truy cập",
                "token": {
                    "url": "/oauth2/token",
                    "client_id": DOSSIER_CLIENT_ID,
                    "client_secret_file": str(fleet.client_secret_file),
                },
            },
            {
                "name": "tra cứu hồ sơ",
                "method": "POST",
                "path": "/api/v1/dossiers/lookup",
                "body": {"code": "GIAMSAT-000001"},
                "extract": {"dossier_id": "$.data.id"},
                "expect": {
                    "status": [200],
                    "max_latency": "2s",
                    "json": [{"path": "$.data.status", "op": "==", "value": "OK"}],
                },
            },
            {
                "name": "xem tiến độ",
                "path": "/api/v1/dossiers/${dossier_id}/progress",
                "expect": {"json": [{"path": "$.updated_at", "op": "age <", "value": "1h"}]},
            },
        ],
    }
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
            # Hue's ticketing system wants the warnings too (stale data is DEGRADED).
            "degraded_channels": ["email", "inbox", "webhook"],
            # Every message links to its system's page on the demo's own site.
            "web_url": f"http://127.0.0.1:{port}",
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
            "webhook": {
                "endpoints": {
                    "hue-ticketing": {
                        "url": webhook.url,
                        "secret": {"file": str(webhook_key_file)},
                        "timeout": "5s",
                    }
                }
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
                        "checks": [tls_check("https"), status_check, dossier_lookup],
                    },
                    {
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Hệ thống một cửa điện tử",
                        "public": True,
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
                        "public": True,
                        "depends_on": "secure-server",
                        "checks": [http("http", "flapping", interval="2s", timeout="1s")],
                    },
                    {
                        "id": "public-service-portal",
                        "kind": "public-service-portal",
                        "name": "Cổng dịch vụ công (chậm)",
                        "public": True,
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
                        "public": True,
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
                        # Not a secure server: renewing its certificate (when less than a day
                        # is left) is routine, not an unannounced change.
                        "id": "public-service-portal",
                        "kind": "public-service-portal",
                        "name": "Cổng dịch vụ công (chứng thư sắp hết hạn)",
                        "public": True,
                        "checks": [tls_check("expiring", min_days_valid=14)],
                    },
                ],
            ),
            {
                **agency(
                    "hue",
                    "province",
                    "Thành phố Huế",
                    "Hue",
                    "46",
                    [
                        {
                            # Answers, but its dossiers last synchronised a month ago: stale
                            # in Hue's working hours (DEGRADED), whatever the day.
                            "id": "one-stop",
                            "kind": "one-stop",
                            "name": "Hệ thống một cửa điện tử (dữ liệu cũ)",
                            "public": True,
                            "checks": [
                                http(
                                    "sync-status",
                                    "stale-sync",
                                    freshness={"path": "$.last_sync", "max_working_hours": 16},
                                )
                            ],
                        },
                    ],
                ),
                "contacts": [
                    *contact("hue"),
                    {
                        "name": "Hệ thống tiếp nhận sự cố Huế",
                        "role": "technical-admin",
                        "webhook": "hue-ticketing",
                        "channels": ["webhook"],
                    },
                ],
            },
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
                        "public": True,
                        "checks": [https("https", "https")],
                    },
                    {
                        # Switched off for its maintenance window (recorded by the demo).
                        "id": "one-stop",
                        "kind": "one-stop",
                        "name": "Hệ thống một cửa điện tử (đang bảo trì)",
                        "public": True,
                        "checks": [
                            {"id": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": p["dead"]}
                        ],
                    },
                ],
            ),
        ],
    }


def _banner(
    daemon: Daemon, config_path: Path, state_db: Path, token: str, fleet: Fleet, kept: bool
) -> None:
    base = f"http://127.0.0.1:{daemon.http_port}"
    folder = state_db.parent
    restart = (
        f"a restart with --state-dir {folder} carries on where this one stops"
        if kept
        else "this folder is removed then (--state-dir DIR keeps the state)"
    )
    days = fleet.expiring_days(time.time())
    expires = f"{days} day{'' if days == 1 else 's'}"
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
  webhook calls      {folder}/webhook.jsonl   (Hue's ticketing system; signature checked)
  a report, now      npsp-monitor report send --now -c {config_path}
                     (last month's national report: an e-mail with its CSV in mail/)
  portal inbox       {base}/inbox (page) or {base}/api/v1/inbox (qtkt.da-nang's messages)
Expect within a minute: da-nang/secure-server DOWN and da-nang/one-stop UNREACHABLE,
ha-noi/public-service-portal DEGRADED (slower than its 1 s limit),
can-tho/public-service-portal DEGRADED (certificate expires in {expires}, under its 14-day
warning), hue/one-stop DEGRADED (its dossiers last synchronised a month ago: stale in Hue's
working hours, told to Hue's webhook too), bo-y-te/one-stop in MAINTENANCE (a window the demo
recorded), ha-noi/one-stop flipping and then FLAPPING, the others UP (bo-tai-chinh's secure
server also runs a dossier lookup: a token, then two API calls). State changes are logged
below; about 5 seconds after each, the administrators get one SMS, one e-mail and one inbox
message per agency (a digest), and the operations team one e-mail for everything; each links
to its system's page.
Stop with Ctrl-C; {restart}.
""",
        flush=True,
    )


def credential(path: Path, value: str) -> Path:
    """A demo credential file (0600), as systemd would hand it over."""
    path.write_text(value)
    path.chmod(0o600)
    return path


async def record_maintenance(store: Store, config: Config) -> None:
    """A maintenance window over ``MAINTAINED`` from now, unless one covers it already (a
    restart records no second one). It is late, and says so: the demo records it at start."""
    agency, system = MAINTAINED.split("/")
    now = time.time()
    windows = await list_windows(store, now=now)
    if any(w.covers(agency, system) and w.mutes_at(now) for w in windows):
        return
    calendar = WorkCalendar(config.calendar)
    start = dt.datetime.fromtimestamp(now, calendar.tz)
    await schedule(
        store,
        calendar,
        Registry.from_config(config),
        starts=start,
        ends=start + dt.timedelta(seconds=MAINTENANCE_LENGTH),
        reason="Nâng cấp hệ thống một cửa điện tử (bản demo)",
        scope=[MAINTAINED],
        override_reason="bản demo: cửa sổ ghi lúc khởi động, để thấy trạng thái bảo trì",
        author="demo",
        now=now,
    )


async def demo_account(store: Store) -> str:
    """A national-admin for the demo, reading da-nang's technical admin's inbox; its token."""
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
    return token


async def run_demo(
    port: int = 9477,
    state_dir: Path | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the fleet and the daemon; run until interrupted (or for ``duration`` seconds, or
    until ``stop`` is set)."""
    port = port or free_port()  # known before the config is written: the links name it
    with contextlib.ExitStack() as stack:
        kept = state_dir is not None
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="npsp-demo-")))
        state_dir.mkdir(parents=True, exist_ok=True)
        fleet = Fleet(state_dir)
        await fleet.start()
        mail, sms, webhook = MailSink(state_dir), SmsSink(state_dir), WebhookSink(state_dir)
        mail.start()
        await sms.start()
        await webhook.start()
        try:
            state_db = state_dir / "state.db"
            token_file = credential(state_dir / "twilio-token", DEMO_TOKEN)
            webhook_key = credential(state_dir / "webhook-hue-key", DEMO_WEBHOOK_KEY)
            config_path = state_dir / "npsp-monitor.demo.yaml"
            config = demo_config(fleet, port, state_db, mail, sms, token_file, webhook, webhook_key)
            config_path.write_text(
                yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
            loaded = load_config(config_path)
            store = await Store.open(state_db)
            try:
                token = await demo_account(store)
                await record_maintenance(store, loaded)
            finally:
                await store.close()
            daemon = Daemon(config_path, loaded)
            if duration is not None:
                asyncio.get_running_loop().call_later(duration, daemon.request_stop)
            stopper = None
            if stop is not None:

                async def stop_when_told() -> None:
                    await stop.wait()
                    daemon.request_stop()

                stopper = asyncio.create_task(stop_when_told())
            try:
                await daemon.run(
                    on_ready=lambda d: _banner(d, config_path, state_db, token, fleet, kept)
                )
            finally:
                if stopper is not None:
                    stopper.cancel()
        finally:
            await webhook.stop()
            await sms.stop()
            mail.stop()
            await fleet.stop()
