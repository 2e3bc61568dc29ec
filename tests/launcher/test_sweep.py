"""Tests for expq.launcher.sweep: parsing --sweep, the product, run names."""
from __future__ import annotations

from typing import Any

import pytest

from expq._fs import check_name
from expq.errors import InputError
from expq.launcher.sweep import MAX_POINTS, expand, parse_sweep, run_name

# --- parse_sweep --------------------------------------------------------------------------------

@pytest.mark.parametrize("item, key, values", [
    ("lr=0.1,0.01", "lr", [0.1, 0.01]),
    ("lr=1e-3, 1e-4 ,3e4", "lr", [0.001, 0.0001, 30000.0]),
    ("model.depth=18", "model.depth", [18]),
    ("opt=adam,sgd", "opt", ["adam", "sgd"]),
    ("flag=true,false,null", "flag", [True, False, None]),
    ("layers=[1,2],[3,4]", "layers", [[1, 2], [3, 4]]),
    ("layers=[[1,2],[3]],[]", "layers", [[[1, 2], [3]], []]),
    ("o={a: 1, b: [2,3]},{}", "o", [{"a": 1, "b": [2, 3]}, {}]),
    ("s='a,b',\"c,d\"", "s", ["a,b", "c,d"]),
    ("s='it''s, ok',x", "s", ["it's, ok", "x"]),
    ('s="say \\"a,b\\"",y', "s", ['say "a,b"', "y"]),
    ("s=it's,bob's", "s", ["it's", "bob's"]),
    ("s=hello world,two words", "s", ["hello world", "two words"]),
    ("s=héllo,日本,✓", "s", ["héllo", "日本", "✓"]),
    ("s=line1\nline2,b", "s", ["line1\nline2", "b"]),
    ("s='',x", "s", ["", "x"]),
    ("s='1',1", "s", ["1", 1]),
    ("s=[a, 'b,]'],c", "s", [["a", "b,]"], "c"]),
    ("seed=range(3)", "seed", [0, 1, 2]),
    ("seed=range(1,4)", "seed", [1, 2, 3]),
    ("seed=range(0, 10, 4)", "seed", [0, 4, 8]),
    ("seed=range(3,-3,-2)", "seed", [3, 1, -1]),
    ("seed= range( 2 , 4 ) ", "seed", [2, 3]),
    ("s='range(3)'", "s", ["range(3)"]),
    ('s="range(3"', "s", ["range(3"]),
    ("s=rangefinder,range", "s", ["rangefinder", "range"]),
    (" k =1", "k", [1]),
])
def test_parse_sweep_values(item: str, key: str, values: list[Any]) -> None:
    assert parse_sweep(item) == (key, values)
    assert [type(v) for v in parse_sweep(item)[1]] == [type(v) for v in values]


