"""The shared optimisers against closed forms: quadratics, Rosenbrock, the Wolfe conditions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from hml import backends
from hml.exceptions import ConvergenceWarning
from hml.optimize import (
    check_gradient,
    conjugate_gradient,
    gradient_descent,
    largest_curvature,
    lbfgs,
    minibatch_gradient_descent,
)
from hml.optimize.line_search import Line, Point, wolfe_step


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
        line = Line(objective, ctx, theta, direction)
        first, _ = line.start(1.0)
        step = wolfe_step(line, Point(0.0, float(f0), slope0), first, 1e-4, c2)
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


def _least_squares_on_rows():
    """J(θ) = 1/(2m) ‖Aθ − t‖² on 40 random rows, or on the rows ``rows`` of them, and its gradient."""
    rng = np.random.default_rng(0)
    Z, y = rng.normal(size=(40, 3)), rng.normal(size=40)

    def batch_objective(theta, rows=None):
        A, t = (Z, y) if rows is None else (Z[rows], y[rows])
        r = A @ theta - t
        return np.asarray(0.5 * r @ r / len(t)), A.T @ r / len(t)

    return batch_objective


def test_minibatch_with_one_batch_and_no_momentum_is_gradient_descent():
    ctx = backends.resolve("numpy")
    batch_objective = _least_squares_on_rows()

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
    # Both start with J(θ₀); epoch k's one batch is evaluated where the epoch starts, at θ_{k-1}.
    assert batch.cost_history.shape == full.cost_history.shape == (21,)
    np.testing.assert_allclose(batch.cost_history[0], full.cost_history[0], rtol=1e-12)
    np.testing.assert_allclose(batch.cost_history[1:], full.cost_history[:-1], rtol=1e-12)


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
    expected = np.outer(0.8 ** (2 * np.arange(6)), [1.0, 4.0, 9.0])
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


@pytest.mark.parametrize("batch_size", [40, 16, 7])
def test_an_epochs_recorded_cost_is_the_row_weighted_mean(batch_size):
    """With a zero step θ stays put, so an epoch's mean batch cost must be J on all rows -- the short
    last batch (40 = 2·16 + 8, 5·7 + 5) weighing its rows, not a full batch's (the gradient's mean,
    which the tol test reads, is formed the same way)."""
    ctx = backends.resolve("numpy")
    batch_objective = _least_squares_on_rows()

    theta = np.array([0.5, -1.0, 2.0])
    result = minibatch_gradient_descent(
        batch_objective,
        theta,
        ctx=ctx,
        n_samples=40,
        batch_size=batch_size,
        learning_rate=0.0,
        max_iter=3,
        rng=np.random.default_rng(1),
        tol=None,
    )
    cost, _ = batch_objective(theta)
    np.testing.assert_allclose(result.cost_history, np.full(4, cost), rtol=1e-13)


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


@pytest.mark.parametrize("method", ["gd", "sgd", "lbfgs", "cg"])
def test_tol_none_runs_exactly_max_iter_iterations_without_a_warning(method):
    """No hidden rule: L-BFGS and CG too run every iteration (keeping θ once no step lowers J)."""
    objective, gradient, ctx = _least_squares(1.0)
    max_iter = 37 if method in ("gd", "sgd") else 500
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        if method == "gd":
            result = gradient_descent(objective, np.zeros(5), ctx=ctx, learning_rate=0.01, max_iter=37, tol=None)
        elif method == "sgd":
            result = minibatch_gradient_descent(
                lambda theta, rows: objective(theta),
                np.zeros(5),
                ctx=ctx,
                n_samples=200,
                batch_size=50,
                learning_rate=0.01,
                max_iter=37,
                rng=np.random.default_rng(0),
                tol=None,
            )
        else:
            result = {"lbfgs": lbfgs, "cg": conjugate_gradient}[method](
                objective, np.zeros(5), ctx=ctx, max_iter=500, tol=None
            )
    assert result.n_iter == max_iter and not result.converged and result.stop == "max_iter"
    assert result.cost_history.shape == (max_iter + 1,)
    if method in ("lbfgs", "cg"):  # long at the minimum: every later iteration kept θ
        start = np.max(np.abs(gradient(np.zeros(5))))
        assert np.max(np.abs(gradient(result.theta))) <= 1e-10 * start
        assert np.ptp(result.cost_history[-10:]) == 0.0


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


# -- the one loop's contract, held for every method and data source ------------------------------
from hml.optimize import (  # noqa: E402
    LBFGS,
    Adam,
    ConjugateGradient,
    GradientDescent,
    MiniBatches,
    Momentum,
    minimize,
)

RULES = {
    "gd": lambda: GradientDescent(0.1),
    "momentum": lambda: Momentum(0.05, 0.8),
    "adam": lambda: Adam(0.05),
    "lbfgs": lambda: LBFGS(),
    "cg": lambda: ConjugateGradient(),
}


def _batch_objective(objective):
    """The least-squares objective on a subset of its 200 rows (rows: indices or a slice)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 5)) + np.array([0.0, 1.0, 0.0, -1.0, 0.0])
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(size=200)

    def batch(theta, rows=None):
        A, t = (X, y) if rows is None else (X[rows], y[rows])
        residual = A @ theta - t
        return 0.5 * residual @ residual / len(t), A.T @ residual / len(t)

    return batch


