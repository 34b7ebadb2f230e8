"""The exact method of polynomial regression: Gram + Cholesky (primal form), or the ``n x n`` kernel (dual form).

:class:`GramAccumulator` adds up ``X^T X`` over chunks of samples (the dense
columns by ``dsyrk``, the sparse tail by a numba kernel), :func:`kernel_matrix`
forms the dual form's kernel, and :class:`ExactMethod` is the part of
:class:`~symnet.solvers.polyreg.PolyRegSolver` that plans the chunks into
steps, accumulates them (here or on a cluster's shards) and solves. The
method is described in :mod:`symnet.solvers.polyreg`.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import numpy as np
from scipy.linalg import blas

from symnet.core.kernels import monomials as MK
from symnet.core.kernels import polyreg as K
from symnet.core.linalg import ridge_solve
from symnet.core.model.polyreg import row_blocks, scores, transposed_chunk
from symnet.core.objective import sse, value
from symnet.core.runtime import peak_rss_mb


#: Largest number of features the exact method accepts: its Gram is p x p float64
#: and a solve holds about three of them (p = 25,000 -> 15 GB).
MAX_EXACT_FEATURES = 25_000
#: Cost of one sparse multiply-add relative to one dense multiply-add inside
#: dsyrk, measured on the development machine (dsyrk and the gather kernel
#: timed side by side on the same chunks): used to split the Gram columns.
SPARSE_COST = 16.0
#: Bagging with ridge=None keeps the validation features in memory up to this many float64 values (~1 GB).
#: Feature rows generated at a time when the dual form accumulates its n x n kernel (a rows x n block).
KERNEL_ROWS = 1024
#: Side of the Cholesky timed to estimate the closing solve of the exact method under a time limit.
CHOLESKY_PROBE = 800


def kernel_matrix(X2: np.ndarray, table: np.ndarray, deadline_check=None) -> tuple[np.ndarray, int]:
    """``K = X X^T`` (n, n) of the samples ``X2`` over the monomials of ``table``, and the columns in use.

    numpy: F = features(X2, table); return np.triu(F @ F.T), np.count_nonzero(F.any(axis=0))
    Accumulated by ``dsyrk`` over blocks of :data:`KERNEL_ROWS` features, so the ``n x p``
    design matrix is never held; only the upper triangle is filled (Fortran order).
    ``deadline_check(done, total, seconds)`` is called after each block (to estimate the cost).

    Example:
        >>> from symnet.core.model.polyreg import features, monomial_table
        >>> t = monomial_table((1, 4, 4), 3, 2); X = np.random.default_rng(0).random((30, 16))
        >>> Km, used = kernel_matrix(X, t); F = features(X, t)
        >>> bool(np.allclose(np.triu(Km), np.triu(F @ F.T))), used == len(t)
        (True, True)
    """
    n = len(X2)
    p = len(table)
    xt = np.ascontiguousarray(X2.T, dtype=np.float64)
    Kmat = np.zeros((n, n), order="F")
    buffer = None
    used = 0
    t0 = time.perf_counter()
    for s in range(0, p, KERNEL_ROWS):
        e = min(p, s + KERNEL_ROWS)
        buffer, ft = scratch(buffer, e - s, n)
        MK.monomial_rows(xt, np.ascontiguousarray(table[s:e]), ft)
        used += int(np.count_nonzero(np.any(ft != 0.0, axis=1)))
        Kmat = blas.dsyrk(1.0, ft.T, trans=0, beta=1.0, c=Kmat, lower=0, overwrite_c=1)  # += ft^T ft
        if deadline_check is not None:
            deadline_check(e, p, time.perf_counter() - t0)
    return Kmat, used


def _fill_lower(A: np.ndarray) -> None:
    """Copy the upper triangle of the square ``A`` into its lower one, in place, by blocks of columns."""
    n = len(A)
    for j0 in range(0, n, KERNEL_ROWS):
        j1 = min(n, j0 + KERNEL_ROWS)
        D = A[j0:j1, j0:j1]
        D[...] = np.triu(D) + np.triu(D, 1).T
        A[j1:, j0:j1] = A[j0:j1, j1:].T


def dual_weights(X2: np.ndarray, table: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``X^T alpha`` (p, k): the primal coefficients of dual ones, over blocks of features.

    numpy: return features(X2, table).T @ alpha
    """
    n, p = len(X2), len(table)
    xt = np.ascontiguousarray(X2.T, dtype=np.float64)
    W = np.empty((p, alpha.shape[1]))
    buffer = None
    for s in range(0, p, KERNEL_ROWS):
        e = min(p, s + KERNEL_ROWS)
        buffer, ft = scratch(buffer, e - s, n)
        MK.monomial_rows(xt, np.ascontiguousarray(table[s:e]), ft)
        W[s:e] = ft @ alpha
    return W


