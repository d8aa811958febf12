"""Finite data whose squares overflow: handled where the algorithm allows, refused with the fix where not.

The fits on X as it is -- k-means, the Gaussian densities, the example estimator's normal
equations (tests/example_estimator.py) -- sum squares of X (‖x‖², variances, Σ, XᵀX): in
float64 they overflow for |x| ≳ 1e154 / √(n·d), in float32 for |x| ≳ 1e19 / √(n·d). Above
that, a ValueError naming the largest value and the fix -- never NaN inertia or a "singular
covariance" that is not; below it, k-means and the densities give the fit of the rescaled
data, scaled back.

Linear models, the MLP and the feature transform standardise X by default (normalize=True):
that is exact at any finite scale (a power-of-two rescaling where the plain sums overflow), so
they give the unscaled data's model at 1e150, 1e200 and 1e300. Unnormalised, they fit up to the
limit (the optimiser's first step and line search are scale-free) and are refused above it.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from estimators import SPECS

import hml

# The fits that sum squares of X as it is (k-means' ‖x‖², the Gaussians' variances and Σ, the
# normal equations' XᵀX) refuse X whose squares overflow; those that standardise it do not need to.
UNSTANDARDISED = [spec for spec in SPECS if not spec.standardises]
STANDARDISED = [spec for spec in SPECS if spec.standardises]


def _X():
    return np.random.default_rng(0).normal(size=(200, 3))


def _fit(spec, X):
    _, y = spec.data(n=200, d=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.make().fit(X, y)


# A clusterer's centroids scale with X, and a density's log p(x) shifts by −d·log(scale).
@pytest.mark.parametrize(
    "spec", [spec for spec in UNSTANDARDISED if spec.kind in ("clusterer", "density_estimator")], ids=str
)
def test_large_but_summable_values_give_the_rescaled_fit(case64, spec):
    scale = 1e150
    reference = _fit(spec, _X())
    model = _fit(spec, case64.asarray(_X() * scale))
    if spec.kind == "clusterer":
        np.testing.assert_allclose(
            case64.to_numpy(model.cluster_centers_) / scale, reference.cluster_centers_, rtol=1e-9
        )
        assert model.inertia_ / scale**2 == pytest.approx(reference.inertia_, rel=1e-9)
    else:
        # log p(x) of the scaled data is that of the data less d·log(scale): the same anomalies.
        shift = 3 * np.log(scale)
        got = case64.to_numpy(model.log_density(case64.asarray(_X() * scale)))
        np.testing.assert_allclose(got + shift, reference.log_density(_X()), rtol=1e-9)


@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300])
@pytest.mark.parametrize("spec", UNSTANDARDISED, ids=str)
def test_squares_that_overflow_are_refused_with_the_largest_value_and_the_fix(case64, spec, scale):
    X = _X() * scale
    largest = np.abs(X).max()
    with pytest.raises(
        ValueError,
        match=re.escape(f"overflows float64: X's largest magnitude is {largest:.3g}, ")
        + r".*above about 5\.47e\+152\. Rescale X first, e\.g\. X / 1e\+",
    ):
        _fit(spec, case64.asarray(X))


@pytest.mark.parametrize("spec", UNSTANDARDISED, ids=str)
def test_float32_range(spec):
    ok = _fit(spec, (_X() * 1e15).astype(np.float32))
    for method in spec.outputs:
        assert np.all(np.isfinite(getattr(ok, method)((_X() * 1e15).astype(np.float32)))), method
    with pytest.raises(ValueError, match=r"overflows float32: X's largest magnitude is 3\.9e\+25"):
        _fit(spec, (_X() * 1e25).astype(np.float32))


# -- the standardising fits: the linear models, the MLP and the feature transform itself ------


def _problem():
    """200 × 3 data; y linear in X plus noise; labels that no hyperplane separates."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=200)
    return X, y, (y + 0.5 * rng.normal(size=200) > 0).astype(int)


def _target(spec):
    _, y, labels = _problem()
    return {"values": y, "classes": labels, None: None}[spec.target]


def _output(spec, model, X):
    return getattr(model, spec.output)(X)


