#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, shows that expq's GPU handling holds on the real driver:
#   1. the NVML and nvidia-smi probes agree on memory and processes;
#   2. two `--gpu-mem 2G` jobs (torch or cupy allocating 1.5 GiB, then sleeping) share the GPU under
#      `--jobs-per-gpu 2`, and a third waits with the reason;
#   3. a process started outside expq that allocates most of the memory blocks a new job, which
#      starts once that process is gone.
# Not part of the default test suite (pytest collects test_*.py only). Run from the repository root:
#   tests/gpu/check_real_gpu.sh        # GPU 0; EXPQ_CHECK_GPU=2 for another, PYTHON=... for another python
# Needs the NVIDIA driver, nvidia-ml-py (pip install -e '.[gpu]') and torch or cupy. Prints what it
# saw, for the README's GPU section; exits 0 when every check held, 1 at the first that did not.
set -euo pipefail

PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
GPU=${EXPQ_CHECK_GPU:-0}
read -r FIRST_PROBE SECOND_PROBE <<<"${EXPQ_CHECK_PROBES:-nvml smi}"  # tests/gpu rehearse it with "smi smi"
WORK=$(mktemp -d)
ROOT=$WORK/root
export EXPQ_GPU_LOCK_DIR=$WORK/locks EXPQ_ROOT=$ROOT
unset CUDA_VISIBLE_DEVICES
PIDS=()

cleanup() {
    touch "$WORK/release-share" "$WORK/release-foreign" "$WORK/release-probe" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

expq() { "$PY" -m expq --root "$ROOT" "$@"; }
say() { printf '\n== %s\n' "$*"; }
fail() { printf 'CHECK FAILED: %s\n' "$*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds
wait_for() {
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start < limit)) || fail "$what (after ${limit}s)"
        sleep 0.5
    done
}

# json EXPRESSION: evaluate a Python expression over `expq status --json` (jobs by id as J)
json() {
    expq status --json | "$PY" -c "import json,sys; J={j['id']: j for j in json.load(sys.stdin)['jobs']}; $1"
}

cat >"$WORK/alloc.py" <<'EOF'
"""Allocate GIB GiB on the GPU and hold it until RELEASE exists."""
import os, sys, time
gib, release = float(sys.argv[1]), sys.argv[2]
size = int(gib * (1 << 30))
try:
    import torch
    block = torch.ones(size, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
except ImportError:
    import cupy
    block = cupy.ones(size, dtype=cupy.uint8)
    cupy.cuda.Device().synchronize()
print(f"pid {os.getpid()} holds {gib} GiB on CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}",
      flush=True)
while not os.path.exists(release):
    time.sleep(0.1)
EOF

"$PY" -c "import pynvml" || fail "nvidia-ml-py is not installed (pip install -e '.[gpu]')"
[ "$FIRST_PROBE" = nvml ] || echo "NOTE: rehearsal: comparing $FIRST_PROBE with $SECOND_PROBE, not NVML with nvidia-smi"
"$PY" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('torch') or u.find_spec('cupy')))" \
    || fail "neither torch nor cupy is installed"
UUID=$(nvidia-smi --query-gpu=uuid --format=csv,noheader -i "$GPU")
say "host: $(hostname), GPU $GPU = $UUID"
nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu --format=csv -i "$GPU"

