"""Closed-form polynomial regression on full MNIST: exact ridge and bagging.

Features: every monomial of the pixels up to degree 2 whose factors fit in a
3 x 3 window (10,155 features with the bias); one-vs-rest ridge regression onto
one-hot targets, class = argmax. Reference figures for the same features:
96.51% (bagging, 60 subsets of 2,000) and 95.81% (exact least squares).

Usage (from the project root)::

    python examples/polyreg_mnist.py                       # exact, then bagging
    python examples/polyreg_mnist.py --method exact --figures figures/
    python examples/polyreg_mnist.py --method bagging --batches 60 --batch-size 2000
    python examples/polyreg_mnist.py --method cg --degree 3 --figures figures/   # matrix-free

Prints test accuracy, the training time the history records, the wall time
of ``fit`` (evaluation included) and the process's peak resident memory.

On a machine whose cores are shared with other jobs, run with
``OPENBLAS_NUM_THREADS=1``: multi-threaded OpenBLAS (Cholesky, eigh) slows
down up to tenfold when one of its threads is descheduled, single-threaded
BLAS next to numba's parallel kernels does not. On an idle machine the
default (one BLAS thread per core) is faster.
Fashion-MNIST is handled the same way (``--dataset fashion-mnist``) when its
IDX files are present; they are not shipped and cannot be downloaded offline.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from symnet.core.model.polyreg import PolyRegModel
from symnet.solvers.polyreg import PolyRegSolver  # noqa: E402
from symnet import datasets  # noqa: E402
from symnet.core.errors import SymnetError  # noqa: E402

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(data, method: str, args) -> PolyRegSolver:
    opts = {"degree": args.degree, "window": args.window, "method": method, "seed": args.seed}
    if args.ridge is not None:
        opts["ridge"] = args.ridge
    if method == "bagging":
        opts.update(batches=args.batches, batch_size=args.batch_size)
    if method in ("cg", "auto"):
        opts.update(precond=args.precond, precond_samples=args.precond_samples, cg_tol=args.cg_tol)
    model = PolyRegModel(data.input_shape, data.num_classes, args.degree, args.window)
    t0 = time.perf_counter()
    solver = PolyRegSolver(**opts).fit(model, data, quiet=args.quiet, eval_train=args.eval_train)
    wall = time.perf_counter() - t0
    h = solver.history_
    final = h.final
    print(f"\n== {method}: degree {args.degree}, window {args.window}, {model.num_features:,} features ==")
    if method == "bagging":
        print(f"{'batch':>5} {'batch test':>10} {'averaged test':>13} {'time s':>7}")
        for r in h.records[1:]:
            print(f"{r['step']:>5} {r['batch_test_acc']:>10.4f} {r['test_acc']:>13.4f} {r['time']:>7.1f}")
    elif solver.opts_["method"] == "cg":
        for r in h.records[1:]:
            extra = {k: r[k] for k in ("cg_path", "cg_search_iterations", "cg_iterations", "cg_residual",
                                       "precond_time") if k in r}
            print(f"step {r['step']}: passes {r['passes']:.1f}, time {r['time']:.1f} s, {extra}")
        print(f"features used {final['features_used']:,}"
              + (f", validation accuracy {h[2]['val_acc']:.4f}" if len(h) > 3 and "val_acc" in h[2] else ""))
    else:
        for r in h.records[1:]:
            print(f"step {r['step']}: samples {r.get('samples')}, gram time {r.get('gram_time', 0):.1f} s, "
                  f"time {r['time']:.1f} s")
        print(f"features used {final['features_used']:,} (dense via dsyrk {final['dense_columns']:,}), "
              f"gram {final['gram_time']:.1f} s, solve {final['solve_time']:.1f} s"
              + (f", validation accuracy {final['val_acc']:.4f}" if "val_acc" in final else ""))
    print(f"ridge used          {final['ridge_used']:.6g}")
    print(f"test accuracy       {final['test_acc']:.4f}")
    if final.get("train_acc") is not None:
        print(f"train accuracy      {final['train_acc']:.4f}")
    print(f"training time       {final['time']:.1f} s (history; evaluation excluded)")
    print(f"fit wall time       {wall:.1f} s (evaluation included)")
    print(f"peak RSS so far     {peak_rss_gb():.2f} GB")
    if args.figures and method != "bagging":
        from symnet.frontend import polyreg_maps

        prefix = f"{data.name}_{method}_d{args.degree}w{args.window}"
        paths = polyreg_maps.save_maps(solver.model_, args.figures, prefix=prefix)
        paths.append(polyreg_maps.plot_interactions(
            solver.model_, args.degree, Path(args.figures) / f"{prefix}_top_degree{args.degree}.png",
            X=data.x_train[:5000], y=data.y_train[:5000]))
        print("maps:", ", ".join(str(p) for p in paths))
    return solver


def compare_gram(data, args) -> None:
    """Seconds per chunk of Gram accumulation: dsyrk over all used columns vs the dense/sparse split."""
    import numpy as np

    from symnet.core.kernels import monomials
    from symnet.core.model.polyreg import monomial_table
    from symnet.solvers.polyreg import GramAccumulator, dense_split

    X2 = data.x_train.reshape(len(data.x_train), -1)
    Y = data.one_hot("train")
    table = monomial_table(data.input_shape, args.degree, args.window)
    counts = sum(monomials.monomial_nonzero_counts(np.ascontiguousarray(X2[s:s + 4096].T), table)[0]
                 for s in range(0, len(X2), 4096))
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]
    split = dense_split(counts[order], len(X2))
    accs = {"dsyrk over all": GramAccumulator(table, order, len(order), data.num_classes),
            f"split {split}/{len(order)}": GramAccumulator(table, order, split, data.num_classes)}
    times: dict[str, list[float]] = {k: [] for k in accs}
    for s in range(0, args.compare_gram * 4096, 4096):  # alternate, so that both see the same machine load
        for name, acc in accs.items():
            t0 = time.perf_counter()
            acc.add(X2[s:s + 4096], Y[s:s + 4096])
            times[name].append(time.perf_counter() - t0)
    print(f"\n== Gram accumulation, seconds per chunk of 4096 samples (median of {args.compare_gram}) ==")
    for name, t in times.items():
        print(f"{name:<22} {float(np.median(t)):.2f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", default=str(DEFAULT_ROOT), help="folder holding <dataset>/ with the IDX files")
    ap.add_argument("--method", choices=("exact", "bagging", "both", "cg", "auto"), default="both")
    ap.add_argument("--degree", type=int, default=2)
    ap.add_argument("--window", type=int, default=3)
    ap.add_argument("--ridge", type=float, default=None, help="default: chosen on a validation split")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precond", default="subsample", help="cg: subsample, jacobi or none")
    ap.add_argument("--precond-samples", type=int, default=4000, help="cg: samples of the subsample preconditioner")
    ap.add_argument("--cg-tol", type=float, default=1e-5, help="cg: relative residual of the final solve")
    ap.add_argument("--eval-train", action="store_true", help="also score the training set after each step")
    ap.add_argument("--figures", default=None, help="write coefficient maps (PNG) of the exact or cg fit here")
    ap.add_argument("--compare-gram", type=int, default=0, metavar="CHUNKS",
                    help="only time Gram accumulation over CHUNKS chunks: all-dense dsyrk vs the dense/sparse split")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        t0 = time.perf_counter()
        data = datasets.load(args.dataset, root=args.data_dir, download=False)
        print(f"{data} loaded in {time.perf_counter() - t0:.1f} s")
        if args.compare_gram:
            compare_gram(data, args)
            return 0
        for method in (("exact", "bagging") if args.method == "both" else (args.method,)):
            run(data, method, args)
    except SymnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
