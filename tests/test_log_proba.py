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
