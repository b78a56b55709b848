#!/bin/bash
# A/B: the tree before the reshaping (c9044a9) and after (HEAD), interleaved, same machine, same settings.
set -u
for round in 1 2; do
  for tree in /tmp/bench-base /work/main; do
    echo "=== round $round: $tree ($(git -C $tree rev-parse --short HEAD)) $(date -u +%T)"
    (cd $tree && REPS=1 DAEMON="tcp mixed" BB= OUT=/tmp/bench-ab/$(basename $tree)-$round timeout 900 bash bench/run.sh > /tmp/bench-ab/$(basename $tree)-$round.log 2>&1; echo "rc=$?")
  done
done
