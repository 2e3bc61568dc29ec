"""Tests for expq.launcher.template: placeholders, rendering, checking a whole sweep."""
from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from expq.config import parse_set
from expq.launcher.sweep import expand, parse_sweep
from expq.launcher.template import check, format_value, placeholders, render, render_all

CONFIG = {"lr": 0.001, "seed": 3, "model": {"name": "resnet", "depth": 50, "amp": True}, "tags": ["a", "b"]}


# --- placeholders ---------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, names", [
    ([], set()),
    (["python", "train.py"], set()),
    (["--lr={lr}", "{seed}", "{model.name}-{model.depth}"], {"lr", "seed", "model.name", "model.depth"}),
    (["{lr:.3f}", "{lr}"], {"lr"}),
    (["{{lr}}", "awk '{{print $1}}'"], set()),
    (["{{{lr}}}"], {"lr"}),
    (["{my-key}", "{a_b.c-d}"], {"my-key", "a_b.c-d"}),
])
def test_placeholders(argv: list[str], names: set[str]) -> None:
    assert placeholders(argv) == names


@pytest.mark.parametrize("arg, message", [
    ("{lr", "unbalanced '{' in command argument '{lr': write {{ and }} for literal braces"),
    ("lr}", "unbalanced '}' in command argument 'lr}': write {{ and }} for literal braces"),
    ("{a{b}", "unbalanced '{' in command argument '{a{b}': write {{ and }} for literal braces"),
    ("{lr:{w}}", "unbalanced '{' in command argument '{lr:{w}}': write {{ and }} for literal braces"),
    ("x{}", "empty placeholder {} in command: expected {KEY}; write {{ and }} for literal braces"),
    ("{:3}", "invalid placeholder '{:3}' in command: expected {KEY} or {KEY:FORMAT}; "
             "write {{ and }} for literal braces"),
    ("awk '{print $1}'", "invalid placeholder '{print $1}' in command: expected {KEY} or {KEY:FORMAT}; "
                         "write {{ and }} for literal braces"),
    ("{a..b}", "invalid placeholder '{a..b}' in command: expected {KEY} or {KEY:FORMAT}; "
               "write {{ and }} for literal braces"),
    ("{1..3}", "invalid placeholder '{1..3}' in command: expected {KEY} or {KEY:FORMAT}; "
               "write {{ and }} for literal braces"),
    ("{lr!r}", "invalid placeholder '{lr!r}' in command: expected {KEY} or {KEY:FORMAT}; "
               "write {{ and }} for literal braces"),
])
def test_placeholder_syntax_errors(arg: str, message: str, raises_input) -> None:
    with raises_input(message):
        placeholders(["python", arg])
    with raises_input(message):
        render(["python", arg], CONFIG)


# --- render -------------------------------------------------------------------------------------

def test_render_fills_dotted_keys() -> None:
    argv = ["python", "train.py", "--lr", "{lr}", "--arch={model.name}{model.depth}", "--seed={seed}"]
    assert render(argv, CONFIG) == ["python", "train.py", "--lr", "0.001", "--arch=resnet50", "--seed=3"]


def test_render_leaves_plain_arguments_and_literal_braces() -> None:
    argv = ["bash", "-c", "for i in {{1..3}}; do echo {seed}; done", "{{}}", "}}{{"]
    assert render(argv, CONFIG) == ["bash", "-c", "for i in {1..3}; do echo 3; done", "{}", "}{"]


