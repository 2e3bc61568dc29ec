"""The contract between a worker and the job it runs, owned here and nowhere else.

A worker (``expq.worker``) starts each job's child with the variables of ``JobEnvironment``,
writes the run directory's files under the names below, and the experiment API
(``expq.experiment``), which imports no worker code, reads the same variables back to bind
``Experiment(...)`` to that run directory. Both sides import this module, so a name can never
differ between writer and reader. It also says where the root is when none is given and how a
root string becomes a path (``~`` expanded, made absolute), the same for the CLI and the API.

This is a leaf: it imports only the standard library, cheaply.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ROOT_VAR", "JOB_ID_VAR", "ATTEMPT_VAR", "RUN_DIR_VAR", "EXPERIMENT_VAR", "CONFIG_VAR",
    "GPUS_VAR", "GPU_ORDER_VAR", "GPU_ORDER", "RESERVED_VARS", "RESERVED_PREFIX", "is_reserved_var", "DEFAULT_ROOT_NAME", "QUEUE_DIR", "EXPERIMENTS_DIR",
    "JOB_JSON", "CONFIG_YAML", "RUN_ENV", "STDOUT_LOG", "STDERR_LOG", "RESULT_JSON", "ATTEMPTS_DIR",
    "RUN_JSON", "RUN_LOG", "FILES_DIR", "METRICS_DIR", "SOURCES_DIR", "RUNS_DIR", "RUN_MARKERS",
    "TENSORBOARD_VAR", "TENSORBOARD_DIR", "JOB_SETTINGS", "CALL_PKL", "OUTCOME_PKL", "LABELS_JSON", "CONFIG_READS_DIR", "GPU_USAGE_JSON",
    "JobEnvironment", "resolve_root",
]

# -- environment variables a worker sets for each job's process -------------------------------
ROOT_VAR = "EXPQ_ROOT"  # also read by every command when --root is not given
JOB_ID_VAR = "EXPQ_JOB_ID"
ATTEMPT_VAR = "EXPQ_ATTEMPT"
RUN_DIR_VAR = "EXPQ_RUN_DIR"
EXPERIMENT_VAR = "EXPQ_EXPERIMENT"
CONFIG_VAR = "EXPQ_CONFIG"  # path of the run directory's config.yaml
GPUS_VAR = "CUDA_VISIBLE_DEVICES"
GPU_ORDER_VAR = "CUDA_DEVICE_ORDER"
GPU_ORDER = "PCI_BUS_ID"  # so GPU ids mean what nvidia-smi shows
# A job's own --env must not override these: they are how the job finds its run and its GPUs.
RESERVED_VARS = frozenset({ROOT_VAR, JOB_ID_VAR, ATTEMPT_VAR, RUN_DIR_VAR, EXPERIMENT_VAR, CONFIG_VAR,
                           GPUS_VAR, GPU_ORDER_VAR})
TENSORBOARD_VAR = "EXPQ_TENSORBOARD"  # "1": log_scalar also writes live TensorBoard event files
# Settings a job may set for itself with --env (the worker never sets them).
JOB_SETTINGS = frozenset({TENSORBOARD_VAR})
RESERVED_PREFIX = "EXPQ_"  # any other EXPQ_ name is reserved too: expq may add variables later


def is_reserved_var(name: str) -> bool:
    """True for a variable a job's ``--env`` may not set: what the worker sets, and ``EXPQ_*`` names
    other than the job settings above."""
    return name in RESERVED_VARS or (name.startswith(RESERVED_PREFIX) and name not in JOB_SETTINGS)


# -- the root --------------------------------------------------------------------------------
DEFAULT_ROOT_NAME = "expq-root"  # in the current directory, when neither --root nor $EXPQ_ROOT
QUEUE_DIR = "queue"  # <root>/queue/: the queue package's business
EXPERIMENTS_DIR = "experiments"  # <root>/experiments/<experiment>/<run>/

# -- a run directory: files the worker writes (the experiment API reads them, never writes) ---
JOB_JSON = "job.json"  # the spec as submitted
CONFIG_YAML = "config.yaml"  # the job's resolved config (expq.config.dump_config)
RUN_ENV = "run.env"  # the variables above plus the job's --env, KEY=VALUE lines
STDOUT_LOG = "stdout.log"  # also written by the API for a run started by hand (fd capture)
STDERR_LOG = "stderr.log"
RESULT_JSON = "result.json"  # the worker's verdict, written last and atomically
ATTEMPTS_DIR = "attempts"  # attempts/<n>.json, one record per attempt

# -- a run directory: what the experiment API writes ---------------------------------------------
RUN_JSON = "run.json"  # the run's metadata: state, times, host, git, config, result
RUN_LOG = "run.log"  # the run's logger
FILES_DIR = "files"  # save()d objects
METRICS_DIR = "metrics"  # one CSV per metric
SOURCES_DIR = "sources"  # the source snapshot
RUNS_DIR = "runs"  # nested runs: runs/<sub-run>/, same layout
TENSORBOARD_DIR = "tensorboard"  # live TensorBoard event files
GPU_USAGE_JSON = "gpu_usage.json"  # a running job's GPU memory and utilisation, as its worker last sampled
LABELS_JSON = "labels.json"  # tags and note of a queued job: small, mutable, written atomically
CONFIG_READS_DIR = "config-reads"  # config-reads/<pid>-<n>.json: the keys the job's processes read
CALL_PKL = "call.pkl"  # expq.Executor: the pickled call, written before the job is queued
OUTCOME_PKL = "outcome.pkl"  # expq.Executor: the pickled return value or exception, written atomically

# Any one of these makes a folder a run directory, whoever wrote it.
RUN_MARKERS = (RUN_JSON, JOB_JSON, RESULT_JSON)


def resolve_root(root: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``root``, else ``$EXPQ_ROOT``, else ``./expq-root``; ``~`` expanded, made absolute.

    An empty ``$EXPQ_ROOT`` counts as unset (``EXPQ_ROOT= expq status`` means the default).
    """
    env = os.environ if environ is None else environ
    chosen = root if root is not None else env.get(ROOT_VAR) or DEFAULT_ROOT_NAME
    return Path(chosen).expanduser().absolute()


