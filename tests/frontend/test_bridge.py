"""Tests of the network <-> polynomial bridge against symbolic expansion, forward passes and closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import symengine as se
import sympy

from symnet.core.model.polyreg import PolyRegModel, features, monomial_table
from symnet.frontend import bridge
from symnet.core.model import presets as models
from symnet.core.errors import ModelError
from symnet.core.layers import AvgPool2d, Conv2d, Flatten, Linear, Poly, Square
from symnet.core.model import Sequential


# --------------------------------------------------------------------------- tiny networks
def randomise(model, seed):
    """Every parameter (biases included) drawn at random, so every term of the expansion is exercised."""
    rng = np.random.default_rng(seed)
    model.set_flat(rng.normal(0.0, 0.8, model.num_params))
    return model


def networks():
    return {
        "mlp-deg2": randomise(Sequential(Linear(3, 2), Poly([0.3, -0.7, 1.1]), Linear(2, 2), input_shape=(3,)), 1),
        "mlp-deg3": randomise(Sequential(Linear(3, 2), Poly([0.2, 0.5, -0.4, 0.9]), Linear(2, 3),
                                         input_shape=(3,)), 2),
        "conv-deg2": randomise(Sequential(Conv2d(1, 2, 2), Poly([0.1, 0.4, 1.3]), Flatten(), Linear(2 * 3 * 3, 2),
                                          input_shape=(1, 4, 4)), 3),
        "conv-same-pool-deg3": randomise(Sequential(Conv2d(2, 2, 2, padding="same"), Poly([0.0, 0.6, 0.3, -0.5]),
                                                    AvgPool2d(2), Flatten(), Linear(2 * 2 * 2, 2),
                                                    input_shape=(2, 4, 4)), 4),
        "conv-same-k3": randomise(Sequential(Conv2d(1, 2, 3, padding="same"), Poly([0.2, -0.1, 0.7]), Flatten(),
                                             Linear(2 * 3 * 3, 2), input_shape=(1, 3, 3)), 7),
        "flatten-linear": randomise(Sequential(Flatten(), Linear(6, 2), Square(), Linear(2, 2),
                                               input_shape=(1, 2, 3)), 5),
        "conv-nobias": randomise(Sequential(Conv2d(1, 1, 2, bias=False), Square(), Flatten(), Linear(4, 2, bias=False),
                                            input_shape=(1, 3, 3)), 6),
    }


NETWORKS = networks()


# --------------------------------------------------------------------------- oracles
def symbolic_coefficients(model):
    """{sorted tuple of flat input indices: coefficient} from the expanded symbolic output, one dict per class."""
    D = int(np.prod(model.input_shape))
    xs = [se.Symbol(f"v{i}") for i in range(D)]
    exprs = model.symbolic(numeric_params=True, expand=True,
                           inputs=np.array(xs, dtype=object).reshape(model.input_shape))
    syms = [sympy.Symbol(f"v{i}") for i in range(D)]
    out = []
    for e in exprs:
        coeffs = {}
        for powers, c in sympy.Poly(sympy.sympify(e), *syms).terms():
            key = tuple(i for i, p in enumerate(powers) for _ in range(p))
            coeffs[key] = coeffs.get(key, 0.0) + float(c)
        out.append(coeffs)
    return out


def row_monomials(table):
    return [tuple(int(i) for i in row if i >= 0) for row in table]


def distinct_orderings(monomial):
    return len(set(itertools.permutations(monomial)))


# --------------------------------------------------------------------------- equivalent weights
@pytest.mark.parametrize("name", list(NETWORKS))
def test_equivalent_weights_match_symbolic_expansion(name):
    model = NETWORKS[name]
    eq = bridge.equivalent_weights(model)
    monos = row_monomials(eq.table)
    index = {m: r for r, m in enumerate(monos)}
    for k, coeffs in enumerate(symbolic_coefficients(model)):
        for m, c in coeffs.items():
            assert m in index, f"{name}: monomial {m} of the network is missing from its natural table"
        expected = np.array([coeffs.get(m, 0.0) for m in monos])
        np.testing.assert_allclose(eq.weight[:, k], expected, rtol=0, atol=1e-10, err_msg=name)
    assert eq.dropped_norm == 0.0 and eq.dropped_monomials == 0
    # T = O + sum_j a_j B_j, and every degree above the activation's is absent from B_j for lower j
    np.testing.assert_allclose(eq.weight, eq.offset + np.tensordot(eq.activation, eq.per_activation, 1), atol=1e-14)
    for j in range(len(eq.activation)):
        assert not eq.per_activation[j][eq.degrees > j].any()


def test_hand_worked_square():
    # (1 x0 + 2 x1 + 3)^2 = x0^2 + 4 x0 x1 + 4 x1^2 + 6 x0 + 12 x1 + 9, times 2, plus b2 = 0.5
    net = Sequential(Linear(2, 1), Square(), Linear(1, 1), input_shape=(2,), seed=None)
    net.layers[0].params["weight"][...] = [[1.0, 2.0]]
    net.layers[0].params["bias"][...] = 3.0
    net.layers[2].params["weight"][...] = 2.0
    net.layers[2].params["bias"][...] = 0.5
    eq = bridge.equivalent_weights(net)
    assert row_monomials(eq.table) == [(), (0,), (1,), (0, 0), (0, 1), (1, 1)]
    assert eq.weight[:, 0].tolist() == [18.5, 12.0, 24.0, 2.0, 8.0, 8.0]


@pytest.mark.parametrize("name", list(NETWORKS))
def test_linear_model_over_features_reproduces_forward(name):
    model = NETWORKS[name]
    X = np.random.default_rng(7).normal(size=(40,) + model.input_shape)
    eq = bridge.equivalent_weights(model)
    np.testing.assert_allclose(features(X.reshape(len(X), -1), eq.table) @ eq.weight, model.forward(X),
                               rtol=0, atol=1e-10)
    # the same through a PolyRegModel of a larger table (higher degree, window: every product)
    degree = len(eq.activation)
    reg = PolyRegModel(model.input_shape, model.num_outputs, degree=degree, window=None)
    reg.weight[...] = bridge.equivalent_weights(model, reg).weight
    np.testing.assert_allclose(reg.forward(X), model.forward(X), rtol=0, atol=1e-10)
    assert not reg.weight[reg.feature_degrees() > degree - 1].any()


def test_degree_three_network_on_polyreg_windowed_table():
    # a 3x3 conv with a cubic activation: every product it makes fits a 3x3 window, degree <= 3, so
    # polyreg's degree-3 window-3 table holds the whole network, coefficient by coefficient
    net = randomise(Sequential(Conv2d(1, 2, 3), Poly([0.1, 0.5, -0.3, 0.4]), Flatten(), Linear(2 * 4 * 4, 3),
                               input_shape=(1, 6, 6)), 11)
    reg = PolyRegModel((1, 6, 6), 3, degree=3, window=3)
    eq = bridge.equivalent_weights(net, reg)
    assert eq.dropped_norm == 0.0 and reg.feature_degrees().max() == 3
    reg.weight[...] = eq.weight
    X = np.random.default_rng(3).random((50, 1, 6, 6))
    np.testing.assert_allclose(reg.forward(X), net.forward(X), rtol=0, atol=1e-10)
    report = bridge.bridge_report(net, reg)
    assert [r.degree for r in report.rows] == [0, 1, 2, 3] and report.overall_r2 == pytest.approx(1.0, abs=1e-12)
    fit = bridge.fit_activation_coefficients(net, reg.weight, reg.table)
    np.testing.assert_allclose(fit.coefficients, [0.1, 0.5, -0.3, 0.4], atol=1e-9)
    # a fit that differs in its cubic terms only: R^2 stays 1 below degree 3
    noisy = reg.weight.copy()
    cubic = reg.feature_degrees() == 3
    noisy[cubic] += np.random.default_rng(5).normal(0.0, 0.1, noisy[cubic].shape)
    rows = bridge.r2_by_degree(eq.weight, noisy, eq.degrees)
    assert [r.r2 == pytest.approx(1.0) for r in rows] == [True, True, True, False]


def test_multinomial_counts_match_brute_force():
    table = monomial_table((4,), 4, None)
    expected = [distinct_orderings(m) for m in row_monomials(table)]
    assert bridge.multinomial_counts(table).tolist() == expected


def test_table_rows_outside_the_network_are_zero_and_others_agree():
    model = NETWORKS["conv-deg2"]
    natural = bridge.equivalent_weights(model)
    wide = bridge.equivalent_weights(model, monomial_table(model.input_shape, 3, None))
    where = {m: r for r, m in enumerate(row_monomials(wide.table))}
    rows = [where[m] for m in row_monomials(natural.table)]
    np.testing.assert_array_equal(wide.weight[rows], natural.weight)
    others = np.setdiff1d(np.arange(len(wide.table)), rows)
    assert len(others) and not wide.weight[others].any()


def test_dropped_monomials_raise_or_are_reported_with_their_norm():
    model = randomise(Sequential(Linear(6, 3), Poly([0.2, -0.3, 0.8]), Linear(3, 2), input_shape=(6,)), 11)
    table = monomial_table((6,), 2, 3)  # pairs x_i x_l with |i - l| >= 3 are left out
    with pytest.raises(ModelError, match="outside the table"):
        bridge.equivalent_weights(model, table)
    eq = bridge.equivalent_weights(model, table, allow_dropped=True)
    coeffs = symbolic_coefficients(model)
    kept = set(row_monomials(table))
    lost = [(m, c) for k in range(2) for m, c in coeffs[k].items() if m not in kept]
    assert eq.dropped_norm == pytest.approx(math.sqrt(sum(c * c for _, c in lost)), rel=1e-12)
    assert eq.dropped_monomials == len({m for m, _ in lost}) == 6  # (0,3) (0,4) (0,5) (1,4) (1,5) (2,5)
    for k in range(2):  # the kept monomials are still exact
        np.testing.assert_allclose(eq.weight[:, k], [coeffs[k].get(m, 0.0) for m in row_monomials(table)],
                                   atol=1e-10)


def test_table_without_bias_row_drops_the_constant_term():
    model = NETWORKS["mlp-deg3"]
    full = bridge.equivalent_weights(model)
    eq = bridge.equivalent_weights(model, full.table[1:], allow_dropped=True)
    assert eq.dropped_monomials == 1
    assert eq.dropped_norm == pytest.approx(float(np.linalg.norm(full.weight[0])), rel=1e-14)
    np.testing.assert_array_equal(eq.weight, full.weight[1:])


def test_conv_kernel_larger_than_window_and_low_degree_table_are_dropped():
    model = randomise(Sequential(Conv2d(1, 1, 3), Square(), Flatten(), Linear(4, 1), input_shape=(1, 4, 4)), 12)
    with pytest.raises(ModelError, match=r"window \(3, 3\)"):
        bridge.equivalent_weights(model, PolyRegModel((1, 4, 4), 1, degree=2, window=2))
    assert bridge.equivalent_weights(model, PolyRegModel((1, 4, 4), 1, degree=2, window=3)).dropped_norm == 0.0
    low = bridge.equivalent_weights(model, monomial_table((1, 4, 4), 1, None), allow_dropped=True)
    full = bridge.equivalent_weights(model)
    assert low.dropped_norm == pytest.approx(float(np.linalg.norm(full.weight[full.degrees == 2])), rel=1e-12)


# --------------------------------------------------------------------------- R^2
def test_r2_is_one_for_identical_weights():
    eq = bridge.equivalent_weights(NETWORKS["mlp-deg3"])
    rows = bridge.r2_by_degree(eq.weight, eq.weight.copy(), eq.table)
    assert [r.degree for r in rows] == [0, 1, 2, 3]
    assert [r.monomials for r in rows] == [1, 3, 6, 10]
    for r in rows:
        assert r.r2 == 1.0 and r.r2_uncentred == 1.0 and r.pearson_r2 == pytest.approx(1.0, abs=1e-14)


def test_r2_hand_computed():
    # degree 1 entries: network (1, 2, 3), regression (1, 2, 4); degree 0: (5) vs (7)
    T_net = np.array([[5.0], [1.0], [2.0], [3.0]])
    T_poly = np.array([[7.0], [1.0], [2.0], [4.0]])
    zero, one = bridge.r2_by_degree(T_net, T_poly, np.array([0, 1, 1, 1]))
    # SSE = 1; mean 7/3; SS_tot = (16 + 1 + 25) / 9 = 42/9
    assert one.r2 == pytest.approx(1.0 - 9.0 / 42.0, abs=1e-15)
    assert one.r2_uncentred == pytest.approx(1.0 - 1.0 / 21.0, abs=1e-15)
    # centred: (-1, 0, 1) and (-4/3, -1/3, 5/3): cov 3, variances 2 and 14/3
    assert one.pearson_r2 == pytest.approx(9.0 / (2.0 * 14.0 / 3.0), abs=1e-15)
    assert (one.norm_network, one.norm_polyreg) == (pytest.approx(math.sqrt(14)), pytest.approx(math.sqrt(21)))
    # one class, one bias: no spread; unequal values -> nan, equal -> 1
    assert math.isnan(zero.r2) and math.isnan(zero.pearson_r2)
    assert zero.r2_uncentred == pytest.approx(1.0 - 4.0 / 49.0)
    assert bridge.r2_by_degree(T_poly, T_poly, [0, 1, 1, 1])[0].r2 == 1.0


def test_r2_pools_classes():
    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    (row,) = bridge.r2_by_degree(A, B, [2] * 5)
    assert row.r2 == pytest.approx(1.0 - np.sum((A - B) ** 2) / np.sum((B - B.mean()) ** 2))
    assert row.pearson_r2 == pytest.approx(np.corrcoef(A.ravel(), B.ravel())[0, 1] ** 2)
    with pytest.raises(ModelError, match="same shape"):
        bridge.r2_by_degree(A, B[:4], [2] * 5)
    with pytest.raises(ModelError, match="one degree per monomial"):
        bridge.r2_by_degree(A, B, [2] * 4)


def test_r2_center_classes_ignores_a_common_part():
    rng = np.random.default_rng(4)
    A, B = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    common = rng.normal(size=(6, 1))
    deg = [0, 1, 1, 2, 2, 2]
    centred = bridge.r2_by_degree(A + common, B, deg, center_classes=True)
    by_hand = bridge.r2_by_degree(A - A.mean(1, keepdims=True), B - B.mean(1, keepdims=True), deg)
    for got, want in zip(centred, by_hand):
        assert got.monomials == want.monomials
        np.testing.assert_allclose(got[2:], want[2:], rtol=1e-12)
    assert bridge.r2_by_degree(A + common, A, deg, center_classes=True)[2].r2 == pytest.approx(1.0, abs=1e-14)
    assert bridge.r2_by_degree(A + common, A, deg)[2].r2 < 1.0


# --------------------------------------------------------------------------- activation fit
def with_activation(model, coeffs):
    """The same weights under another activation."""
    spec = model.spec()
    i = next(i for i, layer in enumerate(spec["layers"]) if layer["type"] in ("Poly", "Square"))
    spec["layers"][i] = {"type": "Poly", "coeffs": list(coeffs)}
    from symnet.core.model import model_from_spec

    other = model_from_spec(spec)
    other.set_flat(model.get_flat())
    return other


@pytest.mark.parametrize("method", ["sequential", "joint"])
@pytest.mark.parametrize("name", ["mlp-deg2", "mlp-deg3", "conv-same-pool-deg3", "conv-deg2"])
def test_fit_recovers_own_and_other_activation(name, method):
    model = NETWORKS[name]
    eq = bridge.equivalent_weights(model)
    own = bridge.fit_activation_coefficients(model, eq.weight, method=method)
    np.testing.assert_allclose(own.coefficients, eq.activation, rtol=0, atol=1e-8)
    assert own.identified.all()
    target_a = np.random.default_rng(len(name)).normal(size=len(eq.activation))
    target = with_activation(model, target_a)
    T = bridge.equivalent_weights(target).weight
    fit = bridge.fit_activation_coefficients(model, T, method=method)
    np.testing.assert_allclose(fit.coefficients, target_a, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fit.weight, T, atol=1e-10)
    assert all(r.r2 == pytest.approx(1.0, abs=1e-12) for r in fit.after)
    assert any(r.r2 < 0.999 for r in fit.before)


def test_fit_normal_equations_on_noisy_target():
    model = NETWORKS["mlp-deg3"]
    eq = bridge.equivalent_weights(model)
    T = eq.weight + np.random.default_rng(0).normal(0.0, 0.5, eq.weight.shape)
    B, O, deg = eq.per_activation, eq.offset, eq.degrees
    joint = bridge.fit_activation_coefficients(model, T, method="joint")
    resid = T - joint.weight
    for j in range(len(B)):  # joint least squares: residual orthogonal to every B_j
        assert abs(np.sum(B[j] * resid)) < 1e-9 * np.linalg.norm(B[j]) * np.linalg.norm(T)
    seq = bridge.fit_activation_coefficients(model, T, method="sequential", equivalent=eq)
    resid = T - seq.weight
    for d in range(len(B)):  # sequential: on degree d, residual orthogonal to B_d
        rows = deg == d
        assert abs(np.sum(B[d][rows] * resid[rows])) < 1e-9 * np.linalg.norm(B[d]) * np.linalg.norm(T)
    assert not np.allclose(seq.coefficients, joint.coefficients)
    # the joint fit has the least total misfit of the two (it minimises exactly that)
    assert np.sum((T - joint.weight) ** 2) <= np.sum((T - seq.weight) ** 2)
    # ... and matches an independent least squares over the flattened B_j
    cols = np.stack([b.ravel() for b in B], axis=1)
    np.testing.assert_allclose(joint.coefficients, np.linalg.lstsq(cols, (T - O).ravel(), rcond=None)[0],
                               atol=1e-10)


@pytest.mark.parametrize("method", ["sequential", "joint"])
def test_fit_keeps_coefficients_the_table_cannot_see(method):
    model = NETWORKS["mlp-deg2"]
    table = monomial_table((3,), 1, None)  # no degree-2 monomials: sequential cannot read a_2
    eq = bridge.equivalent_weights(model, table, allow_dropped=True)
    fit = bridge.fit_activation_coefficients(model, eq.weight, table, method=method)
    np.testing.assert_allclose(fit.coefficients, eq.activation, atol=1e-8)
    if method == "sequential":
        assert fit.identified.tolist() == [True, True, False] and fit.coefficients[2] == eq.activation[2]
    else:  # a_2 still reaches degrees 0 and 1 through the first layer's bias
        assert fit.identified.all()
    # without that bias, a_2 leaves no trace on degrees 0 and 1: kept at its value by both methods
    unbiased = model.copy()
    unbiased.layers[0].params["bias"][...] = 0.0
    eq = bridge.equivalent_weights(unbiased, table, allow_dropped=True)
    fit = bridge.fit_activation_coefficients(unbiased, eq.weight + 0.1, table, method=method)
    assert fit.identified.tolist() == [True, True, False] and fit.coefficients[2] == eq.activation[2]


# --------------------------------------------------------------------------- report
def test_bridge_report_against_itself_and_a_perturbed_regression():
    model = NETWORKS["mlp-deg2"]
    reg = PolyRegModel((3,), 2, degree=2, window=None)
    reg.weight[...] = bridge.equivalent_weights(model, reg).weight
    report = bridge.bridge_report(model, reg, title="self")
    assert [r.degree for r in report.rows] == [0, 1, 2] and [r.monomials for r in report.rows] == [1, 3, 6]
    for r in report.rows:
        assert r.r2 == pytest.approx(1.0, abs=1e-12) and r.a_fitted == pytest.approx(r.a_original, abs=1e-10)
    text = str(report)
    assert text.splitlines()[0] == "self" and "R^2 fit" in text and "a fit" in text
    reg.weight[...] = bridge.equivalent_weights(with_activation(model, [1.0, 2.0, -0.5]), reg).weight
    report = bridge.bridge_report(model, reg)
    assert [round(r.a_fitted, 8) for r in report.rows] == [1.0, 2.0, -0.5]
    assert report.overall_r2 < 1.0 and report.overall_r2_fitted == pytest.approx(1.0, abs=1e-12)
    assert report.as_dicts()[2]["a_fitted"] == pytest.approx(-0.5)
    shifted = reg.copy()
    shifted.weight += np.arange(len(reg.weight))[:, None]  # the same polynomial added to both classes
    centred = bridge.bridge_report(model, shifted, center_classes=True)
    assert centred.overall_r2_fitted == pytest.approx(1.0, abs=1e-12) and "centred" in str(centred)
    assert [round(r.a_fitted, 8) for r in centred.rows][1:] == [2.0, -0.5]


def test_bridge_report_shows_dropped_part_and_higher_degrees():
    model = randomise(Sequential(Linear(5, 2), Square(), Linear(2, 2), input_shape=(5,)), 9)
    reg = PolyRegModel((5,), 2, degree=3, window=2)
    report = bridge.bridge_report(model, reg)
    assert report.dropped_monomials > 0 and "outside the table" in str(report)
    assert report.rows[3].a_original is None and report.rows[3].degree == 3


# --------------------------------------------------------------------------- errors
def test_unsupported_models_raise_clear_errors():
    for bad in (models.get("poly2", input_shape=(1, 8, 8), channels=2, channels2=2, kernel=2, num_classes=2),
                models.get("seed", input_shape=(1, 5, 5), num_classes=2),
                Sequential(Linear(3, 2), Square(), Linear(2, 2), Square(), Linear(2, 2), input_shape=(3,))):
        with pytest.raises(ModelError, match="one polynomial hidden layer"):
            bridge.equivalent_weights(bad)
    with pytest.raises(ModelError, match="symnet.Sequential"):
        bridge.equivalent_weights(PolyRegModel((3,), 2, 2, None))


def test_bad_tables_and_arguments_raise_clear_errors():
    model = NETWORKS["mlp-deg2"]
    with pytest.raises(ModelError, match="input shape"):
        bridge.equivalent_weights(model, monomial_table((4,), 2, None))
    with pytest.raises(ModelError, match="built for inputs"):
        bridge.equivalent_weights(model, PolyRegModel((4,), 2, 2, None))
    with pytest.raises(ModelError, match="sorted"):
        bridge.equivalent_weights(model, np.array([[-1, -1], [1, 0]]), allow_dropped=True)
    with pytest.raises(ModelError, match="twice"):
        bridge.equivalent_weights(model, np.array([[-1, -1], [0, 1], [0, 1]]), allow_dropped=True)
    with pytest.raises(ModelError, match="int array"):
        bridge.equivalent_weights(model, np.zeros((3, 2)))
    eq = bridge.equivalent_weights(model)
    with pytest.raises(ModelError, match="method"):
        bridge.fit_activation_coefficients(model, eq.weight, method="newton")
    with pytest.raises(ModelError, match="same table"):
        bridge.fit_activation_coefficients(model, eq.weight[:-1])
    with pytest.raises(ModelError, match="outputs"):
        bridge.bridge_report(model, PolyRegModel((3,), 3, 2, None))
    with pytest.raises(ModelError, match="PolyRegModel"):
        bridge.bridge_report(model, eq.weight)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(bridge, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
