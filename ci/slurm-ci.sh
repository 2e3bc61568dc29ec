#!/usr/bin/env bash
# ci/slurm-ci.sh — a throwaway one-node SLURM cluster for expq's SLURM tests.
#
#   bash ci/slurm-ci.sh up      install (if missing), write the config, start munged, slurmctld
#                               and slurmd, wait until the node is idle. Idempotent.
#   bash ci/slurm-ci.sh down    cancel all jobs, stop every daemon this script started (by pid),
#                               remove the config and all state. Safe when nothing runs.
#   bash ci/slurm-ci.sh status  exit 0 if the cluster this script manages is up, 1 otherwise.
#
# Target: Debian 12, run as root, no systemd (daemons are started directly, no cgroups needed).
# Modelled on ../shared/notes/slurm-recipe.md, which records what was verified and why.
#
# What the tests get: one node `$(hostname -s)` in the default partition `debug`, SLURM_CI_CPUS
# CPUs and SLURM_CI_GPUS fake GPUs as gres, so `--gres=gpu:N` sets CUDA_VISIBLE_DEVICES.
# No accounting (no slurmdbd/MariaDB): expq needs sbatch, arrays, --gres, --signal, scancel,
# squeue and `scontrol show job`, not sacct; leaving it out makes `up` ~2.5x faster.
#
# Knobs (environment):
#   SLURM_CI_DIR=/tmp/slurm-ci   state, spool, logs, pid files, fake /dev/nvidia* nodes
#   SLURM_CI_CPUS=8              CPUs the node advertises (may exceed nproc: config_overrides)
#   SLURM_CI_GPUS=4              fake GPUs (0 = no gres)
#   SLURM_CI_KILLWAIT=5          seconds between SIGTERM and SIGKILL on scancel / time limit
#
# The config goes to /etc/slurm/slurm.conf so that sbatch & co. find it without SLURM_CONF.
# A slurm.conf that this script did not write is never overwritten.
set -euo pipefail

D=${SLURM_CI_DIR:-/tmp/slurm-ci}
CPUS=${SLURM_CI_CPUS:-8}
GPUS=${SLURM_CI_GPUS:-4}
KILLWAIT=${SLURM_CI_KILLWAIT:-5}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
MARK="# written by expq ci/slurm-ci.sh"   # first line of our configs
PACKAGES="slurmctld slurmd slurm-client munge"
export DEBIAN_FRONTEND=noninteractive

log() { echo "[slurm-ci $(date +%T)] $*" >&2; }
fail() {   # fail MESSAGE [LOGFILE...]: print the message and the tail of each log, exit 1
  echo "slurm-ci: $1" >&2; shift
  local f; for f in "$@"; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}

