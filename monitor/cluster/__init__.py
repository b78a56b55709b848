"""Several gateway hosts on one PostgreSQL: leadership (:mod:`.lease`) and the vantages' votes
(:mod:`.votes`). A single host on SQLite uses none of it: it is its own leader and only
vantage."""
