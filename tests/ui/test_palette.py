"""The dashboard and ``expq plot`` colour runs alike: one list of 40 colours that can be told apart."""
from __future__ import annotations

import re
from pathlib import Path

from expq.experiment.plot import palette

APP_JS = Path(__file__).resolve().parents[2] / "expq" / "ui" / "static" / "app.js"


def test_the_page_uses_the_same_40_distinct_colours_as_expq_plot() -> None:
    source = APP_JS.read_text()
    block = source[source.index("const TAB10"):source.index("const DASHES")]
    in_page = re.findall(r"#[0-9a-f]{6}", block)
    tab10, many = in_page[:10], in_page[10:]
    assert tab10 + many == palette(40)
    assert len(set(palette(40))) == 40 and palette(10) == tab10 and palette(41)[40] == palette(1)[0]


def test_twenty_runs_get_twenty_colours_far_apart() -> None:
    def rgb(colour: str) -> tuple[int, ...]:
        return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))

    colours = [rgb(c) for c in palette(20)]
    closest = min(sum((a - b) ** 2 for a, b in zip(x, y)) ** 0.5
                  for i, x in enumerate(colours) for y in colours[i + 1:])
    assert closest > 55  # on the 0-255 scale per channel: no two lines share a near-identical colour
