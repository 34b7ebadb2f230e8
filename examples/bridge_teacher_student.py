"""A trained network and a polynomial regression, compared monomial by monomial.

A one-hidden-layer network ``W2 p(W1 x + b1) + b2`` with a degree-2 activation
is a linear model over the monomials of degree <= 2 of its inputs; polynomial
regression (``symnet.solvers.polyreg``, window ``None``: every product) fits that
linear model in closed form. This script:

1. draws teacher-student data (``symnet.datasets.teacher_student``: a random
   degree-2 polynomial teacher labels uniform inputs);
2. trains a student ``mlp`` with the ``x^2`` activation by an exact solver
   (Gauss-Newton with exact line search by default) on one-hot targets;
3. fits polynomial regression on the same data and targets;
4. prints, degree by degree (0 = bias, 1, 2), the R^2 between the student's
   equivalent monomial weights and the regression's, with the posterior fit
   of the student's activation coefficients (``symnet.bridge.bridge_report``),
   then the teacher against both, and test accuracies. As a check of the
   bridge itself, a plain least-squares fit on the teacher's real-valued
   outputs must give back the teacher's own monomial weights (R^2 = 1).
5. repeats steps 2-4 with a ReLU teacher (labels from ``W2 relu(W1 x + b1) +
   b2``), which no degree-2 polynomial reproduces exactly.

Usage (from the project root)::

    python examples/bridge_teacher_student.py
    python examples/bridge_teacher_student.py --input-dim 6 --classes 4 --steps 200 --solver lbfgs
    python examples/bridge_teacher_student.py --no-relu

The teacher's outputs are real-valued scores while the student and the
regression are fitted to one-hot targets, so the teacher's weights live on
another scale: compare it to the others through the scale-free Pearson r^2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import symnet.solvers as solvers  # noqa: E402
from symnet.core.model.polyreg import PolyRegModel, features
from symnet.solvers.polyreg import PolyRegSolver  # noqa: E402
from symnet.frontend import bridge
from symnet import models  # noqa: E402
from symnet.core.datasets import Dataset  # noqa: E402
from symnet.core.datasets.synthetic import teacher_student  # noqa: E402
from symnet.core.errors import SymnetError  # noqa: E402


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(scores.argmax(axis=1) == labels))


def teacher_network(teacher: dict):
    """The polynomial teacher as a symnet network (same weights, same activation)."""
    H, D = teacher["W1"].shape
    net = models.get("mlp", input_dim=D, hidden=H, num_classes=teacher["W2"].shape[0],
                     activation=[float(a) for a in teacher["a"]], seed=None)
    for (_, value), key in zip(net.parameters(), ("W1", "b1", "W2", "b2")):
        value[...] = teacher[key]
    return net


def relu_teacher_data(args) -> Dataset:
    """Inputs uniform in [0, 1]^D labelled by argmax of W2 relu(W1 x + b1) + b2 (b2 centres the outputs)."""
    rng = np.random.default_rng(args.seed + 1000)
    D, H, K = args.input_dim, args.hidden, args.classes
    W1 = rng.standard_normal((H, D)) / np.sqrt(D)
    b1 = rng.standard_normal(H) * 0.5
    W2 = rng.standard_normal((K, H)) / np.sqrt(H)
    x_train = rng.uniform(0.0, 1.0, (args.n_train, D))
    x_test = rng.uniform(0.0, 1.0, (args.n_test, D))

    def outputs(x):
        return np.maximum(x @ W1.T + b1, 0.0) @ W2.T

    b2 = -outputs(x_train).mean(axis=0)
    return Dataset("relu-teacher", x_train, (outputs(x_train) + b2).argmax(axis=1), x_test,
                   (outputs(x_test) + b2).argmax(axis=1), K)


def train_student(data: Dataset, hidden: int, args):
    student = models.get("mlp", input_dim=args.input_dim, hidden=hidden, num_classes=data.num_classes,
                         activation="square", seed=args.seed)
    t0 = time.perf_counter()
    s = solvers.get(args.solver)(ridge=args.ridge).fit(student, data, steps=args.steps, quiet=True)
    return student, s.history_.final["loss"], time.perf_counter() - t0


def fit_polyreg(data: Dataset, args):
    reg = PolyRegModel(data.input_shape, data.num_classes, degree=2, window=None)
    t0 = time.perf_counter()
    s = PolyRegSolver(ridge=args.ridge).fit(reg, data, quiet=True)
    return reg, s.history_.final["loss"], time.perf_counter() - t0


def accuracy_row(label: str, model, data: Dataset, loss=None, seconds=None, note: str = "") -> str:
    loss_s = f"{loss:>11.5f}" if loss is not None else f"{'':>11}"
    time_s = f"{seconds:>7.2f}" if seconds is not None else f"{'':>7}"
    return (f"{label:<12} {accuracy(model.forward(data.x_test), data.y_test):>9.4f} "
            f"{accuracy(model.forward(data.x_train), data.y_train):>9.4f} {loss_s} {time_s}   {note}").rstrip()


def compare(data: Dataset, args, teacher=None) -> None:
    reg, reg_loss, reg_time = fit_polyreg(data, args)
    students = [(h,) + train_student(data, h, args) for h in args.student_hidden]
    print(f"{'':<12} {'test acc':>9} {'train acc':>9} {'objective/N':>11} {'time s':>7}")
    if teacher is not None:
        print(accuracy_row("teacher", teacher, data))
    for h, student, loss, seconds in students:
        print(accuracy_row(f"student h={h}", student, data, loss, seconds, f"({args.solver}, {args.steps} steps)"))
    print(accuracy_row("polyreg", reg, data, reg_loss, reg_time, f"(exact ridge, {reg.num_features} features)"))
    for h, student, _, _ in students:
        print()
        print(bridge.bridge_report(student, reg, title=f"student h={h} vs polyreg (R^2 with polyreg's weights as "
                                                       "reference; activation refit to them)"))
    if teacher is None:
        return
    T_teacher = bridge.equivalent_weights(teacher, reg).weight
    print()
    print(bridge.format_r2(bridge.r2_by_degree(T_teacher, reg.weight, reg.table),
                           "teacher (T net) vs polyreg (T poly), coefficients as they are"))
    print()
    print(bridge.format_r2(bridge.r2_by_degree(T_teacher, reg.weight, reg.table, center_classes=True),
                           "teacher (T net) vs polyreg (T poly), centred over classes"))
    for h, student, _, _ in students:
        T_student = bridge.equivalent_weights(student, reg).weight
        print()
        print(bridge.format_r2(bridge.r2_by_degree(T_teacher, T_student, reg.table, center_classes=True),
                               f"teacher (T net) vs student h={h} (T poly), centred over classes"))
    # The bridge checked on data: least squares on the teacher's own real-valued outputs.
    F = features(data.x_train, reg.table)
    W_ls = np.linalg.lstsq(F, data.meta["teacher_outputs_train"], rcond=None)[0]
    print()
    print(bridge.format_r2(bridge.r2_by_degree(T_teacher, W_ls, reg.table),
                           "check: teacher vs least squares on the teacher's real-valued outputs (expect 1)"))
    print(f"max |difference| {np.abs(W_ls - T_teacher).max():.2e}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input-dim", type=int, default=8)
    p.add_argument("--hidden", type=int, default=4, help="teacher's hidden units")
    p.add_argument("--student-hidden", type=int, nargs="+", default=None,
                   help="hidden units of each student (default: the teacher's, and classes * input-dim, enough "
                        "for a square-activation network to reach any quadratic)")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--solver", default="gauss-newton", help="exact solver of the student (gauss-newton, lbfgs, cg, "
                                                            "coordinate)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--ridge", type=float, default=1e-3, help="ridge of both the student and the regression")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-relu", action="store_true", help="skip the ReLU-teacher variant")
    args = p.parse_args(argv)
    args.student_hidden = args.student_hidden or [args.hidden, args.classes * args.input_dim]
    try:
        data = teacher_student(args.n_train, args.n_test, args.input_dim, args.hidden, 2, args.classes, args.seed)
        teacher = teacher_network(data.meta["teacher"])
        a = ", ".join(f"{v:.3f}" for v in data.meta["teacher"]["a"])
        print(f"== polynomial teacher p(z) = [{a}] (lowest degree first); {args.input_dim} inputs, {args.hidden} "
              f"hidden, {args.classes} classes, {args.n_train}/{args.n_test} samples ==")
        compare(data, args, teacher)
        if not args.no_relu:
            print()
            print(f"== ReLU teacher; {args.input_dim} inputs, {args.hidden} hidden, {args.classes} classes, "
                  f"{args.n_train}/{args.n_test} samples ==")
            compare(relu_teacher_data(args), args)
    except SymnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
