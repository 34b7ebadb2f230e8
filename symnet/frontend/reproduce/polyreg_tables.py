"""``polyreg-tables``: thesis Tables 3.5-3.7, polynomial regression over windowed pixel products vs a CNN."""

from __future__ import annotations

from typing import Any

from symnet.core.model.polyreg import PolyRegModel

from symnet.frontend import api
from symnet.frontend.reproduce.common import coefficient_spread, json_row, load_data, pool_images, run_solver
from symnet.frontend.reproduce.framework import Context, Part, Row, register

THESIS_POLYREG = {
    "mnist": {"bagged": 0.9651, "cnn": 0.9903, "exact_train": 0.9866, "exact_test": 0.9581,
              "exact_l1": 1.9e9, "exact_l2": 1.6e10, "bagged_l1": 5.7e-3, "bagged_l2": 9.6e-3},
    "fashion-mnist": {"bagged": 0.8732, "cnn": 0.9080, "exact_train": 0.9439, "exact_test": 0.8788,
                      "exact_l1": 1.4e7, "exact_l2": 6.9e7, "bagged_l1": 8.4e-3, "bagged_l2": 1.3e-2},
}
_DATASET_TITLE = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_SHORT = {"mnist": "mnist", "fashion-mnist": "fashion"}
#: Training seconds of Gauss-Newton (defaults) on poly2 in the CNN rows.
CNN_GN_SECONDS = 600.0
CNN_ADAM_EPOCHS = 10
#: Quick mode of polyreg-tables.
QUICK_POLYREG = {"samples": 1000, "test_samples": 300, "pool": 3, "batches": 4, "batch_size": 300,
                 "cnn_samples": 500, "cnn_test_samples": 200}


def _polyreg_parts() -> list[Part]:
    parts = []
    for ds in ("mnist", "fashion-mnist"):
        s, t = _SHORT[ds], _DATASET_TITLE[ds]
        parts += [Part(f"{s}-exact-ls", f"{t}: exact least squares (ridge 0), all training images", 4, True),
                  Part(f"{s}-exact-ridge", f"{t}: exact ridge, penalty chosen on a validation split", 3, True),
                  Part(f"{s}-bagged-ls", f"{t}: bagged least squares, 60 subsets of 2,000 (ridge 0)", 6, True),
                  Part(f"{s}-bagged-ridge", f"{t}: bagged ridge, penalty chosen on a validation split", 6, True),
                  Part(f"{s}-cnn-adam", f"{t}: poly2 with Adam (lr 1e-3, batches of 128), "
                                        f"{CNN_ADAM_EPOCHS} epochs", 3, True),
                  Part(f"{s}-cnn-gauss-newton", f"{t}: poly2 with gauss-newton (its defaults), "
                                                f"{CNN_GN_SECONDS:.0f} s of training (one step past the limit "
                                                "finishes)", 15, True)]
    return parts


@register("polyreg-tables",
           "Polynomial regression over windowed pixel products vs a CNN (thesis Tables 3.5, 3.6, 3.7)",
           "the polynomial-regression thesis: Table 3.5 (bagged least squares and its CNN, out-of-sample "
           "accuracy), Table 3.6 (exact least squares, in- and out-of-sample), Table 3.7 (coefficient "
           "magnitudes)", _polyreg_parts())
