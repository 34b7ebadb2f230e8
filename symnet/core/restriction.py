"""Exact polynomial restriction of the training loss to a line.

For parameters ``theta`` and a direction ``d`` the objective

    L(theta + t d) = sum_n ||f(x_n; theta + t d) - y_n||^2 + ridge ||theta + t d||^2

is a univariate polynomial in ``t`` whose degree the graph fixes (2 for a
last-layer weight, 4 for a conv weight under x^2, 6 for a dense direction
through conv, x^2 and linear). :class:`Restriction` computes its coefficients
exactly by pushing a :class:`~symnet.core.jets.Jet` through the layers from the
first one the direction touches, on the slice of channels it touches, starting
from cached activations; the sum over samples runs in numba kernels. After a
step the cached activations on the path are updated in place from the same
jets, so the next restriction needs no forward pass. :meth:`Restriction.refresh`
recomputes everything exactly to bound floating-point drift.

:meth:`Restriction.line_minimize` is the one exact line minimisation of symnet:
every exact solver moves through it (or, for the fused coordinate kernels,
through the same :func:`~symnet.core.roots.dense.minimize` on the same
coefficients). Directions come in any of the forms :func:`parse_direction`
accepts.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.restriction import Restriction
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((8, 2)), np.eye(2)[[0, 1] * 4]
    >>> loss = Restriction(m, X, Y, ridge=1e-3)
    >>> c = loss.restrict("linear0.weight[0,1]")
    >>> len(c) - 1          # degree in t: Linear -> x^2 -> Linear, squared
    4
    >>> bool(np.isclose(c[0], loss.value))
    True
"""

from __future__ import annotations

import abc
from typing import NamedTuple, Union

import numpy as np

from symnet.core.certificates import BLOCK, COORD, FLOAT32_RTOL, LINE
from symnet.core.errors import ModelError
from symnet.core.kernels.terms import add_polynomial_step, sse_coeffs
from symnet.core.jets import Coord, Jet
from symnet.core.layers import Linear
from symnet.core.linalg import LocalReadout, fit_readout_on, ridge_factor
from symnet.core.objective import sum_squares
from symnet.core.objective import value as objective_value
from symnet.core.roots import dense
from symnet.core.runtime import require_memory
from symnet.core.samples import Samples

Direction = Union[str, Coord, dict, np.ndarray]


# --------------------------------------------------------------------------- directions
def parse_direction(model, direction: Direction) -> dict[int, dict]:
    """``{layer index: {param key: Coord or dense array}}`` for any accepted form of a direction.

    Accepted: an element name ``"conv0.weight[3,0,2,1]"``; a :class:`~symnet.core.jets.Coord`
    with a full array name; a dict ``{"conv0.weight": array, ...}`` (arrays of the
    parameter's shape or size; missing arrays are zero); a flat vector of length
    ``num_params``. Arrays that are zero everywhere are left out.

    Raises:
        ModelError: an unknown name, a wrong shape or length, or a NaN or infinite entry.

    Example:
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> parse_direction(m, "linear1.bias[1]")
        {2: {'bias': Coord(name='bias', index=(1,))}}
    """
    if isinstance(direction, str):
        li, key, idx = model.locate(direction)
        if idx is None:
            raise ModelError(f"{direction!r} names a whole array; give one element like '{direction}[0,...]' "
                             "or a dict {name: array}")
        return {li: {key: Coord(key, idx)}}
    if isinstance(direction, Coord):
        li, key, _ = model.locate(direction.name)
        return {li: {key: Coord(key, tuple(direction.index))}}
    out: dict[int, dict] = {}
    if isinstance(direction, dict):
        for name, arr in direction.items():
            li, key, idx = model.locate(name)
            if idx is not None:
                raise ModelError(f"direction key {name!r} names one element; key a dict of directions by array "
                                 f"name (e.g. {name.split('[')[0]!r})")
            shape = model.layers[li].params[key].shape
            arr = np.asarray(arr, dtype=np.float64)
            if arr.size != int(np.prod(shape)):
                raise ModelError(f"direction for {name} has shape {arr.shape}, the parameter has {shape}")
            _check_finite(arr)
            if np.any(arr):
                out.setdefault(li, {})[key] = arr.reshape(shape)
        return out
    d = np.asarray(direction, dtype=np.float64)
    if d.shape != (model.num_params,):
        raise ModelError(f"a flat direction must have shape ({model.num_params},), got {d.shape}; "
                         "pass model.get_flat()-shaped vectors")
    _check_finite(d)
    pos = 0
    for li, layer in enumerate(model.layers):
        for key, v in layer.params.items():
            piece = d[pos:pos + v.size].reshape(v.shape)
            pos += v.size
            if np.any(piece):
                out.setdefault(li, {})[key] = piece
    return out


