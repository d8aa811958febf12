"""Helpers shared by the benchmarks: which backends to time, data on their devices, honest timing."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

from hml import backends
from hml.exceptions import BackendUnavailableError

#: (label, backend, device) timed by every benchmark; ones not usable here are skipped.
BACKENDS = [
    ("numpy", "numpy", None),
    ("torch-cpu", "torch", "cpu"),
    ("cupy", "cupy", None),
    ("torch-cuda", "torch", "cuda"),
    ("dask", "dask", None),
]
LABELS = [label for label, _, _ in BACKENDS]


def context(label: str) -> backends.ComputeContext:
    """The compute context for a benchmark label; ``NotImplementedError`` (asv: skip) if unusable."""
    _, name, device = next(b for b in BACKENDS if b[0] == label)
    try:
        return backends.resolve(name, device)
    except BackendUnavailableError as exc:
        raise NotImplementedError(str(exc)) from exc


def regression_data(m: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = X @ rng.standard_normal(n) + 0.1 * rng.standard_normal(m)
    return X, y


def median_time(ctx: backends.ComputeContext, fn: Callable[[], Any], repeat: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds, with the device synchronised around each call."""
    for _ in range(warmup):
        fn()
    ctx.backend.synchronize(ctx.device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        ctx.backend.synchronize(ctx.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
