"""hml.model_selection.train_test_split: sizes, disjointness, stratification, seeds and backends."""

from __future__ import annotations

import numpy as np
import pytest

from hml.model_selection import train_test_split


def test_split_partitions_the_rows(case):
    X = np.arange(200.0).reshape(100, 2)
    y = np.arange(100.0)
    X_train, X_test, y_train, y_test = train_test_split(case.asarray(X), case.asarray(y), test_size=0.2, random_state=0)
    X_train, X_test, y_train, y_test = (case.to_numpy(a) for a in (X_train, X_test, y_train, y_test))
    assert X_train.shape == (80, 2) and X_test.shape == (20, 2)
    # Rows stay together across arrays, and every row lands in exactly one set.
    np.testing.assert_array_equal(X_train[:, 0] / 2, y_train)
    np.testing.assert_array_equal(X_test[:, 0] / 2, y_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)


def test_split_keeps_each_arrays_library_and_device(case):
    X = case.asarray(np.arange(20.0).reshape(10, 2))
    X_train, X_test = train_test_split(X, test_size=3, random_state=1)
    assert type(X_train) is type(X) and type(X_test) is type(X)
    assert X_test.shape == (3, 2)
    import array_api_compat

    assert array_api_compat.device(X_test) == array_api_compat.device(X)


def test_same_seed_same_rows_on_every_backend(case):
    y = np.arange(50.0)
    expected = train_test_split(y, random_state=7)[1]
    np.testing.assert_array_equal(case.to_numpy(train_test_split(case.asarray(y), random_state=7)[1]), expected)
    assert not np.array_equal(train_test_split(y, random_state=8)[1], expected)


def test_sizes_follow_scikit_learn():
    sk = pytest.importorskip("sklearn.model_selection")
    y = np.arange(155)
    for kwargs in (
        {},
        {"test_size": 0.2},
        {"train_size": 0.7},
        {"test_size": 0.1, "train_size": 0.5},
        {"test_size": 31},
    ):
        ours = train_test_split(y, random_state=0, **kwargs)
        theirs = sk.train_test_split(y, random_state=0, **kwargs)
        assert [a.shape for a in ours] == [a.shape for a in theirs], kwargs


def test_unshuffled_split_takes_rows_in_order():
    train, test = train_test_split(list(range(10)), test_size=0.3, shuffle=False)
    np.testing.assert_array_equal(train, np.arange(7))
    np.testing.assert_array_equal(test, [7, 8, 9])


def test_stratified_split_keeps_label_proportions():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    train, test = train_test_split(labels, stratify=labels, test_size=0.2, random_state=0)
    np.testing.assert_array_equal(np.bincount(test), [120, 60, 20])
    np.testing.assert_array_equal(np.bincount(train), [480, 240, 80])
    # Shuffled: the test set is not sorted by label.
    assert np.any(np.diff(test) < 0)


def test_stratified_split_with_uneven_shares_matches_the_requested_sizes():
    rng = np.random.default_rng(3)
    labels = rng.choice(["a", "b", "c", "d"], size=157, p=[0.5, 0.3, 0.15, 0.05])
    X = np.arange(157.0)[:, None]
    X_train, X_test, y_train, y_test = train_test_split(X, labels, stratify=labels, test_size=0.25, random_state=2)
    assert X_test.shape[0] == 40 and X_train.shape[0] == 117
    share = {label: np.mean(labels == label) for label in "abcd"}
    for label in "abcd":
        assert abs(np.sum(y_test == label) - 40 * share[label]) < 1.0
    np.testing.assert_array_equal(labels[X_test[:, 0].astype(int)], y_test)


def test_pandas_objects_are_split_with_iloc():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": range(10), "b": range(10, 20)}, index=list("abcdefghij"))
    train, test = train_test_split(frame, test_size=0.5, random_state=0)
    assert isinstance(test, pd.DataFrame) and len(test) == 5
    assert sorted(train.index.tolist() + test.index.tolist()) == list("abcdefghij")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 1.5}, "test_size=1.5 must be a fraction strictly between 0 and 1"),
        ({"test_size": 10}, "test_size=10 rows is not between 1 and n_samples - 1 = 9"),
        ({"test_size": "20%"}, "test_size must be a fraction"),
        ({"test_size": 0.6, "train_size": 0.6}, "ask for 6 \\+ 6 rows but there are only 10"),
        ({"stratify": [0] * 9 + [1]}, "the label 1 has only 1 row"),
        ({"shuffle": False, "stratify": [0, 1] * 5}, "stratify needs shuffle=True"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_test_split(np.arange(10), **kwargs)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match=r"different numbers of rows, \[10, 9\]"):
        train_test_split(np.arange(10), np.arange(9))
    with pytest.raises(ValueError, match="at least one array"):
        train_test_split()


def test_sparse_matrices_are_split_by_rows_and_nonarrays_are_refused():
    sparse = pytest.importorskip("scipy.sparse")
    X = np.arange(30.0).reshape(10, 3)
    dense_train, dense_test = train_test_split(X, random_state=0)
    train, test = train_test_split(sparse.csr_array(X), random_state=0)
    np.testing.assert_array_equal(train.toarray(), dense_train)
    np.testing.assert_array_equal(test.toarray(), dense_test)
    for bad in ("abcdef", np.array(3.0)):
        with pytest.raises(ValueError, match=r"array 0 has no known number of rows"):
            train_test_split(bad)
    np.testing.assert_array_equal(  # a NumPy bool is a bool
        train_test_split(np.arange(10), shuffle=np.True_, random_state=0)[1],
        train_test_split(np.arange(10), shuffle=True, random_state=0)[1],
    )
