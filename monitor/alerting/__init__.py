"""The alert pipeline: route → mute → group → outbox → channels.

State changes come in from the engine; notifications go out through the durable outbox. Each
stage is a small module with one job; :mod:`.pipeline` wires them.
"""
