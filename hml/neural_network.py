"""The multilayer perceptron, trained by vectorised (matrix) backpropagation.

Notation (the notebook's): layer l has weights W⁽ˡ⁾ of shape (nₗ₋₁, nₗ) and biases
b⁽ˡ⁾; A⁽⁰⁾ = X (a batch of m rows), H⁽ˡ⁾ = A⁽ˡ⁻¹⁾W⁽ˡ⁾ + b⁽ˡ⁾, A⁽ˡ⁾ = g(H⁽ˡ⁾) for hidden
layers, and the output layer's logits H⁽ᴸ⁾ give P = σ(H⁽ᴸ⁾) (per-class sigmoid, the
original) or softmax(H⁽ᴸ⁾). Backpropagation runs on whole matrices:

    Δ⁽ᴸ⁾ = (P − Y) / m
    ∂J/∂W⁽ˡ⁾ = A⁽ˡ⁻¹⁾ᵀ Δ⁽ˡ⁾ + λ/n W⁽ˡ⁾,   ∂J/∂b⁽ˡ⁾ = Σᵢ Δ⁽ˡ⁾ᵢ
    Δ⁽ˡ⁻¹⁾ = (Δ⁽ˡ⁾ W⁽ˡ⁾ᵀ) ⊙ g′(H⁽ˡ⁻¹⁾)

-- no loop over examples. All parameters travel as one flat vector θ, so the shared
optimisers of :mod:`hml.optimize` train the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np

from hml import backends, kernels
from hml._array import check_sample_weight, class_weighted, encode_labels, one_hot
from hml._mlp import ACTIVATIONS, forward, layer_shapes, mlp_objective, n_parameters, pack, unpack
from hml._params import Boolean, Integer, OneOf, Real, Sizes, param, validate
from hml.base import (
    CLASS_WEIGHT,
    NORMALIZE,
    RANDOM_STATE,
    TOL,
    VERBOSE,
    BaseEstimator,
    ClassifierMixin,
    PreparedProblem,
)
from hml.features import FeatureTransformer
from hml.model_selection import train_test_split
from hml.numerics import (
    log_class_probabilities,
    log_sigmoid_terms,
    softmax_terms,
)
from hml.optimize import MiniBatches, check_gradient, make_rule, minimize

__all__ = ["MultilayerPerceptron", "forward", "gradient_check", "mlp_objective", "pack", "unpack"]


class MultilayerPerceptron(ClassifierMixin, BaseEstimator):
    """A fully connected neural network classifier trained by matrix backpropagation.

    Attributes
    ----------
    classes_, coefs_ (list of W⁽ˡ⁾), intercepts_ (list of b⁽ˡ⁾), layers_, cost_history_,
    n_iter_, n_features_in_, feature_transformer_
    """

    layers: Sequence[int] | None = param(
        default=None,
        rule=Sizes(min_length=2, what="input, ..., output"),
        doc="Units per layer, input and output included: ``[784, 25, 10]`` is the original project's MNIST "
        "network. The first must equal the number of (generated) features, the last the number of classes. "
        "``None``: one hidden layer of 25 units.",
    )
    activation: Literal["sigmoid", "tanh", "relu"] = param(
        default="sigmoid", rule=OneOf(ACTIVATIONS), doc="The hidden units' activation g."
    )
    output: Literal["sigmoid", "softmax"] = param(
        default="sigmoid",
        rule=OneOf(("sigmoid", "softmax")),
        doc="Per-class sigmoids with cross-entropy summed over classes (the original), or softmax.",
    )
    init: Literal["uniform", "glorot"] = param(
        default="uniform",
        rule=OneOf(("uniform", "glorot")),
        doc="W and b uniform in ±``epsilon`` (the original), or Glorot: W uniform in ±√(6/(nₗ₋₁ + nₗ)), b = 0.",
    )
    epsilon: float = param(
        default=0.12, rule=Real(positive=True), doc="Half-width of the ``'uniform'`` initialisation."
    )
    learning_rate: float | None = param(
        default=None,
        rule=Real(positive=True, allow_none=True),
        doc="Step α of gradient descent or Adam. None: 1.0 for ``'gd'`` (the original's α), 0.001 for ``'adam'`` "
        "(scikit-learn's ``learning_rate_init``).",
    )
    max_iter: int = param(default=300, rule=Integer(1), doc="Iterations (full batch) or epochs (``batch_size`` set).")
    l2: float = param(
        default=1.0, rule=Real(), doc="λ, on the weights only (the original regularised its deltas instead)."
    )
    batch_size: int | None = param(
        default=None,
        rule=Integer(1, allow_none=True),
        doc="``None``: full-batch gradient descent (the original). Else mini-batches of this many rows, "
        "shuffled every epoch from ``random_state``.",
    )
    momentum: float = param(
        default=0.0,
        rule=Real(maximum=1.0, below_maximum=True),
        doc="Heavy-ball momentum μ of gradient descent (full batch or mini-batches): v ← μv − α∇J, θ ← θ + v.",
    )
    solver: Literal["gd", "adam", "lbfgs", "cg"] = param(
        default="gd",
        rule=OneOf(("gd", "adam", "lbfgs", "cg")),
        doc="Gradient descent, Adam (full batch or mini-batches), or the full-batch L-BFGS and CG.",
    )
    beta_1: float = param(
        default=0.9, rule=Real(maximum=1.0, below_maximum=True), doc="Adam's decay of the gradient's mean."
    )
    beta_2: float = param(
        default=0.999, rule=Real(maximum=1.0, below_maximum=True), doc="Adam's decay of the squared gradient's mean."
    )
    adam_epsilon: float = param(
        default=1e-8,
        rule=Real(positive=True),
        doc="Adam's ε in m / (√v + ε) (scikit-learn's ``epsilon``; ``epsilon`` here is the original's init width).",
    )
    early_stopping: bool = param(
        default=False,
        rule=Boolean(),
        doc="Hold out ``validation_fraction`` of the rows (stratified), score their accuracy after every "
        "iteration (epoch), stop after ``n_iter_no_change`` without a better one, and keep the best weights.",
    )
    validation_fraction: float = param(
        default=0.1,
        rule=Real(positive=True, maximum=1.0, below_maximum=True),
        doc="The share of the rows held out with ``early_stopping``.",
    )
    n_iter_no_change: int = param(
        default=10, rule=Integer(1), doc="Iterations (epochs) without a better validation accuracy before stopping."
    )
    tol: float | None = TOL
    class_weight: Any = CLASS_WEIGHT
    normalize: bool = NORMALIZE
    random_state: Any = RANDOM_STATE
    verbose: bool = VERBOSE

    # -- set-up shared by fit and gradient_check -------------------------------------
    def _prepare(self, X: Any, y: Any, p: SimpleNamespace, sample_weight: Any = None) -> PreparedProblem:
        """Validate, standardise and one-hot encode; θ₀ drawn from ``p.random_state``: the problem the
        optimiser solves, for the validated ``p``."""
        transformer = FeatureTransformer(normalize=p.normalize)
        fit_input = self._validate_fit_X(X, p, min_samples=2)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        classes, codes = encode_labels(y, X.shape[0])
        layers = _checked_layers(p.layers, X.shape[1], classes.size)
        sample_weight = class_weighted(sample_weight, p.class_weight, classes, codes)
        held_out = None
        if p.early_stopping:  # the validation rows leave before anything is fitted to them
            (X, codes, sample_weight), (X_held, codes_held) = _hold_out(ctx, X, codes, sample_weight, p)
        weights = check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)
        (Z,) = backends.keep(transformer._fit_transform(ctx, X, weights))
        if p.early_stopping:
            held_out = (transformer._transform(X_held, xp), ctx.asarray(codes_held))
        Y = one_hot(ctx.asarray(codes), classes.size, Z.dtype, xp)
        (Y,) = backends.keep(Y)
        if weights is not None:
            weights = weights._replace(normalised=backends.keep(weights.normalised)[0])
        objective = mlp_objective(Z, Y, layers, p.activation, p.output, p.l2, xp, weights)
        theta0 = _initial_theta(ctx, layers, X.dtype, p)
        return PreparedProblem(fit_input, objective, theta0, transformer, classes, layers=layers, validation=held_out)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultilayerPerceptron:
        """Train on ``X`` (n_samples × n_features) and class labels ``y`` of any type; ``sample_weight``
        (one per row, ≥ 0) counts a row that many times (in expectation, for mini-batches)."""
        p = self._validated
        if p.batch_size is not None and p.solver not in ("gd", "adam"):
            raise ValueError(f"batch_size is for solver='gd' or 'adam' (mini-batches); got solver={p.solver!r}")
        problem = self._prepare(X, y, p, sample_weight)
        ctx = problem.ctx
        assert problem.classes is not None and problem.layers is not None  # an MLP's problem has both
        batches = None
        if p.batch_size is not None:
            held = 0 if problem.validation is None else problem.validation[1].shape[0]
            batches = MiniBatches(problem.input.X.shape[0] - held, p.batch_size, p.random_state)
        learning_rate = p.learning_rate if p.learning_rate is not None else (0.001 if p.solver == "adam" else 1.0)
        rule = make_rule(
            p.solver,
            learning_rate=learning_rate,
            momentum=p.momentum,
            beta_1=p.beta_1,
            beta_2=p.beta_2,
            eps=p.adam_epsilon,
        )
        stopping = _EarlyStopping(ctx, problem, p) if problem.validation is not None else None
        with self._progress_bar(p.max_iter, p.verbose):
            result = minimize(
                problem.objective,
                problem.theta0,
                ctx=ctx,
                rule=rule,
                max_iter=p.max_iter,
                tol=p.tol,
                batches=batches,
                hint=self._divergence_hint(p.normalize),
                callback=stopping,
            )
        theta = result.theta if stopping is None else stopping.best_theta
        self.feature_transformer_ = problem.transformer
        self.classes_ = problem.classes
        self.layers_ = problem.layers
        weights = unpack(theta, problem.layers, ctx.xp)
        self.coefs_ = [W for W, _ in weights]
        self.intercepts_ = [b for _, b in weights]
        self.cost_history_, self.n_iter_ = result.cost_history, result.n_iter
        if stopping is not None:
            self.validation_scores_ = np.asarray(stopping.scores)
            self.best_validation_score_ = stopping.best_score
        else:
            for name in ("validation_scores_", "best_validation_score_"):  # from an earlier fit
                self.__dict__.pop(name, None)
        self._remember_input(problem.input)
        return self

    def _proba(self, Xc: Any) -> Any:
        xp = self._ctx_.xp
        Z = self.feature_transformer_._transform(Xc, xp)
        _, logits = forward(Z, list(zip(self.coefs_, self.intercepts_, strict=True)), self.activation, xp)
        if self.output == "softmax":
            return softmax_terms(logits, xp)[1]
        probability = log_sigmoid_terms(logits, xp)[1]
        return probability / xp.sum(probability, axis=1, keepdims=True)

    def _log_proba(self, Xc: Any) -> Any:
        xp = self._ctx_.xp
        Z = self.feature_transformer_._transform(Xc, xp)
        _, logits = forward(Z, list(zip(self.coefs_, self.intercepts_, strict=True)), self.activation, xp)
        return log_class_probabilities(logits, self.output == "softmax", xp)


def _hold_out(
    ctx: backends.ComputeContext, X: Any, codes: np.ndarray, sample_weight: Any, p: SimpleNamespace
) -> tuple[tuple[Any, np.ndarray, Any], tuple[Any, np.ndarray]]:
    """(training X, codes, weights), (validation X, codes): ``p.validation_fraction`` of the rows, stratified
    by class, drawn from ``p.random_state`` (scikit-learn's early-stopping split)."""
    rows = np.arange(codes.shape[0])
    counts = np.bincount(codes)
    if counts.min() < 2:
        raise ValueError(
            f"early_stopping holds out a stratified validation set, which needs 2 rows of every class; class "
            f"{int(np.argmin(counts))} has {int(counts.min())}: pass more data or early_stopping=False"
        )
    train, held = train_test_split(rows, test_size=p.validation_fraction, random_state=p.random_state, stratify=codes)
    train, held = np.sort(train), np.sort(held)
    if sample_weight is not None and not isinstance(sample_weight, (int, float)):
        sample_weight = np.asarray(backends.to_numpy(sample_weight))[train]
    return (ctx.take_rows(X, train), codes[train], sample_weight), (ctx.take_rows(X, held), codes[held])


class _EarlyStopping:
    """The loop's callback for ``early_stopping``: after each iteration, the accuracy on the held-out rows
    (one read, "validation score"); True once ``n_iter_no_change`` iterations in a row brought no better
    one. ``best_theta`` is the parameters of the best."""

    def __init__(self, ctx: backends.ComputeContext, problem: PreparedProblem, p: SimpleNamespace):
        assert problem.validation is not None and problem.layers is not None
        self.ctx, self.layers, self.activation = ctx, problem.layers, p.activation
        self.Z, self.codes = problem.validation
        self.patience = p.n_iter_no_change
        self.scores: list[float] = []
        self.best_score, self.best_theta, self.waited = -math.inf, problem.theta0, 0

    def __call__(self, n_iter: int, point: Any) -> bool:
        xp = self.ctx.xp
        _, logits = forward(self.Z, unpack(point.theta, self.layers, xp), self.activation, xp)
        hits = xp.astype(xp.argmax(logits, axis=1) == xp.astype(self.codes, xp.int64), logits.dtype)
        score = float(self.ctx.read(xp.mean(hits), "validation score"))
        self.scores.append(score)
        if score > self.best_score:  # a new θ array each step: keeping a reference is a copy
            self.best_score, self.best_theta, self.waited = score, point.theta, 0
        else:
            self.waited += 1
        return self.waited >= int(self.patience)


def _checked_layers(layers: list[int] | None, n_features: int, n_classes: int) -> list[int]:
    """The validated ``layers`` against the data: the first must be the features, the last the classes."""
    if layers is None:
        return [n_features, 25, n_classes]
    if layers[0] != n_features:
        raise ValueError(f"layers[0]={layers[0]} but X has {n_features} features; set layers[0]={n_features}")
    if layers[-1] != n_classes:
        raise ValueError(
            f"layers[-1]={layers[-1]} but y has {n_classes} classes; set layers[-1]={n_classes} (one output per class)"
        )
    return layers


def _initial_theta(ctx: backends.ComputeContext, layers: list[int], dtype: Any, p: SimpleNamespace) -> Any:
    """θ₀: W and b uniform in ±ε (``init="uniform"``), or Glorot (W uniform in ±√(6/(nₗ₋₁ + nₗ)), b = 0),
    drawn on the host from ``p.random_state``."""
    xp = ctx.xp
    pieces = []
    for n_in, n_out in layer_shapes(layers):
        if p.init == "uniform":
            bound, bias_bound = p.epsilon, p.epsilon
        else:
            bound, bias_bound = math.sqrt(6.0 / (n_in + n_out)), 0.0
        pieces.append(kernels.random_uniform(ctx, p.random_state, (n_in * n_out,), low=-bound, high=bound, dtype=dtype))
        if bias_bound:
            pieces.append(
                kernels.random_uniform(ctx, p.random_state, (n_out,), low=-bias_bound, high=bias_bound, dtype=dtype)
            )
        else:
            pieces.append(xp.zeros(n_out, dtype=dtype, device=ctx.device))
    return xp.concat(pieces)


def gradient_check(
    model: MultilayerPerceptron,
    X: Any,
    y: Any,
    *,
    epsilon: float = 1e-6,
    n_checks: int | None = None,
    random_state: Any = 0,
) -> float:
    """Relative error between backpropagation and central finite differences for ``model`` on (X, y).

    Uses the fitted parameters if ``model`` is fitted, else a fresh initialisation from
    ``model.random_state``; checks ``n_checks`` randomly chosen parameters (all if None).
    See :func:`hml.optimize.check_gradient`; < 1e-7 in float64 means backprop is right.
    """
    problem = model._prepare(X, y, validate(model))
    ctx, theta = problem.ctx, problem.theta0
    if hasattr(model, "coefs_"):  # fitted: its parameters, on this problem's device and dtype
        theta = ctx.asarray(
            pack(list(zip(model.coefs_, model.intercepts_, strict=True)), model._fitted_context().xp), dtype=theta.dtype
        )
    coordinates = None
    if n_checks is not None:
        assert problem.layers is not None  # an MLP's problem has them
        size = n_parameters(problem.layers)
        coordinates = backends.check_random_state(random_state).choice(size, size=min(n_checks, size), replace=False)
    return check_gradient(problem.objective, theta, ctx=ctx, epsilon=epsilon, coordinates=coordinates)
