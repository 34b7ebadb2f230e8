"""The matrix-free method of polynomial regression (``method="cg"``): the fit's stages.

:class:`CGFit` holds one fit (right-hand sides, preconditioner, the ridge
path on the validation split, the refit); :class:`CGMethod` is the part of
:class:`~symnet.solvers.polyreg.PolyRegSolver` that puts its stages into
steps. The operator, preconditioners and solves are in
:mod:`symnet.solvers.polyreg.matfree`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from symnet.core.errors import SolverError
from symnet.core.linalg import best_candidate, conjugate_gradient
from symnet.core.objective import sse, value
from symnet.core.runtime import peak_rss_mb
from symnet.solvers.polyreg.matfree import (LIST_DTYPE, PRECONDITIONERS, CGResult, IdentityPreconditioner,
                                            JacobiPreconditioner, KrylovBasis, Operator, SubsamplePreconditioner,
                                            cg_solve)


# --------------------------------------------------------------------------- the fit
class CGFit:
    """The state of one ``method="cg"`` fit: right-hand sides, preconditioner, search and refit.

    Args:
        op: the :class:`Operator` over all training samples (training split first,
            validation split last).
        Y: one-hot targets (N, k).
        n_val: samples at the end held out to choose the ridge (0: none).
        precond: one of :data:`PRECONDITIONERS`.
        precond_samples: ``m`` of the subsample preconditioner.
        rng: draws the subsample.

    Example:
        >>> from symnet.core.model.polyreg import monomial_table, features
        >>> t = monomial_table((1, 4, 4), 2, 2); rng = np.random.default_rng(0); X = rng.random((200, 16))
        >>> Y = np.eye(2)[(X[:, 5] > 0.5).astype(int)]
        >>> fit = CGFit(Operator(X, t), Y, n_val=50, precond="subsample", precond_samples=40, rng=rng)
        >>> fit.prepare(); lam, figures, W0 = fit.choose_ridge([0.1, 1.0, 10.0], 1.0, tol=1e-9)
        >>> W, res = fit.solve_all(lam * 200 / 150, W0, tol=1e-9)
        >>> F = features(X, t); ref = np.linalg.solve(F.T @ F + lam * 200 / 150 * np.eye(len(t)), F.T @ Y)
        >>> bool(np.allclose(W, ref)), bool(np.allclose(res.XW, F @ ref))
        (True, True)
    """

    def __init__(self, op: Operator, Y: np.ndarray, n_val: int, precond: str = "subsample",
                 precond_samples: int = 4000, rng: np.random.Generator | None = None,
                 keep_walks: bool = False, walks_dtype=LIST_DTYPE) -> None:
        if precond not in PRECONDITIONERS:
            raise SolverError(f"precond must be one of {', '.join(PRECONDITIONERS)}, got {precond!r}")
        self.op = op
        self.Y = np.asarray(Y, dtype=np.float64)
        self.n_val = int(n_val)
        self.n_train = op.n - self.n_val
        self.precond_name = precond
        self.m = int(min(precond_samples, self.n_train))
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.iterations: dict[float, int] = {}
        self.val_mse: dict[float, float] = {}
        self.projected: dict[float, float] = {}
        self.basis_bytes = 0
        self.prepare_time = 0.0
        self.precond_time = 0.0
        self.refit_basis: KrylovBasis | None = None
        self.keep = bool(keep_walks)
        self.walks_dtype = walks_dtype
        self.lists_time = 0.0

    def prepare(self) -> None:
        """One pass for ``X^T Y`` and ``diag(X^T X)`` of each split; the subsample's features."""
        t0 = time.perf_counter()
        nt, n = self.n_train, self.op.n
        self.B_train, self.diag_train, counts = self.op.rhs(self.Y[:nt], 0, nt)
        if self.n_val:
            B_val, diag_val, counts_val = self.op.rhs(self.Y[nt:], nt, n)
            self.B_all, self.diag_all = self.B_train + B_val, self.diag_train + diag_val
            counts = counts + counts_val
        else:
            self.B_all, self.diag_all = self.B_train, self.diag_train
        self.features_used = int(np.count_nonzero(counts))
        self.precond = self._build_precond(self.diag_train, nt)
        if self.keep:
            t1 = time.perf_counter()
            self.op.keep_walks([(0, nt), (nt, n)] if self.n_val else [(0, n)], self.walks_dtype)
            self.lists_time = time.perf_counter() - t1
        self.prepare_time = time.perf_counter() - t0

    def _build_precond(self, diag: np.ndarray, n_fit: int):
        t0 = time.perf_counter()
        if self.precond_name == "subsample":
            rows = np.sort(self.rng.choice(self.n_train, size=self.m, replace=False))
            pre = SubsamplePreconditioner(self.op.subsample_features(rows), n_fit / self.m, diag)
        elif self.precond_name == "jacobi":
            pre = JacobiPreconditioner(diag)
        else:
            pre = IdentityPreconditioner()
        self.precond_time += time.perf_counter() - t0
        return pre

    def _precond_for(self, ridge: float):
        t0 = time.perf_counter()
        self.precond.set_ridge(ridge)
        self.precond_time += time.perf_counter() - t0
        return self.precond

    def _joint_run(self, ridge: float, basis: KrylovBasis, refit: KrylovBasis | None, *, tol: float,
                   max_iter: int, deadline: float | None, W0: np.ndarray | None = None,
                   W0_all: np.ndarray | None = None) -> CGResult:
        """CG on the training split at ``ridge`` (scored on the validation split) and, in the same
        passes, on all samples at ``ridge * N / N_train`` (the refit); their directions go to
        ``basis`` and ``refit``. Convergence is judged on the training split's columns."""
        nt, n, k = self.n_train, self.op.n, self.Y.shape[1]
        ridge_all = ridge * n / nt
        both = refit is not None
        pre = self._precond_for(ridge)  # also serves the refit's columns: G_all ~ (N / N_train) G_train

        def apply(P):
            XtP, GtP = self.op.normal(P, 0, nt)
            if both:
                XvP, GvP = self.op.normal(P, nt, n)
                GP_all = GtP[:, k:] + GvP[:, k:]
                refit.add(P[:, k:], GP_all, None)
                Q = np.concatenate([GtP[:, :k] + ridge * P[:, :k], GP_all + ridge_all * P[:, k:]], axis=1)
            else:
                XvP = self.op.matvec(P, nt, n) if self.n_val else np.zeros((0, P.shape[1]))
                Q = GtP + ridge * P
            basis.add(P[:, :k], GtP[:, :k], XvP[:, :k] if self.n_val else None)
            return Q, (XvP,)

        B = np.concatenate([self.B_train, self.B_all], axis=1) if both else self.B_train
        start = None
        if W0 is not None:
            W0 = np.concatenate([W0, W0_all], axis=1) if both else W0
        watch = np.arange(B.shape[1]) < k
        W, res = conjugate_gradient(apply, B, precond=pre, tol=tol, max_iter=max_iter, x0=W0, start=start,
                                    watch=watch, deadline=deadline, scores=True)
        self.iterations[ridge] = self.iterations.get(ridge, 0) + res.iterations
        if self.n_val and res.scores:
            sv = res.scores[0][:, :k]
            self.val_mse[ridge] = float(np.sum((sv - self.Y[nt:]) ** 2)) / self.n_val
        return res

    def choose_ridge(self, candidates, start: float, select_by: str = "mse", *, tol: float = 1e-4,
                     max_iter: int = 500, deadline: float | None = None, max_solves: int = 4,
                     refit: bool = True, verify: float = 0.05):
        """Choose the ridge on the validation split by a short ridge path, preparing the refit on the way.

        CG runs on the training split at ``start``; every candidate is then
        solved by projection onto the directions explored (:class:`KrylovBasis`)
        and scored on the validation split. Projections are approximate away
        from the ridges CG ran at, so CG runs again (warm-started from the
        projection, its directions added, the candidates re-scored) at the best
        candidate while it has not been solved, and at an unsolved neighbour of
        the best (in the sorted candidates) whose projected validation error is
        within ``verify`` (relative) of the best's, lowest first, at most
        ``max_solves`` runs in all. With ``refit``, a second CG on all samples (at each ridge scaled
        by ``N / N_train``) shares every pass and keeps its directions too: the
        refit then starts from their projection at the chosen ridge, close to
        its solution, instead of from the training split's.

        Returns ``(ridge, {"val_acc", "val_mse"}, W)`` with ``W`` the start of the
        refit (all samples, ridge scaled) or, without ``refit``, the projected
        training-split solution.
        """
        cands = sorted(float(v) for v in candidates)
        nt, n = self.n_train, self.op.n
        yv = np.argmax(self.Y[nt:], axis=1)
        Yv = self.Y[nt:]
        basis = KrylovBasis()
        self.refit_basis = KrylovBasis() if refit and self.n_val else None
        lam, W0, W0_all = float(start), None, None
        solved: list[float] = []
        while True:
            self._joint_run(lam, basis, self.refit_basis, tol=tol, max_iter=max_iter, deadline=deadline, W0=W0,
                            W0_all=W0_all)
            solved.append(lam)
            _, svs = basis.solve(self.B_train, cands, want_weights=False)
            keys = []
            for c, sv in zip(cands, svs):
                acc = float(np.mean(np.argmax(sv, axis=1) == yv))
                mse = float(np.sum((sv - Yv) ** 2)) / max(self.n_val, 1)
                self.projected[c] = mse
                keys.append((None, acc, mse))
            i = best_candidate(cands, [key[2] for key in keys], [1.0 - key[1] for key in keys], select_by)
            best = cands[i]
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(cands)
                    and keys[j][2] <= keys[i][2] * (1.0 + verify)]
            pending = [cands[j] for j in [i] + sorted(near, key=lambda j: keys[j][2]) if cands[j] not in solved]
            if not pending or len(solved) >= max_solves or out_of_time:
                break
            lam = pending[0]
            W0 = basis.solve(self.B_train, [lam])[0][0]
            if self.refit_basis is not None:
                W0_all = self.refit_basis.solve(self.B_all, [lam * n / nt])[0][0]
        self.basis_bytes = basis.nbytes + (self.refit_basis.nbytes if self.refit_basis is not None else 0)
        if self.refit_basis is not None:
            W = self.refit_basis.solve(self.B_all, [best * n / nt])[0][0]
        else:
            W = basis.solve(self.B_train, [best])[0][0]
        return best, {"val_acc": keys[i][1], "val_mse": keys[i][2]}, W

    def path(self) -> str:
        """``ridge:iterations:validation MSE`` of each training-split solve, then the projected candidates."""
        solved = " ".join(f"{lam:.4g}:{self.iterations[lam]}:{self.val_mse.get(lam, float('nan')):.5f}"
                          for lam in self.iterations)
        projected = " ".join(f"{lam:.4g}:{mse:.5f}" for lam, mse in sorted(self.projected.items()))
        return f"cg {solved}; projected {projected}" if projected else solved

    def solve_all(self, ridge: float, W0: np.ndarray | None, *, tol: float = 1e-6, max_iter: int = 500,
                  deadline: float | None = None) -> tuple[np.ndarray, CGResult]:
        """Fit all samples at ``ridge`` (starting from ``W0``)."""
        self.refit_basis = None  # its memory is no longer needed
        if self.n_val and self.precond_name == "subsample":
            self.precond.retarget(self.op.n / self.n_train, self.diag_all)
        elif self.n_val:
            self.precond = self._build_precond(self.diag_all, self.op.n)
        W, res = cg_solve(self.op, self.B_all, ridge, tol=tol, max_iter=max_iter,
                          precond=self._precond_for(ridge), W0=W0, deadline=deadline)
        return W, res


