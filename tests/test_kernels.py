"""Every kernel of hml.kernels, on every backend: the path a call takes and the portable default,
each against an independent reference computed with NumPy on the host.

A kernel's native path (``Kernel.native``) runs where its library's arrays are; the default runs
on the same arrays through the array API. ``test_every_native_path_is_tested`` keeps this file's
table equal to the kernels that exist, so a new kernel or native path cannot go untested.
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np
import pytest
from conftest import Case

import hml
from hml import backends, kernels
from hml.kernels import _numba


def _both(kernel, *args, **kwargs):
    """The kernel's result as called (its native path on this library, if any) and its portable
    default's -- unless the default is known wrong on this library (a ``required`` path)."""
    results = [kernel(*args, **kwargs)]
    if backends.backend_of(args[0]).name not in kernel.required:
        results.append(kernel.portable(*args, **kwargs))
    return results


def _segments(case):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(500, 3))
    ids = rng.integers(0, 7, 500)
    ids[ids == 4] = 5  # an empty segment
    v, i = case.asarray(values), case.ctx.asarray(ids)
    expected = np.stack([values[ids == k].sum(axis=0) for k in range(7)])
    tolerance = 1e-12 if case.float64 else 1e-4
    for result in _both(kernels.segment_sum, v, i, 7):
        np.testing.assert_allclose(case.to_numpy(result), expected, rtol=tolerance, atol=tolerance)
    for result in _both(kernels.segment_count, i, 7, v.dtype):
        np.testing.assert_array_equal(case.to_numpy(result), np.bincount(ids, minlength=7))


@pytest.mark.parametrize(("n", "d", "k"), [(500, 3, 7), (20_003, 32, 256), (600, 3, 4000)])
def test_segment_sum_and_count_agrees_with_numpy(case, n, d, k):
    """The M-step in one call -- on CuPy in float32 one kernel with per-block shared-memory sums
    (K·(D+1) ≤ 12,288; the last shape declines to the default), elsewhere the two segment
    kernels -- against NumPy's add.at and bincount on the host, in float32 and float64."""
    rng = np.random.default_rng(1)
    values, ids = rng.normal(size=(n, d)), rng.integers(0, k, n)
    expected_sums = np.zeros((k, d))
    np.add.at(expected_sums, ids, values)
    expected_counts = np.bincount(ids, minlength=k)
    xp = case.xp
    for dtype in [xp.float32] + ([xp.float64] if case.float64 else []):
        v = xp.astype(case.asarray(values), dtype)
        for sums, counts in _both(kernels.segment_sum_and_count, v, case.ctx.asarray(ids.astype(np.int32)), k):
            assert sums.dtype == dtype and counts.dtype == dtype
            tolerance = 1e-12 if dtype == xp.float64 else 1e-4
            np.testing.assert_allclose(
                case.to_numpy(sums), expected_sums, rtol=tolerance, atol=tolerance * np.sqrt(n / k)
            )
            np.testing.assert_array_equal(case.to_numpy(counts), expected_counts)


def _nearest(case):
    """labels = argmin ‖x − c‖², best = that minimum − ‖x‖², and the block's scratch per row -- at K on
    both sides of NumPy's running-minimum rule (1, 7, 16 centroids on 16,387 rows, at least 1,024 a
    centroid; 17, 40). Small integers, so every score is exact in any order of summation and ties are
    real (a centroid twice, and equal distances): the first index of the least, as argmin."""
    rng = np.random.default_rng(3)
    X = rng.integers(-3, 4, size=(16 * 1024 + 3, 5)).astype(np.float64)
    for k in (1, 7, 16, 17, 40):
        C = rng.integers(-3, 4, size=(k, 5)).astype(np.float64)
        C[-1] = C[0]
        Xc, Cc = case.asarray(X), case.asarray(C)
        distances = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        for labels, best in _both(kernels.nearest_centroid, Xc, Cc, case.xp.sum(Cc * Cc, axis=1), with_scores=True):
            np.testing.assert_array_equal(case.to_numpy(labels), distances.argmin(axis=1))
            assert labels.dtype == case.xp.int32
            np.testing.assert_allclose(
                case.to_numpy(best) + (X * X).sum(axis=1), distances.min(axis=1), rtol=case.rtol * 10
            )
    scratch, portable = _both(kernels.nearest_centroid_scratch, Xc, 7, 5)
    # The fused CuPy kernel writes a label and a score per row; NumPy's running minimum, the K scores.
    assert portable == 7 and scratch == {"cupy": 2}.get(case.backend, 7)


