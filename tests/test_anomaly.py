"""GaussianAnomalyDetection against direct density formulas; the threshold search against brute force."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hml
from hml import GaussianAnomalyDetection
from hml.metrics import confusion_matrix, precision_recall_f1


def correlated(n=400, seed=0):
    rng = np.random.default_rng(seed)
    A = np.array([[2.0, 0.0, 0.0], [1.2, 0.5, 0.0], [-0.3, 0.4, 1.0]])
    return rng.normal(size=(n, 3)) @ A.T + np.array([5.0, -1.0, 2.0])


def test_diag_density_is_the_product_of_normals(case):
    X = correlated()
    model = GaussianAnomalyDetection().fit(case.asarray(X))
    mu, var = X.mean(axis=0), X.var(axis=0)
    expected = np.prod(np.exp(-((X - mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var), axis=1)
    rtol = 1e-10 if case.float64 else 1e-4
    np.testing.assert_allclose(case.to_numpy(model.density(case.asarray(X))), expected, rtol=rtol)
    # score_samples is log p(x), as scikit-learn's density estimators return it; log_density the same.
    np.testing.assert_allclose(case.to_numpy(model.score_samples(case.asarray(X))), np.log(expected), rtol=rtol)
    np.testing.assert_allclose(case.to_numpy(model.log_density(case.asarray(X))), np.log(expected), rtol=rtol)
    np.testing.assert_allclose(case.to_numpy(model.variance_), var, rtol=rtol)


def test_full_density_matches_the_direct_formula(case):
    X = correlated()
    model = GaussianAnomalyDetection(covariance="full").fit(case.asarray(X))
    mu = X.mean(axis=0)
    sigma = (X - mu).T @ (X - mu) / len(X)
    inverse = np.linalg.inv(sigma)
    quadratic = np.einsum("ij,jk,ik->i", X - mu, inverse, X - mu)
    expected = np.exp(-0.5 * quadratic) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(sigma))
    rtol = 1e-9 if case.float64 else 1e-3
    np.testing.assert_allclose(case.to_numpy(model.density(case.asarray(X))), expected, rtol=rtol)
    np.testing.assert_allclose(case.to_numpy(model.score_samples(case.asarray(X))), np.log(expected), rtol=rtol)
    np.testing.assert_allclose(case.to_numpy(model.covariance_), sigma, rtol=rtol, atol=rtol)


def test_score_samples_is_scikit_learns_log_density():
    """The full-covariance Gaussian is scikit-learn's GaussianMixture with one component: the same
    score_samples (log p) and score (mean log-likelihood)."""
    mixture = pytest.importorskip("sklearn.mixture")
    X = correlated()
    ours = GaussianAnomalyDetection(covariance="full").fit(X)
    theirs = mixture.GaussianMixture(1, covariance_type="full", reg_covar=0.0).fit(X)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)
    diagonal = mixture.GaussianMixture(1, covariance_type="diag", reg_covar=0.0).fit(X)
    np.testing.assert_allclose(GaussianAnomalyDetection().fit(X).score_samples(X), diagonal.score_samples(X), rtol=1e-9)


def test_log_density_stays_finite_where_the_density_underflows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 400))
    model = GaussianAnomalyDetection().fit(X)
    far = X[:3] + 40.0
    assert (model.density(far) == 0.0).all()  # p underflows
    log_p = model.score_samples(far)
    assert np.isfinite(log_p).all() and (log_p < -1e5).all()


def test_thresholds_work_on_the_log_scale_where_the_density_underflows():
    """800 features: every density underflows to 0 (log p ≈ −1100 at the centre), so on p no
    threshold can tell the points apart. On log p, the F1 search, log_threshold and contamination
    still separate them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 800))
    anomalies = X[:5] + 6.0
    data, y = np.r_[X, anomalies], np.r_[np.zeros(500, int), np.ones(5, int)]
    model = GaussianAnomalyDetection(contamination=None).fit(X)
    assert (model.density(data) == 0.0).all()
    epsilon, f1 = model.fit_threshold(data, y)
    assert f1 == 1.0 and model.log_threshold_ == epsilon and model.threshold_ == 0.0  # ε itself underflows
    np.testing.assert_array_equal(model.predict(data), y)
    preset = GaussianAnomalyDetection(log_threshold=epsilon).fit(X)
    np.testing.assert_array_equal(preset.predict(data), y)
    # contamination: the quantile of log p over the training rows (numpy's), so that fraction is flagged.
    contaminated = GaussianAnomalyDetection(contamination=0.1).fit(X)
    scores = contaminated.score_samples(X)
    assert contaminated.log_threshold_ == pytest.approx(np.quantile(scores, 0.1), rel=1e-12)
    np.testing.assert_array_equal(contaminated.predict(X), scores < np.quantile(scores, 0.1))
    assert contaminated.predict(X).sum() == 50  # 10 % of 500


