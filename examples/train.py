"""A small training script: a two-layer network fit to synthetic data, numpy only.

The same script runs by hand (``python examples/train.py``) and through the queue
(``expq submit --sweep lr=0.02,0.1 -- python examples/train.py``): inside a job, ``expq.Experiment``
binds to the job's run directory and ``capture`` fills the parameters from the job's config.
"""
from __future__ import annotations

import numpy as np

import expq

exp = expq.Experiment("demo")


@exp.capture
def train(lr: float = 0.05, hidden: int = 16, steps: int = 300, batch: int = 64, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4096, 8))
    y = np.tanh(x @ rng.normal(size=(8, 1))) + 0.05 * rng.normal(size=(4096, 1))
    x_train, y_train, x_val, y_val = x[:3072], y[:3072], x[3072:], y[3072:]
    w1 = rng.normal(scale=8 ** -0.5, size=(8, hidden))
    w2 = rng.normal(scale=hidden ** -0.5, size=(hidden, 1))
    for step in range(steps):
        rows = rng.integers(0, len(x_train), batch)
        xb, yb = x_train[rows], y_train[rows]
        h = np.tanh(xb @ w1)
        err = h @ w2 - yb
        grad_w2 = h.T @ err * (2 / batch)
        grad_w1 = xb.T @ ((err @ w2.T) * (1 - h ** 2)) * (2 / batch)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
        exp.log_scalar("loss", float(np.mean(err ** 2)), step)
    val_loss = float(np.mean((np.tanh(x_val @ w1) @ w2 - y_val) ** 2))
    exp.log_scalar("val_loss", val_loss, steps)
    exp.save(w1, "weights/w1")
    exp.save(w2, "weights/w2")
    print(f"lr={lr} hidden={hidden}: val_loss {val_loss:.4f} after {steps} steps")
    return val_loss


if __name__ == "__main__":
    with exp:
        train()
