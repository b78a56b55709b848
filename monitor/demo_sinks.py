"""Local stand-ins for the outside world of the demo: a mail server, an SMS provider and an
agency's webhook receiver (a ticketing system, say).

All listen on 127.0.0.1 only and write what they receive into the demo's folder, so a new user
can read the real e-mail, SMS and webhook calls the daemon sent: ``mail/*.eml``, ``sms.jsonl``
and ``webhook.jsonl`` (with whether its signature checked out).
The SMS sink speaks the part of Twilio's REST API the SMS channel uses, so the real ``twilio``
client is what sends to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

DEMO_ACCOUNT_SID = "AC" + "de30" * 8
DEMO_TOKEN = "demo-token-" + "x" * 8  # a throwaway credential for the local sink only
DEMO_WEBHOOK_KEY = "demo-webhook-key-" + "y" * 8  # the HMAC key shared with the webhook sink


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _last_number(folder: Path) -> int:
    """The highest ``NNNN.eml`` already in ``folder`` (0 if none): a restarted demo numbers on
    after it rather than overwrite the previous run's e-mails."""
    numbers = [int(p.stem) for p in folder.glob("*.eml") if p.stem.isdigit()]
    return max(numbers, default=0)


class _MailHandler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = _last_number(folder)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        self.count += 1
        raw = envelope.original_content or b""
        path = self.folder / f"{self.count:04d}.eml"
        path.write_bytes(raw)
        subject = message_from_bytes(raw, policy=policy.default).get("Subject", "")
        log.info(
            "demo mail sink received an e-mail",
            extra={"to": ",".join(envelope.rcpt_tos), "subject": subject, "file": str(path)},
        )
        return "250 OK"


class MailSink:
    """An SMTP server on loopback that saves every message as an .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "mail"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._controller = Controller(
            _MailHandler(self.folder), hostname="127.0.0.1", port=self.port
        )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class SmsSink:
    """A Twilio-API look-alike on loopback that appends every SMS to ``sms.jsonl``."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "sms.jsonl"
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def _messages(self, request: web.Request) -> web.Response:
        form = await request.post()
        record: dict[str, Any] = {
            "time": time.time(),
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
        }
        with self.file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.info(
            "demo SMS sink received an SMS", extra={"to": record["to"], "body": record["body"]}
        )
        sid = "SM" + secrets.token_hex(16)
        return web.json_response(
            {
                "sid": sid,
                "status": "queued",
                "to": record["to"],
                "from": record["from"],
                "body": record["body"],
                "account_sid": request.match_info["sid"],
                "num_segments": "1",
            },
            status=201,
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class WebhookSink:
    """An agency's receiver on loopback: checks each call's signature as ``docs/webhook.md``
    tells a receiver to, and appends the body (and whether it was signed right) to
    ``webhook.jsonl``."""

    def __init__(self, folder: Path, key: str = DEMO_WEBHOOK_KEY) -> None:
        self.file = folder / "webhook.jsonl"
        self.port = free_port()
        self._key = key.encode()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/npsp"

    def _signed(self, request: web.Request, body: bytes) -> bool:
        stamp = request.headers.get("X-NPSP-Timestamp", "")
        given = request.headers.get("X-NPSP-Signature", "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return False
        digest = hmac.new(self._key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest("sha256=" + digest, given)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            document: Any = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        record = {"time": time.time(), "signed": self._signed(request, body), "body": document}
        with self.file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.info("demo webhook sink received a call", extra={"signed": record["signed"]})
        return web.Response(status=202, headers={"X-Request-Id": secrets.token_hex(8)})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/npsp", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