def test_select_threshold_gives_the_same_flags_on_either_scale():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    y = (np.abs(X).max(axis=1) > 2.2).astype(int)
    model = GaussianAnomalyDetection().fit(X)
    on_p = GaussianAnomalyDetection.select_threshold(y, model.density(X))
    on_log = GaussianAnomalyDetection.select_threshold(y, model.score_samples(X), on="log p(x)")
    assert on_p.f1 == on_log.f1 and on_log.on == "log p(x)"
    assert on_log.epsilon == pytest.approx(np.log(on_p.epsilon), rel=1e-12)
    by_p = GaussianAnomalyDetection(threshold=on_p.epsilon).fit(X).predict(X)
    by_log = GaussianAnomalyDetection(log_threshold=on_log.epsilon).fit(X).predict(X)
    np.testing.assert_array_equal(by_p, by_log)
    with pytest.raises(ValueError, match=r"threshold=.* and log_threshold=.* both give ε; pass one of them"):
        GaussianAnomalyDetection(threshold=0.1, log_threshold=-2.0).fit(X)


def brute_force(y, p):
    """F1 of "p < ε" at every distinct ε, one full pass each."""
    best = (-1.0, None)
    for epsilon in np.unique(p):
        flagged = p < epsilon
        tp = np.sum(flagged & (y == 1))
        f1 = 2 * tp / (flagged.sum() + (y == 1).sum())
        if f1 > best[0]:
            best = (f1, epsilon)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_threshold_search_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = (rng.random(n) < 0.1).astype(int)
    p = np.round(np.where(y == 1, rng.random(n) * 0.5, rng.random(n)), 2)  # rounding makes ties
    selection = GaussianAnomalyDetection.select_threshold(y, p)
    f1, epsilon = brute_force(y, p)
    assert selection.f1 == pytest.approx(f1, rel=1e-12)
    assert selection.epsilon == epsilon
    np.testing.assert_array_equal(selection.thresholds, np.unique(p))
    for i in rng.integers(0, len(selection.thresholds), 10):  # the curves, point by point
        flagged = p < selection.thresholds[i]
        precision, recall, f1_i = precision_recall_f1(y, flagged.astype(int))
        assert (selection.precision[i], selection.recall[i], selection.f1_scores[i]) == pytest.approx(
            (precision, recall, f1_i)
        )


def test_threshold_search_matches_scikit_learn_curve():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = (rng.random(2000) < 0.05).astype(int)
    p = np.where(y == 1, rng.random(2000) * 0.4, rng.random(2000))
    selection = GaussianAnomalyDetection.select_threshold(y, p)
    # "p < ε" ranks by −p; scikit-learn's curve flags score ≥ t, i.e. p ≤ −t: the same sets, shifted by one point.
    precision, recall, _ = metrics.precision_recall_curve(y, -p)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
    assert selection.f1 == pytest.approx(f1.max(), rel=1e-12)


def test_server_demo_flow_and_predict():
    rng = np.random.default_rng(0)
    normal = rng.normal([14.0, 15.0], 1.2, size=(300, 2))
    anomalies = rng.normal([14.0, 15.0], 1.2, size=(8, 2)) + rng.choice([-8.0, 8.0], size=(8, 2))
    X = np.r_[normal, anomalies]
    y = np.r_[np.zeros(300, int), np.ones(8, int)]
    model = GaussianAnomalyDetection().fit(X)
    epsilon, f1 = model.fit_threshold(X, y)
    assert f1 == 1.0 and model.log_threshold_ == epsilon and model.threshold_ == pytest.approx(np.exp(epsilon))
    flagged = model.predict(X)
    np.testing.assert_array_equal(flagged, y)
    np.testing.assert_array_equal(confusion_matrix(y, flagged), [[300, 0], [0, 8]])
    preset = GaussianAnomalyDetection(threshold=model.threshold_).fit(X)
    np.testing.assert_array_equal(preset.predict(X), flagged)


