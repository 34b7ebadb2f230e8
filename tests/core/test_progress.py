"""Progress bars: quiet under CI, widgets in notebooks with ipywidgets, a silent text fallback without."""

import sys
import types
import warnings

import pytest

from symnet.core import progress


def test_quiet_when_ci_is_set(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert progress.is_quiet()
    monkeypatch.setenv("CI", "false")
    assert not progress.is_quiet()
    assert progress.is_quiet(True) and not progress.is_quiet(False)


def test_text_bar_outside_notebooks():
    assert progress.bar_class(in_notebook=False).__module__ == "tqdm.std"


def _fake_kernel(monkeypatch):
    """A loaded IPython whose shell says it runs in a kernel app, as in Jupyter."""
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_detects_a_notebook_kernel(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not progress.in_notebook()
    _fake_kernel(monkeypatch)
    assert progress.in_notebook()


def test_notebook_without_ipywidgets_falls_back_silently(monkeypatch, capsys):
    _fake_kernel(monkeypatch)
    real = progress.importlib.util.find_spec
    monkeypatch.setattr(progress.importlib.util, "find_spec",
                        lambda name, *a: None if name == "ipywidgets" else real(name, *a))
    assert progress.bar_class().__module__ == "tqdm.std"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm.auto would warn "IProgress not found" here
        with progress.bar(total=2, desc="t", quiet=False) as b:
            b.update(2)
    assert "IProgress" not in capsys.readouterr().err


def test_notebook_with_ipywidgets_uses_the_widget(monkeypatch):
    pytest.importorskip("ipywidgets")
    _fake_kernel(monkeypatch)
    assert progress.bar_class().__module__ == "tqdm.notebook"
