"""The plots the notebooks and ``hml demo`` share, drawn with matplotlib.

matplotlib is an optional dependency (``pip install "matplotlib>=3.7"``, the ``plot`` extra), imported when a
plot is first drawn, never by ``import hml``. Every function takes arrays of any
backend (they are copied to the host) and an optional ``ax`` (or ``fig`` for the
multi-panel plots) to draw into; without one it opens a new figure with pyplot,
which is what a notebook wants. Scripts that only save files (``hml demo``) pass
axes of a ``matplotlib.figure.Figure`` and never touch pyplot.

Class colours are the same in every plot: class k of ``model.classes_`` (or the k-th
sorted label) gets colour k of matplotlib's ``tab10``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hml import backends
from hml.exceptions import NotFittedError

__all__ = [
    "confusion_matrix",
    "cost_history",
    "decision_regions",
    "density_contours",
    "image_grid",
    "prediction_grid",
    "regression_curve",
    "scatter_classes",
    "threshold_curves",
    "weight_images",
]

#: Colours of classes 0, 1, 2, ... (matplotlib's tab10).
CLASS_COLOURS = tuple(
    f"#{rgb}" for rgb in "1f77b4 ff7f0e 2ca02c d62728 9467bd 8c564b e377c2 7f7f7f bcbd22 17becf".split()
)


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            f'hml.plotting needs matplotlib ({exc}); install it with: pip install "matplotlib>=3.7"'
        ) from exc
    return plt


def _axes(ax: Any, figsize: tuple[float, float] = (6.0, 4.0)) -> Any:
    """``ax``, or the axes of a new pyplot figure."""
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=figsize)[1]


def _columns(X: Any, what: str, count: int = 2, *, at_least: bool = False) -> np.ndarray:
    """``X`` on the host, refused with a clear message unless it has ``count`` columns (or more,
    ``at_least``): the plots draw one feature against y, or the plane of two. A 1-D x is one column."""
    host = backends.to_numpy(X)
    host = host[:, None] if count == 1 and host.ndim == 1 else host
    if host.ndim != 2 or host.shape[1] < count or (not at_least and host.shape[1] != count):
        features = "one feature" if count == 1 else "two features"
        raise ValueError(
            f"{what} plots {features}; X has shape {host.shape}: pass {count} column(s), e.g. X[:, :{count}]"
        )
    return host


def _codes(labels: Any, classes: np.ndarray) -> np.ndarray:
    """Each label's index in ``classes`` (so the colour of a class is the same everywhere)."""
    labels = backends.to_numpy(labels)
    order = np.argsort(classes)
    codes: np.ndarray = order[np.searchsorted(classes[order], labels).clip(0, classes.size - 1)]
    return codes


def _colour(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


def _label(ax: Any, feature_names: Sequence[str] | None, title: str | None, *, legend: bool = True) -> Any:
    """Name the two feature axes and the plot, and show the legend: the end of every two-feature plot."""
    if feature_names is not None:
        ax.set(xlabel=feature_names[0], ylabel=feature_names[1])
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="best", fontsize="small")
    return ax


# -- training curves -------------------------------------------------------------------
def cost_history(
    history: Any,
    *,
    ax: Any = None,
    labels: Sequence[str] | None = None,
    log: bool = False,
    title: str = "Cost history",
    xlabel: str = "iteration",
    ylabel: str = "cost J(θ)",
) -> Any:
    """J against the iteration: one curve, one per column of a 2-D history (one-vs-all's
    ``class_cost_history_``, named by ``labels``), or one per entry of a ``{label: history}`` mapping."""
    ax = _axes(ax)
    curves: list[tuple[str | None, np.ndarray]]
    if isinstance(history, Mapping):
        curves = [(str(name), backends.to_numpy(values)) for name, values in history.items()]
    else:
        values = backends.to_numpy(history)
        if values.ndim == 1:
            curves = [(labels[0] if labels else None, values)]
        else:
            names = list(labels) if labels is not None else [f"part {k}" for k in range(values.shape[1])]
            curves = list(zip(names, values.T, strict=False))
    for k, (name, values) in enumerate(curves):
        ax.plot(np.arange(values.shape[0]), values, label=name, color=_colour(k), linewidth=1.6)
    if log:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if any(name for name, _ in curves):
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


