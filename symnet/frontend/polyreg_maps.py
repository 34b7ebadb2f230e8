"""Coefficient maps of a polynomial-regression model, one image per class.

A :class:`symnet.core.model.polyreg.PolyRegModel` has one coefficient per monomial and
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

At degree 3 the maps blur products of several pixels into one point;
:func:`top_interactions` ranks each class's strongest monomials of one degree
(coefficient times the monomial's RMS over the data) and
:func:`plot_interactions` draws them over the class's mean image.

Example:
    >>> from symnet.core.model.polyreg import PolyRegModel
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
from symnet.core.model.polyreg import features, row_blocks

from symnet.frontend import plots


def _image_shape(model) -> tuple[int, int, int]:
    shape = tuple(model.input_shape)
    return ((1, 1) + shape)[-3:] if len(shape) < 3 else shape  # type: ignore[return-value]


def degree_map(model, degree: int, channel: int | None = None) -> np.ndarray:
    """Coefficients of the monomials of one degree placed on the image, shape ``(classes, H, W)``.

    Args:
        model: a fitted :class:`symnet.core.model.polyreg.PolyRegModel`.
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
        >>> from symnet.core.model.polyreg import PolyRegModel
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


# --------------------------------------------------------------------------- strongest interactions
def top_interactions(model, degree: int, X: np.ndarray | None = None, top: int = 6,
                     min_distinct: int = 1) -> list[list[tuple]]:
    """The ``top`` monomials of one degree with the largest effect on each class's score.

    The effect of monomial ``j`` on class ``c`` is ``w[j, c] * rms_j`` with
    ``rms_j`` the root mean square of the monomial over the samples ``X``
    (what a typical input adds to the score through it); without ``X`` the
    bare coefficients are ranked, which favours monomials that are almost
    never active (their coefficients are large and matter little).

    Args:
        model: a fitted :class:`symnet.core.model.polyreg.PolyRegModel`.
        degree: 1 .. ``model.degree``.
        X: samples ``(N, *input_shape)`` to measure each monomial's size on.
        top: monomials per class, largest ``|effect|`` first.
        min_distinct: only monomials of at least this many distinct pixels
            (2 leaves out the powers ``x^3`` of single pixels).

    Returns:
        One list per class of ``(effect, ((c, h, w), ...) factors, name)``.

    Example:
        >>> from symnet.core.model.polyreg import PolyRegModel
        >>> m = PolyRegModel((1, 3, 3), 1, degree=3, window=2)
        >>> m.weight[m.feature_names().index("x[0,0,0]*x[0,0,1]*x[0,1,1]"), 0] = -2.0
        >>> top_interactions(m, 3, top=1)[0][0][:2]
        (-2.0, ((0, 0, 0), (0, 0, 1), (0, 1, 1)))
    """
    table = getattr(model, "table", None)
    if table is None or not hasattr(model, "weight"):
        raise ModelError(f"interaction maps need a PolyRegModel, got {type(model).__name__}")
    if not isinstance(degree, (int, np.integer)) or not 1 <= degree <= table.shape[1]:
        raise ModelError(f"degree must lie in 1..{table.shape[1]} for this model, got {degree!r}")
    rows = np.nonzero(np.count_nonzero(table >= 0, axis=1) == degree)[0]
    if min_distinct > 1:
        t = table[rows, :degree]
        rows = rows[1 + np.count_nonzero(np.diff(t, axis=1) != 0, axis=1) >= min_distinct]
    scale = np.ones(len(rows))
    if X is not None:
        X2 = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        sub = np.ascontiguousarray(table[rows])
        sq = np.zeros(len(rows))
        for s, e in row_blocks(len(X2), len(rows)):  # the monomials' values a block of samples at a time
            F = features(X2[s:e], sub)
            sq += np.einsum("ij,ij->j", F, F)
        scale = np.sqrt(sq / max(len(X2), 1))
    effect = model.weight[rows] * scale[:, None]  # (monomials, classes)
    names = model.feature_names() if hasattr(model, "feature_names") else None
    shape = _image_shape(model)
    out = []
    for c in range(effect.shape[1]):
        best = np.argsort(-np.abs(effect[:, c]), kind="stable")[:top]
        picks = []
        for j in best:
            factors = tuple(tuple(int(v) for v in np.unravel_index(i, shape)) for i in table[rows[j], :degree])
            picks.append((float(effect[j, c]), factors, names[rows[j]] if names else ""))
        out.append(picks)
    return out


