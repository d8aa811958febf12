"""Segment sums and counts: the k-means centroid update, S[k] = Σ_{i : ids[i] = k} values[i].

The standard has no scatter-add; the portable default is a GEMM with the one-hot matrix of the
ids (callers pass row blocks, so the one-hot block stays small). Every library has something
faster, beside it here.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import array_api_extra as xpx
import numpy as np

from hml.kernels import _numba
from hml.kernels._dispatch import kernel

__all__ = ["segment_count", "segment_moves", "segment_sum", "segment_sum_and_count"]


@kernel
def segment_sum(values: Any, segment_ids: Any, n_segments: int) -> Any:
    """S[k] = Σ_{i : ids[i] = k} values[i], shape (n_segments, d): one_hot(ids)ᵀ @ values, the transposed
    one-hot matrix built as it is used ([k = ids[i]] for k down, i across: a third of the time of
    building one_hot(ids) and transposing it, for a few segments)."""
    xp = array_api_compat.array_namespace(values)
    segments = xp.arange(n_segments, dtype=segment_ids.dtype, device=array_api_compat.device(values))
    return xp.astype(segments[:, None] == segment_ids[None, :], values.dtype) @ values


@kernel
def segment_count(segment_ids: Any, n_segments: int, dtype: Any) -> Any:
    """n[k] = #{i : ids[i] = k}, shape (n_segments,), as ``dtype``: the column sums of one_hot(ids)."""
    xp = array_api_compat.array_namespace(segment_ids)
    return xp.sum(xpx.one_hot(segment_ids, n_segments, dtype=dtype, xp=xp), axis=0)


@kernel
def segment_sum_and_count(values: Any, segment_ids: Any, n_segments: int) -> tuple[Any, Any]:
    """``(segment_sum, segment_count)`` of one pass, the counts in ``values``' dtype: the M-step."""
    return segment_sum(values, segment_ids, n_segments), segment_count(segment_ids, n_segments, values.dtype)


@kernel
def segment_moves(
    values: Any, weights: Any, before: Any, after: Any, n_segments: int, dtype: Any = None
) -> tuple[Any, Any, Any]:
    """How S and n change when the rows whose id changed move from segment ``before`` to ``after``:

        ΔSₖ = Σ_{i: afterᵢ = k ≠ beforeᵢ} sᵢxᵢ − Σ_{i: beforeᵢ = k ≠ afterᵢ} sᵢxᵢ,

    Δnₖ the same with sᵢ for xᵢ (sᵢ = 1 without ``weights``), and #{i: afterᵢ ≠ beforeᵢ} (int64, 0-d).
    ΔS and Δn in ``dtype`` (default ``values``'): float64 sums float32 rows without rounding them.
    The moved rows are selected by a data-dependent mask: for libraries where that costs no wait (not
    on a GPU)."""
    xp = array_api_compat.array_namespace(values)
    changed = after != before
    n_changed = xp.sum(xp.astype(changed, xp.int64))
    moved = xp.nonzero(changed)[0]
    rows = xp.astype(xp.take(values, moved, axis=0), values.dtype if dtype is None else dtype, copy=False)
    if weights is None:
        to_sums, to_counts = segment_sum_and_count(rows, xp.take(after, moved), n_segments)
        from_sums, from_counts = segment_sum_and_count(rows, xp.take(before, moved), n_segments)
    else:
        column = xp.reshape(xp.astype(xp.take(weights, moved), rows.dtype, copy=False), (-1, 1))
        rows = rows * column
        to_ids, from_ids = xp.take(after, moved), xp.take(before, moved)
        to_sums, from_sums = segment_sum(rows, to_ids, n_segments), segment_sum(rows, from_ids, n_segments)
        to_counts = xp.reshape(segment_sum(column, to_ids, n_segments), (n_segments,))
        from_counts = xp.reshape(segment_sum(column, from_ids, n_segments), (n_segments,))
    return to_sums - from_sums, to_counts - from_counts, n_changed


# -- NumPy --------------------------------------------------------------------------------------
#: Up to this many segments NumPy's one-hot GEMM (2·n·K·d flops, at BLAS speed) beats the bincount
#: (a scattered write per value, whatever K): 3-7x at K ≤ 10, even at K ≈ 45 in float64 (benchmarks/RESULTS.md).
ONE_HOT_SEGMENTS = 32


