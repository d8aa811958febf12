"""LogisticRegression against finite differences, scikit-learn, and its own invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hml
from hml._params import validate
from hml.exceptions import ConvergenceWarning, NotFittedError
from hml.optimize import check_gradient


def blobs(m=90, n=3, k=3, seed=0, spread=1.5):
    """k overlapping Gaussian clusters (so the regularised optimum is finite and unique)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, n))
    codes = rng.integers(0, k, m)
    codes[:k] = np.arange(k)  # every class present
    X = centres[codes] + spread * rng.normal(size=(m, n))
    return X, codes


@pytest.mark.parametrize(
    ("k", "multi_class", "degree"),
    [(2, "ovr", 0), (3, "ovr", 0), (4, "multinomial", 0), (3, "ovr", 2), (3, "multinomial", 2)],
)
def test_gradient_matches_finite_differences(case64, k, multi_class, degree):
    X, codes = blobs(m=40, k=k)
    model = hml.LogisticRegression(multi_class=multi_class, polynomial_degree=degree, l2=0.7)
    problem = model._prepare(case64.asarray(X), codes, validate(model))
    rng = np.random.default_rng(1)
    theta = case64.asarray(rng.normal(scale=0.5, size=tuple(problem.theta0.shape)))
    assert check_gradient(problem.objective, theta, ctx=problem.ctx) < 1e-6


def _sklearn_fit(X, y, l2, multi_class):
    linear_model = pytest.importorskip("sklearn.linear_model")
    multiclass = pytest.importorskip("sklearn.multiclass")
    # scikit-learn minimises ½‖W‖² + C Σᵢ lossᵢ = m·C · (1/m Σ lossᵢ + 1/(2mC) ‖W‖²): our J with λ = 1/C.
    peer = linear_model.LogisticRegression(C=1.0 / l2, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    if multi_class == "ovr" and len(np.unique(y)) > 2:
        peer = multiclass.OneVsRestClassifier(peer)
    return peer.fit(X, y)


@pytest.mark.parametrize(("k", "multi_class"), [(2, "multinomial"), (3, "ovr"), (3, "multinomial"), (5, "multinomial")])
def test_matches_scikit_learn_on_the_same_problem(k, multi_class):
    X, codes = blobs(m=150, k=k, seed=k)
    labels = np.array(["ant", "bee", "cat", "dog", "eel"])[codes]
    ours = hml.LogisticRegression(multi_class=multi_class, l2=2.0, normalize=False, tol=1e-10, max_iter=1000).fit(
        X, labels
    )
    peer = _sklearn_fit(X, labels, 2.0, multi_class)
    if multi_class == "ovr" and k > 2:
        coef = np.stack([e.coef_[0] for e in peer.estimators_], axis=1)
        intercept = np.array([e.intercept_[0] for e in peer.estimators_])
    else:
        coef, intercept = peer.coef_.T, peer.intercept_
    np.testing.assert_allclose(ours.coef_, coef, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, intercept, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), peer.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.classes_, peer.classes_)
    np.testing.assert_array_equal(ours.predict(X), peer.predict(X))
    assert ours.score(X, labels) == pytest.approx(peer.score(X, labels))


