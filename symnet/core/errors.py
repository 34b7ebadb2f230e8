"""Exceptions for bad input and failed runs.

Every error a user can cause derives from :class:`SymnetError`. The CLI turns
each one into a single line on stderr and exit code 2; notebooks see an
ordinary exception whose message names the problem and the fix.
"""


class SymnetError(Exception):
    """Base class of every error that symnet raises on purpose."""


class DataError(SymnetError, ValueError):
    """Input data has the wrong shape, dtype, range or contents."""


class DatasetNotFoundError(SymnetError, FileNotFoundError):
    """A dataset's files are absent and cannot be downloaded."""


class CorruptFileError(SymnetError, ValueError):
    """A file exists but is truncated, corrupt or of the wrong format."""


class ModelError(SymnetError, ValueError):
    """A model spec, layer or parameter is invalid for the requested use."""


class SolverError(SymnetError, ValueError):
    """An unknown solver name or an invalid solver option."""


class DivergenceError(SymnetError, FloatingPointError):
    """Training produced a non-finite loss; the last finite parameters are kept."""


class RunExistsError(SymnetError, FileExistsError):
    """An output folder already holds a run; resume it, overwrite it, or pick another folder."""


class ClusterError(SymnetError, RuntimeError):
    """A Dask cluster cannot be reached, lacks what a run needs, or lost the shards of a run it could not rebuild.

    The run stops; its last checkpoint (written after the last finished step) is intact, and
    ``--resume`` continues it with or without a cluster.
    """


class ResourceError(SymnetError, MemoryError):
    """The work would need more memory than the machine has available (refused before allocating it)."""


class SymnetWarning(UserWarning):
    """Something about a run the user did not ask about: a budget cut short, a step that could not be cut.

    The CLI prints each one as a line ``symnet: note: ...`` on stderr.
    """
