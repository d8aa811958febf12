"""hml.metrics against scikit-learn's metrics."""

import numpy as np
import pytest

from hml import metrics

sk_metrics = pytest.importorskip("sklearn.metrics")


def test_metrics_match_scikit_learn(case):
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.3, size=50)
    tol = 1e-12 if case.float64 else 1e-5
    assert metrics.mean_squared_error(case.asarray(y), case.asarray(pred)) == pytest.approx(
        sk_metrics.mean_squared_error(y, pred), rel=tol)
    assert metrics.r2_score(case.asarray(y), case.asarray(pred)) == pytest.approx(
        sk_metrics.r2_score(y, pred), rel=tol)
    assert isinstance(metrics.r2_score(case.asarray(y), pred), float)


def test_metric_edge_cases():
    assert metrics.r2_score([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert metrics.r2_score([1.0, 1.0], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="y_pred has 2 values but X has 3 rows|y_pred has 2 values"):
        metrics.r2_score([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.r2_score([1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.mean_squared_error([1.0, np.nan], [1.0, 2.0])
