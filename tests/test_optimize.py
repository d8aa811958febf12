"""The shared optimisers against closed forms: quadratics, Rosenbrock, the Wolfe conditions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from hml import backends
from hml.exceptions import ConvergenceWarning
from hml.optimize import (
    _Line,
    _Point,
    _wolfe_step,
    check_gradient,
    conjugate_gradient,
    gradient_descent,
    largest_curvature,
    lbfgs,
    minibatch_gradient_descent,
)


def quadratic(case, n=12, seed=0, shape=None):
    """J(θ) = ½ θᵀAθ − bᵀθ with A symmetric positive definite: the minimiser solves Aθ = b."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    A = M @ M.T + 0.5 * np.eye(n)
    b = rng.normal(size=n)
    A_d, b_d = case.asarray(A), case.asarray(b)
    xp = case.xp
    shape = shape or (n,)

    def objective(theta):
        t = xp.reshape(theta, (n,))
        gradient = A_d @ t - b_d
        cost = 0.5 * xp.vecdot(t, A_d @ t) - xp.vecdot(b_d, t)
        return cost, xp.reshape(gradient, shape)

    return objective, np.linalg.solve(A, b).reshape(shape)


@pytest.mark.parametrize("method", [lbfgs, conjugate_gradient])
@pytest.mark.parametrize("shape", [(12,), (4, 3)])
def test_quasi_newton_solves_a_quadratic(case64, method, shape):
    objective, solution = quadratic(case64, shape=shape)
    theta0 = case64.xp.zeros(shape, dtype=case64.xp.float64, device=case64.ctx.device)
    result = method(objective, theta0, ctx=case64.ctx, max_iter=500, tol=1e-10)
    assert result.converged
    np.testing.assert_allclose(case64.to_numpy(result.theta), solution, atol=1e-7)
    costs = case64.to_numpy(result.cost_history)
    assert costs.shape == (result.n_iter + 1,) and np.all(np.diff(costs) <= 1e-12)  # monotone: sufficient decrease


@pytest.mark.parametrize("method", [lbfgs, conjugate_gradient])
def test_rosenbrock(method):
    ctx = backends.resolve("numpy")

    def rosenbrock(t):
        x, y = t[0], t[1]
        cost = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        return np.asarray(cost), np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])

    result = method(rosenbrock, np.array([-1.2, 1.0]), ctx=ctx, max_iter=1000, tol=1e-9)
    np.testing.assert_allclose(result.theta, [1.0, 1.0], atol=1e-5)


def test_wolfe_step_satisfies_both_conditions():
    ctx = backends.resolve("numpy")

    def objective(t):  # φ(α) = J(θ + αd) with a minimum far from α = 1
        return np.asarray(np.sum(np.cosh(t - 3.0))), np.sinh(t - 3.0)

    theta, direction = np.zeros(3), np.ones(3)
    f0, g0 = objective(theta)
    slope0 = float(g0 @ direction)
    for c2 in (0.9, 0.1):
        line = _Line(objective, ctx, theta, direction)
        first, _ = line.start(1.0)
        step = _wolfe_step(line, _Point(0.0, float(f0), slope0), first, 1e-4, c2)
        alpha, f, slope = step.alpha, step.f, step.slope
        assert f <= float(f0) + 1e-4 * alpha * slope0
        assert abs(slope) <= c2 * abs(slope0)
        assert f == pytest.approx(float(objective(theta + alpha * direction)[0]))


def test_lbfgs_warns_when_max_iter_is_too_small(case64):
    objective, _ = quadratic(case64)
    theta0 = case64.xp.zeros(12, dtype=case64.xp.float64, device=case64.ctx.device)
    with pytest.warns(ConvergenceWarning, match=r"lbfgs did not reach tol=1e-12 .* max_iter=2"):
        result = lbfgs(objective, theta0, ctx=case64.ctx, max_iter=2, tol=1e-12)
    assert result.n_iter == 2 and not result.converged


