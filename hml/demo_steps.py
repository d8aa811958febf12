"""The steps of ``hml demo``: each of the five algorithms trained on its demo data set, measured the
way the original project measured it, with fixed seeds, beside its quality floor; and the plot
it draws. :mod:`hml.demo` runs them."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import hml
from hml import backends, metrics
from hml._platform import progress_bar
from hml.exceptions import ConvergenceWarning
from hml.model_selection import train_test_split
from hml.optimize import progress

__all__ = [
    "STEPS",
    "Demo",
    "DemoResult",
    "anomaly_detection",
    "k_means",
    "linear_regression",
    "logistic_regression",
    "neural_network",
]


@dataclass(frozen=True)
class DemoResult:
    """One line of the demo's table."""

    algorithm: str
    dataset: str
    metric: str
    value: float
    floor: float | None
    fit_seconds: float

    @property
    def passed(self) -> bool:
        return self.floor is None or self.value >= self.floor


@dataclass
class Demo:
    """Where the demo computes and writes, and the data sets it has loaded (each once)."""

    backend: str
    device: Any
    out: Path
    plots: list[str] = field(default_factory=list)

    def estimator(self, cls: type, **params: Any) -> Any:
        return cls(backend=self.backend, device=self.device, **params)

    def fit(self, label: str, model: Any, X: Any, y: Any = None) -> float:
        """Fit ``model``, with a progress bar over its iterations when it takes over a second; the seconds taken."""
        with (
            progress_bar(
                total=getattr(model, "max_iter", None),
                desc=f"  {label}",
                unit="it",
                delay=1.0,
                leave=False,
                file=sys.stderr,
                disable=None,
            ) as bar,
            progress(lambda iteration, max_iter: bar.update(iteration - bar.n)),
            warnings.catch_warnings(),
        ):
            # Fixed iteration budgets are the demo's choice; a ConvergenceWarning would only be noise here.
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X, y)  # the unsupervised estimators ignore y=None
            backends.synchronize(self.backend, self.device)
            return time.perf_counter() - start

    def save(self, figure: Any, name: str) -> None:
        path = self.out / f"{name}.png"
        figure.savefig(path, dpi=100)
        self.plots.append(path.name)

    @cached_property
    def mnist(self) -> Digits:
        """MNIST as float32 pixels in [0, 1] (float32 halves the time of every GEMM; the accuracy is the same)."""
        from hml.datasets import load_mnist

        train, test = load_mnist("train"), load_mnist("test")
        scale = np.float32(1.0 / 255.0)
        return Digits(train.data * scale, train.target, test.data * scale, test.target, train.target_names)


class Digits(NamedTuple):
    """MNIST, loaded once for both classifiers of the demo."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    names: tuple[str, ...]


def _figure(cols: int, rows: int = 1, width: float = 5.5, height: float = 4.2) -> tuple[Any, Any]:
    """A figure of ``rows × cols`` panels (no pyplot: the demo only saves files) and its axes, flat."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    return figure, figure.subplots(rows, cols, squeeze=False).ravel()


# -- the five algorithms ------------------------------------------------------------------
def linear_regression(demo: Demo) -> list[DemoResult]:
    from hml import plotting
    from hml.datasets import load_nonlinear_xy, load_world_happiness_2017

    happiness = load_world_happiness_2017()
    X, y = happiness.data[:, :1], happiness.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)  # the notebook's split
    line = demo.estimator(hml.LinearRegression)  # the defaults: α = 1/λ_max, converged in 10 iterations
    line_seconds = demo.fit("univariate", line, X_train, y_train)
    curve_data = load_nonlinear_xy()
    # 31 features, condition number ~1e5: gradient descent needs ~60,000 steps to reach tol=1e-4 here (a
    # ConvergenceWarning says so); 5,000 steps of α = 0.3, near the stability limit 2/λ_max = 0.33, get R² ≥ 0.94.
    curve = demo.estimator(
        hml.LinearRegression, polynomial_degree=10, sinusoid_degree=10, learning_rate=0.3, max_iter=5000
    )
    curve_seconds = demo.fit("non-linear", curve, curve_data.data, curve_data.target)
    r2 = curve.score(curve_data.data, curve_data.target)

    figure, axes = _figure(3)
    plotting.regression_curve(
        line,
        X_train,
        y_train,
        X_test=X_test,
        y_test=y_test,
        ax=axes[0],
        xlabel="GDP per capita (economy factor)",
        ylabel="happiness score",
        title=f"Univariate: test R² = {line.score(X_test, y_test):.3f}",
    )
    plotting.regression_curve(
        curve,
        curve_data.data,
        curve_data.target,
        ax=axes[1],
        data_label="data",
        title=f"Polynomial + sinusoid features: R² = {r2:.3f}",
    )
    plotting.cost_history({"univariate": line.cost_history_, "non-linear": curve.cost_history_}, ax=axes[2], log=True)
    demo.save(figure, "linear_regression")
    return [
        DemoResult(
            "linear regression", "world happiness 2017 (GDP)", "test R²", line.score(X_test, y_test), None, line_seconds
        ),
        DemoResult("linear regression", "non-linear x-y (250 rows)", "R²", r2, 0.9, curve_seconds),
    ]


