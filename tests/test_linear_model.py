"""LinearRegression against independent references: least squares, the closed form, finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hml
from hml import backends
from hml.linear_model import linear_regression_objective


def make_regression(m=120, n=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=2.0, scale=[1.0, 3.0, 0.5, 2.0][:n], size=(m, n))
    true_w = rng.normal(size=n)
    y = X @ true_w + 1.5 + noise * rng.normal(size=m)
    return X, y


def ridge_reference(Z, y, l2):
    """Minimiser of 1/(2m)‖Zw + b − y‖² + λ/(2m)‖w‖² by augmented least squares (numpy.linalg.lstsq).

    Stacking √λ·[0 I] under [1 Z] turns the regularised problem into an ordinary one.
    """
    m, n = Z.shape
    A = np.column_stack([np.ones(m), Z])
    penalty = np.sqrt(l2) * np.eye(n + 1)[1:]
    theta, *_ = np.linalg.lstsq(np.vstack([A, penalty]), np.concatenate([y, np.zeros(n)]), rcond=None)
    return theta


@pytest.mark.parametrize("l2", [0.0, 5.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_normal_equation_matches_least_squares(case64, l2, normalize):
    X, y = make_regression()
    model = hml.LinearRegression(solver="normal", l2=l2, normalize=normalize).fit(case64.asarray(X), case64.asarray(y))
    Z = model.feature_transformer_.transform(X)
    theta = ridge_reference(Z, y, l2)
    np.testing.assert_allclose(case64.to_numpy(model.intercept_), theta[0], rtol=1e-9)
    np.testing.assert_allclose(case64.to_numpy(model.coef_), theta[1:], rtol=1e-9)


@pytest.mark.parametrize(
    "shape",
    ["collinear", "constant", "one sample", "fewer samples than features"],
)
def test_normal_equation_gives_the_minimum_norm_solution_at_any_rank(case64, shape):
    """Rank-deficient X: the least-squares solution of minimum norm (numpy's lstsq on centred data,
    scikit-learn's LinearRegression), where it used to refuse the "singular" normal equations."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    if shape == "collinear":
        X = np.column_stack([X, X[:, 0] - 2.0 * X[:, 1]])
    elif shape == "constant":
        X[:, 1] = 4.0
    elif shape == "one sample":
        X = X[:1]
    else:
        X = rng.normal(size=(3, 6))
    y = X @ rng.normal(size=X.shape[1]) + 1.5 + 0.1 * rng.normal(size=X.shape[0])
    model = hml.LinearRegression(solver="normal", normalize=False).fit(case64.asarray(X), case64.asarray(y))
    centred = X - X.mean(axis=0)
    w = np.linalg.lstsq(centred, y - y.mean(), rcond=None)[0]
    atol = 1e-9 * max(1.0, np.abs(w).max())
    np.testing.assert_allclose(case64.to_numpy(model.coef_), w, rtol=1e-7, atol=atol)
    np.testing.assert_allclose(float(model.intercept_), y.mean() - X.mean(axis=0) @ w, rtol=1e-7, atol=atol)
    linear_model = pytest.importorskip("sklearn.linear_model")
    reference = linear_model.LinearRegression().fit(X, y)
    np.testing.assert_allclose(case64.to_numpy(model.coef_), reference.coef_, rtol=1e-7, atol=atol)
    np.testing.assert_allclose(
        case64.to_numpy(model.predict(case64.asarray(X))), reference.predict(X), rtol=1e-7, atol=1e-7
    )


def test_normal_equation_matches_scikit_learn_ridge():
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = make_regression(n=3)
    ours = hml.LinearRegression(solver="normal", l2=2.0, normalize=False).fit(X, y)
    # sklearn's Ridge minimises ‖y − Xw − b‖² + α‖w‖², i.e. our J times 2m with α = λ.
    ref = linear_model.Ridge(alpha=2.0).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-10)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-12)


