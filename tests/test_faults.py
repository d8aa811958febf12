"""Faults during a fit: an interrupted fit leaves the estimator as it was; fits in threads
with different backends do not see each other's choice."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import hml
from hml.optimize import progress


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200), (X[:, 0] > 0).astype(int)


ESTIMATORS = {
    "linear": (lambda: hml.LinearRegression(max_iter=40, tol=None), "values", "predict"),
    "logistic": (lambda: hml.LogisticRegression(max_iter=15), "classes", "predict_proba"),
    "mlp": (
        lambda: hml.MultilayerPerceptron(layers=[3, 4, 2], max_iter=15, random_state=0),
        "classes",
        "predict_proba",
    ),
    "kmeans": (lambda: hml.KMeans(3, random_state=0, max_iter=20, tol=0.0), None, "transform"),
}


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        return model.fit(X, y) if y is not None else model.fit(X)


def _interrupt_at(iteration):
    def on_iteration(done, max_iter):
        if done == iteration:
            raise KeyboardInterrupt

    return progress(on_iteration)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_an_interrupted_fit_leaves_the_estimator_as_it_was(name):
    factory, target, method = ESTIMATORS[name]
    X, values, classes = _data()
    y = {"values": values, "classes": classes, None: None}[target]
    fresh = factory()
    with _interrupt_at(3), pytest.raises(KeyboardInterrupt):
        _fit(fresh, X, y)
    assert not [key for key in vars(fresh) if key.endswith("_")], "an interrupted first fit stores nothing"
    with pytest.raises(hml.NotFittedError):
        getattr(fresh, method)(X)

    fitted = _fit(factory(), X, y)
    state = dict(vars(fitted))
    before = getattr(fitted, method)(X)
    X2, values2, classes2 = _data(seed=1)
    y2 = {"values": values2, "classes": classes2, None: None}[target]
    with _interrupt_at(3), pytest.raises(KeyboardInterrupt):
        _fit(fitted, 3.0 * X2, y2)
    assert vars(fitted).keys() == state.keys() and all(vars(fitted)[key] is state[key] for key in state)
    np.testing.assert_array_equal(getattr(fitted, method)(X), before)


def test_an_interrupt_in_dasks_final_compute_leaves_no_lazy_half_fitted_model(monkeypatch):
    """On Dask the fitted state is computed at the very end (one pass): an interrupt there
    must not leave a model whose attributes are graphs over the training data."""
    da = pytest.importorskip("dask.array")
    from hml import backends

    X, y, _ = _data()
    X_d, y_d = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    model = _fit(hml.LinearRegression(max_iter=20), X, y)  # fitted before, on NumPy
    coef = model.coef_

    original = backends.ComputeContext.concrete
    calls = []

    def interrupted(self, *arrays, why="fitted state"):
        calls.append(why)
        # The model's own fitted state is the last compute of fit (after the feature
        # transformer's statistics and its state): interrupted there, the attributes are set.
        if calls.count("fitted state") == 2:
            raise KeyboardInterrupt
        return original(self, *arrays, why=why)

    monkeypatch.setattr(backends.ComputeContext, "concrete", interrupted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            model.fit(X_d, y_d)
    assert calls == ["feature statistics", "fitted state", "fitted state"]
    assert model.coef_ is coef and isinstance(model.coef_, np.ndarray)
    assert model._ctx_.backend.name == "numpy"


def test_fits_in_threads_with_different_backends_match_sequential_fits():
    """``use_backend`` is local to its thread: fits running at once on numpy, array_api_strict
    and torch each compute where their thread asked, with the results of the same fits in turn."""
    X, y, classes = _data()
    status = hml.available_backends()
    names = ["numpy"] + [name for name in ("array_api_strict", "torch") if status[name].available]

    def fit_on(name):
        with hml.use_backend(name):
            linear = _fit(hml.LinearRegression(max_iter=60, tol=None), X, y)
            kmeans = _fit(hml.KMeans(3, random_state=0, max_iter=10, tol=0.0), X, None)
        return (
            linear._ctx_.backend.name,
            hml.backends.to_numpy(linear.coef_),
            hml.backends.to_numpy(kmeans.cluster_centers_),
        )

    sequential = {name: fit_on(name) for name in names}
    results: dict[str, tuple] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names) * 2)

    def worker(name, slot):
        try:
            barrier.wait(timeout=30)
            results[f"{name}-{slot}"] = fit_on(name)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(name, slot)) for name in names for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for key, (backend, coef, centres) in results.items():
        name = key.rsplit("-", 1)[0]
        assert backend == name
        np.testing.assert_allclose(coef, sequential[name][1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(centres, sequential[name][2], rtol=1e-12, atol=1e-12)
