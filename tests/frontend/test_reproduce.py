"""``symnet reproduce``: every reproduction runs in quick mode; the tables' structure and sane numbers.

The tests never compare our figures with the published ones (quick mode runs on small subsets); they
check that every published figure has a row, that every row says what differs, that accuracies are
above chance and R^2 values lie where they must, and that the files and the command line work.
"""

import json

import numpy as np
import pytest

from symnet.core import datasets
from symnet.core.errors import DatasetNotFoundError
from symnet.frontend import cli, reproduce
from symnet.frontend.reproduce import REPRODUCTIONS, Reproduction


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Every reproduction run once in quick mode, saved into its own folder: name -> (result, folder)."""
    runs = {}
    for name in reproduce.available():
        out = tmp_path_factory.mktemp(name)
        runs[name] = (reproduce.reproduce(name, quick=True, out=out, quiet=True), out)
    return runs


def test_every_source_is_registered():
    assert reproduce.available() == ["polyreg-tables", "recovery", "bridge-tables", "symbolic-seed",
                                     "mlp-optimizers"]
    for spec in REPRODUCTIONS.values():
        assert spec.parts and len({p.key for p in spec.parts}) == len(spec.parts)


@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_quick_run_table_structure(quick, name):
    result, out = quick[name]
    assert isinstance(result, Reproduction) and result.meta["quick"] is True
    assert set(result.parts) == {p.key for p in REPRODUCTIONS[name].parts}
    for key, status in result.parts.items():
        # Fashion-MNIST parts may be skipped on a machine without the dataset; nothing else may be
        assert status == "ok" or (status.startswith("skipped") and key.startswith("fashion")), (key, status)
    assert any(r.source is not None or r.source_text for r in result.rows)
    for row in result.rows:
        assert row.notes, row  # every row says what differs from the source's setting
        assert row.kind in reproduce.KINDS
        assert row.part in result.parts and row.status == result.parts[row.part]
        if row.status == "ok":
            assert row.ours is not None and np.isfinite(row.ours), row
        else:
            assert row.ours is None
    text = result.table()
    md = (out / "table.md").read_text()
    for header in ("source", "ours", "notes"):
        assert header in text.splitlines()[3] and f"| {header} |" in md or f" {header} " in md
    assert "QUICK" in text and "load average" in text and "command: symnet reproduce" in text
    payload = json.loads((out / "results.json").read_text())
    assert payload["name"] == name and len(payload["rows"]) == len(result.rows)
    assert payload["meta"]["load_average"][0] is not None
    assert (out / "source_vs_ours.png").stat().st_size > 1000


def _ok(result, **match):
    return [r for r in result.rows if r.status == "ok" and all(getattr(r, k) == v for k, v in match.items())]


def test_polyreg_tables_numbers_are_sane(quick):
    result, _ = quick["polyreg-tables"]
    accs = _ok(result, kind="percent")
    assert accs and all(0.15 < r.ours <= 1.0 for r in accs), [(r.setting, r.ours) for r in accs]
    exact_ridge = [r for r in accs if "exact ridge" in r.setting and r.metric == "test acc"]
    assert exact_ridge and all(r.ours > 0.8 for r in exact_ridge)
    spreads = _ok(result, kind="magnitude")
    assert spreads and all(r.ours > 0 for r in spreads)
    # every published figure of Tables 3.5-3.7 has its row: 4 + 4 + 8 per dataset
    assert len(result.rows) == 2 * (4 + 4 + 8)
    assert {r.source for r in result.rows if r.metric == "coefficient L1"} >= {1.9e9, 5.7e-3, 1.4e7, 8.4e-3}


def test_recovery_r2_in_unit_interval_and_degree_helps(quick):
    result, out = quick["recovery"]
    r2 = _ok(result, kind="r2")
    assert len(r2) == 12 and all(0.0 <= r.ours <= 1.0 for r in r2)
    relu = {r.setting: r.ours for r in r2 if r.setting.startswith("ReLU teacher")}
    assert relu["ReLU teacher, polyreg degree 4"] >= relu["ReLU teacher, polyreg degree 1"]
    assert (out / "recovery_vs_width.png").exists()


def test_bridge_tables_r2_and_coefficients(quick):
    result, _ = quick["bridge-tables"]
    for r in _ok(result, kind="r2"):
        assert r.ours <= 1.0
        if "degree 1" in r.setting:
            assert 0.9 <= r.ours <= 1.0  # ReLU's odd part x/2 is exact in every stand-in
    coeffs = {r.setting: r.ours for r in _ok(result, kind="coefficient")}
    assert len(coeffs) == 8 and abs(coeffs["posterior fit, a1 (of x^1)"] - 0.5) < 0.1
    # ReLU's Gaussian L2 projection: a0 = 0.1995 s, a2 = 0.1995 / s at pre-activation scale s (loose: 3 teachers)
    assert coeffs["posterior fit, scale 0.57, a2 (of x^2)"] > coeffs["posterior fit, a2 (of x^2)"] > 0.1


def test_symbolic_seed_accuracy_above_chance_and_time_per_variable(quick):
    result, _ = quick["symbolic-seed"]
    accs = _ok(result, metric="test acc")
    assert len(accs) == 4 and all(0.2 < r.ours <= 1.0 for r in accs)
    times = _ok(result, metric="s / variable")
    assert len(times) == 4 and all(0 < r.ours < 0.1 for r in times)


def test_mlp_optimizers_rows_and_figures(quick):
    result, out = quick["mlp-optimizers"]
    accs = _ok(result, kind="percent")
    assert len(accs) == 14 and all(0.15 < r.ours <= 1.0 for r in accs)
    assert "cross-entropy" in " ".join(result.notes())
    assert (out / "gradient_test_acc_vs_time.png").exists()


def test_parts_not_selected_show_not_run():
    result = reproduce.reproduce("bridge-tables", quick=True, parts="teachers", quiet=True)
    assert result.parts == {"teachers": "ok"}
    result = reproduce.reproduce("recovery", quick=True, parts=["sigmoid"], quiet=True)
    assert result.parts == {"relu": "not run", "sigmoid": "ok", "width": "not run"}
    relu = [r for r in result.rows if r.part == "relu"]
    assert relu and all(r.ours is None and r.status == "not run" for r in relu)
    assert "not run" in result.table()


def test_missing_dataset_marks_the_part_skipped(monkeypatch):
    real = datasets.load

    def no_fashion(name, *args, **kwargs):
        if name == "fashion-mnist":
            raise DatasetNotFoundError("Fashion-MNIST files not found; searched nowhere")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(datasets, "load", no_fashion)
    result = reproduce.reproduce("polyreg-tables", quick=True, parts=["fashion-bagged-ls"], quiet=True)
    assert result.parts["fashion-bagged-ls"].startswith("skipped: Fashion-MNIST files not found")
    assert "skipped" in result.table()


def test_relu_approximations():
    linf = reproduce.relu_approximation("linf", 3, 3.0)
    assert np.allclose(linf, [3 / 16, 0.5, 1 / 6, 0.0], atol=1e-3)
    x = np.linspace(-3, 3, 601)
    l2 = reproduce.relu_approximation("l2", 3, 3.0)
    err = lambda c: np.polynomial.polynomial.polyval(x, c) - np.maximum(x, 0)  # noqa: E731
    assert np.mean(err(l2) ** 2) <= np.mean(err(linf) ** 2) and np.abs(err(linf)).max() <= np.abs(err(l2)).max()


def test_cli_list_run_and_errors(capsys, tmp_path):
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in reproduce.available():
        assert name in out
    assert "mnist-exact-ls" in out and "heavy" in out
    code = cli.main(["reproduce", "recovery", "--quick", "--parts", "relu", "--out", str(tmp_path / "r"), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "72.01%" in out and (tmp_path / "r" / "table.md").exists()
    for argv, needle in ((["reproduce", "nope"], "unknown reproduction"),
                         (["reproduce", "recovery", "--parts", "nope"], "no part 'nope'"),
                         (["reproduce"], "name a reproduction")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("symnet: error: ") and needle in err


def test_dry_run_prints_the_table_to_fill(capsys, tmp_path):
    result = reproduce.reproduce("polyreg-tables", dry_run=True, out=tmp_path)
    assert set(result.parts.values()) == {"not run"} and all(r.ours is None for r in result.rows)
    assert result.meta["wall_time"] < 5 and "dry run" in result.table()
    assert (tmp_path / "table.md").exists() and "--dry-run" in result.meta["command"]
    assert cli.main(["reproduce", "symbolic-seed", "--dry-run", "--out", str(tmp_path / "s")]) == 0
    assert "about 44%" in capsys.readouterr().out


def test_solver_options_from_the_command_line(capsys, tmp_path):
    code = cli.main(["reproduce", "symbolic-seed", "--quick", "--parts", "100", "-O", "coordinate.ridge=0.5",
                     "--out", str(tmp_path), "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "coordinate: ridge=0.5" in out and "-O coordinate.ridge=0.5" in out
    details = json.loads((tmp_path / "results.json").read_text())["details"]["100"]
    assert details["defaults"]["options"]["ridge"] == 0.5 and details["plain"]["options"]["ridge"] == 0.5
    for argv, needle in ((["-O", "coordinate.nope=1"], "nope"), (["-O", "ridge=1"], "name the solver")):
        assert cli.main(["reproduce", "symbolic-seed", "--quick"] + argv) == 2
        assert needle in capsys.readouterr().err
