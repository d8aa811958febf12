"""MultilayerPerceptron: backprop against finite differences and PyTorch autograd, on every backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hml
from hml import backends
from hml._params import validate
from hml.exceptions import ConvergenceWarning
from hml.neural_network import gradient_check, mlp_objective, n_parameters, pack, unpack
from hml.optimize import MiniBatches

COMBINATIONS = [(a, o) for a in ("sigmoid", "tanh", "relu") for o in ("sigmoid", "softmax")]


def blobs(m=60, n=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, n))
    codes = rng.integers(0, k, m)
    codes[:k] = np.arange(k)
    return centres[codes] + rng.normal(size=(m, n)), codes


@pytest.mark.parametrize(("activation", "output"), COMBINATIONS)
def test_backprop_matches_finite_differences(case64, activation, output):
    X, codes = blobs(m=30)
    model = hml.MultilayerPerceptron(layers=[4, 5, 4, 3], activation=activation, output=output, l2=0.5, random_state=0)
    # relu has kinks; with ε = 1e-6 and these weights no pre-activation sits within ε of one.
    # Dask builds a graph per evaluation: check a random third of the 64 parameters there.
    n_checks = 20 if case64.lazy else None
    assert gradient_check(model, case64.asarray(X), case64.asarray(codes), n_checks=n_checks) < 1e-6


@pytest.mark.parametrize(("activation", "output"), COMBINATIONS)
def test_cost_and_gradient_match_pytorch_autograd(activation, output):
    torch = pytest.importorskip("torch")
    X, codes = blobs(m=50)
    layers = [4, 6, 5, 3]
    ctx = backends.resolve("numpy")
    Y = np.eye(3)[codes]  # one-hot rows
    objective = mlp_objective(X, Y, layers, activation, output, 0.8, ctx.xp)
    theta = np.random.default_rng(3).uniform(-0.7, 0.7, n_parameters(layers))
    cost, gradient = objective(theta)

    params = [torch.tensor(p, requires_grad=True) for pair in unpack(theta, layers, np) for p in pair]
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    A = torch.tensor(X)
    for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
        A = act(A @ W + b)
    logits = A @ params[-2] + params[-1]
    target = torch.tensor(Y)
    if output == "softmax":
        data = torch.nn.functional.cross_entropy(logits, torch.tensor(codes), reduction="mean")
    else:
        data = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(X)
    reference = data + 0.8 / (2 * len(X)) * sum((W * W).sum() for W in params[0::2])
    reference.backward()
    expected = np.concatenate([p.grad.numpy().reshape(-1) for p in params])
    assert float(cost) == pytest.approx(reference.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-14)


def test_one_gradient_descent_step_is_theta_minus_alpha_gradient():
    X, codes = blobs()
    model = hml.MultilayerPerceptron(
        layers=[4, 5, 3], max_iter=1, learning_rate=0.3, random_state=0, normalize=False
    ).fit(X, codes)
    problem = model._prepare(X, codes, validate(model.set_params(random_state=0)))
    cost0, gradient0 = problem.objective(problem.theta0)
    theta1 = pack(list(zip(model.coefs_, model.intercepts_, strict=True)), np)
    np.testing.assert_allclose(theta1, problem.theta0 - 0.3 * gradient0, rtol=1e-13)
    assert float(model.cost_history_[0]) == pytest.approx(float(cost0), rel=1e-13)


def test_initialisation():
    X, codes = blobs()
    uniform = hml.MultilayerPerceptron(
        layers=[4, 50, 3], epsilon=0.12, max_iter=1, learning_rate=1e-12, l2=0.0, random_state=0
    )
    uniform.fit(X, codes)
    theta = pack(list(zip(uniform.coefs_, uniform.intercepts_, strict=True)), np)
    assert 0.115 < np.abs(theta).max() <= 0.12  # U(−ε, ε), weights and biases alike
    glorot = hml.MultilayerPerceptron(
        layers=[4, 50, 3], init="glorot", max_iter=1, learning_rate=1e-12, l2=0.0, random_state=0
    )
    glorot.fit(X, codes)
    bound = np.sqrt(6 / 54)
    assert 0.95 * bound < np.abs(glorot.coefs_[0]).max() <= bound
    np.testing.assert_allclose(glorot.intercepts_[0], 0.0, atol=1e-9)


def test_cross_backend_agreement_from_one_seed(case):
    X, codes = blobs()
    kwargs = dict(layers=[4, 8, 3], activation="tanh", max_iter=15, random_state=42)
    reference = hml.MultilayerPerceptron(**kwargs).fit(X, codes)
    model = hml.MultilayerPerceptron(**kwargs).fit(case.asarray(X), case.asarray(codes))
    tolerance = 1e-9 if case.float64 else 1e-4
    np.testing.assert_allclose(case.to_numpy(model.cost_history_), reference.cost_history_, rtol=tolerance)
    np.testing.assert_allclose(case.to_numpy(model.coefs_[0]), reference.coefs_[0], rtol=tolerance, atol=tolerance)
    proba = model.predict_proba(case.asarray(X))
    np.testing.assert_allclose(case.to_numpy(proba).sum(axis=1), 1.0, rtol=1e-5)


def test_minibatches_with_momentum_learn_and_are_reproducible(case):
    X, codes = blobs(m=200, seed=1)
    kwargs = dict(
        layers=[4, 16, 3],
        activation="relu",
        output="softmax",
        init="glorot",
        batch_size=32,
        momentum=0.9,
        learning_rate=0.05,
        max_iter=20,
        random_state=7,
    )
    model = hml.MultilayerPerceptron(**kwargs).fit(case.asarray(X), case.asarray(codes))
    costs = case.to_numpy(model.cost_history_)
    assert costs.shape == (21,) and costs[-1] < 0.5 * costs[0]
    assert model.score(case.asarray(X), case.asarray(codes)) > 0.8  # the blobs overlap
    again = hml.MultilayerPerceptron(**kwargs).fit(X, codes)  # same seed, NumPy: the same batches
    np.testing.assert_allclose(costs, again.cost_history_, rtol=1e-9 if case.float64 else 1e-3)


def test_a_mini_batch_fit_starts_from_the_same_cost_with_or_without_a_tolerance():
    """A fit with ``tol=None`` evaluates J(θ₀) by the forward pass alone (no tolerance needs ∇J(θ₀)):
    the first entry of its history is, bit for bit, the cost of a fit whose start also takes the gradient,
    and the two fits' weights are the same (the start decides no step)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 epochs do not reach tol=1e-12
        fits = [
            hml.MultilayerPerceptron(
                layers=[6, 8, 3],
                batch_size=32,
                max_iter=2,
                tol=tol,
                solver="gd",
                learning_rate=0.1,
                momentum=0.9,
                random_state=0,
            ).fit(X, y)
            for tol in (None, 1e-12)
        ]
    assert float(fits[0].cost_history_[0]) == float(fits[1].cost_history_[0])
    for W0, W1 in zip(fits[0].coefs_, fits[1].coefs_, strict=True):
        np.testing.assert_array_equal(np.asarray(W0), np.asarray(W1))


