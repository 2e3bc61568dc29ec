"""A job's run directory, logs, environment, config and result, through a real worker process."""
from __future__ import annotations

import json
import os
import sys

import yaml

from expq.queue.attempts import read_attempts
from expq.queue.paths import RunPaths
from expq.queue.states import State
from expq.worker.envfile import read_env_file


def test_job_runs_with_its_run_directory_env_and_result(cluster):
    script = "import os; print('lr', os.environ['LR_ENV'], os.environ['EXPQ_JOB_ID']); import sys; print('err', file=sys.stderr)"
    (job_id,) = cluster.submit("--experiment", "exp1", "--set", "model.lr=0.5", "--env", "LR_ENV=x y",
                               "--", sys.executable, "-c", script)
    cluster.drain("--gpus", "none")
    run = cluster.run_dir(job_id)
    assert cluster.state(job_id) == "done"
    assert "lr x y 1" in (run / "stdout.log").read_text()
    assert (run / "stderr.log").read_text().endswith("err\n")
    assert yaml.safe_load((run / "config.yaml").read_text()) == {"model": {"lr": 0.5}}
    env = read_env_file(run / "run.env")
    assert env["EXPQ_JOB_ID"] == str(job_id) and env["EXPQ_RUN_DIR"] == str(run)
    assert env["EXPQ_EXPERIMENT"] == "exp1" and env["EXPQ_CONFIG"] == str(run / "config.yaml")
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["LR_ENV"] == "x y"
    assert json.loads((run / "job.json").read_text())["id"] == job_id
    result = cluster.result(job_id)
    assert result["state"] == "done" and result["exit_code"] == 0 and result["attempts"] == 1
    assert result["finished_at"] >= result["started_at"] and result["peak_rss_bytes"] > 0
    assert result["host"] and result["worker_id"]
    job = cluster.job(job_id)
    assert job["state"] == "done" and job["exit_code"] == 0 and job["attempts"] == 1


def test_each_job_runs_in_its_own_working_directory_and_the_worker_stays_in_its_own(cluster):
    elsewhere = cluster.tmp / "elsewhere"
    elsewhere.mkdir()
    script = "import os; print(os.getcwd())"
    away = cluster.submit("--cwd", str(elsewhere), "--", sys.executable, "-c", script)[0]
    here = cluster.submit("--", sys.executable, "-c", script)[0]  # the worker's own directory
    again = cluster.submit("--cwd", str(elsewhere), "--", sys.executable, "-c", script)[0]
    cluster.drain("--gpus", "none", "--slots", "1")
    printed = {job: (cluster.run_dir(job) / "stdout.log").read_text().strip() for job in (away, here, again)}
    assert printed == {away: str(elsewhere), here: os.getcwd(), again: str(elsewhere)}


def test_nonzero_exit_fails_with_its_code_and_the_worker_goes_on(cluster):
    bad = cluster.submit("--", sys.executable, "-c", "raise SystemExit(3)")[0]
    missing = cluster.submit("--", "no-such-command-expq")[0]
    good = cluster.submit("--", "true")[0]
    cluster.drain("--gpus", "none")
    assert cluster.result(bad)["exit_code"] == 3 and cluster.state(bad) == "failed"
    assert cluster.result(missing)["reason"] == "command not found: no-such-command-expq"
    assert cluster.state(missing) == "failed"
    assert cluster.state(good) == "done"


def test_missing_cwd_fails_the_job_with_a_reason(cluster):
    cwd = cluster.tmp / "work"
    cwd.mkdir()
    job_id = cluster.submit("--cwd", str(cwd), "--", "true")[0]
    cwd.rmdir()
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "failed"
    assert cluster.result(job_id)["reason"] == f"working directory {cwd} does not exist"


def test_retries_keep_the_logs_of_every_attempt(cluster):
    job_id = cluster.submit("--retries", "2", "--", sys.executable, "-c", "print('try'); raise SystemExit(1)")[0]
    cluster.drain("--gpus", "none")
    log = (cluster.run_dir(job_id) / "stdout.log").read_text()
    assert log.startswith("try\n") and log.count("=== expq job") == 2 and log.count("try") == 3
    assert (cluster.run_dir(job_id) / "stderr.log").read_text().count("=== expq job") == 3
    assert cluster.state(job_id) == "failed" and cluster.result(job_id)["attempts"] == 3
    # the attempts that were retried have a record each; the last one is in result.json
    assert sorted(p.name for p in (cluster.run_dir(job_id) / "attempts").glob("*.json")) == ["1.json", "2.json"]
    assert [a.number for a in read_attempts(RunPaths(cluster.run_dir(job_id)))] == [1, 2, 3]


def test_expq_retry_keeps_the_record_of_the_attempt_that_had_ended_the_job(cluster):
    flag, script = cluster.tmp / "second-time", cluster.tmp / "fails-once.sh"
    script.write_text(f"test -e {flag} && exit 0\ntouch {flag}\nexit 3\n")
    job_id = cluster.submit("--", "sh", str(script))[0]
    cluster.drain("--gpus", "none")
    run = RunPaths(cluster.run_dir(job_id))
    assert cluster.state(job_id) == "failed" and not run.attempts.exists()  # its one attempt is in result.json
    assert cluster.cli("retry", str(job_id)) == 0
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "done" and cluster.result(job_id)["attempts"] == 2
    assert [(a.number, a.outcome.value, a.exit_code) for a in read_attempts(run)] == [(1, "failed", 3), (2, "done", 0)]


