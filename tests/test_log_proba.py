"""predict_log_proba of both classifiers: the logs of predict_proba, from the logits, finite where it underflows.

References: scipy's log_softmax and log_expit of the logits computed here from the fitted weights.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from estimators import SPECS

import hml

special = pytest.importorskip("scipy.special")

CLASSIFIERS = [spec for spec in SPECS if "predict_proba" in spec.outputs]


def _fit(spec, case, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hml.ConvergenceWarning)
        return spec.make(**params).fit(case.asarray(X), y)


@pytest.mark.parametrize("spec", CLASSIFIERS, ids=str)
def test_the_exponential_of_log_proba_is_predict_proba(case, spec):
    X, y = spec.data(n=150, d=3)
    model = _fit(spec, case, X, y)
    log_p = model.predict_log_proba(case.asarray(X))
    assert case.ctx.backend.owns(log_p) and log_p.shape == (150, 3)
    np.testing.assert_allclose(
        np.exp(case.to_numpy(log_p)), case.to_numpy(model.predict_proba(case.asarray(X))), rtol=case.rtol * 10
    )


def _mlp_logits(model, X):
    """The network's output logits, by the forward pass written out here in NumPy."""
    A = (X - model.feature_transformer_.mean_) / model.feature_transformer_.scale_ if model.normalize else X
    for k, (W, b) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        H = A @ W + b
        last = k == len(model.coefs_) - 1
        A = H if last else (np.maximum(H, 0) if model.activation == "relu" else special.expit(H))
    return A


@pytest.mark.parametrize("multi_class", ["multinomial", "ovr"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_log_proba_from_the_logits_where_probabilities_underflow(multi_class, n_classes):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(n_classes, 2))
    y = np.arange(300) % n_classes
    X = centres[y] + rng.normal(size=(300, 2))
    model = hml.LogisticRegression(multi_class=multi_class, normalize=False, max_iter=30).fit(X, y)
    far = 1e4 * X[:20]  # logits of order 1e4: exp underflows
    z = model.decision_function(far)
    z = z[:, None] if z.ndim == 1 else z
    if multi_class == "multinomial" and n_classes > 2:
        expected = special.log_softmax(z, axis=1)
    elif z.shape[1] == 1:
        expected = np.column_stack([special.log_expit(-z[:, 0]), special.log_expit(z[:, 0])])
    else:  # one-vs-all: the normalised sigmoids
        expected = special.log_expit(z) - special.logsumexp(special.log_expit(z), axis=1, keepdims=True)
    assert (model.predict_proba(far) == 0.0).any()  # the case this is for
    log_p = model.predict_log_proba(far)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(log_p, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_mlp_log_proba_from_the_logits_where_probabilities_underflow(output):
    rng = np.random.default_rng(1)
    y = np.arange(300) % 3
    X = rng.normal(scale=3.0, size=(3, 4))[y] + rng.normal(size=(300, 4))
    model = hml.MultilayerPerceptron(
        layers=[4, 6, 3], output=output, activation="relu", normalize=False, max_iter=50, random_state=0
    ).fit(X, y)
    far = 1e5 * X[:20]
    z = _mlp_logits(model, far)
    if output == "softmax":
        expected = special.log_softmax(z, axis=1)
    else:
        expected = special.log_expit(z) - special.logsumexp(special.log_expit(z), axis=1, keepdims=True)
    assert (model.predict_proba(far) == 0.0).any()
    log_p = model.predict_log_proba(far)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(log_p, expected, rtol=1e-10, atol=1e-10)


def test_one_vs_all_probabilities_where_every_sigmoid_underflows(case):
    """Far out, every σ(zₖ) of a one-vs-all row underflows to 0: dividing by their sum gave 0/0 = NaN and
    ``predict`` the first class. The row is the softmax of log σ(z) (scipy's, here), and the class the
    largest logit's. The same for a network of per-class sigmoids."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.repeat([0, 1, 2], 30)
    X[np.arange(90), y] += 3.0  # class k lies along feature k
    ovr = hml.LogisticRegression(multi_class="ovr", normalize=False).fit(case.asarray(X), y)
    W = case.to_numpy(ovr.coef_)
    direction = np.linalg.solve(W.T, -np.array([1.2, 1.1, 1.0]))  # every logit falls; class 2's slowest
    far = np.vstack([5 * direction, 1000 * direction])
    logits = case.to_numpy(ovr.decision_function(case.asarray(far)))
    assert logits[1].max() < -745  # every σ(z) of the second row is below float64's smallest number
    expected = special.softmax(special.log_expit(logits), axis=1)
    proba = case.to_numpy(ovr.predict_proba(case.asarray(far)))
    np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(case.to_numpy(ovr.predict(case.asarray(far))), logits.argmax(axis=1))
    net = hml.MultilayerPerceptron(layers=[3, 3], output="sigmoid", normalize=False, max_iter=50, random_state=0)
    net.fit(case.asarray(X), y)
    out = case.to_numpy(net.predict_proba(case.asarray(1e6 * far)))
    assert np.isfinite(out).all() and np.allclose(out.sum(axis=1), 1.0)
