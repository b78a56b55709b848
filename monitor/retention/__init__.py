"""Retention: how long the state database keeps each kind of row (the ``retention:`` section,
:mod:`monitor.config.retention`). :mod:`.store` holds every statement of the pruning pass (and
what is never pruned), :mod:`.desk` the pass itself (:class:`RetentionDesk`, on the leader,
small batches), which stores each month's report figures (:mod:`monitor.reports.monthly`)
before that month's state changes go."""

from .desk import KINDS, PassResult, RetentionDesk

__all__ = ["KINDS", "PassResult", "RetentionDesk"]
