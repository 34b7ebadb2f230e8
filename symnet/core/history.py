"""Step-wise training history shared by every solver backend."""

from __future__ import annotations

import json
from typing import Any, Iterable

import numpy as np

from symnet.core.files import to_jsonable

#: Columns every record carries. Backends may add more (for example ``lr``).
COLUMNS = ("step", "loss", "train_acc", "test_acc", "time", "updates", "passes")


class History:
    """An append-only list of per-step records.

    Each record is a dict with at least the keys in :data:`COLUMNS`:
    ``step`` (0 is the initial model), ``loss`` (training objective, mean per
    sample, ridge included), ``train_acc`` and ``test_acc`` (fractions),
    ``time`` (cumulative training seconds, evaluation excluded), ``updates``
    (cumulative variables updated) and ``passes`` (cumulative passes over the
    training data).

    Example:
        >>> h = History(solver="coordinate")
        >>> _ = h.append(step=0, loss=1.0, train_acc=0.1, test_acc=0.1, time=0.0, updates=0, passes=0.0)
        >>> h.column("loss")
        array([1.])
    """

    def __init__(self, records: Iterable[dict] | None = None, **meta: Any) -> None:
        self.records: list[dict] = [dict(r) for r in (records or [])]
        self.meta: dict[str, Any] = dict(meta)

    def append(self, **record: Any) -> dict:
        self.records.append(record)
        return record

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        return self.records[index]

    def __iter__(self):
        return iter(self.records)

    @property
    def final(self) -> dict:
        """The last record (raises ``IndexError`` on an empty history)."""
        return self.records[-1]

    def column(self, name: str) -> np.ndarray:
        """One column as a float array; missing entries are NaN."""
        return np.array([np.nan if r.get(name) is None else r.get(name) for r in self.records], dtype=float)

    def first_reaching(self, name: str, target: float, *, below: bool = True, by: str = "time") -> float | None:
        """The ``by`` value at the first record whose ``name`` is at or past ``target``."""
        for r in self.records:
            v = r.get(name)
            if v is None:
                continue
            if (v <= target) if below else (v >= target):
                return r.get(by)
        return None

    def to_dict(self) -> dict:
        return {"meta": to_jsonable(self.meta), "records": to_jsonable(self.records)}

    @classmethod
    def from_dict(cls, payload: dict) -> "History":
        return cls(payload.get("records", []), **payload.get("meta", {}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def __repr__(self) -> str:
        if not self.records:
            return f"History({self.meta.get('solver', '?')}, empty)"
        f = self.final
        return (f"History({self.meta.get('solver', '?')}, steps={f['step']}, loss={f['loss']:.6g}, "
                f"train_acc={f.get('train_acc')}, test_acc={f.get('test_acc')}, time={f['time']:.2f}s)")
