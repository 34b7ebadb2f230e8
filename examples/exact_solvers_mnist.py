"""Exact direction solvers on full MNIST: poly in 5 minutes, poly2 in 10, time to a target against Adam.

Every run prints its command, its figures and the load average (1 minute) before and after it, because
the timings depend on what else the machine runs.

Usage (from the project root)::

    python examples/exact_solvers_mnist.py poly        # Gauss-Newton + variable projection, 300 s; the floor
    python examples/exact_solvers_mnist.py poly2       # the same on poly2, 600 s
    python examples/exact_solvers_mnist.py target      # Adam for 3 epochs sets a loss; exact solvers' time to it
    python examples/exact_solvers_mnist.py symbolic    # Groebner block timings on XOR (2, 3, 4 variables)
    python examples/exact_solvers_mnist.py all

Sections:

* ``poly``: the floor (random filters, last layer solved exactly by ridge) and ``gauss-newton`` with
  ``varpro`` on mini-batches (a damped Gauss-Newton direction for the conv block from a batch, exact
  line search on the batch, the last layer re-solved on the full data after every step).
* ``poly2``: the same solver on poly2 (conv0 block explicit, conv1 block matrix-free CG, both with
  ``J^T J`` from 250 samples of each batch).
* ``target``: Adam (mini-batches of 128, learning rate 1e-3) for ``--adam-epochs`` epochs; its final
  training loss is the target. Then the exact solvers run until they reach it: Gauss-Newton with
  variable projection on mini-batches and on the full data (does the mini-batch variant get there
  sooner?), and L-BFGS on mini-batches, each capped at ``--time-limit`` (400 s) of training.
  ``--target-loss`` adds a second, lower target; ``--model poly2`` runs the section on poly2 and
  ``--exact gn-batch`` keeps only the mini-batch Gauss-Newton run.
* ``symbolic``: times of :func:`symnet.solvers.symbolic_block.solve_block` for blocks of 2, 3 and 4 variables.

Set ``OPENBLAS_NUM_THREADS=1`` on a shared machine: with the cores busy, two BLAS threads wait on each
other and small factorisations get ten times slower (measured here).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import symnet.solvers as solvers  # noqa: E402
from symnet.core import datasets
from symnet import models  # noqa: E402
from symnet.core.restriction import Restriction  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def command() -> str:
    return " ".join(["python"] + sys.argv)


def floor(data, args) -> dict:
    """Random filters (the preset's initialisation) with the last layer solved exactly on the full data."""
    model = models.get("poly", seed=args.seed)
    t0 = time.perf_counter()
    loss = Restriction(model, data.x_train, data.one_hot("train"), ridge=args.ridge)
    loss.solve_readout()
    seconds = time.perf_counter() - t0
    test_acc = float(np.mean(np.argmax(model.forward(data.x_test), 1) == data.y_test))
    train_acc = float(np.mean(np.argmax(loss.output, 1) == data.y_train))
    return {"loss": loss.value / len(data.x_train), "train_acc": train_acc, "test_acc": test_acc, "time": seconds}


def print_record(r: dict) -> None:
    extra = "  ".join(f"{k}={r[k]:.3g}" for k in ("damping", "iterations") if r.get(k) is not None)
    print(f"  step {r['step']:>3}  train s {r['time']:7.1f}  loss {r['loss']:.5f}  train acc {r['train_acc']:.4f}  "
          f"test acc {r['test_acc']:.4f}  {extra}", flush=True)


def fit(name: str, model_name: str, data, opts: dict, args, *, time_limit: float | None = None,
        steps: int | None = None, targets: list[float] | None = None):
    """Train a fresh preset; returns the solver and the training time at which each target loss was first met."""
    model = models.get(model_name, seed=args.seed)
    cb = [lambda r, s: print_record(r)]
    if targets:
        cb.append(lambda r, s: r["loss"] > min(targets))  # stop once the lowest target is reached
    before = load()
    t0 = time.perf_counter()
    solver = solvers.get(name)(**opts).fit(model, data, time_limit=time_limit, steps=steps, quiet=True, callbacks=cb)
    wall = time.perf_counter() - t0
    h = solver.history_
    reached = []
    for target in targets or []:
        hit = [r for r in h.records if r["loss"] <= target]
        reached.append(hit[0]["time"] if hit else None)
    print(f"  -> {name} {opts}: final loss {h.final['loss']:.5f}, train acc {h.final['train_acc']:.4f}, "
          f"test acc {h.final['test_acc']:.4f}, {h.final['step']} steps, training {h.final['time']:.1f} s, "
          f"wall {wall:.1f} s, load average {before} -> {load()}", flush=True)
    return solver, reached


def gn_opts(args, model_name: str) -> dict:
    opts = {"varpro": True, "batch_size": args.batch_size, "iters_per_step": args.iters_per_step,
            "ridge": args.ridge}
    if model_name == "poly2":
        # conv0's Jacobian (a backward pass per output) and conv1's CG products from 250 samples of the batch
        opts.update(cg_iters=10, curvature_samples=250)
    return opts


def section_poly(data, args) -> None:
    print(f"\n== poly on MNIST, {args.time_limit or 300:.0f} s ==  [{command()}]")
    before = load()
    f = floor(data, args)
    print(f"  floor (random filters + exact last layer): test acc {f['test_acc']:.4f}, train acc {f['train_acc']:.4f}, "
          f"loss {f['loss']:.5f}, {f['time']:.1f} s, load average {before} -> {load()}", flush=True)
    fit("gauss-newton", "poly", data, gn_opts(args, "poly"), args, time_limit=args.time_limit or 300)


def section_poly2(data, args) -> None:
    print(f"\n== poly2 on MNIST, {args.time_limit or 600:.0f} s ==  [{command()}]")
    fit("gauss-newton", "poly2", data, gn_opts(args, "poly2"), args, time_limit=args.time_limit or 600)


def section_target(data, args) -> None:
    model_name = args.model
    print(f"\n== time to the loss Adam reaches in {args.adam_epochs} epochs ({model_name}) ==  [{command()}]")
    try:
        solvers.get("adam")
    except Exception as exc:  # the gradient backends are optional here
        print(f"  adam is not available ({exc}); skipped")
        return
    adam, _ = fit("adam", model_name, data, {"lr": 1e-3, "batch_size": 128, "ridge": args.ridge}, args,
                  steps=args.adam_epochs)
    targets = [adam.history_.final["loss"]] + ([args.target_loss] if args.target_loss else [])
    cap = args.time_limit or 400
    print(f"  targets: {', '.join(f'{t:.5f}' for t in targets)} (cap {cap:.0f} s of training per solver)")
    table = [("adam", "mini-batches of 128", [next((r["time"] for r in adam.history_.records if r["loss"] <= t), None)
                                              for t in targets])]
    rows = {"gn-batch": ("gauss-newton", {**gn_opts(args, model_name), "iters_per_step": 5},
                         f"mini-batches of {args.batch_size}"),
            "gn-full": ("gauss-newton", {"varpro": True, "ridge": args.ridge}, "full data"),
            "lbfgs-batch": ("lbfgs", {"varpro": True, "batch_size": args.batch_size, "iters_per_step": 10,
                                      "ridge": args.ridge}, f"mini-batches of {args.batch_size}")}
    for key in args.exact.split(","):
        if key not in rows:
            raise SystemExit(f"--exact: unknown run {key!r}; choose from {', '.join(rows)}")
        name, opts, label = rows[key]
        _, reached = fit(name, model_name, data, opts, args, time_limit=cap, targets=targets)
        table.append((name, label, reached))
    print("  training seconds to reach each target:")
    for name, label, reached in table:
        cells = ", ".join(f"{t:.5f}: " + (f"{r:.1f} s" if r is not None else "not reached")
                          for t, r in zip(targets, reached))
        print(f"    {name:<13} {label:<24} {cells}")


def section_symbolic(args) -> None:
    from symnet.solvers.symbolic_block import solve_block

    print(f"\n== symbolic block solve on XOR (2 hidden units, x^2) ==  [{command()}]")
    data = datasets.xor()
    model = models.get("mlp", input_dim=2, hidden=2, seed=0)
    X, Y = data.x_train, data.one_hot("train")
    blocks = [["linear0.weight[0,0]", "linear0.weight[0,1]"],
              ["linear0.bias[1]", "linear1.weight[0,1]"],
              ["linear0.weight[0,0]", "linear0.weight[0,1]", "linear1.weight[0,0]"],
              ["linear0.weight[0,0]", "linear0.weight[0,1]", "linear0.bias[0]"],
              ["linear0.weight[0,0]", "linear0.weight[0,1]", "linear0.weight[1,0]", "linear0.weight[1,1]"]]
    for names in blocks:
        before = load()
        t0 = time.perf_counter()
        sol = solve_block(model, X, Y, names, 1e-3, limits={"max_vars": 4})
        wall = time.perf_counter() - t0
        print(f"  {len(names)} vars, degree {sol.degree}: {len(sol.candidates)} real stationary points, "
              f"min {sol.value:.6f} (current {sol.current_value:.6f}); Groebner {sol.timings['groebner']:.2f} s, "
              f"total {wall:.2f} s, load average {before} -> {load()}  {names}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["poly", "poly2", "target", "symbolic", "all"])
    p.add_argument("--data-dir", default=str(DEFAULT_ROOT), help="folder with the MNIST IDX files")
    p.add_argument("--time-limit", type=float, default=None, help="seconds of training (default per section)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--iters-per-step", type=int, default=20)
    p.add_argument("--ridge", type=float, default=1.0)
    p.add_argument("--adam-epochs", type=int, default=3)
    p.add_argument("--target-loss", type=float, default=None, help="a second target for the 'target' section")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", choices=["poly", "poly2"], default="poly", help="network of the 'target' section")
    p.add_argument("--exact", default="gn-batch,gn-full,lbfgs-batch",
                   help="exact runs of the 'target' section, comma-separated: gn-batch, gn-full, lbfgs-batch")
    args = p.parse_args(argv)
    print(f"load average at start: {load()} (2 cores); OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    if args.what in ("symbolic", "all"):
        section_symbolic(args)
    if args.what == "symbolic":
        return 0
    data = datasets.load("mnist", root=args.data_dir)
    if args.what in ("poly", "all"):
        section_poly(data, args)
    if args.what in ("poly2", "all"):
        section_poly2(data, args)
    if args.what in ("target", "all"):
        section_target(data, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
