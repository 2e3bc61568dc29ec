"""A small in-process sweep with the experiment API: config, capture, runs, metrics, table, plot.

Run it by hand (``python examples/experiment_sweep.py``) or through the queue
(``expq submit --experiment toy --sweep lr=0.05,0.2 -- python examples/experiment_sweep.py``):
by hand it writes under ./expq-root (or $EXPQ_ROOT); in a job, into the job's run directory,
with the job's config winning over the defaults below.
"""
from __future__ import annotations

import math
import random

import numpy as np

import expq

exp = expq.Experiment("toy")
exp.add_config({"lr": 0.1, "steps": 50, "model": {"width": 16, "seed": 0}})


@exp.capture(prefixes=["lr", "steps", "model"])
def train(lr: float, steps: int, width: int, seed: int) -> dict[str, float]:
    """Fit a fake model: the loss decays at a speed set by ``lr`` (``width``/``seed`` come from model.*)."""
    rng = random.Random(seed)
    loss = 1.0
    for _ in range(steps):
        loss *= math.exp(-lr) * (1 + 0.02 * (rng.random() - 0.5))
        exp.log_scalars({"loss": loss, "acc": 1 - loss})
    exp.save(np.full(width, loss), "weights")
    exp.info("finished with loss %.4f", loss)
    return {"loss": loss}


if exp.job_id is None:  # by hand: sweep in-process, one nested run per value
    for lr in (0.02, 0.05, 0.1):
        exp.run(train, lr=lr)
    print(exp.runs_table(maximize=["acc"]))
    print("plot:", exp.plot(["loss", "acc"]))
else:  # in a queued job the queue runs the sweep: one job per value
    train()
exp.close()