def _check_finite(d: np.ndarray) -> None:
    if not np.all(np.isfinite(d)):
        raise ModelError("the search direction has NaN or infinite entries; check the gradient "
                         "(lower the initial scale of the weights or raise the ridge)")


def _is_parsed(direction) -> bool:
    return isinstance(direction, dict) and all(isinstance(k, (int, np.integer)) for k in direction)


def flat_direction(model, direction: Direction) -> np.ndarray:
    """Any accepted direction (see :func:`parse_direction`) as a flat float64 vector of length ``num_params``.

    Example:
        >>> from symnet.core.model import presets as models
        >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> flat_direction(m, {"linear1.bias": [1.0, 2.0]})[-2:].tolist()
        [1.0, 2.0]
    """
    parsed = direction if _is_parsed(direction) else parse_direction(model, direction)
    out = np.zeros(model.num_params)
    offsets = model.offsets()
    for li, parts in parsed.items():
        layer = model.layers[li]
        for key, d in parts.items():
            lo, hi = offsets[f"{layer.name}.{key}"]
            if isinstance(d, Coord):
                out[lo + int(np.ravel_multi_index(d.index, layer.params[key].shape))] = 1.0
            else:
                out[lo:hi] = d.ravel()
    return out


def unit_direction(d: np.ndarray) -> tuple[np.ndarray, float]:
    """``(d / ||d||, ||d||)``; a zero direction gives ``(d, 0.0)``.

    Example:
        >>> u, n = unit_direction(np.array([3.0, 4.0]))
        >>> u.tolist(), n
        ([0.6, 0.8], 5.0)
    """
    big = float(np.max(np.abs(d))) if d.size else 0.0
    if big == 0.0:
        return d, 0.0
    u = d / big  # scale first so that huge but finite entries do not overflow the squares
    norm_u = float(np.linalg.norm(u))
    return u / norm_u, big * norm_u


def step_scale(coeffs: np.ndarray) -> float:
    """A natural step length of the polynomial ``sum_k c_k t^k`` (lowest first).

    The minimiser of the quadratic model, ``|c_1| / (2 c_2)``, when ``c_2 > 0``
    and ``c_1 != 0``; otherwise the Fujiwara bound on the magnitude of the
    critical points; 1 if neither is defined.

    Example:
        >>> step_scale(np.array([1.0, -4.0, 1.0]))   # (t - 2)^2 - 3
        2.0
    """
    c = np.asarray(coeffs, dtype=np.float64)
    if len(c) >= 3 and c[2] > 0.0 and c[1] != 0.0:
        s = abs(c[1]) / (2.0 * c[2])
        if np.isfinite(s) and s > 0.0:
            return float(s)
    q = dense.trim(dense.derivative(c))
    n = len(q) - 1
    if n >= 1 and q[-1] != 0.0:
        ratios = np.abs(q[:-1] / q[-1])
        powers = 1.0 / np.arange(n, 0, -1)  # |q_k / q_n|^(1/(n-k))
        with np.errstate(over="ignore", divide="ignore"):
            s = 2.0 * float(np.max(ratios ** powers))
        if np.isfinite(s) and s > 0.0:
            return s
    return 1.0


class LineResult(NamedTuple):
    """Outcome of one exact line minimisation.

    Attributes:
        t: step taken along the direction as given (``theta += t * d``); 0 if rejected.
        before: objective before the step (sum over the samples, ridge included).
        after: objective after the step (equals ``before`` when rejected).
        scale: the step scale ``s`` the polynomial was rescaled by (per unit-norm direction; 1 without normalising).
        degree: degree of the restricted polynomial after trimming.
        accepted: whether the step was taken.
    """

    t: float
    before: float
    after: float
    scale: float
    degree: int
    accepted: bool


