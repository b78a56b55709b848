"""Silences made through the API: :mod:`.store` (every statement on the ``silences`` table) and
:mod:`.desk` (:class:`SilenceDesk`, which mutes the alert pipeline from memory)."""

from .desk import SilenceDesk

__all__ = ["SilenceDesk"]
