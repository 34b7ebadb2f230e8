"""Reproductions of the published tables this project answers: the source's figure beside ours.

Each reproduction is one plain function call (and one command,
``symnet reproduce NAME``) that runs symnet on the setting of a published
table and returns a :class:`Reproduction`: one row per published figure,
with the source's figure, ours, and numbered notes on every setting that
differs from the source's. :meth:`Reproduction.save` writes ``table.md``,
``results.json`` and the figures.

========================  ==================================================================
name                      what
========================  ==================================================================
``polyreg-tables``        thesis Tables 3.5-3.7: polynomial regression over windowed
                          products of neighbouring pixels on MNIST and Fashion-MNIST (exact
                          and bagged least squares, with and without ridge), coefficient
                          magnitudes, and the CNN rows (``poly2`` with Gauss-Newton and Adam)
``recovery``              thesis Table 3.1: how much of a random ReLU or sigmoid network
                          polynomial regression of degree 2, 3 and 4 recovers (median R^2)
``bridge-tables``         thesis Tables 3.8 and 3.9: R^2 between a network's equivalent
                          monomial weights and polynomial regression's, per degree, for
                          three polynomial stand-ins of ReLU
``symbolic-seed``         the original symbolic experiment: the ``seed`` network trained one
                          variable at a time on 100 MNIST images, then on all 60,000
``mlp-optimizers``        an MLP on MNIST for 10 epochs with gradient descent, momentum,
                          Nesterov and Adam, and the exact solvers on the same network
========================  ==================================================================

Parts. Every reproduction is split into parts (a run or a group of runs,
e.g. ``mnist-exact-ls``); ``parts=`` (``--parts``) selects some of them, and
the rows of the others still show the source's figure, with ours marked
``not run``. A part whose data is missing (Fashion-MNIST when Debian's
``dataset-fashion-mnist`` is not installed) is ``skipped`` with the reason.
:data:`REPRODUCTIONS` lists the parts; parts marked heavy take many minutes
on a 2-core machine.

Quick mode. ``quick=True`` (``--quick``) runs every part on a small subset
(MNIST from the images that ship with symnet) in well under a minute; its
figures check that everything runs, not the published numbers.

Layout: :mod:`~symnet.frontend.reproduce.framework` holds the rows, the report
and the registry; :mod:`~symnet.frontend.reproduce.common` what the experiments
share; each experiment is a module of its own (``polyreg_tables``, ``recovery``,
``bridge_tables``, ``symbolic_seed``, ``mlp_optimizers``) that registers itself on
import. A new reproduction is a new module here, imported below.

Example:
    >>> r = reproduce("recovery", quick=True, parts=["relu"], quiet=True)
    >>> [row.metric for row in r.rows][:2]
    ['median test R^2', 'median test R^2']
    >>> r.parts["relu"], r.parts["sigmoid"]
    ('ok', 'not run')
    >>> 0.0 <= r.rows[1].ours <= 1.0
    True
"""

from symnet.frontend.reproduce.framework import (KINDS, REPRODUCTIONS, Context, Part, Reproduction, Row, Spec,
                                                 available, describe, format_value, register, reproduce)

# The experiments register themselves on import, in the order available() lists them.
from symnet.frontend.reproduce import polyreg_tables, recovery, bridge_tables, symbolic_seed, mlp_optimizers  # noqa: F401
from symnet.frontend.reproduce.bridge_tables import APPROX_INTERVAL, POSTERIOR_COEFFICIENTS, relu_approximation
from symnet.frontend.reproduce.recovery import recovery_r2

__all__ = ["APPROX_INTERVAL", "KINDS", "POSTERIOR_COEFFICIENTS", "Context", "Part", "REPRODUCTIONS", "Reproduction",
           "Row", "Spec", "available", "describe", "format_value", "recovery_r2", "register", "relu_approximation",
           "reproduce"]
