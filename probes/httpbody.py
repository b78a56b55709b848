"""What an ``http`` check may demand of a response body: a regex, conditions on JSON fields, and
the time its data was last new (a freshness condition, judged by the daemon in working hours).

The JSON paths are a deliberately small JSONPath subset — ``$.data.items[0].state``,
``$['odd key']`` — enough to point at one field, with no wildcards or filters to get wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, Literal, Protocol

import re2  # type: ignore[import-untyped]
from pydantic import model_validator

from npsp_common.types import DataTime, Duration, Freshness, JSONValue, StrictModel, Why

from .reasons import Problem, why

__all__ = ["JSONCondition", "judge_body", "judge_body_data", "parse_json_path", "timestamp_of"]

_PATH_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)      # .name
      | \[(?P<index>\d+)]               # [0]
      | \[(?P<q>['"])(?P<key>.*?)(?P=q)]  # ['key'] or ["key"]
    """,
    re.VERBOSE,
)
# Epoch numbers above this are milliseconds: as seconds they would be past the year 5000.
_EPOCH_MS_THRESHOLD = 1e11
# A time written without an offset is Vietnam's (the systems watched write local time); fixed,
# not the gateway's own zone (often UTC under systemd). Vietnam keeps no daylight saving.
_VIETNAM = dt.timezone(dt.timedelta(hours=7))

_MISSING = object()


def parse_json_path(path: str) -> tuple[str | int, ...]:
    """``$.data.items[0].state`` → ``("data", "items", 0, "state")``; ValueError if unsupported."""
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with $")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        match = _PATH_STEP.match(path, pos)
        if match is None:
            raise ValueError(
                f"JSON path {path!r}: cannot read {path[pos:]!r} "
                "(supported: $.name, $.list[0], $['key'])"
            )
        if match["name"] is not None:
            steps.append(match["name"])
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        else:
            steps.append(match["key"])
        pos = match.end()
    return tuple(steps)


class JSONCondition(StrictModel):
    """One field of a JSON body and what it must be: exactly one of the three tests."""

    path: str
    equals: JSONValue = None
    younger_than: Duration | None = None
    exists: bool | None = None
    # What a failed condition makes the system: down (the check fails) or degraded (a warning).
    severity: Literal["down", "degraded"] = "down"

    @model_validator(mode="after")
    def _one_test(self) -> JSONCondition:
        parse_json_path(self.path)
        given = self.model_fields_set & {"equals", "younger_than", "exists"}
        if len(given) != 1:
            raise ValueError(
                f"JSON condition on {self.path}: give exactly one of equals, younger_than, exists"
            )
        return self

    def check(self, document: Any, now: float, *, echo: bool = True) -> Why | None:
        """A failure reason, or None when the document passes. Without ``echo`` the reason
        names the path and the expected value, never what the server sent."""
        value = _lookup(document, parse_json_path(self.path))
        path = self.path
        if "exists" in self.model_fields_set:
            if self.exists and value is _MISSING:
                return why("json.missing", path=path)
            if not self.exists and value is not _MISSING:
                return why("json.present", path=path)
            return None
        if value is _MISSING:
            return why("json.missing", path=path)
        if "equals" in self.model_fields_set:
            if not _same(value, self.equals):
                if not echo:
                    return why("json.not", path=path, expected=_show(self.equals))
                return why(
                    "json.differs", path=path, value=_show(value), expected=_show(self.equals)
                )
            return None
        assert self.younger_than is not None
        stamp = timestamp_of(value)
        if stamp is None:
            if echo:
                return why("json.not_timestamp_value", path=path, value=_show(value))
            return why("json.not_timestamp", path=path)
        age = now - stamp
        if age > self.younger_than:
            return why(
                "json.old", path=path, age=float(max(1, round(age))), limit=self.younger_than
            )
        return None


