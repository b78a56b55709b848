"""The one small interface every probe kind implements.

A probe module exposes:

* ``Spec`` — a pydantic model (subclass of :class:`npsp_common.types.CheckCommon`) with
  ``kind: Literal["<name>"]`` and the kind's own fields;
* ``build(spec, env) -> Probe`` — prepares whatever can be prepared once per check (an SSL
  context, a parsed URL, a compiled regex) and returns the coroutine function the scheduler
  calls on every run.

``Probe(timeout)`` must return within ``timeout`` seconds (plus scheduling noise), read a bounded
amount of data, and never raise: every failure becomes a :class:`ProbeResult` with a reason.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import PrivateAttr

from npsp_common.types import CheckCommon, ProbeResult

from .addresspolicy import AddressPolicy
from .heartbeat_board import HeartbeatBoard
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
    # The wall clock (Unix seconds) probes judge ages by (``age <`` of an api check) and keep
    # cached tokens by; tests inject their own.
    clock: Callable[[], float] = time.time


class TargetSpec(CheckCommon):
    """A check that connects to a host of its own (tcp, tls, http).

    Not in the YAML: the registry (``monitor.registry``) hands an :class:`AddressPolicy` to a
    check whose host or port came from an announcement (``announced``: its target is checked,
    see :mod:`probes.addresspolicy`), and to an http check that follows redirects (a redirect to
    another host or port is checked). A check without a policy connects where it is told.
    """

    _address_policy: AddressPolicy | None = PrivateAttr(default=None)
    _announced: bool = PrivateAttr(default=False)

    @property
    def address_policy(self) -> AddressPolicy | None:
        return self._address_policy

    @property
    def announced(self) -> bool:
        """The target came from an announcement: the policy governs it, and its answers are
        not echoed in reasons."""
        return self._announced

    def guarded(self, policy: AddressPolicy, *, announced: bool) -> Self:
        """A copy of this spec under ``policy``."""
        copy = self.model_copy()
        copy._address_policy = policy
        copy._announced = announced
        return copy


@dataclass(frozen=True, slots=True)
class ProbeKind:
    """One row of the table in ``probes/__init__.py``: a kind's spec model and its builder."""

    spec: type[CheckCommon]
    build: Callable[[Any, ProbeEnv], Probe]