@pytest.mark.parametrize("item, message", [
    ("lr", "invalid --sweep 'lr': expected KEY=V1,V2,..."),
    ("=1,2", "invalid --sweep '=1,2': empty key; expected KEY=VALUE"),
    ("a..b=1,2", "invalid --sweep 'a..b=1,2': empty part in key 'a..b'; expected a dotted key like model.lr"),
    ("lr=", "invalid --sweep 'lr=': no values; expected KEY=V1,V2,..."),
    ("lr=  ", "invalid --sweep 'lr=  ': no values; expected KEY=V1,V2,..."),
    ("lr=0.1,,0.2", "invalid --sweep 'lr=0.1,,0.2': value 2 is empty; write \"\" for an empty string"),
    ("lr=0.1,", "invalid --sweep 'lr=0.1,': value 2 is empty; write \"\" for an empty string"),
    ("lr=,0.1", "invalid --sweep 'lr=,0.1': value 1 is empty; write \"\" for an empty string"),
    ("lr=0.1, ,0.2", "invalid --sweep 'lr=0.1, ,0.2': value 2 is empty; write \"\" for an empty string"),
    ("l=[1,2],[3", "invalid --sweep 'l=[1,2],[3': unbalanced '[', missing ']'"),
    ("l=[1,2]],3", "invalid --sweep 'l=[1,2]],3': unbalanced ']' at position 8"),
    ("  k=[1]]", "invalid --sweep '  k=[1]]': unbalanced ']' at position 8"),
    ("l={a: [1}", "invalid --sweep 'l={a: [1}': unbalanced '}' at position 9"),
    ("s='a,b", "invalid --sweep \"s='a,b\": unterminated ' quote"),
    ('s="a,b', "invalid --sweep 's=\"a,b': unterminated \" quote"),
    ("s=1,1", "invalid --sweep 's=1,1': 1 is given twice"),
    ("s=a, 'a'", "invalid --sweep \"s=a, 'a'\": 'a' is given twice"),
    ("s=run #1,b", "invalid --sweep 's=run #1,b' value 1: ' #' starts a YAML comment; quote the value to keep it"),
    ("s=a,@b", "invalid --sweep 's=a,@b' value 2: expected a YAML value "
               "(found character that cannot start any token)"),
    ("n=range(1.5,3)", "invalid --sweep 'n=range(1.5,3)': expected range(START,STOP[,STEP]) with integers"),
    ("n=range()", "invalid --sweep 'n=range()': expected range(START,STOP[,STEP]) with integers"),
    ("n=range(1,2,3,4)", "invalid --sweep 'n=range(1,2,3,4)': expected range(START,STOP[,STEP]) with integers"),
    ("n=range(a,3)", "invalid --sweep 'n=range(a,3)': expected range(START,STOP[,STEP]) with integers"),
    ("n=range(0,5,0)", "invalid --sweep 'n=range(0,5,0)': range step must not be 0"),
    # anything that starts like a range and does not parse is a typo, never the string it reads as
    ("seed=range(3", "invalid --sweep 'seed=range(3': expected range(START,STOP[,STEP]) with integers and nothing "
                     "after it; quote the value for a string"),
    ("seed= range (3", "invalid --sweep 'seed= range (3': expected range(START,STOP[,STEP]) with integers and "
                       "nothing after it; quote the value for a string"),
    ("seed=range(3)x", "invalid --sweep 'seed=range(3)x': expected range(START,STOP[,STEP]) with integers and "
                       "nothing after it; quote the value for a string"),
    ("seed=range(1,3),5", "invalid --sweep 'seed=range(1,3),5': expected range(START,STOP[,STEP]) with integers "
                          "and nothing after it; quote the value for a string"),
    ("n=range(5,0)", "invalid --sweep 'n=range(5,0)': no values; expected KEY=V1,V2,..."),
    ("n=range(0,10000000)", f"invalid --sweep 'n=range(0,10000000)': 10,000,000 values, "
                            f"more than the limit of {MAX_POINTS:,}"),
])
def test_parse_sweep_errors(item: str, message: str, raises_input) -> None:
    with raises_input(message):
        parse_sweep(item)


def test_thousand_values_with_one_bad_raises(raises_input) -> None:
    values = [str(i) for i in range(1000)]
    values[637] = "[637"
    with raises_input("invalid --sweep 'seed=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,...: "
                      "unbalanced '[', missing ']'"):
        parse_sweep("seed=" + ",".join(values))
    values[637] = "@637"
    with pytest.raises(InputError, match=r"value 638: expected a YAML value"):
        parse_sweep("seed=" + ",".join(values))


# --- expand --------------------------------------------------------------------------------------

def test_no_sweeps_gives_the_base() -> None:
    base = {"lr": 1}
    assert expand(base, []) == [(base, {})]


def test_product_order_first_key_slowest() -> None:
    base = {"model": {"lr": 0.5, "depth": 2}, "data": "x"}
    points = expand(base, [parse_sweep("model.lr=0.1,0.01"), parse_sweep("seed=1,2,3")])
    assert [values for _, values in points] == [
        {"model.lr": 0.1, "seed": 1}, {"model.lr": 0.1, "seed": 2}, {"model.lr": 0.1, "seed": 3},
        {"model.lr": 0.01, "seed": 1}, {"model.lr": 0.01, "seed": 2}, {"model.lr": 0.01, "seed": 3},
    ]
    assert points[4][0] == {"model": {"lr": 0.01, "depth": 2}, "data": "x", "seed": 2}
    assert list(points[0][1]) == ["model.lr", "seed"]
    assert base == {"model": {"lr": 0.5, "depth": 2}, "data": "x"}


def test_expand_shares_unswept_parts_and_never_mutates_base() -> None:
    base = {"model": {"lr": 0.5, "opt": {"name": "sgd"}}, "data": {"path": "/d"}}
    points = expand(base, [parse_sweep("model.opt.mom=0.9,0.99"), parse_sweep("model.lr=1,2")])
    assert points[3][0] == {"model": {"lr": 2, "opt": {"name": "sgd", "mom": 0.99}}, "data": {"path": "/d"}}
    assert points[0][0]["data"] is base["data"]
    assert points[0][0]["model"] is not points[1][0]["model"]
    assert base == {"model": {"lr": 0.5, "opt": {"name": "sgd"}}, "data": {"path": "/d"}}