@pytest.mark.parametrize("solver", ["lbfgs", "cg"])
def test_full_batch_quasi_newton_solvers(solver):
    X, codes = blobs(m=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = hml.MultilayerPerceptron(layers=[4, 6, 3], solver=solver, max_iter=100, l2=0.1, random_state=0).fit(
            X, codes
        )
    gd = hml.MultilayerPerceptron(layers=[4, 6, 3], max_iter=100, l2=0.1, random_state=0).fit(X, codes)
    assert float(model.cost_history_[-1]) < float(gd.cost_history_[-1])


def test_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, dtype=float)
    y = np.array(["off", "on", "on", "off"] * 10)
    model = hml.MultilayerPerceptron(
        layers=[2, 4, 2],
        activation="tanh",
        solver="lbfgs",
        max_iter=200,
        l2=0.0,
        epsilon=1.0,
        random_state=1,
        tol=1e-10,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.score(X, y) == 1.0
    np.testing.assert_array_equal(model.predict(X[:4]), ["off", "on", "on", "off"])


def test_bad_input():
    X, codes = blobs()
    with pytest.raises(ValueError, match=r"layers\[0\]=784 but X has 4 features; set layers\[0\]=4"):
        hml.MultilayerPerceptron(layers=[784, 25, 10]).fit(X, codes)
    with pytest.raises(ValueError, match=r"layers\[-1\]=10 but y has 3 classes; set layers\[-1\]=3"):
        hml.MultilayerPerceptron(layers=[4, 25, 10]).fit(X, codes)
    with pytest.raises(ValueError, match=r"layers must be a list of at least two positive integers"):
        hml.MultilayerPerceptron(layers=[4, 0, 3]).fit(X, codes)
    with pytest.raises(ValueError, match=r"only the class 1"):
        hml.MultilayerPerceptron().fit(X, np.ones(60, int))
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        hml.MultilayerPerceptron().fit(np.where(np.arange(240).reshape(60, 4) == 5, np.nan, X), codes)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\)"):
        hml.MultilayerPerceptron(momentum=1.0).fit(X, codes)
    with pytest.raises(ValueError, match=r"batch_size=10 is for solver='gd'.*every row.*: set batch_size=None"):
        hml.MultilayerPerceptron(batch_size=10, solver="lbfgs").fit(X, codes)
    with pytest.raises(ValueError, match=r"activation must be one of \['sigmoid', 'tanh', 'relu'\]; got 'gelu'"):
        hml.MultilayerPerceptron(activation="gelu").fit(X, codes)
    model = hml.MultilayerPerceptron(max_iter=2).fit(X, codes)
    assert model.layers_ == [4, 25, 3]
    unseen = np.r_[codes[:-1], 9]  # a label not seen in fit: a wrong prediction, as in scikit-learn
    assert model.score(X, unseen) == np.mean(model.predict(X) == unseen)


