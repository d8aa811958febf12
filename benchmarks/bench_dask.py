"""Dask's overhead per iteration against NumPy, at 1,000,000 × 64 float64 in 8 chunks (issue 12).

``track_dask_over_numpy`` is the ratio (Dask s/iteration) / (NumPy s/iteration), both timed
alternately in one process by ``benchmarks/dask_overhead.py`` (per iteration = the difference
between a 5- and a 25-iteration fit), on the threaded scheduler and on a local
``distributed`` cluster of 1 and of 2 worker processes. The floors the issue sets: ≤ 2 threaded,
≤ 3 on 2 workers. The smoke run (CI) takes 2,000 rows and one repeat.
"""

from __future__ import annotations

from .common import SMOKE, peer

SCHEDULERS = {"threaded": None, "1 worker": 1, "2 workers": 2}


class DaskOverhead:
    params = (["linear regression GD", "k-means Lloyd"], list(SCHEDULERS))
    param_names = ["fit", "scheduler"]
    timeout = 900

    def setup(self, fit, scheduler):
        peer("dask.array", "Dask")
        if SCHEDULERS[scheduler] is not None:
            peer("distributed", "dask.distributed")

    def track_dask_over_numpy(self, fit, scheduler):
        from .dask_overhead import measure

        rows, repeat, short, long = (2_000, 1, 1, 3) if SMOKE else (1_000_000, 3, 5, 25)
        numpy_s, dask_s = measure(
            rows, repeat=repeat, short=short, long=long, fits=[fit], workers=SCHEDULERS[scheduler]
        )[fit]
        return dask_s / numpy_s

    track_dask_over_numpy.unit = "Dask / NumPy per iteration"


class OutOfCore:
    """``benchmarks/dask_out_of_core.py`` at a small size, X streamed (``keep_fraction`` 0): the
    passes over X per iteration (the issue's floor: ≤ 1.1) on a 2-worker local cluster. The 8 GB
    proof runs by hand (``python benchmarks/dask_out_of_core.py``; benchmarks/RESULTS.md)."""

    params = [
        "KMeans(8, init_size=20000)",
        "LinearRegression (GD, standardised)",
        "LogisticRegression (L-BFGS, standardised)",
    ]
    param_names = ["fit"]
    timeout = 600

    def setup(self, fit):
        peer("dask.array", "Dask")
        peer("distributed", "dask.distributed")

    def track_passes_over_X_per_iteration(self, fit):
        from .dask_out_of_core import measure

        return measure(0.02 if SMOKE else 0.2, chunk_rows=10_000, keep_fraction=0.0, fits=[fit], out=lambda line: None)[
            fit
        ]["passes"]

    track_passes_over_X_per_iteration.unit = "passes over X"
