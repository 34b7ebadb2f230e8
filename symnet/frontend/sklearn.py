"""scikit-learn estimators: symnet's networks and polynomial regression as classifiers.

:class:`PolyNetClassifier` trains a preset network (``poly``, ``poly2``,
``seed`` or ``mlp``) with any registered solver; :class:`PolyRegClassifier`
fits the closed-form polynomial regression. Both follow scikit-learn's
conventions, so they work in ``Pipeline``, ``GridSearchCV``,
``cross_val_score`` and the like: ``__init__`` only stores its arguments,
``fit`` validates them and returns ``self``, and what is learned ends in an
underscore (``classes_``, ``n_features_in_``, ``model_``, ``history_`` ...).

Inputs. ``X`` is flat, ``(n, d)``, or image-shaped, ``(n, H, W)`` (one
channel) or ``(n, C, H, W)``. An image model (the ``seed``, ``poly`` and
``poly2`` presets, and polynomial regression with a spatial ``window``)
reads flat rows as images: of shape ``image_shape`` when it is given, else
as one square channel when ``d`` is a perfect square (784 -> 1 x 28 x 28).
The ``mlp`` preset reads every sample as a flat vector of any length
(image-shaped inputs are flattened). Polynomial regression reads flat rows
whose length is not a square as one row of ``d`` features (its window then
runs along that row; ``window=None`` takes every product). ``n_features_in_``
is the number of values per sample (784 for MNIST, flat or not), and
``predict`` accepts either form of the same samples.

Labels. Any integer or string labels; ``classes_`` holds them sorted, and
the network or regression is fitted to one-hot targets over them.

Training. ``fit`` trains on all of ``(X, y)``; the ``history_`` has one
record per step (loss, training accuracy and training time; no test
accuracy, since no test set is given). Progress bars are off unless
``verbose=True``.

scikit-learn is an optional dependency: ``pip install 'symnet[sklearn]'``.

Example:
    >>> import numpy as np
    >>> from symnet.sklearn import PolyNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 2)); y = np.where(X[:, 0] * X[:, 1] > 0, "same", "different")
    >>> clf = PolyNetClassifier(model="mlp", solver="gauss-newton", hidden=4, steps=5).fit(X, y)
    >>> clf.classes_.tolist(), clf.score(X, y) > 0.9
    (['different', 'same'], True)
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("symnet.sklearn needs scikit-learn 1.6 or newer: pip install 'symnet[sklearn]'") from exc

from symnet.core.datasets import Dataset
from symnet.core.model.polyreg import PolyRegModel
from symnet.core.run import RunSpec
from symnet.solvers.polyreg import PolyRegSolver

from symnet.frontend import api

#: Presets whose first layer is a convolution and so need image inputs.
IMAGE_PRESETS = api.IMAGE_PRESETS


# --------------------------------------------------------------------------- inputs
def _seed(random_state: Any) -> int:
    """An int seed from ``random_state``: None -> 0 (symnet's default), an int, or one drawn from a RandomState
    or Generator."""
    if random_state is None:
        return 0
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, None or a RandomState, got {random_state!r}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be None, an int >= 0, a RandomState or a Generator, got {random_state!r}")


def _flatten(X: Any) -> tuple[Any, tuple[int, ...] | None]:
    """``X`` with image-shaped samples flattened, and the per-sample shape it had (None for flat input)."""
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple)):
        arr = np.asarray(X)
        ndim, X = arr.ndim, arr
    if ndim in (3, 4) and hasattr(X, "reshape"):
        shape = tuple(int(s) for s in X.shape[1:])
        return np.asarray(X).reshape(len(X), -1), shape
    if ndim is not None and ndim > 4:
        raise ValueError(f"expected X of shape (n, d), (n, H, W) or (n, C, H, W), got {ndim} dimensions")
    return X, None


def _image_shape(d: int, given: tuple[int, ...] | None, image_shape: Any) -> tuple[int, int, int] | None:
    """The (C, H, W) of ``d``-value samples: from the input's own shape, ``image_shape``, or a square."""
    if given is not None:
        return (1,) + given if len(given) == 2 else given  # type: ignore[return-value]
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        shape = (1,) + shape if len(shape) == 2 else shape
        if len(shape) != 3 or math.prod(shape) != d:
            raise ValueError(f"image_shape {tuple(image_shape)} does not hold the {d} values of each sample; "
                             "give (H, W) or (C, H, W) with H * W (* C) = n_features")
        return shape  # type: ignore[return-value]
    side = math.isqrt(d)
    if side * side == d:
        return (1, side, side)
    return None


class _Base(ClassifierMixin, BaseEstimator):
    """What both classifiers share: input and label handling, predict, decision_function."""

    def _validate_fit(self, X, y) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
        X, sample_shape = _flatten(X)
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
        if not X.flags.writeable:  # e.g. a read-only memory map: the compiled kernels take writeable arrays
            X = X.copy()
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least two classes, but y holds only one class: "
                             f"{self.classes_[0]!r}")
        return X, y_index.astype(np.int64), sample_shape

    def _validate_predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X, sample_shape = _flatten(X)
        if sample_shape is not None and len(self.input_shape_) == 3:
            got = (1,) + sample_shape if len(sample_shape) == 2 else sample_shape
            if got != tuple(self.input_shape_):
                raise ValueError(f"X has samples of shape {sample_shape}, but {type(self).__name__} was fitted on "
                                 f"samples of shape {tuple(self.input_shape_)}")
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        if not X.flags.writeable:
            X = X.copy()
        return X.reshape((len(X),) + tuple(self.input_shape_))

    def _dataset(self, X2: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...]) -> Dataset:
        x = X2.reshape((len(X2),) + tuple(input_shape))
        empty = np.zeros((0,) + tuple(input_shape))
        return Dataset("sklearn", x, y, empty, np.zeros(0, dtype=np.int64), len(self.classes_))

    def _scores(self, X) -> np.ndarray:
        X = self._validate_predict(X)  # first: it raises NotFittedError before fit
        return np.asarray(self.model_.forward(X), dtype=np.float64)

    def decision_function(self, X) -> np.ndarray:
        """The model's scores: ``(n, n_classes)``, or ``(n,)`` for two classes (positive means ``classes_[1]``).

        The scores are the network's (or regression's) outputs, fitted by
        least squares to one-hot targets: not probabilities.
        """
        scores = self._scores(X)
        if len(self.classes_) == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X) -> np.ndarray:
        """The class of largest score for each sample of ``X`` (flat or image-shaped)."""
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _finish(self, fitted) -> "_Base":
        self.model_ = fitted.model_
        self.history_ = fitted.history_
        self.solver_options_ = dict(fitted.opts_)
        if self.solver_options_.get("ridge") == "auto":  # the weight the fit chose (a result, in ridge_)
            self.solver_options_["ridge"] = fitted.ridge_used
        self.n_iter_ = int(fitted.history_.final["step"])
        return self

    def _with_options(self, params: dict, kind: str, clash_text: str) -> dict:
        """``params`` updated with the ``options`` dict; a key in both is an error (``clash_text`` says why)."""
        if self.options is None:
            return params
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict of {kind} or None, got {self.options!r}")
        clash = sorted(set(params) & set(self.options))
        if clash:
            raise ValueError(f"option {clash[0]!r} {clash_text}")
        return {**params, **self.options}


