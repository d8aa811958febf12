"""Input validation, conversion and the dtype policy: the one place every public call goes through.

``check_X``/``check_y`` turn whatever the user passed (NumPy, CuPy, torch, Dask,
array-api-strict arrays, lists, pandas objects) into a floating 2-D array on the
compute device, or raise an error that names the parameter, the value received,
and what would be accepted.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from hml.backends import ComputeContext, backend_of, dtype_name, is_array, keep
from hml.exceptions import PerformanceWarning, warn, warn_column_vector

__all__ = [
    "check_X",
    "check_feature_names",
    "feature_names",
    "warn_if_small",
    "one_hot",
    "check_y",
    "float_dtype",
    "squares_overflow",
    "squares_overflow_if_any",
]


def float_dtype(ctx: ComputeContext, input_dtype: Any, requested: Any = None) -> Any:
    """The floating dtype to compute in. ``requested`` (an estimator's ``dtype=``, as ``"float32"``, ``"float64"``,
    a NumPy dtype or the namespace's dtype) wins. Otherwise float32 input stays float32 and everything else computes
    in float64 -- except on a device without float64 (Apple MPS, array-api-strict's ``no_float64``): float32, warned.
    """
    xp = ctx.xp
    has_f64 = ctx.backend.supports_float64(ctx.device)
    if requested is not None:
        name = dtype_name(requested)
        if name not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32', 'float64' or None; got {requested!r}")
        if name == "float64" and not has_f64:
            raise ValueError(
                f"dtype='float64' was requested but device {ctx.device!r} of backend "
                f"{ctx.backend.name!r} has no float64; use dtype='float32' or another device"
            )
        return getattr(xp, name)
    if dtype_name(input_dtype) == "float32":
        return xp.float32
    if not has_f64:
        warn(
            f"device {ctx.device!r} of backend {ctx.backend.name!r} has no float64; computing in "
            "float32 (pass dtype='float32' to silence this warning)",
            UserWarning,
        )
        return xp.float32
    return xp.float64


def _as_array(value: Any, name: str) -> Any:
    """An array-API array of real numbers for ``value``: arrays pass through, anything else goes through NumPy.

    The messages carry the phrases scikit-learn's ``check_estimator`` looks for
    ("sparse", "Complex data not supported", "argument must be a string or a number").
    """
    if value is None:
        raise ValueError(f"{name} is None; pass an array of numbers")
    if type(value).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(value).__name__}); sparse input is not supported: hml computes on "
            f"dense arrays. Pass {name}.toarray() if it fits in memory"
        )
    if not is_array(value):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{name} could not be read as a numeric array ({exc}); pass a rectangular array of numbers"
            ) from exc
    if np.ma.isMaskedArray(value):  # its own arithmetic would follow the mask: read the values, or refuse
        if np.ma.getmaskarray(value).any():
            raise ValueError(
                f"{name} is a masked array with {int(np.ma.getmaskarray(value).sum())} masked value(s); hml reads "
                f"every value: pass {name}.filled(...) with the values to use, or drop those rows"
            )
        value = np.ma.getdata(value)
    if isinstance(value, np.ndarray) and value.dtype == object:  # e.g. a pandas frame of mixed numeric columns
        try:
            value = value.astype(np.float64)
        except TypeError:  # pandas.NA of a nullable column beside float ones: NaN, which the NaN check names
            missing = np.frompyfunc(lambda v: v is None or type(v).__name__ == "NAType", 1, 1)(value).astype(bool)
            value = np.where(missing, np.nan, value) if missing.any() else value
        try:
            value = value.astype(np.float64)
        except (ValueError, TypeError) as exc:  # Python's own words: "float() argument must be a string or ..."
            raise TypeError(
                f"{name} holds values that are not numbers ({exc}); encode categories as numbers first"
            ) from exc
    value = backend_of(value).as_input(value)  # raises for array types no backend supports
    dtype = value.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "c" or "complex" in str(dtype):
        raise ValueError(f"Complex data not supported: {name} has dtype {dtype}; pass real numbers")
    if isinstance(dtype, np.dtype) and dtype.kind not in "biuf":
        hint = " (text?) -- encode categories as numbers first" if dtype.kind in "OUS" else ""
        raise TypeError(f"{name} must hold real numbers; got dtype {dtype}{hint}")
    if not array_api_compat.array_namespace(value).isdtype(dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{name} must hold real numbers; got dtype {dtype}")
    return value


def _check_finite(ctx: ComputeContext, array: Any, name: str) -> None:
    xp = ctx.xp
    # One cheap reduction first: the column sums are finite unless some entry is NaN/inf
    # (or huge values overflow, which the exact check below then rules in or out).
    if array.ndim == 2:
        probe = xp.sum(array, axis=0)
    else:
        probe = xp.sum(array)
    if bool(ctx.read(xp.all(xp.isfinite(probe)), "input check")):
        return
    bad = ~xp.isfinite(array)
    count = int(ctx.read(xp.count_nonzero(bad), "input check"))
    if count == 0:
        return
    flat = int(ctx.read(xp.argmax(xp.astype(xp.reshape(bad, (-1,)), xp.int8)), "input check"))
    where = f"row {flat // array.shape[1]}, column {flat % array.shape[1]}" if array.ndim == 2 else f"index {flat}"
    raise ValueError(
        f"{name} contains {count} NaN or infinite value(s) (the first at {where}); remove or impute them first"
    )


def _squares_limit(X: Any, xp: Any) -> float:
    """√(max / (m·d)): the largest |x| for which every sum of squares over X is finite."""
    return float((float(xp.finfo(X.dtype).max) / (X.shape[0] * X.shape[1])) ** 0.5)


def squares_overflow(ctx: ComputeContext, X: Any, what: str, advice: str = "") -> ValueError:
    """The error for finite ``X`` whose sums of squares overflow its dtype (|x| ≳ 1e154 in
    float64, 1e19 in float32): the largest magnitude, the limit and the fix (``advice`` names
    another). Built only on the error path, so its read of max|X| costs nothing otherwise."""
    return _overflow_error(X, ctx.xp, _largest_magnitude(ctx, X), what, advice)


def squares_overflow_if_any(ctx: ComputeContext, X: Any, what: str, advice: str = "") -> ValueError | None:
    """:func:`squares_overflow`'s error where some |x| exceeds :func:`_squares_limit`, else None
    (one read, for error paths that may have another cause)."""
    largest = _largest_magnitude(ctx, X)
    return _overflow_error(X, ctx.xp, largest, what, advice) if largest > _squares_limit(X, ctx.xp) else None


def _largest_magnitude(ctx: ComputeContext, X: Any) -> float:
    return float(ctx.read(ctx.xp.max(ctx.xp.abs(X)), "overflow report"))


def _overflow_error(X: Any, xp: Any, largest: float, what: str, advice: str) -> ValueError:
    finfo = xp.finfo(X.dtype)
    limit = _squares_limit(X, xp)
    divisor = 10.0 ** max(0, int(np.ceil(np.log10(largest / limit))) + 3)
    return ValueError(
        f"{what} overflows {dtype_name(X.dtype)}: X's largest magnitude is {largest:.3g}, and the sums of squares "
        f"over its {X.shape[0]} x {X.shape[1]} values exceed {dtype_name(X.dtype)}'s maximum ({float(finfo.max):.3g}) "
        f"above about {limit:.3g}. Rescale X first, e.g. X / {divisor:.0e}: the model of the rescaled data is the "
        f"same up to that scale{advice}"
    )


def check_X(
    X: Any,
    ctx: ComputeContext,
    *,
    dtype: Any = None,
    min_samples: int = 1,
    n_features: int | None = None,
    name: str = "X",
    estimator: str | None = None,
) -> Any:
    """Validate ``X`` and return it as a floating 2-D array on ``ctx``'s device.

    ``n_features`` (at predict time) must equal the number of features seen in ``fit``.
    """
    X = _as_array(X, name)
    if X.ndim != 2:
        hint = ""
        if X.ndim == 1:
            hint = (
                " Reshape your data either using X.reshape(-1, 1) if it holds one feature, or X.reshape(1, -1) "
                "if it holds one sample."
            )
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); got a {X.ndim}-D array of shape {tuple(X.shape)}.{hint}"
        )
    n_samples = X.shape[0]
    if n_samples is not None and n_samples < min_samples:
        raise ValueError(
            f"{name} has {n_samples} sample(s) (shape={tuple(X.shape)}) while a minimum of {min_samples} is required."
        )
    if X.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {estimator or 'the estimator'} is expecting {n_features} "
            "features as input (it was fitted on that many); pass data with the same columns as in fit"
        )
    target_dtype = float_dtype(ctx, X.dtype, dtype)
    X = ctx.asarray(X, dtype=target_dtype)
    _check_finite(ctx, X, name)
    return X


def check_y(y: Any, ctx: ComputeContext, *, n_samples: int | None, dtype: Any, name: str = "y") -> Any:
    """Validate a target: 1-D, or a column of shape (n, 1) (with a warning), one value per row of X."""
    if y is None:
        raise ValueError(f"this estimator requires y to be passed, but the target {name} is None")
    y = _as_array(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        warn_column_vector(name)
        y = array_api_compat.array_namespace(y).reshape(y, (-1,))
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one target per sample) or a column of shape (n, 1); got shape {tuple(y.shape)}"
        )
    if n_samples is not None and y.shape[0] is not None and y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} values but X has {n_samples} rows; they must match")
    y = ctx.asarray(y, dtype=dtype)
    _check_finite(ctx, y, name)
    return y


class SampleWeight(NamedTuple):
    """Validated sample weights sᵢ ≥ 0, as the objectives use them.

    ``normalised`` is ŝᵢ = sᵢ · m / Σs (mean 1, on the device, X's dtype): a mean 1/m Σᵢ ŝᵢ fᵢ is the weighted
    mean 1/Σs Σᵢ sᵢ fᵢ, so formulas keep their 1/m. ``total`` is Σs (a float): it replaces m where a term does not
    depend on the rows (the penalty λ/(2m)‖w‖²), so integer weights equal repeated rows. ``given`` is sᵢ itself.
    """

    normalised: Any
    total: float

    @property
    def given(self) -> Any:  # sᵢ = ŝᵢ Σs / m: for a sum over the rows, not a mean (k-means' distortion)
        return self.normalised * (self.total / self.normalised.shape[0])


def check_sample_weight(sample_weight: Any, ctx: ComputeContext, *, n_samples: int, dtype: Any) -> SampleWeight | None:
    """``sample_weight`` for a fit on ``n_samples`` rows: None (every row counts once), a number
    (every row counts that much) or one finite weight ≥ 0 per row, not all 0. One host read."""
    if sample_weight is None:
        return None
    xp = ctx.xp
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        weights = xp.full((n_samples,), float(sample_weight), dtype=dtype, device=ctx.device)
    else:
        weights = _as_array(sample_weight, "sample_weight")
        if weights.ndim != 1 or (weights.shape[0] is not None and weights.shape[0] != n_samples):
            raise ValueError(
                f"sample_weight must be 1-D with one weight per row of X ({n_samples}); got shape {tuple(weights.shape)}"
            )
        weights = ctx.asarray(weights, dtype=dtype)
    extremes = xp.stack([xp.sum(weights), xp.min(weights), xp.max(weights)])
    total, smallest, largest = (float(v) for v in ctx.read(extremes, "input check"))
    if not math.isfinite(total):
        _check_finite(ctx, weights, "sample_weight")
        raise ValueError(  # finite weights whose sum overflows: n/Σs would be 0, every weight lost
            f"sample_weight sums past the largest {dtype_name(weights.dtype)} (its largest is {largest:g}); divide "
            "the weights by their largest -- their ratios weigh the rows"
        )
    if smallest < 0:
        raise ValueError(
            f"sample_weight must be >= 0 (a weight counts a row that many times); its smallest is {smallest:g}"
        )
    if total <= 0:
        raise ValueError(
            "sample_weight is zero for every row (its sum is 0): every row would be left out; give some rows a positive weight"
        )
    if smallest == largest == 1.0:  # weights of one are no weights: the unweighted fit, to the last bit
        return None
    # Held (on Dask, when it fits in memory) like the training matrices it is read beside.
    scale = n_samples / total  # weights of 1e-320 sum to a subnormal: m/Σs overflows, but not (s/Σs)·m
    normalised = weights * scale if math.isfinite(scale) else (weights / total) * n_samples
    return SampleWeight(keep(normalised)[0], total)


def one_hot(codes: Any, n_classes: int, dtype: Any, xp: Any) -> Any:
    """Y[i, k] = 1 if codes[i] = k else 0, shape (n, n_classes), built on the codes' device.

    A comparison against ``arange``, not ``torch.nn.functional.one_hot`` (which
    ``array_api_extra.one_hot`` calls on torch): that one checks the codes' range on the
    host, a GPU synchronisation. The codes come from :func:`encode_labels`, in range.
    """
    classes = xp.arange(n_classes, dtype=codes.dtype, device=array_api_compat.device(codes))
    return xp.astype(xp.reshape(codes, (-1, 1)) == classes, dtype)


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a DataFrame-like ``X`` when they are all strings (scikit-learn's rule), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or is_array(X):
        return None
    names = np.asarray(list(columns), dtype=object)
    kinds = {type(name).__name__ for name in names}
    if names.size and kinds == {"str"}:
        return names
    if "str" in kinds:
        raise TypeError(
            f"X's column names mix strings with {sorted(kinds - {'str'})}; make them all strings "
            "(X.columns = X.columns.astype(str)) to use them as feature names"
        )
    return None


def check_feature_names(fitted: np.ndarray | None, X: Any, name: str) -> None:
    """``X``'s column names against those ``fit`` saw (``fitted``): a warning where one of the two has
    none, a ``ValueError`` naming the unseen, missing or reordered columns where they differ."""
    names = feature_names(X)
    if fitted is None and names is None:
        return
    if fitted is None:
        warn(f"X has feature names, but {name} was fitted without feature names", UserWarning)
        return
    if names is None:
        warn(f"X does not have valid feature names, but {name} was fitted with feature names", UserWarning)
        return
    if len(names) == len(fitted) and bool(np.all(names == fitted)):
        return
    unseen = [n for n in names if n not in set(fitted)]
    missing = [n for n in fitted if n not in set(names)]
    detail = []
    if unseen:
        detail.append(f"feature names unseen at fit time: {unseen[:5]}")
    if missing:
        detail.append(f"feature names seen at fit time, yet now missing: {missing[:5]}")
    if not detail:
        detail.append(
            f"the same names in another order: fit saw {fitted.tolist()[:8]}, "
            f"this X has {names.tolist()[:8]} -- select the columns as X[model.feature_names_in_]"
        )
    raise ValueError("The feature names should match those that were passed during fit. " + "; ".join(detail))


_warned_small: set[str] = set()  # backends already warned about, once per process


def warn_if_small(ctx: ComputeContext, X: Any, estimator: str) -> None:
    """Say once per process, per backend, that ``X`` is too small for its backend to pay off
    (``Backend.small_data_bytes``, from ``benchmarks/dask_overhead.py``) -- and compute there anyway, as asked."""
    limit, name = ctx.backend.small_data_bytes, ctx.backend.name
    if limit is None or name in _warned_small:
        return
    size = X.shape[0] * X.shape[1] * (4 if X.dtype == ctx.xp.float32 else 8)
    if size >= limit:
        return
    _warned_small.add(name)
    warn(
        f"{estimator}: X is {size / 2**20:.3g} MiB, below the {limit / 2**20:.0f} MiB where {name} pays off "
        f"on one machine: each iteration costs it some scheduling whatever the data's size (benchmarks/RESULTS.md "
        f"has the measurements). Computing on {name} as asked; for data this size, backend='numpy' "
        f"(or X.compute()) is faster. This warning shows once per process",
        PerformanceWarning,
    )
