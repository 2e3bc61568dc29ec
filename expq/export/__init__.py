"""Results into the tools researchers already use: TensorBoard event files and MLflow runs.

Nothing here is imported by ``import expq``; the CLI imports these modules when an export runs.
``events`` (a numpy-only leaf) is also used by the experiment API's live TensorBoard writer.
"""
from __future__ import annotations

__all__: list[str] = []
