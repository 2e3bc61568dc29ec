"""Print the runs table of an experiment: one row per run with its config and final metrics."""
from __future__ import annotations

import sys

import expq

if __name__ == "__main__":
    print(expq.open(sys.argv[1]).table())
