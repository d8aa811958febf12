"""The GPU scripts' timer: CUDA events around a call, median of several after a warm-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def median_ms(function: Callable[[], Any], repeats: int, *, library: str = "cupy") -> float:
    """Milliseconds ``function()`` takes on the GPU (CuPy's or torch's events), median of ``repeats``."""
    function()  # warm-up: compilation, allocator, caches
    times = []
    for _ in range(repeats):
        if library == "cupy":
            import cupy

            start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        else:
            import torch

            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) if library == "cupy" else start.elapsed_time(stop))
    return float(np.median(times))
