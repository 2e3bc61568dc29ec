"""``expq ui``: a live local web dashboard of one root (queue, runs tables, charts, logs, files).

Imported only by the ``ui`` command: Starlette, uvicorn and the plotly.js bundle come from the
optional ``expq[ui]`` extra. Nothing here writes into the root except the actions a page asks
for (cancel, retry), which need the token ``expq ui`` prints.
"""
from __future__ import annotations

__all__ = ["server", "app"]
