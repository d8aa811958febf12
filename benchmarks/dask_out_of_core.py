"""Out-of-core proof: hml fits on an array larger than its cluster's memory (issue 12, item 4).

    python benchmarks/dask_out_of_core.py                      # 8 GB, 2 workers × 2 GB (by hand)
    python benchmarks/dask_out_of_core.py --gigabytes 0.05 --chunk-rows 20000 --keep-fraction 0   # CI's size

X (float64, ``--features`` columns, chunks of ``--chunk-rows`` rows) is *generated lazily*
by ``dask.array.random`` -- it exists nowhere, so every pass over it regenerates its chunks,
as a pass over Zarr or npy files on disk would read them -- and y from it. A
``distributed.LocalCluster`` of ``--workers`` processes, one thread and ``--memory-limit``
each, fits on it:

* ``KMeans(8, init_size=20000)`` -- k-means++ from 20,000 rows drawn uniformly: one pass
  over X to take them (k-means++ on all rows reads X about twice per centroid);
* ``LinearRegression`` by gradient descent, standardised (a fixed step, ``tol=None``);
* ``LogisticRegression`` by L-BFGS on y = [x·w > 0], standardised.

The training matrices do not fit in ``KEEP_FRACTION`` of the workers' memory, so hml keeps
them lazy (``hml.backends.keep``) and each pass streams X, standardising each chunk inside it.
For each fit this prints the time per iteration, the chunks generated per iteration over
the number of chunks (the bytes read per iteration over X's size: 1.0 is one pass), the
peak memory of each worker (sampled every 0.2 s from the scheduler), and whether any worker
was lost (killed for memory, restarted).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import warnings

import numpy as np


def _chunk(rows: int, features: int, seed: int, counter: str, block_id=None) -> np.ndarray:
    """Chunk ``block_id`` of X: the same numbers whenever it is made (seeded by its index), and
    one byte appended to ``counter`` each time -- the file's size counts the chunks made."""
    with open(counter, "ab") as f:
        f.write(b".")
    return np.random.default_rng([seed, block_id[0]]).standard_normal((rows, features))


