"""Compiled loops for NumPy arrays, by Numba: the steps NumPy can only take as a call per row.

Optional. hml needs no compiler and no Numba: the ``numba`` extra adds it (``pip install
"homemade-ml[numba]"``), and then k-means' nearest centroid and centroid sums run here on NumPy arrays.
Without it (or with ``HML_NUMBA=0``, or where Numba cannot compile, as under Pyodide) the NumPy paths
beside each caller run: for finite input, the same nearest centroids bit for bit (the same additions in
the same dtype, the first of equal minima), the same sums to rounding (added in another order).
``tests/test_kernels.py`` checks both against the same references; ``benchmarks/RESULTS.md`` says what each buys.

The loops compile on first use (``cache=True``: once a machine, then loaded from Numba's cache), and
release the GIL, so the row-block threads of :func:`hml.backends.reduce_rows` run them side by side.
Loading Numba costs a fresh process about 0.6 s, once: the callers take a loop only for a block of
at least :data:`MIN_WORK`, so small fits never pay it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
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

#: Above 256 centroids each row's least score is found in eight lanes at once
#: (:func:`~hml.kernels._numba_loops.nearest_in_lanes`),
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
    loop(scores, _writable(centroid_norms, scores.dtype), labels, best)
    return labels, best


def nearest_without_gemm(block: Any, centroids: Any, centroid_norms: Any) -> tuple[Any, Any]:
    """lᵢ and its minimum, as :func:`nearest_in_rows`, without the GEMM: each row's scores
    ‖cₖ‖² − 2 xᵢ·cₖ accumulated eight centroids at a time in one vector register, over xᵢ's features in
    order (so rounding, and the label at a near-tie, may differ from the GEMM's; exact ties still go to
    the first centroid). The centroids are padded to a multiple of eight with ‖c‖² = +∞, never nearest."""
    assert block.dtype == np.float64, "nearest_without_gemm: float64 only"
    labels = np.empty(block.shape[0], dtype=np.int32)
    best = np.empty(block.shape[0])
    loops, rows = _reading(np.ascontiguousarray(block))
    loops.nearest_by_eights(rows, *in_eights(centroids, centroid_norms, block.dtype), labels, best)
    return labels, best


def in_eights(centroids: Any, centroid_norms: Any, dtype: Any) -> tuple[Any, Any]:
    """:func:`~hml.kernels._numba_loops.nearest_by_eights`' arguments: −2c as G × D × 8 (group g's eight
    centroids by feature, so a feature's eight values are one load) and ‖c‖² as G × 8, padded to G = ⌈K/8⌉
    groups with ‖c‖² = +∞."""
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
    sums = np.zeros((n_segments, values.shape[1]), dtype=np.float64)
    counts = np.zeros(n_segments, dtype=np.float64)
    loops, rows = _reading(np.ascontiguousarray(values))
    loops.segment_sums(rows, _writable(segment_ids, np.int64), sums, counts)
    return sums.astype(values.dtype, copy=False), counts.astype(values.dtype, copy=False)


def segment_moves(values: Any, before: Any, after: Any, n_segments: int, dtype: Any) -> tuple[Any, Any, Any]:
    """ΔSₖ, Δnₖ (in ``dtype``) and the number of rows moved, as :func:`hml.kernels.segment_moves` (no weights):
    one pass over the ids, each moved row subtracted from its old segment and added to its new one (in
    float64, as :func:`segment_sums`)."""
    sums = np.zeros((n_segments, values.shape[1]), dtype=np.float64)
    counts = np.zeros(n_segments, dtype=np.float64)
    ids = [_writable(labels, np.int64) for labels in (before, after)]
    loops, rows = _reading(np.ascontiguousarray(values))
    n_changed = loops.segment_moves(rows, *ids, sums, counts)
    return sums.astype(dtype, copy=False), counts.astype(dtype, copy=False), np.asarray(n_changed)


def _writable(a: Any, dtype: Any) -> Any:
    """``a`` as a writeable, C-contiguous array of ``dtype`` (a copy only where it is not one): the loops'
    small arguments, whose signatures have no read-only twins."""
    return np.require(a, dtype=dtype, requirements=["C", "W"])


def _reading(rows: Any) -> tuple[SimpleNamespace, Any]:
    """The loops that read X's ``rows``, and the rows to give them: compiled for writeable rows, or their
    read-only twins for rows another library handed over read-only (``np.load(mmap_mode="r")``), read in
    place rather than copied every pass. The twins compile on the first read-only X: 1.2 s more, once a
    machine, that no one else pays (where they cannot compile, a writeable copy of the rows)."""
    twins = None if rows.flags.writeable else _loops(read_only=True)
    if twins is not None:
        return twins, rows
    loops = _loops()
    assert loops is not None, "a compiled loop without Numba: ask wanted first"
    return loops, (rows if rows.flags.writeable else rows.copy())


_FIRST_USE = threading.Lock()


def _loops(read_only: bool = False) -> SimpleNamespace | None:
    """The compiled loops (with ``read_only``, the twins of those that read X's rows), or None where Numba is
    not installed or cannot compile them (a warning, once, for the second). The first call, from any of
    the row-block threads, compiles them while the others wait: one compilation, and
    :func:`_slp_vectorised`'s process-wide switch set and restored once."""
    with _FIRST_USE:
        return _compiled(read_only)


@functools.cache
def _compiled(read_only: bool) -> SimpleNamespace | None:
    try:
        import numba
    except ImportError:
        return None
    from hml.kernels import _numba_loops as body

    try:
        compiled = functools.partial(numba.njit, nogil=True, cache=True)
        twins = _read_only if read_only else list
        with _slp_vectorised():
            eights = compiled(twins(_EIGHTS_SIGNATURES), fastmath={"contract"})
            nearest_by_eights = eights(body.nearest_by_eights)
            nearest_in_lanes = None if read_only else compiled(_NEAREST_SIGNATURES)(body.nearest_in_lanes)
        loops = SimpleNamespace(
            nearest_in_rows=None if read_only else compiled(_NEAREST_SIGNATURES)(body.nearest_in_rows),
            nearest_by_eights=nearest_by_eights,
            nearest_in_lanes=nearest_in_lanes,
            segment_sums=compiled(twins(_SEGMENT_SIGNATURES))(body.segment_sums),
            segment_moves=compiled(twins(_MOVES_SIGNATURES))(body.segment_moves),
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
    hml's loops compile: it packs :func:`~hml.kernels._numba_loops.nearest_by_eights`' eight scalar
    accumulators of a row into one vector register, and :func:`~hml.kernels._numba_loops.nearest_in_lanes`'
    eight running minima, which the loop vectoriser cannot (the loop over the eight is unrolled first). Read
    by Numba for each module it optimises; restored at once, so other Numba code is not affected."""
    from numba.core import config

    before = getattr(config, "SLP_VECTORIZE", None)
    setattr(config, "SLP_VECTORIZE", True)  # noqa: B010 -- set at Numba's import from the environment
    try:
        yield
    finally:
        setattr(config, "SLP_VECTORIZE", before)  # noqa: B010


def _read_only(signatures: list[str]) -> list[Any]:
    """Each signature's twin whose first argument, X's rows, is read-only."""
    from numba.core import sigutils

    twins: list[Any] = []
    for signature in signatures:
        arguments, returns = sigutils.normalize_signature(signature)  # type: ignore[no-untyped-call]
        twins.append(returns(arguments[0].copy(readonly=True), *arguments[1:]))
    return twins


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
