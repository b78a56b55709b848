"""What a value read from YAML knows of where it came from: the file and line of every mapping
key and sequence item (:class:`LineDict`, :class:`LineList`, built by
:mod:`monitor.yamlsource`), the problems found while reading, and :func:`locate`, which walks a
pydantic error ``loc`` back to a line.

The containers are ordinary ``dict``/``list`` subclasses, so pydantic validates them as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LineDict",
    "LineList",
    "Mark",
    "YamlError",
    "YamlProblem",
    "locate",
    "new_dict",
    "new_list",
]


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in a source file (1-based line; 0 = the file as a whole)."""

    file: str
    line: int


class LineDict(dict[str, Any]):
    """A mapping that knows its own position and the line of each key."""

    __slots__ = ("file", "key_lines", "line")
    file: str
    line: int
    key_lines: dict[str, int]

    @property
    def mark(self) -> Mark:
        return Mark(self.file, self.line)

    def key_mark(self, key: str) -> Mark | None:
        line = self.key_lines.get(key)
        return None if line is None else Mark(self.file, line)


class LineList(list[Any]):
    """A sequence that knows its own position and each item's line.

    Lists merged from several files (``include:``) keep each item's file in ``item_files``
    and, in ``origins``, the index it had in its own file, so ``agencies[3]`` is reported as
    the file shows it. Both are None for a list read from one file.
    """

    __slots__ = ("file", "item_files", "item_lines", "line", "origins")
    file: str
    line: int
    item_lines: list[int]
    item_files: list[str] | None
    origins: list[int] | None

    @property
    def mark(self) -> Mark:
        return Mark(self.file, self.line)

    def item_mark(self, index: int) -> Mark:
        files = self.item_files
        return Mark(self.file if files is None else files[index], self.item_lines[index])

    def origin(self, index: int) -> int:
        return index if self.origins is None else self.origins[index]

    def extend_from(self, other: LineList) -> None:
        """Append ``other``'s items, keeping each one's file, line and own index."""
        if self.item_files is None:
            self.item_files = [self.file] * len(self)
        if self.origins is None:
            self.origins = list(range(len(self)))
        self.extend(other)
        self.item_lines.extend(other.item_lines)
        self.item_files.extend(
            [other.file] * len(other) if other.item_files is None else other.item_files
        )
        self.origins.extend(range(len(other)) if other.origins is None else other.origins)


def new_dict(file: str, line: int) -> LineDict:
    result = LineDict()
    result.file, result.line, result.key_lines = file, line, {}
    return result


def new_list(file: str, line: int) -> LineList:
    result = LineList()
    result.file, result.line, result.item_lines = file, line, []
    result.item_files = result.origins = None
    return result


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """A problem found while reading YAML (syntax, duplicate key, a limit)."""

    mark: Mark
    path: str
    message: str


class YamlError(Exception):
    """The file could not be read or parsed; ``problems`` says where."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def locate(root: Any, loc: Sequence[int | str], fallback: Mark) -> tuple[Mark, str]:
    """Find the deepest known position along ``loc`` and render ``loc`` as a dotted path.

    Indices into merged lists are rendered as the index in their own file.
    """
    mark = root.mark if isinstance(root, LineDict | LineList) else fallback
    node: Any = root
    parts: list[str] = []
    for step in loc:
        if isinstance(node, LineDict) and step not in node and node.get("kind") == step:
            continue  # a discriminated union's tag (the check kind), not a key
        if isinstance(node, LineDict) and isinstance(step, str):
            parts.append(step if not parts else f".{step}")
            mark = node.key_mark(step) or mark
            node = node.get(step)
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            parts.append(f"[{node.origin(step)}]")
            mark = node.item_mark(step)
            node = node[step]
        else:
            # pydantic adds tags (union member names) to loc; they are not positions
            if isinstance(step, int):
                parts.append(f"[{step}]")
            node = None
    return mark, "".join(parts)
