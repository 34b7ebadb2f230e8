"""The front end: what users call, on top of the core and the solvers.

* :mod:`~symnet.frontend.api`: ``symnet.fit`` / ``symnet.api.train``, one model with one solver;
* :mod:`~symnet.frontend.runner`: several solvers from one start under one budget, which
  :mod:`~symnet.frontend.bench` (``symnet bench``) and :mod:`~symnet.frontend.compare`
  (``symnet compare``) share;
* analysis of trained models: :mod:`~symnet.frontend.robustness`, :mod:`~symnet.frontend.inspection`,
  :mod:`~symnet.frontend.bridge` (network <-> polynomial regression), :mod:`~symnet.frontend.polyreg_maps`;
* :mod:`~symnet.frontend.reproduce`: the published tables this project answers, rerun, the source's
  figures beside ours (``symnet reproduce``);
* output: :mod:`~symnet.frontend.tables` (text and Markdown tables), :mod:`~symnet.frontend.plots` (figures);
* :mod:`~symnet.frontend.cli`: the ``symnet`` command, a thin shell over the functions above.

Nothing in :mod:`symnet.core` or :mod:`symnet.solvers` imports from here.
"""
