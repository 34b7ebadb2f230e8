"""symnet bench target: tuned Adam's losses as targets, every run from one start, times and ratios."""

import json

import numpy as np
import pytest

import symnet
from symnet.core.errors import SolverError
from symnet.frontend import cli
from symnet.frontend.target import time_to_target


@pytest.fixture(scope="module")
def result():
    data = symnet.datasets.load("mnist-small").subset(300, 100)
    return time_to_target("seed", data, ["coordinate", ("gauss-newton", {"batch_size": 100})],
                          lrs=[1e-3, 5e-3], epochs=3, time_limit=3.0, quiet=True)


def test_the_tuned_rate_has_the_lowest_final_training_loss(result):
    adam = [r for r in result.rows if r["solver"] == "adam"]
    tuned = [r for r in adam if r["kind"] == "adam-tuned"]
    assert len(adam) == 2 and len(tuned) == 1
    assert tuned[0]["loss"] == min(r["loss"] for r in adam)
    assert result.meta["tuned_lr"] in (1e-3, 5e-3) and tuned[0]["label"] == f"adam[lr={result.meta['tuned_lr']:g}]"


def test_targets_are_the_tuned_runs_losses_and_its_ratios_are_one(result):
    tuned = next(r for r in result.rows if r["kind"] == "adam-tuned")
    h = result.histories[tuned["label"]]
    assert [name for name, _ in result.targets] == ["1 epoch", "3 epochs"]
    assert [value for _, value in result.targets] == [h[1]["loss"], h[3]["loss"]]
    assert tuned["t_0"] == h[1]["time"] and tuned["t_1"] == h[3]["time"]
    assert tuned["ratio_0"] == 1.0 and tuned["ratio_1"] == 1.0


def test_exact_times_are_their_first_record_at_the_target(result):
    tuned = next(r for r in result.rows if r["kind"] == "adam-tuned")
    for row in (r for r in result.rows if r["kind"] == "exact"):
        h = result.histories[row["label"]]
        for k, (_, value) in enumerate(result.targets):
            reached = [rec["time"] for rec in h if rec["loss"] <= value]
            assert row[f"t_{k}"] == (reached[0] if reached else None)
            if reached:
                assert np.isclose(row[f"ratio_{k}"], reached[0] / tuned[f"t_{k}"])
        assert row["time"] <= 3.0 * 1.5 + 1.0  # the budget, give or take one step


def test_every_run_starts_from_the_same_model(result):
    starts = {h[0]["loss"] for h in result.histories.values()}
    assert len(starts) == 1


def test_table_json_and_cli(result, capsys, tmp_path):
    text = result.table()
    assert "s to 1 epoch" in text and "tuned rate" in text and "ratio" in text
    assert json.loads(result.to_json())["rows"][0]["kind"] == "adam-tuned"
    code = cli.main(["bench", "target", "--model", "seed", "--samples", "200", "--test-samples", "50",
                     "--epochs", "1", "--lrs", "1e-3", "--exact", "coordinate", "--time-limit", "2", "--quiet",
                     "--json", "--out", str(tmp_path / "t")])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)[0]["label"] == "adam[lr=0.001]"
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["loss_vs_time.png", "table.md", "table.txt",
                                                                  "target.json"]
    with pytest.raises(SolverError, match="learning rates"):
        time_to_target("seed", "mnist-small", ["coordinate"], lrs=[0.0])
