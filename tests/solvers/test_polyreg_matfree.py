"""Tests of the matrix-free (conjugate-gradient) solves of the polynomial-regression backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symnet.core.model import polyreg as M
from symnet.core.datasets import Dataset
from symnet.core.errors import SymnetWarning
from symnet.core.errors import SolverError
from symnet.core.kernels import monomials as CK
from symnet.frontend import cli, polyreg_maps
from symnet.solvers import polyreg as P
from symnet.core.linalg import conjugate_gradient
from symnet.solvers.polyreg import bagging as PB
from symnet.solvers.polyreg import cg as PCG
from symnet.solvers.polyreg import matfree as MF
from symnet.core.kernels import polyreg_matfree as SK


def sparse_images(rng, n, shape=(1, 6, 6), zero=0.5):
    x = rng.random((n,) + shape)
    x[x < zero] = 0.0  # image-like: many exact zeros, so the sparse listing is exercised
    return x


# --------------------------------------------------------------------------- the products against features()
@pytest.mark.parametrize("shape,degree,window", [((1, 6, 6), 2, 3), ((1, 6, 7), 3, 3), ((2, 4, 4), 3, 2),
                                                 ((5,), 2, None), ((1, 5, 5), 1, 2), ((1, 4, 4), 4, 2)])
def test_products_match_the_explicit_feature_matrix(rng, shape, degree, window):
    X2 = sparse_images(rng, 57, shape).reshape(57, -1)
    X2[3] = 0.0  # a sample with only the bias
    table = M.monomial_table(shape, degree, window)
    F = M.features(X2, table)
    op = MF.Operator(X2, table, blocks=5)
    V = rng.normal(size=(len(table), 4))
    U = rng.normal(size=(57, 4))
    XV, GV = op.normal(V)
    np.testing.assert_allclose(XV, F @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(GV, F.T @ (F @ V), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(op.matvec(V), F @ V, rtol=1e-12, atol=1e-12)
    XtU, diag, counts = op.rhs(U)
    np.testing.assert_allclose(XtU, F.T @ U, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(diag, np.sum(F * F, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(counts, np.count_nonzero(F, axis=0))
    # a sample range is the same as slicing the inputs
    np.testing.assert_allclose(op.normal(V, 10, 30)[1], F[10:30].T @ (F[10:30] @ V), rtol=1e-11, atol=1e-11)
    assert op.passes == pytest.approx(3 + 20 / 57)  # normal, matvec, rhs over all, one range


def test_sample_listing_is_the_nonzero_monomials(rng):
    table = M.monomial_table((1, 5, 5), 3, 3)
    tree = M.prefix_tree(table)
    x = sparse_images(rng, 1, (1, 5, 5))[0].ravel()
    idx = np.empty(len(table) + 1, dtype=np.int64)
    val = np.empty(len(table) + 1)
    m = CK.sample_monomials(x, *tree, idx, val)[0]
    f = M.features(x[None], table)[0]
    assert sorted(idx[:m].tolist()) == np.nonzero(f)[0].tolist()
    np.testing.assert_allclose(val[:m], f[idx[:m]], rtol=1e-15)


def test_prefix_tree_rejects_tables_without_prefixes():
    from symnet.core.errors import ModelError

    table = np.array([[-1, -1], [0, -1], [0, 1]])  # (0, 1) has prefix (0,), fine
    M.prefix_tree(table)
    with pytest.raises(ModelError, match="prefix"):
        M.prefix_tree(np.array([[-1, -1], [0, -1], [1, 2]]))
    with pytest.raises(ModelError, match="bias"):
        M.prefix_tree(np.array([[0, -1], [1, -1]]))


@pytest.mark.parametrize("width", [1, 3, 128])
def test_block_walks_match_the_features_for_any_block_width(rng, width):
    X2 = sparse_images(rng, 41, (1, 6, 6)).reshape(41, -1)
    table = M.monomial_table((1, 6, 6), 3, 3)
    tree = M.prefix_tree(table)
    F = M.features(X2, table)
    V = rng.normal(size=(len(table), 3))
    XV = np.empty((41, 3))
    G = SK.normal_products(X2, *tree, V, XV, 3, width)[0]
    np.testing.assert_allclose(XV, F @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(G, F.T @ (F @ V), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(CK.tree_scores(X2, *tree, V, width)[0], F @ V, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- kept walks
@pytest.mark.parametrize("width", [1, 3, 256])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kept_walks_give_the_feature_products(rng, width, dtype):
    X2 = sparse_images(rng, 45, (1, 6, 6)).reshape(45, -1)
    X2[7] = 0.0  # a sample with only the bias
    table = M.monomial_table((1, 6, 6), 3, 3)
    tree = M.prefix_tree(table)
    F = M.features(X2, table)
    nodes, entries = SK.count_walk_lists(X2, *tree, width, 3)
    lists = SK.build_walk_lists(X2, *tree, width, dtype, 3)
    block_nodes, node_ids, node_ptr, ent_idx, ent_val = lists
    # per block: the monomials non-zero in some sample, and one entry per non-zero (sample, monomial)
    for b in range(len(nodes)):
        Fb = F[b * width:(b + 1) * width]
        ids = node_ids[block_nodes[b]:block_nodes[b + 1]]
        assert sorted(ids.tolist()) == np.nonzero(np.any(Fb != 0, axis=0))[0].tolist() and nodes[b] == len(ids)
        assert entries[b] == np.count_nonzero(Fb)
    assert ent_val.dtype == dtype and node_ptr[-1] == len(ent_val) == np.count_nonzero(F)
    V = rng.normal(size=(len(table), 4))
    XV = np.empty((45, 4))
    G = SK.listed_normal_products(*lists, 45, width, V, XV, 3)[0]
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(XV, F @ V, rtol=tol, atol=tol)
    np.testing.assert_allclose(G, F.T @ (F @ V), rtol=tol, atol=tol * np.abs(F.T @ F @ V).max())
    np.testing.assert_allclose(SK.listed_scores(*lists, 45, width, V, 3)[0], F @ V, rtol=tol, atol=tol)


def test_operator_reads_kept_walks_over_ranges_and_their_unions(rng):
    X2 = sparse_images(rng, 300, (1, 6, 6)).reshape(300, -1)
    table = M.monomial_table((1, 6, 6), 2, 3)
    F = M.features(X2, table)
    V = rng.normal(size=(len(table), 3))
    op = MF.Operator(X2, table)
    assert op.keep_walks([(0, 250), (250, 300)], np.float64) == op.lists_bytes > 0 and not op.inexact
    assert op._segments(0, 300) == [(0, 250), (250, 300)] and op._segments(0, 100) is None
    for start, stop in ((0, 250), (250, 300), (0, 300)):
        XV, GV = op.normal(V, start, stop)
        Fs = F[start:stop]
        np.testing.assert_allclose(XV, Fs @ V, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(GV, Fs.T @ (Fs @ V), rtol=1e-11, atol=1e-10)
        np.testing.assert_allclose(op.matvec(V, start, stop), Fs @ V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.normal(V, 10, 40)[1], F[10:40].T @ (F[10:40] @ V), rtol=1e-11, atol=1e-10)
    op32 = MF.Operator(X2, table)
    op32.keep_walks([(0, 300)], np.float32)
    assert op32.inexact
    op32.walk = True  # walked again: exact, and no longer inexact
    assert not op32.inexact
    np.testing.assert_allclose(op32.normal(V)[1], F.T @ (F @ V), rtol=1e-11, atol=1e-10)


def test_conjugate_gradient_refines_a_rounded_product_with_the_exact_one(rng):
    F = rng.random((60, 12))
    A = F.T @ F + 0.1 * np.eye(12)
    A32 = A.astype(np.float32).astype(np.float64)  # off by ~1e-8 relative
    B = rng.random((12, 3))
    exact = np.linalg.solve(A, B)
    calls = []

    def refine(P):
        calls.append(1)
        return A @ P, (F @ P,)

    W, res = conjugate_gradient(lambda P: (A32 @ P, (F @ P,)), B, tol=1e-12, refine=refine, scores=True)
    assert res.converged and calls  # the rounded CG converged, then the exact products took over
    rel = np.linalg.norm(B - A @ W, axis=0) / np.linalg.norm(B, axis=0)
    assert np.all(rel <= 1e-12)
    np.testing.assert_allclose(W, exact, rtol=1e-9)
    np.testing.assert_allclose(res.scores[0], F @ W, rtol=1e-10)  # the scores are the exact ones too
    W2, res2 = conjugate_gradient(lambda P: A32 @ P, B, tol=1e-12)
    assert np.max(np.linalg.norm(B - A @ W2, axis=0) / np.linalg.norm(B, axis=0)) > 1e-10  # without: off


@pytest.mark.parametrize("cg_tol", [1e-5, 1e-9])
def test_cg_with_kept_walks_meets_its_tolerance_on_the_true_system(rng, cg_tol):
    data = toy(rng, n_train=260)
    opts = dict(method="cg", ridge_grid=[0.1, 3.0, 100.0], val_size=60, precond_samples=60, cg_tol=cg_tol,
                cg_iters=3000)
    kept = M.PolyRegModel(data.input_shape, 3, 2, 3)
    s = P.PolyRegSolver(cg_lists=True, **opts).fit(kept, data, quiet=True)
    walked = M.PolyRegModel(data.input_shape, 3, 2, 3)
    w = P.PolyRegSolver(cg_lists=False, **opts).fit(walked, data, quiet=True)
    assert s.history_.final["lists_gb"] > 0 and w.history_.final["lists_gb"] == 0
    assert s.history_.final["ridge_used"] == w.history_.final["ridge_used"]
    lam = s.history_.final["ridge_used"]
    F = kept.features(data.x_train)
    B = F.T @ data.one_hot()
    rel = np.linalg.norm(B - (F.T @ (F @ kept.weight) + lam * kept.weight), axis=0) / np.linalg.norm(B, axis=0)
    assert s.history_.final["cg_converged"] and np.all(rel <= 1.01 * cg_tol)
    assert s.history_.final["cg_residual"] == pytest.approx(np.max(rel), rel=1e-3)
    np.testing.assert_allclose(F @ kept.weight, F @ walked.weight, rtol=0, atol=50 * cg_tol)


# --------------------------------------------------------------------------- conjugate gradients
@pytest.mark.parametrize("precond", ["subsample", "jacobi", "none"])
def test_cg_converges_to_the_direct_solution(rng, precond):
    X2 = sparse_images(rng, 300, (1, 5, 5), zero=0.3).reshape(300, -1)
    table = M.monomial_table((1, 5, 5), 2, 3)
    F = M.features(X2, table)
    Y = np.eye(3)[rng.integers(0, 3, 300)]
    op = MF.Operator(X2, table)
    B, diag, _ = op.rhs(Y)
    lam = 0.7
    exact = np.linalg.solve(F.T @ F + lam * np.eye(len(table)), F.T @ Y)
    pre = MF.SubsamplePreconditioner(op.subsample_features(np.arange(0, 300, 3)), 3.0, diag) \
        if precond == "subsample" else precond
    for tol in (1e-4, 1e-9):
        W, res = MF.cg_solve(op, B, lam, tol=tol, max_iter=2000, precond=pre, diag=diag)
        A = F.T @ F + lam * np.eye(len(table))
        rel = np.linalg.norm(F.T @ Y - A @ W, axis=0) / np.linalg.norm(F.T @ Y, axis=0)
        assert res.converged and res.residual <= tol and np.all(rel <= 1.01 * tol)
        # the coefficient error is bounded by the condition number times the residual
        cond = np.linalg.cond(A)
        assert np.linalg.norm(W - exact) <= cond * tol * np.linalg.norm(exact)
        np.testing.assert_allclose(res.XW, F @ W, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(F @ W, F @ exact, rtol=1e-6, atol=1e-7)


def test_subsample_preconditioner_is_exact_on_its_own_samples(rng):
    # With every sample in the subsample (scale 1) M = G + lam I: CG converges in one step.
    X2 = sparse_images(rng, 80, (1, 4, 4)).reshape(80, -1)
    table = M.monomial_table((1, 4, 4), 2, 2)
    op = MF.Operator(X2, table)
    B, diag, _ = op.rhs(np.ones((80, 2)))
    pre = MF.SubsamplePreconditioner(op.subsample_features(np.arange(80)), 1.0, diag)
    W, res = MF.cg_solve(op, B, 0.2, tol=1e-10, precond=pre)
    assert res.iterations == 1


def test_warm_start_and_extra_scores(rng):
    X2 = sparse_images(rng, 120, (1, 4, 4)).reshape(120, -1)
    table = M.monomial_table((1, 4, 4), 2, 3)
    F = M.features(X2, table)
    Y = np.eye(2)[rng.integers(0, 2, 120)]
    op = MF.Operator(X2, table)
    B = op.rhs(Y[:100], 0, 100)[0]
    W1, r1 = MF.cg_solve(op, B, 1.0, tol=1e-10, precond="jacobi", fit=(0, 100), extra=(100, 120))
    np.testing.assert_allclose(r1.XW_extra, F[100:] @ W1, rtol=1e-9, atol=1e-10)
    W2, r2 = MF.cg_solve(op, B, 1.0, tol=1e-10, precond="jacobi", fit=(0, 100), W0=W1)
    assert r2.iterations == 0 and np.allclose(W2, W1)


def test_search_runs_the_refit_in_the_same_passes(rng):
    # The refit's CG (all samples, ridge scaled by N / N_train) shares the search's passes.
    X2 = sparse_images(rng, 260, (1, 5, 5), zero=0.4).reshape(260, -1)
    table = M.monomial_table((1, 5, 5), 2, 3)
    F = M.features(X2, table)
    Y = np.eye(3)[rng.integers(0, 3, 260)]
    fit = PCG.CGFit(MF.Operator(X2, table), Y, n_val=60, precond_samples=50, rng=rng)
    fit.prepare()
    passes = fit.op.passes
    lam, figures, W0 = fit.choose_ridge([0.3, 3.0, 30.0], 3.0, tol=1e-8)
    # one pass per iteration, and one for the start of each warm-started run after the first
    assert fit.op.passes - passes == pytest.approx(sum(fit.iterations.values()) + len(fit.iterations) - 1)
    # at the ridges CG ran at, the projections are the solutions: of the training split, scored on
    # the validation split, and of all samples at the scaled ridge
    for solved in fit.iterations:
        Wt = np.linalg.solve(F[:200].T @ F[:200] + solved * np.eye(len(table)), F[:200].T @ Y[:200])
        assert fit.projected[solved] == pytest.approx(np.sum((F[200:] @ Wt - Y[200:]) ** 2) / 60, rel=1e-6)
        ref = np.linalg.solve(F.T @ F + solved * 1.3 * np.eye(len(table)), F.T @ Y)
        Wa = fit.refit_basis.solve(fit.B_all, [solved * 1.3])[0][0]
        np.testing.assert_allclose(F @ Wa, F @ ref, rtol=0, atol=1e-5)
    W, res = fit.solve_all(lam * 1.3, W0, tol=1e-9)
    ref = np.linalg.solve(F.T @ F + lam * 1.3 * np.eye(len(table)), F.T @ Y)
    np.testing.assert_allclose(F @ W, F @ ref, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the solver
def toy(rng, n_train=240, n_test=60, shape=(1, 6, 6), classes=3):
    x = sparse_images(rng, n_train + n_test, shape, zero=0.4)
    flat = x.reshape(len(x), -1)
    y = np.argmax(flat[:, :classes] * flat[:, 7:7 + classes], axis=1)
    return Dataset("toy", x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes)


def test_cg_method_matches_exact_with_a_given_ridge(rng):
    data = toy(rng)
    exact = M.PolyRegModel(data.input_shape, 3, 3, 3)
    P.PolyRegSolver(method="exact", ridge=0.5).fit(exact, data, quiet=True)
    cg = M.PolyRegModel(data.input_shape, 3, 3, 3)
    s = P.PolyRegSolver(method="cg", ridge=0.5, cg_tol=1e-8, precond_samples=60).fit(cg, data, quiet=True)
    # more features than samples: the error bound is cond(G + lam I) * tol
    F = cg.features(data.x_train)
    cond = np.linalg.cond(F.T @ F + 0.5 * np.eye(F.shape[1]))
    assert np.linalg.norm(cg.weight - exact.weight) <= cond * 1e-8 * np.linalg.norm(exact.weight)
    np.testing.assert_allclose(F @ cg.weight, F @ exact.weight, rtol=0, atol=1e-6)
    final = s.history_.final
    assert final["cg_converged"] and final["cg_residual"] <= 1e-8 and final["ridge_used"] == 0.5
    direct = (np.sum((F @ cg.weight - data.one_hot()) ** 2) + 0.5 * np.sum(cg.weight ** 2)) / len(F)
    assert np.isclose(final["loss"], direct, rtol=1e-9)
    assert len(s.history_) == 3  # prepare, refit


def test_cg_reproduces_the_cholesky_coefficients_on_an_mnist_subset():
    # the reference problem, 3 x 3 windows at degree 2, on the centre 12 x 12 of 2,500 bundled MNIST
    # digits (1,675 features, more samples than features: the exact method is the primal Gram + Cholesky)
    from symnet.core.datasets.loaders import load

    full = load("mnist-small")
    x = np.ascontiguousarray(full.x_train[:2700, :, 8:20, 8:20])
    data = Dataset("mnist-centre", x[:2500], full.y_train[:2500], x[2500:], full.y_train[2500:2700], 10)
    tol, lam = 1e-9, 3.0
    exact = M.PolyRegModel(data.input_shape, 10, 2, 3)
    se = P.PolyRegSolver(method="exact", ridge=lam).fit(exact, data, quiet=True)
    assert se._form == "primal" and se.history_.final["dense_columns"] > 0
    for precond in ("subsample", "jacobi"):
        cg = M.PolyRegModel(data.input_shape, 10, 2, 3)
        s = P.PolyRegSolver(method="cg", ridge=lam, cg_tol=tol, precond=precond, precond_samples=500,
                            cg_iters=5000).fit(cg, data, quiet=True)
        F = cg.features(data.x_train)
        A = F.T @ F + lam * np.eye(F.shape[1])
        B = F.T @ data.one_hot()
        rel = np.linalg.norm(B - A @ cg.weight, axis=0) / np.linalg.norm(B, axis=0)
        assert s.history_.final["cg_converged"] and np.all(rel <= 1.01 * tol)
        # coefficients: the residual bound, ||W - W*|| <= ||A^-1|| ||B - A W|| (per class)
        err = np.linalg.norm(cg.weight - exact.weight, axis=0)
        bound = np.linalg.norm(B - A @ cg.weight, axis=0) / np.linalg.eigvalsh(A)[0]
        assert np.all(err <= 1.01 * bound + 1e-12)
        np.testing.assert_allclose(cg.weight, exact.weight, rtol=0, atol=1e-5 * np.abs(exact.weight).max())
        assert s.history_.final["test_acc"] == se.history_.final["test_acc"]


@pytest.mark.parametrize("precond,degree", [("subsample", 2), ("jacobi", 2), ("subsample", 3)])
def test_cg_method_chooses_the_same_ridge_as_exact(rng, precond, degree):
    # the toy has more features (343 at degree 2, 1,819 at 3) than samples: the exact method solves in dual form
    data = toy(rng, n_train=300)
    opts = dict(ridge_grid=[1e-3, 0.1, 10.0, 1e3], val_size=60, select_by="mse")
    exact = M.PolyRegModel(data.input_shape, 3, degree, 3)
    se = P.PolyRegSolver(method="exact", **opts).fit(exact, data, quiet=True)
    assert se._form == "dual"
    cg = M.PolyRegModel(data.input_shape, 3, degree, 3)
    sc = P.PolyRegSolver(method="cg", cg_tol=1e-9, cg_search_tol=1e-8, precond=precond, precond_samples=80,
                         cg_iters=3000, **opts).fit(cg, data, quiet=True)
    assert sc.history_.final["ridge_used"] == pytest.approx(se.history_.final["ridge_used"])
    assert sc.history_[2]["val_mse"] == pytest.approx(se.history_.final["val_mse"], rel=1e-6)
    F = cg.features(data.x_train)
    np.testing.assert_allclose(F @ cg.weight, F @ exact.weight, rtol=1e-6, atol=1e-7)
    assert len(sc.history_) == 4 and sc.history_.final["cg_converged"]


def test_auto_method_and_its_message(rng):
    data = toy(rng)
    with pytest.warns(SymnetWarning) as caught:
        s = P.PolyRegSolver(ridge=0.5).fit(M.PolyRegModel(data.input_shape, 3, 2, 3), data, quiet=True)
    notes = [str(w.message) for w in caught]
    # 343 features, 240 samples: the exact method in its dual form
    assert len(notes) == 1 and notes[0].startswith("solver 'polyreg': method exact (dual form: 240 x 240 kernel) "
                                                   "(auto, budget 8 GB)")
    assert "estimated memory: exact" in notes[0] and "cg" in notes[0] and "\n" not in notes[0]
    assert s.opts_["method"] == "exact" and s.history_.meta["notices"] == [notes[0][len("solver 'polyreg': "):]]
    with pytest.warns(SymnetWarning, match="method cg"):
        s = P.PolyRegSolver(ridge=0.5, memory_gb=1e-6).fit(M.PolyRegModel(data.input_shape, 3, 2, 3), data,
                                                           quiet=True)
    assert s.opts_["method"] == "cg" and s.history_.final["mem_exact_gb"] > 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a method the user chose is not announced
        P.PolyRegSolver(method="cg", ridge=0.5).fit(M.PolyRegModel(data.input_shape, 3, 2, 3), data, quiet=True)


def test_bad_cg_options(rng):
    data = toy(rng, n_train=60)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    for bad in ({"cg_tol": 0}, {"cg_iters": 0}, {"precond": "ilu"}, {"precond_samples": 1.5}, {"memory_gb": -1}):
        with pytest.raises(SolverError, match=next(iter(bad))):
            P.PolyRegSolver(method="cg", **bad).fit(model, data, quiet=True)


@pytest.mark.parametrize("steps", [1, 2])
def test_a_small_step_budget_still_solves(rng, steps):
    data = toy(rng, n_train=150)
    opts = dict(method="cg", ridge_grid=[0.1, 10.0], val_size=30, precond_samples=40, cg_tol=1e-9)
    full = M.PolyRegModel(data.input_shape, 3, 2, 3)
    P.PolyRegSolver(**opts).fit(full, data, quiet=True)
    short = M.PolyRegModel(data.input_shape, 3, 2, 3)
    s = P.PolyRegSolver(**opts).fit(short, data, steps=steps, quiet=True)
    assert s.history_.final["step"] == steps and s.history_.final["cg_converged"]
    np.testing.assert_allclose(short.weight, full.weight, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- degree-3 interaction figure
def test_top_interactions_rank_by_effect_and_skip_powers(rng, tmp_path):
    model = M.PolyRegModel((1, 4, 4), 2, degree=3, window=2)
    names = model.feature_names()
    model.weight[names.index("x[0,1,1]^3"), 0] = 9.0
    model.weight[names.index("x[0,1,1]*x[0,1,2]*x[0,2,2]"), 0] = 2.0
    model.weight[names.index("x[0,0,0]^2*x[0,1,1]"), 0] = -3.0
    X = np.ones((4, 1, 4, 4))
    X[:, 0, 0, 0] = 0.1  # x[0,0,0]^2 * x[0,1,1] = 0.01: effect -0.03
    top = polyreg_maps.top_interactions(model, 3, X, top=3, min_distinct=2)[0]
    assert [t[2] for t in top[:2]] == ["x[0,1,1]*x[0,1,2]*x[0,2,2]", "x[0,0,0]^2*x[0,1,1]"]
    assert top[0][0] == pytest.approx(2.0) and top[1][0] == pytest.approx(-0.03)
    assert polyreg_maps.top_interactions(model, 3, top=1)[0][0][2] == "x[0,1,1]^3"  # powers kept by default
    path = polyreg_maps.plot_interactions(model, 3, tmp_path / "top.png", X=X, y=np.array([0, 1, 0, 1]))
    assert path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("stop", [1, 2])
def test_resume_cg(rng, tmp_path, stop):
    data = toy(rng, n_train=200)
    opts = dict(method="cg", ridge_grid=[0.01, 1.0, 100.0], val_size=40, cg_tol=1e-10, cg_search_tol=1e-10,
                precond_samples=50, cg_iters=2000)
    straight = M.PolyRegModel(data.input_shape, 3, 2, 3)
    P.PolyRegSolver(**opts).fit(straight, data, quiet=True)
    resumed = M.PolyRegModel(data.input_shape, 3, 2, 3)
    ck = tmp_path / f"cg{stop}"
    # interrupted after `stop` steps (a callback that stops the loop), then resumed
    P.PolyRegSolver(**opts).fit(resumed, data, checkpoint_dir=ck, quiet=True,
                                callbacks=[lambda rec, solver: rec["step"] < stop])
    s = P.PolyRegSolver(**opts).fit(resumed, data, checkpoint_dir=ck, resume=True, quiet=True)
    assert s.history_.final["step"] == stop + 1 and s.history_.final["cg_converged"]
    F = resumed.features(data.x_train)
    np.testing.assert_allclose(F @ resumed.weight, F @ straight.weight, rtol=0, atol=1e-7)


def test_bagging_scores_validation_matrix_free_when_too_big_to_keep(rng, monkeypatch):
    data = toy(rng, n_train=150)
    opts = dict(method="bagging", batches=2, batch_size=40, ridge_grid=(1e-2, 1.0), val_size=30, seed=3)
    kept = M.PolyRegModel(data.input_shape, 3, 3, 2)
    a = P.PolyRegSolver(**opts).fit(kept, data, quiet=True)
    monkeypatch.setattr(PB, "VAL_FEATURES_MAX", 0)
    free = M.PolyRegModel(data.input_shape, 3, 3, 2)
    b = P.PolyRegSolver(**opts).fit(free, data, quiet=True)
    assert b._val_features is None
    np.testing.assert_allclose(free.weight, kept.weight, rtol=1e-12)
    assert [r["val_mse"] for r in b.history_.records[1:]] == pytest.approx([r["val_mse"] for r in a.history_.records[1:]])


def test_command_line_sets_no_default_time_limit_for_polyreg(capsys, tmp_path):
    code = cli.main(["train", "--dataset", "mnist-small", "--samples", "300", "--test-samples", "50",
                     "--solver", "polyreg", "-O", "degree=1", "-O", "ridge=1.0", "--quiet",
                     "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0 and "no budget given" not in out + err
    assert "symnet: note: solver 'polyreg': method exact (dual form: 300 x 300 kernel) (auto" in err