@pytest.mark.parametrize("scale", [1e150, 1e200, 1e300])
@pytest.mark.parametrize("spec", STANDARDISED, ids=str)
def test_normalized_models_give_the_unscaled_datas_model_at_any_finite_scale(case64, spec, scale):
    """Standardisation divides the scale out exactly: the same model as on X (before, the σ of
    X × 1e200 overflowed, and the fit was a constant)."""
    X, _, _ = _problem()
    target = _target(spec)
    reference = _output(spec, _quietly(spec.make().fit, X, target), X)
    model = _quietly(spec.make().fit, case64.asarray(X * scale), None if target is None else case64.asarray(target))
    got = case64.to_numpy(_output(spec, model, case64.asarray(X * scale)))
    np.testing.assert_allclose(got, reference, rtol=1e-7, atol=1e-9)
    assert np.ptp(got) > 0.5  # not a constant model


@pytest.mark.parametrize("scale", [1e15, 1e25, 1e35])
@pytest.mark.parametrize("spec", STANDARDISED, ids=str)
def test_normalized_models_in_float32_range(spec, scale):
    X, _, _ = _problem()
    X32 = X.astype(np.float32)
    target = _target(spec)
    if spec.target == "values":
        target = target.astype(np.float32)
    reference = _output(spec, _quietly(spec.make().fit, X32, target), X32)
    got = _output(spec, _quietly(spec.make().fit, X32 * np.float32(scale), target), X32 * np.float32(scale))
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, reference, rtol=2e-3, atol=2e-3)


def test_the_power_of_two_standardisation_agrees_with_the_plain_one(case64):
    """The fallback is exact: where both are finite they agree to rounding, a constant column
    included; where the plain one overflows, the fallback is the unscaled σ times the scale."""
    from hml.numerics import scaled_standardisation, standardisation

    X, _, _ = _problem()
    X = np.concatenate([X, np.full((200, 1), 7.0), np.zeros((200, 1))], axis=1)
    xp = case64.xp
    plain = [case64.to_numpy(a) for a in standardisation(case64.asarray(X), xp)]
    scaled = [case64.to_numpy(a) for a in scaled_standardisation(case64.asarray(X), xp)]
    for a, b in zip(plain, scaled, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-14, atol=0)
    assert scaled[1][3] == 1.0 and scaled[1][4] == 1.0  # constant columns: σ = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's, on the overflow this shows
        huge = [case64.to_numpy(a) for a in standardisation(case64.asarray(X[:, :3] * 1e200), xp)]
    assert not np.all(np.isfinite(huge[1]))
    mean, scale = (case64.to_numpy(a) for a in scaled_standardisation(case64.asarray(X[:, :3] * 1e200), xp))
    np.testing.assert_allclose(scale / 1e200, plain[1][:3], rtol=1e-14)
    np.testing.assert_allclose(mean / 1e200, plain[0][:3], rtol=1e-12)


def test_unnormalized_linear_regression_fits_up_to_the_limit(case64):
    """At 1e150 the sums of squares still fit: the normal equation is the least-squares solution
    (coefficients 1e150 times smaller), and gradient descent takes the step 1/λ_max from a power
    iteration that no longer overflows (‖Hv‖² did, at λ ≈ 1e300, and the step came out 1e300).
    Its fit is close, not exact: the intercept's curvature is 1e300 times smaller than the
    features', so that step barely moves it -- the ill-conditioning normalize=True removes."""
    X, y, _ = _problem()
    A = np.column_stack([np.ones(200), X])
    exact = np.linalg.lstsq(A, y, rcond=None)[0]
    scale = 1e150
    normal = hml.LinearRegression(normalize=False, solver="normal").fit(case64.asarray(X * scale), case64.asarray(y))
    np.testing.assert_allclose(case64.to_numpy(normal.coef_) * scale, exact[1:], rtol=1e-9)
    np.testing.assert_allclose(float(normal.intercept_), exact[0], rtol=1e-9)
    gd = _quietly(hml.LinearRegression(normalize=False).fit, case64.asarray(X * scale), case64.asarray(y))
    np.testing.assert_allclose(case64.to_numpy(gd.coef_) * scale, exact[1:], rtol=0.05)
    assert 0.1 < gd.learning_rate_ * scale**2 < 10.0  # 1/λ_max, λ_max ≈ |x|²
    assert gd.score(case64.asarray(X * scale), case64.asarray(y)) > 0.95