def test_adam_is_the_optimize_rule_with_scikit_learns_defaults(case):
    """solver='adam' steps θ by hml.optimize.Adam (itself checked against scikit-learn's AdamOptimizer),
    from learning_rate 0.001 unless given; with mini-batches as with all rows."""
    from hml.optimize import Adam, minimize

    X, codes = blobs(m=120, seed=2)
    kwargs = dict(layers=[4, 8, 3], activation="relu", output="softmax", solver="adam", tol=None, random_state=3)
    model = hml.MultilayerPerceptron(max_iter=12, **kwargs).fit(case.asarray(X), case.asarray(codes))
    p = validate(hml.MultilayerPerceptron(max_iter=12, **kwargs))
    problem = hml.MultilayerPerceptron(**kwargs)._prepare(X, codes, p)
    direct = minimize(
        problem.objective, problem.theta0, ctx=problem.ctx, rule=Adam(0.001, 0.9, 0.999, 1e-8), max_iter=12, tol=None
    )
    tolerance = 1e-10 if case.float64 else 1e-4
    np.testing.assert_allclose(case.to_numpy(model.cost_history_), direct.cost_history, rtol=tolerance)
    fast = hml.MultilayerPerceptron(max_iter=30, batch_size=16, learning_rate=0.01, **kwargs).fit(X, codes)
    assert fast.score(X, codes) > 0.85 and fast.cost_history_[-1] < 0.5 * fast.cost_history_[0]


def test_early_stopping_keeps_the_best_weights_on_a_stratified_held_out_set():
    X, codes = blobs(m=300, seed=4)
    kwargs = dict(
        layers=[4, 16, 3], activation="relu", output="softmax", solver="adam", learning_rate=0.05, batch_size=32
    )
    with backends.count_host_transfers() as seen, warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an early stop is a converged fit
        model = hml.MultilayerPerceptron(
            early_stopping=True, n_iter_no_change=3, max_iter=200, tol=None, random_state=5, **kwargs
        ).fit(X, codes)
    scores = model.validation_scores_
    assert seen.reads["validation score"] == model.n_iter_ == scores.size < 200  # one read per epoch
    best = int(np.argmax(scores))
    assert model.n_iter_ == best + 1 + 3 and model.best_validation_score_ == scores[best]
    # The split: 10 % of the rows, stratified, drawn first from random_state; the model kept is the best one.
    train, held = hml.model_selection.train_test_split(
        np.arange(300), test_size=0.1, random_state=np.random.default_rng(5), stratify=codes
    )
    assert held.size == 30 and np.bincount(codes[held]).min() >= 9
    assert model.score(X[held], codes[held]) == pytest.approx(model.best_validation_score_, abs=1e-12)
    with pytest.raises(ValueError, match=r"needs 2 rows of every class; class 2 has 1"):
        hml.MultilayerPerceptron(early_stopping=True).fit(X[:61], np.r_[codes[:60] % 2, 2])


