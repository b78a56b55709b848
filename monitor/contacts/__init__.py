"""An agency's people: the registry's (YAML) contacts and those the agency manages itself in
the database, merged into one directory the router reads (the registry wins), each tied to the
account the person logs in with (revoking it stops every message to them).

:mod:`.model` (a stored contact, a person), :mod:`.store` (the statements), :mod:`.directory`
(the merged view and the desk that keeps it current), :mod:`.actions` (create, edit, remove,
and what a revocation does). Who is told about what: :mod:`monitor.alerting.told`.
"""
