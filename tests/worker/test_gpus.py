"""GPU ids, detection through a fake nvidia-smi on PATH, the per-GPU locks and their folder."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from expq.errors import InputError, InsecureQueue
from expq.worker.gpus import GpuLocks, default_lock_dir, detect_gpus, parse_gpus
from expq.worker.lock_dir import check_lock_dir

SMI = """#!/bin/sh
case "$*" in
  *--query-gpu=*) for i in 0 1 2 3; do
      printf '%s, GPU-%s, 00000000:%s:00.0, Fake GPU, 16384, 0, 0\\n' $i $(echo aaaa bbbb cccc dddd | cut -d' ' -f$((i+1))) 1$i
    done ;;
  *--query-compute-apps=*) ;;
esac
"""


@pytest.fixture
def smi_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with a fake nvidia-smi that reports four GPUs."""
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(SMI)
    smi.chmod(0o755)
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"  # parse_gpus finds it via shutil.which
    return {"PATH": os.environ["PATH"], "EXPQ_GPU_PROBE": "smi"}


@pytest.fixture(autouse=True)
def _restore_path():
    saved = os.environ["PATH"]
    yield
    os.environ["PATH"] = saved


def test_auto_uses_cuda_visible_devices_first_then_nvidia_smi(smi_env):
    assert parse_gpus("auto", {**smi_env, "CUDA_VISIBLE_DEVICES": "2,3"}) == ("2", "3")
    assert parse_gpus("auto", {**smi_env, "CUDA_VISIBLE_DEVICES": "-1"}) == ()
    assert detect_gpus(smi_env) == ("0", "1", "2", "3")
    assert parse_gpus("none", smi_env) == ()


def test_an_explicit_gpu_the_host_does_not_have_is_refused(smi_env):
    assert parse_gpus("0,GPU-cccc", smi_env) == ("0", "GPU-cccc")
    assert parse_gpus("GPU-dd,0000:11:00.0", smi_env) == ("GPU-dd", "0000:11:00.0")  # a UUID prefix, a bus id
    with pytest.raises(InputError, match="no GPU 7 on this host"):
        parse_gpus("7", smi_env)
    with pytest.raises(InputError, match="no GPU 3 on this host"):
        parse_gpus("1,3", {**smi_env, "CUDA_VISIBLE_DEVICES": "0,1"})
    with pytest.raises(InputError, match="distinct ids"):
        parse_gpus("0,0", smi_env)


def test_without_nvidia_smi_ids_cannot_be_checked_and_are_taken_as_given(tmp_path):
    os.environ["PATH"] = str(tmp_path)  # no nvidia-smi anywhere
    assert parse_gpus("5,6", {"PATH": str(tmp_path)}) == ("5", "6")
    assert detect_gpus({"PATH": str(tmp_path)}) == ()


def test_a_gpu_locked_by_one_worker_is_not_handed_out_by_another(tmp_path):
    first, second = GpuLocks(("0", "1"), tmp_path / "locks"), GpuLocks(("0", "1"), tmp_path / "locks")
    got = first.acquire(1)
    assert got is not None and [gpu for gpu, _ in got] == ["0"]
    other = second.acquire(1)
    assert other is not None and [gpu for gpu, _ in other] == ["1"]
    assert second.acquire(1) is None and first.acquire(2) is None
    first.release(got)
    again = second.acquire(1)
    assert again is not None and [gpu for gpu, _ in again] == ["0"]


def test_lock_folder_is_private_and_a_planted_one_is_refused(tmp_path):
    mine = tmp_path / "mine"
    check_lock_dir(mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    open_to_all = tmp_path / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)
    with pytest.raises(InsecureQueue, match="writable by others"):
        GpuLocks(("0",), open_to_all)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(InsecureQueue, match="not a directory"):
        check_lock_dir(link)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder owned by another user needs root")
def test_lock_folder_made_by_another_user_is_refused(tmp_path):
    planted = tmp_path / "planted"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    with pytest.raises(InsecureQueue, match="owned by uid 65534"):
        check_lock_dir(planted)


def test_default_lock_folder_is_per_user_and_per_slurm_job(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    assert default_lock_dir({"XDG_RUNTIME_DIR": str(runtime)}) == runtime / "expq-gpu-locks"
    assert default_lock_dir({}) == Path(f"/tmp/expq-gpu-locks-{os.geteuid()}")
    assert default_lock_dir({"SLURM_JOB_ID": "42"}).name == "slurm-42"