class CGMethod:
    """``method="cg"`` of :class:`~symnet.solvers.polyreg.PolyRegSolver` (its attributes are the solver's)."""

    def _cg_passes(self) -> float:
        fit = self._cg
        passes = fit.op.passes - self._cg_reported
        self._cg_reported = fit.op.passes
        return passes

    def _step_cg(self) -> dict:
        if self._solved:
            return {"loss": self._loss, "updates": 0, "converged": True, "ridge_used": self.ridge_}
        info: dict[str, Any] = {"features": self.model_.num_features}
        info.update(getattr(self, "_plan_figures", {}))
        stages = list(self._cg_groups[self._cg_groups_done])
        later = [stage for group in self._cg_groups[self._cg_groups_done + 1:] for stage in group]
        i = 0
        while i < len(stages):
            stage = stages[i]
            if stage == "prepare" and self._cg is None:
                self._cg_prepare()
            elif stage == "search" and self._cg_stage == 0:
                info.update(self._cg_search())
            elif stage == "refit":
                info.update(self._cg_refit())
            self._cg_stages_done += 1
            i += 1
            if i == len(stages) and later and self._out_of_time():
                # the loop stops at the deadline before another step: the stages left run now, cut short
                # by the deadline, so that the fit ends with a model (and says how far it got)
                stages += later
                later = []
                self._cg_groups_done = len(self._cg_groups) - 1
        self._cg_groups_done += 1
        fit = self._cg
        info.update({"passes": self._cg_passes(), "features_used": fit.features_used,
                     "prepare_time": fit.prepare_time, "precond_time": fit.precond_time,
                     "lists_time": fit.lists_time, "lists_gb": fit.op.lists_bytes / 2**30,
                     "peak_rss_mb": peak_rss_mb()})
        if not self._solved:  # the model is zero until the refit
            n = len(self._X2)
            info.update({"loss": float(np.sum(self.y_train ** 2)) / n, "updates": 0,
                         "train_scores": np.zeros((n, self.model_.num_outputs))})
        else:
            self._cg = None  # the fit's vectors and preconditioner are no longer needed
        return info

    def _cg_prepare(self) -> None:
        o = self.opts_
        op = Operator(self._X2, self.model_.table, tree=self.model_.tree)
        self._cg = CGFit(op, self.y_train, self._n_val, o["precond"], int(o["precond_samples"]), self._rng,
                         keep_walks=self._keep_walks, walks_dtype=self._walks_dtype)
        self._cg.prepare()
        self._cg_reported = 0.0

    def _cg_search(self) -> dict:
        o = self.opts_
        fit = self._cg
        t0 = time.perf_counter()
        grid = [float(v) for v in self._grid]
        if self._out_of_time():
            self._cg_best, self._cg_W, self._cg_stage = grid[len(grid) // 2], None, 1
            self.notify(f"the time limit ran out before the search for the ridge; using the middle of the "
                        f"grid, {self._cg_best:g}")
            return {"search_time": 0.0}
        candidates = sorted(set(grid + ([math.sqrt(a * b) for a, b in zip(grid, grid[1:]) if a > 0]
                                        if o["refine_ridge"] else [])))
        ridge, figures, self._cg_W = fit.choose_ridge(
            candidates, grid[len(grid) // 2], o["select_by"], tol=float(o["cg_search_tol"]),
            max_iter=int(o["cg_iters"]), deadline=self.deadline.at)
        self._cg_best = ridge
        self._cg_stage = 1
        if self.deadline.passed():
            self.notify(f"the time limit ended the search for the ridge early; using the best candidate so far, "
                        f"{ridge:g}, and the refit's CG still runs to its tolerance")
        return dict(figures, search_time=time.perf_counter() - t0, cg_path=fit.path(),
                    cg_search_iterations=sum(fit.iterations.values()))

    def _cg_refit(self) -> dict:
        o = self.opts_
        fit = self._cg
        n = len(self._X2)
        t0 = time.perf_counter()
        if self.ridge_ is None:  # all samples, the ridge scaled to the same penalty per sample
            ridge, W0 = self._cg_best * n / fit.n_train, self._cg_W
        else:
            ridge, W0 = self.ridge_, None
        self._cg_W = None
        # A time limit stops the refit's CG too: the model is then its last iterate (a partial solve,
        # or the start the search projected), and the notice says how far it got.
        W, res = fit.solve_all(ridge, W0, tol=float(o["cg_tol"]), max_iter=int(o["cg_iters"]),
                               deadline=self.deadline.at)
        if res.stopped_by_deadline and res.iterations == 0 and W0 is None:
            self.notify(f"the time limit ran out before the refit's first CG iteration: the model is zero "
                        f"(unsolved); preparing took {fit.prepare_time:.0f} s and each iteration is one more "
                        f"pass over the {n:,} samples, so allow a larger limit")
        elif res.stopped_by_deadline:
            start = "from the search's projection, " if W0 is not None else ""
            self.notify(f"the time limit stopped the refit's CG {start}after {res.iterations} iteration(s) at "
                        f"relative residual {res.residual:.2g}, above cg_tol {float(o['cg_tol']):g}: the model "
                        f"is a partial solve")
        elif not res.converged:
            self.notify(f"cg stopped after {res.iterations} iterations (cg_iters) at relative residual "
                        f"{res.residual:.2g}, above cg_tol {float(o['cg_tol']):g}")
        self.model_.weight[...] = W
        self.ridge_ = float(ridge)
        self._loss = value(sse(res.XW, self.y_train), float(np.sum(W * W)), ridge) / n
        self._solved = True
        return {"loss": self._loss, "updates": self.model_.num_params, "converged": True,
                "ridge_used": self.ridge_, "samples": n, "cg_iterations": res.iterations,
                "cg_residual": res.residual, "cg_converged": res.converged,
                "solve_time": time.perf_counter() - t0, "train_scores": res.XW}
