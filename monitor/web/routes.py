"""The route table of ``/api/v1``: each route declared once, with its summary, its query
parameters, its request model and its answers; the aiohttp routes and the OpenAPI document are
both generated from it (:func:`aiohttp_routes`, :func:`openapi_document`), so the document
cannot drift from what is served. Nothing here is filled in at run time: the document is built
afresh, with its request models' schemas, from the routes it is given.

A handler refuses with :class:`ApiError`; its route answers ``{"error": reason}`` with the
status (the pages keep their own answers and are not in this table).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from .auth import error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Security = Literal["account", "public"]

#: Answers of a route that reads or acts for an account.
ACTING: tuple[tuple[str, str], ...] = (
    ("200", "OK"),
    ("201", "Created"),
    ("400", "Invalid request (the reason is in `error`)"),
    ("401", "No or invalid credentials"),
    ("403", "Not allowed for this role or agency"),
    ("404", "Unknown id"),
    ("409", "Conflict with the current state"),
)
_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
MAX_ID_DIGITS = 12  # a numeric id in a path: more digits cannot be one (nor overflow SQLite)


class ApiError(Exception):
    """A refusal: answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter: a yes/no flag unless said otherwise (a ``string`` is one of
    ``choices``)."""

    name: str
    type: Literal["boolean", "integer", "string"] = "boolean"
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True, slots=True)
class Route:
    """One route: aiohttp's path form (``{id:.+}`` is shown as ``{id}`` in the document)."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: tuple[Query, ...] = ()
    responses: tuple[tuple[str, str], ...] = ACTING
    security: Security = "account"

    @property
    def documented_path(self) -> str:
        return _PARAMETER.sub(r"{\1}", self.path)

    def operation(self, schemas: dict[str, Any]) -> dict[str, Any]:
        """This route's OpenAPI operation; the models its body refers to go to ``schemas``."""
        op: dict[str, Any] = {
            "summary": self.summary,
            "security": [{"bearer": []}, {"mtls": []}] if self.security == "account" else [],
            "responses": {status: {"description": text} for status, text in self.responses},
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAMETER.findall(self.path)
        ]
        params += [{"name": q.name, "in": "query", "schema": q.schema()} for q in self.query]
        if params:
            op["parameters"] = params
        if self.body is not None:
            schema = self.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        return op


def path_number(raw: str) -> int | None:
    """The numeric id in a path segment, or None when it cannot be one (then it is unknown)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS:
        return None
    return int(raw)


def _guard(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, str(exc))

    guarded.__name__ = handler.__name__
    return guarded


def aiohttp_routes(routes: Iterable[Route]) -> list[web.RouteDef]:
    """The routes, for ``app.add_routes`` (an :class:`ApiError` becomes its answer; a GET
    answers HEAD too)."""
    return [
        web.get(r.path, _guard(r.handler))
        if r.method == "GET"
        else web.route(r.method, r.path, _guard(r.handler))
        for r in routes
    ]


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    """The OpenAPI document of ``routes``."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for r in routes:
        paths.setdefault(r.documented_path, {})[r.method.lower()] = r.operation(schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "npsp-monitor", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "mtls": {"type": "mutualTLS"},
            },
            "schemas": schemas,
        },
    }


__all__ = [
    "ACTING",
    "ApiError",
    "Handler",
    "Query",
    "Route",
    "aiohttp_routes",
    "openapi_document",
    "path_number",
]
