"""Reasons in the reader's language: :func:`say` renders any :class:`~npsp_common.types.Why` (a
probe's, from :data:`probes.reasons.CATALOGUE`, or a system's, from :data:`SYSTEM`) in
Vietnamese or English, and falls back to the stored English text for a reason it cannot render
(an older row without a code, a code from a newer version): never an exception.

System reasons are built by the state machine from its checks' reasons::

    Why("system.checks", {"checks": (Why("check", {"id": "tcp", "why": <probe reason>}), ...)})

renders "check tcp: connect: refused" / "kiểm tra tcp: không kết nối được: bị từ chối".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from npsp_common.types import Why
from probes.reasons import CATALOGUE, duration_words, render

__all__ = ["SYSTEM", "TEMPLATES", "duration", "say"]

# fmt: off
SYSTEM: dict[str, tuple[str, str]] = {
    "text": ("{text}", "{text}"),  # free text we have no code for (shown as it is)
    "check": ("check {id}: {why:why}", "kiểm tra {id}: {why:why}"),
    "failing": ("failing", "không đạt"),
    "system.ok": ("all checks pass", "mọi kiểm tra đều đạt"),
    "system.checks": ("{checks:whys}", "{checks:whys}"),
    "system.degraded": ("{checks:whys}", "{checks:whys}"),
    "system.parent_down": ("{parent} is down; {why:why}", "{parent} đang mất kết nối; {why:why}"),
    "system.flapping": (
        "{count:n} state changes within {window:dur}; last: {last:why}",
        "{count:n} lần đổi trạng thái trong {window:dur}; lần gần nhất: {last:why}",
    ),
    "system.settled": ("settled: {why:why}", "đã ổn định: {why:why}"),
    # system.maintenance: one of these four, by which of its parameters are given
    "system.maintenance": (
        "in an announced maintenance window", "đang bảo trì theo thông báo"
    ),
    "system.maintenance.until": (
        "in an announced maintenance window until {until:time}",
        "đang bảo trì theo thông báo đến {until:time}",
    ),
    "system.maintenance.announced": (
        "in an announced maintenance window (announcement {announcement})",
        "đang bảo trì theo thông báo (thông báo {announcement})",
    ),
    "system.maintenance.until_announced": (
        "in an announced maintenance window until {until:time} (announcement {announcement})",
        "đang bảo trì theo thông báo đến {until:time} (thông báo {announcement})",
    ),
    "system.awaiting": (
        "maintenance window over; waiting for a verdict",
        "hết thời gian bảo trì; đang chờ kết quả kiểm tra",
    ),
    # several gateway hosts: how many of the voting vantages see it (monitor.cluster.votes)
    "cluster.seen": (
        "{why:why} (seen from {count:n}/{voting:n} vantages)",
        "{why:why} (thấy từ {count:n}/{voting:n} điểm đo)",
    ),
    "cluster.alone": (
        "{why:why} (seen from {vantage} only: the only vantage voting)",
        "{why:why} (chỉ thấy từ {vantage}: điểm đo duy nhất đang hoạt động)",
    ),
    "cluster.path": (
        "{check} unreachable from {vantages} only ({count:n}/{voting:n} vantages); the others"
        " reach it: a network path problem, not the agency's ({why:why})",
        "{check} không kết nối được chỉ từ {vantages} ({count:n}/{voting:n} điểm đo); các điểm"
        " đo khác vẫn kết nối được: sự cố đường truyền, không phải của cơ quan ({why:why})",
    ),
    "gateway.cut": (
        "gateway cut off ({canaries:whys})", "cổng kết nối mất đường truyền ({canaries:whys})"
    ),
    "gateway.restored": (
        "gateway uplink restored", "đường truyền của cổng kết nối đã được khôi phục"
    ),
}
# fmt: on

TEMPLATES: dict[str, tuple[str, str]] = {**CATALOGUE, **SYSTEM}
"""Every code :func:`say` knows: the probes' and the systems'."""


def _maintenance(params: Mapping[str, Any]) -> str:
    until = params.get("until") is not None
    announced = params.get("announcement") is not None
    suffix = {
        (True, True): ".until_announced",
        (True, False): ".until",
        (False, True): ".announced",
    }.get((until, announced), "")
    return "system.maintenance" + suffix


# Codes whose wording depends on which optional parameters are given.
_VARIANTS: dict[str, Callable[[Mapping[str, Any]], str]] = {"system.maintenance": _maintenance}


def say(why: Why | None, lang: str, fallback: str) -> str:
    """``why`` in ``lang`` (``vi``; anything else is English), or ``fallback`` (the stored
    English text) when there is no code or it cannot be rendered."""
    if why is None:
        return fallback
    try:
        return render(why, lang, TEMPLATES, variant=_variant)
    except Exception:  # noqa: BLE001 - a stored reason from anywhere: the fallback says it
        return fallback


def _variant(why: Why) -> str:
    choose = _VARIANTS.get(why.code)
    return why.code if choose is None else choose(why.params)


def duration(seconds: float, lang: str) -> str:
    """How long, as words: ``32 phút`` / ``32 min``, ``2 giờ 5 phút`` / ``2 h 5 min``."""
    return duration_words(seconds, lang)
