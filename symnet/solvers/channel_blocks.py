"""Channel blocks: the coordinate solver's exact block steps for ``Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear``.

The network of the ``poly`` preset is, for one output channel ``c`` of the
convolution, ``f(x) = f_{-c}(x) + V_c h_c(x; u_c) + b``: the channel's filter
and bias ``u_c`` enter only through its pooled features ``h_c`` (a
polynomial of degree ``P`` in ``u_c``), which only the readout slice ``V_c``
(``O x F``) reads. A step on one filter weight holds ``V_c`` fixed, which is
what pins the one-weight-at-a-time sweep to the random-filter floor: the
readout cannot follow the filter. A channel block moves ``(u_c, V_c, b)``
together (:class:`ChannelBlocks`):

1. **direction** (variable projection, Gauss-Newton): the linearisation of
   the outputs in ``(u_c, V_c, b)`` gives normal equations whose readout part
   ``I_O (x) (A + ridge I)``, ``A = [h_c, 1]^T [h_c, 1]``, is eliminated by a
   Schur complement, leaving a ``(K+1) x (K+1)`` system for the filter
   (Levenberg-Marquardt damped, the damping adapted per channel from the
   step the line search took); the readout slice and the bias move along
   their implicit response to the filter step. The curvature may come from a
   subsample (``curvature_samples``); the gradient is exact.
2. **exact line search** along that direction: the outputs are a polynomial
   of degree ``P + 1`` in the step, the objective one of degree ``2 P + 2``
   (6 for ``x^2``); its coefficients over all current samples come from one
   fused kernel (:func:`~symnet.core.kernels.channel.channel_line_coeffs`)
   and the step goes to its global minimum
   (:func:`~symnet.core.roots.dense.minimize`), never an ascent.
3. **rescale** (monomial activations ``a z^p``): ``(s u_c, s^-p V_c)`` leaves
   the network unchanged; the ``s`` minimising the ridge term is closed form.

After each sweep over the channels the whole last layer is solved exactly
(:func:`~symnet.core.linalg.fit_readout`: a float32 Gram matrix, accumulated in
row blocks, preconditions a float64 refinement). Nothing the size of the
convolution's output is cached: the padded input, the features ``H``
(n x C F), the outputs and the residual are all that is kept (about 1.6 GB on
60,000 MNIST images with 16 channels); each channel's pre-activation is
recomputed from the input in the kernels.

:class:`ChannelDriver` runs these steps for :class:`~symnet.solvers.coordinate.CoordinateSolver`
(``blocks="auto"`` picks it for networks of this shape; options in
:data:`CHANNEL_OPTIONS`):

* **growing sample**: exact steps run on a prefix of a fixed random
  permutation of the training samples, starting at ``sample_start`` and
  multiplied by ``sample_growth`` when a sweep lowers the stage's objective
  by less than ``grow_tol`` (relative), after ``stage_sweeps`` sweeps, or
  once ``full_by`` of the time limit has passed (then straight to all
  samples). The objective of a stage is the SSE over its ``n`` samples plus
  ``ridge * n / N * ||theta||^2`` (the full objective's share); no step
  raises it. The last stage is the full training set.
* **ridge** (``ridge="auto"``): ``val_size`` random training samples are held
  out of every stage but the last. The first readout solve of each stage fits
  the readout for every weight of ``ridge_grid`` from the stage's Gram matrix
  (in the last stage: without the held-out samples' rows, which no step has
  seen yet) and keeps the one whose readout has the least squared error on the
  held-out samples (:func:`~symnet.core.linalg.score_ridges`). The ridge is
  fixed within a stage, so the objective changes only where the samples
  change; the choices are in :attr:`ChannelDriver.ridge_selection` and every
  record's ``ridge``. Without filter training (``layers`` without the conv:
  the random-filter floor) or with ``sample_start=None`` there is one stage,
  and the initial features choose.
* **records**: between channel steps, feature passes and row blocks of the
  readout's Gram matrix, an interim record (``partial=1``) whenever the next
  block of work would end more than :attr:`~symnet.solvers.base.Solver.record_every`
  seconds of training after the last record. The ``loss`` of a record is the
  FULL training objective at the ridge in use (evaluated by a forward pass
  when the stage holds fewer samples; the stage's own objective is
  ``stage_loss``); records carry ``samples``, ``ridge`` and ``cpu_time`` (CPU
  seconds of the process since the start, for shared machines).
* **certificates**: every line search is a ``line`` record (its polynomial,
  its direction, the rows of its stage), every rescale and readout solve a
  ``block`` record (:mod:`symnet.core.certificates`).

Cost per channel step on ``n`` samples: three fused kernel passes over the
input (gradient, line search and the Jacobian of ``curvature_samples`` of
them, each one or two ``kh x kw`` convolutions of one channel per sample) and
BLAS products of size ``n x (K+1) x F x O``.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> m = models.get("poly", input_shape=(1, 8, 8), channels=2, kernel=3, num_classes=3, seed=0)
    >>> X = np.random.default_rng(0).random((40, 1, 8, 8)); Y = np.eye(3)[np.arange(40) % 3]
    >>> cb = ChannelBlocks(m, X, Y, ridge=0.1)
    >>> before = cb.value
    >>> _ = cb.solve_readout(); r = cb.channel_step(0)
    >>> bool(cb.value <= before), bool(np.isclose(cb.value, ChannelBlocks(m, X, Y, ridge=0.1).value))
    (True, True)
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import scipy.linalg as sla

from symnet.core.certificates import BLOCK, LINE
from symnet.core.derivatives import conv_chain
from symnet.core.errors import SolverError
from symnet.core.kernels.terms import sse_coeffs
from symnet.core.layers import Conv2d
from symnet.core.linalg import (PROVISIONAL_RIDGE, choose_readout_ridge, cross, fit_readout, gram, parse_ridge,
                                ridge_factor, ridge_solve)
from symnet.core.roots import dense
from symnet.core.restriction import step_scale

from symnet.core.kernels.channel import (apply_jets, channel_add_jets, channel_features, channel_grad,
                                            channel_line_coeffs, channel_output_jac)
from symnet.solvers.options import Option

#: The options of channel blocks, part of :attr:`CoordinateSolver.OPTIONS <symnet.solvers.coordinate.CoordinateSolver>`.
#: The defaults are the best settings measured on full MNIST (README, "The coordinate solver on poly").
CHANNEL_OPTIONS = {
    "blocks": Option("auto", "choice", choices=("auto", "channel", "coordinate"),
                     help="channel: one block per conv channel (filter, the readout reading it, output bias); "
                          "coordinate: one weight at a time; auto: channel blocks for Conv2d -> Poly -> "
                          "[AvgPool2d] -> Flatten -> Linear networks (poly) when fused, else coordinates"),
    "ridge_grid": Option((0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0), "floats", low=0.0,
                         help="channel blocks with ridge=auto: the candidates the held-out samples choose from"),
    "val_size": Option(None, "int", low=1, none=True,
                       help="channel blocks with ridge=auto: held-out training samples (None: a tenth, at "
                            "most 5000)"),
    "sample_start": Option(4096, "int", low=1, none=True,
                           help="channel blocks: samples of the first stage (None: all from the start)"),
    "sample_growth": Option(2.0, "float", low=1.0, low_open=True,
                            help="channel blocks: factor by which the samples grow from stage to stage"),
    "grow_tol": Option(0.01, "float", low=0.0,
                       help="channel blocks: grow when a sweep lowers the stage objective by less than this "
                            "(relative)"),
    "stage_sweeps": Option(3, "int", low=1, help="channel blocks: most sweeps of a stage before it grows"),
    "full_by": Option(0.5, "float", low=0.0, high=1.0,
                      help="channel blocks: use every sample once this share of the time limit has passed"),
    "gradient": Option("all", "choice", choices=("all", "curvature"),
                       help="channel blocks: the filter's gradient from all current samples, or from the curvature "
                            "samples (one pass fewer; the line search stays exact over all current samples)"),
    "curvature_samples": Option(4096, "int", low=1, none=True,
                                help="channel blocks: samples of each Gauss-Newton matrix (None: all current "
                                     "samples; the gradient and the line search always use all)"),
}


def channel_chain(model):
    """``(conv, act, pool size, linear)`` if ``model`` is Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear, else None.

    Example:
        >>> from symnet.core.model import presets as models
        >>> channel_chain(models.get("poly", channels=2)) is not None, channel_chain(models.get("poly2")) is None
        (True, True)
    """
    layers = getattr(model, "layers", None)
    if not layers or not isinstance(layers[0], Conv2d):
        return None
    chain = conv_chain(model, 0)
    if chain is None or chain[0] != 1:  # no Poly right after the conv: the linear chain has its own kernel
        return None
    _, pool, lin = chain
    return layers[0], layers[1], pool, layers[lin]


def chain_predict(model, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Outputs of a :func:`channel_chain` network, channel by channel (no buffer the size of the conv output).

    numpy: model.forward(X)

    Example:
        >>> import numpy as np
        >>> from symnet.core.model import presets as models
        >>> m = models.get("poly", input_shape=(1, 8, 8), channels=2, kernel=3, num_classes=3, seed=0)
        >>> X = np.random.default_rng(0).random((5, 1, 8, 8))
        >>> bool(np.allclose(chain_predict(m, X), m.forward(X)))
        True
    """
    conv, act, s, lin = channel_chain(model)
    Ho, Wo = model.shapes[1][1:]
    Hq, Wq = Ho // s, Wo // s
    F = Hq * Wq
    pc = np.ascontiguousarray(act.coeffs, dtype=np.float64)
    Xp = np.ascontiguousarray(conv.padded(np.asarray(X, dtype=np.float64)))
    out = np.empty((len(Xp), lin.out_features))
    out[:] = lin.params["bias"] if lin.bias else 0.0
    buf = np.empty((min(chunk, len(Xp)), F))
    for lo in range(0, len(Xp), chunk):
        idx = np.arange(lo, min(len(Xp), lo + chunk))
        b = buf[:len(idx)]
        for c in range(conv.out_channels):
            bias = float(conv.params["bias"][c]) if conv.bias else 0.0
            channel_features(Xp, idx, np.ascontiguousarray(conv.params["weight"][c]), bias, pc, s, Hq, Wq, b)
            out[idx] += b @ lin.params["weight"][:, c * F:(c + 1) * F].T
    return out


