"""A loopback HTTP server speaking the part of Twilio's REST API the SMS channel uses.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth and form fields
``To``, ``From`` or ``MessagingServiceSid``, ``Body``. Bodies and status codes follow Twilio's
documented shapes, so the real ``twilio`` client parses them with its own code. The next answers
can be scripted (``script``): a 429 with ``Retry-After``, a 500, a 400 with a Twilio error code,
or a request that never gets an answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import secrets
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tw-secret-Zq8xK2mV9pL4"  # a made-up token the tests look for in logs and errors
FROM_NUMBER = "+84000000000"
SERVICE_SID = "MG" + "fedcba9876543210" * 2


@dataclass(frozen=True)
class Reply:
    """One scripted answer; ``hang`` means never answer (until the server stops)."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False

    @classmethod
    def rate_limited(cls, retry_after: int) -> Reply:
        return cls(
            429,
            {
                "code": 20429,
                "message": "Too Many Requests",
                "more_info": "https://www.twilio.com/docs/errors/20429",
                "status": 429,
            },
            {"Retry-After": str(retry_after)},
        )

    @classmethod
    def server_error(cls) -> Reply:
        return cls(
            500,
            {
                "code": 20500,
                "message": "Internal Server Error",
                "more_info": "https://www.twilio.com/docs/errors/20500",
                "status": 500,
            },
        )

    @classmethod
    def error(cls, code: int, message: str, status: int = 400) -> Reply:
        return cls(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    @classmethod
    def invalid_number(cls, number: str) -> Reply:
        return cls.error(21211, f"The 'To' number {number} is not a valid phone number.")

    @classmethod
    def hanging(cls) -> Reply:
        return cls(0, hang=True)


@dataclass(frozen=True)
class SentSms:
    """A message the fake API accepted."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str


class FakeTwilio:
    """The server; ``async with FakeTwilio() as api`` listens on ``api.base_url``."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.script: deque[Reply] = deque()
        self.sent: list[SentSms] = []
        self.requests = 0
        self.hanging = asyncio.Event()  # set when a request starts hanging
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorised(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and sid == self.account_sid
        )

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        sid = request.match_info["sid"]
        if not self._authorised(request, sid):
            return web.json_response(
                {
                    "code": 20003,
                    "detail": "Your AccountSid or AuthToken was incorrect.",
                    "message": "Authenticate",
                    "more_info": "https://www.twilio.com/docs/errors/20003",
                    "status": 401,
                },
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
            )
        form = await request.post()
        if self.script:
            reply = self.script.popleft()
            if reply.hang:
                self.hanging.set()
                await self._stopping.wait()
                return web.Response(status=503)
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        to = str(form.get("To", ""))
        body = str(form.get("Body", ""))
        from_ = form.get("From")
        service = form.get("MessagingServiceSid")
        if not to or not body or (from_ is None) == (service is None):
            return web.json_response(
                {
                    "code": 21603 if from_ is None and service is None else 21602,
                    "message": "A 'From' or 'MessagingServiceSid' and a 'Body' are required.",
                    "more_info": "https://www.twilio.com/docs/errors/21602",
                    "status": 400,
                },
                status=400,
            )
        message = SentSms(
            sid="SM" + secrets.token_hex(16),
            account_sid=sid,
            to=to,
            from_=None if from_ is None else str(from_),
            messaging_service_sid=None if service is None else str(service),
            body=body,
        )
        self.sent.append(message)
        now = email.utils.format_datetime(email.utils.localtime(), usegmt=False)
        return web.json_response(
            {
                "account_sid": sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": message.from_,
                "messaging_service_sid": message.messaging_service_sid,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": message.sid,
                "status": "accepted" if service is not None else "queued",
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{sid}/Messages/{message.sid}/Media.json"
                },
                "to": to,
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message.sid}.json",
            },
            status=201,
        )
