"""Invariants, property-based (hypothesis): over shapes, scales, seeds and every CPU backend.

Each property runs 200 examples on numpy and array_api_strict and 25 on torch and Dask
(``derandomize=True``: the same examples on every run, so CI cannot flake). The fits are
the library's own, on NumPy input with ``backend=``: the invariant must hold wherever the
work runs.

- permuting the rows changes neither a linear fit nor the k-means inertia from given centroids;
- the k-means distortion never increases across Lloyd iterations;
- every classifier's ``predict_proba`` rows are probabilities that sum to 1;
- scaling X and refitting with ``normalize=True`` gives the same predictions;
- float32 and float64 fits agree (to float32's precision, relative to the targets' scale);
- finite input gives finite output -- every per-row output -- from every estimator.

A property of a family of estimators (the classifiers, all of them) runs on each of its
specs in ``tests/estimators.py``, which share the backend's examples.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from estimators import SPECS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hml

EXAMPLES = {"numpy": 200, "array_api_strict": 200, "torch": 25, "dask": 25}
BACKENDS = [name for name in EXAMPLES if hml.available_backends()[name].available]


def _run(backend, property_, share=1, **strategies):
    """``property_(backend, **drawn)`` over the backend's number of examples (its ``share`` of them,
    for a property run once per estimator of a family: the family shares them)."""
    check = given(**strategies)(lambda **drawn: property_(backend, **drawn))
    settings(
        max_examples=math.ceil(EXAMPLES[backend] / share),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(check)()


@st.composite
def problems(draw, min_rows=12):
    """X (n × d) at a scale of 10^e, a linear target with noise, and the seed that made them."""
    n = draw(st.integers(min_rows, 60))
    d = draw(st.integers(1, 4))
    exponent = draw(st.integers(-6, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 10.0**exponent
    y = (X / 10.0**exponent) @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    return X, y, rng


def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning (fixed iteration counts), PerformanceWarning (Dask)
        return fit()


def _linear(backend, **params):
    return hml.LinearRegression(max_iter=40, tol=None, learning_rate=0.5, backend=backend, **params)


def _np(values):
    return np.asarray(values.compute() if hasattr(values, "compute") else values)


@pytest.mark.parametrize("backend", BACKENDS)
def test_permuting_rows_changes_neither_a_linear_fit_nor_the_kmeans_inertia(backend):
    def check(backend, problem):
        X, y, rng = problem
        order = rng.permutation(X.shape[0])
        fitted = _quiet(lambda: _linear(backend).fit(X, y))
        permuted = _quiet(lambda: _linear(backend).fit(X[order], y[order]))
        np.testing.assert_allclose(
            _np(permuted.predict(X)), _np(fitted.predict(X)), rtol=1e-9, atol=1e-9 * np.abs(y).max()
        )
        centroids = X[:3].copy()
        kmeans = _quiet(lambda: hml.KMeans(3, init=centroids, max_iter=5, tol=0.0, backend=backend).fit(X))
        shuffled = _quiet(lambda: hml.KMeans(3, init=centroids, max_iter=5, tol=0.0, backend=backend).fit(X[order]))
        assert shuffled.inertia_ == pytest.approx(kmeans.inertia_, rel=1e-9, abs=1e-300)

    _run(backend, check, problem=problems())


@pytest.mark.parametrize("backend", BACKENDS)
def test_kmeans_distortion_never_increases_across_lloyd_iterations(backend):
    def check(backend, problem, k):
        X, _, rng = problem
        model = _quiet(
            lambda: hml.KMeans(
                k, init="random", max_iter=15, tol=0.0, random_state=int(rng.integers(1 << 30)), backend=backend
            ).fit(X)
        )
        history = _np(model.cost_history_)
        assert np.all(np.isfinite(history))
        assert np.all(np.diff(history) <= 1e-12 * history[:-1]), history
        assert model.inertia_ <= history[-1] * (1 + 1e-12)

    _run(backend, check, problem=problems(), k=st.integers(1, 5))


CLASSIFIERS = [spec for spec in SPECS if "predict_proba" in spec.outputs]


@pytest.mark.parametrize("spec", CLASSIFIERS, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_class_probabilities_are_probabilities_summing_to_one(backend, spec):
    def check(backend, problem, n_classes):
        X, y, rng = problem
        labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
        model = spec.make(max_iter=10, random_state=int(rng.integers(1 << 30)), backend=backend)
        model = _quiet(lambda: model.fit(X, labels))
        proba = _np(model.predict_proba(X))
        assert proba.shape == (X.shape[0], len(model.classes_))
        assert np.all(proba >= 0) and np.all(proba <= 1)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)

    _run(backend, check, len(CLASSIFIERS), problem=problems(), n_classes=st.integers(2, 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaling_X_does_not_change_a_normalized_fit(backend):
    def check(backend, problem, exponent):
        X, y, _ = problem
        scale = 10.0**exponent
        fitted = _quiet(lambda: _linear(backend, normalize=True).fit(X, y))
        scaled = _quiet(lambda: _linear(backend, normalize=True).fit(X * scale, y))
        np.testing.assert_allclose(
            _np(scaled.predict(X * scale)), _np(fitted.predict(X)), rtol=1e-8, atol=1e-8 * np.abs(y).max()
        )

    _run(backend, check, problem=problems(), exponent=st.integers(-8, 8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_and_float64_fits_agree(backend):
    """Stated tolerance: 1e-4 of the targets' scale -- float32's 6e-8 rounding, grown over 40
    iterations and the standardisation's sums."""

    def check(backend, problem):
        X, y, _ = problem
        single = _quiet(lambda: _linear(backend, dtype="float32").fit(X, y))
        double = _quiet(lambda: _linear(backend).fit(X, y))
        got = _np(single.predict(X))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, _np(double.predict(X)), rtol=0, atol=1e-4 * np.abs(y).max())

    _run(backend, check, problem=problems())


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_finite_input_gives_finite_output(backend, spec):
    def check(backend, problem):
        X, y, rng = problem
        target = {"values": y, "classes": (y > np.median(y)).astype(int), None: None}[spec.target]
        model = spec.make(max_iter=10, random_state=int(rng.integers(1 << 30)), backend=backend)
        model = _quiet(lambda: model.fit(X, target))
        for method in spec.outputs:
            values = _np(getattr(model, method)(X))
            assert np.all(np.isfinite(values)), (spec.id, method, values)

    _run(backend, check, len(SPECS), problem=problems())
