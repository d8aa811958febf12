"""Work over the rows of X: the one place that decides row blocks, threads and Dask chunks.

An algorithm writes what one block of rows contributes -- a function of the blocks of some
row-aligned arrays (X, ‖x‖², the previous labels) and of small shared arrays (θ, the
centroids) -- and names its outputs: rows (one value per row, as labels), sums (added over the
blocks, as ∇J or the centroid sums) or one value per block. :func:`reduce_rows` runs it:

* in memory, on blocks whose temporaries fit ``working_memory`` (8 MiB on a CPU, so a block stays
  in cache while every step of it reads it; 256 MiB on a GPU, where a block is a few kernel
  launches), on a thread per core for NumPy (BLAS held to one thread, so the two kinds of
  threads do not compete), in order elsewhere, and in order on the calling thread when a block
  itself calls :func:`reduce_rows` (the pool's threads are all busy with the outer blocks);
* on Dask, as one task per chunk of the rows, which runs the same in-memory step in the chunk's
  library, and one task that adds up all the chunks' sums.

The sums are added in block order however the blocks were scheduled, so the same data on the same
machine gives the same result bit for bit, run after run, on threads or not. The blocks themselves
are balanced over the cores (:func:`_balanced_rows`), so another core count may cut other blocks and
change a sum to rounding, as a threaded BLAS or scikit-learn's threaded k-means do.

BLAS's thread count is a setting of the whole process, and calls come from several threads at once
(Dask's chunk tasks, fits in user threads): one reference-counted hold sets it to one thread for the
first of them and restores it after the last. While it is held, any thread's BLAS runs on one thread.
:func:`call_once` runs a small update (parameters, sums) as one task on Dask; :func:`keep` holds a
fit's training matrices in memory when they fit there.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import array_api_compat

from hml._platform import can_start_threads
from hml.backends import _dask
from hml.backends._base import Backend

__all__ = ["PerBlock", "Rows", "Sum", "block_bytes", "call_once", "keep", "reduce_rows"]


@dataclass(frozen=True)
class Rows:
    """An output with one value per row (``width`` values: a row of a matrix): the blocks' values,
    concatenated in row order."""

    dtype: Any
    width: int | None = None


@dataclass(frozen=True)
class PerBlock:
    """An output with one value per block (a 1-element array from each): the blocks' values in row
    order -- a block's row count and a total, say, for a search that narrows to one block."""

    dtype: Any


@dataclass(frozen=True)
class Sum:
    """An output of ``shape`` summed over the blocks, in block order."""

    shape: tuple[int, ...]
    dtype: Any


#: Bytes of temporaries per block: a CPU's cache-sized blocks, a GPU's few long launches.
CPU_BLOCK_BYTES = 1 << 23
GPU_BLOCK_BYTES = 1 << 28


def block_bytes(backend: Backend, device: Any) -> int:
    """The default ``working_memory`` of a block computed by ``backend`` on ``device``."""
    return GPU_BLOCK_BYTES if backend.on_gpu(device) else CPU_BLOCK_BYTES


def reduce_rows(
    function: Callable[..., Sequence[Any]],
    arrays: Sequence[Any],
    shared: Sequence[Any] = (),
    *,
    out: Mapping[str, Rows | PerBlock | Sum],
    row_bytes: int | Callable[[Any], int],
    working_memory: int | None = None,
    start: dict[str, Any] | None = None,
) -> SimpleNamespace:
    """``function(*row_blocks, *shared)`` over the rows of the row-aligned ``arrays``; its outputs,
    a tuple in the order of ``out``, combined by their kind and returned by name.

    ``row_bytes``: the bytes a block needs per row (its rows and the temporaries it makes), or a
    function of a block's first array that says so in its own library; the rows per block follow:
    ``working_memory`` (default :func:`block_bytes`) / ``row_bytes``. ``start``: running totals
    the sums of those names are added to, first.
    """
    from hml.backends import backend_of

    specs = list(out.values())
    backend = backend_of(arrays[0])
    first = tuple(start.get(name) if start else None for name in out)
    step = functools.partial(_in_memory, function, tuple(specs), row_bytes, working_memory, len(arrays))
    if backend.lazy:
        kinds = [_dask_kind(spec) for spec in specs]
        # One task per chunk, each the in-memory step in the chunk's library; a meaningful name
        # for the task stream instead of "partial".
        step.__name__ = getattr(function, "__name__", "rows")  # type: ignore[attr-defined]
        results = list(_dask.reduce_chunks(step, list(arrays), tuple(shared), kinds))
        results = [value if total is None else total + value for value, total in zip(results, first, strict=True)]
    else:
        results = list(step(*arrays, *shared, starts=first))
    return SimpleNamespace(**dict(zip(out, results, strict=True)))


def _dask_kind(spec: Rows | PerBlock | Sum) -> tuple[Any, ...]:
    if isinstance(spec, Rows):
        return ("rows", spec.dtype, spec.width)
    if isinstance(spec, PerBlock):
        return ("blocks", spec.dtype)
    return ("sum", spec.shape, spec.dtype)


