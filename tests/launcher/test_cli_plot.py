"""``expq plot`` on a sweep that real workers ran: the PNG's size, non-blank axes, one distinct colour
per run (or per group), ``--group-by`` with mean and band."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from expq.experiment.plot import palette
from expq.launcher.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 runs of examples/train.py (3 lr x 4 seeds), run by a real worker; returns the root."""
    root = tmp_path_factory.mktemp("plot") / "root"
    args = ["--experiment", "sw", "--sweep", "lr=0.02,0.05,0.1", "--sweep", "seed=0,1,2,3", "--set", "steps=30"]
    for command in (["submit", *args, "--", sys.executable, "examples/train.py"],
                    ["worker", "--gpus", "none", "--slots", "2", "--drain", "--poll", "0.05"]):
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *command], cwd=REPO,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
    return root


def _image(path: Path) -> object:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _has_colour(image: object, hex_colour: str, box: tuple[int, int, int, int]) -> bool:
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    region = image.crop(box)  # type: ignore[attr-defined]
    return any(colour == want for _, colour in region.getcolors(maxcolors=1 << 20))


def _ink(image: object, box: tuple[int, int, int, int]) -> float:
    """Share of pixels in ``box`` that are not white."""
    region = image.crop(box)  # type: ignore[attr-defined]
    colours = region.getcolors(maxcolors=1 << 20)
    white = sum(n for n, c in colours if min(c) > 245)
    return 1 - white / (region.width * region.height)


def _plot(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    assert main(["--root", str(root), "plot", "sw", *args]) == 0
    return Path(capsys.readouterr().out.strip())


def test_every_run_gets_its_own_colour_and_the_legend_is_outside(sweep: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    png = _plot(sweep, capsys, "-m", "loss", "-o", str(tmp_path / "runs.png"))
    image = _image(png)
    assert image.size == (1000, 420)  # 10 x 4.2 inches at 100 dpi: one axis
    axes = (60, 30, 760, 380)  # the plot area, left of the legend
    for colour in palette(12):
        assert _has_colour(image, colour, axes), f"{colour} not drawn"
    assert _ink(image, axes) > 0.02
    # the legend sits in its own column right of the axes (constrained layout keeps them apart)
    assert _ink(image, (800, 10, 1000, 300)) > 0.01


def test_group_by_draws_one_line_and_band_per_value(sweep: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    png = _plot(sweep, capsys, "-m", "loss", "-m", "val_loss", "--group-by", "lr", "-o", str(tmp_path / "g.png"))
    image = _image(png)
    assert image.size == (1000, 720)  # two axes, one per metric
    top, bottom = (60, 30, 895, 330), (60, 380, 895, 680)  # the axes, left of the legend
    for colour in palette(3):
        assert _has_colour(image, colour, top) and _has_colour(image, colour, bottom)
    assert not _has_colour(image, palette(4)[3], top)  # three groups, so no fourth colour
    assert _ink(image, top) > 0.05 and _ink(image, bottom) > 0.002


def test_pdf_and_bad_group_key(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pdf = _plot(sweep, capsys, "-m", "loss", "--log-y", "-o", str(tmp_path / "l.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF")
    assert main(["--root", str(sweep), "plot", "sw", "-m", "loss", "--group-by", "nope", "-o", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err == "expq: error: cannot group by 'nope': no run has that config key\n"
    assert not (tmp_path / "x.png").exists()
