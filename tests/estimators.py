"""The estimator configurations every cross-cutting test runs: one list, ``SPECS``.

A cross-cutting test states a property that every estimator must have -- scikit-learn's checks,
only documented host reads, saving and loading, interrupted fits, Dask, input validation, the
numerical range -- and takes its estimators from here, choosing among them by what a spec says
(it iterates, it standardises X, its outputs, its target), never by a list of names. A new
estimator is added to ``SPECS`` once and every such test runs it;
``test_the_list_is_the_registry_of_saved_model_classes`` fails until it is.

Each configuration is small (its data a few hundred rows, its fit a few tens of iterations), as
the CI budget needs, and its parameters do not depend on the data's shape, so any test may fit
it on data of its own size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from example_estimator import RidgeRegression

import hml

#: Every per-row output an estimator may offer, in the order a test that compares one takes them:
#: the most informative continuous one first (probabilities, distances, log-densities), labels last.
OUTPUTS = (
    "predict_proba",
    "predict_log_proba",
    "transform",
    "score_samples",
    "density",
    "decision_function",
    "predict",
)


@dataclass(frozen=True, eq=False)
class Spec:
    """One estimator configuration, and what the cross-cutting tests need to know about it.

    ``kind`` is scikit-learn's ``estimator_type`` tag ("regressor", "classifier", "clusterer",
    "density_estimator"; None for a transformer); it decides the target. ``loop_read`` is the
    host read its training loop makes (``ComputeContext.read``'s ``why``), None when ``fit`` has no
    loop, and ``read_every`` how many iterations (or epochs) it makes one per: 10 for gradient
    descent's window of costs, 1 for an epoch or a Lloyd iteration, None for a line search, which
    reads at every evaluation of J (at least once per iteration). ``loop_uploads`` counts the host-to-device copies per iteration off NumPy (a mini-batch
    epoch's order, drawn on the host). ``expected_failed_checks`` names the scikit-learn checks
    it is known to fail, each with the reason (``check_estimator``'s argument of that name).
    """

    id: str
    cls: type[Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str | None = None
    loop_read: str | None = None
    read_every: int | None = None
    loop_uploads: int = 0
    expected_failed_checks: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:  # the test id: ``pytest.mark.parametrize("spec", SPECS, ids=str)``
        return self.id

    def make(self, **overrides: Any) -> Any:
        """The (unfitted) estimator, with ``overrides`` of the parameters its class declares
        (others, such as ``max_iter`` for an estimator without one, are dropped)."""
        declared = self.cls.__params__
        return self.cls(**{**self.params, **{name: value for name, value in overrides.items() if name in declared}})

    @property
    def target(self) -> str | None:
        """What ``fit`` needs as ``y``: "values" (a regressor), "classes" (a classifier), or None."""
        return {"regressor": "values", "classifier": "classes"}.get(self.kind or "")

    @property
    def iterative(self) -> bool:
        """Whether ``fit`` iterates, reporting each iteration through :func:`hml.optimize.progress`."""
        return self.loop_read is not None

    @property
    def outputs(self) -> tuple[str, ...]:
        """The per-row output methods the estimator offers, in :data:`OUTPUTS`' order."""
        return tuple(method for method in OUTPUTS if hasattr(self.cls, method))

    @property
    def output(self) -> str:
        """The per-row output a test compares when it compares one: its most informative."""
        return self.outputs[0]

    @property
    def standardises(self) -> bool:
        """Whether the fit standardises X (``normalize=True``), which makes it exact at any finite scale."""
        return bool(self.make().get_params().get("normalize", False))

    def data(self, n: int = 200, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """(X, y) to fit on, n × d, the same for the same seed: a linear target with noise for a
        regressor, three Gaussian blobs labelled 0, 1, 2 for a classifier, and standard normal
        X with y = None for the rest."""
        rng = np.random.default_rng(seed)
        if self.target == "classes":
            centres = rng.normal(scale=3.0, size=(3, d))
            y = np.arange(n) % 3
            return centres[y] + rng.normal(size=(n, d)), y
        X = rng.normal(size=(n, d))
        if self.target == "values":
            return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
        return X, None


SPECS: tuple[Spec, ...] = (
    # tol=None: every iteration it is given runs (its step, "auto", from a power iteration).
    Spec(
        "linear-gd",
        hml.LinearRegression,
        {"polynomial_degree": 2, "tol": None, "max_iter": 20},
        kind="regressor",
        loop_read="cost window",
        read_every=10,
    ),
    Spec(
        "linear-normal",
        hml.LinearRegression,
        {"solver": "normal"},
        kind="regressor",
    ),
    # Enough iterations to reach tol on the classification data: the stopping test runs too.
    Spec(
        "logistic-lbfgs",
        hml.LogisticRegression,
        {"max_iter": 20},
        kind="classifier",
        loop_read="line search",
    ),
    Spec(
        "logistic-ovr-gd",
        hml.LogisticRegression,
        {"solver": "gd", "multi_class": "ovr", "max_iter": 20},
        kind="classifier",
        loop_read="cost window",
        read_every=10,
    ),
    # 10 iterations: CG grows rounding differences about tenfold every 5 (its β subtracts successive
    # gradients), so after 15 the Dask fit (other summation order) is 2e-11 off the NumPy fit's
    # coefficients -- beyond the 1e-12 to which the Dask tests compare logits near 0; after 10, 1e-13.
    Spec(
        "logistic-cg",
        hml.LogisticRegression,
        {"solver": "cg", "max_iter": 10},
        kind="classifier",
        loop_read="line search",
    ),
    # layers=None: [n_features, 25, n_classes], whatever the data.
    Spec(
        "mlp-gd",
        hml.MultilayerPerceptron,
        {"max_iter": 20, "random_state": 0},
        kind="classifier",
        loop_read="cost window",
        read_every=10,
    ),
    # A step that learns within 4 epochs (probabilities far from uniform) and does not diverge in 40.
    Spec(
        "mlp-minibatch",
        hml.MultilayerPerceptron,
        {"batch_size": 64, "momentum": 0.9, "learning_rate": 0.5, "max_iter": 4, "random_state": 0},
        kind="classifier",
        loop_read="cost window",
        read_every=1,
        loop_uploads=1,
    ),
    # Adam on mini-batches (scikit-learn's MLP defaults but the step, larger for the few epochs).
    Spec(
        "mlp-adam",
        hml.MultilayerPerceptron,
        {"solver": "adam", "batch_size": 64, "learning_rate": 0.05, "max_iter": 4, "random_state": 0},
        kind="classifier",
        loop_read="cost window",
        read_every=1,
        loop_uploads=1,
    ),
    Spec(
        "mlp-lbfgs",
        hml.MultilayerPerceptron,
        {"solver": "lbfgs", "max_iter": 10, "random_state": 0},
        kind="classifier",
        loop_read="line search",
    ),
    # Its defaults (scikit-learn's: relu, Adam on batches of 200) with a larger step for few epochs.
    Spec(
        "mlp-regressor",
        hml.MultilayerPerceptronRegressor,
        {"layers": None, "learning_rate": 0.01, "max_iter": 20, "random_state": 0},
        kind="regressor",
        loop_read="cost window",
        read_every=1,
        loop_uploads=1,
    ),
    # tol=0: Lloyd's iterations run until no label changes (or max_iter).
    Spec(
        "kmeans",
        hml.KMeans,
        {"n_clusters": 3, "max_iter": 20, "tol": 0.0, "random_state": 0},
        kind="clusterer",
        loop_read="k-means convergence",
        read_every=1,
        expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": "k-means++ draws rows by index, so weighted rows and "
            "repeated rows seed differently (scikit-learn's KMeans lists this check as failing too); from the same "
            "centres the fits are equal (tests/test_sample_weight.py)",
        },
    ),
    # Batches of 32 rows, every step of max_iter epochs run (no early stop): ⌊max_iter · n / 32⌋ steps,
    # read every 16 (its loop's iterations are its steps, n_steps_; n_iter_ counts epochs).
    Spec(
        "minibatch-kmeans",
        hml.MiniBatchKMeans,
        {"n_clusters": 3, "batch_size": 32, "max_iter": 20, "max_no_improvement": None, "random_state": 0},
        kind="clusterer",
        loop_read="mini-batch k-means",
        read_every=16,
        expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": "the batches are drawn by row index (∝ the weights), so "
            "the check's shuffled weighted rows give other batches than its repeated rows -- equal in distribution; "
            "a step from the same centres is equal (tests/test_cluster.py)",
        },
    ),
    # The threshold given, or the contamination quantile of the training densities (a sort).
    Spec("anomaly-diag", hml.GaussianAnomalyDetection, {"threshold": 1e-3}, kind="density_estimator"),
    Spec(
        "anomaly-full",
        hml.GaussianAnomalyDetection,
        {"covariance": "full"},
        kind="density_estimator",
        expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": "its data has 30 features and fewer distinct rows: a "
            "full covariance is singular there, refused with the fix (covariance='diag')",
        },
    ),
    Spec("features", hml.FeatureTransformer, {"polynomial_degree": 2, "sinusoid_degree": 1}),
    # The example of an estimator written outside hml (tests/example_estimator.py).
    Spec("ridge", RidgeRegression, kind="regressor"),
)

#: The specs by id, for the tests about one configuration.
BY_ID: dict[str, Spec] = {spec.id: spec for spec in SPECS}

#: The reads that are a training loop's, of whichever estimator.
LOOP_READS = frozenset(spec.loop_read for spec in SPECS if spec.loop_read is not None)


def loop_iterations(model: Any) -> int:
    """The iterations a fit's loop made: mini-batch k-means' steps (``n_steps_``; its ``n_iter_``
    counts epochs, as scikit-learn's), every other estimator's ``n_iter_``."""
    return int(getattr(model, "n_steps_", model.n_iter_))


def classes() -> list[type[Any]]:
    """The estimator classes of ``SPECS``, each once, in the order of their first spec."""
    return list(dict.fromkeys(spec.cls for spec in SPECS))
