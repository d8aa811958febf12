"""Random numbers, drawn on the host and moved to the device: the same seed gives the same numbers
on every backend (and a GPU's own generator would give others)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hml.backends import ComputeContext, numpy_dtype

__all__ = ["random_uniform"]


def random_uniform(
    ctx: ComputeContext, rng: np.random.Generator, shape: int | tuple[int, ...], *, low: float, high: float, dtype: Any
) -> Any:
    """``U(low, high)`` samples of ``shape``, drawn with NumPy's generator ``rng`` and moved to ``ctx``'s
    device in ``dtype``: one upload (it waits for the host buffer, which torch's sync-debug mode counts
    as a synchronisation; it happens once, at the start of a fit)."""
    sample = rng.uniform(low, high, size=shape).astype(numpy_dtype(dtype))
    return ctx.asarray(sample)
