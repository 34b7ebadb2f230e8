"""Run a ``symnet`` command with every training clock in CPU seconds of this process.

On a shared machine, wall-clock training seconds grow with whatever else runs; CPU seconds of the
process do not (much). Run with one thread so that a CPU second is a second of one core, and every
solver in a side-by-side benchmark is timed on the same footing::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \\
        python tools/cpu_clock.py bench target --model poly2 --dataset mnist --data-dir ../shared/data/mnist

Everything after the script's name is passed to ``symnet`` unchanged. The figures it prints are CPU
seconds of one thread; say so wherever they are quoted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# symnet reads its clocks through time.perf_counter; replace it before symnet is imported
time.perf_counter = time.process_time

from symnet.frontend.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
