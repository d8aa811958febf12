"""Helpers shared by the benchmarks: which backends to time, data on their devices, honest timing."""

from __future__ import annotations

import importlib
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from hml import backends
from hml.exceptions import BackendUnavailableError

try:
    # asv skips a benchmark whose body raises this; a NotImplementedError from a body fails it (asv >= 0.5
    # skips on NotImplementedError from ``setup`` only).
    from asv_runner.benchmarks.mark import SkipNotImplemented
except ImportError:  # the scripts that reuse these classes outside asv
    SkipNotImplemented = NotImplementedError

#: (label, backend, device) timed by every benchmark; ones not usable here are skipped.
BACKENDS = [
    ("numpy", "numpy", None),
    ("torch-cpu", "torch", "cpu"),
    ("cupy", "cupy", None),
    ("torch-cuda", "torch", "cuda"),
    ("dask", "dask", None),
]
LABELS = [label for label, _, _ in BACKENDS]

#: ``HML_BENCH_SMOKE=1`` (set by .ci/run): every benchmark still runs, at its smallest size,
#: so the CI smoke run proves they work without spending minutes on timings nobody reads.
SMOKE = os.environ.get("HML_BENCH_SMOKE") == "1"


def sizes(full: list, smoke: list) -> list:
    """The parameter values to benchmark: ``full``, or ``smoke`` in a smoke run."""
    return smoke if SMOKE else full


def context(label: str) -> backends.ComputeContext:
    """The compute context for a benchmark label; ``NotImplementedError`` (asv: skip) if unusable."""
    _, name, device = next(b for b in BACKENDS if b[0] == label)
    try:
        return backends.resolve(name, device)
    except BackendUnavailableError as exc:
        raise NotImplementedError(str(exc)) from exc


def peer(module: str, name: str) -> Any:
    """The peer library a benchmark compares with; ``NotImplementedError`` (asv: skip) if it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotImplementedError(f"{name} is not installed") from exc


def quietly(function: Callable[[], Any]) -> Any:
    """``function()`` with warnings silenced (ConvergenceWarnings of fixed-iteration fits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function()


def regression_data(m: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = X @ rng.standard_normal(n) + 0.1 * rng.standard_normal(m)
    return X, y


def interleaved_ratio(
    ctx: backends.ComputeContext, numerator: Callable[[], Any], denominator: Callable[[], Any], rounds: int = 9
) -> float:
    """median(time of ``numerator``) / median(time of ``denominator``), the two timed alternately.

    Alternating A, B, A, B... exposes both to the same drift in clock speed and memory
    bandwidth, which on a shared machine is larger than the differences being measured.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for fn in (numerator, denominator):  # warm-up: first-touch page faults, caches, lazy init
        fn()
    for _ in range(rounds):
        for fn, bucket in zip((numerator, denominator), times, strict=True):
            ctx.backend.synchronize(ctx.device)
            start = time.perf_counter()
            fn()
            ctx.backend.synchronize(ctx.device)
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]) / statistics.median(times[1])


def alternated_medians(fits: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """The median seconds of each of ``fits`` over ``rounds`` rounds, all of them run in every round --
    in order in even rounds, in reverse in odd ones -- so that each sees the same drift of a shared
    machine (the scripts' before/after and peer comparisons). Warm-ups are the caller's."""
    times: dict[str, list[float]] = {name: [] for name in fits}
    for r in range(rounds):
        for name in list(fits) if r % 2 == 0 else list(fits)[::-1]:
            start = time.perf_counter()
            fits[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