@dataclass(frozen=True)
class JobEnvironment:
    """What a worker tells the process of one job attempt: written by ``variables``, read by ``read``."""

    root: Path
    job_id: int | None  # None only when read from an environment set up by hand without it
    attempt: int | None
    run_dir: Path
    experiment: str
    gpus: tuple[str, ...] = ()
    config: Path | None = None  # default: the run directory's config.yaml

    @property
    def config_path(self) -> Path:
        """The job's resolved config file (``$EXPQ_CONFIG``)."""
        return self.config if self.config is not None else self.run_dir / CONFIG_YAML

    def variables(self) -> dict[str, str]:
        """The variables to set in the job's environment (the job's own ``--env`` goes on top)."""
        return {
            ROOT_VAR: str(self.root),
            JOB_ID_VAR: "" if self.job_id is None else str(self.job_id),
            ATTEMPT_VAR: "" if self.attempt is None else str(self.attempt),
            RUN_DIR_VAR: str(self.run_dir),
            EXPERIMENT_VAR: self.experiment,
            CONFIG_VAR: str(self.config_path),
            GPUS_VAR: ",".join(self.gpus),
            GPU_ORDER_VAR: GPU_ORDER,
        }

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> JobEnvironment | None:
        """The job this process runs as, or None when ``EXPQ_RUN_DIR`` is unset (started by hand).

        Lenient on purpose, since a person may set a few variables by hand to reproduce a job:
        a missing or non-numeric id or attempt reads as None, a missing experiment is the run
        directory's parent folder name, a missing root the folder above ``experiments/``.
        """
        env = os.environ if environ is None else environ
        run_dir = env.get(RUN_DIR_VAR)
        if not run_dir:
            return None
        path = Path(run_dir).expanduser()
        root = env.get(ROOT_VAR)
        gpus = env.get(GPUS_VAR, "")
        config = env.get(CONFIG_VAR)
        return cls(
            root=resolve_root(root) if root else path.absolute().parent.parent.parent,
            job_id=_number(env.get(JOB_ID_VAR)),
            attempt=_number(env.get(ATTEMPT_VAR)),
            run_dir=path,
            experiment=env.get(EXPERIMENT_VAR) or path.absolute().parent.name,
            gpus=tuple(g for g in gpus.split(",") if g),
            config=Path(config).expanduser() if config else None,
        )


def _number(text: str | None) -> int | None:
    """A decimal number as the worker writes it (ASCII digits only), else None."""
    return int(text) if text and text.isascii() and text.isdigit() else None
