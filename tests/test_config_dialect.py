"""expq.config: one dialect for every reader, and hostile config input refused fast with one line.

Issue 9 item 11 (config parts) and issue 10 item 2. Time and memory are bounded by construction
(size cap, alias expansion cap, no blocking open); the tests show each input is refused with
its reason, and the CLI tests that nothing is queued and the exit code is 2.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from expq.config import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    dump_config,
    load_config_file,
    load_config_files,
    parse_set,
    parse_value,
)
from expq.errors import InputError
from expq.launcher.cli import main

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
)


def _refused(path: Path, *fragments: str) -> str:
    with pytest.raises(InputError) as info:
        load_config_file(path)
    text = str(info.value)
    assert "\n" not in text and info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in text
    return text


# --- files that are not config files ----------------------------------------------------------

def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(_refused(fifo, "not a regular file")), daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():  # unblock the reader by opening the write end, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO config blocked")
    assert errors == [f"cannot read config file {str(fifo)!r}: not a regular file"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_devices_are_refused(device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device} here")
    _refused(Path(device), "not a regular file")


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "c.yaml"
    link.symlink_to("/dev/zero")
    _refused(link, "not a regular file")


def test_a_symlink_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text("a: 1\n")
    (tmp_path / "c.yaml").symlink_to(tmp_path / "real.yaml")
    assert load_config_file(tmp_path / "c.yaml") == {"a": 1}


def test_an_oversized_file_is_refused_whatever_it_holds(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.write(b"a: ")
        handle.truncate(MAX_FILE_BYTES + 10)
    _refused(big, "larger than 4 MiB")


def test_a_file_at_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (MAX_FILE_BYTES - 6) + b"\n")
    assert os.path.getsize(path) == MAX_FILE_BYTES
    assert load_config_file(path) == {"a": 1}


# --- content that would explode or cannot be stored -------------------------------------------

def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(BILLION_LAUGHS)
    _refused(path, "once YAML aliases are expanded")


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("a: &x [1, *x]\n")
    _refused(path, "refers to a value that contains it")


def test_modest_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("base: &b {lr: 1, wd: 2}\nrun:\n  <<: *b\n  lr: 3\nsame: *b\n")
    assert load_config_file(path) == {"base": {"lr": 1, "wd": 2}, "run": {"lr": 3, "wd": 2},
                                      "same": {"lr": 1, "wd": 2}}


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", "{\"a\": " + "[" * 5000 + "]" * 5000 + "}"),
    ("deep.yaml", "a: " + "[" * 500 + "]" * 500 + "\n"),
    ("deep2.json", "{\"a\": " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"),
])
def test_deep_nesting_is_refused(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    _refused(path, f"nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize(("name", "content", "fragment"), [
    ("nul.yaml", b"a: \x00\n", "expected YAML"),
    ("nul.json", b'{"a": "x\\u0000y"}', "contains a NUL character"),
    ("nulkey.json", b'{"a\\u0000": 1}', "contains a NUL character"),
    ("lone.json", b'{"a": "\\ud800"}', "not valid UTF-8 text"),
    ("latin1.yaml", b"a: caf\xe9\n", "expected UTF-8 text"),
    ("escape.yaml", b'a: "x\\0y"\n', "contains a NUL character"),
])
def test_nul_and_non_utf8_content_is_refused(tmp_path: Path, name: str, content: bytes, fragment: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _refused(path, fragment)


@pytest.mark.parametrize(("item", "fragment"), [
    ("a=x\x00y", "contains a NUL character"),
    ("a\x00=1", "contains a NUL character"),
    (os.fsdecode(b"a=caf\xe9"), "not valid UTF-8 text"),
    (os.fsdecode(b"caf\xe9=1"), "not valid UTF-8 text"),
])
def test_set_refuses_nul_and_undecodable_bytes(item: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_set(item)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    str(info.value).encode("utf-8")  # the message itself can be printed


def test_set_takes_a_small_alias() -> None:
    assert parse_set("a=[&x [1, 2], *x]") == ("a", [[1, 2], [1, 2]])


def test_set_refuses_a_billion_laughs_value() -> None:
    value = "[" + ",".join(["&a0 [1,1,1,1,1,1,1,1,1,1]"] + [f"&a{i} [{','.join([f'*a{i - 1}'] * 10)}]"
                                                          for i in range(1, 8)]) + "]"
    with pytest.raises(InputError, match="once YAML aliases are expanded"):
        parse_value(value, "--set 'x'")


# --- one dialect, written and read back ----------------------------------------------------------

@pytest.mark.parametrize("config", [
    {"lr": 0.001, "s": "1e-3", "big": 3e4, "day": "2024-01-02", "stamp": "2024-01-02 10:00:00"},
    {"t": "true", "n": "null", "i": "007", "f": ".5", "u": "héllo ✓", "nl": "a\nb", "e": ""},
    {"nested": {"list": [1, "2", 3.5, None, {"x": "1e5"}]}, "yes": "yes", "off": "off"},
])
def test_dump_config_round_trips_through_the_loader(tmp_path: Path, config: dict[str, Any]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config), encoding="utf-8")
    assert load_config_file(path) == config


def test_json_and_yaml_files_read_the_same_values(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("lr: 1e-3\nday: 2024-01-02\n")
    (tmp_path / "b.json").write_text('{"lr": 1e-3, "day": "2024-01-02"}')
    assert load_config_file(tmp_path / "a.yaml") == load_config_file(tmp_path / "b.json")
    assert load_config_files([tmp_path / "a.yaml"]) == {"lr": 0.001, "day": "2024-01-02"}


# --- through the CLI: exit 2, one line, nothing queued ---------------------------------------------

def _digest(root: Path) -> dict[str, str]:
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            files[str(path.relative_to(root))] = hashlib.sha1(path.read_bytes()).hexdigest()
    return files


@pytest.mark.parametrize(("make", "fragment"), [
    (lambda d: os.mkfifo(d / "c.yaml"), "not a regular file"),
    (lambda d: (d / "c.yaml").symlink_to("/dev/zero"), "not a regular file"),
    (lambda d: (d / "c.yaml").write_text(BILLION_LAUGHS), "once YAML aliases are expanded"),
    (lambda d: (d / "c.yaml").write_bytes(b"a: \xff\n"), "expected UTF-8 text"),
    (lambda d: (d / "c.yaml").write_text('a: "\\0"\n'), "contains a NUL character"),
])
def test_submit_refuses_a_hostile_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              make: Any, fragment: str) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--", "true"]) == 0
    capsys.readouterr()
    before = _digest(root)
    make(tmp_path)
    code = main(["--root", str(root), "submit", "--config", str(tmp_path / "c.yaml"), "--", "true"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("expq: error: ") and err.count("\n") == 1 and fragment in err
    assert _digest(root) == before


@pytest.mark.parametrize("item", ["a=x\x00y", os.fsdecode(b"a=\xff"), os.fsdecode(b"\xff=1")])
def test_submit_refuses_nul_and_non_utf8_in_set(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                item: str) -> None:
    root = tmp_path / "root"
    code = main(["--root", str(root), "submit", "--set", item, "--", "true"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("expq: error: invalid --set ") and err.count("\n") == 1
    assert not (root / "queue" / "pending").exists() or os.listdir(root / "queue" / "pending") == []


@pytest.mark.parametrize(("name", "text", "fragment"), [
    ("big.yaml", "a: " + "9" * 5000 + "\n", "Exceeds the limit (4300 digits)"),
    ("big.json", '{"a": ' + "9" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    ("on.yaml", "on: push\n", "key True is not a string; quote it"),
    ("null.yaml", "null: 1\n", "key None is not a string"),
    ("clash.yaml", "1: a\n'1': b\n", "duplicate key '1'"),
])
def test_values_python_refuses_and_keys_json_cannot_hold(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    _refused(path, fragment)


def test_integer_keys_become_strings_as_in_a_job_spec(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("weights: {0: 1.0, 1: 2.5}\nlist: [{2: x}]\n")
    assert load_config_file(path) == {"weights": {"0": 1.0, "1": 2.5}, "list": [{"2": "x"}]}
    assert parse_set("w={0: a}") == ("w", {"0": "a"})


@pytest.mark.parametrize("config", [{"i": 3}, {"seed": 1, "flag": True, "off_": False, "depth": -4, "big": 10**20},
                                    {"yes": 1}, {"On": True}, {"lr": 0.1, "seed": 2}, {"name": "resnet"}, {}])
def test_the_flat_fast_path_writes_what_the_dumper_writes_and_reads_back(tmp_path: Path, config: dict) -> None:
    import yaml

    from expq.config import _dumper_class

    expected = yaml.dump(dict(config), Dumper=_dumper_class(), sort_keys=False, allow_unicode=True,
                         default_flow_style=False)
    assert dump_config(config) == expected
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(config))
    assert load_config_file(path) == config
