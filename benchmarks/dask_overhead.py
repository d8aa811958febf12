"""What one iteration costs on Dask against NumPy, by size: where Dask starts to pay.

    python benchmarks/dask_overhead.py                  # 1e3 … 1e6 rows × 64, 8 chunks
    python benchmarks/dask_overhead.py --rows 1000000 --repeat 5
    python benchmarks/dask_overhead.py --rows 1000000 --workers 1 2   # distributed.LocalCluster

For each size, linear-regression gradient descent (tol=None, a fixed step) and k-means
Lloyd iterations (tol=0, from given centroids) are fitted at two iteration counts on the
same data, NumPy and Dask (threaded scheduler, or ``--workers`` local worker processes;
8 row chunks) alternately in this one process; the per-iteration time is the difference over
the extra iterations, so the fixed costs (validation, the final reads, Dask's concrete model)
cancel. Medians of ``--repeat``.
The ratio Dask/NumPy per iteration is the overhead a user pays for Dask on data that
fits in memory; ``hml`` warns below the size where it exceeds 2 (``DASK_SMALL_BYTES``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import warnings

import numpy as np


def _fits(X_np, y_np, centroids, chunks):
    import dask.array as da

    import hml

    X_d = da.from_array(X_np, chunks=(max(1, X_np.shape[0] // chunks), X_np.shape[1])).persist()
    y_d = da.from_array(y_np, chunks=X_d.chunks[0]).persist()

    def linear(X, y, iterations):
        return hml.LinearRegression(learning_rate=0.1, max_iter=iterations, tol=None).fit(X, y)

    def kmeans(X, y, iterations):
        return hml.KMeans(centroids.shape[0], init=centroids, max_iter=iterations, tol=0.0).fit(X)

    return {"linear regression GD": linear, "k-means Lloyd": kmeans}, {"numpy": (X_np, y_np), "dask": (X_d, y_d)}


@contextlib.contextmanager
def scheduler(workers: int | None):
    """Dask's threaded scheduler (``workers=None``), or a local ``distributed`` cluster of
    ``workers`` processes sharing this machine's cores, as the default scheduler inside."""
    if workers is None:
        yield None
        return
    from distributed import Client, LocalCluster

    cores = os.cpu_count() or 1
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=max(1, cores // workers),
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def measure(
    rows: int,
    features: int = 64,
    chunks: int = 8,
    repeat: int = 3,
    short: int = 5,
    long: int = 25,
    fits: list[str] | None = None,
    workers: int | None = None,
) -> dict[str, tuple[float, float]]:
    """{fit: (NumPy s/iteration, Dask s/iteration)}, Dask on the threaded scheduler or, with
    ``workers``, on a local cluster of that many worker processes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    y = X @ rng.normal(size=features)
    centroids = X[:8].copy()
    results = {}
    with scheduler(workers):
        available, data = _fits(X, y, centroids, chunks)
        for label in fits or list(available):
            fit = available[label]
            times = {"numpy": [], "dask": []}
            for _ in range(repeat):
                for backend in ("numpy", "dask"):  # alternately, so drifts in the machine's load hit both
                    Xb, yb = data[backend]
                    spent = []
                    for iterations in (short, long):
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            start = time.perf_counter()
                            fit(Xb, yb, iterations)
                            spent.append(time.perf_counter() - start)
                    times[backend].append((spent[1] - spent[0]) / (long - short))
            results[label] = (statistics.median(times["numpy"]), statistics.median(times["dask"]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=None,
        help="worker processes of a local distributed cluster, one figure per count (default: threaded)",
    )
    args = parser.parse_args()
    print(
        f"{'rows':>10} {'MB':>8}  {'scheduler':<13} {'fit':<22} {'NumPy ms/it':>12} {'Dask ms/it':>11} {'Dask/NumPy':>10}"
    )
    for rows in args.rows:
        for workers in args.workers or [None]:
            where = "threaded" if workers is None else f"{workers} worker{'s' if workers > 1 else ''}"
            for label, (numpy_s, dask_s) in measure(
                rows, args.features, args.chunks, args.repeat, workers=workers
            ).items():
                megabytes = rows * args.features * 8 / 1e6
                print(
                    f"{rows:>10} {megabytes:>8.1f}  {where:<13} {label:<22} {numpy_s * 1e3:>12.3f} "
                    f"{dask_s * 1e3:>11.3f} {dask_s / numpy_s:>10.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
