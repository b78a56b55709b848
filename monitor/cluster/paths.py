"""Path problems: a check failing from a minority of the voting vantages while the others see it
pass is not the agency's outage but a network path of ours (one gateway host's uplink, a route).
After ``cluster.path_notice_after`` the leader tells the operations team once — never the
agency — which vantages cannot reach what (:attr:`.votes.VoteBoard.minorities`)."""

from __future__ import annotations

import logging

from ..alerting.notices import Notice, NoticeSink
from ..config.cluster import ClusterSettings
from .votes import Minority, VoteBoard

log = logging.getLogger(__name__)

__all__ = ["path_notice", "tell_path_problems"]


def path_notice(check: str, minority: Minority) -> Notice:
    """The one notice of a path problem: ``check`` (``agency/system/check``) failing from the
    minority's vantages only."""
    who = ", ".join(minority.vantages)
    share = f"{len(minority.vantages)}/{minority.voting}"
    reason = minority.reason or "?"
    return Notice(
        # Every host dates the episode from the store (the vantages' last flip on the check):
        # the leader after a failover names the same one, and the outbox drops it.
        key=f"path/{check}/{who}/{int(minority.since)}",
        subject={
            "vi": f"Sự cố đường truyền: {check} không kết nối được chỉ từ {who}",
            "en": f"Path problem: {check} unreachable from {who} only",
        },
        text={
            "vi": (
                f"{check} không kết nối được chỉ từ điểm đo {who} ({share} điểm đo); các điểm"
                f" đo khác vẫn kết nối được. Đây là sự cố đường truyền của cổng kết nối, không"
                f" phải của cơ quan: cơ quan không được báo.\nLý do: {reason}"
            ),
            "en": (
                f"{check} is unreachable from vantage {who} only ({share} vantages); the other"
                f" vantages reach it. This is a network path problem of the gateway hosts, not"
                f" the agency's: the agency is not paged.\nReason: {reason}"
            ),
        },
        sms={
            "vi": f"NPSP: su co duong truyen, {check} chi mat ket noi tu {who}",
            "en": f"NPSP: path problem, {check} unreachable from {who} only",
        },
    )


async def tell_path_problems(
    votes: VoteBoard, settings: ClusterSettings, notices: NoticeSink, now: float
) -> int:
    """Queue the notice of every path problem older than ``path_notice_after`` not yet told
    (the leader calls this); how many were queued."""
    told = 0
    for check, minority in list(votes.minorities.items()):
        if minority.noticed or now - minority.since < settings.path_notice_after:
            continue
        try:
            told += await notices.send_notice(path_notice(check, minority), [("", "operations")])
        except Exception:
            log.exception("cannot queue the path notice of %s; retrying", check)
            continue
        minority.noticed = True
        log.warning(
            "path problem",
            extra={"check": check, "vantages": ",".join(minority.vantages)},
        )
    return told