class BodyRegex(Protocol):
    """A compiled ``body_regex`` (RE2)."""

    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def compile_body_regex(pattern: str) -> BodyRegex:
    """Compile ``body_regex`` with RE2, whose matching time is linear in the body's length
    whatever the pattern: with Python's backtracking ``re``, ``(a|a)*b`` or ``(.*a){8}x`` on a
    body from the probed server held the event loop for seconds to minutes (a hostile target
    could stall every probe). RE2 has no backreferences or lookaround; such a pattern is a
    config error. Raises ``ValueError`` with the reason."""
    options = re2.Options()
    options.log_errors = False  # the reason is in our error, not on stderr
    options.max_mem = 8 << 20  # compiled program size; RE2 refuses patterns needing more
    try:
        return _Re2(pattern, re2.compile(pattern, options))
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"invalid regular expression /{pattern[:80]}/: {detail} (RE2 syntax: no "
            "backreferences or lookaround)"
        ) from None


class _Re2:
    """RE2's compiled pattern with the source kept for reasons."""

    def __init__(self, source: str, compiled: Any) -> None:
        self._source = source
        self._compiled = compiled

    def pattern(self) -> str:
        return self._source

    def search(self, text: str) -> object | None:
        return self._compiled.search(text)  # type: ignore[no-any-return]

    def fullmatch(self, text: str) -> object | None:
        return self._compiled.fullmatch(text)  # type: ignore[no-any-return]


def judge_body(
    body: bytes,
    regex: BodyRegex | None,
    conditions: list[JSONCondition],
    *,
    echo: bool = True,
) -> list[Problem]:
    """Apply a check's body tests in order; the problems found (a regex that does not match
    and a body that is not JSON make the system down; a JSON condition, what its ``severity``
    says). ``echo=False`` (a target reached through an announcement or a redirect): no text of
    the body in them."""
    return judge_body_data(body, regex, conditions, echo=echo)[0]


def judge_body_data(
    body: bytes,
    regex: BodyRegex | None,
    conditions: list[JSONCondition],
    *,
    echo: bool = True,
    freshness: Freshness | None = None,
) -> tuple[list[Problem], DataTime | None]:
    """:func:`judge_body`, and the data's time read from the field ``freshness.path`` names
    (None without a freshness condition). A missing or unreadable time is a problem of the
    freshness condition's severity: the daemon cannot judge data it cannot date."""
    if regex is not None:
        text = body.decode("utf-8", errors="replace")
        if regex.search(text) is None:
            return [Problem(why("body.regex", pattern=regex.pattern()))], None
    problems: list[Problem] = []
    data: DataTime | None = None
    if conditions or freshness is not None:
        try:
            document = json.loads(body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            return [Problem(why("body.not_json"))], None
        now = dt.datetime.now(dt.UTC).timestamp()
        for condition in conditions:
            problem = condition.check(document, now, echo=echo)
            if problem is not None:
                problems.append(Problem(problem, down=condition.severity == "down"))
        if freshness is not None and freshness.path is not None:
            data, problem = _data_time(document, freshness.path, echo=echo)
            if problem is not None:
                problems.append(Problem(problem, down=freshness.severity == "down"))
    return problems, data


def _data_time(document: Any, path: str, *, echo: bool) -> tuple[DataTime | None, Why | None]:
    value = _lookup(document, parse_json_path(path))
    if value is _MISSING:
        return None, why("json.missing", path=path)
    stamp = timestamp_of(value)
    if stamp is None:
        if echo:
            return None, why("json.not_timestamp_value", path=path, value=_show(value))
        return None, why("json.not_timestamp", path=path)
    return DataTime(stamp), None


def _lookup(document: Any, steps: tuple[str | int, ...]) -> Any:
    value = document
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or step not in value:
            return _MISSING
        value = value[step]
    return value


def _same(actual: Any, expected: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``, as JSON readers expect."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    return bool(actual == expected)


def timestamp_of(value: Any) -> float | None:
    """An ISO-8601 string or epoch seconds (milliseconds if huge) → epoch seconds.

    An ISO time without an offset is taken as Vietnam's time (UTC+7), as the systems watched
    write it — not as the gateway's own zone.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        return value / 1000 if value > _EPOCH_MS_THRESHOLD else float(value)
    if isinstance(value, str) and len(value) <= 64:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_VIETNAM)
        return moment.timestamp()
    return None


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"
