"""symnet.frontend.race: the grid, the figures from hand-made histories, and a tiny race end to end."""

import json

import pytest

import symnet
from symnet.core.errors import SolverError
from symnet.core.history import History
from symnet.frontend import race as R


def history(points, **meta):
    """A History from ``(step, wall, time, data_loss, test_acc)`` tuples."""
    h = History(**meta)
    for step, wall, time, loss, acc in points:
        h.append(step=step, loss=loss + 0.5, data_loss=loss, train_acc=None, test_acc=acc, time=time, wall=wall,
                 updates=0, passes=0.0)
    return h


def test_the_grid_covers_every_schedule_batch_and_rate_without_decay_or_ridge():
    grid = R.baseline_grid()
    assert len(grid) == len(R.DEFAULT_LRS) * len(R.DEFAULT_SCHEDULES) * len(R.DEFAULT_BATCH_SIZES) == 32
    solvers = {name for _, name, _ in grid}
    assert solvers == {"adam", "adamw-schedulefree"}
    for label, name, opts in grid:
        assert "ridge" not in opts and opts.get("weight_decay", 0.0) == 0.0
        if "warmup-cosine" in label or "one-cycle" in label:
            assert opts["schedule"] in label
    with pytest.raises(SolverError, match="unknown baseline schedule 'linear'"):
        R.baseline_grid(schedules=("linear",))
    with pytest.raises(SolverError, match="positive"):
        R.baseline_grid(lrs=(0.0,))


def test_figures_of_one_seed_on_the_wall_clock():
    # the baseline ends at data loss 0.10 after 100 wall seconds (first epoch closed at 12 s); the exact
    # solver first records at 5 s and is at or below 0.10 from 60 s on: ratio 0.6
    base = history([(0, 0.0, 0.0, 1.0, 0.1), (1, 12.0, 10.0, 0.3, 0.9), (2, 100.0, 80.0, 0.10, 0.98)])
    exact = history([(0, 0.0, 0.0, 1.0, 0.1), (1, 5.0, 4.0, 0.5, 0.8), (2, 60.0, 50.0, 0.099, 0.985),
                     (3, 100.0, 80.0, 0.09, 0.99)])
    assert R.clock_of(base) == "wall" and R.clock_of(History([{"step": 0, "time": 0.0}])) == "training"
    f = R._seed_figures(base, exact, "wall")
    assert f["ratio_end"] == pytest.approx(0.6)
    assert f["exact_first_record"] == 5.0 and f["baseline_first_epoch"] == 12.0
    # on the training clock the same runs give 50 / 80
    assert R._seed_figures(base, exact, "training")["ratio_end"] == pytest.approx(50 / 80)
    row = {**R._seed_row(1, base, exact), **f}
    s = R._summary([row])
    assert s["time_criterion"] and s["accuracy_criterion"] and s["start_criterion"]
    assert s["accuracy_gap"] == pytest.approx(0.01)
    # not reached within the budget: no ratio, and the time criterion fails
    slow = history([(0, 0.0, 0.0, 1.0, 0.1), (1, 100.0, 80.0, 0.2, 0.95)])
    row = {**R._seed_row(2, base, slow), **R._seed_figures(base, slow, "wall")}
    assert row["ratio_end"] is None and not R._summary([row])["time_criterion"]


def test_a_tiny_race_end_to_end(tmp_path):
    data = symnet.datasets.load("mnist-small").subset(300, 100)
    lines = []
    r = R.race("seed", data, exact="coordinate", seeds=(1, 2), epochs=2, lrs=(1e-3, 1e-2), schedules=("constant",),
               batch_sizes=(64, 128), tune_samples=150, finalists=2, isolate=False, quiet=True,
               callback=lines.append)
    stages = [t["stage"] for t in r.tuning]
    assert stages == [1, 1, 1, 1, 2, 2]  # four configurations on 150 images, two finalists on all 300
    assert r.meta["tuned"] in {t["label"] for t in r.tuning if t["stage"] == 2}
    finals = [t for t in r.tuning if t["stage"] == 2]
    assert min(finals, key=lambda t: t["data_loss"])["label"] == r.meta["tuned"]  # lowest training loss wins
    assert [row["seed"] for row in r.rows] == [1, 2]
    for row in r.rows:  # equal budgets: the exact solver's training seconds never pass the baseline's by much
        assert row["exact_train_seconds"] <= row["baseline_train_seconds"] * 1.5 + 2.0
    assert any(line.startswith("seed 2 exact") for line in lines)
    written = r.save(tmp_path)
    payload = json.loads((tmp_path / "race.json").read_text())
    assert payload["clock"] == r.clock and len(payload["rows"]) == 2
    assert {p.name for p in written} >= {"race.json", "race.txt", "race_loss_vs_time.png", "race_accuracy_vs_time.png"}
    assert "ratio_end median" in str(r)


def test_time_to_a_target_counts_full_evaluations_only():
    h = history([(0, 0.0, 0.0, 1.0, 0.1), (1, 5.0, 4.0, 0.05, 0.9), (1, 9.0, 8.0, 0.08, 0.9)])
    h.records[1].update(eval_samples=5000, loss_estimated=1)  # an interim record's subsample estimate
    assert R.time_to(h, 0.1, "wall") == 9.0
    h.records[1].pop("loss_estimated")  # accuracies on the subsample, the loss the backend's own: it counts
    assert R.time_to(h, 0.1, "wall") == 5.0
