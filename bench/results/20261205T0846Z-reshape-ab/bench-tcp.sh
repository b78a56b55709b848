#!/bin/bash
set -u
for round in 3 4 5; do
  for tree in /work/main /tmp/bench-base; do
    (cd $tree && REPS=1 DAEMON="tcp" BB= OUT=/tmp/bench-ab/$(basename $tree)-$round timeout 600 bash bench/run.sh > /tmp/bench-ab/$(basename $tree)-$round.log 2>&1; echo "$round $tree rc=$?")
  done
done
