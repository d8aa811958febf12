"""Splitting data into training and test sets, for arrays of any backend."""

from __future__ import annotations

import math
import numbers
from typing import Any, cast

import numpy as np

from hml import backends
from hml._labels import distinct, labels_on_host, plain

__all__ = ["train_test_split"]


def train_test_split(
    *arrays: Any,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    random_state: Any = None,
    shuffle: bool = True,
    stratify: Any = None,
) -> list[Any]:
    """Split arrays (same number of rows) into random train and test subsets, as scikit-learn's function does.

    Returns ``[a_train, a_test, b_train, b_test, ...]``. Each array keeps its library and
    device -- NumPy, CuPy, torch, Dask or array-api-strict rows are taken with ``take``
    in their own namespace; pandas objects with ``.iloc``; SciPy sparse matrices by rows,
    as CSR; lists come back as NumPy arrays. The permutation is drawn on the host from ``random_state``, so a seed
    selects the same rows on every backend.

    Parameters
    ----------
    test_size, train_size : float in (0, 1), int, or None
        A fraction of the rows or a number of rows. With neither given, 25% of the rows
        are for testing; with one given, the other set takes the rest. The test set gets
        ⌈test_size · n⌉ rows and the training set ⌊train_size · n⌋.
    random_state : int, numpy Generator or None
    shuffle : bool, default True
        ``False`` takes the first rows for training and the next for testing, in order.
    stratify : array of labels or None
        Keep the proportion of each label the same in both sets (each label needs at
        least two rows).
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one array")
    n = _n_rows(arrays)
    n_train, n_test = _split_sizes(n, test_size, train_size)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"shuffle must be True or False; got {shuffle!r}")
    if not shuffle:
        if stratify is not None:
            raise ValueError("stratify needs shuffle=True (an unshuffled split is the first rows in order)")
        train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    elif stratify is None:
        order = backends.check_random_state(random_state).permutation(n)
        train, test = order[:n_train], order[n_train : n_train + n_test]
    else:
        train, test = _stratified(
            labels_on_host(stratify, n, "stratify", against="the first array"),
            n_train,
            n_test,
            backends.check_random_state(random_state),
        )
    return [part for array in arrays for part in (_take(array, train), _take(array, test))]


def _n_rows(arrays: tuple[Any, ...]) -> int:
    counts = []
    for i, array in enumerate(arrays):
        shape = getattr(array, "shape", None)
        if isinstance(array, (str, bytes)) or (shape is not None and not len(shape)):
            rows = None  # a string or a 0-d array has no rows to split
        else:
            rows = shape[0] if shape is not None else (len(array) if hasattr(array, "__len__") else None)
        if rows is None or (isinstance(rows, float) and math.isnan(rows)):
            raise ValueError(
                f"array {i} has no known number of rows ({type(array).__name__}); pass arrays, lists or "
                "data frames (Dask: call compute_chunk_sizes() first)"
            )
        counts.append(int(rows))
    if len(set(counts)) > 1:
        raise ValueError(f"the arrays have different numbers of rows, {counts}; pass arrays of the same length")
    if counts[0] < 2:
        raise ValueError(f"the arrays have {counts[0]} row(s); splitting needs at least 2")
    return counts[0]


def _size(value: Any, name: str, n: int) -> float | int | None:
    """``value`` checked as a fraction in (0, 1) or a row count in [1, n − 1]."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if not 1 <= cast(int, value) <= n - 1:
            raise ValueError(
                f"{name}={value} rows is not between 1 and n_samples - 1 = {n - 1}; pass a smaller count or a fraction"
            )
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"{name}={value} must be a fraction strictly between 0 and 1, or a number of rows")
        return float(value)
    raise ValueError(f"{name} must be a fraction in (0, 1), a number of rows, or None; got {value!r}")


def _split_sizes(n: int, test_size: Any, train_size: Any) -> tuple[int, int]:
    test, train = _size(test_size, "test_size", n), _size(train_size, "train_size", n)
    if test is None and train is None:
        test = 0.25
    n_test = None if test is None else (math.ceil(test * n) if isinstance(test, float) else test)
    n_train = None if train is None else (math.floor(train * n) if isinstance(train, float) else train)
    if n_test is None:
        assert n_train is not None  # no test_size: train_size was given
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n:
        raise ValueError(
            f"train_size and test_size ask for {n_train} + {n_test} rows but there are only {n}; lower one of them"
        )
    if n_train == 0 or n_test == 0:
        raise ValueError(
            f"with {n} rows, test_size={test_size!r} and train_size={train_size!r} leave an empty "
            f"{'training' if n_train == 0 else 'test'} set; use a larger fraction or count"
        )
    return n_train, n_test


def _stratified(
    labels: np.ndarray, n_train: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices with each label's share of the test (and training) set as close to its share
    of the data as counts allow."""
    classes, codes = distinct(labels, "stratify")
    counts = np.bincount(codes, minlength=classes.size)
    if counts.min() < 2:
        lonely = plain(classes[int(np.argmin(counts))])
        raise ValueError(
            f"stratify: the label {lonely!r} has only 1 row; each label needs at least 2 (one per set), "
            "so merge rare labels or split without stratify"
        )
    n = labels.shape[0]
    if min(n_train, n_test) < classes.size:
        raise ValueError(
            f"stratify: the split gives {n_train} training and {n_test} test rows, but there are {classes.size} "
            "labels; each set needs at least one row per label, so use a larger test_size or train_size"
        )
    test_counts = _apportion(counts * (n_test / n), n_test, np.minimum(counts - 1, n_test))
    train_counts = _apportion(counts * (n_train / n), n_train, counts - test_counts)
    # Shuffle, then group rows by label keeping the shuffled order within each label.
    shuffled = rng.permutation(n)
    order = shuffled[np.argsort(codes[shuffled], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(n) - starts[codes[order]]  # position of each row within its label
    label_of = codes[order]
    test = order[rank < test_counts[label_of]]
    train = order[(rank >= test_counts[label_of]) & (rank < test_counts[label_of] + train_counts[label_of])]
    return rng.permutation(train), rng.permutation(test)


def _apportion(quotas: np.ndarray, total: int, limits: np.ndarray) -> np.ndarray:
    """Integers ≤ ``limits`` summing to ``total``, closest to ``quotas``: floors, then +1 by largest remainder."""
    counts: np.ndarray = np.minimum(np.floor(quotas).astype(np.int64), limits)
    while counts.sum() < total:  # one pass unless a limit binds
        room = counts < limits
        remainders = np.where(room, quotas - counts, -np.inf)
        top = np.argsort(-remainders, kind="stable")[: min(total - int(counts.sum()), int(room.sum()))]
        counts[top] += 1
    return counts


def _take(array: Any, indices: np.ndarray) -> Any:
    if hasattr(array, "iloc"):  # pandas
        return array.iloc[indices]
    if type(array).__module__.startswith("scipy.sparse"):  # rows of a sparse matrix, kept sparse
        return array.tocsr()[indices]
    if not backends.is_array(array):
        array = np.asarray(array)
    ctx = backends.resolve(backends.AUTO, like=array)
    return ctx.take_rows(array, indices)