def logistic_regression(demo: Demo) -> list[DemoResult]:
    from hml import plotting
    from hml.datasets import load_iris, load_microchips

    iris = load_iris()
    petals = iris.data[:, 2:]
    flowers = demo.estimator(
        hml.LogisticRegression, multi_class="ovr", l2=0.0, max_iter=1000
    )  # the original's settings
    flowers_seconds = demo.fit("iris", flowers, petals, iris.target)
    chips = load_microchips()
    boundary = demo.estimator(hml.LogisticRegression, polynomial_degree=5, l2=0.0, max_iter=500)
    boundary_seconds = demo.fit("microchips", boundary, chips.data, chips.target)
    mnist = demo.mnist
    digits = demo.estimator(hml.LogisticRegression, max_iter=50)
    digits_seconds = demo.fit("MNIST", digits, mnist.X, mnist.y)
    predicted = digits.predict(mnist.X_test)
    accuracy = metrics.accuracy_score(mnist.y_test, predicted)

    figure, axes = _figure(2, rows=2)
    plotting.decision_regions(
        flowers,
        petals,
        iris.target,
        ax=axes[0],
        class_names=iris.target_names,
        feature_names=["petal length", "petal width"],
        title="Iris, one-vs-all",
    )
    plotting.decision_regions(
        boundary,
        chips.data,
        chips.target,
        ax=axes[1],
        class_names=chips.target_names,
        feature_names=["test 1", "test 2"],
        title="Microchips, degree-5 boundary",
    )
    plotting.cost_history(
        flowers.class_cost_history_,
        ax=axes[2],
        labels=iris.target_names,
        title="Iris: each one-vs-all classifier's cost",
    )
    plotting.confusion_matrix(
        metrics.confusion_matrix(mnist.y_test, predicted),
        class_names=mnist.names,
        ax=axes[3],
        title=f"MNIST test: accuracy {accuracy:.4f}",
    )
    demo.save(figure, "logistic_regression")
    return [
        DemoResult(
            "logistic regression",
            "iris petals (150 rows)",
            "training accuracy",
            flowers.score(petals, iris.target),
            0.95,
            flowers_seconds,
        ),
        DemoResult(
            "logistic regression",
            "microchips (118 rows)",
            "training accuracy",
            boundary.score(chips.data, chips.target),
            0.85,
            boundary_seconds,
        ),
        DemoResult("logistic regression", "MNIST 60k / 10k", "test accuracy", accuracy, 0.92, digits_seconds),
    ]


def k_means(demo: Demo) -> list[DemoResult]:
    from hml import plotting
    from hml.datasets import load_iris

    iris = load_iris()
    petals = iris.data[:, 2:]
    model = demo.estimator(hml.KMeans, n_clusters=3, random_state=0)
    seconds = demo.fit("k-means", model, petals)
    clusters = backends.to_numpy(model.labels_)
    agreement = metrics.adjusted_rand_score(iris.target, clusters)

    figure, axes = _figure(3)
    names = ["petal length", "petal width"]
    plotting.scatter_classes(
        petals,
        iris.target,
        ax=axes[0],
        class_names=iris.target_names,
        feature_names=names,
        title="Iris: the true classes",
    )
    # Colour each cluster as the species most of its flowers belong to, so the two panels compare at a glance.
    majority = np.array([np.bincount(iris.target[clusters == k], minlength=3).argmax() for k in range(3)])
    if np.unique(majority).size == 3:
        shown, cluster_names = majority[clusters], [f"cluster ≈ {name}" for name in iris.target_names]
    else:  # two clusters share a majority: show the raw cluster numbers rather than merge them
        shown, cluster_names = clusters, [f"cluster {k}" for k in range(3)]
    plotting.scatter_classes(
        petals,
        shown,
        ax=axes[1],
        classes=np.arange(3),
        class_names=cluster_names,
        feature_names=names,
        title=f"k-means clusters (ARI {agreement:.3f})",
    )
    centroids = backends.to_numpy(model.cluster_centers_)
    axes[1].scatter(centroids[:, 0], centroids[:, 1], marker="X", s=200, color="black", label="centroids", zorder=4)
    axes[1].legend(fontsize="small")
    plotting.cost_history(
        model.cost_history_, ax=axes[2], title="Distortion J per Lloyd iteration", ylabel="J = Σ‖x − c‖²"
    )
    demo.save(figure, "k_means")
    return [DemoResult("k-means", "iris petals (150 rows)", "adjusted Rand index", agreement, 0.70, seconds)]


