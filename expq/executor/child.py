"""The job side of ``expq.Executor``: ``python -m expq.executor MODULE.QUALNAME``, started by a worker.

It finds its run directory through the variables the worker sets, loads ``call.pkl``, calls the
function and records the return value or the exception in ``outcome.pkl`` for the submitter. The
name on the command line is only for people (``expq show``, ``status``): the call file is the truth.
The call runs inside the experiment API's binding, so ``get_experiment()`` and ``capture`` see the
job's config. Exit status: 0 returned, 1 raised (the worker then retries or fails the job),
2 not started by a worker or the call file cannot be trusted.
"""
from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from expq.contract import JobEnvironment
from expq.errors import InsecureQueue
from expq.executor import payload
from expq.executor.payload import qualified_name

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    job = JobEnvironment.read()
    if job is None:
        sys.stderr.write("expq.executor: not inside a job (EXPQ_RUN_DIR is unset); expq worker runs this\n")
        return 2
    run_dir = job.run_dir
    (run_dir / payload.OUTCOME_FILE).unlink(missing_ok=True)  # an earlier attempt's, never this one's
    try:
        call = payload.read_call(run_dir)
    except InsecureQueue as exc:
        return _failed(run_dir, job.attempt, f"call file refused: {exc}", exc, code=2)
    except Exception as exc:  # noqa: BLE001 - the child wrapper: unpickling runs foreign code, any error ends the job with its reason
        return _failed(run_dir, job.attempt, f"cannot load the call: {type(exc).__name__}: {exc}", exc)
    try:
        value = call.fn(*call.args, **call.kwargs)
    except BaseException as exc:  # noqa: BLE001 - the child wrapper: whatever the function raised is the job's outcome
        _close_experiments(exc)
        return _failed(run_dir, job.attempt, f"raised {qualified_name(type(exc))}: {exc}", exc, skip_frames=1)
    try:
        payload.write_value(run_dir, job.attempt, value)
    except Exception as exc:  # noqa: BLE001 - the child wrapper: a value that cannot be pickled fails the job
        reason = f"its return value ({qualified_name(type(value))}) cannot be pickled: {type(exc).__name__}: {exc}"
        return _failed(run_dir, job.attempt, reason, exc)
    return 0


def _failed(run_dir: Path, attempt: int | None, reason: str, exc: BaseException, code: int = 1,
            skip_frames: int = 0) -> int:
    """Write the traceback to stderr.log and the outcome for the submitter; return the exit status."""
    tb = exc.__traceback__
    for _ in range(skip_frames):  # the frames of this module are noise in the user's traceback
        tb = tb.tb_next if tb is not None else None
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    sys.stderr.write(text)
    sys.stderr.write(f"expq.executor: {reason}\n")
    payload.write_error(run_dir, attempt, reason, qualified_name(type(exc)), str(exc), text, exc)
    return code


def _close_experiments(error: BaseException) -> None:
    """Experiments the function opened record its failure (at exit they would be closed as done)."""
    if "expq.experiment.active" not in sys.modules:
        return
    from expq.experiment.active import open_experiments

    for experiment in reversed(open_experiments()):
        experiment.close(error)