@pytest.mark.parametrize("l2", [0.0, 3.0])
def test_gradient_descent_converges_to_the_normal_equation(case, l2):
    X, y = make_regression()
    kwargs = dict(l2=l2, polynomial_degree=2)
    exact = hml.LinearRegression(solver="normal", **kwargs).fit(X, y)
    # The Hessian's eigenvalues lie in [0.51, 1.65] here: a step of 0.6 contracts the error
    # by at least 0.7 per iteration, ~1e-23 in 150 iterations.
    gd = hml.LinearRegression(learning_rate=0.6, max_iter=150, tol=None, **kwargs).fit(case.asarray(X), case.asarray(y))
    tol = 1e-6 if case.float64 else 2e-3
    np.testing.assert_allclose(case.to_numpy(gd.coef_), exact.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(case.to_numpy(gd.intercept_), exact.intercept_, rtol=tol)
    np.testing.assert_allclose(case.to_numpy(gd.predict(case.asarray(X))), exact.predict(X), rtol=tol, atol=tol)


def test_cost_history_is_the_cost_at_each_iterate():
    """cost_history_[k] = J(θ_k), k = 0 … n_iter_, reproduced by replaying the updates with the direct formula."""
    X, y = make_regression(n=3)
    lr, l2, iters = 0.1, 2.0, 25
    model = hml.LinearRegression(learning_rate=lr, l2=l2, max_iter=iters).fit(X, y)
    Z = model.feature_transformer_.transform(X)
    m = len(y)
    theta = np.zeros(Z.shape[1] + 1)
    expected = []
    for k in range(iters + 1):
        r = Z @ theta[1:] + theta[0] - y
        expected.append(r @ r / (2 * m) + l2 / (2 * m) * theta[1:] @ theta[1:])
        if k < iters:
            grad = np.concatenate([[r.mean()], Z.T @ r / m + l2 / m * theta[1:]])
            theta = theta - lr * grad
    assert model.n_iter_ == iters and model.cost_history_.shape == (iters + 1,)
    np.testing.assert_allclose(model.cost_history_, expected, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([[model.intercept_], model.coef_]), theta, rtol=1e-12)
    assert np.all(np.diff(model.cost_history_) < 0)
    assert model.cost_history_[0] == pytest.approx(y @ y / (2 * m))


def test_gradient_matches_central_finite_differences(case64):
    X, y = make_regression()
    xp = case64.xp
    Z, yy = case64.asarray(X), case64.asarray(y)
    objective = linear_regression_objective(Z, yy, 0.7, xp)
    theta = np.random.default_rng(1).normal(size=X.shape[1] + 1)
    _, grad = objective(case64.asarray(theta))
    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):  # one probe per parameter
        step = np.zeros_like(theta)
        step[i] = h
        plus = float(objective(case64.asarray(theta + step))[0])
        minus = float(objective(case64.asarray(theta - step))[0])
        numeric[i] = (plus - minus) / (2 * h)
    rel = np.linalg.norm(case64.to_numpy(grad) - numeric) / np.linalg.norm(numeric)
    assert rel < 1e-7


def test_l2_never_touches_the_intercept():
    X, y = make_regression()
    model = hml.LinearRegression(solver="normal", l2=1e12).fit(X, y)
    np.testing.assert_allclose(model.coef_, 0.0, atol=1e-8)
    assert float(model.intercept_) == pytest.approx(y.mean(), rel=1e-8)


