"""The channel-block driver: sweeps of exact channel block steps for the coordinate solver.

:class:`ChannelDriver` runs the block steps of :class:`~symnet.solvers.channel_blocks.ChannelBlocks`
(:mod:`symnet.solvers.channel_blocks`: direction, exact line search, rescale, readout solve) for
:class:`~symnet.solvers.coordinate.CoordinateSolver`; ``blocks="auto"`` picks it for
``Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear`` networks (:func:`channel_driver`; options in
:data:`CHANNEL_OPTIONS`):

* **growing sample**: exact steps run on a prefix of a fixed random
  permutation of the training samples, starting at ``sample_start`` and
  multiplied by ``sample_growth`` when a sweep lowers the stage's objective
  by less than ``grow_tol`` (relative), after ``stage_sweeps`` sweeps, or
  once ``full_by`` of the time limit has passed (then straight to all
  samples). The objective of a stage is the SSE over its ``n`` samples plus
  ``ridge * n / N * ||theta||^2`` (the full objective's share); no step
  raises it. The last stage is the full training set.
* **ridge** (``ridge="auto"``): ``val_size`` random training samples are held
  out of every stage but the last. The first readout solve of each stage fits
  the readout for every weight of ``ridge_grid`` from the stage's Gram matrix
  (in the last stage: without the held-out samples' rows, which no step has
  seen yet) and keeps the one whose readout has the least squared error on the
  held-out samples (:func:`~symnet.core.linalg.score_ridges`). The ridge is
  fixed within a stage, so the objective changes only where the samples
  change; the choices are in :attr:`ChannelDriver.ridge_selection` and every
  record's ``ridge``. Without filter training (``layers`` without the conv:
  the random-filter floor) or with ``sample_start=None`` there is one stage,
  and the initial features choose.
* **records**: between channel steps, feature passes and row blocks of the
  readout's Gram matrix, an interim record (``partial=1``) whenever the next
  block of work would end more than :attr:`~symnet.solvers.base.Solver.record_every`
  seconds of training after the last record. The ``loss`` of a record is the
  FULL training objective at the ridge in use (evaluated by a forward pass
  when the stage holds fewer samples; the stage's own objective is
  ``stage_loss``); records carry ``samples``, ``ridge`` and ``cpu_time`` (CPU
  seconds of the process since the start, for shared machines).
* **certificates**: every line search is a ``line`` record (its polynomial,
  its direction, the rows of its stage), every rescale and readout solve a
  ``block`` record (:mod:`symnet.core.certificates`).
"""

from __future__ import annotations

import time

import numpy as np

from symnet.core.errors import SolverError
from symnet.core.linalg import PROVISIONAL_RIDGE, parse_ridge

from symnet.solvers.channel_blocks import ChannelBlocks, channel_chain
from symnet.solvers.options import Option

#: The options of channel blocks, part of :attr:`CoordinateSolver.OPTIONS <symnet.solvers.coordinate.CoordinateSolver>`.
#: The defaults are the best settings measured on full MNIST (README, "The coordinate solver on poly").
CHANNEL_OPTIONS = {
    "blocks": Option("auto", "choice", choices=("auto", "channel", "coordinate"),
                     help="channel: one block per conv channel (filter, the readout reading it, output bias); "
                          "coordinate: one weight at a time; auto: channel blocks for Conv2d -> Poly -> "
                          "[AvgPool2d] -> Flatten -> Linear networks (poly) when fused, else coordinates"),
    "ridge_grid": Option((0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0), "floats", low=0.0,
                         help="channel blocks with ridge=auto: the candidates the held-out samples choose from"),
    "val_size": Option(None, "int", low=1, none=True,
                       help="channel blocks with ridge=auto: held-out training samples (None: a tenth, at "
                            "most 5000)"),
    "sample_start": Option(4096, "int", low=1, none=True,
                           help="channel blocks: samples of the first stage (None: all from the start)"),
    "sample_growth": Option(2.0, "float", low=1.0, low_open=True,
                            help="channel blocks: factor by which the samples grow from stage to stage"),
    "grow_tol": Option(0.01, "float", low=0.0,
                       help="channel blocks: grow when a sweep lowers the stage objective by less than this "
                            "(relative)"),
    "stage_sweeps": Option(3, "int", low=1, help="channel blocks: most sweeps of a stage before it grows"),
    "full_by": Option(0.5, "float", low=0.0, high=1.0,
                      help="channel blocks: use every sample once this share of the time limit has passed"),
    "gradient": Option("all", "choice", choices=("all", "curvature"),
                       help="channel blocks: the filter's gradient from all current samples, or from the curvature "
                            "samples (one pass fewer; the line search stays exact over all current samples)"),
    "curvature_samples": Option(4096, "int", low=1, none=True,
                                help="channel blocks: samples of each Gauss-Newton matrix (None: all current "
                                     "samples; the gradient and the line search always use all)"),
}


