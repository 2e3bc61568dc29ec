"""``python -m expq.executor MODULE.QUALNAME``: the command of every job an ``expq.Executor`` queues."""
from __future__ import annotations

import sys

from expq.executor.child import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
