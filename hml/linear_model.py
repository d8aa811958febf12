"""Linear models, written once against the array API."""

from __future__ import annotations

from typing import Any

import array_api_compat

from hml import backends
from hml._array import check_choice, check_float, check_int, check_X, check_X_y, check_y
from hml.base import BaseEstimator
from hml.features import FeatureTransformer
from hml.metrics import _r2
from hml.optimize import gradient_descent

__all__ = ["LinearRegression", "linear_regression_objective"]


def linear_regression_objective(Z: Any, y: Any, l2: float, xp: Any):
    """The cost and its gradient for θ = [b, w] (intercept first), from one residual.

    r = Zw + b − y
    J(θ)   = 1/(2m) ‖r‖² + λ/(2m) ‖w‖²     (the intercept b is never regularised)
    ∂J/∂b  = 1/m Σ r
    ∂J/∂w  = 1/m Zᵀr + λ/m w

    The residual feeds both the gradient and the cost, so the cost history costs
    no extra pass over Z: one iteration is the two matrix-vector products
    ``Z @ w`` and ``r @ Z`` plus O(m) vector work.
    """
    m = Z.shape[0]
    inv_m = 1.0 / m
    reg = l2 * inv_m

    def objective(theta: Any) -> tuple[Any, Any]:
        b, w = theta[0], theta[1:]
        # In place: a fresh m-vector per operation costs ~6% of the iteration at 1e6 rows
        # (allocation and page faults). Libraries without in-place ops rebind instead.
        residual = Z @ w
        residual -= y
        residual += b
        cost = 0.5 * inv_m * xp.vecdot(residual, residual) + 0.5 * reg * xp.vecdot(w, w)
        grad_b = xp.reshape(inv_m * xp.sum(residual), (1,))
        grad_w = inv_m * (residual @ Z) + reg * w
        return cost, xp.concat([grad_b, grad_w])

    return objective


def normal_equation(Z: Any, y: Any, l2: float, xp: Any) -> Any:
    """θ = [b, w] minimising J, from the regularised normal equation.

    With the intercept unregularised, the optimum is the ridge solution on centred
    data: (Z̄ᵀZ̄ + λI) w = Z̄ᵀȳ with Z̄ = Z − mean(Z), ȳ = y − mean(y), then
    b = mean(y) − mean(Z)·w. Centring keeps the system well conditioned when the
    features are far from zero.
    """
    n = Z.shape[1]
    z_mean, y_mean = xp.mean(Z, axis=0), xp.mean(y)
    Zc, yc = Z - z_mean, y - y_mean
    gram = Zc.T @ Zc
    if l2 > 0.0:
        gram = gram + l2 * xp.eye(n, dtype=Z.dtype, device=array_api_compat.device(Z))
    rhs = xp.reshape(yc @ Zc, (n, 1))
    try:
        w = xp.reshape(xp.linalg.solve(gram, rhs), (n,))
    except (ValueError, RuntimeError) as exc:  # numpy's LinAlgError is a ValueError, torch's a RuntimeError
        raise _singular() from exc
    if not bool(xp.all(xp.isfinite(w))):
        raise _singular()
    b = y_mean - xp.vecdot(z_mean, w)
    return xp.concat([xp.reshape(b, (1,)), w])


def _singular() -> ValueError:
    return ValueError(
        "solver='normal': the normal equations are singular (collinear or constant features, "
        "or fewer samples than features); set l2 > 0 or use solver='gd'"
    )


