"""Anomaly detection with a Gaussian density, and the F1-optimal density threshold."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from hml import backends, kernels
from hml._array import check_sample_weight, squares_overflow
from hml._labels import labels_on_host
from hml._params import OneOf, Real, param
from hml.base import BaseEstimator
from hml.exceptions import NotFittedError, as_sklearn, warn
from hml.numerics import moments

__all__ = ["GaussianAnomalyDetection", "ThresholdSelection"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class ThresholdSelection:
    """The result of :meth:`hml.GaussianAnomalyDetection.select_threshold`.

    ``epsilon`` is the best threshold (flag score < ε) and ``f1`` its F1; ``thresholds`` every
    candidate (the distinct scores, ascending) with its ``precision``, ``recall`` and ``f1_scores``.
    All are on the scale of the scores searched, which ``on`` names: log p(x) for
    :meth:`hml.GaussianAnomalyDetection.fit_threshold`. Unpacks as ``epsilon, f1 = selection``.
    """

    epsilon: float
    f1: float
    thresholds: Any
    precision: Any
    recall: Any
    f1_scores: Any
    on: str = "the scores"

    def __iter__(self) -> Iterator[float]:
        return iter((self.epsilon, self.f1))


class GaussianAnomalyDetection(BaseEstimator):
    r"""Flag the points a Gaussian fitted to (mostly normal) data finds improbable.

    ``covariance="diag"`` (the original project) models the features as independent Gaussians,
    ``covariance="full"`` as one multivariate Gaussian, computed from its covariance's Cholesky
    factor (the densities: Notes).

    A point is an anomaly when its density is below a threshold ε, tested on log p (Notes): p itself
    underflows to 0 far from the data in high dimension, log p does not. ε comes, in this order of
    precedence, from :meth:`fit_threshold` on labelled data (the original project's F1-selected ε,
    see :meth:`select_threshold`), from ``threshold=`` (ε) or ``log_threshold=`` (log ε), or from
    ``contamination``: the fraction of the training points to flag, with no labels needed.

    A density estimator in scikit-learn's terms (as ``GaussianMixture`` and ``KernelDensity``):
    ``score_samples`` is log p(x), ``score`` the mean log-likelihood (what ``GridSearchCV``
    maximises); :meth:`density` is p(x), the original project's score. ``predict`` keeps the
    original's flags, 1 for an anomaly and 0 for a normal point.

    Attributes
    ----------
    mean_ : array (n_features,)
        μ.
    variance_ : array (n_features,)
        σ², the features' variances (``covariance="diag"``).
    covariance_ : array (n_features, n_features)
        Σ, the covariance matrix (``covariance="full"``).
    log_threshold_ : float
        log ε (from ``threshold``/``log_threshold``, ``contamination``, or a later :meth:`fit_threshold`):
        what ``predict`` compares log p(x) with.
    threshold_ : float
        ε = exp(log ε) (0.0 where that underflows).
    n_features_in_ : int

    Notes
    -----
    With ``covariance="diag"`` (the original project), a product of one Gaussian per feature, its
    log as computed, and the features' means and variances over the m training rows:

    .. math::
        :name: anomaly-diag-density

        p(x) &= \prod_{j=1}^{d} \frac{1}{\sqrt{2\pi\sigma_j^2}} \exp\Big(-\frac{(x_j - \mu_j)^2}{2\sigma_j^2}\Big),

        \log p(x) &= -\frac{1}{2} \Big[ d \log 2\pi + \sum_{j=1}^{d} \Big( \log \sigma_j^2
                     + \frac{(x_j - \mu_j)^2}{\sigma_j^2} \Big) \Big],

        \mu_j &= \frac{1}{m} \sum_{i=1}^{m} x_{ij}, \qquad \sigma_j^2 = \frac{1}{m} \sum_{i=1}^{m} (x_{ij} - \mu_j)^2 .

    With ``covariance="full"``, the multivariate Gaussian, computed in log form from the Cholesky
    factor L of Σ (μ the mean of the rows, as above): log det Σ from L's diagonal, and the Mahalanobis
    distance as ‖L⁻¹(x − μ)‖², one GEMM of the centred rows with L⁻ᵀ:

    .. math::
        :name: anomaly-full-density

        \log p(x) &= -\frac{1}{2} \Big[ d \log 2\pi + \log\det\Sigma + \big\lVert L^{-1}(x - \mu) \big\rVert^2 \Big],

        \Sigma &= \frac{1}{m} \sum_{i=1}^{m} (x_i - \mu)(x_i - \mu)^\top = L L^\top,

        \log\det\Sigma &= 2 \sum_{k=1}^{d} \log L_{kk} .

    With ``sample_weight``, row i counts sᵢ times: each sum over the rows weights its term by
    ŝᵢ = sᵢ · m / Σs.

    The flag, compared on the log scale (ε from :meth:`fit_threshold`, ``threshold``,
    ``log_threshold`` or ``contamination``):

    .. math::
        :name: anomaly-threshold

        \text{anomaly}(x) = \big[\, p(x) < \varepsilon \,\big] = \big[\, \log p(x) < \log \varepsilon \,\big] .

    With ``contamination`` q, log ε is the q-quantile of log p over the training rows, interpolated
    linearly as ``numpy.quantile``: with ℓ₍₀₎ ≤ … ≤ ℓ₍ₘ₋₁₎ the sorted log p(xᵢ),

    .. math::
        :name: anomaly-contamination

        \log \varepsilon &= \ell_{(j)} + (t - j) \big( \ell_{(j + 1)} - \ell_{(j)} \big),

        t &= q\,(m - 1), \qquad j = \lfloor t \rfloor,

    so that about a fraction q of the training rows is flagged (with ``sample_weight``: a fraction q
    of their weight, each row repeated its weight's times).
    """

    _estimator_type: ClassVar[str] = "density_estimator"

    covariance: Literal["diag", "full"] = param(
        default="diag",
        rule=OneOf(("diag", "full")),
        doc="Independent features (the original project), or the full covariance matrix Σ.",
    )
    threshold: float | None = param(
        default=None, rule=Real(positive=True, allow_none=True), doc="ε itself, on the density p(x)."
    )
    log_threshold: float | None = param(
        default=None,
        rule=Real(signed=True, allow_none=True),
        doc="log ε, on the scale of ``score_samples`` (for an ε that underflows); not with ``threshold``.",
    )
    contamination: float | None = param(
        default=0.01,
        rule=Real(positive=True, maximum=0.5, allow_none=True),
        doc="Without a threshold: ε is exp of the ``contamination`` quantile of log p over the training points, so that "
        "fraction of them is flagged. None: ``predict`` waits for :meth:`fit_threshold` (or a threshold).",
    )

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianAnomalyDetection:
        """Fit μ and σ² (or Σ) to ``X`` (the class's Notes); ``y`` is ignored. ``sample_weight`` (one per row,
        ≥ 0) counts a row that many times, in μ, σ² and Σ, and ``contamination`` is then a fraction of the weight."""
        p = self._validated
        if p.threshold is not None and p.log_threshold is not None:
            raise ValueError(
                f"threshold={p.threshold} and log_threshold={p.log_threshold} both give ε; pass one of them"
            )
        fit_input = self._validate_fit_X(X, p, min_samples=2)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        m, d = X.shape
        weights = check_sample_weight(sample_weight, ctx, n_samples=m, dtype=X.dtype)
        s = None if weights is None else weights.normalised  # mean 1: the formulas keep their 1/m
        # Each statistic is materialised before it is read or used again (no-ops but on Dask,
        # where a graph computed in two calls reuses its keys with different task fusion).
        mean, scale = moments(X, xp, s)  # corrected two-pass: a constant column's σ at rounding level of μ
        mean, scale, variance = ctx.backend.materialize(mean, scale, scale * scale)
        _refuse_constant_features(ctx, X, s, scale, variance)
        if p.covariance == "diag":
            self.variance_ = variance
            (self._log_normaliser_,) = ctx.backend.materialize(-0.5 * (d * _LOG_2PI + xp.sum(xp.log(variance))))
        else:
            centred = X - mean
            weighted = centred if s is None else centred * xp.reshape(s, (-1, 1))
            (covariance,) = ctx.backend.materialize((weighted.T @ centred) / float(m))
            factor = _cholesky_or_raise(ctx, covariance, m, X)
            self.covariance_ = covariance
            # L⁻¹: (x − μ) L⁻ᵀ has identity covariance
            self._whitening_, self._log_normaliser_ = ctx.backend.materialize(
                kernels.inv(factor), -0.5 * d * _LOG_2PI - xp.sum(xp.log(xp.linalg.diagonal(factor)))
            )
        self.mean_ = mean
        for name in ("covariance_", "_whitening_") if p.covariance == "diag" else ("variance_",):
            self.__dict__.pop(name, None)  # an earlier fit's other model: _fitted_covariance reads which is here
        if p.threshold is not None:
            self._set_threshold(math.log(p.threshold), p.threshold)
        elif p.log_threshold is not None:
            self._set_threshold(p.log_threshold)
        elif p.contamination is not None:
            self._set_threshold(self._quantile_threshold(ctx, X, p.contamination, weights))
        else:  # none now: forget one from an earlier fit
            for name in ("threshold_", "log_threshold_"):
                self.__dict__.pop(name, None)
        self._remember_input(fit_input)
        return self

    def _set_threshold(self, log_epsilon: float, epsilon: float | None = None) -> None:
        """log ε, and ε as given (or exp(log ε))."""
        self.log_threshold_ = log_epsilon
        self.threshold_ = math.exp(log_epsilon) if epsilon is None else epsilon

    def _quantile_threshold(self, ctx: backends.ComputeContext, X: Any, q: float, weights: Any = None) -> float:
        """log ε = the q-quantile of log p over the rows of ``X`` (linear interpolation, as ``numpy.quantile``):
        the points below it, a fraction q, are flagged. With weights, that of the rows each repeated its
        weight's times: the sorted value at position j is the one whose cumulative weight passes j, at
        position q (Σw − 1) -- so weights summing to less than about 1 + 1/q flag next to nothing (warned)."""
        xp = ctx.xp
        n = X.shape[0]
        log_p = self._log_density_of(ctx, X)
        if weights is None:
            ordered, size = xp.sort(log_p), n
        else:
            order = xp.argsort(log_p)
            ordered, size = xp.take(log_p, order), weights.total
            # Repeated rows have their boundaries at whole positions, and the cumulative weight rebuilt from the
            # normalised weights must not pass one early by rounding (7 + 1e-15 is 7): summed in float64 where
            # the device has it, and compared less the rounding that the weights and the sum can carry.
            wide = xp.float64 if ctx.backend.supports_float64(ctx.device) else log_p.dtype
            shares = xp.astype(xp.take(weights.normalised, order), wide) * (weights.total / n)
            passed = xp.cumulative_sum(shares)
            eps = float(xp.finfo(weights.normalised.dtype).eps), float(xp.finfo(wide).eps)
            slack = (4.0 * eps[0] + n * eps[1]) * weights.total
            if q * (size - 1) < 1.0 and size < n:  # weights scaled down: the first row holds the whole quantile
                warn(
                    f"contamination={q} with sample_weight summing to {size:.4g}: weights count as repeated rows, so "
                    f"the {q} quantile falls in the first; scale them up (the smallest positive one to 1, say)"
                )
        position = max(q * (size - 1), 0.0)
        below = math.floor(position)
        fraction = position - below
        if weights is None:
            at = [below, min(below + 1, n - 1)]
            low, high = ordered[at[0]], ordered[at[1]]
        else:
            wanted = ctx.asarray(np.asarray([below, below + 1], dtype=np.float64) + slack, dtype=passed.dtype)
            found = xp.searchsorted(passed, wanted, side="right")
            at = xp.minimum(found, xp.full_like(found, n - 1))  # a weight-0 tail: the last row
            low, high = xp.take(ordered, at[:1]), xp.take(ordered, at[1:])
        log_epsilon = low + fraction * (high - low)
        return float(ctx.read(xp.reshape(log_epsilon, (-1,))[0], "contamination threshold"))

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """The mean log-likelihood 1/m Σᵢ log p(xᵢ) of the rows of ``X`` (higher: the model fits them better);
        with ``sample_weight`` s, the weighted mean Σᵢ sᵢ log p(xᵢ) / Σs."""
        log_p, Xc = self._log_density(X)
        weights = check_sample_weight(sample_weight, self._ctx_, n_samples=Xc.shape[0], dtype=Xc.dtype)
        mean = self._ctx_.xp.mean(log_p if weights is None else weights.normalised * log_p)
        return float(self._ctx_.read(mean, "score"))

    def _log_density(self, X: Any) -> tuple[Any, Any]:
        ctx, Xc = self._validate_X(X)
        return self._log_density_of(ctx, Xc), Xc

    def _log_density_of(self, ctx: backends.ComputeContext, Xc: Any) -> Any:
        """log p(x) for the rows of a validated ``Xc``."""
        xp = ctx.xp
        centred = Xc - self.mean_
        if self._fitted_covariance() == "diag":
            mahalanobis = xp.sum(centred * centred / self.variance_, axis=1)
        else:
            whitened = centred @ self._whitening_.T
            mahalanobis = xp.sum(whitened * whitened, axis=1)
        return self._log_normaliser_ - 0.5 * mahalanobis

    def _fitted_covariance(self) -> str:
        """The covariance the fit used (``set_params(covariance=...)`` takes effect at the next fit, as in
        scikit-learn); a model saved before fits cleared the other's attributes may hold both: its parameter."""
        diag, full = "variance_" in self.__dict__, "_whitening_" in self.__dict__
        return self.covariance if diag == full else "diag" if diag else "full"

    def score_samples(self, X: Any) -> Any:
        """log p(x) for each row, as scikit-learn's density estimators give it: finite where p(x) itself
        underflows to 0 (high dimension, far points)."""
        return backends.mirror(self._log_density(X)[0], X)

    def log_density(self, X: Any) -> Any:
        """log p(x) for each row: :meth:`score_samples`."""
        return self.score_samples(X)

    def density(self, X: Any) -> Any:
        """p(x) for each row, the density the original project thresholds; 0 where it underflows
        (see :meth:`score_samples`)."""
        log_p, _ = self._log_density(X)
        return backends.mirror(self._ctx_.xp.exp(log_p), X)

    def predict(self, X: Any) -> Any:
        """1 where p(x) < ε (an anomaly), else 0, as int64 in the namespace of ``X``: log p(x) < log ε."""
        if not hasattr(self, "log_threshold_"):
            self._check_fitted()
            raise as_sklearn(NotFittedError)(
                "no threshold ε yet (contamination=None): call fit_threshold(X_val, y_val), or pass threshold=, "
                "log_threshold= or contamination= to the constructor"
            )
        log_p, _ = self._log_density(X)
        xp = self._ctx_.xp
        # On the scale ε was chosen on (fit_threshold, contamination: log p), so the point that
        # defines it is compared with itself: no rounding of a log or an exp between them.
        return backends.mirror(xp.astype(log_p < self.log_threshold_, xp.int64), X)

    def fit_threshold(self, X: Any, y: Any, sample_weight: Any = None) -> ThresholdSelection:
        """Set the threshold to the ε that maximises F1 on labelled ``X``, ``y`` (1 = anomaly), searched on
        log p(x) (:meth:`score_samples`); return the search, whose ``epsilon`` is that log ε."""
        selection = self.select_threshold(y, self.score_samples(X), on="log p(x)", sample_weight=sample_weight)
        self._set_threshold(selection.epsilon)
        return selection

    @staticmethod
    def select_threshold(
        y_true: Any, p: Any, *, on: str = "the scores", sample_weight: Any = None
    ) -> ThresholdSelection:
        r"""The ε maximising F1 of "anomaly if p < ε", over **every** distinct value of ``p``.

        ``p`` may be the densities (:meth:`density`) or their logs (:meth:`score_samples`), or any
        score that grows with the density: the flags, and so F1, are the same, and ε comes back
        on the scale given (``on`` names it, for plots). ``sample_weight`` counts each point that many
        times in tp, the flagged and the anomalies.

        One sort and cumulative sums, O(n log n): with the densities ascending, a candidate
        ε = p₍ᵢ₎ (the first of its ties) flags the i points strictly below it, of which tpᵢ are
        anomalies; with a the number of anomalies,

        .. math::
            :name: anomaly-f1

            \mathrm{precision}_i &= \frac{tp_i}{i}, \qquad \mathrm{recall}_i = \frac{tp_i}{a},

            F_{1,i} &= \frac{2\, \mathrm{precision}_i \, \mathrm{recall}_i}{\mathrm{precision}_i + \mathrm{recall}_i}
                     = \frac{2\, tp_i}{i + a}

        (precision 0 where nothing is flagged), and ε is the candidate of the largest F1, the first of
        equals. The original project tried 1,000 evenly spaced ε with a full pass each. Usable
        without a fitted model; ``y_true`` holds 1 (or True) for anomalies and 0 (or False)
        for normal points, as the original's labels did.
        """
        p_host = _scores_on_host(p)
        labels = labels_on_host(y_true, p_host.shape[0], "y_true", against="p")
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
            raise ValueError("p contains NaN or infinite scores; pass the output of score_samples (or density)")
        weights = None if sample_weight is None else np.asarray(backends.to_numpy(sample_weight), dtype=np.float64)
        if weights is not None and (weights.shape != p_host.shape or not (weights >= 0).all()):
            raise ValueError(f"sample_weight must hold one weight >= 0 per score ({p_host.shape[0]})")
        n_anomalies = int(np.count_nonzero(truth)) if weights is None else float(weights[truth].sum())
        if n_anomalies == 0:
            raise ValueError("y_true has no anomalies (no 1s); F1 is undefined without positive examples")
        order = None if weights is None else np.argsort(p_host, kind="stable")
        ordered = np.sort(p_host) if order is None else p_host[order]  # values only: faster than argsort
        first = np.empty(ordered.shape[0], dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        thresholds = ordered[first]
        if weights is None or order is None:
            flagged = np.flatnonzero(first)  # points strictly below each candidate
            # Anomalies strictly below each candidate: a search in the (few) anomalies' sorted densities.
            true_positives = np.searchsorted(np.sort(p_host[truth]), thresholds, side="left")
        else:  # the weight strictly below each candidate, of all points and of the anomalies
            below = np.flatnonzero(first)
            flagged = np.concatenate([[0.0], np.cumsum(weights[order])])[below]
            true_positives = np.concatenate([[0.0], np.cumsum((weights * truth)[order])])[below]
        # 0 where nothing is flagged; a flagged weight below 1 is a real denominator (weights of 0.25 gave 0.25)
        precision = np.divide(true_positives, flagged, out=np.zeros(thresholds.shape[0]), where=flagged > 0)
        recall = true_positives / n_anomalies
        f1 = 2.0 * true_positives / (flagged + n_anomalies)
        best = int(np.argmax(f1))
        return ThresholdSelection(float(thresholds[best]), float(f1[best]), thresholds, precision, recall, f1, on)


def _scores_on_host(p: Any) -> np.ndarray:
    array = np.asarray(backends.to_numpy(p), dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"p must be 1-D (one density per sample); got shape {array.shape}")
    return array


def _refuse_constant_features(ctx: backends.ComputeContext, X: Any, weights: Any, scale: Any, variance: Any) -> None:
    """A constant feature (max = min over the rows of positive weight; a column of 0.1 has σ² ~ 1e-32 from the
    rounding of its mean) has no density; nor has one whose σ² overflows or underflows the float type."""
    xp = ctx.xp
    if weights is None:
        high, low = xp.max(X, axis=0), xp.min(X, axis=0)
    else:
        counted = xp.reshape(weights > 0, (-1, 1))
        high = xp.max(xp.where(counted, X, xp.full_like(X, -xp.inf)), axis=0)
        low = xp.min(xp.where(counted, X, xp.full_like(X, xp.inf)), axis=0)
    flags = xp.stack([xp.astype(high == low, scale.dtype), scale, variance])
    constant, sigma, sigma2 = ctx.read(flags, "constant features")
    if not np.all(np.isfinite(sigma2)):  # finite X whose squares overflow: not a NaN density
        raise squares_overflow(ctx, X, "GaussianAnomalyDetection's variance")
    if constant.any():
        raise ValueError(
            f"feature(s) {np.flatnonzero(constant).tolist()} of X are constant (one value in every row), so the "
            "density is degenerate; drop those columns or add more varied data"
        )
    tiny = np.flatnonzero(sigma2 < float(xp.finfo(scale.dtype).smallest_normal))
    if tiny.size:
        raise ValueError(
            f"feature(s) {tiny.tolist()} of X vary too little for their variance to be a {backends.dtype_name(X.dtype)}"
            f" (σ = {sigma[tiny].tolist()}, σ² below the smallest normal number); standardise those columns first "
            "(subtract their mean, divide by their σ)"
        )


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
    # Lⱼⱼ / √Σⱼⱼ is the part of feature j's spread that the features before it do not explain: the Cholesky
    # pivots of the correlation matrix, so the test does not depend on the features' units (against the largest
    # pivot, an income in currency units beside a rate was "singular"). Some libraries return NaN instead of
    # raising; a pivot at rounding level is singular too.
    unexplained = xp.linalg.diagonal(factor) / xp.sqrt(xp.linalg.diagonal(covariance))
    finite, smallest = (
        float(v)
        for v in ctx.read(
            xp.stack([xp.astype(xp.all(xp.isfinite(factor)), unexplained.dtype), xp.min(unexplained)]),
            "covariance pivots",
        )
    )
    # Below 100 √ε: the correlation matrix's condition number is over 1/(100 √ε)² (4e11 in float64).
    if not (finite and math.isfinite(smallest)) or smallest <= 100.0 * math.sqrt(float(xp.finfo(covariance.dtype).eps)):
        raise failed()
    return factor
