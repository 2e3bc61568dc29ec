"""``status --json`` on a big queue: the listing held as ids and the fast path for pending jobs that never
started give the records, counts, places and order the full path gives, and a damaged or foreign spec file
is judged by the full path, as before (real files throughout)."""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from expq.launcher import report
from expq.launcher.cli import main
from expq.launcher.listing import Listing
from expq.launcher.status_json import LineTemplate, encode_record, slot
from expq.queue.attempts import Outcome, finish_attempt
from expq.queue.labels import update_labels
from expq.queue.paths import listed_id
from expq.queue.spec import JobSpec, expected_run_dir
from expq.queue.states import State
from expq.queue.store import JobQueue

sys.path.insert(0, str(Path(__file__).parent))
from test_report import NOW, RESULT, add, attempt, finish, write_worker  # noqa: E402


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def full_record(queue: JobQueue, name: str, workers: report.Workers, place: int) -> dict[str, Any] | None:
    """The record the full path gives a pending file: the spec read and checked, then ``record``."""
    found = report._read_spec(queue, State.PENDING, name)
    return None if found is None else report.record(queue, found[0], found[1], workers, NOW, place)


def fast_and_full(queue: JobQueue, listed: bool = True) -> list[tuple[dict[str, Any] | None, dict[str, Any] | None]]:
    """(fast path's record, full path's record) of every pending file, in schedule order; ``listed``: the
    fast path lists experiment folders rather than stat each run directory."""
    workers = report.Workers(queue, NOW)
    unstarted = report._Unstarted(queue, workers, report._RunDirs(queue.paths.experiments, listed),
                                  report._SpecFiles(queue))
    return [(unstarted.record(name, place), full_record(queue, name, workers, place))
            for place, name in enumerate(queue.list_names(State.PENDING), 1)]