@pytest.mark.parametrize("tol", [None, 1e-5])
@pytest.mark.parametrize("batched", [False, True], ids=["all-rows", "mini-batches"])
@pytest.mark.parametrize("method", list(RULES))
def test_every_method_keeps_the_result_contract(method, batched, tol):
    """cost_history = J(θ₀), …, J(θₙ) (n_iter + 1 entries, the first the cost at the start); tol=None
    runs exactly max_iter iterations; a fit that stops early says why, and its θ meets the rule."""
    objective, gradient, ctx = _least_squares(1.0)
    batch = _batch_objective(objective)
    max_iter = 60
    batches = MiniBatches(200, 50, np.random.default_rng(0)) if batched else None
    if batched and method in ("lbfgs", "cg"):
        with pytest.raises(ValueError, match="mini-batches take a step rule"):
            minimize(batch, np.zeros(5), ctx=ctx, rule=RULES[method](), max_iter=3, tol=tol, batches=batches)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = minimize(
            batch if batched else objective,
            np.zeros(5),
            ctx=ctx,
            rule=RULES[method](),
            max_iter=max_iter,
            tol=tol,
            batches=batches,
        )
    history = np.asarray(result.cost_history)
    assert history.shape == (result.n_iter + 1,)
    assert history[0] == pytest.approx(float(objective(np.zeros(5))[0]), rel=1e-12)
    if tol is None:
        assert result.n_iter == max_iter and result.stop == "max_iter" and not result.converged
    else:
        assert result.stop in ("tol", "cost change", "cost floor", "max_iter")
        assert result.converged == (result.stop != "max_iter")
        if result.stop == "tol" and not batched:
            start = np.max(np.abs(gradient(np.zeros(5))))
            assert np.max(np.abs(gradient(result.theta))) <= tol * start
    if not batched:  # on all rows every entry is J at an iterate: the last one at the θ returned
        assert history[-1] == pytest.approx(float(objective(result.theta)[0]), rel=1e-12)


def test_the_mini_batch_start_is_the_exact_cost_and_gradient_from_row_blocks():
    """J(θ₀) and ∇J(θ₀) are evaluated on all rows, in blocks (their row-weighted mean), so the
    tolerance's reference is the true ∇J(θ₀), not a batch's estimate of it."""
    objective, _, ctx = _least_squares(1.0)
    batch = _batch_objective(objective)
    theta = np.array([0.3, -0.1, 0.2, 0.0, 1.0])
    start = MiniBatches(200, 7, np.random.default_rng(0), block_rows=16).initial(batch, theta, ctx)
    cost, gradient = objective(theta)
    assert float(start.cost) == pytest.approx(float(cost), rel=1e-13)
    np.testing.assert_allclose(start.gradient, gradient, rtol=1e-12)