def measure(
    gigabytes: float = 8.0,
    features: int = 64,
    chunk_rows: int = 250_000,
    workers: int = 2,
    memory_limit: str = "2GB",
    iterations: tuple[int, int] = (1, 3),
    keep_fraction: float | None = None,
    fits: list[str] | None = None,
    out=print,
) -> dict[str, dict[str, float]]:
    """{fit: {"seconds", "passes" (per iteration), "peak_gb" (largest worker), "lost_workers"}}."""
    import cloudpickle
    import dask.array as da
    from distributed import Client, LocalCluster

    # The workers rebuild X's chunks with _chunk: sent by value, as this module need not be importable
    # there (in an environment asv builds, ``benchmarks`` is not on the workers' path; by reference, every
    # task failed to deserialize and the fit waited for ever).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

    import hml
    from hml.backends import _dask

    saved_fraction = _dask.KEEP_FRACTION
    if keep_fraction is not None:
        _dask.KEEP_FRACTION = keep_fraction
    rows = int(gigabytes * 1e9 / (8 * features))
    chunk_rows = min(chunk_rows, rows)
    results: dict[str, dict[str, float]] = {}
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        memory_limit=memory_limit,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        with Client(cluster) as client:
            addresses = set(client.scheduler_info()["workers"])
            limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
            sizes = [chunk_rows] * (rows // chunk_rows) + ([rows % chunk_rows] if rows % chunk_rows else [])
            counter = os.path.join(tempfile.mkdtemp(prefix="hml-ooc-"), "chunks-made")
            open(counter, "wb").close()
            X = da.map_blocks(
                lambda block_id=None: _chunk(sizes[block_id[0]], features, 0, counter, block_id),
                chunks=(tuple(sizes), (features,)),
                dtype=np.float64,
                meta=np.empty((0, 0)),
            )
            w = np.random.default_rng(1).normal(size=features)
            noise = da.random.default_rng(2).standard_normal(rows, chunks=chunk_rows)
            y = X @ w + noise
            labels = (X @ w > 0).astype(np.int64)
            n_chunks = len(sizes)
            out(
                f"X: {rows:,} × {features} float64 = {X.nbytes / 1e9:.2f} GB in {n_chunks} chunks of "
                f"{chunk_rows:,} rows, generated lazily; {workers} workers × 1 thread × {limit / 1e9:.1f} GB"
            )
            available = {
                "KMeans(8, init_size=20000)": (
                    lambda it: hml.KMeans(8, init_size=20_000, max_iter=it, tol=0.0, random_state=0),
                    (X,),
                ),
                "LinearRegression (GD, standardised)": (
                    lambda it: hml.LinearRegression(learning_rate=0.5, max_iter=it, tol=None),
                    (X, y),
                ),
                "LogisticRegression (L-BFGS, standardised)": (
                    lambda it: hml.LogisticRegression(max_iter=it, tol=None),
                    (X, labels),
                ),
            }
            short, long = iterations
            out(f"per iteration = the difference between {short}- and {long}-iteration fits")
            out(f"{'fit':<42} {'s/iteration':>11} {'passes/iteration':>16} {'peak worker GB':>15} {'lost workers':>12}")
            for name in fits or list(available):
                make, data = available[name]
                peaks: dict[str, float] = {}
                stop = threading.Event()

                def sample(peaks=peaks, stop=stop):
                    while not stop.is_set():
                        for address, info in client.scheduler_info()["workers"].items():
                            peaks[address] = max(peaks.get(address, 0), info["metrics"]["memory"])
                        time.sleep(0.2)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                runs = []
                for max_iter in (short, long):
                    made_before = os.path.getsize(counter)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        start = time.perf_counter()
                        model = make(max_iter).fit(*data)
                        spent = time.perf_counter() - start
                    runs.append((int(model.n_iter_), spent, (os.path.getsize(counter) - made_before) / n_chunks))
                stop.set()
                sampler.join()
                (it_s, t_s, p_s), (it_l, t_l, p_l) = runs
                extra = max(1, it_l - it_s)
                figures = {
                    "seconds": (t_l - t_s) / extra,
                    "passes": (p_l - p_s) / extra,
                    "peak_gb": max(peaks.values()) / 1e9,
                    "lost_workers": len(addresses - set(client.scheduler_info()["workers"])),
                }
                results[name] = figures
                out(
                    f"{name:<42} {figures['seconds']:>11.2f} {figures['passes']:>16.2f} {figures['peak_gb']:>15.2f} "
                    f"{figures['lost_workers']:>12}"
                )
                out(
                    f"  ({it_s} iterations: {t_s:.1f} s, {p_s:.1f} passes over X; {it_l}: {t_l:.1f} s, {p_l:.1f} passes)"
                )
    finally:
        cluster.close()
        _dask.KEEP_FRACTION = saved_fraction
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=8.0, help="size of X (float64)")
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="2GB", help="per worker")
    parser.add_argument(
        "--iterations",
        type=int,
        nargs=2,
        default=[1, 3],
        metavar=("SHORT", "LONG"),
        help="iterations of the two fits of each estimator (1 3)",
    )
    parser.add_argument(
        "--keep-fraction",
        type=float,
        default=None,
        help="hml's Dask keep_fraction (0.5): 0 streams X at any size, as CI's small run does",
    )
    parser.add_argument("--fits", default=None, help="comma-separated subset: kmeans, linear, logistic (all)")
    args = parser.parse_args(argv)
    names = {
        "kmeans": "KMeans(8, init_size=20000)",
        "linear": "LinearRegression (GD, standardised)",
        "logistic": "LogisticRegression (L-BFGS, standardised)",
    }
    fits = [names[f.strip()] for f in args.fits.split(",")] if args.fits else None
    measure(
        args.gigabytes,
        args.features,
        args.chunk_rows,
        args.workers,
        args.memory_limit,
        tuple(args.iterations),
        args.keep_fraction,
        fits=fits,
        out=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
