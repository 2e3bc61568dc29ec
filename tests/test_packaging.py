"""The install that `make` does: an editable install without warnings and without an import hook
(a plain .pth to the checkout, so every interpreter start stays fast), with the `expq` command."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_editable_install_is_a_plain_path_and_prints_no_warning(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--disable-pip-version-check", "-e", str(REPO)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    # (this machine's pip config names local package folders that may be absent: pip's own warning)
    warnings = [line for line in (install.stdout + install.stderr).lower().splitlines()
                if ("warning" in line or "deprecat" in line) and "location 'file:" not in line]
    assert warnings == []
    site = next((venv / "lib").glob("python*/site-packages"))
    pth = [p for p in site.glob("*.pth") if "expq" in p.name]
    assert len(pth) == 1 and pth[0].read_text().strip() == str(REPO)  # a path, not "import ..." at start-up
    assert not list(site.glob("__editable__*finder*.py"))
    assert (venv / "bin" / "expq").exists()