# -- two-feature classification ---------------------------------------------------------
def scatter_classes(
    X: Any,
    y: Any,
    *,
    ax: Any = None,
    classes: Any = None,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    marker_size: float = 24.0,
) -> Any:
    """The rows of a two-column ``X`` as points coloured by class ``y``.

    With ``classes`` (a model's ``classes_``), each class keeps its colour of :func:`decision_regions`;
    a label of ``y`` missing from them (a class the model never saw) gets a colour of its own."""
    X, labels = _columns(X, "scatter_classes", at_least=True), backends.to_numpy(y)
    classes = np.unique(labels) if classes is None else backends.to_numpy(classes)
    if class_names is not None and len(class_names) != classes.size:
        raise ValueError(
            f"class_names has {len(class_names)} names for the {classes.size} classes {classes.tolist()}; "
            "give one name per class, in their order"
        )
    unseen = np.setdiff1d(np.unique(labels), classes)
    names = [str(label) for label in classes] if class_names is None else list(class_names)
    classes, names = np.concatenate([classes, unseen]), names + [str(label) for label in unseen]
    ax = _axes(ax)
    codes = _codes(labels, classes)
    for k, name in enumerate(names):
        style = {"s": marker_size, "color": _colour(k), "edgecolor": "white", "linewidth": 0.5, "zorder": 3}
        ax.scatter(X[codes == k, 0], X[codes == k, 1], label=name, **style)
    return _label(ax, feature_names, title)


