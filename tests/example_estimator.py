"""A small estimator written outside the hml package, the way a new one is written: ridge regression.

It follows the library's contract and nothing more -- hyper-parameters declared with
:func:`hml._params.param`, ``fit`` from the validated values (``self._validated``), ``X``
validated once at fit (``_validate_fit_X``) and against the fit afterwards (``_validate_X``),
the fitted state rebound at the end (``_remember_input`` last), outputs mirrored into the
input's namespace -- and it is written against the array API only, so it runs on every
backend. Being in ``tests/estimators.py``'s ``SPECS`` puts it through every cross-cutting
test (scikit-learn's ``check_estimator``, the sync guards and read counts, saving and
loading on every pair of backends, interrupted fits, Dask and ``dask.distributed``, input
validation, the numerical range); ``test_example_estimator.py`` checks what it computes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import array_api_compat

import hml
from hml import backends, kernels
from hml._array import check_y, squares_overflow_if_any
from hml._params import Real, param
from hml.base import BaseEstimator


class RidgeRegression(BaseEstimator):
    """Ridge regression from the regularised normal equation: w, b minimising ‖Xw + b − y‖² + λ‖w‖².

    The intercept b is not penalised, so the optimum is the ridge solution of the centred data,
    (X̄ᵀX̄ + λI) w = X̄ᵀȳ with X̄ = X − mean(X), ȳ = y − mean(y), and b = mean(y) − mean(X)·w --
    scikit-learn's ``Ridge(alpha=λ)``. X is used as it is (not standardised).

    Attributes
    ----------
    coef_ : array of shape (n_features,)
        w, on the compute device.
    intercept_ : 0-d array
        b.
    n_features_in_ : int
    """

    _estimator_type: ClassVar[str] = "regressor"

    l2: float = param(
        default=1.0,
        rule=Real(),
        doc="λ, the penalty on ‖w‖² (scikit-learn's ``alpha``); 0 is least squares, singular for collinear X.",
    )

    def fit(self, X: Any, y: Any) -> RidgeRegression:
        """Fit w and b on ``X`` (n_samples × n_features) and targets ``y`` (n_samples,)."""
        p = self._validated
        fit_input = self._validate_fit_X(X, p)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        y = check_y(y, ctx, n_samples=X.shape[0], dtype=X.dtype)
        # Each value used by two computations is computed once, now (a no-op but on Dask, where a
        # graph computed in two calls reuses its keys with different task fusion).
        x_mean, y_mean = ctx.backend.materialize(xp.mean(X, axis=0), xp.mean(y))
        centred = X - x_mean
        d = X.shape[1]
        gram = centred.T @ centred + p.l2 * xp.eye(d, dtype=X.dtype, device=array_api_compat.device(X))
        rhs = xp.reshape((y - y_mean) @ centred, (d, 1))  # a column: the standard's solve reads a 1-D rhs ambiguously
        try:
            (w,) = ctx.backend.materialize(xp.reshape(kernels.solve(gram, rhs), (d,)))
            # One documented read: a GPU library reports a failed solve as NaN, not by raising.
            solved = bool(ctx.read(xp.all(xp.isfinite(w)), "normal equation solved"))
        except (ValueError, RuntimeError):  # NumPy's LinAlgError is a ValueError, torch's a RuntimeError
            solved = False
        if not solved:  # X's squares overflow, or the system is singular (l2=0)
            raise squares_overflow_if_any(ctx, X, "RidgeRegression") or ValueError(
                "RidgeRegression: the normal equations are singular (collinear or constant features with l2=0); "
                "set l2 > 0"
            )
        # Only now, with nothing left to fail, is the estimator changed.
        self.coef_ = w
        self.intercept_ = y_mean - xp.vecdot(x_mean, w)
        self._remember_input(fit_input)
        return self

    def predict(self, X: Any) -> Any:
        """ŷ = Xw + b, in the namespace and on the device of ``X``."""
        _, Xc = self._validate_X(X)
        return backends.mirror(Xc @ self.coef_ + self.intercept_, X)

    def score(self, X: Any, y: Any) -> float:
        """R² of the predictions for ``X`` against ``y`` (see :func:`hml.metrics.r2_score`)."""
        return hml.metrics.r2_score(y, self.predict(X))


# hml registers only its own classes (a saved file may name no other): an estimator defined
# elsewhere says so itself, and then saves and loads like the library's.
hml.persistence.register(RidgeRegression)
