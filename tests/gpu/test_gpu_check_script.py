"""``check_real_gpu.sh`` is meant for a machine with a GPU; here it is rehearsed end to end against the
fake ``nvidia-smi``, with a stand-in ``torch`` whose "allocation" lists the process in the fake's
state, so the script does not rot between the times someone runs it on a GPU."""
from __future__ import annotations

import subprocess
from pathlib import Path

import psutil

HERE = Path(__file__).parent
REPO = HERE.parent.parent

TORCH = '''import os
uint8 = "uint8"
class cuda:
    @staticmethod
    def synchronize():
        pass
def ones(size, dtype=None, device=None):
    state = os.environ["FAKE_SMI_STATE"]
    with open(os.path.join(state, "gpus.json")) as handle:
        uuid = __import__("json").load(handle)[0]["uuid"]
    with open(os.path.join(state, "apps", f"torch-{os.getpid()}"), "w") as handle:
        handle.write(f"{uuid} {os.getpid()} {size >> 20}\\n")
'''


def test_the_real_gpu_check_passes_against_the_fake_gpu(box, tmp_path):
    box.fake.set_gpus(1, total_gib=8, util=10)
    fake_torch = tmp_path / "fake-torch"
    (fake_torch / "torch").mkdir(parents=True)
    (fake_torch / "torch" / "__init__.py").write_text(TORCH)
    env = {**box.env(), "PYTHONPATH": str(fake_torch), "EXPQ_CHECK_PROBES": "smi smi", "PYTHON": str(
        Path(__import__("sys").executable))}
    env.pop("EXPQ_GPU_LOCK_DIR")
    before = _workers_of_the_script(env["FAKE_SMI_STATE"])
    done = subprocess.run(["bash", str(HERE / "check_real_gpu.sh")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _workers_of_the_script(env["FAKE_SMI_STATE"]) - before == set()  # its worker ended with it (it was left running once)
    out = done.stdout
    assert "probes agree (pids visible)" in out
    assert "third job waits: GPU 0 runs 2 jobs (--jobs-per-gpu 2)" in out
    assert "peak GPU memory of job 1 (result.json): 1536 MiB" in out
    assert "waits: GPU 0 in use by another process (pid " in out
    assert out.rstrip().endswith("== every check held")


def _workers_of_the_script(fake_gpus: str) -> set[int]:
    """Live workers the script started: their environment names this test's fake GPUs (the tests run
    beside it start workers with the same options, on fake GPUs of their own)."""
    found = set()
    for process in psutil.process_iter(["cmdline", "status", "environ"]):  # read at once: it may end meanwhile
        line, environ = process.info["cmdline"] or [], process.info["environ"] or {}
        if ("worker" in line and "expq" in line and process.info["status"] != "zombie"
                and environ.get("FAKE_SMI_STATE") == fake_gpus):
            found.add(process.pid)
    return found
