"""``api``: a short HTTP transaction — ordered steps, each judged, values carried forward.

A step is either a **token** step (an OAuth2 client-credentials grant, or a static bearer read
from a credential file) whose bearer goes in the ``Authorization`` header of every later step,
or a **request** step: a method, a URL (absolute, or a ``path`` under the check's ``url``),
headers and a JSON body, with ``${var}`` replaced by what earlier steps extracted (JSONPath,
:mod:`probes.jsonquery`); its ``expect`` asserts on the status, the latency and JSON values.

Every request goes through the ``http`` probe's client (:func:`probes.http.fetch`: raw asyncio
and ``httptools``, one connection per request, bodies bounded by ``max_body_bytes``), with the
check's ``tls`` options (CA, mTLS client certificate; the pin, SNI name and validity rules
apply to the check's own host). One timeout covers all the steps. The first failing step ends
the run; its reason names the step (``step 2 (tra cứu hồ sơ, 45 ms): $.status = 'ERR'
(expected 'OK')``); the time of each step is in ``observed["step_ms"]``.

Secrets (the client secret, a static token) are read from files when the check is built and
go nowhere but the request: not in the config, the reasons, ``observed``, or an exception.
An OAuth2 token is kept until shortly before it expires (at most an hour), so every run does
not fetch a new one; a 401 on a later step drops it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import Field, field_validator, model_validator

from npsp_common.types import (
    DataTime,
    Duration,
    Freshness,
    JSONValue,
    ProbeResult,
    SecretSource,
    StrictModel,
    Why,
    printable,
)

from .base import Probe, ProbeEnv, TargetSpec
from .http import (
    Target,
    check_headers,
    check_statuses,
    encode_request,
    expand_statuses,
    fetch,
    header_value_ok,
    split_url,
)
from .httpbody import timestamp_of
from .httpresponse import Exchange
from .jsonquery import JSONAssertion, Query, compile_path, show
from .reasons import Problem, fail, passed, warn, why
from .tls import broken_probe
from .tlsopts import TLSOptions

__all__ = ["Expect", "Spec", "Step", "TokenSpec", "build"]

MAX_STEPS = 10
VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
# A placeholder after split_url percent-encoded the braces of the request target.
_VAR_ENCODED = re.compile(r"\$%7B([A-Za-z_][A-Za-z0-9_]{0,63})%7D")
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
# A cached token is used until this long before it expires (a tenth of its life, within
# [5 s, 60 s]), and for at most an hour whatever the server says.
_TOKEN_MAX_LIFE = 3600.0
_TOKEN_DEFAULT_LIFE = 300.0  # a token answer without expires_in
_TOKEN_ERROR_CHARS = 40


def _default_statuses() -> list[int | str]:
    return ["2xx"]


class TokenSpec(StrictModel):
    """Where the bearer comes from: an OAuth2 client-credentials grant (``url``,
    ``client_id``, ``client_secret_file``, ``scope``), or a static token (``token_file``)."""

    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None,
        description="The OAuth2 token endpoint: absolute, or a path under the check's url.",
    )
    client_id: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description="The OAuth2 client id (not a secret)."
    )
    client_secret_file: Path | None = Field(
        default=None,
        description="File holding the client secret (relative: in $CREDENTIALS_DIRECTORY).",
    )
    scope: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="The scope asked for (space-separated), if the server wants one."
    )
    client_auth: Literal["basic", "body"] = Field(
        default="basic",
        description="How the client authenticates: HTTP Basic (RFC 6749 2.3.1) or form fields.",
    )
    token_file: Path | None = Field(
        default=None,
        description="File holding a static bearer token, instead of the OAuth2 grant.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TokenSpec:
        oauth = {"url", "client_id", "client_secret_file", "scope"} & self.model_fields_set
        if self.token_file is not None:
            if oauth:
                raise ValueError(f"token_file or an OAuth2 grant, not both ({', '.join(oauth)})")
        else:
            missing = [
                name
                for name in ("url", "client_id", "client_secret_file")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "give token_file, or url, client_id and client_secret_file "
                    f"(missing: {', '.join(missing)})"
                )
        for name in ("client_secret_file", "token_file"):
            path = getattr(self, name)
            # An absolute file must be there now; a relative one is a systemd credential,
            # found in $CREDENTIALS_DIRECTORY when the daemon runs (the probe says if not).
            if path is not None and path.is_absolute() and not path.is_file():
                raise ValueError(f"{name}: file {path} does not exist")
        if self.url is not None and _VAR.search(self.url):
            raise ValueError("the token url cannot use ${...}")
        return self


class Expect(StrictModel):
    """What a request step's answer must be."""

    status: list[int | str] = Field(
        default_factory=_default_statuses,
        min_length=1,
        description="Accepted statuses: codes (`200`) or classes (`2xx`).",
    )
    max_latency: Duration | None = Field(
        default=None,
        description="A step slower than this (connection included) is a warning (see "
        "`max_latency_severity`).",
    )
    max_latency_severity: Literal["degraded", "down"] = Field(
        default="degraded",
        description="What a step slower than max_latency makes the system: degraded or down.",
    )
    json_assertions: list[JSONAssertion] = Field(
        default_factory=list,
        alias="json",
        description="Conditions on the answer's JSON: {path, op, value}; ops ==, !=, <, <=, "
        ">, >=, matches (RE2), 'age <' (a duration; the value is a timestamp).",
    )

    @field_validator("status")
    @classmethod
    def _check_statuses(cls, values: list[int | str]) -> list[int | str]:
        return check_statuses(values)