@segment_sum.native_path(
    "numpy",
    "with Numba, one compiled pass adding each row to its segment's sum; else one bincount over the flattened "
    "(segment, column) index, which beats the one-hot GEMM (above ONE_HOT_SEGMENTS segments) and np.add.at",
)
def _numpy_segment_sum(values: Any, segment_ids: Any, n_segments: int) -> Any:
    if values.ndim == 2 and _numba.wanted(values.size, values.dtype):
        return _numba.segment_sums(values, segment_ids, n_segments)[0]
    if n_segments <= ONE_HOT_SEGMENTS:
        return NotImplemented  # the portable one-hot GEMM is faster here
    n_columns = values.shape[1]
    flat = (segment_ids[:, None] * n_columns + np.arange(n_columns)).ravel()
    sums = np.bincount(flat, weights=values.ravel(), minlength=n_segments * n_columns)
    return sums.reshape(n_segments, n_columns).astype(values.dtype, copy=False)


@segment_sum_and_count.native_path(
    "numpy", "with Numba, one compiled pass adding each row to its segment's sum and count; else the two kernels"
)
def _numpy_segment_sum_and_count(values: Any, segment_ids: Any, n_segments: int) -> Any:
    if values.ndim == 2 and _numba.wanted(values.size, values.dtype):
        return _numba.segment_sums(values, segment_ids, n_segments)
    return NotImplemented


@segment_moves.native_path("numpy", "with Numba, one compiled pass over the ids: no mask, gathers or four segment sums")
def _numpy_segment_moves(values: Any, weights: Any, before: Any, after: Any, n_segments: int, dtype: Any = None) -> Any:
    if weights is not None or not _numba.wanted(values.size, values.dtype):
        return NotImplemented
    return _numba.segment_moves(values, before, after, n_segments, values.dtype if dtype is None else dtype)


@segment_count.native_path("numpy", "bincount: no one-hot matrix")
def _numpy_segment_count(segment_ids: Any, n_segments: int, dtype: Any) -> Any:
    return np.bincount(segment_ids, minlength=n_segments).astype(dtype)


# -- PyTorch ------------------------------------------------------------------------------------
@segment_sum.native_path("torch", "index_add_ is a native scatter-add (atomic on CUDA)")
def _torch_segment_sum(values: Any, segment_ids: Any, n_segments: int) -> Any:
    import torch

    sums = torch.zeros((n_segments, values.shape[1]), dtype=values.dtype, device=values.device)
    return sums.index_add_(0, segment_ids, values)


@segment_count.native_path(
    "torch", "bincount on the CPU; on a GPU index_add_, since bincount reads max(ids) back (a sync)"
)
def _torch_segment_count(segment_ids: Any, n_segments: int, dtype: Any) -> Any:
    import torch

    if segment_ids.device.type == "cpu":
        return torch.bincount(segment_ids, minlength=n_segments).to(dtype)
    counts = torch.zeros(n_segments, dtype=dtype, device=segment_ids.device)
    return counts.index_add_(0, segment_ids, torch.ones(segment_ids.shape, dtype=dtype, device=segment_ids.device))


# -- CuPy ---------------------------------------------------------------------------------------
@segment_sum.native_path("cupy", "cupy.add.at: atomic adds on the GPU")
def _cupy_segment_sum(values: Any, segment_ids: Any, n_segments: int) -> Any:
    import cupy

    sums = cupy.zeros((n_segments, values.shape[1]), dtype=values.dtype)
    cupy.add.at(sums, segment_ids, values)
    return sums


@segment_count.native_path("cupy", "cupy.add.at, not cupy.bincount, which reads max(ids) back (a sync)")
def _cupy_segment_count(segment_ids: Any, n_segments: int, dtype: Any) -> Any:
    import cupy

    counts = cupy.zeros(n_segments, dtype=dtype)
    cupy.add.at(counts, segment_ids, cupy.ones(segment_ids.shape, dtype=dtype))
    return counts


@segment_sum_and_count.native_path("cupy", "one kernel with per-block shared-memory sums, not two scatter-adds")
def _cupy_segment_sum_and_count(values: Any, segment_ids: Any, n_segments: int) -> Any:
    from hml.kernels import _cuda

    return _cuda.segment_sums(values, segment_ids, n_segments)
