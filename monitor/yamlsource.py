"""YAML loading that remembers where every value came from (file and line), within limits.

Config errors must name the file, line and field. PyYAML forgets positions once it builds plain
dicts, so mappings and sequences are built as :class:`LineDict` / :class:`LineList`, which carry
the file and the line of each key or item (they, the problems and :func:`locate` are
in :mod:`monitor.yamlmarks`; importable from here too).

The containers are built straight from libyaml's event stream by one iterative loop, not by
PyYAML's composer and constructor: those recurse (a 300-deep flow list was a RecursionError, a
30,000-deep one a segfault in the C composer), copy merge keys without bound (a 455-byte merge
bomb took 12 s and 1.1 GB) and cost 4x the parse itself in per-node Python calls. The loop
enforces :class:`Limits` as it goes, so a hostile file is refused before it costs anything.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml import events as ev
from yaml.nodes import ScalarNode

from .yamlmarks import (
    LineDict,
    LineList,
    Mark,
    YamlError,
    YamlProblem,
    locate,
    new_dict,
    new_list,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "LineDict",
    "LineList",
    "Mark",
    "YamlError",
    "YamlProblem",
    "load_yaml",
    "locate",
    "new_dict",
    "new_list",
    "parse_yaml",
    "read_regular_file",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one configuration (the main file and its includes together) may cost.

    The values leave room for a registry of about 20,000 systems (10,000 systems written
    like ``config/registry.example.yaml`` are 5.5 MB and 0.4 million nodes) and refuse
    anything that would take the loader more than a few seconds or a few hundred MB.
    """

    max_file_bytes: int = 8 << 20  # one file
    max_total_bytes: int = 16 << 20  # the main file and all its includes
    max_includes: int = 256
    max_depth: int = 64  # nesting of mappings and sequences (a real config needs ~12)
    max_nodes: int = 1_000_000  # values of all files, each alias counted as what it expands to
    max_aliases: int = 10_000  # alias uses (``*name``, also as ``<<: *name``) per file
    max_number_chars: int = 64  # an integer literal (Python refuses int() beyond 4,300 digits)
    max_errors: int = 100  # problems reported; the rest are counted


DEFAULT_LIMITS = Limits()


def _fail(file: str, line: int, message: str) -> YamlError:
    return YamlError([YamlProblem(Mark(file, line), "", message)])


# ---------------------------------------------------------------------------- reading files


