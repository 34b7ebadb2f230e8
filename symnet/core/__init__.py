"""The core layer: networks, their polynomials and the exact loss; nothing here knows a solver.

Read it bottom-up, the way the exact solvers use it:

* :mod:`~symnet.core.layers`: each layer's forward, backward, exact jet rule
  (the polynomial in ``t`` of its output along a parameter direction) and
  per-sample derivatives, side by side; :mod:`~symnet.core.model`
  chains them (:class:`~symnet.core.model.Sequential`) and
  :mod:`~symnet.core.model.presets` builds the presets;
* :mod:`~symnet.core.restriction`: :class:`~symnet.core.restriction.Restriction`,
  the training objective restricted to a line, whose coefficients the term
  kernels (:mod:`symnet.core.kernels`) sum over the samples, and the exact line
  minimisation; :mod:`~symnet.core.derivatives`: gradients, Jacobian-vector
  products and per-sample Jacobians from the same caches;
  :mod:`~symnet.core.samples` (the training samples and the map-reduce contract
  every sum over them goes through) and :mod:`~symnet.core.sharded` (the same
  samples and exact loss in shards on Dask workers);
* :mod:`~symnet.core.roots`: roots and global minima of univariate
  polynomials (raw arrays, :class:`~symnet.core.roots.UniPoly`, symbolic view);
* :mod:`~symnet.core.objective` (the one objective and accuracy),
  :mod:`~symnet.core.linalg` (ridge solves and the exact readout fit),
  :mod:`~symnet.core.model.polyreg` (windowed monomial features and the
  polynomial-regression model);
* :mod:`~symnet.core.datasets`, :mod:`~symnet.core.files` (atomic files, model
  save/load), :mod:`~symnet.core.history`, :mod:`~symnet.core.progress`,
  :mod:`~symnet.core.runtime` (BLAS threads, memory probes), :mod:`~symnet.core.errors`.

Imports run one way: the core imports nothing from :mod:`symnet.solvers` or
:mod:`symnet.frontend`.
"""