def exact_form(samples: int, p_used: int) -> str:
    """The exact method's form: ``"dual"`` (``n x n`` kernel) with fewer samples than features in use, else
    ``"primal"`` (``p x p`` Gram): the cheaper of ``n p^2 + p^3 / 3`` and ``n^2 p + n^3 / 3`` operations.

    Example:
        >>> exact_form(500, 7_000), exact_form(60_000, 9_000)
        ('dual', 'primal')
    """
    return "dual" if samples < p_used else "primal"


def cholesky_seconds(p: int) -> float:
    """Seconds one Cholesky of a ``p x p`` matrix takes here and now, scaled from timed small ones.

    The fastest of three timings: the first call in a fresh process also pays for loading LAPACK and
    touching new pages, and the cube of ``p / m`` turned such a hiccup into minutes (a 9,000-feature
    fit was once told its solve needed 334 s, and stopped its Gram accumulation early to keep them).
    """
    m = max(1, min(p, CHOLESKY_PROBE))
    A = np.random.default_rng(0).random((m, m))
    A = A @ A.T + m * np.eye(m)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        ridge_solve(A, np.ones((m, 1)), 0.0)
        best = min(best, time.perf_counter() - t0)
    return best * (p / m) ** 3


def scratch(buffer: np.ndarray | None, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """A C-ordered (rows, cols) view of a reusable flat buffer (fresh pages cost more than the kernels)."""
    if buffer is None or buffer.size < rows * cols:
        buffer = np.empty(rows * cols)
    return buffer, buffer[: rows * cols].reshape(rows, cols)


class GramAccumulator:
    """``G = X^T X``, ``X^T Y`` and ``sum(Y^2)`` over chunks of samples, float64.

    Only the ``columns`` (indices into ``table``) are accumulated, in that
    order. The first ``dense`` of them go through BLAS ``dsyrk``; the rest
    are taken as sparse: their products with every column come from
    :func:`symnet.core.kernels.polyreg.add_sparse_cross`. Put the densest columns first.

    Example:
        >>> from symnet.core.model.polyreg import features, monomial_table
        >>> t = monomial_table((1, 3, 3), 2, 2); X = np.random.default_rng(0).random((50, 9))
        >>> acc = GramAccumulator(t, np.arange(len(t)), dense=10, classes=1)
        >>> acc.add(X[:20], np.ones((20, 1))); acc.add(X[20:], np.ones((30, 1)))
        >>> F = features(X, t); bool(np.allclose(np.triu(acc.gram()), np.triu(F.T @ F)))
        True
    """

    def __init__(self, table: np.ndarray, columns: np.ndarray, dense: int, classes: int) -> None:
        self.columns = np.asarray(columns, dtype=np.int64)
        self.table = np.ascontiguousarray(table[self.columns])
        p = len(self.columns)
        self.dense = int(min(max(dense, 0), p))
        self.G_dense = np.zeros((self.dense, self.dense), order="F")
        self.cross = np.zeros((p, p - self.dense))
        self.XtY = np.zeros((p, classes))
        self.yy = 0.0
        self.count = 0

    @property
    def p(self) -> int:
        return len(self.columns)

    def add(self, X2: np.ndarray, Y: np.ndarray) -> None:
        """Add samples ``X2`` (n, D) with targets ``Y`` (n, classes)."""
        if len(X2) == 0:
            return
        self._buffer, ft = scratch(getattr(self, "_buffer", None), self.p, len(X2))
        MK.monomial_rows(transposed_chunk(X2, 0, len(X2)), self.table, ft)
        if self.dense:
            # ft[:dense].T is the (n, dense) design block in Fortran order: no copy into BLAS.
            out = blas.dsyrk(1.0, ft[: self.dense].T, beta=1.0, c=self.G_dense, trans=1, lower=0, overwrite_c=1)
            if out is not self.G_dense:  # BLAS wrote a copy (not expected for a Fortran-ordered c)
                self.G_dense = out
        if self.dense < self.p:
            ptr, idx, vals = K.sparse_columns(ft, self.dense)
            K.add_sparse_cross(ft, self.dense, ptr, idx, vals, self.cross)
        self.XtY += ft @ Y
        self.yy += float(np.sum(Y * Y))
        self.count += len(X2)

    def gram(self) -> np.ndarray:
        """The accumulated Gram ``(p, p)``, Fortran order; read its upper triangle only.

        Below the diagonal it is zero except for a few correct symmetric
        entries next to the diagonal of the sparse block (see the kernel).
        """
        out = np.zeros((self.p, self.p), order="F")
        out[: self.dense, : self.dense] = self.G_dense  # dsyrk never writes its lower triangle
        out[:, self.dense:] = self.cross
        return out

    def add_to(self, out: np.ndarray) -> np.ndarray:
        """Add the accumulated upper triangle into ``out`` (p, p) in place and return it."""
        out[: self.dense, : self.dense] += self.G_dense
        out[:, self.dense:] += self.cross
        return out

    def release(self) -> None:
        """Drop the Gram blocks (after :meth:`gram`), keeping ``XtY``, ``yy`` and ``count``."""
        self.G_dense = self.cross = self._buffer = None

    def sums(self) -> tuple:
        """``(G_dense, cross, XtY, yy, count)``: what accumulators of disjoint samples add up (:meth:`from_sums`)."""
        return self.G_dense, self.cross, self.XtY, self.yy, self.count

    @classmethod
    def from_sums(cls, table: np.ndarray, columns: np.ndarray, dense: int, sums: tuple) -> "GramAccumulator":
        """The accumulator of the samples whose :meth:`sums` were added (shards on a cluster).

        Example:
            >>> from symnet.core.model.polyreg import monomial_table
            >>> t = monomial_table((1, 2, 2), 2, 2); X = np.random.default_rng(0).random((9, 4))
            >>> a, b, c = (GramAccumulator(t, np.arange(len(t)), 3, 1) for _ in range(3))
            >>> a.add(X[:4], np.ones((4, 1))); b.add(X[4:], np.ones((5, 1))); c.add(X, np.ones((9, 1)))
            >>> both = GramAccumulator.from_sums(t, np.arange(len(t)), 3, [x + y for x, y in zip(a.sums(), b.sums())])
            >>> bool(np.allclose(both.gram(), c.gram())), both.count
            (True, 9)
        """
        out = cls.__new__(cls)
        out.columns = np.asarray(columns, dtype=np.int64)
        out.table = np.ascontiguousarray(table[out.columns])
        out.dense = int(dense)
        out.G_dense, out.cross, out.XtY, out.yy, out.count = sums
        out.G_dense = np.asfortranarray(out.G_dense)
        out.yy, out.count = float(out.yy), int(out.count)
        return out


def dense_split(counts: np.ndarray, n: int) -> int:
    """How many of the columns (sorted by non-zero count, descending) should go to dsyrk.

    Cost in dense multiply-adds: n d^2 / 2 for dsyrk over the first d columns,
    plus SPARSE_COST * p * (non-zeros of the others) for the sparse kernel.
    """
    p = len(counts)
    if p == 0:
        return 0
    d = np.arange(p + 1, dtype=np.float64)
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]]).astype(np.float64)
    cost = n * d * d / 2.0 + SPARSE_COST * p * tail
    return int(np.argmin(cost))