# --------------------------------------------------------------------------- the exact loss
class RestrictionBase(abc.ABC):
    """What an exact loss does with the parameters, wherever its per-sample caches live.

    The one exact line minimisation (:meth:`line_minimize`), the ridge terms of
    the polynomial, the parameter moves and the certificates run here, on the
    model this object holds, from the polynomial's coefficients that
    :meth:`restrict` returns and the cache update that :meth:`step` makes.
    :class:`Restriction` keeps its caches in this process;
    :class:`~symnet.core.sharded.ShardedLoss` keeps them in shards on Dask workers
    and adds up what they return. Subclasses provide ``model``, ``ridge``,
    ``noise``, ``precision``, ``certificates``, ``rows``, ``sse``, ``sq_norm``,
    :meth:`restrict`, :meth:`step`, :meth:`refresh` and the readout's
    :meth:`readout_factor` and :meth:`solve_readout`.
    """

    @abc.abstractmethod
    def restrict(self, direction: Direction) -> np.ndarray:
        """Coefficients (lowest first) of ``t -> L(theta + t d)`` over every sample."""

    @abc.abstractmethod
    def step(self, t: float) -> None:
        """Move ``theta += t d`` along the last restricted direction and update the caches."""

    @property
    def value(self) -> float:
        """Current objective ``SSE + ridge ||theta||^2`` (from the caches)."""
        return objective_value(self.sse, self.sq_norm, self.ridge)

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

    def _move_params(self, direction: dict[int, dict], t: float) -> float:
        """``theta += t d`` on the parameters alone; returns the change of ``||theta||^2``."""
        dot, sq = self._ridge_terms(direction)
        for li, parts in direction.items():
            layer = self.model.layers[li]
            for key, d in parts.items():
                if isinstance(d, Coord):
                    layer.params[key][d.index] += t
                else:
                    layer.params[key] += t * d
        return 2.0 * t * dot + t * t * sq

    def line_minimize(self, direction: Direction, *, normalize: bool = True, accept_equal: bool = False,
                      update: bool = True) -> LineResult:
        """Move to the exact global minimiser of the objective along ``direction``.

        The coefficients of ``t -> L(theta + t d)`` are computed exactly
        (:meth:`restrict`) and handed to the global minimiser
        (:func:`~symnet.core.roots.dense.minimize`). With ``normalize``,
        a direction that is not a single coordinate is first divided by its
        Euclidean norm and the polynomial is rescaled to its natural step ``s`` (:func:`step_scale`: the polynomial
        of ``t = s u``, exactly the restriction along ``s d``, at no extra pass
        over the data), so that the minimiser sits near ``|u| = 1`` whatever the
        length of ``d`` and the trimming rule of the minimiser compares
        coefficients at the right scale. The step is taken only if it lowers the
        objective (or keeps it equal, with ``accept_equal``): never an ascent,
        never a step of zero length that reports a decrease.

        Args:
            direction: any form :func:`parse_direction` accepts.
            normalize: normalise the direction and rescale the polynomial (see above).
            accept_equal: take a step whose value equals the current one.
            update: update the caches along the step (:meth:`step`). ``False`` only
                moves the model's parameters, which saves the jet pass of the update
                when the loss is thrown away afterwards (a mini-batch); the loss is
                then stale.

        Returns:
            A :class:`LineResult`; ``t`` is in units of ``direction``.

        Example:
            >>> from symnet.core.model import Sequential
            >>> from symnet.core.layers import Linear
            >>> m = Sequential(Linear(1, 1, bias=False), input_shape=(1,), seed=None)
            >>> loss = Restriction(m, np.array([[1.0], [2.0]]), np.array([[2.0], [4.0]]))
            >>> res = loss.line_minimize(np.array([1e-9]))      # minimiser w = 2, t = 2e9
            >>> round(res.t * 1e-9, 9), round(res.after, 12)
            (2.0, 0.0)
        """
        parsed = direction if _is_parsed(direction) else parse_direction(self.model, direction)
        norm = 1.0
        coordinate = sum(len(parts) for parts in parsed.values()) == 1 and \
            any(isinstance(d, Coord) for parts in parsed.values() for d in parts.values())
        # One coordinate is a unit direction already, and its polynomial is minimised as it is: the fused
        # coordinate kernels do the same, so the generic and fused paths take the same steps.
        normalize = normalize and not coordinate
        if normalize and parsed:
            flat, norm = unit_direction(flat_direction(self.model, parsed))
            parsed = parse_direction(self.model, flat)
        if not parsed:
            v = self.value
            self._path = None
            return LineResult(0.0, v, v, 0.0, 0, False)
        coeffs = self.restrict(parsed)
        before = float(coeffs[0])
        s = step_scale(coeffs) if normalize else 1.0
        u_star, after, info = dense.minimize(dense.rescale(coeffs, s) if s != 1.0 else coeffs)
        t_unit = s * u_star
        degree = int(info["degree"])
        # in float32 (noise > 0) a decrease within the coefficients' rounding is not trusted
        margin = self.noise * abs(before)
        accepted = bool(np.isfinite(t_unit) and t_unit != 0.0 and
                        (after < before - margin or (accept_equal and margin == 0.0 and after == before)))
        if self.certificates is not None:
            self._certify(parsed, coordinate, coeffs, s, u_star if accepted else 0.0, before,
                          float(after) if accepted else before)
        if not accepted:
            self._path = None
            return LineResult(0.0, before, before, s, degree, False)
        if update:
            self.step(float(t_unit))
        else:
            self._path = None
            self.sq_norm += self._move_params(parsed, float(t_unit))
        return LineResult(float(t_unit) / norm, before, float(after), s, degree, True)

    def _certify(self, parsed: dict, coordinate: bool, coeffs: np.ndarray, s: float, u: float, before: float,
                 after: float) -> None:
        """One certificate for a line search: the polynomial in ``u`` it minimised along ``s d``."""
        model = self.model
        if coordinate:
            (li, parts), = parsed.items()
            (key, c), = parts.items()
            lo, _ = model.offsets()[f"{model.layers[li].name}.{key}"]
            index = lo + int(np.ravel_multi_index(c.index, model.layers[li].params[key].shape))
            self.certificates.record(COORD, theta=model.get_flat, coeffs=coeffs, t=u, before=before, after=after,
                                     ridge=self.ridge, index=index, rows=self.rows, precision=self.precision)
            return
        self.certificates.record(LINE, theta=model.get_flat, coeffs=dense.rescale(coeffs, s), t=u, before=before,
                                 after=after, ridge=self.ridge, rows=self.rows, precision=self.precision,
                                 direction=lambda: s * flat_direction(model, parsed))

    def _readout_layer(self) -> tuple[int, Linear]:
        li = len(self.model.layers) - 1
        layer = self.model.layers[li]
        if not isinstance(layer, Linear):
            raise ModelError(f"the readout is solved in closed form, so the model must end with a Linear layer; "
                             f"this one ends with {layer!r}")
        return li, layer

    @abc.abstractmethod
    def readout_problem(self):
        """The ridge problem of the last Linear layer on the cached features (see :class:`~symnet.core.linalg.LocalReadout`)."""

    @abc.abstractmethod
    def _readout_solved(self, problem, decrease: float) -> None:
        """Bring the caches to the readout's new weights after :func:`~symnet.core.linalg.fit_readout_on`."""

    def readout_factor(self, *, gram_dtype=np.float64):
        """Cholesky factor of the last Linear layer's ridge Gram matrix ``A^T A + ridge I``, ``A = [H, 1]``.

        ``H`` is the cached input of the layer (the features); the bias column is
        there when the layer has a bias. ``None`` when the matrix is not positive
        definite (no ridge and rank-deficient features). ``gram_dtype=np.float32``
        computes it in single precision: a preconditioner for :meth:`solve_readout`,
        whose solution is refined to the float64 one.

        Raises:
            ModelError: the model does not end with a Linear layer.
        """
        self._readout_layer()
        return ridge_factor(self.readout_problem().gram(gram_dtype), self.ridge)

    def solve_readout(self, *, factor=None) -> float:
        """Solve the last Linear layer exactly (:func:`~symnet.core.linalg.fit_readout_on`); returns the decrease.

        Pass ``factor`` (:meth:`readout_factor`) when it is already computed for
        the current features. The caches are updated; the objective never rises.

        Raises:
            ModelError: the model does not end with a Linear layer.

        Example:
            >>> from symnet.core.model import presets as models
            >>> m = models.get("mlp", input_dim=2, hidden=3, seed=0)
            >>> X, Y = np.random.default_rng(0).random((20, 2)), np.eye(2)[[0, 1] * 10]
            >>> Restriction(m, X, Y, ridge=1e-2).solve_readout() >= 0.0
            True
        """
        li, layer = self._readout_layer()
        before, theta = self.value, (self.model.get_flat() if self.certificates is not None else None)
        problem = self.readout_problem()
        decrease = fit_readout_on(layer, problem, self.ridge, factor=factor)
        self._readout_solved(problem, decrease)
        if theta is not None:
            self.certificates.record(BLOCK, theta=theta, t=1.0, before=before, after=self.value, ridge=self.ridge,
                                     rows=self.rows, precision=self.precision,
                                     direction=lambda: self.model.get_flat() - theta)
        return decrease

    def params_changed(self) -> None:
        """Parameters were changed outside :meth:`step`: recompute ``||theta||^2``."""
        theta = self.model.get_flat()
        self.sq_norm = float(theta @ theta)

    def shift_norm(self, old: float, new: float) -> None:
        """One parameter moved from ``old`` to ``new`` outside :meth:`step`: update ``||theta||^2`` in O(1)."""
        self.sq_norm += new * new - old * old