class Step(StrictModel):
    """One step of an api check: a token step (``token``) or a request."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="What the step does, in the reader's words: reasons name it."
    )
    token: TokenSpec | None = Field(
        default=None,
        description="Makes this a token step: its bearer goes in every later request.",
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="GET", description="Request method."
    )
    url: Annotated[str, Field(min_length=8, max_length=2048)] | None = Field(
        default=None, description="An absolute URL (${var} allowed in its path and query)."
    )
    path: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, description="A path under the check's url (${var} allowed)."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers (${var} allowed in values)."
    )
    body: JSONValue = Field(
        default=None, description="A JSON body (sent as application/json); ${var} in strings."
    )
    extract: dict[Annotated[str, Field(pattern=VAR_NAME)], str] = Field(
        default_factory=dict,
        description="Variables for later steps: {name: JSONPath} (the first value selected).",
    )
    expect: Expect = Field(
        default_factory=Expect, description="What the answer must be (default: a 2xx status)."
    )

    @field_validator("name")
    @classmethod
    def _printable_name(cls, name: str) -> str:
        if printable(name) != name:
            raise ValueError("a step name is one line of printable text")
        return name

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        return check_headers(headers)

    @field_validator("extract")
    @classmethod
    def _check_extract(cls, extract: dict[str, str]) -> dict[str, str]:
        for name, path in extract.items():
            try:
                compile_path(path)
            except ValueError as exc:
                raise ValueError(f"extract.{name}: {exc}") from None
        return extract

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = self.model_fields_set
        if self.token is not None:
            extra = given & {"method", "url", "path", "headers", "body", "extract", "expect"}
            if extra:
                raise ValueError(
                    f"a token step has only name and token (not {', '.join(sorted(extra))})"
                )
            return self
        if (self.url is None) == (self.path is None):
            raise ValueError("a request step gives exactly one of url and path (or token)")
        if self.body is not None and self.method in ("GET", "DELETE"):
            raise ValueError(f"a JSON body is sent with POST, PUT or PATCH, not {self.method}")
        if self.url is not None:
            _url_template(self.url)  # ValueError with the reason
        return self

    def references(self) -> list[tuple[str, str]]:
        """``(where, variable)`` of every ``${var}`` this step uses."""
        found = [("url", v) for v in _VAR.findall(self.url or "")]
        found += [("path", v) for v in _VAR.findall(self.path or "")]
        for name, value in self.headers.items():
            found += [(f"headers.{name}", v) for v in _VAR.findall(value)]
        found += [("body", v) for v in _json_vars(self.body)]
        return found


class Spec(TargetSpec):
    """A transaction of HTTP steps against one API (a secure server's)."""

    kind: Literal["api"]
    url: Annotated[str, Field(min_length=8, max_length=2048)] = Field(
        description="The API's base URL: steps' paths are under it; its host is the target."
    )
    steps: Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)] = Field(
        description="The transaction, in order (1 to 10 steps); the first failing step ends it."
    )
    max_body_bytes: Annotated[int, Field(ge=1, le=1 << 30)] | None = Field(
        default=None, description="Bytes of an answer's body read at most; default 1 MiB."
    )
    tls: TLSOptions = Field(
        default_factory=TLSOptions,
        description="TLS options of the https steps (see the `tls` block): the CA and client "
        "certificate serve every host; the pin, name and validity rules the check's own.",
    )

    freshness: Freshness | None = Field(
        default=None,
        description="How old the data in a JSON field of the last request step's answer may "
        "be, in working hours of the agency (path names the field).",
    )

    def target_host(self) -> str:
        return self.host_key or (urlsplit(self.url).hostname or "-")

    @field_validator("freshness")
    @classmethod
    def _check_freshness(cls, freshness: Freshness | None) -> Freshness | None:
        if freshness is not None:
            if freshness.path is None:
                raise ValueError("an api check names the JSON field (path) to read")
            compile_path(freshness.path)  # raises ValueError naming what is wrong
        return freshness

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if _VAR.search(url):
            raise ValueError("the check's url cannot use ${...} (a step's path can)")
        split_url(url)
        return url

    @model_validator(mode="after")
    def _check_steps(self) -> Spec:
        known: set[str] = set()
        tokens = 0
        for index, step in enumerate(self.steps):
            where = f"steps[{index}] ({step.name})"
            tokens += step.token is not None
            for field_name, name in step.references():
                if name not in known:
                    raise ValueError(
                        f"{where}.{field_name}: ${{{name}}} is not extracted by an earlier step"
                    )
            if step.token is not None and step.token.url is not None:
                try:
                    split_url(_token_url(self.url, step.token.url))
                except ValueError as exc:
                    raise ValueError(f"{where}.token.url: {exc}") from None
            if step.path is not None:
                try:
                    _url_template(_join(self.url, step.path))
                except ValueError as exc:
                    raise ValueError(f"{where}.path: {exc}") from None
            known.update(step.extract)
        if tokens > 1:
            raise ValueError("one token step at most")
        if self.freshness is not None and tokens == len(self.steps):
            raise ValueError("freshness reads the last request step's answer: there is none")
        return self


