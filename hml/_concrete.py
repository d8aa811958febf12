"""Fitted state made concrete: what a lazy backend's fit leaves as graphs, computed once at the end of ``fit``."""

from __future__ import annotations

from typing import Any

from hml import backends

__all__ = ["make_concrete"]


def make_concrete(estimator: Any, ctx: backends.ComputeContext) -> None:
    """Replace the fitted arrays of ``estimator`` (``*_`` attributes, lists and tuples of them at any depth,
    fitted sub-estimators such as ``feature_transformer_``) by concrete ones, all computed together. On Dask a
    fitted model would otherwise keep graphs over its training data: every ``predict`` would re-read the
    training chunks, a pickle would hold the whole graph, and a distributed scheduler the training's tasks
    while the model lives. Other backends' arrays are concrete already: left as they are. A tuple keeps its
    type (a named tuple stays one)."""
    if not ctx.backend.lazy:
        return
    slots: list[tuple[Any, Any]] = []  # (container, key) of every lazy array
    tuples: list[tuple[Any, Any, type]] = []  # of every tuple holding one, and its type: a list meanwhile

    def holds(value: Any) -> bool:  # a lazy array, at any depth of lists and tuples
        return ctx.backend.owns(value) or (isinstance(value, (list, tuple)) and any(map(holds, value)))

    def visit(container: Any, key: Any, value: Any) -> None:
        if ctx.backend.owns(value):
            slots.append((container, key))
        elif isinstance(value, tuple) and holds(value):
            tuples.append((container, key, type(value)))
            _set(container, key, list(value))
            visit(container, key, _get(container, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                visit(value, i, item)
        elif hasattr(type(value), "__params__"):  # an hml estimator (declared parameters), fitted inside this one
            for name, item in vars(value).items():
                if name.endswith("_") and name != "_ctx_":
                    visit(value, name, item)

    visit(None, None, estimator)
    values = ctx.concrete(*(_get(container, key) for container, key in slots))
    for (container, key), value in zip(slots, values, strict=True):
        _set(container, key, value)
    for container, key, kind in reversed(tuples):  # inner tuples first, while their outer ones are lists
        items = _get(container, key)
        _set(container, key, kind(*items) if hasattr(kind, "_fields") else kind(items))


def _get(container: Any, key: Any) -> Any:
    return container[key] if isinstance(container, list) else getattr(container, key)


def _set(container: Any, key: Any, value: Any) -> None:
    container.__setitem__(key, value) if isinstance(container, list) else setattr(container, key, value)
