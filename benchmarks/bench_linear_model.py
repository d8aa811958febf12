"""LinearRegression: the gradient-descent iteration against its two matrix-vector products, and whole fits.

The floor (foundation issue): one iteration on a 1,000,000 × 64 float64 NumPy
matrix costs at most 1.15× the two products ``X @ θ`` and ``r @ X`` it needs,
measured in the same run -- ``track_step_over_matvecs`` reports that ratio.
"""

from __future__ import annotations

import hml
from hml.linear_model import linear_regression_objective
from hml.optimize import Evaluation, GradientDescent, minimize

from .common import LABELS, context, interleaved_ratio, peer, regression_data, sizes

#: Iterations per timed call: the optimiser reads the cost back once per 10 iterations.
ITERATIONS = 10


def start(objective, theta, ctx):
    """J and ∇J at θ, evaluated once in setup: a timed call is then exactly its iterations (a fit
    also evaluates J(θ₀) once, which ``LinearRegressionFit`` includes)."""
    return Evaluation(theta, *ctx.backend.materialize(*objective(theta)))


class LinearRegressionStep:
    """One gradient-descent iteration (through the real optimiser loop) vs. the two bare products."""

    params = (LABELS, sizes(["10000x64", "1000000x64"], ["10000x64"]), ["float64", "float32"])
    param_names = ["backend", "shape", "dtype"]
    timeout = 600

    def setup(self, label, shape, dtype):
        m, n = map(int, shape.split("x"))
        self.ctx = ctx = context(label)
        xp = ctx.xp
        X, y = regression_data(m, n)
        self.dtype = getattr(xp, dtype)
        self.X = ctx.backend.materialize(ctx.asarray(X, self.dtype))[0]
        self.y = ctx.backend.materialize(ctx.asarray(y, self.dtype))[0]
        self.objective = linear_regression_objective(self.X, self.y, 0.5, xp)
        self.theta0 = xp.zeros(n + 1, dtype=self.dtype, device=ctx.device)
        self.w = xp.full(n, 0.01, dtype=self.dtype, device=ctx.device)
        self.start = start(self.objective, self.theta0, ctx)

    def _iterations(self):
        minimize(
            self.objective,
            self.theta0,
            ctx=self.ctx,
            rule=GradientDescent(0.1),
            max_iter=ITERATIONS,
            tol=None,
            start=self.start,
        )

    def _two_matvecs(self):
        residual = self.X @ self.w
        gradient = residual @ self.X
        self.ctx.backend.materialize(gradient)

    def time_10_iterations(self, *args):
        self._iterations()
        self.ctx.backend.synchronize(self.ctx.device)

    def time_10x_two_matvecs(self, *args):
        for _ in range(ITERATIONS):
            self._two_matvecs()
        self.ctx.backend.synchronize(self.ctx.device)

    def track_step_over_matvecs(self, *args):
        """Time of one iteration / time of the two products, timed alternately in one process."""
        return interleaved_ratio(self.ctx, self._iterations, self.time_10x_two_matvecs)

    track_step_over_matvecs.unit = "ratio"


class LinearRegressionFit:
    """Whole fits, validation and feature expansion included."""

    params = (LABELS, sizes(["10000x16", "200000x64"], ["10000x16"]))
    param_names = ["backend", "shape"]
    timeout = 600

    def setup(self, label, shape):
        m, n = map(int, shape.split("x"))
        self.ctx = ctx = context(label)
        X, y = regression_data(m, n)
        self.X, self.y = ctx.asarray(X), ctx.asarray(y)

    def time_fit_gd_100_iterations(self, label, shape):
        hml.LinearRegression(learning_rate=0.1, max_iter=100, tol=None).fit(self.X, self.y)  # a fixed 100 steps
        self.ctx.backend.synchronize(self.ctx.device)

    def time_fit_normal_equation(self, label, shape):
        hml.LinearRegression(solver="normal", l2=1.0).fit(self.X, self.y)
        self.ctx.backend.synchronize(self.ctx.device)


class NormalEquationVsScikitLearn:
    """The normal-equation solver beside its peer, scikit-learn's Ridge(solver='cholesky'), on NumPy data."""

    params = (sizes(["10000x16", "200000x64", "1000000x64"], ["10000x16"]),)
    param_names = ["shape"]
    timeout = 600

    def setup(self, shape):
        self.ridge = peer("sklearn.linear_model", "scikit-learn").Ridge(alpha=1.0, solver="cholesky")
        self.ctx = context("numpy")
        self.X, self.y = regression_data(*map(int, shape.split("x")))

    def time_hml(self, shape):
        hml.LinearRegression(solver="normal", l2=1.0, normalize=False).fit(self.X, self.y)

    def time_sklearn(self, shape):
        self.ridge.fit(self.X, self.y)

    def track_hml_over_sklearn(self, shape):
        return interleaved_ratio(self.ctx, lambda: self.time_hml(shape), lambda: self.time_sklearn(shape), rounds=5)

    track_hml_over_sklearn.unit = "ratio"
