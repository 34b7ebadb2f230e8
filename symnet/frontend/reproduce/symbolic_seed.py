"""``symbolic-seed``: the original symbolic experiment, the seed network trained one variable at a time."""

from __future__ import annotations

from symnet.frontend import api, runner
from symnet.frontend.reproduce.common import json_row, load_data, run_solver, solver_entry
from symnet.frontend.reproduce.framework import Context, Part, Row, register

#: The original procedure: each variable in turn set to the global minimum of the loss in it, nothing else.
PLAIN_COORDINATE = {"ridge": 0.0, "linear_block": False, "rescale": False, "extrapolate": False}


@register("symbolic-seed",
           "The original symbolic experiment: a one-filter conv -> linear network trained one variable at a time",
           "the project's first experiment: the seed network (conv, one 3x3 filter -> linear, no activation) "
           "trained variable by variable by symbolic solving on the first 100 MNIST training images: about 44% "
           "test accuracy after about an hour on a CPU, short of one pass over its ~6,800 variables; expanding "
           "its loss on more images ran out of memory",
           [Part("100", "the first 100 training images, one sweep: the original procedure and symnet's defaults", 0.2),
            Part("60000", "all 60,000 training images, one sweep each", 1)])
def _symbolic_seed(ctx: Context) -> list[Row]:
    q = ctx.quick
    big = 2000 if q else None
    test_n = 500 if q else None

    def run(samples):
        data = load_data(ctx, "mnist", samples, test_n)
        model = api.build_model("seed", data, seed=ctx.seed)
        warm = data.subset(10, 10)  # compile the numba kernels outside the timed sweeps
        for options in (PLAIN_COORDINATE, None):
            runner.run_entry(solver_entry("coordinate", options), api.build_model("seed", warm, seed=ctx.seed), warm,
                             {"sweeps": 1}, quiet=True)
        out = {}
        for key, options in (("plain", PLAIN_COORDINATE), ("defaults", None)):
            row = run_solver(ctx, "coordinate", options, model, data, {"sweeps": 1})
            row["s_per_variable"] = row["time"] / row["updates"] if row["updates"] else None
            out[key] = row
        return out

    small = ctx.run("100", lambda: run(100))
    large = ctx.run("60000", lambda: run(big))
    for key, res in (("100", small), ("60000", large)):
        if res is not None:
            ctx.details[key] = {k: json_row(v) for k, v in res.items()}
    n_big = f"{big:,}" if q else "60,000"
    test = f"{test_n:,}" if q else "10,000"
    note_plain = ("the original procedure: each variable set in turn to the global minimum of the squared loss "
                  "in it (no ridge, no other step); here the minimum comes from the exact univariate polynomial, "
                  "not a symbolic expansion")
    note_def = ("symnet's coordinate defaults: ridge 1, and after each sweep an exact solve of the last layer, a "
                "per-channel rescale and a line search along the sweep's displacement")
    note_test = f"test accuracy on the first {test} MNIST test images" + ("" if q else " (all of them)") + \
        "; the source's test set is not stated"
    note_time = ("seconds of training per variable update, numba compilation excluded (a warm-up sweep on 10 "
                 "images runs first); the source: about an hour for fewer than ~6,800 variables, so more than "
                 "0.5 s each")
    note_mem = "growth of resident memory during the sweep; the source ran out of memory expanding the loss"
    note_quick = (f"QUICK: the bundled MNIST subset, {big:,} training images instead of 60,000 and {test_n} test "
                  "images") if q else None
    quick = (note_quick,) if q else ()
    rows = []
    for label, res, part, src_acc in (("100 images", small, "100", 0.44), (f"{n_big} images", large, "60000", None)):
        for key, note in (("plain", note_plain), ("defaults", note_def)):
            setting = f"seed, {label}, coordinate ({'original procedure' if key == 'plain' else 'defaults'}), 1 sweep"
            src_text = "about 44%" if src_acc is not None and key == "plain" else None
            rows.append(ctx.row("seed", setting, "test acc", src_acc if key == "plain" else None, res,
                                lambda r, key=key: r[key]["test_acc"], "percent", (note, note_test) + quick, part,
                                src_text))
            rows.append(ctx.row("seed", setting, "s / variable", 0.53 if part == "100" and key == "plain" else None,
                                res, lambda r, key=key: r[key]["s_per_variable"], "seconds", (note, note_time) + quick,
                                part, "> 0.5 s" if part == "100" and key == "plain" else None))
        rows.append(ctx.row("seed", f"seed, {label}, coordinate (defaults), 1 sweep", "peak memory", None, res,
                            lambda r: max(r["defaults"]["peak_mb"] or 0.0, 0.0), "megabytes", (note_mem,) + quick,
                            part, "out of memory" if part == "60000" else None))
    return rows