def _join(base: str, path: str) -> str:
    """``https://h/lgsp`` + ``/dossiers/1`` → ``https://h/lgsp/dossiers/1``."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def _token_url(base: str, url: str) -> str:
    """The token endpoint: ``url`` if absolute, else a path under the check's ``base``."""
    return url if "://" in url else _join(base, url)


def _url_template(url: str) -> tuple[str, str, int, str]:
    """``split_url`` of a URL whose path and query may hold ``${var}`` (never its host)."""
    if _VAR.search(urlsplit(url).netloc):
        raise ValueError(f"URL {url!r}: ${{...}} may stand in the path and query only")
    return split_url(url)


def _json_vars(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(_VAR.findall(value))
    if isinstance(value, list):
        return [v for item in value for v in _json_vars(item)]
    if isinstance(value, dict):
        return [v for item in value.values() for v in _json_vars(item)]
    return []


def _text(value: Any) -> str:
    """A variable's value inside text: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _fill_json(value: Any, names: dict[str, Any]) -> Any:
    """The body with variables in place: ``"${v}"`` alone becomes v's JSON value itself."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole is not None:
            return names[whole[1]]
        return _VAR.sub(lambda m: _text(names[m[1]]), value)
    if isinstance(value, list):
        return [_fill_json(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill_json(item, names) for key, item in value.items()}
    return value


# ----- the prepared steps ----------------------------------------------------------------------


class _StepFailed(Exception):
    """A step's verdict: its reason (a down problem), raised to end the run."""

    def __init__(self, reason: Why) -> None:
        super().__init__(reason.code)
        self.reason = reason


@dataclass(slots=True)
class _Run:
    """One run's state: the variables, the bearer, the times, what it is waiting for."""

    names: dict[str, Any] = field(default_factory=dict)
    bearer: str | None = None
    bearer_cached: bool = False
    times: list[int] = field(default_factory=list)
    warnings: list[Why] = field(default_factory=list)
    exchange: Exchange | None = None  # the one in flight: its phase, for a timeout's reason
    status: int | None = None
    cert_not_after: float | None = None
    step_ms: int | None = None
    data: DataTime | None = None  # the freshness condition's time, from the last request step


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """Where a step connects: scheme, host, port and the (encoded) request target."""

    https: bool
    host: str
    port: int
    path: str
    scheme: str


@dataclass(slots=True)
class _TokenCache:
    """The OAuth2 bearer kept between runs, and until when (the probe's clock)."""

    token: str | None = None
    until: float = 0.0

    def get(self, now: float) -> str | None:
        return self.token if self.token is not None and now < self.until else None

    def keep(self, token: str, now: float, expires_in: object) -> None:
        life = _TOKEN_DEFAULT_LIFE
        number = isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        if number or (isinstance(expires_in, str) and expires_in.isdigit()):
            life = float(expires_in)  # type: ignore[arg-type]
        life = min(max(life, 0.0), _TOKEN_MAX_LIFE)
        self.token, self.until = token, now + life - min(60.0, max(5.0, life / 10))

    def drop(self) -> None:
        self.token, self.until = None, 0.0


class _APIProbe:
    """A prepared api check; calling it runs the transaction once."""

    def __init__(
        self, spec: Spec, env: ProbeEnv, ctx: ssl.SSLContext, secrets: list[str | None]
    ) -> None:
        self._spec = spec
        self._env = env
        self._ctx = ctx
        self._clock: Callable[[], float] = env.clock
        self._limit = spec.max_body_bytes or env.max_body_bytes
        _, self._base_host, _, _ = split_url(spec.url)
        self._policy = spec.address_policy
        self._announced = spec.announced and self._policy is not None
        self._echo = not spec.announced
        self._opts = spec.tls
        # Another host (an identity server) is verified against the same CA, but the pin, the
        # SNI name and the validity rules are the check's host's.
        self._other_opts = spec.tls.model_copy(
            update={"expected_fingerprint_sha256": None, "min_days_valid": None}
        )
        self._cache = _TokenCache()
        self._static: str | None = None
        self._token_target: Target | None = None
        self._endpoints: list[_Endpoint | None] = []
        self._allowed: list[frozenset[int]] = []
        self._queries: list[list[tuple[str, Query]]] = []
        # The freshness condition reads the last request step's answer.
        fresh = spec.freshness
        self._fresh_query = compile_path(fresh.path) if fresh and fresh.path else None
        requests = [i for i, step in enumerate(spec.steps) if step.token is None]
        self._fresh_step = requests[-1] if requests else -1
        for step, secret in zip(spec.steps, secrets, strict=True):
            self._allowed.append(expand_statuses(step.expect.status))
            self._queries.append([(name, compile_path(p)) for name, p in step.extract.items()])
            if step.token is not None:
                self._endpoints.append(None)
                if step.token.token_file is not None:
                    self._static = secret
                else:
                    assert secret is not None
                    self._token_target = self._token_request(step.token, secret)
                continue
            url = step.url if step.url is not None else _join(spec.url, step.path or "")
            scheme, host, port, path = _url_template(url)
            self._endpoints.append(_Endpoint(scheme == "https", host, port, path, scheme))

    def _token_request(self, token: TokenSpec, secret: str) -> Target:
        assert token.url is not None
        assert token.client_id is not None
        url = _token_url(self._spec.url, token.url)
        scheme, host, port, path = split_url(url)
        form = {"grant_type": "client_credentials"}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if token.scope is not None:
            form["scope"] = token.scope
        if token.client_auth == "basic":
            pair = f"{quote(token.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = token.client_id
            form["client_secret"] = secret
        body = urlencode(form).encode()
        request = encode_request(
            "POST", scheme, host, port, path, headers, body, self._env.user_agent
        )
        return self._target(url, "POST", scheme, host, port, request)

    def _target(
        self, url: str, method: str, scheme: str, host: str, port: int, request: bytes
    ) -> Target:
        own = host == self._base_host
        server_name = (self._opts.server_name if own else None) or host
        # An announced target connects only where the policy allows; hosts the steps name
        # themselves (an identity server) are the operators' own configuration.
        guarded = self._announced and own
        return Target(url, method, scheme == "https", host, port, server_name, request, guarded)

    # ----- a run ------------------------------------------------------------------------------

    async def __call__(self, timeout: float) -> ProbeResult:  # noqa: ASYNC109
        start = time.perf_counter()
        run = _Run()
        index = 0
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            async with asyncio.timeout_at(deadline):
                for index, step in enumerate(self._spec.steps):
                    run.step_ms, run.exchange = None, None
                    if step.token is not None:
                        await self._token_step(run, index, deadline)
                    else:
                        await self._request_step(run, index, step, deadline)
        except _StepFailed as failed:
            return self._result(fail, self._in_step(index, run, failed.reason), start, run)
        except TimeoutError:
            seen = run.exchange.phase if run.exchange is not None else why("phase.connecting")
            phase = why("timeout.phase", timeout=timeout, phase=seen)
            step = self._spec.steps[index]
            reason = why("api.step", n=index + 1, name=step.name, what=phase)
            return self._result(fail, reason, start, run, duration=timeout)
        except Exception as exc:  # noqa: BLE001 - a probe never raises; no text: it may hold a secret
            return fail(why("probe.internal", error=type(exc).__name__), 0.0)
        if run.warnings:
            return self._result(warn, run.warnings[0], start, run)
        times = ", ".join(f"{ms} ms" for ms in run.times)
        reason = why("api.ok", count=len(self._spec.steps), times=times)
        return self._result(passed, reason, start, run)

    def _in_step(self, index: int, run: _Run, what: Why) -> Why:
        name = self._spec.steps[index].name
        if run.step_ms is None:
            return why("api.step", n=index + 1, name=name, what=what)
        return why("api.step_timed", n=index + 1, name=name, ms=run.step_ms, what=what)

    def _result(
        self,
        make: Callable[..., ProbeResult],
        reason: Why,
        start: float,
        run: _Run,
        duration: float | None = None,
    ) -> ProbeResult:
        observed = {"step_ms": ",".join(str(ms) for ms in run.times)} if run.times else {}
        return make(
            reason,
            duration if duration is not None else time.perf_counter() - start,
            cert_not_after=run.cert_not_after,
            status_code=run.status,
            observed=observed,
            data=run.data,
        )

    async def _exchange(
        self, run: _Run, index: int, target: Target, wanted: frozenset[int], deadline: float
    ) -> Exchange:
        """Send one request through the http probe's client; failures end the step."""
        exchange = run.exchange = Exchange(wanted, self._limit)
        own = target.host == self._base_host
        opts = self._opts if own else self._other_opts
        began = time.perf_counter()
        failure, not_after = await fetch(target, exchange, deadline, self._ctx, opts, self._policy)
        run.step_ms = max(0, round((time.perf_counter() - began) * 1000))
        run.times.append(run.step_ms)
        if own and not_after is not None:
            run.cert_not_after = not_after
        if failure is not None:
            raise _StepFailed(failure)
        run.status = exchange.status
        if exchange.cert_warning is not None:
            if exchange.cert_warning.down:
                raise _StepFailed(exchange.cert_warning.why)
            run.warnings.append(self._in_step(index, run, exchange.cert_warning.why))
        return exchange

    async def _token_step(self, run: _Run, index: int, deadline: float) -> None:
        if self._static is not None:
            run.bearer = self._static
            run.times.append(0)
            return
        assert self._token_target is not None
        now = self._clock()
        cached = self._cache.get(now)
        if cached is not None:
            run.bearer, run.bearer_cached = cached, True
            run.times.append(0)
            return
        allowed = self._allowed[index]
        wanted = allowed | {400, 401, 403}  # an OAuth2 error answer says why (RFC 6749 5.2)
        exchange = await self._exchange(run, index, self._token_target, wanted, deadline)
        status = exchange.status
        document = _json_of(exchange)
        if status not in allowed:
            error = document.get("error") if isinstance(document, dict) else None
            if isinstance(error, str) and self._echo:
                shown = printable(error)[:_TOKEN_ERROR_CHARS]
                raise _StepFailed(why("api.token_refused", status=status, error=shown))
            expected = ", ".join(str(s) for s in self._spec.steps[index].expect.status)
            raise _StepFailed(why("http.status", status=status, expected=expected))
        token = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not _BEARER.fullmatch(token):
            raise _StepFailed(why("api.token_missing"))
        expires_in = document.get("expires_in") if isinstance(document, dict) else None
        self._cache.keep(token, self._clock(), expires_in)
        run.bearer, run.bearer_cached = token, False

    async def _request_step(self, run: _Run, index: int, step: Step, deadline: float) -> None:
        endpoint = self._endpoints[index]
        assert endpoint is not None
        names = run.names
        path = _VAR_ENCODED.sub(lambda m: quote(_text(names[m[1]]), safe=""), endpoint.path)
        headers: dict[str, str] = {}
        for name, value in step.headers.items():
            filled = _VAR.sub(lambda m: _text(names[m[1]]), value)
            if not header_value_ok(filled):
                used = _VAR.findall(value)
                raise _StepFailed(
                    why("api.unusable_value", var=", ".join(used), where=f"header {name}")
                )
            headers[name] = filled
        lower = {name.lower() for name in headers}
        if run.bearer is not None and "authorization" not in lower:
            headers["Authorization"] = f"Bearer {run.bearer}"
        body: bytes | None = None
        if step.body is not None:
            body = json.dumps(_fill_json(step.body, names), ensure_ascii=False).encode()
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json"
        elif step.method in ("POST", "PUT", "PATCH"):
            body = b""
        request = encode_request(
            step.method,
            endpoint.scheme,
            endpoint.host,
            endpoint.port,
            path,
            headers,
            body,
            self._env.user_agent,
        )
        scheme = endpoint.scheme
        url = f"{scheme}://{endpoint.host}:{endpoint.port}{path}"
        target = self._target(url, step.method, scheme, endpoint.host, endpoint.port, request)
        allowed = self._allowed[index]
        queries = self._queries[index]
        assertions = step.expect.json_assertions
        dated = self._fresh_query if index == self._fresh_step else None
        wanted = allowed if (queries or assertions or dated) else frozenset()
        exchange = await self._exchange(run, index, target, wanted, deadline)
        status = exchange.status
        if status not in allowed:
            if status == 401 and run.bearer_cached:
                self._cache.drop()  # the next run asks for a new token
            expected = ", ".join(str(s) for s in step.expect.status)
            raise _StepFailed(why("http.status", status=status, expected=expected))
        problems: list[Problem] = []
        if queries or assertions or dated:
            document = _json_of(exchange)
            if document is _NOT_JSON:
                raise _StepFailed(why("body.not_json"))
            if dated is not None:
                run.data, undated = self._data_time(dated, document)
                if undated is not None:
                    assert self._spec.freshness is not None
                    problems.append(Problem(undated, down=self._spec.freshness.severity == "down"))
            now = self._clock()
            for assertion in assertions:
                failure = assertion.comparison.check(document, now, echo=self._echo)
                if failure is not None:
                    raise _StepFailed(failure)
            for name, query in queries:
                try:
                    found, picked = query.first(document)
                except ValueError:
                    found, picked = False, None
                if not found:
                    raise _StepFailed(why("api.extract_missing", var=name, path=query.source))
                names[name] = picked
        limit = step.expect.max_latency
        elapsed = (run.step_ms or 0) / 1000
        if limit is not None and elapsed > limit:
            slow = why("http.slow", elapsed=round(elapsed, 1), limit=limit)
            problems.append(Problem(slow, down=step.expect.max_latency_severity == "down"))
        for problem in problems:
            if problem.down:
                raise _StepFailed(problem.why)
            run.warnings.append(self._in_step(index, run, problem.why))

    def _data_time(self, query: Query, document: Any) -> tuple[DataTime | None, Why | None]:
        """The freshness field's time (read as the ``http`` check reads it), or the problem."""
        try:
            found, value = query.first(document)
        except ValueError:
            found, value = False, None
        if not found:
            return None, why("json.missing", path=query.source)
        stamp = timestamp_of(value)
        if stamp is None:
            if self._echo:
                return None, why("json.not_timestamp_value", path=query.source, value=show(value))
            return None, why("json.not_timestamp", path=query.source)
        return DataTime(stamp), None


_NOT_JSON = object()


def _json_of(exchange: Exchange) -> Any:
    """The answer's body as JSON, or ``_NOT_JSON`` (no body read, or not JSON)."""
    if exchange.body is None:
        return _NOT_JSON
    try:
        return json.loads(exchange.body)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, nesting
        return _NOT_JSON


def _read_secret(path: Path, what: str) -> str:
    """A secret from its file; ``ValueError`` naming the file (never the value)."""
    value = SecretSource(file=path).read().get_secret_value()
    if not value:
        raise ValueError(f"{what}: the file {path} is empty")
    return value


def build(spec: Spec, env: ProbeEnv) -> Probe:
    """Read the secrets and prepare the steps once; the probe runs the transaction."""
    try:
        ctx = env.ssl_contexts.get(spec.tls)
    except (OSError, ssl.SSLError) as exc:
        return broken_probe(why("tls.files", detail=str(exc)))
    secrets: list[str | None] = []
    for index, step in enumerate(spec.steps):
        token = step.token
        if token is None:
            secrets.append(None)
            continue
        name = "token_file" if token.token_file is not None else "client_secret_file"
        where = f"steps[{index}].token.{name}"
        path = token.token_file or token.client_secret_file
        assert path is not None
        try:
            secret = _read_secret(path, where)
        except ValueError as exc:
            detail = str(exc)
            return broken_probe(
                why(
                    "api.step",
                    n=index + 1,
                    name=step.name,
                    what=why("api.secret", field=where, detail=detail),
                )
            )
        if name == "token_file" and not _BEARER.fullmatch(secret):
            return broken_probe(
                why(
                    "api.step",
                    n=index + 1,
                    name=step.name,
                    what=why("api.secret", field=where, detail="not a bearer token (RFC 6750)"),
                )
            )
        secrets.append(secret)
    return _APIProbe(spec, env, ctx, secrets)
