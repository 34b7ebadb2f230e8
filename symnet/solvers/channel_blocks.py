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

:class:`~symnet.solvers.channel_driver.ChannelDriver` (:mod:`symnet.solvers.channel_driver`) runs these
steps for :class:`~symnet.solvers.coordinate.CoordinateSolver`: the stages of a growing sample, the
choice of the ridge, the records and the time limit.

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

from typing import Any, Callable

import numpy as np
import scipy.linalg as sla

from symnet.core.certificates import BLOCK, LINE
from symnet.core.derivatives import conv_chain
from symnet.core.errors import SolverError
from symnet.core.kernels.terms import sse_coeffs
from symnet.core.layers import Conv2d
from symnet.core.linalg import choose_readout_ridge, cross, fit_readout, gram, ridge_factor, ridge_solve
from symnet.core.roots import dense
from symnet.core.restriction import step_scale

from symnet.core.kernels.channel import (apply_jets, channel_add_jets, channel_features, channel_grad,
                                            channel_line_coeffs, channel_output_jac)



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