class ExactMethod:
    """``method="exact"`` of :class:`~symnet.solvers.polyreg.PolyRegSolver` (its attributes are the solver's)."""

    def _plan_exact(self) -> None:
        """Count each monomial's non-zeros (one pass), order and split the columns, cut the chunks."""
        o = self.opts_
        model = self.model_
        n = len(self._X2)
        chunk = int(o["chunk_size"])
        t0 = time.perf_counter()
        if self._shards_ is not None:  # integer counts: every shard counts its own rows, exactly
            counts = self._shards_.reduce(shard_nonzero_counts, model.table, chunk)
        else:
            counts = np.zeros(model.num_features, dtype=np.int64)
            for s, e in row_blocks(n, model.num_features, chunk):
                counts += MK.monomial_nonzero_counts(transposed_chunk(self._X2, s, e), model.table)[0]
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] > 0]
        dense = dense_split(counts[order], n) if o["dense_columns"] is None else int(o["dense_columns"])
        self._columns = order
        self._dense = dense
        k = model.num_outputs
        if self._shards_ is not None:  # the Gram blocks live on the shards until the solve: only counts here
            self._gram_key = uuid.uuid4().hex
            self._sent_chunks = []
            self._acc_train = _Count()
            self._acc_val = _Count() if self._n_val else None
        else:
            self._acc_train = GramAccumulator(model.table, order, dense, k)
            self._acc_val = GramAccumulator(model.table, order, dense, k) if self._n_val else None
        bounds = self._chunk_bounds()
        self._chunks = bounds
        # The Gram chunks go into as many steps as the budget allows (at most gram_steps), so that the last
        # step the budget grants solves on every sample: a budget of fewer steps never leaves a zero model.
        steps = self._groups if self._groups else int(o["gram_steps"])
        if not self._groups and self.steps_budget_:
            steps = min(steps, int(self.steps_budget_))
        self._groups = steps
        self._chunk_groups = [bounds[i * len(bounds) // steps:(i + 1) * len(bounds) // steps] for i in range(steps)]
        self._groups_done = 0
        self._samples_reported = -n  # the counting pass is one pass over the data
        self._gram_time = time.perf_counter() - t0
        self._planned = True
        if self.time_limit_ is not None:
            self._plan_budget(len(order))

    def _plan_budget(self, p_used: int) -> None:
        """Under a time limit: estimate the Cholesky solves still to come (one per ridge tried, one for the
        refit), keep their time back from the Gram accumulation and the search, and say so when even the
        fewest of them (one candidate and the refit) do not fit in what is left."""
        one = cholesky_seconds(p_used)
        solves = 2 if self.ridge_ is None else 1
        self._reserve = solves * one
        left = self.deadline.remaining()
        if self._reserve > left:
            self.notify(f"the time limit leaves {max(left, 0.0):.0f} s, but the closing Cholesky solve"
                        f"{'s' if solves > 1 else ''} of the {p_used:,}-feature Gram need about "
                        f"{self._reserve:.0f} s here (estimated); a solve cannot be cut, so the fit will end past "
                        f"the limit (fewer features, e.g. a lower degree or window, or a larger limit fit it)")
        else:
            self.notify(f"a time limit stops the Gram accumulation (the fit then uses the samples accumulated so "
                        f"far) and the search for the ridge, keeping back ~{self._reserve:.0f} s (estimated) for "
                        f"the closing Cholesky solve of the {p_used:,}-feature Gram, which cannot be cut")

    def _chunk_bounds(self) -> list[tuple[int, int, bool]]:
        """``(start, stop, is_validation)`` of the Gram chunks, validation chunks first (so that a fit cut
        short by a time limit can still choose its ridge)."""
        n, chunk = len(self._X2), int(self.opts_["chunk_size"])
        n_train = n - self._n_val
        bounds = [(s + n_train, e + n_train, True) for s, e in row_blocks(self._n_val, 1, chunk)]
        return bounds + [(s, e, False) for s, e in row_blocks(n_train, 1, chunk)]

    def _accumulate(self, group: list) -> bool:
        """Add a group of chunks; False when the deadline stopped it early.

        On a cluster every shard adds the chunks of its own rows, one round trip per group: the
        deadline is checked before it.
        """
        if self._shards_ is not None:
            if self._out_of_time(self._reserve) and self._acc_train.count:  # a model needs training samples
                return False
            self._sent_chunks += list(group)
            self._shard_counts = self._shards_.reduce(
                shard_accumulate, self._gram_key, self.model_.table, self._columns, self._dense,
                self.model_.num_outputs, bool(self._n_val), self._sent_chunks)
            self._acc_train.count, val_count = self._shard_counts
            if self._acc_val is not None:
                self._acc_val.count = val_count
            return True
        Y = self.y_train
        for s, e, is_val in group:
            if self._out_of_time(self._reserve) and self._acc_train.count:  # a model needs training samples
                return False
            acc = self._acc_val if is_val else self._acc_train
            acc.add(self._X2[s:e], Y[s:e])
        return True

    def _samples_seen(self) -> int:
        return self._acc_train.count + (self._acc_val.count if self._acc_val else 0)

    def _zero_model_info(self) -> dict:
        n = len(self._X2)
        passes = (self._samples_seen() - self._samples_reported) / n
        self._samples_reported = self._samples_seen()
        return {"loss": float(np.sum(self.y_train ** 2)) / n, "updates": 0, "passes": passes,
                "gram_time": self._gram_time,
                "train_scores": np.zeros((n, self.model_.num_outputs)),
                "samples": self._samples_seen(), "features": self.model_.num_features,
                "features_used": len(self._columns), "dense_columns": self._dense, "peak_rss_mb": peak_rss_mb()}

    def _step_exact(self) -> dict:
        if self._solved:
            return {"loss": self._loss, "updates": 0, "converged": True, "ridge_used": self.ridge_}
        if self._form == "dual":
            return self._solve_dual()
        if not self._planned:
            self._plan_exact()
        if self._groups_done < len(self._chunk_groups):
            t0 = time.perf_counter()
            complete = self._accumulate(self._chunk_groups[self._groups_done])
            self._gram_time += time.perf_counter() - t0
            if complete:
                self._groups_done += 1
            while self._acc_train.count == 0 and self._out_of_time(self._reserve) and complete \
                    and self._groups_done < len(self._chunk_groups):  # a model needs a training chunk at least
                complete = self._accumulate(self._chunk_groups[self._groups_done])
                self._groups_done += complete
            out_of_time = self._out_of_time(self._reserve)
            if complete and not out_of_time and self._groups_done < len(self._chunk_groups):
                return self._zero_model_info()
        # The last group, or a time limit reached: the loop would stop before another step, so solve now.
        return self._solve_exact()

    def _solve_exact(self) -> dict:
        t0 = time.perf_counter()
        if self._shards_ is not None and self._sent_chunks:  # the shards' Gram blocks, added here in shard order
            train, val_sums = self._shards_.reduce(
                shard_gram_sums, self._gram_key, self.model_.table, self._columns, self._dense,
                self.model_.num_outputs, bool(self._n_val), self._sent_chunks)
            table = self.model_.table
            self._acc_train = GramAccumulator.from_sums(table, self._columns, self._dense, train)
            if self._acc_val is not None:
                self._acc_val = GramAccumulator.from_sums(table, self._columns, self._dense, val_sums)
            self._shards_.reduce(shard_release, self._gram_key)
        acc, val = self._acc_train, self._acc_val
        passes = (self._samples_seen() - self._samples_reported) / len(self._X2)
        G = acc.gram()
        acc.release()
        info: dict[str, Any] = {}
        ridge = self.ridge_
        if ridge is None:
            if val is None or val.count == 0 or acc.count == 0:
                ridge = float(np.median(self._grid))
            else:
                table = np.ascontiguousarray(self.model_.table[self._columns])
                Xv = self._X2[len(self._X2) - self._n_val:]
                ridge, figures, _ = self._select_ridge(lambda lam: ridge_solve(G, acc.XtY, lam),
                                                       lambda W: scores(Xv, table, W), self._reserve / 2)
                info.update(figures)
                ridge *= (acc.count + val.count) / acc.count
        if val is not None and val.count:
            val.add_to(G)
            val.release()
            XtY, yy, count = acc.XtY + val.XtY, acc.yy + val.yy, acc.count + val.count
        else:
            XtY, yy, count = acc.XtY, acc.yy, acc.count
        W = ridge_solve(G, XtY, ridge)
        weight = np.zeros_like(self.model_.weight)
        weight[self._columns] = W
        self.model_.weight[...] = weight
        # SSE from the accumulated moments: |Y|^2 - 2 <W, X^T Y> + <W, G W>.
        n = len(self._X2)
        if count == n:
            GW = blas.dsymm(1.0, G, W, side=0, lower=0) if len(W) else W
            sse_ = yy - 2.0 * float(np.sum(W * XtY)) + float(np.sum(W * GW))
        else:  # a time limit left samples out of the Gram: score them all
            self.notify(f"the time limit ended the Gram accumulation after {count:,} of {n:,} samples: the "
                        "model is fitted on those")
            sse_ = sse(scores(self._X2, self.model_.table, self.model_.weight), self.y_train)
        self.ridge_ = float(ridge)
        self._loss = value(sse_, float(np.sum(W * W)), ridge) / n
        self._solved = True
        self._solve_time = time.perf_counter() - t0
        self._acc_train = self._acc_val = None  # free the Gram blocks
        info.update({"loss": self._loss, "updates": self.model_.num_params, "passes": passes, "converged": True,
                     "ridge_used": self.ridge_, "samples": count, "features": self.model_.num_features,
                     "features_used": len(self._columns), "dense_columns": self._dense,
                     "gram_time": self._gram_time, "solve_time": self._solve_time, "peak_rss_mb": peak_rss_mb()})
        return info

    def _solve_dual(self) -> dict:
        """The exact fit in one step through the ``n x n`` kernel ``X X^T`` (fewer samples than features).

        ``alpha = (K + lam I)^-1 Y`` and ``W = X^T alpha``: the same coefficients as the primal
        ``(X^T X + lam I)^-1 X^T Y`` (the minimum-norm ones at ``lam = 0``). The ridge is chosen on the
        validation split from the training block of ``K`` (validation scores ``K_vt alpha``), then
        scaled by ``N / N_train`` for the refit on all samples, as in the primal form.
        """
        t0 = time.perf_counter()
        model = self.model_
        n = len(self._X2)
        nt = n - self._n_val
        warned: list[bool] = []

        def check(done: int, total: int, seconds: float) -> None:  # the kernel cannot be cut: say so early
            if warned or done == total:
                return
            left = self.deadline.remaining()  # math.inf without a limit: never short
            if seconds * (total - done) / done > left:
                warned.append(True)
                self.notify(f"the time limit leaves {max(left, 0.0):.0f} s, but the {n:,} x {n:,} kernel over "
                            f"{total:,} features needs about {seconds * total / done:.0f} s (estimated from its "
                            f"first {done:,} features); it cannot be cut, so the fit will end past the limit")

        Kmat, used = kernel_matrix(self._X2, model.table, check)
        _fill_lower(Kmat)
        gram_time = time.perf_counter() - t0
        info: dict[str, Any] = {}
        ridge = self.ridge_
        if ridge is None:
            Ktt, Kvt, Yt = Kmat[:nt, :nt], Kmat[nt:, :nt], self.y_train[:nt]
            ridge, figures, _ = self._select_ridge(lambda lam: ridge_solve(Ktt, Yt, lam), lambda a: Kvt @ a)
            info.update(figures)
            ridge *= n / nt
        alpha = ridge_solve(Kmat, self.y_train, ridge)
        W = dual_weights(self._X2, model.table, alpha)
        model.weight[...] = W
        train_scores = Kmat @ alpha
        self.ridge_ = float(ridge)
        self._loss = value(sse(train_scores, self.y_train), float(np.sum(W * W)), ridge) / n
        self._solved = True
        info.update({"loss": self._loss, "updates": model.num_params, "passes": 2.0, "converged": True,
                     "ridge_used": self.ridge_, "samples": n, "features": model.num_features,
                     "features_used": used, "gram_time": gram_time, "solve_time": time.perf_counter() - t0 - gram_time,
                     "train_scores": train_scores, "peak_rss_mb": peak_rss_mb()})
        return info

class _Count:
    """Where the Gram blocks live on a cluster's shards, the client keeps only their sample count."""

    count = 0



def shard_nonzero_counts(samples, rows, table: np.ndarray, chunk: int) -> np.ndarray:
    """How many of the shard's samples each monomial of ``table`` is non-zero on."""
    counts = np.zeros(len(table), dtype=np.int64)
    for s, e in row_blocks(len(samples.X), len(table), chunk):
        counts += MK.monomial_nonzero_counts(transposed_chunk(samples.X, s, e), table)[0]
    return counts


def shard_accumulate(samples, rows, key: str, table: np.ndarray, columns: np.ndarray, dense: int, classes: int,
                     validation: bool, chunks: list) -> tuple[int, int]:
    """Add the shard's rows of every chunk in ``chunks`` (``(start, stop, is_validation)`` rows of the whole
    training set) that it has not added yet to its Gram accumulators; returns the samples added so far
    (training, validation).

    The accumulators stay in the shard's scratch under ``key``. The list is every chunk sent so
    far, so a shard rebuilt after its worker died adds them all again (nothing is lost).
    """
    held = samples.scratch.get(("polyreg", key))
    if held is None:
        held = {"train": GramAccumulator(table, columns, dense, classes),
                "val": GramAccumulator(table, columns, dense, classes) if validation else None, "done": set()}
        samples.scratch[("polyreg", key)] = held
    lo, hi = samples.offset, samples.offset + len(samples.X)
    for s, e, is_val in chunks:
        a, b = max(s, lo), min(e, hi)
        if a >= b or (s, e) in held["done"]:
            continue
        held["val" if is_val else "train"].add(samples.X[a - lo:b - lo], samples.Y[a - lo:b - lo])
        held["done"].add((s, e))
    return held["train"].count, (held["val"].count if held["val"] is not None else 0)


def shard_gram_sums(samples, rows, key: str, *accumulate_args) -> tuple:
    """The shard's accumulated sums (:meth:`GramAccumulator.sums`), training and validation, after
    :func:`shard_accumulate` with ``accumulate_args`` (nothing left to add, unless the shard was rebuilt)."""
    shard_accumulate(samples, rows, key, *accumulate_args)
    held = samples.scratch[("polyreg", key)]
    return held["train"].sums(), (held["val"].sums() if held["val"] is not None else None)


def shard_release(samples, rows, key: str) -> None:
    """Drop the shard's Gram accumulators."""
    samples.scratch.pop(("polyreg", key), None)
