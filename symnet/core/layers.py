"""Polynomial layers: forward, backward and polynomial rule side by side.

Each layer is a plain class (``__call__``, ``parameters()``, ``__repr__``) that
keeps all its rules together, as in micrograd: ``forward`` (batched, BLAS-backed),
``backward`` (the exact vector-Jacobian product), ``jet`` (the polynomial rule:
along a parameter direction the output is an exact polynomial in the step, a
:class:`~symnet.core.jets.Jet`; :mod:`symnet.core.jets` explains it), ``degree``,
``symbolic`` (the same map on symengine expressions, for the symbolic view), and
the derivatives the exact direction solvers read from cached activations
(``input_grad``, ``param_grads``, ``per_sample_grads``, ``kronecker_factors``).
:class:`Layer` documents each rule.

Parameters live in ``self.params`` (name -> float64 array) so optimizers,
solvers and serialisation see one flat list.
"""

from __future__ import annotations

import numpy as np

from symnet.core.errors import ModelError
from symnet.core.conv import block_rows, conv2d_valid, conv_backward, conv_weight_grad, windows
from symnet.core.jets import Jet, direction_arrays, jet_add, series_mul, shift_up, single_coord, square_jet
from symnet.core.runtime import require_memory
from symnet.core.kernels.conv import avg_pool, avg_pool_backward, col2im, im2col

# Poly activation presets. The ReLU approximations on [-3, 3] are the ones used
# in the polynomial-regression literature (lowest degree first).
ACTIVATIONS: dict[str, tuple[float, ...]] = {
    "square": (0.0, 0.0, 1.0),
    "identity": (0.0, 1.0),
    "relu-approx-a": (0.188, 0.5, 0.21),
    "relu-approx-b": (0.096, 0.5, 0.3),
    "relu-approx-c": (0.114, 0.498, 0.352, -0.0011),
}


