"""The network's math: activations, the flat parameter vector, the forward pass, and the cost and its
gradient by matrix backpropagation (:func:`mlp_objective`) -- what :mod:`hml.neural_network` trains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hml.numerics import column_sums, log_sigmoid_terms, positive_part, softmax_terms, tall_gram, tall_matmul

__all__ = ["ACTIVATIONS", "forward", "layer_shapes", "mlp_objective", "n_parameters", "pack", "unpack"]


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