def test_sweep_replaces_a_mapping_and_creates_missing_ones() -> None:
    points = expand({"opt": {"lr": 1}}, [("opt", [{"wd": 0}]), ("new.deep.key", ["v"])])
    assert points[0][0] == {"opt": {"wd": 0}, "new": {"deep": {"key": "v"}}}


@pytest.mark.parametrize("keys, message", [
    (["lr", "lr"], "duplicate --sweep key 'lr': give all its values in one --sweep"),
    (["a", "a.b"], "conflicting --sweep keys 'a' and 'a.b': one contains the other"),
    (["a.b.c", "a.b"], "conflicting --sweep keys 'a.b.c' and 'a.b': one contains the other"),
    (["a..b"], "invalid --sweep key 'a..b': empty part in key 'a..b'; expected a dotted key like model.lr"),
])
def test_expand_key_errors(keys: list[str], message: str, raises_input) -> None:
    with raises_input(message):
        expand({}, [(key, [1, 2]) for key in keys])


def test_expand_sibling_keys_are_fine() -> None:
    points = expand({}, [("a.b", [1]), ("a.bc", [2]), ("ab", [3])])
    assert points[0][0] == {"a": {"b": 1, "bc": 2}, "ab": 3}


def test_expand_through_a_value_fails(raises_input) -> None:
    with raises_input("cannot set 'model.lr': 'model' holds str 'resnet', expected a mapping"):
        expand({"model": "resnet"}, [("seed", [1, 2]), ("model.lr", [1, 2])])


def test_expand_empty_values_and_too_many_points(raises_input) -> None:
    with raises_input("invalid --sweep 'lr': no values"):
        expand({}, [("lr", [])])
    big = list(range(1001))
    with raises_input(f"--sweep gives 1,003,003,001 jobs, more than the limit of {MAX_POINTS:,}"):
        expand({}, [("a", big), ("b", big), ("c", big)])


def test_expand_ten_thousand_points() -> None:  # its speed is measured in benchmarks/, never asserted
    base = {f"k{i}": {"x": i, "y": [i]} for i in range(30)}
    base["model"] = {"lr": 0.1, "opt": {"name": "adam"}}
    sweeps = [parse_sweep("model.lr=range(10)"), parse_sweep("model.opt.wd=range(10)"), parse_sweep("seed=range(100)")]
    points = expand(base, sweeps)
    assert len(points) == 10_000
    assert points[-1][1] == {"model.lr": 9, "model.opt.wd": 9, "seed": 99}


# --- run_name ------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, name", [
    ({}, ""),
    ({"lr": 0.1, "seed": 1}, "lr=0.1,seed=1"),
    ({"model.lr": 1e-3}, "model.lr=0.001"),
    ({"flag": True, "x": None}, "flag=true,x=null"),
    ({"layers": [1, 2]}, "layers=_1,2"),
    ({"opt": {"a": 1}}, "opt=_a_1"),
    ({"name": "a b/c"}, "name=a_b_c"),
    ({"name": "../../etc"}, "name=.._.._etc"),
    ({"name": "line1\nline2"}, "name=line1_line2"),
    ({"name": "héllo"}, "name=h_llo"),
    ({"lr": -0.5}, "lr=-0.5"),
])
def test_run_name(values: dict[str, Any], name: str) -> None:
    assert run_name(values) == name
    if name:
        assert check_name("run", name) == name


def test_long_run_names_are_cut_and_stay_distinct() -> None:
    a = run_name({"prompt": "x" * 200 + "a"})
    b = run_name({"prompt": "x" * 200 + "b"})
    assert a != b and len(a) == len(b) == 80
    assert a.startswith("prompt=xxxx") and check_name("run", a) == a


def test_submit_of_an_unclosed_range_queues_nothing(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from expq.launcher.cli import main

    root = str(tmp_path / "root")
    assert main(["--root", root, "submit", "--sweep", "seed=range(3", "--", "echo", "{seed}"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == ("expq: error: invalid --sweep 'seed=range(3': expected range(START,STOP[,STEP]) "
                                 "with integers and nothing after it; quote the value for a string\n")
    assert not (tmp_path / "root" / "queue" / "pending").exists() or not any((tmp_path / "root/queue/pending").iterdir())
