"""Property-based checks (hypothesis) on random shapes and data: the invariants, not examples."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hml
from hml.features import FeatureTransformer

preprocessing = pytest.importorskip("sklearn.preprocessing")


@st.composite
def regression_problems(draw):
    n_features = draw(st.integers(1, 6))
    n_samples = draw(st.integers(n_features + 2, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-2, 2, size=n_features)
    X = rng.normal(loc=rng.uniform(-5, 5, size=n_features), scale=scale, size=(n_samples, n_features))
    y = rng.normal(size=n_samples) * 10.0 ** rng.uniform(-1, 2)
    l2 = draw(st.sampled_from([0.0, 0.1, 10.0]))
    return X, y, l2


@settings(max_examples=60, deadline=None)
@given(regression_problems())
def test_normal_equation_is_the_least_squares_optimum(problem):
    """At the optimum the gradient vanishes and no other θ has a lower cost (checked against lstsq)."""
    X, y, l2 = problem
    model = hml.LinearRegression(solver="normal", l2=l2, normalize=False).fit(X, y)
    m, n = X.shape
    A = np.column_stack([np.ones(m), X])
    penalty = np.sqrt(l2) * np.eye(n + 1)[1:]
    theta, *_ = np.linalg.lstsq(np.vstack([A, penalty]), np.concatenate([y, np.zeros(n)]), rcond=None)
    ours = np.concatenate([[model.intercept_], model.coef_])
    prediction_scale = np.abs(A @ theta).max() + np.abs(y).max()
    np.testing.assert_allclose(A @ ours, A @ theta, atol=1e-8 * prediction_scale)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(0, 4), st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_feature_expansion_shape_names_and_polynomials(n_features, degree, sin_degree, seed):
    X = np.random.default_rng(seed).normal(size=(7, n_features))
    ft = FeatureTransformer(polynomial_degree=degree, sinusoid_degree=sin_degree, normalize=False).fit(X)
    out = ft.transform(X)
    n_poly = comb(n_features + max(degree, 1), max(degree, 1)) - 1  # monomials of degree 1..d
    assert out.shape == (7, n_poly + sin_degree * n_features) == (7, ft.n_features_out_)
    assert len(ft.get_feature_names_out()) == ft.n_features_out_
    reference = preprocessing.PolynomialFeatures(max(degree, 1), include_bias=False).fit_transform(X)
    np.testing.assert_allclose(out[:, :n_poly], reference, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1, 5), st.integers(0, 2**32 - 1), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_any_single_non_finite_value_is_reported_where_it_is(m, n, seed, bad):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n))
    row, col = rng.integers(m), rng.integers(n)
    X[row, col] = bad
    with pytest.raises(
        ValueError, match=rf"X contains 1 NaN or infinite value\(s\) \(the first at row {row}, column {col}\)"
    ):
        hml.LinearRegression().fit(X, np.zeros(m))
