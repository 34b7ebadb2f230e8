"""The polynomial-regression solver: options, setup, the choice of method and ridge, steps and checkpoints.

The methods are in :mod:`~symnet.solvers.polyreg.explicit` (Gram + Cholesky),
:mod:`~symnet.solvers.polyreg.cg` with :mod:`~symnet.solvers.polyreg.matfree`
(matrix-free CG) and :mod:`~symnet.solvers.polyreg.bagging`; see
:mod:`symnet.solvers.polyreg`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba as nb
import numpy as np

from symnet.core.errors import SolverError
from symnet.core.kernels import monomials as MK
from symnet.core.linalg import Ridge, parse_ridge, resolve_ridge
from symnet.core.model.polyreg import PolyRegModel
from symnet.core.objective import accuracy, sse
from symnet.solvers.base import Solver
from symnet.solvers.options import Option
from symnet.solvers.polyreg import matfree as MF
from symnet.solvers.polyreg.bagging import BaggingMethod
from symnet.solvers.polyreg.cg import CGMethod
from symnet.solvers.polyreg.explicit import MAX_EXACT_FEATURES, ExactMethod, exact_form


PROBE_SAMPLES = 5000
#: Steps of method="cg": prepare (right-hand sides, preconditioner), choose the ridge, refit.
CG_STEPS = 3

# --------------------------------------------------------------------------- solver
class PolyRegSolver(ExactMethod, CGMethod, BaggingMethod, Solver):
    """Closed-form ridge regression over windowed monomials (see the module docstring).

    Options:
        degree (2), window (3): the features (ignored when ``fit`` gets a
            :class:`PolyRegModel`, whose own degree and window are used).
        method ("auto"): ``"exact"`` (Gram + Cholesky), ``"cg"`` (matrix-free
            preconditioned conjugate gradients, :mod:`symnet.solvers.polyreg.matfree`),
            ``"bagging"``, or ``"auto"``: exact when its Gram and Cholesky fit in
            ``memory_gb``, else cg; the choice and both memory estimates are
            announced before the fit (one notice, ``symnet: note:`` on the
            command line).
        cg_tol (1e-5): cg: stop the final solve when every class's relative
            residual ``||X^T Y - (G + lam I) W|| / ||X^T Y||`` is at most this.
        cg_search_tol (1e-3): cg: the same for the solves that choose the ridge
            (the validation error needs far less accuracy than the model: on
            MNIST at degree 3, 1e-3 chose the same ridge as 1e-4, with the same
            test accuracy, in 84 search iterations instead of 172).
        cg_iters (400): cg: at most this many iterations (data passes) per solve.
        precond ("subsample"): cg: "subsample" (Gram of ``precond_samples``
            random samples plus the exact diagonal, through Woodbury),
            "jacobi" or "none".
        precond_samples (4000): cg: samples of the subsample preconditioner
            (iterations fall as 1/m; memory ``m x p_used`` float64).
        memory_gb (8.0): memory the fit may use: ``auto`` picks exact when its
            Gram (or dual kernel) fits, and cg keeps its walks when they fit too.
        cg_lists (None): cg: keep each block of samples' walk of the monomial
            tree (which monomials are non-zero, their float32 values: about 5
            bytes per non-zero feature of each sample, 2.4 GB on MNIST at degree
            3) so that every CG pass reads them instead of walking the tree
            again (products 1.5x, CG iterations 1.2x faster on MNIST); the final
            solve is confirmed on walked float64 products. Tolerances below 1e-6
            keep float64 values (9 bytes). None: keep them when cg's memory
            estimate with them fits ``memory_gb``.
        ridge (None): the penalty ``lam`` of ``SSE + lam ||W||^2``; ``None`` (or ``"auto"``)
            chooses it from ``ridge_grid`` on a validation split.
        ridge_grid: candidate penalties when ``ridge`` is None (default: the
            decades from 0.1 to 1000; on MNIST the best lies near 30).
        ridge_search ("walk"): exact (cg scores every candidate by projection,
            :meth:`symnet.solvers.polyreg.cg.CGFit.choose_ridge`): "grid" solves for every grid value;
            "walk" starts in the middle of the grid and walks towards the
            better neighbour while the validation score improves (3 to 4
            solves on MNIST instead of 5), assuming a single optimum.
        refine_ridge (True): exact: after the grid, also try the geometric
            midpoints between the best value and its two neighbours (two more
            solves); bagging: add every midpoint of the grid to the candidates.
        select_by ("mse"): choose the ridge by validation squared error
            ("mse") or validation accuracy ("accuracy").
        val_size (None): samples held out to choose the ridge (the last ones
            of the training set); None means ``min(5000, N // 10)``.
        batches (60), batch_size (2000): bagging subsets.
        chunk_size (4096): samples per Gram chunk (bigger chunks run dsyrk
            faster and need ``chunk_size * p * 8`` bytes).
        gram_steps (4): exact method only: the Gram accumulation is split over
            this many steps (so the progress bar moves and a time limit is
            checked); the last of them also chooses the ridge and solves. A
            time limit that expires during accumulation triggers the solve at
            once, on the samples accumulated so far (``samples`` in the
            history); the solve itself is not interrupted.
        dense_columns (None): force the number of Gram columns handled by
            dsyrk (None: the cost model decides); for tests and profiling.
        seed (0): bagging subsets.

    Steps: exact: ``gram_steps`` steps, each accumulating a share of the
    chunks, the last one solving (the model is zero until then); a ``steps``
    budget below ``gram_steps`` puts the chunks into that many steps, so the
    model is always solved on every sample; cg: three steps (right-hand sides
    and preconditioner; the ridge search, which also runs the refit's CG in the
    same passes; the refit on all samples), fewer when the budget grants fewer
    (they are then done together); bagging: one subset per step. ``fit`` with
    neither ``steps`` nor a time limit runs exactly these.
    Resuming an exact fit re-accumulates the chunks of the finished steps
    (checkpoints hold no Gram). Bagging reports no loss of its own: the
    training loop scores the whole training set after each subset for it,
    which costs more wall time than the fit (not counted in ``time``).

    History extras: ``ridge_used``, ``val_acc`` and ``val_mse`` (ridge chosen),
    ``samples``, ``features``, ``features_used``, ``dense_columns``,
    ``gram_time``, ``solve_time``, ``peak_rss_mb``; cg: ``passes``,
    ``cg_path`` (each CG run's ridge, iterations and validation error, then each
    candidate's projected validation error), ``cg_iterations``,
    ``cg_residual``, ``cg_converged``, ``prepare_time``, ``precond_time``,
    ``search_time``, ``mem_exact_gb`` and ``mem_cg_gb``; bagging: ``batch_test_acc``
    (the subset's own model on the test set; the ``test_acc`` column is the
    averaged model's).
    """

    name: ClassVar[str] = "polyreg"
    #: ``fit`` trains a PolyRegModel of its own unless it is given one (see ``model_``).
    builds_model: ClassVar[bool] = True
    shardable: ClassVar[bool] = True
    OPTIONS: ClassVar[dict[str, Option]] = {
        "degree": Option(2, "int", low=1, help="highest monomial degree"),
        "window": Option(3, "window", none=True, help="window side, (height, width), or None (every product)"),
        "method": Option("auto", "choice", choices=("auto", "exact", "cg", "bagging"),
                         help="Gram + Cholesky, matrix-free CG, bagging, or auto (exact if its Gram fits memory_gb)"),
        "ridge": Option("auto", "float", low=0.0, none=True, auto=True,
                        help="the penalty; 'auto' (None, the older spelling, too): chosen on a validation split"),
        "ridge_grid": Option((0.1, 1.0, 10.0, 100.0, 1000.0), "floats", low=0.0,
                             help="candidate penalties when ridge is 'auto'"),
        "ridge_search": Option("walk", "choice", choices=("walk", "grid"),
                               help="exact: walk from the grid's middle, or solve for every value"),
        "refine_ridge": Option(True, "bool", help="also try the geometric midpoints next to the best value"),
        "select_by": Option("mse", "choice", choices=("mse", "accuracy"),
                            help="choose the ridge by validation squared error or accuracy"),
        "val_size": Option(None, "int", low=1, none=True,
                           help="samples held out to choose the ridge (None: min(5000, N // 10))"),
        "batches": Option(60, "int", low=1, help="bagging: subsets"),
        "batch_size": Option(2000, "int", low=1, help="bagging: samples per subset"),
        "chunk_size": Option(4096, "int", low=1, help="samples per Gram chunk"),
        "gram_steps": Option(4, "int", low=1, help="exact: steps the Gram accumulation is split over"),
        "dense_columns": Option(None, "int", low=0, none=True,
                                help="force the number of Gram columns handled by dsyrk (None: cost model)"),
        "seed": Option(0, "int", low=0, help="seed of the bagging subsets and of the cg preconditioner's subsample"),
        # matrix-free solves (symnet/solvers/polyreg/matfree.py)
        "cg_tol": Option(1e-5, "float", low=0.0, low_open=True,
                         help="cg: relative residual of the final solve"),
        "cg_search_tol": Option(1e-3, "float", low=0.0, low_open=True,
                                help="cg: relative residual of the solves that choose the ridge"),
        "cg_iters": Option(400, "int", low=1, help="cg: iterations (data passes) per solve at most"),
        "precond": Option("subsample", "choice", choices=MF.PRECONDITIONERS, help="cg: preconditioner"),
        "precond_samples": Option(4000, "int", low=1, help="cg: samples of the subsample preconditioner"),
        "memory_gb": Option(8.0, "float", low=0.0, low_open=True,
                            help="memory the fit may use: auto picks exact if it fits, cg keeps its walks if they fit"),
        "cg_lists": Option(None, "bool", none=True,
                           help="cg: keep the tree walks in memory (float32, 5 bytes per non-zero feature and sample) "
                                "so passes read them (None: if they fit memory_gb)"),
    }
    #: ``fit`` with no budget runs to its end by itself (the command line sets no default time limit).
    ends_by_itself: ClassVar[bool] = True

    @property
    def step_unit(self) -> str:  # type: ignore[override]
        return "batch" if self.options.get("method", self.defaults["method"]) == "bagging" else "step"

    @property
    def default_steps(self) -> int:
        method = self.options.get("method", self.defaults["method"])
        if method == "bagging":
            return int(self.options.get("batches", self.defaults["batches"]))
        gram_steps = int(self.options.get("gram_steps", self.defaults["gram_steps"]))
        # auto: the larger, so that either method finishes (cg stops by itself after its steps)
        return CG_STEPS if method == "cg" else max(gram_steps, CG_STEPS) if method == "auto" else gram_steps

    @property
    def _ridge_auto(self) -> bool:
        """Is the ridge chosen on the validation split? (``ridge`` None or "auto", as
        :func:`~symnet.core.linalg.parse_ridge` reads it)"""
        return parse_ridge(self.opts_["ridge"]).auto

    # ------------------------------------------------------------ setup
    def _setup(self, model, data, rng: np.random.Generator) -> None:
        o = self.opts_
        self._grid = np.unique(np.asarray(o["ridge_grid"]))
        if isinstance(model, PolyRegModel):
            for key in ("degree", "window"):
                if key in self.options and self.options[key] != getattr(model, key):
                    raise SolverError(f"option {key}={self.options[key]!r} contradicts the model's "
                                      f"{key}={getattr(model, key)!r}; drop the option or build the model with it")
            if model.input_shape != tuple(data.input_shape) or model.num_outputs != data.num_classes:
                raise SolverError(f"the model is built for inputs {model.input_shape} and {model.num_outputs} "
                                  f"classes but the data has {tuple(data.input_shape)} and {data.num_classes}; "
                                  "build the model from this dataset")
        else:
            model = PolyRegModel(data.input_shape, data.num_classes, o["degree"], o["window"])
        self.model_ = model
        self._rng = rng
        width = int(np.prod(data.input_shape))
        self._X2 = data.x_train.reshape(len(data.x_train), width)
        self._X2_test = data.x_test.reshape(len(data.x_test), width)
        n = len(self._X2)
        p = model.num_features
        self._choose_method()
        if o["method"] == "exact" and self._form == "primal" and p > MAX_EXACT_FEATURES:
            raise SolverError(f"{p:,} features are too many for method='exact' (its Gram needs "
                              f"{3 * p * p * 8 / 2**30:.0f} GB); use method='cg' (or 'auto'), 'bagging', or a smaller degree/window")
        if self._ridge_auto:
            n_val = Ridge(val_size=o["val_size"]).held_out_count(n)  # the last n_val samples
            if n_val < 1 or n_val >= n:
                raise SolverError(f"cannot hold out {n_val} of {n} training samples to choose the ridge; "
                                  "pass ridge=<value> or a val_size between 1 and N-1")
        else:
            n_val = 0
        self._n_val = n_val
        self.ridge_ = parse_ridge(o["ridge"]).value
        self._solved = False
        self._shards_ = None
        self._queue: list = []
        if self.client_ is not None and o["method"] == "exact" and self._form == "primal":
            # the rows in shards on the workers, cut where the Gram chunks start (each chunk on one worker)
            self._shards_ = self._samples(model, self._X2, self.y_train,
                                          boundaries=[s for s, _, _ in self._chunk_bounds()])
        elif self.client_ is not None and o["method"] != "bagging":
            what = "the dual form (an n x n kernel)" if o["method"] == "exact" else "method cg"
            self.notify(f"{what} runs in this process: the Dask cluster takes the exact method's primal Gram "
                        "accumulation and bagging's subsets")
        if o["method"] == "exact":
            self._planned = False
            self._groups = self._groups_done = 0
            self._reserve = 0.0  # seconds kept back from a time limit for the Cholesky solves still to come
        elif o["method"] == "cg":
            self._cg = None
            self._cg_stage = 0
            self._cg_W = None
            self._cg_best = math.nan
            self._cg_reported = 0.0
            self._loss = math.nan
            # the stages (prepare, search, refit; no search with a given ridge) go into the steps granted
            stages = ["prepare", "search", "refit"] if self._ridge_auto else ["prepare", "refit"]
            steps = min(len(stages), int(self.steps_budget_)) if self.steps_budget_ else len(stages)
            self._cg_groups = [stages[i * len(stages) // steps:(i + 1) * len(stages) // steps] for i in range(steps)]
            self._cg_groups_done = 0
            self._cg_stages_done = 0
        else:
            self._batches_done = 0
            self._bag_sums = self._bag_val = self._val_features = self._test_t = None
            self._pool = np.arange(n - n_val)
            if o["batch_size"] > len(self._pool):
                raise SolverError(f"batch_size {o['batch_size']} exceeds the {len(self._pool)} training samples "
                                  "available for bagging; lower batch_size")

    def _out_of_time(self, reserve: float = 0.0) -> bool:
        """Is the deadline (less ``reserve`` seconds) past?"""
        return self.deadline.passed(reserve)

    def _select_ridge(self, fit, score, reserve: float = 0.0) -> tuple[float, dict, np.ndarray]:
        """Fit ``fit(lam)`` for the grid's values and keep the best on the validation split.

        ``score(coefficients)`` gives the validation scores of a fit. The search (``ridge_search``,
        ``refine_ridge``) and the rule for "best" (``select_by``) are
        :func:`~symnet.core.linalg.resolve_ridge`'s; a candidate is not started (after the first) once
        the deadline less ``reserve`` seconds is past. Returns the value, the validation figures
        (``val_acc``, ``val_mse``) and the fitted coefficients.
        """
        o = self.opts_
        n = len(self._X2)
        yv = self.data_.y_train[n - self._n_val:]
        Yv = self.y_train[n - self._n_val:]
        fits: dict[float, tuple] = {}

        def scorer(lams):
            out = []
            for lam in lams:
                W = fit(lam)
                sv = score(W)
                acc, mse = accuracy(sv, yv), sse(sv, Yv) / len(yv)
                fits[lam] = ({"val_acc": acc, "val_mse": mse}, W)
                out.append((mse, 1.0 - acc))
            return out

        policy = Ridge(candidates=tuple(float(v) for v in self._grid), by=o["select_by"])
        ridge, report = resolve_ridge(policy, scorer, search=o["ridge_search"], refine=o["refine_ridge"],
                                      stop=lambda: self._out_of_time(reserve))
        if report.get("cut"):
            self.notify(f"the time limit ended the search for the ridge after {len(report['ridges'])} value(s); "
                        f"using the best of them, {ridge:g}")
        figures, W = fits[ridge]
        return ridge, figures, W

    # ------------------------------------------------------------ choice of method
    def _choose_method(self) -> None:
        """Resolve method="auto" (exact if its Gram fits ``memory_gb``, else cg) and announce the choice;
        choose the exact method's form (dual when there are fewer samples than features in use)."""
        o = self.opts_
        model = self.model_
        n, p = len(self._X2), model.num_features
        self._form = "primal"
        self._keep_walks = False
        if o["method"] == "bagging" or (o["method"] == "exact" and n >= p):
            return
        probe = min(n, PROBE_SAMPLES)
        rows = np.ascontiguousarray(self._X2[:probe], dtype=np.float64)
        counts = MK.tree_nonzero_counts(rows, *model.tree, p, 1)[1]
        used = int(np.count_nonzero(counts))
        self._form = exact_form(n, used)
        n_val = 1 if self._ridge_auto else 0
        exact_gb = MF.exact_memory_bytes(used, n_val, n) / 2**30
        if o["method"] == "exact":
            return
        self._walks_dtype = MF.list_dtype(min(float(o["cg_tol"]), float(o["cg_search_tol"])))
        lists = MF.lists_memory_bytes(float(np.sum(counts)) * n / probe, self._walks_dtype)
        args = (p, used, n, self._X2.shape[1], model.num_outputs, o["precond"], min(int(o["precond_samples"]), n),
                self._ridge_auto, nb.get_num_threads())
        cg_gb = MF.cg_memory_bytes(*args) / 2**30
        with_lists_gb = MF.cg_memory_bytes(*args, lists=lists) / 2**30
        self._keep_walks = bool(o["cg_lists"]) if o["cg_lists"] is not None else with_lists_gb <= float(o["memory_gb"])
        if self._keep_walks:
            cg_gb = with_lists_gb
        self._plan_figures = {"mem_exact_gb": exact_gb, "mem_cg_gb": cg_gb}
        if o["method"] == "auto":
            fits = exact_gb <= float(o["memory_gb"]) and (self._form == "dual" or p <= MAX_EXACT_FEATURES)
            o["method"] = "exact" if fits else "cg"
            form = f" (dual form: {n:,} x {n:,} kernel)" if self._form == "dual" else ""
            self.notify(f"method {o['method']}{form if fits else ''} (auto, budget {float(o['memory_gb']):g} "
                        f"GB): {p:,} features, ~{used:,} non-zero in {probe:,} samples; estimated memory: exact "
                        f"{exact_gb:.2f} GB{' (dual)' if form else ''}, cg {cg_gb:.2f} GB"
                        f"{' (walks kept)' if self._keep_walks else ''}")

    # ------------------------------------------------------------ hooks
    def _step(self) -> dict:
        if self.opts_["method"] == "bagging":
            return self._step_bagging()
        if self.opts_["method"] == "cg":
            return self._step_cg()
        return self._step_exact()

    def _may_stop(self) -> bool:
        """Past the time limit, a fit that has started takes one more step: it solves with what it has."""
        return self.opts_["method"] == "bagging" or self._solved or self.history_.final["step"] == 0

    def _on_loop_end(self, stopped_by: str | None) -> None:
        """A fit that ends before its solve leaves a zero model: never silently."""
        if self.opts_["method"] == "bagging" or self._solved or stopped_by == "time":
            return  # past the limit an unsolved fit takes one more step (_may_stop): unless none ran, which
            # the training loop itself reports ("the time limit was spent before the first step")
        if stopped_by == "steps":
            why = f"the step budget ({self.steps_budget_}) ended the fit before its solve"
        else:
            why = "the fit was stopped before its solve"
        self.notify(f"{why}: the model is unsolved (all coefficients zero); allow more time or steps")

    def _state(self) -> dict[str, Any]:
        if self.opts_["method"] == "cg":
            return {"solved": int(self._solved), "ridge_used": np.nan if self.ridge_ is None else self.ridge_,
                    "loss": self._loss, "cg_groups_done": self._cg_groups_done,
                    "cg_stages_done": self._cg_stages_done, "cg_stage": self._cg_stage, "cg_best": self._cg_best}
        if self.opts_["method"] == "bagging":
            state = {"batches_done": self._batches_done,
                     "ridge_used": np.nan if self.ridge_ is None else self.ridge_}
            if self._bag_sums is not None:
                state.update(bag_sums=self._bag_sums, bag_val=self._bag_val)
            return state
        return {"groups_done": self._groups_done, "groups": self._groups, "solved": int(self._solved),
                "ridge_used": np.nan if self.ridge_ is None else self.ridge_,
                "loss": getattr(self, "_loss", np.nan)}

    def _load_state(self, state: dict[str, Any]) -> None:
        ridge = float(state.get("ridge_used", np.nan))
        self.ridge_ = None if math.isnan(ridge) else ridge
        if self.opts_["method"] == "cg":
            # Checkpoints hold the stage and the chosen ridge, not the vectors: an unfinished fit
            # prepares again (one pass and the preconditioner) and goes on from its stage; a search
            # already done is not repeated (the refit then starts from zero).
            self._solved = bool(int(state.get("solved", 0)))
            self._loss = float(state.get("loss", np.nan))
            self._cg_stage = int(state.get("cg_stage", 0))
            self._cg_best = float(state.get("cg_best", np.nan))
            if not self._solved and self._ridge_auto:
                self.ridge_ = None
            # the stages left all go into the next step (the budget of the first session is not known)
            done = int(state.get("cg_groups_done", 0))
            stages = ["prepare", "search", "refit"] if self._ridge_auto else ["prepare", "refit"]
            self._cg_stages_done = int(state.get("cg_stages_done", 0))
            self._cg_groups = [[] for _ in range(done)] + [stages[self._cg_stages_done:]]
            self._cg_groups_done = done
            if not self._solved and self._cg_stages_done:
                self._cg_prepare()
            return
        if self.opts_["method"] == "bagging":
            self._batches_done = int(state["batches_done"])
            if "bag_sums" in state:
                self._bag_sums = np.array(state["bag_sums"], dtype=np.float64)
                self._bag_val = np.array(state["bag_val"], dtype=np.float64)
            return
        self._solved = bool(int(state.get("solved", 0)))
        self._loss = float(state.get("loss", np.nan))
        done = int(state.get("groups_done", 0))
        self._groups = int(state.get("groups", 0))
        if not self._solved and self._form == "primal":
            self._plan_exact()
            for group in self._chunk_groups[:done]:
                self._accumulate(group)
            self._samples_reported = self._samples_seen()
        self._groups_done = done