class Restriction(RestrictionBase, Samples):
    """The training objective of ``model`` on (X, Y) with cached activations.

    Args:
        model: a :class:`~symnet.core.model.Sequential`; trained in place by :meth:`step`.
        X: training inputs ``(N, *input_shape)``.
        Y: targets (N, num_outputs), one-hot for classification.
        ridge: the ridge weight ``lambda`` on ``||theta||^2``.
        dtype: working precision of the cached activations and of the jets,
            ``np.float64`` (default) or ``np.float32``. In float32 the parameters and
            the direction are rounded to float32 for the jets (the model keeps its
            float64 parameters), the outputs and jets are float32, and everything
            summed over samples is float64: the residual, the SSE and the
            polynomial's coefficients (the term kernels accumulate in float64).
            The objective is then the one of the float32 forward pass (about 1e-6
            relative from the float64 one), and a line step is taken only if it
            lowers it by more than :attr:`noise` (relative), the size of float32
            rounding in the coefficients.
    """

    #: Upper bound on the floats held by one chunk's jets (about 400 MB).
    jet_budget = 5e7

    def __init__(self, model, X: np.ndarray, Y: np.ndarray, ridge: float = 0.0, dtype=np.float64) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ModelError(f"Restriction dtype must be float32 or float64, got {self.dtype}")
        #: relative decrease below which a float32 line step is not trusted (0 in float64)
        self.noise = 0.0 if self.dtype == np.float64 else 1e-6
        #: the relative precision its certificates claim (see :mod:`symnet.core.certificates`)
        self.precision = 0.0 if self.dtype == np.float64 else FLOAT32_RTOL
        Samples.__init__(self, model, model.check_input(X).astype(self.dtype, copy=False), Y)
        if self.Y.shape != (len(self.X), model.num_outputs):
            raise ModelError(f"targets must have shape ({len(self.X)}, {model.num_outputs}), got {self.Y.shape}")
        self.ridge = float(ridge)
        self._path: list | None = None
        #: :class:`~symnet.core.certificates.Certificates` that record every line search (None: off).
        self.certificates = None
        #: The rows of the run's training set this loss holds (a mini-batch), None for all of them.
        self.rows: np.ndarray | None = None
        self.refresh()

    # ------------------------------------------------------------------ caches
    def refresh(self) -> None:
        """Recompute every cached activation and the residual exactly (one forward pass)."""
        if not getattr(self, "acts", None):  # the first fill: refuse a cache that cannot fit before building it
            shapes = self.model.shapes
            per_sample = sum(int(np.prod(shapes[li])) for li, layer in enumerate(self.model.layers) if layer.needs_input)
            require_memory(len(self.X) * (per_sample + int(np.prod(shapes[-1]))) * self.dtype.itemsize,
                           f"the cached activations of {len(self.X):,} samples",
                           "train on fewer samples (--samples), in float32, or on a Dask cluster (--workers)")
        self.acts: dict[int, np.ndarray] = {}
        self.scratch.clear()  # what fused ops derived from the old caches
        self.refresh_output_from(0)

    def refresh_output_from(self, li: int) -> None:
        """Recompute the caches from the cached input of layer ``li`` on (after its params changed)."""
        h = self.X if li == 0 else self.acts[li]
        with self.working_params():
            for lj in range(li, len(self.model.layers)):
                layer = self.model.layers[lj]
                if layer.needs_input:
                    self.acts[lj] = np.ascontiguousarray(h)
                h = layer.forward(h)
        self.output = np.ascontiguousarray(h)
        self.residual = self.output.astype(np.float64) - self.Y
        self._sse = sum_squares(self.residual)
        self.params_changed()
        self._path = None

    def working_params(self):
        """A context in which the model's parameters are in the working precision (for forward and jet passes)."""
        return self.model.params_in(self.dtype)

    def working_direction(self, direction: dict[int, dict]) -> dict[int, dict]:
        """A parsed direction in the working precision."""
        if self.dtype == np.float64:
            return direction
        return {li: {k: d if isinstance(d, Coord) else np.asarray(d, dtype=self.dtype) for k, d in parts.items()}
                for li, parts in direction.items()}

    @property
    def sse(self) -> float:
        """Sum of squared errors, kept up to date incrementally by :meth:`step`."""
        return self._sse

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
        direction = self.working_direction(direction)
        with self.working_params():
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
        if not _is_parsed(direction):
            direction = parse_direction(self.model, direction)
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
        self.sq_norm += self._move_params(direction, t)

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
        new = self.output[lo:hi, ch].astype(np.float64) - self.Y[lo:hi, ch]
        self._sse += float(np.sum(new * new) - np.sum(old * old))
        self.residual[lo:hi, ch] = new

    # ------------------------------------------------------------------ the readout
    def readout_problem(self) -> LocalReadout:
        li, layer = self._readout_layer()
        return LocalReadout(self.acts[li], self.Y, bias=layer.bias)

    def _readout_solved(self, problem: LocalReadout, decrease: float) -> None:
        if decrease > 0.0:
            self.output[...] = problem.outputs()
            self.output_changed()
            self.params_changed()

    # ------------------------------------------------------------------ caches changed from outside
    def output_changed(self) -> None:
        """The outputs were changed in place (a fused kernel): recompute the residual and the SSE from them."""
        np.subtract(self.output, self.Y, out=self.residual)
        self._sse = sum_squares(self.residual)

    def residual_changed(self) -> None:
        """The residual was changed in place (a fused kernel): recompute the outputs and the SSE from it."""
        np.add(self.residual, self.Y, out=self.output)
        self._sse = sum_squares(self.residual)

    def layer_input(self, li: int, rows=slice(None)) -> np.ndarray:
        """The input of layer ``li`` on the selected rows, from the caches.

        The jet rules need the inputs of Linear, Conv2d and Poly layers, which
        the loss caches; the backward rules of AvgPool2d and Flatten read only
        the input's shape, so a broadcast stand-in of that shape serves. Any
        other layer's input is recomputed from the nearest cached activation
        below it.
        """
        if li in self.acts:
            return self.acts[li][rows]
        model = self.model
        n = len(range(*rows.indices(len(self.X)))) if isinstance(rows, slice) else len(rows)
        layer = model.layers[li]
        if layer.kind in ("pool", "flatten"):
            return np.broadcast_to(np.zeros(1, dtype=self.dtype), (n,) + tuple(model.shapes[li]))
        j = max([k for k in self.acts if k < li], default=None)
        h = self.X[rows] if j is None else self.acts[j][rows]
        with self.working_params():
            for k in range(0 if j is None else j, li):
                h = model.layers[k].forward(h)
        return h


def _add_jet(cache: np.ndarray, jet: Jet, t: float) -> None:
    """cache[:, channels] += sum_k jet_k t^k, in place (cache is C-contiguous)."""
    D = jet.coeffs
    K, N, S = D.shape[:3]
    C = cache.shape[1]
    channels = np.arange(C) if jet.channels is None else jet.channels
    add_polynomial_step(cache.reshape(N, C, -1), channels, np.ascontiguousarray(D).reshape(K, N, S, -1), float(t))


#: The class's name before the house redesign (kept so that code written against it still runs).
ExactLoss = Restriction
