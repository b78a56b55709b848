"""Checks that span several objects of a validated config: unique ids, references to systems
and channels, dependency cycles, timeouts shorter than intervals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from npsp_common.types import CheckCommon

from ..yamlsource import LineDict, Mark, locate
from .issues import ConfigIssue
from .model import Config, Defaults

Issue = Callable[[Iterable[int | str], str], None]
"""Report a problem at a location of the config (``("agencies", 3, "id")``)."""


def cross_check(
    config: Config, raw: LineDict, fallback: Mark, base: Path, *, alone: bool = False
) -> list[ConfigIssue]:
    """Checks that span several objects: unique ids, references, cycles, timing.

    ``alone``: a registry file checked on its own, without the config that includes it: its
    contacts' channels and its references to agencies of other files are not judged.
    """
    del base
    issues: list[ConfigIssue] = []

    def issue(loc: Iterable[int | str], message: str) -> None:
        mark, dotted = locate(raw, list(loc), fallback)
        issues.append(ConfigIssue(mark.file, mark.line, dotted, message))

    dflt = config.defaults
    if dflt.timeout >= dflt.interval:
        issue(
            ("defaults", "timeout"),
            f"timeout ({dflt.timeout:g}s) must be shorter than the interval ({dflt.interval:g}s)",
        )
    seen_agencies, systems = _agencies(config, issue, alone=alone)
    for o, person in enumerate(config.alerting.operations):
        for problem in _unconfigured(config, person.channels):
            issue(("alerting", "operations", o, "channels"), problem)
        if (unknown := _unknown_endpoint(config, person.webhook)) is not None:
            issue(("alerting", "operations", o, "webhook"), unknown)
    if config.uplink is not None:
        issues_for_checks(config.uplink.checks, ("uplink",), config.defaults, issue)
    _dependencies(config, issue, seen_agencies, systems, alone=alone)
    return issues


def _agencies(
    config: Config, issue: Issue, *, alone: bool
) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Unique agency and system ids, contacts' addresses and channels, each system's checks;
    returns the index of each agency id and of each ``agency/system``."""
    seen_agencies: dict[str, int] = {}
    systems: dict[str, tuple[int, int]] = {}
    for a, agency in enumerate(config.agencies):
        if agency.id in seen_agencies:
            issue(("agencies", a, "id"), f"duplicate agency id {agency.id!r}")
        seen_agencies.setdefault(agency.id, a)
        for c, contact in enumerate(agency.contacts):
            for problem in contact.missing_addresses():
                issue(("agencies", a, "contacts", c, "channels"), problem)
            for problem in [] if alone else _unconfigured(config, contact.channels):
                issue(("agencies", a, "contacts", c, "channels"), problem)
            if not alone and (unknown := _unknown_endpoint(config, contact.webhook)) is not None:
                issue(("agencies", a, "contacts", c, "webhook"), unknown)
        for s, system in enumerate(agency.systems):
            key = f"{agency.id}/{system.id}"
            if key in systems:
                issue(
                    ("agencies", a, "systems", s, "id"),
                    f"duplicate system id {system.id!r} in agency {agency.id!r}",
                )
            systems.setdefault(key, (a, s))
            issues_for_checks(system.checks, ("agencies", a, "systems", s), config.defaults, issue)
    return seen_agencies, systems


def _dependencies(
    config: Config,
    issue: Issue,
    seen_agencies: dict[str, int],
    systems: dict[str, tuple[int, int]],
    *,
    alone: bool,
) -> None:
    """Every ``depends_on`` names a known system other than itself, and no cycle."""
    graph: dict[str, list[str]] = {}
    for a, agency in enumerate(config.agencies):
        for s, system in enumerate(agency.systems):
            key = f"{agency.id}/{system.id}"
            parents = graph.setdefault(key, [])
            for d, ref in enumerate(system.depends_on):
                target = ref if "/" in ref else f"{agency.id}/{ref}"
                if alone and target.split("/", 1)[0] not in seen_agencies:
                    continue  # an agency of another file: judged with the whole config
                if target not in systems:
                    issue(("agencies", a, "systems", s, "depends_on", d), f"unknown system {ref!r}")
                elif target == key:
                    issue(
                        ("agencies", a, "systems", s, "depends_on", d),
                        "a system cannot depend on itself",
                    )
                else:
                    parents.append(target)
    for cycle in _find_cycles(graph):
        a, s = systems[cycle[0]]
        issue(
            ("agencies", a, "systems", s, "depends_on"),
            "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
        )


def _unconfigured(config: Config, wanted: Iterable[str]) -> list[str]:
    """A channel asked for but not set up would drop alerts silently: refuse it at load."""
    return [
        f"channel {c} is not configured (add channels.{c})"
        for c in wanted
        if c in ("sms", "email", "webhook") and getattr(config.channels, c) is None
    ]


def _unknown_endpoint(config: Config, name: str | None) -> str | None:
    """A contact's ``webhook`` must name a configured receiver: its URL and keys are in the
    daemon config, and a name nobody configured would drop that contact's alerts."""
    if name is None:
        return None
    hooks = config.channels.webhook
    if hooks is None:
        return f"webhook {name!r} is not configured (add channels.webhook.endpoints.{name})"
    if name not in hooks.endpoints:
        known = ", ".join(sorted(hooks.endpoints))
        return f"unknown webhook endpoint {name!r} (channels.webhook.endpoints has: {known})"
    return None


def issues_for_checks(
    checks: list[CheckCommon], loc: tuple[int | str, ...], defaults: Defaults, issue: Any
) -> None:
    """Unique check ids within a system, and a timeout shorter than the interval."""
    seen: set[str] = set()
    for c, check in enumerate(checks):
        if check.id in seen:
            issue((*loc, "checks", c, "id"), f"duplicate check id {check.id!r}")
        seen.add(check.id)
        if check.interval is None and check.timeout is None:
            continue  # both from defaults: reported once, at defaults.timeout
        interval = check.interval or defaults.interval
        timeout = check.timeout or defaults.timeout
        if timeout >= interval:
            field = "timeout" if check.timeout is not None else "interval"
            issue(
                (*loc, "checks", c, field),
                f"timeout ({timeout:g}s) must be shorter than the interval ({interval:g}s)",
            )


def _find_cycles(graph: dict[str, list[str]]) -> Iterator[list[str]]:
    """Yield each dependency cycle once (iterative DFS; registries can be deep)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start, first_parents in graph.items():
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(first_parents))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour.get(child, BLACK) == GREY:
                yield path[path.index(child) :]
            elif colour.get(child) == WHITE:
                colour[child] = GREY
                stack.append((child, iter(graph[child])))
                path.append(child)
