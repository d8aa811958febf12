"""The k-means E-step without the GEMM (``hml.kernels._numba.nearest_without_gemm``) against the GEMM and the
compiled loop after it (``nearest_in_rows``), on one block of 16,384 rows, BLAS at one thread as in the row-block
threads: the time of the first ÷ the second for K × D, and whether their labels differ. Where the ratio is
below 1 in float64 is ``hml.kernels._numba.skips_gemm``'s rule.

    python benchmarks/nearest_without_gemm.py

float32 is timed with the same loop compiled for float32 (hml takes it in float64 only).
"""

from __future__ import annotations

import timeit

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from hml.kernels import _numba, _numba_loops

ROWS = 16_384
CENTROIDS = (2, 3, 5, 8, 12, 16, 24, 32, 64)
FEATURES = (2, 8, 16, 32, 64, 128)


def main() -> None:
    threadpool_limits(1)
    loops = _numba._loops()
    assert loops is not None, "needs Numba"
    with _numba._slp_vectorised():
        float32_loop = numba.njit(
            ["void(float32[:, ::1], float32[:, :, ::1], float32[:, ::1], int32[::1], float32[::1])"],
            nogil=True,
            fastmath={"contract"},
        )(_numba_loops.nearest_by_eights)
    for dtype in (np.float64, np.float32):
        print(f"{np.dtype(dtype).name}: GEMM-free ÷ GEMM-and-loop time (labels that differ)")
        for k in CENTROIDS:
            cells = []
            for d in FEATURES:
                rng = np.random.default_rng(0)
                X, C = rng.random((ROWS, d)).astype(dtype), rng.random((k, d)).astype(dtype)
                norms = (C * C).sum(axis=1)
                if dtype == np.float64:
                    without = lambda X=X, C=C, norms=norms: _numba.nearest_without_gemm(X, C, norms)  # noqa: E731
                else:
                    without = _float32_without(float32_loop, X, C, norms)
                paths = {"without": without, "with": lambda X=X, C=C, norms=norms: _numba.nearest_in_rows(X, C, norms)}
                seconds = {name: min(timeit.repeat(path, number=5, repeat=9)) for name, path in paths.items()}
                differ = int((paths["without"]()[0] != paths["with"]()[0]).sum())
                cells.append(f"D={d}: {seconds['without'] / seconds['with']:.2f}" + (f" ({differ})" if differ else ""))
            print(f"  K={k:>3}  " + "  ".join(cells), flush=True)


def _float32_without(loop, X, C, norms):
    columns, bias = _numba.in_eights(C, norms, np.float32)

    def run():
        labels, best = np.empty(X.shape[0], dtype=np.int32), np.empty(X.shape[0], dtype=np.float32)
        loop(X, columns, bias, labels, best)
        return labels, best

    return run


if __name__ == "__main__":
    main()
