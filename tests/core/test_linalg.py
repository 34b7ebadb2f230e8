"""Ridge linear algebra and Kronecker factors against independent oracles (lstsq, dense Kronecker products)."""

import numpy as np
import pytest
from scipy.linalg import cho_solve

from symnet.core.linalg import (RIDGE_CANDIDATES, KroneckerFactors, Ridge, best_candidate, conjugate_gradient, cross,
                                gram, parse_ridge, resolve_ridge, ridge_readout, select_ridge)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def ridge_oracle(H, Y, ridge, bias):
    """lstsq on the ridge-augmented system (no normal equations)."""
    A = np.hstack([H, np.ones((len(H), 1))]) if bias else H
    big = np.vstack([A, np.sqrt(ridge) * np.eye(A.shape[1])])
    rhs = np.vstack([Y, np.zeros((A.shape[1], Y.shape[1]))])
    return np.linalg.lstsq(big, rhs, rcond=None)[0]


@pytest.mark.parametrize("bias", [True, False])
def test_gram_in_blocks_and_in_float32(rng, bias):
    H = rng.normal(size=(50, 7)) * np.logspace(0, 3, 7)
    A = np.hstack([H, np.ones((50, 1))]) if bias else H
    np.testing.assert_allclose(gram(H, bias=bias, block=16), A.T @ A, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(gram(H, bias=bias, dtype=np.float32, block=16), A.T @ A, rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("features", ["float64", "float32"])
def test_ridge_readout_from_a_float32_gram_is_the_exact_solution(rng, bias, features):
    """Ill-conditioned features (four decades of scale, near-collinear columns): the float32 Gram alone is
    far off, the refined solution matches the float64 oracle."""
    n, F, K = 400, 30, 3
    base = rng.normal(size=(n, F))
    base[:, 1] = base[:, 0] + 1e-3 * base[:, 1]
    H = (base * np.logspace(0, 2, F) + 5.0).astype(features)
    Y = np.eye(K)[rng.integers(0, K, n)]
    ridge = 0.3
    want = ridge_oracle(H.astype(np.float64), Y, ridge, bias)
    A = np.hstack([H, np.ones((n, 1))]) if bias else H.astype(np.float64)

    def objective(S):
        return float(np.sum((A @ S - Y) ** 2) + ridge * np.sum(S * S))

    got, factor, info = ridge_readout(H, Y, ridge, bias=bias, gram_dtype=np.float32, block=64)
    assert objective(got) <= objective(want) * (1 + 1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8 * np.abs(want).max())
    assert info["cg_iters"] >= 1
    # the unrefined float32 solve is measurably off: the refinement does the work
    rough = cho_solve(factor, cross(H, Y, bias=bias), check_finite=False)
    assert objective(rough) - objective(want) > 1e3 * max(objective(got) - objective(want), 1e-16 * objective(want))
    got64, _, info64 = ridge_readout(H, Y, ridge, bias=bias, gram_dtype=np.float64)
    assert objective(got64) <= objective(want) * (1 + 1e-12)
    assert info64["cg_iters"] <= 1


def test_select_ridge_scores_each_candidate_like_a_separate_fit(rng):
    n, F, K = 300, 12, 3
    H = rng.normal(size=(n, F)) + 1.0
    Y = np.eye(K)[rng.integers(0, K, n)]
    val = np.sort(rng.choice(n, 60, replace=False))
    fit = np.setdiff1d(np.arange(n), val)
    cands = (0.01, 1.0, 100.0, 1e4)
    best, scores = select_ridge(H, Y, val, bias=True, candidates=cands, num_total=2 * n, gram_dtype=np.float64)
    want = []
    for lam in cands:  # the weight regularises an objective over 2n samples, fitted on len(fit) of them
        S = ridge_oracle(H[fit], Y[fit], lam * len(fit) / (2 * n), True)
        P = np.hstack([H[val], np.ones((len(val), 1))]) @ S
        want.append(float(np.sum((P - Y[val]) ** 2)))
    np.testing.assert_allclose(scores["val_sse"], want, rtol=1e-8)
    assert best == cands[int(np.argmin(want))]


@pytest.mark.parametrize("bias", [True, False])
def test_kronecker_solve_is_the_dense_kronecker_inverse(rng, bias):
    Co, M = 3, 5
    a = rng.normal(size=(Co, Co))
    b = rng.normal(size=(M, M))
    gamma, omega = a @ a.T, b @ b.T
    f = KroneckerFactors.from_factors(gamma, omega, 7.0, bias)
    x = rng.normal(size=Co * M)
    # the layer's flat order is the weight (Co x (M - 1) with a bias) then the bias: permute the dense system
    perm = f._from_matrix(np.arange(Co * M, dtype=float).reshape(Co, M)).astype(int)
    dense = 7.0 * np.kron(gamma, omega) + 0.3 * np.eye(Co * M)
    want = np.linalg.solve(dense[np.ix_(perm, perm)], x)
    np.testing.assert_allclose(f.solve(x, 0.3), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f._from_matrix(f._as_matrix(x)), x)
    assert np.isclose(f.mean_diagonal(), np.mean(np.diag(7.0 * np.kron(gamma, omega))))


# --------------------------------------------------------------------------- the ridge policy
@pytest.mark.parametrize("spec, auto, value", [("auto", True, None), (None, True, None), (0.0, False, 0.0),
                                               (2, False, 2.0), ("1.5", False, 1.5)])
def test_parse_ridge_reads_every_spelling(spec, auto, value):
    r = parse_ridge(spec, seed=4)
    assert r.auto is auto and r.value == value
    assert r.candidates == RIDGE_CANDIDATES and (r.seed == 4 if auto else r.seed is None)


def test_ridge_held_out_rule_and_rows():
    r = Ridge(seed=7)
    assert r.held_out_count(9) == 0 and r.held_out_count(1000) == 100 and r.held_out_count(10 ** 6) == 5000
    assert Ridge(val_size=3).held_out_count(1000) == 3
    rows = r.held_out_rows(1000)
    # the split the solvers always drew: a seeded sorted choice (seed, 1)
    want = np.sort(np.random.default_rng([7, 1]).choice(1000, 100, replace=False))
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_array_equal(Ridge().held_out_rows(50, 5), np.arange(45, 50))  # no seed: the last ones


def test_resolve_ridge_grid_walk_refine_and_stop():
    def sse_of(lam):  # unimodal in log(lam), least at 3.0
        return (np.log10(lam) - np.log10(3.0)) ** 2

    calls = []

    def score(lams):
        calls.append(list(lams))
        return [(sse_of(lam), 0.0) for lam in lams]

    grid = Ridge(candidates=(0.1, 1.0, 10.0, 100.0))
    value, report = resolve_ridge(grid, score)
    assert value == 1.0 and calls == [[0.1, 1.0, 10.0, 100.0]] and report["chosen"] == 1.0
    calls.clear()
    value, report = resolve_ridge(grid, score, search="walk", refine=True)
    assert report["ridges"][:3] == [10.0, 1.0, 0.1] and value == pytest.approx(np.sqrt(10.0))
    assert report["ridges"][3:] == pytest.approx([np.sqrt(0.1 * 1.0), np.sqrt(1.0 * 10.0)])  # midpoints by the best
    value, report = resolve_ridge(grid, score, stop=lambda: True)  # a time limit after the first fit
    assert report["ridges"] == [0.1] and value == 0.1 and report["cut"]
    assert resolve_ridge(Ridge(0.25), score) == (0.25, None)


def test_best_candidate_rules():
    lams, sse_, err = [0.1, 1.0, 10.0], [3.0, 1.0, 1.0], [0.2, 0.3, 0.1]
    assert best_candidate(lams, sse_, err) == 2  # least SSE, then error rate
    assert best_candidate(lams, [1.0, 1.0, 1.0], [0.1, 0.1, 0.1]) == 2  # full tie: the larger weight
    assert best_candidate(lams, sse_, [0.0, 0.3, 0.1], by="accuracy") == 0


# --------------------------------------------------------------------------- conjugate gradients
@pytest.mark.parametrize("k", [None, 3])
@pytest.mark.parametrize("precond", [False, True])
def test_conjugate_gradient_matches_a_direct_solve(rng, k, precond):
    F = rng.normal(size=(40, 15))
    A = F.T @ F + 0.5 * np.eye(15)
    b = rng.normal(size=15) if k is None else rng.normal(size=(15, k))
    d = np.diag(A)
    M = (lambda r: r / d) if k is None else (lambda R: R / d[:, None])
    x, res = conjugate_gradient(lambda p: A @ p, b, precond=M if precond else None, tol=1e-12, max_iter=200)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-9, atol=1e-11)
    assert res.converged and res.residual <= 1e-12 and x.shape == b.shape and res.iterations <= 200


def test_conjugate_gradient_warm_start_budget_and_scores(rng):
    F = rng.normal(size=(30, 8))
    A = F.T @ F + np.eye(8)
    B = rng.normal(size=(8, 2))
    exact = np.linalg.solve(A, B)
    x, res = conjugate_gradient(lambda P: A @ P, B, max_iter=2, tol=1e-14)
    assert res.iterations == 2 and not res.converged and len(res.history) == 3
    x2, res2 = conjugate_gradient(lambda P: (A @ P, (F @ P,)), B, x0=x, tol=1e-12, scores=True)
    np.testing.assert_allclose(x2, exact, rtol=1e-9)
    np.testing.assert_allclose(res2.scores[0], F @ x2, rtol=1e-9)  # kept up to date with x
    _, none = conjugate_gradient(lambda p: -p, np.ones(3))  # no positive curvature: stops at once
    assert none.iterations == 0 and not none.converged
