"""The coordinate solver on ``poly`` and full MNIST: channel blocks and the random-filter floor side by side.

Every variant starts from the same seeded initialisation and runs in a fresh process (so its peak
resident memory is its own); the script prints one row per variant: test accuracy, training
objective (per sample, ridge included), training seconds, CPU seconds of training (the solver's own
count, evaluation of records excluded) and of the whole process, sweeps, samples of the last stage,
ridge, peak RSS, the largest gap between two history records (seconds of training), and the load
average (1 minute) before and after. The machine may be shared: compare rows of one run, and read
the CPU columns (a process that got half a core did half the work in its training seconds).

Usage (from the project root)::

    python examples/coordinate_poly.py                                  # channel, then floor@last
    python examples/coordinate_poly.py --variants floor,channel,floor@last --time-limit 300
    python examples/coordinate_poly.py --variants channel@30:sample_start=none,floor@30

A variant is ``NAME[@RIDGE][:KEY=VALUE[:KEY=VALUE...]]``:

* ``channel``: the solver's defaults (channel blocks; without ``@RIDGE`` the ridge is chosen on
  held-out samples, as ``symnet train --solver coordinate`` does);
* ``floor``: filters at their seeded init, the last layer solved exactly on every sample, i.e.
  ``symnet train ... -O layers=linear0 -O rescale=false -O extrapolate=false --sweeps 1``;
  ``floor@last`` takes the ridge the previous row ended with (its own floor at the same ridge);
* ``coordinate``: the one-weight-at-a-time sweep (``blocks=coordinate``; its caches take about
  10 GB on 60,000 images: give ``--samples``).

Options after ``:`` go to the solver (``sample_start=none``, ``curvature_samples=1024`` ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = Path(os.environ.get("SYMNET_MNIST", ROOT.parent / "shared" / "data" / "mnist"))


def parse_variant(spec: str, last_ridge=None) -> tuple[str, dict]:
    """``"channel@30:sample_start=none"`` -> ("channel", {"ridge": 30.0, "sample_start": None})."""
    from symnet.frontend.cli import parse_value

    head, *opts = spec.split(":")
    name, _, ridge = head.partition("@")
    options: dict = {}
    if name == "floor":
        options.update(layers="linear0", rescale=False, extrapolate=False)
    elif name == "coordinate":
        options["blocks"] = "coordinate"
    elif name != "channel":
        raise SystemExit(f"unknown variant {spec!r}: use channel, floor or coordinate")
    if ridge == "last":
        if last_ridge is None:
            raise SystemExit(f"{spec}: @last needs an earlier row")
        options["ridge"] = float(last_ridge)
    elif ridge:
        options["ridge"] = float(ridge)
    for kv in opts:
        k, _, v = kv.partition("=")
        options[k] = parse_value(v)
    return name, options


def run_one(spec: str, args) -> dict:
    """Train one variant in this process and return its figures (called in a child process)."""
    import resource

    import numpy as np

    from symnet import solvers
    from symnet.core import datasets
from symnet.core.model import presets as models

    name, options = parse_variant(spec, args.last_ridge)
    data = datasets.load("mnist", root=str(args.data_dir))
    if args.samples:
        data = data.subset(args.samples)
    model = models.get("poly", seed=args.seed)
    steps = 1 if name == "floor" else None
    limit = None if name == "floor" else args.time_limit
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    s = solvers.get("coordinate")(**options).fit(model, data, steps=steps, time_limit=limit, quiet=True,
                                                 seed=args.seed)
    wall = time.perf_counter() - t0
    h = s.history_
    final = h.final
    times = [r["time"] for r in h.records]
    keys = ("step", "time", "cpu_time", "loss", "stage_loss", "test_acc", "samples", "ridge", "partial")
    return {"variant": spec, "test_acc": final["test_acc"], "loss": final["loss"], "train_s": final["time"],
            "train_cpu_s": final.get("cpu_time"), "wall_s": wall, "cpu_s": time.process_time() - cpu0,
            "sweeps": final["step"], "samples": final.get("samples", len(data.x_train)),
            "ridge": s.opts_["ridge"], "records": len(h.records),
            "max_gap_s": float(np.max(np.diff(times))) if len(times) > 1 else 0.0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "history": [{k: r[k] for k in keys if r.get(k) is not None} for r in h.records]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default="channel,floor@last",
                   help="comma-separated variants (see the module docstring)")
    p.add_argument("--time-limit", type=float, default=300.0, help="training seconds per variant")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--samples", type=int, default=None, help="first N training samples (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write every row (and its history) here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--last-ridge", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("ROW " + json.dumps(run_one(args.child, args)), flush=True)
        return
    env = dict(os.environ)
    env.setdefault("CI", "true")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print("command:", " ".join(["python"] + sys.argv))
    print("date:", time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    print(f"threads: NUMBA_NUM_THREADS={env.get('NUMBA_NUM_THREADS', 'all')} "
          f"OPENBLAS_NUM_THREADS={env.get('OPENBLAS_NUM_THREADS', 'all')}; cores {os.cpu_count()}")
    rows = []
    for spec in args.variants.split(","):
        load0 = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--child", spec, "--time-limit", str(args.time_limit),
               "--data-dir", str(args.data_dir), "--seed", str(args.seed)]
        if rows:
            cmd += ["--last-ridge", str(rows[-1]["ridge"])]
        if args.samples:
            cmd += ["--samples", str(args.samples)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
        if proc.returncode or not line:
            print(f"{spec}: failed\n{proc.stderr[-2000:]}")
            continue
        row = json.loads(line[-1][4:])
        row["load"] = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"
        rows.append(row)
        cpu = row["train_cpu_s"]
        print(f"{spec:<28} test {row['test_acc']:.4f}  loss {row['loss']:.5f}  train {row['train_s']:6.1f} s  "
              f"train cpu {cpu if cpu is None else round(cpu, 1)} s  process cpu {row['cpu_s']:6.1f} s  "
              f"sweeps {row['sweeps']:3d}  samples {row['samples']}  ridge {row['ridge']}  "
              f"rss {row['peak_rss_mb']:.0f} MB  max gap {row['max_gap_s']:.1f} s  load {row['load']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print()
    print("| variant | test acc | loss | train s | train CPU s | process CPU s | sweeps | samples | ridge | "
          "peak RSS MB | max record gap s | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        cpu = "" if r["train_cpu_s"] is None else f"{r['train_cpu_s']:.1f}"
        print(f"| `{r['variant']}` | {100 * r['test_acc']:.2f}% | {r['loss']:.5f} | {r['train_s']:.1f} | {cpu} | "
              f"{r['cpu_s']:.1f} | {r['sweeps']} | {r['samples']} | {r['ridge']} | {r['peak_rss_mb']:.0f} | "
              f"{r['max_gap_s']:.1f} | {r['load']} |")


if __name__ == "__main__":
    main()