def _segment_moves(case):
    """ΔS, Δn and the number of rows moved, with and without weights, against add.at on the host: about
    a third of 20,000 rows move among 9 segments, one of which only loses rows and one only gains. Not on
    a Dask array: Lloyd's step calls it on each chunk's own arrays, where the moved rows' count is known."""
    if case.lazy:
        pytest.skip("segment_moves runs on each chunk's own arrays, never on a Dask array")
    rng = np.random.default_rng(4)
    n, d, k = 20_000, 13, 9
    values, weights = rng.normal(size=(n, d)), rng.uniform(0.5, 2.0, n)
    before = rng.integers(0, k - 1, n)  # segment k - 1 starts empty: it only gains
    after = np.where(rng.random(n) < 0.35, rng.integers(1, k, n), before)  # segment 0 only loses
    moved = before != after
    xp = case.xp
    for dtype in [xp.float32] + ([xp.float64] if case.float64 else []):
        tolerance = 1e-12 if dtype == xp.float64 else 1e-4
        v = xp.astype(case.asarray(values), dtype)
        ids = [case.ctx.asarray(labels.astype(np.int32)) for labels in (before, after)]
        for w in (None, weights):
            s = np.ones(n) if w is None else w
            expected_sums, expected_counts = np.zeros((k, d)), np.zeros(k)
            np.add.at(expected_sums, after[moved], (s[:, None] * values)[moved])
            np.add.at(expected_sums, before[moved], -(s[:, None] * values)[moved])
            np.add.at(expected_counts, after[moved], s[moved])
            np.add.at(expected_counts, before[moved], -s[moved])
            weighted = None if w is None else xp.astype(case.asarray(w), dtype)
            for sums, counts, n_changed in _both(kernels.segment_moves, v, weighted, *ids, k):
                assert sums.dtype == dtype and counts.dtype == dtype
                np.testing.assert_allclose(case.to_numpy(sums), expected_sums, rtol=tolerance, atol=tolerance * 100)
                np.testing.assert_allclose(case.to_numpy(counts), expected_counts, rtol=tolerance, atol=tolerance * 100)
                assert int(case.to_numpy(n_changed)) == moved.sum()


def _column_sums(case):
    for shape in [(1_000, 7), (3, 5), (50_000, 64)]:
        host = np.random.default_rng(2).normal(size=shape)
        A = case.asarray(host)
        tolerance = 1e-12 if case.float64 else 1e-4
        for result in _both(kernels.column_sums, A):
            assert result.shape == (shape[1],) and result.dtype == A.dtype
            np.testing.assert_allclose(
                case.to_numpy(result), host.sum(axis=0), rtol=tolerance, atol=tolerance * shape[0]
            )


_SPD = np.array([[4.0, 2.0, 0.6], [2.0, 5.0, 1.0], [0.6, 1.0, 3.0]])


def _cholesky(case):
    for factor in _both(kernels.cholesky, case.asarray(_SPD)):
        factor = case.to_numpy(factor)
        np.testing.assert_allclose(factor, np.linalg.cholesky(_SPD), rtol=1e-5 if not case.float64 else 1e-12)
        assert np.allclose(np.triu(factor, 1), 0.0)  # the lower factor, as the standard says


def _solve(case):
    b = np.array([[1.0], [2.0], [3.0]])
    for solution in _both(kernels.solve, case.asarray(_SPD), case.asarray(b)):
        np.testing.assert_allclose(case.to_numpy(solution), np.linalg.solve(_SPD, b), rtol=case.rtol * 10)


def _inv(case):
    A = case.asarray(_SPD)
    for inverse in _both(kernels.inv, A):
        assert inverse.dtype == A.dtype  # float32 stays float32 (dask's inv returns float64)
        np.testing.assert_allclose(case.to_numpy(inverse), np.linalg.inv(_SPD), rtol=case.rtol * 10)