def status_json(queue: JobQueue, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["--root", str(queue.root), "status", "--json", *argv]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


SPECS: list[dict[str, Any]] = [
    {},
    {"gpus": 1},
    {"gpus": 2, "gpu_mem": 6 << 30},
    {"gpus": 1, "gpu_mem": 1000},  # not a whole MiB: its bucket rounds up
    {"priority": 7, "retries": 3, "timeout": 90.5},
    {"priority": -9999, "timeout": 60},
    {"config": {"lr": 0.1, "model": {"layers": [1, 2, None]}, "flag": True, "s": "é\u2028"}},
    {"experiment": "expé", "name": "λ=0.1 seed=2"},
    {"env": {"CUDA_LAUNCH_BLOCKING": "1", "A": "x y"}, "user": "alice", "fingerprint": "f" * 40},
    {"placeholders": ("lr",), "strict": True, "command": ("python", "-c", "print('{lr}')")},
    {"submitted_at": 1_700_000_000},  # an int where a float is usual
    {"submitted_at": float("inf")},  # JSON's Infinity, which nothing refuses
]


def add_spec(queue: JobQueue, **fields: Any) -> JobSpec:
    """One pending job; its run directory follows its experiment and name."""
    (spec,) = add(queue, **fields)
    queue.paths.pending_file(spec).unlink()
    spec = JobSpec.from_dict({**spec.to_dict(), "run_dir": expected_run_dir(spec.id, spec.experiment, spec.name)})
    queue.paths.pending_file(spec).write_bytes(spec.to_json())
    return spec


def test_the_fast_path_gives_the_full_paths_record(queue: JobQueue) -> None:
    for fields in SPECS:
        add_spec(queue, **fields)
    pairs = fast_and_full(queue)
    assert len(pairs) == len(SPECS) and all(fast is not None for fast, _ in pairs)
    assert [fast for fast, _ in pairs] == [full for _, full in pairs]
    assert [json.dumps(fast) for fast, _ in pairs] == [json.dumps(full) for _, full in pairs]  # same types too


LINE_SPECS: list[dict[str, Any]] = [
    {"submitted_at": float("nan")}, {"submitted_at": float("-inf")}, {"submitted_at": 10**400},  # past a float
    {"name": "100%_%s", "config": {"%d": "%(x)s", "q": "a\"b\\c\n"}, "command": ("echo", "%s", "50%", "é\u2028")},
    {"cwd": "/tmp/ü nicode", "user": "ユーザー", "experiment": "%exp", "gpus": 3, "gpu_mem": 1 << 40, "timeout": 1e-3},
]


def test_the_fast_paths_line_is_the_full_records_encoding(queue: JobQueue) -> None:
    """``status --json`` writes a never-started job's line from a template (``_Unstarted.line``): byte for
    byte the encoding of the full path's record, for every kind of value, ``%`` and NaN included."""
    for fields in SPECS + LINE_SPECS:
        add_spec(queue, **fields)
    write_worker(queue, "w", 1)
    workers = report.Workers(queue, NOW)
    unstarted = report._Unstarted(queue, workers, report._RunDirs(queue.paths.experiments, True),
                                  report._SpecFiles(queue))
    names = queue.list_names(State.PENDING)
    lines = [unstarted.line(name, place) for place, name in enumerate(names, 1)]
    full = [full_record(queue, name, workers, place) for place, name in enumerate(names, 1)]
    assert len(lines) == len(SPECS) + len(LINE_SPECS) and None not in lines and None not in full
    assert lines == [encode_record(rec) for rec in full]
    assert "NaN" in "".join(map(str, lines)) and "-Infinity" in "".join(map(str, lines))


def test_a_template_fills_its_slots_in_the_records_layout() -> None:
    record = {"a": slot(1), "b": [slot(0)], "c": "50%", "d": None}
    template = LineTemplate(record, 2)
    assert template.fill(['"x%s"', "7"]) == '{"a":7,"b":["x%s"],"c":"50%","d":null}'
    for slots in (1, 3):  # a slot left out of the record, or one the record does not have
        with pytest.raises(ValueError, match="each of its"):
            LineTemplate(record, slots)
    with pytest.raises(ValueError, match="each of its"):
        LineTemplate({**record, "e": slot(0)}, 2)  # a slot twice


def test_reasons_from_the_workers_are_the_full_paths(queue: JobQueue) -> None:
    add(queue, gpus=1)
    add(queue, gpus=4)
    add(queue)
    said = []
    for name, gpus in (("", 0), ("w-small", 2), ("w-big", 8)):
        if name:
            write_worker(queue, name, gpus)
        pairs = fast_and_full(queue)
        assert all(fast is not None and fast == full for fast, full in pairs)
        said.append([fast["reason"] for fast, _ in pairs if fast is not None])
    assert said == [["no live worker"] * 3, ["", "needs 4 GPUs (largest worker has 2)", ""], ["", "", ""]]


def _written(queue: JobQueue, spec: JobSpec) -> Path:
    """A spec file outside the queue, to be placed in it."""
    path = queue.paths.incoming / f"{spec.id}.json"
    path.write_bytes(spec.to_json())
    return path


@pytest.mark.parametrize("listed", [True, False])
def test_jobs_the_fast_path_leaves_to_the_full_path(queue: JobQueue, listed: bool) -> None:
    _, tagged, requeued, empty, file = add(queue, 5)
    waits = JobSpec.from_dict({**add(queue)[0].to_dict(), "after": [1]})
    queue.paths.pending_file(waits).unlink()
    queue.place_pending(_written(queue, waits), waits, waiting=True)
    update_labels(queue.root / tagged.run_dir, add=["best"], note="keep")
    finish_attempt(queue.paths.run(requeued.run_dir), attempt(1), outcome=Outcome.PREEMPTED)
    (queue.root / empty.run_dir).mkdir(parents=True)
    (queue.root / file.run_dir).write_text("")  # a file where the run directory goes: never started, to both
    pairs = fast_and_full(queue, listed)
    assert [fast is None for fast, _ in pairs] == [False, True, True, True, False, True]
    assert pairs[4][0] == pairs[4][1]
    full = {rec["id"]: rec for _, rec in pairs if rec is not None}
    assert (full[2]["tags"], full[2]["note"], full[3]["attempts"], full[4]["attempts"]) == (["best"], "keep", 1, 0)
    assert full[6]["reason"] == "after 1"


def damage(queue: JobQueue) -> dict[int, str]:
    """Jobs 1-12 pending, 2-11 damaged in every way a spec file can be; what each one is."""
    specs = add(queue, 12, gpus=1)
    path = {spec.id: queue.paths.pending_file(spec) for spec in specs}
    data = {spec.id: spec.to_dict() for spec in specs}
    path[2].write_text('{"version": 1, "id": 2, "exper')
    path[3].unlink()
    os.mkfifo(path[3])
    path[4].unlink()
    path[4].symlink_to(path[1])
    path[5].unlink()
    path[5].mkdir()
    path[6].write_text(json.dumps({**data[6], "colour": "red"}))
    path[7].write_text(json.dumps({**data[7], "gpus": "1"}))
    path[8].write_text(json.dumps({**data[8], "version": 2}))
    path[9].write_text(json.dumps(data[1]))  # the spec of job 1 in job 9's file
    path[10].write_text(json.dumps({**data[10], "gpus": 2}))  # in the bucket of one GPU
    path[11].write_text("[" * 100_000 + "]" * 100_000)
    short = {key: value for key, value in data[12].items() if key not in ("env", "placeholders", "strict")}
    path[12].write_text(json.dumps(short))  # valid: the fast path wants every key, the full path fills them in
    return {2: "torn", 3: "a FIFO", 4: "a link", 5: "a folder", 6: "an unknown key", 7: "a wrong type",
            8: "a newer version", 9: "another job's spec", 10: "the wrong bucket", 11: "nested too deep"}


def test_damaged_spec_files_are_judged_by_the_full_path(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    damaged = damage(queue)
    pairs = fast_and_full(queue)
    assert [fast is None for fast, _ in pairs] == [job in damaged or job == 12 for job in range(1, 13)]
    assert [full is None for _, full in pairs] == [job in damaged for job in range(1, 13)]
    out = status_json(queue, capsys)
    assert out["counts"]["pending"] == 12  # counted, as in the listing, but not listed
    assert [(job["id"], job["queue_position"]) for job in out["jobs"]] == [(1, 1), (12, 12)]
    assert out["jobs"][1] == pairs[11][1]


def test_the_listing_is_the_stores_in_the_same_order(queue: JobQueue) -> None:
    for priority, gpus in ((0, 1), (5, 0), (0, 0), (-3, 2), (5, 1)):
        add(queue, 3, priority=priority, gpus=gpus)
    specs = add(queue, 4)
    for spec in specs[:3]:
        finish(queue, spec, State.DONE if spec.id % 2 else State.FAILED, None)
    pending = queue.paths.state_dir(State.PENDING)
    for stray in ("gpu1/09999/notes.json", "cpu/09994/7.json", "cpu/09999/123456789.json", "after/09999/x.json"):
        (pending / stray).parent.mkdir(parents=True, exist_ok=True)
        (pending / stray).write_text("{}")
    (pending / "gpu1" / "09999" / "readme.txt").write_text("not a spec")
    for stray in ("notes.json", "1.json", "00000002-x.json", "123456789.json"):
        (queue.paths.state_dir(State.DONE) / stray).write_text("{}")
    listing = Listing.listed(queue)
    assert [name for name, _, _ in listing.pending.items()] == queue.list_names(State.PENDING)
    assert [place for _, _, place in listing.pending.items()] == list(range(1, len(listing.pending) + 1))
    for state in State:
        if state is not State.PENDING:
            assert list(listing.names[state]) == queue.list_names(state)
    assert listing.counts() == {state.value: len(queue.list_names(state)) for state in State}
    assert listing.names[State.DONE].tail(3) == queue.list_names(State.DONE)[-3:]
    names = queue.list_names(State.PENDING)
    for job in [*range(1, 23), 123_456_789, -1]:  # every job, one not there, and the id of stray names
        first = next((place for place, name in enumerate(names, 1) if listed_id(name) == job), None)
        assert listing.pending.place_of(job) == first
    assert listing.pending.place_of(-1) is not None  # a stray name has a place (``show`` never asks for it)
    even = listing.pending.only(lambda job, name: job % 2 == 0)  # a part of the schedule keeps its places
    assert [even.place_of(job) for job in range(1, 23)] == [
        listing.pending.place_of(job) if job % 2 == 0 else None for job in range(1, 23)]
    # by id alone, without making names: the same files, in the same order, stray names (-1) included
    for keep in (lambda job: job % 3 != 1, lambda job: job < 0, lambda job: True):
        assert list(listing.files(keep)) == [entry for entry in listing if keep(entry[1])]
        by_ids, by_files = listing.only_jobs(keep), listing.only(lambda state, job, name, keep=keep: keep(job))
        assert list(by_ids) == list(by_files)
        assert list(by_ids.pending.items()) == list(by_files.pending.items())  # places kept too


def test_nine_digit_ids_and_stray_names_keep_their_places(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    add(queue, 3)
    big = JobSpec.from_dict({**add(queue)[0].to_dict(), "id": 123_456_789, "name": "big",
                             "run_dir": "experiments/exp/123456789-big"})
    queue.paths.pending_file(big).write_bytes(big.to_json())
    (queue.paths.state_dir(State.PENDING) / "cpu" / "09999" / "00000002-x.json").write_text("{}")
    out = status_json(queue, capsys)
    order = queue.list_names(State.PENDING)
    assert [(job["id"], job["queue_position"]) for job in out["jobs"]] == [
        (job, order.index(queue.paths.file_name(State.PENDING, job, 0)) + 1) for job in (1, 2, 3, 4, 123_456_789)]
    assert out["counts"]["pending"] == 6


@pytest.mark.parametrize("list_from", [1, report._LIST_RUN_DIRS_FROM])
def test_every_record_of_status_json_is_the_full_paths(queue: JobQueue, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, list_from: int) -> None:
    """With run directories found by listing experiment folders (as for a big queue) or by stats."""
    monkeypatch.setattr(report, "_LIST_RUN_DIRS_FROM", list_from)
    specs = add(queue, 8, gpus=1) + add(queue, 4, priority=3)
    update_labels(queue.root / specs[5].run_dir, add=["best"])
    finish(queue, specs[0], State.DONE, None)
    finish(queue, specs[1], State.FAILED, None)
    assert queue.move(specs[2], State.PENDING, State.CANCELLED)
    write_worker(queue, "w", 1)
    stray = (queue.root / specs[3].run_dir).parent / "99999999999999999999-stray"  # no id an array can hold
    stray.mkdir(parents=True)
    out = status_json(queue, capsys)
    workers = report.Workers(queue, time.time())
    schedule = queue.list_names(State.PENDING)
    for job in out["jobs"]:
        state, spec = queue.get(job["id"])
        place = schedule.index(queue.paths.pending_file(spec).relative_to(
            queue.paths.state_dir(State.PENDING)).as_posix()) + 1 if state is State.PENDING else None
        expected = report.record(queue, state, spec, workers, time.time(), place)
        assert {k: v for k, v in job.items() if k != "elapsed"} == {k: v for k, v in expected.items() if k != "elapsed"}
    assert [job["id"] for job in out["jobs"]] == [1, 2, 3, 9, 10, 11, 12, 4, 5, 6, 7, 8]
    assert status_json(queue, capsys, "--state", "failed", "--state", "done")["counts"] == {
        "pending": 0, "running": 0, "done": 1, "failed": 1, "cancelled": 0}



def test_blocks_made_by_helper_processes_are_the_ones_made_alone(queue: JobQueue, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``status --json`` made in blocks of 4 by the parent and 0, 1 or 2 forked helpers: the same bytes,
    and the CLI (helpers per CPU) gives them too."""
    from expq.launcher.status_json import write_status_json

    monkeypatch.setattr(report, "STREAM_BLOCK", 4)
    specs = add(queue, 30, gpus=1) + add(queue, 9, priority=3) + add(queue, 4, after=[1])
    for spec in specs[:5]:
        finish(queue, spec, State.DONE, None)
    finish(queue, specs[5], State.FAILED, None)
    assert queue.move(specs[6], State.PENDING, State.CANCELLED)
    outputs = []
    for helpers in (0, 1, 2):
        counts, blocks = report.stream(queue, report.Query(everything=True), now=NOW, helpers=helpers)
        out = io.BytesIO()
        write_status_json(out, counts, blocks)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] == outputs[2]
    listed = json.loads(outputs[0])
    assert sorted(job["id"] for job in listed["jobs"]) == [spec.id for spec in specs]
    assert listed["counts"] == {"pending": 36, "running": 0, "done": 5, "failed": 1, "cancelled": 1}
    cli = status_json(queue, capsys)
    assert [job["id"] for job in cli["jobs"]] == [job["id"] for job in listed["jobs"]]


def test_finished_jobs_take_a_fast_path_to_the_full_paths_records(queue: JobQueue) -> None:
    """A finished job's record from its spec file's dict is the full path's, whatever its run files hold;
    a spec file the full path must judge (another job's, not every key) is left to it."""
    specs = add(queue, 8)
    runs = [queue.paths.run(spec.run_dir) for spec in specs]
    update_labels(runs[4].dir, add=["best"], note="keep")
    for spec in specs[:5] + specs[6:]:
        finish(queue, spec, State.FAILED if spec is specs[1] else State.DONE, None if spec is specs[1] else RESULT)
    runs[2].result.write_text('{"version": 1, "sta')  # torn
    runs[3].result.unlink()
    runs[3].result.mkdir()  # a folder where the result goes
    assert queue.move(specs[5], State.PENDING, State.CANCELLED)  # before it ran: no run directory
    done = queue.paths.state_dir(State.DONE)
    (done / f"{specs[6].id:08d}.json").write_bytes(specs[0].to_json())  # another job's spec
    short = {k: v for k, v in specs[7].to_dict().items() if k not in ("env", "placeholders", "strict")}
    (done / f"{specs[7].id:08d}.json").write_text(json.dumps(short))  # valid, without every key
    workers = report.Workers(queue, NOW)
    maker = report._RecordMaker(queue, report._select(queue, report.Query(everything=True), 0), workers, NOW)
    fast, full = {}, {}
    for state in (State.DONE, State.FAILED, State.CANCELLED):
        for name in queue.list_names(state):
            found = report._read_spec(queue, state, name)
            fast[listed_id(name)] = maker._finished_record(state, name)
            full[listed_id(name)] = None if found is None else report.record(queue, *found, workers, NOW)
    assert [job for job, rec in sorted(fast.items()) if rec is None] == [specs[6].id, specs[7].id]
    assert all(fast[job] == full[job] for job in fast if fast[job] is not None)
    assert full[specs[6].id] is None and full[specs[7].id] is not None
    reasons = {job: full[job]["reason"] for job in (specs[2].id, specs[3].id)}  # type: ignore[index]
    assert reasons == {specs[2].id: "result.json is not valid JSON", specs[3].id: "result.json is a directory"}
    assert (fast[specs[4].id]["tags"], fast[specs[4].id]["note"]) == (["best"], "keep")  # type: ignore[index]


def test_the_experiment_filter_made_by_helper_processes_is_the_one_made_alone(
        queue: JobQueue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``--experiment`` reads every spec for its experiment, in blocks (of 4 here) that 0, 1 or 2 forked
    helpers share: the same jobs and counts each time, in every state, and a damaged spec is not counted."""
    monkeypatch.setattr(report, "STREAM_BLOCK", 4)
    mine = add(queue, 9, experiment="mine", gpus=1) + add(queue, 5, experiment="mine", priority=4)
    theirs = add(queue, 11, experiment="theirs") + add(queue, 3, experiment="theirs", gpus=1)
    for spec in mine[:3] + theirs[:2]:
        finish(queue, spec, State.DONE, None)
    finish(queue, mine[3], State.FAILED, None)
    assert queue.move(theirs[2], State.PENDING, State.CANCELLED)
    queue.paths.pending_file(mine[4]).write_text('{"version": 1, "experiment": "mi')  # torn: not counted
    chosen = [report._select(queue, report.Query(experiment="mine", everything=True), helpers)
              for helpers in (0, 1, 2)]
    assert chosen[0].counts == {"pending": 9, "running": 0, "done": 3, "failed": 1, "cancelled": 0}
    assert all(list(c.listing) == list(chosen[0].listing) and c.counts == chosen[0].counts for c in chosen)
    assert sorted(job for _, job, _ in chosen[0].listing) == sorted(s.id for s in mine if s is not mine[4])
    listed = status_json(queue, capsys, "--experiment", "mine")  # the CLI: a helper per further CPU
    assert listed["counts"] == chosen[0].counts
    assert sorted(job["id"] for job in listed["jobs"]) == sorted(job for _, job, _ in chosen[0].listing)


def test_a_watched_experiment_reads_each_spec_once(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """``status --watch --experiment`` keeps what it read: a spec never changes, so a later frame reads
    only the jobs submitted since, and still counts the jobs that moved on, whoever read them."""
    monkeypatch.setattr(report, "STREAM_BLOCK", 4)
    mine, theirs = add(queue, 6, experiment="mine"), add(queue, 7, experiment="theirs", gpus=1)
    members = report.Members("mine")
    query = report.Query(experiment="mine", everything=True)
    first = report._select(queue, query, 1, members)
    assert first.counts["pending"] == 6
    # were mine[0]'s spec read again, this (impossible) edit would take it out of the experiment
    queue.paths.pending_file(mine[0]).write_text(queue.paths.pending_file(theirs[0]).read_text())
    finish(queue, mine[1], State.DONE, None)
    later = add(queue, 2, experiment="theirs") + add(queue, 2, experiment="mine")  # the newest is mine
    second = report._select(queue, query, 1, members)
    assert second.counts == {"pending": 7, "running": 0, "done": 1, "failed": 0, "cancelled": 0}
    assert sorted(job for _, job, _ in second.listing) == sorted(s.id for s in mine + later[2:])
    fresh = report._select(queue, query, 0)  # without the memory: the edited spec is read as it is now
    assert fresh.counts["pending"] == 6
    (queue.paths.state_dir(State.DONE) / "notes.json").write_text("{}")  # a stray file is no job (id -1)
    (queue.paths.state_dir(State.DONE) / "99999999999999.json").write_text("{}")  # nor is a huge id's
    third = report._select(queue, query, 1, members)
    assert third.counts == second.counts and list(third.listing) == list(second.listing)
    assert len(members._dense) < 100  # the huge id costs one dict entry, not a byte per id below it
