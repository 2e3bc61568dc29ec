#!/usr/bin/env bash
# ci/test.sh [pytest args...] — the project's test command (`make test`, CI's `.ci/run`).
#
# 1. As root, unless EXPQ_SKIP_SLURM is set: start a one-node SLURM cluster (ci/slurm-ci.sh up)
#    and export EXPQ_SLURM_AVAILABLE=1; stop it again on exit, whatever happens. If it cannot
#    start, say so in one line and go on: the SLURM tests then skip with the reason, except
#    under CI=true, where they fail and so does this script. Not root: nothing is started, the
#    SLURM tests skip (or run against a cluster of yours if you export EXPQ_SLURM_AVAILABLE=1).
#    Also as root: ci/browser.sh installs Debian's chromium and chromium-driver for the dashboard
#    tests when missing. Without them (not root, or the install failed) those tests skip with the
#    reason, except under CI=true, where they fail.
# 2. ruff and mypy (configured in pyproject.toml); a finding fails the run. EXPQ_SKIP_LINT=1 skips them.
# 3. Run pytest twice: first every test not marked `slurm` (in parallel with pytest-xdist when
#    EXPQ_TEST_WORKERS=N > 1; serial by default), then the `slurm` tests, serially (they share
#    one small cluster and measure signal timings). Arguments go to both runs; with your own
#    -m/--markexpr there is one run only.
# Exit status: pytest's. "No tests collected" (5) in one run is fine as long as the other ran
# tests; 5 in both runs is returned as is.
set -uo pipefail
cd "$(dirname "$0")/.."

in_ci() { case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; *) return 1 ;; esac; }
say() { echo "ci/test.sh: $*" >&2; }

# Python: the one on PATH (make puts .venv/bin first), else the project's venv.
PY=${PYTHON:-python}
if ! "$PY" -c 'import pytest' 2>/dev/null && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi

# --- SLURM -------------------------------------------------------------------------------
slurm_failed=0
if [ -n "${EXPQ_SKIP_SLURM:-}" ]; then
  say "EXPQ_SKIP_SLURM is set: not starting SLURM, not running the slurm tests"
elif [ "$(id -u)" != 0 ]; then
  say "not root: no SLURM cluster started; slurm tests skip unless EXPQ_SLURM_AVAILABLE=1 names one of yours"
elif bash ci/slurm-ci.sh status 2>/dev/null; then
  say "a SLURM cluster from ci/slurm-ci.sh is already up: using it, leaving it up"
  export EXPQ_SLURM_AVAILABLE=1
else
  # Teardown always runs, also on Ctrl-C / SIGTERM (those exit through the EXIT trap).
  trap 'bash ci/slurm-ci.sh down >/dev/null 2>&1 || say "ci/slurm-ci.sh down failed"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  slurm_log=$(mktemp /tmp/expq-slurm-up.XXXXXX)
  t0=$(date +%s.%N)
  if bash ci/slurm-ci.sh up </dev/null >"$slurm_log" 2>&1; then
    say "SLURM cluster up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    export EXPQ_SLURM_AVAILABLE=1
  else
    slurm_failed=1
    tail -15 "$slurm_log" >&2
    # the tests' skip (or CI failure) reason names the cause
    why=$(grep '^slurm-ci:' "$slurm_log" | tail -1); [ -n "$why" ] || why=$(tail -1 "$slurm_log")
    export EXPQ_SLURM_UNAVAILABLE_REASON="ci/slurm-ci.sh up failed: ${why:-no output}"
    if in_ci; then
      say "could not start SLURM (ci/slurm-ci.sh up failed, output above); under CI=true this fails the run"
    else
      say "could not start SLURM (ci/slurm-ci.sh up failed, output above); the slurm tests will skip"
    fi
  fi
  rm -f "$slurm_log"
fi

# --- browser for the dashboard tests ------------------------------------------------------
# As root: install Debian's chromium + chromium-driver when missing (ci/browser.sh; fast when there).
# Otherwise, or when that fails, the browser tests skip with the reason (they fail under CI=true).
if [ "$(id -u)" = 0 ]; then
  if ! browser_why=$(bash ci/browser.sh 2>&1); then
    export EXPQ_BROWSER_UNAVAILABLE_REASON="${browser_why:-ci/browser.sh failed}"
    say "no browser for the dashboard tests: $EXPQ_BROWSER_UNAVAILABLE_REASON"
  fi
elif ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  export EXPQ_BROWSER_UNAVAILABLE_REASON="not root and no /usr/bin/chromium + /usr/bin/chromedriver (sudo bash ci/browser.sh)"
  say "$EXPQ_BROWSER_UNAVAILABLE_REASON: the browser tests skip"
fi

# --- linters: part of the test command; a finding fails the run (after the tests ran) ------
lint_rc=0
if [ -z "${EXPQ_SKIP_LINT:-}" ]; then
  "$PY" -m ruff check . >&2 || lint_rc=1
  "$PY" -m mypy >&2 || lint_rc=1
  [ "$lint_rc" = 0 ] || say "ruff or mypy found problems (above)"
fi

# --- pytest ------------------------------------------------------------------------------
common=(-q -p no:cacheprovider -ra)
in_ci && common+=(--durations=10)

own_markexpr=0
for a in "$@"; do case "$a" in -m | -m* | --markexpr | --markexpr=*) own_markexpr=1 ;; esac; done

run_pytest() { "$PY" -m pytest "${common[@]}" "$@" </dev/null; }

if [ "$own_markexpr" = 1 ]; then
  run_pytest "$@"; rc=$?
else
  parallel=()
  if [ "${EXPQ_TEST_WORKERS:-0}" -gt 1 ] 2>/dev/null; then parallel=(-n "$EXPQ_TEST_WORKERS"); fi
  run_pytest "${parallel[@]}" -m "not slurm" "$@"; rc1=$?
  if [ -n "${EXPQ_SKIP_SLURM:-}" ]; then
    rc2=5
  else
    echo "----- slurm tests -----" >&2
    run_pytest -m slurm "$@"; rc2=$?
  fi
  # 5 = "no tests collected": fine in one run when the other ran tests.
  if [ "$rc1" != 0 ] && [ "$rc1" != 5 ]; then rc=$rc1
  elif [ "$rc2" != 0 ] && [ "$rc2" != 5 ]; then rc=$rc2
  elif [ "$rc1" = 5 ] && [ "$rc2" = 5 ]; then rc=5
  else rc=0
  fi
fi

if [ "$lint_rc" != 0 ] && [ "$rc" = 0 ]; then
  say "the tests passed, but the linters did not: failing the run"
  rc=1
fi
if [ "$slurm_failed" = 1 ] && in_ci && [ "$rc" = 0 ]; then
  say "SLURM did not start under CI=true: failing the run"
  rc=1
fi
exit "$rc"