def read_regular_file(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`YamlError` otherwise.

    A FIFO would block ``open`` until a writer comes, ``/dev/zero`` never ends, and opening
    some devices has effects (a watchdog starts counting): such paths are refused by ``stat``
    before ``open``; ``O_NONBLOCK`` and a second ``fstat`` cover a file swapped in between.
    """
    try:
        _check_regular(os.stat(path), path, max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            _check_regular(os.fstat(fd), path, max_bytes)
            data = _read_at_most(fd, max_bytes + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _fail(path, 0, f"cannot read: {_describe_os_error(exc)}") from None
    except ValueError as exc:  # a NUL byte in the name
        raise _fail(path.replace("\0", "\\0"), 0, f"cannot read: {exc}") from None
    if len(data) > max_bytes:  # it grew while we read it
        raise _fail(path, 0, f"file larger than {max_bytes:,} bytes")
    return data


def _check_regular(st: os.stat_result, path: str, max_bytes: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, 0, "is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(path, 0, "not a regular file (a device, FIFO or socket is never read)")
    if st.st_size > max_bytes:
        raise _fail(path, 0, f"file of {st.st_size:,} bytes, larger than {max_bytes:,}")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "too many levels of symbolic links (a symlink loop?)"
    return exc.strerror or str(exc)


# ---------------------------------------------------------------------------- scalars

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_TAG + t for t in ("str", "int", "float", "bool", "null"))
_TIMESTAMP, _MERGE, _MAP, _SEQ = (_TAG + t for t in ("timestamp", "merge", "map", "seq"))
_IMPLICIT: dict[str, list[tuple[str, Any]]] = {
    first: [
        (tag, regexp) for tag, regexp in resolvers if tag not in (_TAG + "value", _TAG + "yaml")
    ]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_SAFE = yaml.constructor.SafeConstructor()
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP}


class _MergeKey:
    """The plain ``<<`` key of a mapping: YAML's merge of other mappings into this one."""


MERGE = _MergeKey()


def _scalar(event: ev.ScalarEvent, loader: _Builder) -> Any:
    """The value of a scalar, typed as PyYAML's SafeLoader types it (YAML 1.1 rules)."""
    value: str = event.value
    tag = event.tag
    if tag is None or tag == "!":
        if not event.implicit[0]:
            return value  # quoted or block scalar: a string
        for resolved, regexp in _IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                tag = resolved
                break
        else:
            return value
        if tag == _MERGE:
            return MERGE
    elif tag not in _SCALAR_TAGS:
        raise loader.problem(event, f"unsupported tag {tag} (no tags are needed in a config)")
    if tag == _STR:
        return value
    if tag == _INT and len(value) > loader.limits.max_number_chars:
        raise loader.problem(
            event,
            f"a number of {len(value):,} characters (at most {loader.limits.max_number_chars})",
        )
    try:
        return _SAFE.construct_object(ScalarNode(tag, value))
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        raise loader.problem(
            event, f"invalid {tag.removeprefix(_TAG)} {value[:40]!r}: {exc}"
        ) from None


# ---------------------------------------------------------------------------- building


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = ("anchor", "container", "is_map", "key", "key_line", "merges", "start")

    def __init__(self, container: LineDict | LineList, anchor: str | None, start: int) -> None:
        self.container = container
        self.is_map = isinstance(container, LineDict)
        self.anchor = anchor
        self.start = start  # node count when it opened: its size is the difference at its end
        self.key: Any = _NO_KEY
        self.key_line = 0
        self.merges: list[tuple[Any, int]] | None = None


_NO_KEY = object()


class _Builder:
    """One document of one file, from events to Line* containers."""

    def __init__(self, file: str, limits: Limits, nodes: int) -> None:
        self.file = file
        self.limits = limits
        self.nodes = nodes  # shared budget: starts at what earlier files used
        self.aliases = 0
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, size in nodes)
        self.open_anchors: set[str] = set()
        self.problems: list[YamlProblem] = []
        self.stack: list[_Frame] = []
        self.root: Any = None

    def problem(self, event: ev.Event, message: str) -> YamlError:
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        return YamlError([YamlProblem(Mark(self.file, line), self.path(), message)])

    def path(self) -> str:
        """The dotted path of the value being read (``agencies[3].systems``)."""
        parts: list[str] = []
        for frame in self.stack:
            if not frame.is_map:
                parts.append(f"[{len(frame.container)}]")
            elif frame.key is _NO_KEY or frame.key is MERGE:
                break
            else:
                parts.append(f".{frame.key}" if parts else str(frame.key))
        return "".join(parts)

    def count(self, event: ev.Event, size: int) -> None:
        self.nodes += size
        if self.nodes > self.limits.max_nodes:
            raise self.problem(
                event,
                f"more than {self.limits.max_nodes:,} values (aliases counted as what they "
                "repeat): the configuration is too large",
            )

    def build(self, parser: Any) -> Any:
        """Consume the whole event stream; return the document's value."""
        get_event = parser.get_event
        stack = self.stack
        implicit = _IMPLICIT
        max_nodes = self.limits.max_nodes
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            if kind is ev.ScalarEvent:
                self.nodes += 1
                if self.nodes > max_nodes:
                    self.count(event, 0)
                value = event.value
                if (
                    stack
                    and event.tag is None
                    and event.anchor is None
                    and (not event.implicit[0] or value[:1] not in implicit)
                    and self.add_string(stack[-1], value, event.start_mark.line + 1)
                ):
                    continue  # the common case, inlined: a string put into a container
                value = _scalar(event, self)
                if event.anchor is not None:
                    self.anchors[event.anchor] = (value, 1)
                self.add(value, event)
            elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                self.open(event, kind is ev.MappingStartEvent)
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                self.close(event)
            elif kind is ev.AliasEvent:
                self.alias(event)
            elif kind is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.problem(event, "more than one YAML document (a second ---)")
            elif kind is ev.StreamEndEvent or event is None:
                return self.root

    def add_string(self, frame: _Frame, value: str, line: int) -> bool:
        """:meth:`add` for a string, without its checks where none apply; False: use add."""
        container: Any = frame.container  # LineList or LineDict, as frame.is_map says
        if not frame.is_map:
            container.append(value)
            container.item_lines.append(line)
            return True
        key = frame.key
        if key is _NO_KEY:
            frame.key, frame.key_line = value, line
            return True
        if type(key) is not str or key in container:
            return False
        frame.key = _NO_KEY
        container[key] = value
        container.key_lines[key] = frame.key_line
        return True

    def open(self, event: Any, is_map: bool) -> None:
        tag = event.tag
        if tag is not None and tag not in ("!", _MAP if is_map else _SEQ):
            raise self.problem(event, f"unsupported tag {tag} (no tags are needed in a config)")
        if len(self.stack) >= self.limits.max_depth:
            raise self.problem(event, f"nested more than {self.limits.max_depth} levels deep")
        self.count(event, 1)
        line = event.start_mark.line + 1
        container = new_dict(self.file, line) if is_map else new_list(self.file, line)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, event.anchor, self.nodes - 1))

    def close(self, event: ev.Event) -> None:
        frame = self.stack.pop()
        value = frame.container
        if frame.merges is not None:
            assert isinstance(value, LineDict)
            self.merge(value, frame.merges, event)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (value, self.nodes - frame.start)
        self.add(value, event, value.line)

    def alias(self, event: ev.AliasEvent) -> None:
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise self.problem(event, f"more than {self.limits.max_aliases:,} aliases (*name)")
        name = event.anchor
        if name in self.open_anchors:
            raise self.problem(event, f"alias *{name} refers to a value that contains it")
        if name not in self.anchors:
            raise self.problem(event, f"alias *{name} has no anchor &{name} before it")
        value, size = self.anchors[name]
        self.count(event, size)
        self.add(value, event)

    def add(self, value: Any, event: ev.Event, line: int = 0) -> None:
        """Put a finished value into the container being built (or make it the document)."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container: Any = frame.container
        if not line:
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if not frame.is_map:
            container.append(value)
            container.item_lines.append(line)
            return
        key = frame.key
        if key is _NO_KEY:
            if isinstance(value, LineDict | LineList):
                raise self.problem(event, "a key must be a plain value, not a mapping or list")
            frame.key, frame.key_line = value, line
            return
        frame.key = _NO_KEY
        if key is MERGE:
            if frame.merges is None:
                frame.merges = []
            frame.merges.append((value, frame.key_line))
            return
        if not isinstance(key, str):
            key = str(key)
        assert isinstance(container, LineDict)
        if key in container:
            self.duplicate(key, frame.key_line)
        container[key] = value
        container.key_lines[key] = frame.key_line

    def duplicate(self, key: str, line: int) -> None:
        if len(self.problems) <= self.limits.max_errors:
            self.problems.append(YamlProblem(Mark(self.file, line), key, f"duplicate key {key!r}"))

    def merge(self, mapping: LineDict, merges: list[tuple[Any, int]], event: ev.Event) -> None:
        """YAML merge keys: the mapping's own keys win, then earlier merged mappings."""
        own = dict(mapping)
        own_lines = dict(mapping.key_lines)
        mapping.clear()
        for value, line in merges:
            sources = value if isinstance(value, LineList) else [value]
            for source in sources:
                if not isinstance(source, LineDict):
                    raise YamlError(
                        [YamlProblem(Mark(self.file, line), "<<", "<< merges mappings only")]
                    )
                for key, item in source.items():
                    if key not in mapping:
                        mapping[key] = item
                        mapping.key_lines[key] = source.key_lines[key]
        mapping.update(own)
        mapping.key_lines.update(own_lines)
        del event


