"""Coefficient maps of a polynomial-regression model, one image per class.

A :class:`symnet.core.polyreg_model.PolyRegModel` has one coefficient per monomial and
class. :func:`degree_map` turns the coefficients of one degree into an image
per class:

* degree 1: the coefficient of ``x[c, h, w]`` sits at pixel ``(h, w)``;
* degree 2 and above: each monomial's coefficient is placed at the centroid
  of its factors' positions (for a pair, its midpoint; ``x^2`` sits on its own
  pixel) and the maps add up all monomials that land on a pixel. A centroid
  between pixels is split bilinearly over the surrounding pixels, so a pair
  whose midpoint falls half-way between two pixels gives half to each, and one
  in the middle of four pixels a quarter to each; the total of each map equals
  the sum of that degree's coefficients.

Channels are summed unless ``channel`` picks one. :func:`save_maps` writes one
PNG per degree with a panel per class, a diverging colormap centred at zero
and a shared colour bar.

Example:
    >>> from symnet.core.polyreg_model import PolyRegModel
    >>> m = PolyRegModel((1, 3, 3), 2, degree=2, window=2)
    >>> m.weight[m.feature_names().index("x[0,0,0]*x[0,0,1]"), 1] = 2.0
    >>> degree_map(m, 2)[1, 0].tolist()
    [1.0, 1.0, 0.0]
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from symnet.core.errors import ModelError

from symnet.frontend import plots


def _image_shape(model) -> tuple[int, int, int]:
    shape = tuple(model.input_shape)
    return ((1, 1) + shape)[-3:] if len(shape) < 3 else shape  # type: ignore[return-value]


def degree_map(model, degree: int, channel: int | None = None) -> np.ndarray:
    """Coefficients of the monomials of one degree placed on the image, shape ``(classes, H, W)``.

    Args:
        model: a fitted :class:`symnet.core.polyreg_model.PolyRegModel`.
        degree: 1 .. ``model.degree``.
        channel: keep only monomials whose factors all lie in this channel;
            ``None`` keeps every monomial (channels are summed).

    Raises:
        ModelError: the model is not a polynomial-regression model, or the
            degree or channel is out of range.
    """
    table = getattr(model, "table", None)
    if table is None or not hasattr(model, "weight"):
        raise ModelError(f"coefficient maps need a PolyRegModel, got {type(model).__name__}")
    if not isinstance(degree, (int, np.integer)) or not 1 <= degree <= table.shape[1]:
        raise ModelError(f"degree must lie in 1..{table.shape[1]} for this model, got {degree!r}")
    channels, height, width = _image_shape(model)
    if channel is not None and not 0 <= channel < channels:
        raise ModelError(f"channel must lie in 0..{channels - 1}, got {channel!r}")
    rows = np.nonzero(np.count_nonzero(table >= 0, axis=1) == degree)[0]
    c, h, w = np.unravel_index(table[rows, :degree], (channels, height, width))
    if channel is not None:
        keep = np.all(c == channel, axis=1)
        rows, h, w = rows[keep], h[keep], w[keep]
    weights = model.weight[rows].T  # (classes, monomials)
    classes = weights.shape[0]
    out = np.zeros((classes, height * width))
    # The centroid of the factors, split bilinearly over the (up to four) surrounding pixels.
    hc, wc = h.mean(axis=1), w.mean(axis=1)
    h0, w0 = np.floor(hc).astype(np.int64), np.floor(wc).astype(np.int64)
    fh, fw = hc - h0, wc - w0
    for dh, dw, share in ((0, 0, (1 - fh) * (1 - fw)), (1, 0, fh * (1 - fw)),
                          (0, 1, (1 - fh) * fw), (1, 1, fh * fw)):
        used = share > 0
        pix = (h0[used] + dh) * width + (w0[used] + dw)
        flat = (np.arange(classes)[:, None] * (height * width) + pix[None, :]).ravel()
        out.ravel()[:] += np.bincount(flat, (weights[:, used] * share[used]).ravel(), classes * height * width)
    return out.reshape(classes, height, width)


def plot_maps(maps: np.ndarray, path: str | Path, title: str, class_names: Sequence[str] | None = None,
              clip_percentile: float = 99.5) -> Path:
    """Save ``maps`` (classes, H, W) as one PNG: a panel per class, shared diverging colour scale.

    The colour scale is symmetric around zero and reaches the
    ``clip_percentile`` percentile of the absolute values, so that a few very
    large coefficients (rarely active border monomials) do not wash out the
    rest; larger values show in the end colours.
    """
    maps = np.asarray(maps, dtype=np.float64)
    k = len(maps)
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(k)]
    if len(names) != k:
        raise ModelError(f"{len(names)} class names for {k} maps; pass one name per class")
    fig = plots.class_maps(maps, title, names, "coefficient", clip_percentile=clip_percentile)
    return plots.save(fig, path)


def save_maps(model, out_dir: str | Path, prefix: str = "polyreg", degrees: Sequence[int] | None = None,
              class_names: Sequence[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<prefix>_degree<d>.png`` for each degree (default: 1 .. model.degree).

    Example:
        >>> import tempfile
        >>> from symnet.core.polyreg_model import PolyRegModel
        >>> m = PolyRegModel((1, 4, 4), 2, degree=2, window=2)
        >>> [p.name for p in save_maps(m, tempfile.mkdtemp())]
        ['polyreg_degree1.png', 'polyreg_degree2.png']
    """
    degrees = list(range(1, model.table.shape[1] + 1)) if degrees is None else list(degrees)
    window = model.window if model.window is not None else "none"
    paths = []
    for d in degrees:
        what = "linear coefficients" if d == 1 else f"degree-{d} coefficients summed at each monomial's centroid"
        title = f"{what} (window {window}, {model.num_features:,} features)"
        paths.append(plot_maps(degree_map(model, d), Path(out_dir) / f"{prefix}_degree{d}.png", title, class_names))
    return paths
