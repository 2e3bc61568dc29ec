"""``expq tag ID... +T -T`` and ``expq note ID "text"``: label jobs after the fact.

Labels live in ``labels.json`` beside the job's ``job.json`` (``expq.queue.labels``); the spec stays
immutable. ``-T`` after the ids is a tag to remove, not an option, so the words after ``tag`` are
read by hand: ids (``12``, ``3,4``, ``3-40``) first, then ``+TAG`` / ``-TAG``. Every word and id is
checked before any job's labels change.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run_tag", "run_note", "parse_tag_words"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tag", help="add (+T) or remove (-T) tags of jobs; without changes, print their tags",
        usage="expq tag ID... [+TAG] [-TAG] ...",
        description="Add (+TAG) and remove (-TAG) tags of the jobs. Without +/- words, print each job's tags.")
    p.add_argument("words", nargs=argparse.REMAINDER, metavar="ID... +TAG -TAG", help=argparse.SUPPRESS)
    p.set_defaults(run=run_tag)

    p = subparsers.add_parser("note", help="set (or print) the note of a job",
                              description='Set the note of job ID ("" clears it); without TEXT, print it.')
    p.add_argument("id", metavar="ID", type=_job_id)
    p.add_argument("text", nargs="?", metavar="TEXT", type=_text)
    p.set_defaults(run=run_note)


def _job_id(text: str) -> int:
    from expq.launcher.argtypes import job_id

    return job_id(text)


def _text(text: str) -> str:
    from expq.launcher.argtypes import clean_text

    return clean_text(text)


def parse_tag_words(words: list[str]) -> tuple[list[int], list[str], list[str]]:
    """Ids, tags to add and tags to remove from the words after ``expq tag``.

    Raises:
        InputError: no id, a word that is neither an id nor ``+TAG``/``-TAG``, an id after a tag, a bad tag.
    """
    from expq.errors import InputError
    from expq.launcher.selectors import job_ids
    from expq.queue.labels import check_tag

    ids: list[int] = []
    add: list[str] = []
    remove: list[str] = []
    for word in words:
        if word.startswith("--"):
            raise InputError(f"expq tag: {word.split('=')[0]} must come before the ids (expq tag [--root DIR] ID... +TAG -TAG)")
        if word[:1] in ("+", "-") and not ids:
            raise InputError(f"expq tag: give the job ids first, then +TAG or -TAG (got {word!r})")
        if word[:1] == "+":
            add.append(check_tag(word[1:]))
        elif word[:1] == "-":
            remove.append(check_tag(word[1:]))
        elif add or remove:
            raise InputError(f"expq tag: {word!r} comes after the tags: give the job ids first")
        else:
            try:
                ids += job_ids(word)
            except argparse.ArgumentTypeError as exc:
                raise InputError(f"expq tag: {exc}; tags need a + (add) or - (remove) in front") from None
    if not ids:
        raise InputError("expq tag: no job id given (expq tag ID... +TAG -TAG)")
    both = set(add) & set(remove)
    if both:
        raise InputError(f"expq tag: {sorted(both)[0]!r} is both added and removed")
    return list(dict.fromkeys(ids)), add, remove


def run_tag(args: argparse.Namespace) -> int:
    from expq.queue.labels import read_labels, update_labels
    from expq.queue.store import JobQueue

    ids, add, remove = parse_tag_words(list(args.words))
    queue = JobQueue(args.root).require()
    queue.check_ids_exist(ids)
    run_dirs = {job: queue.paths.run(queue.get(job)[1].run_dir).dir for job in ids}
    out = []
    for job, run_dir in run_dirs.items():
        labels = update_labels(run_dir, add, remove) if add or remove else read_labels(run_dir)
        out.append(f"{job} {','.join(labels.tags) or '-'}\n")
    sys.stdout.write("".join(out))
    return 0


def run_note(args: argparse.Namespace) -> int:
    from expq.errors import InputError
    from expq.queue.labels import MAX_NOTE, read_labels, update_labels
    from expq.queue.store import JobQueue

    queue = JobQueue(args.root).require()
    _, spec = queue.get(args.id)
    run_dir = queue.paths.run(spec.run_dir).dir
    if args.text is None:
        note = read_labels(run_dir).note
        sys.stdout.write(f"{note}\n" if note else "")
        return 0
    if len(args.text) > MAX_NOTE:
        raise InputError(f"the note is longer than {MAX_NOTE:,} characters")
    update_labels(run_dir, note=args.text)
    return 0
