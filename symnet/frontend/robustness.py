"""Accuracy of trained models on corrupted test images: global Gaussian noise and a local black patch.

Global noise: iid Gaussian noise of standard deviation ``sigma`` is added to
every pixel and the result is clipped to [0, 1].

Local noise: one black rectangle (pixels set to 0 in every channel) per test
image. For a patch of area ``A``:

* the centre ``(c_row, c_col)`` is uniform in ``[6, 22]^2`` (for 28 x 28
  images; other sizes scale the range by ``H / 28`` and ``W / 28``), in
  continuous pixel coordinates where the image spans ``[0, H] x [0, W]`` and
  pixel ``(i, j)`` has its centre at ``(i + 0.5, j + 0.5)``;
* the aspect ratio ``D`` is uniform in ``(1/2, 2)``;
* width ``floor(D * sqrt(A))`` and height ``floor(sqrt(A) / D)`` pixels: the
  rectangle ``[c - size/2, c + size/2)`` on each axis covers exactly the pixels
  whose centres fall inside it, ``size`` of them, then it is clipped to the
  image.

Each test image gets its own independent patch. The random draws are made
once per seed and shared by every level and every model (common random
numbers): the noise field of each ``sigma`` is the same standard-normal field
scaled, and the patches of a larger area share the centres and aspect ratios
of the smaller ones (they grow nested). So every model sees exactly the same
corrupted images, the curves are smooth in the level, and adding or removing
a level changes no other level's images.

The relative accuracy drop at a level is ``(A(0) - A) / A(0)`` where ``A(0)`` is
the accuracy on the clean test set.

Example:
    >>> import numpy as np
    >>> g = patch_geometry(4, 100.0, np.random.default_rng(0))
    >>> bool(np.all((g["aspect"] > 0.5) & (g["aspect"] < 2)))
    True
    >>> X = np.full((4, 1, 28, 28), 0.5)
    >>> float(gaussian_noise(X, 0.0, np.random.default_rng(0)).max())
    0.5
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import symnet.core.progress as progress
from symnet.core.errors import DataError, ModelError
from symnet.core.files import atomic_write_bytes, to_jsonable
from symnet.core.model.saving import load_model
from symnet.core.objective import accuracy

from symnet.frontend import api, plots
from symnet.frontend.tables import render

#: Default noise levels.
DEFAULT_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
DEFAULT_AREAS = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0)
#: Range of patch centres on a 28 x 28 image (scaled for other sizes).
CENTRE_RANGE = (6.0, 22.0)
REFERENCE_SIZE = 28.0
#: Rows of uniform draws per image: centre row, centre column, aspect ratio.
_PATCH_DRAWS = 3


# --------------------------------------------------------------------------- noise
def gaussian_noise(X: np.ndarray, sigma: float, rng: np.random.Generator | None = None, *,
                   noise: np.ndarray | None = None) -> np.ndarray:
    """``clip(X + sigma * Z, 0, 1)`` with ``Z`` iid standard normal (drawn from ``rng`` or given as ``noise``).

    Example:
        >>> X = np.array([[0.0, 0.5, 1.0]])
        >>> gaussian_noise(X, 1.0, noise=np.array([[-1.0, 0.25, 1.0]])).tolist()
        [[0.0, 0.75, 1.0]]
    """
    sigma = _level(sigma, "sigma")
    X = np.asarray(X, dtype=np.float64)
    if noise is None:
        if rng is None:
            raise DataError("gaussian_noise needs a random generator (rng=np.random.default_rng(seed)) or noise=")
        noise = rng.standard_normal(X.shape)
    elif np.shape(noise) != X.shape:
        raise DataError(f"noise must have the shape of the images {X.shape}, got {np.shape(noise)}")
    return np.clip(X + sigma * noise, 0.0, 1.0)


def _level(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a number >= 0, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise DataError(f"{what} must be a finite number >= 0, got {value!r}")
    return v


def _centre_range(size: int) -> tuple[float, float]:
    scale = size / REFERENCE_SIZE
    return CENTRE_RANGE[0] * scale, CENTRE_RANGE[1] * scale


def patch_geometry(n: int, area: float, rng: np.random.Generator | None = None, *,
                   uniforms: np.ndarray | None = None, height: int = 28, width: int = 28) -> dict[str, np.ndarray]:
    """Centres, aspect ratios and (unclipped) sizes of ``n`` patches of area ``area``.

    Args:
        n: number of images.
        area: the patch area ``A`` in pixels (before flooring and clipping).
        rng: source of the draws, or
        uniforms: ``(n, 3)`` uniform draws in [0, 1) (centre row, centre
            column, aspect), to share draws across areas.
        height, width: image size (sets the centre range).

    Returns:
        Dict of arrays of length ``n``: ``centre_row``, ``centre_col``,
        ``aspect`` (D), ``width`` = floor(D sqrt(A)), ``height`` = floor(sqrt(A) / D).

    Example:
        >>> g = patch_geometry(1, 64.0, uniforms=np.array([[0.5, 0.5, 1 / 3]]))
        >>> float(g["centre_row"][0]), float(g["aspect"][0]), int(g["width"][0]), int(g["height"][0])
        (14.0, 1.0, 8, 8)
    """
    area = _level(area, "patch area")
    if uniforms is None:
        if rng is None:
            raise DataError("patch_geometry needs a random generator (rng=np.random.default_rng(seed)) or uniforms=")
        uniforms = rng.random((int(n), _PATCH_DRAWS))
    uniforms = np.asarray(uniforms, dtype=np.float64)
    if uniforms.shape != (int(n), _PATCH_DRAWS):
        raise DataError(f"uniforms must have shape ({n}, {_PATCH_DRAWS}), got {uniforms.shape}")
    r_lo, r_hi = _centre_range(height)
    c_lo, c_hi = _centre_range(width)
    aspect = 0.5 + 1.5 * uniforms[:, 2]
    root = math.sqrt(area)
    return {
        "centre_row": r_lo + (r_hi - r_lo) * uniforms[:, 0],
        "centre_col": c_lo + (c_hi - c_lo) * uniforms[:, 1],
        "aspect": aspect,
        "width": np.floor(aspect * root).astype(np.int64),
        "height": np.floor(root / aspect).astype(np.int64),
    }


def patch_boxes(geometry: dict[str, np.ndarray], height: int, width: int) -> tuple[np.ndarray, ...]:
    """Half-open pixel boxes ``(top, bottom, left, right)`` of the patches, clipped to the image.

    Along each axis a patch of ``size`` pixels centred at ``c`` covers the
    pixels ``k`` with ``c - size/2 <= k + 0.5 < c + size/2``: exactly ``size``
    consecutive pixels starting at ``ceil(c - size/2 - 0.5)``.

    Example:
        >>> g = {"centre_row": np.array([14.0]), "centre_col": np.array([1.0]),
        ...      "height": np.array([4]), "width": np.array([6])}
        >>> [int(v[0]) for v in patch_boxes(g, 28, 28)]
        [12, 16, 0, 4]
    """
    def axis(centre, size, limit):
        start = np.ceil(centre - size / 2.0 - 0.5).astype(np.int64)
        return np.clip(start, 0, limit), np.clip(start + size, 0, limit)

    top, bottom = axis(geometry["centre_row"], geometry["height"], height)
    left, right = axis(geometry["centre_col"], geometry["width"], width)
    return top, bottom, left, right


def patch_masks(boxes: tuple[np.ndarray, ...], height: int, width: int) -> np.ndarray:
    """Boolean masks ``(n, height, width)``, True inside each image's box; built by broadcasting.

    Example:
        >>> m = patch_masks((np.array([1]), np.array([3]), np.array([0]), np.array([2])), 4, 4)
        >>> m[0].astype(int).tolist()
        [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
    """
    top, bottom, left, right = (np.asarray(b)[:, None] for b in boxes)
    rows = np.arange(height)[None, :]
    cols = np.arange(width)[None, :]
    in_rows = (rows >= top) & (rows < bottom)      # (n, H)
    in_cols = (cols >= left) & (cols < right)      # (n, W)
    return in_rows[:, :, None] & in_cols[:, None, :]


def black_patches(X: np.ndarray, area: float, rng: np.random.Generator | None = None, *,
                  uniforms: np.ndarray | None = None) -> np.ndarray:
    """``X`` (N, C, H, W) or (N, H, W) with one black rectangle of area ``area`` per image (a new array).

    Example:
        >>> X = np.ones((2, 1, 28, 28))
        >>> bool((black_patches(X, 0.0, np.random.default_rng(0)) == X).all())
        True
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim not in (3, 4):
        raise DataError(f"black patches need images (N, C, H, W) or (N, H, W), got shape {X.shape}")
    height, width = X.shape[-2:]
    geometry = patch_geometry(len(X), area, rng, uniforms=uniforms, height=height, width=width)
    mask = patch_masks(patch_boxes(geometry, height, width), height, width)
    keep = ~mask if X.ndim == 3 else ~mask[:, None, :, :]
    return X * keep


# --------------------------------------------------------------------------- models
def model_label(path: str | os.PathLike) -> str:
    """A short name for a model file: its folder for ``.../NAME/model.npz``, else the file's stem."""
    p = Path(path)
    if p.is_dir():
        return p.name or str(p)
    return p.parent.name if p.stem == "model" and p.parent.name else p.stem


def load_models(paths: Sequence[str | os.PathLike]) -> tuple[list, list[str]]:
    """Load saved models with :func:`symnet.load`; return ``(models, labels)``.

    Raises:
        FileNotFoundError: a file does not exist.
        CorruptFileError: a file is not a readable symnet model.
        DataError: the models were trained on different input shapes.
    """
    if not paths:
        raise DataError("no models given; pass one or more model.npz files written by symnet train or compare")
    models, labels = [], []
    for path in paths:
        p = Path(path)
        model = load_model(p)
        models.append(model)
        labels.append(model_label(p))
    check_shapes(models, labels)
    duplicated = {label for label in labels if labels.count(label) > 1}
    labels = [f"{label} ({Path(p)})" if label in duplicated else label for label, p in zip(labels, paths)]
    return models, labels


def check_shapes(models: Sequence, labels: Sequence[str]) -> tuple[int, ...]:
    """The common input shape of ``models``; DataError when they differ."""
    shapes = [tuple(getattr(m, "input_shape", ())) for m in models]
    if len(set(shapes)) > 1:
        listing = ", ".join(f"{lab} {shape}" for lab, shape in zip(labels, shapes))
        raise DataError(f"the models were trained on different input shapes ({listing}); "
                        "compare models trained on the same kind of data")
    return shapes[0]


# --------------------------------------------------------------------------- evaluation
class Robustness:
    """Accuracies of several models under global and local noise.

    Attributes:
        names: model labels.
        sigmas, areas: the noise levels (1-D arrays).
        clean: clean test accuracy per model, shape ``(models,)``.
        acc_sigma, acc_area: accuracy per model and level, shapes
            ``(models, len(sigmas))`` and ``(models, len(areas))``.
        dataset, n_test, seed: what was evaluated.
        examples: one test image under each level (for a figure), or None.
    """

    def __init__(self, names, sigmas, areas, clean, acc_sigma, acc_area, *, dataset: str, n_test: int,
                 seed: int, examples: dict | None = None) -> None:
        self.names = list(names)
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.areas = np.asarray(areas, dtype=np.float64)
        self.clean = np.asarray(clean, dtype=np.float64)
        self.acc_sigma = np.asarray(acc_sigma, dtype=np.float64).reshape(len(self.names), len(self.sigmas))
        self.acc_area = np.asarray(acc_area, dtype=np.float64).reshape(len(self.names), len(self.areas))
        self.dataset, self.n_test, self.seed = dataset, int(n_test), int(seed)
        self.examples = examples

    def accuracy(self, kind: str) -> np.ndarray:
        """Accuracy per model and level; ``kind`` is ``"sigma"`` or ``"area"``."""
        if kind not in ("sigma", "area"):
            raise DataError(f"kind must be 'sigma' or 'area', got {kind!r}")
        return self.acc_sigma if kind == "sigma" else self.acc_area

    def drop(self, kind: str) -> np.ndarray:
        """Relative accuracy drop ``(A(0) - A) / A(0)`` per model and level (NaN where A(0) = 0)."""
        acc = self.accuracy(kind)
        clean = self.clean[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(clean > 0, (clean - acc) / clean, np.nan)

    # ---------------------------------------------------------------- text
    def _table_rows(self, kind: str) -> tuple[list[str], list[list[str]]]:
        levels = self.sigmas if kind == "sigma" else self.areas
        head = ["model", "clean"] + [f"{'sigma' if kind == 'sigma' else 'A'}={v:g}" for v in levels]
        acc, drop = self.accuracy(kind), self.drop(kind)
        rows = []
        for i, name in enumerate(self.names):
            cells = [name, f"{100 * self.clean[i]:.2f}"]
            for a, d in zip(acc[i], drop[i]):
                cells.append(f"{100 * a:.2f} ({100 * d:+.1f})" if np.isfinite(d) else f"{100 * a:.2f} (-)")
            rows.append(cells)
        return head, rows

    def caption(self) -> str:
        return (f"Test accuracy in % on {self.dataset} ({self.n_test:,} test images, seed {self.seed}); in "
                "brackets the relative accuracy drop (A(0) - A) / A(0) in %, A(0) = clean accuracy. "
                "sigma: iid Gaussian noise of that standard deviation on every pixel, clipped to [0, 1]. "
                "A: one black rectangle of about A pixels per image (centre uniform in [6, 22]^2, aspect "
                "D uniform in (1/2, 2), width floor(D sqrt(A)), height floor(sqrt(A)/D), clipped to the image).")

    def table(self, fmt: str = "text", caption: bool = True) -> str:
        """Two tables (global, local noise): accuracy % and relative drop % per model and level."""
        blocks = []
        for kind, title in (("sigma", "global noise (Gaussian, std sigma)"),
                            ("area", "local noise (black patch, area A)")):
            head, rows = self._table_rows(kind)
            columns = [(i, h, "{}") for i, h in enumerate(head)]
            table = render([dict(enumerate(r)) for r in rows], columns, fmt, align=["l"] + ["r"] * (len(head) - 1))
            blocks.append((f"**{title}**\n\n" if fmt == "markdown" else f"{title}\n") + table)
        text = "\n\n".join(blocks)
        return text + ("\n\n" + self.caption() if caption else "")

    def __str__(self) -> str:
        return self.table()

    def _repr_markdown_(self) -> str:
        return self.table("markdown")

    # ---------------------------------------------------------------- JSON, figures, files
    def to_dict(self) -> dict:
        return to_jsonable({
            "dataset": self.dataset, "n_test": self.n_test, "seed": self.seed, "models": self.names,
            "sigmas": self.sigmas, "areas": self.areas, "clean_accuracy": self.clean,
            "accuracy_sigma": self.acc_sigma, "accuracy_area": self.acc_area,
            "drop_sigma": self.drop("sigma"), "drop_area": self.drop("area"),
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def plot(self):
        """:class:`symnet.frontend.plots.Figures`: ``robustness_accuracy``, ``robustness_drop`` and ``noise_examples``."""
        figs = plots.robustness_figures(self)
        if self.examples is not None:
            figs["noise_examples"] = plots.corruption_examples(
                self.examples["clean"], self.examples["sigma"], self.sigmas, self.examples["area"], self.areas,
                f"test image 0 of {self.dataset} under each noise level (seed {self.seed}); "
                "red outline: the black patch",
                area_boxes=self.examples.get("boxes") or None)
        return figs

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write ``robustness.json``, ``table.txt``, ``table.md`` and the PNGs into ``out``."""
        out = Path(out)
        written = [atomic_write_bytes(out / "robustness.json", (self.to_json() + "\n").encode()),
                   atomic_write_bytes(out / "table.txt", (self.table() + "\n").encode()),
                   atomic_write_bytes(out / "table.md", (self.table("markdown") + "\n").encode())]
        return written + self.plot().save(out)


def _accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    return accuracy(model.forward(X), y)


def _levels(values: Sequence[float] | None, default: Sequence[float], what: str) -> np.ndarray:
    values = default if values is None else values
    out = np.array([_level(v, what) for v in np.atleast_1d(values)], dtype=np.float64)
    if out.size == 0:
        raise DataError(f"give at least one {what} level")
    return out


def evaluate(models, data, sigmas: Sequence[float] | None = None, areas: Sequence[float] | None = None,
             seed: int = 0, *, names: Sequence[str] | None = None, test_samples: int | None = None,
             quiet: bool | None = None) -> Robustness:
    """Test accuracy of each model under Gaussian noise (``sigmas``) and black patches (``areas``).

    Args:
        models: trained models, or paths of saved ones (``model.npz`` or their
            folders), all for the same input shape.
        data: a :class:`~symnet.core.datasets.Dataset` or a dataset name; its test split is used.
        sigmas: noise standard deviations (default :data:`DEFAULT_SIGMAS`).
        areas: patch areas in pixels (default :data:`DEFAULT_AREAS`).
        seed: seed of the noise and the patches.
        names: labels of the models (default: from the file names or the models' names).
        test_samples: use the first N test images.
        quiet: hide the progress bar.

    Returns:
        A :class:`Robustness`.

    Raises:
        DataError: models with different input shapes, or not matching the data.

    Example:
        >>> import symnet
        >>> data = symnet.datasets.load("mnist-small").subset(10, 50)
        >>> model = symnet.models.get("seed", seed=0)
        >>> r = evaluate([model], data, sigmas=[0, 0.5], areas=[0, 100], seed=0, quiet=True)
        >>> bool(r.acc_sigma[0, 0] == r.clean[0] == r.acc_area[0, 0])
        True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a whole number >= 0, got {seed!r}")
    sigmas = _levels(sigmas, DEFAULT_SIGMAS, "sigma")
    areas = _levels(areas, DEFAULT_AREAS, "patch area")
    models = list(models) if not isinstance(models, (str, os.PathLike)) else [models]
    if models and all(isinstance(m, (str, os.PathLike)) for m in models):
        loaded, labels = load_models(models)
    elif any(isinstance(m, (str, os.PathLike)) for m in models):
        raise ModelError("pass either models or paths of saved models, not a mix")
    else:
        if not models:
            raise DataError("no models given; pass one or more trained models")
        loaded = models
        labels = [getattr(m, "name", None) or f"model {i}" for i, m in enumerate(models)]
        check_shapes(loaded, labels)
    if names is not None:
        if len(names) != len(loaded):
            raise DataError(f"{len(names)} names for {len(loaded)} models; pass one name per model")
        labels = [str(n) for n in names]
    data = api.load_data(data, quiet=quiet)
    if test_samples is not None:
        data = data.subset(None, test_samples)
    shape = tuple(loaded[0].input_shape)
    if shape != tuple(data.input_shape):
        raise DataError(f"the models take inputs of shape {shape} but {data.name} has {tuple(data.input_shape)}; "
                        "evaluate them on the dataset they were trained on")
    X, y = data.x_test, data.y_test
    if len(X) == 0:
        raise DataError(f"{data.name} has no test images; pick a dataset with a test split")
    if len(shape) < 2 and np.any(areas > 0):
        raise DataError(f"black patches need image inputs (C, H, W); {data.name} has vectors of shape {shape}; "
                        "pass --areas 0")
    rng = np.random.default_rng(int(seed))
    field = rng.standard_normal(X.shape)            # one field, scaled by each sigma
    uniforms = rng.random((len(X), _PATCH_DRAWS))   # one patch draw per image, grown with the area
    clean = np.empty(len(loaded))
    acc_sigma = np.empty((len(loaded), len(sigmas)))
    acc_area = np.empty((len(loaded), len(areas)))
    examples = {"clean": X[0], "sigma": [], "area": [], "boxes": []}
    total = len(loaded) * (1 + len(sigmas) + len(areas))
    with progress.bar(total=total, desc="robustness", unit="eval", quiet=quiet) as bar:
        for i, model in enumerate(loaded):
            clean[i] = _accuracy(model, X, y)
            bar.update(1)
        for j, sigma in enumerate(sigmas):
            noisy = gaussian_noise(X, sigma, noise=field)
            examples["sigma"].append(noisy[0])
            for i, model in enumerate(loaded):
                acc_sigma[i, j] = _accuracy(model, noisy, y)
                bar.update(1)
        for j, area in enumerate(areas):
            patched = black_patches(X, area, uniforms=uniforms) if len(shape) >= 2 else X
            examples["area"].append(patched[0])
            if len(shape) >= 2:
                h, w = shape[-2:]
                box = patch_boxes(patch_geometry(1, area, uniforms=uniforms[:1], height=h, width=w), h, w)
                examples["boxes"].append(tuple(int(b[0]) for b in box))
            for i, model in enumerate(loaded):
                acc_area[i, j] = _accuracy(model, patched, y)
                bar.update(1)
    return Robustness(labels, sigmas, areas, clean, acc_sigma, acc_area, dataset=data.name, n_test=len(X),
                      seed=int(seed), examples=examples)


__all__ = ["CENTRE_RANGE", "DEFAULT_AREAS", "DEFAULT_SIGMAS", "Robustness", "black_patches", "check_shapes",
           "evaluate", "gaussian_noise", "load_models", "model_label", "patch_boxes", "patch_geometry",
           "patch_masks"]
