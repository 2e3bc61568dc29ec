"""The GPU options on the command line: sizes in binary units, bad values refused with one line and
exit 2 before anything is written, --gpu-mem implying one GPU, slots of GPUs x --jobs-per-gpu."""
from __future__ import annotations

import argparse

import pytest

from expq.launcher.cli import build_parser, main, worker_options
from expq.queue.store import JobQueue
from expq.worker.loop import WorkerOptions
from expq.worker.main import resolve_gpus


@pytest.mark.parametrize(("argv", "message"), [
    (["submit", "--gpu-mem", "12", "--", "true"], "argument --gpu-mem: invalid size '12': expected a number and a "
                                                  "binary unit, like 12G, 1.5G or 512M"),
    (["submit", "--gpu-mem=-3G", "--", "true"], "argument --gpu-mem: invalid size '-3G'"),
    (["worker", "--jobs-per-gpu", "0"], "argument --jobs-per-gpu: '0' is not a whole number from 1 to 64"),
    (["worker", "--foreign-mem", "lots"], "argument --foreign-mem: invalid size 'lots'"),
])
def test_bad_gpu_options_are_one_line_and_exit_2_writing_nothing(tmp_path, capsys, argv, message):
    assert main(["--root", str(tmp_path / "root"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("expq: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "root").exists()


def test_gpu_mem_implies_one_gpu_and_is_stored_in_bytes(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--gpu-mem", "1.5G", "--", "true"]) == 0
    assert main(["--root", str(root), "submit", "--gpu-mem", "512M", "--gpus", "2", "--", "true"]) == 0
    (_, one), (_, two) = JobQueue(root).get(1), JobQueue(root).get(2)
    assert (one.gpus, one.gpu_mem) == (1, 3 << 29) and (two.gpus, two.gpu_mem) == (2, 512 << 20)


def _worker_options(*argv: str) -> WorkerOptions:
    args = build_parser().parse_args(["worker", *argv])
    assert isinstance(args, argparse.Namespace)
    return resolve_gpus(args.gpus, worker_options(args))


def test_slots_default_to_gpus_times_jobs_per_gpu_and_foreign_mem_is_binary(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")  # the GPUs this process may use, whatever the host has
    options = _worker_options("--gpus", "0,1,2", "--jobs-per-gpu", "3", "--foreign-mem", "1G", "--ignore-foreign")
    assert options.slot_count == 9 and options.foreign_mem == 1 << 30 and options.ignore_foreign
    assert _worker_options("--gpus", "0,1").slot_count == 2
    assert _worker_options("--gpus", "none", "--jobs-per-gpu", "4").slot_count == 1
    assert _worker_options("--gpus", "0", "--slots", "5", "--jobs-per-gpu", "2").slot_count == 5
    assert _worker_options("--gpus", "0", "--foreign-mem", "0").foreign_mem == 0
