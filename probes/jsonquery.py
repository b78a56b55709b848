"""JSONPath queries and comparisons on a parsed JSON document, compiled once at config time.

* :func:`compile_path` — an RFC 9535 JSONPath (``$.data.items[0].status``,
  ``$.items[?@.kind == 'A'].state``), compiled by ``python-jsonpath`` in strict mode;
  ``ValueError`` with the reason when it does not parse (the config names the field).
* :class:`Query` — a compiled path: :meth:`Query.values` (every node it selects, in document
  order) and :meth:`Query.first`.
* :func:`compile_comparison` / :class:`Comparison` — a path, an operator (:data:`OPS`: ``==``,
  ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``matches`` (RE2, searched), ``age <`` (a duration: the
  value is a timestamp)) and the value to compare with; :meth:`Comparison.check` returns a
  reason (:class:`npsp_common.types.Why`) or None. When the path selects several nodes, every
  one must pass; when it selects none, the field is missing.
* :class:`JSONAssertion` — the config model of one comparison (``path``, ``op``, ``value``),
  validated and compiled when the config is read.
* :func:`show` — a value as a reason shows it (quoted, printable, truncated). ``age <`` reads
  its timestamps as a freshness condition does (:func:`probes.httpbody.timestamp_of`: ISO 8601,
  Vietnam's time without an offset, or epoch seconds).

Nothing here knows HTTP: the ``api`` probe uses it, and any check with a JSON body can.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

from jsonpath import JSONPath, JSONPathEnvironment, JSONPathError
from jsonpath.function_extensions import Match, Search
from pydantic import Field, PrivateAttr, model_validator

from npsp_common.types import JSONValue, StrictModel, Why, parse_duration, printable

from .httpbody import BodyRegex, compile_body_regex, timestamp_of
from .reasons import why

__all__ = [
    "OPS",
    "Comparison",
    "JSONAssertion",
    "Op",
    "Query",
    "compile_comparison",
    "compile_path",
    "show",
]

Op = Literal["==", "!=", "<", "<=", ">", ">=", "matches", "age <"]
OPS: tuple[str, ...] = get_args(Op)

MAX_PATH_CHARS = 500
MAX_SHOWN = 60  # characters of a value in a reason


class _Re2Patterns:
    """The patterns of a path's ``match()`` and ``search()`` compiled by RE2, not ``re``: they
    run on what the probed server sent (see :func:`probes.httpbody.compile_body_regex`). A
    pattern RE2 cannot take selects nothing, as RFC 9535 says of an invalid one."""

    def check_cache(self, pattern: str) -> BodyRegex | None:
        cache: dict[str, BodyRegex | None] = self.__dict__.setdefault("_re2", {})
        if pattern not in cache:
            if len(cache) >= 64:
                cache.clear()
            try:
                cache[pattern] = compile_body_regex(pattern)
            except ValueError:
                cache[pattern] = None
        return cache[pattern]


class _Re2Match(_Re2Patterns, Match):
    def __call__(self, value: object, pattern: object) -> bool:
        if not isinstance(value, str) or not isinstance(pattern, str):
            return False
        compiled = self.check_cache(pattern)
        return compiled is not None and compiled.fullmatch(value) is not None


class _Re2Search(_Re2Patterns, Search):
    def __call__(self, value: object, pattern: object) -> bool:
        if not isinstance(value, str) or not isinstance(pattern, str):
            return False
        compiled = self.check_cache(pattern)
        return compiled is not None and compiled.search(value) is not None


class _Environment(JSONPathEnvironment):
    """RFC 9535 only (strict: no python-jsonpath extensions, so a path means what the RFC
    says), with RE2 behind ``match()`` and ``search()``."""

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        self.function_extensions["match"] = _Re2Match()
        self.function_extensions["search"] = _Re2Search()


_ENV = _Environment(strict=True)


@dataclass(frozen=True, slots=True)
class Query:
    """A compiled JSONPath and its source text (for reasons)."""

    source: str
    _path: JSONPath

    def values(self, document: Any) -> list[Any]:
        """Every node the path selects in ``document``, in document order (maybe none).
        ``ValueError`` if the evaluation itself fails (not for a missing field)."""
        try:
            return [node.value for node in self._path.finditer(document)]
        except (JSONPathError, TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"JSONPath {self.source} could not be evaluated: {exc}") from None

    def first(self, document: Any) -> tuple[bool, Any]:
        """``(True, value)`` of the first node selected, ``(False, None)`` when none is."""
        found = self.values(document)
        return (True, found[0]) if found else (False, None)


def compile_path(path: str) -> Query:
    """Compile an RFC 9535 JSONPath; ``ValueError`` saying why it cannot be read."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ValueError(f"JSONPath {path!r} must start with $")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"JSONPath longer than {MAX_PATH_CHARS} characters")
    try:
        compiled = _ENV.compile(path)
    except JSONPathError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"invalid JSONPath {path!r}: {first}") from None
    if not isinstance(compiled, JSONPath):  # a compound path (a python-jsonpath extension)
        raise ValueError(f"invalid JSONPath {path!r}: one RFC 9535 query expected")
    return Query(path, compiled)