# ---------------------------------------------------------------------------- entry points

# libyaml's parser is ~6x faster than PyYAML's pure-Python one; fall back where PyYAML was
# built without it (the events, and so the result, are the same).
_Parser: Any
try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _Parser = yaml.Loader


def parse_yaml(
    data: bytes, name: str, limits: Limits = DEFAULT_LIMITS, nodes: int = 0
) -> tuple[Any, int]:
    """One YAML document with positions, and the node count so far (``nodes`` + this file's).

    Raises :class:`YamlError` on a syntax error, a duplicate key or a limit.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _fail(name, line, f"not UTF-8 text (byte {exc.start})") from None
    builder = _Builder(name, limits, nodes)
    parser = _Parser(data)
    try:
        root = builder.build(parser)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise _fail(name, line, f"YAML syntax: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        line = data.count(b"\n", 0, max(exc.position, 0)) + 1
        raise _fail(name, line, f"YAML: {exc.reason} (character {exc.character!r})") from None
    except yaml.YAMLError as exc:
        raise _fail(name, 0, f"YAML: {exc}") from None
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()
    if builder.problems:
        raise YamlError(builder.problems)
    return root, builder.nodes


def load_yaml(path: Path, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Read and parse one file (see :func:`read_regular_file` and :func:`parse_yaml`)."""
    name = str(path)
    return parse_yaml(read_regular_file(name, limits.max_file_bytes), name, limits)[0]
