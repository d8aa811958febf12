"""The k-means E-step for a block of rows: each row's nearest centroid, by the GEMM identity
‖x − c‖² = ‖x‖² − 2x·c + ‖c‖² (the ‖x‖² term is the same for every centroid, so argmin skips it)."""

from __future__ import annotations

from typing import Any

import array_api_compat

from hml.kernels._dispatch import kernel

__all__ = ["nearest_centroid", "nearest_centroid_scratch", "row_major", "scores"]


def scores(block: Any, centroids: Any, centroid_norms: Any) -> Any:
    """‖c‖² − 2 x·c for every row x of ``block`` and centroid c: ‖x − c‖² without the ‖x‖² term.
    One GEMM; −2 is folded into the small centroid matrix."""
    result = block @ (-2.0 * centroids).T
    result += centroid_norms
    return result


@kernel
def nearest_centroid(block: Any, centroids: Any, centroid_norms: Any, *, with_scores: bool = False) -> tuple[Any, Any]:
    """lᵢ = argminₖ ‖cₖ‖² − 2 xᵢ·cₖ (int32) and, with ``with_scores``, that minimum (‖xᵢ − c_{lᵢ}‖²
    without the ‖xᵢ‖² term), else None: one GEMM for the rows × K scores, then argmin (and min).
    For finite rows and centroids (k-means validates both): with a NaN among them, which centroid a
    path calls nearest is not specified."""
    xp = array_api_compat.array_namespace(block)
    block_scores = scores(block, centroids, centroid_norms)
    index = xp.argmin(block_scores, axis=1)
    nearest = xp.astype(index, xp.int32)
    if not with_scores:
        return nearest, None
    # The minimum is the score at the argmin: gathered, not reduced again (a second pass over short rows).
    take_along_axis = getattr(xp, "take_along_axis", None)
    if take_along_axis is None:  # before the 2024.12 standard
        return nearest, xp.min(block_scores, axis=1)
    return nearest, take_along_axis(block_scores, xp.reshape(index, (-1, 1)), axis=1)[:, 0]


@kernel
def nearest_centroid_scratch(like: Any, n_clusters: int, n_features: int) -> int:
    """Values per row that :func:`hml.kernels.nearest_centroid` writes to memory for rows of ``n_features`` in the
    library and dtype of ``like``: the K scores."""
    return n_clusters


#: NumPy's nearest centroid by a running minimum over the centroids up to this many of them, on blocks of
#: at least RUNNING_MINIMUM_ROWS rows per centroid (its 6(K − 1) vector operations cost a call each, which
#: shorter blocks do not repay); otherwise the scores' argmin along each row (``benchmarks/RESULTS.md``:
#: issue 24's small-K path).
RUNNING_MINIMUM_CENTROIDS = 16
RUNNING_MINIMUM_ROWS = 1024


@nearest_centroid.native_path(
    "numpy",
    "a compiled loop over each row's scores where Numba is installed (argmin is a call per row; where the GEMM is "
    "thin, the scores too: float64, 3 ≤ K ≤ 8, or K ≤ 64 at D ≤ 16); else, for K ≤ 16 "
    "on blocks of ≥ 1024·K rows, branch-free (argmin mispredicts a branch per score in short rows)",
)
def _numpy_nearest_centroid(
    block: Any, centroids: Any, centroid_norms: Any, *, with_scores: bool = False
) -> tuple[Any, Any] | Any:
    """With Numba (:mod:`hml.kernels._numba`, on blocks of enough scores): the GEMM, then one compiled
    pass over each row's scores -- or, where the GEMM is thin (``_numba.skips_gemm``: float64, 3 ≤ K ≤ 8,
    or K ≤ 64 at D ≤ 16), no GEMM: one compiled pass over the rows, eight scores a row in one vector register.

    Without it: the scores as K × rows (one GEMM), then for k = 1 … K − 1 a pass over the rows: the running
    minimum m ← min(m, sₖ) and the label l ← l + [sₖ < m]·(k − l) -- the first k of the least score,
    as argmin -- with no per-element branch (NumPy's argmin along rows of a few scores takes one
    per score, mispredicted on data whose nearest centroid is random)."""
    import numpy as np

    from hml.kernels import _numba

    k = centroids.shape[0]
    if _numba.wanted(block.shape[0] * k, block.dtype):
        if _numba.skips_gemm(k, block.shape[1], block.dtype):
            labels, best = _numba.nearest_without_gemm(block, centroids, centroid_norms)
        else:
            labels, best = _numba.nearest_in_rows(block, centroids, centroid_norms)
        return labels, (best if with_scores else None)
    if k > RUNNING_MINIMUM_CENTROIDS or block.shape[0] < RUNNING_MINIMUM_ROWS * k:
        return NotImplemented
    scores_t = (-2.0 * centroids) @ block.T  # K × rows: each centroid's scores contiguous
    n = scores_t.shape[1]
    # Each score row completed in place, the first one the running minimum: no vector beyond the K
    # scores but three of bytes (so the block's scratch is K values a row, as argmin's).
    best = scores_t[0]
    best += centroid_norms[0]
    # Labels in bytes while they are built (a quarter of the traffic of int32; the arithmetic, modulo
    # 256, is exact for labels below 256).
    labels = np.zeros(n, dtype=np.uint8)
    below, step = np.empty(n, dtype=bool), np.empty(n, dtype=np.uint8)
    for j in range(1, k):
        score = scores_t[j]
        score += centroid_norms[j]
        np.less(score, best, out=below)
        np.minimum(best, score, out=best)
        np.subtract(np.uint8(j), labels, out=step)
        np.multiply(step, below, out=step)
        labels += step
    return labels.astype(np.int32), (best if with_scores else None)


@nearest_centroid.native_path("cupy", "one fused kernel: the N × K scores never reach GPU memory")
def _cupy_nearest_centroid(
    block: Any, centroids: Any, centroid_norms: Any, *, with_scores: bool = False
) -> tuple[Any, Any] | Any:
    from hml.kernels import _cuda

    if not _cuda.fuses(block.dtype, block.shape[1]):
        return NotImplemented
    labels, best = _cuda.nearest_centroid(block, centroids, centroid_norms)
    return labels, (best if with_scores else None)


@nearest_centroid_scratch.native_path("cupy", "the fused kernel writes a label and a score per row, not K scores")
def _cupy_nearest_centroid_scratch(like: Any, n_clusters: int, n_features: int) -> int | Any:
    from hml.kernels import _cuda

    return 2 if _cuda.fuses(like.dtype, n_features) else NotImplemented


@kernel
def row_major(X: Any) -> Any:
    """X with each row's values adjacent in memory, for the passes over row blocks that read it again and
    again (k-means' iterations). The standard has no memory layout: X itself."""
    return X


@row_major.native_path(
    "numpy",
    "a column-major X (a pandas frame's values) copied once, as scikit-learn's KMeans does: the compiled loops "
    "read rows contiguously, and would otherwise copy each block on every pass",
)
def _numpy_row_major(X: Any) -> Any:
    import numpy as np

    return np.ascontiguousarray(X)