class PolyNetClassifier(_Base):
    """A polynomial network trained by one of symnet's solvers, as a scikit-learn classifier.

    Args:
        model: a preset name (``"poly"``, ``"poly2"``, ``"seed"`` need images,
            ``"mlp"`` takes flat vectors of any length) or a
            :class:`symnet.Sequential` to start from (copied; never changed).
        solver: a registered solver name: ``"coordinate"`` (exact),
            ``"gauss-newton"``, ``"lbfgs"``, ``"cg"``, ``"adam"``, ``"sgd"`` ...
        steps: training steps (sweeps, epochs, iterations ...); ``None`` with
            no ``time_limit``: the solver's default.
        time_limit: seconds of training; the solver stops at whichever of
            ``steps`` and ``time_limit`` comes first.
        ridge: the solver's ridge penalty on ``||theta||^2`` (None: its default).
        lr: learning rate of a gradient solver (None: its default).
        batch_size: mini-batch size of the solvers that have one (None: default).
        options: any other solver options, e.g. ``{"varpro": True}``.
        channels, channels2, kernel, activation, hidden: preset options (None:
            the preset's default).
        image_shape: ``(H, W)`` or ``(C, H, W)`` of flat samples for an image
            preset (None: image-shaped ``X``, or a square one-channel image).
        random_state: seed of the initial weights and of the solver (None: 0,
            as everywhere in symnet; a RandomState or Generator draws one).
        verbose: show the solver's progress bar.

    Attributes:
        classes_: the sorted class labels.
        n_features_in_: values per sample.
        input_shape_: the shape the network reads each sample in.
        model_: the trained network (a :class:`symnet.Sequential`).
        history_: the :class:`symnet.History` of training, one record per step.
        solver_options_: every option of the solver, defaults included.
        n_iter_: steps taken.

    Example:
        >>> import symnet
        >>> from symnet.sklearn import PolyNetClassifier
        >>> data = symnet.datasets.load("mnist-small").subset(300, 100)
        >>> X, y = data.x_train.reshape(300, 784), data.y_train
        >>> clf = PolyNetClassifier("poly", "coordinate", channels=2, steps=1, ridge=1.0).fit(X, y)
        >>> clf.input_shape_, clf.n_features_in_, clf.predict(data.x_test[:3]).shape
        ((1, 28, 28), 784, (3,))
    """

    def __init__(self, model="poly", solver="coordinate", *, steps=None, time_limit=None, ridge=None, lr=None,
                 batch_size=None, options=None, channels=None, channels2=None, kernel=None, activation=None,
                 hidden=None, image_shape=None, random_state=None, verbose=False):
        self.model = model
        self.solver = solver
        self.steps = steps
        self.time_limit = time_limit
        self.ridge = ridge
        self.lr = lr
        self.batch_size = batch_size
        self.options = options
        self.channels = channels
        self.channels2 = channels2
        self.kernel = kernel
        self.activation = activation
        self.hidden = hidden
        self.image_shape = image_shape
        self.random_state = random_state
        self.verbose = verbose

    def _solver_options(self) -> dict[str, Any]:
        opts = {k: v for k, v in (("ridge", self.ridge), ("lr", self.lr), ("batch_size", self.batch_size))
                if v is not None}
        return self._with_options(opts, "solver options", "is given both as a parameter and in options; give it once")

    def _input_shape(self, d: int, sample_shape) -> tuple[int, ...]:
        name = self.model if isinstance(self.model, str) else None
        if name is None:  # a network: it says what it reads
            shape = tuple(getattr(self.model, "input_shape", ()))
            if math.prod(shape) != d:
                raise ValueError(f"the network reads samples of shape {shape} ({math.prod(shape)} values) but X "
                                 f"has {d} values per sample")
            return shape
        if name not in IMAGE_PRESETS:
            return (d,)
        shape = _image_shape(d, sample_shape, self.image_shape)
        if shape is None:
            raise ValueError(f"model {name!r} needs images, but the {d} values of each flat sample do not form a "
                             f"square; pass image_shape=(H, W) or (C, H, W), image-shaped X, or model='mlp'")
        return shape

    def fit(self, X, y) -> "PolyNetClassifier":
        """Train on ``X`` (flat ``(n, d)`` or images ``(n, H, W)`` / ``(n, C, H, W)``) and labels ``y``; return self."""
        X2, y_index, sample_shape = self._validate_fit(X, y)
        seed = _seed(self.random_state)
        run = RunSpec(steps=self.steps, time=self.time_limit, seed=seed, quiet=not self.verbose)
        instance = api.solver_instance(self.solver, self._solver_options())  # checks the options
        self.input_shape_ = self._input_shape(X2.shape[1], sample_shape)
        data = self._dataset(X2, y_index, self.input_shape_)
        if isinstance(self.model, str):
            preset = {"channels": self.channels, "channels2": self.channels2, "kernel": self.kernel,
                      "activation": self.activation, "hidden": self.hidden}
            network = api.build_model(self.model, data, seed=seed, **preset)
        else:
            if not hasattr(self.model, "copy") or not hasattr(self.model, "forward"):
                raise ValueError(f"model must be a preset name or a symnet network, got {type(self.model).__name__}")
            network = self.model.copy()
            if network.num_outputs != len(self.classes_):
                raise ValueError(f"the network has {network.num_outputs} outputs but y has {len(self.classes_)} "
                                 "classes")
        fitted = api.train(network, data, instance, run=run)
        return self._finish(fitted)