def test_minibatch_with_one_batch_and_no_momentum_is_gradient_descent():
    ctx = backends.resolve("numpy")
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(40, 3)), rng.normal(size=40)

    def batch_objective(theta, rows=None):
        A, t = (Z, y) if rows is None else (Z[rows], y[rows])
        r = A @ theta - t
        return np.asarray(0.5 * r @ r / len(t)), A.T @ r / len(t)

    full = gradient_descent(batch_objective, np.zeros(3), ctx=ctx, learning_rate=0.1, max_iter=20)
    batch = minibatch_gradient_descent(
        batch_objective,
        np.zeros(3),
        ctx=ctx,
        n_samples=40,
        batch_size=40,
        learning_rate=0.1,
        max_iter=20,
        rng=np.random.default_rng(1),
    )
    np.testing.assert_allclose(batch.theta, full.theta, rtol=1e-12)
    np.testing.assert_allclose(batch.cost_history, full.cost_history, rtol=1e-12)


def test_momentum_is_the_heavy_ball_recursion():
    ctx = backends.resolve("numpy")
    objective = lambda theta, rows=None: (np.asarray(0.5 * theta @ theta), theta.copy())  # noqa: E731
    result = minibatch_gradient_descent(
        objective,
        np.array([1.0]),
        ctx=ctx,
        n_samples=1,
        batch_size=1,
        learning_rate=0.1,
        momentum=0.5,
        max_iter=3,
        rng=np.random.default_rng(0),
    )
    theta, velocity = 1.0, 0.0
    for _ in range(3):
        velocity = 0.5 * velocity - 0.1 * theta
        theta += velocity
    assert result.theta[0] == pytest.approx(theta, rel=1e-14)


def test_check_gradient_tells_right_from_wrong(case64):
    objective, _ = quadratic(case64, n=5)
    theta = case64.asarray(np.linspace(-1.0, 1.0, 5))
    assert check_gradient(objective, theta, ctx=case64.ctx) < 1e-8

    def wrong(t):
        cost, gradient = objective(t)
        return cost, 1.01 * gradient

    assert check_gradient(wrong, theta, ctx=case64.ctx) > 1e-3


