"""Jets: the truncated polynomials in the step ``t`` that flow through the layers' exact rules.

Along a parameter direction ``d`` every activation of the network is a
polynomial in ``t``. A :class:`Jet` holds its ``t^1 .. t^K`` coefficients (the
``t^0`` term is the cached activation) on the slice of channels the direction
touches; :class:`Coord` names a single moving coordinate. Each layer's ``jet``
rule (:mod:`symnet.core.layers`) maps an input jet to an output jet with the
arithmetic here; :mod:`symnet.core.restriction` sums the output jets' squares
over the samples into the restricted loss.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Coord(NamedTuple):
    """One coordinate of one parameter array: ``params[name][index] += t``."""

    name: str
    index: tuple[int, ...]


class Jet:
    """The ``t^1 .. t^K`` coefficients of an activation that depends on ``t``.

    ``coeffs`` has shape ``(K, N, C, ...)``; ``channels`` is ``None`` when
    the jet covers all ``C`` channels (or units), else the int array of the
    channel indices along axis 2 that ``coeffs`` holds (all other channels do
    not move). The constant term lives in the activation cache.
    """

    __slots__ = ("coeffs", "channels")

    def __init__(self, coeffs: np.ndarray, channels: np.ndarray | None = None) -> None:
        self.coeffs = coeffs
        self.channels = None if channels is None else np.asarray(channels, dtype=np.int64)

    @property
    def order(self) -> int:
        return self.coeffs.shape[0]

    def select(self, x: np.ndarray) -> np.ndarray:
        """The slice of a full activation ``x`` (N, C, ...) that this jet covers."""
        return x if self.channels is None else x[:, self.channels]

    def dense(self, num_channels: int) -> "Jet":
        """The same jet over all channels (zeros where nothing moves)."""
        if self.channels is None:
            return self
        full = np.zeros(self.coeffs.shape[:2] + (num_channels,) + self.coeffs.shape[3:], dtype=self.coeffs.dtype)
        full[:, :, self.channels] = self.coeffs
        return Jet(full)

    def __repr__(self) -> str:
        ch = "all" if self.channels is None else self.channels.tolist()
        return f"Jet(order={self.order}, shape={self.coeffs.shape[1:]}, channels={ch})"


def jet_add(a: Jet | None, b: Jet | None, num_channels: int) -> Jet | None:
    """Sum of two jets (either may be ``None``); pads the lower order with zeros."""
    if a is None:
        return b
    if b is None:
        return a
    if a.channels is not None and b.channels is not None and np.array_equal(a.channels, b.channels):
        ch = a.channels
        ca, cb = a.coeffs, b.coeffs
    else:
        ch = None
        ca, cb = a.dense(num_channels).coeffs, b.dense(num_channels).coeffs
    K = max(len(ca), len(cb))
    out = np.zeros((K,) + ca.shape[1:], dtype=np.result_type(ca, cb))
    out[: len(ca)] += ca
    out[: len(cb)] += cb
    return Jet(out, ch)


def shift_up(coeffs: np.ndarray) -> np.ndarray:
    """Multiply a jet by ``t``: prepend a zero ``t^1`` term (t * sum c_k t^k)."""
    return np.concatenate([np.zeros((1,) + coeffs.shape[1:], dtype=coeffs.dtype), coeffs], axis=0)


def series_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Product of two series with constant terms: out[k] = sum_{i+j=k} a[i] b[j]."""
    out = np.zeros((len(a) + len(b) - 1,) + a.shape[1:], dtype=np.result_type(a, b))
    for i in range(len(a)):  # over polynomial degree, a handful of terms
        out[i:i + len(b)] += a[i] * b
    return out


def square_jet(z0: np.ndarray, D: np.ndarray) -> np.ndarray:
    """(z0 + D)^2 - z0^2 = 2 z0 D + D^2, coefficients t^1 .. t^2K."""
    K = D.shape[0]
    out = np.zeros((2 * K,) + D.shape[1:], dtype=np.result_type(z0, D))
    out[:K] = 2.0 * z0 * D
    for i in range(K):
        out[i + 1:i + 1 + K] += D[i] * D
    return out


def single_coord(direction: dict) -> Coord | None:
    """The Coord if ``direction`` (a layer's part: name -> Coord or array) moves exactly one coordinate, else None."""
    if len(direction) == 1:
        (value,) = direction.values()
        if isinstance(value, Coord):
            return value
    return None


def direction_arrays(params: dict[str, np.ndarray], direction: dict) -> dict[str, np.ndarray]:
    """A layer's part of a direction as dense per-parameter arrays (a Coord becomes a one-hot array of its shape)."""
    out = {}
    for key, value in direction.items():
        if isinstance(value, Coord):
            arr = np.zeros_like(params[value.name])
            arr[value.index] = 1.0
            out[value.name] = arr
        else:
            value = np.asarray(value)
            out[key] = value if value.dtype in (np.float32, np.float64) else value.astype(np.float64)
    return out
