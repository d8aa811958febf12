"""sample_weight and class_weight: a weight counts a row that many times, on every backend.

Every estimator of tests/estimators.py: integer weights give the fit of the rows repeated (within
1e-10 for the closed forms and Lloyd from the same centres, float64), a zero weight the fit
without the row, unit weights the unweighted fit; bad weights are refused with the fix. The
classifiers' class_weight is a sample weight per class ("balanced": scikit-learn's rule, checked
against its LogisticRegression).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from estimators import BY_ID, SPECS

import hml

WEIGHTED = [spec for spec in SPECS if "sample_weight" in inspect.signature(spec.cls.fit).parameters]
#: Mini-batches see other batches when rows are repeated: equal in expectation, not fit for fit.
EQUIVALENT = [spec for spec in WEIGHTED if spec.params.get("batch_size") is None]


def test_every_estimator_of_hml_takes_sample_weight():
    assert {spec.cls for spec in SPECS if spec.cls.__module__.startswith("hml.")} <= {spec.cls for spec in WEIGHTED}


def _problem(spec, seed=0):
    X, y = spec.data(n=60, d=3, seed=seed)
    return X, y, np.random.default_rng(seed + 1).integers(0, 4, 60)


def _make(spec, X):
    """The spec's estimator; k-means from given centres (its seeding draws rows by index)."""
    return spec.make(init=X[[0, 1, 2]], n_init=1) if spec.kind == "clusterer" else spec.make()


def _fit(model, case, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        return model.fit(case.asarray(X), None if y is None else y, **kw)


def _outputs(spec, model, case, X):
    return {method: case.to_numpy(getattr(model, method)(case.asarray(X))) for method in spec.outputs}


def _assert_same(spec, ours, theirs, case, X, tolerance):
    expected = _outputs(spec, theirs, case, X)
    for method, values in _outputs(spec, ours, case, X).items():
        if values.dtype.kind == "f":
            scale = max(1.0, float(np.abs(expected[method]).max()))
            np.testing.assert_allclose(values, expected[method], rtol=0, atol=tolerance * scale, err_msg=method)
        else:
            np.testing.assert_array_equal(values, expected[method], err_msg=method)


@pytest.mark.parametrize("spec", EQUIVALENT, ids=str)
def test_integer_weights_are_repeated_rows(case64, spec):
    X, y, w = _problem(spec)
    weighted = _fit(_make(spec, X), case64, X, y, sample_weight=case64.asarray(w.astype(float)))
    repeated = _fit(_make(spec, X), case64, np.repeat(X, w, axis=0), None if y is None else np.repeat(y, w))
    _assert_same(
        spec, weighted, repeated, case64, X, 1e-10 if spec.loop_read in (None, "k-means convergence") else 1e-9
    )
    if spec.kind == "clusterer":
        assert float(weighted.inertia_) == pytest.approx(float(repeated.inertia_), rel=1e-10)


@pytest.mark.parametrize("spec", EQUIVALENT, ids=str)
def test_a_zero_weight_drops_the_row(spec):
    X, y, w = _problem(spec, seed=3)
    w = (w > 0).astype(float)
    w[[0, 1, 2]] = 1.0  # k-means' given centres stay rows of the fit
    keep = w > 0
    case = _NumPy()
    weighted = _fit(_make(spec, X), case, X, y, sample_weight=w)
    dropped = _fit(_make(spec, X), case, X[keep], None if y is None else y[keep])
    _assert_same(spec, weighted, dropped, case, X, 1e-9)


@pytest.mark.parametrize("spec", WEIGHTED, ids=str)
def test_unit_weights_are_the_unweighted_fit(case, spec):
    X, y, _ = _problem(spec)
    ones = _fit(_make(spec, X), case, X, y, sample_weight=np.ones(60))
    plain = _fit(_make(spec, X), case, X, y)
    # Other summation orders: rounding, which a line search's iterations amplify (CG's β most: see
    # the logistic-cg spec), most of all in float32.
    tolerance = (1e-9 if spec.loop_read == "line search" else 1e-12) if case.float64 else 1e-3
    _assert_same(spec, ones, plain, case, X, tolerance)
    if spec.kind == "clusterer":
        assert float(ones.inertia_) == pytest.approx(float(plain.inertia_), rel=tolerance)


@pytest.mark.parametrize("spec", WEIGHTED, ids=str)
def test_bad_weights_are_refused_with_the_fix(spec):
    X, y, _ = _problem(spec)
    cases = {
        r"sample_weight must be 1-D with one weight per row of X \(60\); got shape \(59,\)": np.ones(59),
        r"sample_weight must be >= 0 .*its smallest is -1": np.r_[-1.0, np.ones(59)],
        r"sample_weight is zero for every row": np.zeros(60),
        r"sample_weight contains 1 NaN": np.r_[np.nan, np.ones(59)],
    }
    for message, weights in cases.items():
        model = _make(spec, X)
        with pytest.raises(ValueError, match=message):
            model.fit(X, y, sample_weight=weights)
        assert not hasattr(model, "n_features_in_")  # all or nothing


@pytest.mark.parametrize("spec", [BY_ID["logistic-lbfgs"], BY_ID["mlp-lbfgs"]], ids=str)
def test_class_weight_is_a_weight_per_class(spec):
    X, y = spec.data(n=90, d=3)
    by_class = {0: 2.0, 2: 0.5}
    weighted = _fit(spec.make(class_weight=by_class), _NumPy(), X, y)
    per_row = np.array([by_class.get(label, 1.0) for label in y])
    explicit = _fit(spec.make(), _NumPy(), X, y, sample_weight=per_row)
    np.testing.assert_allclose(weighted.predict_proba(X), explicit.predict_proba(X), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"class_weight names labels that are not in y: \[7\]"):
        spec.make(class_weight={7: 1.0}).fit(X, y)
    with pytest.raises(
        ValueError, match=r"class_weight must be one of \[None, 'balanced'\] or a dict \{label: weight >= 0\}"
    ):
        spec.make(class_weight="even").fit(X, y)


def test_balanced_class_weight_is_scikit_learns():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(150, int), np.ones(30, int), np.full(20, 2)]
    X = rng.normal(size=(200, 3)) + y[:, None] * 0.8
    ours = hml.LogisticRegression(class_weight="balanced", l2=1.0, normalize=False, tol=1e-10, max_iter=500).fit(X, y)
    theirs = linear_model.LogisticRegression(class_weight="balanced", C=1.0, tol=1e-12, max_iter=5000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    # ... and with sample weights: the classes' weighted totals.
    w = rng.integers(1, 4, 200).astype(float)
    ours = hml.LogisticRegression(class_weight="balanced", normalize=False, tol=1e-10, max_iter=500)
    theirs = linear_model.LogisticRegression(class_weight="balanced", tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(
        ours.fit(X, y, sample_weight=w).predict_proba(X), theirs.fit(X, y, sample_weight=w).predict_proba(X), atol=1e-6
    )


def test_weighted_fits_match_scikit_learn():
    """The same weighted problems in scikit-learn: Ridge, KMeans from the same centres, the F1 search."""
    sklearn = pytest.importorskip("sklearn")
    from sklearn.cluster import KMeans
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(5)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=100)
    w = rng.random(100) * 3
    ours = hml.LinearRegression(solver="normal", l2=2.0, normalize=False).fit(X, y, sample_weight=w)
    theirs = Ridge(alpha=2.0).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10)
    centres = X[:4]
    ours = hml.KMeans(4, init=centres, tol=0.0).fit(X, sample_weight=w)
    theirs = KMeans(4, init=centres, n_init=1, tol=0.0, algorithm="lloyd").fit(X, sample_weight=w)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-10)
    assert sklearn is not None