def _polyreg_tables(ctx: Context) -> list[Row]:
    q = ctx.quick
    n_q, nt_q = QUICK_POLYREG["samples"], QUICK_POLYREG["test_samples"]
    bag = {"batches": QUICK_POLYREG["batches"], "batch_size": QUICK_POLYREG["batch_size"]} if q else \
        {"batches": 60, "batch_size": 2000}
    rows: list[Row] = []
    notes_features = ("features: the 10,155 distinct monomials of degree <= 2 whose pixels fit a 3x3 window "
                      "(bias included; a product counted once); the source used 18,740 ordered products, "
                      "duplicates included")
    note_ls = ("ridge 0: Cholesky of the Gram when it is numerically positive definite, else the minimum-norm "
               "solution; the source's solver is not stated")
    note_ridge = ("penalty chosen on the last 5,000 training images (least validation squared error over "
                  "0.1 ... 1000 and midpoints), then refitted on all; the source used no penalty")
    note_bag = ("bagging: the average of the subsets' coefficients; a subset smaller than the number of features "
                "is solved through its 2,000 x 2,000 dual system (ridge 0: the minimum-norm interpolant)")
    note_spread = ("L1 = mean |w - median(w)|, L2 = standard deviation, over all 10 x 10,155 coefficients "
                   "(features never non-zero in training keep coefficient 0)")
    note_cnn = ("CNN: symnet's poly2 (conv 16 5x5 -> x^2 -> avgpool 2 -> conv 32 5x5 -> x^2 -> avgpool 2 -> "
                "linear; squared loss on one-hot targets); the source's CNN is its own (architecture and loss not "
                "restated here)")
    note_adam = (f"Adam: lr 1e-3, batches of 128, {CNN_ADAM_EPOCHS} epochs, float32, no ridge, seed 0")
    note_gn = (f"gauss-newton with its default options at the time of the run (in results.json), "
               f"{CNN_GN_SECONDS:.0f} s of training; the source has no exact-solver CNN")
    qp = QUICK_POLYREG
    note_quick = (f"QUICK: polyreg on {qp['samples']:,} training / {qp['test_samples']} test images averaged over "
                  f"{qp['pool']}x{qp['pool']} blocks (9x9), bagging {qp['batches']} x {qp['batch_size']}; poly2 "
                  f"with 4 and 8 filters on {qp['cnn_samples']} / {qp['cnn_test_samples']} images, Adam 4 epochs "
                  "of batches of 16, gauss-newton 1 iteration")
    for ds in ("mnist", "fashion-mnist"):
        src = THESIS_POLYREG[ds]
        s, title = _SHORT[ds], _DATASET_TITLE[ds]
        cache: dict[str, Any] = {}

        def data(ds=ds, cache=cache, pooled=True):
            key = "pooled" if pooled else "raw"
            if key not in cache:
                d = load_data(ctx, ds, n_q if q else None, nt_q if q else None)
                cache["raw"] = d
                cache["pooled"] = pool_images(d, QUICK_POLYREG["pool"]) if q else d
            return cache[key]

        def polyreg(options, data=data):
            d = data()
            model = PolyRegModel(d.input_shape, d.num_classes, 2, 3)
            row = run_solver(ctx, "polyreg", dict(options, degree=2, window=3), model, d, {})
            row["l1"], row["l2"] = coefficient_spread(row["model_obj"].weight)
            row["ridge_used"] = row["last"].get("ridge_used")
            return row

        def cnn(solver, options, budget, data=data):
            d = data(pooled=False)
            if q:
                d = d.subset(QUICK_POLYREG["cnn_samples"], QUICK_POLYREG["cnn_test_samples"])
            kw = {"channels": 4, "channels2": 8} if q else {}
            model = api.build_model("poly2", d, seed=ctx.seed, **kw)
            return run_solver(ctx, solver, options, model, d, budget)

        ex_ls = ctx.run(f"{s}-exact-ls", lambda: polyreg({"method": "exact", "ridge": 0.0}))
        ex_rg = ctx.run(f"{s}-exact-ridge", lambda: polyreg({"method": "exact", "ridge": None}))
        bg_ls = ctx.run(f"{s}-bagged-ls", lambda: polyreg(dict(bag, method="bagging", ridge=0.0)))
        bg_rg = ctx.run(f"{s}-bagged-ridge", lambda: polyreg(dict(bag, method="bagging", ridge=None)))
        adam = ctx.run(f"{s}-cnn-adam", lambda: cnn("adam", {"lr": 1e-3, "batch_size": 16 if q else 128},
                                                    {"epochs": 4 if q else CNN_ADAM_EPOCHS}))
        gn = ctx.run(f"{s}-cnn-gauss-newton",
                     lambda: cnn("gauss-newton", None, {"steps": 1} if q else {"time": CNN_GN_SECONDS}))
        for key, res in (("exact_ls", ex_ls), ("exact_ridge", ex_rg), ("bagged_ls", bg_ls),
                         ("bagged_ridge", bg_rg), ("cnn_adam", adam), ("cnn_gauss_newton", gn)):
            if res is not None:
                ctx.details.setdefault(ds, {})[key] = json_row(res)
        if adam is not None:
            ctx.details.setdefault("histories", {})[f"{s}-cnn-adam"] = adam["history"]
        if gn is not None:
            ctx.details.setdefault("histories", {})[f"{s}-cnn-gauss-newton"] = gn["history"]
        quick = (note_quick,) if q else ()
        test, train = (lambda r: r["test_acc"]), (lambda r: r["train_acc"])

        def chosen(r):
            """The validation note with the penalty this run chose (the source used none)."""
            if r is None or r.get("ridge_used") is None:
                return (note_ridge,)
            return (note_ridge.replace("then refitted", f"here {r['ridge_used']:.3g}, then refitted"),)

        rows += [
            ctx.row("3.5", f"{title}, bagged least squares", "test acc", src["bagged"], bg_ls, test, "percent",
                    (notes_features, note_bag) + quick, f"{s}-bagged-ls"),
            ctx.row("3.5", f"{title}, bagged ridge", "test acc", src["bagged"], bg_rg, test, "percent",
                    (notes_features, note_bag) + chosen(bg_rg) + quick, f"{s}-bagged-ridge"),
            ctx.row("3.5", f"{title}, CNN: poly2 + Adam", "test acc", src["cnn"], adam, test, "percent",
                    (note_cnn, note_adam) + quick, f"{s}-cnn-adam"),
            ctx.row("3.5", f"{title}, CNN: poly2 + gauss-newton", "test acc", src["cnn"], gn, test, "percent",
                    (note_cnn, note_gn) + quick, f"{s}-cnn-gauss-newton"),
            ctx.row("3.6", f"{title}, exact least squares", "train acc", src["exact_train"], ex_ls, train,
                    "percent", (notes_features, note_ls) + quick, f"{s}-exact-ls"),
            ctx.row("3.6", f"{title}, exact least squares", "test acc", src["exact_test"], ex_ls, test,
                    "percent", (notes_features, note_ls) + quick, f"{s}-exact-ls"),
            ctx.row("3.6", f"{title}, exact ridge", "train acc", src["exact_train"], ex_rg, train, "percent",
                    (notes_features,) + chosen(ex_rg) + quick, f"{s}-exact-ridge"),
            ctx.row("3.6", f"{title}, exact ridge", "test acc", src["exact_test"], ex_rg, test, "percent",
                    (notes_features,) + chosen(ex_rg) + quick, f"{s}-exact-ridge"),
        ]
        for label, res, part, key in ((f"{title}, exact least squares", ex_ls, f"{s}-exact-ls", "exact"),
                                      (f"{title}, exact ridge", ex_rg, f"{s}-exact-ridge", "exact"),
                                      (f"{title}, bagged least squares", bg_ls, f"{s}-bagged-ls", "bagged"),
                                      (f"{title}, bagged ridge", bg_rg, f"{s}-bagged-ridge", "bagged")):
            extra = chosen(res) if "ridge" in part else ((note_ls,) if key == "exact" else ())
            for metric, which in (("L1", "l1"), ("L2", "l2")):
                rows.append(ctx.row("3.7", label, f"coefficient {metric}", src[f"{key}_{which}"], res,
                                    lambda r, which=which: r[which], "magnitude",
                                    (note_spread,) + extra + quick, part))
    return rows
