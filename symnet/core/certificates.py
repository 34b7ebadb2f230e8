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
    >>> import numpy as np, symnet
    >>> m = symnet.models.get("mlp", input_dim=2, hidden=2, seed=0)
    >>> d = symnet.datasets.xor()
    >>> X, Y = d.x_train, d.one_hot("train")
    >>> loss = symnet.restriction.Restriction(m, X, Y, ridge=0.1)
    >>> loss.certificates = Certificates(m.num_params, sample="all")
    >>> _ = loss.line_minimize(-np.ones(m.num_params))
    >>> report = verify_records(loss.certificates, m, X, Y)
    >>> report.checked, report.evaluated, report.violations
    (1, 1, [])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from symnet.core.files import atomic_save_npz, read_npz, to_jsonable
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
        self.chain: Chain | None = None               # the digests that tie the records to the run (Chain)

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
    def to_arrays(self, upto: int | None = None) -> dict[str, np.ndarray]:
        """The records as arrays; ``upto``: only the first ``upto`` records (a checkpoint of an earlier moment)."""
        rows = self.rows if upto is None else self.rows[:upto]
        n = len(rows)
        table = np.array(rows, dtype=np.float64).reshape(-1, 12)
        kept = sorted(r for r in self.snapshots if r < n)
        table[kept, 10] = np.arange(len(kept))           # snapshot number of each sampled row
        lines = [r for r in kept if r in self.directions]
        table[lines, 2] = np.arange(len(lines))          # a sampled line's index: its direction's number
        batches = self.batches[:1 + max((int(r[9]) for r in rows), default=-1)]
        lengths = np.array([len(b) for b in batches], dtype=np.int64)
        return {
            "table": table,
            "coeffs": np.array(self.coeffs[:rows[-1][4]] if rows else [], dtype=np.float64),
            "batch_rows": np.concatenate(batches) if batches else np.zeros(0, np.int64),
            "batch_lengths": lengths,
            "snapshots": np.array([self.snapshots[r] for r in kept]).reshape(-1, self.num_params),
            "directions": np.array([self.directions[r] for r in lines]).reshape(-1, self.num_params),
            "num_params": np.asarray(self.num_params),
        }

    def save(self, path: str | Path, *, upto: int | None = None, records: int | None = None) -> Path:
        """Write the records (the first ``upto``) and the chain (its links over the first ``records`` history
        records) atomically to ``path``: a checkpoint of an earlier moment than now."""
        arrays = self.to_arrays(upto)
        if self.chain is not None:
            arrays.update(self.chain.to_arrays(records))
        return atomic_save_npz(path, **arrays)

    def rows_digest(self, a: int, b: int) -> str:
        """SHA-256 of records ``a .. b-1``: their step, kind, polynomial, step taken, objectives, ridge and
        precision (not which of them keep snapshots: the sample may change until their solver step ends)."""
        table = np.array([[r[0], r[1], r[5], r[6], r[7], r[8], r[11]] for r in self.rows[a:b]],
                         dtype=np.float64).reshape(-1, 7)
        spans = [self.coeffs[r[3]:r[4]] for r in self.rows[a:b]]
        coeffs = np.array([c for span in spans for c in span], dtype=np.float64)
        lengths = np.array([len(span) for span in spans], dtype=np.int64)
        return _sha(table.tobytes(), lengths.tobytes(), coeffs.tobytes())

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
        out.chain = Chain.from_arrays(z)
        return out

    @classmethod
    def load(cls, path: str | Path) -> "Certificates":
        return cls.from_arrays(read_npz(path, "certificates"))


# --------------------------------------------------------------------------- the chain
def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))  # lengths first: no two splits of the bytes hash alike
        h.update(part)
    return h.hexdigest()


def params_digest(params: np.ndarray) -> str:
    """SHA-256 of a flat parameter vector in float64."""
    return _sha(np.ascontiguousarray(params, dtype=np.float64).tobytes())


def record_digest(record: dict) -> str:
    """SHA-256 of a history record as ``history.json`` holds it (keys sorted)."""
    return _sha(json.dumps(to_jsonable(record), sort_keys=True, separators=(",", ":")).encode())


