"""The in-memory dataset container every backend consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from symnet.core.errors import DataError


def _check_finite(name: str, x: np.ndarray) -> None:
    if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise DataError(f"{name} inputs contain NaN or infinite values in {len(rows)} sample(s) (the first: "
                        f"{int(rows[0])}); clean or drop those samples")


def _check_split(name: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 2:  # (N, features) -> (N, 1, 1, features) is not useful; keep flat vectors as (N, F)
        pass
    elif x.ndim == 3:  # (N, H, W) -> one channel
        x = x[:, None, :, :]
    elif x.ndim != 4:
        raise DataError(f"{name} inputs must have shape (N, C, H, W), (N, H, W) or (N, F); got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{name} labels must have shape ({len(x)},) to match the inputs; got {y.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{name} inputs must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    _check_finite(name, x)
    if len(y) and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{name} labels must be whole numbers 0..{num_classes - 1}; got non-integers")
        y = y.astype(np.int64)
    y = y.astype(np.int64, copy=False)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{name} labels must lie in 0..{num_classes - 1}; found {int(y.min())}..{int(y.max())}")
    return x, y


@dataclass(frozen=True)
class Dataset:
    """Training and test arrays with labels.

    Inputs are float64 of shape ``(N, C, H, W)`` (images) or ``(N, F)``
    (vectors), scaled to [0, 1] for images; labels are int64 in
    ``0..num_classes-1``. Targets for the squared loss are one-hot rows.

    Example:
        >>> import numpy as np
        >>> d = Dataset("toy", np.zeros((4, 2)), np.array([0, 1, 1, 0]), np.zeros((0, 2)), np.zeros(0, int), 2)
        >>> d.one_hot("train").shape
        (4, 2)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if int(self.num_classes) < 2:
            raise DataError(f"num_classes must be at least 2, got {self.num_classes}")
        xtr, ytr = _check_split("training", self.x_train, self.y_train, self.num_classes)
        xte, yte = _check_split("test", self.x_test, self.y_test, self.num_classes)
        if len(xtr) == 0:
            raise DataError("the training set is empty; pass at least one sample")
        if len(xte) and xte.shape[1:] != xtr.shape[1:]:
            raise DataError(f"training inputs have shape {xtr.shape[1:]} per sample but test inputs "
                            f"{xte.shape[1:]}; both splits must share one input shape")
        object.__setattr__(self, "x_train", xtr)
        object.__setattr__(self, "y_train", ytr)
        object.__setattr__(self, "x_test", xte)
        object.__setattr__(self, "y_test", yte)

    def validate(self) -> "Dataset":
        """Check the arrays again (they are writable, so they can change after construction); returns self.

        Raises:
            DataError: a NaN or infinite input, or a label outside ``0..num_classes-1``.
        """
        for name, x, y in (("training", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            _check_finite(name, x)
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise DataError(f"{name} labels must lie in 0..{self.num_classes - 1}; found "
                                f"{int(y.min())}..{int(y.max())}")
        return self

    def fingerprint(self) -> dict:
        """What identifies the data of a run: name, sizes, shape and a digest of every array.

        Example:
            >>> import numpy as np
            >>> d = Dataset("toy", np.zeros((4, 2)), np.array([0, 1, 1, 0]), np.zeros((0, 2)), np.zeros(0, int), 2)
            >>> sorted(d.fingerprint())
            ['digest', 'input_shape', 'n_test', 'n_train', 'name', 'num_classes']
        """
        h = hashlib.blake2b(digest_size=16)
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            h.update(np.ascontiguousarray(array).view(np.uint8).ravel())
        return {"name": self.name, "n_train": len(self.x_train), "n_test": len(self.x_test),
                "input_shape": list(self.input_shape), "num_classes": int(self.num_classes), "digest": h.hexdigest()}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def one_hot(self, split: str = "train") -> np.ndarray:
        """One-hot targets (float64) of the ``"train"`` or ``"test"`` split."""
        y = self.y_train if split == "train" else self.y_test
        out = np.zeros((len(y), self.num_classes))
        out[np.arange(len(y)), y] = 1.0
        return out

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test samples."""
        for label, n, have in (("training", n_train, len(self.x_train)), ("test", n_test, len(self.x_test))):
            if n is not None and (int(n) != n or n < 1):
                raise DataError(f"number of {label} samples must be a positive whole number, got {n!r}")
            if n is not None and n > have:
                raise DataError(f"asked for {n} {label} samples but {self.name} has {have}")
        return Dataset(self.name, self.x_train[:n_train], self.y_train[:n_train],
                       self.x_test[:n_test], self.y_test[:n_test], self.num_classes, dict(self.meta))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={self.x_train.shape}, test={self.x_test.shape}, "
                f"classes={self.num_classes})")
