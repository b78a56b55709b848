"""SMS through Twilio's Programmable Messaging REST API (the ``twilio`` package's async client).

One ``send`` is one ``POST /2010-04-01/Accounts/{sid}/Messages.json``. How a failure is classed:

==============================================  =========  ===================================
what happened                                   permanent  why
==============================================  =========  ===================================
401 / 403 (wrong SID or token, no permission)   yes        credentials: retrying cannot help
400 code 21211 / 21614 / 21610, other 4xx       yes        bad number, not a mobile, STOPped
429 Too Many Requests                           no         ``retry_after`` from ``Retry-After``
5xx                                             no         Twilio's side
connection refused / reset, timeout             no         may already be sent (see ``send``)
==============================================  =========  ===================================
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import logging
import re
import time
from typing import Any

import aiohttp
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
from twilio.http.response import Response  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from notifiers.base import ChannelName, Delivery, Message, NotifyError
from notifiers.settings import E164
from notifiers.settings import SmsSettings as Settings
from notifiers.textfold import fit_segments, fold_vietnamese, sms_segments

__all__ = ["Settings", "SmsNotifier"]

log = logging.getLogger(__name__)

_E164 = re.compile(E164)

# Twilio error codes that say "this recipient will never get an SMS from you as things are".
PERMANENT_CODES = {
    21211: "invalid 'To' number",
    21614: "'To' is not a mobile number",
    21610: "recipient has unsubscribed (replied STOP)",
}


# Set by ``SmsNotifier.send`` for the duration of one request; the transport below fills it in.
# A context variable, not an attribute, so that concurrent sends never see each other's headers.
_response_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "twilio_response_headers", default=None
)


class _Transport(AsyncHttpClient):  # type: ignore[misc]
    """The twilio client's HTTP transport, on an aiohttp session of our own (or the daemon's).

    Why not twilio's ``AsyncTwilioHttpClient``: with aiohttp 3.14 it passes ``auth=BasicAuth(...)``,
    deprecated (removed in aiohttp 4), which the test suite turns into errors; it drops
    ``timeout`` unless each call passes one (twilio 9.13 never does); and
    ``TwilioRestException`` carries no response headers, so a 429's ``Retry-After`` would be lost.
    Everything else — URL, form encoding, headers, error parsing — stays twilio's own code.
    """

    def __init__(self, session: aiohttp.ClientSession | None, timeout: float) -> None:
        super().__init__(logger=log, is_async=True, timeout=timeout)
        self._given_session = session
        self._own_session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._given_session is not None:
            return self._given_session
        if self._own_session is None or self._own_session.closed:
            # Created on first use, inside the running loop.
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (twilio's transport signature)
        allow_redirects: bool = False,
    ) -> Response:
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        async with self._session().request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=timeout if timeout is not None else self.timeout),
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
            log.debug("twilio %s %s -> HTTP %d", method.upper(), url, response.status)
            box = _response_headers.get()
            if box is not None:
                box.update({k.lower(): v for k, v in response.headers.items()})
            return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None


def _retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class SmsNotifier:
    """Sends one SMS per ``send`` through Twilio; created once, shared by every send.

    ``http_client`` is the daemon's aiohttp session to send on (not closed by ``aclose``);
    without it the notifier opens its own on the first send and ``aclose`` closes it.
    """

    channel: ChannelName = "sms"

    def __init__(
        self, settings: Settings, *, http_client: aiohttp.ClientSession | None = None
    ) -> None:
        self.settings = settings
        # Read now: a missing secret fails at startup, not at the first outage.
        self._token = settings.auth_token.read()
        self._transport = _Transport(http_client, settings.timeout)
        client = Client(
            settings.account_sid,
            self._token.get_secret_value(),
            http_client=self._transport,
            environment={},
        )
        # ``environment={}`` is falsy, so twilio 9.13 still falls back to os.environ: a set
        # TWILIO_REGION / TWILIO_EDGE would rewrite the API host. Pin both explicitly.
        client.region = None
        client.edge = None
        if settings.api_base_url is not None:
            client.api.base_url = settings.api_base_url
        self._client = client

    def body(self, message: Message) -> str:
        """The SMS text for ``message``: its ``text`` (the subject is for e-mail and the inbox),
        folded to ASCII if configured, cut to ``max_segments``."""
        text = message.text.strip() or message.subject
        if self.settings.fold_diacritics:
            text = fold_vietnamese(text)
        return fit_segments(text, self.settings.max_segments)

    def fits(self, text: str) -> bool:
        """Whether ``text`` goes out whole (not cut) within ``max_segments``."""
        if self.settings.fold_diacritics:
            text = fold_vietnamese(text)
        return sms_segments(text.strip()) <= self.settings.max_segments

    async def send(self, message: Message) -> Delivery:
        """Make one attempt to hand ``message`` to Twilio; return the message SID.

        A timeout or a connection lost after the request was written may mean Twilio accepted
        the SMS and we never heard: the retry will send it again. The outbox accepts that
        (at-least-once: a duplicate SMS is better than a missed outage).
        """
        if not _E164.match(message.to):
            raise NotifyError(
                f"sms: recipient {message.to!r} is not an E.164 number", permanent=True
            )
        sender: dict[str, str] = (
            {"from_": self.settings.from_number}
            if self.settings.from_number is not None
            else {"messaging_service_sid": str(self.settings.messaging_service_sid)}
        )
        headers: dict[str, str] = {}
        token = _response_headers.set(headers)
        try:
            async with asyncio.timeout(self.settings.timeout):
                result = await self._client.messages.create_async(
                    to=message.to, body=self.body(message), **sender
                )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._classify(exc, headers) from None
        except TimeoutError:
            raise NotifyError(
                f"sms: no answer from Twilio within {self.settings.timeout:g}s "
                "(the SMS may have been sent)",
                permanent=False,
                maybe_delivered=True,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise NotifyError(
                self._redact(f"sms: cannot reach Twilio: {type(exc).__name__}: {exc}"),
                permanent=False,
                # Not connected at all: certainly not sent; lost mid-request: perhaps.
                maybe_delivered=not isinstance(exc, aiohttp.ClientConnectorError),
            ) from None
        except ValueError as exc:  # a 2xx whose body is not Twilio's JSON (a proxy's page?)
            raise NotifyError(
                f"sms: unexpected answer from Twilio ({type(exc).__name__}); it may have been sent",
                permanent=False,
                maybe_delivered=True,
            ) from None
        finally:
            _response_headers.reset(token)
        sid = str(result.sid)
        log.debug("sms %s accepted by Twilio as %s", message.key, sid)
        return Delivery(provider_id=sid)

    def _classify(self, exc: Any, headers: dict[str, str]) -> NotifyError:
        status = int(exc.status)
        code = exc.code
        detail = getattr(exc, "msg", None) or getattr(exc, "detail", None) or ""
        reason = self._redact(f"sms: Twilio HTTP {status}, code {code}: {detail}".rstrip(": "))
        if code in PERMANENT_CODES:
            return NotifyError(
                f"{reason} ({PERMANENT_CODES[code]})", permanent=True, code=str(code)
            )
        if status in {401, 403}:
            return NotifyError(f"{reason} (check account_sid and auth_token)", permanent=True)
        if status == 429:
            return NotifyError(reason, permanent=False, retry_after=_retry_after(headers))
        if 400 <= status < 500:
            return NotifyError(reason, permanent=True)
        return NotifyError(reason, permanent=False)

    def _redact(self, text: str) -> str:
        secret = self._token.get_secret_value()
        return text.replace(secret, "********") if secret else text

    async def aclose(self) -> None:
        """Close the HTTP session this notifier opened (not one it was given)."""
        await self._transport.close()

    def __repr__(self) -> str:
        return f"SmsNotifier(account_sid={self.settings.account_sid!r})"
