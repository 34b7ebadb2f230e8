"""Small synthetic datasets with a known answer.

* :func:`xor` -- the four points of {0,1}^2 labelled by XOR, the smallest
  problem a linear model cannot solve and a degree-2 polynomial network can.
* :func:`teacher_student` -- inputs labelled by a random polynomial network
  (the *teacher*), so a student of the same architecture can in principle
  reach zero error and its distance from the teacher can be measured.
* :func:`network_regression` -- Gaussian inputs and the real-valued output of
  a random one-hidden-layer ReLU or sigmoid network: how much of such a
  network can a polynomial of low degree recover?

Example:
    >>> d = xor(8)
    >>> d.x_train.shape, d.y_train.tolist()
    ((8, 2), [0, 1, 1, 0, 0, 1, 1, 0])
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from symnet.core.errors import DataError

from symnet.core.datasets.dataset import Dataset

_XOR_POINTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_XOR_LABELS = np.array([0, 1, 1, 0], dtype=np.int64)


def _whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise DataError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value < 0:
        raise DataError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def xor(n: int = 4, noise: float = 0.0, seed: int = 0) -> Dataset:
    """The XOR problem: 2 inputs, 2 classes.

    The training set cycles through the four corners of the unit square
    (``(0,0), (0,1), (1,0), (1,1)``) until it has ``n`` points; with
    ``noise > 0`` each training input gets Gaussian jitter of that standard
    deviation (labels stay those of the corner). The test set is the four
    clean corners.

    Args:
        n: Number of training points, at least 4.
        noise: Standard deviation of the jitter added to training inputs.
        seed: Seed of the jitter.

    Returns:
        A :class:`Dataset` with inputs of shape ``(n, 2)``.

    Example:
        >>> d = xor(4)
        >>> d.x_test.tolist(), d.y_test.tolist()
        ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    n = _whole("n", n, 4)
    noise = _nonnegative("noise", noise)
    corner = np.arange(n) % 4
    x_train = _XOR_POINTS[corner]
    if noise > 0:
        x_train = x_train + noise * np.random.default_rng(seed).standard_normal(x_train.shape)
    return Dataset("xor", x_train, _XOR_LABELS[corner], _XOR_POINTS.copy(), _XOR_LABELS.copy(), 2,
                   {"noise": noise, "seed": seed})


def teacher_outputs(teacher: dict, x: np.ndarray) -> np.ndarray:
    """Real-valued outputs of a polynomial teacher network.

    ``outputs = W2 @ p(W1 @ x + b1) + b2`` row by row, where
    ``p(z) = sum_j a[j] * z**j`` acts elementwise.

    Args:
        teacher: Dict with ``W1`` (hidden, input_dim), ``b1`` (hidden,),
            ``a`` (degree+1,) coefficients in ascending order, ``W2``
            (num_classes, hidden) and ``b2`` (num_classes,).
        x: Inputs of shape (N, input_dim).

    Returns:
        Array of shape (N, num_classes).

    Example:
        >>> t = {"W1": np.eye(2), "b1": np.zeros(2), "a": np.array([0.0, 0.0, 1.0]),
        ...      "W2": np.ones((1, 2)), "b2": np.zeros(1)}
        >>> teacher_outputs(t, np.array([[1.0, 2.0]]))  # 1**2 + 2**2
        array([[5.]])
    """
    _check_teacher(teacher)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != teacher["W1"].shape[1]:
        raise DataError(f"teacher inputs must have shape (N, {teacher['W1'].shape[1]}), got {x.shape}")
    pre = x @ teacher["W1"].T + teacher["b1"]
    coeffs = teacher["a"]
    # Horner's rule over the (few) coefficients; each step is a whole-array operation.
    hidden = np.full_like(pre, coeffs[-1])
    for c in coeffs[-2::-1]:
        hidden *= pre
        hidden += c
    return hidden @ teacher["W2"].T + teacher["b2"]


