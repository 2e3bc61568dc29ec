"""Tests for expq.config as submit uses it: files, merging, --set parsing and dotted keys."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from expq.config import (
    MISSING,
    deep_merge,
    get_dotted,
    load_config_files,
    parse_set,
    parse_value,
    resolve_config,
    set_dotted,
)
from expq.errors import InputError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- load_config_files -------------------------------------------------------------------------

def test_yaml_and_json_files_merge_in_order(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "model:\n  lr: 1e-3\n  layers: [1, 2]\nseed: 1\n")
    b = write(tmp_path / "b.json", json.dumps({"model": {"layers": [3]}, "name": "x"}))
    c = write(tmp_path / "c.yml", "model:\n  dropout: 0.1\nseed: 2\n")
    assert load_config_files([a, str(b), c]) == {
        "model": {"lr": 0.001, "layers": [3], "dropout": 0.1}, "seed": 2, "name": "x",
    }


def test_no_files_and_empty_file_give_empty_mapping(tmp_path: Path) -> None:
    assert load_config_files([]) == {}
    assert load_config_files([write(tmp_path / "e.yaml", "# nothing yet\n")]) == {}


def test_unknown_extension_is_read_as_yaml(tmp_path: Path) -> None:
    assert load_config_files([write(tmp_path / "cfg.conf", "a: {b: 1}\n")]) == {"a": {"b": 1}}


def test_yaml_typing_matches_hydra(tmp_path: Path) -> None:
    path = write(tmp_path / "t.yaml", "a: 1e-3\nb: 3e4\nc: 2024-01-02\nd: .5\ne: 1_000\nf: true\ng: ~\n")
    assert load_config_files([path]) == {"a": 0.001, "b": 30000.0, "c": "2024-01-02", "d": 0.5,
                                         "e": 1000, "f": True, "g": None}


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "base: &b {lr: 1, wd: 2}\nrun:\n  <<: *b\n  lr: 3\n")
    assert load_config_files([path])["run"] == {"lr": 3, "wd": 2}


def test_missing_file(tmp_path: Path, raises_input) -> None:
    path = tmp_path / "nope.yaml"
    with raises_input(f"cannot read --config {str(path)!r}: No such file or directory"):
        load_config_files([path])


def test_directory_is_unreadable(tmp_path: Path, raises_input) -> None:
    with raises_input(f"cannot read --config {str(tmp_path)!r}: Is a directory"):
        load_config_files([tmp_path])


def test_non_utf8_file(tmp_path: Path, raises_input) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"a: \xff\xfe\n")
    with raises_input(f"invalid --config {str(path)!r}: expected UTF-8 text"):
        load_config_files([path])


def test_yaml_parse_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(InputError) as info:
        load_config_files([path])
    assert str(info.value).startswith(f"invalid --config {str(path)!r} line 3, column 2: expected YAML (")


def test_json_parse_error_names_line(tmp_path: Path, raises_input) -> None:
    path = write(tmp_path / "bad.json", '{\n  "a": 1,\n}\n')
    with raises_input(f"invalid --config {str(path)!r} line 3, column 1: "
                      "expected JSON (Expecting property name enclosed in double quotes)"):
        load_config_files([path])


@pytest.mark.parametrize("name, text", [("d.yaml", "a: 1\na: 2\n"), ("d.json", '{"a": 1, "a": 2}')])
def test_duplicate_keys_are_refused(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(InputError, match="duplicate key 'a'"):
        load_config_files([path])


@pytest.mark.parametrize("text, kind", [("- 1\n- 2\n", "list"), ("3\n", "int"), ("hello\n", "str")])
def test_top_level_must_be_mapping(tmp_path: Path, text: str, kind: str, raises_input) -> None:
    path = write(tmp_path / "top.yaml", text)
    with raises_input(f"invalid --config {str(path)!r}: expected a mapping at top level, got {kind}"):
        load_config_files([path])


def test_values_json_cannot_hold_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "set.yaml", "a: !!set {x, y}\n")
    with pytest.raises(InputError, match=r"has type set; expected a string, number, boolean, null, list or mapping"):
        load_config_files([path])


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "evil.yaml", "a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match=r"expected YAML \(could not determine a constructor"):
        load_config_files([path])


# --- deep_merge ---------------------------------------------------------------------------------

def test_deep_merge_is_recursive_and_pure() -> None:
    base = {"m": {"lr": 1, "opt": {"name": "sgd", "mom": 0.9}}, "keep": [1]}
    over = {"m": {"opt": {"name": "adam"}, "new": 2}, "keep": [2], "x": None}
    merged = deep_merge(base, over)
    assert merged == {"m": {"lr": 1, "opt": {"name": "adam", "mom": 0.9}, "new": 2}, "keep": [2], "x": None}
    assert base == {"m": {"lr": 1, "opt": {"name": "sgd", "mom": 0.9}}, "keep": [1]}
    assert over == {"m": {"opt": {"name": "adam"}, "new": 2}, "keep": [2], "x": None}
    merged["keep"].append(3)
    merged["m"]["opt"]["mom"] = 0
    assert over["keep"] == [2] and base["m"]["opt"]["mom"] == 0.9


@pytest.mark.parametrize("base, over, want", [
    ({"a": {"b": 1}}, {"a": 5}, {"a": 5}),
    ({"a": 5}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({}, {}, {}),
])
def test_deep_merge_replaces_non_mappings(base: dict[str, Any], over: dict[str, Any], want: dict[str, Any]) -> None:
    assert deep_merge(base, over) == want


# --- parse_set / parse_value ----------------------------------------------------------------------

@pytest.mark.parametrize("item, key, value", [
    ("lr=0.1", "lr", 0.1),
    ("model.lr=1e-3", "model.lr", 0.001),
    ("x=3e4", "x", 30000.0),
    ("x=-2.5E-2", "x", -0.025),
    ("x=1.0e3", "x", 1000.0),
    ("x=10", "x", 10),
    ("x=true", "x", True),
    ("x=null", "x", None),
    ("x=", "x", ""),
    ("x=   ", "x", ""),
    ("x=''", "x", ""),
    ("x='1e-3'", "x", "1e-3"),
    ('x="007"', "x", "007"),
    ("x=[1, 2, {a: b}]", "x", [1, 2, {"a": "b"}]),
    ("x={lr: 0.1, n: [1]}", "x", {"lr": 0.1, "n": [1]}),
    ("x=2024-01-02", "x", "2024-01-02"),
    ("x=a=b", "x", "a=b"),
    ("x=hello world", "x", "hello world"),
    ("x=it's", "x", "it's"),
    ('x="say \\"hi\\""', "x", 'say "hi"'),
    ("x=héllo ✓ 日本", "x", "héllo ✓ 日本"),
    ("x=line1\nline2", "x", "line1\nline2"),
    ("x= line1\n  line2 ", "x", "line1\n  line2"),
    ("x=1\n", "x", 1),
    ("x=[1,\n 2]", "x", [1, 2]),
    ('x="tab\\there"', "x", "tab\there"),
    (" lr =0.5", "lr", 0.5),
    ("x=a#b", "x", "a#b"),
    ("x='a #b'", "x", "a #b"),
])
def test_parse_set_values(item: str, key: str, value: Any) -> None:
    assert parse_set(item) == (key, value)
    assert type(parse_set(item)[1]) is type(value)


@pytest.mark.parametrize("item, message", [
    ("lr", "invalid --set 'lr': expected KEY=VALUE"),
    ("=1", "invalid --set '=1': empty key; expected KEY=VALUE"),
    ("a..b=1", "invalid --set 'a..b=1': empty part in key 'a..b'; expected a dotted key like model.lr"),
    (".a=1", "invalid --set '.a=1': empty part in key '.a'; expected a dotted key like model.lr"),
    ("a.=1", "invalid --set 'a.=1': empty part in key 'a.'; expected a dotted key like model.lr"),
    ("x=[1", "invalid --set 'x=[1': expected a YAML value (did not find expected ',' or ']')"),
    ("x={a: 1, a: 2}", "invalid --set 'x={a: 1, a: 2}': expected a YAML value (duplicate key 'a')"),
    ("x=@a", "invalid --set 'x=@a': expected a YAML value (found character that cannot start any token)"),
    ("x=run #1", "invalid --set 'x=run #1': ' #' starts a YAML comment; quote the value to keep it"),
    ("x=日本 #c", "invalid --set 'x=日本 #c': ' #' starts a YAML comment; quote the value to keep it"),
    ("x=#1", "invalid --set 'x=#1': '#' starts a YAML comment; quote the value to keep it"),
    ("x=!!binary aGk=", "invalid --set 'x=!!binary aGk=': value b'hi' has type bytes; "
                        "expected a string, number, boolean, null, list or mapping"),
    ("a\nb", "invalid --set 'a\\nb': expected KEY=VALUE"),
])
def test_parse_set_errors(item: str, message: str, raises_input) -> None:
    with raises_input(message):
        parse_set(item)


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(InputError) as info:
        parse_set("x" * 500)
    assert len(str(info.value)) < 120 and "...: expected KEY=VALUE" in str(info.value)


def test_parse_value_names_the_option(raises_input) -> None:
    assert parse_value("0.5", "thing") == 0.5
    with raises_input("invalid thing: expected a YAML value (did not find expected node content)"):
        parse_value("[1,", "thing")


# --- set_dotted / get_dotted --------------------------------------------------------------------

def test_set_dotted_creates_and_copies_only_the_path() -> None:
    other = {"deep": [1]}
    config = {"model": {"lr": 1, "opt": {"name": "sgd"}}, "other": other}
    out = set_dotted(config, "model.opt.mom", 0.9)
    assert out == {"model": {"lr": 1, "opt": {"name": "sgd", "mom": 0.9}}, "other": other}
    assert config == {"model": {"lr": 1, "opt": {"name": "sgd"}}, "other": other}
    assert out["other"] is other  # unchanged parts are shared, not copied
    assert set_dotted({}, "a.b.c", 1) == {"a": {"b": {"c": 1}}}
    assert set_dotted({"a": {"b": 1}}, "a", 2) == {"a": 2}


def test_set_dotted_through_a_value_fails(raises_input) -> None:
    with raises_input("cannot set 'model.lr.x': 'model.lr' holds float 0.1, expected a mapping"):
        set_dotted({"model": {"lr": 0.1}}, "model.lr.x", 1)
    with raises_input("invalid key 'a..b': empty part in key 'a..b'; expected a dotted key like model.lr"):
        set_dotted({}, "a..b", 1)


def test_get_dotted() -> None:
    config = {"model": {"lr": 0.1, "none": None}, "top": 1}
    assert get_dotted(config, "model.lr") == 0.1
    assert get_dotted(config, "model.none") is None
    assert get_dotted(config, "model") == {"lr": 0.1, "none": None}
    assert get_dotted(config, "model.x", 7) == 7
    assert get_dotted(config, "top.x", MISSING) is MISSING
    with pytest.raises(KeyError):
        get_dotted(config, "model.lr.x")
    with pytest.raises(KeyError):
        get_dotted(config, "nope")


# --- resolve_config -----------------------------------------------------------------------------

def test_resolve_config_applies_sets_after_files_in_order(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "model: {lr: 0.1, depth: 2}\nseed: 0\n")
    b = write(tmp_path / "b.yaml", "model: {depth: 4}\n")
    out = resolve_config([a, b], ["model.lr=1e-4", "seed=3", "seed=4", "data.path=/d a"])
    assert out == {"model": {"lr": 0.0001, "depth": 4}, "seed": 4, "data": {"path": "/d a"}}


def test_resolve_config_checks_sets_before_reading_files(tmp_path: Path, raises_input) -> None:
    with raises_input("invalid --set 'oops': expected KEY=VALUE"):
        resolve_config([tmp_path / "missing.yaml"], ["oops"])


def test_resolve_config_set_through_a_file_value(tmp_path: Path, raises_input) -> None:
    a = write(tmp_path / "a.yaml", "model: resnet\n")
    with raises_input("cannot set 'model.depth': 'model' holds str 'resnet', expected a mapping"):
        resolve_config([a], ["model.depth=50"])
