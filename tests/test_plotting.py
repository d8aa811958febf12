"""hml.plotting: what each plot draws, checked on the matplotlib objects (Agg, no screen)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import hml  # noqa: E402
from hml import plotting  # noqa: E402


def axes():
    return Figure().subplots()


def test_import_hml_does_not_import_matplotlib():
    code = "import sys, hml, hml.plotting; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_prediction_grid_rows_follow_y_and_columns_follow_x():
    """The original project's boundary plot was transposed; Z[i, j] must be the prediction at (xs[j], ys[i])."""
    X = np.array([[0.0, -1.0], [4.0, 3.0]])
    xs, ys, Z = plotting.prediction_grid(lambda P: (P[:, 0] > 2.0 * P[:, 1]).astype(int), X, resolution=37)
    assert Z.shape == (ys.size, xs.size)
    np.testing.assert_array_equal(Z, (xs[None, :] > 2.0 * ys[:, None]).astype(int))
    assert xs.min() < 0.0 and xs.max() > 4.0 and ys.min() < -1.0 and ys.max() > 3.0


def test_decision_regions_colour_the_models_prediction(case):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.where(X[:, 0] > 0.5 * X[:, 1], "right", "left")
    model = hml.LogisticRegression(l2=0.01).fit(case.asarray(X), y)
    ax = plotting.decision_regions(model, case.asarray(X), y, ax=axes(), feature_names=["a", "b"], title="t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right"]
    assert ax.get_xlabel() == "a" and ax.get_title() == "t"
    # The filled regions span the two classes; the boundary line is drawn at the level between them.
    filled, line = (c for c in ax.collections if hasattr(c, "levels"))
    np.testing.assert_array_equal(filled.levels, [-0.5, 0.5, 1.5])
    np.testing.assert_array_equal(line.levels, [0.5])
    with pytest.raises(hml.NotFittedError):
        plotting.decision_regions(hml.LogisticRegression(), X, ax=axes())


def test_cost_history_draws_a_curve_per_column_or_entry(case):
    history = case.asarray(np.array([[3.0, 2.0], [2.0, 1.0], [1.5, 0.5]]))
    ax = plotting.cost_history(history, ax=axes(), labels=["a", "b"])
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [2.0, 1.0, 0.5])
    ax = plotting.cost_history({"gd": [3.0, 1.0], "lbfgs": [3.0, 0.5, 0.4]}, ax=axes(), log=True)
    assert [line.get_label() for line in ax.get_lines()] == ["gd", "lbfgs"] and ax.get_yscale() == "log"
    assert len(plotting.cost_history(np.array([1.0, 0.5]), ax=axes()).get_lines()) == 1


def test_image_grid_colours_right_and_wrong_predictions():
    images = np.arange(12 * 16, dtype=float).reshape(12, 16)
    labels = np.arange(12) % 3
    predictions = labels.copy()
    predictions[[1, 7]] = 0  # two mistakes
    fig = plotting.image_grid(
        images,
        labels=labels,
        predictions=predictions,
        rows=3,
        cols=4,
        shape=(4, 4),
        class_names=["zero", "one", "two"],
        fig=Figure(),
    )
    titles = [ax.title for ax in fig.axes if ax.images]
    assert len(titles) == 12
    wrong = [t.get_text() for t in titles if t.get_color() == "darkred"]
    assert wrong == ["zero (one)", "zero (one)"]
    assert sum(t.get_color() == "darkgreen" for t in titles) == 10
    np.testing.assert_array_equal(fig.axes[5].images[0].get_array(), images[5].reshape(4, 4))


def test_weight_images_centre_the_colour_map_on_zero():
    weights = np.random.default_rng(0).normal(size=(16, 3))
    fig = plotting.weight_images(weights, titles=["a", "b", "c"], cols=3, shape=(4, 4), fig=Figure())
    for k, ax in enumerate(fig.axes[:3]):
        low, high = ax.images[0].get_clim()
        assert low == -high == -np.abs(weights[:, k]).max()


def test_confusion_matrix_writes_every_count():
    matrix = hml.metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0])
    ax = plotting.confusion_matrix(matrix, class_names=["a", "b", "c"], ax=axes())
    assert [int(t.get_text()) for t in ax.texts] == matrix.ravel().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]


