"""Solver variants on full MNIST, each for the same training budget from the same start: curves and profiles.

The harness of the Gauss-Newton variants table in docs/benchmarks.md. Each variant is ``SOLVER:JSON`` (the solver's
options); every run starts from the preset's seeded initialisation with ridge 1.0 and prints a line per
history record and the time per iteration of each phase (direction, search, batch forward, readout).

By default the training clock is the process's CPU time, so that other jobs on a shared machine do not
inflate it: run with one thread (``NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``) so CPU seconds are
seconds of one core. ``CPU_CLOCK=0`` uses wall time; ``RECORD_EVERY=S`` writes an interim record every ``S`` seconds of
training instead of every 10 (each evaluates all 70,000 images); ``TARGETS=L1,L2`` prints the training
seconds to the first record (interim ones included) at or below each loss; ``CURVES=FILE`` appends every
record's time and loss to FILE, one JSON line per variant.

Usage (from the project root)::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python tools/exact_variants.py poly2 150 \\
        'gauss-newton:{"curvature": "mixed", "search": "joint"}' 'gauss-newton:{"curvature": "kfac"}'
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

if os.environ.get("CPU_CLOCK", "1") == "1":
    # every clock symnet reads becomes this process's CPU seconds (set before symnet is imported)
    time.perf_counter = time.process_time

import symnet  # noqa: E402
from symnet import solvers  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    model_name, budget = argv[0], float(argv[1])
    root = os.environ.get("SYMNET_DATA", str(ROOT.parent / "shared" / "data" / "mnist"))
    data = symnet.datasets.load("mnist", root=root)
    for spec in argv[2:]:
        name, _, raw = spec.partition(":")
        opts = json.loads(raw or "{}")
        model = symnet.models.get(model_name, seed=0)
        solver = solvers.get(name)(ridge=1.0, **opts)
        if os.environ.get("RECORD_EVERY"):  # fewer interim records: less evaluation between training
            solver.record_every = float(os.environ["RECORD_EVERY"])

        def show(rec, s):
            print(f"   t {rec['time']:7.1f} it {getattr(s, 'iteration_', 0):4d} loss {rec['loss']:.5f} "
                  f"test {rec['test_acc']:.4f}{' (interim)' if rec.get('partial') else ''}", flush=True)

        print(f"== {name} {opts}  load {os.getloadavg()[0]:.2f}", flush=True)
        solver.fit(model, data, time_limit=budget, quiet=True, callbacks=[show])
        for target in [float(v) for v in os.environ.get("TARGETS", "").split(",") if v]:
            # the first record (interim ones included) at or below the target, as `symnet bench target` reads it
            hit = next((r for r in solver.history_ if r["loss"] <= target), None)
            print(f"   to {target:g}: " + ("not reached" if hit is None else f"{hit['time']:.1f} s"), flush=True)
        if os.environ.get("CURVES"):  # every record (interim ones included): time, loss, interim
            with open(os.environ["CURVES"], "a") as fh:
                fh.write(json.dumps({"variant": spec, "records": [
                    [round(r["time"], 2), r["loss"], int(bool(r.get("partial")))] for r in solver.history_]}) + "\n")
        iters = max(getattr(solver, "iteration_", 0), 1)
        profile = getattr(solver, "profile_", {})
        print("   ms per iteration: " + ", ".join(f"{k} {1000 * v / iters:.0f}" for k, v in profile.items())
              + f"; load {os.getloadavg()[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