class Chain:
    """Digests that tie a run together: its initial parameters, every history record, every certificate
    record and the parameters after every step, so that a deleted, swapped or edited record, an edited
    history or a replaced model breaks the chain.

    Link ``k`` covers history record ``start + k``: it hashes the previous link (the first one: the digest
    of the initial parameters ``params0``), the history record, the certificate records written since the
    previous link, and the digest of the parameters at that record. The parameters themselves are kept
    only at the start; the last link's parameter digest must be the saved model's.

    Example:
        >>> import numpy as np
        >>> certs = Certificates(2, sample="all")
        >>> certs.chain = Chain(np.zeros(2))
        >>> _ = certs.chain.link({"step": 0, "loss": 1.0}, np.zeros(2), certs)
        >>> _ = certs.chain.link({"step": 1, "loss": 0.5}, np.ones(2), certs)
        >>> history = [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}]
        >>> verify_chain(certs, history, np.ones(2)).violations
        []
        >>> history[1]["loss"] = 0.75
        >>> verify_chain(certs, history, np.ones(2)).violations[0]
        'history record 1 (step 1) does not match the chain: the history was edited, or records were deleted or reordered'
    """

    def __init__(self, params0: np.ndarray, start: int = 0) -> None:
        self.start = int(start)
        self.params0 = np.array(params0, dtype=np.float64)
        self.links: list[str] = []
        self.param_digests: list[str] = []
        self.record_counts: list[int] = []

    def link(self, record: dict, params: np.ndarray, certs: "Certificates") -> str:
        """Add the link of the next history record, with the parameters after it; returns its digest."""
        prev = self.links[-1] if self.links else params_digest(self.params0)
        done = self.record_counts[-1] if self.record_counts else 0
        p = params_digest(params)
        digest = _sha(prev.encode(), record_digest(record).encode(), certs.rows_digest(done, len(certs)).encode(),
                      p.encode())
        self.links.append(digest)
        self.param_digests.append(p)
        self.record_counts.append(len(certs))
        return digest

    def to_arrays(self, records: int | None = None) -> dict[str, np.ndarray]:
        """The chain as arrays; ``records``: only the links of the first ``records`` history records."""
        k = len(self.links) if records is None else min(len(self.links), max(0, records - self.start))
        return {"chain_start": np.asarray(self.start), "chain_params0": self.params0,
                "chain_links": np.array(self.links[:k], dtype="S64"),
                "chain_params": np.array(self.param_digests[:k], dtype="S64"),
                "chain_counts": np.array(self.record_counts[:k], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, z: dict) -> "Chain | None":
        if "chain_links" not in z:
            return None
        out = cls(np.asarray(z["chain_params0"]), int(z["chain_start"]))
        out.links = [bytes(v).decode() for v in np.asarray(z["chain_links"])]
        out.param_digests = [bytes(v).decode() for v in np.asarray(z["chain_params"])]
        out.record_counts = [int(v) for v in np.asarray(z["chain_counts"])]
        return out


@dataclass
class ChainReport:
    """What :func:`verify_chain` found: the history records the chain covers, and its breaks."""

    first: int | None = None      # the first covered step
    last: int | None = None       # the last covered step
    total: int = 0                # the run's last step
    complete: bool = False        # the chain covers the run from its initial model to its saved one
    violations: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> str:
        if self.first is None:
            return f"no step of {self.total}"
        return f"steps {self.first}-{self.last} of {self.total}"


def verify_chain(certs: "Certificates", history: Sequence[dict], final_params: np.ndarray | None, *,
                 initial_params: np.ndarray | None = None) -> ChainReport:
    """Recompute the chain of ``certs`` from the run's history records and check it, and its coverage.

    Args:
        certs: the run's certificates (with their chain).
        history: the records of ``history.json``, in order.
        final_params: the saved model's flat parameters (None: not checked).
        initial_params: the run's initial parameters, when known independently.
    """
    out = ChainReport(total=int(history[-1]["step"]) if history else 0)
    chain = certs.chain
    if chain is None:
        out.violations.append("the certificates carry no chain (written by an older symnet): the records cannot "
                              "be tied to the history and the model")
        return out
    if initial_params is not None and params_digest(initial_params) != params_digest(chain.params0):
        out.violations.append("the chain does not start from the run's initial parameters")
    prev = params_digest(chain.params0)
    done = 0
    covered = history[chain.start:chain.start + len(chain.links)]
    if len(covered) < len(chain.links):
        out.violations.append(f"the chain has {len(chain.links)} links but the history only {len(covered)} records "
                              f"from record {chain.start} on: history records were deleted")
    for k, record in enumerate(covered):
        count = chain.record_counts[k]
        if count > len(certs) or count < done:
            out.violations.append(f"link {k} names certificate records up to {count}, but there are {len(certs)}: "
                                  "certificate records were deleted")
            return out
        digest = _sha(prev.encode(), record_digest(record).encode(), certs.rows_digest(done, count).encode(),
                      chain.param_digests[k].encode())
        if digest != chain.links[k]:
            out.violations.append(f"history record {chain.start + k} (step {record.get('step')}) does not match the "
                                  "chain: the history was edited, or records were deleted or reordered")
            return out
        if k == 0 and chain.param_digests[0] != prev:
            out.violations.append("the chain's first record is not at its initial parameters")
        prev, done = digest, count
    if done != len(certs):
        out.violations.append(f"{len(certs) - done} certificate record(s) after the chain's last link: records were "
                              "added, or the run wrote records it did not tie to its history")
    if covered:
        out.first, out.last = int(covered[0]["step"]), int(covered[-1]["step"])
    ends = chain.start + len(chain.links) == len(history)
    out.complete = chain.start == 0 and ends and not out.violations
    if final_params is not None and ends and chain.param_digests and \
            params_digest(final_params) != chain.param_digests[-1]:
        out.violations.append("the saved model is not the model the chain ends at: model.npz was replaced or edited")
        out.complete = False
    return out


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


__all__ = ["BLOCK", "COORD", "FLOAT32_RTOL", "Certificates", "Chain", "ChainReport", "KIND_NAMES", "LINE", "Report",
           "params_digest", "record_digest", "verify_chain", "verify_records"]