def test_weighted_densities_and_thresholds_are_repeated_rows():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 2))
    w = rng.integers(0, 4, 80)
    y = (np.abs(X).max(axis=1) > 1.8).astype(int)
    for covariance in ("diag", "full"):
        weighted = hml.GaussianAnomalyDetection(covariance=covariance, contamination=0.1).fit(X, sample_weight=w)
        repeated = hml.GaussianAnomalyDetection(covariance=covariance, contamination=0.1).fit(np.repeat(X, w, axis=0))
        np.testing.assert_allclose(weighted.score_samples(X), repeated.score_samples(X), rtol=1e-12)
        assert weighted.log_threshold_ == pytest.approx(repeated.log_threshold_, rel=1e-12)  # the weighted quantile
        chosen = weighted.fit_threshold(X, y, sample_weight=w)
        again = repeated.fit_threshold(np.repeat(X, w, axis=0), np.repeat(y, w))
        assert chosen.f1 == pytest.approx(again.f1, rel=1e-12)
        np.testing.assert_array_equal(weighted.predict(X[w > 0]), repeated.predict(X[w > 0]))


class _NumPy:
    """The NumPy case, for the tests that need one backend."""

    float64 = True

    @staticmethod
    def asarray(a):
        return np.asarray(a)

    @staticmethod
    def to_numpy(a):
        return np.asarray(a)


SCORED = [spec for spec in SPECS if hasattr(spec.cls, "score") and spec.cls.__module__.startswith("hml.")]


@pytest.mark.parametrize("spec", SCORED, ids=str)
def test_score_weighs_rows_as_repeated_rows_and_as_scikit_learns_metrics(case64, spec):
    """score(X, y, sample_weight=w) with integer w is the score of the rows repeated, as scikit-learn's score
    (its accuracy and R² take sample_weight); without weights, or with unit ones, the plain score."""
    X, y, w = _problem(spec, seed=5)
    model = _fit(_make(spec, X), case64, X, y)
    y_arg = None if y is None else y
    weighted = model.score(case64.asarray(X), y_arg, sample_weight=case64.asarray(w.astype(float)))
    repeated_y = None if y is None else np.repeat(y, w)
    repeated = model.score(case64.asarray(np.repeat(X, w, axis=0)), repeated_y)
    assert weighted == pytest.approx(repeated, rel=1e-10, abs=1e-12)
    plain = model.score(case64.asarray(X), y_arg)
    assert model.score(case64.asarray(X), y_arg, sample_weight=np.ones(60)) == pytest.approx(plain, rel=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    predicted = case64.to_numpy(model.predict(case64.asarray(X))) if spec.kind in ("classifier", "regressor") else None
    if spec.kind == "classifier":
        assert weighted == pytest.approx(metrics.accuracy_score(y, predicted, sample_weight=w), rel=1e-12)
    if spec.kind == "regressor":
        assert weighted == pytest.approx(metrics.r2_score(y, predicted, sample_weight=w), rel=1e-10)
