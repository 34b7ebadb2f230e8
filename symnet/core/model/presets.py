"""Preset networks by name: ``seed``, ``poly`` (the default), ``poly2`` and ``mlp``.

Example:
    >>> from symnet.core.model import presets as models
    >>> m = models.get("poly", channels=4, kernel=3)
    >>> m.num_params
    6810
"""

from __future__ import annotations

from typing import Callable

from symnet.core.errors import ModelError
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly
from symnet.core.model import Sequential


def _spatial(size: int, kernel: int, padding: str) -> int:
    return size if padding == "same" else size - kernel + 1


def _check_fits(name: str, H: int, W: int, kernel: int, pool: int, padding: str, blocks: int) -> None:
    """A clear error when ``blocks`` conv+pool blocks leave no pixels of an H x W input."""
    h, w = H, W
    for b in range(blocks):
        hc, wc = _spatial(h, kernel, padding), _spatial(w, kernel, padding)
        if min(hc, wc) < 1 or min(hc // pool, wc // pool) < 1:
            where = f"block {b + 1} of {blocks} gets a {h}x{w} map" if blocks > 1 else f"the input is {h}x{w}"
            raise ModelError(f"{name} with kernel {kernel} and pool {pool} leaves no pixels: {where}, too small "
                             f"for a {kernel}x{kernel} kernel and a {pool}x{pool} pool; use a smaller kernel, a "
                             "smaller pool or padding='same'")
        h, w = hc // pool, wc // pool


def seed(input_shape=(1, 28, 28), num_classes: int = 10, channels: int = 1, kernel: int = 3,
         bias: bool = True, seed: int | None = 0) -> Sequential:
    """Conv with one 3x3 filter, then linear 676 -> 10, no activation (about 6.8k parameters)."""
    C, H, W = input_shape
    _check_fits("seed", H, W, kernel, 1, "valid", 1)
    h, w = _spatial(H, kernel, "valid"), _spatial(W, kernel, "valid")
    return Sequential(Conv2d(C, channels, kernel, bias=bias), Flatten(),
                      Linear(channels * h * w, num_classes, bias=bias),
                      input_shape=input_shape, seed=seed, name="seed")


def poly(input_shape=(1, 28, 28), num_classes: int = 10, channels: int = 16, kernel: int = 5,
         activation="square", pool: int = 2, padding: str = "valid", bias: bool = True,
         seed: int | None = 0) -> Sequential:
    """Conv (C filters of k x k) -> x^2 -> avgpool 2 -> linear to the classes."""
    C, H, W = input_shape
    _check_fits("poly", H, W, kernel, pool, padding, 1)
    h, w = _spatial(H, kernel, padding) // pool, _spatial(W, kernel, padding) // pool
    return Sequential(Conv2d(C, channels, kernel, padding=padding, bias=bias), Poly(activation), AvgPool2d(pool),
                      Flatten(), Linear(channels * h * w, num_classes, bias=bias),
                      input_shape=input_shape, seed=seed, name="poly")


def poly2(input_shape=(1, 28, 28), num_classes: int = 10, channels: int = 16, channels2: int = 32,
          kernel: int = 5, activation="square", pool: int = 2, padding: str = "valid", bias: bool = True,
          seed: int | None = 0) -> Sequential:
    """Conv -> x^2 -> pool -> conv -> x^2 -> pool -> linear (16 and 32 filters of 5x5 by default)."""
    C, H, W = input_shape
    _check_fits("poly2", H, W, kernel, pool, padding, 2)
    h, w = _spatial(H, kernel, padding) // pool, _spatial(W, kernel, padding) // pool
    h, w = _spatial(h, kernel, padding) // pool, _spatial(w, kernel, padding) // pool
    if h < 1 or w < 1:
        raise ModelError(f"poly2 with kernel {kernel} and pool {pool} does not fit {H}x{W} inputs; "
                         "use a smaller kernel or padding='same'")
    return Sequential(Conv2d(C, channels, kernel, padding=padding, bias=bias), Poly(activation), AvgPool2d(pool),
                      Conv2d(channels, channels2, kernel, padding=padding, bias=bias), Poly(activation),
                      AvgPool2d(pool), Flatten(), Linear(channels2 * h * w, num_classes, bias=bias),
                      input_shape=input_shape, seed=seed, name="poly2")


def mlp(input_dim: int = 2, hidden: int = 2, num_classes: int = 2, activation="square", bias: bool = True,
        seed: int | None = 0, input_shape=None) -> Sequential:
    """Linear -> Poly -> Linear on vector inputs (XOR, teacher-student data)."""
    if input_shape is not None:
        input_dim = int(input_shape[0]) if len(input_shape) == 1 else None
        if input_dim is None:
            layers_in = [Flatten()]
            import numpy as np

            input_dim = int(np.prod(input_shape))
        else:
            layers_in = []
    else:
        layers_in, input_shape = [], (input_dim,)
    return Sequential(*layers_in, Linear(input_dim, hidden, bias=bias), Poly(activation),
                      Linear(hidden, num_classes, bias=bias), input_shape=input_shape, seed=seed, name="mlp")


PRESETS: dict[str, Callable[..., Sequential]] = {"seed": seed, "poly": poly, "poly2": poly2, "mlp": mlp}


def available() -> list[str]:
    return list(PRESETS)


def get(name: str, **kwargs) -> Sequential:
    """Build preset ``name`` with keyword overrides (``channels``, ``kernel``, ``seed`` ...)."""
    if name not in PRESETS:
        raise ModelError(f"unknown model {name!r}; presets: {', '.join(PRESETS)}")
    try:
        return PRESETS[name](**kwargs)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: {exc}") from None