def param_zeros(shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed float64 parameter array, refused with one line when it cannot fit in memory (numpy would
    raise its own MemoryError with a traceback, or hand out pages until the kernel kills the process)."""
    require_memory(8 * float(np.prod(shape, dtype=float)), f"a weight array of shape {tuple(shape)}",
                   "build the layer smaller (fewer channels or hidden units)")
    return np.zeros(shape)


class Layer:
    """Base class. Subclasses set ``self.params`` and implement the rules."""

    #: Does the jet rule read this layer's input activation? (Then solvers cache it.)
    needs_input: bool = False
    kind: str = "layer"

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.name = self.kind

    # ---- housekeeping
    def parameters(self) -> list[tuple[str, np.ndarray]]:
        return [(f"{self.name}.{k}", v) for k, v in self.params.items()]

    def init(self, rng: np.random.Generator) -> None:
        pass

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape

    def config(self) -> dict:
        return {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Check shapes here, not in forward(): Sequential validates once and calls forward() directly.
        x = np.asarray(x)
        if x.ndim < 2:
            raise ModelError(f"{self!r} takes a batch of samples (N, ...), got shape {x.shape}; "
                             "add a leading batch axis, e.g. x[None]")
        self.output_shape(tuple(x.shape[1:]))
        return self.forward(x)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # ---- rules
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The numeric forward pass on a batch."""
        raise self._missing_rule("forward")

    def backward(self, x: np.ndarray, grad_out: np.ndarray, input_grad: bool = True
                 ) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """Vector-Jacobian product; ``input_grad=False`` may skip the input gradient (returns None)."""
        raise self._missing_rule("backward")

    def jet(self, x: np.ndarray | None, jet_in: Jet | None, direction: dict | None) -> Jet | None:
        """The output's exact polynomial in ``t`` (minus its value at 0) from the input's jet and own direction."""
        raise self._missing_rule("jet")

    def degree(self, degree_in: int, moves: bool) -> int:
        """Degree in ``t`` of the output, given the input's degree and whether own params move."""
        return degree_in

    def input_grad(self, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input only: ``J_x^T g``."""
        return self.backward(x, grad_out)[0]

    def param_grads(self, x: np.ndarray, grad_out: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter gradients summed over the samples (no input gradient)."""
        return self.backward(x, grad_out, input_grad=False)[1]

    def per_sample_grads(self, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """Per-sample parameter gradients ``(n, layer size)``, columns in the layer's flat parameter order."""
        if not self.params:
            return np.zeros((len(grad_out), 0))
        raise self._missing_rule("per_sample_grads")

    def input_grad_many(self, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """:meth:`input_grad` for ``K`` cotangents per sample: ``grad_out`` (K, n, ...) -> (K, n, ...).

        The cotangents fold into the batch axis, so each product is one large
        GEMM instead of ``K`` small ones (per-sample Jacobians of all outputs in
        one backward pass). This default repeats the input ``K`` times; layers
        whose input gradient does not read the input override it.
        """
        K, n = grad_out.shape[:2]
        flat = grad_out.reshape((K * n,) + grad_out.shape[2:])
        out = self.input_grad(np.broadcast_to(x[None], (K,) + x.shape).reshape((K * n,) + x.shape[1:]), flat)
        return out.reshape((K, n) + out.shape[1:])

    def per_sample_grads_many(self, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """:meth:`per_sample_grads` for ``K`` cotangents per sample: (K, n, layer size)."""
        K, n = grad_out.shape[:2]
        if not self.params:
            return np.zeros((K, n, 0))
        return np.stack([self.per_sample_grads(x, grad_out[k]) for k in range(K)])

    def kronecker_factors(self, x: np.ndarray, grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """``(Omega, Gamma, positions)``: the Kronecker factors of this layer's Gauss-Newton block (K-FAC).

        ``Omega`` is the mean outer product of the layer's input patches (with a 1
        for the bias), ``Gamma`` the mean outer product of the output derivatives
        ``grad_out``, both over samples and output positions, so that the block is
        about ``(samples x positions) Gamma (x) Omega`` (Grosse & Martens 2016).
        """
        raise self._missing_rule("kronecker_factors")

    def symbolic(self, xs: np.ndarray, ps: dict[str, np.ndarray]) -> np.ndarray:
        """The output as an object array of symengine expressions of the inputs and parameters."""
        raise self._missing_rule("symbolic")

    def _missing_rule(self, rule: str) -> ModelError:
        # A layer of one's own may define only the rules it needs (forward for inference, backward for
        # gradient training); using one it lacks is the user's error, not an internal one.
        return ModelError(f"layer {type(self).__name__} has no {rule}() rule; implement {rule}() on it or use "
                          "the layers of symnet.layers")


def _input_grad_many_by_shape(layer: Layer, x: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
    """:meth:`Layer.input_grad_many` for a layer whose input gradient reads only the input's shape.

    A broadcast stand-in of the input's shape replaces ``K`` copies of it.
    """
    K, n = grad_out.shape[:2]
    stand_in = np.broadcast_to(np.zeros(1, dtype=grad_out.dtype), (K * n,) + x.shape[1:])
    out = layer.input_grad(stand_in, grad_out.reshape((K * n,) + grad_out.shape[2:]))
    return out.reshape((K, n) + out.shape[1:])


# --------------------------------------------------------------------------- Linear
class Affine(Layer):
    """What Linear and Conv2d share: the output is affine in the input and in the layer's own parameters."""

    def degree(self, degree_in, moves):
        """Moving its own weights multiplies the input's polynomial by one more factor of ``t``."""
        if not moves:
            return degree_in
        return degree_in + 1 if degree_in > 0 else 1


class Linear(Affine):
    """``y = x W^T + b`` on inputs of shape (N, in_features).

    Example:
        >>> import numpy as np
        >>> lin = Linear(3, 2)
        >>> lin.init(np.random.default_rng(0))
        >>> lin(np.ones((4, 3))).shape
        (4, 2)
    """

    needs_input = True
    kind = "linear"

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ModelError(f"Linear needs positive sizes, got {in_features} -> {out_features}")
        self.in_features, self.out_features, self.bias = int(in_features), int(out_features), bool(bias)
        self.params["weight"] = param_zeros((self.out_features, self.in_features))
        if self.bias:
            self.params["bias"] = np.zeros(self.out_features)

    def config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias}

    def init(self, rng: np.random.Generator) -> None:
        self.params["weight"][...] = rng.normal(0.0, 1.0 / np.sqrt(self.in_features), self.params["weight"].shape)
        if self.bias:
            self.params["bias"][...] = 0.0

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise ModelError(f"Linear({self.in_features}, {self.out_features}) got input of shape {tuple(input_shape)}; "
                             f"put a Flatten() before it or set in_features={int(np.prod(input_shape))}")
        return (self.out_features,)

    def forward(self, x):
        y = x @ self.params["weight"].T
        if self.bias:
            y += self.params["bias"]
        return y

    def backward(self, x, grad_out, input_grad=True):
        grads = self.param_grads(x, grad_out)
        return (self.input_grad(x, grad_out) if input_grad else None), grads

    def input_grad(self, x, grad_out):
        return grad_out @ self.params["weight"]

    def param_grads(self, x, grad_out):
        grads = {"weight": grad_out.T @ x}
        if self.bias:
            grads["bias"] = grad_out.sum(axis=0)
        return grads

    def per_sample_grads(self, x, grad_out):
        # numpy: concat([einsum('no,ni->noi', g, x).reshape(n, -1), g]) -- an outer product per sample
        n = len(grad_out)
        parts = [(grad_out[:, :, None] * x[:, None, :]).reshape(n, -1)]
        if self.bias:
            parts.append(grad_out)
        return np.concatenate(parts, axis=1)

    def input_grad_many(self, x, grad_out):
        return grad_out @ self.params["weight"]

    def per_sample_grads_many(self, x, grad_out):
        K, n = grad_out.shape[:2]
        parts = [(grad_out[:, :, :, None] * x[None, :, None, :]).reshape(K, n, -1)]
        if self.bias:
            parts.append(grad_out)
        return np.concatenate(parts, axis=2)

    def kronecker_factors(self, x, grad_out):
        n = len(x)
        A = np.hstack([x, np.ones((n, 1), dtype=x.dtype)]) if self.bias else x
        return (A.T @ A) / n, (grad_out.T @ grad_out) / n, 1

    def jet(self, x, jet_in, direction):
        # (W + t dW)(x0 + D) + t db - W x0 = W D + t (dW x0 + db) + t dW D
        W = self.params["weight"]
        out = None
        if jet_in is not None:
            Ws = W if jet_in.channels is None else W[:, jet_in.channels]
            out = Jet(jet_in.coeffs @ Ws.T)
        if direction:
            coord = single_coord(direction)
            if coord is not None:
                if coord.name == "weight":
                    o, i = coord.index
                    first = x[:, i][None, :, None].copy()
                else:
                    first = np.ones((1, len(x), 1), dtype=x.dtype)
                    o = coord.index[0]
                own = Jet(first, np.array([o]))
                dW = None
                if coord.name == "weight" and jet_in is not None:
                    dW = np.zeros_like(W)
                    dW[o, i] = 1.0
            else:
                d = direction_arrays(self.params, direction)
                dW = d.get("weight")
                first = np.zeros((len(x), self.out_features), dtype=np.result_type(x, W))
                if dW is not None:
                    first += x @ dW.T
                if "bias" in d:
                    first += d["bias"]
                own = Jet(first[None])
            out = jet_add(out, own, self.out_features)
            if dW is not None and jet_in is not None:
                dWs = dW if jet_in.channels is None else dW[:, jet_in.channels]
                out = jet_add(out, Jet(shift_up(jet_in.coeffs @ dWs.T)), self.out_features)
        return out


    def symbolic(self, xs, ps):
        y = ps["weight"].dot(xs)
        if self.bias:
            y = y + ps["bias"]
        return y


# --------------------------------------------------------------------------- Conv2d
class Conv2d(Affine):
    """2-D cross-correlation, stride 1, ``padding="valid"`` or ``"same"``.

    Input (N, C_in, H, W), weight (C_out, C_in, k, k), output (N, C_out, H', W').

    Example:
        >>> import numpy as np
        >>> conv = Conv2d(1, 4, 3, padding="same")
        >>> conv.init(np.random.default_rng(0))
        >>> conv(np.ones((2, 1, 6, 6))).shape
        (2, 4, 6, 6)
    """

    needs_input = True
    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 padding: str = "valid", bias: bool = True) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
        if min(int(in_channels), int(out_channels), int(kh), int(kw)) < 1:
            raise ModelError(f"Conv2d needs positive channels and kernel size, got {in_channels}, {out_channels}, "
                             f"{kernel_size}")
        if padding not in ("valid", "same"):
            raise ModelError(f"Conv2d padding must be 'valid' or 'same', got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kh, self.kw, self.padding, self.bias = int(kh), int(kw), padding, bool(bias)
        self.params["weight"] = param_zeros((self.out_channels, self.in_channels, self.kh, self.kw))
        if self.bias:
            self.params["bias"] = np.zeros(self.out_channels)

    def config(self) -> dict:
        k = self.kh if self.kh == self.kw else [self.kh, self.kw]
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": k,
                "padding": self.padding, "bias": self.bias}

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.padding == "valid":
            return (0, 0), (0, 0)
        return ((self.kh - 1) // 2, self.kh // 2), ((self.kw - 1) // 2, self.kw // 2)

    def padded(self, x: np.ndarray) -> np.ndarray:
        (a, b), (c, d) = self.pads
        if a == b == c == d == 0:
            return x
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(a, b), (c, d)])

    def init(self, rng: np.random.Generator) -> None:
        fan_in = self.in_channels * self.kh * self.kw
        self.params["weight"][...] = rng.normal(0.0, 1.0 / np.sqrt(fan_in), self.params["weight"].shape)
        if self.bias:
            self.params["bias"][...] = 0.0

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ModelError(f"Conv2d expects inputs (C={self.in_channels}, H, W), got {tuple(input_shape)}")
        _, H, W = input_shape
        if self.padding == "same":
            return (self.out_channels, H, W)
        if H < self.kh or W < self.kw:
            raise ModelError(f"Conv2d kernel {self.kh}x{self.kw} is larger than its {H}x{W} input; "
                             "use padding='same' or a smaller kernel")
        return (self.out_channels, H - self.kh + 1, W - self.kw + 1)

    def _conv(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return conv2d_valid(self.padded(x), w)

    def forward(self, x):
        y = self._conv(x, self.params["weight"])
        if self.bias:
            y += self.params["bias"][None, :, None, None]
        return y

    def backward(self, x, grad_out, input_grad=True):
        # dL/dW[o,c,i,j] = sum_n,h,w g[n,o,h,w] xp[n,c,h+i,w+j];  dL/dxp = col2im(W^T g), cropped to x.
        gxp, gW = conv_backward(self.padded(x), grad_out, self.params["weight"], input_grad=input_grad)
        grads = {"weight": gW}
        if self.bias:
            grads["bias"] = grad_out.sum(axis=(0, 2, 3))
        if gxp is None:  # the first layer's input gradient is nobody's business
            return None, grads
        (a, b), (c, d) = self.pads
        gx = gxp[:, :, a:gxp.shape[2] - b, c:gxp.shape[3] - d]
        return gx, grads

    def input_grad(self, x, grad_out):
        # The transposed convolution: one matmul W^T g over all samples of a chunk, then the windows
        # are scattered back (col2im), a quarter of the data a full correlation with the flipped kernel
        # would move. Chunks of samples keep the columns within CONV_BLOCK_BYTES.
        g = np.asarray(grad_out)
        g = g if g.dtype in (np.float32, np.float64) else g.astype(np.float64)
        n, Co, Ho, Wo = g.shape
        Ci, kh, kw = self.in_channels, self.kh, self.kw
        wmat = self.params["weight"].reshape(Co, Ci * kh * kw).astype(g.dtype, copy=False)
        gxp = np.empty((n, Ci, Ho + kh - 1, Wo + kw - 1), dtype=g.dtype)
        step = block_rows(n, Ci * kh * kw * Ho * Wo * g.dtype.itemsize)
        for a in range(0, n, step):
            gs = g[a:a + step]
            m = len(gs)
            cols = wmat.T @ np.ascontiguousarray(gs.transpose(1, 0, 2, 3)).reshape(Co, m * Ho * Wo)
            col2im(cols.reshape(-1, m, Ho * Wo), kh, kw, gxp[a:a + m])
        (a, b), (c, d) = self.pads
        return gxp[:, :, a:gxp.shape[2] - b, c:gxp.shape[3] - d]

    def param_grads(self, x, grad_out):
        grads = {"weight": conv_weight_grad(self.padded(x), grad_out, self.kh, self.kw)}
        if self.bias:
            grads["bias"] = grad_out.sum(axis=(0, 2, 3))
        return grads

    def per_sample_grads(self, x, grad_out):
        # numpy: einsum('nohw,nchwij->nocij', g, windows(x)) per sample, bias: g.sum((2, 3));
        # one batched GEMM (Co, Ho*Wo) @ (Ho*Wo, Ci*kh*kw) per sample on the im2col columns.
        xp = np.ascontiguousarray(self.padded(x), dtype=np.float64)
        n = len(grad_out)
        Co, Ho, Wo = grad_out.shape[1:]
        K, P = xp.shape[1] * self.kh * self.kw, Ho * Wo
        cols = np.empty((K, n * P))
        im2col(xp, self.kh, self.kw, cols.reshape(K, n, P))
        per_sample = np.ascontiguousarray(cols.reshape(K, n, P).transpose(1, 0, 2))  # (n, K, P)
        gw = np.matmul(grad_out.reshape(n, Co, P), per_sample.transpose(0, 2, 1))
        parts = [gw.reshape(n, -1)]
        if self.bias:
            parts.append(grad_out.sum(axis=(2, 3)))
        return np.concatenate(parts, axis=1)

    def input_grad_many(self, x, grad_out):
        K, n = grad_out.shape[:2]
        out = self.input_grad(x, grad_out.reshape((K * n,) + grad_out.shape[2:]))  # reads only the pads of x
        return out.reshape((K, n) + out.shape[1:])

    def per_sample_grads_many(self, x, grad_out):
        # numpy: einsum('knohw,nchwij->knocij', g, windows(x)); the im2col columns are shared by the K outputs
        K, n = grad_out.shape[:2]
        dtype = grad_out.dtype
        xp = np.ascontiguousarray(self.padded(x), dtype=dtype)
        Co, Ho, Wo = grad_out.shape[2:]
        Kin, P = self.in_channels * self.kh * self.kw, Ho * Wo
        cols = np.empty((Kin, n, P), dtype=dtype)
        im2col(xp, self.kh, self.kw, cols)
        per_sample = np.ascontiguousarray(cols.transpose(1, 2, 0))  # (n, P, Kin)
        gw = np.matmul(grad_out.reshape(K, n, Co, P), per_sample[None])
        parts = [gw.reshape(K, n, -1)]
        if self.bias:
            parts.append(grad_out.sum(axis=(3, 4)))
        return np.concatenate(parts, axis=2)

    def kronecker_factors(self, x, grad_out):
        # Omega: input patches (im2col, a row of ones for the bias); Gamma: output derivatives; per position
        dtype = grad_out.dtype
        n = len(x)
        xp = np.ascontiguousarray(self.padded(x), dtype=dtype)
        Co, Ho, Wo = grad_out.shape[1:]
        P = Ho * Wo
        Kin = self.in_channels * self.kh * self.kw
        cols = np.empty((Kin + 1, n, P), dtype=dtype)
        im2col(xp, self.kh, self.kw, cols[:Kin])
        cols[Kin] = 1.0
        A = cols.reshape(Kin + 1, -1)
        if not self.bias:
            A = A[:Kin]
        D = np.ascontiguousarray(grad_out.transpose(1, 0, 2, 3)).reshape(Co, -1)
        return (A @ A.T) / (n * P), (D @ D.T) / (n * P), P

    def jet(self, x, jet_in, direction):
        # (W + t dW) * (x0 + D) + t db - W * x0 = W*D + t (dW*x0 + db) + t dW*D
        W = self.params["weight"]
        coord = single_coord(direction) if direction else None
        d = direction_arrays(self.params, direction) if direction and coord is None else {}
        out = None
        cross = None  # dW * D
        if jet_in is not None:
            Ws = W if jet_in.channels is None else W[:, jet_in.channels]
            K, N = jet_in.coeffs.shape[:2]
            flat = jet_in.coeffs.reshape((K * N,) + jet_in.coeffs.shape[2:])
            if "weight" in d:
                # W * D and dW * D from one im2col of D: the stacked weights [W; dW] in one GEMM
                dWs = d["weight"] if jet_in.channels is None else d["weight"][:, jet_in.channels]
                both = self._conv(flat, np.concatenate([Ws, dWs.astype(Ws.dtype, copy=False)]))
                Co = self.out_channels
                conv, cross = both[:, :Co], both[:, Co:]
            else:
                conv = self._conv(flat, Ws)
            out = Jet(conv.reshape((K, N) + conv.shape[1:]))
        if direction:
            if coord is not None:
                o = coord.index[0]
                if coord.name == "weight":
                    _, c, i, j = coord.index
                    Ho, Wo = self.output_shape(x.shape[1:])[1:]
                    first = self.padded(x[:, c])[:, i:i + Ho, j:j + Wo][None, :, None]
                    if jet_in is not None:  # one weight moves: dW * D is a single-coordinate conv
                        dW = np.zeros_like(W)
                        dW[coord.index] = 1.0
                        cross = self._conv(flat, dW if jet_in.channels is None else dW[:, jet_in.channels])
                else:
                    Ho, Wo = self.output_shape(x.shape[1:])[1:]
                    first = np.ones((1, len(x), 1, Ho, Wo), dtype=x.dtype)
                own = Jet(np.ascontiguousarray(first), np.array([o]))
            else:
                first = np.zeros((len(x),) + self.output_shape(x.shape[1:]), dtype=np.result_type(x, W))
                if "weight" in d:
                    first += self._conv(x, d["weight"])
                if "bias" in d:
                    first += d["bias"][None, :, None, None]
                own = Jet(first[None])
            out = jet_add(out, own, self.out_channels)
            if cross is not None:
                out = jet_add(out, Jet(shift_up(cross.reshape((K, N) + cross.shape[1:]))), self.out_channels)
        return out


    def symbolic(self, xs, ps):
        (a, b), (c, d) = self.pads
        xp = np.full((xs.shape[0], xs.shape[1] + a + b, xs.shape[2] + c + d), 0, dtype=object)
        xp[:, a:a + xs.shape[1], c:c + xs.shape[2]] = xs
        win = windows(xp, self.kh, self.kw)  # (Ci, Ho, Wo, kh, kw)
        Ci, Ho, Wo = win.shape[:3]
        cols = win.transpose(1, 2, 0, 3, 4).reshape(Ho * Wo, -1)
        w = ps["weight"].reshape(self.out_channels, -1)
        y = cols.dot(w.T).T.reshape(self.out_channels, Ho, Wo)
        if self.bias:
            y = y + ps["bias"][:, None, None]
        return y


# --------------------------------------------------------------------------- AvgPool2d
class AvgPool2d(Layer):
    """Non-overlapping average pooling with a square window (stride = size).

    Trailing rows and columns that do not fill a window are dropped.

    Example:
        >>> import numpy as np
        >>> AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
    """

    kind = "pool"

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        if int(size) < 1:
            raise ModelError(f"AvgPool2d size must be positive, got {size}")
        self.size = int(size)

    def config(self) -> dict:
        return {"size": self.size}

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ModelError(f"AvgPool2d expects inputs (C, H, W), got {tuple(input_shape)}")
        C, H, W = input_shape
        if H < self.size or W < self.size:
            raise ModelError(f"AvgPool2d({self.size}) is larger than its {H}x{W} input")
        return (C, H // self.size, W // self.size)

    def _pool(self, x: np.ndarray) -> np.ndarray:
        s = self.size
        Ho, Wo = x.shape[-2] // s, x.shape[-1] // s
        if x.ndim >= 3 and x.dtype in (np.float32, np.float64):
            # leading axes (samples, jet orders) fold into the kernel's batch axis
            lead = x.shape[:-3]
            x4 = np.ascontiguousarray(x).reshape((-1,) + x.shape[-3:])
            out = np.empty(x4.shape[:2] + (Ho, Wo), dtype=x.dtype)
            avg_pool(x4, s, out)
            return out.reshape(lead + out.shape[1:])
        x = x[..., :Ho * s, :Wo * s]
        return x.reshape(x.shape[:-2] + (Ho, s, Wo, s)).mean(axis=(-3, -1))

    def forward(self, x):
        return self._pool(x)

    def backward(self, x, grad_out, input_grad=True):
        s = self.size
        if x.ndim == 4 and x.dtype in (np.float32, np.float64):
            g = np.empty(x.shape, dtype=x.dtype)
            avg_pool_backward(np.ascontiguousarray(grad_out, dtype=x.dtype), s, g)
            return g, {}
        g = np.zeros_like(x)
        H, W = grad_out.shape[-2] * s, grad_out.shape[-1] * s
        g[..., :H, :W] = np.repeat(np.repeat(grad_out, s, axis=-2), s, axis=-1) / (s * s)
        return g, {}

    def input_grad_many(self, x, grad_out):
        return _input_grad_many_by_shape(self, x, grad_out)

    def jet(self, x, jet_in, direction):
        if jet_in is None:
            return None
        return Jet(self._pool(jet_in.coeffs), jet_in.channels)

    def symbolic(self, xs, ps):
        s = self.size
        C, H, W = xs.shape
        H, W = (H // s) * s, (W // s) * s
        blocks = xs[:, :H, :W].reshape(C, H // s, s, W // s, s)
        return blocks.sum(axis=(2, 4)) * (1.0 / (s * s))


# --------------------------------------------------------------------------- Flatten
class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W), in C order.

    Example:
        >>> import numpy as np
        >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
        (2, 60)
    """

    kind = "flatten"

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        return x.reshape(len(x), -1)

    def backward(self, x, grad_out, input_grad=True):
        return grad_out.reshape(x.shape), {}

    def input_grad_many(self, x, grad_out):
        return _input_grad_many_by_shape(self, x, grad_out)

    def jet(self, x, jet_in, direction):
        if jet_in is None:
            return None
        K, N = jet_in.coeffs.shape[:2]
        inner = int(np.prod(jet_in.coeffs.shape[3:])) if jet_in.coeffs.ndim > 3 else 1
        coeffs = jet_in.coeffs.reshape(K, N, -1)
        if jet_in.channels is None:
            return Jet(coeffs)
        units = (jet_in.channels[:, None] * inner + np.arange(inner)[None, :]).ravel()
        return Jet(coeffs, units)

    def symbolic(self, xs, ps):
        return xs.reshape(-1)


# --------------------------------------------------------------------------- Poly
class Poly(Layer):
    """Elementwise polynomial activation ``p(z) = sum_j a_j z^j`` with fixed coefficients.

    ``coeffs`` are lowest degree first, or a preset name from :data:`ACTIVATIONS`
    (``"square"``, ``"relu-approx-a"``, ``"relu-approx-b"``, ``"relu-approx-c"``).

    Example:
        >>> import numpy as np
        >>> Poly([1.0, 0.0, 2.0])(np.array([[1.0, 2.0]]))
        array([[3., 9.]])
    """

    needs_input = True
    kind = "act"

    def __init__(self, coeffs: str | tuple[float, ...] | list[float] = "square") -> None:
        super().__init__()
        if isinstance(coeffs, str):
            if coeffs not in ACTIVATIONS:
                raise ModelError(f"unknown activation {coeffs!r}; presets: {', '.join(ACTIVATIONS)}")
            self.preset = coeffs
            coeffs = ACTIVATIONS[coeffs]
        else:
            self.preset = None
        c = np.asarray(coeffs, dtype=np.float64)
        if c.ndim != 1 or len(c) == 0 or not np.all(np.isfinite(c)):
            raise ModelError(f"Poly coefficients must be a non-empty list of finite numbers, got {coeffs!r}")
        nz = np.flatnonzero(c)
        if not len(nz) or nz[-1] < 1:
            raise ModelError(f"Poly coefficients {list(coeffs)} give a constant activation, which ignores its input; "
                             "give at least one nonzero coefficient of degree 1 or more")
        self.coeffs = c[: nz[-1] + 1]

    @property
    def order(self) -> int:
        return len(self.coeffs) - 1

    def config(self) -> dict:
        return {"coeffs": self.preset if self.preset else self.coeffs.tolist()}

    def forward(self, x):
        if self._is_square:  # the common case in two passes over the data instead of Horner's five
            y = np.square(x)
            if self.coeffs[2] != 1.0:
                y *= self.coeffs[2]
            return y
        y = np.full_like(x, self.coeffs[-1])
        for a in self.coeffs[-2::-1]:  # Horner, over the (few) coefficients
            y *= x
            y += a
        return y

    @property
    def _is_square(self) -> bool:
        return self.order == 2 and self.coeffs[0] == 0.0 and self.coeffs[1] == 0.0

    def derivative(self, x):
        d = np.arange(1, len(self.coeffs)) * self.coeffs[1:]
        if len(d) == 0:
            return np.zeros_like(x)
        y = np.full_like(x, d[-1])
        for a in d[-2::-1]:
            y *= x
            y += a
        return y

    def backward(self, x, grad_out, input_grad=True):
        if self._is_square:
            g = grad_out * x
            g *= 2.0 * self.coeffs[2]
            return g, {}
        return grad_out * self.derivative(x), {}

    def input_grad(self, x, grad_out):
        return grad_out * self.derivative(x)

    def input_grad_many(self, x, grad_out):
        return grad_out * self.derivative(x)[None]

    def jet(self, x, jet_in, direction):
        # p(z0 + D) - p(z0) = sum_j a_j ((z0 + D)^j - z0^j), D = sum_k D_k t^k, exact.
        if jet_in is None:
            return None
        z0 = jet_in.select(x)
        D = jet_in.coeffs
        if self._is_square:
            return Jet(float(self.coeffs[2]) * square_jet(z0, D), jet_in.channels)
        K = D.shape[0]
        full = np.concatenate([z0[None], D], axis=0)  # powers of the whole series z0 + D
        out = np.zeros((K * self.order,) + D.shape[1:], dtype=np.result_type(z0, D))
        power = full
        for j in range(1, self.order + 1):  # over the activation's degree, not over data
            if j > 1:
                power = series_mul(power, full)
            if self.coeffs[j] != 0.0:
                out[: len(power) - 1] += float(self.coeffs[j]) * power[1:]
        return Jet(out, jet_in.channels)

    def degree(self, degree_in, moves):
        return degree_in * self.order

    def symbolic(self, xs, ps):
        y = np.zeros_like(xs)
        for j, a in enumerate(self.coeffs):
            if a != 0.0:
                y = y + float(a) * xs ** j if j > 0 else y + float(a)
        return y


class Square(Poly):
    """``p(z) = z^2``.

    Example:
        >>> import numpy as np
        >>> Square()(np.array([[3.0]]))
        array([[9.]])
    """

    def __init__(self) -> None:
        super().__init__("square")

    def config(self) -> dict:
        return {}


#: Layer types by class name: what a saved model's spec can name, and what the exact solvers accept.
LAYER_TYPES: dict[str, type[Layer]] = {
    "Linear": Linear, "Conv2d": Conv2d, "AvgPool2d": AvgPool2d, "Flatten": Flatten, "Poly": Poly, "Square": Square,
}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Register a layer class of one's own so that saved models with it load again (usable as a decorator).

    The class must be a :class:`Layer` whose ``config()`` returns the keyword
    arguments that rebuild it (``cls(**layer.config())``). Registering it also
    tells the exact solvers it has the rules they call (``jet``, ``degree`` and,
    for Gauss-Newton, the derivative rules); a rule it lacks raises a
    :class:`~symnet.core.errors.ModelError` naming the rule when it is used.

    Example:
        >>> @register_layer
        ... class Doubler(Layer):
        ...     kind = "double"
        ...     def forward(self, x):
        ...         return 2.0 * x
        >>> LAYER_TYPES["Doubler"] is Doubler
        True
        >>> del LAYER_TYPES["Doubler"]
    """
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ModelError(f"register_layer takes a subclass of symnet.layers.Layer, got {cls!r}")
    known = LAYER_TYPES.get(cls.__name__)
    if known is not None and known is not cls:
        raise ModelError(f"a different layer class is already registered as {cls.__name__!r}; rename yours")
    LAYER_TYPES[cls.__name__] = cls
    return cls
