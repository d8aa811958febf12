"""What a compiled nearest-centroid loop would buy at K = 64 (issue 24): NumPy's path against two Numba loops
on one block of rows, BLAS at one thread, and what Numba costs a fresh process before its first fit.

    pip install numba && python benchmarks/compiled_nearest.py

Not a dependency of hml: this measures the option (``benchmarks/RESULTS.md``, issue 24's third pass). Per
block of 4,096 × 32 rows, K = 64, ns a row: the GEMM alone; hml's NumPy path (GEMM, + ‖c‖², argmin along
rows); the GEMM then a Numba loop over each row's scores (‖c‖² added, first least score); the GEMM as
K × rows then a Numba running minimum over the rows (vectorised: no branch per score). And the loop's
compile time, then in a fresh process ``import numba`` and its first calls for both dtypes (from the cache).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

LOOPS = """
import numba


@numba.njit(nogil=True, cache=True)
def by_row(scores, norms, labels):
    for i in range(scores.shape[0]):
        best, label = scores[i, 0] + norms[0], 0
        for j in range(1, scores.shape[1]):
            value = scores[i, j] + norms[j]
            if value < best:
                best, label = value, j
        labels[i] = label


@numba.njit(nogil=True, cache=True)
def running_minimum(scores_t, norms, labels, best):
    for i in range(scores_t.shape[1]):
        best[i], labels[i] = scores_t[0, i] + norms[0], 0
    for j in range(1, scores_t.shape[0]):
        for i in range(scores_t.shape[1]):
            value = scores_t[j, i] + norms[j]
            less = value < best[i]
            best[i] = value if less else best[i]
            labels[i] = j if less else labels[i]
"""


def per_row(function, X: np.ndarray, rows: int) -> float:
    """ns a row of ``function(block)`` over X's blocks, the best of 5 passes."""
    best = min(_timed(function, X, rows) for _ in range(5))
    return best / X.shape[0] * 1e9


def _timed(function, X: np.ndarray, rows: int) -> float:
    start = time.perf_counter()
    for first in range(0, X.shape[0], rows):
        function(X[first : first + rows])
    return time.perf_counter() - start


def measure(loops, dtype) -> None:
    """One block size, K = 64: each variant's ns a row, its labels checked against NumPy's."""
    from threadpoolctl import threadpool_limits

    rows, k = 4096, 64
    X = np.random.default_rng(0).random((200_000, 32)).astype(dtype)
    C = X[np.random.default_rng(1).choice(X.shape[0], k, replace=False)]
    norms, W, Wt = (C * C).sum(axis=1), (-2.0 * C).T.copy(), -2.0 * C
    labels, best = np.empty(rows, np.int32), np.empty(rows, dtype)

    def numpy_path(block):
        scores = block @ W
        scores += norms
        return scores.argmin(axis=1)

    variants = {
        "GEMM alone": lambda block: block @ W,
        "hml's NumPy path": numpy_path,
        "GEMM + Numba loop by row": lambda block: loops.by_row(block @ W, norms, labels[: len(block)]),
        "K × rows GEMM + Numba running minimum": lambda block: loops.running_minimum(
            Wt @ block.T, norms, labels[: len(block)], best[: len(block)]
        ),
    }
    block = X[:rows]
    reference = numpy_path(block)
    variants["GEMM + Numba loop by row"](block)
    assert np.array_equal(labels, reference)
    variants["K × rows GEMM + Numba running minimum"](block)
    assert np.array_equal(labels, reference)
    with threadpool_limits(1):
        figures = ", ".join(f"{name} {per_row(f, X, rows):.1f}" for name, f in variants.items())
    print(f"{np.dtype(dtype).name}, ns a row: {figures}", flush=True)


def main() -> None:
    folder = Path(tempfile.mkdtemp())
    (folder / "loops.py").write_text(LOOPS)
    sys.path.insert(0, str(folder))
    import loops

    start = time.perf_counter()
    for dtype in (np.float64, np.float32):  # compiled (and cached) here
        loops.by_row(np.ones((8, 64), dtype), np.ones(64, dtype), np.empty(8, np.int32))
    print(f"compiling the loop by row for both dtypes: {time.perf_counter() - start:.2f} s")
    for dtype in (np.float64, np.float32):
        measure(loops, dtype)
    fresh = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        sys.path.insert(0, {str(folder)!r})
        start = time.perf_counter()
        import loops
        imported = time.perf_counter()
        for dtype in (np.float64, np.float32):
            loops.by_row(np.ones((8, 64), dtype), np.ones(64, dtype), np.empty(8, np.int32))
        print(f"a fresh process: import {{imported - start:.2f}} s, first calls (from the cache) {{time.perf_counter() - imported:.2f}} s")
    """)
    print(subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    main()
