"""k-means per Lloyd iteration against this machine's limits (issue 24's second floor): hml and scikit-learn at
issue 24's four shapes, each iteration's time ÷ max(one read of X at the measured memory bandwidth, 2·N·D·K
flops at the measured GEMM rate), all timed in one process.

    python benchmarks/kmeans_roofline.py --rounds 5
    python benchmarks/kmeans_roofline.py --rounds 5 --threads 1

Bandwidth: X's bytes ÷ the best time of summing X's columns with the rows split over the threads (one read
of X, little arithmetic). GEMM rate: 2n³ ÷ the best time of an n × n product (n = 2,048) in X's dtype, BLAS
at the same threads. A Lloyd iteration is a 20-iteration fit (``tol=0``, from the same k rows) ÷ 20, hml
and scikit-learn alternately. The floor is hml ≤ 1.3 × the limit. ``--threads 1`` holds BLAS, OpenMP and
hml's row-block threads (a private function, patched here) to one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternated_medians
from kmeans_plusplus import ITERATIONS, SHAPES  # issue 24's four shapes, 20 iterations


def best_time(function, repeats: int = 7) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def read_seconds(X: np.ndarray, threads: int) -> float:
    """The best time to read X once: its column sums, the rows split over ``threads``."""
    if threads == 1:
        return best_time(lambda: np.add.reduce(X, axis=0))
    parts = np.array_split(X, threads)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return best_time(lambda: list(pool.map(lambda part: np.add.reduce(part, axis=0), parts)))


def gemm_flops_per_second(dtype: str, n: int = 2048) -> float:
    rng = np.random.default_rng(0)
    A, B = (rng.random((n, n)).astype(dtype) for _ in range(2))
    return 2.0 * n**3 / best_time(lambda: A @ B, repeats=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="hold every library to this many threads")
    args = parser.parse_args()
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    import hml
    import hml.backends._rows as rows

    threads = args.threads or os.cpu_count() or 1
    if args.threads:
        rows._threads = lambda: args.threads  # hml's row-block threads (no public setting)
    warnings.simplefilter("ignore")
    with threadpool_limits(args.threads):  # None: the libraries' defaults
        rate = {dtype: gemm_flops_per_second(dtype) for dtype in ("float64", "float32")}
        print(
            f"{threads} thread(s); GEMM {rate['float64'] / 1e9:.0f} GFLOP/s float64, "
            f"{rate['float32'] / 1e9:.0f} float32",
            flush=True,
        )
        for n, d, k, dtype in SHAPES:
            X = np.random.default_rng(0).random((n, d), dtype=np.float32 if dtype == "float32" else np.float64)
            start = X[np.random.default_rng(0).choice(n, k, replace=False)]
            read = read_seconds(X, threads)
            flops = 2.0 * n * d * k / rate[dtype]
            limit = max(read, flops)
            fits = {
                "hml": lambda X=X, k=k, start=start: hml.KMeans(k, init=start, max_iter=ITERATIONS, tol=0.0).fit(X),
                "sklearn": lambda X=X, k=k, start=start: KMeans(
                    k, init=start, n_init=1, max_iter=ITERATIONS, tol=0.0, algorithm="lloyd"
                ).fit(X),
            }
            for fit in fits.values():
                fit()  # warm-up
            t = {name: seconds / ITERATIONS for name, seconds in alternated_medians(fits, args.rounds).items()}
            print(
                f"{n:,} × {d}, K = {k}, {dtype}: read of X {read * 1e3:.1f} ms ({X.nbytes / read / 1e9:.1f} GB/s), "
                f"2NDK flops {flops * 1e3:.1f} ms; per iteration hml {t['hml'] * 1e3:.1f} ms, scikit-learn "
                f"{t['sklearn'] * 1e3:.1f} ms: hml ÷ limit {t['hml'] / limit:.2f}, scikit-learn ÷ limit "
                f"{t['sklearn'] / limit:.2f}, hml ÷ scikit-learn {t['hml'] / t['sklearn']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
