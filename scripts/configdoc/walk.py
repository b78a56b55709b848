"""The walk over the models: each model a section, each field a row; its meaning from the
field's ``description=``, :data:`.texts.DESCRIPTIONS` or the comment beside the field."""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from npsp_common.types import SecretSource

from .texts import DESCRIPTIONS, EXAMPLES
from .typetext import (
    default_text,
    flow,
    is_check_union,
    is_model,
    split_annotated,
    strip_none,
    type_text,
)


@dataclass
class Row:
    key: str  # as shown in the table
    lookup: str  # as in DESCRIPTIONS / EXAMPLES
    type: str
    default: str
    example: str
    description: str


@dataclass
class Section:
    title: str
    anchor: str
    model: str  # ``module.Class``, or "" for a section without one
    intro: str
    rows: list[Row] = field(default_factory=list)


def _slug(text: str) -> str:
    text = re.sub(r"[^a-z0-9 _-]", "", text.lower())
    return text.strip().replace(" ", "-")


@cache
def _field_comments(cls: type) -> dict[str, str]:
    """The comment beside each field of ``cls``, else the comment block right above it."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if not re.match(r"(noqa|type:|pragma)", text):
                comments[token.start[0]] = text
    lines = source.splitlines()
    found: dict[str, str] = {}
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    for item in node.body:
        if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
            continue
        end = item.end_lineno or item.lineno
        beside = [comments[n] for n in range(item.lineno, end + 1) if n in comments]
        above: list[str] = []
        line = item.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, comments.get(line, ""))
            line -= 1
        text = " ".join(beside or above).strip()
        if text:
            found[item.target.id] = text[0].upper() + text[1:] + ("" if text[-1] in ".)" else ".")
    return found


def _own_source(cls: type, name: str) -> type:
    """The class (``cls`` or a base) whose body defines field ``name``."""
    for klass in cls.__mro__:
        if name in getattr(klass, "__annotations__", {}):
            return klass
    return cls


class Builder:
    def __init__(self, examples: dict[str, Any]) -> None:
        self.examples = examples
        self.sections: list[Section] = []
        self.seen: dict[type, Section] = {}
        self.missing: list[str] = []

    # A model's fields become a section; its model-typed fields open sections of their own.
    def model_section(
        self,
        cls: type[BaseModel],
        title: str,
        prefix: str,
        lookup_prefix: str,
        *,
        skip: frozenset[str] = frozenset(),
        intro: str | None = None,
    ) -> Section:
        section = Section(
            title=title,
            anchor=_slug(title),
            model=f"{cls.__module__}.{cls.__qualname__}",
            intro=first_paragraph(cls) if intro is None else intro,
        )
        self.sections.append(section)
        self.seen.setdefault(cls, section)
        later: list[tuple[type[BaseModel], Row, str]] = []
        for name, info in cls.model_fields.items():
            if name in skip:
                continue
            key = info.alias or name
            tp = _with_metadata(info, cls, name)
            path = f"{prefix}{key}"
            lookup = f"{lookup_prefix}{key}"
            row = self.row(cls, name, info, tp, path, lookup)
            section.rows.append(row)
            target = _model_inside(tp)
            if target is not None and target is not SecretSource:
                row.example = ""  # the block's own keys show examples
                suffix = "[]" if _is_list(tp) else ".<name>" if _dict_value(tp) else ""
                later.append((target, row, suffix))
            elif is_check_union(_list_item(tp) or strip_none(split_annotated(tp)[0])):
                row.example = ""
                row.type += " (see [Checks](#checks))"
        direct = [target for target, _row, suffix in later if not suffix]
        for target, row, suffix in later:
            sub = self.seen.get(target)
            here = sub.title if sub is not None else "below"
            if sub is None:
                path = row.key.strip("`")
                if direct.count(target) > 1:  # calendar.rules.<rule>: one block, several keys
                    path = f"{prefix}<{target.__name__.lower()}>"
                # Blocks inside a check are the same for every kind: tls.*, json[].*
                relative = path.removeprefix(prefix) + suffix
                lookup = relative if lookup_prefix.startswith("check.") else path + suffix
                sub = self.model_section(
                    target, f"`{path}{suffix}`", f"{path}{suffix}.", f"{lookup}."
                )
            row.type += f" (see [{here}](#{sub.anchor}))"
        return section

    def row(
        self, cls: type[BaseModel], name: str, info: FieldInfo, tp: Any, path: str, lookup: str
    ) -> Row:
        description = info.description or DESCRIPTIONS.get(lookup)
        if not description:
            description = _field_comments(_own_source(cls, name)).get(name, "")
        if not description:
            self.missing.append(lookup)
        if lookup in self.examples:
            example = flow(self.examples[lookup])
        elif lookup in EXAMPLES:
            example = flow(EXAMPLES[lookup])
        elif info.examples:
            example = flow(info.examples[0])
        else:
            example = ""
        return Row(
            key=f"`{path}`",
            lookup=lookup,
            type=type_text(tp),
            default=default_text(info, tp),
            example=example,
            description=description,
        )


def _with_metadata(info: FieldInfo, cls: type | None = None, name: str = "") -> Any:
    tp = info.annotation
    if isinstance(tp, typing.ForwardRef | str) and cls is not None:
        # Not resolved yet where the model is defined (a name defined after the class).
        tp = typing.get_type_hints(_own_source(cls, name), include_extras=True)[name]
    return Annotated[(tp, *info.metadata)] if info.metadata else tp


def _list_item(tp: Any) -> Any:
    inner = strip_none(split_annotated(tp)[0])
    if typing.get_origin(inner) is list:
        return split_annotated(typing.get_args(inner)[0])[0]
    return None


def _is_list(tp: Any) -> bool:
    return _list_item(tp) is not None


def _dict_value(tp: Any) -> Any:
    """The value type of a mapping by name (``channels.webhook.endpoints.<name>``), or None."""
    inner = strip_none(split_annotated(tp)[0])
    if typing.get_origin(inner) is dict:
        return split_annotated(typing.get_args(inner)[1])[0]
    return None


def _model_inside(tp: Any) -> type[BaseModel] | None:
    """The model a field holds directly, as list items or as a mapping's values (not a union
    of several)."""
    inner = strip_none(split_annotated(tp)[0])
    item = _list_item(tp)
    if item is None:
        item = _dict_value(tp)
    candidate = item if item is not None else inner
    return candidate if is_model(candidate) else None


def first_paragraph(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0].replace("\n", " ").strip()
    return first.replace("``", "`")
