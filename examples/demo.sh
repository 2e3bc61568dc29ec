#!/usr/bin/env bash
# The README's main job: a real sweep of examples/train.py through the queue, run by one worker with
# two slots, ending in the status table and each run's final metric. Each run of the demo is a new
# experiment in the same root, so nothing from an earlier run is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export EXPQ_ROOT="${EXPQ_ROOT:-$PWD/expq-root}"
experiment="demo-$(date +%Y%m%d-%H%M%S)"

echo "== submitting a sweep of 4 configs to $EXPQ_ROOT (experiment $experiment)"
expq submit --experiment "$experiment" --sweep lr=0.02,0.1 --sweep hidden=8,32 --set steps=300 \
    -- python examples/train.py
echo "== one worker, two slots, until the queue is drained"
expq worker --gpus none --slots 2 --drain
echo "== status"
expq status --experiment "$experiment" --all
echo "== final metric of each run"
python examples/summary.py "$EXPQ_ROOT/experiments/$experiment"
echo "== to compare these runs in the browser (runs table, charts, group by lr), run:"
echo "expq ui --root '$EXPQ_ROOT'"
echo "   and open the URL it prints, then the experiment $experiment (http://127.0.0.1:8765/experiments/$experiment)"
