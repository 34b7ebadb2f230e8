"""The training objective every solver minimises and reports, and accuracy.

For parameters ``theta``, outputs ``f(x_n)`` and one-hot targets ``y_n`` the
objective is

    L(theta) = sum_n ||f(x_n) - y_n||^2 + ridge * ||theta||^2,

the sum of squared errors (SSE) plus the ridge penalty; histories and tables
report it divided by the number of training samples. This module is the one
place that writes it down: every solver, the exact loss and the front end call
:func:`value` or :func:`evaluate`.

Example:
    >>> import numpy as np
    >>> scores, Y = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    >>> evaluate(scores, Y, np.array([1.0, 2.0]), ridge=0.1)
    1.0
    >>> accuracy(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1]))
    0.5
"""

from __future__ import annotations

import numpy as np


def sum_squares(r: np.ndarray) -> float:
    """``sum r^2`` of a residual array, in float64."""
    r = np.asarray(r, dtype=np.float64)
    return float(np.einsum("ij,ij->", r, r)) if r.ndim == 2 else float(np.sum(r * r))


def sse(scores: np.ndarray, Y: np.ndarray) -> float:
    """Sum of squared errors ``sum (scores - Y)^2``, in float64."""
    return sum_squares(np.asarray(scores, dtype=np.float64) - Y)


def value(sse_: float, sq_norm: float, ridge: float) -> float:
    """The objective from its parts: ``SSE + ridge * ||theta||^2``."""
    return float(sse_) + float(ridge) * float(sq_norm) if ridge else float(sse_)


def evaluate(scores: np.ndarray, Y: np.ndarray, theta: np.ndarray, ridge: float) -> float:
    """The objective of outputs ``scores`` for targets ``Y`` at parameters ``theta`` (sum over samples)."""
    theta = np.asarray(theta, dtype=np.float64)
    return value(sse(scores, Y), float(theta @ theta) if ridge else 0.0, ridge)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label (NaN for no rows)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(scores, axis=1) == labels))


__all__ = ["accuracy", "evaluate", "sse", "sum_squares", "value"]
