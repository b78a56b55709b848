"""Loading the configuration: the YAML with its includes, within limits, validated and
cross-checked.

Every error is reported as ``file:line: dotted.path: message``. :func:`load_config` gathers
all of them at once (a person fixing a config wants the whole list, not one per run).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from probes import PROBES

from ..yamlsource import (
    DEFAULT_LIMITS,
    Limits,
    LineDict,
    LineList,
    Mark,
    YamlError,
    YamlProblem,
    locate,
    new_dict,
    new_list,
    parse_yaml,
    read_regular_file,
)
from .crosscheck import cross_check
from .issues import ConfigError, ConfigIssue
from .model import Config


def load_config(path: Path, limits: Limits = DEFAULT_LIMITS) -> Config:
    """Read, merge includes, validate and cross-check; raise :class:`ConfigError`.

    Whatever the files hold, nothing but :class:`ConfigError` comes out: the daemon calls this
    on SIGHUP and must survive any file (a 4,300-digit number was a ``ValueError``, a deep
    list a ``RecursionError``; both ended the daemon).
    """
    return _load_bounded(path, limits, registry_alone=False)[0]


def check_config_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[Config, bool]:
    """What ``check-config`` checks: a daemon config, or a registry file on its own.

    A file with ``schema_version`` is a registry file (what a daemon config includes) and is
    checked as one: its keys, agencies, contacts, systems and checks; True says so. What it
    cannot tell alone — whether the channels its contacts ask for are configured, systems of
    agencies in other files — is checked with the daemon's config that includes it.
    """
    return _load_bounded(path, limits, registry_alone=True)


def _load_bounded(path: Path, limits: Limits, *, registry_alone: bool) -> tuple[Config, bool]:
    name = str(path).replace("\0", "\\0")
    try:
        with _gc_paused():
            return _load_config(path, limits, registry_alone)
    except ConfigError as exc:
        raise _capped(exc, name, limits.max_errors) from None
    except RecursionError:
        message = "nested too deeply to validate"
    except MemoryError:
        message = "out of memory while loading the configuration: it is too large"
    except Exception as exc:  # noqa: BLE001 - the boundary: any surprise becomes an error line
        message = f"cannot load the configuration: {type(exc).__name__}: {exc}"[:500]
    raise ConfigError([ConfigIssue(name, 0, "", message)]) from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building 0.4 million containers triggers dozens of full collections that find nothing
    (the tree has no cycles): pausing the collector makes a 10,000-system load 25% faster."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _capped(exc: ConfigError, name: str, max_errors: int) -> ConfigError:
    """At most ``max_errors`` lines: a merge bomb printed 2.3 million of them."""
    total = max(exc.total, len(exc.issues))
    shown = exc.issues[:max_errors]
    if total <= len(shown) and exc.complete:
        return ConfigError(shown, total)
    if exc.complete:
        more = ConfigIssue(name, 0, "", f"… and {total - len(shown):,} more errors not shown")
    else:
        more = ConfigIssue(name, 0, "", "… and more: checking stopped after these")
    return ConfigError([*shown, more], total, exc.complete)


def _load_config(path: Path, limits: Limits, registry_alone: bool) -> tuple[Config, bool]:
    path = Path(_real_path(str(path)))
    reader = _Reader(limits)
    raw = reader.read_mapping(path)
    fallback = Mark(str(path), 1)
    # A registry file: schema_version, and no key of the daemon's own but agencies.
    alone = registry_alone and "schema_version" in raw and not _DAEMON_KEYS.intersection(raw)
    if alone:  # a registry file on its own: its agencies, as if a config included it
        issues = _registry_file_issues(raw)
        raw = _agencies_only(raw)
    else:
        issues = _merge_includes(raw, path, reader)
    if reader.nodes > _PREFIX_NODES:
        _refuse_garbage(raw, fallback, issues, limits.max_errors)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        shown = _from_validation(raw, exc, fallback, limits.max_errors)
        total = len(issues) + max(exc.error_count(), len(shown))
        raise ConfigError([*issues, *shown], total) from None
    issues.extend(cross_check(config, raw, fallback, path.parent, alone=alone))
    if issues:
        raise ConfigError(issues)
    if isinstance(config.state_db, Path) and not config.state_db.is_absolute():
        config = config.model_copy(update={"state_db": path.parent / config.state_db})
    return config, alone


_DAEMON_KEYS = frozenset(Config.model_fields) - {"agencies"}


def _agencies_only(raw: LineDict) -> LineDict:
    """The ``agencies`` of a registry file as a config holding nothing else (its other keys
    are reported by :func:`_registry_file_issues`)."""
    result = new_dict(raw.file, raw.line)
    if "agencies" in raw:
        result["agencies"] = raw["agencies"]
        result.key_lines["agencies"] = raw.key_lines.get("agencies", raw.line)
    return result


def _real_path(name: str) -> str:
    """The absolute, symlink-free path; a loop or a NUL byte is reported when the file is read."""
    if "\0" in name:
        return name
    return os.path.realpath(name)  # unlike Path.resolve, no RuntimeError on a symlink loop


class _Reader:
    """Reads the main file and its includes within one shared budget (bytes, values, files)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes = 0
        self.nodes = 0
        self.files = 0

    def read_mapping(self, path: Path) -> LineDict:
        name = str(path)
        try:
            raw = self._parse(name)
        except YamlError as exc:
            raise ConfigError(
                [ConfigIssue(p.mark.file, p.mark.line, p.path, p.message) for p in exc.problems]
            ) from None
        if raw is None:
            raw = new_dict(name, 1)
        if not isinstance(raw, LineDict):
            raise ConfigError([ConfigIssue(name, 1, "", "the file must hold a mapping")])
        return raw

    def _parse(self, name: str) -> Any:
        limits = self.limits
        self.files += 1
        if self.files > limits.max_includes + 1:
            raise YamlError(
                [YamlProblem(Mark(name, 0), "", f"more than {limits.max_includes} includes")]
            )
        left = limits.max_total_bytes - self.bytes
        data = read_regular_file(name, min(limits.max_file_bytes, left))
        self.bytes += len(data)
        root, self.nodes = parse_yaml(data, name, limits, self.nodes)
        return root