def test_cross_backend_agreement(case):
    X, y = make_regression(m=60, n=3)
    ref = hml.LinearRegression(learning_rate=0.1, max_iter=60, l2=0.5, polynomial_degree=2).fit(X, y)
    other = hml.LinearRegression(learning_rate=0.1, max_iter=60, l2=0.5, polynomial_degree=2).fit(
        case.asarray(X), case.asarray(y)
    )
    tol = 1e-10 if case.float64 else 1e-4
    np.testing.assert_allclose(case.to_numpy(other.coef_), ref.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(case.to_numpy(other.cost_history_), ref.cost_history_, rtol=tol)
    assert other.score(case.asarray(X), case.asarray(y)) == pytest.approx(ref.score(X, y), rel=tol)


def test_fitted_state_lives_on_the_backend_and_predict_mirrors_the_input(case):
    import array_api_compat

    X, y = make_regression(m=30, n=2)
    Xb = case.asarray(X)
    dtype = None if case.float64 else "float32"
    model = hml.LinearRegression(backend=case.backend, device=case.device, dtype=dtype, max_iter=20).fit(X, y)
    # A lazy backend's fitted state is computed into its chunks' library (tests/test_dask.py).
    where = "numpy" if case.lazy else case.backend
    assert hml.backends.backend_of(model.coef_).name == where
    assert hml.backends.backend_of(model.cost_history_).name == where
    assert isinstance(model.predict(X), np.ndarray)
    out = model.predict(Xb)
    assert hml.backends.backend_of(out).name == case.backend
    assert str(array_api_compat.device(out)) == str(array_api_compat.device(Xb))
    assert isinstance(model.score(X, y), float)


def test_tol_stops_early_and_warns_when_not_met():
    X, y = make_regression()
    model = hml.LinearRegression(learning_rate=0.1, max_iter=10_000, tol=1e-10).fit(X, y)
    assert model.n_iter_ < 10_000 and model.n_iter_ % 10 == 0
    with pytest.warns(hml.ConvergenceWarning, match="did not reach tol"):
        hml.LinearRegression(learning_rate=1e-4, max_iter=20, tol=1e-12).fit(X, y)


@pytest.mark.parametrize("normalize", [True, False])
def test_the_defaults_fit_y_equals_x_without_a_warning(normalize):
    """The user's report: y = x on [1, 2, 3] predicted 3.97 for 4 (500 steps of α = 0.01, tol=None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", hml.ConvergenceWarning)
        model = hml.LinearRegression(normalize=normalize).fit([[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0])
    # tol=1e-4 on the gradient, with the Hessian's condition number 46 (raw x): within 1e-2 of 4.
    assert float(model.predict([[4.0]])[0]) == pytest.approx(4.0, abs=1e-6 if normalize else 1e-2)
    assert model.n_iter_ < model.max_iter


def test_learning_rate_auto_is_one_over_the_largest_curvature():
    X, y = make_regression()
    model = hml.LinearRegression(polynomial_degree=2, l2=3.0).fit(X, y)
    Z = model.feature_transformer_.transform(X)
    Z1 = np.column_stack([np.ones(len(Z)), Z])
    # The Hessian of J(θ) = 1/(2m)‖Z₁θ − y‖² + λ/(2m)‖w‖²: (Z₁ᵀZ₁ + λ diag(0, I)) / m.
    hessian = (Z1.T @ Z1 + 3.0 * np.diag([0.0] + [1.0] * Z.shape[1])) / len(Z)
    top = np.linalg.eigvalsh(hessian)[-1]
    assert 1.0 / top <= model.learning_rate_ <= 1.05 / top  # power iteration approaches λ_max from below
    assert hml.LinearRegression(solver="normal").fit(X, y).learning_rate_ is None
    assert hml.LinearRegression(learning_rate=0.3).fit(X, y).learning_rate_ == 0.3


def test_max_iter_that_ends_an_unconverged_default_fit_warns_at_the_users_line():
    X, y = make_regression()
    with pytest.warns(hml.ConvergenceWarning, match=r"did not reach tol=0.0001 in max_iter=3 iterations") as record:
        hml.LinearRegression(polynomial_degree=3, max_iter=3).fit(X, y)
    assert record[0].filename == __file__


def test_divergence_is_detected_with_advice():
    X, y = make_regression()
    model = hml.LinearRegression(learning_rate=5.0, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow warning, if any
        with pytest.raises(hml.DivergenceError, match=r"learning_rate=5.0 is too large.*try learning_rate=0.5") as info:
            model.fit(X, y)
    assert not hasattr(model, "coef_")
    assert "normalize" not in str(info.value)  # it is on already: no advice to turn it on
    model.set_params(normalize=False, learning_rate=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(hml.DivergenceError, match=r"try learning_rate=0.1 \(normalize=True, which standardises"):
            model.fit(100.0 * X, y)


@pytest.mark.parametrize("scale", [1e300, 1e160])
def test_divergence_from_the_data_scale_says_to_rescale_not_to_lower_the_rate(scale):
    """y × 1e300: J(θ₀) overflows before any step, so a smaller learning rate is no advice."""
    X = np.array([[1.0], [2.0], [3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own overflow warning
        with pytest.raises(hml.DivergenceError, match=r"J\(θ₀\), is already inf.*Rescale them") as info:
            hml.LinearRegression().fit(X, scale * X[:, 0])
    assert "try learning_rate" not in str(info.value)


def test_dtype_policy(case):
    X, y = make_regression(m=20, n=2)
    xp = case.xp
    f32 = hml.LinearRegression(max_iter=5).fit(case.asarray(X.astype(np.float32)), case.asarray(y.astype(np.float32)))
    assert f32.coef_.dtype == xp.float32
    forced = hml.LinearRegression(max_iter=5, dtype="float32").fit(case.asarray(X), case.asarray(y))
    assert forced.coef_.dtype == xp.float32
    ints = (X * 10).astype(np.int64)
    if case.float64:
        assert hml.LinearRegression(max_iter=5).fit(case.asarray(ints), case.asarray(y)).coef_.dtype == xp.float64
    else:
        with pytest.warns(UserWarning, match="has no float64; computing in float32"):
            model = hml.LinearRegression(max_iter=5).fit(case.asarray(ints), case.asarray(y))
        assert model.coef_.dtype == xp.float32
        with pytest.raises(ValueError, match="dtype='float64' was requested"):
            hml.LinearRegression(dtype="float64").fit(case.asarray(ints), case.asarray(y))


def test_pandas_and_lists_are_accepted():
    X, y = make_regression(m=20, n=2)
    model = hml.LinearRegression(solver="normal").fit(X.tolist(), y.tolist())
    assert isinstance(model.predict(X.tolist()), np.ndarray)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["a", "b"])
    np.testing.assert_allclose(
        hml.LinearRegression(solver="normal").fit(frame, pd.Series(y)).predict(frame), model.predict(X)
    )


def test_get_set_params_and_repr():
    model = hml.LinearRegression(learning_rate=0.3, l2=1.0)
    params = model.get_params()
    assert params["learning_rate"] == 0.3 and params["l2"] == 1.0 and params["backend"] is None
    assert model.set_params(max_iter=7) is model and model.max_iter == 7
    assert repr(model) == "LinearRegression(learning_rate=0.3, max_iter=7, l2=1.0)"
    with pytest.raises(ValueError, match="'alpha' is not a parameter of LinearRegression"):
        model.set_params(alpha=1.0)
    clone = hml.LinearRegression(**model.get_params())
    assert clone.get_params() == model.get_params()


def test_scikit_learn_can_clone_and_cross_validate():
    model_selection = pytest.importorskip("sklearn.model_selection")
    base = pytest.importorskip("sklearn.base")
    X, y = make_regression()
    model = hml.LinearRegression(solver="normal")
    assert base.clone(model).get_params() == model.get_params()
    scores = model_selection.cross_val_score(model, X, y, cv=3)
    assert np.all(scores > 0.9)


def test_fitted_model_pickles_and_predicts_the_same(case):
    import pickle

    X, y = make_regression(m=30, n=2)
    dtype = None if case.float64 else "float32"
    model = hml.LinearRegression(
        polynomial_degree=2, max_iter=30, backend=case.backend, device=case.device, dtype=dtype
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    assert restored.get_params() == model.get_params()
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def _off_centre(seed=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 3)) + 2.0  # off-centre: an intercept would matter
    return X, X @ np.array([1.0, -0.5, 2.0]) + 3.0 + 0.1 * rng.normal(size=80)


def test_without_intercept_is_scikit_learns_fit_through_the_origin(case64):
    linear_model = pytest.importorskip("sklearn.linear_model")
    X, y = _off_centre()
    expected = linear_model.Ridge(alpha=2.0, fit_intercept=False).fit(X, y)
    model = hml.LinearRegression(solver="normal", l2=2.0, fit_intercept=False, normalize=False)
    model.fit(case64.asarray(X), case64.asarray(y))
    assert float(model.intercept_) == 0.0
    np.testing.assert_allclose(case64.to_numpy(model.coef_), expected.coef_, rtol=1e-9)
    # Standardising then scales the features and centres them only for an intercept: with λ = 0
    # the least-squares fit through the origin, whatever the scale of the features.
    scaled = hml.LinearRegression(solver="normal", fit_intercept=False).fit(case64.asarray(X), case64.asarray(y))
    through_origin = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(case64.to_numpy(scaled.predict(case64.asarray(X))), X @ through_origin, rtol=1e-9)


@pytest.mark.parametrize("normalize", [False, True])
def test_gradient_descent_without_intercept_reaches_the_normal_equation(normalize):
    X, y = _off_centre()
    exact = hml.LinearRegression(solver="normal", l2=2.0, fit_intercept=False, normalize=normalize).fit(X, y)
    gd = hml.LinearRegression(l2=2.0, fit_intercept=False, normalize=normalize, max_iter=1000, tol=None).fit(X, y)
    assert float(gd.intercept_) == 0.0  # ∂J/∂b = 0: b never moves from 0
    np.testing.assert_allclose(gd.predict(X), exact.predict(X), rtol=1e-9)


def test_logistic_without_intercept_is_scikit_learns():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 2)) + 1.0
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=200) > 0.3).astype(int)
    ours = hml.LogisticRegression(fit_intercept=False, normalize=False, l2=1.0, tol=1e-10, max_iter=200).fit(X, y)
    theirs = linear_model.LogisticRegression(fit_intercept=False, C=1.0, tol=1e-12).fit(X, y)
    assert np.all(np.asarray(ours.intercept_) == 0.0)
    np.testing.assert_allclose(np.asarray(ours.coef_)[:, 0], theirs.coef_[0], rtol=1e-6)


def test_gradient_descent_on_badly_scaled_features_warns_that_tol_can_stop_it_early():
    """X in square feet: the relative gradient met tol after 10 iterations at R² 0.969 (least squares 0.994),
    with no warning; in thousands of square feet it converges (130 iterations) and nothing is said."""
    rng = np.random.default_rng(0)
    size = rng.uniform(500, 4000, 100)
    price = 50_000 + 120 * size + rng.normal(0, 10_000, 100)
    with pytest.warns(hml.ConvergenceWarning, match=r"badly scaled for gradient descent.*Keep normalize=True"):
        hml.LinearRegression(normalize=False).fit(size[:, None], price)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted = hml.LinearRegression(normalize=False).fit(size[:, None] / 1000, price)
        exact = hml.LinearRegression(normalize=False, solver="normal").fit(size[:, None] / 1000, price)
    assert fitted.score(size[:, None] / 1000, price) == pytest.approx(
        exact.score(size[:, None] / 1000, price), abs=1e-4
    )
    labels = (size > 2000).astype(int)
    with pytest.warns(hml.ConvergenceWarning, match=r"LogisticRegression\(normalize=False, solver='gd'\)"):
        hml.LogisticRegression(normalize=False, solver="gd", learning_rate=1e-7, max_iter=5, tol=None).fit(
            size[:, None], labels
        )


@pytest.mark.parametrize("l2", [1e-20, 1e-15, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-3, 1.0])
def test_a_tiny_l2_on_collinear_columns_is_the_ridge_not_rounding_noise(l2):
    """(Z̄ᵀZ̄ + λI) w = Z̄ᵀȳ by LU, with λ below the rounding of Z̄ᵀZ̄, gave x and 2x the weights [−1.125, 2.0625]
    (numpy, torch) or "sums are not finite" (λ = 1e-15); the ridge, as scikit-learn's Ridge (by SVD of X), is
    about [0.6, 1.2]. λ added to the eigenvalues of Z̄ᵀZ̄ + λI, rounding included, erred 0.14 at λ = 1e-12."""
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    X = np.c_[x, 2 * x, rng.normal(size=50)]
    y = 3 * x + X[:, 2] + 1 + 0.1 * rng.normal(size=50)  # noise: the ridge is not the exact fit
    expected = linear_model.Ridge(alpha=l2, solver="svd").fit(X, y).coef_
    for backend in ("numpy", "array_api_strict"):
        model = hml.LinearRegression(solver="normal", normalize=False, l2=l2, backend=backend).fit(X, y)
        np.testing.assert_allclose(backends.to_numpy(model.coef_), expected, atol=1e-8)
