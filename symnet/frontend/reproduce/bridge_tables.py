"""``bridge-tables``: thesis Tables 3.8 and 3.9, a ReLU network's equivalent monomial weights vs polynomial regression's."""

from __future__ import annotations

import math

import numpy as np

import symnet.core.datasets as datasets
import symnet.core.model.presets as models
from symnet.core.errors import SolverError
from symnet.core.layers import ACTIVATIONS

from symnet.frontend import bridge
from symnet.frontend.reproduce.common import least_squares_by_degree
from symnet.frontend.reproduce.framework import Context, Part, Row, register

THESIS_BRIDGE = {"l2": (0.9983, 0.815, 0.0026), "linf": (0.9984, 0.965, 0.0026), "posterior": (0.9984, 0.9853, 0.0031)}
#: The source's posterior fit (symnet's preset relu-approx-c), lowest degree first.
POSTERIOR_COEFFICIENTS = ACTIVATIONS["relu-approx-c"]
#: The pre-activation scale at which the source's posterior a0 and a2 are ReLU's Gaussian L2 projection
#: (0.1995 s and 0.1995 / s): s = sqrt(a0 / a2).
SOURCE_SCALE = math.sqrt(POSTERIOR_COEFFICIENTS[0] / POSTERIOR_COEFFICIENTS[2])
#: Interval of the L2 and L-infinity approximations of ReLU.
APPROX_INTERVAL = 3.0
BRIDGE = {False: {"d": 10, "m": 10, "n": 10_000, "teachers": 11}, True: {"d": 4, "m": 4, "n": 500, "teachers": 3}}


def relu_approximation(norm: str, degree: int = 3, half_width: float = APPROX_INTERVAL, points: int = 2001):
    """Coefficients (lowest degree first) of the best polynomial approximation of ReLU on ``[-h, h]``.

    ``norm="l2"``: least squares over the interval (uniform weight);
    ``norm="linf"``: minimax (the largest error least), a linear program.
    Both on a grid of ``points`` points. ReLU's odd part is ``x/2``, so the
    odd coefficients above 1 vanish.

    Example:
        >>> np.round(relu_approximation("linf", 2, 1.0), 3).tolist()   # 1/16 + x/2 + x^2/2
        [0.063, 0.5, 0.5]
        >>> np.round(relu_approximation("l2", 3, 1.0), 3).tolist()     # 3/32 + x/2 + 15/32 x^2
        [0.094, 0.5, 0.469, 0.0]
    """
    x = np.linspace(-half_width, half_width, points)
    y = np.maximum(x, 0.0)
    V = np.vander(x, degree + 1, increasing=True)
    if norm == "l2":
        coef = np.linalg.lstsq(V, y, rcond=None)[0]
    elif norm == "linf":
        from scipy.optimize import linprog  # scipy.optimize costs half a second at import; only this needs it

        k = degree + 1
        cost = np.zeros(k + 1)
        cost[-1] = 1.0
        ones = np.ones((points, 1))
        A = np.vstack([np.hstack([V, -ones]), np.hstack([-V, -ones])])
        b = np.concatenate([y, -y])
        res = linprog(cost, A_ub=A, b_ub=b, bounds=[(None, None)] * k + [(0, None)], method="highs")
        if not res.success:
            raise SolverError(f"the minimax fit of ReLU failed: {res.message}")
        coef = res.x[:k]
    else:
        raise SolverError(f"norm must be 'l2' or 'linf', got {norm!r}")
    coef = np.where(np.abs(coef) < 1e-9, 0.0, coef)
    return coef


