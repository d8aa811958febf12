"""Metrics: regression (in the namespace of their inputs) and classification (labels on the host); Python floats out."""

from __future__ import annotations

from typing import Any

import numpy as np

from hml import backends
from hml._array import check_y, float_dtype
from hml._labels import distinct, labels_on_host
from hml.numerics import r2

__all__ = [
    "accuracy_score",
    "adjusted_rand_score",
    "confusion_matrix",
    "mean_squared_error",
    "precision_recall_f1",
    "r2_score",
]


def _targets(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    """Both targets as floating 1-D arrays in one namespace: that of the first device array given; in float32
    only where both are float32 (float64 truth beside float32 predictions is not rounded to float32)."""
    like = next((a for a in (y_true, y_pred) if backends.is_array(a)), None)
    ctx = backends.resolve(backends.AUTO, like=like)
    single = all(backends.dtype_name(getattr(a, "dtype", None)) == "float32" for a in (y_true, y_pred))
    dtype = float_dtype(ctx, getattr(like, "dtype", None) if single else None)
    true = check_y(y_true, ctx, n_samples=None, dtype=dtype, name="y_true")
    pred = check_y(y_pred, ctx, n_samples=None, dtype=dtype, name="y_pred")
    if pred.shape[0] != true.shape[0]:
        raise ValueError(f"y_pred has {pred.shape[0]} values but y_true has {true.shape[0]}; they must match")
    if true.shape[0] == 0:
        raise ValueError("y_true is empty; metrics need at least one sample")
    return ctx.xp, true, pred


def matched_labels(
    y_true: Any, y_pred: Any, names: tuple[str, str] = ("y_true", "y_pred")
) -> tuple[np.ndarray, np.ndarray]:
    """Both label arrays on the host, of one kind: strings beside numbers (labels read from a file as text,
    predictions of a model fitted on integers) would never compare equal, and give a silently wrong metric."""
    true = labels_on_host(y_true, None, names[0])
    pred = labels_on_host(y_pred, true.shape[0], names[1], against=names[0])
    kinds = [_kind(labels) for labels in (true, pred)]
    if "mixed" in kinds or len(set(kinds) - {"empty"}) > 1:
        raise ValueError(
            f"{names[0]}'s labels are {kinds[0]} and {names[1]}'s {kinds[1]}: labels of different types never "
            f"match; convert one to the other's type first (e.g. {names[0]}.astype(int), or .astype(str))"
        )
    return true, pred


def _kind(labels: np.ndarray) -> str:
    """``"strings"``, ``"numbers"``, ``"mixed"`` or ``"empty"``: the label kinds a metric may compare."""
    if labels.dtype.kind in "biuf":
        return "numbers"
    if labels.dtype.kind in "US":
        return "strings"
    found = {isinstance(label, str) for label in labels.tolist()}
    return "empty" if not found else "strings" if found == {True} else "numbers" if found == {False} else "mixed"


def mean_squared_error(y_true: Any, y_pred: Any) -> float:
    """MSE = 1/m Σ (y_i − ŷ_i)²."""
    xp, true, pred = _targets(y_true, y_pred)
    return float(xp.mean((true - pred) ** 2))


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)².

    1 is a perfect fit, 0 the score of always predicting ȳ; it can be negative.
    A constant ``y_true`` gives 1.0 for a perfect prediction and 0.0 otherwise
    (scikit-learn's convention).
    """
    xp, true, pred = _targets(y_true, y_pred)
    return r2(xp, true, pred)


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Any = None) -> np.ndarray:
    """C[i, j] = #{samples of true class labels[i] predicted as labels[j]} (scikit-learn's layout).

    ``labels`` defaults to the sorted union of the labels in ``y_true`` and ``y_pred``;
    labels of any type. Returns a NumPy int64 array.
    """
    true, pred = matched_labels(y_true, y_pred)
    if true.shape[0] == 0:
        raise ValueError("y_true is empty; a confusion matrix needs at least one sample")
    if labels is None:
        classes = np.unique(np.concatenate([true, pred]))
    else:
        classes = np.asarray(labels)
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D list of labels; got shape {classes.shape}")
        if len({_kind(true), _kind(classes)}) > 1:
            raise ValueError(f"labels are {_kind(classes)} and y_true's labels {_kind(true)}: they would never match")
        if np.unique(classes).size != classes.size:  # a row and a column would count twice, or not at all
            raise ValueError(f"labels={classes.tolist()[:10]} names a label twice; give each once")
        if not np.isin(classes, true).any():
            raise ValueError(f"none of labels={classes.tolist()[:5]} is in y_true; at least one must be")
    k = classes.size
    true_codes, pred_codes = np.searchsorted(classes, true), np.searchsorted(classes, pred)
    if labels is not None:  # searchsorted needs sorted classes; map through an order instead
        order = np.argsort(classes)
        true_codes = order[np.searchsorted(classes[order], true).clip(0, k - 1)]
        pred_codes = order[np.searchsorted(classes[order], pred).clip(0, k - 1)]
    # Samples whose labels are not in ``labels`` are left out, as in scikit-learn.
    known = (classes[true_codes.clip(0, k - 1)] == true) & (classes[pred_codes.clip(0, k - 1)] == pred)
    flat = true_codes[known] * k + pred_codes[known]
    return np.bincount(flat, minlength=k * k).reshape(k, k).astype(np.int64)


def precision_recall_f1(y_true: Any, y_pred: Any, *, pos_label: Any = 1) -> tuple[float, float, float]:
    """Precision tp/(tp + fp), recall tp/(tp + fn) and F1 = 2·P·R/(P + R) = 2tp/(2tp + fp + fn) for ``pos_label``.

    A ratio with a zero denominator is 0.0 (scikit-learn's ``zero_division=0``).
    """
    true_labels, pred_labels = matched_labels(y_true, y_pred)
    if true_labels.shape[0] == 0:
        raise ValueError("y_true is empty; precision and recall need at least one sample")
    present = np.unique(np.concatenate([true_labels, pred_labels]))
    if present.size >= 2 and not (present == pos_label).any():  # as scikit-learn: a lone class may be negative
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the labels {present.tolist()}; "
            "pass the positive class as pos_label=..."
        )
    true, pred = true_labels == pos_label, pred_labels == pos_label
    tp = int(np.count_nonzero(true & pred))
    fp = int(np.count_nonzero(pred & ~true))
    fn = int(np.count_nonzero(true & ~pred))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def accuracy_score(y_true: Any, y_pred: Any) -> float:
    """Accuracy = 1/m Σᵢ [yᵢ = ŷᵢ]: the fraction of labels predicted exactly (labels of any type, the same in both)."""
    true, pred = matched_labels(y_true, y_pred)
    if true.shape[0] == 0:
        raise ValueError("y_true is empty; accuracy needs at least one sample")
    return float(np.mean(true == pred))


def adjusted_rand_score(labels_true: Any, labels_pred: Any) -> float:
    """Agreement of two partitions of the same samples, corrected for chance (Hubert & Arabie, 1985).

    With the contingency table nᵢⱼ = #{samples in class i and cluster j}, its row sums aᵢ,
    column sums bⱼ and C(x) = x(x − 1)/2 the number of pairs:

        index    = Σᵢⱼ C(nᵢⱼ)                      (pairs grouped together in both)
        expected = Σᵢ C(aᵢ) Σⱼ C(bⱼ) / C(m)        (its mean over random partitions of the same sizes)
        ARI      = (index − expected) / (½[Σᵢ C(aᵢ) + Σⱼ C(bⱼ)] − expected)

    1 for identical partitions (whatever the names of their clusters), about 0 for a
    random one, negative when worse than chance. Labels of any type.
    """
    true = labels_on_host(labels_true, None, "labels_true")
    pred = labels_on_host(labels_pred, true.shape[0], "labels_pred", against="labels_true")
    m = true.shape[0]
    if m == 0:
        raise ValueError("labels_true is empty; the adjusted Rand index needs at least one sample")
    true_codes = distinct(true, "labels_true")[1]
    pred_classes, pred_codes = distinct(pred, "labels_pred")
    contingency = np.bincount(true_codes * pred_classes.size + pred_codes).astype(np.float64)

    def pairs(counts: np.ndarray) -> float:
        return float(np.sum(counts * (counts - 1.0)) / 2.0)

    index = pairs(contingency)
    rows = pairs(np.bincount(true_codes).astype(np.float64))
    columns = pairs(np.bincount(pred_codes).astype(np.float64))
    expected = rows * columns / (m * (m - 1.0) / 2.0) if m > 1 else 0.0
    maximum = 0.5 * (rows + columns)
    # The denominator is 0 only for identical partitions (all in one cluster, or all apart).
    if maximum == expected:
        return 1.0
    return (index - expected) / (maximum - expected)