def test_density_contours_flag_what_the_model_flags():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(200, 2)), [[6.0, 6.0], [-5.0, 4.0]]])
    y = np.r_[np.zeros(200), [1, 1]]
    model = hml.GaussianAnomalyDetection().fit(X)
    model.fit_threshold(X, y)
    ax = plotting.density_contours(model, X, y=y, ax=axes(), feature_names=["u", "v"])
    flagged = next(c for c in ax.collections if str(c.get_label()).startswith("flagged"))
    assert flagged.get_offsets().shape[0] == int(np.sum(model.predict(X)))
    assert f"{model.threshold_:.3g}" in flagged.get_label()


def test_threshold_curves_mark_the_best_epsilon():
    rng = np.random.default_rng(2)
    p = rng.random(300)
    y = (p < 0.05).astype(int)
    selection = hml.GaussianAnomalyDetection.select_threshold(y, p)
    ax = plotting.threshold_curves(selection, ax=axes())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:3] == ["precision", "recall", "F1"] and labels[3].startswith("best ε")
    assert ax.get_lines()[3].get_xdata()[0] == selection.epsilon
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "threshold ε on the scores"
    # fit_threshold searches log p: a linear axis, named.
    X = np.vstack([rng.normal(size=(200, 2)), [[6.0, 6.0]]])
    model = hml.GaussianAnomalyDetection().fit(X)
    ax = plotting.threshold_curves(model.fit_threshold(X, np.r_[np.zeros(200), 1]), ax=axes())
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "threshold ε on log p(x)"


def test_regression_curve_draws_the_models_predictions():
    X = np.linspace(0.0, 1.0, 20)[:, None]
    y = 3.0 * X[:, 0] + 1.0
    model = hml.LinearRegression(solver="normal").fit(X, y)
    ax = plotting.regression_curve(model, X, y, ax=axes(), X_test=X[:5] + 1.0, y_test=y[:5])
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), 3.0 * line.get_xdata() + 1.0, atol=1e-9)
    assert line.get_xdata().max() == pytest.approx(X[4, 0] + 1.0)  # the curve covers the test points too


def test_a_label_the_model_never_saw_gets_its_own_colour_and_name():
    """A test set holding a class missing from training: drawn apart, never merged into a neighbour."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 4.0, rng.normal(size=(30, 2)) + [8.0, 0.0]]
    y = np.repeat([0, 10, 5], 30)
    model = hml.LogisticRegression().fit(X[:60], y[:60])
    ax = plotting.decision_regions(model, X, y, ax=axes())
    points = [c for c in ax.collections if not hasattr(c, "levels")]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "10", "5"]
    assert [len(c.get_offsets()) for c in points] == [30, 30, 30]
    np.testing.assert_array_equal(points[2].get_offsets(), X[60:])
    assert len({tuple(c.get_facecolor()[0]) for c in points}) == 3


def test_plots_of_two_features_refuse_other_widths_and_the_curve_takes_a_1d_x():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    model = hml.LogisticRegression().fit(X[:, :1], y)
    for call in (
        lambda: plotting.decision_regions(model, X[:, :1], y, ax=axes()),
        lambda: plotting.scatter_classes(X[:, :1], y, ax=axes()),
        lambda: plotting.density_contours(hml.GaussianAnomalyDetection().fit(X), X, ax=axes()),
    ):
        with pytest.raises(ValueError, match=r"plots two features; X has shape \(40, [13]\): pass 2 column"):
            call()
    with pytest.raises(ValueError, match=r"class_names has 1 names for the 2 classes \[0, 1\]"):
        plotting.scatter_classes(X, y, ax=axes(), class_names=["one"])
    line = hml.LinearRegression(solver="normal").fit(X[:, :1], X[:, 0])
    ax = plotting.regression_curve(line, X[:, 0], X[:, 0], ax=axes())
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), ax.get_lines()[0].get_xdata(), atol=1e-9)
    with pytest.raises(ValueError, match=r"regression_curve plots one feature; X has shape \(40, 3\)"):
        plotting.regression_curve(line, X, X[:, 0], ax=axes())
