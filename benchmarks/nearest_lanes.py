"""Each row's least score after the GEMM, three ways, on one block of scores (about 2 M of them), one thread:
the compiled loop with one chain of compares per row (``hml.kernels._numba_loops.nearest_in_rows``), the compiled
loop with eight lanes (``nearest_in_lanes``), and NumPy's ``+ ‖c‖²``, ``argmin`` and gather -- ns a row, and
whether the labels and minima are the same bits. Where the lanes win is ``_numba.LANES_FROM``.

    python benchmarks/nearest_lanes.py
"""

from __future__ import annotations

import functools
import timeit

import numpy as np

from hml.kernels import _numba

CENTROIDS = (16, 32, 48, 64, 96, 128, 256, 512, 1_024, 2_048)


def numpy_least(scores: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    summed = scores + norms
    index = summed.argmin(axis=1)
    return index.astype(np.int32), np.take_along_axis(summed, index[:, None], axis=1)[:, 0]


def main() -> None:
    loops = _numba._loops()
    assert loops is not None, "needs Numba"
    for dtype in (np.float32, np.float64):
        print(f"{np.dtype(dtype).name}: ns a row -- one chain, eight lanes, NumPy")
        for k in CENTROIDS:
            n = max(2_048, (1 << 21) // k)
            rng = np.random.default_rng(0)
            scores, norms = rng.random((n, k)).astype(dtype), rng.random(k).astype(dtype)
            scores[:, k // 2] = scores[:, 1]  # exact ties: the first index must win
            norms[k // 2] = norms[1]
            out = {name: (np.empty(n, dtype=np.int32), np.empty(n, dtype=dtype)) for name in ("chain", "lanes")}
            paths = {
                "chain": functools.partial(loops.nearest_in_rows, scores, norms, *out["chain"]),
                "lanes": functools.partial(loops.nearest_in_lanes, scores, norms, *out["lanes"]),
                "numpy": functools.partial(numpy_least, scores, norms),
            }
            ns = {name: min(timeit.repeat(path, number=3, repeat=9)) / 3 / n * 1e9 for name, path in paths.items()}
            labels, least = numpy_least(scores, norms)
            same = all(np.array_equal(out[name][0], labels) and np.array_equal(out[name][1], least) for name in out)
            print(
                f"  K={k:>5}: {ns['chain']:7.1f} {ns['lanes']:7.1f} {ns['numpy']:7.1f}   lanes ÷ chain "
                f"{ns['lanes'] / ns['chain']:.2f}, ÷ NumPy {ns['lanes'] / ns['numpy']:.2f}"
                + ("" if same else "   LABELS OR MINIMA DIFFER"),
                flush=True,
            )


if __name__ == "__main__":
    main()
