"""YAML loading that remembers where every value came from (file and line).

Config errors must name the file, line and field. PyYAML forgets positions once it builds plain
dicts, so mappings and sequences are built as :class:`LineDict` / :class:`LineList`, which carry
the file and the line of each key or item. They are ordinary ``dict``/``list`` subclasses, so
pydantic validates them as usual; :func:`locate` walks a pydantic error ``loc`` back to a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in a source file (1-based line)."""

    file: str
    line: int


class LineDict(dict[str, Any]):
    """A mapping that knows its own position and the position of each key."""

    mark: Mark
    key_marks: dict[str, Mark]


class LineList(list[Any]):
    """A sequence that knows its own position and each item's.

    ``origins`` holds, for each item, the index it had in its own file: lists merged from
    several files (``include:``) still report ``agencies[3]`` as the file shows it.
    """

    mark: Mark
    item_marks: list[Mark]
    origins: list[int]


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """A problem found while reading YAML (syntax, duplicate key)."""

    mark: Mark
    path: str
    message: str


# libyaml's parser is ~6x faster than PyYAML's pure-Python one (10,000 systems: ~1.5 s vs 9 s)
# and its nodes carry the same marks; fall back where PyYAML was built without it.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader building Line* containers and noting duplicate keys."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[YamlProblem] = []

    def _mark(self, node: Node) -> Mark:
        return Mark(self.filename, node.start_mark.line + 1)

    def construct_line_mapping(self, node: MappingNode) -> LineDict:
        self.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result = LineDict()
        result.mark = self._mark(node)
        result.key_marks = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                self.problems.append(
                    YamlProblem(self._mark(key_node), key, f"duplicate key {key!r}")
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = self._mark(key_node)
        return result

    def construct_line_sequence(self, node: SequenceNode) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.mark = self._mark(node)
        result.item_marks = [self._mark(child) for child in node.value]
        result.origins = list(range(len(node.value)))
        return result


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _Loader.construct_line_mapping,
)
_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
    _Loader.construct_line_sequence,
)


class YamlError(Exception):
    """The file could not be read or parsed; ``problems`` says where."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def load_yaml(path: Path, max_bytes: int = 64 << 20) -> Any:
    """Read one YAML document with positions; raise :class:`YamlError` on any problem."""
    name = str(path)
    try:
        if path.stat().st_size > max_bytes:
            raise YamlError([YamlProblem(Mark(name, 0), "", f"file larger than {max_bytes} bytes")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(
            [YamlProblem(Mark(name, 0), "", f"cannot read: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError as exc:
        raise YamlError(
            [YamlProblem(Mark(name, 0), "", f"not UTF-8 text (byte {exc.start})")]
        ) from None
    loader = _Loader(text, name)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        message = f"YAML syntax: {exc.problem or exc}"
        raise YamlError([YamlProblem(Mark(name, line), "", message)]) from None
    except yaml.YAMLError as exc:
        raise YamlError([YamlProblem(Mark(name, 0), "", f"YAML: {exc}")]) from None
    finally:
        if hasattr(loader, "dispose"):
            loader.dispose()
    if loader.problems:
        raise YamlError(loader.problems)
    return data


def locate(root: Any, loc: Sequence[int | str], fallback: Mark) -> tuple[Mark, str]:
    """Find the deepest known position along ``loc`` and render ``loc`` as a dotted path.

    Indices into merged lists are rendered as the index in their own file.
    """
    mark = getattr(root, "mark", fallback)
    node: Any = root
    parts: list[str] = []
    for step in loc:
        if isinstance(node, LineDict) and step not in node and node.get("kind") == step:
            continue  # a discriminated union's tag (the check kind), not a key
        if isinstance(node, LineDict) and isinstance(step, str):
            parts.append(step if not parts else f".{step}")
            mark = node.key_marks.get(step, mark)
            node = node.get(step)
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            parts.append(f"[{node.origins[step]}]")
            mark = node.item_marks[step]
            node = node[step]
        else:
            # pydantic adds tags (union member names) to loc; they are not positions
            if isinstance(step, int):
                parts.append(f"[{step}]")
            node = None
    return mark, "".join(parts)
