"""Tests of the polynomial-regression backend against brute force and closed forms."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from symnet.core import linalg as L
from symnet.core.model import polyreg as M
from symnet.core.kernels import monomials as MK
from symnet.solvers import polyreg as P
from symnet.solvers.polyreg import bagging as PB
from symnet.solvers.polyreg import explicit as PE
from symnet.core.kernels import polyreg as K
from symnet.core.datasets import Dataset
from symnet.core.errors import DataError, ModelError, SolverError, SymnetWarning


# --------------------------------------------------------------------------- oracles
def brute_monomials(shape, degree, window):
    """Every multiset of positions (as a sorted tuple of flat indices) whose rows and columns fit the window."""
    channels, height, width = shape
    sh, sw = (window, window) if window is not None else (height, width)
    pos = [(c, h, w) for c in range(channels) for h in range(height) for w in range(width)]
    found = {()}
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(len(pos)), d):
            rows = [pos[i][1] for i in combo]
            cols = [pos[i][2] for i in combo]
            if max(rows) - min(rows) < sh and max(cols) - min(cols) < sw:
                found.add(combo)
    return found


def table_as_set(table):
    return {tuple(int(i) for i in row if i >= 0) for row in table}


def naive_features(X2, monomials):
    """Feature matrix by explicit products, one monomial at a time (numpy only)."""
    return np.column_stack([np.prod(X2[:, list(m)], axis=1) if m else np.ones(len(X2)) for m in monomials])


def closed_form_ridge(F, Y, lam):
    return np.linalg.solve(F.T @ F + lam * np.eye(F.shape[1]), F.T @ Y)


def toy_data(rng, n_train=160, n_test=60, shape=(1, 5, 5), classes=3, zero_border=False):
    x = rng.random((n_train + n_test,) + shape)
    if zero_border:
        x[:, :, 0, :] = 0.0
        x[:, :, :, -1] = 0.0
        x[x < 0.3] = 0.0  # sparse inputs: some monomials are zero in most samples
    score = x.reshape(len(x), -1)
    y = (np.argmax(score[:, :classes] * score[:, 1:classes + 1], axis=1)).astype(int)
    return Dataset("toy", x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes)


# --------------------------------------------------------------------------- the monomial table
def test_mnist_feature_count_matches_brute_force():
    table = M.monomial_table((1, 28, 28), 2, 3)
    assert len(table) == 10155
    # brute force: all unordered pairs (squares included) whose bounding box fits 3 x 3
    rows, cols = np.divmod(np.arange(784), 28)
    pairs = {frozenset(((i, 2),)) if i == j else frozenset(((i, 1), (j, 1)))
             for i, j in itertools.combinations_with_replacement(range(784), 2)
             if abs(rows[i] - rows[j]) < 3 and abs(cols[i] - cols[j]) < 3}
    assert len(pairs) == 9370
    assert 1 + 784 + len(pairs) == len(table)
    assert table_as_set(table) == brute_monomials((1, 28, 28), 1, 3) | {
        tuple(sorted(i for i, e in p for _ in range(e))) for p in pairs}


@pytest.mark.parametrize("shape,degree,window", [
    ((1, 6, 7), 3, 3), ((1, 5, 5), 3, 2), ((1, 6, 6), 2, 4), ((1, 4, 5), 2, 1),
    ((2, 4, 4), 2, 2), ((3, 3, 4), 3, 2), ((1, 4, 4), 3, None), ((1, 3, 3), 4, 2),
])
def test_table_matches_brute_force(shape, degree, window):
    table = M.monomial_table(shape, degree, window)
    assert table.dtype == np.int64 and table.shape[1] == degree
    assert table_as_set(table) == brute_monomials(shape, degree, window)
    assert len(table_as_set(table)) == len(table)  # no duplicates
    assert np.all(table[0] == -1)
    degrees = np.count_nonzero(table >= 0, axis=1)
    assert np.all(np.diff(degrees) >= 0)  # grouped by degree


def test_table_of_vectors_and_rectangular_windows():
    assert M.monomial_count((5,), 2, 2) == 1 + 5 + 5 + 4  # squares and neighbours on a line
    assert M.monomial_count((4,), 2, None) == 1 + 4 + 10
    rect = M.monomial_table((1, 4, 5), 2, (1, 3))
    assert table_as_set(rect) == {m for m in brute_monomials((1, 4, 5), 2, 3)
                                  if len({i // 5 for i in m}) <= 1}


def test_bad_table_arguments():
    with pytest.raises(ModelError, match="degree"):
        M.monomial_table((1, 4, 4), 0, 3)
    with pytest.raises(ModelError, match="window"):
        M.monomial_table((1, 4, 4), 2, 0)
    with pytest.raises(ModelError, match="window"):
        M.monomial_table((1, 4, 4), 2, "big")
    with pytest.raises(ModelError, match="input shape"):
        M.monomial_table((1, 0, 4), 2, 3)
    with pytest.raises(ModelError, match="exceed|more than"):
        M.monomial_table((1, 64, 64), 4, None)


# --------------------------------------------------------------------------- feature values
@pytest.mark.parametrize("shape,degree,window", [((1, 5, 5), 2, 3), ((2, 4, 4), 3, 2), ((6,), 3, None)])
def test_features_match_naive_products(rng, shape, degree, window):
    X = rng.random((37,) + shape)
    X[X < 0.2] = 0.0
    table = M.monomial_table(shape, degree, window)
    monomials = [tuple(int(i) for i in row if i >= 0) for row in table]
    expected = naive_features(X.reshape(len(X), -1), monomials)
    model = M.PolyRegModel(shape, 2, degree, window)
    np.testing.assert_allclose(model.features(X), expected, rtol=1e-14, atol=0)
    # chunked scores equal the product of the naive matrix with the weights
    W = rng.normal(size=(len(table), 4))
    np.testing.assert_allclose(M.scores(X.reshape(len(X), -1), table, W), expected @ W, rtol=1e-12)


def test_nonzero_counts_match_naive(rng):
    X = rng.random((50, 1, 4, 4))
    X[X < 0.5] = 0.0
    table = M.monomial_table((1, 4, 4), 2, 2)
    F = naive_features(X.reshape(50, -1), [tuple(i for i in r if i >= 0) for r in table])
    counts = MK.monomial_nonzero_counts(np.ascontiguousarray(X.reshape(50, -1).T), table)[0]
    np.testing.assert_array_equal(counts, np.count_nonzero(F, axis=0))


def test_feature_names_readable():
    model = M.PolyRegModel((1, 3, 3), 2, degree=3, window=2)
    names = model.feature_names()
    assert names[0] == "1" and names[1] == "x[0,0,0]"
    assert "x[0,1,1]*x[0,1,2]" in names and "x[0,0,0]^2" in names and "x[0,0,0]^2*x[0,0,1]" in names
    assert "x[0,0,0]*x[0,0,2]" not in names  # columns 0 and 2 do not fit a 2-wide window
    assert len(set(names)) == len(names) == model.num_features
    assert M.PolyRegModel((3,), 2, 2, None).feature_names()[-1] == "x[2]^2"


# --------------------------------------------------------------------------- linear algebra
@pytest.mark.parametrize("dense", [None, 0, 7, 1000])
def test_gram_accumulated_in_chunks_equals_full_product(rng, dense):
    X = rng.random((90, 16))
    X[X < 0.6] = 0.0
    table = M.monomial_table((1, 4, 4), 2, 2)
    F = M.features(X, table)
    counts = np.count_nonzero(F, axis=0)
    order = np.argsort(-counts, kind="stable")
    split = P.dense_split(counts[order], 90) if dense is None else dense
    Y = rng.random((90, 3))
    acc = P.GramAccumulator(table, order, split, 3)
    for s, e in [(0, 7), (7, 40), (40, 41), (41, 90)]:
        acc.add(X[s:e], Y[s:e])
    Fo = F[:, order]
    G = acc.gram()
    np.testing.assert_allclose(np.triu(G), np.triu(Fo.T @ Fo), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(acc.XtY, Fo.T @ Y, rtol=1e-12)
    assert acc.count == 90 and np.isclose(acc.yy, np.sum(Y * Y))


def test_sparse_cross_kernel_upper_triangle(rng):
    ft = rng.random((21, 30))
    ft[ft < 0.7] = 0.0
    for first in (0, 5, 13, 20):
        ptr, idx, vals = K.sparse_columns(ft, first)
        acc = np.zeros((21, 21 - first))
        K.add_sparse_cross(ft, first, ptr, idx, vals, acc)
        full = ft @ ft[first:].T
        upper = np.arange(21)[:, None] <= first + np.arange(21 - first)[None, :]
        np.testing.assert_allclose(acc[upper], full[upper], rtol=1e-13, atol=1e-15)
        filled = acc != 0  # anything below the diagonal that is filled is the symmetric value
        np.testing.assert_allclose(acc[filled & ~upper], full[filled & ~upper], rtol=1e-13)


def test_ridge_solve_closed_form_and_min_norm(rng):
    F = rng.random((30, 8))
    Y = rng.random((30, 2))
    G = np.triu(F.T @ F)  # only the upper triangle is read
    for lam in (0.0, 1e-3, 2.5):
        np.testing.assert_allclose(L.ridge_solve(G, F.T @ Y, lam), closed_form_ridge(F, Y, lam), rtol=1e-8)
    # singular G at ridge 0: the minimum-norm least-squares solution
    Fs = np.column_stack([F, F[:, :2]])
    W = L.ridge_solve(np.triu(Fs.T @ Fs), Fs.T @ Y, 0.0)
    np.testing.assert_allclose(W, np.linalg.lstsq(Fs, Y, rcond=None)[0], rtol=1e-6, atol=1e-8)


def test_dual_equals_primal_ridge(rng):
    F = rng.random((12, 40))  # fewer samples than features
    Y = rng.random((12, 3))
    for lam in (1e-2, 1.0):
        np.testing.assert_allclose(L.ridge_dual(F, Y, lam), closed_form_ridge(F, Y, lam), rtol=1e-8, atol=1e-10)
    # ridge 0: the interpolating minimum-norm solution
    np.testing.assert_allclose(L.ridge_dual(F, Y, 0.0), np.linalg.lstsq(F, Y, rcond=None)[0], rtol=1e-8, atol=1e-10)


def test_subset_fit_dual_and_primal_agree(rng):
    data = toy_data(rng, n_train=100)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    X2 = data.x_train[:20].reshape(20, -1)
    Y = data.one_hot()[:20]
    F = model.features(data.x_train[:20])
    assert F.shape[1] > 20  # more features than rows: the dual branch
    np.testing.assert_allclose(P.fit_subset(X2, Y, model.table, 0.5), closed_form_ridge(F, Y, 0.5), rtol=1e-8,
                               atol=1e-10)
    small = model.table[:15]  # 15 features, 20 rows: the primal branch
    np.testing.assert_allclose(P.fit_subset(X2, Y, small, 0.5), closed_form_ridge(F[:, :15], Y, 0.5), rtol=1e-8)
    path = P.fit_subset(X2, Y, model.table, (0.5, 2.0))  # several penalties from one Gram
    np.testing.assert_allclose(path[1], closed_form_ridge(F, Y, 2.0), rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- the solver
def test_exact_ridge_zero_equals_lstsq(rng):
    data = toy_data(rng)
    model = M.PolyRegModel(data.input_shape, 3, degree=2, window=2)
    s = P.PolyRegSolver(ridge=0.0, chunk_size=33, gram_steps=3).fit(model, data, quiet=True)
    F = model.features(data.x_train)
    assert F.shape[1] < len(F)  # full column rank
    W = np.linalg.lstsq(F, data.one_hot(), rcond=None)[0]
    np.testing.assert_allclose(model.weight, W, rtol=1e-8, atol=1e-8)
    assert len(s.history_) == 4 and s.history_.final["ridge_used"] == 0.0


@pytest.mark.parametrize("dense", [None, 0, 12])
def test_exact_ridge_equals_closed_form_with_sparse_inputs(rng, dense):
    data = toy_data(rng, zero_border=True)
    model = M.PolyRegModel(data.input_shape, 3, degree=2, window=3)
    lam = 0.3
    s = P.PolyRegSolver(ridge=lam, chunk_size=50, dense_columns=dense).fit(model, data, quiet=True)
    F = model.features(data.x_train)
    W = closed_form_ridge(F, data.one_hot(), lam)
    np.testing.assert_allclose(model.weight, W, rtol=1e-8, atol=1e-9)
    dropped = ~F.any(axis=0)
    assert dropped.sum() > 0 and np.all(model.weight[dropped] == 0)
    assert s.history_.final["features_used"] == model.num_features - dropped.sum()
    # the loss from the accumulated moments equals the direct objective
    direct = (np.sum((F @ model.weight - data.one_hot()) ** 2) + lam * np.sum(model.weight ** 2)) / len(F)
    assert np.isclose(s.history_.final["loss"], direct, rtol=1e-9)
    assert np.isclose(s.objective(data.x_train, data.one_hot()), direct, rtol=1e-9)


@pytest.mark.parametrize("select_by,refine,search", [("mse", True, "grid"), ("accuracy", False, "grid"),
                                                     ("mse", False, "walk"), ("mse", True, "walk")])
def test_exact_chooses_ridge_on_validation_and_refits(rng, select_by, refine, search):
    data = toy_data(rng, n_train=200)
    grid = [1e-4, 1e-3, 0.1, 10.0, 1e3]
    model = M.PolyRegModel(data.input_shape, 3, degree=2, window=2)
    s = P.PolyRegSolver(ridge_grid=grid, val_size=50, chunk_size=64, select_by=select_by, ridge_search=search,
                        refine_ridge=refine).fit(model, data, quiet=True)
    F = model.features(data.x_train)
    Y = data.one_hot()

    def figures(lam):
        sv = F[150:] @ closed_form_ridge(F[:150], Y[:150], lam)
        return np.mean(np.argmax(sv, 1) == data.y_train[150:]), np.sum((sv - Y[150:]) ** 2) / 50

    def pick(candidates):
        if select_by == "mse":
            return min(candidates, key=lambda lam: (figures(lam)[1], -figures(lam)[0]))
        return max(candidates, key=lambda lam: (figures(lam)[0], -figures(lam)[1]))

    best = pick(grid)
    if search == "walk":  # visits the middle and then neighbours while they improve
        i = best_i = 2
        for step in (-1, 1):
            j = i + step
            while 0 <= j < len(grid) and pick([grid[best_i], grid[j]]) == grid[j]:
                best_i, j = j, j + step
            if best_i != i:
                break
        assert pick(grid) == grid[best_i]  # the toy validation error has one minimum over the grid
    if refine:
        i = grid.index(best)
        best = pick([best] + [np.sqrt(best * grid[j]) for j in (i - 1, i + 1) if 0 <= j < len(grid)])
    final = s.history_.final
    assert np.isclose(final["ridge_used"], best * 200 / 150)
    assert np.isclose(final["val_acc"], figures(best)[0]) and np.isclose(final["val_mse"], figures(best)[1])
    np.testing.assert_allclose(model.weight, closed_form_ridge(F, Y, best * 200 / 150), rtol=1e-7, atol=1e-9)
    assert final["samples"] == 200 and final["peak_rss_mb"] > 0


# --------------------------------------------------------------------------- few samples: the dual form
def test_kernel_matrix_and_dual_weights_match_the_features(rng, monkeypatch):
    X2 = rng.random((37, 25))
    X2[X2 < 0.3] = 0.0
    table = M.monomial_table((1, 5, 5), 3, 3)
    F = M.features(X2, table)
    monkeypatch.setattr(PE, "KERNEL_ROWS", 100)  # several blocks of features
    calls = []
    Kmat, used = P.kernel_matrix(X2, table, lambda done, total, sec: calls.append((done, total)))
    np.testing.assert_allclose(np.triu(Kmat), np.triu(F @ F.T), rtol=1e-12)
    assert used == np.count_nonzero(F.any(axis=0))
    assert calls[-1] == (len(table), len(table)) and [c[0] for c in calls] == sorted(c[0] for c in calls)
    PE._fill_lower(Kmat)
    np.testing.assert_allclose(Kmat, F @ F.T, rtol=1e-12)
    alpha = rng.normal(size=(37, 3))
    np.testing.assert_allclose(P.dual_weights(X2, table, alpha), F.T @ alpha, rtol=1e-12, atol=1e-12)
    assert P.exact_form(37, used) == "dual" and P.exact_form(5000, used) == "primal"


@pytest.mark.parametrize("lam", [0.3, 0.0])
def test_exact_with_few_samples_solves_the_dual_form(rng, lam):
    data = toy_data(rng, n_train=40, shape=(1, 5, 5))
    model = M.PolyRegModel(data.input_shape, 3, degree=3, window=3)  # 1,112 features, 40 samples
    s = P.PolyRegSolver(method="exact", ridge=lam).fit(model, data, quiet=True)
    assert s._form == "dual" and len(s.history_) == 2  # one step
    F = model.features(data.x_train)
    Y = data.one_hot()
    # the primal closed form (ridge 0: the minimum-norm interpolant)
    W = closed_form_ridge(F, Y, lam) if lam else np.linalg.pinv(F) @ Y
    np.testing.assert_allclose(model.weight, W, rtol=1e-7, atol=1e-9)
    final = s.history_.final
    direct = (np.sum((F @ model.weight - Y) ** 2) + lam * np.sum(model.weight ** 2)) / len(F)
    assert np.isclose(final["loss"], direct, rtol=1e-8, atol=1e-12)
    assert final["features_used"] == np.count_nonzero(F.any(axis=0)) and final["ridge_used"] == lam


def test_dual_form_chooses_the_ridge_on_validation_as_the_closed_form_does(rng):
    data = toy_data(rng, n_train=60)
    grid = [1e-3, 0.1, 10.0, 1e3]
    model = M.PolyRegModel(data.input_shape, 3, degree=3, window=3)
    s = P.PolyRegSolver(method="exact", ridge_grid=grid, val_size=15, ridge_search="grid",
                        refine_ridge=False).fit(model, data, quiet=True)
    assert s._form == "dual"
    F = model.features(data.x_train)
    Y = data.one_hot()
    mse = {lam: np.sum((F[45:] @ closed_form_ridge(F[:45], Y[:45], lam) - Y[45:]) ** 2) / 15 for lam in grid}
    best = min(grid, key=mse.get)
    final = s.history_.final
    assert np.isclose(final["ridge_used"], best * 60 / 45) and np.isclose(final["val_mse"], mse[best])
    np.testing.assert_allclose(model.weight, closed_form_ridge(F, Y, best * 60 / 45), rtol=1e-7, atol=1e-9)


def test_auto_announces_the_dual_form_and_its_memory(rng):
    data = toy_data(rng, n_train=40)
    with pytest.warns(SymnetWarning, match=r"method exact \(dual form: 40 x 40 kernel\).*exact 0\.00 GB \(dual\)"):
        s = P.PolyRegSolver(ridge=1.0).fit(M.PolyRegModel(data.input_shape, 3, 3, 3), data, quiet=True)
    assert s.opts_["method"] == "exact" and s._form == "dual"
    assert s.history_.final["mem_exact_gb"] if "mem_exact_gb" in s.history_.final else True


def test_few_samples_on_the_command_line_finish_in_one_solved_step(tmp_path, capsys):
    from symnet.frontend import cli

    code = cli.main(["train", "--solver", "polyreg", "--samples", "500", "--test-samples", "200",
                     "--time-limit", "20", "--quiet", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0 and "dual form: 500 x 500 kernel" in err and "unsolved" not in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    records = history["records"]
    assert len(records) == 2 and records[-1]["loss"] < records[0]["loss"] and records[-1]["test_acc"] > 0.6


# --------------------------------------------------------------------------- budgets
def stop_time_after(step):
    """A callback that makes the time limit run out after ``step`` steps (as if the step had been slow)."""
    def callback(record, solver):
        if record["step"] == step:
            solver.deadline.end_now()
    return callback


def test_a_budget_too_small_for_any_step_warns_of_the_zero_model(rng):
    data = toy_data(rng)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    with pytest.warns(SymnetWarning, match=r"spent before the first step .* so the model was not trained"):
        s = P.PolyRegSolver(method="exact").fit(model, data, time_limit=1e-9, quiet=True)
    assert not model.weight.any() and s.history_.final["step"] == 0
    assert any("not trained" in note for note in s.history_.meta["notices"])


def test_a_step_budget_that_ends_before_the_solve_warns_of_the_zero_model(rng):
    data = toy_data(rng, n_train=200)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    with pytest.warns(SymnetWarning, match=r"the step budget \(0\) ended the fit before its solve: the model is "
                                           r"unsolved \(all coefficients zero\)"):
        s = P.PolyRegSolver(method="exact").fit(model, data, steps=0, quiet=True)
    assert not model.weight.any() and not s._solved


def test_exact_cut_by_the_time_limit_solves_with_the_samples_it_has(rng):
    data = toy_data(rng, n_train=200)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    with pytest.warns(SymnetWarning) as caught:
        s = P.PolyRegSolver(method="exact", ridge=0.5, chunk_size=20, gram_steps=4).fit(
            model, data, time_limit=1e6, quiet=True, callbacks=[stop_time_after(1)])
    notes = " ".join(str(w.message) for w in caught)
    assert "keeping back" in notes and "after 40 of 200 samples" in notes
    final = s.history_.final
    assert final["step"] == 2 and final["samples"] == 40 and model.weight.any()  # solved, not zero
    F = model.features(data.x_train[:40])  # the first group of chunks: 2 of 20 samples
    np.testing.assert_allclose(model.weight, closed_form_ridge(F, data.one_hot()[:40], 0.5), rtol=1e-7, atol=1e-9)


def test_exact_says_when_its_closing_solve_will_not_fit_the_time_limit(rng, monkeypatch):
    data = toy_data(rng)
    monkeypatch.setattr(PE, "cholesky_seconds", lambda p: 1e6)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    with pytest.warns(SymnetWarning, match=r"need about 2000000 s here \(estimated\); a solve cannot be cut"):
        s = P.PolyRegSolver(method="exact").fit(model, data, time_limit=3600, quiet=True)
    assert s._solved and model.weight.any()


def test_dual_kernel_that_will_not_fit_is_announced(rng, monkeypatch):
    data = toy_data(rng, n_train=40)
    real = P.kernel_matrix

    def slow(X2, table, check=None):  # as if its first block of features had taken an hour
        check(1, len(table), 3600.0)
        return real(X2, table)

    monkeypatch.setattr(PE, "kernel_matrix", slow)
    with pytest.warns(SymnetWarning, match=r"kernel over 1,112 features needs about .* cannot be cut"):
        s = P.PolyRegSolver(method="exact", ridge=1.0).fit(M.PolyRegModel(data.input_shape, 3, 3, 3), data,
                                                            time_limit=600, quiet=True)
    assert s._solved and s.history_.final["step"] == 1


@pytest.mark.parametrize("after", [1, 2])
def test_cg_cut_by_the_time_limit_ends_with_a_model_and_says_how_far_it_got(rng, after):
    data = toy_data(rng, n_train=200)
    opts = dict(method="cg", ridge_grid=[0.1, 10.0], val_size=40, precond_samples=40, cg_tol=1e-13)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    with pytest.warns(SymnetWarning) as caught:
        s = P.PolyRegSolver(**opts).fit(model, data, time_limit=1e6, quiet=True, callbacks=[stop_time_after(after)])
    notes = " ".join(str(w.message) for w in caught)
    final = s.history_.final
    assert final["step"] == after + 1 and s._solved  # one more step past the limit, which ends the fit
    if after == 1:  # out of time before the search: no search, and no time for a single CG iteration
        assert "before the search for the ridge; using the middle of the grid, 10" in notes
        assert "the model is zero (unsolved)" in notes and not model.weight.any()
    else:  # after the search: the refit's start, its projection, is the model
        assert "stopped the refit's CG from the search's projection, after 0 iteration(s)" in notes
        assert "partial solve" in notes and model.weight.any() and final["test_acc"] > 0.5


def test_bagging_averages_batch_fits(rng):
    data = toy_data(rng, n_train=120)
    model = M.PolyRegModel(data.input_shape, 3, degree=2, window=2)
    s = P.PolyRegSolver(method="bagging", ridge=0.1, batches=4, batch_size=30, seed=7).fit(model, data, quiet=True)
    h = s.history_
    assert [r["step"] for r in h] == [0, 1, 2, 3, 4]
    assert all("batch_test_acc" in r for r in h.records[1:])
    draw = np.random.default_rng(7)
    F = model.features(data.x_train)
    fits = []
    for _ in range(4):
        idx = np.sort(draw.choice(120, 30, replace=False))
        fits.append(closed_form_ridge(F[idx], data.one_hot()[idx], 0.1))
    np.testing.assert_allclose(model.weight, np.mean(fits, axis=0), rtol=1e-8, atol=1e-10)
    acc = np.mean(np.argmax(model.features(data.x_test) @ fits[-1], 1) == data.y_test)
    assert np.isclose(h.final["batch_test_acc"], acc)


def test_bagging_at_degree_three_solves_each_subset_in_dual_form(rng, monkeypatch):
    data = toy_data(rng, n_train=90)
    model = M.PolyRegModel(data.input_shape, 3, degree=3, window=3)  # 1,112 features, subsets of 30
    forms = []
    real = P.ridge_solve

    def spy(G, B, lam):
        forms.append(len(G))
        return real(G, B, lam)

    monkeypatch.setattr(PB, "ridge_solve", spy)
    seen = []
    s = P.PolyRegSolver(method="bagging", ridge=0.5, batches=3, batch_size=30, seed=2)
    real_draw = s._draw_subset  # the subsets drawn, in order (each is fitted once, here or on a cluster)
    s._draw_subset = lambda rng: seen.append(real_draw(rng)) or seen[-1]
    s.fit(model, data, quiet=True)
    assert forms == [30, 30, 30]  # one 30 x 30 kernel per subset, never the 1,112 x 1,112 Gram
    F, Y = model.features(data.x_train), data.one_hot()
    average = np.mean([closed_form_ridge(F[idx], Y[idx], 0.5) for idx in seen], axis=0)
    np.testing.assert_allclose(model.weight, average, rtol=1e-7, atol=1e-10)


def test_bagging_keeps_the_average_best_on_validation(rng):
    data = toy_data(rng, n_train=150)
    grid = (1e-2, 1.0)
    s = P.PolyRegSolver(method="bagging", batches=3, batch_size=40, ridge_grid=grid, val_size=30, seed=3)
    model = M.PolyRegModel(data.input_shape, 3, 2, 2)
    s.fit(model, data, quiet=True)
    candidates = [1e-2, 0.1, 1.0]  # the grid and its geometric midpoint
    draw = np.random.default_rng(3)
    F = model.features(data.x_train)
    Y = data.one_hot()
    sums = {lam: 0.0 for lam in candidates}
    for step in range(1, 4):
        idx = np.sort(draw.choice(120, 40, replace=False))  # drawn outside the last 30 samples
        for lam in candidates:
            sums[lam] = sums[lam] + closed_form_ridge(F[idx], Y[idx], lam)
        mse = {lam: np.sum((F[120:] @ sums[lam] / step - Y[120:]) ** 2) / 30 for lam in candidates}
        best = min(candidates, key=lambda lam: mse[lam])
        rec = s.history_[step]
        assert np.isclose(rec["ridge_used"], best) and np.isclose(rec["val_mse"], mse[best])
    np.testing.assert_allclose(model.weight, sums[best] / 3, rtol=1e-7, atol=1e-9)


def test_ridge_path_matches_closed_form(rng):
    for n, p in ((12, 30), (30, 12)):  # dual and primal
        F = rng.random((n, p))
        Y = rng.random((n, 2))
        path = L.ridge_path(F, Y, [0.0, 0.05, 3.0])
        for W, lam in zip(path[1:], (0.05, 3.0)):
            np.testing.assert_allclose(W, closed_form_ridge(F, Y, lam), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(path[0], np.linalg.lstsq(F, Y, rcond=None)[0], rtol=1e-6, atol=1e-8)


def test_solver_builds_model_and_checks_options(rng):
    data = toy_data(rng, n_train=80)
    s = P.PolyRegSolver(ridge=1.0, degree=1, window=2)
    dummy = M.PolyRegModel(data.input_shape, 3, degree=1, window=2)
    s.fit(dummy, data, quiet=True)
    assert s.model_.degree == 1
    with pytest.raises(SolverError, match="contradicts"):
        P.PolyRegSolver(degree=3).fit(M.PolyRegModel(data.input_shape, 3, 2, 2), data, quiet=True)
    with pytest.raises(SolverError, match="method"):
        P.PolyRegSolver(method="sgd").fit(dummy, data, quiet=True)
    with pytest.raises(SolverError, match="ridge"):
        P.PolyRegSolver(ridge=-1.0).fit(dummy, data, quiet=True)
    with pytest.raises(SolverError, match="ridge_search"):
        P.PolyRegSolver(ridge_search="random").fit(dummy, data, quiet=True)
    with pytest.raises(SolverError, match="select_by"):
        P.PolyRegSolver(select_by="auc").fit(dummy, data, quiet=True)
    with pytest.raises(SolverError, match="no option"):
        P.PolyRegSolver(lr=0.1).fit(dummy, data, quiet=True)
    with pytest.raises(SolverError, match="inputs"):
        P.PolyRegSolver().fit(M.PolyRegModel((1, 4, 4), 3), data, quiet=True)
    with pytest.raises(SolverError, match="too many"):
        big = Dataset("big", np.zeros((4, 1, 40, 40)), np.array([0, 1, 0, 1]), np.zeros((0, 1, 40, 40)),
                      np.zeros(0, int), 2)
        P.PolyRegSolver(degree=3, method="exact").fit(M.PolyRegModel((1, 40, 40), 2, 3, 3), big, quiet=True)
    with pytest.raises(SolverError, match="batch_size"):
        P.PolyRegSolver(method="bagging", ridge=1.0, batch_size=500).fit(dummy, data, quiet=True)


def test_registered():
    import symnet.solvers as solvers

    assert solvers.get("polyreg") is P.PolyRegSolver


# --------------------------------------------------------------------------- the model
def test_model_protocol_and_spec_roundtrip(rng, tmp_path):
    model = M.PolyRegModel((2, 4, 4), 3, degree=2, window=[2, 3])
    theta = rng.normal(size=model.num_params)
    model.set_flat(theta)
    np.testing.assert_array_equal(model.get_flat(), theta)
    (name, arr), = model.parameters()
    assert name == "polyreg.weight" and arr.shape == (model.num_features, 3)
    spec = json.loads(json.dumps(model.spec()))
    again = M.PolyRegModel.from_spec(spec)
    assert again.spec() == model.spec() and np.array_equal(again.table, model.table)
    twin = model.copy()
    twin.weight[0, 0] += 1.0
    assert model.weight[0, 0] == theta[0]
    X = rng.random((5, 2, 4, 4))
    np.testing.assert_allclose(model.forward(X), model.features(X) @ model.weight, rtol=1e-12)
    with pytest.raises(DataError, match="shape"):
        model.forward(rng.random((5, 1, 4, 4)))
    with pytest.raises(ModelError, match="polyreg"):
        M.PolyRegModel.from_spec({"type": "sequential"})
    from symnet.core.model.saving import load_model, save_model

    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.weight, model.weight)


def test_loss_and_grad_matches_finite_differences(rng):
    model = M.PolyRegModel((1, 3, 3), 2, degree=2, window=2)
    model.set_flat(rng.normal(size=model.num_params) * 0.1)
    X = rng.random((7, 1, 3, 3))
    Y = np.eye(2)[rng.integers(0, 2, 7)]
    f, g = model.loss_and_grad(X, Y, ridge=0.2)
    F = model.features(X)
    assert np.isclose(f, np.sum((F @ model.weight - Y) ** 2) + 0.2 * np.sum(model.weight ** 2))
    np.testing.assert_allclose(g, (2 * F.T @ (F @ model.weight - Y) + 0.4 * model.weight).ravel(), rtol=1e-10)


def test_resume_exact_and_bagging(rng, tmp_path):
    data = toy_data(rng, n_train=200)  # more samples than the 123 features: the primal form, in steps
    for opts in ({"ridge": 0.2, "chunk_size": 20, "gram_steps": 3},
                 {"method": "bagging", "ridge": 0.2, "batches": 4, "batch_size": 25}):
        straight = M.PolyRegModel(data.input_shape, 3, 2, 2)
        P.PolyRegSolver(**opts).fit(straight, data, quiet=True)
        resumed = M.PolyRegModel(data.input_shape, 3, 2, 2)
        ck = tmp_path / opts.get("method", "exact")
        P.PolyRegSolver(**opts).fit(resumed, data, steps=2, checkpoint_dir=ck, quiet=True)
        s = P.PolyRegSolver(**opts).fit(resumed, data, checkpoint_dir=ck, resume=True, quiet=True)
        np.testing.assert_allclose(resumed.weight, straight.weight, rtol=1e-10, atol=1e-12)
        assert s.history_.final["step"] == (3 if "gram_steps" in opts else 4)


# --------------------------------------------------------------------------- coefficient maps
def test_degree_maps_place_coefficients_at_centroids():
    from symnet.frontend import polyreg_maps

    model = M.PolyRegModel((1, 4, 4), 2, degree=2, window=3)
    names = model.feature_names()
    model.weight[names.index("x[0,1,2]"), 0] = 3.0
    model.weight[names.index("x[0,1,1]^2"), 1] = 5.0               # its own pixel
    model.weight[names.index("x[0,0,0]*x[0,0,2]"), 0] = 2.0        # midpoint (0, 1) exactly
    model.weight[names.index("x[0,1,1]*x[0,1,2]"), 0] = 4.0        # half-way: 2 to (1,1), 2 to (1,2)
    model.weight[names.index("x[0,2,2]*x[0,3,3]"), 1] = -8.0       # centre of four pixels: -2 each
    m1 = polyreg_maps.degree_map(model, 1)
    m2 = polyreg_maps.degree_map(model, 2)
    expected1 = np.zeros((2, 4, 4))
    expected1[0, 1, 2] = 3.0
    expected2 = np.zeros((2, 4, 4))
    expected2[1, 1, 1] = 5.0
    expected2[0, 0, 1] = 2.0
    expected2[0, 1, 1] = expected2[0, 1, 2] = 2.0
    expected2[1, 2:4, 2:4] = -2.0
    np.testing.assert_allclose(m1, expected1)
    np.testing.assert_allclose(m2, expected2)
    with pytest.raises(ModelError, match="degree"):
        polyreg_maps.degree_map(model, 3)


def test_degree_map_totals_and_pngs(rng, tmp_path):
    from symnet.frontend import polyreg_maps

    model = M.PolyRegModel((2, 5, 5), 3, degree=3, window=3)
    model.set_flat(rng.normal(size=model.num_params))
    degrees = model.feature_degrees()
    for d in (1, 2, 3):
        np.testing.assert_allclose(polyreg_maps.degree_map(model, d).sum(axis=(1, 2)),
                                   model.weight[degrees == d].sum(axis=0), rtol=1e-10)
    paths = polyreg_maps.save_maps(model, tmp_path, prefix="toy")
    assert [p.name for p in paths] == ["toy_degree1.png", "toy_degree2.png", "toy_degree3.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_cholesky_seconds_ignores_a_slow_first_call(monkeypatch):
    """A fresh process's first LAPACK call is slow; scaled by (p / m)^3 it must not become the estimate."""
    import symnet.solvers.polyreg as P

    calls = []
    real = P.ridge_solve

    def slow_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(PE, "ridge_solve", slow_first)
    p = 4 * P.CHOLESKY_PROBE
    estimate = P.cholesky_seconds(p)
    assert len(calls) == 3 and estimate < 0.5 * 64  # the slow call alone would give at least 32 s