def anomaly_detection(demo: Demo) -> list[DemoResult]:
    from hml import plotting
    from hml.datasets import load_server_params

    servers = load_server_params()
    results = []
    figure, axes = _figure(3)
    for panel, covariance in enumerate(("diag", "full")):
        model = demo.estimator(hml.GaussianAnomalyDetection, covariance=covariance)
        seconds = demo.fit(f"{covariance} Gaussian", model, servers.data)
        selection = model.fit_threshold(servers.data, servers.target)  # ε chosen on labelled data, as the original did
        plotting.density_contours(
            model,
            servers.data,
            y=servers.target,
            ax=axes[panel],
            feature_names=servers.feature_names,
            title=f"{covariance} covariance: best F1 = {selection.f1:.3f}",
        )
        if covariance == "diag":
            plotting.threshold_curves(selection, ax=axes[2], title="Diagonal: precision, recall, F1 against ε")
        results.append(
            DemoResult(
                "anomaly detection",
                f"server parameters, {covariance} covariance",
                "best F1",
                selection.f1,
                0.80,
                seconds,
            )
        )
    demo.save(figure, "anomaly_detection")
    return results


def neural_network(demo: Demo) -> list[DemoResult]:
    from hml import plotting

    mnist = demo.mnist
    # The original's network, trained by L-BFGS: 100 iterations do what 300 of gradient descent do.
    original = demo.estimator(
        hml.MultilayerPerceptron, layers=[784, 25, 10], solver="lbfgs", max_iter=100, random_state=0
    )
    original_seconds = demo.fit("[784, 25, 10]", original, mnist.X, mnist.y)
    # Wider, relu/softmax, mini-batches with momentum: the stronger network. On raw pixels: standardising
    # would blow a rare stroke on a nearly always blank border pixel up to hundreds of deviations.
    strong = demo.estimator(
        hml.MultilayerPerceptron,
        layers=[784, 256, 10],
        activation="relu",
        output="softmax",
        init="glorot",
        batch_size=128,
        momentum=0.9,
        learning_rate=0.05,
        l2=5.0,
        max_iter=10,
        normalize=False,
        random_state=0,
    )
    strong_seconds = demo.fit("[784, 256, 10]", strong, mnist.X, mnist.y)
    predicted = strong.predict(mnist.X_test)
    accuracy = metrics.accuracy_score(mnist.y_test, predicted)

    from matplotlib.figure import Figure

    figure = Figure(figsize=(16, 6.4), layout="constrained")
    panels: Any = figure.subfigures(1, 3, width_ratios=[1.1, 1.0, 1.0])  # 3 SubFigures (the stub: or 1)
    left, middle, right = panels
    plotting.image_grid(
        mnist.X_test,
        labels=mnist.y_test,
        predictions=predicted,
        rows=8,
        cols=8,
        fig=left,
        title=f"[784, 256, 10] on MNIST test: {accuracy:.4f}",
    )
    plotting.weight_images(original.coefs_[0], cols=5, fig=middle, title="[784, 25, 10]: first-layer weights")
    plotting.cost_history(
        {"[784, 25, 10], L-BFGS": original.cost_history_}, ax=right.subplots(2, 1)[0], title="Cost per iteration"
    )
    plotting.cost_history(
        {"[784, 256, 10], mini-batches": strong.cost_history_},
        ax=right.axes[1],
        title="Mean batch cost per epoch",
        xlabel="epoch",
    )
    demo.save(figure, "neural_network")
    return [
        DemoResult(
            "multilayer perceptron",
            "MNIST [784, 25, 10] (the original's)",
            "test accuracy",
            original.score(mnist.X_test, mnist.y_test),
            0.92,
            original_seconds,
        ),
        DemoResult(
            "multilayer perceptron",
            "MNIST [784, 256, 10] relu/softmax",
            "test accuracy",
            accuracy,
            0.97,
            strong_seconds,
        ),
    ]


#: ``--only`` names, in the order the demo runs them.
STEPS: dict[str, Callable[[Demo], list[DemoResult]]] = {
    "linear_regression": linear_regression,
    "logistic_regression": logistic_regression,
    "k_means": k_means,
    "anomaly_detection": anomaly_detection,
    "neural_network": neural_network,
}
