"""The width of the terminal, found as ``shutil.get_terminal_size`` finds it but without importing
shutil, which brings zlib, bz2 and lzma along: about 4 ms of every command's start-up, since argparse
asks for the width each time an option is added."""
from __future__ import annotations

import os
import sys

__all__ = ["terminal_width"]


def terminal_width(fallback: int = 120) -> int:
    """``$COLUMNS`` when set, else the width of the terminal on stdout, else ``fallback``."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (ValueError, OSError):  # a closed stdout, or no terminal
            columns = 0
    return columns if columns > 0 else fallback