def line_minimum(coeffs: np.ndarray) -> tuple[float, float]:
    """``(t, value)``: the global minimiser of a restricted objective (lowest first) and its value.

    The polynomial is minimised in units of its natural step
    (:func:`~symnet.core.restriction.step_scale`), as
    :meth:`Restriction.line_minimize <symnet.core.restriction.Restriction.line_minimize>` does; ``t = 0`` when
    nothing is strictly lower than ``coeffs[0]`` or the coefficients are not finite.

    Example:
        >>> line_minimum(np.array([1.0, -4.0, 1.0]))   # (t - 2)^2 - 3
        (2.0, -3.0)
    """
    before = float(coeffs[0])
    if not np.all(np.isfinite(coeffs)):
        return 0.0, before
    s = step_scale(coeffs)
    u, after, _ = dense.minimize(dense.rescale(coeffs, s) if s != 1.0 else coeffs)
    t = s * u
    if not (np.isfinite(t) and t != 0.0 and after < before):
        return 0.0, before
    return float(t), float(after)


class ChannelBlocks:
    """Features, outputs and exact block steps of a conv -> poly -> pool -> linear network.

    Args:
        model: the network (trained in place).
        X: (M, C_in, H, W) inputs; Y: (M, O) targets.
        ridge: the ridge weight of the full objective ``SSE + ridge ||theta||^2`` over the M samples.
        idx: the samples the objective runs over (default: all); see :meth:`set_samples`.
        chunk: samples per chunk of the Jacobian pass (bounds its buffers).
        progress: see :attr:`progress`.

    Attributes:
        certificates: a :class:`~symnet.core.certificates.Certificates` that records every step (None: off).
        progress: called as ``progress(self)`` between channels and row blocks of long
            computations (the solver writes its interim records there), or None.
        ready: False while the caches are being rebuilt (the objective is then unknown).
    """

    #: Rows of H per block of the readout's Gram matrix (progress is reported between blocks).
    gram_rows = 8192

    def __init__(self, model, X, Y, ridge: float, idx=None, chunk: int = 4096, progress=None) -> None:
        chain = channel_chain(model)
        if chain is None:
            raise SolverError("channel blocks need Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear")
        self.model = model
        self.conv, self.act, self.s, self.lin = chain
        conv = self.conv
        self.Xp = np.ascontiguousarray(conv.padded(np.asarray(X, dtype=np.float64)))
        self.Y_all = np.asarray(Y, dtype=np.float64)
        self.M = len(self.Xp)
        self.ridge_full = float(ridge)
        Ho, Wo = model.shapes[1][1:]
        self.Hq, self.Wq = Ho // self.s, Wo // self.s
        self.F = self.Hq * self.Wq
        self.C = conv.out_channels
        self.K = conv.in_channels * conv.kh * conv.kw
        self.has_cbias = conv.bias
        self.has_obias = self.lin.bias
        self.O = self.lin.out_features
        self.pc = np.ascontiguousarray(self.act.coeffs, dtype=np.float64)
        self.P = len(self.pc) - 1
        self.chunk = int(chunk)
        self.certificates = None
        self.progress: Callable[["ChannelBlocks"], Any] | None = progress
        self.ready = False
        self.mu = np.full(self.C, 1e-3)  # relative Levenberg-Marquardt damping per channel
        offsets = model.offsets()
        #: where each parameter array starts in the flat vector
        self._off = {f"{role}.{key}": offsets[f"{layer.name}.{key}"][0] for role, layer in
                     (("conv", conv), ("lin", self.lin)) for key in layer.params}
        self.set_samples(np.arange(self.M) if idx is None else idx)

    # ------------------------------------------------------------------ parameters
    @property
    def W(self) -> np.ndarray:
        return self.conv.params["weight"]

    @property
    def V(self) -> np.ndarray:
        return self.lin.params["weight"]

    def cbias(self, c: int) -> float:
        return float(self.conv.params["bias"][c]) if self.has_cbias else 0.0

    def obias(self) -> np.ndarray:
        return self.lin.params["bias"] if self.has_obias else np.zeros(self.O)

    def monomial_power(self) -> int | None:
        """``p`` if the activation is ``a z^p`` (the network is then homogeneous per channel), else None."""
        nz = np.flatnonzero(self.pc)
        return int(nz[0]) if len(nz) == 1 and nz[0] >= 1 else None

    @property
    def rows(self) -> np.ndarray | None:
        """The samples of the objective, for certificates (None: all of them)."""
        return None if self.n == self.M else self.idx

    def flat(self, c: int | None, du=None, dW=None, dcb=None, dV=None, db=None) -> np.ndarray:
        """A direction in the model's flat parameter order: channel ``c``'s ``du`` or every filter's ``dW``/``dcb``."""
        d = np.zeros(self.model.num_params)
        K = self.K
        wo = self._off["conv.weight"]
        if du is not None:
            d[wo + c * K: wo + (c + 1) * K] = du[:K]
            if self.has_cbias:
                d[self._off["conv.bias"] + c] = du[K]
        if dW is not None:
            d[wo: wo + dW.size] = dW.ravel()
            if self.has_cbias and dcb is not None:
                d[self._off["conv.bias"]: self._off["conv.bias"] + self.C] = dcb
        if dV is not None:
            lo = self._off["lin.weight"]
            d[lo: lo + dV.size] = dV.ravel()
        if db is not None and self.has_obias:
            lo = self._off["lin.bias"]
            d[lo: lo + self.O] = db
        return d

    # ------------------------------------------------------------------ caches
    def set_samples(self, idx) -> None:
        """Run the objective over samples ``idx`` (recomputes every cache)."""
        self.idx = np.ascontiguousarray(idx, dtype=np.int64)
        self.n = len(self.idx)
        self.Y = np.ascontiguousarray(self.Y_all[self.idx])
        self.ridge = self.ridge_full * self.n / self.M
        self.H = np.empty((self.n, self.C * self.F))
        self.hj = None
        self.refresh()

    def grow(self, idx) -> None:
        """Extend the samples to ``idx``, which must start with the current ones; only the new rows are computed.

        The ridge is rescaled to the new sample count; call :meth:`solve_readout` after (the objective changed).
        """
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if len(idx) < self.n or not np.array_equal(idx[:self.n], self.idx):
            raise SolverError("grow() takes the current samples followed by new ones")
        old = self.n
        new = idx[old:]
        self.ready = False
        H = np.empty((len(idx), self.C * self.F))
        H[:old] = self.H
        self.H = None
        buf = np.empty((len(new), self.F))
        for c in range(self.C):
            self.features(c, idx=new, out=buf)
            H[old:, c * self.F:(c + 1) * self.F] = buf
            self._progress()
        self.H = H
        self.idx = idx
        self.n = len(idx)
        self.Y = np.ascontiguousarray(self.Y_all[self.idx])
        self.ridge = self.ridge_full * self.n / self.M
        self.hj = None
        self.refresh_outputs()

    def features(self, c: int, idx=None, out=None) -> np.ndarray:
        """Pooled features (len(idx), F) of channel ``c`` (default: the current samples)."""
        idx = self.idx if idx is None else idx
        out = np.empty((len(idx), self.F)) if out is None else out
        channel_features(self.Xp, idx, np.ascontiguousarray(self.W[c]), self.cbias(c), self.pc, self.s, self.Hq,
                         self.Wq, out)
        return out

    def refresh(self) -> None:
        """Recompute features, outputs, residual and objective exactly."""
        self.ready = False
        buf = np.empty((self.n, self.F))
        for c in range(self.C):
            self.features(c, out=buf)
            self.H[:, c * self.F:(c + 1) * self.F] = buf
            self._progress()
        self.refresh_outputs()

    def refresh_outputs(self) -> None:
        """Recompute outputs, residual and ``||theta||^2`` from the features."""
        self.out = self.H @ self.V.T + self.obias()
        self._residual()
        theta = self.model.get_flat()
        self.sqnorm = float(theta @ theta)
        self.ready = True

    def _progress(self) -> None:
        if self.progress is not None:
            self.progress(self)

    def _residual(self) -> None:
        self.R = self.out - self.Y
        self.sse = float(np.einsum("no,no->", self.R, self.R))

    @property
    def value(self) -> float:
        """Objective on the current samples: ``SSE + ridge * n / M * ||theta||^2``."""
        return self.sse + self.ridge * self.sqnorm

    # ------------------------------------------------------------------ the readout
    def set_ridge(self, ridge: float) -> None:
        """Change the ridge weight of the full objective (the objective changes with it)."""
        self.ridge_full = float(ridge)
        self.ridge = self.ridge_full * self.n / self.M

    def solve_readout(self, choose=None) -> float:
        """Exact ridge solve of the whole last layer (:func:`~symnet.core.linalg.fit_readout`); returns the decrease.

        The Gram matrix is accumulated in float32 blocks of :attr:`gram_rows`
        rows (:func:`~symnet.core.linalg.gram`; :attr:`progress` runs between
        blocks) and preconditions the float64 refinement of
        :func:`~symnet.core.linalg.ridge_readout`. The objective never rises.

        ``choose=(candidates, Hv, Yv, pos)`` first sets the ridge to the
        candidate whose readout scores best on held-out samples
        (:func:`~symnet.core.linalg.score_ridges`, from the same Gram matrix):
        features ``Hv`` and targets ``Yv`` of samples outside the current ones
        (``pos`` None), or the current samples at positions ``pos`` (then left
        out of the fit, as :func:`~symnet.core.linalg.select_ridge` does). The
        scores are kept in :attr:`ridge_scores`; the decrease is measured at the
        chosen ridge.
        """
        bias = self.has_obias
        G = None
        for lo in range(0, self.n, self.gram_rows):
            part = gram(self.H[lo:lo + self.gram_rows], bias=bias, dtype=np.float32)
            G = part if G is None else G + part
            if lo + self.gram_rows < self.n:
                self._progress()
        if choose is not None:
            candidates, Hv, Yv, pos = choose
            G_fit, rhs_fit, n_fit = G, cross(self.H, self.Y, bias=bias), self.n
            if pos is not None:  # held-out samples among the current ones: out of the fit
                Hv, Yv = self.H[pos], self.Y[pos]
                G_fit = G - gram(Hv, bias=bias)
                rhs_fit = rhs_fit - cross(Hv, Yv, bias=bias)
                n_fit -= len(pos)
            chosen, report = choose_readout_ridge(G_fit, rhs_fit, Hv, Yv, bias=bias, candidates=candidates,
                                                  share=n_fit / self.M)
            self.ridge_scores = {key: report[key] for key in ("ridges", "val_sse", "val_err")}
            self.set_ridge(chosen)
        factor = ridge_factor(G, self.ridge)
        if factor is None:
            return 0.0
        theta = self.model.get_flat() if self.certificates is not None else None
        before = self.value
        decrease, out = fit_readout(self.lin, self.H, self.Y, self.ridge, factor=factor)
        if decrease > 0.0:
            self.out = np.ascontiguousarray(out, dtype=np.float64)
            self._residual()
            theta_now = self.model.get_flat()
            self.sqnorm = float(theta_now @ theta_now)
        if theta is not None:
            model = self.model
            self.certificates.record(BLOCK, theta=theta, t=1.0, before=before, after=self.value, ridge=self.ridge,
                                     rows=self.rows, direction=lambda: model.get_flat() - theta)
        return decrease

    # ------------------------------------------------------------------ one channel
    def _u(self, c: int) -> np.ndarray:
        u = np.empty(self.K + 1)
        u[:self.K] = self.W[c].ravel()
        u[self.K] = self.cbias(c)
        return u

    def direction(self, c: int, curvature_idx=None, mu: float | None = None, gradient: str = "all"):
        """Damped variable-projection Gauss-Newton direction of block ``c``.

        Returns ``(du, dV, db, pred)``: the filter step ``du`` (K + 1), the
        readout step ``dV`` (O, C F; nonzero in channel c's slice only) and
        output-bias step ``db`` (O), and half the directional derivative of the
        objective along them (negative for a descent direction). The gradient
        runs over all current samples, the curvature over ``curvature_idx``
        (positions into the current samples; default all), scaled to the
        sample count. ``mu`` is the relative Levenberg-Marquardt damping
        (default the channel's, :attr:`mu`). ``gradient="curvature"`` takes the
        filter's gradient from the curvature samples too (from their Jacobian,
        scaled up: no pass over the other samples); the readout's gradient is
        always exact.
        """
        K1, F, O = self.K + 1, self.F, self.O
        lam = self.ridge
        Vc = np.ascontiguousarray(self.V[:, c * F:(c + 1) * F])
        Hc = self.H[:, c * F:(c + 1) * F]
        gT = np.empty((F + 1, O))  # half-gradient of the objective in [V_c^T; b]
        gT[:F] = Hc.T @ self.R
        gT[F] = self.R.sum(axis=0)
        gT += lam * np.vstack([Vc.T, self.obias()[None, :]])
        if not self.has_obias:
            gT[F] = 0.0
        w, b = np.ascontiguousarray(self.W[c]), self.cbias(c)
        pos = None if curvature_idx is None or len(curvature_idx) >= self.n else np.asarray(curvature_idx)
        npos = self.n if pos is None else len(pos)
        scale = self.n / npos
        from_jac = gradient == "curvature" and pos is not None
        if from_jac:
            gu = np.zeros(K1)  # estimated from the curvature samples' Jacobian below
        else:  # the filter's half-gradient, exact over all current samples (one pass over them)
            (gu,) = channel_grad(self.Xp, self.idx, w, b, self.pc, self.s, self.Hq, self.Wq,
                                 np.ascontiguousarray(self.R @ Vc))
        Hs = Hc if pos is None else Hc[pos]
        A = np.empty((F + 1, F + 1))
        A[:F, :F] = (Hs.T @ Hs) * scale
        A[F, :F] = A[:F, F] = Hs.sum(axis=0) * scale
        A[F, F] = self.n
        JtJ = np.zeros((K1, K1))
        Cm = np.zeros((F + 1, K1 * O))
        ch = min(self.chunk, npos)
        hbuf = np.empty((ch, F))
        Jbuf = np.empty((ch, K1, O))
        Ha = np.empty((ch, F + 1))
        for lo in range(0, npos, ch):
            sel = np.arange(lo, min(npos, lo + ch)) if pos is None else pos[lo:lo + ch]
            m = len(sel)
            J = Jbuf[:m]
            channel_output_jac(self.Xp, self.idx[sel], w, b, self.pc, self.s, self.Hq, self.Wq, Vc, hbuf[:m], J)
            Mt = np.ascontiguousarray(J.transpose(1, 0, 2)).reshape(K1, m * O)
            JtJ += Mt @ Mt.T
            Ha[:m, :F] = Hc[sel]
            Ha[:m, F] = 1.0
            Cm += Ha[:m].T @ J.reshape(m, K1 * O)
            if from_jac:
                gu += Mt @ np.ascontiguousarray(self.R[sel]).ravel()
        JtJ *= scale
        Cm *= scale
        if from_jac:
            gu *= scale
        gu += lam * self._u(c)
        if not self.has_cbias:
            gu[self.K] = 0.0
        # the Schur complement of the readout block: (A + lam I)^-1 by Cholesky
        if not self.has_obias:
            A[F, :] = 0.0
            A[:, F] = 0.0
            A[F, F] = 1.0 - lam
            Cm.reshape(F + 1, K1, O)[F] = 0.0
        fac = ridge_factor(A, lam)
        if fac is None:
            return np.zeros(K1), np.zeros_like(self.V), np.zeros(O), 0.0
        C3 = Cm.reshape(F + 1, K1, O)
        Z = sla.cho_solve(fac, Cm, check_finite=False).reshape(F + 1, K1, O)  # (A + lam)^-1 C_o
        Zg = sla.cho_solve(fac, gT, check_finite=False)  # (A + lam)^-1 gT_o, (F+1, O)
        S = JtJ - np.einsum("fko,fjo->kj", C3, Z)
        S = 0.5 * (S + S.T)
        rhs = -gu + np.einsum("fko,fo->k", C3, Zg)
        S[np.diag_indices_from(S)] += lam
        if not self.has_cbias:
            S[self.K, :] = 0.0
            S[:, self.K] = 0.0
            S[self.K, self.K] = 1.0
            rhs[self.K] = 0.0
        mu = float(self.mu[c] if mu is None else mu)
        scale_d = max(float(np.mean(np.diag(S))), 1e-300)
        du = ridge_solve(S, rhs[:, None], mu * scale_d)[:, 0]
        dV = np.zeros_like(self.V)
        dT = -(Zg + np.einsum("fko,k->fo", Z, du))  # (F+1, O): the readout slice's response
        dV[:, c * F:(c + 1) * F] = dT[:F].T
        db = dT[F].copy() if self.has_obias else np.zeros(O)
        pred = float(gu @ du + np.sum(gT * dT))
        if not (np.all(np.isfinite(du)) and np.all(np.isfinite(dV)) and np.all(np.isfinite(db))
                and np.isfinite(pred)):
            pred = 0.0
        return du, dV, db, pred

    def line_coeffs(self, c: int, du, dV, db) -> np.ndarray:
        """Coefficients (lowest first) of the objective along (du of channel c, readout dV (O, C F), bias db).

        Keeps the feature and output jets, so :meth:`line_step` can move the caches exactly.
        """
        F = self.F
        K = self.K
        dw = np.ascontiguousarray(du[:K].reshape(self.W[c].shape))
        dbc = float(du[K]) if self.has_cbias else 0.0
        Vc = np.ascontiguousarray(self.V[:, c * F:(c + 1) * F])
        dVc = np.ascontiguousarray(dV[:, c * F:(c + 1) * F])
        cols = np.flatnonzero(np.any(dV != 0.0, axis=0))
        if len(cols) == 0:
            lin = np.tile(db, (self.n, 1))
        elif cols.min() >= c * F and cols.max() < (c + 1) * F:
            lin = self.H[:, c * F:(c + 1) * F] @ dVc.T + db
        else:
            lin = self.H @ dV.T + db
        if self.hj is None or len(self.hj) != self.n:
            self.hj = np.empty((self.n, self.P + 1, F))
            self.D = np.empty((self.n, self.P + 1, self.O))
        coeffs = None
        ch = 8192
        for lo in range(0, self.n, ch):
            hi = min(self.n, lo + ch)
            (part,) = channel_line_coeffs(self.Xp, self.idx[lo:hi], np.ascontiguousarray(self.W[c]), self.cbias(c),
                                          dw, dbc, self.pc, self.s, self.Hq, self.Wq, Vc, dVc,
                                          np.ascontiguousarray(lin[lo:hi]), self.R[lo:hi], self.hj[lo:hi],
                                          self.D[lo:hi])
            coeffs = part if coeffs is None else coeffs + part
        coeffs[0] = self.sse
        theta_d = float(self.W[c].ravel() @ du[:K]) + self.cbias(c) * dbc + float(np.sum(self.V * dV)) \
            + float(self.obias() @ db)
        dd = float(du[:K] @ du[:K]) + dbc * dbc + float(np.sum(dV * dV)) + float(db @ db)
        coeffs[0] += self.ridge * self.sqnorm
        coeffs[1] += 2.0 * self.ridge * theta_d
        coeffs[2] += self.ridge * dd
        self._line = (c, dw, dbc, dV, db, theta_d, dd)
        return coeffs

    def line_step(self, c: int, du, dV, db) -> tuple[float, float, float]:
        """Exact line search along (du of channel c, readout dV (O, C F), bias db); returns ``(t, before, after)``."""
        coeffs = self.line_coeffs(c, du, dV, db)
        before = float(coeffs[0])
        t, after = line_minimum(coeffs)
        if self.certificates is not None:
            self.certificates.record(LINE, theta=self.model.get_flat, coeffs=coeffs, t=t, before=before,
                                     after=after, ridge=self.ridge, rows=self.rows,
                                     direction=lambda: self.flat(c, du=du, dV=dV, db=db))
        if t == 0.0:
            return 0.0, before, before
        _, dw, dbc, dV, db, theta_d, dd = self._line
        Hc = self.H[:, c * self.F:(c + 1) * self.F]
        apply_jets(self.hj, self.D, t, Hc, self.out)
        self.W[c] += t * dw
        if self.has_cbias:
            self.conv.params["bias"][c] += t * dbc
        self.V[...] += t * dV
        if self.has_obias:
            self.lin.params["bias"][...] += t * db
        self.sqnorm += 2.0 * t * theta_d + t * t * dd
        self._residual()
        return t, before, after

    def line_all(self, dW, dcb, dV, db) -> tuple[float, float, float]:
        """Exact line search along a direction that moves every filter, the readout and the output bias.

        dW: (C, C_in, kh, kw), dcb: (C,) conv bias (ignored without one), dV: (O, C F), db: (O,).
        The outputs are a polynomial of degree P + 1 in the step (every channel's
        share from :func:`~symnet.core.kernels.channel.channel_add_jets`), the
        objective one of degree 2 P + 2. After a step every feature is recomputed.
        Returns ``(t, before, after)``.
        """
        F = self.F
        dcb = np.asarray(dcb, dtype=np.float64) if self.has_cbias else np.zeros(self.C)
        db = np.asarray(db, dtype=np.float64) if self.has_obias else np.zeros(self.O)
        D = np.zeros((self.n, self.P + 1, self.O))
        D[:, 0, :] += db
        for c in range(self.C):
            channel_add_jets(self.Xp, self.idx, np.ascontiguousarray(self.W[c]), self.cbias(c),
                             np.ascontiguousarray(dW[c]), float(dcb[c]), self.pc, self.s, self.Hq, self.Wq,
                             np.ascontiguousarray(self.V[:, c * F:(c + 1) * F]),
                             np.ascontiguousarray(dV[:, c * F:(c + 1) * F]), D)
        (coeffs,) = sse_coeffs(self.R, np.ascontiguousarray(D.transpose(1, 0, 2)))
        coeffs[0] = self.sse
        cbv = self.conv.params["bias"] if self.has_cbias else np.zeros(self.C)
        theta_d = float(np.sum(self.W * dW) + cbv @ dcb + np.sum(self.V * dV) + self.obias() @ db)
        dd = float(np.sum(dW * dW) + dcb @ dcb + np.sum(dV * dV) + db @ db)
        coeffs[0] += self.ridge * self.sqnorm
        coeffs[1] += 2.0 * self.ridge * theta_d
        coeffs[2] += self.ridge * dd
        before = float(coeffs[0])
        t, after = line_minimum(coeffs)
        if self.certificates is not None:
            self.certificates.record(LINE, theta=self.model.get_flat, coeffs=coeffs, t=t, before=before,
                                     after=after, ridge=self.ridge, rows=self.rows,
                                     direction=lambda: self.flat(None, dW=dW, dcb=dcb, dV=dV, db=db))
        if t == 0.0:
            return 0.0, before, before
        self.W[...] += t * dW
        if self.has_cbias:
            self.conv.params["bias"][...] += t * dcb
        self.V[...] += t * dV
        if self.has_obias:
            self.lin.params["bias"][...] += t * db
        self.refresh()
        return t, before, after

    def rescale(self, c: int) -> bool:
        """Closed-form rescale of channel ``c`` (monomial activation ``a z^p``): same outputs, least ridge term.

        ``(s u_c, s^-p V_c)`` keeps the network; ``s^(2 + 2p) = p ||V_c||^2 / ||u_c||^2`` minimises
        ``s^2 ||u_c||^2 + s^-2p ||V_c||^2``.
        """
        p = self.monomial_power()
        if p is None or not self.ridge:
            return False
        F = self.F
        a = float(np.sum(self.W[c] ** 2)) + self.cbias(c) ** 2
        bb = float(np.sum(self.V[:, c * F:(c + 1) * F] ** 2))
        if a <= 0.0 or bb <= 0.0:
            return False
        s = (p * bb / a) ** (1.0 / (2 + 2 * p))
        if abs(s - 1.0) < 1e-12:
            return False
        theta = self.model.get_flat() if self.certificates is not None else None
        before = self.value
        self.W[c] *= s
        if self.has_cbias:
            self.conv.params["bias"][c] *= s
        self.V[:, c * F:(c + 1) * F] *= s ** (-p)
        self.H[:, c * F:(c + 1) * F] *= s ** p
        self.sqnorm += (s * s - 1.0) * a + (s ** (-2 * p) - 1.0) * bb
        if theta is not None:
            model = self.model
            self.certificates.record(BLOCK, theta=theta, t=1.0, before=before, after=self.value, ridge=self.ridge,
                                     rows=self.rows, direction=lambda: model.get_flat() - theta)
        return True

    def channel_step(self, c: int, curvature_idx=None, *, adapt: bool = True, rescale: bool = True,
                     gradient: str = "all") -> dict:
        """Direction, exact line search and rescale of block ``c``; adapts the channel's damping from the step."""
        du, dV, db, pred = self.direction(c, curvature_idx, gradient=gradient)
        if not pred < 0.0:
            return {"t": 0.0, "decrease": 0.0}
        t, before, after = self.line_step(c, du, dV, db)
        if adapt:
            if 0.5 <= t <= 2.0:
                self.mu[c] = max(self.mu[c] / 3.0, 1e-7)
            else:
                self.mu[c] = min(self.mu[c] * 3.0, 1e3)
        if rescale:
            self.rescale(c)
        return {"t": t, "decrease": before - after}