say "1. NVML and nvidia-smi agree on memory and processes"
CUDA_VISIBLE_DEVICES=$UUID "$PY" "$WORK/alloc.py" 1 "$WORK/release-probe" >"$WORK/probe.log" 2>&1 &
PROBE_PID=$!
PIDS+=("$PROBE_PID")
wait_for 120 "a process allocating 1 GiB for the probe check" grep -q holds "$WORK/probe.log"
expq gpus --probe "$FIRST_PROBE" --json >"$WORK/nvml.json"
expq gpus --probe "$SECOND_PROBE" --json >"$WORK/smi.json"
expq gpus --probe "$FIRST_PROBE"
NAMESPACED=$("$PY" - "$WORK/nvml.json" "$WORK/smi.json" "$UUID" "$PROBE_PID" <<'EOF'
import json, sys
nvml, smi = (json.load(open(p)) for p in sys.argv[1:3])
uuid, pid = sys.argv[3], int(sys.argv[4])
a = next(g for g in nvml["gpus"] if g["uuid"] == uuid)
b = next(g for g in smi["gpus"] if g["uuid"] == uuid)
pids = lambda g: sorted(p["pid"] for p in g["others"]) + sorted(j["job"] for j in g["jobs"])
print(f"NVML: used {a['mem_used_bytes'] >> 20} MiB of {a['mem_total_bytes'] >> 20}, processes {pids(a)}", file=sys.stderr)
print(f"smi:  used {b['mem_used_bytes'] >> 20} MiB of {b['mem_total_bytes'] >> 20}, processes {pids(b)}", file=sys.stderr)
assert abs(a["mem_total_bytes"] - b["mem_total_bytes"]) <= 1 << 20, "total memory differs"
assert abs(a["mem_used_bytes"] - b["mem_used_bytes"]) <= 64 << 20, "used memory differs by more than 64 MiB"
smi_pids = {p["pid"] for p in b["others"]}
nvml_pids = {p["pid"] for p in a["others"]}
assert smi_pids <= nvml_pids, f"nvidia-smi lists processes NVML does not: {smi_pids - nvml_pids}"
mem = {p["pid"]: p["mem_bytes"] for p in a["others"]}
for p in b["others"]:
    if p["mem_bytes"] is not None and mem.get(p["pid"]) is not None:
        assert abs(p["mem_bytes"] - mem[p["pid"]]) <= 2 << 20, f"pid {p['pid']}: memory differs"
# a container without the host's pid namespace sees other pids than the driver reports
print("namespaced" if pid not in nvml_pids else "visible")
EOF
) || fail "the probes disagree"
touch "$WORK/release-probe"
wait "$PROBE_PID" || true
echo "probes agree (pids $NAMESPACED)"
EXTRA=()
if [ "$NAMESPACED" = namespaced ]; then
    echo "NOTE: the driver's pids are not this pid namespace's (a container): every GPU process looks foreign;"
    echo "      the sharing check runs with --ignore-foreign, as expq must be run here"
    EXTRA=(--ignore-foreign)
fi

say "2. two --gpu-mem 2G jobs share GPU $GPU under --jobs-per-gpu 2; a third waits"
expq submit --experiment share --sweep 'i=range(3)' --gpu-mem 2G -- "$PY" "$WORK/alloc.py" 1.5 "$WORK/release-share"
# the interpreter itself in the background (not the expq function, whose subshell a kill would leave
# the worker behind): cleanup's kill then stops the worker
"$PY" -m expq --root "$ROOT" worker --gpus "$GPU" --jobs-per-gpu 2 --slots 3 ${EXTRA[@]+"${EXTRA[@]}"} \
    >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
wait_for 180 "two jobs running" json "sys.exit(sum(j['state'] == 'running' for j in J.values()) != 2)"
wait_for 60 "the third job's reason" json "sys.exit(not J[3]['reason'])"
wait_for 60 "the GPU memory of both running jobs sampled" \
    json "sys.exit(not all((J[i]['gpu_mem_bytes'] or 0) >= 3 << 29 for i in (1, 2)))"
expq status
expq gpus
json "assert J[1]['gpus'] == J[2]['gpus'] == ['$GPU'], 'the two jobs are not on the same GPU'
assert J[3]['state'] == 'pending', 'the third job did not wait'
print('third job waits:', J[3]['reason'])" || fail "sharing"
touch "$WORK/release-share"
wait_for 180 "the three jobs done" json "sys.exit(not all(J[i]['state'] == 'done' for i in (1, 2, 3)))"
json "print('peak GPU memory of job 1 (result.json):', J[1]['peak_gpu_mem_bytes'] >> 20, 'MiB')"

say "3. a process started outside expq that takes most of the memory blocks a new job"
FREE_MIB=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits -i "$GPU")
TAKE_GIB=$("$PY" -c "print(round(max(1.0, ($FREE_MIB - 2048) / 1024), 1))")
CUDA_VISIBLE_DEVICES=$UUID "$PY" "$WORK/alloc.py" "$TAKE_GIB" "$WORK/release-foreign" >"$WORK/foreign.log" 2>&1 &
FOREIGN=$!
PIDS+=("$FOREIGN")
wait_for 300 "the outside process allocating $TAKE_GIB GiB" grep -q holds "$WORK/foreign.log"
cat "$WORK/foreign.log"
sleep 3  # a worker reuses a probe's answer for 2 s: a process that appeared just now is not seen yet
JOB=$(expq submit --experiment blocked --gpus 1 -- "$PY" "$WORK/alloc.py" 0.5 "$WORK/release-blocked")
wait_for 60 "job $JOB waiting for the outside process" json "sys.exit('in use by' not in J[$JOB]['reason'])"
expq status
json "assert J[$JOB]['state'] == 'pending'; print('job $JOB waits:', J[$JOB]['reason'])" || fail "blocking"
touch "$WORK/release-foreign"
wait "$FOREIGN" || true
wait_for 120 "job $JOB starting once the outside process left" json "sys.exit(J[$JOB]['state'] != 'running')"
touch "$WORK/release-blocked"
wait_for 120 "job $JOB done" json "sys.exit(J[$JOB]['state'] != 'done')"
expq status

say "every check held"