# A daemonized process is reparented to PID 1, which here (no systemd) reaps it only after a
# few seconds; `kill -0` succeeds on a zombie, so a process in state Z counts as gone.
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $s != Z* ]]; }
pid_alive() { [ -s "$1" ] && alive "$(cat "$1")"; }            # pid_alive PIDFILE
retry() {   # retry N CMD...: run CMD every 0.1 s until it succeeds, at most N times
  local n=$1 i; shift
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
stop_pidfile() {   # stop_pidfile NAME PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL
  local p; [ -s "$2" ] || return 0; p=$(cat "$2")
  if alive "$p"; then
    log "stopping $1 (pid $p)"; kill "$p" 2>/dev/null || true
    retry 100 bash -c "! ps -o stat= -p $p | grep -qv '^Z'" \
      || { log "$1 still alive, SIGKILL"; kill -9 "$p" 2>/dev/null || true; retry 50 bash -c "! kill -0 $p" || true; }
  fi
  rm -f "$2"
}
node_idle() { [ "$(sinfo -h -N -o %t 2>/dev/null | head -1)" = idle ]; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
is_up() { pid_alive "$D/run/slurmctld.pid" && pid_alive "$D/run/slurmd.pid" && munge_ok && node_idle_or_busy; }
node_idle_or_busy() { [[ "$(sinfo -h -N -o %t 2>/dev/null | head -1)" =~ ^(idle|mix|alloc|comp)$ ]]; }

install_packages() {
  local p missing=""
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  command -v apt-get >/dev/null || fail "packages missing ($missing) and no apt-get to install them"
  log "installing:$missing"
  mkdir -p "$D/log"
  # policy-rc.d (exit 101) / no systemd: the postinst scripts start no daemon. apt's own noise
  # (debconf warnings) goes to the log, shown only on failure.
  apt-get update -qq >"$D/log/apt.log" 2>&1 || fail "apt-get update failed" "$D/log/apt.log"
  apt-get install -y -qq --no-install-recommends $missing >>"$D/log/apt.log" 2>&1 \
    || fail "apt-get install$missing failed" "$D/log/apt.log"
}

write_config() {
  local host mem gres_types="" gres_node="" overrides="" i
  host=$(hostname -s)
  mem=$(( $(awk '/MemAvailable/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))   # 80% of free MiB
  mkdir -p "$D"/{state,spool,log,run,dev} /etc/slurm
  rm -f "$GRES_CONF"
  if [ "$GPUS" -gt 0 ]; then
    # Fake GPUs: char devices with NVIDIA's major number 195 (nothing ever opens them). Where
    # mknod is not allowed, a symlink to /dev/null works too. Plain files do NOT: slurmd rejects
    # them and CUDA_VISIBLE_DEVICES comes out empty.
    for ((i = 0; i < GPUS; i++)); do
      [ -e "$D/dev/nvidia$i" ] || mknod "$D/dev/nvidia$i" c 195 "$i" 2>/dev/null || ln -s /dev/null "$D/dev/nvidia$i"
    done
    printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/nvidia[0-%d]\n' \
      "$MARK" "$host" "$D" $((GPUS - 1)) >"$GRES_CONF"
    gres_types="GresTypes=gpu"; gres_node="Gres=gpu:$GPUS"
  fi
  # More CPUs than the machine has (so 4+ one-CPU tasks run at once on a 2-core box) would
  # otherwise drain the node for "Low socket*core*thread count".
  [ "$CPUS" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"
  cat >"$CONF" <<EOF
$MARK
ClusterName=expqci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: processes are tracked by parent pid, which is enough for scancel to kill them all
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# no accounting (no sacct); scontrol show job reports a finished job for MinJobAge seconds
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# start a submitted batch job at once (default delay 3 s) -> ~1 s from sbatch to done
SchedulerParameters=batch_sched_delay=0
# short grace between SIGTERM and SIGKILL so scancel / time-limit tests are quick
KillWait=$KILLWAIT
MinJobAge=300
ReturnToService=2
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$gres_types
$overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  munge_ok && return 0           # a munged already runs (ours or the system's): use it
  [ -s /etc/munge/munge.key ] || mungekey --create --force
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  # munged forks and writes /run/munge/munged.pid; stdio to a file so that no CI pipe stays open
  runuser -u munge -- /usr/sbin/munged </dev/null >>"$D/log/munged.out" 2>&1 \
    || fail "munged did not start" "$D/log/munged.out" /var/log/munge/munged.log
  retry 50 munge_ok || fail "munged does not answer" /var/log/munge/munged.log
  cp /run/munge/munged.pid "$D/run/munged.pid"   # marks that this script started it
}

up() {
  [ "$(id -u)" = 0 ] || fail "must run as root"
  if [ -s "$CONF" ] && [ "$(head -1 "$CONF")" != "$MARK" ]; then
    fail "$CONF exists and was not written by this script; not touching a real SLURM setup"
  fi
  if command -v sinfo >/dev/null && is_up; then log "already up"; return 0; fi
  if [ -d "$D/run" ]; then log "partly up: restarting"; down; fi

  install_packages
  write_config     # before any daemon: sinfo and the daemons read slurm.conf
  start_munge
  # Both daemons fork and write their pid files; -c: start with empty job/node state.
  # stdio goes to files: a daemon that inherits the caller's stdout would keep a CI pipe open.
  /usr/sbin/slurmctld -c </dev/null >>"$D/log/slurmctld.out" 2>&1 \
    || fail "slurmctld did not start" "$D/log/slurmctld.out" "$D/log/slurmctld.log"
  /usr/sbin/slurmd </dev/null >>"$D/log/slurmd.out" 2>&1 \
    || fail "slurmd did not start" "$D/log/slurmd.out" "$D/log/slurmd.log"
  retry 300 node_idle || { sinfo -N -l >&2 || true; fail "node never became idle" "$D/log/slurmctld.log" "$D/log/slurmd.log"; }
  log "cluster up: node $(hostname -s), cpus=$CPUS gpus=$GPUS killwait=${KILLWAIT}s, logs in $D/log"
}

down() {
  if command -v squeue >/dev/null && pid_alive "$D/run/slurmctld.pid"; then
    local jobs; jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      log "cancelling jobs: $(echo $jobs)"
      scancel --signal=KILL $jobs 2>/dev/null || true   # no grace period at teardown
      retry 100 bash -c '[ -z "$(squeue -h)" ]' || log "jobs still listed; stopping anyway"
    fi
  fi
  stop_pidfile slurmd "$D/run/slurmd.pid"
  stop_pidfile slurmctld "$D/run/slurmctld.pid"
  stop_pidfile munged "$D/run/munged.pid"            # only there if this script started munged
  rm -rf "$D"
  [ -f "$CONF" ] && [ "$(head -1 "$CONF")" = "$MARK" ] && rm -f "$CONF"
  [ -f "$GRES_CONF" ] && [ "$(head -1 "$GRES_CONF")" = "$MARK" ] && rm -f "$GRES_CONF"
  log "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) command -v sinfo >/dev/null && is_up ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
