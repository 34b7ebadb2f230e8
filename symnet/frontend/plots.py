"""Every figure symnet draws: training curves of compared solvers, robustness curves, filters and weight maps.

matplotlib is imported only when a figure is drawn. Figures are built with the
object-oriented API on an Agg canvas, never through ``pyplot``: drawing one
does not open a window, does not change the session's backend and leaves no
global figure behind. Each figure also renders itself as a PNG in Jupyter and
Colab (``_repr_png_``), so a cell that ends with a figure shows it inline, and
a :class:`Figures` collection shows all of its figures.

Example:
    >>> import numpy as np
    >>> fig = filter_grid(np.random.default_rng(0).normal(size=(4, 1, 3, 3)), "conv0 filters")
    >>> fig.axes[0].get_title()
    'filter 0'
"""

from __future__ import annotations

import base64
import functools
import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from symnet.core.files import atomic_write_bytes

#: Resolution of saved PNGs (dots per inch).
DPI = 110
#: Draw a marker on every record when a curve has at most this many points.
MAX_MARKED_POINTS = 60


# --------------------------------------------------------------------------- figures
@functools.lru_cache(maxsize=None)
def _figure_class():
    from matplotlib.figure import Figure

    class InlineFigure(Figure):
        """A matplotlib Figure that notebooks display as a PNG."""

        def _repr_png_(self) -> bytes:
            return to_png(self)

    return InlineFigure


