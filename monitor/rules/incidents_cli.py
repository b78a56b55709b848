"""Where ``monitor/cli.py`` and the tests look for the ``incident`` commands today; they live in
:mod:`monitor.rules.incidents.cli`, with the rest of the topic."""

from .incidents.cli import add_incident_commands

__all__ = ["add_incident_commands"]
