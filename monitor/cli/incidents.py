"""The ``incident`` subcommands of the command line.

``npsp-monitor incident open -c FILE --agency ID [--system ID] --summary TEXT [--received TIME]
[--complex --expected-completion TIME] [--json]``
``npsp-monitor incident complex -c FILE ID --expected-completion TIME --by NAME``
``npsp-monitor incident ack -c FILE ID --by NAME``
``npsp-monitor incident resolve -c FILE ID --by NAME [--resolution TEXT]``
``npsp-monitor incident list -c FILE [--all] [--json]``

They write the daemon's database directly; the running daemon notices within a second (SQLite's
``data_version``), sends the SLA reminders and stops escalating an acknowledged outage.
A support request's SLA clock (working hours) counts from when it was received (``--received``,
default now); an outage has no due time: the list shows how long it has lasted and the last
step of the escalation ladder taken.

Exit codes: 0 done; 1 the database cannot be used (or is not there: ``--init`` creates it);
2 bad input (unknown incident or agency, already resolved…) or an invalid config, with a
one-line message on stderr (:mod:`monitor.cli.errors`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from typing import Any

from ..audit import audited
from ..config import load_config
from ..registry import Registry
from ..rules.incidents import (
    NO_DUE,
    OUTAGE,
    Incident,
    IncidentError,
    acknowledge,
    list_incidents,
    mark_complex,
    open_incident,
    resolve,
)
from ..workdays import WorkCalendar
from .common import (
    Clock,
    WithConfig,
    parse_moment,
    print_json,
    print_table,
    with_init,
    with_store,
)
from .errors import guarded

__all__ = ["add_incident_commands"]


def _moment(calendar: WorkCalendar, ts: float | None) -> str | None:
    if ts is None or ts == NO_DUE:
        return None
    return dt.datetime.fromtimestamp(ts, calendar.tz).isoformat(timespec="minutes")


def _epoch(calendar: WorkCalendar, moment: dt.datetime | None) -> float | None:
    """A moment from the command line (local time of the calendar without an offset)."""
    if moment is None:
        return None
    try:
        return calendar.local(moment).timestamp()
    except (OverflowError, ValueError):
        raise IncidentError(f"date out of range: {moment.isoformat()}") from None


def _remaining(calendar: WorkCalendar, incident: Incident, now: float) -> float | None:
    """Working hours left until the due time (negative when overdue); None once resolved,
    and for an outage (no due time)."""
    if not incident.open or incident.due_at == NO_DUE:
        return None
    try:
        if now <= incident.due_at:
            return calendar.working_hours_between(now, incident.due_at, incident.agency)
        return -calendar.working_hours_between(incident.due_at, now, incident.agency)
    except ValueError:
        return None


def _late(incident: Incident, now: float) -> bool:
    end = incident.resolved_at if incident.resolved_at is not None else now
    return incident.breached_at is not None or end > incident.due_at


def _lasted(incident: Incident, now: float) -> float | None:
    """An outage: wall-clock seconds since it began, until now or its resolution."""
    if incident.source != OUTAGE:
        return None
    end = incident.resolved_at if incident.resolved_at is not None else now
    return max(0.0, end - incident.opened_at)


def _as_json(calendar: WorkCalendar, incident: Incident, now: float) -> dict[str, Any]:
    left = _remaining(calendar, incident, now)
    lasted = _lasted(incident, now)
    return {
        **incident.as_dict(),
        "due_at": None if incident.due_at == NO_DUE else incident.due_at,
        "opened": _moment(calendar, incident.opened_at),
        "received": _moment(calendar, incident.received_at),
        "due": _moment(calendar, incident.due_at),
        "expected": _moment(calendar, incident.expected_completion),
        "acknowledged": _moment(calendar, incident.acknowledged_at),
        "resolved": _moment(calendar, incident.resolved_at),
        "escalated": _moment(calendar, incident.escalated_at),
        "remaining_working_hours": None if left is None else round(left, 2),
        "lasted_seconds": None if lasted is None else round(lasted),
        "late": _late(incident, now),
    }


def _status(incident: Incident) -> str:
    if incident.resolved_at is not None:
        status = f"resolved by {incident.resolved_by}"
    elif incident.acknowledged_at is not None:
        status = f"acknowledged by {incident.acknowledged_by}"
    else:
        status = "open"
    if incident.complex:
        status += ", complex"
    if incident.escalated_to:
        status += f", escalated to {incident.escalated_to}"
    return status


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _clock_text(incident: Incident, left: float | None, lasted: float | None) -> str:
    """A request: working hours left (or over); an outage: how long it has lasted."""
    if lasted is not None:
        return f"down {_duration(lasted)}" if incident.open else _duration(lasted)
    if left is None:
        return "-"
    return f"{left:.1f}h" if left >= 0 else f"{-left:.1f}h over"


# ----- the commands -----------------------------------------------------------------------------


def _open(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    registry = Registry.from_config(config)
    now = clock()
    received = _epoch(calendar, args.received)
    expected = _epoch(calendar, args.expected_completion)
    incident = with_store(
        args,
        config,
        lambda store: open_incident(
            store,
            registry,
            calendar,
            agency=args.agency,
            system=args.system,
            summary=args.summary,
            now=now,
            received_at=received,
            is_complex=args.complex,
            expected_completion=expected,
        ),
    )
    if args.json:
        print_json(_as_json(calendar, incident, now))
        return 0
    rule = config.calendar.rules.incident_sla
    print(f"opened {incident.id} for {incident.key}: {incident.summary}")
    if incident.received != incident.opened_at:
        print(f"received {_moment(calendar, incident.received)}")
    due = _moment(calendar, incident.due_at)
    if incident.complex:
        print(f"due    {due} (complex: the published expected completion time)")
    else:
        print(f"due    {due} ({rule.value} working hours, {rule.source})")
    return 0


def _complex(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    expected = _epoch(calendar, args.expected_completion)
    assert expected is not None  # a required option
    incident = with_store(
        args,
        config,
        lambda store: audited(
            store,
            mark_complex(store, calendar, args.id, expected),
            actor=f"cli:{args.by}",
            action="incident.complex",
            target=lambda i: i.id,
            agency=lambda i: i.agency,
        ),
    )
    print(
        f"{incident.id} is complex; expected completion (its due time) "
        f"{_moment(calendar, incident.expected_completion)}"
    )
    return 0


def _ack(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    now = clock()
    incident = with_store(
        args,
        config,
        lambda store: audited(
            store,
            acknowledge(store, args.id, args.by, now),
            actor=f"cli:{args.by}",
            action="incident.ack",
            target=lambda i: i.id,
            agency=lambda i: i.agency,
        ),
    )
    at = _moment(WorkCalendar(config.calendar), incident.acknowledged_at)
    print(f"{incident.id} acknowledged by {incident.acknowledged_by} at {at}")
    return 0


def _resolve(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    now = clock()
    incident = with_store(
        args,
        config,
        lambda store: audited(
            store,
            resolve(store, args.id, args.by, args.resolution, now),
            actor=f"cli:{args.by}",
            action="incident.resolve",
            target=lambda i: i.id,
            agency=lambda i: i.agency,
        ),
    )
    calendar = WorkCalendar(config.calendar)
    late = " (after its due time)" if _late(incident, now) else ""
    print(
        f"{incident.id} resolved by {incident.resolved_by} at "
        f"{_moment(calendar, incident.resolved_at)}{late}: {incident.resolution}"
    )
    return 0


def _list(args: argparse.Namespace, clock: Clock) -> int:
    config = load_config(args.config)
    calendar = WorkCalendar(config.calendar)
    now = clock()
    incidents = with_store(
        args,
        config,
        lambda store: list_incidents(store, open_only=not args.all),
    )
    if args.json:
        print_json([_as_json(calendar, i, now) for i in incidents])
        return 0
    if not incidents:
        print("no open incidents" if not args.all else "no incidents")
        return 0
    table = [("ID", "CONCERNS", "SINCE", "DUE", "CLOCK", "STATUS", "SUMMARY")]
    for i in incidents:
        status = _status(i) + (", LATE" if _late(i, now) else "")
        table.append(
            (
                i.id,
                i.key,
                _moment(calendar, i.received) or "-",
                _moment(calendar, i.due_at) or "-",
                _clock_text(i, _remaining(calendar, i, now), _lasted(i, now)),
                status,
                i.summary,
            )
        )
    print_table(table)
    return 0


def _add_open(
    inc_sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
    clock: Clock,
) -> None:
    p = inc_sub.add_parser(
        "open",
        help="open a support request (its SLA clock starts when it was received)",
    )
    with_config(p)
    p.add_argument("--agency", required=True, help="the agency id")
    p.add_argument("--system", default=None, help="the system id, if one system is concerned")
    p.add_argument("--summary", required=True, help="what is asked or broken")
    p.add_argument(
        "--received",
        type=parse_moment,
        default=None,
        help="when the request was received (ISO; default: now; not in the future)",
    )
    p.add_argument(
        "--complex",
        action="store_true",
        help="a complex request: give the expected completion time published for it",
    )
    p.add_argument(
        "--expected-completion",
        type=parse_moment,
        default=None,
        help="a complex request's published expected completion time (ISO); its due time",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _open(args, clock)))


def add_incident_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: WithConfig,
    *,
    clock: Clock = time.time,
) -> None:
    """Register ``incident open|ack|resolve|list`` on ``sub``.

    ``with_config(parser)`` adds the ``-c/--config`` option; ``clock`` is for tests.
    """
    inc = sub.add_parser("incident", help="incidents and their SLA clock (support requests)")
    inc_sub = inc.add_subparsers(dest="incident_command", required=True, metavar="SUBCOMMAND")

    _add_open(inc_sub, with_config, clock)

    p = inc_sub.add_parser(
        "complex",
        help="mark a support request complex, with its expected completion time",
    )
    with_config(p)
    p.add_argument("id", metavar="ID", help="request id, e.g. req-3")
    p.add_argument(
        "--expected-completion",
        type=parse_moment,
        required=True,
        help="the expected completion time published for it (ISO); its new due time",
    )
    p.add_argument("--by", required=True, help="who decided it")
    with_init(p)
    p.set_defaults(func=guarded(_complex))

    p = inc_sub.add_parser("ack", help="take charge of an incident (stops its escalation)")
    with_config(p)
    p.add_argument("id", metavar="ID", help="incident id, e.g. req-3 or ha-noi/portal@1796004000")
    p.add_argument("--by", required=True, help="who takes charge")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _ack(args, clock)))

    p = inc_sub.add_parser("resolve", help="close an incident (stops its SLA clock)")
    with_config(p)
    p.add_argument("id", metavar="ID", help="incident id")
    p.add_argument("--by", required=True, help="who resolved it")
    p.add_argument("--resolution", default="resolved", help="what was done (default: resolved)")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _resolve(args, clock)))

    p = inc_sub.add_parser(
        "list",
        help="open incidents: a request's due time and working hours left, how long an outage"
        " has lasted and how far it escalated",
    )
    with_config(p)
    p.add_argument("--all", action="store_true", help="resolved incidents too")
    p.add_argument("--json", action="store_true", help="print JSON")
    with_init(p)
    p.set_defaults(func=guarded(lambda args: _list(args, clock)))
