"""Types and values as a person reads them: ``duration``, ``integer, 1 to 100``, ``[a, b]``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, BeforeValidator, TypeAdapter
from pydantic.fields import FieldInfo

from npsp_common.types import CheckCommon, SecretSource, format_duration, parse_duration

from .texts import PATTERN_NAMES

ROOT = Path(__file__).resolve().parent.parent.parent


def split_annotated(tp: Any) -> tuple[Any, list[Any]]:
    """The type inside ``Annotated[...]`` (nested too) and the metadata of all levels."""
    metadata: list[Any] = []
    while typing.get_origin(tp) is Annotated:
        tp, *more = typing.get_args(tp)
        for item in more:
            if isinstance(item, FieldInfo):
                metadata.extend(item.metadata)
                if item.discriminator is not None:
                    metadata.append(item)
            else:
                metadata.append(item)
    return tp, metadata


def _union_members(tp: Any) -> list[Any] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return list(typing.get_args(tp))
    return None


def strip_none(tp: Any) -> Any:
    """``X | None`` -> ``X`` (unset is shown as the default ``none``)."""
    members = _union_members(tp)
    if members is None or type(None) not in members:
        return tp
    rest = [m for m in members if m is not type(None)]
    return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007


def _is_duration(metadata: list[Any]) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func is parse_duration for m in metadata)


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def is_check_union(tp: Any) -> bool:
    members = _union_members(tp) or []
    return bool(members) and all(is_model(m) and issubclass(m, CheckCommon) for m in members)


def _constraints(metadata: list[Any], unit: str = "") -> str:
    parts = []
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    low_x = next((m.gt for m in metadata if isinstance(m, Gt)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    high_x = next((m.lt for m in metadata if isinstance(m, Lt)), None)

    def show(value: Any) -> str:
        if unit == "duration":
            return format_duration(float(value))
        return f"{value:,}" if isinstance(value, int) else str(value)

    if low is not None and high is not None:
        parts.append(f"{show(low)} to {show(high)}")
    else:
        if low is not None:
            parts.append(f"≥ {show(low)}")
        if low_x is not None:
            parts.append(f"> {show(low_x)}")
        if high is not None:
            parts.append(f"≤ {show(high)}")
        if high_x is not None:
            parts.append(f"< {show(high_x)}")
    return ", ".join(parts)


def _lengths(metadata: list[Any], what: str) -> str:
    low = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
    high = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    if low and high:
        return f"{low} to {high:,} {what}"
    if low:
        return f"at least {low} {what}" if low > 1 else "not empty"
    if high:
        return f"at most {high:,} {what}"
    return ""


def _pattern(metadata: list[Any]) -> str | None:
    for item in metadata:
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def type_text(tp: Any, metadata: list[Any] | None = None) -> str:
    """A type as a person reads it: ``duration``, ``integer, 1 to 100``, ``list of text``."""
    inner, more = split_annotated(tp)
    metadata = [*(metadata or []), *more]
    members = _union_members(inner)
    if members is not None and type(None) in members:
        return type_text(strip_none(inner), metadata)
    if _is_duration(metadata):
        limits = _constraints(metadata, "duration")
        return "duration" + (f", {limits}" if limits else "")
    if inner is SecretSource:
        return "secret"
    if members is not None:
        if is_check_union(inner):
            return "check"
        nets = {ipaddress.IPv4Network, ipaddress.IPv6Network}
        if set(members) == nets:
            return "network (CIDR)"
        return " or ".join(type_text(m) for m in members)
    if typing.get_origin(inner) is Literal:
        return " \\| ".join(f"`{v}`" for v in typing.get_args(inner))
    origin = typing.get_origin(inner)
    if origin is list:
        (item,) = typing.get_args(inner)
        lengths = _lengths(metadata, "items")
        text = f"list of {_plural(type_text(item))}"
        return text + (f" ({lengths})" if lengths else "")
    if origin is tuple:
        args = typing.get_args(inner)
        return "[" + ", ".join(type_text(a) for a in args) + "]"
    if origin is dict:
        key, value = typing.get_args(inner)
        return f"mapping: {type_text(key)} → {type_text(value)}"
    if is_model(inner):
        return "mapping"
    return _scalar_text(inner, metadata)


def _scalar_text(inner: Any, metadata: list[Any]) -> str:
    """:func:`type_text` of a type that holds no other: a number, text, a path, a date..."""
    if inner is bool:
        return "boolean"
    if inner is int:
        limits = _constraints(metadata)
        return "integer" + (f", {limits}" if limits else "")
    if inner is float:
        limits = _constraints(metadata)
        return "number" + (f", {limits}" if limits else "")
    if inner is str:
        pattern = _pattern(metadata)
        lengths = _lengths(metadata, "characters")
        if pattern is not None:
            name = PATTERN_NAMES.get(pattern, f"matching `{pattern}`")
            return f"text ({name})"
        return "text" + (f" ({lengths})" if lengths else "")
    if inner is Path:
        return "file path"
    if inner is dt.date:
        return "date (YYYY-MM-DD)"
    if inner is dt.time:
        return "time (HH:MM)"
    if inner is Any or inner is object or str(inner).endswith("JSONValue"):
        return "any YAML value"
    if inner is type(None):
        return "null"
    return getattr(inner, "__name__", str(inner))


def _plural(text: str) -> str:
    words = {
        "text": "text",
        "check": "checks",
        "mapping": "mappings",
        "integer": "integers",
        "number": "numbers",
        "network (CIDR)": "networks (CIDR)",
    }
    first, sep, rest = text.partition(" (")
    return words.get(first, first) + (sep + rest if sep else "")


# ---------------------------------------------------------------------------- values


def flow(value: Any) -> str:
    """A value as one line of YAML, in backticks."""
    if isinstance(value, str):
        text = value if value and _plain(value) else yaml.safe_dump(value, width=10**6).strip()
        text = text.removesuffix("\n...").strip()
    else:
        text = yaml.safe_dump(
            value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=10**6
        ).strip()
        text = text.removesuffix("...").strip()
    return "`" + text.replace("|", "\\|") + "`"


def _plain(text: str) -> bool:
    try:
        return yaml.safe_load(text) == text and "\n" not in text
    except yaml.YAMLError:
        return False


def default_text(info: FieldInfo, tp: Any) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    inner, metadata = split_annotated(tp)
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[(inner, *metadata, *info.metadata)] if (metadata or info.metadata) else inner
    )
    dumped = _tidy(adapter.dump_python(default, mode="json", by_alias=True, exclude_defaults=True))
    if is_model(strip_none(inner)) and dumped == {}:
        return "see below"
    if isinstance(dumped, list | dict) and len(flow(dumped)) > 90:
        return f"{len(dumped)} entries (`{_defining_file(info, default)}`)"
    if isinstance(dumped, list | dict) and not dumped:
        return "`[]`" if isinstance(dumped, list) else "`{}`"
    return flow(dumped)


def _tidy(value: Any) -> Any:
    """``2.0`` -> ``2``, ``"08:00:00"`` -> ``"08:00"``: values as a person writes them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\d\d:\d\d:00", value):
        return value[:5]
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


def _defining_file(info: FieldInfo, default: Any) -> str:
    del info
    first = default[0] if isinstance(default, list) and default else default
    module = sys.modules.get(type(first).__module__)
    path = Path(getattr(module, "__file__", "") or "")
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
