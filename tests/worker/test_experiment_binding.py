"""The experiment API inside a job run by a real worker writes into that job's run directory."""
from __future__ import annotations

import sys

import numpy as np

import expq

SCRIPT = """
import expq
exp = expq.Experiment("ignored-inside-a-job")

@exp.capture
def main(lr, layers=1):
    exp.log_scalar("loss", lr * 2)
    exp.log_scalar("loss", lr)
    exp.save([lr, layers], "hyper")
    exp.save(b"blob", "raw")

with exp:
    main()
"""


def test_save_and_log_scalar_of_a_queued_job_land_in_its_run_dir(cluster):
    script = cluster.tmp / "job.py"
    script.write_text(SCRIPT)
    ids = cluster.submit("--experiment", "bound", "--sweep", "lr=0.5,0.25", "--set", "layers=3",
                         "--", sys.executable, str(script))
    cluster.drain("--gpus", "none", "--slots", "2")
    for job_id, lr in zip(ids, (0.5, 0.25)):
        run_dir = cluster.run_dir(job_id)
        assert cluster.state(job_id) == "done", (run_dir / "stderr.log").read_text()
        run = expq.open(run_dir)
        assert run.load("hyper") == [lr, 3] and run.load("raw") == b"blob"
        loss = run.load_scalar("loss")
        assert list(loss["step"]) == [0, 1] and np.allclose(loss["value"], [lr * 2, lr])
        assert run.state == "done"
    table = expq.open(cluster.root / "experiments" / "bound").table()
    assert sorted(table.column("config.lr")) == [0.25, 0.5]
