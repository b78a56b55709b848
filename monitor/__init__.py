"""npsp-monitor: the connectivity monitor of Vietnam's National Public Service Portal."""

__version__ = "0.1.0"
