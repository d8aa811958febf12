"""The linear models' costs and gradients, and the normal equation: the formulas :mod:`hml.linear_model` fits.

Each takes optional sample weights (:class:`hml._array.SampleWeight`): ŝᵢ, normalised to mean 1,
multiply each row's term, and Σs replaces m in the penalty, so that a row of weight k counts as
k copies of it and a row of weight 0 as none.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from hml import backends, kernels
from hml._array import SampleWeight
from hml.exceptions import ConvergenceWarning, warn
from hml.numerics import column_sums, log_sigmoid_terms, moments, softmax_terms, tall_gram, tall_matmul
from hml.optimize import Objective

__all__ = ["linear_regression_objective", "logistic_objective", "normal_equation", "warn_if_badly_scaled"]

#: κ̂ above which gradient descent's relative gradient can meet tol far from the minimum.
BADLY_SCALED = 1e4


def linear_regression_objective(
    Z: Any, y: Any, l2: float, xp: Any, weights: SampleWeight | None = None, fit_intercept: bool = True
) -> Objective:
    """The cost J(θ) of :class:`hml.LinearRegression` and its gradient, for θ = [b, w] (intercept first),
    from one residual r = Zw + b − y: the formulas of that class's Notes (weighted, with ``weights``).
    Without an intercept, ∂J/∂b = 0: b stays where it starts, at 0.

    The residual feeds both the gradient and the cost, so the cost history costs
    no extra pass over Z: one iteration is the two matrix-vector products
    ``Z @ w`` and ``r @ Z`` plus O(m) vector work, in ``_residual_sums`` over row
    blocks (:func:`hml.backends.reduce_rows`), summed.
    """
    m = Z.shape[0]
    inv_m = 1.0 / m
    reg = l2 / (m if weights is None else weights.total)
    # Blocks of a quarter of the working memory, so ``r @ Zb`` reads the block ``Zb @ w`` has
    # just brought into cache: one read of Z from memory per iteration instead of two.
    row_bytes = 4 * (4 if Z.dtype == xp.float32 else 8) * max(1, Z.shape[1])
    out = {"squares": backends.Sum((), Z.dtype), "sums": backends.Sum((Z.shape[1] + 1,), Z.dtype)}

    def objective(theta: Any) -> tuple[Any, Any]:
        # The weights are a row array beside Z and y, or None in their place among the shared arguments.
        rows, shared = ([Z, y], (None, theta)) if weights is None else ([Z, y, weights.normalised], (theta,))
        parts = backends.reduce_rows(_residual_sums, rows, shared, out=out, row_bytes=row_bytes)
        cost = (0.5 * inv_m) * parts.squares
        gradient = inv_m * parts.sums
        if l2:  # skipped, not multiplied by zero: on a lazy backend each operation is graph to build
            w = theta[1:]
            cost = cost + (0.5 * reg) * xp.sum(w * w)
            gradient = gradient + reg * xp.concat([xp.zeros_like(theta[:1]), w])
        if not fit_intercept:
            gradient = xp.concat([xp.zeros_like(gradient[:1]), gradient[1:]])
        return cost, gradient

    return objective


def _residual_sums(Z: Any, y: Any, weights: Any, theta: Any) -> tuple[Any, Any]:
    """On these rows, r = Zw + b − y for θ = [b, w]: (‖r‖², [Σr, Zᵀr]) -- with sample weights ŝ,
    (Σ ŝr², [Σ ŝr, Zᵀ(ŝr)]) -- in Z's own library.

    [Σr, Zᵀr] is m times the data term of ∇J, built per block as one vector: on a lazy backend
    the gradient is then one chunk, not an intercept and a weights chunk that the next
    iteration's θ would have to merge (a task, and a round of the scheduler, per iteration).
    """
    xp = array_api_compat.array_namespace(Z)
    # In place: a fresh m-vector per operation costs measurably (allocation and page faults).
    residual = Z @ theta[1:]
    residual -= y
    residual += theta[0]
    weighted = residual if weights is None else weights * residual
    return xp.vecdot(weighted, residual), xp.concat([xp.reshape(xp.sum(weighted), (1,)), weighted @ Z])


def normal_equation(
    Z: Any,
    y: Any,
    l2: float,
    ctx: backends.ComputeContext,
    weights: SampleWeight | None = None,
    fit_intercept: bool = True,
) -> Any:
    """θ = [b, w] minimising J, from the regularised normal equation.

    With the intercept unregularised, the optimum is the ridge solution on centred
    data: (Z̄ᵀZ̄ + λI) w = Z̄ᵀȳ with Z̄ = Z − mean(Z), ȳ = y − mean(y), then
    b = mean(y) − mean(Z)·w. Centring keeps the system well conditioned when the
    features are far from zero. With λ = 0 and Z̄ of any rank (collinear or constant
    features, fewer samples than features), w = (Z̄ᵀZ̄)⁺ Z̄ᵀȳ: the least-squares solution
    of minimum norm, as ``numpy.linalg.lstsq`` and scikit-learn's ``LinearRegression`` give
    it (:func:`hml.kernels.least_norm_solve`), to the precision of Z̄ᵀZ̄: a direction of Z̄ below about
    10⁻⁸√d of the strongest counts as rank deficiency (standardised features, ``normalize=True``, keep
    polynomial ones far from that); with a λ > 0 up to √ε tr Z̄ᵀZ̄, the same with λ added to the eigenvalues
    it keeps (the ridge on the directions Z̄ᵀZ̄ determines). A larger λ makes the system positive definite
    enough for a linear solve. With sample weights: the weighted means, and
    (Z̄ᵀŜZ̄ + λ m/Σs I) w = Z̄ᵀŜȳ -- the normal equation of the weighted J, times m/Σs.
    """
    xp = ctx.xp
    m, n = Z.shape
    if weights is None:
        z_mean, y_mean = xp.mean(Z, axis=0), xp.mean(y)
    else:
        s = weights.normalised
        z_mean, y_mean = (s @ Z) / float(m), xp.vecdot(s, y) / float(m)
        l2 = l2 * m / weights.total
    if not fit_intercept:  # b = 0: nothing to centre around
        z_mean, y_mean = xp.zeros_like(z_mean), xp.zeros_like(y_mean)
    Zc, yc = Z - z_mean, y - y_mean
    weighted = Zc if weights is None else Zc * xp.reshape(weights.normalised, (-1, 1))
    gram = weighted.T @ Zc
    rhs = xp.reshape(yc @ weighted, (n, 1))
    try:
        # λ > 0 makes the system positive definite: a linear solve -- unless λ is below √ε of the trace, where
        # the rounding of Z̄ᵀZ̄ (about ε of it) along a collinear pair's null direction is not small beside λ and
        # LU divides it by λ (l2=1e-14 gave x and 2x the weights [−1.125, 2.0625]; the ridge's are [0.6, 1.2]).
        # There, and for λ = 0: the eigendecomposition, λ added on the directions Z̄ᵀZ̄ determines.
        if l2 > 0.0 and l2 > math.sqrt(float(xp.finfo(Z.dtype).eps)) * float(
            ctx.read(xp.sum(xp.linalg.diagonal(gram)), "normal equation scale")
        ):
            eye = xp.eye(n, dtype=Z.dtype, device=array_api_compat.device(Z))
            w = xp.reshape(kernels.solve(gram + l2 * eye, rhs), (n,))
        else:
            w = xp.reshape(kernels.least_norm_solve(gram, rhs, shift=l2), (n,))
    except (ValueError, RuntimeError) as exc:  # numpy's LinAlgError is a ValueError, torch's a RuntimeError
        raise _singular() from exc
    if not bool(ctx.read(xp.all(xp.isfinite(w)), "normal equation solved")):
        raise _singular()
    b = y_mean - xp.vecdot(z_mean, w)
    return xp.concat([xp.reshape(b, (1,)), w])


def _singular() -> ValueError:
    # Not rank: every rank has its minimum-norm answer. A factorisation fails on non-finite sums.
    return ValueError(
        "solver='normal': the normal equations could not be solved (their sums are not finite); "
        "set normalize=True, or rescale X"
    )


def logistic_objective(
    Z: Any,
    Y: Any,
    l2: float,
    multinomial: bool,
    xp: Any,
    weights: SampleWeight | None = None,
    fit_intercept: bool = True,
) -> Objective:
    """The cost J(Θ) of :class:`hml.LogisticRegression` and its gradient, for Θ = [b; W] of shape (1 + n, K):
    the one-vs-all or multinomial cost of that class's Notes (weighted, with ``weights``).

    Logits z = ZW + b, every class in one GEMM. One-vs-all returns the K parts Jₖ (a 1-D cost; the
    optimisers minimise their sum and keep each class's history from the same pass).
    """
    m = Z.shape[0]
    inv_m = 1.0 / m
    reg = l2 / (m if weights is None else weights.total)
    s = None if weights is None else xp.reshape(weights.normalised, (-1, 1))

    def objective(theta: Any) -> tuple[Any, Any]:
        b, W = theta[:1, :], theta[1:, :]
        logits = tall_matmul(Z, W)
        logits += b
        if multinomial:
            normaliser, probability = softmax_terms(logits, xp)
            terms = normaliser - xp.sum(Y * logits, axis=1, keepdims=True) if s is not None else None
            data = xp.sum(normaliser) - xp.sum(Y * logits) if s is None else xp.sum(s * terms)
            cost = inv_m * data + 0.5 * reg * xp.sum(W * W)
        else:
            softplus, probability = log_sigmoid_terms(logits, xp)
            # Per class: column sums of the same terms (one pass), so the parts cost nothing extra.
            terms = softplus - Y * logits
            cost = inv_m * column_sums(terms if s is None else s * terms) + 0.5 * reg * xp.sum(W * W, axis=0)
        residual = probability - Y
        if s is not None:
            residual = s * residual
        grad_b = inv_m * xp.reshape(column_sums(residual), (1, -1))
        if not fit_intercept:  # b stays at its start, 0
            grad_b = xp.zeros_like(grad_b)
        grad_W = inv_m * tall_gram(Z, residual) + reg * W
        return cost, xp.concat([grad_b, grad_W], axis=0)

    return objective


def warn_if_badly_scaled(ctx: backends.ComputeContext, Z: Any, fit_intercept: bool, what: str) -> None:
    """Warn where gradient descent on the unstandardised features ``Z`` can stop far from the minimum.

    The Hessian of the cost is the features' second moments; without standardisation its condition number
    κ is at least κ̂ = max(spread², offset² + 1): spread, the largest root mean square √(μⱼ² + σⱼ²) of a column
    (the intercept's 1 among them) over the smallest; offset, the largest |μⱼ| / σⱼ, a column nearly a multiple
    of the intercept's. Gradient descent's error along the flattest direction falls by 1 − 1/κ a step, so
    ‖∇J‖∞ ≤ tol · ‖∇J(θ₀)‖∞ can hold after a few steps while the intercept has hardly moved (X in square feet:
    R² 0.969 against the least squares' 0.994, stopped after 10 iterations). One pass and one read."""
    mean, scale = (np.asarray(v) for v in ctx.read(ctx.xp.stack(moments(Z, ctx.xp)), "feature scales"))
    rms = np.sqrt(mean**2 + scale**2)
    varied = rms[rms > 0]
    if fit_intercept:
        varied = np.append(varied, 1.0)
    spread = float(varied.max() / varied.min()) if varied.size else 1.0
    offsets = np.abs(mean) / np.where(scale > 0, scale, np.inf) if fit_intercept else np.zeros(1)
    kappa = max(spread**2, float(offsets.max(initial=0.0)) ** 2 + 1.0)
    if kappa > BADLY_SCALED:
        warn(
            f"{what}: the features are badly scaled for gradient descent (their second moments' condition number "
            f"is at least {kappa:.2g}: root mean squares from {varied.min():.3g} to {varied.max():.3g}, a mean "
            f"{float(offsets.max(initial=0.0)):.3g} × its spread), so its relative gradient can meet tol far from "
            "the minimum. Keep normalize=True, or use another solver",
            ConvergenceWarning,
        )