def plot_interactions(model, degree: int, path: str | Path, X: np.ndarray | None = None,
                      y: np.ndarray | None = None, top: int = 5, min_distinct: int = 2,
                      class_names: Sequence[str] | None = None, crop: int = 0) -> Path:
    """Draw each class's strongest monomials of one degree over that class's mean image, one panel per class.

    Each monomial is a polygon through its factors' pixels (a pixel that
    appears twice is a bigger dot), red when it raises the class score and
    blue when it lowers it, line width proportional to the effect
    (:func:`top_interactions`, measured on ``X``); the rank is printed next
    to it. The background is the mean of the samples of the class (labels
    ``y``), or of all of ``X``, in grey: it shows where the strokes lie.
    ``crop`` pixels are cut from each border (MNIST's are blank).

    Example:
        >>> import tempfile
        >>> from symnet.core.model.polyreg import PolyRegModel
        >>> m = PolyRegModel((1, 5, 5), 2, degree=3, window=2); m.weight[-1] = [1.0, -1.0]
        >>> plot_interactions(m, 3, tempfile.mkdtemp() + "/top.png", min_distinct=1).name
        'top.png'
    """
    picks = top_interactions(model, degree, X, top, min_distinct)
    channels, height, width = _image_shape(model)
    k = len(picks)
    images = np.zeros((k, height, width))
    if X is not None:
        X3 = np.asarray(X, dtype=np.float64).reshape(len(X), channels, height, width).mean(axis=1)
        for c in range(k):
            sel = X3[np.asarray(y) == c] if y is not None else X3
            images[c] = sel.mean(axis=0) if len(sel) else 0.0
    names = list(class_names) if class_names is not None else [f"class {i}" for i in range(k)]
    largest = max((abs(e) for cls in picks for e, _, _ in cls), default=1.0) or 1.0
    cols = min(k, 5)
    rows = -(-k // cols)
    fig = plots.new_figure(2.6 * cols, 2.75 * rows + 0.8)
    _, used = plots.panels(fig, k, rows, cols)
    for i, ax in enumerate(used):
        ax.imshow(images[i], cmap="Greys", vmin=0, vmax=max(float(images[i].max()), 1e-12) * 1.8,
                  interpolation="nearest")
        ax.set_xlim(crop - 0.5, width - crop - 0.5)
        ax.set_ylim(height - crop - 0.5, crop - 0.5)
        for rank, (eff, factors, _) in enumerate(picks[i], 1):
            color = "#c0392b" if eff > 0 else "#2166ac"
            lw = 0.8 + 3.2 * abs(eff) / largest
            hw = [(f[1], f[2]) for f in factors]
            uniq = sorted(set(hw))
            ys, xs = zip(*(uniq + uniq[:1]))
            if len(uniq) > 1:
                ax.plot(xs, ys, "-", color=color, lw=lw, alpha=0.85, solid_joinstyle="round")
            for (h, w) in uniq:
                mult = hw.count((h, w))
                ax.plot(w, h, "o", color=color, ms=2.5 + 2.5 * mult, alpha=0.9)
            ax.annotate(str(rank), (max(p[1] for p in hw), min(p[0] for p in hw)), xytext=(3, 2),
                        textcoords="offset points", fontsize=7, color=color, fontweight="bold")
        ax.set_title(names[i], fontsize=9)
    what = f"degree-{degree} products" + (f" of {min_distinct}+ distinct pixels" if min_distinct > 1 else "")
    measure = "coefficient x RMS of the product over the data" if X is not None else "coefficient"
    fig.suptitle(f"Strongest {what} per class, over the class's mean image: red raises the class score, blue "
                 f"lowers it; line width ~ |{measure}|; a bigger dot is a squared pixel; numbers are ranks",
                 fontsize=9, wrap=True)
    return plots.save(fig, path)
