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
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Literal

from hml import backends, kernels
from hml._array import check_sample_weight, class_weighted, encode_labels, one_hot
from hml._params import Integer, OneOf, Real, Sizes, param, validate
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
from hml.numerics import (
    column_sums,
    log_class_probabilities,
    log_sigmoid_terms,
    positive_part,
    softmax_terms,
    tall_gram,
    tall_matmul,
)
from hml.optimize import MiniBatches, check_gradient, make_rule, minimize

__all__ = ["MultilayerPerceptron", "forward", "gradient_check", "mlp_objective", "pack", "unpack"]

ACTIVATIONS = ("sigmoid", "tanh", "relu")


def _activate(H: Any, activation: str, xp: Any) -> Any:
    """g(H) for the hidden layers."""
    if activation == "sigmoid":
        # σ(h) = ½ tanh(h/2) + ½: the same function as 1/(1 + e⁻ʰ) without overflow for any h.
        H *= 0.5
        A = xp.tanh(H)
        A *= 0.5
        A += 0.5
        return A
    if activation == "tanh":
        return xp.tanh(H)
    return positive_part(H, xp)


def _derivative_times(delta: Any, A: Any, activation: str, xp: Any) -> Any:
    """Δ ⊙ g′(H), with g′ written through A = g(H): σ′ = A(1 − A), tanh′ = 1 − A², relu′ = [A > 0]."""
    if activation == "sigmoid":
        delta *= A
        delta *= 1.0 - A
        return delta
    if activation == "tanh":
        delta *= 1.0 - A * A
        return delta
    return xp.where(A > 0, delta, 0.0)


def layer_shapes(layers: list[int]) -> list[tuple[int, int]]:
    return [(n_in, n_out) for n_in, n_out in zip(layers[:-1], layers[1:], strict=True)]


def unpack(theta: Any, layers: list[int], xp: Any) -> list[tuple[Any, Any]]:
    """The flat θ as [(W⁽¹⁾, b⁽¹⁾), ...]: each layer's W (row-major) then its b."""
    params, offset = [], 0
    for n_in, n_out in layer_shapes(layers):
        W = xp.reshape(theta[offset : offset + n_in * n_out], (n_in, n_out))
        offset += n_in * n_out
        params.append((W, theta[offset : offset + n_out]))
        offset += n_out
    return params


def pack(params: list[tuple[Any, Any]], xp: Any) -> Any:
    """[(W⁽¹⁾, b⁽¹⁾), ...] as the flat θ (the inverse of :func:`unpack`)."""
    return xp.concat([piece for W, b in params for piece in (xp.reshape(W, (-1,)), b)])


def n_parameters(layers: list[int]) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in layer_shapes(layers))


def forward(Z: Any, params: list[tuple[Any, Any]], activation: str, xp: Any) -> tuple[list[Any], Any]:
    """The forward pass, written once for training and prediction.

    A⁽⁰⁾ = Z, A⁽ˡ⁾ = g(A⁽ˡ⁻¹⁾ W⁽ˡ⁾ + b⁽ˡ⁾) for the hidden layers, then the output logits
    H = A⁽ᴸ⁻¹⁾ W⁽ᴸ⁾ + b⁽ᴸ⁾. Returns ([A⁽⁰⁾, …, A⁽ᴸ⁻¹⁾], H): backpropagation needs the activations.
    """
    activations = [Z]
    A = Z
    for W, b in params[:-1]:
        H = tall_matmul(A, W)
        H += b
        A = _activate(H, activation, xp)
        activations.append(A)
    W_out, b_out = params[-1]
    logits = A @ W_out
    logits += b_out
    return activations, logits


