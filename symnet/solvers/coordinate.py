"""Exact coordinate descent: every step jumps to a global minimum of the loss.

One step of :class:`CoordinateSolver` is a sweep:

1. every parameter in turn (layer by layer, or in a random order): restrict
   the loss to that coordinate, an exact univariate polynomial, and move to
   its global minimiser if that lowers the loss;
2. ``rescale``: for each channel of a layer followed by a monomial activation
   ``a z^p``, the network is unchanged when the channel's weights are scaled
   by ``s`` and the next layer's weights reading that channel by ``s^-p``;
   only the ridge term changes, and ``s`` minimising it is closed form;
3. ``linear_block``: the last Linear layer, solved exactly as one ridge
   problem (normal equations, Cholesky);
4. ``extrapolate``: the displacement of the whole sweep is one more
   direction; the loss along it is still a univariate polynomial, minimised
   exactly.

No step is ever taken that raises the loss.

Cost model (N samples, O outputs), per coordinate:

* last Linear weight: O(N) (fused Gauss-Seidel kernel, closed-form quadratic);
* Conv2d weight followed by [Poly] [AvgPool2d] Flatten Linear (``seed`` and
  ``poly``): O(N * (H_out * W_out * deg + pooled * O * deg)) in one fused kernel;
* any other weight: generic jets from the weight's layer on, restricted to
  the channels it touches: N times the touched slice times the downstream
  fan-out (for ``poly2``'s first conv: one channel, then every channel of the
  second conv).

Caches are updated incrementally after each accepted step and recomputed
exactly once per sweep.

Networks of the ``poly`` shape (``Conv2d -> Poly -> [AvgPool2d] -> Flatten ->
Linear``) get channel blocks instead (option ``blocks``): one block per conv
channel, its filter with the readout weights that read it, moved by an exact
line search along a variable-projection Gauss-Newton direction; see
:mod:`symnet.solvers.channel_blocks` (the block steps) and
:mod:`symnet.solvers.channel_driver` (their sweeps, stages and ridge).
"""

from __future__ import annotations

import contextlib

import numpy as np

from symnet.core.certificates import BLOCK, COORD
from symnet.core.derivatives import conv_chain
from symnet.core.errors import SolverError
from symnet.core.kernels.conv import im2col
from symnet.core.jets import Coord
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly
from symnet.core.roots import minimize
from symnet.core.linalg import PROVISIONAL_RIDGE, cross, gram
from symnet.core.restriction import Restriction

from symnet.solvers.base import Solver
from symnet.solvers.channel_driver import CHANNEL_OPTIONS, channel_driver
from symnet.core.kernels.coordinate import (conv_chain_coeffs, conv_chain_update, fixed_direction_sweep, gram_sweep,
                                               linear_sweep)
from symnet.solvers.options import Option