def new_figure(width: float, height: float):
    """An empty figure of ``width`` x ``height`` inches on an Agg canvas, constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _figure_class()(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig, dpi: int = DPI) -> bytes:
    """The figure rendered as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` (PNG) atomically and return the path."""
    return atomic_write_bytes(path, to_png(fig, dpi))


class Figures(dict):
    """Named figures (``name -> Figure``); a notebook cell ending with one shows them all.

    Example:
        >>> figs = Figures(a=new_figure(2, 2))
        >>> list(figs)
        ['a']
    """

    def save(self, out: str | Path, prefix: str = "") -> list[Path]:
        """Write ``<out>/<prefix><name>.png`` for every figure; return the paths."""
        return [save(fig, Path(out) / f"{prefix}{name}.png") for name, fig in self.items()]

    def _repr_html_(self) -> str:
        parts = []
        for name, fig in self.items():
            data = base64.b64encode(to_png(fig)).decode()
            parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}"/></figure>')
        return "\n".join(parts)


def panels(fig, k: int, rows: int, cols: int):
    """A ``rows x cols`` grid of bare panels on ``fig`` (no ticks); returns ``(axes, used)``: the grid, and its
    first ``k`` panels in reading order (the others are switched off)."""
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= k:
            ax.axis("off")
    return axes, list(axes.flat)[:k]


def _colors(n: int) -> list:
    """``n`` distinct colours, the same for the same position in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _marker(n_points: int) -> str | None:
    return "o" if n_points <= MAX_MARKED_POINTS else None


def _rule(meta, key: str, default_text: str) -> str:
    return "given" if meta.get(key) == "given" else default_text


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, where it cannot hide a curve."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


# --------------------------------------------------------------------------- training curves
#: Axis labels of the training figures (units in brackets).
TIME_LABEL = "training time (s, wall clock; evaluation excluded)"
LOSS_LABEL = "training loss (objective per sample, log scale)"
PASSES_LABEL = "passes over the training data"
ACC_LABEL = "test accuracy (%)"

_REFERENCE = {"color": "0.45", "linestyle": "--", "linewidth": 1}
_BUDGET = {"color": "0.2", "linestyle": ":", "linewidth": 1.3}


def shared_step_unit(histories) -> str | None:
    """The step unit (``"epoch"``, ``"sweep"`` ...) every history shares, else None.

    Example:
        >>> from symnet.core.history import History
        >>> shared_step_unit({"a": History(step_unit="epoch"), "b": History(step_unit="epoch")})
        'epoch'
    """
    units = {getattr(h, "meta", {}).get("step_unit") for h in histories.values()}
    return units.pop() if len(units) == 1 and None not in units else None


def legend_text(label: str, width: int = 34) -> str:
    """A legend entry broken after commas into lines of about ``width`` characters, so long labels
    (``gauss-newton[varpro=True,batch_size=1000]``) do not squeeze the axes.

    Example:
        >>> print(legend_text("gauss-newton[varpro=True,batch_size=1000,iters_per_step=5]"))
        gauss-newton[varpro=True,
          batch_size=1000,iters_per_step=5]
    """
    if len(label) <= width:
        return label
    lines, line = [], ""
    for piece in label.split(","):
        candidate = f"{line},{piece}" if line else piece
        if line and len(candidate) > width:
            lines.append(line + ",")
            line = piece
        else:
            line = candidate
    lines.append(line)
    return "\n  ".join(lines)


def _budget_line(ax, value: float | None, text: str) -> None:
    if value is not None:
        ax.axvline(value, label=text, **_BUDGET)


def training_figures(histories, *, title: str, legend=None, budget=None, target_loss: float | None = None,
                     target_loss_note: str = "", target_acc: float | None = None,
                     target_acc_note: str = "") -> Figures:
    """Training curves of several runs, one colour per run, for ``compare`` and ``bench``.

    * ``loss_vs_time``: training objective (log scale) vs training time;
    * ``loss_vs_passes``: the same vs passes over the training data;
    * ``test_acc_vs_time``: test accuracy (%) vs training time;
    * ``loss_vs_<unit>s`` and ``test_acc_vs_<unit>s`` (e.g. ``loss_vs_epochs``):
      the same per step, when every run counts its steps in one unit.

    Training time is wall-clock time inside the solvers' steps; evaluating
    the model after each step is not counted. A time budget is drawn as a
    dotted vertical line on the time axes, a step budget on the step axes,
    and the targets as dashed horizontal lines; every legend sits outside the
    axes, to the right.

    Args:
        histories: ``label -> History`` (or anything with ``column``).
        title: second line of every title (model, dataset, sample counts).
        legend: ``label -> legend text`` (default: the label).
        budget: a parsed budget (``{"time": 300, "epochs": 5}``; see
            :func:`symnet.frontend.runner.parse_budget`).
        target_loss, target_acc: reference lines (a fraction for the accuracy).
        target_loss_note, target_acc_note: how the targets were chosen.

    Example:
        >>> from symnet.core.history import History
        >>> h = History(step_unit="epoch")
        >>> for i, loss in enumerate([1.0, 0.5, 0.4]):
        ...     _ = h.append(step=i, loss=loss, test_acc=0.5 + 0.1 * i, time=0.1 * i, passes=float(i))
        >>> figs = training_figures({"sgd": h}, title="demo", budget={"epochs": 2})
        >>> list(figs)
        ['loss_vs_time', 'loss_vs_passes', 'test_acc_vs_time', 'loss_vs_epochs', 'test_acc_vs_epochs']
        >>> figs["loss_vs_epochs"].axes[0].get_xlabel()
        'epochs'
    """
    budget = dict(budget or {})
    labels = list(histories)
    colors = dict(zip(labels, _colors(len(labels))))
    legend = dict(legend or {})
    unit = shared_step_unit(histories)
    time_budget = budget.get("time")
    step_budget = None if unit is None else budget.get("steps", budget.get(f"{unit}s"))
    figs = Figures()

    def curves(x_key: str, y_key: str, scale: float = 1.0):
        for label in labels:
            h = histories[label]
            x, y = h.column(x_key), h.column(y_key) * scale
            keep = np.isfinite(x) & np.isfinite(y)
            if x_key == "step":  # an interim record inside a step (partial=1) has no whole step to stand at
                keep &= h.column("partial") != 1
            yield label, x[keep], y[keep]

    def loss_figure(name: str, x_key: str, x_label: str, what: str, budget_value, budget_text):
        fig = new_figure(9.5, 4.8)
        ax = fig.add_subplot()
        drew = False
        for label, x, y in curves(x_key, "loss"):
            y_pos = np.where(y > 0, y, np.nan)  # a log axis cannot show 0 (an exact fit); leave a gap
            ax.plot(x, y_pos, marker=_marker(len(x)), markersize=4, color=colors[label],
                    label=legend_text(legend.get(label, label)))
            drew = drew or bool(np.isfinite(y_pos).any())
        if drew:
            ax.set_yscale("log")
        if target_loss is not None and target_loss > 0:
            note = f"\n({target_loss_note})" if target_loss_note else ""
            ax.axhline(target_loss, label=f"target loss {target_loss:.4g}{note}", **_REFERENCE)
        _budget_line(ax, budget_value, budget_text)
        ax.set_xlabel(x_label)
        ax.set_ylabel(LOSS_LABEL)
        ax.set_xlim(left=0)
        ax.set_title(f"Training loss vs {what}\n{title}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        _legend_outside(ax)
        figs[name] = fig

    def accuracy_figure(name: str, x_key: str, x_label: str, what: str, budget_value, budget_text):
        fig = new_figure(9.5, 4.8)
        ax = fig.add_subplot()
        for label, x, y in curves(x_key, "test_acc", 100.0):
            ax.plot(x, y, marker=_marker(len(x)), markersize=4, color=colors[label],
                    label=legend_text(legend.get(label, label)))
        if target_acc is not None:
            note = f"\n({target_acc_note})" if target_acc_note else ""
            ax.axhline(100.0 * target_acc, label=f"target accuracy {100 * target_acc:.2f}%{note}", **_REFERENCE)
        _budget_line(ax, budget_value, budget_text)
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0)
        ax.set_xlabel(x_label)
        ax.set_ylabel(ACC_LABEL)
        ax.set_title(f"Test accuracy vs {what}\n{title}", fontsize=10)
        ax.grid(True, alpha=0.3)
        _legend_outside(ax)
        figs[name] = fig

    time_text = None if time_budget is None else f"budget {time_budget:g} s per solver"
    loss_figure("loss_vs_time", "time", TIME_LABEL, "training time", time_budget, time_text)
    loss_figure("loss_vs_passes", "passes", PASSES_LABEL, "passes over the data", None, None)
    accuracy_figure("test_acc_vs_time", "time", TIME_LABEL, "training time", time_budget, time_text)
    if unit is not None:
        units = f"{unit}s"
        step_text = None if step_budget is None else f"budget {step_budget:g} {units}"
        from matplotlib.ticker import MaxNLocator

        loss_figure(f"loss_vs_{units}", "step", units, units, step_budget, step_text)
        accuracy_figure(f"test_acc_vs_{units}", "step", units, units, step_budget, step_text)
        for name in (f"loss_vs_{units}", f"test_acc_vs_{units}"):
            figs[name].axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # whole steps only
    return figs


def comparison_figures(comparison) -> Figures:
    """The figures of a :class:`symnet.frontend.compare.Comparison` (see :func:`training_figures`).

    The comparison's targets are drawn as dashed grey lines and its time
    budget as a dotted vertical line.
    """
    meta = comparison.meta
    return training_figures(
        comparison.histories, title=comparison.title(),
        legend={label: comparison.legend_label(label) for label in comparison.histories},
        budget=meta.get("budget"),
        target_loss=meta.get("target_loss"), target_loss_note=_rule(meta, "target_loss_rule", "worst final loss"),
        target_acc=meta.get("target_acc"), target_acc_note=_rule(meta, "target_acc_rule", "lowest final"))


# --------------------------------------------------------------------------- time to target
def target_figures(result) -> Figures:
    """``loss_vs_time`` of a :class:`symnet.frontend.target.TargetResult`: every run's training loss against
    training time, the targets as dashed lines and the exact solvers' budget as a dotted vertical line."""
    m = result.meta
    labels = list(result.histories)
    colors = dict(zip(labels, _colors(len(labels))))
    fig = new_figure(9.5, 5.0)
    ax = fig.add_subplot()
    kinds = {row["label"]: row["kind"] for row in result.rows}
    for label in labels:
        h = result.histories[label]
        x, y = h.column("time"), h.column("loss")
        keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
        tuned = kinds.get(label) == "adam-tuned"
        ax.plot(x[keep], y[keep], marker=_marker(int(keep.sum())), markersize=3, color=colors[label],
                linewidth=2.2 if tuned or kinds.get(label) == "exact" else 1.0,
                linestyle="-" if kinds.get(label) != "adam" else ":",
                label=f"{label} (tuned)" if tuned else label)
    dashes = ("--", "-.", (0, (6, 2, 1, 2, 1, 2)))  # one pattern per target, so the legend tells them apart
    for k, (name, value) in enumerate(result.targets):
        ax.axhline(value, color="0.45", linestyle=dashes[k % len(dashes)], linewidth=1,
                   label=f"target: tuned Adam after {name}")
    ax.axvline(m["time_limit"], color="0.2", linestyle=":", linewidth=1,
               label=f"exact solvers' budget ({m['time_limit']:.0f} s)")
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    ax.set_xlabel("training time (s, wall clock; evaluation excluded)")
    ax.set_ylabel("training loss (objective per sample, log scale)")
    ax.set_title(f"Time to tuned Adam's training loss: {m['model']} on {m['dataset']} "
                 f"(N = {m['n_train']:,}), ridge {m['ridge']:g}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return Figures(loss_vs_time=fig)


def race_figures(result) -> Figures:
    """``loss_vs_time`` and ``accuracy_vs_time`` of a :class:`symnet.frontend.race.RaceResult`: every seeded run
    of the tuned baseline (thin) and the exact solver (thick) against the race's clock, axis labelled with it."""
    m = result.meta
    clock = result.clock
    x_label = ("wall time (s, default threads; evaluation included)" if clock == "wall"
               else "training time (s; evaluation excluded)")
    colors = dict(zip(("baseline", "exact"), _colors(2)))
    figs = Figures()
    for name, y_label in (("loss_vs_time", "training data loss (squared error per sample, log scale)"),
                          ("accuracy_vs_time", ACC_LABEL)):
        fig = new_figure(9.5, 5.0)
        ax = fig.add_subplot()
        shown = set()
        for who, x, loss, acc in result.curves():
            y = loss if name == "loss_vs_time" else 100.0 * acc
            keep = np.isfinite(x) & np.isfinite(y) & ((y > 0) if name == "loss_vs_time" else True)
            text = f"{m['exact']} (exact)" if who == "exact" else f"{m['tuned']} (tuned baseline)"
            ax.plot(x[keep], y[keep], color=colors[who], linewidth=2.2 if who == "exact" else 1.0,
                    label=None if who in shown else text)
            shown.add(who)
        if name == "loss_vs_time":
            ax.set_yscale("log")
        ax.set_xlim(left=0)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(f"Race: {m['title']} (N = {m['n_train']:,}), seeds {', '.join(map(str, m['seeds']))}",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        _legend_outside(ax)
        figs[name] = fig
    return figs


# --------------------------------------------------------------------------- robustness
def robustness_figures(result) -> Figures:
    """Accuracy and relative accuracy drop vs noise, one curve per model, for a robustness result.

    * ``robustness_accuracy``: two panels, test accuracy (%) vs the Gaussian
      noise's sigma and vs the area of the black patch;
    * ``robustness_drop``: the same panels for the relative accuracy drop
      ``(A(0) - A) / A(0)`` in %.
    """
    names = list(result.names)
    colors = _colors(len(names))
    figs = Figures()
    subtitle = f"{result.dataset}, {result.n_test:,} test images, seed {result.seed}"
    for key, what, ylabel in (("accuracy", "Test accuracy under noise", "test accuracy (%)"),
                              ("drop", "Relative accuracy drop under noise", "relative accuracy drop (%)")):
        fig = new_figure(12.0, 4.6)
        panels = fig.subplots(1, 2)
        for ax, kind, xs, xlabel in ((panels[0], "sigma", result.sigmas, "Gaussian noise std sigma (pixels in [0, 1])"),
                                     (panels[1], "area", result.areas, "black patch area A (pixels)")):
            values = result.accuracy(kind) if key == "accuracy" else result.drop(kind)
            for i, name in enumerate(names):
                ax.plot(xs, 100.0 * values[i], marker="o", markersize=4, color=colors[i], label=name)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if key == "accuracy":
                ax.set_ylim(0, 100)
            else:
                low = min(0.0, float(np.nanmin(values)) * 100.0) if np.isfinite(values).any() else 0.0
                ax.set_ylim(low, 100)
            ax.set_title("global: iid Gaussian noise, clipped to [0, 1]" if kind == "sigma"
                         else "local: one black rectangle per image", fontsize=10)
            ax.grid(True, alpha=0.3)
        _legend_outside(panels[1])  # one legend for both panels, beside them rather than over a curve
        fig.suptitle(f"{what} ({subtitle})", fontsize=11)
        figs[f"robustness_{key}"] = fig
    return figs


def corruption_examples(clean: np.ndarray, sigma_images: Sequence[np.ndarray], sigmas: Sequence[float],
                        area_images: Sequence[np.ndarray], areas: Sequence[float], title: str,
                        area_boxes: Sequence[tuple[int, int, int, int]] | None = None):
    """One test image under every noise level: a row for sigma, a row for the patch area.

    ``area_boxes`` (top, bottom, left, right), half-open, outline each patch in
    red: a black patch on a black background would otherwise not show.
    """
    from matplotlib.patches import Rectangle

    cols = max(len(sigmas), len(areas), 1)
    fig = new_figure(1.5 * cols + 0.4, 3.8)
    axes = np.atleast_2d(fig.subplots(2, cols, squeeze=False))
    for row, (images, levels, fmt) in enumerate(((sigma_images, sigmas, "sigma = {:g}"),
                                                 (area_images, areas, "A = {:g}"))):
        for j in range(cols):
            ax = axes[row, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(images):
                ax.axis("off")
                continue
            img = np.asarray(images[j])
            img = img[0] if img.ndim == 3 else img
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(fmt.format(levels[j]), fontsize=9)
            if row == 1 and area_boxes is not None:
                top, bottom, left, right = area_boxes[j]
                if bottom > top and right > left:
                    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                                           edgecolor="red", linewidth=1.2))
    fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------- model pictures
def _wrap(title: str, width_inches: float, fontsize: float = 10) -> str:
    """``title`` broken into lines that fit a figure ``width_inches`` wide."""
    import textwrap

    chars = max(30, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(title, chars)) or title


def _colorbar(fig, image, axes, label: str, height_inches: float) -> None:
    """A colour bar beside ``axes``, at most about 4 inches tall."""
    bar = fig.colorbar(image, ax=np.ravel(axes).tolist(), shrink=min(0.85, 4.0 / max(height_inches, 1.0)))
    bar.set_label(label, fontsize=8)


def _symmetric_limit(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    vmax = float(finite.max()) if finite.size else 0.0
    return vmax if vmax > 0 else 1.0


def image_grid(images: np.ndarray, title: str, row_labels: Sequence[str], col_labels: Sequence[str] | None,
               colorbar_label: str, panel: float = 1.15):
    """A grid of 2-D maps ``images[r, c]`` with one symmetric diverging colour scale.

    Args:
        images: array ``(rows, cols, h, w)``.
        title: figure title.
        row_labels: one label per row (on the first panel of the row, or its title when there is one column).
        col_labels: one label per column (titles of the first row), or None.
        colorbar_label: what the colours measure.
        panel: size of one panel in inches.
    """
    images = np.asarray(images, dtype=np.float64)
    rows, cols = images.shape[:2]
    vmax = _symmetric_limit(images)
    width, height = panel * cols + 1.3, panel * rows + 0.9
    fig = new_figure(width, height)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    image = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            image = ax.imshow(images[r, c], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if cols == 1:
                ax.set_title(row_labels[r], fontsize=8)
            else:
                if c == 0:
                    ax.set_ylabel(row_labels[r], fontsize=8)
                if r == 0 and col_labels is not None:
                    ax.set_title(col_labels[c], fontsize=8)
    _colorbar(fig, image, axes, colorbar_label, height)
    fig.suptitle(_wrap(title, width), fontsize=10)
    return fig


def filter_grid(weight: np.ndarray, title: str, max_out: int = 32, max_in: int = 16):
    """Conv filters ``weight`` (out, in, kh, kw) as a grid: a row per output channel, a column per input channel.

    Large layers are cut to the first ``max_out`` x ``max_in`` filters (the title says so).
    """
    weight = np.asarray(weight, dtype=np.float64)
    n_out, n_in = weight.shape[:2]
    shown = weight[:max_out, :max_in]
    if shown.shape[:2] != weight.shape[:2]:
        title += f" (first {shown.shape[0]} of {n_out} outputs x {shown.shape[1]} of {n_in} inputs)"
    if n_in == 1:  # one input channel: the filters side by side, up to 8 per row
        return class_maps(shown[:, 0], title, [f"filter {i}" for i in range(len(shown))], "weight", max_cols=8)
    return image_grid(shown, title, [f"out {i}" for i in range(len(shown))],
                      [f"in {j}" for j in range(shown.shape[1])], "weight")


def class_maps(maps: np.ndarray, title: str, names: Sequence[str], colorbar_label: str,
               clip_percentile: float | None = None, max_cols: int = 5):
    """Maps ``(K, h, w)``, one panel each in a grid of up to ``max_cols`` columns, one diverging colour scale.

    ``clip_percentile`` caps the colour scale at that percentile of ``|value|``
    (larger values show in the end colours; the colour bar says so).
    """
    maps = np.asarray(maps, dtype=np.float64)
    k = len(maps)
    if clip_percentile is not None and maps.size:
        vmax = float(np.percentile(np.abs(maps[np.isfinite(maps)]), clip_percentile))
        vmax = vmax if vmax > 0 else _symmetric_limit(maps)
        colorbar_label += f" (scale capped at the {clip_percentile:g}th percentile of |value|)"
    else:
        vmax = _symmetric_limit(maps)
    cols = max(1, min(k, max_cols))
    rows = math.ceil(k / cols)
    width, height = 1.9 * cols + 1.2, 1.95 * rows + 0.9
    fig = new_figure(width, height)
    axes, used = panels(fig, k, rows, cols)
    image = None
    for i, ax in enumerate(used):
        image = ax.imshow(maps[i], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(names[i], fontsize=9)
    _colorbar(fig, image, axes, colorbar_label, height)
    fig.suptitle(_wrap(title, width), fontsize=10)
    return fig


# --------------------------------------------------------------------------- reproductions
#: How each kind of quantity of a reproduction is drawn: (axis label, scale factor, log axis).
_KIND_AXES = {
    "percent": ("accuracy (%)", 100.0, False),
    "r2": ("R^2 (%)", 100.0, False),
    "magnitude": ("coefficient magnitude (log scale)", 1.0, True),
    "coefficient": ("coefficient", 1.0, False),
    "seconds": ("seconds (log scale)", 1.0, True),
}


def source_vs_ours(rows: Sequence[dict], title: str):
    """The source's figure and ours side by side, one pair of bars per row that has both.

    Args:
        rows: dicts with ``label``, ``kind`` (a key of the axes table:
            ``"percent"``, ``"r2"``, ``"magnitude"``, ``"coefficient"``,
            ``"seconds"``), ``source`` and ``ours`` (numbers or None).
        title: the figure's title.

    Returns:
        A figure with one panel per kind of quantity, or None when no row has
        both figures.

    Example:
        >>> fig = source_vs_ours([{"label": "MNIST test", "kind": "percent", "source": 0.96, "ours": 0.97}], "t")
        >>> fig.axes[0].get_xlabel()
        'accuracy (%)'
    """
    def usable(r):
        ok = [isinstance(r.get(k), (int, float)) and math.isfinite(r[k]) for k in ("source", "ours")]
        return all(ok) and r.get("kind") in _KIND_AXES and (not _KIND_AXES[r["kind"]][2] or
                                                           (r["source"] > 0 and r["ours"] > 0))

    kinds = [k for k in _KIND_AXES if any(usable(r) and r["kind"] == k for r in rows)]
    if not kinds:
        return None
    groups = [[r for r in rows if usable(r) and r["kind"] == k] for k in kinds]
    height = 1.2 + sum(0.34 * len(g) + 0.8 for g in groups)
    fig = new_figure(10.0, height)
    axes = fig.subplots(len(kinds), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [len(g) + 1 for g in groups]})[:, 0]
    colors = _colors(2)
    for ax, kind, group in zip(axes, kinds, groups):
        label, factor, log = _KIND_AXES[kind]
        y = np.arange(len(group))
        for i, (key, name) in enumerate((("source", "source"), ("ours", "ours"))):
            ax.barh(y + (-0.2 if i == 0 else 0.2), [factor * r[key] for r in group], height=0.38,
                    color=colors[i], label=name)
        ax.set_yticks(y, [r["label"] for r in group], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(label)
        if log:
            ax.set_xscale("log")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        _legend_outside(ax)
    fig.suptitle(_wrap(title, 10.0), fontsize=10)
    return fig


def recovery_curves(widths: Sequence[int], curves: dict, title: str, xlabel: str = "hidden units m"):
    """Median R^2 (with the quartiles as a band) against the teacher's width, a panel per activation.

    Args:
        widths: the x values.
        curves: ``{panel name: {line name: (median, lower quartile, upper quartile)}}``,
            each a sequence as long as ``widths`` (R^2 as fractions).
        title: the figure's title.
        xlabel: the x axis label.

    Example:
        >>> fig = recovery_curves([1, 2], {"relu": {"degree 2": ([0.9, 0.8], [0.8, 0.7], [1.0, 0.9])}}, "t")
        >>> fig.axes[0].get_title()
        'relu'
    """
    fig = new_figure(5.0 * len(curves) + 1.5, 4.4)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (panel, lines) in zip(axes, curves.items()):
        colors = _colors(len(lines))
        for color, (name, (median, low, high)) in zip(colors, lines.items()):
            ax.plot(widths, 100.0 * np.asarray(median, dtype=float), marker="o", markersize=4, color=color,
                    label=name)
            ax.fill_between(widths, 100.0 * np.asarray(low, dtype=float), 100.0 * np.asarray(high, dtype=float),
                            color=color, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("out-of-sample R^2 (%), median and quartiles")
        ax.set_ylim(top=100)
        ax.set_title(panel, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(_wrap(title, 5.0 * len(curves) + 1.5), fontsize=10)
    return fig


__all__ = ["DPI", "Figures", "class_maps", "comparison_figures", "corruption_examples", "filter_grid", "image_grid",
           "legend_text", "new_figure", "recovery_curves", "robustness_figures", "save", "shared_step_unit",
           "source_vs_ours", "target_figures", "to_png", "training_figures"]
