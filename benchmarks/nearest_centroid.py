"""NumPy's nearest-centroid kernel against its portable default (the scores' argmin along each row), on
one block of rows as Lloyd's iterations cut them, BLAS at one thread as in the blocks' threads.

    python benchmarks/nearest_centroid.py

Prints ns per row for each path and whether their labels agree, at the block size of issue 24's shapes
and at a few small K around ``hml.kernels.distances.RUNNING_MINIMUM_CENTROIDS``.
"""

from __future__ import annotations

import functools
import timeit

import numpy as np
from threadpoolctl import threadpool_limits

from hml import kernels
from hml._kmeans import row_bytes_per_row
from hml.backends._rows import CPU_BLOCK_BYTES

SHAPES = [(16, 3), (16, 8), (32, 8), (32, 16), (16, 24), (32, 64), (128, 256)]


def main() -> None:
    threadpool_limits(1)
    for dtype in (np.float64, np.float32):
        for d, k in SHAPES:
            rng = np.random.default_rng(0)
            block = rng.random((CPU_BLOCK_BYTES // row_bytes_per_row(k, d, np.empty(1, dtype)), d), dtype=dtype)
            centroids = block[rng.choice(block.shape[0], k, replace=False)]
            norms = (centroids * centroids).sum(axis=1)
            paths = {"kernel": kernels.nearest_centroid, "argmin": kernels.nearest_centroid.portable}
            labels = {name: path(block, centroids, norms)[0] for name, path in paths.items()}
            ns = {
                name: min(timeit.repeat(functools.partial(path, block, centroids, norms), number=10, repeat=7))
                / 10
                / block.shape[0]
                * 1e9
                for name, path in paths.items()
            }
            print(
                f"{block.shape[0]:,} × {d}, K = {k}, {np.dtype(dtype).name}: kernel {ns['kernel']:.1f} ns/row, "
                f"argmin {ns['argmin']:.1f} ({ns['kernel'] / ns['argmin']:.2f}×); labels agree: "
                f"{bool(np.array_equal(labels['kernel'], labels['argmin']))}",
                flush=True,
            )


if __name__ == "__main__":
    main()
