"""Real processes: 8 submitting while 8 claim. Ids never repeat, every job is claimed exactly once, none is lost."""
from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from pathlib import Path

from expq.queue.claim import Claimer
from expq.queue.ids import allocate_ids, last_id
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue

SUBMITTERS = 8
CLAIMERS = 8
BATCHES = (1, 5, 2, 9, 1, 1, 13, 3, 1, 4)  # 40 jobs per submitter, in batches of different sizes


def _submitter(root: str, out: str, index: int) -> None:
    queue = JobQueue(root)
    ids: list[int] = []
    for batch in BATCHES:
        specs = [JobSpec(id=job, experiment="e", name=f"s{index}", command=("true",),
                         run_dir=f"experiments/e/{job}-s{index}", cwd="/", submitted_at=0.0, priority=job % 3)
                 for job in allocate_ids(queue.paths, batch)]
        ids += queue.enqueue(specs)
    Path(out, f"submitted-{index}").write_text("\n".join(map(str, ids)))


def _claimer(root: str, out: str, index: int) -> None:
    queue = JobQueue(root)
    claimer = Claimer(queue, relist_interval=0.01)
    claimed: list[int] = []
    stop = Path(out, "all-submitted")
    while True:
        got = claimer.claim(lambda spec: True, lambda reservation: None)
        if got is not None:
            claimed.append(got.spec.id)
            assert queue.move(got.spec, State.RUNNING, State.DONE, claim=got.token)
        elif stop.exists() and not queue.list_names(State.PENDING):
            break
    Path(out, f"claimed-{index}").write_text("\n".join(map(str, claimed)))


def _ids(path: Path) -> list[int]:
    text = path.read_text()
    return [int(line) for line in text.split("\n")] if text else []


def test_concurrent_submitters_and_claimers(tmp_path: Path) -> None:
    root, out = tmp_path / "root", tmp_path / "out"
    out.mkdir()
    queue = JobQueue(root).create()
    ctx = multiprocessing.get_context("fork")
    claimers = [ctx.Process(target=_claimer, args=(str(root), str(out), i)) for i in range(CLAIMERS)]
    submitters = [ctx.Process(target=_submitter, args=(str(root), str(out), i)) for i in range(SUBMITTERS)]
    for process in claimers + submitters:
        process.start()
    for process in submitters:
        process.join(60)
    Path(out, "all-submitted").touch()
    for process in claimers:
        process.join(60)
    assert [p.exitcode for p in submitters + claimers] == [0] * (SUBMITTERS + CLAIMERS)

    total = SUBMITTERS * sum(BATCHES)
    submitted = [job for i in range(SUBMITTERS) for job in _ids(out / f"submitted-{i}")]
    assert len(submitted) == len(set(submitted)) == total          # ids unique across processes
    assert set(submitted) == set(range(1, total + 1)) and last_id(queue.paths) == total
    claimed = Counter(job for i in range(CLAIMERS) for job in _ids(out / f"claimed-{i}"))
    assert set(claimed) == set(submitted)                            # none lost
    assert [job for job, n in claimed.items() if n > 1] == []        # none claimed twice
    assert queue.list_ids(State.DONE) == sorted(submitted)
    assert queue.list_names(State.PENDING) == queue.list_names(State.RUNNING) == []
    assert os.listdir(queue.paths.incoming) == []
    assert sum(1 for i in range(CLAIMERS) if _ids(out / f"claimed-{i}")) > 1  # they really competed