def _check_teacher(teacher: dict) -> None:
    if not isinstance(teacher, dict):
        raise DataError(f"teacher must be a dict of arrays W1, b1, a, W2, b2; got {type(teacher).__name__}")
    missing = [k for k in ("W1", "b1", "a", "W2", "b2") if k not in teacher]
    if missing:
        raise DataError(f"teacher lacks {missing}; pass the dict from a previous dataset's meta['teacher']")
    w1, b1, a, w2, b2 = (np.asarray(teacher[k]) for k in ("W1", "b1", "a", "W2", "b2"))
    ok = (w1.ndim == 2 and b1.shape == (w1.shape[0],) and a.ndim == 1 and len(a) >= 1
          and w2.ndim == 2 and w2.shape[1] == w1.shape[0] and b2.shape == (w2.shape[0],))
    if not ok:
        raise DataError(
            f"teacher arrays have inconsistent shapes W1 {w1.shape}, b1 {b1.shape}, a {a.shape}, "
            f"W2 {w2.shape}, b2 {b2.shape}; expected (H, D), (H,), (degree+1,), (K, H), (K,)")
    if not all(np.all(np.isfinite(v)) for v in (w1, b1, a, w2, b2)):
        raise DataError("teacher arrays contain NaN or infinite values")


def teacher_student(n_train: int = 1000, n_test: int = 500, input_dim: int = 8, hidden: int = 4,
                    degree: int = 2, num_classes: int = 3, seed: int = 0,
                    teacher: dict | None = None) -> Dataset:
    """Inputs labelled by a random one-hidden-layer polynomial network.

    Inputs are uniform in ``[0, 1]^input_dim``. The teacher computes
    ``W2 @ p(W1 @ x + b1) + b2`` with ``p(z) = sum_j a[j] z**j`` of the given
    degree; the label is the argmax of its outputs.

    A random teacher draws ``W1 ~ N(0, 1/input_dim)``, ``b1 ~ N(0, 1)``,
    ``a[j] ~ N(0, 1)`` for ``j < degree`` and a leading coefficient of size
    0.5..1.5 with random sign (so the degree is genuine), ``W2 ~ N(0, 1/hidden)``.
    ``b2`` is then set to minus the mean of ``W2 @ h`` over the training inputs,
    which centres every output on the training set so that no class wins by
    offset alone (with many classes some may still be rare).

    Args:
        n_train: Number of training samples.
        n_test: Number of test samples (0 allowed).
        input_dim: Input dimension ``D``.
        hidden: Hidden units ``H``.
        degree: Degree of the activation polynomial (>= 1).
        num_classes: Output units ``K`` (>= 2).
        seed: Seed for inputs and (when ``teacher`` is None) the teacher.
        teacher: Reuse these weights (a dict like ``meta["teacher"]``) instead
            of drawing new ones; ``input_dim``, ``hidden``, ``degree`` and
            ``num_classes`` are then taken from it.

    Returns:
        A :class:`Dataset` with inputs of shape ``(n_train, input_dim)`` and
        ``meta`` holding ``teacher`` (dict of arrays), ``teacher_outputs_train``
        (n_train, K) and ``teacher_outputs_test`` (n_test, K).

    Example:
        >>> d = teacher_student(n_train=50, n_test=10, input_dim=3, num_classes=2, seed=1)
        >>> d.x_train.shape, d.meta["teacher_outputs_train"].shape
        ((50, 3), (50, 2))
        >>> bool(np.all(d.y_train == d.meta["teacher_outputs_train"].argmax(axis=1)))
        True
    """
    n_train = _whole("n_train", n_train, 1)
    n_test = _whole("n_test", n_test, 0)
    # Separate streams, so a reused teacher with the same seed gives the same inputs.
    teacher_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if teacher is None:
        input_dim = _whole("input_dim", input_dim, 1)
        hidden = _whole("hidden", hidden, 1)
        degree = _whole("degree", degree, 1)
        num_classes = _whole("num_classes", num_classes, 2)
        a = teacher_rng.standard_normal(degree + 1)
        a[-1] = teacher_rng.choice([-1.0, 1.0]) * teacher_rng.uniform(0.5, 1.5)
        teacher = {
            "W1": teacher_rng.standard_normal((hidden, input_dim)) / np.sqrt(input_dim),
            "b1": teacher_rng.standard_normal(hidden),
            "a": a,
            "W2": teacher_rng.standard_normal((num_classes, hidden)) / np.sqrt(hidden),
            "b2": np.zeros(num_classes),
        }
        center = True
    else:
        _check_teacher(teacher)
        teacher = {k: np.array(teacher[k], dtype=np.float64) for k in ("W1", "b1", "a", "W2", "b2")}
        hidden, input_dim = teacher["W1"].shape
        num_classes = teacher["W2"].shape[0]
        degree = len(teacher["a"]) - 1
        if num_classes < 2:
            raise DataError(f"teacher has {num_classes} output(s); a classification teacher needs at least 2")
        center = False
    x_train = rng.uniform(0.0, 1.0, (n_train, input_dim))
    x_test = rng.uniform(0.0, 1.0, (n_test, input_dim))
    out_train = teacher_outputs(teacher, x_train)
    if center:
        shift = out_train.mean(axis=0)
        teacher["b2"] = -shift
        out_train = out_train - shift
    out_test = teacher_outputs(teacher, x_test)
    meta = {
        "teacher": teacher,
        "teacher_outputs_train": out_train,
        "teacher_outputs_test": out_test,
        "input_dim": input_dim, "hidden": hidden, "degree": degree, "seed": seed,
    }
    return Dataset("teacher-student", x_train, out_train.argmax(axis=1), x_test,
                   out_test.argmax(axis=1) if n_test else np.zeros(0, np.int64), num_classes, meta)


