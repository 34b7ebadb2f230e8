"""``symnet verify RUN``: re-check the certificates of a run (see :mod:`symnet.core.certificates`).

The run's folder holds ``certificates.npz`` (written by ``symnet train
--certificates``) and its checkpoint, which records the settings of the run:
the model's architecture and the fingerprint of its data. :func:`verify`
rebuilds the model, loads the same data (refusing other data), and checks
every record; the sampled ones are re-evaluated by plain forward passes.

Example:
    >>> import tempfile, symnet
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = symnet.fit("mlp", "xor", "coordinate", steps=2, quiet=True, out=out, certificates=True)
    >>> result = verify(out)
    >>> result.report.ok, result.report.checked > 0
    (True, True)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from symnet.core.certificates import Certificates, Report, verify_records
from symnet.core.errors import DataError
from symnet.core.files import read_npz
from symnet.core.model import model_from_spec

from symnet.frontend import api


@dataclass
class VerifyResult:
    """The report of :func:`verify_records` and what was verified."""

    report: Report
    run: Path
    dataset: str
    n_train: int

    def summary(self) -> str:
        r = self.report
        head = (f"{self.run}: {r.checked:,} exact steps checked against their own polynomials, {r.evaluated:,} of "
                f"them re-evaluated by forward passes on {self.dataset} ({self.n_train:,} training samples): ")
        if r.ok:
            return head + "every step holds (the global minimum along its line among the real critical points, "\
                          "and the objective never rose)"
        return head + f"{len(r.violations)} violation(s)"


def verify(run: str | os.PathLike, *, data=None, data_dir=None, rtol: float = 1e-8, limit: int | None = None,
           quiet: bool | None = None) -> VerifyResult:
    """Check the certificates of the run in folder ``run``.

    Args:
        run: the run's folder (with ``certificates.npz`` and ``checkpoint.npz``).
        data: the run's :class:`~symnet.core.datasets.Dataset`, or None to load it by the name
            its checkpoint records (from ``data_dir`` when given).
        data_dir: folder of the dataset's files (``--data-dir``).
        rtol: relative tolerance of every comparison.
        limit: re-evaluate at most this many sampled records.
        quiet: hide progress bars while loading data.

    Raises:
        FileNotFoundError: no certificates or checkpoint in ``run``.
        DataError: the data differ from the run's.
    """
    run = Path(run)
    if not (run / "certificates.npz").exists():
        raise FileNotFoundError(f"no certificates in {run}: record them with `symnet train --certificates` "
                                "(certificates=True in Python)")
    z = read_npz(run / "checkpoint.npz", "checkpoint")
    settings = json.loads(bytes(z["run"]).decode())
    spec = json.loads(bytes(z["spec"]).decode())
    recorded = settings["data"]
    if data is None:
        data = api.load_data(recorded["name"], data_dir, samples=recorded["n_train"],
                             test_samples=recorded["n_test"] or None, quiet=quiet)
    if data.fingerprint()["digest"] != recorded["digest"]:
        raise DataError(f"the data given differ from the run's ({recorded['name']}, {recorded['n_train']:,} "
                        "training samples); verify with the data it trained on (same --dataset, --data-dir, "
                        "--samples)")
    model = model_from_spec(spec)
    certs = Certificates.load(run / "certificates.npz")
    report = verify_records(certs, model, data.x_train, data.one_hot("train"), rtol=rtol, limit=limit)
    return VerifyResult(report, run, recorded["name"], recorded["n_train"])


__all__ = ["VerifyResult", "verify"]
