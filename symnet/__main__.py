"""``python -m symnet ...`` runs the command line (same as ``symnet ...``)."""

import sys

from .cli import main

sys.exit(main())
