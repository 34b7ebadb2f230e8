"""The machine's resources: BLAS threads around numba-parallel work, and memory probes.

The convolution, pooling and restriction kernels are numba-parallel over all
cores. A multi-threaded BLAS between them oversubscribes the cores: OpenBLAS
threads spin for a while after each call and steal the cores the next numba
region needs. On 2 cores, batches of 128 through ``poly2`` measured 1.5-3x
slower with BLAS on 2 threads than on 1 (the GEMMs of a batch are small enough
that one thread runs them near peak). Large GEMMs (polyreg's Gram matrices)
keep the default.

Memory: :func:`peak_rss_mb` for a process's peak, :class:`MemoryProbe` for the
growth over one block of code (the comparison's ``peak +MB`` column).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Iterator

from symnet.core.errors import ResourceError


@functools.lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspects the loaded libraries once (milliseconds)


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Run the block with BLAS limited to ``n`` threads (``None``: leave it as it is).

    Example:
        >>> import numpy as np
        >>> with blas_threads(1):
        ...     _ = np.ones((64, 64)) @ np.ones((64, 64))
    """
    if n is None:
        yield
        return
    with _controller().limit(limits=int(n), user_api="blas"):
        yield


def available_blas_threads() -> int:
    """The BLAS threads a large GEMM may use: the cores, unless the environment pins BLAS lower."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var)
        if value and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB (``None`` where the OS does not say).

    Example:
        >>> peak_rss_mb() > 0
        True
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _proc_status_mb() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024.0
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset the kernel's peak-resident counter of this process (Linux); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return "VmHWM" in _proc_status_mb()
    except OSError:
        return False


def available_memory_bytes() -> int | None:
    """Memory the kernel says a new allocation can get without swapping (``MemAvailable``), None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def require_memory(nbytes: float, what: str, fix: str, *, available: int | None = None) -> None:
    """Refuse, before anything is allocated, work that would need more memory than this machine has free.

    Numpy hands out large zeroed arrays lazily, so an oversized model or cache is not
    refused by the allocator: it grows page by page until the kernel kills the process
    with no message. This turns that into one line with the estimate and the fix.

    Args:
        nbytes: the estimate of what the work needs at its peak.
        what: what needs it, for the message ("the model's parameters").
        fix: how to need less ("build it smaller").
        available: bytes available (default: :func:`available_memory_bytes`; unknown: no check).

    Raises:
        ResourceError: the estimate exceeds what is available; the message names both figures.

    Example:
        >>> require_memory(2e9, "the cache", "use fewer samples", available=10**12)
        >>> require_memory(2e12, "the cache", "use fewer samples", available=10**9)
        Traceback (most recent call last):
        ...
        symnet.core.errors.ResourceError: the cache would need about 2,000 GB of memory but 1.0 GB is available; use fewer samples
    """
    free = available_memory_bytes() if available is None else available
    if free is not None and nbytes > free:
        need = f"{nbytes / 1e9:,.0f}" if nbytes >= 1e10 else f"{nbytes / 1e9:.1f}"
        raise ResourceError(f"{what} would need about {need} GB of memory but {free / 1e9:.1f} GB is available; {fix}")


class MemoryProbe:
    """Resident-memory growth of this process over a block of code, in MiB (``growth``; None if unknown).

    On Linux the kernel's peak counter is reset on entry, so the figure is the
    block's own peak; elsewhere it is the growth of the process's lifetime peak
    (a block that peaks below an earlier one shows 0).

    Example:
        >>> import numpy as np
        >>> with MemoryProbe() as probe:
        ...     a = np.ones(2**24)          # 128 MiB
        >>> probe.growth is None or probe.growth > 100
        True
    """

    def __enter__(self) -> "MemoryProbe":
        self.resettable = reset_peak()
        self.before = _proc_status_mb().get("VmRSS") if self.resettable else peak_rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        self.peak = _proc_status_mb().get("VmHWM") if self.resettable else peak_rss_mb()
        if self.peak is None or self.before is None:
            self.growth = None
        else:
            self.growth = max(0.0, self.peak - self.before)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (see :func:`terminate_as_interrupt`): every path that keeps a
    checkpoint and cleans up on Ctrl-C does the same for it, and the command line exits with 143."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread, so that ``kill`` ends a run the
    way Ctrl-C does: its state kept, its children stopped, one line and exit code 143 instead of a silent
    death. The previous handler is back afterwards; outside the main thread nothing changes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupt_of(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt (or :class:`Terminated`) that ``exc`` is, or was raised while handling; else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def caused_by_interrupt(exc: BaseException | None) -> bool:
    """True for a KeyboardInterrupt, or for an error raised while one was pending.

    Ctrl-C that lands inside a compiled (numba) kernel surfaces as a
    ``SystemError`` ("returned a result with an exception set") whose context
    is the KeyboardInterrupt; callers treat both the same way.

    Example:
        >>> try:
        ...     try:
        ...         raise KeyboardInterrupt
        ...     except KeyboardInterrupt:
        ...         raise SystemError("returned a result with an exception set")
        ... except SystemError as exc:
        ...     caused_by_interrupt(exc)
        True
    """
    return interrupt_of(exc) is not None
