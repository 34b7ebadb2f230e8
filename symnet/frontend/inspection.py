"""Look inside a trained model: layers, parameter counts, polynomial degrees, symbolic form, pictures.

:func:`report` describes a model in text: its layers (``model.summary()``),
each parameter array with its size and the degree of the outputs in it, the
degree of the outputs in the inputs, and for a small model the model itself
as polynomials of the inputs. :func:`figures` draws the convolution filters
and, where a linear layer reads a flattened image-shaped map, its weights as
one map per output (per class for the last layer); for a
polynomial-regression model, the coefficient maps of
:mod:`symnet.frontend.polyreg_maps`. ``symnet inspect model.npz --out DIR`` prints the
report and writes the figures.

Example:
    >>> from symnet.core.model import presets as models
    >>> m = models.get("mlp", input_dim=2, hidden=1, seed=0)
    >>> text = report(m)
    >>> "degree of the outputs in the inputs: 2" in text and "y_0 =" in text
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from symnet.core.files import atomic_write_bytes
from symnet.core.model.saving import load_model

from symnet.frontend import plots, polyreg_maps

#: Largest model whose symbolic form is printed: parameters ...
SYMBOLIC_MAX_PARAMS = 200
#: ... and input features (the expansion grows with both).
SYMBOLIC_MAX_INPUTS = 100
#: Most outputs (rows) and channels (columns) drawn in one weight-map figure.
MAX_MAP_ROWS = 32
MAX_MAP_CHANNELS = 16


def _is_polyreg(model) -> bool:
    return getattr(model, "table", None) is not None and hasattr(model, "weight") and hasattr(model, "feature_degrees")


def input_degree(model) -> int:
    """Degree of the outputs as polynomials of the inputs (parameters held fixed).

    Example:
        >>> from symnet.core.model import presets as models
        >>> input_degree(models.get("poly2", channels=2, channels2=2))
        4
    """
    if _is_polyreg(model):
        return int(model.feature_degrees().max(initial=0))
    degree = 1
    for layer in model.layers:
        degree = layer.degree(degree, False)
    return int(degree)


def parameter_rows(model) -> list[dict[str, Any]]:
    """One dict per parameter array: ``name``, ``shape``, ``count``, ``degree`` (of the outputs in it)."""
    if _is_polyreg(model):
        return [{"name": name, "shape": tuple(v.shape), "count": int(v.size), "degree": 1}
                for name, v in model.parameters()]
    return [{"name": name, "shape": tuple(v.shape), "count": int(v.size), "degree": int(model.degree(name))}
            for name, v in model.parameters()]


def _polyreg_polynomials(model) -> list[str]:
    names = model.feature_names()
    lines = []
    for k in range(model.num_outputs):
        coef = model.weight[:, k]
        terms = [f"{c:+.6g}" + ("" if names[j] == "1" else f"*{names[j]}") for j, c in enumerate(coef) if c != 0]
        body = " ".join(terms).lstrip("+") if terms else "0"
        lines.append(f"y_{k} = {body}")
    return lines


def symbolic_text(model, source: str | None = None) -> str:
    """The model as polynomials of its inputs when it is small; otherwise how to get them."""
    n_inputs = int(np.prod(model.input_shape))
    if model.num_params <= SYMBOLIC_MAX_PARAMS and n_inputs <= SYMBOLIC_MAX_INPUTS:
        if _is_polyreg(model):
            return "\n".join(_polyreg_polynomials(model))
        return "\n".join(f"y_{k} = {expr}" for k, expr in enumerate(model.to_sympy()))
    if source:
        how = (f"symnet.load({str(source)!r}).to_sympy()" if not _is_polyreg(model) else
               f"m = symnet.load({str(source)!r}); zip(m.feature_names(), m.weight)")
        how = "import symnet; " + how
    else:
        how = "model.to_sympy()" if not _is_polyreg(model) else "zip(model.feature_names(), model.weight)"
    return (f"not printed: the model has {model.num_params:,} parameters (limit {SYMBOLIC_MAX_PARAMS}) and "
            f"{n_inputs:,} inputs (limit {SYMBOLIC_MAX_INPUTS}), so its expansion would be huge and slow.\n"
            f"To get it anyway, in Python: {how}")


def _polyreg_summary(model) -> str:
    degrees = model.feature_degrees()
    counts = np.bincount(degrees, minlength=int(degrees.max(initial=0)) + 1)
    window = model.window if model.window is not None else "none (every product of the inputs)"
    lines = [f"polynomial regression over windowed monomials: degree {model.degree}, window {window}, "
             f"{model.num_features:,} features x {model.num_outputs} classes",
             "features by degree: " + ", ".join(f"degree {d}: {int(c):,}" for d, c in enumerate(counts)),
             f"non-zero coefficients: {int(np.count_nonzero(model.weight)):,} of {model.weight.size:,}"]
    return "\n".join(lines)


def report(model, source: str | os.PathLike | None = None) -> str:
    """A text description of ``model`` (see the module docstring)."""
    kind = "polynomial regression" if _is_polyreg(model) else type(model).__name__
    name = getattr(model, "name", None) or "model"
    head = [f"model: {name} ({kind}); input shape {tuple(model.input_shape)}; {model.num_outputs} outputs; "
            f"{model.num_params:,} parameters"]
    if source is not None:
        head.append(f"file: {source}")
    sections = ["\n".join(head)]
    sections.append("layers:\n" + (_polyreg_summary(model) if _is_polyreg(model) else model.summary()))
    rows = parameter_rows(model)
    width = max([len("parameter")] + [len(r["name"]) for r in rows])
    lines = [f"{'parameter':<{width}}  {'shape':<18} {'count':>10}  degree of the outputs in it",
             f"{'-' * width}  {'-' * 18} {'-' * 10}  {'-' * 27}"]
    lines += [f"{r['name']:<{width}}  {str(r['shape']):<18} {r['count']:>10,}  {r['degree']}" for r in rows]
    lines.append(f"{'total':<{width}}  {'':<18} {model.num_params:>10,}")
    sections.append("parameters:\n" + "\n".join(lines))
    sections.append(f"degree of the outputs in the inputs: {input_degree(model)}")
    sections.append("symbolic form:\n" + symbolic_text(model, None if source is None else str(source)))
    return "\n\n".join(sections)


# --------------------------------------------------------------------------- figures
def _linear_maps(model):
    """``(layer, maps (out, C, h, w), spatial shape, is_input)`` for every Linear layer reading a flattened map."""
    found = []
    for li, layer in enumerate(model.layers):
        if layer.kind != "linear" or li == 0 or model.layers[li - 1].kind != "flatten":
            continue
        spatial = tuple(model.shapes[li - 1])
        if len(spatial) != 3:
            continue
        maps = layer.params["weight"].reshape((layer.out_features,) + spatial)
        is_input = li - 1 == 0
        found.append((layer, maps, spatial, is_input, li == len(model.layers) - 1))
    return found


def figures(model):
    """Pictures of the model as :class:`symnet.frontend.plots.Figures` (empty when there is nothing to draw).

    * ``<conv>_filters``: the filters of each convolution, a grid of
      output x input channels;
    * ``<linear>_weights``: a linear layer's weights reshaped to the
      flattened map it reads, one map per output (per class for the last
      layer), per channel when there are several; when that map is the input
      image itself the maps are on the input's pixels;
    * ``polyreg_degree<d>``: for a polynomial-regression model, the
      coefficients of each degree placed on the image
      (:func:`symnet.frontend.polyreg_maps.degree_map`), one map per class.
    """
    figs = plots.Figures()
    name = getattr(model, "name", None) or "model"
    if _is_polyreg(model):
        if len(model.input_shape) < 2:
            return figs
        for d in range(1, int(model.table.shape[1]) + 1):
            what = "linear coefficients" if d == 1 else f"degree-{d} coefficients summed at each monomial's centroid"
            figs[f"polyreg_degree{d}"] = plots.class_maps(
                polyreg_maps.degree_map(model, d), f"{name}: {what} ({model.num_features:,} features)",
                [f"class {k}" for k in range(model.num_outputs)], "coefficient", clip_percentile=99.5)
        return figs
    for layer in model.layers:
        if layer.kind == "conv":
            w = layer.params["weight"]
            figs[f"{layer.name}_filters"] = plots.filter_grid(
                w, f"{name}: {layer.name} filters ({w.shape[0]} out x {w.shape[1]} in, {w.shape[2]}x{w.shape[3]})")
    for layer, maps, spatial, is_input, is_last in _linear_maps(model):
        channels, h, w = spatial
        who = "class" if is_last else "unit"
        where = (f"on the input image ({h}x{w})" if is_input else
                 f"on the {channels} x {h}x{w} map it reads (after the earlier layers, not input pixels)")
        title = f"{name}: {layer.name} weights per {who}, {where}"
        rows = maps[:MAX_MAP_ROWS, :MAX_MAP_CHANNELS]
        if rows.shape[:2] != maps.shape[:2]:
            title += f"; first {rows.shape[0]} of {maps.shape[0]} {who}s x {rows.shape[1]} of {channels} channels"
        labels = [f"{who} {k}" for k in range(len(rows))]
        if channels == 1:
            figs[f"{layer.name}_weights"] = plots.class_maps(rows[:, 0], title, labels, "weight")
        else:
            figs[f"{layer.name}_weights"] = plots.image_grid(rows, title, labels,
                                                             [f"ch {c}" for c in range(rows.shape[1])], "weight")
    return figs


def inspect_path(path: str | os.PathLike, out: str | os.PathLike | None = None) -> tuple[str, list[Path]]:
    """Load a saved model, return its report and, with ``out``, write ``inspect.txt`` and the PNGs there.

    Raises:
        FileNotFoundError: no such file; CorruptFileError: not a readable model.
    """
    p = Path(path)
    model = load_model(p)
    text = report(model, p)
    written: list[Path] = []
    if out is not None:
        out = Path(out)
        written.append(atomic_write_bytes(out / "inspect.txt", (text + "\n").encode()))
        written += figures(model).save(out)
    return text, written


__all__ = ["SYMBOLIC_MAX_INPUTS", "SYMBOLIC_MAX_PARAMS", "figures", "input_degree", "inspect_path",
           "parameter_rows", "report", "symbolic_text"]