def test_a_retry_that_succeeds_ends_done(cluster):
    script = "import os; raise SystemExit(0 if os.environ['EXPQ_ATTEMPT'] == '2' else 1)"
    job_id = cluster.submit("--retries", "1", "--", sys.executable, "-c", script)[0]
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "done" and cluster.result(job_id)["attempts"] == 2


def test_large_output_goes_straight_to_the_log(cluster):
    size = 200 * 1024 * 1024
    job_id = cluster.submit("--", "head", "-c", str(size), "/dev/zero")[0]
    cluster.drain("--gpus", "none")
    log = cluster.run_dir(job_id) / "stdout.log"
    assert log.stat().st_size == size  # exactly the job's output: no header on a first attempt
    assert (cluster.run_dir(job_id) / "stderr.log").read_text().startswith(f"=== expq job {job_id} attempt 1 on ")


def test_priority_then_id_decides_the_order(cluster):
    order = cluster.tmp / "order.txt"
    ids = [cluster.submit("--priority", str(p), "--", "sh", "-c", f"echo {tag} >> {order}")[0]
           for p, tag in [(0, "a"), (5, "b"), (0, "c"), (9, "d")]]
    cluster.drain("--gpus", "none", "--slots", "1")
    assert order.read_text().split() == ["d", "b", "a", "c"]
    assert all(cluster.state(i) == "done" for i in ids)


def test_dependencies_run_in_order_and_cancel_on_failure(cluster):
    order = cluster.tmp / "order.txt"
    first = cluster.submit("--", "sh", "-c", f"echo first >> {order}")[0]
    second = cluster.submit("--after", str(first), "--priority", "9", "--", "sh", "-c", f"echo second >> {order}")[0]
    broken = cluster.submit("--", "false")[0]
    orphan = cluster.submit("--after", str(broken), "--", "sh", "-c", f"echo orphan >> {order}")[0]
    cluster.drain("--gpus", "none", "--slots", "2")
    assert order.read_text().split() == ["first", "second"]
    assert cluster.state(second) == "done" and cluster.state(orphan) == "cancelled"
    assert cluster.result(orphan)["reason"] == f"dependency {broken} failed"


def test_max_jobs_stops_the_worker(cluster):
    ids = [cluster.submit("--", "true")[0] for _ in range(3)]
    proc = cluster.worker("--gpus", "none", "--max-jobs", "2")
    assert proc.wait(30) == 0
    assert [cluster.state(i) for i in ids] == ["done", "done", "pending"]


def test_a_draining_worker_says_which_jobs_it_leaves_pending_and_why(cluster):
    big = cluster.submit("--gpus", "2", "--", "true")[0]
    small = cluster.submit("--", "true")[0]
    pending = cluster.queue.paths.state_dir(State.PENDING)
    (next(pending.glob("gpu2*/*")) / "notes.json").write_text("{}")  # a stray file beside the GPU job: no job
    (pending / "tpu" / "09999").mkdir(parents=True)  # a bucket no expq knows (by hand, or a newer expq)
    (pending / "tpu" / "09999" / "00000077.json").write_text("{}")
    cluster.drain("--gpus", "none")
    assert cluster.state(small) == "done" and cluster.state(big) == "pending"
    log = cluster.worker_log(0)
    assert f"job {big} stays pending: it needs 2 GPU(s), this worker has 0" in log
    assert "job 77 stays pending: pending/tpu is no bucket this expq knows" in log
    assert "notes" not in log


def test_a_worker_started_while_the_queue_is_being_created_completes_it(cluster):
    # a submit creating the queue's folders one by one, caught halfway by a starting worker
    (cluster.root / "queue" / "pending").mkdir(parents=True, mode=0o700)
    cluster.root.chmod(0o700)
    (cluster.root / "queue").chmod(0o700)
    worker = cluster.worker("--gpus", "none")
    job = cluster.submit("--", "true")[0]
    cluster.wait_state(job, "done")
    assert worker.poll() is None, cluster.worker_log(0)
    worker.terminate()
    assert worker.wait(20) == 0


# A brace in a command opens a placeholder: the JSON's braces are written in octal.
SABOTAGE = """
d="$EXPQ_RUN_DIR"
mkdir -p "$d/config-reads" "$d/attempts"
printf '\\173"read": []\\175' > "$d/config-reads/1.json"
mkfifo "$d/config-reads/2.json" "$d/attempts/7.json" "$d/attempts/reset" "$d/result.json.tmp.$PPID"
rm "$d/stderr.log" "$d/run.env" && mkfifo "$d/stderr.log" "$d/run.env"
exit 1
"""


def test_fifos_a_job_leaves_in_its_run_directory_never_block_the_worker(cluster):
    # every file the worker reads or writes there after the child started: the config keys the job
    # read, its attempt records, the log it warns in, the result's temp file, and for the retry the
    # env file and the logs
    (job,) = cluster.submit("--set", "lr=0.1", "--retries", "1", "--", "sh", "-c", SABOTAGE)
    cluster.drain("--gpus", "none", timeout=60)
    assert cluster.state(job) == "failed"