def _least_norm_solve(case):
    # Full rank: solve's answer. Rank 2 of 3 (the third column the sum of the first two), and
    # all zero: lstsq's minimum-norm solution of Z w = y, from ZᵀZ and Zᵀy.
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(20, 3))
    y = rng.normal(size=(20, 1))
    deficient = np.column_stack([Z[:, 0], Z[:, 1], Z[:, 0] + Z[:, 1]])
    tolerance = case.rtol * 100
    for design in (Z, deficient, np.zeros_like(Z)):
        expected = np.linalg.lstsq(design, y, rcond=None)[0]
        gram, rhs = case.asarray(design.T @ design), case.asarray(design.T @ y)
        for solution in _both(kernels.least_norm_solve, gram, rhs):
            assert solution.dtype == gram.dtype
            np.testing.assert_allclose(case.to_numpy(solution), expected, rtol=tolerance, atol=tolerance)
    # shift λ: (ZᵀZ + λI)⁻¹ Zᵀy for full rank; the ridge on the determined directions for the deficient design
    for design, lam in ((Z, 0.5), (deficient, 1e-3)):
        kept = np.linalg.svd(design, full_matrices=False)
        singular = np.where(kept.S > 1e-6 * kept.S[0], kept.S, 0.0)
        factors = np.divide(singular, singular**2 + lam, out=np.zeros_like(singular), where=singular > 0)
        expected = kept.Vh.T @ (factors[:, None] * (kept.U.T @ y))
        gram, rhs = case.asarray(design.T @ design), case.asarray(design.T @ y)
        for solution in _both(kernels.least_norm_solve, gram, rhs, shift=lam):
            np.testing.assert_allclose(case.to_numpy(solution), expected, rtol=tolerance, atol=tolerance)


def _row_major(case):
    # Row-major, column-major (a pandas frame's values) and every other column: the same values; on
    # NumPy rows contiguous, and a row-major X itself, not a copy.
    values = np.arange(48.0).reshape(6, 8)
    for layout in (values, np.asfortranarray(values), values[:, ::2]):
        X = case.asarray(layout)
        for result in _both(kernels.row_major, X):
            np.testing.assert_array_equal(case.to_numpy(result), case.to_numpy(X))
        if case.backend == "numpy":
            result = kernels.row_major(X)
            assert result.flags.c_contiguous and (result is X or not X.flags.c_contiguous)


#: Each kernel's test, run on every backend case: the call (native where there is a path) and the default.
KERNEL_TESTS = {
    "segment_sum": _segments,
    "segment_count": _segments,
    "segment_sum_and_count": None,  # test_segment_sum_and_count_agrees_with_numpy, above
    "segment_moves": _segment_moves,
    "nearest_centroid": _nearest,
    "nearest_centroid_scratch": _nearest,
    "row_major": _row_major,
    "column_sums": _column_sums,
    "cholesky": _cholesky,
    "solve": _solve,
    "inv": _inv,
    "least_norm_solve": _least_norm_solve,
}


def test_every_native_path_is_tested():
    """The table covers every kernel hml.kernels exports, and so every native path of each."""
    exported = {name for name in kernels.__all__ if isinstance(getattr(kernels, name), kernels.Kernel)}
    assert exported == set(KERNEL_TESTS)
    for name in exported:
        for library, (_, why) in getattr(kernels, name).native.items():
            assert library in backends.backend_names() and why, (name, library)


@pytest.mark.parametrize("name", sorted({n for n, test in KERNEL_TESTS.items() if test is not None}))
def test_each_kernel_and_its_default_agree_with_numpy(case, name):
    KERNEL_TESTS[name](case)


# -- the compiled loops (hml.kernels._numba), where Numba is installed ---------------------------------------
NUMPY = Case("numpy", "numpy")
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="Numba is not installed")


@contextlib.contextmanager
def _loops(on: bool):
    """The NumPy paths with the compiled loops taken on every block (``on``), or never."""
    saved = _numba.ENABLED, _numba.MIN_WORK
    _numba.ENABLED, _numba.MIN_WORK = on, 0
    try:
        yield
    finally:
        _numba.ENABLED, _numba.MIN_WORK = saved


