"""Anomaly detection with a Gaussian density, and the F1-optimal density threshold."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from hml import backends, kernels
from hml._array import labels_on_host, squares_overflow
from hml._params import OneOf, Real, param
from hml.base import BaseEstimator
from hml.exceptions import NotFittedError, as_sklearn
from hml.numerics import centred_sum_of_squares

__all__ = ["GaussianAnomalyDetection", "ThresholdSelection"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class ThresholdSelection:
    """The result of :meth:`GaussianAnomalyDetection.select_threshold`.

    ``epsilon`` is the best threshold (flag p < ε) and ``f1`` its F1; ``thresholds`` every
    candidate (the distinct densities, ascending) with its ``precision``, ``recall`` and ``f1_scores``.
    Unpacks as ``epsilon, f1 = selection``.
    """

    epsilon: float
    f1: float
    thresholds: Any
    precision: Any
    recall: Any
    f1_scores: Any

    def __iter__(self) -> Iterator[float]:
        return iter((self.epsilon, self.f1))


class GaussianAnomalyDetection(BaseEstimator):
    """Flag the points a Gaussian fitted to (mostly normal) data finds improbable.

    ``covariance="diag"`` (the original project): independent features,
        p(x) = Πⱼ 𝒩(xⱼ; μⱼ, σⱼ²),   μⱼ = 1/m Σᵢ xᵢⱼ,  σⱼ² = 1/m Σᵢ (xᵢⱼ − μⱼ)².
    ``covariance="full"``: the multivariate Gaussian with Σ = 1/m Σᵢ (xᵢ − μ)(xᵢ − μ)ᵀ,
        log p(x) = −½ [d log 2π + log det Σ + ‖L⁻¹(x − μ)‖²],  Σ = LLᵀ (Cholesky),
    so log det Σ = 2 Σ log Lₖₖ and the Mahalanobis term is one GEMM with L⁻¹.

    A point is an anomaly when p(x) < ε. ε comes, in this order of precedence, from
    :meth:`fit_threshold` on labelled data (the original project's F1-selected ε, see
    :meth:`select_threshold`), from ``threshold=``, or from ``contamination``: the
    fraction of the training points to flag, with no labels needed.

    A density estimator in scikit-learn's terms: ``score_samples`` is p(x), ``score`` the
    mean log-likelihood (what ``GridSearchCV`` maximises), and ``predict`` keeps the
    original's flags, 1 for an anomaly and 0 for a normal point.

    Attributes
    ----------
    mean_ : array (n_features,)
    variance_ : array (n_features,) for "diag"; covariance_ : array (d, d) for "full"
    threshold_ : float
        ε (from ``threshold``, ``contamination``, or a later :meth:`fit_threshold`).
    n_features_in_ : int
    """

    _estimator_type: ClassVar[str] = "density_estimator"

    covariance: Literal["diag", "full"] = param(
        default="diag",
        rule=OneOf(("diag", "full")),
        doc="Independent features (the original project), or the full covariance matrix Σ.",
    )
    threshold: float | None = param(default=None, rule=Real(allow_none=True), doc="ε itself.")
    contamination: float | None = param(
        default=0.01,
        rule=Real(positive=True, maximum=0.5, allow_none=True),
        doc="Without ``threshold``: ε is the ``contamination`` quantile of p over the training points, so that "
        "fraction of them is flagged. None: ``predict`` waits for :meth:`fit_threshold` (or ``threshold``).",
    )

    def fit(self, X: Any, y: Any = None) -> GaussianAnomalyDetection:
        """Fit μ and σ² (or Σ) to ``X``; ``y`` is ignored."""
        p = self._validated
        fit_input = self._validate_fit_X(X, p, min_samples=2)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        m, d = X.shape
        # Each statistic is materialised before it is read or used again (no-ops but on Dask,
        # where a graph computed in two calls reuses its keys with different task fusion).
        (mean,) = ctx.backend.materialize(xp.mean(X, axis=0))
        if p.covariance == "diag":
            (variance,) = ctx.backend.materialize(centred_sum_of_squares(X, mean, xp) / float(m))
            values = ctx.read(variance, "constant features")
            if not np.all(np.isfinite(values)):  # finite X whose squares overflow: not a NaN density
                raise squares_overflow(ctx, X, "GaussianAnomalyDetection's variance")
            zero = values == 0.0
            if zero.any():
                raise ValueError(
                    f"feature(s) {np.flatnonzero(zero).tolist()} of X are constant (variance 0), so the density is "
                    "degenerate; drop those columns or add more varied data"
                )
            self.variance_ = variance
            (self._log_normaliser_,) = ctx.backend.materialize(-0.5 * (d * _LOG_2PI + xp.sum(xp.log(variance))))
        else:
            centred = X - mean
            (covariance,) = ctx.backend.materialize((centred.T @ centred) / float(m))
            factor = _cholesky_or_raise(ctx, covariance, m, X)
            self.covariance_ = covariance
            # L⁻¹: (x − μ) L⁻ᵀ has identity covariance
            self._whitening_, self._log_normaliser_ = ctx.backend.materialize(
                kernels.inv(factor), -0.5 * d * _LOG_2PI - xp.sum(xp.log(xp.linalg.diagonal(factor)))
            )
        self.mean_ = mean
        if p.threshold is not None:
            self.threshold_ = p.threshold
        elif p.contamination is not None:
            self.threshold_ = self._quantile_threshold(ctx, X, p.contamination)
        elif "threshold_" in self.__dict__:  # from an earlier fit
            del self.threshold_
        self._remember_input(fit_input)
        return self

    def _quantile_threshold(self, ctx: backends.ComputeContext, X: Any, q: float) -> float:
        """ε = the q-quantile of p over the rows of ``X`` (linear interpolation, as ``numpy.quantile``)."""
        xp = ctx.xp
        p = xp.sort(xp.exp(self._log_density_of(ctx, X)))
        position = q * (X.shape[0] - 1)
        below = int(math.floor(position))
        above = min(below + 1, X.shape[0] - 1)
        fraction = position - below
        epsilon = p[below] + fraction * (p[above] - p[below])
        return float(ctx.read(epsilon, "contamination threshold"))

    def score(self, X: Any, y: Any = None) -> float:
        """The mean log-likelihood 1/m Σᵢ log p(xᵢ) of the rows of ``X`` (higher: the model fits them better)."""
        log_p, _ = self._log_density(X)
        return float(self._ctx_.read(self._ctx_.xp.mean(log_p), "score"))

    def _log_density(self, X: Any) -> tuple[Any, Any]:
        ctx, Xc = self._validate_X(X)
        return self._log_density_of(ctx, Xc), Xc

    def _log_density_of(self, ctx: backends.ComputeContext, Xc: Any) -> Any:
        """log p(x) for the rows of a validated ``Xc``."""
        xp = ctx.xp
        centred = Xc - self.mean_
        if self.covariance == "diag":
            mahalanobis = xp.sum(centred * centred / self.variance_, axis=1)
        else:
            whitened = centred @ self._whitening_.T
            mahalanobis = xp.sum(whitened * whitened, axis=1)
        return self._log_normaliser_ - 0.5 * mahalanobis

    def log_density(self, X: Any) -> Any:
        """log p(x) for each row: finite where p(x) itself underflows to 0 (high dimension, far points)."""
        return backends.mirror(self._log_density(X)[0], X)

    def score_samples(self, X: Any) -> Any:
        """p(x) for each row, the density the original project thresholds (see :meth:`log_density`)."""
        log_p, _ = self._log_density(X)
        return backends.mirror(self._ctx_.xp.exp(log_p), X)

    def predict(self, X: Any) -> Any:
        """1 where p(x) < ε (an anomaly), else 0, as int64 in the namespace of ``X``."""
        if not hasattr(self, "threshold_"):
            self._check_fitted()
            raise as_sklearn(NotFittedError)(
                "no threshold ε yet (contamination=None): call fit_threshold(X_val, y_val), or pass threshold= or "
                "contamination= to the constructor"
            )
        log_p, _ = self._log_density(X)
        xp = self._ctx_.xp
        # Compare p itself, as select_threshold did: exp then compare, never log ε (rounding
        # could move the candidate point that defines ε across it).
        return backends.mirror(xp.astype(xp.exp(log_p) < self.threshold_, xp.int64), X)

    def fit_threshold(self, X: Any, y: Any) -> ThresholdSelection:
        """Set ``threshold_`` to the ε that maximises F1 on labelled ``X``, ``y`` (1 = anomaly); return the search."""
        selection = self.select_threshold(y, self.score_samples(X))
        self.threshold_ = selection.epsilon
        return selection

    @staticmethod
    def select_threshold(y_true: Any, p: Any) -> ThresholdSelection:
        """The ε maximising F1 of "anomaly if p < ε", over **every** distinct value of ``p``.

        One sort and cumulative sums, O(n log n): with the densities ascending, a candidate
        ε = p₍ᵢ₎ (the first of its ties) flags the i points below it, of which tpᵢ are
        anomalies, so precision = tpᵢ / i, recall = tpᵢ / #anomalies and F1 = 2tpᵢ / (i + #anomalies).
        The original project tried 1,000 evenly spaced ε with a full pass each. Usable
        without a fitted model; ``y_true`` holds 1 (or True) for anomalies and 0 (or False)
        for normal points, as the original's labels did.
        """
        p_host = _scores_on_host(p)
        labels = labels_on_host(y_true, p_host.shape[0], "y_true")
        found = np.unique(labels)
        if labels.dtype.kind not in "biuf" or not np.isin(found, [0, 1]).all():
            raise ValueError(
                f"y_true must hold 1 for an anomaly and 0 for a normal point (or True/False); got the labels "
                f"{found[:5].tolist()}{' ...' if found.size > 5 else ''} -- map yours first, e.g. "
                "y_true = (labels == 'anomaly')"
            )
        truth = labels == 1
        if p_host.shape[0] == 0:
            raise ValueError("p is empty; select_threshold needs at least one density")
        if not np.isfinite(p_host).all():
            raise ValueError("p contains NaN or infinite densities; pass the output of score_samples")
        n_anomalies = int(np.count_nonzero(truth))
        if n_anomalies == 0:
            raise ValueError("y_true has no anomalies (no 1s); F1 is undefined without positive examples")
        ordered = np.sort(p_host)  # values only: faster than argsort, and ties need no order
        first = np.empty(ordered.shape[0], dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        thresholds = ordered[first]
        flagged = np.flatnonzero(first)  # points strictly below each candidate
        # Anomalies strictly below each candidate: a search in the (few) anomalies' sorted densities.
        true_positives = np.searchsorted(np.sort(p_host[truth]), thresholds, side="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(flagged > 0, true_positives / np.maximum(flagged, 1), 0.0)
        recall = true_positives / n_anomalies
        f1 = 2.0 * true_positives / (flagged + n_anomalies)
        best = int(np.argmax(f1))
        return ThresholdSelection(float(thresholds[best]), float(f1[best]), thresholds, precision, recall, f1)


def _scores_on_host(p: Any) -> np.ndarray:
    array = np.asarray(backends.to_numpy(p), dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"p must be 1-D (one density per sample); got shape {array.shape}")
    return array


def _cholesky_or_raise(ctx: backends.ComputeContext, covariance: Any, m: int, X: Any) -> Any:
    xp = ctx.xp
    d = covariance.shape[0]
    advice = (
        f"the covariance matrix of X ({d} × {d}, from {m} samples) is singular: some feature is constant or a "
        "linear combination of others. Use more data, drop the redundant features, or covariance='diag'"
    )

    def failed() -> ValueError:
        # Only when the factorisation failed: an overflowed Σ (|x| ≳ 1e154 in float64) is not singular.
        if not bool(ctx.read(xp.all(xp.isfinite(covariance)), "overflow report")):
            return squares_overflow(ctx, X, "GaussianAnomalyDetection's covariance")
        return ValueError(advice)

    try:
        (factor,) = ctx.backend.materialize(kernels.cholesky(covariance))  # read below, then used again
    except Exception as exc:  # LinAlgError (NumPy/CuPy), torch's _LinAlgError, ...
        raise failed() from exc
    diagonal = xp.linalg.diagonal(factor)
    # Some libraries return NaN instead of raising; a pivot at rounding level is singular too.
    finite, smallest, largest = (
        float(v)
        for v in ctx.read(
            xp.stack([xp.astype(xp.all(xp.isfinite(factor)), diagonal.dtype), xp.min(diagonal), xp.max(diagonal)]),
            "covariance pivots",
        )
    )
    if not finite:
        smallest = largest = float("nan")
    # A pivot below 100 √ε of the largest means cond(Σ) > 1/(100 √ε)² (4e11 in float64): singular in practice.
    if not math.isfinite(smallest) or smallest <= 100.0 * math.sqrt(float(xp.finfo(covariance.dtype).eps)) * largest:
        raise failed()
    return factor
