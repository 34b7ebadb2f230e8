"""Joint exact minimisation over a small block of parameters with a Groebner basis.

With every parameter but a block of ``k`` fixed, the training objective
``sum_n ||f(x_n) - y_n||^2 + ridge ||theta||^2`` is a polynomial in the ``k``
block variables. :func:`block_polynomial` builds it exactly: symengine
expands the model's symbolic view (:meth:`symnet.core.model.Sequential.symbolic`)
with each training sample and the fixed parameters substituted, one sample
at a time. :func:`solve_block` then finds every real stationary point
(``grad = 0``) with a lexicographic Groebner basis over the rationals (sympy),
back-substitutes through the triangular basis numerically, polishes each
candidate with Newton steps on the float system, and returns the candidate of
lowest objective. With ``ridge > 0`` the objective is coercive, so its global
minimum is one of the stationary points: the result is the block's GLOBAL
minimum (up to the rounding of the coefficients, see ``digits``).
:class:`SymbolicBlockSolver` applies this block after block and never accepts
a point worse than the current one.

This is for tiny problems only. Measured on the XOR network (2 inputs, 2
hidden units, x^2, 2 outputs, 4 samples, ridge 1e-3; 2 cores, load average
about 1.4), time of the Groebner basis plus the solve:

======================================  ======  ===============  =========
block                                   vars    degree of loss   time
======================================  ======  ===============  =========
first-layer weights of one unit         2       4                0.03 s
one unit's bias and its out weight      2       6                0.09 s
one unit: its 2 weights + out weight    3       6                0.39 s
one unit: its 2 weights + bias          3       4                2.8 s
two units' first-layer weights          4       4                101 s
======================================  ======  ===============  =========

(``python examples/exact_solvers_mnist.py symbolic`` re-measures it.) The
cost grows with the number of stationary points, which is up to
``(deg - 1)^k`` by Bezout, and with the size of the rationals in the basis;
beyond 3 variables with degree-6 blocks it stops being tractable. The limits
enforced (``max_vars`` 4, ``max_params`` 200, ``max_samples`` 256, and a
``max_degree`` of the block polynomial of 8) raise :class:`SolverError` with
the fix; raise them at your own risk.

Example:
    >>> import numpy as np
    >>> from symnet import models, datasets
    >>> data = datasets.xor()
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> sol = solve_block(m, data.x_train, data.one_hot("train"), ["linear0.weight[0,0]", "linear0.weight[0,1]"],
    ...                   ridge=1e-3)
    >>> sol.value <= sol.current_value
    True
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from symnet.core.certificates import BLOCK
from symnet.core.errors import ModelError, SolverError

from symnet.solvers.base import Solver
from symnet.solvers.options import Option

#: Default size limits (see the module docstring for the measured costs).
LIMITS = {"max_vars": 3, "max_params": 200, "max_samples": 256, "max_degree": 8}


class BlockSolution(NamedTuple):
    """The global minimiser of the objective over one block.

    Attributes:
        names: the block's parameter names.
        point: values of the block variables at the global minimum.
        value: objective there (sum over samples, ridge included).
        current_value: objective at the current values of the block.
        candidates: every real stationary point found (rows), after polishing.
        candidate_values: the objective at each candidate.
        degree: total degree of the block polynomial.
        timings: seconds spent building the polynomial, in the Groebner basis, and solving.
    """

    names: list
    point: np.ndarray
    value: float
    current_value: float
    candidates: np.ndarray
    candidate_values: np.ndarray
    degree: int
    timings: dict


def _rational(c: float, digits: int | None):
    import sympy

    if digits is None:
        return sympy.Rational(float(c))  # the exact binary value
    if c == 0.0:
        return sympy.Integer(0)
    e = int(np.floor(np.log10(abs(c)))) - digits + 1
    return sympy.Rational(int(round(c / 10.0 ** e))) * sympy.Rational(10) ** e


def block_polynomial(model, X: np.ndarray, Y: np.ndarray, names: list[str], ridge: float, *,
                     limits: dict | None = None) -> tuple[dict, int]:
    """The objective as a polynomial in the block variables: ``{exponent tuple: float coefficient}``.

    Built by symengine expansion of the symbolic view with the (tiny) data and
    the fixed parameters substituted, sample by sample; the ridge of every
    parameter is included, so the constant term makes the values true objectives.

    Returns:
        ``(terms, degree)``.

    Raises:
        SolverError: the problem exceeds ``limits`` (see :data:`LIMITS`).
    """
    import symengine as se

    lim = {**LIMITS, **(limits or {})}
    _check_sizes(model, X, names, lim)
    all_names = model.param_names()
    theta = model.get_flat()
    index = {n: i for i, n in enumerate(all_names)}
    block = [se.Symbol(n) for n in names]
    fixed = {se.Symbol(n): float(theta[i]) for n, i in index.items() if n not in set(names)}
    outs = model.symbolic()
    xs, _ = model.symbols()
    flat_x = [xs[idx] for idx in np.ndindex(xs.shape)]
    total = se.Integer(0)
    for x, y in zip(X, Y):
        subs = dict(fixed)
        subs.update({s: float(v) for s, v in zip(flat_x, np.asarray(x).ravel())})
        for o, yk in zip(outs, y):
            total += (se.expand(o.subs(subs)) - float(yk)) ** 2
    total = se.expand(total)
    ridge = float(ridge)
    if ridge:
        rest = float(sum(v * v for v in fixed.values()))
        total = se.expand(total + ridge * (sum(b * b for b in block) + rest))
    terms = _terms(total, block)
    degree = max((sum(e) for e in terms), default=0)
    if degree > lim["max_degree"]:
        raise SolverError(f"the objective has degree {degree} in this block, above max_degree={lim['max_degree']}; "
                          "use fewer or shallower variables (a last-layer weight enters with degree 2)")
    return terms, degree


def _terms(expr, block) -> dict:
    """{exponents: coefficient} of an expanded symengine polynomial in ``block``."""
    import symengine as se

    out: dict[tuple, float] = {}
    for term in (expr.args if isinstance(expr, se.Add) else (expr,)):
        coeff = 1.0
        exps = [0] * len(block)
        for factor in (term.args if isinstance(term, se.Mul) else (term,)):
            if factor.is_Number:
                coeff *= float(factor)
                continue
            base, exp = (factor.args if isinstance(factor, se.Pow) else (factor, se.Integer(1)))
            try:
                pos = block.index(base)
            except ValueError:
                raise SolverError(f"internal error: unexpected factor {factor} in the block polynomial") from None
            exps[pos] += int(exp)
        key = tuple(exps)
        out[key] = out.get(key, 0.0) + coeff
    return out


def _check_sizes(model, X, names, lim) -> None:
    if not names:
        raise SolverError("the block is empty; name 1 to 4 parameters, e.g. ['linear0.weight[0,0]']")
    if len(set(names)) != len(names):
        raise SolverError(f"the block names a parameter twice: {names}")
    if len(names) > lim["max_vars"]:
        raise SolverError(f"a block of {len(names)} variables is above max_vars={lim['max_vars']}: the Groebner "
                          "basis grows too fast beyond that; use blocks of 2-3 variables")
    if model.num_params > lim["max_params"]:
        raise SolverError(f"the model has {model.num_params} parameters, above max_params={lim['max_params']}: its "
                          "symbolic view is too large to expand; use the exact line-search solvers (cg, lbfgs, "
                          "gauss-newton) or the coordinate solver")
    if len(X) > lim["max_samples"]:
        raise SolverError(f"{len(X)} samples is above max_samples={lim['max_samples']} for the symbolic expansion; "
                          "pass a subset or use the exact line-search solvers")
    known = set(model.param_names())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SolverError(f"{unknown[0]!r} is not a parameter element of the model; names look like "
                          f"{model.param_names()[0]!r}")


def _evaluate(terms: dict, points: np.ndarray) -> np.ndarray:
    """The polynomial at each row of ``points`` (float64)."""
    points = np.atleast_2d(points)
    out = np.zeros(len(points))
    for exps, c in terms.items():  # over the (few) terms of a tiny block polynomial
        out += c * np.prod(points ** np.asarray(exps), axis=1)
    return out


def _gradient_and_hessian(terms: dict, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = len(p)
    g = np.zeros(k)
    H = np.zeros((k, k))
    for exps, c in terms.items():
        e = np.asarray(exps)
        for i in range(k):
            if e[i] == 0:
                continue
            ei = e.copy()
            ei[i] -= 1
            g[i] += c * e[i] * np.prod(p ** ei)
            for j in range(k):
                if ei[j] == 0:
                    continue
                eij = ei.copy()
                eij[j] -= 1
                H[i, j] += c * e[i] * ei[j] * np.prod(p ** eij)
    return g, H


def _polish(terms: dict, p: np.ndarray, iters: int = 30) -> tuple[np.ndarray, float]:
    """Newton steps on grad = 0 from ``p``; returns the point and the final gradient norm."""
    for _ in range(iters):
        g, H = _gradient_and_hessian(terms, p)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        if not np.all(np.isfinite(step)):
            break
        p = p - step
        if np.linalg.norm(step) <= 1e-15 * max(1.0, np.linalg.norm(p)):
            break
    g, _ = _gradient_and_hessian(terms, p)
    return p, float(np.linalg.norm(g))


def _real_roots(coeffs_high_first: list[float]) -> list[float]:
    c = np.asarray(coeffs_high_first, dtype=np.float64)
    nz = np.flatnonzero(c)
    if len(nz) == 0:
        return []
    c = c[nz[0]:]
    if len(c) == 1:
        return []
    z = np.roots(c)
    # keep near-real roots generously; Newton polishing and the residual test decide
    return [float(r.real) for r in z if abs(r.imag) <= 1e-4 * max(1.0, abs(r))]


def _stationary_points(terms: dict, k: int, digits: int | None) -> tuple[np.ndarray, float, float]:
    """Real solutions of grad = 0 via a lex Groebner basis and numeric back-substitution."""
    import sympy

    syms = sympy.symbols(f"v0:{k}")
    poly = sympy.Poly.from_dict({e: _rational(c, digits) for e, c in terms.items()}, *syms, domain="QQ")
    grads = [poly.diff(s) for s in syms]
    t0 = time.perf_counter()
    # a degree-reverse-lexicographic basis is far cheaper to compute; FGLM converts it to lex
    G = sympy.groebner([g.as_expr() for g in grads], *syms, order="grevlex", domain="QQ")
    if list(G.exprs) == [1]:
        return np.zeros((0, k)), time.perf_counter() - t0, 0.0
    if not G.is_zero_dimensional:
        raise SolverError("the stationary points of this block are not isolated (a curve or surface of them, "
                          "e.g. from a scale symmetry); use ridge > 0 or a block without redundant variables")
    G = G.fglm("lex")
    t_basis = time.perf_counter() - t0
    t0 = time.perf_counter()
    basis = [sympy.Poly(g, *syms) for g in G.exprs]
    partial: list[dict[int, float]] = [{}]
    for var in range(k - 1, -1, -1):  # lex order: the last variable is eliminated first
        grown = []
        for assign in partial:
            univariate = []
            consistent = True
            for g in basis:
                used = [i for i, d in enumerate(g.degree_list()) if d > 0]
                if var not in used or any(i < var for i in used):
                    continue
                # substitute the later variables' values, keep a polynomial in `var`; a coefficient
                # that cancels to rounding level (relative to its terms' sizes) is zero
                coeffs = np.zeros(g.degree(syms[var]) + 1)
                sizes = np.zeros_like(coeffs)
                for monom, c in g.terms():
                    val = float(c)
                    for i in range(var + 1, k):
                        if monom[i]:
                            val *= assign[i] ** monom[i]
                    coeffs[monom[var]] += val
                    sizes[monom[var]] += abs(val)
                coeffs[np.abs(coeffs) <= 1e-8 * sizes] = 0.0
                if not np.any(coeffs[1:]):
                    if coeffs[0] != 0.0:
                        consistent = False  # a nonzero constant: no solution extends this assignment
                    continue
                univariate.append(coeffs / np.max(np.abs(coeffs)))
            if not consistent or not univariate:
                continue
            univariate.sort(key=len)
            for root in _real_roots(univariate[0][::-1]):
                # the other univariate members must vanish there too (loose: polishing follows)
                if all(abs(np.polyval(u[::-1], root)) <= 1e-4 * max(1.0, np.polyval(np.abs(u[::-1]), abs(root)))
                       for u in univariate[1:]):
                    grown.append({**assign, var: root})
        partial = grown
    points = np.array([[a[i] for i in range(k)] for a in partial]) if partial else np.zeros((0, k))
    return points, t_basis, time.perf_counter() - t0


def solve_block(model, X: np.ndarray, Y: np.ndarray, names: list[str], ridge: float, *, digits: int | None = 15,
                limits: dict | None = None) -> BlockSolution:
    """The global minimum of the objective over the parameters ``names`` (others fixed).

    Args:
        model: a small :class:`~symnet.core.model.Sequential` (its parameters are not changed).
        X, Y: the (tiny) training set, one-hot targets.
        names: 1 to ``max_vars`` parameter elements, e.g. ``"linear0.weight[0,1]"``.
        ridge: the objective's ridge weight (> 0 guarantees the minimum is attained).
        digits: significant digits of the rational coefficients handed to the
            Groebner basis (None: the exact binary value of every float, slower).
            Each candidate is then polished with Newton steps on the float
            polynomial, so the rounding only matters if it merges or splits
            stationary points.
        limits: overrides of :data:`LIMITS`.

    Returns:
        A :class:`BlockSolution`.

    Raises:
        SolverError: the block is above the size limits, or its stationary points are not isolated.
    """
    t0 = time.perf_counter()
    terms, degree = block_polynomial(model, X, Y, names, ridge, limits=limits)
    t_build = time.perf_counter() - t0
    k = len(names)
    flat = model.get_flat()
    index = {n: i for i, n in enumerate(model.param_names())}
    current = np.array([flat[index[n]] for n in names])
    current_value = float(_evaluate(terms, current)[0])
    raw, t_basis, t_solve = _stationary_points(terms, k, digits)
    t0 = time.perf_counter()
    cands = []
    for p in raw:
        q, gnorm = _polish(terms, p.copy())
        scale = max(1.0, float(np.max(np.abs([c for c in terms.values()]))))
        if np.all(np.isfinite(q)) and gnorm <= 1e-6 * scale:
            if not any(np.allclose(q, c, rtol=1e-9, atol=1e-12) for c in cands):
                cands.append(q)
    cand = np.array(cands) if cands else np.zeros((0, k))
    values = _evaluate(terms, cand) if len(cand) else np.zeros(0)
    t_solve += time.perf_counter() - t0
    if len(cand) and values.min() < current_value:
        best = int(np.argmin(values))
        point, value = cand[best], float(values[best])
    else:
        point, value = current, current_value
    return BlockSolution(list(names), point, value, current_value, cand, values, degree,
                         {"build": t_build, "groebner": t_basis, "solve": t_solve})


class SymbolicBlockSolver(Solver):
    """Exact joint minimisation over blocks of 2-4 variables (tiny models only).

    One step solves one block: the global minimiser of the objective over the
    block is found among all real stationary points (:func:`solve_block`) and
    taken if it is lower than the current point.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (default 1e-3).
        block: a fixed list of parameter names to solve at every step; None
            cycles through consecutive runs of ``block_size`` parameters
            (``order`` "cyclic") or random ones (``order`` "random").
        block_size: variables per block when ``block`` is None (default 2).
        digits: significant digits of the rational coefficients (None: exact binary values).
        max_vars, max_params, max_samples, max_degree: size limits (see the module docstring).
        seed: seed of the random blocks.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor()
        >>> model = symnet.models.mlp(2, 2, 2, seed=0)
        >>> s = solvers.get("symbolic-block")(block_size=2).fit(model, data, steps=3, quiet=True)
        >>> s.history_.final["loss"] <= s.history_[0]["loss"]
        True
    """

    name = "symbolic-block"
    step_unit = "block"
    certifiable = True
    default_steps = 6
    OPTIONS = {
        "ridge": Option(1e-3, "float", low=0.0, help="weight of ridge * ||theta||^2 in the objective"),
        "block": Option(None, "names", none=True, help="a fixed block of parameter names (None: cycle)"),
        "block_size": Option(2, "int", low=1, help="variables per block when block is None"),
        "order": Option("cyclic", "choice", choices=("cyclic", "random"), help="order of the blocks"),
        "digits": Option(15, "int", low=1, none=True,
                         help="significant digits of the rational coefficients (None: exact binary values)"),
        "seed": Option(0, "int", low=0, help="seed of the random blocks"),
        **{k: Option(v, "int", low=1, help=f"size limit ({k})") for k, v in LIMITS.items()},
    }

    def _setup(self, model, data, rng):
        opts = self.opts_
        if not hasattr(model, "symbolic") or not hasattr(model, "param_names"):
            raise ModelError(f"solver '{self.name}' needs a Sequential network with a symbolic view, got "
                             f"{type(model).__name__}")
        if tuple(data.input_shape) != tuple(model.input_shape):
            raise ModelError(f"model expects inputs {model.input_shape}, data has {data.input_shape}; "
                             "build the model for this dataset")
        self.ridge_ = opts["ridge"]
        self.limits_ = {k: opts[k] for k in LIMITS}
        names = model.param_names()
        if opts["block"] is not None:
            block = opts["block"]
            _check_sizes(model, data.x_train, block, self.limits_)
            self.fixed_block_ = block
        else:
            self.fixed_block_ = None
            size = opts["block_size"]
            _check_sizes(model, data.x_train, names[:size], self.limits_)
        self.names_ = names
        self.rng_ = rng
        self.cursor_ = 0

    def _next_block(self) -> list[str]:
        if self.fixed_block_ is not None:
            return self.fixed_block_
        size = min(int(self.opts_["block_size"]), len(self.names_))
        if self.opts_["order"] == "random":
            return [self.names_[i] for i in self.rng_.choice(len(self.names_), size, replace=False)]
        block = [self.names_[(self.cursor_ + i) % len(self.names_)] for i in range(size)]
        self.cursor_ = (self.cursor_ + size) % len(self.names_)
        return block

    def _step(self) -> dict:
        model = self.model_
        X, Y = self.data_.x_train, self.y_train
        block = self._next_block()
        sol = solve_block(model, X, Y, block, self.ridge_, digits=self.opts_["digits"], limits=self.limits_)
        moved = sol.value < sol.current_value
        theta = model.get_flat()
        if moved:
            flat = model.get_flat()
            index = {n: i for i, n in enumerate(self.names_)}
            for n, v in zip(block, sol.point):
                flat[index[n]] = v
            model.set_flat(flat)
        if self.certificates_ is not None:
            self.certificates_.record(BLOCK, theta=theta, t=1.0, before=sol.current_value,
                                      after=sol.value if moved else sol.current_value, ridge=self.ridge_,
                                      direction=lambda: model.get_flat() - theta)
        return {"loss": sol.value / len(X), "updates": len(block) if moved else 0, "passes": 0.0,
                "stationary_points": len(sol.candidates), "groebner_s": sol.timings["groebner"]}

    def _state(self):
        return {"cursor": self.cursor_}

    def _load_state(self, state):
        self.cursor_ = int(state.get("cursor", 0))
