"""``python -m expq`` runs the command-line interface."""
import sys

from expq.launcher.cli import main

sys.exit(main())
