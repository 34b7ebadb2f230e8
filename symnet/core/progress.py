"""The one place that draws progress bars.

Bars render in terminals and notebooks (``tqdm.auto``) and go quiet when the
environment variable ``CI`` is set or the caller passes ``quiet=True``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


def is_quiet(quiet: bool | None = None) -> bool:
    """True when bars should be hidden: ``quiet`` given, else ``$CI`` set."""
    if quiet is not None:
        return bool(quiet)
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def write(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def bar(total: float | None = None, desc: str = "", unit: str = "it", quiet: bool | None = None):
    """A progress bar context; a silent stand-in when :func:`is_quiet`."""
    if is_quiet(quiet):
        yield _Silent()
        return
    from tqdm.auto import tqdm

    pbar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=True)
    try:
        yield pbar
    finally:
        pbar.close()
