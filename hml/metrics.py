"""Regression metrics, computed in the namespace of their inputs and returned as Python floats."""

from __future__ import annotations

from typing import Any

from hml import backends
from hml._array import check_y, float_dtype

__all__ = ["mean_squared_error", "r2_score"]


def _targets(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    """Both targets as floating 1-D arrays in one namespace: that of the first device array given."""
    like = next((a for a in (y_true, y_pred) if backends.is_array(a)), None)
    ctx = backends.resolve(backends.AUTO, like=like)
    dtype = float_dtype(ctx, getattr(like, "dtype", None))
    true = check_y(y_true, ctx, n_samples=None, dtype=dtype, name="y_true")
    pred = check_y(y_pred, ctx, n_samples=true.shape[0], dtype=dtype, name="y_pred")
    if true.shape[0] == 0:
        raise ValueError("y_true is empty; metrics need at least one sample")
    return ctx.xp, true, pred


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """MSE = 1/m Σ (y_i − ŷ_i)²."""
    xp, true, pred = _targets(y_true, y_pred)
    return float(xp.mean((true - pred) ** 2))


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)².

    1 is a perfect fit, 0 the score of always predicting ȳ; it can be negative.
    A constant ``y_true`` gives 1.0 for a perfect prediction and 0.0 otherwise
    (scikit-learn's convention).
    """
    xp, true, pred = _targets(y_true, y_pred)
    return _r2(xp, true, pred)


def _r2(xp: Any, true: Any, pred: Any) -> float:
    if true.shape[0] < 2:
        raise ValueError("R² needs at least 2 samples (the variance of one value is undefined)")
    residual = float(xp.sum((true - pred) ** 2))
    total = float(xp.sum((true - xp.mean(true)) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total
