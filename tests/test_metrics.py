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
    with pytest.raises(ValueError, match="y_pred has 2 values but X has 3 rows|y_pred has 2 values"):
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
    with pytest.raises(ValueError, match="y_pred has 2 labels but X has 3 rows"):
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
    with pytest.raises(ValueError, match="labels_pred has 2 labels but X has 3 rows"):
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
