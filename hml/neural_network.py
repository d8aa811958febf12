"""The multilayer perceptron, trained by vectorised (matrix) backpropagation: no loop over examples.

Its math -- the forward pass, the costs, backpropagation -- is in the docstrings of :func:`forward` and
:func:`mlp_objective` (``hml._mlp``), which compute it. All parameters travel as one flat vector θ, so
the shared optimisers of :mod:`hml.optimize` train the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import array_api_compat
import numpy as np

from hml import backends
from hml._array import check_sample_weight, check_y
from hml._declarations import redeclared
from hml._labels import class_weighted, encode_labels, labels_to_codes
from hml._mlp import (
    ACTIVATIONS,
    EarlyStopping,
    Targets,
    checked_layers,
    forward,
    gradient_check,
    held_out_weights,
    hold_out,
    initial_theta,
    mlp_objective,
    n_parameters,
    pack,
    step_rule,
    unpack,
    validation_accuracy,
    validation_r2,
)
from hml._mlp_partial import (
    StepSolversOnly,
    blaming_earlier_steps,
    check_partial_fit,
    checked_batch_size,
    partial_batches,
    partial_class_weight,
    row_weights,
    rule_key,
    saved_state,
)
from hml._params import Boolean, Integer, OneOf, Real, Sizes, param
from hml.base import (
    CLASS_WEIGHT,
    NORMALIZE,
    RANDOM_STATE,
    TOL,
    VERBOSE,
    BaseEstimator,
    ClassifierMixin,
    FitInput,
    PreparedProblem,
    r2_score_of,
)
from hml.features import FeatureTransformer
from hml.numerics import class_probabilities, log_class_probabilities
from hml.optimize import MiniBatches, minimize

__all__ = [
    "MultilayerPerceptron",
    "MultilayerPerceptronRegressor",
    "forward",
    "gradient_check",
    "mlp_objective",
    "n_parameters",
    "pack",
    "unpack",
]


class _Network(BaseEstimator):
    """A fully connected network trained by matrix backpropagation: what the classifier and the
    regressor share (their hyper-parameters, data preparation and training). A subclass says what
    its targets are (:meth:`_targets`), its output layer (:meth:`_output`) and how early stopping
    scores the held-out rows (:meth:`_validation_score`)."""

    if TYPE_CHECKING:  # set by fit and partial_fit
        classes_: np.ndarray
        _rule_state_: Any

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
    init: Literal["uniform", "glorot"] = param(
        default="uniform",
        rule=OneOf(("uniform", "glorot")),
        doc="W, b uniform in ±``epsilon`` (the original), or Glorot's W, b = 0 (see :class:`MultilayerPerceptron`).",
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
        doc="Hold out ``validation_fraction`` of the rows (stratified by class for the classifier), score them "
        "after every iteration (epoch: accuracy, or R² for the regressor), stop after ``n_iter_no_change`` "
        "without a better score, and keep the best weights.",
    )
    validation_fraction: float = param(
        default=0.1,
        rule=Real(positive=True, maximum=1.0, below_maximum=True),
        doc="The share of the rows held out with ``early_stopping``.",
    )
    n_iter_no_change: int = param(
        default=10, rule=Integer(1), doc="Iterations (epochs) without a better validation score before stopping."
    )
    tol: float | None = TOL
    normalize: bool = NORMALIZE
    random_state: Any = RANDOM_STATE
    verbose: bool = VERBOSE

    # -- set-up shared by fit and gradient_check -------------------------------------
    def _prepare(self, X: Any, y: Any, p: SimpleNamespace, sample_weight: Any = None) -> PreparedProblem:
        """Validate, standardise and encode the targets; θ₀ drawn from ``p.random_state``: the problem the
        optimiser solves, for the validated ``p``."""
        transformer = FeatureTransformer(normalize=p.normalize)
        fit_input = self._validate_fit_X(X, p, min_samples=2)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        targets = self._targets(y, ctx, X)
        layers = checked_layers(p.layers, X.shape[1], targets.n_outputs, targets.what)
        sample_weight = class_weighted(sample_weight, getattr(p, "class_weight", None), targets.classes, targets.codes)
        held_out = weights_held = None
        if p.early_stopping:  # the validation rows leave before anything is fitted to them
            train, held = hold_out(targets, p)
            if (every_row := check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)) is not None:
                sample_weight = ctx.take_rows(every_row.given, train)  # checked on all rows, as without the split
                weights_held = held_out_weights(ctx, ctx.take_rows(every_row.given, held))
            X, X_held = ctx.take_rows(X, train), ctx.take_rows(X, held)
            targets, targets_held = targets.split(ctx, train, held)
        weights = check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)
        (Z,) = backends.keep(transformer._fit_transform(ctx, X, weights))
        if p.early_stopping:
            held_out = (transformer._transform(X_held, xp), targets_held.matrix(ctx, Z.dtype), weights_held)
        (Y,) = backends.keep(targets.matrix(ctx, Z.dtype))
        objective = mlp_objective(Z, Y, layers, p.activation, self._output(p), p.l2, xp, weights)
        theta0 = initial_theta(ctx, layers, X.dtype, p)
        scale = 1.0 if weights is None else weights.total / X.shape[0]  # the mean weight: partial_fit goes on with it
        problem = (fit_input, objective, theta0, transformer, targets.classes)
        return PreparedProblem(*problem, layers=layers, validation=held_out, weight_scale=scale)

    def _targets(self, y: Any, ctx: backends.ComputeContext, X: Any) -> Targets:
        raise NotImplementedError

    def _output(self, p: SimpleNamespace) -> str:
        raise NotImplementedError

    @staticmethod
    def _validation_score(xp: Any, outputs: Any, target: Any, weights: Any = None) -> Any:
        raise NotImplementedError

    def _train(self, X: Any, y: Any, sample_weight: Any) -> PreparedProblem:
        """Prepare and train; store the fitted network. Returns the problem (for the subclass's attributes)."""
        p = self._validated
        p.batch_size = checked_batch_size(p, type(self).__params__["batch_size"].default)
        problem = self._prepare(X, y, p, sample_weight)
        ctx = problem.ctx
        assert problem.layers is not None  # a network's problem has them
        batches = None
        if p.batch_size is not None:
            held = 0 if problem.validation is None else problem.validation[1].shape[0]
            batches = MiniBatches(problem.input.X.shape[0] - held, p.batch_size, p.random_state)
        rule = step_rule(p)
        stopping = None
        if problem.validation is not None:
            stopping = EarlyStopping(ctx, problem.layers, problem.validation, problem.theta0, p, self._validation_score)
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
        self.feature_transformer_, self.layers_ = problem.transformer, problem.layers
        weights = unpack(theta, problem.layers, ctx.xp)
        self.coefs_ = [W for W, _ in weights]
        self.intercepts_ = [b for _, b in weights]
        self.cost_history_, self.n_iter_ = result.cost_history, result.n_iter
        # For a partial_fit that goes on from here (a step rule's state: L-BFGS/CG's is of no use to one).
        self._rule_state_ = (rule_key(p), *result.state) if p.solver in ("gd", "adam") else None
        self._weight_scale_ = problem.weight_scale
        if stopping is not None:
            self.validation_scores_ = np.asarray(stopping.scores)
            self.best_validation_score_ = stopping.best_score
        else:
            for name in ("validation_scores_", "best_validation_score_"):  # from an earlier fit
                self.__dict__.pop(name, None)
        return problem

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> Any:
        """One pass over the rows of ``X`` (mini-batches of ``batch_size`` in a new order every call; all rows in
        one step without), going on from the weights and the optimiser's state (the velocity, Adam's moments)
        of earlier calls: for data that arrives, or is read, in chunks. The first call sets what the later ones
        keep: the layers, the classes (``classes``: every label any chunk may hold, at least two) and, with
        ``normalize=True``, the standardisation, from its rows. A ``class_weight`` dict weighs every chunk, and
        weights count relative to the mean weight of the first chunk (or of fit's rows), not chunk by chunk. Only
        a non-finite cost raises :class:`hml.DivergenceError` (a chunk's cost rises and falls with the batches)."""
        p = self._validated
        check_partial_fit(p)
        first = not hasattr(self, "coefs_")
        if first:
            fit_input = self._validate_fit_X(X, p)
            transformer = FeatureTransformer(normalize=p.normalize)
        else:
            ctx, Xc = self._validate_X(X)
            fit_input = FitInput(ctx, Xc, getattr(self, "feature_names_in_", None))
            transformer = self.feature_transformer_
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        targets = self._partial_targets(y, ctx, X, classes)
        sample_weight = class_weighted(sample_weight, partial_class_weight(p), targets.classes, targets.codes)
        weights, scale = row_weights(sample_weight, ctx, X, None if first else getattr(self, "_weight_scale_", None))
        Z = transformer._fit_transform(ctx, X, weights) if first else transformer._transform(X, xp)
        layers = checked_layers(p.layers, X.shape[1], targets.n_outputs, targets.what) if first else self.layers_
        Y = targets.matrix(ctx, Z.dtype)
        objective = mlp_objective(Z, Y, layers, p.activation, self._output(p), p.l2, xp, weights)
        if first:
            theta = initial_theta(ctx, layers, X.dtype, p)
        else:
            fitted = list(zip(self.coefs_, self.intercepts_, strict=True))  # concrete, in their own namespace
            theta = ctx.asarray(pack(fitted, array_api_compat.array_namespace(*self.coefs_)), dtype=X.dtype)
        batches = partial_batches(p, X.shape[0], 0 if first else self.n_iter_)  # a new order every call
        with self._progress_bar(1, p.verbose), blaming_earlier_steps(None if first else self.cost_history_, p):
            result = minimize(
                objective,
                theta,
                ctx=ctx,
                rule=step_rule(p),
                max_iter=1,
                tol=None,
                batches=batches,
                state=None if first else saved_state(ctx, getattr(self, "_rule_state_", None), p),
                # Only a non-finite cost: against this chunk's J(θ₀), small once the model fits, noise is "growth".
                divergence_factor=math.inf,
            )
        self.feature_transformer_, self.layers_ = transformer, layers
        if targets.classes is not None:
            self.classes_ = targets.classes
        weights_and_biases = unpack(result.theta, layers, xp)
        self.coefs_ = [W for W, _ in weights_and_biases]
        self.intercepts_ = [b for _, b in weights_and_biases]
        history = result.cost_history if first else xp.concat([self.cost_history_, result.cost_history[1:]])
        self.cost_history_, self.n_iter_ = history, (0 if first else self.n_iter_) + 1
        self._rule_state_, self._weight_scale_ = (rule_key(p), *result.state), scale
        self._remember_input(fit_input)
        return self

    def _partial_targets(self, y: Any, ctx: backends.ComputeContext, X: Any, classes: Any) -> Targets:
        """A chunk's targets for :meth:`partial_fit` (the regressor's: as ``fit``'s)."""
        return self._targets(y, ctx, X)

    def _outputs(self, Xc: Any) -> Any:
        """The output layer's values H for validated rows (logits; the predictions of a regressor)."""
        xp = self._ctx_.xp
        Z = self.feature_transformer_._transform(Xc, xp)
        return forward(Z, list(zip(self.coefs_, self.intercepts_, strict=True)), self.activation, xp)[1]


class MultilayerPerceptron(ClassifierMixin, _Network):
    r"""A fully connected neural network classifier trained by matrix backpropagation.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    coefs_, intercepts_, layers_ : lists
        W⁽ˡ⁾ (nₗ₋₁ × nₗ) and b⁽ˡ⁾ (nₗ) for l = 1, …, L, and n₀, …, n_L (input and output included).
    cost_history_ : array of shape (``n_iter_`` + 1,)
        J(θ₀), then J after every iteration (full batch) or the mean batch cost of every epoch.
    n_iter_, n_features_in_ : int
    feature_transformer_ : FeatureTransformer
        The standardisation fitted to the training rows (``normalize``).
    validation_scores_, best_validation_score_ : ndarray, float
        With ``early_stopping``: the held-out accuracy after each iteration (epoch), and the best.

    Notes
    -----
    The math is :func:`hml.neural_network.forward`'s and :func:`hml.neural_network.mlp_objective`'s; θ₀ is drawn as:

    .. math::
        :name: mlp-initialisation

        \text{uniform:} \quad & W^{(l)}_{jk}, \ b^{(l)}_k \sim U(\pm \epsilon), \\
        \text{glorot:} \quad & W^{(l)}_{jk} \sim U\Big(\pm \sqrt{\tfrac{6}{n_{l-1} + n_l}}\Big), \ \ b^{(l)} = 0 .
    """

    output: Literal["sigmoid", "softmax"] = param(
        default="sigmoid",
        rule=OneOf(("sigmoid", "softmax")),
        doc="Per-class sigmoids with cross-entropy summed over classes (the original), or softmax.",
    )
    class_weight: Any = CLASS_WEIGHT

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultilayerPerceptron:
        """Train on ``X`` (n_samples × n_features) and class labels ``y`` of any type; ``sample_weight``
        (one per row, ≥ 0) counts a row that many times (in expectation, for mini-batches)."""
        problem = self._train(X, y, sample_weight)
        assert problem.classes is not None  # a classifier's problem has them
        self.classes_ = problem.classes
        self._remember_input(problem.input)
        return self

    def _targets(self, y: Any, ctx: backends.ComputeContext, X: Any) -> Targets:
        classes, codes = encode_labels(y, X.shape[0])
        return Targets(classes=classes, codes=codes)

    def _output(self, p: SimpleNamespace) -> str:
        return str(p.output)

    def _partial_targets(self, y: Any, ctx: backends.ComputeContext, X: Any, classes: Any) -> Targets:
        """y's codes among the classes of the first call (``classes``, which only it must give)."""
        known = getattr(self, "classes_", None)
        if classes is not None:
            given = encode_labels(classes, None, name="classes")[0]  # as fit's y: at least two classes
            if known is not None and not np.array_equal(given, known):
                raise ValueError(f"classes={given.tolist()} differs from the first call's {known.tolist()}")
            known = given
        if known is None:
            raise ValueError(
                "classes must be given to the first partial_fit: every label any chunk may hold, e.g. "
                "classes=np.unique(y_all)"
            )
        return Targets(classes=known, codes=labels_to_codes(y, known, X.shape[0]))

    _validation_score = staticmethod(validation_accuracy)

    def _proba(self, Xc: Any) -> Any:
        return class_probabilities(self._outputs(Xc), self.output == "softmax", self._ctx_.xp)

    def _log_proba(self, Xc: Any) -> Any:
        return log_class_probabilities(self._outputs(Xc), self.output == "softmax", self._ctx_.xp)


class MultilayerPerceptronRegressor(_Network):
    """A fully connected network for regression, trained by matrix backpropagation: scikit-learn's ``MLPRegressor``.
    Its output layer is the identity, ŷ = H⁽ᴸ⁾, and its loss the squared error (``"identity"`` in
    :func:`hml.neural_network.mlp_objective`); the rest is the classifier's. The defaults are scikit-learn's
    (relu, Glorot, Adam on batches of 200 with step 0.001, λ = 1e-4); X is standardised, y used as it is.

    Attributes
    ----------
    coefs_, intercepts_, layers_, cost_history_, n_iter_, n_features_in_, feature_transformer_
        As :class:`MultilayerPerceptron`'s, with n_L = 1.
    validation_scores_, best_validation_score_ : ndarray, float
        With ``early_stopping``: the held-out R² after each iteration (epoch), and the best.
    """

    _estimator_type: ClassVar[str] = "regressor"

    activation: Literal["sigmoid", "tanh", "relu"] = redeclared(_Network, "activation", "relu")
    init: Literal["uniform", "glorot"] = redeclared(_Network, "init", "glorot")
    solver: Literal["gd", "adam", "lbfgs", "cg"] = redeclared(_Network, "solver", "adam")
    l2: float = redeclared(_Network, "l2", 1e-4, doc="λ, on the weights only (scikit-learn's ``alpha``).")
    batch_size: int | None = redeclared(
        _Network,
        "batch_size",
        200,
        doc="Mini-batches of this many rows (all rows when fewer), shuffled every epoch; ``None``: full batch. "
        "The full-batch ``'lbfgs'`` and ``'cg'`` ignore this default, as scikit-learn's.",
    )

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MultilayerPerceptronRegressor:
        """Train on ``X`` (n_samples × n_features) and targets ``y`` (n_samples,); ``sample_weight`` (one per
        row, ≥ 0) counts a row that many times (in expectation, for mini-batches)."""
        problem = self._train(X, y, sample_weight)
        self._remember_input(problem.input)
        return self

    def _targets(self, y: Any, ctx: backends.ComputeContext, X: Any) -> Targets:
        values = check_y(y, ctx, n_samples=X.shape[0], dtype=X.dtype)
        return Targets(values=ctx.xp.reshape(values, (-1, 1)))

    def _output(self, p: SimpleNamespace) -> str:
        return "identity"

    _validation_score = staticmethod(validation_r2)

    def predict(self, X: Any) -> Any:
        """ŷ for each row of ``X``, in its namespace and on its device."""
        _, Xc = self._validate_X(X)
        return backends.mirror(self._ctx_.xp.reshape(self._outputs(Xc), (-1,)), X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions for ``X`` against ``y`` (see :func:`hml.metrics.r2_score`), rows weighted by
        ``sample_weight`` (scikit-learn's weighted R²)."""
        ctx, Xc = self._validate_X(X)
        return r2_score_of(ctx, ctx.xp.reshape(self._outputs(Xc), (-1,)), y, sample_weight)


# After the class, which wrapped it to validate its parameters and leave the estimator as it was on failure.
_Network.partial_fit = StepSolversOnly(vars(_Network)["partial_fit"])  # type: ignore[method-assign,assignment]