def call_once(
    function: Callable[..., Sequence[Any]], args: Sequence[Any], out: list[tuple[Any, Any]]
) -> tuple[Any, ...]:
    """``function(*args)`` on small arrays (parameters, sums over the rows), returning the tuple of
    arrays that ``out`` lists as ``(shape, dtype)``; ``args`` that are not arrays pass as they are.

    In memory it is a call. On Dask it is one task on the arrays' single chunks, in their library:
    an update written as ~20 small array operations (the k-means M-step and its convergence
    status) is then one round of the scheduler instead of ~20.
    """
    if any(array_api_compat.is_dask_array(arg) for arg in args):
        return _dask.call_once(function, tuple(args), out)
    return tuple(function(*args))


@contextlib.contextmanager
def small_steps(like: Any) -> Iterator[None]:
    """Around a loop of many small dependent operations on arrays like ``like`` (the steps of
    mini-batch k-means): NumPy's BLAS at one thread, where a thin product's threads cost more than
    they save (a 1024 × 32 by 32 × 64 product takes about 2.5x as long on two threads as on one on a
    2-core machine; scikit-learn limits its mini-batch steps the same way). Elsewhere nothing changes."""
    from hml.backends import backend_of

    if backend_of(like).name != "numpy" or _blas_controller() is None:
        yield
        return
    with _ONE_BLAS_THREAD:
        yield


def keep(*arrays: Any) -> tuple[Any, ...]:
    """The training matrices an iterative fit passes over again and again: on Dask, computed once and
    held when they take at most ``hml.backends._dask.KEEP_FRACTION`` of the memory (the workers'
    limits, or the host's available memory), else left lazy, so every pass streams them from their
    source; elsewhere they already are in memory."""
    if arrays and array_api_compat.is_dask_array(arrays[0]):
        return _dask.keep(*arrays)
    return arrays


