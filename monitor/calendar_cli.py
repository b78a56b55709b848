"""Where :mod:`monitor.rules.incidents.cli` looks for ``parse_moment`` today; the argument types
live in :mod:`monitor.cli.common`, the ``calendar`` commands in :mod:`monitor.cli.calendar`."""

from .cli.common import parse_moment

__all__ = ["parse_moment"]
