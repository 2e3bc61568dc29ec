"""argparse value types: ASCII-only numbers, text without NUL or non-UTF-8 bytes, ``--env`` pairs."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from expq.launcher.argtypes import clean_text, count, env_pair, job_id, whole_number
from expq.launcher.cli import main


def refused(parse: object, text: str) -> str:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse(text)  # type: ignore[operator]
    return str(info.value)


@pytest.mark.parametrize("text", ["\u0661", "\uff11", "1_0", " 1", "1 ", "+", "", "0x1", "1" * 31, "١٢"])
def test_job_ids_are_ascii_digits_only(text: str) -> None:
    assert refused(job_id, text) == f"{text!r} is not a job id (a positive number like 12)"


def test_numbers_in_range() -> None:
    priority = whole_number(-10, 10, "a priority")
    assert [priority(t) for t in ("-10", "+3", "007", "10")] == [-10, 3, 7, 10]
    assert refused(priority, "11") == "'11' is not a priority"
    assert job_id("12") == 12 and job_id("1" * 30) == int("1" * 30)
    assert count("--gpus")("0") == 0
    assert refused(count("--gpus"), "-1") == "'-1' is not a whole number >= 0 for --gpus"
    assert refused(count("--gpus"), "\u0662") == "'\u0662' is not a whole number >= 0 for --gpus"


def test_show_of_an_arabic_digit_is_refused_not_job_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "root")
    assert main(["--root", root, "submit", "--", "true"]) == 0
    capsys.readouterr()
    assert main(["--root", root, "show", "\u0661"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("expq: error: argument ID: '\u0661' is not a job id (a positive number like 12) "
                                 "(see 'expq show --help')\n")


@pytest.mark.parametrize(("text", "problem"), [
    ("a\0b", "contains a NUL character"),
    ("caf\udce9", "contains bytes that are not UTF-8"),  # what sys.argv holds for the bytes b"caf\xe9"
])
def test_text_without_nul_or_non_utf8(text: str, problem: str) -> None:
    assert refused(clean_text, text) == f"{text!r} {problem}"
    assert refused(env_pair, f"K={text}") == f"{'K=' + text!r}: the value of K {problem}"


def test_text_that_is_fine() -> None:
    assert clean_text("résumé, 東京 ✓") == "résumé, 東京 ✓"
    assert env_pair("A_1=x=y") == ("A_1", "x=y") and env_pair("EMPTY=") == ("EMPTY", "")


@pytest.mark.parametrize(("text", "message"), [
    ("NOEQUALS", "'NOEQUALS' is not KEY=VALUE with a KEY of letters, digits and _ (not starting with a digit)"),
    ("1A=x", "'1A=x' is not KEY=VALUE with a KEY of letters, digits and _ (not starting with a digit)"),
    ("EXPQ_RUN_DIR=/x", "'EXPQ_RUN_DIR=/x': EXPQ_RUN_DIR is set by the worker for each job and cannot be overridden"),
    ("CUDA_VISIBLE_DEVICES=0",
     "'CUDA_VISIBLE_DEVICES=0': CUDA_VISIBLE_DEVICES is set by the worker for each job and cannot be overridden"),
])
def test_bad_env_pairs(text: str, message: str) -> None:
    assert refused(env_pair, text) == message


def test_non_utf8_bytes_on_a_real_command_line_reach_the_type_as_surrogates(tmp_path: Path) -> None:
    """The bytes a shell passes: Python decodes argv with surrogateescape, and the type refuses them."""
    code = ("import sys, argparse; from expq.launcher.argtypes import clean_text; "
            "p = argparse.ArgumentParser(); p.add_argument('--name', type=clean_text); p.parse_args(sys.argv[1:])")
    proc = subprocess.run([os.fsencode(sys.executable), b"-c", code.encode(), b"--name", b"caf\xe9"],
                          capture_output=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == b"-c: error: argument --name: 'caf\\udce9' contains bytes that are not UTF-8"
