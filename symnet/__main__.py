"""``python -m symnet ...`` runs the command line (same as ``symnet ...``)."""

import sys

from symnet.frontend.cli import main

sys.exit(main())