def _relu_network(W1: np.ndarray, W2: np.ndarray, activation, scale: float = 1.0):
    """``W2 relu(W1 x)`` as a symnet mlp with a polynomial activation, first-layer rows of norm ``scale``.

    ``relu(c z) = c relu(z)`` for ``c > 0``, so moving each row's norm into
    the read-out gives the same ReLU network with pre-activations of scale
    ``scale`` (N(0, scale^2) for Gaussian inputs); at 1 the approximations on
    [-3, 3] apply.
    """
    norms = np.linalg.norm(W1, axis=1) / scale
    net = models.get("mlp", input_dim=W1.shape[1], hidden=W1.shape[0], num_classes=W2.shape[0],
                     activation=[float(a) for a in activation], seed=None)
    layers = [layer for layer in net.layers if getattr(layer, "params", None)]
    layers[0].params["weight"][...] = W1 / norms[:, None]
    layers[0].params["bias"][...] = 0.0
    layers[-1].params["weight"][...] = W2 * norms[None, :]
    layers[-1].params["bias"][...] = 0.0
    return net


@register("bridge-tables",
           "A ReLU network's equivalent monomial weights against polynomial regression's (thesis Tables 3.8, 3.9)",
           "the polynomial-regression thesis, Tables 3.8 and 3.9: R^2 between a trained one-hidden-layer "
           "network's equivalent tensor weights and polynomial regression's, per degree, with ReLU replaced by "
           "its L2 and L-infinity polynomial approximations and by a posterior fit of the activation "
           "(0.114 + 0.498x + 0.352x^2 - 0.0011x^3)",
           [Part("teachers", "ReLU networks vs degree-3 polynomial regression fitted to their outputs", 1)])
