"""``mlp-optimizers``: an MLP on MNIST with gradient descent, momentum, Nesterov and Adam; exact solvers beside."""

from __future__ import annotations

from typing import Any

from symnet.frontend import api
from symnet.frontend.compare import compare
from symnet.frontend.reproduce.common import load_data
from symnet.frontend.reproduce.framework import Context, Part, Row, register

THESIS_MLP = {"sgd": (0.9805, 0.9720), "momentum": (0.9996, 0.9812), "nesterov": (0.9997, 0.9826),
              "adam": (0.98, None)}
MLP_RATES = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adam": 0.001}
MLP_HIDDEN = 128
MLP_EPOCHS = 10
#: Training seconds of each exact solver on the MLP.
MLP_EXACT_SECONDS = 120.0
MLP_EXACT = ("gauss-newton", "lbfgs", "coordinate")


@register("mlp-optimizers",
           "An MLP on MNIST, 10 epochs of gradient descent, momentum, Nesterov and Adam; exact solvers beside",
           "an MLP trained on MNIST for 10 epochs: gradient descent (lr 0.01) train 98.05% / test 97.20%, "
           "momentum (0.01) 99.96% / 98.12%, Nesterov (0.01) 99.97% / 98.26%, Adam (0.001) about 98% train; "
           "cross-entropy loss, ReLU",
           [Part("gradient", f"sgd, momentum, nesterov, adam at the source's rates, {MLP_EPOCHS} epochs", 1.5),
            Part("exact", f"gauss-newton, lbfgs and coordinate, {MLP_EXACT_SECONDS:.0f} s of training each", 7)])
def _mlp_optimizers(ctx: Context) -> list[Row]:
    q = ctx.quick
    epochs = 1 if q else MLP_EPOCHS
    seconds = 5.0 if q else MLP_EXACT_SECONDS
    cache: dict[str, Any] = {}

    def data():
        if "data" not in cache:
            cache["data"] = load_data(ctx, "mnist", 2000 if q else None, 500 if q else None)
        return cache["data"]

    def run(names):
        d = data()
        model = api.build_model("mlp", d, hidden=MLP_HIDDEN, seed=ctx.seed)
        solvers = [(nm, dict({"lr": MLP_RATES[nm]} if nm in MLP_RATES else {}, **ctx.options.get(nm, {})))
                   for nm in names]
        budget = {"epochs": epochs} if "adam" in names else {"time": seconds}
        c = compare(model, d, solvers, budget, seed=ctx.seed, quiet=ctx.quiet,
                    out=None if ctx.out is None else ctx.out / f"runs-{'gradient' if 'adam' in names else 'exact'}")
        for name, fig in c.plot().items():
            ctx.figures[f"{'gradient' if 'adam' in names else 'exact'}_{name}"] = fig
        return {row["solver"]: row for row in c.rows}

    grad = ctx.run("gradient", lambda: run(list(MLP_RATES)))
    exact = ctx.run("exact", lambda: run(list(MLP_EXACT)))
    for key, res in (("gradient", grad), ("exact", exact)):
        if res is not None:
            ctx.details[key] = res
    n_params = 784 * MLP_HIDDEN + MLP_HIDDEN + MLP_HIDDEN * 10 + 10
    note_net = (f"network: symnet's mlp preset, 784 -> {MLP_HIDDEN} -> x^2 -> 10 ({n_params:,} parameters; the hidden "
                f"width is chosen here, the source's is not stated), images flattened")
    note_loss = ("squared loss on one-hot targets with an x^2 activation; the source used cross-entropy and ReLU")
    note_grad = (f"batches of 128 (the source's batch size is not stated), float32, {epochs} epoch(s), seed 0; "
                 "momentum and Nesterov with momentum 0.9")
    note_exact = (f"exact solvers with their default options (in results.json), {seconds:.0f} s of training each "
                  "(a step that starts before the limit finishes); no source figure")
    note_quick = "QUICK: the bundled MNIST subset, 2,000 training / 500 test images, 1 epoch, 5 s per exact solver"
    quick = (note_quick,) if q else ()
    names = {"sgd": "gradient descent (sgd)", "momentum": "momentum", "nesterov": "Nesterov", "adam": "Adam"}
    rows = []
    for solver, (src_train, src_test) in THESIS_MLP.items():
        setting = f"mlp, {names[solver]}, lr {MLP_RATES[solver]:g}"
        for metric, src, key in (("train acc", src_train, "train_acc"), ("test acc", src_test, "test_acc")):
            rows.append(ctx.row("mlp", setting, metric, src, grad, lambda r, s=solver, k=key: r[s][k], "percent",
                                (note_net, note_loss, note_grad) + quick, "gradient",
                                "about 98%" if solver == "adam" and key == "train_acc" else None))
    for solver in MLP_EXACT:
        for metric, key in (("train acc", "train_acc"), ("test acc", "test_acc")):
            rows.append(ctx.row("mlp", f"mlp, {solver}", metric, None, exact, lambda r, s=solver, k=key: r[s][k],
                                "percent", (note_net, note_loss, note_exact) + quick, "exact"))
    return rows
