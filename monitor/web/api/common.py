"""What every /api/v1 handler shares: the :class:`Api` it reads, who calls (:func:`caller`,
refused by :mod:`monitor.access` with 403 in :func:`reading` and :func:`acting`), strict
request bodies (:func:`body_of`, :class:`Body` and its field types), dates in the calendar's
time zone, the audit log and yes/no query flags."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from npsp_common.types import LINE, TEXT, StrictModel, matching

from ... import access, accounts, audit
from ...access import Action
from ...accounts import Account
from ...engine import Engine
from ...rules.service import RulesService
from ..auth import current
from ..routes import ApiError

M = TypeVar("M", bound=BaseModel)


@dataclass
class Api:
    """What the handlers need; built once by the daemon."""

    engine: Engine
    rules: RulesService
    clock: Callable[[], float] = time.time
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.engine.store

    def inboxes(self) -> dict[str, str | None]:
        """Configured portal accounts → their agency (None: the operations team)."""
        out: dict[str, str | None] = {}
        for agency in self.engine.config.agencies:
            for contact in agency.contacts:
                if contact.portal_account:
                    out[contact.portal_account] = agency.id
        for person in self.engine.config.alerting.operations:
            if person.portal_account:
                out[person.portal_account] = None
        return out

    def agencies(self) -> set[str]:
        return {e.agency.id for e in self.engine.registry.systems.values()} | {
            a.id for a in self.engine.config.agencies
        }


API = web.AppKey("api", Api)


def caller(request: web.Request) -> Account:
    account = current(request)
    if account is None:  # the auth middleware answers 401 before; belt and braces
        raise ApiError(401, "authentication required")
    return account


def reading(request: web.Request, agency: str | None) -> Account:
    me = caller(request)
    if not access.may_read(me, agency):
        raise ApiError(403, f"{me.id} ({me.role}) may not see agency {agency}")
    return me


def acting(request: web.Request, agency: str | None) -> Account:
    me = caller(request)
    if not access.may_act(me, agency, Action.OPERATE):
        raise ApiError(403, f"{me.id} ({me.role}) may not act for {agency or 'the portal'}")
    return me


async def body_of(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "request body too large") from None
    try:
        document = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "request body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ApiError(400, problems) from None


Text = Annotated[str, Field(min_length=1, max_length=2000), TEXT]
Name = Annotated[str, Field(min_length=1, max_length=200), LINE]
Id = Annotated[str, Field(min_length=1, max_length=64), LINE]  # an agency or system id
SystemRef = Annotated[str, Field(min_length=1, max_length=130), LINE]  # agency or agency/system
_ACCOUNT_ID = "1 to 64 letters, digits, or . _ -"
AccountId = Annotated[
    str,
    Field(pattern=accounts.ACCOUNT_ID),
    BeforeValidator(matching(accounts.ACCOUNT_ID, _ACCOUNT_ID)),
]
CertSerial = Annotated[
    str,
    Field(pattern=r"^[0-9A-Fa-f]{1,64}$"),
    BeforeValidator(matching(r"[0-9A-Fa-f]{1,64}", "1 to 64 hexadecimal digits")),
]


class Body(StrictModel):
    """A request body: unknown fields refused, and strict — no value is converted."""

    model_config = ConfigDict(strict=True)


class Empty(Body):
    pass


def local_time(api: Api, moment: dt.datetime) -> float:
    try:
        return api.rules.ctx.calendar.local(moment).timestamp()
    except (OverflowError, ValueError):
        raise ApiError(400, f"date out of range: {moment!r}") from None


async def record(
    api: Api, me: Account, action: str, target: str, agency: str | None, **detail: Any
) -> None:
    await audit.audit(
        api.store,
        ts=api.clock(),
        actor=me.id,
        action=action,
        target=target,
        agency=agency,
        detail=detail,
    )


def flag(request: web.Request, name: str) -> bool:
    """A yes/no query parameter: absent is no; 0, 1, false and true, nothing else."""
    raw = request.query.getall(name, ["0"])
    if len(raw) != 1 or raw[0] not in ("0", "1", "false", "true"):
        raise ApiError(400, f"{name} must be given once, as 0, 1, false or true")
    return raw[0] in ("1", "true")
