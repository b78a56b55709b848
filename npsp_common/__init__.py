"""What the monitor, the probes and the notifiers share: config building blocks (strict models,
durations, secrets), a probe's result and its reason as a code. It imports none of them, so the
leaves (``probes/``, ``notifiers/``) need nothing from ``monitor/``."""
