"""Class labels: on the host, as any type (strings, integers, booleans), encoded as codes into the sorted
distinct labels, checked for missing ones; and the class weights that scale each row by its label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hml.backends import to_numpy
from hml.exceptions import warn_column_vector

__all__ = ["class_weighted", "distinct", "encode_labels", "labels_on_host", "labels_to_codes", "plain"]


def class_weighted(sample_weight: Any, class_weight: Any, classes: np.ndarray | None, codes: np.ndarray | None) -> Any:
    """``sample_weight`` (None, a number or one per row) times each row's class weight: ``class_weight``
    {label: weight} (1 for a class not named), or ``"balanced"``: Σs / (K Σ_{i in k} sᵢ), scikit-learn's."""
    if class_weight is None:
        return sample_weight
    assert classes is not None and codes is not None  # class weights are a classifier's
    given = None if sample_weight is None else np.asarray(to_numpy(sample_weight), dtype=np.float64)
    if given is not None and given.ndim and given.shape != codes.shape:  # before the counts that index by it
        raise ValueError(
            f"sample_weight must be 1-D with one weight per row of X ({codes.size}); got shape {given.shape}"
        )
    if class_weight == "balanced":
        counted = (
            np.where(np.isfinite(given), given, 0.0) if given is not None and given.ndim else None
        )  # NaN: its row only
        totals = np.bincount(codes, weights=counted, minlength=classes.size)
        per_class = np.divide(totals.sum(), classes.size * totals, out=np.zeros(classes.size), where=totals > 0)
    else:
        unknown = [label for label in class_weight if not np.isin(np.asarray([label], dtype=object), classes).any()]
        if unknown:
            raise ValueError(
                f"class_weight names labels that are not in y: {unknown}; y's classes are {classes.tolist()}"
            )
        per_class = np.asarray([class_weight.get(label, 1.0) for label in classes.tolist()], dtype=np.float64)
    per_row = per_class[codes]  # on the host, as the labels: one upload with the weights
    return per_row if given is None else per_row * given


def labels_on_host(y: Any, n_samples: int | None, name: str, against: str = "X") -> np.ndarray:
    """Class labels as a 1-D NumPy array: labels may be strings, so they live on the host."""
    if y is None:
        raise ValueError(
            f"this estimator requires y to be passed, but the target {name} is None; pass one class label per sample"
        )
    if type(y).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(y).__name__}); labels are dense: pass {name}.toarray().ravel()"
        )
    if np.ma.isMaskedArray(y):  # as X: its values, unless some are masked
        if np.ma.getmaskarray(y).any():
            raise ValueError(f"{name} is a masked array with masked labels; pass {name}.filled(...) or drop those rows")
        y = np.ma.getdata(y)
    labels = to_numpy(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        warn_column_vector(name)
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one class label per sample); got shape {labels.shape}")
    if n_samples is not None and labels.shape[0] != n_samples:
        raise ValueError(f"{name} has {labels.shape[0]} labels but {against} has {n_samples} rows; they must match")
    if labels.dtype == object:
        missing = np.flatnonzero(np.frompyfunc(_missing, 1, 1)(labels).astype(bool))
        if missing.size:
            raise ValueError(
                f"{name} contains {missing.size} missing label(s), None, NaN or pandas.NA (the first at index "
                f"{missing[0]}); every sample needs a class -- drop those rows or give them a label"
            )
        labels = _as_numbers(labels)
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise ValueError(f"{name} contains NaN or infinite labels; every sample needs a class")
    return labels.astype(np.float64) if labels.dtype == np.float16 else labels  # float16 classes: not savable


def _as_numbers(labels: np.ndarray) -> np.ndarray:
    """An object column of numbers (pandas' ``Series.astype(object)``) as a numeric array, where that holds every
    value exactly (not integers beyond 2⁶³, which float64 would merge); else the object array, as it was."""
    numbers = np.frompyfunc(lambda v: isinstance(v, (bool, int, float, np.number, np.bool_)), 1, 1)(labels)
    if not labels.size or not numbers.astype(bool).all():
        return labels
    converted = np.asarray(labels.tolist())
    exact = converted.dtype.kind in "biuf" and bool(np.all(converted.astype(object) == labels))
    return converted if exact else labels


def _missing(value: Any) -> bool:
    """A missing label in an object array: None, a float NaN (pandas' missing value in an object column),
    ``pandas.NA`` or ``NaT`` -- NaN would be a class of its own, and breaks the sort of the labels."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _types(labels: np.ndarray) -> list[str]:
    """The names of the Python types among ``labels``, for a message."""
    return sorted({type(v).__name__ for v in labels.tolist()})


def plain(value: Any) -> Any:
    """A label as Python has it, for a message: ``np.int64(3)`` as 3; an object array's own values as they are."""
    return value.item() if isinstance(value, np.generic) else value


def distinct(labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True)``, the codes 1-D; labels of types that do not compare, such as
    1 and "a", are refused with their types."""
    try:
        classes, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            f"{name} mixes labels of types {_types(labels)} that cannot be sorted; use labels of one type"
        ) from exc
    return classes, codes.ravel()


def encode_labels(y: Any, n_samples: int | None, *, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)``: the sorted distinct labels, and each sample's index into them.

    Labels of any type (``"SETOSA"``, 0/1, strings, floats) are accepted; at least
    two classes are required.
    """
    labels = labels_on_host(y, n_samples, name)
    if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
        # scikit-learn's word for it ("Unknown label type: continuous"), which its checks expect.
        values = np.unique(labels)
        raise ValueError(
            f"Unknown label type: continuous. {name} holds {values.size} distinct floats, not all whole numbers "
            f"(e.g. {values[:3].tolist()}): a classifier needs class labels. For a continuous target use a "
            "regressor (hml.LinearRegression); for classes, pass integers or strings"
        )
    classes, codes = distinct(labels, name)
    if classes.size < 2:
        found = f"only the class {plain(classes[0])!r}" if classes.size else "no labels"
        raise ValueError(f"{name} has {found}; a classifier needs samples of at least two classes")
    return classes, codes.astype(np.int64)


def labels_to_codes(y: Any, classes: np.ndarray, n_samples: int | None, *, name: str = "y") -> np.ndarray:
    """Each label's index into the fitted ``classes``; labels not seen in ``fit`` raise ``ValueError``."""
    labels = labels_on_host(y, n_samples, name)
    try:
        codes = np.searchsorted(classes, labels)
    except TypeError as exc:  # "yes" against the classes 0 and 1
        raise ValueError(
            f"{name} holds labels of types {_types(labels)}, which do not compare with the fitted classes {classes.tolist()[:5]}"
        ) from exc
    codes = np.minimum(codes, classes.size - 1)
    unseen = classes[codes] != labels
    if unseen.any():
        raise ValueError(
            f"{name} contains label(s) {np.unique(labels[unseen])[:5].tolist()} not seen in fit; "
            f"the fitted classes are {classes.tolist()}"
        )
    return codes.astype(np.int64)


# -- what fit saw, and what the backend is good for -------------------------------------