class ChannelDriver:
    """Sweeps of channel blocks for :class:`~symnet.solvers.coordinate.CoordinateSolver` (see the module docstring).

    The solver hands over its hooks: :meth:`step`, :meth:`state`, :meth:`load_state`,
    :meth:`on_params_restored`.
    """

    def __init__(self, solver, model, data, rng) -> None:
        self.solver = solver
        opts = solver.opts_
        self.opts = opts
        conv, _, _, lin = channel_chain(model)
        wanted = opts["layers"]
        names = [layer.name for layer in model.layers]
        if wanted is not None:
            unknown = sorted(set(wanted) - set(names))
            if unknown:
                raise SolverError(f"layers {unknown} not in the model; it has {names}")
        self.train_conv = wanted is None or conv.name in wanted
        self.train_readout = wanted is None or lin.name in wanted
        self.model = model
        self.rng = rng
        self.X = data.x_train
        self.Y = solver.y_train
        N = len(data.x_train)
        self.N = N
        self.perm = rng.permutation(N).astype(np.int64)
        #: choose the ridge on held-out samples at the stages' first readout solves
        self.choosing = opts["ridge"] == "auto" and self.train_readout
        val = parse_ridge(opts["ridge"], val_size=opts["val_size"]).held_out_count(N)
        val = val if opts["val_size"] is None else min(val, N // 2)
        self.val = val if self.choosing else 0
        if self.choosing and self.val < 1:
            self.choosing = False
        self.ridge_selection: list[dict] = []
        solver.ridge_selection_ = self.ridge_selection  # as the exact direction solvers name their choice
        self.set_ridge(PROVISIONAL_RIDGE if opts["ridge"] == "auto" else float(opts["ridge"]))
        start = opts["sample_start"]
        n_train = N - self.val
        self.n = N if start is None or not self.train_conv or start >= n_train else int(start)
        self.stage_count = 0
        self.fresh_stage = True  # the stage's first readout solve is still to come
        self.mu = None
        self.cb: ChannelBlocks | None = None
        self.sweeps = 0
        self.counts: dict = {}
        # records carry the CPU seconds of training too (shared machines): the process's, within steps, without
        # the evaluation of interim records
        self.cpu_done = 0.0
        self.cpu_step0 = time.process_time()
        self.cpu_eval = 0.0
        self.last_emit = self.last_tick = time.perf_counter()
        self.block_s = 0.0  # seconds of the last block of work (a channel step, a feature pass ...)
        self.readout_s = 0.0  # seconds of the last readout solve

    # ------------------------------------------------------------------ hooks of the solver
    def state(self) -> dict:
        out = {"sweeps": self.sweeps, "ridge": self.ridge, "n": self.n, "perm": self.perm, "cpu": self.cpu_done,
               "stage_sweeps": self.stage_count, "choosing": int(self.choosing), "fresh_stage": int(self.fresh_stage)}
        if self.mu is not None:
            out["mu"] = self.mu
        return out

    def load_state(self, state: dict) -> None:
        self.sweeps = int(state.get("sweeps", 0))
        if "perm" not in state:
            return
        self.cpu_done = float(state.get("cpu", 0.0))
        self.choosing = bool(int(state["choosing"]))
        self.fresh_stage = bool(int(state["fresh_stage"]))
        self.set_ridge(float(state["ridge"]))
        self.n = int(state["n"])
        self.perm = np.asarray(state["perm"], dtype=np.int64)
        self.mu = np.asarray(state["mu"], dtype=np.float64) if "mu" in state else None
        self.stage_count = int(state["stage_sweeps"])
        self.cb = None

    def on_params_restored(self) -> None:
        self.cb = None  # rebuilt from the parameters at the next step

    def set_ridge(self, ridge: float) -> None:
        """The ridge of the objective being minimised (and of every record's loss)."""
        self.ridge = float(ridge)
        self.solver.ridge_ = self.ridge

    # ------------------------------------------------------------------ records
    def _progress(self, cb: ChannelBlocks) -> None:
        """Between blocks of work: an interim record when the next block would pass the record interval."""
        now = time.perf_counter()
        self.block_s = now - self.last_tick
        self.last_tick = now
        if now - self.last_emit + self.block_s >= self.solver.record_every:
            self.interim(cb)

    def info(self, cb: ChannelBlocks) -> dict:
        """A record's figures: the full objective when the stage holds every sample, else left to a forward pass."""
        out = {"samples": cb.n, "ridge": self.ridge, "cpu_time": self.cpu_done + self.step_cpu(),
               "loss": None, "train_scores": None}
        if cb.ready:
            out["stage_loss"] = cb.value / cb.n
            if cb.n == self.N and cb.ridge_full == self.ridge:
                scores = np.empty_like(cb.out)
                scores[cb.idx] = cb.out  # the samples' own order
                out.update(loss=cb.value / cb.n, train_scores=scores)
        return out

    def step_cpu(self) -> float:
        """CPU seconds of training in the current step so far."""
        return time.process_time() - self.cpu_step0 - self.cpu_eval

    def interim(self, cb: ChannelBlocks, **extra) -> None:
        counts = self.counts
        c0 = time.process_time()
        self.solver.record_interim(passes=counts.get("passes", 0.0), updates=counts.get("updates", 0),
                                   **{**self.info(cb), **extra})
        self.cpu_eval += time.process_time() - c0
        self.last_emit = self.last_tick = time.perf_counter()

    # ------------------------------------------------------------------ helpers
    def blocks(self) -> ChannelBlocks:
        """The blocks of the current stage (built at the current parameters when needed)."""
        if self.cb is None:
            self.cb = self.make_blocks(self.perm[:self.n])
            if self.mu is not None:
                self.cb.mu[:] = self.mu
        return self.cb

    def make_blocks(self, idx) -> ChannelBlocks:
        cb = ChannelBlocks(self.model, self.X, self.Y, self.ridge, idx=idx, progress=self._progress)
        cb.certificates = self.solver.certificates_
        return cb

    def past_deadline(self) -> bool:
        return self.solver.deadline.passed()

    def fits(self, seconds: float) -> bool:
        """Would a block of work of ``seconds`` end before the time limit (or within 5% of it after)?"""
        slack = 0.05 * (self.solver.time_limit_ or 0.0)
        return seconds <= self.solver.deadline.remaining() + slack  # always, without a limit (remaining: inf)

    def curvature_idx(self, cb: ChannelBlocks):
        m = self.opts["curvature_samples"]
        return None if m is None or m >= cb.n else np.sort(self.rng.choice(cb.n, m, replace=False))

    def held_out(self, cb: ChannelBlocks):
        """``(candidates, Hv, Yv, pos)`` for :meth:`ChannelBlocks.solve_readout`: the held-out samples."""
        candidates = tuple(sorted(self.opts["ridge_grid"]))
        n_train = self.N - self.val
        if cb.n > n_train:  # the last stage holds them at its end (the tail of the permutation)
            return candidates, None, None, np.arange(n_train, self.N)
        rows = self.perm[n_train:]
        Hv = np.empty((len(rows), cb.C * cb.F))
        for c in range(cb.C):
            Hv[:, c * cb.F:(c + 1) * cb.F] = cb.features(c, idx=rows)
        return candidates, Hv, self.Y[rows], None

    def solve_readout(self, cb: ChannelBlocks) -> float:
        """The readout solve; a stage's first one chooses the ridge on the held-out samples (until the last stage)."""
        choose = self.held_out(cb) if self.fresh_stage and self.choosing else None
        t0 = time.perf_counter()
        decrease = cb.solve_readout(choose=choose)
        self.readout_s = time.perf_counter() - t0
        self.counts["passes"] = self.counts.get("passes", 0.0) + cb.n / self.N
        if choose is not None:
            self.set_ridge(cb.ridge_full)
            self.ridge_selection.append({"samples": cb.n, "validation_samples": self.val, **cb.ridge_scores,
                                         "chosen": self.ridge})
            self.counts["ridge_chosen"] = self.ridge
            if cb.n == self.N:
                self.choosing = False  # the held-out samples are trained on from now on
        self.fresh_stage = False
        return decrease

    # ------------------------------------------------------------------ a sweep
    def sweep(self, cb: ChannelBlocks) -> None:
        """Every channel block once (exact steps), then the exact readout solve (and the extrapolation)."""
        counts = self.counts
        opts = self.opts
        order = np.arange(cb.C) if opts["order"] == "cyclic" else self.rng.permutation(cb.C)
        extrapolate = opts["extrapolate"] is True
        if extrapolate:
            start = (cb.W.copy(), cb.conv.params["bias"].copy() if cb.has_cbias else np.zeros(cb.C), cb.V.copy(),
                     cb.obias().copy())
        size = cb.K + int(cb.has_cbias) + cb.O * cb.F + (cb.O if cb.has_obias else 0)
        for c in order:
            if self.past_deadline() or not self.fits(self.block_s):
                counts["cut"] = 1  # the time limit ends the sweep here, its closing solves too
                return
            r = cb.channel_step(int(c), self.curvature_idx(cb), rescale=opts["rescale"], gradient=opts["gradient"])
            counts["updates"] = counts.get("updates", 0) + size
            counts["accepted"] = counts.get("accepted", 0) + int(r["t"] != 0.0)
            counts["passes"] = counts.get("passes", 0.0) + 2.0 * cb.n / self.N
            self._progress(cb)
        if opts["linear_block"] and not self.past_deadline() and self.fits(self.readout_s):
            counts["block_decrease"] = counts.get("block_decrease", 0.0) + self.solve_readout(cb)
        elif opts["linear_block"]:
            counts["cut"] = 1
        if extrapolate and not self.past_deadline():
            bias = cb.conv.params["bias"] if cb.has_cbias else np.zeros(cb.C)
            t, _, _ = cb.line_all(cb.W - start[0], bias - start[1], cb.V - start[2], cb.obias() - start[3])
            counts["extrapolation"] = t
            counts["passes"] = counts.get("passes", 0.0) + 2.0 * cb.n / self.N

    # ------------------------------------------------------------------ stages
    def next_stage(self, cb: ChannelBlocks, before: float) -> int | None:
        """The sample count of the next stage, or None to stay: when the sweep's decrease stalls, the stage has
        had ``stage_sweeps`` sweeps, or ``full_by`` of the time limit has passed (then every sample)."""
        if cb.n >= self.N:
            return None
        opts = self.opts
        rel = (before - cb.value) / max(before, 1e-300)
        late = False
        solver = self.solver
        if solver.time_limit_ is not None:
            used = solver.time_limit_ - solver.deadline.remaining()
            late = used >= opts["full_by"] * solver.time_limit_
        if not (late or rel < opts["grow_tol"] or self.stage_count >= opts["stage_sweeps"]):
            return None
        n_train = self.N - self.val
        n = self.N if late else min(n_train, int(round(cb.n * opts["sample_growth"])))
        if n_train - n < 0.25 * n:
            n = self.N  # no stage for a sliver of samples: the last stage has every sample, held-out ones too
        return n

    def step(self) -> dict:
        """One sweep; a stage's first readout solve comes first (and chooses the ridge, when asked to)."""
        self.counts = counts = {"updates": 0, "passes": 0.0, "accepted": 0}
        self.last_emit = self.last_tick = time.perf_counter()
        self.cpu_step0, self.cpu_eval = time.process_time(), 0.0
        cb = self.blocks()
        if self.fresh_stage and self.train_readout:
            counts["block_decrease"] = self.solve_readout(cb)
        before = cb.value
        n_before = cb.n
        if self.train_conv:
            self.sweep(cb)
            self.stage_count += 1
        elif self.train_readout and "block_decrease" not in counts:
            counts["block_decrease"] = self.solve_readout(cb)
        if cb.value > before * (1 + 1e-12) + 1e-12:
            raise RuntimeError(f"internal error: sweep raised the objective from {before} to {cb.value}")
        self.sweeps += 1
        counts["stage_decrease"] = (before - cb.value) / max(before, 1e-300)
        n = self.next_stage(cb, before) if not self.past_deadline() else None
        if n is not None:
            cb.grow(self.perm[:n])
            self.n = n
            self.stage_count = 0
            self.fresh_stage = True
            if not self.train_conv or not self.past_deadline():
                self.solve_readout(cb)  # the new stage's readout (the records' objective is the new stage's)
            counts["grown_from"] = n_before
        self.mu = cb.mu.copy()
        out = {**counts, **self.info(cb)}
        self.cpu_done += self.step_cpu()
        return out


def channel_driver(solver, model, data, rng) -> ChannelDriver | None:
    """The channel-block driver of a coordinate solver whose options and model call for one, else None.

    ``blocks="auto"`` picks channel blocks for :func:`channel_chain` networks when ``fused`` is on;
    ``"channel"`` insists (an error for other networks); ``"coordinate"`` never.

    Example:
        >>> from symnet import solvers
        >>> from symnet.core import datasets
        >>> from symnet.core.model import presets as models
        >>> data = datasets.xor(8)
        >>> s = solvers.get("coordinate")()
        >>> s.opts_ = s.check_options()
        >>> channel_driver(s, models.mlp(2, 2, 2), data, None) is None
        True
    """
    blocks = solver.opts_["blocks"]
    chain = channel_chain(model)
    if blocks == "channel" and chain is None:
        raise SolverError("blocks='channel' needs Conv2d -> Poly -> [AvgPool2d] -> Flatten -> Linear (the poly "
                          "preset); use blocks='coordinate' for this network")
    if chain is None or blocks == "coordinate" or (blocks == "auto" and not solver.opts_["fused"]):
        return None
    if getattr(solver, "client_", None) is not None:
        # the channel caches live in this process; on a cluster, the per-coordinate sweep is what shards
        if blocks == "channel":
            raise SolverError("blocks='channel' runs in one process; drop the Dask cluster (--workers/--scheduler), "
                              "or use blocks='coordinate', whose sweeps run on the shards")
        solver.notify("channel blocks run in one process, so on the Dask cluster the sweep is per coordinate "
                       "(blocks='coordinate'), whose caches live on the shards")
        return None
    solver.require_exact_network(model, data)
    # numba-parallel kernels between small GEMMs: BLAS on one thread (1.4x fewer CPU seconds per channel step
    # on 2 shared cores); the Gram matrices of the readout still use every core (core.linalg.gram)
    solver.blas_threads = 1
    return ChannelDriver(solver, model, data, rng)
