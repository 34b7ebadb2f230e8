"""``symnet verify RUN``: re-check the certificates of a run (see :mod:`symnet.core.certificates`).

The run's folder holds ``certificates.npz`` (written by ``symnet train
--certificates``) and its checkpoint, which records the settings of the run:
the model's architecture and the fingerprint of its data. :func:`verify`
rebuilds the model, loads the same data (refusing other data), and checks
every record; the sampled ones are re-evaluated by plain forward passes.

It also checks that the records chain (:class:`~symnet.core.certificates.Chain`)
from the run's initial parameters through every record of ``history.json`` to
the saved ``model.npz``: a deleted, swapped or edited record, an edited history
or a replaced model fails. A run whose certificates cover only some of its steps
(a session resumed without ``--certificates``) is reported with its coverage,
and fails unless ``partial=True`` (``--partial``).

Example:
    >>> import tempfile, symnet
    >>> out = tempfile.mkdtemp() + "/run"
    >>> _ = symnet.fit("mlp", "xor", "coordinate", steps=2, quiet=True, out=out, certificates=True)
    >>> result = verify(out)
    >>> result.ok, result.report.checked > 0, result.chain.coverage
    (True, True, 'steps 0-2 of 2')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from symnet.core.certificates import Certificates, ChainReport, Report, verify_chain, verify_records
from symnet.core.errors import DataError
from symnet.core.files import read_json, read_npz
from symnet.core.model import model_from_spec
from symnet.core.model.saving import load_model

from symnet.frontend import api


@dataclass
class VerifyResult:
    """The report of :func:`verify_records` and what was verified."""

    report: Report
    run: Path
    dataset: str
    n_train: int
    chain: ChainReport | None = None
    partial: bool = False

    @property
    def ok(self) -> bool:
        """Every record holds, the chain is unbroken, and it covers the whole run (or ``partial`` allows less)."""
        chain_ok = self.chain is not None and not self.chain.violations and (self.chain.complete or self.partial)
        return self.report.ok and chain_ok

    def summary(self) -> str:
        r = self.report
        head = (f"{self.run}: {r.checked:,} exact steps checked against their own polynomials, {r.evaluated:,} of "
                f"them re-evaluated by forward passes on {self.dataset} ({self.n_train:,} training samples): ")
        head += "every step holds" if r.ok else f"{len(r.violations)} violation(s)"
        c = self.chain
        if c is None:
            return head
        if c.violations:
            return head + f"; the chain from the initial model to the saved one is broken ({len(c.violations)} " \
                          "problem(s))"
        if c.complete:
            return head + f"; the chain covers the whole run ({c.coverage}) from the initial model to the saved one"
        tail = "" if self.partial else "; pass --partial to accept a partly certified run"
        return head + f"; the certificates cover {c.coverage} only (a session ran without --certificates){tail}"


def verify(run: str | os.PathLike, *, data=None, data_dir=None, rtol: float = 1e-8, limit: int | None = None,
           quiet: bool | None = None, partial: bool = False) -> VerifyResult:
    """Check the certificates of the run in folder ``run``.

    Args:
        run: the run's folder (with ``certificates.npz`` and ``checkpoint.npz``).
        data: the run's :class:`~symnet.core.datasets.Dataset`, or None to load it by the name
            its checkpoint records (from ``data_dir`` when given).
        data_dir: folder of the dataset's files (``--data-dir``).
        rtol: relative tolerance of every comparison.
        limit: re-evaluate at most this many sampled records.
        quiet: hide progress bars while loading data.
        partial: accept certificates that cover only part of the run (its ``ok`` then asks only that
            what they cover holds).

    Raises:
        FileNotFoundError: no certificates or checkpoint in ``run``.
        DataError: the data differ from the run's.
    """
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"no run folder at {run}: pass the --out folder of a `symnet train --certificates` "
                                "run")
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
    if (run / "history.json").exists():  # a finished run; an interrupted one has its checkpoint's history
        records = read_json(run / "history.json", "history")["records"]
    else:
        records = json.loads(bytes(z["history"]).decode())["records"]
    final = None
    if (run / "model.npz").exists():
        final = load_model(run / "model.npz").get_flat()
    elif not (run / "history.json").exists():
        final = z["params"]
    chain = verify_chain(certs, records, final)
    return VerifyResult(report, run, recorded["name"], recorded["n_train"], chain, partial)


__all__ = ["VerifyResult", "verify"]