def test_full_covariance_does_not_depend_on_the_features_units():
    """An income (std 1.5e4) beside a rate (std 1e-3), nearly uncorrelated: far from singular, and refused as
    singular while the pivots were compared with the largest. Scaling a feature by a shifts log p by −log a (the
    density's Jacobian), and the densities are scikit-learn's GaussianMixture's (one component, no reg_covar)."""
    mixture = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(50_000, 15_000, 1000), rng.normal(0.05, 0.001, 1000), rng.normal(0, 1, 1000)]
    X[:, 2] += 1e-4 * X[:, 0]  # some correlation, so the full and diagonal models differ
    log_p = GaussianAnomalyDetection(covariance="full").fit(X).score_samples(X)
    reference = mixture.GaussianMixture(1, covariance_type="full", reg_covar=0).fit(X).score_samples(X)
    np.testing.assert_allclose(log_p, reference, rtol=1e-9)
    scale = np.array([1e-4, 1e3, 1.0])
    rescaled = GaussianAnomalyDetection(covariance="full").fit(X * scale).score_samples(X * scale)
    np.testing.assert_allclose(rescaled, log_p - np.log(scale).sum(), rtol=1e-9)


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_contamination_with_integer_weights_is_that_of_the_repeated_rows(covariance):
    """A weight of k is k copies, at the quantile too: integer weights put the repeated rows' boundaries at whole
    positions, where the cumulative weight rebuilt from the normalised weights could pass one early by
    rounding (7 + 1e-15) and take the row below: 7.4 % of the weight flagged instead of 10.3 %."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(50, 3))
        weights = rng.integers(0, 4, size=50)
        repeated = np.repeat(X, weights, axis=0)
        for q in (0.05, 0.1, 0.2):
            weighted = GaussianAnomalyDetection(covariance=covariance, contamination=q).fit(
                X, sample_weight=weights * 1.0
            )
            copies = GaussianAnomalyDetection(covariance=covariance, contamination=q).fit(repeated)
            assert copies.log_threshold_ == pytest.approx(np.quantile(copies.score_samples(repeated), q), rel=1e-12)
            assert weighted.log_threshold_ == pytest.approx(copies.log_threshold_, rel=1e-10), (seed, q)


def test_a_parameter_changed_after_fit_takes_effect_at_the_next_fit(tmp_path):
    """scikit-learn's convention. set_params(covariance="full") on a diagonal model raised AttributeError at
    score_samples; a model refitted full after a diagonal fit, switched back, scored with the stale variances."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) @ np.array([[1.0, 0.9], [0.0, 0.4]])
    diag = GaussianAnomalyDetection(covariance="diag").fit(X)
    before = diag.score_samples(X)
    np.testing.assert_array_equal(diag.set_params(covariance="full").score_samples(X), before)
    full = GaussianAnomalyDetection(covariance="full").fit(X)
    np.testing.assert_array_equal(diag.fit(X).score_samples(X), full.score_samples(X))  # the next fit: full
    switched = GaussianAnomalyDetection(covariance="diag").fit(X * 100).set_params(covariance="full").fit(X)
    assert not hasattr(switched, "variance_")
    np.testing.assert_array_equal(switched.set_params(covariance="diag").score_samples(X), full.score_samples(X))
    loaded = hml.load(switched.save(tmp_path / "model.npz"))
    np.testing.assert_array_equal(loaded.score_samples(X), full.score_samples(X))


def test_bad_input():
    X = correlated()
    singular = np.c_[X, X[:, 0] + 2 * X[:, 1]]
    with pytest.raises(
        ValueError, match=r"covariance matrix of X \(4 × 4, from 400 samples\) is singular.*covariance='diag'"
    ):
        GaussianAnomalyDetection(covariance="full").fit(singular)
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] of X are constant"):
        GaussianAnomalyDetection().fit(np.c_[X[:, 0], np.ones(400)])
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        GaussianAnomalyDetection().fit(np.where(np.arange(1200).reshape(400, 3) == 3, np.nan, X))
    with pytest.raises(hml.NotFittedError, match=r"no threshold ε yet \(contamination=None\): call fit_threshold"):
        GaussianAnomalyDetection(contamination=None).fit(X).predict(X)
    with pytest.raises(ValueError, match=r"y_true has no anomalies"):
        GaussianAnomalyDetection.select_threshold(np.zeros(5), np.linspace(0, 1, 5))
    with pytest.raises(
        ValueError, match=r"y_true must hold 1 for an anomaly and 0.*got the labels \['anomaly', 'normal'\]"
    ):
        GaussianAnomalyDetection().fit(X).fit_threshold(X[:4], ["normal", "anomaly", "normal", "normal"])
    with pytest.raises(ValueError, match=r"y_true must hold 1 for an anomaly.*\[0, 1, 2\]"):
        GaussianAnomalyDetection.select_threshold([0, 1, 2], [0.1, 0.2, 0.3])
    GaussianAnomalyDetection.select_threshold([False, True], [0.1, 0.2])  # booleans are 0/1
    with pytest.raises(ValueError, match=r"p contains NaN"):
        GaussianAnomalyDetection.select_threshold([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"covariance must be one of"):
        GaussianAnomalyDetection(covariance="spherical").fit(X)


def test_classification_metrics_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y_true = rng.choice(["cat", "dog", "eel"], 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.choice(["cat", "dog", "eel"], 200))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), metrics.confusion_matrix(y_true, y_pred))
    order = ["eel", "cat", "dog"]
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, labels=order), metrics.confusion_matrix(y_true, y_pred, labels=order)
    )
    ours = precision_recall_f1(y_true, y_pred, pos_label="dog")
    theirs = metrics.precision_recall_fscore_support(y_true, y_pred, labels=["dog"], average=None)[:3]
    assert ours == pytest.approx(tuple(float(t[0]) for t in theirs))