@pytest.mark.parametrize("solver", ["lbfgs", "cg", "gd"])
def test_every_solver_reaches_the_same_optimum(case64, solver):
    X, codes = blobs(m=60, k=3)
    reference = hml.LogisticRegression(l2=1.0, tol=1e-10, max_iter=500).fit(X, codes)
    settings = dict(max_iter=3000, tol=1e-12, learning_rate=2.0) if solver == "gd" else dict(max_iter=500, tol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = hml.LogisticRegression(solver=solver, l2=1.0, **settings).fit(case64.asarray(X), case64.asarray(codes))
    np.testing.assert_allclose(case64.to_numpy(model.coef_), reference.coef_, atol=1e-5)
    np.testing.assert_allclose(case64.to_numpy(model.intercept_), reference.intercept_, atol=1e-5)


def test_cross_backend_agreement(case):
    X, codes = blobs(m=60, k=3)
    reference = hml.LogisticRegression(max_iter=30).fit(X, codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = hml.LogisticRegression(max_iter=30).fit(case.asarray(X), case.asarray(codes))
    tolerance = 1e-8 if case.float64 else 2e-3
    np.testing.assert_allclose(case.to_numpy(model.coef_), reference.coef_, atol=tolerance, rtol=tolerance)
    proba = model.predict_proba(case.asarray(X))
    assert type(proba) is type(case.asarray(X))  # output in the input's namespace
    np.testing.assert_allclose(case.to_numpy(proba).sum(axis=1), 1.0, rtol=case.rtol * 10)
    predicted = case.to_numpy(model.predict(case.asarray(X)))
    np.testing.assert_array_equal(predicted, reference.predict(X))


def test_binary_outputs_and_decision_function():
    X, codes = blobs(m=80, k=2)
    labels = np.where(codes == 1, "SETOSA", "OTHER")
    model = hml.LogisticRegression().fit(X, labels)
    assert model.coef_.shape == (3, 1) and list(model.classes_) == ["OTHER", "SETOSA"]
    z = model.decision_function(X)
    proba = model.predict_proba(X)
    assert z.shape == (80,) and proba.shape == (80, 2)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.where(z > 0, "SETOSA", "OTHER"))


def test_ovr_probabilities_are_normalised_sigmoids():
    X, codes = blobs(m=80, k=3)
    model = hml.LogisticRegression(multi_class="ovr").fit(X, codes)
    z = model.decision_function(X)
    sigmoid = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(model.predict_proba(X), sigmoid / sigmoid.sum(axis=1, keepdims=True), rtol=1e-12)


def test_l2_never_touches_the_bias():
    # Intercept-only data: with every class equally likely the biases must be equal, and with
    # a huge λ the weights go to zero while the biases still fit the class frequencies.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.r_[np.zeros(300, int), np.ones(100, int)]
    model = hml.LogisticRegression(l2=1e9, tol=1e-12, max_iter=200).fit(X, y)
    assert np.abs(model.coef_).max() < 1e-6
    assert 1.0 / (1.0 + np.exp(-model.intercept_[0])) == pytest.approx(0.25, rel=1e-6)


def test_loss_is_stable_for_huge_logits():
    X = np.array([[-1e3], [-2e3], [1e3], [2e3]])
    model = hml.LogisticRegression(normalize=False, l2=1e-6, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, [0, 0, 1, 1])  # RuntimeWarnings (overflow, log(0)) are errors in this suite
    assert np.isfinite(np.asarray(model.cost_history_)).all()
    np.testing.assert_array_equal(model.predict(X), [0, 0, 1, 1])
    assert np.isfinite(model.predict_proba(X)).all()


def test_polynomial_boundary_separates_circles():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 2))
    y = (X**2).sum(axis=1) < 0.5
    linear = hml.LogisticRegression().fit(X, y).score(X, y)
    curved = hml.LogisticRegression(polynomial_degree=2, l2=0.01, max_iter=200).fit(X, y).score(X, y)
    assert curved > 0.97 > linear + 0.2