def _merge_includes(raw: LineDict, path: Path, reader: _Reader) -> list[ConfigIssue]:
    """Append the ``agencies`` of each included file to ``raw['agencies']``, keeping positions."""
    issues: list[ConfigIssue] = []
    includes = raw.get("include") or []
    if not isinstance(includes, LineList):
        return []  # the model reports the wrong type
    agencies = raw.get("agencies")
    if not isinstance(agencies, LineList):
        if raw.get("agencies") is not None:
            return []  # wrong type, reported by the model
        agencies = raw["agencies"] = new_list(raw.file, raw.line)
        raw.key_lines.setdefault("agencies", raw.line)
    for index, name in enumerate(includes):
        if not isinstance(name, str):
            continue
        mark = includes.item_mark(index)
        if "\0" in name:
            issues.append(
                ConfigIssue(mark.file, mark.line, f"include[{index}]", "a NUL byte in the path")
            )
            continue
        try:
            sub = reader.read_mapping(Path(_real_path(os.path.join(path.parent, name))))
        except ConfigError as exc:
            if exc.issues and exc.issues[0].line == 0:
                # The include itself could not be read: say which file was tried.
                message = _naming_file(exc.issues[0].message, exc.issues[0].file)
                issues.append(ConfigIssue(mark.file, mark.line, f"include[{index}]", message))
            else:
                issues.extend(exc.issues)
            continue
        issues.extend(_registry_file_issues(sub))
        sub_agencies = sub.get("agencies") or []
        if not isinstance(sub_agencies, LineList):
            at = sub.key_mark("agencies") or sub.mark
            issues.append(ConfigIssue(at.file, at.line, "agencies", "must be a list"))
            continue
        agencies.extend_from(sub_agencies)
    return issues


def _naming_file(message: str, file: str) -> str:
    """``cannot read /etc/npsp-monitor/registry.yaml: No such file or directory``."""
    if message.startswith("cannot read: "):
        return f"cannot read {file}: {message.removeprefix('cannot read: ')}"
    return f"{file}: {message}"


