"""Compiled loops for NumPy arrays, by Numba: the steps NumPy can only take as a call per row.

Optional. hml needs no compiler and no Numba: the ``numba`` extra adds it (``pip install
"homemade-ml[numba]"``), and then k-means' nearest centroid and centroid sums run here on NumPy arrays.
Without it (or with ``HML_NUMBA=0``, or where Numba cannot compile, as under Pyodide) the NumPy paths
beside each caller run: the same nearest centroids bit for bit (the same additions in the same dtype,
the first of equal minima), the same sums to rounding (added in another order). ``tests/test_kernels.py``
checks both against the same references; ``benchmarks/RESULTS.md`` says what each buys.

The loops compile on first use (``cache=True``: once a machine, then loaded from Numba's cache), and
release the GIL, so the row-block threads of :func:`hml.backends.reduce_rows` run them side by side.
Loading Numba costs a fresh process about 0.6 s, once: the callers take a loop only for a block of
at least :data:`MIN_WORK`, so small fits never pay it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np

#: What to install for them (``pyproject.toml``'s ``numba`` extra; ``tests/test_kernels.py`` keeps the two equal):
#: the requirement itself, which works however hml was installed (a checkout, a wheel, PyPI).
REQUIREMENT = "numba>=0.60"

#: Whether the compiled loops run where Numba is installed; ``HML_NUMBA=0`` turns them off.
ENABLED: bool = os.environ.get("HML_NUMBA", "1") != "0"

#: The least work (rows × K scores, or rows × D values summed) of a block for which a kernel takes its
#: compiled loop: below it the NumPy path runs, so a small fit never loads Numba.
MIN_WORK = 1 << 18

#: Above 256 centroids each row's least score is found in eight lanes at once (:func:`_nearest_in_lanes`),
#: where the one-chain loop was no faster than NumPy's argmin (which the paths took there before): a fit at
#: K = 512-1,024 in 0.86-0.95 of the time. At K = 64-256 the lanes won on random scores but not in fits
#: (1.08-1.21 of the chain's time at K = 64, 0.99-1.04 at 128-256: ``benchmarks/RESULTS.md``).
LANES_FROM = 257


def wanted(work: int, dtype: Any) -> bool:
    """Whether a kernel should take its compiled loop for a block of ``work`` (rows × K or rows × D) in ``dtype``."""
    return ENABLED and work >= MIN_WORK and dtype in (np.float32, np.float64) and _loops() is not None


def skips_gemm(n_clusters: int, n_features: int, dtype: Any) -> bool:
    """Whether the nearest centroid should skip the GEMM (:func:`nearest_without_gemm`): in float64 with
    3 ≤ K ≤ 8 at any D, or K ≤ 64 at D ≤ 16. There a GEMM of so few columns, or so few terms, is too thin
    for BLAS's kernels, and accumulating eight centroids' scores in one vector register took 0.51-0.89 of
    the GEMM-and-loop's time (one thread, 16,384 rows; above those K or D, 0.8-1.2; in float32, whose
    vectors hold twice the lanes, and at K = 2, not reliably less: ``benchmarks/RESULTS.md``)."""
    small = n_clusters <= 8 or (n_clusters <= 64 and n_features <= 16)
    return dtype == np.float64 and n_clusters >= 3 and small


def status() -> str:
    """Whether the compiled loops run, and if not why, in one line (``hml info``): without loading Numba."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        return f'off: Numba is not installed (pip install "{REQUIREMENT}" for faster k-means on the CPU)'
    if not ENABLED:
        return f"off: HML_NUMBA=0 (Numba {version} is installed)"
    return f"on, by Numba {version}: k-means' nearest centroid and centroid sums on NumPy arrays"