def test_unnormalized_logistic_regression_is_scale_free_up_to_the_limit():
    """L-BFGS takes the same steps on X × 1e20, 1e100 and 1e150 (on X × s the L2 term is λ/s² in
    the unscaled coordinates, so all three are the unregularised fit): its first trial step is
    the one whose first-order decrease is J, and its line search narrows relative to α. Before,
    that step was |x|² too long and the line search gave up after one iteration: a constant
    model and a ConvergenceWarning. The intercept stays near 0 -- its curvature is s² times
    the features' -- so the model is close to, not equal to, the unregularised one on X."""
    X, _, labels = _problem()
    reference = hml.LogisticRegression(normalize=False, l2=0.0, tol=1e-10, max_iter=200).fit(X, labels)
    coefficients = []
    for scale in (1e20, 1e100, 1e150):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = hml.LogisticRegression(normalize=False, tol=1e-10, max_iter=200).fit(X * scale, labels)
        coefficients.append(model.coef_.ravel() * scale)
        assert model.score(X * scale, labels) >= reference.score(X, labels) - 0.02
        assert np.ptp(model.predict_proba(X * scale)) > 0.9
    np.testing.assert_allclose(coefficients[1], coefficients[0], rtol=1e-9)
    np.testing.assert_allclose(coefficients[2], coefficients[0], rtol=1e-9)
    np.testing.assert_allclose(coefficients[0], reference.coef_.ravel(), rtol=0.2)


@pytest.mark.parametrize("solver", ["gd", "normal"])
@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300])
def test_unnormalized_linear_models_refuse_overflowing_squares_with_the_fix(case64, scale, solver):
    X, y, labels = _problem()
    largest = np.abs(X * scale).max()
    message = (
        re.escape(f"LinearRegression(normalize=False) overflows float64: X's largest magnitude is {largest:.3g}")
        + r".*above about 5\.47e\+152\. Rescale X first.*or set normalize=True"
    )
    with pytest.raises(ValueError, match=message):
        _quietly(hml.LinearRegression(normalize=False, solver=solver).fit, case64.asarray(X * scale), case64.asarray(y))
    solver = {"normal": "lbfgs"}.get(solver, solver)
    with pytest.raises(ValueError, match=r"LogisticRegression\(normalize=False\) overflows float64.*normalize=True"):
        _quietly(
            hml.LogisticRegression(normalize=False, solver=solver).fit,
            case64.asarray(X * scale),
            case64.asarray(labels),
        )


def test_unnormalized_linear_models_in_float32_range():
    X, y, labels = _problem()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    fitted = hml.LinearRegression(normalize=False, solver="normal").fit(X32 * np.float32(1e15), y32)
    assert fitted.score(X32 * np.float32(1e15), y32) > 0.9
    for model, target in (
        (hml.LinearRegression(normalize=False), y32),
        (hml.LogisticRegression(normalize=False), labels),
    ):
        with pytest.raises(ValueError, match=r"overflows float32: X's largest magnitude is 3\.[0-9]+e\+25"):
            _quietly(model.fit, X32 * np.float32(1e25), target)


@pytest.mark.parametrize("scale", [1e150, 1e300])
def test_an_unnormalized_mlp_gives_finite_varying_output(scale):
    """Its products X W₁ do not square X, so nothing overflows; saturated units make a poorer
    model than the standardised one, never NaN or a constant."""
    X, _, labels = _problem()
    model = _quietly(hml.MultilayerPerceptron(layers=[3, 5, 2], normalize=False, random_state=0).fit, X * scale, labels)
    proba = model.predict_proba(X * scale)
    assert np.all(np.isfinite(proba)) and np.ptp(proba) > 0.1
    assert model.score(X * scale, labels) > 0.7


def _quietly(fit, *args):
    """``fit(*args)`` with warnings ignored (numpy's overflow RuntimeWarnings on the way to a refusal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(*args)
