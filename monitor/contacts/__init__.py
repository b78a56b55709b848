"""An agency's people: the registry's (YAML) contacts and those the agency manages itself in
the database, merged into one directory the router reads (the registry wins), each tied to the
account the person logs in with (revoking it stops every message to them).

:mod:`.model` (a stored contact, a person), :mod:`.store` (the statements), :mod:`.directory`
(the merged view and the desk that keeps it current), :mod:`.actions` (create, edit, remove,
and what a revocation does). Who is told about what: :mod:`monitor.alerting.told`.

Hygiene: :mod:`.flags`, :mod:`.hygiene_store` and :mod:`.hygiene` (an address that fails for
good is flagged by the outbox, skipped by the router, told once, cleared by an edit or a
button); :mod:`.confirm` and :mod:`.confirm_store` (a stored contact confirms its details once
a period, from a reminder's single-use link).
"""