def test_the_compiled_loops_name_pyprojects_numba_extra():
    """What ``hml info`` says to install is the ``numba`` extra's requirement (and the test and bench extras')."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert extras["numba"] == [_numba.REQUIREMENT]
    assert _numba.REQUIREMENT in extras["test"] and _numba.REQUIREMENT in extras["bench"]


@needs_numba
@pytest.mark.parametrize("loops", ["compiled", "numpy"])
@pytest.mark.parametrize("name", ["nearest_centroid", "segment_sum", "segment_moves"])
def test_numpy_paths_with_and_without_the_compiled_loops_agree_with_numpy(name, loops):
    """The kernels that have a compiled loop, on NumPy arrays, with the loop on every block and with
    it off (the paths a machine without Numba takes), against the same host references."""
    with _loops(loops == "compiled"):
        KERNEL_TESTS[name](NUMPY)
        if name == "segment_sum":
            test_segment_sum_and_count_agrees_with_numpy(NUMPY, 20_003, 32, 256)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 2, 5, 8, 64, 256, 300, 1_000])
def test_compiled_nearest_centroid_is_numpys_bit_for_bit(dtype, k):
    """The compiled loop after the GEMM adds ‖c‖² to the same GEMM's scores in the same dtype and keeps the
    first of equal minima, as argmin: the same labels and minima as NumPy's path, bit for bit -- on random
    rows (4,099: not a multiple of the loop's four rows) with near-ties, and on rows with exact ties; in one
    chain of compares and, from ``LANES_FROM`` centroids, in eight lanes (K = 300: a part past the last
    whole eight)."""
    rng = np.random.default_rng(k)
    X = rng.random((4_099, 7)).astype(dtype)
    C = rng.random((k, 7)).astype(dtype)
    C[-1] = C[0]  # an exact tie in every row that is nearest to C[0]
    norms = (C * C).sum(axis=1)
    with _loops(True):
        labels, best = _numba.nearest_in_rows(X, C, norms)
    scores = X @ (-2.0 * C).T + norms
    np.testing.assert_array_equal(labels, scores.argmin(axis=1))
    np.testing.assert_array_equal(best, scores.min(axis=1))
    assert labels.dtype == np.int32 and best.dtype == dtype


@needs_numba
@pytest.mark.parametrize("d", [1, 7, 16, 33])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 9, 20])
def test_nearest_without_gemm_is_the_nearest_centroid(k, d):
    """The GEMM-free loop against exact distances (one group of eight centroids, padded or not, two,
    three): on random float64 rows (4,099: an odd last row) every label is a nearest centroid -- another
    only where two distances tie to rounding -- and the minimum is ‖x − c‖² − ‖x‖² to rounding; of two
    equal centroids the first is taken."""
    rng = np.random.default_rng(10 * k + d)
    X = rng.standard_normal((4_099, d)) + 3.0
    C = rng.standard_normal((k, d)) + 3.0
    if k > 1:
        C[-1] = C[0]
    norms = (C * C).sum(axis=1)
    with _loops(True):
        labels, best = _numba.nearest_without_gemm(X, C, norms)
    assert labels.dtype == np.int32 and best.dtype == np.float64
    exact = ((X[:, None, :].astype(np.longdouble) - C[None, :, :]) ** 2).sum(axis=2)
    nearest = exact.min(axis=1)
    chosen = exact[np.arange(len(X)), labels]
    scale = np.finfo(np.float64).eps * 64 * ((X * X).sum(axis=1) + (C * C).sum(axis=1).max())
    assert np.all(chosen - nearest <= scale), "a label that is not a nearest centroid"
    assert (labels == exact.argmin(axis=1)).mean() > 0.999
    np.testing.assert_allclose(best + (X * X).sum(axis=1), nearest.astype(np.float64), rtol=0, atol=scale.max())
    if k > 1:
        assert not np.any(labels == k - 1), "the second of two equal centroids"


@needs_numba
@pytest.mark.parametrize(
    ("k", "d", "dtype", "loop"),
    [
        (5, 40, np.float64, "without"),
        (8, 6, np.float64, "without"),
        (40, 16, np.float64, "without"),
        (2, 6, np.float64, "in_rows"),
        (9, 17, np.float64, "in_rows"),
        (65, 6, np.float64, "in_rows"),
        (5, 6, np.float32, "in_rows"),
    ],
)
def test_nearest_centroid_skips_the_gemm_where_it_is_thin(k, d, dtype, loop):
    """NumPy's nearest centroid with the compiled loops on: float64 blocks with 3 ≤ K ≤ 8 at any D, or
    K ≤ 64 at D ≤ 16 (``_numba.skips_gemm``), take the GEMM-free loop; others the GEMM and the loop after it."""
    rng = np.random.default_rng(k)
    X, C = rng.random((3_001, d)).astype(dtype), rng.random((k, d)).astype(dtype)
    norms = (C * C).sum(axis=1)
    with _loops(True):
        labels, best = kernels.nearest_centroid(X, C, norms, with_scores=True)
        expected = {"without": _numba.nearest_without_gemm, "in_rows": _numba.nearest_in_rows}[loop](X, C, norms)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(best, expected[1])


@needs_numba
def test_compiled_segment_sums_ignore_ids_outside_the_segments():
    """As the one-hot default: an id below 0 or at K or above adds to no segment (and writes nothing
    outside S), in the plain sums and the moves."""
    values = np.arange(12.0).reshape(4, 3)
    ids = np.array([0, -1, 2, 3])
    with _loops(True):
        sums, counts = kernels.segment_sum_and_count(values, ids, 3)
        moved_sums, moved_counts, n_changed = kernels.segment_moves(values, None, np.array([0, 0, 5, 1]), ids, 3)
    np.testing.assert_array_equal(sums, [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(counts, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(moved_sums, [[-3.0, -4.0, -5.0], [-9.0, -10.0, -11.0], [6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(moved_counts, [-1.0, -1.0, 1.0])
    assert int(n_changed) == 3


def _layouts(X):
    """X as a user may hand it over: row-major, column-major (a pandas frame's values), every other row of
    a larger array, read-only, and memory-mapped read-only -- the last two read in place by the loops."""
    strided = np.empty((2 * X.shape[0], X.shape[1]), dtype=X.dtype)
    strided[::2] = X
    read_only = X.copy()
    read_only.flags.writeable = False
    return {"C": X, "F": np.asfortranarray(X), "strided": strided[::2], "read-only": read_only}


@needs_numba
@pytest.mark.parametrize(("k", "d", "dtype"), [(8, 16, np.float64), (20, 32, np.float64), (20, 32, np.float32)])
def test_compiled_loops_take_any_layout_and_read_only_rows(k, d, dtype):
    """Every kernel with a compiled loop, given X in each layout (and read-only ids and norms), returns what
    it returns for row-major X -- on the GEMM-free path (K = 8, D = 16 float64) and after the GEMM. The loops
    are compiled for contiguous, writeable arrays and read-only twins of X's: another layout once raised
    Numba's TypeError from inside the row-block threads."""
    rng = np.random.default_rng(k)
    X, C = rng.random((3_001, d)).astype(dtype), rng.random((k, d)).astype(dtype)
    norms, ids, before = (C * C).sum(axis=1), rng.integers(0, k, 3_001), rng.integers(0, k, 3_001)
    for a in (norms, ids, before):
        a.flags.writeable = False
    with _loops(True):
        expected = (
            kernels.nearest_centroid(X, C, norms, with_scores=True),
            kernels.segment_sum_and_count(X, ids, k),
            kernels.segment_moves(X, None, before, ids, k),
        )
        for layout, rows in _layouts(X).items():
            got = (
                kernels.nearest_centroid(rows, C, norms, with_scores=True),
                kernels.segment_sum_and_count(rows, ids, k),
                kernels.segment_moves(rows, None, before, ids, k),
            )
            for result, reference in zip(got, expected, strict=True):
                for a, b in zip(result, reference, strict=True):
                    np.testing.assert_array_equal(a, b, err_msg=layout)


@needs_numba
@pytest.mark.parametrize(("k", "d"), [(8, 16), (20, 32)])
def test_kmeans_with_the_loops_fits_x_in_any_layout(tmp_path, k, d):
    """KMeans and MiniBatchKMeans fit (and predict) a column-major, strided, read-only or memory-mapped X
    with the compiled loops on, to the row-major X's fit bit for bit (k-means copies a column-major X to
    row-major once, as scikit-learn does; the loops read a read-only X in place)."""
    X = np.random.default_rng(d).random((4_000, d))
    np.save(tmp_path / "X.npy", X)
    layouts = {**_layouts(X), "memory-mapped": np.load(tmp_path / "X.npy", mmap_mode="r")}
    init = X[:k].copy()
    with _loops(True):
        expected = hml.KMeans(k, init=init, max_iter=5, tol=0.0).fit(X)
        mini = hml.MiniBatchKMeans(k, init=init, batch_size=1_024, max_iter=2, random_state=0).fit(X)
        for layout, rows in layouts.items():
            fitted = hml.KMeans(k, init=init, max_iter=5, tol=0.0).fit(rows)
            np.testing.assert_array_equal(fitted.labels_, expected.labels_, err_msg=layout)
            np.testing.assert_array_equal(fitted.cluster_centers_, expected.cluster_centers_, err_msg=layout)
            np.testing.assert_array_equal(expected.predict(rows), expected.labels_, err_msg=layout)
            other = hml.MiniBatchKMeans(k, init=init, batch_size=1_024, max_iter=2, random_state=0).fit(rows)
            np.testing.assert_array_equal(other.cluster_centers_, mini.cluster_centers_, err_msg=layout)


@needs_numba
def test_read_only_rows_are_copied_where_their_twins_cannot_compile(monkeypatch):
    """The read-only twins compile apart, on the first read-only X: where they cannot (None, as for a Numba that
    fails), the loops read a writeable copy of the rows -- the same results, no error."""
    compiled = _numba._compiled
    monkeypatch.setattr(_numba, "_compiled", lambda read_only: None if read_only else compiled(False))
    rng = np.random.default_rng(3)
    X, C = rng.random((3_001, 16)), rng.random((8, 16))
    norms, ids = (C * C).sum(axis=1), rng.integers(0, 8, 3_001)
    read_only = _layouts(X)["read-only"]
    with _loops(True):
        for rows in (X, read_only):
            labels, best = kernels.nearest_centroid(rows, C, norms, with_scores=True)
            sums, counts = kernels.segment_sum_and_count(rows, ids, 8)
            np.testing.assert_array_equal(labels, kernels.nearest_centroid(X, C, norms)[0])
            np.testing.assert_allclose(sums, np.stack([X[ids == k].sum(axis=0) for k in range(8)]), rtol=1e-12)
    assert not read_only.flags.writeable


@needs_numba
def test_the_loops_compile_once_while_other_threads_wait(monkeypatch):
    """Their first use comes from the row-block threads at once: one compiles (with Numba's process-wide SLP
    switch set, and restored after), the others wait for it. Unlocked, two compiled side by side, and one
    could restore the other's setting, leaving the switch on for the user's own Numba code."""
    import threading
    import time

    from numba.core import config

    entered, inside, most = [], [0], [0]
    real = _numba._slp_vectorised

    @contextlib.contextmanager
    def counted():
        entered.append(1)
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.2)  # a compilation's time, for the other threads to arrive in
        try:
            with real():
                yield
        finally:
            inside[0] -= 1

    setting = config.SLP_VECTORIZE
    monkeypatch.setattr(_numba, "_slp_vectorised", counted)
    _numba._compiled.cache_clear()  # loaded again from Numba's cache
    threads = [threading.Thread(target=_numba._loops) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(entered) == 1 and most[0] == 1
    assert config.SLP_VECTORIZE == setting
    assert _numba._loops() is not None


def test_import_hml_and_a_small_fit_do_not_load_numba():
    """Numba costs a fresh process its load time: not at ``import hml``, nor for a fit whose blocks are below
    MIN_WORK (a fresh interpreter, so that no earlier test has loaded it)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, hml; assert 'numba' not in sys.modules, 'at import'; "
        "X = np.random.default_rng(0).random((2_000, 8)); hml.KMeans(8, n_init=2, random_state=0).fit(X); "
        "assert 'numba' not in sys.modules, 'in a small fit'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_numba_the_numpy_paths_run(monkeypatch):
    """Numba absent (its import fails): no compiled loop is wanted, and a fit that would take them takes the
    NumPy paths with the same result -- where Numba is installed, the same as with the loops."""
    X = np.random.default_rng(5).random((20_000, 16))
    fit = lambda: hml.KMeans(32, init=X[:32], max_iter=5, tol=0.0).fit(X)  # noqa: E731
    with_loops = fit()
    monkeypatch.setattr(_numba, "_loops", lambda: None)
    assert not _numba.wanted(1 << 30, np.dtype(np.float64))
    without = fit()
    np.testing.assert_array_equal(without.labels_, with_loops.labels_)
    np.testing.assert_allclose(without.cluster_centers_, with_loops.cluster_centers_, rtol=1e-12)


@pytest.mark.parametrize("operation", ["cholesky", "solve", "inv"])
def test_a_failed_factorisation_raises_or_gives_nan(case, operation):
    """A singular (or indefinite) matrix: an exception, or NaN that the callers' finiteness read catches."""
    A = np.array([[1.0, 2.0], [2.0, 4.0]]) if operation != "cholesky" else np.array([[1.0, 2.0], [2.0, 1.0]])
    args = (case.asarray(A),) + ((case.asarray(np.ones((2, 1))),) if operation == "solve" else ())
    try:
        result = case.to_numpy(getattr(kernels, operation)(*args))
    except Exception:  # LinAlgError, torch's _LinAlgError, ...: each library has its own
        return
    assert not np.all(np.isfinite(result)) or operation == "solve" and not np.allclose(A @ result, 1.0)


def test_same_seed_same_numbers_on_every_backend(case):
    """random_uniform draws on the host: the same seed gives NumPy's numbers on every backend."""
    ctx = case.ctx
    dtype = ctx.xp.float64 if case.float64 else ctx.xp.float32
    np_dtype = np.float64 if case.float64 else np.float32
    uniform = kernels.random_uniform(ctx, np.random.default_rng(7), (5, 3), low=-0.12, high=0.12, dtype=dtype)
    expected = np.random.default_rng(7).uniform(-0.12, 0.12, size=(5, 3)).astype(np_dtype)
    assert case.ctx.backend.owns(uniform) and uniform.dtype == dtype
    np.testing.assert_array_equal(case.to_numpy(uniform), expected)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(100_000, 32, 256), (5_000, 3, 1000), (4_097, 64, 5), (1_001, 33, 800)])
