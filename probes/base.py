"""The one small interface every probe kind implements.

A probe module exposes:

* ``Spec`` — a pydantic model (subclass of :class:`monitor.types.CheckCommon`) with
  ``kind: Literal["<name>"]`` and the kind's own fields;
* ``build(spec, env) -> Probe`` — prepares whatever can be prepared once per check (an SSL
  context, a parsed URL, a compiled regex) and returns the coroutine function the scheduler
  calls on every run.

``Probe(timeout)`` must return within ``timeout`` seconds (plus scheduling noise), read a bounded
amount of data, and never raise: every failure becomes a :class:`ProbeResult` with a reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.types import CheckCommon, ProbeResult

from .heartbeat import HeartbeatBoard
from .tlsopts import SSLContextCache

Probe = Callable[[float], Awaitable[ProbeResult]]
"""Run the check once; the argument is the total timeout in seconds."""


@dataclass(slots=True)
class ProbeEnv:
    """Shared, created-once resources handed to every ``build``.

    One ``ProbeEnv`` is created by the daemon (``monitor/app.py``) and passed down; probes keep
    no module-level state.
    """

    ssl_contexts: SSLContextCache = field(default_factory=SSLContextCache)
    max_body_bytes: int = 1 << 20
    user_agent: str = "npsp-monitor/0.1"
    # Where heartbeat receivers (monitor/heartbeats.py) note what the heartbeat probes read.
    heartbeats: HeartbeatBoard = field(default_factory=HeartbeatBoard)


@dataclass(frozen=True, slots=True)
class ProbeKind:
    """One row of the table in ``probes/__init__.py``: a kind's spec model and its builder."""

    spec: type[CheckCommon]
    build: Callable[[Any, ProbeEnv], Probe]
