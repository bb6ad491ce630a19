"""``python -m piade`` runs the command-line interface."""

import sys

from piade.cli import main

sys.exit(main())
