"""``python -m expq`` runs the command-line interface."""
import sys

from expq.launcher.entry import main

sys.exit(main())
