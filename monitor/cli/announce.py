"""The ``announce``, ``announcements`` and ``catalog`` commands.

``npsp-monitor announce -c FILE --agency ID --effective WHEN --fingerprint FP ...``
    store a change announcement (the running daemon picks it up within a second);
``npsp-monitor announcements -c FILE [--all] [--cancel ID] [--json]``
    list the announcements still to take effect (or all), or withdraw one;
``npsp-monitor catalog -c FILE``
    print the secure-server catalog as JSON.

Exit codes: 0 done; 1 the database cannot be used; 2 refused (the message says why); see
:mod:`monitor.cli.errors`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import replace
from typing import Any

from ..accounts import cli_actor
from ..audit import audit
from ..config import load_config
from ..registry import Registry
from ..rules.announcements import (
    Announcement,
    AnnouncementDesk,
    AnnouncementRejected,
    AnnouncementRequest,
    cancel,
    examine,
    load_all,
    request_from,
    save,
)
from ..rules.announcements.catalog import build_catalog
from ..rules.announcements.changewatch import ChangeWatch
from ..rules.desk import RulesContext
from ..store import Store
from ..workdays import WorkCalendar
from .common import Clock, WithConfig, fail, parse_moment, print_json, with_init, with_store
from .errors import guarded

__all__ = ["add_announce_commands", "cmd_announce"]


class _NoNotices:
    async def send_notice(self, notice: object, audience: object) -> int:
        del notice, audience
        return 0


def _request(args: argparse.Namespace) -> AnnouncementRequest:
    """The options as the same request an MQTT message or an API call makes, validated by the
    same model with the same messages (:func:`~monitor.rules.announcements.request_from`)."""
    changes: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "addresses": args.address,
        "fingerprint_sha256": args.fingerprint,
        "issuer": args.issuer,
        "text": args.text,
    }
    document = {
        "system": args.system,
        "effective_at": args.effective,
        "announced_at": args.announced,
        "changes": {k: v for k, v in changes.items() if v is not None},
        "ref": args.ref,
        "author": args.author,
    }
    return request_from({k: v for k, v in document.items() if v is not None}, args.agency)


def _announce(args: argparse.Namespace, clock: Clock) -> dict[str, Any]:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    registry = Registry.from_config(config)
    author = cli_actor(args.author)  # who announces from the command line
    # Judged by the same function as MQTT and the API (examine → judge_times): a paper notice
    # recorded later keeps its real --announced date.
    announcement = replace(
        examine(
            _request(args),
            args.agency,
            registry=registry,
            calendar=calendar,
            now=clock(),
            source="cli",
        ),
        author=author,
    )

    async def store_it(store: Store) -> tuple[Announcement, bool]:
        stored, new = await save(store, announcement)
        if new:
            await audit(
                store,
                ts=clock(),
                actor=author,
                action="announcement.create",
                target=str(stored.id),
                agency=stored.agency,
                detail={"compliant": stored.compliant, "working_days": stored.working_days},
                source="cli",
            )
        return stored, new

    stored, new = with_store(args, config, store_it)
    return {**stored.as_json(), "new": new, "rule_source": _rule_source(calendar)}


def _rule_source(calendar: WorkCalendar) -> str:
    return calendar.settings.rules.secure_server_change_notice.source


def cmd_announce(args: argparse.Namespace, clock: Clock = time.time) -> int:
    try:
        result = _announce(args, clock)
    except AnnouncementRejected as exc:
        return fail(f"announcement refused: {exc}")
    if args.json:
        print_json(result)
        return 0
    again = "" if result["new"] else " (already stored with this ref)"
    print(
        f"announcement #{result['id']}{again}: {result['agency']}/{result['system']} "
        f"announced {result['announced_at']}, effective {result['effective_at']}; notice "
        f"{result['working_days']} working days of {result['required']} required: "
        f"{_verdict(result)}"
    )
    return 0


def _verdict(result: dict[str, Any]) -> str:
    if result["recorded_in_effect"]:
        # Recorded after it took effect (a paper notice entered late): no late-notice alert.
        return (
            "compliant" if result["compliant"] else f"LATE ({result['rule_source']}), counted"
        ) + "; recorded after it took effect: in effect now, no late-notice alert"
    if result["compliant"]:
        return "compliant"
    return (
        "LATE — operations, the agency and its dependents will be alerted "
        f"({result['rule_source']})"
    )


def _announcements(args: argparse.Namespace) -> list[dict[str, Any]]:
    async def read(store: Store) -> list[dict[str, Any]]:
        if args.cancel is not None:
            return [(await cancel(store, args.cancel, time.time())).as_json()]
        now = time.time()
        return [
            a.as_json()
            for a in await load_all(store)
            if args.all or (a.cancelled_at is None and a.effective_at > now)
        ]

    return with_store(args, load_config(args.config), read)


def cmd_announcements(args: argparse.Namespace) -> int:
    rows = _announcements(args)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no announcements" + ("" if args.all else " to take effect"))
    now = time.time()
    for r in rows:
        # In effect once its time has come, whether or not a daemon has applied it yet.
        in_effect = (
            r["applied_at"] or dt.datetime.fromisoformat(r["effective_at"]).timestamp() <= now
        )
        state = "cancelled" if r["cancelled_at"] else ("in effect" if in_effect else "upcoming")
        late = "" if r["compliant"] else f"  LATE ({r['working_days']}/{r['required']} days)"
        if r["recorded_in_effect"]:
            late += "  recorded in effect"
        changes = "; ".join(f"{k}={v}" for k, v in r["changes"].items())
        print(
            f"#{r['id']:<4} {r['agency']}/{r['system']:<20} {r['effective_at']}  {state:<9}"
            f"{late}  {changes}"
        )
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    config = load_config(args.config)

    async def build(store: Store) -> dict[str, Any]:
        registry = Registry.from_config(config)
        ctx = RulesContext(store, WorkCalendar(config.calendar), _NoNotices(), lambda: registry)
        desk = AnnouncementDesk(ctx)
        await desk.refresh()
        now = time.time()
        registry = Registry.from_config(config, desk.overrides_at(now))
        watch = ChangeWatch(ctx, desk)
        await watch.load()
        return build_catalog(registry, desk, watch, now)

    print_json(with_store(args, config, build))
    return 0


def add_announce_commands(sub: Any, with_config: WithConfig) -> None:
    """Register the commands on the main parser's subparsers."""
    p = sub.add_parser(
        "announce",
        help="announce a change of a secure server's registered information",
        description="Store a change announcement; the notice is counted in working days and a "
        "late one is alerted by the running daemon.",
    )
    with_config(p)
    p.add_argument("--agency", required=True, help="agency id")
    p.add_argument("--system", help="system id (default: the agency's only secure server)")
    p.add_argument(
        "--effective", required=True, type=parse_moment, help="when it takes effect (ISO)"
    )
    p.add_argument(
        "--announced",
        type=parse_moment,
        help="when the notice was given (ISO; default: now): a paper notice recorded later "
        "keeps its real date, at most a year ago, not in the future (5 minutes of clock "
        "difference allowed); the notice is counted from it",
    )
    p.add_argument("--host", help="new host name or IP address")
    p.add_argument("--port", type=int, help="new port")
    p.add_argument("--address", action="append", help="new resolved address (repeat)")
    p.add_argument("--fingerprint", help="SHA-256 fingerprint of the new certificate")
    p.add_argument("--issuer", help="issuer (CA) of the new certificate")
    p.add_argument("--text", help="free-text description")
    p.add_argument("--ref", help="your own reference: the same ref is stored once")
    p.add_argument(
        "--author", help="who announces (recorded after cli:<your OS account>, which is checked)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    with_init(p)
    p.set_defaults(func=guarded(cmd_announce))

    p = sub.add_parser("announcements", help="list change announcements, or cancel one")
    with_config(p)
    p.add_argument("--all", action="store_true", help="include past and cancelled ones")
    p.add_argument("--cancel", type=int, metavar="ID", help="withdraw an upcoming announcement")
    p.add_argument("--json", action="store_true", help="print JSON")
    with_init(p)
    p.set_defaults(func=guarded(cmd_announcements))

    p = sub.add_parser("catalog", help="print the secure-server catalog (JSON)")
    with_config(p)
    with_init(p)
    p.set_defaults(func=guarded(cmd_catalog))
