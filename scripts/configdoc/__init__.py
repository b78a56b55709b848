"""The parts of scripts/config-reference.py: the texts written by hand (:mod:`.texts`), types and
values as a person reads them (:mod:`.typetext`), and the walk over the models (:mod:`.walk`)."""
