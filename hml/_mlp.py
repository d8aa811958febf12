"""The network's math: activations, the flat parameter vector, the forward pass, and the cost and its
gradient by matrix backpropagation (:func:`mlp_objective`), θ₀, and what a fit needs around them
(its targets, the early-stopping split and callback) -- what :mod:`hml.neural_network` trains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import array_api_compat
import numpy as np

from hml import backends, kernels
from hml._array import one_hot
from hml._params import validate
from hml.model_selection import train_test_split
from hml.numerics import column_sums, log_sigmoid_terms, positive_part, softmax_terms, tall_gram, tall_matmul
from hml.optimize import check_gradient, make_rule

__all__ = [
    "ACTIVATIONS",
    "EarlyStopping",
    "Targets",
    "checked_layers",
    "forward",
    "gradient_check",
    "held_out_weights",
    "hold_out",
    "initial_theta",
    "layer_shapes",
    "mlp_objective",
    "n_parameters",
    "pack",
    "step_rule",
    "validation_accuracy",
    "validation_r2",
    "unpack",
]


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
    # A product with the 0/1 mask rather than a selection: no branch per element on the mask's signs.
    delta *= xp.astype(A > 0, delta.dtype)
    return delta


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
    """[(W⁽¹⁾, b⁽¹⁾), ...] as the flat θ (the inverse of :func:`hml.neural_network.unpack`)."""
    return xp.concat([piece for W, b in params for piece in (xp.reshape(W, (-1,)), b)])


def n_parameters(layers: list[int]) -> int:
    """The length of θ for ``layers``: Σₗ (nₗ₋₁ nₗ + nₗ), every weight and bias."""
    return sum(n_in * n_out + n_out for n_in, n_out in layer_shapes(layers))


def forward(Z: Any, params: list[tuple[Any, Any]], activation: str, xp: Any) -> tuple[list[Any], Any]:
    r"""The forward pass, written once for training and prediction: ([A⁽⁰⁾, …, A⁽ᴸ⁻¹⁾], H⁽ᴸ⁾).

    From A⁽⁰⁾ = Z, a batch of m rows, each layer's pre-activations H⁽ˡ⁾ and the hidden layers'
    activations A⁽ˡ⁾ (returned: backpropagation needs them), to the output layer's logits H⁽ᴸ⁾, which
    give the outputs P -- a sigmoid per class or the softmax (the classifier's ``output``), or H⁽ᴸ⁾
    itself (the regressor):

    .. math::
        :name: mlp-forward

        H^{(l)} &= A^{(l-1)} W^{(l)} + b^{(l)}, \qquad l = 1, \dots, L,

        A^{(l)} &= g\big(H^{(l)}\big), \qquad l = 1, \dots, L - 1,

        P &= \sigma\big(H^{(L)}\big), \quad \operatorname{softmax}\big(H^{(L)}\big) \quad \text{or} \quad H^{(L)},

        p_{ik} &= \frac{e^{h_{ik}}}{\sum_j e^{h_{ij}}} \quad \text{(softmax)} .

    The hidden units' activation g (``activation``), and its derivative written through A = g(H),
    as :func:`hml.neural_network.mlp_objective` uses it (σ computed as ½ tanh(h/2) + ½: no overflow):

    .. math::
        :name: mlp-activations

        \sigma(h) &= \frac{1}{1 + e^{-h}}, & \qquad \sigma' &= A\,(1 - A),

        \tanh(h) &= \frac{e^{h} - e^{-h}}{e^{h} + e^{-h}}, & \qquad \tanh' &= 1 - A^2,

        \operatorname{relu}(h) &= \max(h, 0), & \qquad \operatorname{relu}' &= [A > 0].
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
    r"""``objective(theta, rows=None) -> (J, ∇J)`` of the network on all rows of Z, or on ``rows``.

    The cost, with m the rows used and n all the rows, so that a mini-batch's J estimates the full J;
    with sample ``weights`` (``hml._array.SampleWeight``) row i's loss is multiplied by ŝᵢ, the weights
    scaled to mean 1, and n is Σs (ŝᵢ = 1 without). λ = ``l2`` acts on the weights only. The loss comes
    from the logits h = H⁽ᴸ⁾ -- the cross-entropy of each class's sigmoid for ``output="sigmoid"``, of
    the softmax for ``"softmax"`` (both by softplus and log-sum-exp, so no log 0), the squared error
    for ``"identity"`` (regression):

    .. math::
        :name: mlp-cost

        J(\theta) &= \frac{1}{m} \sum_{i=1}^{m} \hat s_i \, \operatorname{loss}(h_i, y_i)

        &\quad + \frac{\lambda}{2n} \sum_{l=1}^{L} \big\lVert W^{(l)} \big\rVert_F^2 ,

        \operatorname{loss}_{\sigma}(h, y) &= \sum_{k} \big[ \operatorname{softplus}(h_k) - y_k h_k \big],

        \operatorname{loss}_{\mathrm{softmax}}(h, y) &= \log \sum_{k} e^{h_k} - \sum_{k} y_k h_k ,

        \operatorname{loss}_{\mathrm{identity}}(h, y) &= \tfrac12 \sum_{k} (h_k - y_k)^2 .

    The gradient, by backpropagation on whole matrices (the biases' gradient: the column sums of Δ).
    Every output starts from the same error, as each loss's derivative with respect to its logits is
    P − Y, P the outputs of :func:`hml.neural_network.forward`:

    .. math::
        :name: mlp-backpropagation

        \Delta^{(L)} &= \frac{1}{m} \operatorname{diag}(\hat s) \, (P - Y),

        \Delta^{(l-1)} &= \big( \Delta^{(l)} W^{(l)\top} \big) \odot g'\big(H^{(l-1)}\big),

        \frac{\partial J}{\partial W^{(l)}} &= A^{(l-1)\top} \Delta^{(l)} + \frac{\lambda}{n} W^{(l)},

        \frac{\partial J}{\partial b^{(l)}} &= \sum_{i=1}^{m} \Delta^{(l)}_{i} .

    The function returned carries ``cost_only(theta, rows=None) -> J``, the forward pass alone: what a
    mini-batch fit's start evaluates on all rows where ∇J(θ₀) is not needed (``tol=None``).
    """
    reg = l2 / (Z.shape[0] if weights is None else weights.total)
    S = None if weights is None else xp.reshape(weights.normalised, (-1, 1))

    def selected(rows: Any) -> tuple[Any, Any, Any]:
        if rows is None:
            return Z, Y, S
        if isinstance(rows, slice):
            return Z[rows, ...], Y[rows, ...], None if S is None else S[rows, ...]
        weight = None if S is None else xp.take(S, rows, axis=0)
        return xp.take(Z, rows, axis=0), xp.take(Y, rows, axis=0), weight

    def cost_and_outputs(A: Any, T: Any, weight: Any, params: list[tuple[Any, Any]], logits: Any) -> tuple[Any, Any]:
        if output == "identity":
            P = logits
            squares = (P - T) * (P - T)
            data_cost = 0.5 * (xp.sum(squares) if weight is None else xp.sum(weight * squares))
        else:
            if output == "softmax":
                normaliser, P = softmax_terms(logits, xp)
            else:
                softplus, P = log_sigmoid_terms(logits, xp)
                normaliser = xp.sum(softplus, axis=1, keepdims=True) if weight is not None else softplus
            if weight is None:
                data_cost = xp.sum(normaliser) - xp.sum(T * logits)
            else:
                data_cost = xp.sum(weight * (normaliser - xp.sum(T * logits, axis=1, keepdims=True)))
        cost = (1.0 / A.shape[0]) * data_cost
        if reg:  # skipped, not multiplied by zero: a pass over every weight, per batch
            # ‖W‖²_F as w·w of the flat weights: one read of them, no W ⊙ W written first.
            cost = cost + 0.5 * reg * sum(xp.vecdot(w, w) for w in (xp.reshape(W, (-1,)) for W, _ in params))
        return cost, P

    def cost_only(theta: Any, rows: Any = None) -> Any:
        A, T, weight = selected(rows)
        params = unpack(theta, layers, xp)
        return cost_and_outputs(A, T, weight, params, forward(A, params, activation, xp)[1])[0]

    def objective(theta: Any, rows: Any = None) -> tuple[Any, Any]:
        A, T, weight = selected(rows)
        inv_m = 1.0 / A.shape[0]
        params = unpack(theta, layers, xp)
        activations, logits = forward(A, params, activation, xp)
        cost, P = cost_and_outputs(A, T, weight, params, logits)
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
            if reg:
                grad_W += reg * W
            gradients.append(xp.reshape(grad_W, (-1,)))
            if layer:  # the input layer needs no Δ
                delta = _derivative_times(delta @ W.T, A_in, activation, xp)
        return cost, xp.concat(gradients[::-1])

    objective.cost_only = cost_only  # type: ignore[attr-defined]  # J alone, by the forward pass
    return objective


@dataclass(frozen=True)
class Targets:
    """What a network fits: class labels (``classes``, and their ``codes`` on the host; one output per
    class, one-hot encoded) or values (``values``, n × k on the device; one output per column)."""

    classes: np.ndarray | None = None
    codes: np.ndarray | None = None
    values: Any = None

    @property
    def n_outputs(self) -> int:
        return int(self.classes.size) if self.classes is not None else int(self.values.shape[1])

    @property
    def what(self) -> str:
        return "classes" if self.classes is not None else "target columns"

    def matrix(self, ctx: backends.ComputeContext, dtype: Any) -> Any:
        """Y, the output layer's target: one-hot codes, or the values."""
        if self.codes is None:
            return self.values
        assert self.classes is not None
        return one_hot(ctx.asarray(self.codes), self.classes.size, dtype, ctx.xp)

    def split(self, ctx: backends.ComputeContext, train: np.ndarray, held: np.ndarray) -> tuple[Targets, Targets]:
        if self.codes is not None:
            return Targets(self.classes, self.codes[train]), Targets(self.classes, self.codes[held])
        return Targets(values=ctx.take_rows(self.values, train)), Targets(values=ctx.take_rows(self.values, held))


def held_out_weights(ctx: backends.ComputeContext, weights: Any) -> Any:
    """The validation rows' weights (scikit-learn scores the held-out rows with them), refused if they are all 0:
    the score would be 0/0. One read ("validation weights")."""
    if float(ctx.read(ctx.xp.sum(weights), "validation weights")) <= 0.0:
        raise ValueError(
            "early_stopping held out only rows of sample_weight 0, so its score is undefined: give those rows weight, "
            "change random_state or validation_fraction, or set early_stopping=False"
        )
    return weights


def hold_out(targets: Targets, p: SimpleNamespace) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation rows: ``p.validation_fraction`` of them held out, stratified by class
    for a classifier, drawn from ``p.random_state`` (scikit-learn's early-stopping split)."""
    codes = targets.codes
    n = codes.shape[0] if codes is not None else targets.values.shape[0]
    if codes is not None:
        counts = np.bincount(np.asarray(codes).astype(np.intp, copy=False))  # wasm32's bincount takes int32 only
        if counts.min() < 2:
            raise ValueError(
                f"early_stopping holds out a stratified validation set, which needs 2 rows of every class; class "
                f"{int(np.argmin(counts))} has {int(counts.min())}: pass more data or early_stopping=False"
            )
    try:
        train, held = train_test_split(
            np.arange(n), test_size=p.validation_fraction, random_state=p.random_state, stratify=codes
        )
    except ValueError as exc:  # say it in the network's terms, not train_test_split's
        k = 1 if codes is None else int(np.max(codes)) + 1
        raise ValueError(
            f"early_stopping cannot hold out validation_fraction={p.validation_fraction} of these {n} rows: each "
            f"side of the split needs at least {k} (one of every class) -- {exc}. Use a validation_fraction "
            f"between {math.ceil(1000 * k / n) / 1000:g} and {math.floor(1000 * (n - k) / n) / 1000:g}, more data, "
            "or early_stopping=False"
        ) from exc
    if codes is None and held.size < 2:  # as scikit-learn's "The validation set is too small"
        raise ValueError(
            f"early_stopping holds out validation_fraction={p.validation_fraction} of these {n} rows, {held.size} "
            f"row, and its R² needs 2: use a validation_fraction of at least {math.ceil(2000 / n) / 1000:g}, more "
            "data, or early_stopping=False"
        )
    return np.sort(train), np.sort(held)


class EarlyStopping:
    """The loop's callback for ``early_stopping``: after each iteration, the score of the held-out rows
    (one read, "validation score"); True once ``n_iter_no_change`` iterations in a row brought no better
    one. ``best_theta`` is the parameters of the best."""

    def __init__(
        self,
        ctx: backends.ComputeContext,
        layers: list[int],
        validation: tuple[Any, Any, Any],
        theta0: Any,
        p: SimpleNamespace,
        score: Callable[..., Any],
    ):
        self.ctx, self.layers, self.activation, self.score = ctx, layers, p.activation, score
        self.Z, self.target, self.weights = validation
        self.patience = int(p.n_iter_no_change)
        self.scores: list[float] = []
        self.best_score, self.best_theta, self.waited = -math.inf, theta0, 0

    def __call__(self, n_iter: int, point: Any) -> bool:
        xp = self.ctx.xp
        _, outputs = forward(self.Z, unpack(point.theta, self.layers, xp), self.activation, xp)
        score = float(self.ctx.read(self.score(xp, outputs, self.target, self.weights), "validation score"))
        self.scores.append(score)
        if score > self.best_score:  # a new θ array each step: keeping a reference is a copy
            self.best_score, self.best_theta, self.waited = score, point.theta, 0
        else:
            self.waited += 1
        return self.waited >= self.patience


def checked_layers(layers: list[int] | None, n_features: int, n_outputs: int, what: str) -> list[int]:
    """The validated ``layers`` against the data: the first must be the features, the last the outputs."""
    if layers is None:
        return [n_features, 25, n_outputs]
    if layers[0] != n_features:
        raise ValueError(f"layers[0]={layers[0]} but X has {n_features} features; set layers[0]={n_features}")
    if layers[-1] != n_outputs:
        raise ValueError(
            f"layers[-1]={layers[-1]} but y has {n_outputs} {what}; set layers[-1]={n_outputs} (one output per "
            f"{'class' if what == 'classes' else 'column'})"
        )
    return layers


def initial_theta(ctx: backends.ComputeContext, layers: list[int], dtype: Any, p: SimpleNamespace) -> Any:
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


def step_rule(p: SimpleNamespace) -> Any:
    """The optimiser's step rule for the validated ``p`` (``learning_rate`` None: 1.0 for gd, 0.001 for Adam)."""
    learning_rate = p.learning_rate if p.learning_rate is not None else (0.001 if p.solver == "adam" else 1.0)
    return make_rule(
        p.solver, learning_rate=learning_rate, momentum=p.momentum, beta_1=p.beta_1, beta_2=p.beta_2, eps=p.adam_epsilon
    )


def gradient_check(
    model: Any,
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
        fitted = list(zip(model.coefs_, model.intercepts_, strict=True))
        theta = ctx.asarray(pack(fitted, array_api_compat.array_namespace(*model.coefs_)), dtype=theta.dtype)
    coordinates = None
    if n_checks is not None:
        assert problem.layers is not None  # an MLP's problem has them
        size = n_parameters(problem.layers)
        coordinates = backends.check_random_state(random_state).choice(size, size=min(n_checks, size), replace=False)
    return check_gradient(problem.objective, theta, ctx=ctx, epsilon=epsilon, coordinates=coordinates)


def validation_accuracy(xp: Any, outputs: Any, target: Any, weights: Any = None) -> Any:
    """A classifier's held-out score, the accuracy: the share of rows (of their weight) whose largest output is
    their class (one-hot ``target``), on the device."""
    right = xp.astype(xp.argmax(outputs, axis=1) == xp.argmax(target, axis=1), outputs.dtype)
    return xp.mean(right) if weights is None else xp.sum(weights * right) / xp.sum(weights)


def validation_r2(xp: Any, outputs: Any, target: Any, weights: Any = None) -> Any:
    """A regressor's held-out score, R² = 1 − Σsᵢ(ŷᵢ − yᵢ)² / Σsᵢ(yᵢ − ȳ)², ȳ = Σsᵢyᵢ / Σs (sᵢ = 1 without
    weights), on the device; for a constant y, 1 if every ŷ is exact, else 0 (:func:`hml.metrics.r2_score`'s
    rule)."""
    truth, predicted = xp.reshape(target, (-1,)), xp.reshape(outputs, (-1,))
    s = xp.ones_like(truth) if weights is None else weights
    residual = xp.sum(s * (truth - predicted) ** 2)
    total = xp.sum(s * (truth - xp.sum(s * truth) / xp.sum(s)) ** 2)
    exact = xp.astype(residual == 0, truth.dtype)
    return xp.where(total > 0, 1.0 - residual / xp.where(total > 0, total, xp.ones_like(total)), exact)