def _in_memory(
    function: Callable[..., Sequence[Any]],
    specs: tuple[Rows | PerBlock | Sum, ...],
    row_bytes: int | Callable[[Any], int],
    working_memory: int | None,
    n_arrays: int,
    *args: Any,
    starts: tuple[Any, ...] | None = None,
) -> tuple[Any, ...]:
    """The blocks of an in-memory array (or of one Dask chunk), run and combined: rows in row order,
    one value per block in block order, sums added in block order (to ``starts``, where given)."""
    from hml.backends import backend_of

    arrays, shared = args[:n_arrays], args[n_arrays:]
    first = arrays[0]
    backend = backend_of(first)
    budget = working_memory if working_memory is not None else block_bytes(backend, array_api_compat.device(first))
    per_row = row_bytes(first) if callable(row_bytes) else row_bytes
    n = first.shape[0]
    most = max(1, budget // max(1, per_row))
    # One block needs no thread count: os.cpu_count() reads /sys each time, ~6 µs in every evaluation of a small fit.
    rows = most if n <= most else _balanced_rows(n, most, _threads() if backend.name == "numpy" else 1)
    bounds = [(start, min(start + rows, n)) for start in range(0, n, rows)] or [(0, 0)]
    xp = array_api_compat.array_namespace(first)
    filled: list[Any] = [None] * len(specs)
    if len(bounds) == 1:  # one block: the outputs as they come, no copy
        parts = [function(*arrays, *shared)]
    else:
        # Row outputs are written into arrays made for all rows as each block finishes, in its
        # thread: no list of block results, and no copy to concatenate them.
        device = array_api_compat.device(first)
        filled = [
            xp.empty((n,) if spec.width is None else (n, spec.width), dtype=spec.dtype, device=device)
            if isinstance(spec, Rows)
            else None
            for spec in specs
        ]

        def block(bound: tuple[int, int]) -> list[Any]:
            start, stop = bound
            values = list(function(*(array[start:stop, ...] for array in arrays), *shared))
            for i, target in enumerate(filled):
                if target is not None:
                    target[start:stop, ...] = values[i]
                    values[i] = None
            return values

        parts = _run(backend, block, bounds)
    starts = starts or (None,) * len(specs)
    combined = []
    for i, (spec, total) in enumerate(zip(specs, starts, strict=True)):
        values = [part[i] for part in parts]
        if isinstance(spec, Rows):
            combined.append(values[0] if filled[i] is None else filled[i])
        elif isinstance(spec, PerBlock):
            combined.append(values[0] if len(values) == 1 else xp.concat(values))
        else:
            combined.append(sum(values, total) if total is not None else sum(values[1:], values[0]))
    return tuple(combined)


def _balanced_rows(n: int, most: int, threads: int) -> int:
    """Rows per block for ``n`` rows, at most ``most``: blocks of (nearly) equal size, and when there are
    several, as many as a multiple of ``threads`` -- so that every thread gets the same work, not one
    thread a short last block (at 200,000 rows in 21,845-row blocks, 109,225 rows against 90,775; 0.92× the
    time of Lloyd at 200,000 × 32, K = 64). The blocks, and so the order a sum is added in, follow the core
    count: another machine may round a sum differently (the module's docstring)."""
    blocks = -(-n // most)
    if blocks > 1 and threads > 1:
        blocks = -(-blocks // threads) * threads
    return max(1, -(-n // max(1, blocks)))


def _run(backend: Backend, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[function(item) for item in items]``, in item order: NumPy's on a thread per core (NumPy
    releases the GIL in its kernels) with BLAS at one thread, in interleaved groups so each thread
    has as much work; in order elsewhere, without threadpoolctl (the portable path), and on a block's
    own thread (a block that calls :func:`reduce_rows`: queued behind the busy outer blocks, its
    blocks would wait for ever)."""
    workers = min(_threads(), len(items)) if backend.name == "numpy" else 1
    if workers == 1 or _blas_controller() is None or getattr(_block_thread, "runs_blocks", False):
        return [function(item) for item in items]
    groups = [items[i::workers] for i in range(workers)]
    with _ONE_BLAS_THREAD:
        results = list(_pool(workers).map(lambda group: [function(item) for item in group], groups))
    ordered: list[Any] = [None] * len(items)
    for offset, group_results in enumerate(results):
        ordered[offset::workers] = group_results
    return ordered


def _threads() -> int:
    """Threads for CPU blocks: ``HML_NUM_THREADS`` where set (e.g. cores ÷ n_jobs for scikit-learn's
    ``GridSearchCV(n_jobs=...)``); else one per core this process may run on, or one inside a ``distributed``
    worker's task, where the worker's threads are the parallelism (two worker processes on two cores would
    otherwise run four compute threads). Not ``OMP_NUM_THREADS``: a ``LocalCluster`` sets it to 1 in the
    client too.
    One where no thread can start (Pyodide, in a browser), however many cores are reported."""
    if not can_start_threads():
        return 1
    chosen = os.environ.get("HML_NUM_THREADS", "").strip()
    if chosen:
        if not (chosen.isascii() and chosen.isdigit()) or int(chosen) < 1:  # "²" is a digit to isdigit
            raise ValueError(f"HML_NUM_THREADS={chosen!r}: give a whole number of threads >= 1, or unset it")
        return int(chosen)
    distributed = sys.modules.get("distributed")  # imported in every worker; not imported here
    if distributed is not None:
        try:
            distributed.get_worker()
            return 1
        except ValueError:  # not in a worker's task
            pass
    affinity = getattr(os, "sched_getaffinity", None)  # the cores this process may use (taskset, a container's)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """threadpoolctl's controller, built once (it scans the loaded libraries); None if not installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


class _OneBlasThread:
    """``with _ONE_BLAS_THREAD:`` BLAS at one thread, from any number of threads at once.

    threadpoolctl's limit is a setting of the process that restores on exit what it saw on entry:
    entered from two threads, the second sees one thread and "restores" it, and BLAS stays at one
    thread for the rest of the process if that one leaves last. Here the first holder sets it (and
    its limiter remembers the setting before), the last one out restores it, and the others only
    count -- a lock and a counter, a fraction of a microsecond on top of the first's threadpoolctl
    call. While held, every thread's BLAS runs on one thread, a user's NumPy products in another
    thread too: the setting is the process's.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._limiter: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._holders == 0:
                controller = _blas_controller()
                self._limiter = _controlling(lambda: controller.limit(limits=1, user_api="blas"))
            self._holders += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                limiter, self._limiter = self._limiter, None
                _controlling(limiter.restore_original_limits)


_ONE_BLAS_THREAD = _OneBlasThread()


def _controlling(change: Callable[[], Any]) -> Any:
    """``change()`` of BLAS's threads from this thread, whichever set them before. threadpoolctl ≥ 3.8
    lets only one thread change OpenBLAS's (pthreads) threads, the first that did, until it leaves a
    ``with`` limit; the hold sets from its first holder's thread and restores from its last one's,
    with no ``with`` around the two, so it takes the control for the change and gives it back."""
    import threadpoolctl

    owner = getattr(threadpoolctl, "OpenBLASController", None)
    release = getattr(owner, "clear_controlling_thread", None)
    if release is None:  # threadpoolctl < 3.8: any thread sets them
        return change()
    release(force=True)
    try:
        return change()
    finally:
        release()


#: ``runs_blocks`` is true on the pool's threads, where a nested :func:`reduce_rows` runs in order.
_block_thread = threading.local()


def _mark_block_thread() -> None:
    _block_thread.runs_blocks = True


@functools.lru_cache(maxsize=4)
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix="hml-block", initializer=_mark_block_thread
    )


def _after_fork_in_child() -> None:
    """A child forked (``multiprocessing``, joblib's ``"multiprocessing"`` backend) inherits the pools but not
    their threads: its first blocks would wait for ever on workers that do not exist. It starts afresh."""
    _pool.cache_clear()
    _ONE_BLAS_THREAD.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