def nearest_in_rows(block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
    """lᵢ = argminₖ sᵢₖ + ‖cₖ‖² (int32; the first of equal minima, as argmin) and that minimum, for the
    scores sᵢₖ = −2 xᵢ·cₖ of a block's rows: the GEMM, then one pass over each row's scores in
    registers, where NumPy writes the sums back and calls argmin once a row."""
    loops = _loops()
    assert loops is not None, "nearest_in_rows without Numba: ask wanted first"
    scores = block @ (-2.0 * centroids).T  # as kernels.scores: the same GEMM, so the same bits
    labels = np.empty(block.shape[0], dtype=np.int32)
    best = np.empty(block.shape[0], dtype=scores.dtype)
    loop = loops.nearest_in_lanes if centroids.shape[0] >= LANES_FROM else loops.nearest_in_rows
    loop(scores, np.ascontiguousarray(centroid_norms, dtype=scores.dtype), labels, best)
    return labels, best


def nearest_without_gemm(block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
    """lᵢ and its minimum, as :func:`nearest_in_rows`, without the GEMM: each row's scores
    ‖cₖ‖² − 2 xᵢ·cₖ accumulated eight centroids at a time in one vector register, over xᵢ's features in
    order (so rounding, and the label at a near-tie, may differ from the GEMM's; exact ties still go to
    the first centroid). The centroids are padded to a multiple of eight with ‖c‖² = +∞, never nearest."""
    loops = _loops()
    assert loops is not None, "nearest_without_gemm without Numba: ask wanted first"
    assert block.dtype == np.float64, "nearest_without_gemm: float64 only"
    labels = np.empty(block.shape[0], dtype=np.int32)
    best = np.empty(block.shape[0])
    loops.nearest_by_eights(block, *in_eights(centroids, centroid_norms, block.dtype), labels, best)
    return labels, best


def in_eights(centroids: Any, centroid_norms: Any, dtype: Any) -> tuple[Any, Any]:
    """:func:`_nearest_by_eights`' arguments: −2c as G × D × 8 (group g's eight centroids by feature, so a
    feature's eight values are one load) and ‖c‖² as G × 8, padded to G = ⌈K/8⌉ groups with ‖c‖² = +∞."""
    k, d = centroids.shape
    groups = -(-k // 8)
    columns = np.zeros((groups * 8, d), dtype=dtype)
    columns[:k] = -2.0 * np.asarray(centroids)
    bias = np.full(groups * 8, np.inf, dtype=dtype)
    bias[:k] = centroid_norms
    return np.ascontiguousarray(columns.reshape(groups, 8, d).transpose(0, 2, 1)), bias.reshape(groups, 8)


def segment_sums(values: Any, segment_ids: Any, n_segments: int) -> tuple[Any, Any]:
    """Sₖ = Σ_{i: idsᵢ = k} valuesᵢ and nₖ = #{i: idsᵢ = k} (ids outside 0 … K − 1 count nowhere, as
    in the one-hot default) in ``values``' dtype: one pass over the rows, each added to its segment's
    row of S where NumPy scatters value by value (bincount) or multiplies by a one-hot matrix. Added
    up in float64 whatever the dtype, as bincount does."""
    loops = _loops()
    assert loops is not None, "segment_sums without Numba: ask wanted first"
    sums = np.zeros((n_segments, values.shape[1]), dtype=np.float64)
    counts = np.zeros(n_segments, dtype=np.float64)
    ids = np.ascontiguousarray(segment_ids, dtype=np.int64)
    loops.segment_sums(np.ascontiguousarray(values), ids, sums, counts)
    return sums.astype(values.dtype, copy=False), counts.astype(values.dtype, copy=False)


def segment_moves(values: Any, before: Any, after: Any, n_segments: int) -> tuple[Any, Any, Any]:
    """ΔSₖ, Δnₖ and the number of rows moved, as :func:`hml.kernels.segment_moves` (no weights): one
    pass over the ids, each moved row subtracted from its old segment and added to its new one (in
    float64, as :func:`segment_sums`)."""
    loops = _loops()
    assert loops is not None, "segment_moves without Numba: ask wanted first"
    sums = np.zeros((n_segments, values.shape[1]), dtype=np.float64)
    counts = np.zeros(n_segments, dtype=np.float64)
    ids = [np.ascontiguousarray(labels, dtype=np.int64) for labels in (before, after)]
    n_changed = loops.segment_moves(np.ascontiguousarray(values), *ids, sums, counts)
    return sums.astype(values.dtype, copy=False), counts.astype(values.dtype, copy=False), np.asarray(n_changed)


@functools.cache
def _loops() -> SimpleNamespace | None:
    """The compiled loops, or None where Numba is not installed or cannot compile them (a warning,
    once, for the second)."""
    try:
        import numba
    except ImportError:
        return None
    try:
        compiled = functools.partial(numba.njit, nogil=True, cache=True)
        with _slp_vectorised():
            nearest_by_eights = compiled(_EIGHTS_SIGNATURES, fastmath={"contract"})(_nearest_by_eights)
            nearest_in_lanes = compiled(_NEAREST_SIGNATURES)(_nearest_in_lanes)
        loops = SimpleNamespace(
            nearest_in_rows=compiled(_NEAREST_SIGNATURES)(_nearest_in_rows),
            nearest_by_eights=nearest_by_eights,
            nearest_in_lanes=nearest_in_lanes,
            segment_sums=compiled(_SEGMENT_SIGNATURES)(_segment_sums),
            segment_moves=compiled(_MOVES_SIGNATURES)(_segment_moves),
        )
    except Exception as error:  # a Numba that cannot compile here: the NumPy paths run instead
        warnings.warn(
            f"hml: Numba {numba.__version__} could not compile hml's loops ({error!r}); the NumPy paths run "
            "instead (set HML_NUMBA=0 to skip the attempt)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return loops


@contextlib.contextmanager
def _slp_vectorised() -> Iterator[None]:
    """Numba's code generation with LLVM's SLP vectoriser on (``NUMBA_SLP_VECTORIZE``, off by default) while
    hml's loops compile: it packs :func:`_nearest_by_eights`' eight scalar accumulators of a row into one
    vector register, and :func:`_nearest_in_lanes`' eight running minima, which the loop vectoriser cannot
    (the loop over the eight is unrolled first). Read by Numba for each module it optimises; restored at
    once, so other Numba code is not affected."""
    from numba.core import config

    before = getattr(config, "SLP_VECTORIZE", None)
    setattr(config, "SLP_VECTORIZE", True)  # noqa: B010 -- set at Numba's import from the environment
    try:
        yield
    finally:
        setattr(config, "SLP_VECTORIZE", before)  # noqa: B010


#: Compiled for both float dtypes when first asked for (eagerly: loaded from the cache without typing).
_NEAREST_SIGNATURES = [
    "void(float64[:, ::1], float64[::1], int32[::1], float64[::1])",
    "void(float32[:, ::1], float32[::1], int32[::1], float32[::1])",
]
_EIGHTS_SIGNATURES = [
    "void(float64[:, ::1], float64[:, :, ::1], float64[:, ::1], int32[::1], float64[::1])"
]  # float64 only
_MOVES_SIGNATURES = [
    "int64(float64[:, ::1], int64[::1], int64[::1], float64[:, ::1], float64[::1])",
    "int64(float32[:, ::1], int64[::1], int64[::1], float64[:, ::1], float64[::1])",
]
_SEGMENT_SIGNATURES = [
    "void(float64[:, ::1], int64[::1], float64[:, ::1], float64[::1])",
    "void(float32[:, ::1], int64[::1], float64[:, ::1], float64[::1])",
]


def _nearest_in_rows(scores: Any, norms: Any, labels: Any, best: Any) -> None:  # pragma: no cover - compiled
    # Four rows at a time: a row's running minimum is a chain of dependent compares, each waiting on
    # the last; four independent chains keep the core busy meanwhile.
    n, k = scores.shape
    whole = n - n % 4
    for i in range(0, whole, 4):
        b0 = scores[i, 0] + norms[0]
        b1 = scores[i + 1, 0] + norms[0]
        b2 = scores[i + 2, 0] + norms[0]
        b3 = scores[i + 3, 0] + norms[0]
        l0 = l1 = l2 = l3 = 0
        for j in range(1, k):
            v0 = scores[i, j] + norms[j]
            v1 = scores[i + 1, j] + norms[j]
            v2 = scores[i + 2, j] + norms[j]
            v3 = scores[i + 3, j] + norms[j]
            if v0 < b0:
                b0, l0 = v0, j
            if v1 < b1:
                b1, l1 = v1, j
            if v2 < b2:
                b2, l2 = v2, j
            if v3 < b3:
                b3, l3 = v3, j
        labels[i], labels[i + 1], labels[i + 2], labels[i + 3] = l0, l1, l2, l3
        best[i], best[i + 1], best[i + 2], best[i + 3] = b0, b1, b2, b3
    for i in range(whole, n):
        b, label = scores[i, 0] + norms[0], 0
        for j in range(1, k):
            v = scores[i, j] + norms[j]
            if v < b:
                b, label = v, j
        labels[i], best[i] = label, b


def _nearest_in_lanes(scores: Any, norms: Any, labels: Any, best: Any) -> None:  # pragma: no cover - compiled
    # As _nearest_in_rows, for long rows: eight running minima (lane l over the scores l, l + 8, …), which the
    # SLP vectoriser turns into one vector compare and two blends per eight scores, where one chain of
    # compares takes a cycle or more per score. Then the least of the eight, and among equal minima the
    # lowest index (the first, as argmin), then the scores past the last whole eight.
    n, k = scores.shape
    whole = k - k % 8
    for i in range(n):
        m0 = np.inf
        m1 = np.inf
        m2 = np.inf
        m3 = np.inf
        m4 = np.inf
        m5 = np.inf
        m6 = np.inf
        m7 = np.inf
        j0 = 0
        j1 = 0
        j2 = 0
        j3 = 0
        j4 = 0
        j5 = 0
        j6 = 0
        j7 = 0
        for j in range(0, whole, 8):
            v0 = scores[i, j + 0] + norms[j + 0]
            v1 = scores[i, j + 1] + norms[j + 1]
            v2 = scores[i, j + 2] + norms[j + 2]
            v3 = scores[i, j + 3] + norms[j + 3]
            v4 = scores[i, j + 4] + norms[j + 4]
            v5 = scores[i, j + 5] + norms[j + 5]
            v6 = scores[i, j + 6] + norms[j + 6]
            v7 = scores[i, j + 7] + norms[j + 7]
            if v0 < m0:
                m0, j0 = v0, j + 0
            if v1 < m1:
                m1, j1 = v1, j + 1
            if v2 < m2:
                m2, j2 = v2, j + 2
            if v3 < m3:
                m3, j3 = v3, j + 3
            if v4 < m4:
                m4, j4 = v4, j + 4
            if v5 < m5:
                m5, j5 = v5, j + 5
            if v6 < m6:
                m6, j6 = v6, j + 6
            if v7 < m7:
                m7, j7 = v7, j + 7
        b, label = m0, j0
        if m1 < b or (m1 == b and j1 < label):
            b, label = m1, j1
        if m2 < b or (m2 == b and j2 < label):
            b, label = m2, j2
        if m3 < b or (m3 == b and j3 < label):
            b, label = m3, j3
        if m4 < b or (m4 == b and j4 < label):
            b, label = m4, j4
        if m5 < b or (m5 == b and j5 < label):
            b, label = m5, j5
        if m6 < b or (m6 == b and j6 < label):
            b, label = m6, j6
        if m7 < b or (m7 == b and j7 < label):
            b, label = m7, j7
        for j in range(whole, k):
            v = scores[i, j] + norms[j]
            if v < b:
                b, label = v, j
        labels[i] = label
        best[i] = b


def _nearest_by_eights(X: Any, columns: Any, bias: Any, labels: Any, best: Any) -> None:  # pragma: no cover
    # For two rows at a time and each group g of eight centroids, the scores sₖ = bias[g, k] + Σ_f x_f ·
    # columns[g, f, k]: sixteen scalars that the SLP vectoriser keeps in two vector registers, the pair
    # sharing each feature's load of the eight columns; then each row's running minimum takes the eight
    # in centroid order (strict <: the first of equal minima, as argmin).
    n, d = X.shape
    whole = n - n % 2
    for i in range(0, whole, 2):
        b0 = b1 = np.inf
        l0 = l1 = 0
        for g in range(columns.shape[0]):
            # Row after row, each row's eight in order: so the SLP vectoriser packs them (interleaved,
            # p0 = q0 = …, it did not: 1.5× the time).
            p0 = bias[g, 0]
            p1 = bias[g, 1]
            p2 = bias[g, 2]
            p3 = bias[g, 3]
            p4 = bias[g, 4]
            p5 = bias[g, 5]
            p6 = bias[g, 6]
            p7 = bias[g, 7]
            q0 = bias[g, 0]
            q1 = bias[g, 1]
            q2 = bias[g, 2]
            q3 = bias[g, 3]
            q4 = bias[g, 4]
            q5 = bias[g, 5]
            q6 = bias[g, 6]
            q7 = bias[g, 7]
            for f in range(d):
                x = X[i, f]
                y = X[i + 1, f]
                c = columns[g, f, 0]
                p0 += x * c
                q0 += y * c
                c = columns[g, f, 1]
                p1 += x * c
                q1 += y * c
                c = columns[g, f, 2]
                p2 += x * c
                q2 += y * c
                c = columns[g, f, 3]
                p3 += x * c
                q3 += y * c
                c = columns[g, f, 4]
                p4 += x * c
                q4 += y * c
                c = columns[g, f, 5]
                p5 += x * c
                q5 += y * c
                c = columns[g, f, 6]
                p6 += x * c
                q6 += y * c
                c = columns[g, f, 7]
                p7 += x * c
                q7 += y * c
            k = 8 * g
            if p0 < b0:
                b0, l0 = p0, k
            if p1 < b0:
                b0, l0 = p1, k + 1
            if p2 < b0:
                b0, l0 = p2, k + 2
            if p3 < b0:
                b0, l0 = p3, k + 3
            if p4 < b0:
                b0, l0 = p4, k + 4
            if p5 < b0:
                b0, l0 = p5, k + 5
            if p6 < b0:
                b0, l0 = p6, k + 6
            if p7 < b0:
                b0, l0 = p7, k + 7
            if q0 < b1:
                b1, l1 = q0, k
            if q1 < b1:
                b1, l1 = q1, k + 1
            if q2 < b1:
                b1, l1 = q2, k + 2
            if q3 < b1:
                b1, l1 = q3, k + 3
            if q4 < b1:
                b1, l1 = q4, k + 4
            if q5 < b1:
                b1, l1 = q5, k + 5
            if q6 < b1:
                b1, l1 = q6, k + 6
            if q7 < b1:
                b1, l1 = q7, k + 7
        labels[i] = l0
        best[i] = b0
        labels[i + 1] = l1
        best[i + 1] = b1
    for i in range(whole, n):  # an odd last row
        b, label = np.inf, 0
        for g in range(columns.shape[0]):
            for j in range(8):
                s = bias[g, j]
                for f in range(d):
                    s += X[i, f] * columns[g, f, j]
                if s < b:
                    b, label = s, 8 * g + j
        labels[i] = label
        best[i] = b


def _segment_sums(values: Any, ids: Any, sums: Any, counts: Any) -> None:  # pragma: no cover - compiled
    n_segments = sums.shape[0]
    for i in range(values.shape[0]):
        segment = ids[i]
        if 0 <= segment < n_segments:  # the one-hot default ignores other ids; never write outside S
            counts[segment] += 1.0
            for j in range(values.shape[1]):
                sums[segment, j] += values[i, j]


def _segment_moves(values: Any, before: Any, after: Any, sums: Any, counts: Any) -> int:  # pragma: no cover
    n_segments, n_changed = sums.shape[0], 0
    for i in range(values.shape[0]):
        old, new = before[i], after[i]
        if old == new:
            continue
        n_changed += 1
        if 0 <= old < n_segments:
            counts[old] -= 1.0
            for j in range(values.shape[1]):
                sums[old, j] -= values[i, j]
        if 0 <= new < n_segments:
            counts[new] += 1.0
            for j in range(values.shape[1]):
                sums[new, j] += values[i, j]
    return n_changed
