"""Exact polynomial restriction of the training loss to a line.

For parameters ``theta`` and a direction ``d`` the objective

    L(theta + t d) = sum_n ||f(x_n; theta + t d) - y_n||^2 + ridge ||theta + t d||^2

is a univariate polynomial in ``t`` whose degree the graph fixes (2 for a
last-layer weight, 4 for a conv weight under x^2, 6 for a dense direction
through conv, x^2 and linear). :class:`ExactLoss` computes its coefficients
exactly by pushing a :class:`~symnet.layers.Jet` through the layers from the
first one the direction touches, on the slice of channels it touches, starting
from cached activations; the sum over samples runs in numba kernels. After a
step the cached activations on the path are updated in place from the same
jets, so the next restriction needs no forward pass. :meth:`ExactLoss.refresh`
recomputes everything exactly to bound floating-point drift.

Example:
    >>> import numpy as np
    >>> from symnet import models
    >>> from symnet.restriction import ExactLoss
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((8, 2)), np.eye(2)[[0, 1] * 4]
    >>> loss = ExactLoss(m, X, Y, ridge=1e-3)
    >>> c = loss.restrict("linear0.weight[0,1]")
    >>> len(c) - 1          # degree in t: Linear -> x^2 -> Linear, squared
    4
    >>> bool(np.isclose(c[0], loss.value))
    True
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ._restriction_kernels import add_polynomial_step, sse_coeffs
from .errors import ModelError
from .layers import Coord, Jet

Direction = Union[str, Coord, dict, np.ndarray]


class ExactLoss:
    """The training objective of ``model`` on (X, Y) with cached activations.

    Args:
        model: a :class:`~symnet.model.Sequential`; trained in place by :meth:`step`.
        X: training inputs (N, *input_shape).
        Y: targets (N, num_outputs), one-hot for classification.
        ridge: the ridge weight ``lambda`` on ``||theta||^2``.
    """

    #: Upper bound on the floats held by one chunk's jets (about 400 MB).
    jet_budget = 5e7

    def __init__(self, model, X: np.ndarray, Y: np.ndarray, ridge: float = 0.0) -> None:
        self.model = model
        self.X = model.check_input(X).astype(np.float64, copy=False)
        self.Y = np.asarray(Y, dtype=np.float64)
        if self.Y.shape != (len(self.X), model.num_outputs):
            raise ModelError(f"targets must have shape ({len(self.X)}, {model.num_outputs}), got {self.Y.shape}")
        self.ridge = float(ridge)
        self._path: list | None = None
        self.refresh()

    # ------------------------------------------------------------------ caches
    def refresh(self) -> None:
        """Recompute every cached activation and the residual exactly (one forward pass)."""
        self.acts: dict[int, np.ndarray] = {}
        self.refresh_output_from(0)

    def refresh_output_from(self, li: int) -> None:
        """Recompute the caches from the cached input of layer ``li`` on (after its params changed)."""
        h = self.X if li == 0 else self.acts[li]
        for lj in range(li, len(self.model.layers)):
            layer = self.model.layers[lj]
            if layer.needs_input:
                self.acts[lj] = np.ascontiguousarray(h)
            h = layer.forward(h)
        self.output = np.ascontiguousarray(h)
        self.residual = self.output - self.Y
        self._sse = float(np.sum(self.residual * self.residual))
        theta = self.model.get_flat()
        self.sq_norm = float(theta @ theta)
        self._path = None

    @property
    def sse(self) -> float:
        """Sum of squared errors, kept up to date incrementally by :meth:`step`."""
        return self._sse

    @property
    def value(self) -> float:
        """Current objective ``SSE + ridge ||theta||^2`` (from the caches)."""
        return self.sse + self.ridge * self.sq_norm

    # ------------------------------------------------------------------ directions
    def normalize(self, direction: Direction) -> dict[int, dict]:
        """``{layer index: {param key: Coord or dense array}}`` for any accepted form.

        Accepted: an element name ``"conv0.weight[3,0,2,1]"``; a :class:`Coord`
        with a full array name; a dict ``{"conv0.weight": array, ...}``; a flat
        vector of length ``num_params``.
        """
        model = self.model
        if isinstance(direction, str):
            li, key, idx = model.locate(direction)
            if idx is None:
                raise ModelError(f"{direction!r} names a whole array; give one element like '{direction}[0,...]' "
                                 "or a dict {name: array}")
            return {li: {key: Coord(key, idx)}}
        if isinstance(direction, Coord):
            li, key, _ = model.locate(direction.name)
            return {li: {key: Coord(key, tuple(direction.index))}}
        if isinstance(direction, dict):
            out: dict[int, dict] = {}
            for name, arr in direction.items():
                li, key, idx = model.locate(name)
                arr = np.asarray(arr, dtype=np.float64)
                if arr.shape != model.layers[li].params[key].shape:
                    raise ModelError(f"direction for {name} has shape {arr.shape}, "
                                     f"the parameter has {model.layers[li].params[key].shape}")
                out.setdefault(li, {})[key] = arr
            return out
        d = np.asarray(direction, dtype=np.float64)
        if d.shape != (model.num_params,):
            raise ModelError(f"a flat direction must have shape ({model.num_params},), got {d.shape}")
        out, pos = {}, 0
        for li, layer in enumerate(model.layers):
            for key, v in layer.params.items():
                piece = d[pos:pos + v.size].reshape(v.shape)
                pos += v.size
                if np.any(piece):
                    out.setdefault(li, {})[key] = piece
        return out

    def _ridge_terms(self, direction: dict[int, dict]) -> tuple[float, float]:
        """(theta . d, ||d||^2) for the ridge polynomial."""
        dot = sq = 0.0
        for li, parts in direction.items():
            layer = self.model.layers[li]
            for key, d in parts.items():
                if isinstance(d, Coord):
                    dot += float(layer.params[key][d.index])
                    sq += 1.0
                else:
                    dot += float(np.sum(layer.params[key] * d))
                    sq += float(np.sum(d * d))
        return dot, sq

    # ------------------------------------------------------------------ the primitive
    def _chunk_size(self, direction: dict[int, dict]) -> int:
        """Samples per chunk so that one chunk's jets stay within ``jet_budget`` floats."""
        first = min(direction)
        single = all(isinstance(d, Coord) for parts in direction.values() for d in parts.values()) \
            and len(direction) == 1 and sum(len(p) for p in direction.values()) == 1
        per_sample, order = 0, 0
        for li in range(first, len(self.model.layers)):
            order = self.model.layers[li].degree(order, li in direction)
            shape = self.model.shapes[li + 1]
            size = int(np.prod(shape))
            if single and len(shape) == 3 and li == first:
                size //= shape[0]  # one channel moves
            per_sample += max(order, 1) * size
        return max(1, int(self.jet_budget // max(per_sample, 1)))

    def _jets(self, direction: dict[int, dict], lo: int, hi: int) -> list[tuple[int, Jet]]:
        first = min(direction)
        jet, path = None, []
        for li in range(first, len(self.model.layers)):
            x = self.acts.get(li)
            jet = self.model.layers[li].jet(None if x is None else x[lo:hi], jet, direction.get(li))
            path.append((li, jet))
        return path

    def restrict(self, direction: Direction) -> np.ndarray:
        """Coefficients (lowest first) of ``t -> L(theta + t d)`` over the whole training set.

        Samples are processed in chunks that keep the jets within
        ``jet_budget`` floats; with one chunk the jets are kept so that
        :meth:`step` updates the caches without recomputing them.
        """
        if not (isinstance(direction, dict) and all(isinstance(k, (int, np.integer)) for k in direction)):
            direction = self.normalize(direction)
        if not direction:
            self._path = (direction, [], (0.0, 0.0), None)
            return np.array([self.value])
        N = len(self.X)
        chunk = min(N, self._chunk_size(direction))
        coeffs = None
        path = None
        for lo in range(0, N, chunk):
            hi = min(N, lo + chunk)
            path = self._jets(direction, lo, hi)
            jet = path[-1][1]
            r = self.residual[lo:hi] if jet.channels is None else self.residual[lo:hi, jet.channels]
            D = jet.coeffs.reshape(jet.coeffs.shape[0], hi - lo, -1)
            (part,) = sse_coeffs(np.ascontiguousarray(r), np.ascontiguousarray(D))
            coeffs = part if coeffs is None else coeffs + part
        coeffs[0] = self.sse  # the kernel's constant covers only the touched slice
        dot, sq = self._ridge_terms(direction)
        if self.ridge:
            coeffs[0] += self.ridge * self.sq_norm
            coeffs[1] += 2.0 * self.ridge * dot
            coeffs[2] += self.ridge * sq
        self._path = (direction, path if chunk >= N else None, (dot, sq), chunk)
        return coeffs

    def step(self, t: float) -> None:
        """Move ``theta += t d`` along the last restricted direction and update caches in place."""
        if self._path is None:
            raise RuntimeError("call restrict(direction) before step(t)")
        direction, path, (dot, sq), chunk = self._path
        self._path = None
        if t == 0.0 or not direction:
            return
        N = len(self.X)
        for lo in range(0, N, chunk):
            hi = min(N, lo + chunk)
            self._apply(self._jets(direction, lo, hi) if path is None else path, lo, hi, t)
        for li, parts in direction.items():
            layer = self.model.layers[li]
            for key, d in parts.items():
                if isinstance(d, Coord):
                    layer.params[key][d.index] += t
                else:
                    layer.params[key] += t * d
        self.sq_norm += 2.0 * t * dot + t * t * sq

    def _apply(self, path: list[tuple[int, Jet]], lo: int, hi: int, t: float) -> None:
        n_layers = len(self.model.layers)
        for li, jet in path:
            target = li + 1
            if target < n_layers and target not in self.acts:
                continue
            cache = self.acts[target] if target < n_layers else self.output
            _add_jet(cache[lo:hi], jet, t)
        last = path[-1][1]
        ch = slice(None) if last.channels is None else last.channels
        old = self.residual[lo:hi, ch]
        new = self.output[lo:hi, ch] - self.Y[lo:hi, ch]
        self._sse += float(np.sum(new * new) - np.sum(old * old))
        self.residual[lo:hi, ch] = new

    def line_minimize(self, direction: Direction, *, accept_equal: bool = False) -> tuple[float, float, float]:
        """Exact global line minimisation; returns (t, loss before, loss after).

        The step is taken only if the polynomial's value at the minimiser is
        below the current loss; otherwise ``t = 0`` and nothing changes.
        """
        from .polynomial import minimize

        coeffs = self.restrict(direction)
        before = float(coeffs[0])
        t, after, _ = minimize(coeffs)
        if not np.isfinite(t) or after > before or (after == before and not accept_equal):
            self._path = None
            return 0.0, before, before
        self.step(float(t))
        return float(t), before, float(after)


def _add_jet(cache: np.ndarray, jet: Jet, t: float) -> None:
    """cache[:, channels] += sum_k jet_k t^k, in place (cache is C-contiguous)."""
    D = jet.coeffs
    K, N, S = D.shape[:3]
    C = cache.shape[1]
    channels = np.arange(C) if jet.channels is None else jet.channels
    add_polynomial_step(cache.reshape(N, C, -1), channels, np.ascontiguousarray(D).reshape(K, N, S, -1), float(t))
