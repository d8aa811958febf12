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
        sk_metrics.mean_squared_error(y, pred), rel=tol
    )
    assert metrics.r2_score(case.asarray(y), case.asarray(pred)) == pytest.approx(sk_metrics.r2_score(y, pred), rel=tol)
    assert isinstance(metrics.r2_score(case.asarray(y), pred), float)


def test_metric_edge_cases():
    assert metrics.r2_score([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert metrics.r2_score([1.0, 1.0], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="y_pred has 2 values but y_true has 3; they must match"):
        metrics.r2_score([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.r2_score([1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        metrics.mean_squared_error([1.0, np.nan], [1.0, 2.0])


def test_accuracy_matches_scikit_learn(case):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, size=200))
    expected = sk_metrics.accuracy_score(y, pred)
    assert metrics.accuracy_score(case.asarray(y), case.asarray(pred)) == pytest.approx(expected, rel=1e-15)
    assert metrics.accuracy_score(["a", "b", "b"], ["a", "b", "a"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="y_pred has 2 labels but y_true has 3 rows"):
        metrics.accuracy_score([1, 2, 3], [1, 2])


@pytest.mark.parametrize("seed", range(5))
def test_adjusted_rand_index_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    true = rng.integers(0, int(rng.integers(1, 6)), size=n)
    # A noisy relabelling of the truth: agreement well above chance, but not perfect.
    pred = np.where(rng.random(n) < 0.6, (true + 1) % 7, rng.integers(0, int(rng.integers(1, 8)), size=n))
    assert metrics.adjusted_rand_score(true, pred) == pytest.approx(
        sk_metrics.adjusted_rand_score(true, pred), abs=1e-12
    )


def test_adjusted_rand_index_invariants(case):
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    renamed = np.array([5, 5, 3, 3, 9, 9, 9])  # the same partition under other names
    assert metrics.adjusted_rand_score(case.asarray(true), case.asarray(renamed)) == 1.0
    assert metrics.adjusted_rand_score(["a", "a", "b"], ["x", "x", "y"]) == 1.0
    # The degenerate partitions: everything together, everything apart (scikit-learn gives 1.0).
    assert metrics.adjusted_rand_score([1, 1, 1], [2, 2, 2]) == 1.0
    assert metrics.adjusted_rand_score([0, 1, 2], [2, 0, 1]) == 1.0
    # Symmetric in its arguments; about 0 for independent random labellings.
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, size=20_000), rng.integers(0, 3, size=20_000)
    assert metrics.adjusted_rand_score(a, b) == pytest.approx(metrics.adjusted_rand_score(b, a), abs=1e-15)
    assert abs(metrics.adjusted_rand_score(a, b)) < 5e-3
    with pytest.raises(ValueError, match="labels_pred has 2 labels but labels_true has 3 rows"):
        metrics.adjusted_rand_score([0, 1, 1], [0, 1])


def test_labels_that_cannot_match_are_refused_as_scikit_learn_refuses_them():
    """A pos_label that is not a label, or strings beside numbers, gave precision, recall, F1, accuracy or a
    confusion matrix of zeros: every comparison failed silently. scikit-learn raises for both."""
    spam, model = np.array(["spam", "ham", "spam", "spam"]), np.array(["spam", "spam", "ham", "spam"])
    with pytest.raises(ValueError, match=r"pos_label=1 is not one of the labels \['ham', 'spam'\]"):
        metrics.precision_recall_f1(spam, model)
    with pytest.raises(ValueError, match=r"pos_label='1' is not one of the labels \[0, 1\]"):
        metrics.precision_recall_f1([0, 1, 1], [0, 1, 0], pos_label="1")
    read_as_text, predicted = np.array(["0", "1", "1", "0"]), np.array([0, 1, 1, 0])
    for metric in (metrics.accuracy_score, metrics.confusion_matrix, metrics.precision_recall_f1):
        with pytest.raises(ValueError, match=r"y_true's labels are strings and y_pred's numbers"):
            metric(read_as_text, predicted)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    expected = sklearn_metrics.precision_recall_fscore_support(spam, model, average="binary", pos_label="spam")[:3]
    np.testing.assert_allclose(metrics.precision_recall_f1(spam, model, pos_label="spam"), expected)
    # one class present, and it is not pos_label: every row is a negative (scikit-learn's rule), no error
    assert metrics.precision_recall_f1([0, 0, 0], [0, 0, 0]) == (0.0, 0.0, 0.0)
    assert metrics.accuracy_score(np.array(["a", "b"], dtype=object), ["a", "c"]) == 0.5


def test_a_constant_y_true_scores_by_the_documented_rule_despite_rounding():
    """Σ(y − ȳ)² of a constant 0.1 is 1.9e-33 after the mean's rounding, not 0: R² was −5.2e33."""
    for y in (np.full(3, 0.1), np.full(1000, 123.456)):
        assert metrics.r2_score(y, y + 1.0) == 0.0
        assert metrics.r2_score(y, y) == 1.0
    import hml

    X = np.random.default_rng(0).normal(size=(60, 2))
    assert hml.LinearRegression().fit(X, X[:, 0]).score(X, np.full(60, 0.1)) == 0.0
    weights = np.r_[np.zeros(5), np.ones(55)]  # the rows of weight 0 do not count
    assert hml.LinearRegression().fit(X, X[:, 0]).score(X, np.r_[np.arange(5.0), np.full(55, 0.1)], weights) == 0.0


def test_float64_truth_beside_float32_predictions_is_not_rounded():
    rng = np.random.default_rng(0)
    truth = 1e6 + rng.normal(size=1000)
    predicted = (truth + rng.normal(size=1000)).astype(np.float32)
    exact = float(np.mean((truth - predicted.astype(np.float64)) ** 2))
    for a, b in ((truth, predicted), (truth.tolist(), predicted), (predicted, truth)):
        assert metrics.mean_squared_error(a, b) == pytest.approx(exact, rel=1e-12)


def test_confusion_matrix_labels_and_lengths_are_checked():
    with pytest.raises(ValueError, match=r"labels must be a non-empty 1-D list"):
        metrics.confusion_matrix([0, 1], [1, 1], labels=[])
    with pytest.raises(ValueError, match=r"labels are numbers and y_true's labels strings"):
        metrics.confusion_matrix(["0", "1"], ["1", "1"], labels=[0, 1])
    with pytest.raises(ValueError, match=r"none of labels=\[5, 6\] is in y_true"):
        metrics.confusion_matrix([0, 1], [1, 1], labels=[5, 6])
    with pytest.raises(ValueError, match=r"y_true is empty"):
        metrics.confusion_matrix([], [])
    with pytest.raises(ValueError, match=r"y_true is empty"):
        metrics.precision_recall_f1([], [])
    with pytest.raises(ValueError, match=r"y_pred has 2 values but y_true has 3; they must match"):
        metrics.r2_score([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"labels_pred has 1 labels but labels_true has 2 rows"):
        metrics.adjusted_rand_score([0, 1], [0])


def test_a_classifiers_score_refuses_labels_of_another_type():
    """Fitted on integers and scored on the same labels read as text: 0.0 silently, where scikit-learn raises."""
    import hml

    X = np.random.default_rng(0).normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    model = hml.LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"y's labels are strings and classes_'s numbers"):
        model.score(X, y.astype(str))


@pytest.mark.parametrize("softmax", [True, False])
def test_log_probabilities_keep_their_precision_at_large_logits(softmax):
    """z − (log Σ + max z) absorbed log Σ at |z| ~ 1e17: log ½ came out 0 (exp summing to 2)."""
    from hml.numerics import log_class_probabilities

    for z, dtype in ((1e17, np.float64), (-1e308, np.float64), (3e7, np.float32)):
        logits = np.array([[z, z, z - (0.0 if softmax else 0.0)]], dtype=dtype)
        if not softmax and z > 0:
            logits = -logits  # one-vs-all at z → +∞ is log 1/K exactly already; its trouble is z → −∞
        got = log_class_probabilities(logits, softmax, np)
        np.testing.assert_allclose(got, np.log(1 / 3), rtol=10 * np.finfo(dtype).eps)


def test_confusion_matrix_refuses_a_label_named_twice():
    with pytest.raises(ValueError, match=r"labels=\[0, 0, 1\] names a label twice"):
        metrics.confusion_matrix([0, 1, 1], [0, 1, 0], labels=[0, 0, 1])