@pytest.mark.parametrize("value, text", [
    ("plain", "plain"),
    ("", ""),
    ("with space", "with space"),
    ("quo'te\"s", "quo'te\"s"),
    ("héllo ✓ 日本", "héllo ✓ 日本"),
    ("line1\nline2", "line1\nline2"),
    ("{not a placeholder}", "{not a placeholder}"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    (0, "0"),
    (-7, "-7"),
    (0.1, "0.1"),
    (1e-3, "0.001"),
    (1e-5, "1e-05"),
    (3e4, "30000.0"),
    (float("inf"), "inf"),
    ([1, "a b", 2.5], '[1,"a b",2.5]'),
    ({"k": [True, None], "u": "é"}, '{"k":[true,null],"u":"é"}'),
])
def test_value_formatting(value: Any, text: str) -> None:
    assert format_value(value) == text
    assert render(["{v}", "--x={v}"], {"v": value}) == [text, f"--x={text}"]


@pytest.mark.parametrize("value", [True, False, None, 0, -7, 0.1, 1e-3, 1e-5, [1, "a", {"b": None}], {"k": [True]}])
def test_rendered_values_round_trip_through_set_and_yaml(value: Any) -> None:
    text = format_value(value)
    assert parse_set(f"v={text}") == ("v", value)
    assert json.loads(text) == value
    if not (isinstance(value, float) and "e" in text):  # plain YAML 1.1 reads 1e-05 as a string
        assert yaml.safe_load(text) == value


def test_render_a_mapping_placeholder_gives_json() -> None:
    assert render(["{model}"], CONFIG) == ['{"name":"resnet","depth":50,"amp":true}']


@pytest.mark.parametrize("arg, text", [
    ("{lr:.3f}", "0.001"),
    ("{lr:.1e}", "1.0e-03"),
    ("{seed:04d}", "0003"),
    ("{model.name:>8}", "  resnet"),
    ("{model.depth:}", "50"),
    ("run-{seed:02d}-{model.name}", "run-03-resnet"),
])
def test_format_specs(arg: str, text: str) -> None:
    assert render([arg], CONFIG) == [text]


def test_bad_format_spec_for_the_value(raises_input) -> None:
    with raises_input("invalid placeholder '{model.name:.3f}' in command: format '.3f' does not apply to str "
                      "'resnet' (Unknown format code 'f' for object of type 'str')"):
        render(["{model.name:.3f}"], CONFIG)
    with raises_input("invalid placeholder '{tags:d}' in command: format 'd' does not apply to list "
                      "['a', 'b'] (unsupported format string passed to list.__format__)"):
        render(["{tags:d}"], CONFIG)


@pytest.mark.parametrize("arg, what, digits", [
    ("{seed:>1000000000}", "width", "1000000000"),
    ("{seed:x^1001}", "width", "1001"),
    ("{lr:.2000f}", "precision", "2000"),
    ("{seed:0>99999999999999999999}", "width", "99999999999999999999"),
    ("{seed:" + "9" * 5000 + "}", "width", "9" * 5000),
])
def test_format_widths_are_bounded(arg: str, what: str, digits: str, raises_input) -> None:
    """Refused when the command is parsed: nothing is formatted, so no gigabyte is ever built."""
    from expq.config import show
    from expq.launcher.template import MAX_FORMAT_WIDTH

    with raises_input(f"invalid placeholder {show(arg)} in command: format {what} {show(digits, 20)} is more than "
                      f"{MAX_FORMAT_WIDTH}"):
        placeholders(["echo", arg])


def test_format_widths_up_to_the_bound_work() -> None:
    padded, zeros, precise = render(["{seed:0>1000}", "{seed:0000000000008}", "{lr:.1000f}"], CONFIG)
    assert (padded, zeros) == ("0" * 999 + "3", "00000003")
    assert precise.startswith("0.001") and len(precise) == 1002


@pytest.mark.parametrize("arg, name", [("{lr_}", "lr_"), ("{model.width}", "model.width"),
                                       ("{model.name.x}", "model.name.x"), ("{Lr}", "Lr")])
def test_unknown_placeholder(arg: str, name: str, raises_input) -> None:
    with raises_input(f"unknown placeholder {{{name}}} in command: no such config key"):
        render(["python", arg], CONFIG)


def test_render_does_not_mutate_inputs() -> None:
    argv = ["{lr}"]
    config = {"lr": [1]}
    render(argv, config)
    assert argv == ["{lr}"] and config == {"lr": [1]}


# --- render_all / check -------------------------------------------------------------------------

def test_render_all_renders_each_point() -> None:
    points = expand({"lr": 0.1}, [parse_sweep("lr=0.1,0.2"), parse_sweep("seed=1,2")])
    commands = render_all(["train", "--lr={lr}", "--seed={seed}"], [cfg for cfg, _ in points])
    assert commands == [["train", "--lr=0.1", "--seed=1"], ["train", "--lr=0.1", "--seed=2"],
                        ["train", "--lr=0.2", "--seed=1"], ["train", "--lr=0.2", "--seed=2"]]
    assert render_all(["x"], []) == []


def test_check_thousand_point_sweep_with_one_bad_point(raises_input) -> None:
    sweeps = [("opt", [{"lr": 0.1}, {"lr": 0.2}, {"wd": 0}, {"lr": 0.3}]), parse_sweep("seed=range(250)")]
    configs = [cfg for cfg, _ in expand({}, sweeps)]
    assert len(configs) == 1000
    with raises_input("unknown placeholder {opt.lr} in command: no such config key (job 501 of 1,000)"):
        check(["train", "--lr={opt.lr}", "--seed={seed}"], configs)
    check(["train", "--seed={seed}", "{opt}"], configs)


def test_check_single_config_has_no_job_suffix(raises_input) -> None:
    with raises_input("unknown placeholder {nope} in command: no such config key"):
        check(["{nope}"], [CONFIG])


def test_check_syntax_error_is_reported_even_without_configs(raises_input) -> None:
    with raises_input("unbalanced '{' in command argument '{lr': write {{ and }} for literal braces"):
        check(["{lr"], [])


def test_render_all_ten_thousand() -> None:  # its speed is measured in benchmarks/, never asserted
    configs = [cfg for cfg, _ in expand({"model": {"name": "m"}}, [parse_sweep("lr=range(100)"),
                                                                   parse_sweep("seed=range(100)")])]
    argv = ["python", "train.py", "--lr={lr}", "--seed={seed:03d}", "--name={model.name}", "--flag"]
    commands = render_all(argv, configs)
    assert len(commands) == 10_000
    assert commands[-1] == ["python", "train.py", "--lr=99", "--seed=099", "--name=m", "--flag"]