def test_float32_quadratic(case):
    if case.lazy:
        pytest.skip("covered in float64")
    objective, solution = quadratic(case, n=6)
    xp = case.xp
    theta0 = xp.zeros(6, dtype=xp.float32, device=case.ctx.device)

    def f32(t):
        return tuple(
            xp.astype(v, xp.float32) for v in objective(xp.astype(t, case.xp.float64 if case.float64 else xp.float32))
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = lbfgs(f32, theta0, ctx=case.ctx, max_iter=200, tol=1e-4)
    np.testing.assert_allclose(case.to_numpy(result.theta), solution, rtol=1e-2, atol=1e-2)
    assert math.isfinite(float(case.to_numpy(result.cost_history)[-1]))


def test_separable_costs_keep_their_parts_on_every_optimiser(case64):
    """An objective returning its cost as parts Jₖ is minimised as Σₖ Jₖ, with each part's history."""
    xp = case64.xp
    targets = case64.asarray(np.array([1.0, -2.0, 3.0]))

    def objective(theta):  # Jₖ = (θₖ − tₖ)², separable
        difference = theta - targets
        return difference * difference, 2.0 * difference

    theta0 = xp.zeros(3, dtype=xp.float64, device=case64.ctx.device)
    for result in (
        gradient_descent(objective, theta0, ctx=case64.ctx, learning_rate=0.25, max_iter=40),
        lbfgs(objective, theta0, ctx=case64.ctx, max_iter=30),
        conjugate_gradient(objective, theta0, ctx=case64.ctx, max_iter=30),
    ):
        parts, total = case64.to_numpy(result.cost_parts), case64.to_numpy(result.cost_history)
        assert parts.shape == (total.shape[0], 3)
        np.testing.assert_allclose(parts.sum(axis=1), total, rtol=1e-14)
        np.testing.assert_allclose(parts[0], [1.0, 4.0, 9.0])
        np.testing.assert_allclose(case64.to_numpy(result.theta), [1.0, -2.0, 3.0], atol=1e-4)
    # Gradient descent on a separable problem: part k decays as (1 − 2α)^(2j) tₖ², on its own.
    gd = gradient_descent(objective, theta0, ctx=case64.ctx, learning_rate=0.1, max_iter=5)
    expected = np.outer(0.8 ** (2 * np.arange(5)), [1.0, 4.0, 9.0])
    np.testing.assert_allclose(case64.to_numpy(gd.cost_parts), expected, rtol=1e-12)
    scalar = gradient_descent(
        lambda t: (xp.sum(objective(t)[0]), objective(t)[1]), theta0, ctx=case64.ctx, learning_rate=0.1, max_iter=5
    )
    assert scalar.cost_parts is None


def test_progress_reports_every_iteration_without_reading_the_device():
    from hml.optimize import progress

    ctx = backends.resolve("numpy")
    scales = np.linspace(1.0, 3.0, 12)

    def objective(theta):  # J = ½ Σ sₖ (θₖ − 1)²
        return np.asarray(0.5 * np.sum(scales * (theta - 1.0) ** 2)), scales * (theta - 1.0)

    seen = []
    with progress(lambda iteration, max_iter: seen.append((type(iteration), iteration, max_iter))):
        gradient_descent(objective, np.zeros(12), ctx=ctx, learning_rate=0.01, max_iter=25)
    assert seen == [(int, i, 25) for i in range(1, 26)]
    seen.clear()
    with progress(lambda iteration, max_iter: seen.append(iteration)):
        result = lbfgs(objective, np.zeros(12), ctx=ctx, max_iter=200, tol=1e-8)
    assert seen == list(range(1, result.n_iter + 1))
    seen.clear()
    gradient_descent(objective, np.zeros(12), ctx=ctx, learning_rate=0.01, max_iter=3)
    assert seen == []  # outside the block nothing reports


def test_minibatch_descent_warns_when_max_iter_ends_an_unconverged_fit():
    """As batch descent does: a tol that max_iter does not reach gets a ConvergenceWarning (and none without tol)."""
    import warnings

    import hml

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = hml.MultilayerPerceptron(layers=[4, 6, 2], batch_size=32, max_iter=2, tol=1e-12, random_state=0)
    with pytest.warns(
        hml.ConvergenceWarning, match=r"mini-batch gradient descent did not reach tol=1e-12 in max_iter=2"
    ):
        model.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", hml.ConvergenceWarning)
        model.set_params(tol=None).fit(X, y)


# -- tol: one rule for every optimiser, ‖∇J(θ_k)‖∞ ≤ tol · ‖∇J(θ₀)‖∞ ---------------------------
def _least_squares(scale, seed=3):
    """J(θ) = 1/(2m) ‖Xθ − y‖² with y multiplied by ``scale``; its exact gradient on the host, for checking."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 5)) + np.array([0.0, 1.0, 0.0, -1.0, 0.0])
    y = scale * (X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(size=200))
    ctx = backends.resolve("numpy")

    def gradient(theta):
        return X.T @ (X @ theta - y) / X.shape[0]

    def objective(theta):
        residual = X @ theta - y
        return 0.5 * residual @ residual / X.shape[0], X.T @ residual / X.shape[0]

    return objective, gradient, ctx


def _run(method, objective, ctx, tol):
    theta0 = np.zeros(5)
    if method == "gd":
        return gradient_descent(objective, theta0, ctx=ctx, learning_rate=0.1, max_iter=20_000, tol=tol)
    if method == "sgd":  # one batch per epoch: the epoch's mean batch gradient is ∇J, so the rule is exact
        return minibatch_gradient_descent(
            lambda theta, rows: objective(theta),
            theta0,
            ctx=ctx,
            n_samples=200,
            batch_size=200,
            learning_rate=0.1,
            max_iter=20_000,
            rng=np.random.default_rng(0),
            tol=tol,
        )
    return {"lbfgs": lbfgs, "cg": conjugate_gradient}[method](objective, theta0, ctx=ctx, max_iter=500, tol=tol)


@pytest.mark.parametrize("method", ["gd", "sgd", "lbfgs", "cg"])
@pytest.mark.parametrize("tol", [1e-3, 1e-6])
def test_tol_is_the_gradient_relative_to_its_start_for_every_method(method, tol):
    objective, gradient, ctx = _least_squares(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = _run(method, objective, ctx, tol)
    assert result.converged
    start = np.max(np.abs(gradient(np.zeros(5))))
    # Gradient descent stops one step after the θ it tested (the update is already made), and
    # on a convex quadratic with α < 2/λ_max a step does not undo the progress: the returned θ
    # meets the rule too. Line-search methods may also stop on rounding noise, never above tol.
    assert np.max(np.abs(gradient(result.theta))) <= tol * start
    if method in ("gd", "sgd"):  # ... and not long after: the previous check had not met it
        assert result.n_iter > 10


@pytest.mark.parametrize("method", ["gd", "sgd", "lbfgs", "cg"])
def test_tol_does_not_depend_on_the_scale_of_the_data(method):
    """An absolute gradient test would stop y × 1e-6 at once (a model of zeros) and never stop y × 1e6."""
    results = {}
    for scale in (1e-6, 1.0, 1e6):
        objective, _, ctx = _least_squares(scale)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            results[scale] = _run(method, objective, ctx, 1e-6)
    exact_iterations = {result.n_iter for result in results.values()}
    assert len(exact_iterations) == 1 if method in ("gd", "sgd") else max(exact_iterations) - min(exact_iterations) <= 2
    for scale, result in results.items():
        np.testing.assert_allclose(result.theta / scale, results[1.0].theta, rtol=1e-4)


@pytest.mark.parametrize("method", ["gd", "lbfgs", "cg"])
def test_tol_none_runs_to_max_iter_without_a_warning(method):
    objective, _, ctx = _least_squares(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        if method == "gd":
            result = gradient_descent(objective, np.zeros(5), ctx=ctx, learning_rate=0.01, max_iter=37, tol=None)
            assert result.n_iter == 37 and not result.converged
        else:  # the line-search methods still stop where no step lowers the cost beyond rounding
            result = {"lbfgs": lbfgs, "cg": conjugate_gradient}[method](
                objective, np.zeros(5), ctx=ctx, max_iter=500, tol=None
            )
            assert result.converged and result.n_iter < 500


@pytest.mark.parametrize("method", ["gd", "sgd", "lbfgs", "cg"])
def test_an_unreached_tol_warns_with_how_far_the_gradient_fell(method):
    objective, gradient, ctx = _least_squares(1.0)
    theta0 = np.zeros(5)
    with pytest.warns(
        ConvergenceWarning,
        match=r"did not reach tol=1e-15 in max_iter=3 iterations: the largest "
        r"gradient component fell to [0-9.e-]+ of its start",
    ):
        if method == "gd":
            gradient_descent(objective, theta0, ctx=ctx, learning_rate=0.1, max_iter=3, tol=1e-15)
        elif method == "sgd":
            minibatch_gradient_descent(
                lambda theta, rows: objective(theta),
                theta0,
                ctx=ctx,
                n_samples=200,
                batch_size=50,
                learning_rate=0.1,
                max_iter=3,
                rng=np.random.default_rng(0),
                tol=1e-15,
            )
        else:
            {"lbfgs": lbfgs, "cg": conjugate_gradient}[method](objective, theta0, ctx=ctx, max_iter=3, tol=1e-15)


def test_largest_curvature_is_the_hessians_top_eigenvalue(case64):
    objective, _ = quadratic(case64)
    rng = np.random.default_rng(0)
    M = rng.normal(size=(12, 12))
    top = np.linalg.eigvalsh(M @ M.T + 0.5 * np.eye(12))[-1]  # the same A as quadratic()
    theta0 = case64.xp.zeros(12, dtype=case64.xp.float64, device=case64.ctx.device)
    estimate = largest_curvature(objective, theta0, ctx=case64.ctx, iterations=60)
    assert estimate <= top * (1 + 1e-12)  # a Rayleigh quotient: never above λ_max
    assert estimate == pytest.approx(top, rel=1e-3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: __import__("hml").LinearRegression(polynomial_degree=3, max_iter=2),
        lambda: __import__("hml").LogisticRegression(max_iter=2),
        lambda: __import__("hml").LogisticRegression(solver="gd", max_iter=2),
        lambda: __import__("hml").MultilayerPerceptron(layers=[4, 5, 3], max_iter=2, random_state=0),
        lambda: __import__("hml").MultilayerPerceptron(layers=[4, 5, 3], max_iter=2, batch_size=16, random_state=0),
    ],
    ids=["linear", "logistic-lbfgs", "logistic-gd", "mlp-gd", "mlp-minibatch"],
)
def test_every_iterative_estimator_warns_by_default_when_max_iter_ends_the_fit(make):
    """No estimator defaults to tol=None (the silent underfit); the warning points at the caller's fit line."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    model = make()
    assert model.tol is not None
    with pytest.warns(ConvergenceWarning, match="did not reach tol=0.0001 in max_iter=2") as record:
        model.fit(X, y)
    assert record[0].filename == __file__
