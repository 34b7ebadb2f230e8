"""``Sequential``: a polynomial network, its parameters and its symbolic view."""

from __future__ import annotations

import contextlib
import copy as _copy
import re
from typing import Iterable

import numpy as np

from symnet.core.runtime import blas_threads, require_memory
from symnet.core.errors import DataError, ModelError
from symnet.core.layers import LAYER_TYPES, Layer
from symnet.core.objective import sum_squares
from symnet.core.objective import value as objective_value
from symnet.core.model.polyreg import PolyRegModel

_ELEMENT = re.compile(r"^(?P<array>[\w.]+?)(\[(?P<index>[\d,\s]*)\])?$")


class Sequential:
    """A chain of layers with named parameters.

    Layers are named by kind and position among their kind: ``conv0``,
    ``act0``, ``pool0``, ``flatten0``, ``linear0`` ... A parameter array is
    ``"<layer>.<param>"`` (``conv0.weight``) and one element of it
    ``"conv0.weight[3,0,2,1]"``.

    Args:
        *layers: the layers, first to last.
        input_shape: shape of one sample, e.g. ``(1, 28, 28)`` or ``(2,)``.
        seed: seed of the initialisation (``None`` leaves parameters at zero).
        name: a label, e.g. the preset that built it.

    Example:
        >>> from symnet.core.layers import Conv2d, Square, AvgPool2d, Flatten, Linear
        >>> m = Sequential(Conv2d(1, 2, 3), Square(), AvgPool2d(2), Flatten(), Linear(2 * 3 * 3, 10),
        ...                input_shape=(1, 8, 8), seed=0)
        >>> m.num_params, m.param_names()[0]
        (210, 'conv0.weight[0,0,0,0]')
    """

    def __init__(self, *layers: Layer, input_shape: Iterable[int], seed: int | None = 0, name: str | None = None,
                 meta: dict | None = None) -> None:
        if not layers:
            raise ModelError("Sequential needs at least one layer")
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ModelError(f"Sequential takes layers, got {type(layer).__name__}")
        self.layers = list(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.name = name
        self.meta = dict(meta or {})
        counts: dict[str, int] = {}
        shape = self.input_shape
        self.shapes = [shape]
        for layer in self.layers:
            layer.name = f"{layer.kind}{counts.get(layer.kind, 0)}"
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
            shape = layer.output_shape(shape)
            self.shapes.append(shape)
        if len(shape) != 1:
            raise ModelError(f"the network's output must be a vector per sample, got shape {shape}; "
                             "end with Flatten() and Linear(...)")
        self.num_outputs = shape[0]
        # the zeroed parameter arrays are not in memory yet (numpy allocates lazily); the initialisation
        # touches them and its random draws need as much again, so refuse here rather than be killed there
        param_bytes = sum(value.nbytes for layer in self.layers for value in layer.params.values())
        require_memory(3 * param_bytes, f"a network of {param_bytes // 8:,} parameters",
                       "build it smaller (fewer channels or hidden units)")
        self.seed = seed
        if seed is not None:
            self.init(seed)

    # ------------------------------------------------------------------ parameters
    def init(self, seed: int = 0) -> "Sequential":
        """Re-initialise every parameter from ``seed``."""
        rng = np.random.default_rng(seed)
        for layer in self.layers:
            layer.init(rng)
        self.seed = seed
        return self

    def parameters(self) -> list[tuple[str, np.ndarray]]:
        """``(name, array)`` pairs; the arrays are live (writing them changes the model)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def param_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.parameters())

    @property
    def num_params(self) -> int:
        return int(sum(v.size for _, v in self.parameters()))

    def get_flat(self) -> np.ndarray:
        """All parameters as one float64 vector (a copy), in :meth:`parameters` order."""
        arrays = [v.ravel() for _, v in self.parameters()]
        return np.concatenate(arrays) if arrays else np.zeros(0)

    def set_flat(self, theta: np.ndarray) -> None:
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.num_params,):
            raise ModelError(f"flat parameter vector must have shape ({self.num_params},), got {theta.shape}")
        pos = 0
        for _, v in self.parameters():
            v[...] = theta[pos:pos + v.size].reshape(v.shape)
            pos += v.size

    def offsets(self) -> dict[str, tuple[int, int]]:
        """``name -> (start, stop)`` of each parameter array in the flat vector."""
        out, pos = {}, 0
        for name, v in self.parameters():
            out[name] = (pos, pos + v.size)
            pos += v.size
        return out

    def param_names(self) -> list[str]:
        """Readable names of every scalar parameter, in flat order."""
        names = []
        for name, v in self.parameters():
            for idx in np.ndindex(v.shape):
                names.append(f"{name}[{','.join(map(str, idx))}]")
        return names

    def locate(self, element: str) -> tuple[int, str, tuple[int, ...] | None]:
        """``"conv0.weight[3,0,2,1]"`` -> (layer index, param key, index); no index for a whole array."""
        m = _ELEMENT.match(element.replace(" ", ""))
        if not m:
            raise ModelError(f"cannot parse parameter name {element!r}; expected like 'conv0.weight[3,0,2,1]'")
        layer_name, _, key = m.group("array").partition(".")
        for li, layer in enumerate(self.layers):
            if layer.name == layer_name and key in layer.params:
                if m.group("index") is None:
                    return li, key, None
                parts = m.group("index").split(",")
                if not all(part.isdigit() for part in parts):
                    raise ModelError(f"cannot parse the index of {element!r}; expected like 'conv0.weight[3,0,2,1]'")
                idx = tuple(int(i) for i in parts)
                shape = layer.params[key].shape
                if len(idx) != len(shape) or any(not 0 <= i < s for i, s in zip(idx, shape)):
                    raise ModelError(f"index {idx} is out of range for {m.group('array')} of shape {shape}")
                return li, key, idx
        known = ", ".join(n for n, _ in self.parameters())
        raise ModelError(f"no parameter {m.group('array')!r} in this model; it has: {known}")

    # ------------------------------------------------------------------ numeric
    def check_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == len(self.input_shape) and tuple(X.shape) == self.input_shape:
            X = X[None]
        if tuple(X.shape[1:]) != self.input_shape:
            raise DataError(f"model expects samples of shape {self.input_shape}, got {tuple(X.shape[1:])}; "
                            "build the model for this data's input shape")
        return X

    def forward(self, X: np.ndarray, *, dtype=np.float64, batch_size: int = 256) -> np.ndarray:
        """Outputs ``(N, num_outputs)`` for inputs ``(N, *input_shape)``, in batches.

        ``dtype=np.float32`` runs the whole pass in single precision (half the
        memory traffic); the result is returned in that dtype. Batches of 256
        keep each layer's im2col block in cache: on 2 cores they measured 1.5-2x
        faster than batches of 8192 for ``poly2``, with BLAS on one thread
        (see :mod:`symnet.core.runtime`).
        """
        X = self.check_input(X)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ModelError(f"forward dtype must be float32 or float64, got {dtype}")
        if int(batch_size) < 1:
            raise ModelError(f"batch_size must be a positive number of samples, got {batch_size}")
        out = np.empty((len(X), self.num_outputs), dtype=dtype)
        with blas_threads(1 if self._has_parallel_kernels else None), self.params_in(dtype):
            for s in range(0, len(X), batch_size):
                h = X[s:s + batch_size].astype(dtype, copy=False)
                for layer in self.layers:
                    h = layer.forward(h).astype(dtype, copy=False)
                out[s:s + batch_size] = h
        return out

    @property
    def _has_parallel_kernels(self) -> bool:
        return any(layer.kind in ("conv", "pool") for layer in self.layers)

    @contextlib.contextmanager
    def params_in(self, dtype):
        """Temporarily give every layer copies of its parameters in ``dtype`` (the originals stay float64).

        A context manager: forward, backward and jet passes inside it run in ``dtype``.
        """
        dtype = np.dtype(dtype)
        if dtype == np.float64:
            yield
            return
        originals = [layer.params for layer in self.layers]
        try:
            for layer in self.layers:
                layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
            yield
        finally:
            for layer, params in zip(self.layers, originals):
                layer.params = params

    __call__ = forward

    def forward_cache(self, X: np.ndarray, dtype=np.float64) -> list[np.ndarray]:
        """Every activation, input first and output last (len(layers) + 1 arrays)."""
        acts = [np.asarray(X, dtype=dtype)]
        for layer in self.layers:
            acts.append(layer.forward(acts[-1]))
        return acts

    def loss_and_grad(self, X: np.ndarray, Y: np.ndarray, ridge: float = 0.0, *,
                      dtype=np.float64) -> tuple[float, np.ndarray]:
        """Objective ``sum (f(X) - Y)^2 + ridge * ||theta||^2`` and its gradient (flat).

        Args:
            X: inputs ``(N, *input_shape)``.
            Y: targets (N, num_outputs).
            ridge: weight of the ``||theta||^2`` term.
            dtype: working precision of the forward and backward passes.
                ``np.float32`` halves the memory traffic and doubles the BLAS
                throughput (what mini-batch training needs); the loss and the
                returned gradient are float64 either way.

        Example:
            >>> import numpy as np
            >>> from symnet.core.model import presets as models
            >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
            >>> loss, g = m.loss_and_grad(np.ones((3, 2)), np.zeros((3, 2)))
            >>> g.shape == (m.num_params,)
            True
        """
        X = self.check_input(X)
        Y = np.asarray(Y, dtype=np.float64)
        if Y.shape != (len(X), self.num_outputs):
            raise DataError(f"targets must have shape ({len(X)}, {self.num_outputs}) to match the outputs, got "
                            f"{Y.shape}; pass one-hot targets, e.g. np.eye({self.num_outputs})[labels]")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ModelError(f"loss_and_grad dtype must be float32 or float64, got {dtype}")
        with self.params_in(dtype):
            acts = self.forward_cache(X, dtype)
            r = acts[-1].astype(np.float64) - Y
            sse = sum_squares(r)
            g = (2.0 * r).astype(dtype, copy=False)
            grads: list[np.ndarray] = []
            for li in range(len(self.layers) - 1, -1, -1):
                layer = self.layers[li]
                g, pg = layer.backward(acts[li], g, input_grad=li > 0)
                grads.extend(pg[k].ravel() for k in reversed(list(layer.params)))
        flat = np.concatenate(grads[::-1]).astype(np.float64, copy=False) if grads else np.zeros(0)
        if not ridge:
            return sse, flat
        theta = self.get_flat()
        return objective_value(sse, float(theta @ theta), ridge), flat + 2.0 * ridge * theta

    # ------------------------------------------------------------------ symbolic view
    def symbols(self):
        """``(input symbols array, {param name: symbol array})`` with readable names."""
        import symengine as se

        xs = np.empty(self.input_shape, dtype=object)
        for idx in np.ndindex(self.input_shape):
            xs[idx] = se.Symbol(f"x[{','.join(map(str, idx))}]")
        ps = {}
        for name, v in self.parameters():
            arr = np.empty(v.shape, dtype=object)
            for idx in np.ndindex(v.shape):
                arr[idx] = se.Symbol(f"{name}[{','.join(map(str, idx))}]")
            ps[name] = arr
        return xs, ps

    def symbolic(self, *, numeric_params: bool = False, inputs: np.ndarray | None = None,
                 expand: bool = False) -> list:
        """The outputs as symengine expressions of one generic sample.

        Args:
            numeric_params: substitute the current parameter values (for export).
            inputs: an optional object array of expressions to use as the input
                (for example numbers, to evaluate one sample exactly).
            expand: expand the outputs into monomials. The number of monomials
                grows fast with depth and activation degree; keep it for small models.

        Returns:
            A list of ``num_outputs`` symengine expressions. No data enters them
            unless ``inputs`` is given.

        Example:
            >>> from symnet.core.model import presets as models
            >>> m = models.get("mlp", input_dim=2, hidden=1, seed=0)
            >>> len(m.symbolic())
            2
        """
        import symengine as se

        xs, ps = self.symbols()
        if inputs is not None:
            xs = np.asarray(inputs, dtype=object).reshape(self.input_shape)
        if numeric_params:
            ps = {name: np.vectorize(lambda v: se.Float(float(v)), otypes=[object])(v) if v.size else v.astype(object)
                  for name, v in self.parameters()}
        h = xs
        for layer in self.layers:
            local = {k: ps[f"{layer.name}.{k}"] for k in layer.params}
            h = layer.symbolic(h, local)
        return [se.expand(e) if expand else e for e in np.asarray(h).ravel()]

    def degree(self, param: str) -> int:
        """Degree of the outputs in one parameter (``"conv0.weight[0,0,1,1]"``) or a whole array.

        Follows the graph: a parameter of layer ``l`` enters with degree 1, and
        each later layer maps degrees by its :meth:`Layer.degree` rule.
        """
        li, _, _ = self.locate(param)
        return self.direction_degree({li})

    def direction_degree(self, moving_layers: set[int]) -> int:
        """Degree in ``t`` of the outputs when the params of ``moving_layers`` move along a line."""
        deg = 0
        for li, layer in enumerate(self.layers):
            deg = layer.degree(deg, li in moving_layers)
        return deg

    def to_sympy(self, expand: bool | None = None):
        """The trained model as a sympy Matrix of output expressions in the input symbols.

        Args:
            expand: expand into monomials; by default only for models of at most
                200 parameters (expansion of deep or wide models is exponential).
        """
        import sympy

        if expand is None:
            expand = self.num_params <= 200
        # Convert the objects, not their strings: "x[0]" would parse as indexing a symbol x.
        return sympy.Matrix([sympy.sympify(e) for e in self.symbolic(numeric_params=True, expand=expand)])

    def to_latex(self) -> str:
        """LaTeX of :meth:`to_sympy` (one line per output)."""
        import sympy

        rows = [f"y_{{{k}}} = {sympy.latex(e)}" for k, e in enumerate(self.to_sympy())]
        return " \\\\\n".join(rows)

    # ------------------------------------------------------------------ misc
    def spec(self) -> dict:
        """A JSON-able description that :func:`model_from_spec` rebuilds (without weights)."""
        return {
            "type": "sequential",
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [{"type": type(layer).__name__, **layer.config()} for layer in self.layers],
            "meta": self.meta,
        }

    def copy(self) -> "Sequential":
        return _copy.deepcopy(self)

    def summary(self) -> str:
        """A table of layers, output shapes, parameter counts and output degree in each layer's params."""
        lines = [f"{'layer':<10} {'type':<34} {'output':<16} {'params':>8} {'degree':>6}"]
        for li, layer in enumerate(self.layers):
            n = sum(v.size for v in layer.params.values())
            deg = self.direction_degree({li}) if n else ""
            lines.append(f"{layer.name:<10} {repr(layer)[:34]:<34} {str(self.shapes[li + 1]):<16} {n:>8} {deg:>6}")
        lines.append(f"total parameters: {self.num_params}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner},\n  input_shape={self.input_shape})"


def model_from_spec(spec: dict):
    """Rebuild a model (parameters zero) from :meth:`Sequential.spec`."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ModelError("model spec must be a dict with a 'type' key; was the file written by symnet?")
    if spec["type"] == "polyreg":
        return PolyRegModel.from_spec(spec)
    if spec["type"] != "sequential":
        raise ModelError(f"unknown model type {spec['type']!r} in spec")
    layers = []
    for cfg in spec["layers"]:
        cfg = dict(cfg)
        kind = cfg.pop("type")
        if kind not in LAYER_TYPES:
            raise ModelError(f"unknown layer type {kind!r} in spec; known: {', '.join(LAYER_TYPES)} (a layer class of "
                             "one's own loads after symnet.layers.register_layer(TheClass))")
        layers.append(LAYER_TYPES[kind](**cfg))
    return Sequential(*layers, input_shape=spec["input_shape"], seed=None, name=spec.get("name"),
                      meta=spec.get("meta"))