def _smooth(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 6))
    return X, np.sin(X[:, 0]) + X[:, 1] ** 2 / 2 + X[:, 2] * X[:, 3]


def test_regressor_backprop_is_the_squared_error_gradient(case64):
    X, y = _smooth(40, 0)
    model = hml.MultilayerPerceptronRegressor(layers=[6, 5, 1], activation="tanh", random_state=0)
    assert gradient_check(model, case64.asarray(X), case64.asarray(y)) < 1e-7
    model.fit(case64.asarray(X), case64.asarray(y))
    assert case64.to_numpy(model.predict(case64.asarray(X))).shape == (40,)


def test_regressor_is_as_good_as_scikit_learns_mlp_regressor():
    """The same network ([6, 32, 1], relu, Adam on batches of 200, 150 epochs) on a smooth target:
    test R² within 0.01 of scikit-learn's (which gets the same standardised X)."""
    neural_network = pytest.importorskip("sklearn.neural_network")
    X, y = _smooth(1500, 1)
    X_test, y_test = _smooth(500, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = hml.MultilayerPerceptronRegressor(layers=[6, 32, 1], max_iter=150, tol=None, random_state=0).fit(X, y)
        mean, scale = X.mean(axis=0), X.std(axis=0)
        theirs = neural_network.MLPRegressor(hidden_layer_sizes=(32,), max_iter=150, random_state=0)
        theirs.fit((X - mean) / scale, y)
    expected = theirs.score((X_test - mean) / scale, y_test)
    assert expected > 0.9 and ours.score(X_test, y_test) > expected - 0.01


def test_regressor_early_stopping_scores_r2_on_a_random_held_out_set():
    X, y = _smooth(400, 3)
    model = hml.MultilayerPerceptronRegressor(
        layers=[6, 16, 1], early_stopping=True, n_iter_no_change=3, max_iter=300, learning_rate=0.02, random_state=4
    ).fit(X, y)
    assert model.n_iter_ < 300 and model.best_validation_score_ == model.validation_scores_.max()
    train, held = hml.model_selection.train_test_split(
        np.arange(400), test_size=0.1, random_state=np.random.default_rng(4)
    )
    assert model.score(X[held], y[held]) == pytest.approx(model.best_validation_score_, rel=1e-9)


@pytest.mark.parametrize("solver", ["gd", "adam"])
def test_partial_fit_calls_are_the_iterations_of_fit(case, solver):
    """Full batch: k calls of partial_fit on all rows take fit's k steps, the optimiser's state (momentum's
    velocity, Adam's moments) carried from call to call."""
    X, codes = blobs(m=90, seed=6)
    kwargs = dict(layers=[4, 8, 3], solver=solver, momentum=0.9 if solver == "gd" else 0.0, random_state=8)
    kwargs["learning_rate"] = 0.3 if solver == "gd" else 0.01
    whole = hml.MultilayerPerceptron(max_iter=5, tol=None, **kwargs).fit(case.asarray(X), case.asarray(codes))
    calls = hml.MultilayerPerceptron(**kwargs)
    for _ in range(5):
        calls.partial_fit(case.asarray(X), case.asarray(codes), classes=np.arange(3))
    tolerance = 1e-10 if case.float64 else 1e-4
    assert calls.n_iter_ == 5
    np.testing.assert_allclose(
        case.to_numpy(calls.coefs_[0]), case.to_numpy(whole.coefs_[0]), rtol=tolerance, atol=tolerance
    )
    np.testing.assert_allclose(case.to_numpy(calls.cost_history_), case.to_numpy(whole.cost_history_), rtol=tolerance)


def test_partial_fit_learns_from_chunks_that_arrive_one_by_one():
    X, codes = blobs(m=600, seed=7)
    model = hml.MultilayerPerceptron(
        layers=[4, 16, 3],
        activation="relu",
        output="softmax",
        init="glorot",
        solver="adam",
        learning_rate=0.02,
        batch_size=32,
        random_state=9,
    )
    with pytest.raises(ValueError, match=r"classes must be given to the first partial_fit"):
        model.partial_fit(X[:100], codes[:100])
    for epoch in range(5):
        for start in range(0, 600, 150):  # four chunks, never all rows at once
            model.partial_fit(
                X[start : start + 150], codes[start : start + 150], classes=[0, 1, 2] if not epoch else None
            )
    assert model.n_iter_ == 20 and model.score(X, codes) > 0.85  # the blobs overlap
    with pytest.raises(ValueError, match=r"not seen in fit"):
        model.partial_fit(X[:5], np.array([0, 1, 2, 3, 0]))
    assert not hasattr(hml.MultilayerPerceptron(solver="lbfgs"), "partial_fit")  # as scikit-learn's MLP
    with pytest.raises(AttributeError, match=r"partial_fit takes steps: solver='gd' or 'adam'"):
        hml.MultilayerPerceptron(solver="lbfgs").partial_fit(X, codes, classes=[0, 1, 2])
    regressor = hml.MultilayerPerceptronRegressor(layers=[4, 8, 1], random_state=0, learning_rate=0.01)
    for start in range(0, 600, 150):
        regressor.partial_fit(X[start : start + 150], X[start : start + 150, 0])
    assert regressor.n_iter_ == 4 and np.isfinite(regressor.predict(X)).all()


def test_a_saved_model_goes_on_with_partial_fit_as_if_never_saved(tmp_path):
    X, codes = blobs(m=60, seed=8)
    for kwargs in ({"solver": "adam"}, {"momentum": 0.9}):
        model = hml.MultilayerPerceptron(batch_size=16, random_state=0, **kwargs).partial_fit(
            X, codes, classes=[0, 1, 2]
        )
        loaded = hml.load(model.save(tmp_path / "m.npz"))  # with the optimiser's state: Adam's moments, the velocity
        np.testing.assert_array_equal(loaded.partial_fit(X, codes).coefs_[0], model.partial_fit(X, codes).coefs_[0])


def test_partial_fit_weights_rows_by_a_class_weight_dict_and_refuses_balanced():
    """As scikit-learn's SGDClassifier.partial_fit: a dict ``class_weight`` multiplies ``sample_weight`` in every
    call; ``"balanced"`` needs the class counts of all the data, which no one chunk has."""
    X, codes = blobs(m=23, seed=9)
    kwargs = dict(layers=[4, 6, 3], batch_size=5, momentum=0.9, learning_rate=0.1, random_state=3)
    class_weight, given = {0: 10.0, 2: 0.5}, np.linspace(0.5, 2.0, 23)
    weighted = hml.MultilayerPerceptron(class_weight=class_weight, **kwargs)
    per_row = hml.MultilayerPerceptron(**kwargs)  # the reference: the class weights as per-row sample weights
    for _ in range(3):
        weighted.partial_fit(X, codes, classes=[0, 1, 2], sample_weight=given)
        per_row.partial_fit(X, codes, classes=[0, 1, 2], sample_weight=given * np.array([10.0, 1.0, 0.5])[codes])
    for ours, reference in zip(weighted.coefs_, per_row.coefs_, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-14)
    first = hml.MultilayerPerceptron(class_weight=class_weight, **kwargs).partial_fit(X, codes, [0, 1, 2], given)
    one_epoch = hml.MultilayerPerceptron(class_weight=class_weight, max_iter=1, tol=None, **kwargs)
    np.testing.assert_allclose(first.coefs_[0], one_epoch.fit(X, codes, sample_weight=given).coefs_[0], rtol=1e-12)
    balanced = hml.MultilayerPerceptron(class_weight="balanced", **kwargs)
    with pytest.raises(ValueError, match=r"class_weight='balanced' .*compute_class_weight.* as a dict"):
        balanced.partial_fit(X, codes, classes=[0, 1, 2])
    assert not hasattr(balanced, "coefs_")


def test_partial_fit_shuffles_each_call_afresh_and_reproducibly_from_the_seed(monkeypatch, tmp_path):
    """Every call draws a new order of the rows (scikit-learn's partial_fit, one generator for all calls); the
    same seed and calls give the same weights, a saved model goes on with the same orders, fit starts afresh."""
    orders = []

    class Recorded:  # the generator a MiniBatches shuffles with, recording each order it draws
        def __init__(self, rng):
            self.rng = rng

        def permutation(self, n):
            orders.append(self.rng.permutation(n))
            return orders[-1]

    def recorded(self, n_samples, batch_size, rng, **kwargs):
        initialise(self, n_samples, batch_size, Recorded(rng), **kwargs)

    initialise = MiniBatches.__init__

    X, codes = blobs(m=12, n=3, k=2, seed=10)
    kwargs = dict(layers=[3, 4, 2], batch_size=4, momentum=0.9, learning_rate=0.1, random_state=0)
    model = hml.MultilayerPerceptron(**kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(MiniBatches, "__init__", recorded)
        for _ in range(4):
            model.partial_fit(X, codes, classes=[0, 1])
    assert len(orders) == 4 and len({tuple(order) for order in orders}) == 4
    again = hml.MultilayerPerceptron(**kwargs)
    for _ in range(4):
        again.partial_fit(X, codes, classes=[0, 1])
    for ours, twin in zip(model.coefs_ + model.intercepts_, again.coefs_ + again.intercepts_, strict=True):
        np.testing.assert_array_equal(ours, twin)
    loaded = hml.load(model.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.partial_fit(X, codes).coefs_[0], model.partial_fit(X, codes).coefs_[0])
    fresh = hml.MultilayerPerceptron(max_iter=3, tol=None, **kwargs).fit(X, codes)
    np.testing.assert_array_equal(model.set_params(max_iter=3, tol=None).fit(X, codes).coefs_[0], fresh.coefs_[0])


def test_partial_fit_needs_two_classes_as_fit_does():
    X, codes = blobs(m=20, n=3, k=2, seed=11)
    model = hml.MultilayerPerceptron(batch_size=5, random_state=0)
    with pytest.raises(ValueError, match=r"only the class 0; a classifier needs .*at least two classes"):
        model.fit(X, np.zeros(20, int))
    with pytest.raises(ValueError, match=r"classes has only the class 0; a classifier needs .*at least two classes"):
        model.partial_fit(X, np.zeros(20, int), classes=[0])
    assert not hasattr(model, "coefs_")


def test_a_class_weight_acts_on_a_chunk_of_one_class():
    """Weights are scaled once, by the mean weight of the first chunk (or of fit's rows), not chunk by chunk:
    per chunk, a chunk of one class had its class weight divided out, and a dict class_weight did nothing
    on data sorted by class. Full-batch gradient descent without momentum or penalty steps by −α∇J, and ∇J
    is linear in the weights: a chunk of class 0 weighted 3 moves θ three times as far."""
    X, codes = blobs(m=60, seed=12)
    kwargs = dict(layers=[4, 5, 3], learning_rate=0.5, l2=0.0, random_state=1)
    steps = []
    for class_weight in (None, {0: 3.0}):
        model = hml.MultilayerPerceptron(class_weight=class_weight, **kwargs)
        model.partial_fit(X[codes != 0], codes[codes != 0], classes=[0, 1, 2])  # no row of class 0: s̄ = 1
        before = pack(list(zip(model.coefs_, model.intercepts_, strict=True)), np)
        model.partial_fit(X[codes == 0], codes[codes == 0])
        steps.append(pack(list(zip(model.coefs_, model.intercepts_, strict=True)), np) - before)
    np.testing.assert_allclose(steps[1], 3.0 * steps[0], rtol=1e-10, atol=1e-15)
    # fit's rows set the scale too: fitted with every weight 2, a chunk of weights 2 steps as an unweighted
    # chunk after an unweighted fit
    twice = hml.MultilayerPerceptron(max_iter=2, tol=None, **kwargs).fit(X, codes, sample_weight=np.full(60, 2.0))
    once = hml.MultilayerPerceptron(max_iter=2, tol=None, **kwargs).fit(X, codes)
    twice.partial_fit(X[:20], codes[:20], sample_weight=np.full(20, 2.0))
    once.partial_fit(X[:20], codes[:20])
    np.testing.assert_allclose(twice.coefs_[0], once.coefs_[0], rtol=1e-12, atol=1e-15)


def test_partial_fit_on_a_model_that_fits_well_does_not_call_noise_divergence():
    """A chunk's J(θ₀) is tiny once the model fits, and Adam's steps do not shrink with the gradient: the
    epoch's cost can be 10× the chunk's first while the model is fine (R² stays ~1). partial_fit, like
    scikit-learn's, stops only on a non-finite cost."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    kwargs = dict(layers=[3, 8, 1], random_state=0, batch_size=50, learning_rate=0.03, l2=0.0)
    model = hml.MultilayerPerceptronRegressor(max_iter=1000, tol=None, **kwargs).fit(X, y)
    for i in range(200):  # raised DivergenceError at call 83 ("the cost grew from 1.8e-08 to 2.5e-07")
        model.partial_fit(X[(i % 4) * 100 : (i % 4 + 1) * 100], y[(i % 4) * 100 : (i % 4 + 1) * 100])
    assert model.score(X, y) > 0.999
    # A real divergence still stops: the weights overflow within an epoch (NumPy's overflow warnings, which
    # the suite makes errors inside hml, are silenced here as a user's settings might), the cost is inf.
    exploding = hml.MultilayerPerceptronRegressor(**{**kwargs, "solver": "gd", "learning_rate": 10.0})
    with pytest.raises(hml.DivergenceError, match=r"the cost became non-finite"), np.errstate(all="ignore"):
        for _ in range(50):
            exploding.partial_fit(X, y)


def test_early_stopping_checks_sample_weight_as_a_fit_without_it():
    X, codes = blobs(m=40, seed=13)
    for early_stopping in (False, True):
        model = hml.MultilayerPerceptron(layers=[4, 4, 3], max_iter=3, early_stopping=early_stopping, random_state=0)
        for wrong in (np.ones(39), np.ones(41)):  # an IndexError, and 41 silently taken, with early stopping
            with pytest.raises(ValueError, match=r"sample_weight must be 1-D with one weight per row of X \(40\)"):
                model.fit(X, codes, sample_weight=wrong)
        for scalar in (np.float32(2.0), np.int64(2)):  # an IndexError with early stopping
            as_array = model.fit(X, codes, sample_weight=np.full(40, 2.0)).coefs_[0]
            np.testing.assert_array_equal(model.fit(X, codes, sample_weight=scalar).coefs_[0], as_array)


def test_a_validation_fraction_that_cannot_split_the_rows_says_so_in_the_networks_terms():
    """It raised train_test_split's message about test_size and train_size, eight frames deep."""
    X, codes = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 3
    for fraction in (0.05, 0.95):  # 2 rows on one side for 3 classes
        model = hml.MultilayerPerceptron(early_stopping=True, validation_fraction=fraction, max_iter=2)
        with pytest.raises(
            ValueError, match=rf"validation_fraction={fraction} of these 40 rows.* between 0.075 and 0.925"
        ):
            model.fit(X, codes)
    for fraction in (0.075, 0.925):  # the bounds the message gives work
        hml.MultilayerPerceptron(early_stopping=True, validation_fraction=fraction, max_iter=2).fit(X, codes)


def test_early_stopping_scores_the_iterate_that_meets_tol():
    """A tol stop ended the loop before its iterate was scored: stopped at the first epoch, the model was θ₀,
    the untrained start, and L-BFGS dropped its converged iterate. Every iterate is scored, as scikit-learn's."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    model = hml.MultilayerPerceptron(early_stopping=True, batch_size=10, tol=0.3, random_state=0, max_iter=60)
    model.fit(X, y)
    theta0 = np.asarray(model._prepare(X, y, validate(model)).theta0)
    assert len(model.validation_scores_) == model.n_iter_ == 1
    assert not np.array_equal(pack(list(zip(model.coefs_, model.intercepts_, strict=True)), np), theta0)
    X = rng.normal(size=(300, 3))
    regressor = hml.MultilayerPerceptronRegressor(
        solver="lbfgs", batch_size=None, early_stopping=True, n_iter_no_change=50, random_state=0, max_iter=500
    ).fit(X, X @ [1.0, -2, 0.5] + np.sin(X[:, 0]))
    assert regressor.n_iter_ < 500 and len(regressor.validation_scores_) == regressor.n_iter_


@pytest.mark.parametrize("solver", ["lbfgs", "cg"])
def test_the_regressors_full_batch_solvers_ignore_the_default_batch_size(solver):
    """The default batch_size=200 refused solver='lbfgs' with its own defaults; scikit-learn's ignores it."""
    X = np.random.default_rng(0).normal(size=(50, 3))
    y = X @ [1.0, -2.0, 0.5]
    default = hml.MultilayerPerceptronRegressor(solver=solver, random_state=0).fit(X, y)
    full = hml.MultilayerPerceptronRegressor(solver=solver, random_state=0, batch_size=None).fit(X, y)
    np.testing.assert_array_equal(default.predict(X), full.predict(X))
    with pytest.raises(ValueError, match=rf"batch_size=20 is for solver='gd' or 'adam'.*solver='{solver}'"):
        hml.MultilayerPerceptronRegressor(solver=solver, batch_size=20).fit(X, y)


def test_early_stopping_scores_the_held_out_rows_with_their_weights():
    """Rows of weight 0 are left out, from the validation score too (scikit-learn scores the held-out rows with
    their weights): unweighted, noise labels of weight 0 set the stopping and the best weights."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = (X[:, 0] > 0).astype(int)
    noise = np.arange(400) % 2 == 1
    y[noise] = rng.integers(0, 2, noise.sum())
    w = np.where(noise, 0.0, 1.0)
    model = hml.MultilayerPerceptron(early_stopping=True, random_state=0, max_iter=200, solver="adam")
    model.fit(X, y, sample_weight=w)
    _, held = hold_out_rows(model, X, y)
    right = model.predict(X[held]) == y[held]  # the model is the best weights
    assert model.best_validation_score_ == pytest.approx(np.average(right, weights=w[held]), abs=1e-12)
    assert abs(model.best_validation_score_ - right.mean()) > 0.05


def hold_out_rows(model, X, y):
    from hml._mlp import Targets, hold_out

    codes = np.unique(y, return_inverse=True)[1]
    return hold_out(Targets(np.unique(y), codes), validate(model))


def test_the_regressors_held_out_r2_needs_two_rows_and_follows_r2_score_for_a_constant_y():
    from hml._mlp import validation_r2

    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(
        ValueError, match=r"holds out validation_fraction=0.1 of these 10 rows, 1 row, and its R² needs 2"
    ):
        hml.MultilayerPerceptronRegressor(early_stopping=True).fit(X, X[:, 0])
    constant = np.array([[2.0], [2.0]])
    assert float(validation_r2(np, np.array([[2.0], [2.5]]), constant)) == 0.0
    assert float(validation_r2(np, constant, constant)) == 1.0
    truth, guess, w = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])
    mean = np.average(truth, weights=w)
    expected = 1 - np.sum(w * (truth - guess) ** 2) / np.sum(w * (truth - mean) ** 2)
    assert float(validation_r2(np, guess[:, None], truth[:, None], w)) == pytest.approx(expected, rel=1e-12)


def test_partial_fit_refuses_early_stopping_and_names_diverged_earlier_steps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, 2, 3]
    with pytest.raises(ValueError, match=r"partial_fit takes every row of its chunk.*early_stopping=True is for fit"):
        hml.MultilayerPerceptronRegressor(early_stopping=True).partial_fit(X, y)
    model = hml.MultilayerPerceptronRegressor(random_state=0, solver="gd", learning_rate=1.0, batch_size=5)
    with np.errstate(over="ignore", invalid="ignore"):
        model.partial_fit(X, y)  # its cost grows by 1e110: no error within a call
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(hml.DivergenceError, match=r"partial_fit: the weights that the earlier calls left.*smaller"):
            model.partial_fit(X, y)
    sound = hml.MultilayerPerceptronRegressor(solver="adam", random_state=0).partial_fit(X, y)
    huge = X.copy()
    huge[0] = 1e200  # this chunk's own values overflow: the data's message, not the earlier steps'
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(hml.DivergenceError, match=r"J\(θ₀\), is already .*the data's values are too large"):
            sound.partial_fit(huge, y)


def test_one_nan_weight_with_balanced_classes_is_named_at_its_row():
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    w = np.ones(40)
    w[3] = np.nan
    with pytest.raises(
        ValueError, match=r"sample_weight contains 1 NaN or infinite value\(s\) \(the first at index 3\)"
    ):
        hml.MultilayerPerceptron(class_weight="balanced").fit(X, y, sample_weight=w)
