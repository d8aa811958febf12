"""Faults during a fit: an interrupted fit leaves the estimator as it was; fits in threads
with different backends do not see each other's choice."""

from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np
import pytest
from estimators import BY_ID, SPECS

import hml
from hml.base import BaseEstimator
from hml.optimize import progress


def _data(spec, seed=0):
    return spec.data(n=200, d=3, seed=seed)


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        return model.fit(X, y)


def _outputs(spec, model, X):
    return {method: getattr(model, method)(X) for method in spec.outputs}


def _interrupt_at(iteration):
    def on_iteration(done, max_iter):
        if done == iteration:
            raise KeyboardInterrupt

    return progress(on_iteration)


@contextlib.contextmanager
def _interrupt_at_the_end(monkeypatch, model):
    """A KeyboardInterrupt as ``model``'s fit ends: its fitted state set, its input just remembered
    (a sub-estimator's, such as a feature transformer's, passes)."""
    remember = BaseEstimator._remember_input

    def interrupted(self, fitted):
        remember(self, fitted)
        if self is model:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(BaseEstimator, "_remember_input", interrupted)
        yield


def _check_interrupted_fits_change_nothing(spec, interrupt):
    """A first fit, interrupted (``interrupt(model)``: a context), stores nothing; a refit,
    interrupted, leaves the earlier fit."""
    X, y = _data(spec)
    fresh = spec.make()
    with interrupt(fresh), pytest.raises(KeyboardInterrupt):
        _fit(fresh, X, y)
    assert not [key for key in vars(fresh) if key.endswith("_")], "an interrupted first fit stores nothing"
    for method in spec.outputs:
        with pytest.raises(hml.NotFittedError):
            getattr(fresh, method)(X)

    fitted = _fit(spec.make(), X, y)
    state = dict(vars(fitted))
    before = _outputs(spec, fitted, X)
    X2, y2 = _data(spec, seed=1)
    with interrupt(fitted), pytest.raises(KeyboardInterrupt):
        _fit(fitted, 3.0 * X2, y2)
    assert vars(fitted).keys() == state.keys() and all(vars(fitted)[key] is state[key] for key in state)
    for method, values in _outputs(spec, fitted, X).items():
        np.testing.assert_array_equal(values, before[method])


# An interrupt between iterations needs iterations (the others are interrupted as they end, below).
@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.iterative], ids=str)
def test_an_interrupted_fit_leaves_the_estimator_as_it_was(spec):
    _check_interrupted_fits_change_nothing(spec, lambda model: _interrupt_at(3))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_a_fit_interrupted_as_it_ends_leaves_the_estimator_as_it_was(spec, monkeypatch):
    """The latest an interrupt can come: every fitted attribute already set."""
    _check_interrupted_fits_change_nothing(spec, lambda model: _interrupt_at_the_end(monkeypatch, model))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_a_fit_reports_progress_exactly_when_its_spec_says_it_iterates(spec):
    """What the interrupt tests above and the verbose and read-count tests rely on."""
    X, y = _data(spec)
    reported = []
    with progress(lambda done, max_iter: reported.append(done)):
        _fit(spec.make(), X, y)
    assert bool(reported) == spec.iterative


def test_an_interrupt_in_dasks_final_compute_leaves_no_lazy_half_fitted_model(monkeypatch):
    """On Dask the fitted state is computed at the very end (one pass): an interrupt there
    must not leave a model whose attributes are graphs over the training data."""
    da = pytest.importorskip("dask.array")
    from hml import backends

    X, y = _data(BY_ID["linear-gd"])
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
    status = hml.available_backends()
    names = ["numpy"] + [name for name in ("array_api_strict", "torch") if status[name].available]

    def fit_on(name):
        """Every spec fitted where ``use_backend`` says: (backend, its compared output) by spec id."""
        fitted = {}
        with hml.use_backend(name):
            for spec in SPECS:
                X, y = _data(spec)
                model = _fit(spec.make(), X, y)
                fitted[spec.id] = (model._ctx_.backend.name, hml.backends.to_numpy(getattr(model, spec.output)(X)))
        return fitted

    sequential = {name: fit_on(name) for name in names}
    results: dict[str, dict] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names) * 2)

    def worker(name, slot):
        try:
            barrier.wait(timeout=30)
            results[f"{name}-{slot}"] = fit_on(name)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(name, slot)) for name in names for slot in range(2)]
    # catch_warnings in _fit saves and restores the process's filters, which threads share: set
    # here, the filter is in every state a thread restores, so no warning leaks between threads.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    assert len(results) == len(threads)
    for key, fitted in results.items():
        name = key.rsplit("-", 1)[0]
        for spec_id, (backend, output) in fitted.items():
            assert backend == name, spec_id
            np.testing.assert_allclose(output, sequential[name][spec_id][1], rtol=1e-12, atol=1e-12, err_msg=spec_id)