#: Activations of :func:`network_regression`'s teachers.
TEACHER_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),  # 1 / (1 + e^-z) without overflow
}


class Regression(NamedTuple):
    """Real-valued training and test targets of a teacher network (see :func:`network_regression`).

    Attributes:
        x_train, x_test: inputs ``(N, input_dim)``.
        y_train, y_test: the teacher's outputs ``(N, outputs)``.
        teacher: ``W1`` (hidden, input_dim), ``W2`` (outputs, hidden) and the ``activation`` name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    teacher: dict


def network_regression(n_train: int = 2000, n_test: int = 1000, input_dim: int = 10, hidden: int = 10,
                       activation: str = "relu", outputs: int = 1, seed: int = 0) -> Regression:
    """Gaussian inputs and the real-valued outputs of a random one-hidden-layer network.

    The teacher computes ``W2 s(W1 x)`` with ``W1`` and ``W2`` drawn from
    N(0, 1) entry by entry, no biases, and ``s`` the ReLU or the logistic
    sigmoid; the inputs are N(0, I). With N(0, 1) weights a pre-activation
    has variance ``|w_u|^2``, about ``input_dim``: a sigmoid teacher of many
    inputs is close to a sum of steps, a ReLU teacher is the same function
    at any scale (``relu(c z) = c relu(z)`` for ``c > 0``).

    Args:
        n_train, n_test: numbers of samples (``n_test`` may be 0).
        input_dim: ``d``, inputs per sample.
        hidden: ``m``, hidden units.
        activation: ``"relu"`` or ``"sigmoid"``.
        outputs: outputs of the teacher.
        seed: seed of the teacher and of the inputs.

    Returns:
        A :class:`Regression`.

    Example:
        >>> r = network_regression(5, 2, input_dim=3, hidden=4, seed=1)
        >>> r.x_train.shape, r.y_train.shape, r.teacher["W1"].shape
        ((5, 3), (5, 1), (4, 3))
        >>> bool(np.allclose(r.y_train, np.maximum(r.x_train @ r.teacher["W1"].T, 0) @ r.teacher["W2"].T))
        True
    """
    n_train = _whole("n_train", n_train, 1)
    n_test = _whole("n_test", n_test, 0)
    input_dim = _whole("input_dim", input_dim, 1)
    hidden = _whole("hidden", hidden, 1)
    outputs = _whole("outputs", outputs, 1)
    if activation not in TEACHER_ACTIVATIONS:
        raise DataError(f"activation must be one of {', '.join(TEACHER_ACTIVATIONS)}, got {activation!r}")
    teacher_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    W1 = teacher_rng.standard_normal((hidden, input_dim))
    W2 = teacher_rng.standard_normal((outputs, hidden))
    act = TEACHER_ACTIVATIONS[activation]
    x = rng.standard_normal((n_train + n_test, input_dim))
    y = act(x @ W1.T) @ W2.T
    return Regression(x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                      {"W1": W1, "W2": W2, "activation": activation})
