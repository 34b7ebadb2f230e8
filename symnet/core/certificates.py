"""Certificates: an audit trail of the exact steps of a run, and their independent verification.

"Each step is the global minimum of the loss along its line, and the loss never
goes up" is checkable. With certificates on (``symnet train --certificates``,
``fit(..., certificates=True)``) every exact step of a run leaves a record:

* what moved: one coordinate (its flat index), a line (its direction, kept
  when the step is sampled, see below), or a block solved in closed form (its
  displacement, taken as a line with ``t = 1``);
* on which data: every training sample, or the rows of a mini-batch (kept),
  and the ridge of that objective;
* the restricted polynomial's coefficients (lowest first; none for a block),
  the step ``t`` taken, and the objective before and after;
* the precision it was computed in: 0 for float64, :data:`FLOAT32_RTOL` for a
  step computed from float32 activations (verification then allows that much
  relative disagreement with float64 forward passes, and no more).

:func:`verify` re-checks every record from its own numbers (the step is the
global minimum among the real critical points of the recorded polynomial; the
value after is that polynomial at ``t``; the objective did not rise). For a
sample of the records, the parameters before the step are kept as well, and
the true objective is evaluated again by plain forward passes at ``t`` and at
every other real critical point of the recorded polynomial: the polynomial has
to agree with the network, and nothing along the line may be lower than the
point taken. By default ``per_step`` (20) of the records of every solver
step are sampled uniformly (reservoir sampling); ``sample="all"`` keeps
every one.

Example:
    >>> import numpy as np
    >>> from symnet.core.model import presets as models
    >>> from symnet.core.restriction import Restriction
    >>> m = models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> X, Y = np.random.default_rng(0).random((8, 2)), np.eye(2)[[0, 1] * 4]
    >>> loss = Restriction(m, X, Y, ridge=0.1)
    >>> loss.certificates = Certificates(m.num_params, sample="all")
    >>> _ = loss.line_minimize(-np.ones(m.num_params))
    >>> report = verify_records(loss.certificates, m, X, Y)
    >>> report.checked, report.evaluated, report.violations
    (1, 1, [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from symnet.core.files import atomic_save_npz, read_npz
from symnet.core.objective import sse
from symnet.core.roots import dense

#: Kinds of record.
COORD, LINE, BLOCK = 0, 1, 2

#: The relative agreement a record computed in float32 (activations, jets or features) is held to:
#: its objective comes from single-precision outputs, about 1e-6 relative from a float64 forward pass.
FLOAT32_RTOL = 1e-5
KIND_NAMES = {COORD: "coordinate", LINE: "line", BLOCK: "block"}


class Certificates:
    """The records of one run (see the module docstring).

    Args:
        num_params: parameters of the model (the length of a direction and a snapshot).
        sample: ``"some"`` (the default sampling) or ``"all"`` (every record keeps its
            parameters and direction, for a full re-evaluation).
        per_step: most sampled records per solver step.
        seed: seed of the sampling.
    """

    def __init__(self, num_params: int, *, sample: str = "some", per_step: int = 20, seed: int = 0) -> None:
        self.num_params = int(num_params)
        self.sample = sample
        self.per_step = int(per_step)
        self._rng = np.random.default_rng(seed)
        self.step = 0
        self._seen = 0
        # [step, kind, index, c_lo, c_hi, t, before, after, ridge, batch, snap, precision]
        self.rows: list[list] = []
        self.coeffs: list[float] = []
        self.batches: list[np.ndarray] = []
        self.snapshots: dict[int, np.ndarray] = {}   # row -> parameters before its step
        self.directions: dict[int, np.ndarray] = {}  # row -> its line or displacement
        self._reservoir: list[int] = []              # the rows of this solver step that keep their parameters

    def begin_step(self, step: int) -> None:
        """Records from now on belong to solver step ``step`` (the sample is drawn anew per step)."""
        self.step = int(step)
        self._seen = 0
        self._reservoir = []

    def _slot(self) -> int | None:
        """Reservoir sampling: the k-th record of a step is kept with probability per_step / k.

        Returns the reservoir position it takes (None: not kept); a row it replaces loses its snapshot.
        """
        self._seen += 1
        if self.sample == "all" or len(self._reservoir) < self.per_step:
            return len(self._reservoir)
        j = int(self._rng.integers(self._seen))
        return j if j < self.per_step else None

    def record(self, kind: int, *, theta: np.ndarray | None, coeffs: Sequence[float] = (), t: float = 0.0,
               before: float, after: float, ridge: float, index: int = -1, direction: np.ndarray | None = None,
               rows: np.ndarray | None = None, precision: float = 0.0) -> None:
        """Add one record; ``theta`` (the parameters before the step) and ``direction`` are kept when sampled.

        ``theta`` and ``direction`` may be functions returning the arrays, so that an unsampled record costs
        nothing. ``coeffs`` and ``t`` are in the units of ``direction``: the polynomial the solver minimised.
        ``precision`` is the relative precision of the step's numbers (0: float64; :data:`FLOAT32_RTOL`).
        """
        row = len(self.rows)
        slot = self._slot() if theta is not None else None
        if slot is not None:
            if slot < len(self._reservoir):
                dropped = self._reservoir[slot]
                self.snapshots.pop(dropped, None)
                self.directions.pop(dropped, None)
                self._reservoir[slot] = row
            else:
                self._reservoir.append(row)
            params = theta() if callable(theta) else theta
            self.snapshots[row] = np.array(params, dtype=np.float64)
            if kind in (LINE, BLOCK):
                d = direction() if callable(direction) else direction
                self.directions[row] = np.array(d, dtype=np.float64)
        batch = -1
        if rows is not None:
            self.batches.append(np.asarray(rows, dtype=np.int64))
            batch = len(self.batches) - 1
        lo = len(self.coeffs)
        self.coeffs.extend(float(c) for c in coeffs)
        self.rows.append([self.step, kind, int(index), lo, len(self.coeffs), float(t), float(before), float(after),
                          float(ridge), batch, -1, float(precision)])

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ files
    def to_arrays(self) -> dict[str, np.ndarray]:
        table = np.array(self.rows, dtype=np.float64).reshape(-1, 12)
        kept = sorted(self.snapshots)
        table[kept, 10] = np.arange(len(kept))           # snapshot number of each sampled row
        lines = [r for r in kept if r in self.directions]
        table[lines, 2] = np.arange(len(lines))          # a sampled line's index: its direction's number
        lengths = np.array([len(b) for b in self.batches], dtype=np.int64)
        return {
            "table": table,
            "coeffs": np.array(self.coeffs, dtype=np.float64),
            "batch_rows": np.concatenate(self.batches) if self.batches else np.zeros(0, np.int64),
            "batch_lengths": lengths,
            "snapshots": np.array([self.snapshots[r] for r in kept]).reshape(-1, self.num_params),
            "directions": np.array([self.directions[r] for r in lines]).reshape(-1, self.num_params),
            "num_params": np.asarray(self.num_params),
        }

    def save(self, path: str | Path) -> Path:
        """Write the records atomically to ``path`` (``certificates.npz``)."""
        return atomic_save_npz(path, **self.to_arrays())

    @classmethod
    def from_arrays(cls, z: dict) -> "Certificates":
        out = cls(int(z["num_params"]), sample="all")
        table = np.asarray(z["table"])
        snapshots, directions = np.asarray(z["snapshots"]), np.asarray(z["directions"])
        for r in table:
            row = [int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), float(r[6]), float(r[7]),
                   float(r[8]), int(r[9]), -1, float(r[11]) if len(r) > 11 else 0.0]
            n = len(out.rows)
            if int(r[10]) >= 0:
                out.snapshots[n] = snapshots[int(r[10])]
                if row[1] in (LINE, BLOCK):
                    out.directions[n] = directions[row[2]]
            if row[1] in (LINE, BLOCK):
                row[2] = -1  # in memory a line's direction is found by its row
            out.rows.append(row)
        out.coeffs = list(np.asarray(z["coeffs"], dtype=np.float64))
        bounds = np.concatenate([[0], np.cumsum(z["batch_lengths"])]).astype(np.int64)
        out.batches = [np.asarray(z["batch_rows"][a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        out.step = max((row[0] for row in out.rows), default=0)
        return out

    @classmethod
    def load(cls, path: str | Path) -> "Certificates":
        return cls.from_arrays(read_npz(path, "certificates"))


# --------------------------------------------------------------------------- verification
@dataclass
class Report:
    """What :func:`verify_records` found.

    Attributes:
        checked: records checked from their own numbers.
        evaluated: records also re-evaluated by forward passes.
        violations: one line per failed check (empty: every step holds).
    """

    checked: int = 0
    evaluated: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _close(a: float, b: float, rtol: float, scale: float) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def verify_records(certs: Certificates, model, X: np.ndarray, Y: np.ndarray, *, rtol: float = 1e-8,
                   limit: int | None = None) -> Report:
    """Check every record of ``certs`` against its own numbers, and re-evaluate the sampled ones.

    Args:
        certs: the records.
        model: a model of the run's architecture (its parameters are overwritten, then restored).
        X, Y: the run's full training inputs and one-hot targets (mini-batch records index into them).
        rtol: relative tolerance of every comparison (scaled by the objective before the step); a
            record computed in float32 is held to its own precision when that is coarser.
        limit: re-evaluate at most this many sampled records (None: all).
    """
    rtol_all = rtol
    report = Report()
    keep = model.get_flat()
    evaluated = 0
    try:
        for n, row in enumerate(certs.rows):
            step, kind, index, lo, hi, t, before, after, ridge, batch, _, precision = row
            rtol = max(rtol_all, precision)
            where = f"record {n} (step {step}, {KIND_NAMES.get(kind, kind)})"
            report.checked += 1
            scale = abs(before)
            if not after <= before * (1 + rtol) + rtol:
                report.violations.append(f"{where}: the objective rose from {before!r} to {after!r}")
            c = np.asarray(certs.coeffs[lo:hi])
            crit = np.zeros(0)
            if kind != BLOCK and len(c):
                if not _close(float(c[0]), before, rtol, scale):
                    report.violations.append(f"{where}: the polynomial at t=0 is {c[0]!r}, not the recorded "
                                             f"objective {before!r}")
                value_t = float(dense.polyval(c, t))
                if t != 0.0 and not _close(value_t, after, 1e-6, scale):
                    report.violations.append(f"{where}: the polynomial at the step is {value_t!r}, not the recorded "
                                             f"{after!r}")
                crit = dense.critical_points(c)
                crit = crit[np.isfinite(crit)]
                if len(crit):
                    lowest = float(np.min(dense.polyval(c, crit)))
                    if lowest < after - rtol * max(scale, 1.0):
                        report.violations.append(f"{where}: a real critical point of its polynomial is lower "
                                                 f"({lowest!r}) than the step taken ({after!r})")
            if n not in certs.snapshots or (limit is not None and evaluated >= limit):
                continue
            evaluated += 1
            report.evaluated += 1
            theta = certs.snapshots[n]
            rows = slice(None) if batch < 0 else certs.batches[batch]
            Xs, Ys = X[rows], Y[rows]
            if kind == COORD:
                direction = np.zeros(len(theta))
                direction[index] = 1.0
            else:  # a line, or a block's displacement (taken with t = 1)
                direction = certs.directions[n]

            def true(tau: float) -> float:
                th = theta + tau * direction if direction is not None else theta
                model.set_flat(th)
                return sse(model.forward(Xs), Ys) + ridge * float(th @ th)

            at0 = true(0.0)
            if not _close(at0, before, rtol, scale):
                report.violations.append(f"{where}: the true objective before the step is {at0!r}, the record "
                                         f"says {before!r}")
            at_t = true(t)
            if not _close(at_t, after, rtol, scale):
                report.violations.append(f"{where}: the true objective at the step is {at_t!r}, the record "
                                         f"says {after!r}")
            for tau in crit:
                other = true(float(tau))
                if other < at_t - rtol * max(scale, 1.0):
                    report.violations.append(f"{where}: the true objective at the critical point t={tau!r} is "
                                             f"{other!r}, lower than at the step taken ({at_t!r})")
                if not _close(other, float(dense.polyval(c, tau)), 1e-6, scale):
                    report.violations.append(f"{where}: the recorded polynomial gives {dense.polyval(c, tau)!r} "
                                             f"at t={tau!r}, the network {other!r}: the polynomial is not the "
                                             "objective along its line")
    finally:
        model.set_flat(keep)
    return report


__all__ = ["BLOCK", "COORD", "FLOAT32_RTOL", "Certificates", "KIND_NAMES", "LINE", "Report", "verify_records"]
