"""The example estimator (``tests/example_estimator.py``) computes ridge regression, on every backend.

The cross-cutting tests (scikit-learn's checks, host reads, saving, faults, Dask, validation, the
numerical range) run it as one of ``tests/estimators.py``'s specs; here its answer is held to
independent references: the least-squares solution of the augmented system and scikit-learn's
``Ridge``.
"""

from __future__ import annotations

import numpy as np
import pytest
from example_estimator import RidgeRegression


def _data(seed=0):
    """Features on different scales, away from 0, so the intercept and the centring matter."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 4)) * np.array([1.0, 10.0, 0.1, 3.0]) + np.array([5.0, -2.0, 0.0, 1.0])
    return X, X @ rng.normal(size=4) + 2.0 + 0.5 * rng.normal(size=80)


def _augmented_least_squares(X, y, l2):
    """w, b minimising ‖Xw + b − y‖² + λ‖w‖², as the least-squares solution of [X 1; √λ I 0] θ = [y; 0]
    (no normal equations formed): the intercept's column has no penalty row."""
    m, d = X.shape
    A = np.block([[X, np.ones((m, 1))], [np.sqrt(l2) * np.eye(d), np.zeros((d, 1))]])
    theta = np.linalg.lstsq(A, np.concatenate([y, np.zeros(d)]), rcond=None)[0]
    return theta[:d], theta[d]


@pytest.mark.parametrize("l2", [0.0, 1.0, 50.0])
def test_the_fit_is_the_least_squares_solution_of_the_augmented_system(case, l2):
    X, y = _data()
    w, b = _augmented_least_squares(X, y, l2)
    model = RidgeRegression(l2=l2).fit(case.asarray(X), case.asarray(y))
    rtol = case.rtol
    np.testing.assert_allclose(case.to_numpy(model.coef_), w, rtol=rtol, atol=rtol * np.abs(w).max())
    assert float(case.to_numpy(model.intercept_)) == pytest.approx(b, rel=rtol, abs=rtol * abs(b))
    predicted = case.to_numpy(model.predict(case.asarray(X)))
    np.testing.assert_allclose(predicted, X @ w + b, rtol=rtol, atol=rtol * np.abs(y).max())


def test_it_is_scikit_learns_ridge():
    sklearn = pytest.importorskip("sklearn.linear_model")
    X, y = _data(1)
    ours = RidgeRegression(l2=3.0).fit(X, y)
    theirs = sklearn.Ridge(alpha=3.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10)
    assert float(ours.intercept_) == pytest.approx(theirs.intercept_, rel=1e-10)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-12)


def test_collinear_features_without_a_penalty_are_refused_with_the_fix():
    X, y = _data()
    collinear = np.column_stack([X[:, 0], 2.0 * X[:, 0]])
    with pytest.raises(ValueError, match=r"normal equations are singular.*set l2 > 0"):
        RidgeRegression(l2=0.0).fit(collinear, y)
    RidgeRegression(l2=1e-3).fit(collinear, y)  # ... and the fix works
