"""The prefix tree of a monomial table and the products over each sample's non-zero monomials."""

from __future__ import annotations

import numpy as np
import pytest

from symnet.core.model import polyreg as M
from symnet.core.kernels import monomials as K


def images(rng, n, shape, zero):
    x = rng.random((n,) + shape)
    x[x < zero] = 0.0
    return x


@pytest.mark.parametrize("shape,degree,window", [((1, 6, 7), 3, 3), ((2, 4, 4), 2, 2), ((5,), 3, None),
                                                 ((1, 4, 4), 1, 2)])
def test_tree_products_and_counts_match_the_explicit_features(rng, shape, degree, window):
    X2 = images(rng, 70, shape, 0.5).reshape(70, -1)
    X2[5] = 0.0
    table = M.monomial_table(shape, degree, window)
    tree = M.prefix_tree(table)
    F = M.features(X2, table)
    W = rng.normal(size=(len(table), 3))
    np.testing.assert_allclose(M.sparse_scores(X2, tree, W), F @ W, rtol=1e-12, atol=1e-12)
    per_sample, per_monomial = K.tree_nonzero_counts(X2, *tree, len(table), 3)
    np.testing.assert_array_equal(per_sample, np.count_nonzero(F, axis=1))
    np.testing.assert_array_equal(per_monomial, np.count_nonzero(F, axis=0))


def test_every_row_but_the_bias_has_its_prefix_as_parent():
    table = M.monomial_table((1, 5, 5), 3, 3)
    ptr, child, pix, root, depth = M.prefix_tree(table)
    assert depth == 3 and ptr[-1] == len(table) - 1 and sorted(child.tolist()) == [r for r in range(len(table)) if r != root]
    for r in range(len(table)):
        prefix = [i for i in table[r] if i >= 0]
        for pos in range(ptr[r], ptr[r + 1]):
            assert [i for i in table[child[pos]] if i >= 0] == prefix + [pix[pos]]


def test_model_scores_with_the_cheaper_kernel(rng, monkeypatch):
    model = M.PolyRegModel((1, 6, 6), 2, degree=3, window=3)
    model.weight[:] = rng.normal(size=model.weight.shape)
    sparse, dense = images(rng, 50, (1, 6, 6), 0.8), images(rng, 50, (1, 6, 6), 0.0)
    assert M.prefer_tree(sparse.reshape(50, -1), model.tree, model.num_features)
    assert not M.prefer_tree(dense.reshape(50, -1), model.tree, model.num_features)
    used = []
    monkeypatch.setattr(M, "sparse_scores", lambda *a: used.append(1) or np.zeros((50, 2)))
    model.forward(dense)
    assert used == []
    model.forward(sparse)
    assert used == [1]
    monkeypatch.undo()
    for x in (sparse, dense):
        np.testing.assert_allclose(model.forward(x), model.features(x) @ model.weight, rtol=1e-12, atol=1e-12)
    assert model.copy().tree is model.tree
