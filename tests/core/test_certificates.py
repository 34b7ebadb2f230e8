"""Certificates of exact steps: what every solver records, and verification that catches planted wrong steps."""

import numpy as np
import pytest

from symnet.core.model import presets as models
from symnet.core.certificates import BLOCK, COORD, LINE, Certificates, verify_records
from symnet.core.restriction import Restriction

from tiny_models import tiny_data, tiny_models, toy_data

MODELS = tiny_models()


def certified_loss(name="poly", n=20, sample="all"):
    model = MODELS[name].copy()
    X, Y = tiny_data(model, n=n)
    loss = Restriction(model, X, Y, ridge=0.05)
    loss.certificates = Certificates(model.num_params, sample=sample)
    return model, X, Y, loss


def test_line_and_coordinate_steps_are_recorded_and_verify(rng):
    model, X, Y, loss = certified_loss()
    for _ in range(3):
        loss.line_minimize(rng.normal(size=model.num_params))
    for name in model.param_names()[:4]:
        loss.line_minimize(name)
    certs = loss.certificates
    assert [r[1] for r in certs.rows] == [LINE] * 3 + [COORD] * 4
    report = verify_records(certs, model.copy(), X, Y)
    assert report.ok and report.checked == 7 and report.evaluated == 7


def test_a_saved_and_loaded_trail_is_the_same(tmp_path, rng):
    model, X, Y, loss = certified_loss(sample="some")
    for _ in range(30):
        loss.line_minimize(rng.normal(size=model.num_params))
    loss.certificates.save(tmp_path / "c.npz")
    back = Certificates.load(tmp_path / "c.npz")
    assert back.rows == loss.certificates.rows and len(back.snapshots) == 20   # the reservoir: 20 of 30
    assert verify_records(back, model.copy(), X, Y).ok


@pytest.mark.parametrize("plant, expected", [
    ("t", "than the step taken"),
    ("coefficient", "not the objective along its line"),
    ("after", "not the recorded"),
    ("rise", "rose"),
])
def test_verification_catches_a_planted_wrong_step(rng, plant, expected):
    model, X, Y, loss = certified_loss()
    for _ in range(4):
        loss.line_minimize(rng.normal(size=model.num_params))
    certs = loss.certificates
    row = certs.rows[2]
    lo, hi = row[3], row[4]
    if plant == "t":            # a step that is not the minimiser of its polynomial
        row[5] = row[5] * 0.5
        from symnet.core.roots.dense import polyval
        row[7] = float(polyval(np.asarray(certs.coeffs[lo:hi]), row[5]))
    elif plant == "coefficient":  # a polynomial that is not the network's loss along the line
        certs.coeffs[hi - 1] *= 1.01
    elif plant == "after":
        row[7] = row[7] * 0.9
    else:
        row[7] = row[6] * 1.5
    report = verify_records(certs, model.copy(), X, Y)
    assert not report.ok
    assert any(expected in v for v in report.violations), report.violations


def test_blocks_are_checked_by_their_values(rng):
    model, X, Y, loss = certified_loss()
    loss.solve_readout()
    assert loss.certificates.rows[-1][1] == BLOCK
    assert verify_records(loss.certificates, model.copy(), X, Y).ok
    loss.certificates.rows[-1][7] -= 1.0   # claims a lower objective than the block reached
    assert not verify_records(loss.certificates, model.copy(), X, Y).ok


@pytest.mark.parametrize("solver, opts", [("coordinate", {}), ("gauss-newton", {"batch_size": 10, "varpro": True}),
                                          ("lbfgs", {}), ("cg", {})])
def test_every_exact_solver_certifies_its_steps(solver, opts):
    from symnet import solvers

    model = MODELS["poly"].copy()
    data = toy_data(model, n=30)
    s = solvers.get(solver)(ridge=0.05, **opts).fit(model, data, steps=2, quiet=True, certificates="all")
    certs = s.certificates_
    assert len(certs) >= 2 and {r[0] for r in certs.rows} == {1, 2}
    report = verify_records(certs, model.copy(), data.x_train, data.one_hot("train"))
    assert report.ok, report.violations[:3]


def test_solvers_without_exact_steps_refuse_certificates():
    from symnet import solvers
    from symnet.core.errors import SolverError

    model = models.get("mlp", input_dim=3, hidden=2, num_classes=2)
    with pytest.raises(SolverError, match="takes no exact steps"):
        solvers.get("adam")().fit(model, toy_data(model), steps=1, quiet=True, certificates=True)