def test_fused_cupy_kernel_agrees_with_the_portable_e_step(shape):
    """The fused distance + argmin kernel against the portable GEMM + argmin, float32, on the GPU:
    two rows per thread with float4 loads (D = 32), two with scalar loads (D = 3), one row per
    thread (D = 64), and three centroid tiles with scalar loads (D = 33, K = 800)."""
    try:
        ctx = backends.resolve("cupy")
    except hml.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    cupy = ctx.backend.library()
    n, d, k = shape
    rng = np.random.default_rng(0)
    X = cupy.asarray(rng.random((n, d), dtype=np.float32))
    C = cupy.asarray(rng.random((k, d), dtype=np.float32))
    norms = (C * C).sum(axis=1)
    fused_labels, fused_best = kernels.nearest_centroid(X, C, norms, with_scores=True)
    labels, best = kernels.nearest_centroid.portable(X, C, norms, with_scores=True)
    # Summation order differs (cuBLAS against a row-serial dot), so near-ties may pick another
    # centroid -- but only one at the same distance to rounding.
    np.testing.assert_allclose(cupy.asnumpy(fused_best), cupy.asnumpy(best), rtol=1e-5, atol=1e-5 * d)
    differ = cupy.asnumpy(fused_labels != labels)
    assert differ.mean() < 1e-3
    host_X, host_C = cupy.asnumpy(X).astype(np.float64), cupy.asnumpy(C).astype(np.float64)
    rows = np.flatnonzero(differ)
    if rows.size:
        chosen = ((host_X[rows] - host_C[cupy.asnumpy(fused_labels)[rows]]) ** 2).sum(axis=1)
        other = ((host_X[rows] - host_C[cupy.asnumpy(labels)[rows]]) ** 2).sum(axis=1)
        np.testing.assert_allclose(chosen, other, rtol=1e-5)
