#!/bin/bash
# The /metrics scrape of the running mixed daemon (10,000 checks), A = fc9d53d (the rules loop's
# one shared read a second) against B = 3d58209 (a transaction per watching desk a second),
# interleaved, two rounds. B runs from a worktree put first on PYTHONPATH (the daemon is the
# venv's console script, so PYTHONPATH wins over the editable install):
#   git worktree add /work/wt-desk 3d58209
# Run from the repository's root, on a quiet machine; the *-summary.md and *-daemon-mixed.json
# files here are bench/run.sh's summary.md and daemon-mixed-r1.json of each run.
set -e
OUTS=${OUTS:-/tmp/ab}
for round in 1 2; do
  OUT=$OUTS/A$round DAEMON=mixed BB= REPS=1 bash bench/run.sh
  PYTHONPATH=/work/wt-desk OUT=$OUTS/B$round DAEMON=mixed BB= REPS=1 bash bench/run.sh
done
