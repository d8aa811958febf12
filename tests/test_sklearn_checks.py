"""scikit-learn's own estimator checks, on every hml estimator (scikit-learn is a test dependency only).

``check_estimator`` runs about 70 checks per estimator -- cloning, pickling, input
validation messages, dtypes, invariance to sample order, fit idempotence -- against
the tags each estimator declares (``BaseEstimator.__sklearn_tags__``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimators import SPECS

import hml

sklearn = pytest.importorskip("sklearn", minversion="1.6")
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_check_estimator_passes(spec):
    # The class's own iteration budget: some checks judge how well the fit learned (accuracy above
    # 0.83 in check_classifiers_train), which a spec's few iterations, sized for speed, do not aim at.
    budget = spec.cls.__params__.get("max_iter")
    estimator = spec.make(max_iter=budget.default) if budget is not None else spec.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks provoke ConvergenceWarnings on purpose-small data
        results = check_estimator(
            estimator, expected_failed_checks=dict(spec.expected_failed_checks) or None, on_fail=None
        )
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert len(results) > 50
    assert not failed, "\n".join(failed)
    still_failing = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert still_failing == set(spec.expected_failed_checks)  # a check that now passes leaves the spec's list


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_tags_say_what_each_estimator_is(spec):
    from sklearn.utils import get_tags

    tags = get_tags(spec.make())
    assert tags.estimator_type == spec.kind
    assert tags.target_tags.required == (spec.target is not None)
    assert (tags.transformer_tags is not None) == ("transform" in spec.outputs)  # KMeans too: it has transform
    assert not tags.input_tags.allow_nan


def test_not_fitted_error_is_scikit_learns_too_when_it_is_in_use():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        hml.LogisticRegression().predict(np.zeros((2, 2)))
    with pytest.raises(hml.NotFittedError):
        hml.LogisticRegression().predict(np.zeros((2, 2)))


def test_anomaly_detection_in_grid_search_gets_real_scores():
    """GridSearchCV over the covariance: the mean log-likelihood per fold, never NaN."""
    from sklearn.model_selection import GridSearchCV

    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.9], [0.9, 1.0]], size=400)
    search = GridSearchCV(hml.GaussianAnomalyDetection(), {"covariance": ["diag", "full"]}, cv=4).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_params_ == {"covariance": "full"}  # the correlated Gaussian fits better


def test_anomaly_score_is_the_mean_log_likelihood():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    model = hml.GaussianAnomalyDetection(covariance="full").fit(X)
    reference = stats.multivariate_normal(X.mean(axis=0), np.cov(X.T, bias=True)).logpdf(X).mean()
    assert model.score(X) == pytest.approx(reference, rel=1e-10)


@pytest.mark.parametrize("contamination", [0.01, 0.05, 0.2])
def test_contamination_flags_that_fraction_of_the_training_points(case, contamination):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 3))
    model = hml.GaussianAnomalyDetection(contamination=contamination).fit(case.asarray(X))
    log_p = case.to_numpy(model.score_samples(case.asarray(X)))
    quantile = np.quantile(log_p, contamination)
    assert model.log_threshold_ == pytest.approx(quantile, rel=1e-4 if not case.float64 else 1e-9)
    flagged = case.to_numpy(model.predict(case.asarray(X)))
    assert abs(flagged.mean() - contamination) <= 1.5 / 1000


def test_threshold_precedence():
    X = np.random.default_rng(3).normal(size=(200, 2))
    assert hml.GaussianAnomalyDetection(threshold=1e-3, contamination=0.2).fit(X).threshold_ == 1e-3
    model = hml.GaussianAnomalyDetection(contamination=0.2).fit(X)
    y = (np.arange(200) < 10).astype(int)
    log_epsilon, _ = model.fit_threshold(X, y)  # labelled data replaces the contamination's ε
    assert model.log_threshold_ == log_epsilon and model.threshold_ == pytest.approx(np.exp(log_epsilon))
    with pytest.raises(ValueError, match=r"contamination must be in \(0, 0.5\]"):
        hml.GaussianAnomalyDetection(contamination=0.7).fit(X)


@pytest.fixture
def routing():
    sklearn.set_config(enable_metadata_routing=True)
    yield
    sklearn.set_config(enable_metadata_routing=False)


def test_metadata_routing_scores_a_pipeline_and_routes_requested_weights(routing):
    """With routing on, a Pipeline ending in an hml estimator could not be scored (Pipeline.score passes
    sample_weight=None, which no step declared), so cross_val_score and GridSearchCV scored NaN."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    weights = rng.random(200)

    def pipeline(model):
        return make_pipeline(StandardScaler().set_fit_request(sample_weight=False), model)

    ours = cross_val_score(pipeline(hml.LogisticRegression()), X, y, cv=3)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, cross_val_score(pipeline(LogisticRegression()), X, y, cv=3), atol=0.02)
    grid = {"standardscaler__with_mean": [True, False]}
    assert np.isfinite(GridSearchCV(pipeline(hml.LogisticRegression()), grid, cv=3).fit(X, y).best_score_)
    # Requested, the weights reach fit and score; unrequested, passing them is scikit-learn's error.
    model = hml.LogisticRegression().set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
    routed = cross_validate(model, X, y, cv=3, params={"sample_weight": weights})["test_score"]
    expected = [
        hml.LogisticRegression()
        .fit(X[train], y[train], sample_weight=weights[train])
        .score(X[test], y[test], sample_weight=weights[test])
        for train, test in StratifiedKFold(3).split(X, y)  # cv=3 for a classifier
    ]
    np.testing.assert_allclose(routed, expected, rtol=1e-12)
    with pytest.raises(Exception, match=r"sample_weight"):
        cross_validate(hml.LogisticRegression(), X, y, cv=3, params={"sample_weight": weights}, error_score="raise")
    assert clone(model).get_metadata_routing().fit.requests["sample_weight"] is True
    assert not hasattr(hml.LinearRegression(), "set_partial_fit_request")
    assert hasattr(hml.MultilayerPerceptron(), "set_partial_fit_request")


def test_a_notebook_shows_scikit_learns_diagram():
    html = hml.LogisticRegression(l2=2.0)._repr_html_()
    assert "LogisticRegression" in html and "<style>" in html
