"""The crash storm: workers SIGKILLed every 100 ms while they run a queue; every job ends done exactly
once, none is left running, and no two executions of one job are ever alive at the same time.

The suite runs 300 jobs on 4 workers; ``EXPQ_STORM_JOBS=1500 pytest tests/worker/test_crash_storm.py``
is the longer version, on demand.
"""
from __future__ import annotations

import os
import random
import signal
import time

from expq.queue.attempts import read_attempts
from expq.queue.states import State

JOBS = int(os.environ.get("EXPQ_STORM_JOBS", "300"))
WORKERS = 4
KILL_EVERY = 0.1

# Each execution leaves a marker named by its pid, holding its start time, while it runs, and reports
# any other live execution of the same job it finds: a killed earlier attempt that is dead, or a zombie
# not yet reaped, does not count, nor does a process that got its pid later (the start time differs).
JOB = r'''
d="$1"; id="$EXPQ_JOB_ID"
stat_of() {{ read -r line < "/proc/$1/stat" || return 1; set -- $line; echo "$3 ${{22}}"; }}
set -- $(stat_of $$); echo "$2" > "$d/alive/$id.$$"
for f in "$d/alive/$id".*; do
  p="${{f##*.}}"
  [ "$p" = "$$" ] && continue
  now=$(stat_of "$p" 2>/dev/null) || continue
  read -r born < "$f" || continue
  set -- $now
  if [ "$1" != Z ] && [ "$2" = "$born" ]; then echo "$id $p $$ $1" >> "$d/double"; fi
done
sleep 0.05
rm -f "$d/alive/$id.$$"
'''


def test_every_job_ends_done_exactly_once_under_sigkill_storm(cluster, wait_until):
    marks = cluster.tmp / "marks"
    (marks / "alive").mkdir(parents=True)
    cluster.submit("--retries", "1000", "--sweep", f"i=range({JOBS})", "--", "sh", "-c", JOB, "job", str(marks))
    options = ("--gpus", "none", "--slots", "2", "--lease-timeout", "5")
    live = [cluster.worker(*options) for _ in range(WORKERS)]
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + 600
    queue = cluster.queue
    while queue.counts()[State.DONE] < JOBS * 2 // 3 and time.monotonic() < deadline:
        time.sleep(KILL_EVERY)
        victim = live.pop(rng.randrange(len(live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        live.append(cluster.worker(*options))
    wait_until(lambda: queue.counts()[State.DONE] == JOBS, timeout=300,
               message=lambda: f"{queue.counts()} after {kills} kills")
    for proc in live:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert kills > 10
    counts = queue.counts()
    assert counts[State.RUNNING] == 0 and counts[State.PENDING] == 0 and counts[State.FAILED] == 0
    assert not (marks / "double").exists(), (marks / "double").read_text()
    for job_id in queue.list_ids(State.DONE):
        outcomes = [a.outcome.value for a in read_attempts(queue.paths.run(queue.get(job_id)[1].run_dir))]
        assert outcomes.count("done") == 1, (job_id, outcomes)