# --------------------------------------------------------------------------- the driver
class ChannelDriver:
    """Sweeps of channel blocks for :class:`~symnet.solvers.coordinate.CoordinateSolver` (see the module docstring).

    The solver hands over its hooks: :meth:`step`, :meth:`state`, :meth:`load_state`,
    :meth:`on_params_restored`.
    """

    def __init__(self, solver, model, data, rng) -> None:
        self.solver = solver
        opts = solver.opts_
        self.opts = opts
        conv, _, _, lin = channel_chain(model)
        wanted = opts["layers"]
        names = [layer.name for layer in model.layers]
        if wanted is not None:
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise SolverError(f"layers {unknown} not in the model; it has {names}")
        self.train_conv = wanted is None or conv.name in wanted
        self.train_readout = wanted is None or lin.name in wanted
        self.model = model
        self.rng = rng
        self.X = data.x_train
        self.Y = solver.y_train
        N = len(data.x_train)
        self.N = N
        self.perm = rng.permutation(N).astype(np.int64)
        #: choose the ridge on held-out samples at the stages' first readout solves
        self.choosing = opts["ridge"] == "auto" and self.train_readout
        val = parse_ridge(opts["ridge"], val_size=opts["val_size"]).held_out_count(N)
        val = val if opts["val_size"] is None else min(val, N // 2)
        self.val = val if self.choosing else 0
        if self.choosing and self.val < 1:
            self.choosing = False
        self.ridge_selection: list[dict] = []
        solver.ridge_selection_ = self.ridge_selection  # as the exact direction solvers name their choice
        self.set_ridge(PROVISIONAL_RIDGE if opts["ridge"] == "auto" else float(opts["ridge"]))
        start = opts["sample_start"]
        n_train = N - self.val
        self.n = N if start is None or not self.train_conv or start >= n_train else int(start)
        self.stage_count = 0
        self.fresh_stage = True  # the stage's first readout solve is still to come
        self.mu = None
        self.cb: ChannelBlocks | None = None
        self.sweeps = 0
        self.counts: dict = {}
        # records carry the CPU seconds of training too (shared machines): the process's, within steps, without
        # the evaluation of interim records
        self.cpu_done = 0.0
        self.cpu_step0 = time.process_time()
        self.cpu_eval = 0.0
        self.last_emit = self.last_tick = time.perf_counter()
        self.block_s = 0.0  # seconds of the last block of work (a channel step, a feature pass ...)
        self.readout_s = 0.0  # seconds of the last readout solve

    # ------------------------------------------------------------------ hooks of the solver
    def state(self) -> dict:
        out = {"sweeps": self.sweeps, "ridge": self.ridge, "n": self.n, "perm": self.perm, "cpu": self.cpu_done,
               "stage_sweeps": self.stage_count, "choosing": int(self.choosing), "fresh_stage": int(self.fresh_stage)}
        if self.mu is not None:
            out["mu"] = self.mu
        return out

    def load_state(self, state: dict) -> None:
        self.sweeps = int(state.get("sweeps", 0))
        if "perm" not in state:
            return
        self.cpu_done = float(state.get("cpu", 0.0))
        self.choosing = bool(int(state["choosing"]))
        self.fresh_stage = bool(int(state["fresh_stage"]))
        self.set_ridge(float(state["ridge"]))
        self.n = int(state["n"])
        self.perm = np.asarray(state["perm"], dtype=np.int64)
        self.mu = np.asarray(state["mu"], dtype=np.float64) if "mu" in state else None
        self.stage_count = int(state["stage_sweeps"])
        self.cb = None

    def on_params_restored(self) -> None:
        self.cb = None  # rebuilt from the parameters at the next step

    def set_ridge(self, ridge: float) -> None:
        """The ridge of the objective being minimised (and of every record's loss)."""
        self.ridge = float(ridge)
        self.solver.ridge_ = self.ridge

    # ------------------------------------------------------------------ records
    def _progress(self, cb: ChannelBlocks) -> None:
        """Between blocks of work: an interim record when the next block would pass the record interval."""
        now = time.perf_counter()
        self.block_s = now - self.last_tick
        self.last_tick = now
        if now - self.last_emit + self.block_s >= self.solver.record_every:
            self.interim(cb)

    def info(self, cb: ChannelBlocks) -> dict:
        """A record's figures: the full objective when the stage holds every sample, else left to a forward pass."""
        out = {"samples": cb.n, "ridge": self.ridge, "cpu_time": self.cpu_done + self.step_cpu(),
               "loss": None, "train_scores": None}
        if cb.ready:
            out["stage_loss"] = cb.value / cb.n
            if cb.n == self.N and cb.ridge_full == self.ridge:
                scores = np.empty_like(cb.out)
                scores[cb.idx] = cb.out  # the samples' own order
                out.update(loss=cb.value / cb.n, train_scores=scores)
        return out

    def step_cpu(self) -> float:
        """CPU seconds of training in the current step so far."""
        return time.process_time() - self.cpu_step0 - self.cpu_eval

    def interim(self, cb: ChannelBlocks, **extra) -> None:
        counts = self.counts
        c0 = time.process_time()
        self.solver.record_interim(passes=counts.get("passes", 0.0), updates=counts.get("updates", 0),
                                   **{**self.info(cb), **extra})
        self.cpu_eval += time.process_time() - c0
        self.last_emit = self.last_tick = time.perf_counter()

    # ------------------------------------------------------------------ helpers
    def blocks(self) -> ChannelBlocks:
        """The blocks of the current stage (built at the current parameters when needed)."""
        if self.cb is None:
            self.cb = self.make_blocks(self.perm[:self.n])
            if self.mu is not None:
                self.cb.mu[:] = self.mu
        return self.cb

    def make_blocks(self, idx) -> ChannelBlocks:
        cb = ChannelBlocks(self.model, self.X, self.Y, self.ridge, idx=idx, progress=self._progress)
        cb.certificates = self.solver.certificates_
        return cb

    def past_deadline(self) -> bool:
        return self.solver.deadline.passed()

    def fits(self, seconds: float) -> bool:
        """Would a block of work of ``seconds`` end before the time limit (or within 5% of it after)?"""
        slack = 0.05 * (self.solver.time_limit_ or 0.0)
        return seconds <= self.solver.deadline.remaining() + slack  # always, without a limit (remaining: inf)

    def curvature_idx(self, cb: ChannelBlocks):
        m = self.opts["curvature_samples"]
        return None if m is None or m >= cb.n else np.sort(self.rng.choice(cb.n, m, replace=False))

    def held_out(self, cb: ChannelBlocks):
        """``(candidates, Hv, Yv, pos)`` for :meth:`ChannelBlocks.solve_readout`: the held-out samples."""
        candidates = tuple(sorted(self.opts["ridge_grid"]))
        n_train = self.N - self.val
        if cb.n > n_train:  # the last stage holds them at its end (the tail of the permutation)
            return candidates, None, None, np.arange(n_train, self.N)
        rows = self.perm[n_train:]
        Hv = np.empty((len(rows), cb.C * cb.F))
        for c in range(cb.C):
            Hv[:, c * cb.F:(c + 1) * cb.F] = cb.features(c, idx=rows)
        return candidates, Hv, self.Y[rows], None

    def solve_readout(self, cb: ChannelBlocks) -> float:
        """The readout solve; a stage's first one chooses the ridge on the held-out samples (until the last stage)."""
        choose = self.held_out(cb) if self.fresh_stage and self.choosing else None
        t0 = time.perf_counter()
        decrease = cb.solve_readout(choose=choose)
        self.readout_s = time.perf_counter() - t0
        self.counts["passes"] = self.counts.get("passes", 0.0) + cb.n / self.N
        if choose is not None:
            self.set_ridge(cb.ridge_full)
            self.ridge_selection.append({"samples": cb.n, "validation_samples": self.val, **cb.ridge_scores,
                                         "chosen": self.ridge})
            self.counts["ridge_chosen"] = self.ridge
            if cb.n == self.N:
                self.choosing = False  # the held-out samples are trained on from now on
        self.fresh_stage = False
        return decrease

    # ------------------------------------------------------------------ a sweep
    def sweep(self, cb: ChannelBlocks) -> None:
        """Every channel block once (exact steps), then the exact readout solve (and the extrapolation)."""
        counts = self.counts
        opts = self.opts
        order = np.arange(cb.C) if opts["order"] == "cyclic" else self.rng.permutation(cb.C)
        extrapolate = opts["extrapolate"] is True
        if extrapolate:
            start = (cb.W.copy(), cb.conv.params["bias"].copy() if cb.has_cbias else np.zeros(cb.C), cb.V.copy(),
                     cb.obias().copy())
        size = cb.K + int(cb.has_cbias) + cb.O * cb.F + (cb.O if cb.has_obias else 0)
        for c in order:
            if self.past_deadline() or not self.fits(self.block_s):
                counts["cut"] = 1  # the time limit ends the sweep here, its closing solves too
                return
            r = cb.channel_step(int(c), self.curvature_idx(cb), rescale=opts["rescale"], gradient=opts["gradient"])
            counts["updates"] = counts.get("updates", 0) + size
            counts["accepted"] = counts.get("accepted", 0) + int(r["t"] != 0.0)
            counts["passes"] = counts.get("passes", 0.0) + 2.0 * cb.n / self.N
            self._progress(cb)
        if opts["linear_block"] and not self.past_deadline() and self.fits(self.readout_s):
            counts["block_decrease"] = counts.get("block_decrease", 0.0) + self.solve_readout(cb)
        elif opts["linear_block"]:
            counts["cut"] = 1
        if extrapolate and not self.past_deadline():
            bias = cb.conv.params["bias"] if cb.has_cbias else np.zeros(cb.C)
            t, _, _ = cb.line_all(cb.W - start[0], bias - start[1], cb.V - start[2], cb.obias() - start[3])
            counts["extrapolation"] = t
            counts["passes"] = counts.get("passes", 0.0) + 2.0 * cb.n / self.N

    # ------------------------------------------------------------------ stages
    def next_stage(self, cb: ChannelBlocks, before: float) -> int | None:
        """The sample count of the next stage, or None to stay: when the sweep's decrease stalls, the stage has
        had ``stage_sweeps`` sweeps, or ``full_by`` of the time limit has passed (then every sample)."""
        if cb.n >= self.N:
            return None
        opts = self.opts
        rel = (before - cb.value) / max(before, 1e-300)
        late = False
        solver = self.solver
        if solver.time_limit_ is not None:
            used = solver.time_limit_ - solver.deadline.remaining()
            late = used >= opts["full_by"] * solver.time_limit_
        if not (late or rel < opts["grow_tol"] or self.stage_count >= opts["stage_sweeps"]):
            return None
        n_train = self.N - self.val
        n = self.N if late else min(n_train, int(round(cb.n * opts["sample_growth"])))
        if n_train - n < 0.25 * n:
            n = self.N  # no stage for a sliver of samples: the last stage has every sample, held-out ones too
        return n

    def step(self) -> dict:
        """One sweep; a stage's first readout solve comes first (and chooses the ridge, when asked to)."""
        self.counts = counts = {"updates": 0, "passes": 0.0, "accepted": 0}
        self.last_emit = self.last_tick = time.perf_counter()
        self.cpu_step0, self.cpu_eval = time.process_time(), 0.0
        cb = self.blocks()
        if self.fresh_stage and self.train_readout:
            counts["block_decrease"] = self.solve_readout(cb)
        before = cb.value
        n_before = cb.n
        if self.train_conv:
            self.sweep(cb)
            self.stage_count += 1
        elif self.train_readout and "block_decrease" not in counts:
            counts["block_decrease"] = self.solve_readout(cb)
        if cb.value > before * (1 + 1e-12) + 1e-12:
            raise RuntimeError(f"internal error: sweep raised the objective from {before} to {cb.value}")
        self.sweeps += 1
        counts["stage_decrease"] = (before - cb.value) / max(before, 1e-300)
        n = self.next_stage(cb, before) if not self.past_deadline() else None
        if n is not None:
            cb.grow(self.perm[:n])
            self.n = n
            self.stage_count = 0
            self.fresh_stage = True
            if not self.train_conv or not self.past_deadline():
                self.solve_readout(cb)  # the new stage's readout (the records' objective is the new stage's)
            counts["grown_from"] = n_before
        self.mu = cb.mu.copy()
        out = {**counts, **self.info(cb)}
        self.cpu_done += self.step_cpu()
        return out


def channel_driver(solver, model, data, rng) -> ChannelDriver | None:
    """The channel-block driver of a coordinate solver whose options and model call for one, else None.

    ``blocks="auto"`` picks channel blocks for :func:`channel_chain` networks when ``fused`` is on;
    ``"channel"`` insists (an error for other networks); ``"coordinate"`` never.

    Example:
        >>> from symnet import solvers
        >>> from symnet.core import datasets
        >>> from symnet.core.model import presets as models
        >>> data = datasets.xor(8)
        >>> s = solvers.get("coordinate")()
        >>> s.opts_ = s.check_options()
        >>> channel_driver(s, models.mlp(2, 2, 2), data, None) is None
        True
    """
    blocks = solver.opts_["blocks"]
    chain = channel_chain(model)
    if blocks == "channel" and chain is None:
        raise SolverError("blocks='channel' needs Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear (the poly "
                          "preset); use blocks='coordinate' for this network")
    if chain is None or blocks == "coordinate" or (blocks == "auto" and not solver.opts_["fused"]):
        return None
    if getattr(solver, "client_", None) is not None:
        # the channel caches live in this process; on a cluster, the per-coordinate sweep is what shards
        if blocks == "channel":
            raise SolverError("blocks='channel' runs in one process; drop the Dask cluster (--workers/--scheduler), "
                              "or use blocks='coordinate', whose sweeps run on the shards")
        solver.notify("channel blocks run in one process, so on the Dask cluster the sweep is per coordinate "
                       "(blocks='coordinate'), whose caches live on the shards")
        return None
    solver.require_exact_network(model, data)
    # numba-parallel kernels between small GEMMs: BLAS on one thread (1.4x fewer CPU seconds per channel step
    # on 2 shared cores); the Gram matrices of the readout still use every core (core.linalg.gram)
    solver.blas_threads = 1
    return ChannelDriver(solver, model, data, rng)
