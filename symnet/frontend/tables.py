"""The one table renderer: rows of dicts as aligned text or Markdown.

Every table symnet prints (``symnet train``, ``bench``, ``compare``,
``robustness``, the bridge report) goes through :func:`render`. A column is a
``(key, header, format)`` triple; a missing, ``None`` or non-finite value shows
as ``-``; numeric columns are right-aligned and text columns left-aligned.

Example:
    >>> print(render([{"solver": "sgd", "loss": 0.5}, {"solver": "adam", "loss": None}],
    ...              [("solver", "solver", "{}"), ("loss", "loss", "{:.3f}")]))
    solver   loss
    ------  -----
    sgd     0.500
    adam        -
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from symnet.core.errors import DataError

Column = tuple  # (key, header, format)

#: Every column the front end's tables print, by row key: (header, format). The tables pick their columns
#: from here (:func:`columns`), so a figure is headed and formatted alike wherever it appears.
COLUMNS: dict[str, tuple[str, str]] = {
    "dataset": ("dataset", "{}"), "model": ("model", "{}"), "solver": ("solver", "{}"), "label": ("solver", "{}"),
    "model_desc": ("model (params)", "{}"), "steps": ("steps", "{}"), "steps_desc": ("steps", "{}"),
    "loss": ("loss", "{:.6g}"), "data_loss": ("SSE/N", "{:.6g}"), "train_acc": ("train acc", "{:.4f}"),
    "test_acc": ("test acc", "{:.4f}"), "time": ("train s", "{:.2f}"), "wall_time": ("wall s", "{:.2f}"),
    "time_per_step": ("train s/step", "{:.3g}"), "time_per_update_us": ("us/update", "{:.3g}"),
    "time_to_loss": ("t(loss) s", "{:.1f}"), "time_to_acc": ("t(acc) s", "{:.1f}"), "peak_mb": ("peak +MB", "{:.0f}"),
    "status": ("status", "{}"),
}


def columns(*keys: str, **formats: str) -> tuple:
    """The ``(key, header, format)`` triples of ``keys`` from :data:`COLUMNS`; ``formats`` overrides a format.

    Example:
        >>> columns("loss", "time", time="{:.1f}")
        (('loss', 'loss', '{:.6g}'), ('time', 'train s', '{:.1f}'))
    """
    return tuple((key, COLUMNS[key][0], formats.get(key, COLUMNS[key][1])) for key in keys)


def cell(value: Any, fmt: str = "{}") -> str:
    """One value formatted with ``fmt``; ``-`` for None and non-finite numbers."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return fmt.format(value)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def render(rows: Sequence[dict], columns: Sequence[Column], fmt: str = "text", *,
           align: Sequence[str] | None = None) -> str:
    """``rows`` as a table with one column per ``(key, header, format)`` triple.

    Args:
        rows: dicts keyed by the columns' keys.
        columns: ``(key, header, format)`` triples, in order.
        fmt: ``"text"`` (aligned, a dashed line under the header) or ``"markdown"``.
        align: ``"l"`` or ``"r"`` per column; default: right for columns whose
            values are all numbers (or missing), left otherwise.

    Raises:
        DataError: an unknown ``fmt``.
    """
    if fmt not in ("text", "markdown"):
        raise DataError(f"table format must be 'text' or 'markdown', got {fmt!r}")
    if align is None:
        align = ["r" if rows and all(_is_number(r.get(key)) for r in rows) else "l" for key, _, _ in columns]
    headers = [header for _, header, _ in columns]
    cells = [[cell(r.get(key), f) for key, _, f in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(headers, *cells)]
    lines = []
    for i, line in enumerate([headers] + cells):
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(line, widths, align)]
        lines.append("  ".join(parts).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["cell", "render"]
