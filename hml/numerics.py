"""The numerical building blocks the models share, written once against the array API.

Each is a formula with the care it needs -- no overflow, no log(0), no temporary as
large as X, the fastest BLAS orientation -- so that the models (``linear_model``,
``neural_network``, ``cluster``, ``anomaly``, ``features``, ``metrics``) import them from
here rather than from each other.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from hml import kernels

__all__ = [
    "centred_sum_of_squares",
    "constant_columns",
    "log_sigmoid_terms",
    "moments",
    "r2",
    "softmax_terms",
    "scaled_standardisation",
    "standardisation",
    "standardise",
    "tall_gram",
    "tall_matmul",
]


def tall_matmul(A: Any, W: Any) -> Any:
    """A @ W for a tall A (m × n, m ≫ n), computed as (Wᵀ Aᵀ)ᵀ.

    The same product; OpenBLAS picks a faster kernel for this orientation in float64, and
    PyTorch is no slower either way (the figures: ``benchmarks/RESULTS.md``). A short A (no more
    rows than columns: a mini-batch) is multiplied as it is, so that the result is row-major like
    the arrays it meets elementwise (a mixed layout is a strided pass).
    """
    if A.shape[0] <= A.shape[1]:
        return A @ W
    return (W.T @ A.T).T


def tall_gram(A: Any, delta: Any) -> Any:
    """Aᵀ Δ for A and Δ of m rows each: for a tall A (more rows than columns) computed as (Δᵀ A)ᵀ,
    faster in float64, as above; for a short one (a mini-batch) as Aᵀ Δ itself, whose row-major
    result flattens without the copy that the transpose of (Δᵀ A) would need."""
    if A.shape[0] <= A.shape[1]:
        return A.T @ delta
    return (delta.T @ A).T


def column_sums(A: Any) -> Any:
    """Σᵢ A[i, :] of a tall A, shape (columns,): the bias gradients Σᵢ δᵢ (:func:`hml.kernels.column_sums`)."""
    return kernels.column_sums(A)


def positive_part(x: Any, xp: Any) -> Any:
    """max(x, 0) elementwise, in x's dtype and on its device.

    Neither ``xp.maximum(x, 0.0)`` nor ``xp.clip(x, min=0.0)``: array_api_compat turns the
    Python 0.0 into a torch tensor (a host-to-device copy, a synchronisation on CUDA), and
    implements CuPy's ``clip`` with boolean-mask assignment (a synchronisation, and several
    passes). A 0-d zero made on the device is a fill, which neither waits nor copies.
    """
    return xp.maximum(x, xp.zeros((), dtype=x.dtype, device=array_api_compat.device(x)))


def log_sigmoid_terms(logits: Any, xp: Any) -> tuple[Any, Any]:
    """``(softplus(z), σ(z))`` elementwise, without overflow for any z.

    With e = exp(−|z|) ∈ (0, 1]: softplus(z) = log(1 + eᶻ) = max(z, 0) + log1p(e), and
    σ(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) for z < 0. The binary cross-entropy of a
    label y ∈ {0, 1} is then −y log σ(z) − (1−y) log(1−σ(z)) = softplus(z) − y z: no log(0).
    """
    e = xp.exp(-xp.abs(logits))
    softplus = positive_part(logits, xp) + xp.log1p(e)
    ones = xp.ones_like(e)
    probability = xp.where(logits >= 0, ones, e) / (ones + e)
    return softplus, probability


def log_sigmoid(logits: Any, xp: Any) -> Any:
    """log σ(z) = min(z, 0) − log1p(e^{−|z|}) elementwise: finite for every finite z, where σ(z)
    itself underflows to 0 (z ≲ −745 in float64). log(1 − σ(z)) is log σ(−z)."""
    return -positive_part(-logits, xp) - xp.log1p(xp.exp(-xp.abs(logits)))


def class_probabilities(logits: Any, softmax: bool, xp: Any) -> Any:
    """P(class k | x), shape (n, K): the exponentials of :func:`log_class_probabilities`, rows summing to 1.

    One-vs-all scores σ(zₖ) / Σⱼ σ(zⱼ) are taken as the softmax of log σ(z): divided as they stand, a row where
    every σ(zₖ) underflows to 0 (zₖ < −745 in float64) was 0/0, NaN, and ``predict`` its first class.
    """
    if softmax:
        return softmax_terms(logits, xp)[1]
    if logits.shape[1] == 1:
        probability = log_sigmoid_terms(logits, xp)[1]
        return xp.concat([1.0 - probability, probability], axis=1)
    return softmax_terms(log_sigmoid(logits, xp), xp)[1]


def log_class_probabilities(logits: Any, softmax: bool, xp: Any) -> Any:
    """log P(class k | x), shape (n, K), from the output logits of a classifier, finite where P underflows.

    ``softmax``: log pₖ = zₖ − log Σⱼ e^{zⱼ}. Otherwise a sigmoid per class: one column (binary)
    gives [log σ(−z), log σ(z)]; several give the normalised one-vs-all scores,
    log pₖ = log σ(zₖ) − log Σⱼ σ(zⱼ) -- the logs of what ``predict_proba`` returns.
    """
    if softmax:
        return _log_softmax(logits, xp)
    log_p = log_sigmoid(logits, xp)
    if logits.shape[1] == 1:
        return xp.concat([log_sigmoid(-logits, xp), log_p], axis=1)
    return _log_softmax(log_p, xp)


def _log_softmax(z: Any, xp: Any) -> Any:
    """zₖ − log Σⱼ e^{zⱼ} as (zₖ − max z) − log Σⱼ e^{zⱼ − max z}: not z − (log Σ + max z), where a large |z|
    absorbs the log Σ (logits ±1e17 gave log ½ as 0)."""
    shifted = z - xp.max(z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def softmax_terms(logits: Any, xp: Any) -> tuple[Any, Any]:
    """``(log Σₖ exp zₖ per row, softmax(z))``, by the log-sum-exp shift (no overflow)."""
    shift = xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(logits - shift)
    total = xp.sum(exp, axis=1, keepdims=True)
    return xp.log(total) + shift, exp / total


_CHUNK_ELEMENTS = 1 << 20


def standardisation(X: Any, xp: Any, weights: Any = None) -> tuple[Any, Any]:
    """Mean μ and standard deviation σ = √(1/m Σᵢ (xᵢ − μ)²) per column; σ of a constant column becomes 1.

    With ``weights`` ŝ (normalised to mean 1, ``hml._array.SampleWeight``): μ = 1/m Σᵢ ŝᵢ xᵢ and
    σ² = 1/m Σᵢ ŝᵢ (xᵢ − μ)², the moments of the data with each row repeated its weight's times.
    """
    mean, scale = moments(X, xp, weights)
    return mean, _unit_if_constant(mean, scale, xp)


def moments(X: Any, xp: Any, weights: Any = None) -> tuple[Any, Any]:
    """μ and σ per column, as they are, by the corrected two-pass algorithm (Chan, Golub and LeVeque):
    with d = x − μ̂ about the computed mean, μ = μ̂ + Σd/m and m σ² = Σd² − (Σd)²/m.

    A sum of the rows one after another (NumPy's mean down a column) errs by up to m·ε·abs(μ); that error
    comes back as Σd ≠ 0 and is taken out, so a constant column of 2,000 rows has σ at rounding level
    of its μ (it was 3.5e-15 × 1/0.1 before: 3.5e-14 relative, read as a real spread)."""
    m = float(X.shape[0])
    mean = xp.mean(X, axis=0) if weights is None else (weights @ X) / m
    deviations, squares = _centred_sums(X, mean, xp, weights)
    squares = xp.maximum(squares - deviations * (deviations / m), xp.zeros_like(squares))  # ≥ 0 but for rounding
    return mean + deviations / m, xp.sqrt(squares / m)


def constant_columns(mean: Any, scale: Any, xp: Any) -> Any:
    """Which columns of μ and σ (from :func:`hml.numerics.moments`) are constant: σ = 0, or σ ≤ 10 ε abs(μ).

    A constant column can come out with σ a few ulps of abs(μ) from rounding in the mean (a column of 0.1
    has σ ~ 1e-17); treat it as exactly constant rather than divide by it."""
    eps = xp.finfo(scale.dtype).eps
    return (scale <= 10.0 * eps * xp.abs(mean)) | (scale == 0.0)


def _unit_if_constant(mean: Any, scale: Any, xp: Any) -> Any:
    """σ, with 1 for a constant column."""
    return xp.where(constant_columns(mean, scale, xp), xp.ones_like(scale), scale)


def scaled_standardisation(X: Any, xp: Any, weights: Any = None) -> tuple[Any, Any]:
    """μ and σ as :func:`hml.numerics.standardisation`, for columns whose sum or sum of squares overflows
    (float64 ``|x| ≳ 1e154/√m``, float32 ``|x| ≳ 1e19/√m``): each column is divided by the power of
    two ``p = 2^⌊log₂ max|x|⌋``, so its values lie in (−2, 2), and μ = p μ(X/p), σ = p σ(X/p).

    Dividing by a power of two is exact, so μ and σ are those of the exact formula, as long
    as σ itself is finite (it is at most ``max|x|``). It costs two more passes over X and a
    temporary as large as X, so it is the fallback, not the rule.
    """
    largest = xp.max(xp.abs(X), axis=0)
    largest = xp.where(largest > 0.0, largest, xp.ones_like(largest))  # a zero column: p = 1
    # ⌊log₂⌋, not ⌈log₂⌉: 2^⌈log₂ 1.7e308⌉ = 2^1024 overflows.
    power = xp.pow(xp.full_like(largest, 2.0), xp.floor(xp.log2(largest)))
    mean, scale = moments(X / power, xp, weights)
    mean, scale = mean * power, scale * power
    return mean, _unit_if_constant(mean, scale, xp)


def centred_sum_of_squares(X: Any, mean: Any, xp: Any, weights: Any = None) -> Any:
    """Σᵢ (xᵢⱼ − μⱼ)² per column j (Σᵢ ŝᵢ (xᵢⱼ − μⱼ)² with ``weights``), over chunks of about 1 M
    elements of rows.

    A temporary as large as X costs more in fresh memory (page faults) than the
    arithmetic itself (``benchmarks/RESULTS.md``).
    """
    return _centred_sums(X, mean, xp, weights, deviations=False)[1]


def _centred_sums(X: Any, mean: Any, xp: Any, weights: Any = None, deviations: bool = True) -> tuple[Any, Any]:
    """(Σᵢ dᵢⱼ, Σᵢ dᵢⱼ²) per column, dᵢⱼ = xᵢⱼ − μⱼ (weighted by ŝᵢ with ``weights``; the first None
    without ``deviations``), in one pass over chunks of rows."""
    m = X.shape[0]
    rows = max(1, _CHUNK_ELEMENTS // max(X.shape[1], 1))
    firsts = squares = None
    for start in range(0, m, rows):
        centred = X[start : min(start + rows, m), ...] - mean
        weighted = centred if weights is None else centred * xp.reshape(weights[start : min(start + rows, m)], (-1, 1))
        if deviations:
            first = xp.sum(weighted, axis=0)
            firsts = first if firsts is None else firsts + first
        weighted *= centred  # in place, in the block's own temporary: no second one (d² or s·d²)
        part = xp.sum(weighted, axis=0)
        squares = part if squares is None else squares + part
    return firsts, squares


def standardise(X: Any, mean: Any, scale: Any) -> Any:
    """(X − μ) / σ with one new array (the division in place)."""
    Z = X - mean
    Z /= scale
    return Z


def r2(xp: Any, true: Any, pred: Any, weights: Any = None) -> float:
    """R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² of validated arrays (see :func:`hml.metrics.r2_score`); with ``weights``
    s, 1 − Σsᵢ(yᵢ − ŷᵢ)² / Σsᵢ(yᵢ − ȳ)² about the weighted mean ȳ = Σsᵢyᵢ / Σs (scikit-learn's)."""
    if true.shape[0] < 2:
        raise ValueError("R² needs at least 2 samples (the variance of one value is undefined)")
    if weights is None:
        residual, total = float(xp.sum((true - pred) ** 2)), float(xp.sum((true - xp.mean(true)) ** 2))
        highest, lowest = xp.max(true), xp.min(true)
    else:
        mean = xp.sum(weights * true) / xp.sum(weights)
        residual, total = float(xp.vecdot(weights, (true - pred) ** 2)), float(xp.vecdot(weights, (true - mean) ** 2))
        counted = weights > 0  # rows of weight 0 do not count
        highest = xp.max(xp.where(counted, true, xp.full_like(true, -xp.inf)))
        lowest = xp.min(xp.where(counted, true, xp.full_like(true, xp.inf)))
    # Constant y exactly, not Σ(y − ȳ)² = 0: the mean's rounding leaves 1e-33 of "spread", and 1 − residual/1e-33.
    if total == 0.0 or float(highest) == float(lowest):
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total
