"""Bagging for polynomial regression: ridge fits of random subsets, averaged (``method="bagging"``).

:func:`fit_subset` fits one subset (a module function, so that a Dask worker
runs the same code); :class:`BaggingMethod` is the part of
:class:`~symnet.solvers.polyreg.PolyRegSolver` that draws the subsets, keeps
the running averages (one per candidate ridge when the ridge is chosen) and
scores them on the validation split.
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from typing import Any

import numpy as np
from scipy.linalg import blas

from symnet.core.kernels import monomials as MK
from symnet.core.linalg import best_candidate, ridge_path, ridge_solve
from symnet.core.model.polyreg import scores, scores_transposed, transposed_chunk
from symnet.core.objective import accuracy, sse
from symnet.core.runtime import peak_rss_mb
from symnet.solvers.polyreg.explicit import scratch


VAL_FEATURES_MAX = 1 << 27
#: Samples whose non-zero monomials method="auto" counts to estimate the columns in use.


class BaggingMethod:
    """``method="bagging"`` of :class:`~symnet.solvers.polyreg.PolyRegSolver` (its attributes are the solver's)."""

    def _draw_subset(self, rng: np.random.Generator) -> np.ndarray:
        return np.sort(rng.choice(self._pool, size=int(self.opts_["batch_size"]), replace=False))

    def _subset_fit(self, idx: np.ndarray, ridge) -> np.ndarray:
        """:func:`fit_subset` of the subset ``idx``: here, or (on a cluster) by a task that the previous
        steps started, so that the workers fit the next subsets while this one is averaged."""
        if self.client_ is None:
            self._buffer, ft = scratch(getattr(self, "_buffer", None), len(self.model_.table), len(idx))
            return fit_subset(self._X2[idx], self.y_train[idx], self.model_.table, ridge, out=ft)
        if self._queue and not (np.array_equal(self._queue[0][0], idx) and self._queue[0][1] == ridge):
            self._cancel_queue()  # not the subset the queue drew (a resumed or changed run): start again
        if not self._queue:
            self._queue.append((idx, ridge, self._submit_subset(idx, ridge)))
        # top up: the subsets of the next steps, drawn by a copy of the generator (its own state moves by
        # exactly one draw per step, as without a cluster)
        ahead = copy.deepcopy(self._rng)
        for _ in range(len(self._queue) - 1):
            self._draw_subset(ahead)
        left = int(self.opts_["batches"]) - self._batches_done - len(self._queue)
        workers = max(1, len(self.client_.scheduler_info(n_workers=-1)["workers"]))
        while left > 0 and len(self._queue) < workers + 1:
            nxt = self._draw_subset(ahead)
            self._queue.append((nxt, ridge, self._submit_subset(nxt, ridge)))
            left -= 1
        _, _, future = self._queue.pop(0)
        return future.result()  # a task whose worker died is run again by the scheduler

    def _submit_subset(self, idx: np.ndarray, ridge):
        return self.client_.submit(fit_subset, self._X2[idx], self.y_train[idx], self.model_.table, ridge,
                                   pure=False, key=f"symnet-bag-{self._batches_done}-{uuid.uuid4().hex[:8]}")

    def _cancel_queue(self) -> None:
        for _, _, future in self._queue:
            future.cancel()
        self._queue = []

    def _bagging_candidates(self) -> list[float]:
        grid = sorted(float(v) for v in self._grid)
        if self.opts_["refine_ridge"]:
            grid += [math.sqrt(x * y) for x, y in zip(grid, grid[1:]) if x > 0]
        return sorted(grid)

    def _step_bagging(self) -> dict:
        o = self.opts_
        t0 = time.perf_counter()
        idx = self._draw_subset(self._rng)
        info: dict[str, Any] = {}
        k = self._batches_done
        if self._ridge_auto:
            # One running average per candidate ridge; the model is the one whose average
            # scores best on the validation split so far (averaging cuts the variance of the
            # single fits, so the best penalty for the average is below the best for one fit).
            lams = self._bagging_candidates()
            fits = self._subset_fit(idx, tuple(lams))
            if self._bag_sums is None:
                self._bag_sums = np.zeros((len(lams),) + self.model_.weight.shape)
                self._bag_val = np.zeros((len(lams), self._n_val, self.model_.num_outputs))
            self._bag_sums += fits
            n = len(self._X2)
            Wcat = np.concatenate(list(fits), axis=1)
            if self._val_features is None and self._n_val * self.model_.num_features <= VAL_FEATURES_MAX:
                # The validation features are scored against every candidate at every step: keep them.
                self._val_features = np.empty((self.model_.num_features, self._n_val))
                MK.monomial_rows(transposed_chunk(self._X2, n - self._n_val, n), self.model_.table,
                                self._val_features)
            if self._val_features is not None:
                sv = self._val_features.T @ Wcat
            else:  # too many to keep (degree 3): over each sample's non-zero monomials when that is cheaper
                sv = scores(self._X2[n - self._n_val:], self.model_.table, Wcat, tree=self.model_.tree)
            self._bag_val += sv.reshape(self._n_val, len(lams), -1).transpose(1, 0, 2)
            yv, Yv = self.data_.y_train[n - self._n_val:], self.y_train[n - self._n_val:]
            keys = []
            for i in range(len(lams)):
                avg = self._bag_val[i] / (k + 1)
                keys.append((accuracy(avg, yv), sse(avg, Yv) / self._n_val))
            best = best_candidate(lams, [m for _, m in keys], [1.0 - a for a, _ in keys], o["select_by"])
            self.ridge_ = lams[best]
            self.model_.weight[...] = self._bag_sums[best] / (k + 1)
            W = fits[best]
            info.update({"val_acc": keys[best][0], "val_mse": keys[best][1]})
        else:
            W = self._subset_fit(idx, self.ridge_)
            self.model_.weight *= k / (k + 1)
            self.model_.weight += W / (k + 1)
        self._batches_done = k + 1
        if len(self._X2_test):
            if self._test_t is None:  # transposed once: the copy costs as much as the scoring
                self._test_t = np.ascontiguousarray(self._X2_test.T)
            info["batch_test_acc"] = accuracy(scores_transposed(self._test_t, self.model_.table, W),
                                              self.data_.y_test)
        info.update({"loss": None, "updates": self.model_.num_params, "passes": len(idx) / len(self._X2),
                     "ridge_used": self.ridge_, "batch_time": time.perf_counter() - t0,
                     "features": self.model_.num_features, "peak_rss_mb": peak_rss_mb()})
        return info

# --------------------------------------------------------------------------- work on the samples' shards
def fit_subset(X2: np.ndarray, Y: np.ndarray, table: np.ndarray, ridge, out: np.ndarray | None = None) -> np.ndarray:
    """Ridge coefficients of one bagging subset (rows ``X2``, targets ``Y``) over the monomials of ``table``.

    ``ridge`` a number: ``(p, K)`` coefficients, through the ``b x b`` dual system when the
    subset has fewer rows than features; a tuple of candidates: ``(len, p, K)`` coefficients
    from one Gram (:func:`~symnet.core.linalg.ridge_path`). ``out`` is a ``(p, b)`` buffer for
    the transposed features. A module function, so that a Dask worker runs the same code.

    Example:
        >>> from symnet.core.model.polyreg import monomial_table
        >>> t = monomial_table((1, 2, 2), 2, 2); X = np.random.default_rng(0).random((5, 4))
        >>> fit_subset(X, np.ones((5, 1)), t, 1.0).shape, fit_subset(X, np.ones((5, 1)), t, (1.0, 2.0)).shape
        ((15, 1), (2, 15, 1))
    """
    p, b = len(table), len(X2)
    ft = np.empty((p, b)) if out is None else out
    MK.monomial_rows(np.ascontiguousarray(X2.T, dtype=np.float64), table, ft)
    if isinstance(ridge, tuple):
        return ridge_path(ft.T, Y, ridge)
    if b < p:
        Kmat = blas.dsyrk(1.0, ft.T, trans=0, lower=0)  # X_b X_b^T, (b, b)
        return ft @ ridge_solve(Kmat, Y, ridge)
    G = blas.dsyrk(1.0, ft.T, trans=1, lower=0)  # X_b^T X_b, (p, p)
    return ridge_solve(G, ft @ Y, ridge)
