"""Watching a fit without slowing it: callbacks that receive only what the fit reads anyway."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

__all__ = ["CostCallback", "ProgressCallback", "cost_callback", "progress", "progress_callback"]

ProgressCallback = Callable[[int, int], None]
CostCallback = Callable[[int, float], None]

_progress: contextvars.ContextVar[tuple[ProgressCallback, CostCallback] | None] = contextvars.ContextVar(
    "hml_progress", default=None
)


@contextlib.contextmanager
def progress(callback: ProgressCallback, *, on_cost: CostCallback | None = None) -> Iterator[ProgressCallback]:
    """Call ``callback(iteration, max_iter)`` after every iteration (or epoch) of the fits run inside,
    and ``on_cost(iteration, cost)`` whenever the fit reads its cost back anyway.

    The optimisation loop of :mod:`hml.optimize` and k-means' Lloyd iterations report. ``callback``
    gets Python ints only, and ``on_cost`` a float the fit has already read for its own convergence
    test (once per cost window, line-search iteration or Lloyd iteration), so watching a fit adds no
    GPU synchronisation. Local to the thread or asyncio task, like :func:`hml.use_backend`.
    Estimators' ``verbose=True`` uses it for a progress bar::

        from tqdm.auto import tqdm
        bar = tqdm(total=model.max_iter)
        with hml.optimize.progress(lambda iteration, max_iter: bar.update(1),
                                   on_cost=lambda iteration, cost: bar.set_postfix(cost=cost)):
            model.fit(X, y)
    """
    token = _progress.set((callback, on_cost or _no_cost))
    try:
        yield callback
    finally:
        _progress.reset(token)


def progress_callback() -> ProgressCallback:
    """The iteration callback :func:`progress` set for this context (a no-op when none is), looked up once per fit."""
    hooks = _progress.get()
    return _no_progress if hooks is None else hooks[0]


def cost_callback() -> CostCallback:
    """The ``on_cost`` callback :func:`progress` set for this context (a no-op when none is)."""
    hooks = _progress.get()
    return _no_cost if hooks is None else hooks[1]


def _no_progress(iteration: int, max_iter: int) -> None:
    pass


def _no_cost(iteration: int, cost: float) -> None:
    pass
