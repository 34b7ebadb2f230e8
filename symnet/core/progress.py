"""The one place that draws progress bars.

Bars go quiet when the environment variable ``CI`` is set or the caller
passes ``quiet=True``. Otherwise they render as a widget in a Jupyter
notebook when ``ipywidgets`` is installed (``pip install 'symnet[notebook]'``)
and as text everywhere else, a notebook without ``ipywidgets`` included: the
fallback is silent, unlike ``tqdm.auto``, which warns there.

Example:
    >>> with bar(total=3, desc="demo", quiet=True) as b:
    ...     b.update(3)
    >>> bar_class(in_notebook=False).__module__
    'tqdm.std'
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager


def is_quiet(quiet: bool | None = None) -> bool:
    """True when bars should be hidden: ``quiet`` given, else ``$CI`` set."""
    if quiet is not None:
        return bool(quiet)
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's kernel app), without importing IPython when it is not loaded."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except AttributeError:  # a partial or unusual IPython
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def bar_class(in_notebook: bool | None = None) -> type:
    """The tqdm class to draw with: the notebook widget where it can render, else the text bar."""
    if in_notebook is None:
        in_notebook = globals()["in_notebook"]()
    if in_notebook and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as widget_bar

        return widget_bar
    from tqdm.std import tqdm as text_bar

    return text_bar


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
    pbar = bar_class()(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=True)
    try:
        yield pbar
    finally:
        pbar.close()
