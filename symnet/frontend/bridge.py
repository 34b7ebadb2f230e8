"""The network <-> polynomial bridge: a one-hidden-layer network as a linear model over monomials.

A network ``f(x) = W2 q(p(A x + c)) + b2``, where ``A x + c`` is its first
layer (``Linear``, optionally after ``Flatten``, or ``Conv2d``), ``p(z) =
sum_j a_j z^j`` its ``Poly`` activation and ``q`` any chain of ``AvgPool2d``
and ``Flatten`` (linear, without parameters) before the last ``Linear``, is a
polynomial of degree ``J = deg p`` in the inputs. Writing ``M = W2 q`` as a
``(K, U)`` read-out over the ``U`` hidden units and ``z_u = A_u . x + c_u``,

    f_k(x) = b2_k + sum_j a_j sum_u M[k, u] (A_u . x + c_u)^j
           = sum_m T[m, k] x^m,

a linear model over monomials ``x^m`` -- the model that
:class:`symnet.core.model.polyreg.PolyRegModel` fits in closed form. This module
computes ``T`` on the same monomial table (:func:`equivalent_weights`), so
that a trained network and a polynomial regression can be compared
coefficient by coefficient (:func:`r2_by_degree`), and fits the activation's
coefficients ``a_j`` to a regression's coefficients with the network's first
and last layers fixed (:func:`fit_activation_coefficients`).
:func:`bridge_report` does all three and prints a table, degree by degree.

Expansion. With ``m`` a multiset of ``d`` input positions (the factors of
``x^m``; repeats allowed), the binomial and multinomial theorems give

    coef. of x^m in (A_u . x + c_u)^j = C(j, d) c_u^(j-d) * mult(m) * prod_{i in m} A[u, i],

for ``d <= j``, where ``mult(m) = d! / prod_i n_i!`` counts the orderings of
``m`` (``n_i`` is how often position ``i`` repeats): ``x_i x_l`` (``i != l``)
in ``(w.x)^2`` gets ``2 w_i w_l``, ``x_i^2`` gets ``w_i^2``, ``x_i^2 x_l`` in
``(w.x)^3`` gets ``3 w_i^2 w_l``. Hence ``T = O + sum_j a_j B_j`` with

    B_j[m, k] = C(j, d) mult(m) sum_u M[k, u] c_u^(j-d) prod_{i in m} A[u, i],

and ``O`` holding ``b2`` on the bias row. ``B_j`` reaches every degree
``d <= j``, not only ``j``: the activation's degree-``j`` term spreads over
lower degrees through the first layer's bias. The products over factors are
taken for all monomials of one degree at once (sparse rows of ``A^T`` for a
convolution, dense for a ``Linear``), the sum over units is one matrix product
per degree; no loop over monomials or samples.

Monomials outside the table. The network produces every multiset of up to
``J`` positions inside one unit's receptive field: all products for a
``Linear``, those fitting a ``kh x kw`` box for a ``Conv2d``. A table of
lower degree, or a window smaller than the kernel, leaves some out; the
linear model over the table then cannot represent the network.
:func:`equivalent_weights` computes the coefficients the table lacks (on the
network's own table, :func:`natural_table`) and, by default, raises
:class:`~symnet.core.errors.ModelError` naming how many there are and their norm;
with ``allow_dropped=True`` it returns the table's coefficients (still exact
for every monomial in the table) with ``dropped_norm`` and
``dropped_monomials`` set.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.model.polyreg import features
    >>> net = models.get("mlp", input_dim=3, hidden=2, num_classes=2, seed=0)
    >>> eq = equivalent_weights(net)            # the network's own table: 1 + 3 + 6 monomials
    >>> eq.weight.shape
    (10, 2)
    >>> X = np.random.default_rng(0).random((5, 3))
    >>> bool(np.allclose(features(X, eq.table) @ eq.weight, net.forward(X)))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from symnet.core.errors import ModelError
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly
from symnet.core.model.polyreg import monomial_table

from symnet.frontend.tables import render

#: Hidden units times monomials held at once while taking products (float64 elements, ~32 MB).
_BLOCK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- the network's parts
class OneHiddenLayer(NamedTuple):
    """A network ``f(x) = M p(A x + c) + b2`` taken apart.

    Attributes:
        weights_t: ``A^T``, shape ``(D, U)``: input position -> hidden unit
            (scipy CSR for a convolution, dense ndarray for a ``Linear``).
        offsets: ``c``, shape ``(U,)``, the first layer's bias per hidden unit.
        readout: ``M``, shape ``(K, U)``: the last ``Linear`` composed with any
            pooling and flattening between the activation and it.
        out_bias: ``b2``, shape ``(K,)``.
        activation: ``a``, shape ``(J + 1,)``, lowest degree first.
        window: the smallest window holding every monomial the network
            produces (``None``: any product; ``(kh, kw)`` for a convolution).
        input_shape: shape of one sample.
    """

    weights_t: Any
    offsets: np.ndarray
    readout: np.ndarray
    out_bias: np.ndarray
    activation: np.ndarray
    window: tuple[int, int] | None
    input_shape: tuple[int, ...]


_SUPPORTED = ("[Flatten] -> Linear -> Poly -> Linear, or "
              "Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear")


def one_hidden_layer(model) -> OneHiddenLayer:
    """Take a one-hidden-layer polynomial network apart into ``A``, ``c``, ``M``, ``b2`` and ``a``.

    Supported layer chains: ``[Flatten] -> Linear -> Poly -> Linear`` and
    ``Conv2d -> Poly -> [AvgPool2d ...] -> Flatten -> Linear`` (in general:
    an optional leading ``Flatten``, one ``Linear`` or ``Conv2d``, one
    ``Poly``, any ``AvgPool2d``/``Flatten`` layers, one final ``Linear``).

    Raises:
        ModelError: the model is not a :class:`symnet.Sequential` of that form.

    Example:
        >>> from symnet.core.model import presets as models
        >>> parts = one_hidden_layer(models.get("mlp", input_dim=3, hidden=2, num_classes=4))
        >>> parts.weights_t.shape, parts.readout.shape, parts.activation.tolist()
        ((3, 2), (4, 2), [0.0, 0.0, 1.0])
    """
    layers = getattr(model, "layers", None)
    shapes = getattr(model, "shapes", None)
    if layers is None or shapes is None:
        raise ModelError(f"the bridge maps a symnet.Sequential network to monomial weights, got "
                         f"{type(model).__name__}; a PolyRegModel already is a linear model over monomials "
                         "(use its .weight)")
    chain = " -> ".join(type(layer).__name__ for layer in layers)
    i = 1 if layers and isinstance(layers[0], Flatten) else 0
    ok = (len(layers) >= i + 3 and isinstance(layers[i], (Linear, Conv2d)) and isinstance(layers[i + 1], Poly)
          and isinstance(layers[-1], Linear)
          and all(isinstance(layer, (AvgPool2d, Flatten)) for layer in layers[i + 2:-1]))
    if not ok:
        raise ModelError(f"the bridge handles networks with one polynomial hidden layer ({_SUPPORTED}); got "
                         f"{chain}. Deeper networks (e.g. poly2) or networks without a Poly activation are not "
                         "one linear model over monomials of this form; compare a one-hidden-layer model instead")
    first, act, last = layers[i], layers[i + 1], layers[-1]
    input_shape = tuple(model.input_shape)
    D = int(np.prod(input_shape))
    if isinstance(first, Linear):
        weights_t: Any = np.ascontiguousarray(first.params["weight"].T, dtype=np.float64)  # (D, U)
        offsets = first.params["bias"].astype(np.float64) if first.bias else np.zeros(first.out_features)
        window = None
    else:
        weights_t, offsets = _conv_affine(first, shapes[i])
        window = (first.kh, first.kw)
    # The read-out over hidden units: push W2 back through pooling and flattening (their adjoints).
    W2 = last.params["weight"].astype(np.float64)
    K = W2.shape[0]
    readout = W2
    for li in range(len(layers) - 2, i + 1, -1):
        readout, _ = layers[li].backward(np.zeros((K,) + tuple(shapes[li])), readout)
    readout = np.ascontiguousarray(readout.reshape(K, -1))
    out_bias = last.params["bias"].astype(np.float64) if last.bias else np.zeros(K)
    if weights_t.shape != (D, readout.shape[1]) or offsets.shape != (readout.shape[1],):
        raise ModelError(f"internal shape mismatch taking {chain} apart: A^T {weights_t.shape}, c {offsets.shape}, "
                         f"M {readout.shape}")
    return OneHiddenLayer(weights_t, np.asarray(offsets, dtype=np.float64), readout, out_bias,
                          act.coeffs.astype(np.float64), window, input_shape)


def _conv_affine(conv: Conv2d, in_shape: Sequence[int]) -> tuple[sp.csr_matrix, np.ndarray]:
    """``A^T`` (D, U) as a sparse matrix and ``c`` (U,) of a convolution, by index arithmetic.

    Unit ``(o, y, x)`` reads input ``(ch, y + i - top, x + j - left)`` with
    weight ``w[o, ch, i, j]`` for every tap inside the (unpadded) image.
    """
    C, H, W = (int(s) for s in in_shape)
    (top, bottom), (left, right) = conv.pads
    Co, kh, kw = conv.out_channels, conv.kh, conv.kw
    Ho, Wo = H + top + bottom - kh + 1, W + left + right - kw + 1
    o, y, x, ch, i, j = np.meshgrid(np.arange(Co), np.arange(Ho), np.arange(Wo), np.arange(C), np.arange(kh),
                                    np.arange(kw), indexing="ij", sparse=True)
    row, col = y + i - top, x + j - left
    inside = np.broadcast_to((row >= 0) & (row < H) & (col >= 0) & (col < W), (Co, Ho, Wo, C, kh, kw))
    unit = np.broadcast_to((o * Ho + y) * Wo + x, inside.shape)[inside]
    pos = np.broadcast_to((ch * H + row) * W + col, inside.shape)[inside]
    val = np.broadcast_to(conv.params["weight"][:, None, None], inside.shape)[inside].astype(np.float64)
    A_t = sp.csr_matrix((val, (pos, unit)), shape=(C * H * W, Co * Ho * Wo))
    A_t.eliminate_zeros()
    bias = conv.params["bias"] if conv.bias else np.zeros(Co)
    return A_t, np.repeat(np.asarray(bias, dtype=np.float64), Ho * Wo)


# --------------------------------------------------------------------------- monomial tables
def natural_table(model) -> np.ndarray:
    """The monomial table of every monomial the network can produce (the layout of ``monomial_table``).

    Degree ``J`` (the activation's degree); window ``None`` for a ``Linear``
    first layer, the kernel size for a ``Conv2d``.

    Example:
        >>> from symnet.core.model import presets as models
        >>> natural_table(models.get("mlp", input_dim=3, hidden=2)).shape  # 1 + 3 + 6
        (10, 2)
    """
    return _resolve_table(None, one_hidden_layer(model))


def table_degrees(table: np.ndarray) -> np.ndarray:
    """Degree of each row of a monomial table (its number of non-negative entries)."""
    return np.count_nonzero(np.asarray(table) >= 0, axis=1)


def multinomial_counts(table: np.ndarray) -> np.ndarray:
    """``d! / prod_i n_i!`` for each row: the number of orderings of its factors.

    Rows must be sorted (``-1`` padding last), as ``monomial_table`` makes them.

    Example:
        >>> multinomial_counts(np.array([[-1, -1, -1], [0, -1, -1], [0, 0, -1], [0, 1, -1], [0, 0, 1], [2, 2, 2]]))
        array([1., 1., 1., 2., 3., 1.])
    """
    table = np.asarray(table)
    deg = table_degrees(table)
    # n_i! = prod over a run of equal factors of (1, 2, ..., n_i): multiply (position in run + 1).
    denom = np.ones(len(table))
    run = np.zeros(len(table))
    for t in range(1, table.shape[1]):  # over the degree, a handful of columns
        same = (table[:, t] >= 0) & (table[:, t] == table[:, t - 1])
        run = np.where(same, run + 1.0, 0.0)
        denom *= run + 1.0
    fact = np.array([math.factorial(int(d)) for d in range(int(deg.max(initial=0)) + 1)], dtype=np.float64)
    return fact[deg] / denom


def _row_keys(table: np.ndarray, size: int) -> np.ndarray:
    """One int64 per monomial (independent of the table's width): ``sum_t (idx_t + 1) (size + 1)^t``."""
    table = np.asarray(table, dtype=np.int64)
    if (size + 1) ** table.shape[1] >= 2 ** 62:
        raise ModelError(f"monomials of degree {table.shape[1]} over {size} inputs are too many to index; "
                         "lower the degree")
    base = np.int64(size + 1) ** np.arange(table.shape[1], dtype=np.int64)
    return (table + 1) @ base


def _check_table(table: np.ndarray, size: int) -> np.ndarray:
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] < 1 or not np.issubdtype(table.dtype, np.integer):
        raise ModelError(f"a monomial table is an int array (p, degree) as monomial_table makes it, got "
                         f"{table.dtype} {table.shape}")
    table = table.astype(np.int64, copy=False)
    if table.size and (table.min() < -1 or table.max() >= size):
        raise ModelError(f"monomial table entries must lie in -1..{size - 1} for inputs of {size} values, found "
                         f"{int(table.min())}..{int(table.max())}; build the table for this model's input shape")
    valid = table >= 0
    sorted_ok = np.all((table[:, 1:] >= table[:, :-1]) | ~valid[:, 1:]) and np.all(valid[:, :-1] | ~valid[:, 1:])
    if not sorted_ok:
        raise ModelError("monomial table rows must list their factors sorted (non-decreasing) with -1 padding "
                         "last (as monomial_table makes them)")
    if len(np.unique(_row_keys(table, size))) != len(table):
        raise ModelError("the monomial table lists a monomial twice; each monomial must appear once")
    return table


def _resolve_table(table, parts: OneHiddenLayer) -> np.ndarray:
    if table is None:
        return monomial_table(parts.input_shape, max(len(parts.activation) - 1, 1), parts.window)
    inner = getattr(table, "table", None)
    if inner is not None:
        if tuple(getattr(table, "input_shape", parts.input_shape)) != parts.input_shape:
            raise ModelError(f"the polynomial-regression model is built for inputs {tuple(table.input_shape)} but "
                             f"the network takes {parts.input_shape}; fit both on the same data")
        table = inner
    return _check_table(table, int(np.prod(parts.input_shape)))


# --------------------------------------------------------------------------- the expansion
def _activation_bases(parts: OneHiddenLayer, table: np.ndarray) -> np.ndarray:
    """``B_j`` for j = 0..J on the rows of ``table``: shape ``(J + 1, p, K)`` (see the module docstring)."""
    A_t, c, M = parts.weights_t, parts.offsets, parts.readout
    J = len(parts.activation) - 1
    K, U = M.shape
    deg = table_degrees(table)
    mult = multinomial_counts(table)
    out = np.zeros((J + 1, len(table), K))
    for d in range(0, min(J, table.shape[1]) + 1):  # over monomial degree
        rows = np.flatnonzero(deg == d)
        if not len(rows):
            continue
        js = np.arange(d, J + 1)
        # (U, K * len(js)): column block for j holds C(j, d) c^(j-d) M^T.
        scale = np.array([math.comb(int(j), d) for j in js], dtype=np.float64)
        R = (scale[None, :, None] * c[:, None, None] ** (js - d)[None, :, None] * M.T[:, None, :]).reshape(U, -1)
        step = max(1, _BLOCK_ELEMENTS // max(U, 1))
        for s in range(0, len(rows), step):
            r = rows[s:s + step]
            if d == 0:
                prod = R.sum(axis=0)[None, :].repeat(len(r), axis=0)
            else:
                cols = table[r, :d]
                P = A_t[cols[:, 0]]
                for t in range(1, d):  # over the factors of a monomial
                    P = P.multiply(A_t[cols[:, t]]) if sp.issparse(P) else P * A_t[cols[:, t]]
                prod = np.asarray(P @ R)
            out[d:, r, :] = (mult[r][:, None] * prod).reshape(len(r), len(js), K).transpose(1, 0, 2)
    return out


class EquivalentWeights(NamedTuple):
    """A network's coefficients over a monomial table.

    Attributes:
        weight: ``T``, shape ``(p, K)``: ``features(X, table) @ weight`` equals
            the network's outputs when nothing is dropped.
        per_activation: ``B_j``, shape ``(J + 1, p, K)``: the contribution of
            activation coefficient ``a_j`` per unit of ``a_j``.
        offset: shape ``(p, K)``: the last layer's bias on the bias row.
            ``weight == offset + tensordot(activation, per_activation, 1)``.
        activation: ``a``, shape ``(J + 1,)``.
        table: the monomial table, ``(p, degree)``.
        degrees: degree of each row, ``(p,)``.
        dropped_norm: Frobenius norm (over monomials and classes) of the
            network's coefficients on monomials the table lacks; 0 if none.
        dropped_monomials: how many such monomials have a non-zero coefficient.
    """

    weight: np.ndarray
    per_activation: np.ndarray
    offset: np.ndarray
    activation: np.ndarray
    table: np.ndarray
    degrees: np.ndarray
    dropped_norm: float
    dropped_monomials: int


def equivalent_weights(model, table=None, *, allow_dropped: bool = False) -> EquivalentWeights:
    """The network's outputs as coefficients over the monomials of ``table``.

    Args:
        model: a trained :class:`symnet.Sequential` with one polynomial hidden
            layer (see :func:`one_hidden_layer` for the supported chains).
        table: a monomial table (``monomial_table`` layout: bias row, sorted
            factors, ``-1`` padding), a :class:`symnet.core.model.polyreg.PolyRegModel`
            (its table), or ``None`` for the network's own table
            (:func:`natural_table`).
        allow_dropped: when the network has monomials the table lacks (table
            degree below the activation's, or a window smaller than the
            kernel), return the table's coefficients anyway, with the dropped
            part's norm in ``dropped_norm``; by default raise.

    Returns:
        :class:`EquivalentWeights`; ``weight`` is ``(p, K)`` in the same row
        order as the table, directly comparable to ``PolyRegModel.weight``.
        Monomials of the table the network cannot produce get 0.

    Raises:
        ModelError: unsupported network, malformed table, or (unless
            ``allow_dropped``) monomials of the network outside the table.

    Example:
        >>> import numpy as np
        >>> from symnet.core.layers import Linear, Poly
        >>> from symnet.core.model import Sequential
        >>> net = Sequential(Linear(2, 1), Poly([0.0, 0.0, 1.0]), Linear(1, 1), input_shape=(2,), seed=None)
        >>> net.layers[0].params["weight"][...] = [[1.0, 2.0]]; net.layers[2].params["weight"][...] = 1.0
        >>> eq = equivalent_weights(net)   # (x0 + 2 x1)^2 = x0^2 + 4 x0 x1 + 4 x1^2
        >>> eq.table[3:].tolist(), eq.weight[3:, 0].tolist()
        ([[0, 0], [0, 1], [1, 1]], [1.0, 4.0, 4.0])
    """
    parts = one_hidden_layer(model)
    table = _resolve_table(table, parts)
    size = int(np.prod(parts.input_shape))
    B = _activation_bases(parts, table)
    deg = table_degrees(table)
    offset = np.zeros((len(table), len(parts.out_bias)))
    offset[deg == 0] = parts.out_bias
    weight = offset + np.tensordot(parts.activation, B, axes=1)
    # What the table lacks: the network's own monomials not in it (computed only there).
    natural = _resolve_table(None, parts)
    missing = ~np.isin(_row_keys(natural, size), _row_keys(table, size))
    dropped_norm, dropped_count = 0.0, 0
    if missing.any():
        rows = natural[missing]
        lost = np.tensordot(parts.activation, _activation_bases(parts, rows), axes=1)
        lost[table_degrees(rows) == 0] += parts.out_bias
        dropped_norm = float(np.linalg.norm(lost))
        dropped_count = int(np.count_nonzero(np.any(lost != 0.0, axis=1)))
    if dropped_count and not allow_dropped:
        lost_deg = sorted(set(table_degrees(rows)[np.any(lost != 0.0, axis=1)].tolist()))
        raise ModelError(f"the network has {dropped_count:,} monomial(s) of degree {lost_deg} outside the table "
                         f"(norm of their coefficients {dropped_norm:.4g}, of all coefficients "
                         f"{float(np.linalg.norm(weight)):.4g}); use a table of degree >= {len(parts.activation) - 1} "
                         f"and window {parts.window or 'None'} or larger, or pass allow_dropped=True to compare "
                         "on the table's monomials only")
    return EquivalentWeights(weight, B, offset, parts.activation.copy(), table, deg, dropped_norm, dropped_count)


# --------------------------------------------------------------------------- comparing weight sets
class DegreeR2(NamedTuple):
    """Agreement of two weight sets on the monomials of one degree (all classes pooled).

    Attributes:
        degree: 0 (bias), 1, 2 ...
        monomials: number of table rows of this degree (the entries compared
            are ``monomials * K``).
        r2: ``1 - ||T_poly - T_net||^2 / ||T_poly - mean(T_poly)||^2``, the
            mean taken over every entry of this degree (all monomials, all
            classes): how much of the spread of the regression's coefficients
            the network's coefficients explain, used as predictions with no
            fitted slope or intercept. 1 when equal; can be negative.
        r2_uncentred: ``1 - ||T_poly - T_net||^2 / ||T_poly||^2`` (no mean removed).
        pearson_r2: squared Pearson correlation of the two sets of entries
            (scale- and shift-free: 1 when one is an affine image of the other).
        norm_network: ``||T_net||`` over this degree.
        norm_polyreg: ``||T_poly||`` over this degree.
    """

    degree: int
    monomials: int
    r2: float
    r2_uncentred: float
    pearson_r2: float
    norm_network: float
    norm_polyreg: float


def _ratio_r2(sse: float, total: float) -> float:
    if total > 0.0:
        return 1.0 - sse / total
    return 1.0 if sse == 0.0 else float("nan")


def _degree_r2(net: np.ndarray, poly: np.ndarray, degree: int, monomials: int) -> DegreeR2:
    a, b = net.ravel(), poly.ravel()
    sse = float(np.sum((b - a) ** 2))
    ss_tot = float(np.sum((b - b.mean()) ** 2)) if b.size else 0.0
    da, db = a - (a.mean() if a.size else 0.0), b - (b.mean() if b.size else 0.0)
    va, vb = float(da @ da), float(db @ db)
    if va > 0.0 and vb > 0.0:
        pearson = float(da @ db) ** 2 / (va * vb)
    else:
        pearson = 1.0 if sse == 0.0 and a.size else float("nan")
    return DegreeR2(int(degree), int(monomials), _ratio_r2(sse, ss_tot), _ratio_r2(sse, float(b @ b)), pearson,
                    float(np.linalg.norm(a)), float(np.linalg.norm(b)))


def r2_by_degree(T_network: np.ndarray, T_polyreg: np.ndarray, degrees, *,
                 center_classes: bool = False) -> list[DegreeR2]:
    """R^2 between two weight sets over the same monomials, degree by degree.

    ``T_polyreg`` is the reference and ``T_network`` the prediction. For each
    degree ``d`` (0 = bias, 1, 2 ...) the entries of every monomial of degree
    ``d`` and every class are pooled, and

    * ``r2 = 1 - sum (T_poly - T_net)^2 / sum (T_poly - mean(T_poly))^2``
      (coefficient of determination of the network's coefficients taken as
      they are, mean over the pooled entries of that degree);
    * ``r2_uncentred = 1 - sum (T_poly - T_net)^2 / sum T_poly^2``;
    * ``pearson_r2`` = squared Pearson correlation of the pooled entries.

    A zero denominator gives 1 when the two sets are equal and ``nan``
    otherwise (e.g. degree 0 with one class).

    With ``center_classes`` each monomial's coefficients are first centred
    over the classes (``T - T.mean(axis=1)`` for both sets). The predicted
    class, the argmax over outputs, does not change when the same polynomial
    is added to every output, so that common part is arbitrary: least squares
    onto one-hot targets makes the class scores sum to 1 (the regression's
    coefficients sum over classes to 1 on the bias, 0 elsewhere), while a
    teacher's real-valued scores have any common part. Centring compares
    what decides the class.

    Args:
        T_network: ``(p, K)`` coefficients of the network.
        T_polyreg: ``(p, K)`` coefficients of the regression.
        degrees: the degree of each row, ``(p,)`` (``PolyRegModel.feature_degrees()``),
            or the monomial table itself ``(p, degree)``.
        center_classes: remove each monomial's mean over the classes from
            both sets first (see above).

    Returns:
        One :class:`DegreeR2` per degree present, lowest first.

    Example:
        >>> T_net = np.array([[0.0], [1.0], [2.0], [3.0]]); T_poly = np.array([[0.0], [1.0], [2.0], [4.0]])
        >>> rows = r2_by_degree(T_net, T_poly, [0, 1, 1, 1])
        >>> round(rows[1].r2, 6), round(rows[1].pearson_r2, 6)   # 1 - 1/(42/9); 9 / (2 * 14/3)
        (0.785714, 0.964286)
    """
    A = np.asarray(T_network, dtype=np.float64)
    B = np.asarray(T_polyreg, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if B.ndim == 1:
        B = B[:, None]
    if A.shape != B.shape:
        raise ModelError(f"the two weight sets must have the same shape (monomials, classes), got {A.shape} and "
                         f"{B.shape}; compute both on the same monomial table")
    if center_classes:
        A = A - A.mean(axis=1, keepdims=True)
        B = B - B.mean(axis=1, keepdims=True)
    deg = np.asarray(degrees)
    deg = table_degrees(deg) if deg.ndim == 2 else deg.astype(np.int64)
    if deg.shape != (len(A),):
        raise ModelError(f"degrees must give one degree per monomial ({len(A)}), got shape {deg.shape}")
    return [_degree_r2(A[deg == d], B[deg == d], int(d), int(np.count_nonzero(deg == d))) for d in np.unique(deg)]


#: Columns of :func:`format_r2`.
R2_COLUMNS = (("degree", "degree", "{}"), ("monomials", "monomials", "{}"), ("r2", "R^2", "{:.6f}"),
              ("r2_uncentred", "R^2 uncent", "{:.6f}"), ("pearson_r2", "Pearson", "{:.6f}"),
              ("norm_network", "|T net|", "{:.4f}"), ("norm_polyreg", "|T poly|", "{:.4f}"))


def format_r2(rows: Sequence[DegreeR2], title: str = "") -> str:
    """A readable table of :func:`r2_by_degree` rows.

    Example:
        >>> print(format_r2(r2_by_degree(np.ones((3, 1)), np.ones((3, 1)), [0, 1, 1])))
        degree  monomials       R^2  R^2 uncent   Pearson  |T net|  |T poly|
        ------  ---------  --------  ----------  --------  -------  --------
             0          1  1.000000    1.000000  1.000000   1.0000    1.0000
             1          2  1.000000    1.000000  1.000000   1.4142    1.4142
    """
    table = render([r._asdict() for r in rows], R2_COLUMNS)
    return f"{title}\n{table}" if title else table


# --------------------------------------------------------------------------- posterior activation fit
class ActivationFit(NamedTuple):
    """Activation coefficients fitted to a regression's weights, first and last layers fixed.

    Attributes:
        coefficients: fitted ``a``, ``(J + 1,)``.
        original: the network's ``a``.
        identified: per coefficient, whether the table's monomials determine
            it (see :func:`fit_activation_coefficients`; when False the
            coefficient is kept at its original value).
        method: ``"sequential"`` or ``"joint"``.
        weight: the network's ``T`` with the fitted coefficients, ``(p, K)``.
        before: :func:`r2_by_degree` of the original ``T`` against the regression.
        after: the same for the fitted ``T``.
    """

    coefficients: np.ndarray
    original: np.ndarray
    identified: np.ndarray
    method: str
    weight: np.ndarray
    before: list
    after: list


def fit_activation_coefficients(model, T_polyreg, table=None, *, method: str = "sequential",
                                equivalent: EquivalentWeights | None = None,
                                center_classes: bool = False) -> ActivationFit:
    """Fit the activation's coefficients ``a_j`` so the network's monomial weights best match ``T_polyreg``.

    The first layer (``A``, ``c``) and the read-out (``M``, ``b2``) stay fixed,
    so the network's weights are linear in ``a``: ``T(a) = O + sum_j a_j B_j``
    (:class:`EquivalentWeights`). ``B_j`` reaches every degree ``d <= j``
    (through the first layer's bias ``c``), so the system is triangular: only
    ``a_J`` reaches degree ``J``, ``a_{J-1}`` and ``a_J`` reach degree
    ``J - 1``, and so on.

    * ``method="sequential"`` (default): one 1-D least-squares regression per
      degree, from the highest down. On the monomials of degree ``d``,
      ``a_d = <B_d, R_d> / <B_d, B_d>`` with the residual
      ``R_d = T_poly - O - sum_{j > d} a_j B_j`` (the higher coefficients
      already fitted). Each ``a_d`` is read off from the monomials where it
      is the leading coefficient, so every degree has its own say; when
      ``T_poly`` is exactly a network's ``T(a*)`` this recovers ``a*``.
    * ``method="joint"``: one least-squares problem over all monomials at
      once, ``min_a ||T_poly - T(a)||^2``. It minimises the total misfit,
      but the most numerous degree dominates (for ``D`` inputs there are
      ``D (D + 1) / 2`` monomials of degree 2 against ``D`` of degree 1).

    A coefficient the table cannot determine is not identified and keeps its
    original value: for ``"sequential"``, when the table has no monomial of
    its degree or ``B_j`` vanishes on them; for ``"joint"``, when ``B_j``
    vanishes on the whole table (with a first-layer bias, ``a_j`` still
    reaches lower degrees, so a table of degree below ``j`` may determine it).

    Args:
        model: the network (see :func:`one_hidden_layer`).
        T_polyreg: ``(p, K)`` regression weights on ``table``.
        table: the monomial table of ``T_polyreg``, or a ``PolyRegModel``;
            ``None`` takes it from ``equivalent`` or uses the network's own.
        method: ``"sequential"`` or ``"joint"``.
        equivalent: reuse a computed :func:`equivalent_weights` on the same table.
        center_classes: fit and compare coefficients centred over the
            classes (each monomial's mean over the classes removed from
            ``T_poly`` and every ``B_j``; see :func:`r2_by_degree`), so a
            part common to all classes, which never changes the predicted
            class, is ignored.

    Returns:
        :class:`ActivationFit`, with R^2 per degree before and after.

    Example:
        >>> from symnet.core.model import presets as models
        >>> net = models.get("mlp", input_dim=3, hidden=2, num_classes=2, activation=[0.5, -1.0, 2.0], seed=0)
        >>> net.layers[0].params["bias"][...] = [0.3, -0.2]
        >>> target = models.get("mlp", input_dim=3, hidden=2, num_classes=2, activation=[0.1, 0.7, -1.5], seed=0)
        >>> target.layers[0].params["bias"][...] = [0.3, -0.2]
        >>> fit = fit_activation_coefficients(net, equivalent_weights(target).weight)
        >>> np.round(fit.coefficients, 8).tolist()
        [0.1, 0.7, -1.5]
    """
    if method not in ("sequential", "joint"):
        raise ModelError(f"method must be 'sequential' or 'joint', got {method!r}")
    if equivalent is None:
        equivalent = equivalent_weights(model, table, allow_dropped=True)
    elif table is not None:
        parts = one_hidden_layer(model)
        given = _resolve_table(table, parts)
        if given.shape != equivalent.table.shape or not np.array_equal(given, equivalent.table):
            raise ModelError("the table given differs from the one `equivalent` was computed on; pass one of them")
    B, O, deg = equivalent.per_activation, equivalent.offset, equivalent.degrees
    T = np.asarray(T_polyreg, dtype=np.float64)
    if T.ndim == 1:
        T = T[:, None]
    if T.shape != O.shape:
        raise ModelError(f"T_polyreg has shape {T.shape} but the table has {O.shape[0]} monomials and the network "
                         f"{O.shape[1]} outputs; pass the regression's weights on the same table")
    a0 = equivalent.activation
    J = len(a0) - 1
    a = a0.copy()
    B_all, O_all = B, O
    if center_classes:  # centring over classes is linear: centre the target and every basis alike
        B = B - B.mean(axis=2, keepdims=True)
        O = O - O.mean(axis=1, keepdims=True)
        T = T - T.mean(axis=1, keepdims=True)
    scale = float(np.sum(B * B))
    tiny = 1e-24 * scale if scale > 0 else 0.0
    identified = np.zeros(J + 1, dtype=bool)
    if method == "sequential":
        resid = T - O
        for d in range(J, -1, -1):  # highest degree first: a_d leads on degree d
            rows = deg == d
            b = B[d][rows]
            bb = float(np.sum(b * b))
            if rows.any() and bb > tiny:
                a[d] = float(np.sum(b * resid[rows])) / bb
                identified[d] = True
            resid = resid - a[d] * B[d]
    else:
        cols = B.reshape(J + 1, -1).T  # (p * K, J + 1)
        norms = np.sum(cols * cols, axis=0)
        identified = norms > tiny
        # Unidentified coefficients keep their value; their part moves to the target's side.
        rhs = (T - O).ravel() - cols[:, ~identified] @ a0[~identified]
        if identified.any():
            a[identified] = np.linalg.lstsq(cols[:, identified], rhs, rcond=None)[0]
    fitted = O_all + np.tensordot(a, B_all, axes=1)
    return ActivationFit(a, a0.copy(), identified, method, fitted,
                         r2_by_degree(equivalent.weight, T, deg, center_classes=center_classes),
                         r2_by_degree(fitted, T, deg, center_classes=center_classes))


# --------------------------------------------------------------------------- report
@dataclass
class BridgeRow:
    """One degree of a :class:`BridgeReport`."""

    degree: int
    monomials: int
    r2: float
    pearson_r2: float
    r2_fitted: float
    a_original: float | None
    a_fitted: float | None
    identified: bool | None


@dataclass
class BridgeReport:
    """A network against a polynomial regression, degree by degree.

    ``rows[d]`` holds the number of monomials of degree ``d``, the R^2 of the
    network's coefficients against the regression's (:func:`r2_by_degree`),
    the R^2 after refitting the activation (:func:`fit_activation_coefficients`),
    and the original and fitted activation coefficient ``a_d``. ``str(report)``
    is a readable table.
    """

    rows: list[BridgeRow]
    method: str
    dropped_norm: float
    dropped_monomials: int
    overall_r2: float
    overall_r2_fitted: float
    title: str = ""
    extra: dict = field(default_factory=dict)

    def as_dicts(self) -> list[dict]:
        """The rows as plain dicts (for JSON or pandas)."""
        return [dict(vars(r)) for r in self.rows]

    #: Columns of :meth:`format`.
    COLUMNS = (("degree", "degree", "{}"), ("monomials", "monomials", "{}"), ("r2", "R^2", "{:.6f}"),
               ("pearson_r2", "Pearson", "{:.6f}"), ("r2_fitted", "R^2 fit", "{:.6f}"),
               ("a_original", "a orig", "{:.4f}"), ("a_fitted", "a fit", "{:.4f}"), ("note", "", "{}"))

    def format(self) -> str:
        rows = [dict(vars(r), note="" if r.identified in (None, True) else "(not identified)") for r in self.rows]
        how = f"activation fit: {self.method}" + (", coefficients centred over classes" if
                                                  self.extra.get("center_classes") else "")
        rows.append({"degree": "all", "monomials": sum(r.monomials for r in self.rows), "r2": self.overall_r2,
                     "r2_fitted": self.overall_r2_fitted, "note": f"({how})"})
        align = ["r"] * 7 + ["l"]
        lines = [self.title] if self.title else []
        lines.append(render(rows, self.COLUMNS, align=align))
        if self.dropped_monomials:
            lines.append(f"network monomials outside the table: {self.dropped_monomials:,} "
                         f"(norm {self.dropped_norm:.4g}); R^2 covers the table's monomials only")
        return "\n".join(lines)

    __str__ = format


def bridge_report(model, polyreg_model, *, method: str = "sequential", title: str = "",
                  center_classes: bool = False) -> BridgeReport:
    """Compare a network with a fitted polynomial regression on the regression's monomials.

    Args:
        model: the network (see :func:`one_hidden_layer`).
        polyreg_model: a :class:`symnet.core.model.polyreg.PolyRegModel` (anything with
            ``table``, ``weight`` and ``input_shape``) with the same inputs and
            outputs. Its weights are the reference of every R^2.
        method: the activation fit's method (:func:`fit_activation_coefficients`).
        title: a first line for the printed table.
        center_classes: compare coefficients centred over the classes
            (:func:`r2_by_degree`).

    Returns:
        :class:`BridgeReport`: one row per degree of the table, plus overall
        R^2 (all degrees pooled, same definition as :func:`r2_by_degree`).
        Network monomials outside the table are reported, not an error.

    Example:
        >>> from symnet.core.model import presets as models
        >>> from symnet.core.model.polyreg import PolyRegModel
        >>> net = models.get("mlp", input_dim=3, hidden=2, num_classes=2, seed=0)
        >>> reg = PolyRegModel((3,), 2, degree=2, window=None)
        >>> reg.weight[...] = equivalent_weights(net, reg).weight
        >>> [round(r.r2, 6) for r in bridge_report(net, reg).rows]
        [1.0, 1.0, 1.0]
    """
    table = getattr(polyreg_model, "table", None)
    weight = getattr(polyreg_model, "weight", None)
    if table is None or weight is None:
        raise ModelError(f"bridge_report compares with a PolyRegModel (table and weight), got "
                         f"{type(polyreg_model).__name__}")
    if getattr(polyreg_model, "num_outputs", weight.shape[1]) != getattr(model, "num_outputs", None):
        raise ModelError(f"the regression has {weight.shape[1]} outputs but the network "
                         f"{getattr(model, 'num_outputs', '?')}; fit both on the same classes")
    eq = equivalent_weights(model, polyreg_model, allow_dropped=True)
    fit = fit_activation_coefficients(model, weight, method=method, equivalent=eq, center_classes=center_classes)
    J = len(eq.activation) - 1
    rows = []
    for before, after in zip(fit.before, fit.after):
        d = before.degree
        has = d <= J
        rows.append(BridgeRow(d, before.monomials, before.r2, before.pearson_r2, after.r2,
                              float(fit.original[d]) if has else None, float(fit.coefficients[d]) if has else None,
                              bool(fit.identified[d]) if has else None))
    same = np.zeros(len(eq.table), dtype=np.int64)  # every monomial in one group: the overall figure
    (overall,) = r2_by_degree(eq.weight, weight, same, center_classes=center_classes)
    (overall_fit,) = r2_by_degree(fit.weight, weight, same, center_classes=center_classes)
    return BridgeReport(rows, method, eq.dropped_norm, eq.dropped_monomials, overall.r2, overall_fit.r2, title,
                        {"center_classes": center_classes})


__all__ = ["ActivationFit", "BridgeReport", "BridgeRow", "DegreeR2", "EquivalentWeights", "OneHiddenLayer",
           "bridge_report", "equivalent_weights", "fit_activation_coefficients", "format_r2", "multinomial_counts",
           "natural_table", "one_hidden_layer", "r2_by_degree", "table_degrees"]