def test_a_mini_batch_start_without_a_tolerance_evaluates_the_cost_alone():
    """With ``tol=None`` no test compares with ∇J(θ₀): an objective that carries ``cost_only`` is asked
    for J(θ₀) alone (a forward pass, for a network), the history starts with the same exact J(θ₀), and
    the epochs record no mean gradient; with a tolerance the start is the full evaluation, and each
    epoch's mean gradient is the row-weighted mean of its batches' (checked by the tolerance)."""
    objective, _, ctx = _least_squares(1.0)
    batch = _batch_objective(objective)
    calls = {"cost only": 0}

    def cost_only(theta, rows=None):
        calls["cost only"] += 1
        return batch(theta, rows)[0]

    batch.cost_only = cost_only
    theta = np.array([0.3, -0.1, 0.2, 0.0, 1.0])
    for tol, expected_calls in [(None, 2), (1e-9, 0)]:  # 200 rows in blocks of 128: two blocks
        calls["cost only"] = 0
        batches = MiniBatches(200, 50, np.random.default_rng(0), block_rows=128)
        gradients: list = []

        def record(k, point, gradients=gradients):
            gradients.append(point.gradient)
            return False

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs do not reach tol=1e-9
            result = minimize(
                batch,
                theta,
                ctx=ctx,
                rule=Momentum(0.05, 0.8),
                max_iter=3,
                tol=tol,
                batches=batches,
                callback=record,
            )
        assert calls["cost only"] == expected_calls
        assert all((gradient is None) == (tol is None) for gradient in gradients) and len(gradients) == 3
        assert float(result.cost_history[0]) == pytest.approx(float(objective(theta)[0]), rel=1e-13)


def test_adam_is_scikit_learns_adam():
    """The rule against scikit-learn's own AdamOptimizer (the MLP's), step by step on the same gradients."""
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    objective, gradient, ctx = _least_squares(1.0)
    ours = minimize(objective, np.zeros(5), ctx=ctx, rule=Adam(0.1), max_iter=25, tol=None)
    params = [np.zeros(5)]
    theirs = AdamOptimizer(params, learning_rate_init=0.1)
    for _ in range(25):
        theirs.update_params(params, [gradient(params[0])])
    np.testing.assert_allclose(ours.theta, params[0], rtol=1e-13, atol=1e-15)


def test_full_batch_momentum_is_the_heavy_ball_recursion():
    ctx = backends.resolve("numpy")
    result = minimize(
        lambda theta: (np.asarray(0.5 * theta @ theta), theta.copy()),
        np.array([1.0]),
        ctx=ctx,
        rule=Momentum(0.1, 0.5),
        max_iter=4,
        tol=None,
    )
    theta, velocity, costs = 1.0, 0.0, [0.5]
    for _ in range(4):
        velocity = 0.5 * velocity - 0.1 * theta
        theta += velocity
        costs.append(0.5 * theta * theta)
    assert result.theta[0] == pytest.approx(theta, rel=1e-14)
    np.testing.assert_allclose(result.cost_history, costs, rtol=1e-14)


@pytest.mark.parametrize("rule", [LBFGS, ConjugateGradient])
def test_a_wrong_gradient_ends_the_fit_with_one_warning_and_a_whole_history(rule):
    """An ascent 'gradient': no step lowers J. One warning saying so -- no second, false one about
    max_iter -- and the history of the iterations that were made (here none: J(θ₀) alone)."""
    objective, _, ctx = _least_squares(1.0)

    def wrong(theta):
        cost, gradient = objective(theta)
        return cost, -gradient

    with pytest.warns(ConvergenceWarning) as record:
        result = minimize(wrong, np.zeros(5), ctx=ctx, rule=rule(), max_iter=10, tol=1e-4)
    assert len(record) == 1 and "no step that lowers the cost after 0 iteration(s)" in str(record[0].message)
    assert result.n_iter == 0 and result.stop == "line search failed" and not result.converged
    assert np.asarray(result.cost_history).shape == (1,)
