"""Finite data whose squares overflow: handled where the sums fit, refused with the fix where not.

k-means and the Gaussian densities sum squares of X (‖x‖², variances, Σ): in float64 they
overflow for |x| ≳ 1e154 / √(n·d), in float32 for |x| ≳ 1e19 / √(n·d). Below that they
must give the fit of the rescaled data, scaled back; above it, a ValueError naming the
largest value and the fix -- never NaN inertia or a "singular covariance" that is not.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import hml

ESTIMATORS = {
    "kmeans": lambda: hml.KMeans(3, random_state=0, max_iter=20),
    "anomaly-diag": lambda: hml.GaussianAnomalyDetection(),
    "anomaly-full": lambda: hml.GaussianAnomalyDetection(covariance="full"),
}


def _X():
    return np.random.default_rng(0).normal(size=(200, 3))


def _fit(name, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ESTIMATORS[name]().fit(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_large_but_summable_values_give_the_rescaled_fit(case64, name):
    scale = 1e150
    reference = _fit(name, _X())
    model = _fit(name, case64.asarray(_X() * scale))
    if name == "kmeans":
        np.testing.assert_allclose(case64.to_numpy(model.cluster_centers_) / scale, reference.cluster_centers_,
                                   rtol=1e-9)
        assert model.inertia_ / scale**2 == pytest.approx(reference.inertia_, rel=1e-9)
    else:
        # log p(x) of the scaled data is that of the data less d·log(scale): the same anomalies.
        shift = 3 * np.log(scale)
        got = case64.to_numpy(model.log_density(case64.asarray(_X() * scale)))
        np.testing.assert_allclose(got + shift, reference.log_density(_X()), rtol=1e-9)


@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_squares_that_overflow_are_refused_with_the_largest_value_and_the_fix(case64, name, scale):
    X = _X() * scale
    largest = np.abs(X).max()
    with pytest.raises(ValueError, match=re.escape(f"overflows float64: X's largest magnitude is {largest:.3g}, ")
                       + r".*above about 5\.47e\+152\. Rescale X first, e\.g\. X / 1e\+"):
        _fit(name, case64.asarray(X))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_float32_range(name):
    ok = _fit(name, (_X() * 1e15).astype(np.float32))
    values = ok.transform(_X() * 1e15) if name == "kmeans" else ok.log_density((_X() * 1e15).astype(np.float32))
    assert np.all(np.isfinite(values))
    with pytest.raises(ValueError, match=r"overflows float32: X's largest magnitude is 3\.9e\+25"):
        _fit(name, (_X() * 1e25).astype(np.float32))