def test_works_with_scikit_learn_tools():
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, codes = blobs(m=90, k=3)
    scores = model_selection.cross_val_score(hml.LogisticRegression(), X, codes, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.5


def test_a_fold_with_a_class_its_training_folds_lack_scores_as_in_scikit_learn():
    """Unshuffled folds of sorted labels: the last class is only in the last fold. Each fold's score counts its
    unseen labels as wrong, as scikit-learn's does; it raised, and scikit-learn's cross_val_score gave NaN."""
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold, cross_val_score

    X = np.array([[0.0], [0.2], [0.4], [1.0], [1.2], [1.4], [2.0], [2.1]])
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    ours = cross_val_score(hml.LogisticRegression(), X, y, cv=KFold(3), error_score="raise")
    np.testing.assert_array_equal(ours, cross_val_score(LogisticRegression(), X, y, cv=KFold(3)))
    assert hml.LogisticRegression().fit(X[:6], y[:6]).score(X[5:], y[5:]) == pytest.approx(1 / 3)


def test_bad_input():
    X, codes = blobs(m=30, k=3)
    with pytest.raises(
        ValueError, match=r"y has only the class 'a'; a classifier needs samples of at least two classes"
    ):
        hml.LogisticRegression().fit(X, ["a"] * 30)
    model = hml.LogisticRegression().fit(X, codes)
    # A label the fit never saw is a row predicted wrong, as in scikit-learn (where a cross-validation fold
    # holding a class its training folds lack scores, instead of raising and giving NaN).
    unseen = np.r_[codes[:-1], 7]
    assert model.score(X, unseen) == np.mean(model.predict(X) == unseen) < model.score(X, codes)
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        hml.LogisticRegression().fit(np.where(np.arange(90).reshape(30, 3) == 4, np.nan, X), codes)
    with pytest.raises(ValueError, match=r"y contains NaN"):
        hml.LogisticRegression().fit(X, np.r_[codes[:-1], np.nan])
    with pytest.raises(ValueError, match=r"y has 29 labels but X has 30 rows"):
        hml.LogisticRegression().fit(X, codes[:-1])
    with pytest.raises(ValueError, match=r"X has 2 features, but \w+ is expecting 3 features as input"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"multi_class must be one of \['ovr', 'multinomial'\]; got 'softmax'"):
        hml.LogisticRegression(multi_class="softmax").fit(X, codes)
    with pytest.raises(ValueError, match=r"solver must be one of"):
        hml.LogisticRegression(solver="newton").fit(X, codes)
    with pytest.raises(NotFittedError):
        hml.LogisticRegression().predict(X)


def test_one_vs_all_class_costs_are_each_class_on_its_own(case64):
    """The K sigmoid problems are separable: with gradient descent, class k's column of
    ``class_cost_history_`` is the cost history of a binary fit of "k or not" alone."""
    X, codes = blobs(m=120, k=3, seed=4)
    kwargs = dict(solver="gd", learning_rate=0.5, max_iter=40, tol=None, l2=0.3)
    model = hml.LogisticRegression(multi_class="ovr", **kwargs).fit(case64.asarray(X), codes)
    parts = case64.to_numpy(model.class_cost_history_)
    assert parts.shape == (model.n_iter_ + 1, 3)
    np.testing.assert_allclose(parts.sum(axis=1), case64.to_numpy(model.cost_history_), rtol=1e-12)
    for k in range(3):
        alone = hml.LogisticRegression(**kwargs).fit(X, (codes == k).astype(int))
        np.testing.assert_allclose(parts[:, k], alone.cost_history_, rtol=1e-10)


def test_class_costs_with_lbfgs_sum_to_the_cost_and_only_exist_for_one_vs_all():
    X, codes = blobs(m=120, k=4, seed=5)
    model = hml.LogisticRegression(multi_class="ovr").fit(X, codes)
    assert model.class_cost_history_.shape == (model.n_iter_ + 1, 4)
    np.testing.assert_allclose(model.class_cost_history_.sum(axis=1), model.cost_history_, rtol=1e-12)
    assert np.all(model.class_cost_history_[-1] < model.class_cost_history_[0])
    model.set_params(multi_class="multinomial").fit(X, codes)  # a refit drops the old attribute
    assert not hasattr(model, "class_cost_history_")


def test_divergence_advice_suggests_normalize_only_when_it_is_off():
    X, codes = blobs(m=60, k=3, seed=6)
    X = 1e3 * X  # unscaled features: a step of 50 overshoots
    for normalize in (False, True):
        model = hml.LogisticRegression(
            solver="gd", learning_rate=50.0, max_iter=50, normalize=normalize, multi_class="ovr"
        )
        try:
            model.fit(X, codes)
        except hml.DivergenceError as exc:
            assert ("normalize=True" in str(exc)) == (not normalize), str(exc)
            assert "try learning_rate=5" in str(exc)
        else:
            assert normalize, "gradient descent on unscaled features should diverge"