def prediction_grid(
    predict: Any, X: Any, *, resolution: int = 300, padding: float = 0.08
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, Z)``: ``predict`` evaluated on a grid covering the two columns of ``X``.

    ``Z[i, j] = predict([xs[j], ys[i]])`` -- rows follow y, columns follow x, the layout
    ``contour(xs, ys, Z)`` expects. (The original project filled Z[i][j] from (x[i], y[j]),
    which draws the boundary transposed across the diagonal.) One call of ``predict`` on
    all ``resolution²`` points: no loop over the grid.
    """
    X = _columns(X, "prediction_grid")
    low, high = X.min(axis=0), X.max(axis=0)
    margin = padding * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)  # shape (len(ys), len(xs)): row i is y = ys[i]
    points = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(X.dtype if X.dtype.kind == "f" else np.float64)
    return xs, ys, backends.to_numpy(predict(points)).reshape(grid_x.shape)


def decision_regions(
    model: Any,
    X: Any,
    y: Any = None,
    *,
    ax: Any = None,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    resolution: int = 300,
    boundary: bool = True,
) -> Any:
    """The class a fitted two-feature classifier predicts everywhere (filled regions), its
    decision boundaries and, with ``y``, the points.

    A two-class model with ``predict_proba`` gets its boundary drawn where P(class 1 | x) = ½
    (a smooth curve); otherwise the boundaries are the lines where the predicted class changes.
    """
    if not hasattr(model, "classes_"):
        raise NotFittedError(f"decision_regions needs a fitted classifier; got {type(model).__name__} without classes_")
    X = _columns(X, "decision_regions")
    ax = _axes(ax)
    classes = backends.to_numpy(model.classes_)
    xs, ys, Z = prediction_grid(lambda points: _codes(model.predict(points), classes), X, resolution=resolution)
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([_colour(k) for k in range(classes.size)])
    levels = np.arange(classes.size + 1) - 0.5
    ax.contourf(xs, ys, Z, levels=levels, cmap=cmap, alpha=0.22)
    if boundary and classes.size == 2 and hasattr(model, "predict_proba"):
        _, _, P = prediction_grid(
            lambda points: backends.to_numpy(model.predict_proba(points))[:, 1], X, resolution=resolution
        )
        ax.contour(xs, ys, P, levels=[0.5], colors="black", linewidths=1.2)
    elif boundary:
        ax.contour(xs, ys, Z, levels=levels[1:-1], colors="black", linewidths=1.2)
    if y is not None:
        scatter_classes(X, y, ax=ax, classes=classes, class_names=class_names)
    return _label(ax, feature_names, title, legend=y is not None)


# -- images -------------------------------------------------------------------------------
def image_grid(
    images: Any,
    *,
    labels: Any = None,
    predictions: Any = None,
    class_names: Sequence[str] | None = None,
    rows: int = 5,
    cols: int = 5,
    shape: tuple[int, int] = (28, 28),
    cmap: str = "gray_r",
    symmetric: bool = False,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    fig: Any = None,
) -> Any:
    """The first ``rows × cols`` images (rows of pixels, or ``shape``-d pictures) in a grid.

    With ``labels`` each image is titled by its class; with ``predictions`` too, correct
    predictions are drawn in green and wrong ones in red, titled "predicted (true)".
    ``symmetric=True`` centres a diverging colour map on 0 (for weights).
    """
    pictures = backends.to_numpy(images)
    count = min(rows * cols, pictures.shape[0])
    pictures = pictures[:count].reshape(count, *shape)
    truth = None if labels is None else backends.to_numpy(labels)[:count]
    guess = None if predictions is None else backends.to_numpy(predictions)[:count]
    if fig is None:
        fig = _pyplot().figure(figsize=(1.3 * cols, 1.45 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)

    def name(label: Any) -> str:
        return class_names[int(label)] if class_names is not None else str(label)

    for index, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if index >= count:
            continue
        picture, colours, limits = pictures[index], cmap, {}
        if symmetric:
            bound = float(np.abs(picture).max()) or 1.0
            limits = {"vmin": -bound, "vmax": bound}
        caption, colour = (titles[index] if titles is not None else None), "black"
        if guess is not None and truth is not None:
            right = guess[index] == truth[index]
            colours, colour = ("Greens", "darkgreen") if right else ("Reds", "darkred")
            caption = caption or (name(guess[index]) if right else f"{name(guess[index])} ({name(truth[index])})")
        elif truth is not None:
            caption = caption or name(truth[index])
        ax.imshow(picture, cmap=colours, interpolation="nearest", **limits)
        if caption is not None:
            ax.set_title(caption, fontsize=8, color=colour, pad=2)
    if title:
        fig.suptitle(title)
    if hasattr(fig, "get_layout_engine") and fig.get_layout_engine() is None:  # a Figure (not a SubFigure) of pyplot's
        fig.tight_layout()
    return fig


def weight_images(
    weights: Any,
    *,
    titles: Sequence[str] | None = None,
    cols: int = 5,
    shape: tuple[int, int] = (28, 28),
    title: str | None = None,
    fig: Any = None,
) -> Any:
    """Each column of ``weights`` (n_pixels × K: logistic regression's ``coef_``, an MLP's
    first ``coefs_``) as a ``shape`` image, red for positive and blue for negative weights."""
    columns = backends.to_numpy(weights).T
    rows = -(-columns.shape[0] // cols)
    return image_grid(
        columns, rows=rows, cols=cols, shape=shape, cmap="RdBu_r", symmetric=True, titles=titles, title=title, fig=fig
    )


def confusion_matrix(
    matrix: Any, *, class_names: Sequence[str] | None = None, ax: Any = None, title: str = "Confusion matrix"
) -> Any:
    """C[i, j] = #(true class i predicted as j), as :func:`hml.metrics.confusion_matrix` returns it:
    a heat map with the counts written in (colour ∝ count^0.4, so the few mistakes show beside the many hits)."""
    from matplotlib.colors import PowerNorm

    counts = backends.to_numpy(matrix)
    k = counts.shape[0]
    ax = _axes(ax, figsize=(0.45 * k + 2.5, 0.45 * k + 2.0))
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    top = max(float(counts.max()), 1.0)
    ax.imshow(counts, cmap="Blues", norm=PowerNorm(gamma=0.4, vmin=0.0, vmax=top))
    threshold = 0.35 * top
    for i in range(k):  # a loop over the K² cells of a small table, for the labels
        for j in range(k):
            ax.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                fontsize=7 if k > 6 else 9,
                color="white" if counts[i, j] > threshold else "black",
            )
    ax.set_xticks(
        range(k),
        names,
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    ax.set_yticks(range(k), names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


# -- regression -----------------------------------------------------------------------------
def regression_curve(
    model: Any,
    X: Any,
    y: Any,
    *,
    ax: Any = None,
    X_test: Any = None,
    y_test: Any = None,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    label: str = "prediction",
    data_label: str = "training data",
) -> Any:
    """Training (and test) points of a one-feature regression, with the model's prediction
    over the whole x range drawn as a curve. ``X`` is one column, or a 1-D array of x."""
    ax = _axes(ax)
    X, y = _columns(X, "regression_curve", 1), backends.to_numpy(y)
    ax.scatter(X[:, 0], y, s=16, color=_colour(0), label=data_label, zorder=3)
    low, high = X[:, 0].min(), X[:, 0].max()
    if X_test is not None:
        X_test = _columns(X_test, "regression_curve", 1)
        ax.scatter(X_test[:, 0], backends.to_numpy(y_test), s=16, color=_colour(1), label="test data", zorder=3)
        low, high = min(low, X_test[:, 0].min()), max(high, X_test[:, 0].max())
    xs = np.linspace(low, high, 400, dtype=X.dtype if X.dtype.kind == "f" else np.float64)[:, None]
    ax.plot(xs[:, 0], backends.to_numpy(model.predict(xs)), color="black", linewidth=2, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


# -- anomaly detection ----------------------------------------------------------------------
def density_contours(
    model: Any,
    X: Any,
    *,
    y: Any = None,
    ax: Any = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    resolution: int = 250,
    levels: int = 12,
) -> Any:
    """Contours of a fitted two-feature density's log p(x), the rows of ``X`` and, where the
    model has a threshold ε, the boundary p(x) = ε (thick red) and the points it flags
    (red rings). With ``y`` (1 = anomaly), the labelled anomalies are drawn as crosses."""
    X = _columns(X, "density_contours")
    ax = _axes(ax)
    xs, ys, log_p = prediction_grid(model.log_density, X, resolution=resolution, padding=0.15)
    finite = log_p[np.isfinite(log_p)]
    low = max(float(np.percentile(finite, 2)), float(backends.to_numpy(model.log_density(X)).min()) - 5.0)
    contours = ax.contour(
        xs, ys, log_p, levels=np.linspace(low, float(finite.max()), levels), cmap="viridis", linewidths=0.8
    )
    ax.clabel(contours, fontsize=6, fmt="%.0f")
    ax.scatter(X[:, 0], X[:, 1], s=10, color="#555555", label="samples", zorder=3)
    if y is not None:
        anomalies = backends.to_numpy(y) == 1
        ax.scatter(
            X[anomalies, 0], X[anomalies, 1], s=40, marker="x", color="black", label="labelled anomaly", zorder=4
        )
    log_threshold = getattr(model, "log_threshold_", None)
    if log_threshold is not None:
        ax.contour(xs, ys, log_p, levels=[log_threshold], colors="red", linewidths=2.0, linestyles="solid")
        threshold = model.threshold_
        epsilon = f"ε = {threshold:.3g}" if threshold > 0 else f"log ε = {log_threshold:.4g}"
        flagged = backends.to_numpy(model.predict(X)) == 1
        ax.scatter(
            X[flagged, 0],
            X[flagged, 1],
            s=110,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label=f"flagged: p(x) < {epsilon}",
            zorder=5,
        )
    return _label(ax, feature_names, title)


def threshold_curves(selection: Any, *, ax: Any = None, title: str = "Choosing ε") -> Any:
    """Precision, recall and F1 of "anomaly if score < ε" against ε, from
    :meth:`hml.GaussianAnomalyDetection.select_threshold` (the score its ``on`` names: log p(x)
    from ``fit_threshold``; a log axis for positive scores such as p(x)), with the best ε marked."""
    ax = _axes(ax)
    thresholds = backends.to_numpy(selection.thresholds)
    for k, (name, values) in enumerate(
        (("precision", selection.precision), ("recall", selection.recall), ("F1", selection.f1_scores))
    ):
        ax.step(thresholds, backends.to_numpy(values), where="post", label=name, color=_colour(k), linewidth=1.5)
    ax.axvline(
        selection.epsilon,
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"best ε = {selection.epsilon:.3g} (F1 = {selection.f1:.3f})",
    )
    if thresholds.min() > 0:
        ax.set_xscale("log")
    ax.set(xlabel=f"threshold ε on {selection.on}", ylabel="score", title=title, ylim=(-0.02, 1.02))
    ax.legend(loc="best", fontsize="small")
    ax.grid(alpha=0.3)
    return ax