class PolyRegClassifier(_Base):
    """Closed-form polynomial regression over windowed monomials, as a scikit-learn classifier.

    The features are every product of up to ``degree`` inputs whose factors
    fit in a ``window x window`` patch of the image (plus the constant 1);
    a ridge regression onto one-hot targets is solved in closed form and the
    class is the argmax of the scores (:mod:`symnet.solvers.polyreg`). The
    same data and settings give the same coefficients as
    ``symnet train --solver polyreg``.

    Args:
        degree: highest degree of the monomials.
        window: side of the square window, a pair ``(height, width)``, or None
            (every product of the inputs).
        method: ``"exact"`` (Gram matrix and Cholesky) or ``"bagging"``
            (the average of ridge fits on random subsets).
        ridge: the penalty, or ``"auto"`` to choose it on a validation split
            (the last tenth of the samples, at most 5,000, at least one) and
            refit on all samples.
        options: other options of the ``polyreg`` solver, e.g.
            ``{"ridge_grid": (1, 10, 100)}`` or ``{"batches": 20}``.
        image_shape: ``(H, W)`` or ``(C, H, W)`` of flat samples (None:
            image-shaped ``X``, a square one-channel image, else one row).
        random_state: seed of bagging's subsets (None: 0).
        verbose: show the progress bar.

    Attributes:
        classes_, n_features_in_, input_shape_, history_, solver_options_, n_iter_: as in
            :class:`PolyNetClassifier`.
        model_: the fitted :class:`~symnet.core.model.polyreg.PolyRegModel`
            (``model_.weight`` holds the coefficients, one column per class).
        ridge_: the penalty used (chosen or given).
        coef_: ``model_.weight.T``, shape ``(n_classes, n_monomials)``.

    Example:
        >>> import numpy as np
        >>> from symnet.sklearn import PolyRegClassifier
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-1, 1, (300, 3)); y = (X[:, 0] * X[:, 2] > 0).astype(int)
        >>> clf = PolyRegClassifier(degree=2, window=None, ridge=1e-3).fit(X, y)
        >>> clf.coef_.shape, clf.score(X, y) > 0.9
        ((2, 10), True)
    """

    def __init__(self, degree=2, window=3, method="exact", ridge="auto", *, options=None, image_shape=None,
                 random_state=None, verbose=False):
        self.degree = degree
        self.window = window
        self.method = method
        self.ridge = ridge
        self.options = options
        self.image_shape = image_shape
        self.random_state = random_state
        self.verbose = verbose

    def _input_shape(self, d: int, sample_shape) -> tuple[int, ...]:
        shape = _image_shape(d, sample_shape, self.image_shape)
        return shape if shape is not None else (d,)

    def fit(self, X, y) -> "PolyRegClassifier":
        """Fit on ``X`` (flat ``(n, d)`` or images ``(n, H, W)`` / ``(n, C, H, W)``) and labels ``y``; return self."""
        X2, y_index, sample_shape = self._validate_fit(X, y)
        if isinstance(self.ridge, str):
            if self.ridge != "auto":
                raise ValueError(f"ridge must be a number >= 0 or 'auto', got {self.ridge!r}")
            ridge = None
        else:
            ridge = self.ridge
        params = {"degree": self.degree, "window": self.window, "method": self.method, "ridge": ridge}
        options = self._with_options(params, "polyreg options", "is a parameter of PolyRegClassifier; set it there")
        n = len(X2)
        if ridge is None and "val_size" not in options and n // 10 < 1:
            options["val_size"] = 1  # fewer than 10 samples: hold out the last one to choose the ridge
        instance = api.solver_instance(PolyRegSolver, options)  # checks the options
        self.input_shape_ = self._input_shape(X2.shape[1], sample_shape)
        data = self._dataset(X2, y_index, self.input_shape_)
        model = PolyRegModel(self.input_shape_, len(self.classes_), degree=self.degree, window=self.window)
        run = RunSpec(seed=_seed(self.random_state), quiet=not self.verbose)
        fitted = api.train(model, data, instance, run=run)
        self.ridge_ = float(fitted.ridge_used)
        self._finish(fitted)
        return self

    @property
    def coef_(self) -> np.ndarray:
        """The coefficients, ``(n_classes, n_monomials)`` (``model_.weight.T``)."""
        check_is_fitted(self)
        return self.model_.weight.T


__all__ = ["PolyNetClassifier", "PolyRegClassifier"]