# ----- comparisons ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comparison:
    """A path, an operator and what to compare with, ready to check documents."""

    query: Query
    op: Op
    expected: Any  # a JSON value; the limit in seconds for ``age <``
    regex: BodyRegex | None = None

    @property
    def path(self) -> str:
        return self.query.source

    def check(self, document: Any, now: float, *, echo: bool = True) -> Why | None:
        """A failure reason, or None when every selected node passes. ``now`` is the probe's
        clock (Unix seconds) for ``age <``. Without ``echo`` (a target named by an
        announcement) the reason names the path and the expectation, never the value seen."""
        try:
            found = self.query.values(document)
        except ValueError:
            return why("json.query_failed", path=self.path)
        if not found:
            return why("json.missing", path=self.path)
        for value in found:
            failure = self._check_one(value, now, echo)
            if failure is not None:
                return failure
        return None

    def _check_one(self, value: Any, now: float, echo: bool) -> Why | None:
        path, op = self.path, self.op
        if op == "age <":
            stamp = timestamp_of(value)
            if stamp is None:
                if echo:
                    return why("json.not_timestamp_value", path=path, value=show(value))
                return why("json.not_timestamp", path=path)
            age = now - stamp
            if age < self.expected:
                return None
            return why("json.old", path=path, age=float(max(1, round(age))), limit=self.expected)
        if op == "matches":
            assert self.regex is not None
            text = value if isinstance(value, str) else _scalar_text(value)
            if text is not None and self.regex.search(text) is not None:
                return None
            pattern = self.regex.pattern()
            if not echo:
                return why("json.no_match_hidden", path=path, pattern=pattern)
            return why("json.no_match", path=path, value=show(value), pattern=pattern)
        outcome = _compare(value, op, self.expected)
        if outcome is True:
            return None
        expected = show(self.expected)
        if outcome is None:
            if not echo:
                return why("json.incomparable_hidden", path=path, expected=expected)
            return why("json.incomparable", path=path, value=show(value), expected=expected)
        if not echo:
            return why("json.compare_hidden", path=path, op=op, expected=expected)
        if op == "==":
            return why("json.compare_eq", path=path, value=show(value), expected=expected)
        return why("json.compare", path=path, value=show(value), op=op, expected=expected)


def compile_comparison(path: str, op: str, value: Any) -> Comparison:
    """Check and compile one comparison; ``ValueError`` naming what is wrong."""
    query = compile_path(path)
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}: use one of {', '.join(OPS)}")
    if op == "age <":
        try:
            return Comparison(query, "age <", parse_duration(value))
        except ValueError as exc:
            raise ValueError(f"op 'age <' needs a duration as value (e.g. 15m): {exc}") from None
    if op == "matches":
        if not isinstance(value, str):
            raise ValueError("op 'matches' needs a regular expression (a string) as value")
        return Comparison(query, "matches", value, compile_body_regex(value))
    if op in ("<", "<=", ">", ">="):
        if not _orderable(value):
            raise ValueError(f"op {op!r} needs a number or a string as value, not {show(value)}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("value must be a finite number")
    return Comparison(query, op, value)  # type: ignore[arg-type]


class JSONAssertion(StrictModel):
    """``{path: $.data.status, op: "==", value: OK}``: one JSON field and what it must be."""

    path: str = Field(
        description="An RFC 9535 JSONPath: `$.data.status`, `$.items[*].state`, "
        "`$.items[?@.kind == 'A'].state`; when it selects several values, each must pass."
    )
    op: Op = Field(
        description="`==`, `!=`, `<`, `<=`, `>`, `>=` (numbers, or strings as text), `matches` "
        "(an RE2 pattern, searched: anchor with ^ and $), `age <` (the value is a duration and "
        "the field a timestamp: ISO 8601, Vietnam's time without an offset, or epoch seconds)."
    )
    value: JSONValue = Field(default=None, description="What to compare with.")
    _compiled: Comparison | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> JSONAssertion:
        if "value" not in self.model_fields_set:
            raise ValueError(f"{self.path} {self.op}: give the value to compare with")
        self._compiled = compile_comparison(self.path, self.op, self.value)
        return self

    @property
    def comparison(self) -> Comparison:
        if self._compiled is None:  # a copy made without validation
            self._compiled = compile_comparison(self.path, self.op, self.value)
        return self._compiled


def _orderable(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    return isinstance(value, str)


def _compare(actual: Any, op: str, expected: Any) -> bool | None:
    """The comparison's outcome; None when the two cannot be compared (a string with a number,
    an object with ``<``)."""
    if op == "==":
        return _same(actual, expected)
    if op == "!=":
        return not _same(actual, expected)
    if not _orderable(actual) or isinstance(actual, str) != isinstance(expected, str):
        return None
    if op == "<":
        return bool(actual < expected)
    if op == "<=":
        return bool(actual <= expected)
    if op == ">":
        return bool(actual > expected)
    return bool(actual >= expected)


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``, as JSON readers expect."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def _scalar_text(value: Any) -> str | None:
    """A number or a boolean as JSON writes it; None for objects, arrays and null."""
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def show(value: Any) -> str:
    """``'OK'``, ``12``, ``{"a": 1}``: a value as a reason shows it, printable, truncated."""
    if isinstance(value, str):
        text = f"'{value}'"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = type(value).__name__
    text = printable(text)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