class LinearRegression(BaseEstimator):
    """Linear regression by batch gradient descent or the normal equation.

    Minimises J(θ) = 1/(2m) ‖Zw + b − y‖² + λ/(2m) ‖w‖², where Z holds the
    (optionally normalised, polynomial and sinusoid) features of X -- see
    :class:`hml.features.FeatureTransformer` -- and λ = ``l2`` never touches the
    intercept b.

    Parameters
    ----------
    learning_rate : float, default 0.01
        Step α of gradient descent (the original project's ``alpha``).
    max_iter : int, default 500
        Gradient-descent iterations (an upper bound when ``tol`` is set).
    tol : float or None, default None
        Stop when the relative change of J over one iteration is at most ``tol``
        (checked every 10 iterations). ``None`` runs all ``max_iter`` iterations.
    l2 : float, default 0.0
        L2 regularisation strength λ (the original project's ``lambda``).
    solver : {"gd", "normal"}, default "gd"
        Batch gradient descent, or the closed-form regularised normal equation.
    polynomial_degree, sinusoid_degree : int, default 0
        Add monomials up to this degree / sin(k·x) for k up to this degree.
    normalize : bool, default True
        Standardise the features with the training statistics.
    backend, device : str, optional
        Where to compute: ``"numpy"``, ``"cupy"``, ``"torch"``, ``"dask"``,
        ``"array_api_strict"`` or ``"auto"``; ``None`` follows :func:`hml.use_backend`,
        :func:`hml.set_backend` and ``HML_BACKEND``.
    dtype : {"float32", "float64"} or None
        Computation precision; ``None`` keeps float32 input in float32 and uses float64 otherwise.

    Attributes
    ----------
    coef_ : array of shape (n_features_out,)
        Weights w of the transformed features (``feature_transformer_.get_feature_names_out()``).
    intercept_ : 0-d array
        The bias b.
    cost_history_ : array of shape (n_iter_,)
        J(θ_k) at the start of each iteration k (for ``solver="normal"``: the cost of the solution).
    n_iter_ : int
        Iterations run.
    n_features_in_ : int
    feature_transformer_ : FeatureTransformer

    Examples
    --------
    >>> import numpy as np
    >>> import hml
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> model = hml.LinearRegression(learning_rate=0.1, max_iter=1000).fit(X, y)
    >>> round(model.score(X, y), 6)
    1.0
    """

    _estimator_type = "regressor"

    def __init__(self, *, learning_rate=0.01, max_iter=500, tol=None, l2=0.0, solver="gd",
                 polynomial_degree=0, sinusoid_degree=0, normalize=True,
                 backend=None, device=None, dtype=None):
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.l2 = l2
        self.solver = solver
        self.polynomial_degree = polynomial_degree
        self.sinusoid_degree = sinusoid_degree
        self.normalize = normalize
        self.backend = backend
        self.device = device
        self.dtype = dtype

    def _transformer(self) -> FeatureTransformer:
        return FeatureTransformer(
            polynomial_degree=self.polynomial_degree,
            sinusoid_degree=self.sinusoid_degree,
            normalize=self.normalize,
        )

    def fit(self, X: Any, y: Any) -> "LinearRegression":
        """Fit θ on ``X`` (n_samples × n_features) and targets ``y`` (n_samples,)."""
        learning_rate = check_float(self.learning_rate, "learning_rate", positive=True)
        max_iter = check_int(self.max_iter, "max_iter", minimum=1)
        tol = check_float(self.tol, "tol", allow_none=True)
        l2 = check_float(self.l2, "l2")
        check_choice(self.solver, "solver", ("gd", "normal"))
        transformer = self._transformer()
        transformer._validate_hyperparameters()

        ctx = self._compute_context(X)
        xp = ctx.xp
        X, y = check_X_y(X, y, ctx, dtype=self.dtype)
        # Lazy backends (Dask) would otherwise recompute the features on every iteration.
        Z, y = ctx.backend.materialize(transformer._fit_transform(ctx, X), y)
        objective = linear_regression_objective(Z, y, l2, xp)
        if self.solver == "normal":
            theta = normal_equation(Z, y, l2, xp)
            cost_history, n_iter = xp.reshape(objective(theta)[0], (1,)), 1
        else:
            theta0 = xp.zeros(Z.shape[1] + 1, dtype=Z.dtype, device=ctx.device)
            result = gradient_descent(
                objective, theta0, ctx=ctx, learning_rate=learning_rate, max_iter=max_iter, tol=tol
            )
            theta, cost_history, n_iter = result.theta, result.cost_history, result.n_iter

        # Everything above may raise; only now is the estimator changed.
        self.feature_transformer_ = transformer
        self.intercept_, self.coef_ = theta[0], theta[1:]
        self.cost_history_, self.n_iter_ = cost_history, n_iter
        self.n_features_in_ = X.shape[1]
        self._ctx_ = ctx
        return self

    def _predict(self, X: Any) -> tuple[Any, Any]:
        ctx = self._fitted_context()
        Xc = check_X(X, ctx, dtype=self.coef_.dtype, n_features=self.n_features_in_)
        Z = self.feature_transformer_._transform(Xc, ctx.xp)
        return Z @ self.coef_ + self.intercept_, Xc

    def predict(self, X: Any) -> Any:
        """ŷ = Zw + b, in the namespace and on the device of ``X``."""
        prediction, _ = self._predict(X)
        return backends.mirror(prediction, X)

    def score(self, X: Any, y: Any) -> float:
        """R² of the predictions for ``X`` against ``y`` (see :func:`hml.metrics.r2_score`)."""
        prediction, Xc = self._predict(X)
        y = check_y(y, self._ctx_, n_samples=Xc.shape[0], dtype=prediction.dtype)
        return _r2(self._ctx_.xp, y, prediction)
