"""``recovery``: thesis Table 3.1, how much of a random network polynomial regression recovers."""

from __future__ import annotations

from typing import Sequence

import numpy as np

import symnet.core.datasets as datasets
from symnet.core.model.polyreg import features, monomial_table

from symnet.frontend import plots
from symnet.frontend.reproduce.common import least_squares_by_degree, r2_score
from symnet.frontend.reproduce.framework import Context, Part, Row, register

THESIS_RECOVERY = {"relu": {2: 0.7201, 3: 0.721, 4: 0.8795}, "sigmoid": {2: 0.3525, 3: 0.784, 4: 0.8035}}
#: Full and quick settings of the recovery experiment.
RECOVERY = {
    False: {"d": 10, "m": 10, "n": 10_000, "n_test": 5_000, "teachers": 25,
            "widths": (1, 2, 5, 10, 20, 50, 100), "width_teachers": 11},
    True: {"d": 4, "m": 4, "n": 600, "n_test": 300, "teachers": 5, "widths": (1, 4), "width_teachers": 3},
}


def recovery_r2(activation: str, *, input_dim: int, hidden: int, n_train: int, n_test: int, teachers: int,
                degrees: Sequence[int] = (1, 2, 3, 4), seed: int = 0) -> dict[int, list[float]]:
    """Out-of-sample R^2 of polynomial regression on random teacher networks, per degree.

    Each teacher (:func:`symnet.core.datasets.network_regression`: N(0, 1)
    weights, no biases, Gaussian inputs, one real-valued output) labels
    ``n_train + n_test`` inputs; least squares over every monomial of degree
    <= D (window None) is fitted on the first ``n_train`` and scored on the rest.

    Returns:
        ``{degree: [R^2 of each teacher]}``.

    Example:
        >>> r2 = recovery_r2("relu", input_dim=3, hidden=2, n_train=200, n_test=100, teachers=2, degrees=(1, 2))
        >>> sorted(r2), len(r2[2]), all(b >= a - 0.05 for a, b in zip(r2[1], r2[2]))
        ([1, 2], 2, True)
    """
    out: dict[int, list[float]] = {D: [] for D in degrees}
    for t in range(teachers):
        r = datasets.network_regression(n_train, n_test, input_dim, hidden, activation, seed=seed * 1000 + t)
        table, weights = least_squares_by_degree(r.x_train, r.y_train, degrees)
        F_test = features(r.x_test, table)
        for D, W in weights.items():
            out[D].append(r2_score(r.y_test, F_test[:, :len(W)] @ W))
    return out


@register("recovery",
           "How much of a random one-hidden-layer network polynomial regression recovers (thesis Table 3.1)",
           "the polynomial-regression thesis, Table 3.1: median out-of-sample R^2 of polynomial regression of "
           "degree 2, 3 and 4 fitted to random ReLU and sigmoid teachers",
           [Part("relu", "ReLU teachers: median R^2 of degree 1-4 fits", 1),
            Part("sigmoid", "sigmoid teachers: median R^2 of degree 1-4 fits", 1),
            Part("width", "R^2 against the teacher's width (figure recovery_vs_width.png)", 4)])
def _recovery(ctx: Context) -> list[Row]:
    cfg = RECOVERY[ctx.quick]
    d, m, n, nt, T = cfg["d"], cfg["m"], cfg["n"], cfg["n_test"], cfg["teachers"]
    counts = {D: len(monomial_table((d,), D, None)) for D in (1, 2, 3, 4)}
    setting = (f"teachers: d = {d} Gaussian inputs N(0, I), m = {m} hidden units, one output, weights N(0, 1), no "
               f"biases; n = {n:,} training / {nt:,} test samples; median over {T} teachers; the source's d, m "
               f"and n for this table are not stated (its R^2-vs-width figure used d up to 25, n = 2,000)")
    fit = (f"plain least squares (ridge 0) over every monomial of degree <= D of the inputs (window None): "
           f"{counts[1]}, {counts[2]}, {counts[3]} and {counts[4]:,} features (bias included) for D = 1 ... 4")
    r2_note = "R^2 = 1 - SSE / sum (y - mean y)^2 on the test samples"
    rows = []
    for act in ("relu", "sigmoid"):
        res = ctx.run(act, lambda act=act: recovery_r2(act, input_dim=d, hidden=m, n_train=n, n_test=nt,
                                                       teachers=T, seed=ctx.seed))
        if res is not None:
            ctx.details[act] = {str(D): v for D, v in res.items()}
        name = "ReLU" if act == "relu" else "sigmoid"
        for D in (1, 2, 3, 4):
            rows.append(ctx.row("3.1", f"{name} teacher, polyreg degree {D}", "median test R^2",
                                THESIS_RECOVERY[act].get(D), res, lambda r, D=D: np.median(r[D]), "r2",
                                (setting, fit, r2_note) if D > 1 else (setting, fit, r2_note,
                                                                       "degree 1: a baseline; not in the source"),
                                act))
    widths = cfg["widths"]
    figure_note = (f"width sweep (figure recovery_vs_width.png): teachers as above with m = "
                   f"{', '.join(str(w) for w in widths)} hidden units, {cfg['width_teachers']} teachers per width; "
                   "the source's figure is not given as numbers here")

    def sweep():
        curves = {}
        for act in ("relu", "sigmoid"):
            lines = {}
            per = [recovery_r2(act, input_dim=d, hidden=w, n_train=n, n_test=nt, teachers=cfg["width_teachers"],
                               degrees=(2, 3, 4), seed=ctx.seed) for w in widths]
            for D in (2, 3, 4):
                v = [np.asarray(p[D]) for p in per]
                lines[f"degree {D}"] = ([float(np.median(x)) for x in v], [float(np.percentile(x, 25)) for x in v],
                                        [float(np.percentile(x, 75)) for x in v])
            curves["ReLU" if act == "relu" else "sigmoid"] = lines
        return curves

    curves = ctx.run("width", sweep)
    if curves is not None:
        ctx.details["width"] = {"widths": list(widths), "teachers": cfg["width_teachers"], "curves": curves}
        ctx.figures["recovery_vs_width"] = plots.recovery_curves(
            list(widths), curves, f"Polynomial regression on random one-hidden-layer teachers: d = {d}, n = {n:,} "
                                  f"train / {nt:,} test, {cfg['width_teachers']} teachers per width")
        for act, name in (("relu", "ReLU"), ("sigmoid", "sigmoid")):
            for D in (2, 4):
                med = curves[name][f"degree {D}"][0]
                rows.append(ctx.row("3.1 (fig.)", f"{name}, degree {D}, widest teacher (m = {widths[-1]})",
                                    "median test R^2", None, med, lambda r: r[-1], "r2",
                                    (fit, r2_note, figure_note), "width"))
    return rows
