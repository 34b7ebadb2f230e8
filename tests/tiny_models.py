"""Tiny networks and data shared by the tests: every layer kind, poly2 included."""

import numpy as np

from symnet.core.model import presets as models
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from symnet.core.model import Sequential


def tiny_models():
    return {
        "mlp": models.get("mlp", input_dim=3, hidden=2, num_classes=2, seed=1),
        "mlp-cubic": models.get("mlp", input_dim=2, hidden=2, num_classes=2, activation="relu-approx-c", seed=2),
        "seed": models.get("seed", input_shape=(1, 5, 5), num_classes=2, seed=3),
        "poly": models.get("poly", input_shape=(1, 6, 6), channels=2, kernel=3, num_classes=2, seed=4),
        "poly-same": Sequential(Conv2d(2, 2, 3, padding="same"), Poly("relu-approx-a"), AvgPool2d(2), Flatten(),
                                Linear(2 * 2 * 2, 2), input_shape=(2, 4, 4), seed=5),
        "poly2": models.get("poly2", input_shape=(1, 8, 8), channels=2, channels2=2, kernel=2, num_classes=2,
                            seed=6),
        "nobias": Sequential(Conv2d(1, 1, 2, bias=False), Square(), Flatten(), Linear(9, 2, bias=False),
                             input_shape=(1, 4, 4), seed=7),
    }


def tiny_data(model, n=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n,) + model.input_shape)
    Y = np.eye(model.num_outputs)[rng.integers(0, model.num_outputs, n)]
    return X, Y


def toy_data(model, n=40, seed=0):
    """A random classification Dataset for ``model``'s input shape (the first 10 samples double as test set)."""
    from symnet.core.datasets import Dataset

    rng = np.random.default_rng(seed)
    X = rng.random((n,) + model.input_shape)
    y = rng.integers(0, model.num_outputs, n)
    return Dataset("toy", X, y, X[:10], y[:10], model.num_outputs)


def extra_models():
    """Presets and layer options that tiny_models() does not cover."""
    return {
        "poly-relu-b": models.get("poly", input_shape=(1, 5, 5), channels=2, kernel=2, activation="relu-approx-b",
                                  num_classes=3, seed=11),
        "poly2-same": models.get("poly2", input_shape=(1, 4, 4), channels=2, channels2=2, kernel=3, padding="same",
                                 activation="relu-approx-c", num_classes=2, seed=12),
        "mlp-image": models.get("mlp", input_shape=(1, 2, 2), hidden=3, num_classes=3, activation="relu-approx-a",
                                seed=13),
        "conv-rect": Sequential(Conv2d(2, 2, (2, 3), padding="same"), Square(), AvgPool2d(2), Flatten(),
                                Linear(2 * 2 * 2, 2), input_shape=(2, 4, 5), seed=14),
    }


def all_models():
    return {**tiny_models(), **extra_models()}



def randomized(model, seed=0, scale=0.5):
    """A copy with every parameter (biases too) drawn at random, so no term hides behind a zero."""
    model = model.copy()
    model.set_flat(np.random.default_rng(seed).normal(scale=scale, size=model.num_params))
    return model


def tiny_loss(model, n=3, ridge=0.0, **kwargs):
    """``(model copy, X, Y, Restriction)``: the exact loss of a copy of ``model`` on ``n`` tiny samples."""
    from symnet.core.restriction import Restriction

    model = model.copy()
    X, Y = tiny_data(model, n=n)
    return model, X, Y, Restriction(model, X, Y, ridge=ridge, **kwargs)


class Clock:
    """A clock the test moves by hand (``clock.t += seconds``): no test bounds wall time."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t