def mlp_objective(
    Z: Any, Y: Any, layers: list[int], activation: str, output: str, l2: float, xp: Any, weights: Any = None
) -> Callable[..., tuple[Any, Any]]:
    """``objective(theta, rows=None) -> (J, ∇J)`` of the network on all rows of Z, or on ``rows``.

    J(θ) = 1/m Σᵢ loss(pᵢ, yᵢ) + λ/(2n) Σₗ ‖W⁽ˡ⁾‖² with m the rows used and n all rows
    (so a mini-batch's J estimates the full J); biases are never regularised. The loss
    is the per-class cross-entropy Σₖ [softplus(hₖ) − yₖhₖ] for ``output="sigmoid"``
    and log Σₖ exp hₖ − Σₖ yₖhₖ for ``"softmax"`` -- both from the logits, no log(0). With sample
    ``weights`` (:class:`hml._array.SampleWeight`), row i's loss and its Δ are multiplied by ŝᵢ, and
    the penalty is λ/(2Σs).
    """
    reg = l2 / (Z.shape[0] if weights is None else weights.total)
    S = None if weights is None else xp.reshape(weights.normalised, (-1, 1))

    def objective(theta: Any, rows: Any = None) -> tuple[Any, Any]:
        if rows is None:
            A, T, weight = Z, Y, S
        elif isinstance(rows, slice):
            A, T, weight = Z[rows, ...], Y[rows, ...], None if S is None else S[rows, ...]
        else:
            A, T = xp.take(Z, rows, axis=0), xp.take(Y, rows, axis=0)
            weight = None if S is None else xp.take(S, rows, axis=0)
        inv_m = 1.0 / A.shape[0]
        params = unpack(theta, layers, xp)
        activations, logits = forward(A, params, activation, xp)
        if output == "softmax":
            normaliser, P = softmax_terms(logits, xp)
        else:
            softplus, P = log_sigmoid_terms(logits, xp)
            normaliser = xp.sum(softplus, axis=1, keepdims=True) if weight is not None else softplus
        if weight is None:
            data_cost = xp.sum(normaliser) - xp.sum(T * logits)
        else:
            data_cost = xp.sum(weight * (normaliser - xp.sum(T * logits, axis=1, keepdims=True)))
        penalty = sum(xp.sum(W * W) for W, _ in params)
        cost = inv_m * data_cost + 0.5 * reg * penalty
        delta = P - T
        delta *= inv_m
        if weight is not None:
            delta *= weight
        gradients: list[Any] = []
        for layer in range(len(params) - 1, -1, -1):
            W, _ = params[layer]
            A_in = activations[layer]
            gradients.append(column_sums(delta))
            grad_W = tall_gram(A_in, delta)
            grad_W += reg * W
            gradients.append(xp.reshape(grad_W, (-1,)))
            if layer:  # the input layer needs no Δ
                delta = _derivative_times(delta @ W.T, A_in, activation, xp)
        return cost, xp.concat(gradients[::-1])

    return objective


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
    learning_rate: float = param(default=1.0, rule=Real(positive=True), doc="Step α of gradient descent.")
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
    solver: Literal["gd", "lbfgs", "cg"] = param(
        default="gd",
        rule=OneOf(("gd", "lbfgs", "cg")),
        doc="Gradient descent, or the full-batch alternatives L-BFGS and CG (not with ``batch_size``).",
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
        weights = check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)
        (Z,) = backends.keep(transformer._fit_transform(ctx, X, weights))
        Y = one_hot(ctx.asarray(codes), classes.size, Z.dtype, xp)
        (Y,) = backends.keep(Y)
        if weights is not None:
            weights = weights._replace(normalised=backends.keep(weights.normalised)[0])
        objective = mlp_objective(Z, Y, layers, p.activation, p.output, p.l2, xp, weights)
        theta0 = _initial_theta(ctx, layers, X.dtype, p)
        return PreparedProblem(fit_input, objective, theta0, transformer, classes, layers=layers)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultilayerPerceptron:
        """Train on ``X`` (n_samples × n_features) and class labels ``y`` of any type; ``sample_weight``
        (one per row, ≥ 0) counts a row that many times (in expectation, for mini-batches)."""
        p = self._validated
        if p.batch_size is not None and p.solver != "gd":
            raise ValueError(f"batch_size is for solver='gd' (mini-batch descent); got solver={p.solver!r}")
        problem = self._prepare(X, y, p, sample_weight)
        ctx = problem.ctx
        batches = None
        if p.batch_size is not None:
            batches = MiniBatches(problem.input.X.shape[0], p.batch_size, p.random_state)
        with self._progress_bar(p.max_iter, p.verbose):
            result = minimize(
                problem.objective,
                problem.theta0,
                ctx=ctx,
                rule=make_rule(p.solver, learning_rate=p.learning_rate, momentum=p.momentum),
                max_iter=p.max_iter,
                tol=p.tol,
                batches=batches,
                hint=self._divergence_hint(p.normalize),
            )
        assert problem.classes is not None and problem.layers is not None  # an MLP's problem has both
        self.feature_transformer_ = problem.transformer
        self.classes_ = problem.classes
        self.layers_ = problem.layers
        weights = unpack(result.theta, problem.layers, ctx.xp)
        self.coefs_ = [W for W, _ in weights]
        self.intercepts_ = [b for _, b in weights]
        self.cost_history_, self.n_iter_ = result.cost_history, result.n_iter
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