def _bridge_tables(ctx: Context) -> list[Row]:
    cfg = BRIDGE[ctx.quick]
    d, m, n, T = cfg["d"], cfg["m"], cfg["n"], cfg["teachers"]
    presets = {key: np.array(ACTIVATIONS[f"relu-approx-{key[-1]}"]) for key in ("preset-a", "preset-b", "preset-c")}
    # The two ways of writing the same ReLU network: pre-activations of scale 1 and of the source's scale.
    approx = {"unit": {"l2": relu_approximation("l2"), "linf": relu_approximation("linf"),
                       "preset-c": presets["preset-c"]},
              "source": presets}
    scales = {"unit": 1.0, "source": SOURCE_SCALE}

    def run():
        r2: dict = {sc: {k: [] for k in list(approx[sc]) + ["posterior"]} for sc in scales}
        fitted: dict = {sc: [] for sc in scales}
        for t in range(T):
            r = datasets.network_regression(n, 1, d, m, "relu", seed=ctx.seed * 1000 + t)
            table, weights = least_squares_by_degree(r.x_train, r.y_train, (3,))
            W_poly = weights[3]
            for sc, scale in scales.items():
                for key, coeffs in approx[sc].items():
                    net = _relu_network(r.teacher["W1"], r.teacher["W2"], coeffs, scale)
                    eq = bridge.equivalent_weights(net, table, allow_dropped=True)
                    r2[sc][key].append({row.degree: row.r2 for row in bridge.r2_by_degree(eq.weight, W_poly, table)})
                start = _relu_network(r.teacher["W1"], r.teacher["W2"], POSTERIOR_COEFFICIENTS, scale)
                fit = bridge.fit_activation_coefficients(start, W_poly, table)
                fitted[sc].append(fit.coefficients.tolist())
                r2[sc]["posterior"].append({row.degree: row.r2 for row in fit.after})
        return {"r2": r2, "coefficients": fitted}

    res = ctx.run("teachers", run)
    if res is not None:
        ctx.details.update(res)
        ctx.details["approximations"] = {sc: {k: v.tolist() for k, v in a.items()} for sc, a in approx.items()}
        ctx.details["scales"] = scales

    def coeffs_text(c):
        return " + ".join(f"{v:.4g}x^{j}" if j > 1 else (f"{v:.4g}x" if j == 1 else f"{v:.4g}")
                          for j, v in enumerate(c)).replace("+ -", "- ")

    setting = (f"network: a random ReLU teacher (d = {d} Gaussian inputs, m = {m} hidden units, N(0, 1) weights, "
               f"no biases), one output, written with first-layer rows of unit norm (pre-activations N(0, 1)); "
               f"polyreg: least squares (ridge 0) of degree 3, window None, on n = {n:,} of its outputs; median "
               f"over {T} teachers")
    trained = ("the source compared a network trained by gradient descent on its data; symnet trains polynomial "
               "networks only, so the ReLU network here is the teacher itself, the network a perfect fit would "
               "reach")
    note_scale = (f"the same ReLU network written with first-layer rows of norm s = {SOURCE_SCALE:.3f} (the read-out "
                  "scaled back), so its pre-activations are N(0, s^2). For Gaussian pre-activations of scale s the "
                  "L2 projection of ReLU onto degree <= 3 is 0.1995 s + x/2 + 0.1995 x^2 / s; s = sqrt(0.114 / "
                  "0.352) is the scale at which the source's posterior a0 and a2 are that projection: a "
                  "calibration from the source's figures, not a prediction")
    note_pairing = ("relu-approx-a (0.188 + 0.5x + 0.21x^2) and relu-approx-b (0.096 + 0.5x + 0.3x^2) are the "
                    "project's stored ReLU approximations; pairing a with the source's L2 row and b with its "
                    "L-infinity row is inferred from the source's figures (their a2 against the posterior 0.352), "
                    "the source does not print its coefficients here")
    note_approx = {
        "l2": f"L2 approximation computed here: least squares on [-3, 3]: {coeffs_text(approx['unit']['l2'])}",
        "linf": f"L-infinity approximation computed here: minimax on [-3, 3]: {coeffs_text(approx['unit']['linf'])}",
        "preset-a": note_pairing, "preset-b": note_pairing,
        "preset-c": "the source's posterior activation applied as it is (relu-approx-c)",
        "posterior": ("posterior fit: the activation's coefficients fitted to polyreg's weights, degree by degree "
                      "from the highest (fit_activation_coefficients), first and last layers held"),
    }
    r2_note = ("R^2 per degree: 1 - |T_poly - T_net|^2 / |T_poly - mean T_poly|^2 over the monomials of that "
               "degree (bridge.r2_by_degree); it can fall below 0")
    labels = {"l2": ("3.8", "L2 approximation of ReLU", "l2"),
              "linf": ("3.8", "L-infinity approximation of ReLU", "linf"),
              "preset-a": ("3.8", "relu-approx-a (as L2)", "l2"),
              "preset-b": ("3.8", "relu-approx-b (as L-infinity)", "linf"),
              "posterior": ("3.9", "posterior fit of the activation", "posterior"),
              "preset-c": ("3.9", "relu-approx-c (the source's posterior) as is", None)}
    rows = []
    for sc, keys in (("unit", ("l2", "linf", "posterior", "preset-c")),
                     ("source", ("preset-a", "preset-b", "posterior", "preset-c"))):
        where = "" if sc == "unit" else f", scale {SOURCE_SCALE:.2f}"
        extra = () if sc == "unit" else (note_scale,)
        for key in keys:
            table, what, src_key = labels[key]
            src = THESIS_BRIDGE.get(src_key)
            for D in (1, 2, 3):
                rows.append(ctx.row(table, f"{what}{where}, degree {D}", "median R^2",
                                    None if src is None else src[D - 1], res,
                                    lambda r, sc=sc, key=key, D=D: np.median([x[D] for x in r["r2"][sc][key]]),
                                    "r2", (setting, trained) + extra + (note_approx[key], r2_note)
                                    + (("no source figure: an extra row",) if src is None else ()), "teachers"))
        for j, value in enumerate(POSTERIOR_COEFFICIENTS):
            rows.append(ctx.row("3.9", f"posterior fit{where}, a{j} (of x^{j})", "median", value, res,
                                lambda r, sc=sc, j=j: np.median([c[j] for c in r["coefficients"][sc]]),
                                "coefficient", (setting, trained) + extra + (note_approx["posterior"],), "teachers"))
    return rows