def _registry_file_issues(sub: LineDict) -> list[ConfigIssue]:
    """An included file holds ``schema_version`` (1) and ``agencies``, nothing else."""
    issues = []
    for key in sub:
        if key not in ("schema_version", "agencies"):
            at = sub.key_mark(key) or sub.mark
            issues.append(
                ConfigIssue(
                    at.file,
                    at.line,
                    key,
                    "unknown key in a registry file (allowed: schema_version, agencies)",
                )
            )
    version = sub.get("schema_version", 1)
    if version != 1:
        at = sub.key_mark("schema_version") or sub.mark
        issues.append(
            ConfigIssue(
                at.file,
                at.line,
                "schema_version",
                f"unsupported schema_version {version!r} (this version reads 1)",
            )
        )
    return issues


_PYDANTIC_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


# Beyond this many errors, pydantic's list of them costs more than the validation itself
# (a million errors: 2 s and 500 MB for ``errors()``): only the first ones are rendered.
_MANY_ERRORS = 10_000
_PREFIX_NODES = 20_000


def _refuse_garbage(
    raw: LineDict, fallback: Mark, issues: list[ConfigIssue], max_errors: int
) -> None:
    """Stop when the start of a large document already has ``max_errors`` errors.

    Validating a million wrong values holds a million errors (2 s, 500 MB); a person
    fixes the first hundred first anyway.
    """
    try:
        Config.model_validate(_prefix(raw, [_PREFIX_NODES]))
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False) if e["type"] != "missing"]
        if len(issues) + len(errors) >= max_errors:
            shown = [*issues, *_render(raw, errors[:max_errors], fallback)]
            raise ConfigError(shown, len(shown), complete=False) from None


def _first_errors(raw: LineDict, exc: ValidationError, max_errors: int) -> list[ErrorDetails]:
    """The first ``max_errors`` of ``exc``'s errors, without rendering all of them."""
    if exc.error_count() <= _MANY_ERRORS:
        return exc.errors(include_url=False)[:max_errors]
    # Validate the start of the document again (its first nodes, marks kept). Cutting the
    # document short makes fields after the cut "missing": those errors are not shown.
    try:
        Config.model_validate(_prefix(raw, [_PREFIX_NODES]))
    except ValidationError as again:
        errors = [e for e in again.errors(include_url=False) if e["type"] != "missing"]
        return errors[:max_errors]
    return []


def _prefix(value: Any, budget: list[int]) -> Any:
    """A copy of the first ``budget[0]`` values of ``value`` (depth first), marks kept."""
    budget[0] -= 1
    if isinstance(value, LineDict):
        result = new_dict(value.file, value.line)
        for key, item in value.items():
            if budget[0] <= 0:
                break
            result[key] = _prefix(item, budget)
            result.key_lines[key] = value.key_lines.get(key, value.line)
        return result
    if isinstance(value, LineList):
        result_list = new_list(value.file, value.line)
        for index, item in enumerate(value):
            if budget[0] <= 0:
                break
            result_list.append(_prefix(item, budget))
            result_list.item_lines.append(value.item_lines[index])
        count = len(result_list)
        result_list.item_files = None if value.item_files is None else value.item_files[:count]
        result_list.origins = None if value.origins is None else value.origins[:count]
        return result_list
    return value


def _from_validation(
    raw: LineDict, exc: ValidationError, fallback: Mark, max_errors: int
) -> list[ConfigIssue]:
    return _render(raw, _first_errors(raw, exc, max_errors), fallback)


def _render(raw: LineDict, errors: list[ErrorDetails], fallback: Mark) -> list[ConfigIssue]:
    issues = []
    for error in errors:
        loc = list(error["loc"])
        message = _PYDANTIC_PREFIX.sub("", error["msg"])
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif error["type"] == "union_tag_invalid":
            kinds = ", ".join(PROBES)
            message = f"unknown check kind {error.get('ctx', {}).get('tag')!r} (known: {kinds})"
            loc.append("kind")
        elif error["type"] == "missing":
            message = "required field is missing"
        mark, dotted = locate(raw, loc, fallback)
        issues.append(ConfigIssue(mark.file, mark.line, dotted, message))
    return issues