@pytest.mark.parametrize("covariance", ["diag", "full"])
def test_a_constant_feature_is_refused_though_its_mean_is_not_exact(covariance):
    """A column of 0.1 has σ² ~ 4e-32 from the rounding of its mean, not 0: it was fitted, and a value 1e-9 away
    from 0.1 scored log p = −1.3e13. Constant is one value in every row of positive weight; a float32 column that
    varies below 10 ε μ is fitted, and one whose σ² underflows is refused with its own message."""
    rng = np.random.default_rng(0)
    for value in (0.1, 0.7, 1 / 3, 123.456):
        X = np.c_[rng.normal(size=100), np.full(100, value)]
        with pytest.raises(ValueError, match=r"feature\(s\) \[1\] of X are constant \(one value in every row\)"):
            GaussianAnomalyDetection(covariance=covariance).fit(X)
    X = np.c_[rng.normal(size=100), np.r_[np.full(99, 0.1), 5.0]]
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] of X are constant"):  # among the weighted rows
        GaussianAnomalyDetection(covariance=covariance).fit(X, sample_weight=np.r_[np.ones(99), 0.0])
    narrow = np.c_[1000.0 + 1e-3 * rng.normal(size=500), rng.normal(size=500)].astype(np.float32)
    assert GaussianAnomalyDetection(covariance=covariance).fit(narrow).predict(narrow).mean() == pytest.approx(0.01)
    tiny = np.array([[1e-160, 1.0], [3e-160, 2.0], [5e-160, 3.0]])  # σ² ~ 1e-320: subnormal
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] of X vary too little .* standardise those columns"):
        GaussianAnomalyDetection(covariance=covariance).fit(tiny)
    scaled = GaussianAnomalyDetection(covariance="diag").fit(tiny * [1e160, 1.0])
    assert np.isfinite(scaled.score_samples(tiny * [1e160, 1.0])).all()


def test_contamination_with_weights_that_sum_to_a_few_rows_warns():
    """Weights count as repeated rows: weights summing to 1 are one row, and the 0.1 quantile of one row flags
    nothing -- silently, before. Whole weights stay the repeated rows (the test above); weights scaled up do not
    warn."""
    X = np.random.default_rng(0).normal(size=(1000, 2))
    for c in (0.001, 0.01):
        with pytest.warns(UserWarning, match=r"contamination=0.1 with sample_weight summing to .*scale them up"):
            GaussianAnomalyDetection(contamination=0.1).fit(X, sample_weight=np.full(1000, c))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianAnomalyDetection(contamination=0.1).fit(X, sample_weight=np.full(1000, 0.5))
    rng = np.random.default_rng(1)
    w = rng.integers(2, 4, 200)  # no weight of 1: still the repeated rows
    weighted = GaussianAnomalyDetection(contamination=0.05).fit(X[:200], sample_weight=w * 1.0)
    repeated = GaussianAnomalyDetection(contamination=0.05).fit(np.repeat(X[:200], w, axis=0))
    assert weighted.log_threshold_ == pytest.approx(repeated.log_threshold_, rel=1e-10)


def test_weighted_precision_divides_by_the_flagged_weight():
    """At ε = 1 only the anomaly, of weight 0.25, is flagged: precision 1 (it was 0.25, divided by max(0.25, 1))."""
    selection = GaussianAnomalyDetection.select_threshold([1, 0, 0], [0.0, 1.0, 2.0], sample_weight=[0.25, 0.5, 0.5])
    np.testing.assert_allclose(selection.precision, [0.0, 1.0, 1 / 3])
    np.testing.assert_allclose(
        selection.f1_scores,
        2 * selection.precision * selection.recall / np.maximum(selection.precision + selection.recall, 1e-300),
    )
