"""Dask: chunked, out-of-core and distributed arrays (the chunks are NumPy arrays)."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import array_api_compat
import numpy as np

from hml.backends._base import Backend


class DaskBackend(Backend):
    name = "dask"
    module = "dask.array"
    install = 'pip install "dask[array,distributed]>=2024.8"'

    def version(self) -> str:
        import dask

        return dask.__version__

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_dask_array(array)

    def from_numpy(self, array: np.ndarray, device: Any) -> Any:
        # Chunk along rows only: every algorithm reduces over samples, and one
        # chunk across the features keeps X @ theta a blockwise product.
        da = self.library()
        rows = max(1, min(array.shape[0], (64 * 2**20) // max(1, array[:1].nbytes))) if array.ndim else 1
        chunks = (rows,) + array.shape[1:] if array.ndim else ()
        return da.from_array(array, chunks=chunks)

    def to_numpy(self, array: Any) -> np.ndarray:
        future = _persisted_future(array)
        if future is not None:
            # The value of a persisted chunk (the k-means status, a line search's point):
            # one request to the scheduler, instead of a graph sent, scheduled and run.
            return np.asarray(future.result())
        return np.asarray(array.compute())

    def to_device(self, array: Any, device: Any) -> Any:
        return array

    def materialize(self, *arrays: Any) -> tuple[Any, ...]:
        return persist(*arrays)

    def take_rows(self, ctx: Any, array: Any, indices: np.ndarray) -> Any:
        # Host indices index directly. Indexed by a dask array holding the single index 0,
        # dask (2026.8) gives the result X's shape, not (1, ...): k-means with n_clusters=1
        # then built its update on centroids it believed to be n x d, and failed.
        return array[indices]

    def cheap_data_dependent_shapes(self, array: Any) -> bool:
        # Its chunks' library decides (NumPy: yes; CuPy: no), read from the array's _meta.
        from hml.backends import backend_of

        meta = getattr(array, "_meta", None)
        if meta is None:
            return False
        return backend_of(meta).cheap_data_dependent_shapes(meta)

    def as_input(self, array: Any) -> Any:
        """Chunk sizes that are NaN (``X[mask]``, ``X[X[:, 0] > 0]``) are computed once, on a copy
        (``compute_chunk_sizes`` changes the array it is called on, and this is the user's). It
        costs one pass over the array's graph; ``X.compute_chunk_sizes()`` before ``fit`` saves it
        when the same array is used again. Row chunks of 0 rows (a mask that kept none of a chunk's)
        are dropped: Dask's max over a 0-row chunk raises where NumPy's over the whole would not."""
        if any(math.isnan(size) for sizes in array.chunks for size in sizes):
            array = array.copy().compute_chunk_sizes()
        rows = array.chunks[0]
        if 0 in rows and len(rows) > 1 and sum(rows) > 0:
            array = array.rechunk({0: tuple(size for size in rows if size > 0)})
        return array

    def concrete(self, *arrays: Any) -> tuple[Any, ...]:
        import dask

        return dask.compute(*arrays) if arrays else ()

    lazy = True
    #: Each iteration costs some scheduling whatever the data's size: below this, NumPy is faster
    #: on one machine (benchmarks/dask_overhead.py; the figures are in benchmarks/RESULTS.md).
    small_data_bytes = 256 * 2**20


#: The most chunks' parts one task adds up; more are summed in a tree of such tasks.
_SUM_FAN_IN = 32


def _call_on_chunks(function: Any, *args: Any) -> tuple[Any, ...]:
    """``function`` on one row chunk: blockwise gives the blocks of uncontracted-by-concatenation
    indices (the columns, the shared arrays) as nested one-element lists."""
    return tuple(function(*(_aligned(_single(arg)) for arg in args)))


def _aligned(value: Any) -> Any:
    """A NumPy chunk as it is, or copied when its memory is not aligned to its dtype.

    ``distributed`` deserialises the chunks of ``da.from_array(x).persist()`` at any byte
    offset of the message that carried them (seen: 45, 43, 63 bytes), and NumPy and BLAS
    take slow paths on them: a k-means step on an unaligned chunk takes several times as long
    as the copy that aligns it (``benchmarks/RESULTS.md``)."""
    if isinstance(value, np.ndarray) and not value.flags.aligned:
        return value.copy()
    return value


def _realigned(array: Any) -> Any:
    """``array``; or, where it is persisted on a ``distributed`` cluster in chunks that were
    deserialised unaligned (see :func:`_aligned`), the graph of their aligned copies -- which
    :meth:`DaskBackend.keep` persists, so the copy is made once per fit, not in every pass.

    Only persisted arrays are checked (one round trip of a task per chunk): chunks computed on
    the workers are aligned, and an aligned persisted chunk is not given a second key, which
    the workers' memory accounting would count twice."""
    if _persisted_futures(array) is None:
        return array
    flags = array.map_blocks(
        _is_aligned,
        chunks=tuple((1,) * len(sizes) for sizes in array.chunks),
        dtype=bool,
        meta=np.empty((0,) * array.ndim, dtype=bool),
    )
    if bool(np.all(flags.compute())):
        return array
    return array.map_blocks(_aligned, dtype=array.dtype, meta=array._meta)


def _is_aligned(chunk: Any) -> np.ndarray:
    aligned = not isinstance(chunk, np.ndarray) or chunk.flags.aligned
    return np.full((1,) * chunk.ndim, aligned)


def _single(value: Any) -> Any:
    while isinstance(value, list):
        (value,) = value
    return value


def _output(parts: Any, i: int) -> Any:
    """Output ``i`` of one chunk's call, or of the summed outputs (``parts``: their tuple)."""
    return parts[i]


def _persisted_futures(array: Any) -> list[Any] | None:
    """The ``distributed`` futures holding ``array``'s chunks when all of it is persisted, else None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import Future

    graph = array.__dask_graph__()
    values = list(graph.values()) if len(graph) == array.npartitions else []
    return values if values and all(isinstance(value, Future) for value in values) else None


def _persisted_future(array: Any) -> Any:
    """The ``distributed`` future holding ``array`` when it is one persisted chunk, else None."""
    futures = _persisted_futures(array) if array.npartitions == 1 else None
    return futures[0] if futures else None


def _outputs(result: Any, out: list[Any], like: Any) -> list[Any]:
    """The arrays ``(shape, dtype)`` of ``out`` read from the 0-d dask array of one task's tuple ``result``."""
    from dask.array.utils import meta_from_array

    return [
        result.map_blocks(
            _output,
            i,
            dtype=dtype,
            chunks=tuple((n,) for n in shape),
            new_axis=list(range(len(shape))),
            meta=meta_from_array(like, len(shape), dtype),
        )
        for i, (shape, dtype) in enumerate(out)
    ]


def _pick(summed: list[int], parts: Any, axis: Any = None, keepdims: bool = False) -> tuple[Any, ...]:
    return tuple(parts[i] for i in summed)


def _summed_parts(summed: list[int], parts: list[Any]) -> tuple[Any, ...]:
    """Outputs ``summed`` of every chunk's call (``parts``: their tuples, in chunk order), added up."""
    return _add_parts([_pick(summed, part) for part in parts])


def _add_parts(parts: Any, axis: Any = None, keepdims: bool = False) -> tuple[Any, ...]:
    """The outputs of several chunks (a list of tuples, possibly nested), added up."""
    parts = list(_flatten_parts(parts))
    return tuple(sum(values[1:], values[0]) for values in zip(*parts, strict=True))


def _flatten_parts(parts: Any) -> Iterator[tuple[Any, ...]]:
    if isinstance(parts, tuple):
        yield parts
    else:
        for item in parts:
            yield from _flatten_parts(item)


def _token(*args: Any) -> str:
    from dask.base import tokenize

    return tokenize(*args)


def _memory_for_data() -> float:
    """Bytes the scheduler in use can hold: the sum of the workers' memory limits with a
    ``distributed`` client (unlimited workers count as the host's memory), else this host's
    available memory (the threaded scheduler); infinite where neither can be known."""
    try:
        from distributed import default_client

        workers = default_client().scheduler_info()["workers"].values()
    except (ImportError, ValueError):
        workers = None
    host = _available_host_memory()
    if workers is not None:
        return float(sum(w.get("memory_limit") or host for w in workers))
    return host


def _available_host_memory() -> float:
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # not POSIX
        return math.inf


def reduce_chunks(function: Any, arrays: list[Any], shared: tuple[Any, ...], out: list[Any]) -> tuple[Any, ...]:
    """``function(*row_chunks, *shared)`` on each row chunk of the row-aligned ``arrays``, in the
    chunks' own library, its outputs combined: ``("rows", dtype, None)`` concatenated along the rows,
    ``("sum", shape, dtype)`` added up -- one blockwise task per chunk, and the sums of all chunks
    in one task (a tree of them beyond ``_SUM_FAN_IN`` chunks); ``("rows", dtype, width)``: a matrix
    of ``width`` columns; ``("blocks", dtype)``: one value per block of each chunk. The row primitive
    (:func:`hml.backends.reduce_rows`) hands it the in-memory step of each chunk."""
    import dask.array as da
    from dask.array.utils import meta_from_array

    rows = arrays[0].chunks[0]
    # One blockwise task per row chunk. No index is contracted with concatenation: dask
    # concatenates even a single block into a new array (``concatenate3``), a copy of every
    # chunk of X per call. The columns and the shared arrays come as one-element lists instead.
    letters = iter("abcdefghjklmnopqrstuvwxyz")  # "i" is the rows'
    args: list[Any] = []
    for a in arrays:
        if a.chunks[0] != rows or any(len(c) > 1 for c in a.chunks[1:]):
            a = a.rechunk({0: rows, **{axis: -1 for axis in range(1, a.ndim)}})
        args += [a, "i" + "".join(next(letters) for _ in range(a.ndim - 1))]
    for value in shared:
        args += _whole(value, letters)
    name = "hml-" + getattr(function, "__name__", "chunk")
    parts = da.blockwise(
        _call_on_chunks,
        "i",
        function,
        None,
        *args,
        concatenate=False,
        dtype=object,
        meta=np.empty((0,), dtype=object),
        name=f"{name}-{_token(function, args)}",
    )
    like = arrays[0]._meta
    summed = [i for i, spec in enumerate(out) if spec[0] == "sum"]
    if summed and parts.npartitions <= _SUM_FAN_IN:
        # All sums in one task that takes every chunk's parts (no index "i" in its output:
        # blockwise hands it the list). ``da.reduction`` would add a task per chunk to pick
        # the summed outputs, and, once fused with the chunk's task, an alias task per chunk
        # too: 16 extra rounds of the scheduler per call at 8 chunks.
        total = da.blockwise(
            _summed_parts,
            "",
            summed,
            None,
            parts,
            "i",
            concatenate=False,
            dtype=object,
            meta=np.empty((), dtype=object),
            name=f"{name}-sum-{_token(parts.name, summed)}",
        )
        sums = _outputs(total, [spec[1:] for spec in out if spec[0] == "sum"], like)
    elif summed:
        # All sums in one tree of tasks (32 chunks' parts per task), not one tree per output.
        chunk = functools.partial(_pick, summed)
        total = da.reduction(
            parts,
            chunk,
            _add_parts,
            combine=_add_parts,
            axis=0,
            concatenate=False,
            split_every=_SUM_FAN_IN,
            dtype=object,
            meta=np.empty((), dtype=object),
        )
        sums = _outputs(total, [spec[1:] for spec in out if spec[0] == "sum"], like)
    results = []
    for i, spec in enumerate(out):
        if spec[0] == "rows" and spec[2] is None:
            results.append(parts.map_blocks(_output, i, dtype=spec[1], meta=meta_from_array(like, 1, spec[1])))
        elif spec[0] == "blocks":  # one value per block: how many, the chunk's rows decide
            results.append(
                parts.map_blocks(
                    _output,
                    i,
                    dtype=spec[1],
                    chunks=((math.nan,) * parts.npartitions,),
                    meta=meta_from_array(like, 1, spec[1]),
                )
            )
        elif spec[0] == "rows":  # a matrix: one row of ``width`` values per row
            results.append(
                parts.map_blocks(
                    _output,
                    i,
                    dtype=spec[1],
                    chunks=(parts.chunks[0], (spec[2],)),
                    new_axis=[1],
                    meta=meta_from_array(like, 2, spec[1]),
                )
            )
        else:
            results.append(sums[summed.index(i)])
    return tuple(results)


def call_once(function: Any, args: tuple[Any, ...], out: list[Any]) -> tuple[Any, ...]:
    """``function(*args)`` as one task on the arrays' single chunks (see :func:`hml.backends.call_once`)."""
    import dask.array as da

    letters = iter("abcdefghijklmnopqrstuvwxyz")
    blockwise_args: list[Any] = []
    like = None
    for value in args:
        blockwise_args += _whole(value, letters)
        if like is None and isinstance(value, da.Array):
            like = value._meta
    if like is None:
        return tuple(function(*args))
    name = "hml-" + getattr(function, "__name__", "call")
    result = da.blockwise(
        _call_on_chunks,
        "",
        function,
        None,
        *blockwise_args,
        concatenate=False,
        dtype=object,
        meta=np.empty((), dtype=object),
        name=f"{name}-{_token(function, blockwise_args)}",
    )
    return tuple(_outputs(result, out, like))


def _whole(value: Any, letters: Any) -> list[Any]:
    """A blockwise argument handed whole to each task: a dask array in one chunk with fresh
    index letters (contracted, so the task gets its single block), anything else as it is."""
    import dask.array as da

    if not isinstance(value, da.Array):
        return [value, None]
    if any(len(c) > 1 for c in value.chunks):
        value = value.rechunk(-1)
    return [value, "".join(next(letters) for _ in range(value.ndim))]


#: The share of the memory (the workers' limits; without a cluster, the host's available memory)
#: that the kept training matrices may take: the rest is the computations' own.
KEEP_FRACTION = 0.5


def keep(*arrays: Any) -> tuple[Any, ...]:
    """Persisted when they take at most ``KEEP_FRACTION`` of the memory, else left lazy: then every
    pass streams them from their source -- the chunks are read (or generated) and standardised
    inside the pass -- and a fit needs memory for a few chunks, not X."""
    size = sum(math.prod(a.shape) * a.dtype.itemsize for a in arrays)
    if size <= KEEP_FRACTION * _memory_for_data():
        return persist(*(_realigned(a) for a in arrays))
    return arrays


def persist(*arrays: Any) -> tuple[Any, ...]:
    """The arrays computed and held (on the workers, with a distributed client), waited for."""
    import dask

    persisted: tuple[Any, ...] = dask.persist(*arrays)
    try:  # a distributed client persists in the background: wait for it
        from distributed import default_client, futures_of, wait

        default_client()
    except (ImportError, ValueError):
        return persisted
    # Otherwise the next iteration's graph would be sent before this one is done, and the
    # scheduler would keep the chunks of a streamed X in memory for both (all of X, in the end).
    wait(futures_of(persisted))
    return persisted
