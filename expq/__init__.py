"""expq: a filesystem job queue for experiments, and the API that runs inside each job."""
from __future__ import annotations

__all__: list[str] = []
__version__ = "0.1.0"