class CoordinateSolver(Solver):
    """Exact coordinate descent with polynomial line minimisation.

    Options:
        ridge: weight of ``ridge * ||theta||^2`` in the objective (the SSE is
            summed over samples, so this is small for large N). ``"auto"``
            (default): chosen on held-out training samples, stage by stage with
            channel blocks, from the initial features' readout for the
            one-weight-at-a-time sweep (1.0 without a last Linear layer).
        order: ``"cyclic"`` (layer by layer, last layer first) or ``"random"``.
        linear_block: solve the last Linear layer exactly after each sweep.
        rescale: closed-form per-channel rescale after each sweep.
        extrapolate: exact line search along the sweep's displacement
            (``"auto"``: on, except with channel blocks).
        layers: names of the layers whose coordinates are swept (default all).
        fused: use the fused numba kernels where the graph allows.
        seed: seed of the random order.
        blocks, ridge_grid, val_size, sample_start, sample_growth,
        grow_tol, stage_sweeps, full_by, gradient, curvature_samples: channel blocks, see
            :mod:`symnet.solvers.channel_driver`.

    Example:
        >>> import symnet; from symnet import solvers
        >>> data = symnet.datasets.xor()
        >>> model = symnet.models.get("mlp", input_dim=2, hidden=2, seed=0)
        >>> s = solvers.get("coordinate")(ridge=1e-3).fit(model, data, steps=2, quiet=True)
        >>> s.history_.final["loss"] < s.history_[0]["loss"]
        True
    """

    name = "coordinate"
    step_unit = "sweep"
    certifiable = True
    shardable = True
    default_steps = 5
    OPTIONS = {
        "ridge": Option("auto", "float", low=0.0, auto=True,
                        help="weight of ridge * ||theta||^2 in the objective (auto: chosen on held-out training "
                             "samples: per stage with channel blocks, else once from the initial features)"),
        "order": Option("cyclic", "choice", choices=("cyclic", "random"),
                        help="layer by layer (last layer first), or a random order"),
        "linear_block": Option(True, "bool", help="solve the last Linear layer exactly after each sweep"),
        "rescale": Option(True, "bool", help="closed-form per-channel rescale after each sweep"),
        "extrapolate": Option("auto", "bool", auto=True,
                              help="exact line search along the sweep's displacement (auto: on, except with "
                                   "channel blocks)"),
        "layers": Option(None, "names", none=True, help="names of the layers whose coordinates are swept "
                                                        "(None: all)"),
        "fused": Option(True, "bool", help="use the fused numba kernels where the graph allows"),
        "seed": Option(0, "int", low=0, help="seed of the random order"),
        **CHANNEL_OPTIONS,
    }

    # ------------------------------------------------------------------ setup
    def _setup(self, model, data, rng):
        self.channels_ = channel_driver(self, model, data, rng)  # poly-shaped networks: channel blocks
        if self.channels_ is not None:
            return
        opts = self.opts_
        layers = self._require_exact_network(model, data)
        auto = opts["ridge"] == "auto"
        self.rng_ = rng
        self.loss_ = self._exact_loss(model, data.x_train, self.y_train,
                                      ridge=PROVISIONAL_RIDGE if auto else opts["ridge"])
        if auto:  # the choice is a result (ridge_), the option stays "auto"
            self.ridge_ = self.loss_.ridge = self._auto_ridge(model)
        self._certify(self.loss_)
        names = [layer.name for layer in layers]
        wanted = opts["layers"]
        if wanted is not None:
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise SolverError(f"layers {unknown} not in the model; it has {names}")
        self.plan_ = []
        for li, layer in enumerate(layers):
            if not layer.params or (wanted is not None and layer.name not in wanted):
                continue
            self.plan_.append((li, self._kind(li)))
        self.sweeps_ = 0

    def _auto_ridge(self, model) -> float:
        """``ridge="auto"`` of the per-coordinate sweep: the weight whose readout of the initial features
        (the loss's caches) scores best on held-out training samples
        (:meth:`~symnet.solvers.base.Solver._held_out_ridge`, the split seeded by ``seed``); 1.0 without a
        last Linear layer or with too few samples."""
        self.ridge_selection_ = None
        if not isinstance(model.layers[-1], Linear):
            return PROVISIONAL_RIDGE
        chosen = self._held_out_ridge(self.loss_.readout_problem(), int(self.opts_["seed"]))
        if chosen is None:
            return PROVISIONAL_RIDGE
        self.ridge_selection_ = chosen[1]
        return chosen[0]

    def _kind(self, li: int) -> str:
        layers = self.model_.layers
        layer = layers[li]
        last = len(layers) - 1
        if li == last and isinstance(layer, Linear):
            return "linear-last" if self.opts_["fused"] else "generic"
        if isinstance(layer, Conv2d) and self.opts_["fused"] and self._conv_chain(li) is not None:
            poly_li = self._conv_chain(li)[0]
            if poly_li is None or layers[poly_li].order == 1:
                return "conv-linear-chain"
            return "conv-chain"
        return "generic"

    def _conv_chain(self, li: int):
        """(poly index or None, pool size, linear index) if conv li feeds [Poly][Pool] Flatten Linear(last)."""
        return conv_chain(self.model_, li)

    def _initial_loss(self):
        if self.channels_ is not None:
            return None
        return self.loss_.value / self.loss_.num_samples

    def _on_params_restored(self):
        if self.channels_ is not None:
            return self.channels_.on_params_restored()
        self.loss_.refresh()

    def _state(self):
        if self.channels_ is not None:
            return self.channels_.state()
        return {"sweeps": self.sweeps_, "ridge": self.loss_.ridge}

    def _load_state(self, state):
        if self.channels_ is not None:
            return self.channels_.load_state(state)
        self.sweeps_ = int(state.get("sweeps", 0))
        if "ridge" in state:  # the weight the run chose when it started, whatever the parameters now
            self.ridge_ = self.loss_.ridge = float(state["ridge"])

    # ------------------------------------------------------------------ one sweep
    def _step(self) -> dict:
        if self.channels_ is not None:
            return self.channels_.step()
        loss = self.loss_
        model = self.model_
        theta0 = model.get_flat()
        start_value = loss.value
        updates = accepted = 0
        schedule = self._schedule()
        for pos, (li, kind, coords) in enumerate(schedule):
            if self.deadline.passed():
                break
            self._last_run = pos == len(schedule) - 1  # the sweep ends with a refresh anyway
            self._updates_before = updates
            if self.certificates_ is not None and kind in ("linear-last", "conv-linear-chain"):
                # the fused Gauss-Seidel kernels step every coordinate inside one call: certify the run as a block
                self._last_run = False
                with self._block_certificate():
                    n, a = self._sweep_run(li, kind, coords)
            else:
                n, a = self._sweep_run(li, kind, coords)
            updates += n
            accepted += a
            self._record_within(updates)
        extras = {}
        # past the time limit the sweep ends here: the closing solves are cut too (the record says so)
        out_of_time = self.deadline.passed()
        if out_of_time:
            extras["cut"] = 1
        with self._block_certificate():
            if self.opts_["rescale"] and not out_of_time:
                extras["rescaled"] = self._rescale()
            loss.refresh()
        if self.opts_["linear_block"] and isinstance(model.layers[-1], Linear) and not out_of_time:
            extras["block_decrease"] = loss.solve_readout()
        if self.opts_["extrapolate"] and not out_of_time:
            d = model.get_flat() - theta0
            if np.any(d):
                extras["extrapolation"] = loss.line_minimize(d).t  # its step updates the caches exactly
        self.sweeps_ += 1
        if loss.value > start_value * (1 + 1e-12) + 1e-12:
            raise RuntimeError(f"internal error: sweep raised the loss from {start_value} to {loss.value}")
        N = loss.num_samples
        return {"loss": loss.value / N, "updates": updates, "passes": 1.0, "accepted": accepted,
                "train_scores": loss.output, **extras}

    def _record_within(self, updates: int) -> None:
        """An interim record inside the sweep when one is due (the caches hold the objective and scores)."""
        if self.interim_due():
            N = self.loss_.num_samples
            total = max(1, self.model_.num_params)
            self.record_interim(passes=updates / total, updates=updates, loss=self.loss_.value / N,
                                train_scores=self.loss_.output)

    def _schedule(self):
        """(layer index, kind, coordinate array) runs for this sweep."""
        runs = []
        for li, kind in self.plan_:
            layer = self.model_.layers[li]
            sizes = [(k, v.size) for k, v in layer.params.items()]
            coords = np.concatenate([np.stack([np.full(n, i), np.arange(n)], 1)
                                     for i, (_, n) in enumerate(sizes)])
            runs.append((li, kind, coords))
        if self.opts_["order"] == "cyclic":
            # last layer first: the cheap convex block adapts to the features before the features move
            return runs[::-1]
        # random: layers in a random order, the coordinates of each layer in a random order
        return [(li, kind, coords[self.rng_.permutation(len(coords))])
                for li, kind, coords in (runs[i] for i in self.rng_.permutation(len(runs)))]

    def _sweep_run(self, li: int, kind: str, coords: np.ndarray) -> tuple[int, int]:
        layer = self.model_.layers[li]
        keys = list(layer.params)
        if kind == "linear-last":
            return self._linear_run(layer, coords)
        if kind == "conv-linear-chain":
            return self._conv_linear_run(li, coords)
        accepted = 0
        for done, (ki, flat) in enumerate(coords):
            if done % 8 == 0:
                if self.deadline.passed():
                    return done, accepted
                self._record_within(self._updates_before + done)
            key = keys[ki]
            idx = np.unravel_index(int(flat), layer.params[key].shape)
            if kind == "conv-chain":
                accepted += self._conv_coordinate(li, key, tuple(int(i) for i in idx))
            else:
                accepted += self.loss_.line_minimize({li: {key: Coord(key, tuple(int(i) for i in idx))}}).accepted
        return len(coords), accepted

    # ------------------------------------------------------------------ fused paths
    def _linear_run(self, layer: Linear, coords: np.ndarray) -> tuple[int, int]:
        loss = self.loss_
        li = len(self.model_.layers) - 1
        F = layer.params["weight"].shape[1]
        # every output row is independent, so one order of the F inputs (F = the bias) serves all rows
        order = np.arange(F + 1) if self.opts_["order"] == "cyclic" else self.rng_.permutation(F + 1)
        if not loss.local:
            return self._linear_run_from_sums(li, layer, order, len(coords))
        H = loss.acts[li]
        HT = np.ascontiguousarray(H.T)
        hsq = np.einsum("fn,fn->f", HT, HT)
        rT = np.ascontiguousarray(loss.residual.T)
        b = layer.params["bias"] if layer.bias else np.zeros(layer.out_features)
        W = layer.params["weight"]
        linear_sweep(HT, hsq, W, b, rT, loss.ridge, order, layer.bias)
        loss.residual[...] = rT.T
        loss.residual_changed()
        loss.params_changed()
        return len(coords), len(coords)

    def _linear_run_from_sums(self, li: int, layer: Linear, order: np.ndarray, count: int) -> tuple[int, int]:
        """The same Gauss-Seidel sweep when the samples are elsewhere: one Gram matrix and ``[H, 1]^T r`` summed
        over the shards (one round trip), the sweep here (:func:`gram_sweep`), the new weights sent back."""
        loss = self.loss_
        G, C = loss.reduce(readout_system, li, layer.bias)
        W = layer.params["weight"]
        F = W.shape[1]
        V = np.concatenate([W, layer.params["bias"][:, None]], axis=1) if layer.bias else W.copy()
        gram_sweep(G, C, V, loss.ridge, np.ascontiguousarray(order[order < len(G)], dtype=np.int64))
        W[...] = V[:, :F]
        if layer.bias:
            layer.params["bias"][...] = V[:, F]
        loss.defer(readout_moved, li, W.copy(), layer.params["bias"].copy() if layer.bias else None)
        loss.params_changed()
        return count, count

    def _conv_linear_run(self, li: int, coords: np.ndarray) -> tuple[int, int]:
        """Conv coordinates when the chain to the output is linear (``seed``: conv -> flatten -> linear).

        The output moves along a fixed direction per coordinate while the last
        layer is fixed, so one im2col matmul per output channel gives every
        tap's direction ``G`` and each exact step costs O(N * outputs). When the
        samples are elsewhere, each shard sums ``G G^T`` and ``G . r`` for the
        channel and the channel's steps are taken here from those sums (one round
        trip per channel).
        """
        loss = self.loss_
        conv = self.model_.layers[li]
        K = conv.in_channels * conv.kh * conv.kw
        keys = list(conv.params)
        residual = np.ascontiguousarray(loss.residual) if loss.local else None
        is_weight = np.array([keys[ki] == "weight" for ki in coords[:, 0]], dtype=bool)
        channel = np.where(is_weight, coords[:, 1] // K, coords[:, 1])
        done = 0
        for c in range(conv.out_channels):
            mine = channel == c
            if not mine.any():
                continue
            if self.deadline.passed():
                break
            self._record_within(self._updates_before + done)
            w = np.append(conv.params["weight"][c].ravel(), conv.params["bias"][c] if conv.bias else 0.0)
            order = np.where(is_weight[mine], coords[mine, 1] % K, K).astype(np.int64)
            if loss.local:
                G = conv_linear_directions(loss, li, c)
                fixed_direction_sweep(G, w, residual, loss.ridge, order)
            else:
                M, g = loss.reduce(conv_linear_system, li, c)
                V = w[None, :].copy()
                gram_sweep(M, g[:, None], V, loss.ridge, order)
                w = V[0]
            conv.params["weight"][c] = w[:K].reshape(conv.params["weight"][c].shape)
            if conv.bias:
                conv.params["bias"][c] = w[K]
            if not loss.local:
                loss.defer(conv_linear_moved, li, c, w.copy())
            done += int(mine.sum())
        if not self._last_run:
            loss.refresh()
        return done, done

    def _conv_coordinate(self, li: int, key: str, idx: tuple[int, ...]) -> int:
        loss = self.loss_
        conv = self.model_.layers[li]
        coeffs = loss.reduce(conv_chain_coefficients, li, key, idx)
        w = float(conv.params[key][idx])
        coeffs[0] = loss.value
        coeffs[1] += 2.0 * loss.ridge * w
        coeffs[2] += loss.ridge
        t, after, _ = minimize(coeffs)
        accepted = bool(np.isfinite(t) and t != 0.0 and after < coeffs[0])
        if self.certificates_ is not None:
            lo, _ = self.model_.offsets()[f"{conv.name}.{key}"]
            self.certificates_.record(COORD, theta=self.model_.get_flat, coeffs=coeffs, t=t if accepted else 0.0,
                                      before=coeffs[0], after=after if accepted else coeffs[0], ridge=loss.ridge,
                                      index=lo + int(np.ravel_multi_index(idx, conv.params[key].shape)))
        if not accepted:
            return 0
        conv.params[key][idx] = w + t
        loss.shift_norm(w, w + t)
        loss.defer(conv_chain_moved, li, key, idx, float(t), w + t)
        return 1

    @contextlib.contextmanager
    def _block_certificate(self):
        """Certify the work inside the block as one step (its displacement taken with t = 1), if certificates are on.

        The caches must be exact when the block ends (the callers refresh them).
        """
        if self.certificates_ is None:
            yield
            return
        loss, theta = self.loss_, self.model_.get_flat()
        before = loss.value
        yield
        self.certificates_.record(BLOCK, theta=theta, t=1.0, before=before, after=loss.value, ridge=loss.ridge,
                                  direction=lambda: self.model_.get_flat() - theta)

    # ------------------------------------------------------------------ block steps
    def _rescale(self) -> int:
        """Closed-form per-channel rescale that keeps the network and lowers the ridge term."""
        if not self.loss_.ridge:
            return 0
        layers = self.model_.layers
        count = 0
        for li, layer in enumerate(layers):
            if not isinstance(layer, (Conv2d, Linear)) or li + 1 >= len(layers):
                continue
            act = layers[li + 1]
            if not isinstance(act, Poly):
                continue
            nz = np.flatnonzero(act.coeffs)
            if len(nz) != 1 or nz[0] < 1:
                continue  # only a monomial a z^p is homogeneous
            p = int(nz[0])
            j = li + 2
            inner = 1
            while j < len(layers) and isinstance(layers[j], (AvgPool2d, Flatten)):
                if isinstance(layers[j], Flatten) and len(self.model_.shapes[j]) == 3:
                    inner = int(np.prod(self.model_.shapes[j][1:]))
                j += 1
            if j >= len(layers) or not isinstance(layers[j], (Conv2d, Linear)):
                continue
            nxt = layers[j]
            W, Wn = layer.params["weight"], nxt.params["weight"]
            for c in range(W.shape[0]):
                cols = slice(c * inner, (c + 1) * inner) if isinstance(nxt, Linear) else c
                A = float(np.sum(W[c] ** 2)) + (float(layer.params["bias"][c] ** 2) if layer.bias else 0.0)
                B = float(np.sum(Wn[:, cols] ** 2))
                if A <= 0.0 or B <= 0.0:
                    continue
                s = (p * B / A) ** (1.0 / (2 + 2 * p))
                if abs(s - 1.0) < 1e-12:
                    continue
                W[c] *= s
                if layer.bias:
                    layer.params["bias"][c] *= s
                Wn[:, cols] *= s ** (-p)
                count += 1
        return count


# --------------------------------------------------------------------------- ops on the samples (see symnet.core.samples)
# The fused paths' sums over samples and cache updates, as functions of one process's Restriction: called
# directly on a loss in this process, on every shard of a sharded one.
def readout_system(loss: Restriction, rows, li: int, bias: bool) -> tuple[np.ndarray, np.ndarray]:
    """``([H, 1]^T [H, 1], [H, 1]^T r)`` of the last layer's cached inputs ``H`` and the residual ``r``."""
    H = loss.acts[li]
    return gram(H, bias=bias), cross(H, loss.residual, bias=bias)


def readout_moved(loss: Restriction, rows, li: int, W: np.ndarray, b) -> None:
    """The last layer's weights became ``W`` (and ``b``): shift the residual by the change of its outputs."""
    layer = loss.model.layers[li]
    H = loss.acts[li]
    shift = np.asarray(H, dtype=np.float64) @ (W - layer.params["weight"]).T
    if b is not None:
        shift += b - layer.params["bias"]
        layer.params["bias"][...] = b
    layer.params["weight"][...] = W
    loss.residual += shift
    loss.residual_changed()


def conv_linear_directions(loss: Restriction, li: int, c: int) -> np.ndarray:
    """``G`` (K + 1, N, outputs): how the outputs move per unit step of each weight (and the bias) of
    channel ``c`` of Conv2d ``li`` when the chain to the output is linear (see ``_conv_linear_run``)."""
    model = loss.model
    layers = model.layers
    conv = layers[li]
    poly_li, pool, lin_li = conv_chain(model, li)
    slope = float(layers[poly_li].coeffs[1]) if poly_li is not None else 1.0
    Ho, Wo = model.shapes[li + 1][1:]
    Hq, Wq = Ho // pool, Wo // pool
    inner = Hq * Wq
    xpad = _padded_input(loss, li)
    N = len(xpad)
    K = conv.in_channels * conv.kh * conv.kw
    Wlin = layers[lin_li].params["weight"]
    # the output weights of channel c, spread back over each pool window: (O, Ho*Wo)
    up = Wlin[:, c * inner:(c + 1) * inner].reshape(-1, Hq, 1, Wq, 1)
    up = np.broadcast_to(up, (up.shape[0], Hq, pool, Wq, pool)).reshape(-1, Hq * pool, Wq * pool)
    Wup = np.zeros((up.shape[0], Ho, Wo))
    Wup[:, :Hq * pool, :Wq * pool] = up * (slope / (pool * pool))
    Wup = Wup.reshape(up.shape[0], -1)
    G = np.empty((K + 1, N, Wup.shape[0]))
    for s in range(0, N, 1024):  # G[k, n, o] = sum_p cols[k, n, p] Wup[o, p]: one GEMM per chunk
        xs = xpad[s:s + 1024]
        cols = np.empty((K, len(xs), Ho * Wo))
        im2col(xs, conv.kh, conv.kw, cols)
        G[:K, s:s + len(xs)] = (cols.reshape(-1, Ho * Wo) @ Wup.T).reshape(K, len(xs), -1)
    G[K] = Wup.sum(axis=1)[None, :]
    return G


def conv_linear_system(loss: Restriction, rows, li: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """``(G G^T, G . r)`` of channel ``c``'s directions (summed over samples and outputs); keeps ``G`` for the update."""
    G = conv_linear_directions(loss, li, c)
    flat = G.reshape(len(G), -1)
    loss.scratch["conv_linear"] = (li, c, G)
    return flat @ flat.T, flat @ loss.residual.ravel()


def conv_linear_moved(loss: Restriction, rows, li: int, c: int, w: np.ndarray) -> None:
    """Channel ``c``'s weights (and bias, last) became ``w``: move the residual along the kept directions."""
    conv = loss.model.layers[li]
    K = conv.in_channels * conv.kh * conv.kw
    old = np.append(conv.params["weight"][c].ravel(), conv.params["bias"][c] if conv.bias else 0.0)
    held = loss.scratch.get("conv_linear")
    G = held[2] if held is not None and held[:2] == (li, c) else conv_linear_directions(loss, li, c)
    loss.residual += np.tensordot(w - old, G, axes=1)
    conv.params["weight"][c] = w[:K].reshape(conv.params["weight"][c].shape)
    if conv.bias:
        conv.params["bias"][c] = w[K]
    loss.residual_changed()


def _padded_input(loss: Restriction, li: int) -> np.ndarray:
    """Conv2d ``li``'s padded cached input, kept in the loss's scratch while that input stays the same array."""
    held = loss.scratch.get("xpad")
    if held is None or held[0] != li or held[1] is not loss.acts[li]:
        held = (li, loss.acts[li], np.ascontiguousarray(loss.model.layers[li].padded(loss.acts[li])))
        loss.scratch["xpad"] = held
    return held[2]


def _chain_arguments(loss: Restriction, li: int, key: str, idx: tuple[int, ...]) -> tuple:
    """The arguments shared by :func:`conv_chain_coeffs` and :func:`conv_chain_update` for one conv coordinate."""
    model = loss.model
    layers = model.layers
    conv = layers[li]
    poly_li, pool, lin_li = conv_chain(model, li)
    xpad = _padded_input(loss, li)
    c = idx[0]
    is_bias = key == "bias"
    ci, di, dj = (0, 0, 0) if is_bias else idx[1:]
    Ho, Wo = model.shapes[li + 1][1:]
    inner = (Ho // pool) * (Wo // pool)
    Wsub = np.ascontiguousarray(layers[lin_li].params["weight"][:, c * inner:(c + 1) * inner])
    if poly_li is not None:
        pc, z, has_pre = layers[poly_li].coeffs, loss.acts[poly_li], True
    else:
        pc, z, has_pre = np.array([0.0, 1.0]), np.zeros((1, 1, 1, 1)), False
    return xpad, ci, di, dj, is_bias, z, c, pc, pool, Wsub, lin_li, inner, Ho, Wo, has_pre


def conv_chain_coefficients(loss: Restriction, rows, li: int, key: str, idx: tuple[int, ...]) -> np.ndarray:
    """The SSE's polynomial along one weight of a Conv2d that feeds [Poly] [AvgPool2d] Flatten Linear
    (its constant left 0: the caller puts the objective there)."""
    xpad, ci, di, dj, is_bias, z, c, pc, pool, Wsub, _, _, Ho, Wo, has_pre = _chain_arguments(loss, li, key, idx)
    (coeffs,) = conv_chain_coeffs(xpad, ci, di, dj, is_bias, z, c, pc, pool, Wsub, loss.residual, Ho, Wo, has_pre)
    return coeffs


def conv_chain_moved(loss: Restriction, rows, li: int, key: str, idx: tuple[int, ...], t: float, value: float) -> None:
    """That weight moved by ``t`` to ``value``: update the cached pre-activations, features and outputs."""
    xpad, ci, di, dj, is_bias, z, c, pc, pool, Wsub, lin_li, inner, Ho, Wo, has_pre = \
        _chain_arguments(loss, li, key, idx)
    conv_chain_update(xpad, ci, di, dj, is_bias, z, c, pc, pool, Wsub, loss.acts[lin_li], c * inner, loss.output,
                      float(t), Ho, Wo, has_pre)
    loss.model.layers[li].params[key][idx] = value
    loss.output_changed()
