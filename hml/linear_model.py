"""Linear models, written once against the array API."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar, Literal

from hml import backends
from hml._array import check_sample_weight, check_y, one_hot
from hml._labels import class_weighted, encode_labels
from hml._linear_objectives import (
    linear_regression_objective,
    logistic_objective,
    normal_equation,
    warn_if_badly_scaled,
)
from hml._params import Either, Integer, OneOf, Real, param
from hml.base import (
    CLASS_WEIGHT,
    FIT_INTERCEPT,
    NORMALIZE,
    POLYNOMIAL_DEGREE,
    SINUSOID_DEGREE,
    TOL,
    VERBOSE,
    BaseEstimator,
    ClassifierMixin,
    PreparedProblem,
    r2_score_of,
)
from hml.features import FeatureTransformer
from hml.numerics import class_probabilities, log_class_probabilities
from hml.optimize import gradient_descent, largest_curvature, make_rule, minimize

__all__ = [
    "LinearRegression",
    "LogisticRegression",
    "linear_regression_objective",
    "logistic_objective",
    "normal_equation",
]


def _feature_transformer(p: SimpleNamespace) -> FeatureTransformer:
    """The (unfitted) feature transformer of a linear model's validated hyper-parameters ``p``."""
    return FeatureTransformer(
        polynomial_degree=p.polynomial_degree, sinusoid_degree=p.sinusoid_degree, normalize=p.normalize
    )


class LinearRegression(BaseEstimator):
    r"""Linear regression by batch gradient descent or the normal equation.

    Minimises the regularised mean squared error J(θ) of the Notes, where Z holds the
    (optionally normalised, polynomial and sinusoid) features of X -- see
    :class:`hml.features.FeatureTransformer` -- and λ = ``l2`` never touches the
    intercept b. The math, step by step: :doc:`/math/linear-regression`.

    Attributes
    ----------
    coef_ : array of shape (n_features_out,)
        Weights w of the transformed features (``feature_transformer_.get_feature_names_out()``).
    intercept_ : 0-d array
        The bias b.
    cost_history_ : array of shape (``n_iter_ + 1``,), or (1,) for ``solver="normal"``
        J(θ₀), J(θ₁), …, J(θ_n): the cost at the start and after each iteration (for
        ``solver="normal"``: the cost of the solution).
    n_iter_ : int
        Iterations run.
    learning_rate_ : float or None
        The step α gradient descent took (``learning_rate``, or 1/λ_max for ``"auto"``);
        None for ``solver="normal"``.
    n_features_in_ : int
    feature_transformer_ : FeatureTransformer

    Notes
    -----
    With Z the m × n transformed features of X, θ = [b, w] the intercept and the weights, and
    λ = ``l2``, the hypothesis (:meth:`predict`) is

    .. math::
        :name: linear-regression-hypothesis

        h_\theta(Z) = \hat y = Z w + b

    and the cost, the intercept b never regularised,

    .. math::
        :name: linear-regression-cost

        J(\theta) = \frac{1}{2m} \lVert Z w + b - y \rVert^2 + \frac{\lambda}{2m} \lVert w \rVert^2

    with the gradient, r = Zw + b − y the residual,

    .. math::
        :name: linear-regression-gradient

        \frac{\partial J}{\partial b} = \frac{1}{m} \sum_{i=1}^{m} r_i, \qquad
        \nabla_{w} J = \frac{1}{m} Z^\top r + \frac{\lambda}{m} w

    which ``solver="gd"`` follows from θ₀ = 0 (:class:`hml.optimize.GradientDescent`); both come from
    one pass over Z per iteration (:func:`hml.linear_model.linear_regression_objective`).
    ``solver="normal"`` sets the gradient to zero and solves for w on centred data
    (:func:`hml.linear_model.normal_equation`), μ_Z and μ_y the means of Z's columns and of y,
    Z̄ = Z − μ_Z and ȳ = y − μ_y:

    .. math::
        :name: linear-regression-normal-equation

        (\bar Z^\top \bar Z + \lambda I)\, w = \bar Z^\top \bar y, \qquad b = \mu_y - \mu_Z^\top w

    With λ = 0 and Z̄ of any rank, w = (Z̄ᵀZ̄)⁺ Z̄ᵀȳ, the least-squares solution of minimum norm.
    With ``sample_weight`` s (sᵢ ≥ 0), a row counts sᵢ times and Σs replaces m:

    .. math::
        :name: linear-regression-weighted-cost

        J(\theta) = \frac{1}{2 \sum_i s_i} \Big( \sum_{i=1}^{m} s_i r_i^2 + \lambda \lVert w \rVert^2 \Big)

    -- in the gradient, sᵢrᵢ for rᵢ and Σs for m; in the normal equation, Z̄ᵀSZ̄ and Z̄ᵀSȳ with
    S = diag(s) and the s-weighted means. With ``fit_intercept=False``, b = 0 throughout.

    Examples
    --------
    >>> import numpy as np
    >>> import hml
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ np.array([1.0, -2.0, 0.5]) + 3.0
    >>> model = hml.LinearRegression().fit(X, y)  # learning_rate="auto", stops at tol=1e-4
    >>> round(model.score(X, y), 6)
    1.0
    """

    _estimator_type: ClassVar[str] = "regressor"

    learning_rate: float | Literal["auto"] = param(
        default="auto",
        rule=Either((OneOf(("auto",)), Real(positive=True))),
        doc="Step α of gradient descent (the original project's ``alpha``). ``'auto'`` takes α = 1/λ_max, "
        "λ_max the largest curvature of J (its Hessian's largest eigenvalue, by power iteration: "
        ":func:`hml.optimize.largest_curvature`) -- the longest step that is safe along every direction.",
    )
    max_iter: int = param(default=1000, rule=Integer(1), doc="Gradient-descent iterations (at most, with ``tol``).")
    tol: float | None = TOL
    l2: float = param(default=0.0, rule=Real(), doc="L2 regularisation strength λ (the original project's ``lambda``).")
    solver: Literal["gd", "normal"] = param(
        default="gd",
        rule=OneOf(("gd", "normal")),
        doc="Batch gradient descent, or the closed-form regularised normal equation (with ``l2=0``, the "
        "minimum-norm least-squares solution at any rank of X, as scikit-learn's ``LinearRegression``; formed "
        "from ZᵀZ, so exact while Z's condition number is below about 10⁸: keep ``normalize=True`` for high "
        "polynomial degrees).",
    )
    fit_intercept: bool = FIT_INTERCEPT
    polynomial_degree: int = POLYNOMIAL_DEGREE
    sinusoid_degree: int = SINUSOID_DEGREE
    normalize: bool = NORMALIZE
    verbose: bool = VERBOSE

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearRegression:
        """Fit θ on ``X`` (n_samples × n_features) and targets ``y`` (n_samples,); ``sample_weight``
        (one per row, ≥ 0) counts a row that many times."""
        p = self._validated
        transformer = _feature_transformer(p)
        fit_input = self._validate_fit_X(X, p)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        y = check_y(y, ctx, n_samples=X.shape[0], dtype=X.dtype)
        weights = check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)
        # A lazy backend would otherwise recompute the features on every iteration.
        Z, y = backends.keep(transformer._fit_transform(ctx, X, weights, p.fit_intercept), y)
        objective = linear_regression_objective(Z, y, p.l2, xp, weights, p.fit_intercept)
        with self._unless_squares_overflow(ctx, X, p.normalize):
            theta, cost_history, n_iter, learning_rate = self._solve(objective, Z, y, ctx, p, weights)

        # Everything above may raise; only now is the estimator changed.
        self.feature_transformer_ = transformer
        self.intercept_, self.coef_ = theta[0], theta[1:]
        self.cost_history_, self.n_iter_, self.learning_rate_ = cost_history, n_iter, learning_rate
        self._remember_input(fit_input)
        return self

    def _solve(
        self, objective: Any, Z: Any, y: Any, ctx: backends.ComputeContext, p: SimpleNamespace, weights: Any
    ) -> tuple[Any, Any, int, float | None]:
        """θ, the cost history, the iterations and the step, by the normal equation or gradient descent."""
        xp = ctx.xp
        learning_rate = p.learning_rate
        if p.solver == "normal":
            theta = normal_equation(Z, y, p.l2, ctx, weights, p.fit_intercept)
            cost_history, n_iter = xp.reshape(objective(theta)[0], (1,)), 1
            learning_rate = None
        else:
            theta0 = xp.zeros(Z.shape[1] + 1, dtype=Z.dtype, device=ctx.device)
            if not p.normalize:
                warn_if_badly_scaled(ctx, Z, p.fit_intercept, "LinearRegression(normalize=False, solver='gd')")
            if learning_rate == "auto":
                learning_rate = 1.0 / max(largest_curvature(objective, theta0, ctx=ctx), 1e-300)
            with self._progress_bar(p.max_iter, p.verbose):
                result = gradient_descent(
                    objective,
                    theta0,
                    ctx=ctx,
                    learning_rate=learning_rate,
                    max_iter=p.max_iter,
                    tol=p.tol,
                    hint=self._divergence_hint(p.normalize),
                )
            theta, cost_history, n_iter = result.theta, result.cost_history, result.n_iter
        return theta, cost_history, n_iter, learning_rate

    def _predict(self, X: Any) -> tuple[Any, Any]:
        ctx, Xc = self._validate_X(X)
        Z = self.feature_transformer_._transform(Xc, ctx.xp)
        return Z @ self.coef_ + self.intercept_, Xc

    def predict(self, X: Any) -> Any:
        """The predictions ŷ of the hypothesis (Notes) for the rows of ``X``, in the namespace and on the
        device of ``X``."""
        prediction, _ = self._predict(X)
        return backends.mirror(prediction, X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of the predictions for ``X`` against ``y`` (see :func:`hml.metrics.r2_score`), rows weighted by
        ``sample_weight`` (scikit-learn's weighted R²)."""
        prediction, _ = self._predict(X)
        return r2_score_of(self._ctx_, prediction, y, sample_weight)


class LogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Logistic regression: one-vs-all (the original project) or multinomial, any number of classes.

    Minimises the regularised cross-entropy J(Θ) of the Notes for Θ = [b; W] of shape
    (1 + n_features_out, K): with ``multi_class="ovr"`` K = n_classes sigmoid
    classifiers (K = 1 for two classes) trained together as one matrix problem -- every
    class in the same GEMM -- and with ``"multinomial"`` one softmax over K = n_classes.
    The features Z come from :class:`hml.features.FeatureTransformer` (normalisation,
    polynomial and sinusoid terms); λ = ``l2`` never touches the biases b. The math, step
    by step: :doc:`/math/logistic-regression`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels seen in ``fit``, sorted; ``predict`` returns these.
    coef_ : array of shape (n_features_out, K)
        W, on the compute device.
    intercept_ : array of shape (K,)
        b.
    cost_history_ : array of shape (``n_iter_ + 1``,)
        J(Θ₀), J(Θ₁), …, J(Θ_n): the cost at the start and after each iteration, whatever
        the solver.
    class_cost_history_ : array of shape (``len(cost_history_)``, K)
        One-vs-all only: each sigmoid classifier's own cost Jₖ at the same iterations (the
        original project's one curve per class); the rows sum to ``cost_history_``. The
        problems are separable, so this costs no extra pass. With ``solver="gd"`` column k
        follows, iteration for iteration, the cost of class k's binary fit on its own.
    n_iter_ : int
    n_features_in_ : int
    feature_transformer_ : FeatureTransformer

    Notes
    -----
    With Z the m × n transformed features, Y the m × K targets (one-hot; for two classes one
    column, 1 for ``classes_[1]``) and λ = ``l2``, the hypothesis gives each row i and class k
    a logit z_ik (:meth:`decision_function`) and a probability p_ik, by a sigmoid per class
    (one-vs-all, and any two classes) or a softmax over the classes (multinomial):

    .. math::
        :name: logistic-regression-hypothesis

        z_{ik} &= (Z W + b)_{ik} \\
        p_{ik} &= \sigma(z_{ik}) = \frac{1}{1 + e^{-z_{ik}}} \quad \text{(one-vs-all)} \\
        p_{ik} &= \frac{e^{z_{ik}}}{\sum_{j=1}^{K} e^{z_{ij}}} \quad \text{(multinomial)}

    One-vs-all minimises the sum of K independent binary cross-entropies, each written as
    the softplus log(1 + eᶻ) so that no log(0) occurs (:func:`hml.numerics.log_sigmoid_terms`):

    .. math::
        :name: logistic-regression-ovr-cost

        J(\Theta) &= \sum_{k=1}^{K} J_k, \qquad J_k = L_k + \frac{\lambda}{2m} \lVert W_{:k} \rVert^2 \\
        L_k &= -\frac{1}{m} \sum_{i=1}^{m} \big[ y_{ik} \log p_{ik} + (1 - y_{ik}) \log (1 - p_{ik}) \big] \\
            &= \frac{1}{m} \sum_{i=1}^{m} \big[ \log (1 + e^{z_{ik}}) - y_{ik} z_{ik} \big]

    (``class_cost_history_`` records each Jₖ). Multinomial minimises one cross-entropy over
    the softmax, its log Σ e^z by the log-sum-exp shift (:func:`hml.numerics.softmax_terms`):

    .. math::
        :name: logistic-regression-multinomial-cost

        J(\Theta) &= -\frac{1}{m} \sum_{i=1}^{m} \sum_{k=1}^{K} y_{ik} \log p_{ik}
                     + \frac{\lambda}{2m} \lVert W \rVert^2 \\
                  &= \frac{1}{m} \sum_{i=1}^{m} \Big[ \log \sum_{k=1}^{K} e^{z_{ik}} - \sum_{k=1}^{K} y_{ik} z_{ik} \Big]
                     + \frac{\lambda}{2m} \lVert W \rVert^2

    Both have the same gradient, P the matrix of the p_ik
    (:func:`hml.linear_model.logistic_objective` computes costs and gradient in one pass):

    .. math::
        :name: logistic-regression-gradient

        \nabla_b J &= \frac{1}{m} \sum_{i=1}^{m} (P - Y)_{i:} \\
        \nabla_W J &= \frac{1}{m} Z^\top (P - Y) + \frac{\lambda}{m} W

    With ``sample_weight`` s -- times the row's class weight, for ``class_weight`` -- row i's
    term and its row of P − Y are multiplied by sᵢ and Σs replaces m, as in
    :class:`hml.LinearRegression`. With ``fit_intercept=False``, b = 0 throughout.

    Examples
    --------
    >>> import numpy as np, hml
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = hml.LogisticRegression().fit(X, ["low", "low", "high", "high"])
    >>> model.predict(np.array([[0.2], [2.8]])).tolist()
    ['low', 'high']
    """

    solver: Literal["lbfgs", "cg", "gd"] = param(
        default="lbfgs",
        rule=OneOf(("lbfgs", "cg", "gd")),
        doc="L-BFGS or nonlinear conjugate gradient (both with a Wolfe line search), or batch gradient descent "
        "with ``learning_rate``. See :mod:`hml.optimize`.",
    )
    multi_class: Literal["ovr", "multinomial"] = param(
        default="multinomial",
        rule=OneOf(("ovr", "multinomial")),
        doc="One softmax over the classes, or one-vs-all sigmoids (the original project's choice). Two classes "
        "always take a single sigmoid. The default is softmax because it is the more accurate on MNIST (test "
        "accuracy 0.925 against 0.920 for one-vs-all after 50 iterations).",
    )
    max_iter: int = param(
        default=50,
        rule=Integer(1),
        doc="Iterations of the solver. 50 L-BFGS iterations take MNIST to its plateau of test accuracy (0.9267 "
        "after 30, 0.9250 after 50, 0.9243 after 100) in half the time of 100; a ``ConvergenceWarning`` says "
        "when more would still lower the cost.",
    )
    tol: float | None = TOL
    l2: float = param(
        default=1.0,
        rule=Real(),
        doc="λ. The same problem as scikit-learn's ``LogisticRegression(C=1/l2)`` when ``normalize=False`` "
        "(scikit-learn minimises C Σᵢ lossᵢ + ½‖W‖², i.e. m·C times J).",
    )
    learning_rate: float = param(
        default=1.0,
        rule=Real(positive=True),
        doc="Step of ``solver='gd'`` (the original's ``alpha``); unused by the other solvers.",
    )
    class_weight: Any = CLASS_WEIGHT
    fit_intercept: bool = FIT_INTERCEPT
    polynomial_degree: int = POLYNOMIAL_DEGREE
    sinusoid_degree: int = SINUSOID_DEGREE
    normalize: bool = NORMALIZE
    verbose: bool = VERBOSE

    def _prepare(self, X: Any, y: Any, p: SimpleNamespace, sample_weight: Any = None) -> PreparedProblem:
        """Validate, transform and encode: the problem the optimiser solves, for the validated ``p``."""
        transformer = _feature_transformer(p)
        fit_input = self._validate_fit_X(X, p, min_samples=2)
        ctx, X = fit_input.ctx, fit_input.X
        xp = ctx.xp
        classes, codes = encode_labels(y, X.shape[0])
        # Two classes take one sigmoid column whatever multi_class says (a two-column softmax
        # is the same model, over-parametrised), as in scikit-learn.
        multinomial = p.multi_class == "multinomial" and classes.size > 2
        n_outputs = classes.size if classes.size > 2 else 1
        sample_weight = class_weighted(sample_weight, p.class_weight, classes, codes)
        weights = check_sample_weight(sample_weight, ctx, n_samples=X.shape[0], dtype=X.dtype)
        (Z,) = backends.keep(transformer._fit_transform(ctx, X, weights, p.fit_intercept))
        if p.solver == "gd" and not p.normalize:
            warn_if_badly_scaled(ctx, Z, p.fit_intercept, "LogisticRegression(normalize=False, solver='gd')")
        codes = ctx.asarray(codes)
        if n_outputs == 1:  # two classes, one sigmoid: y = 1 for classes_[1]
            Y = xp.reshape(xp.astype(codes, Z.dtype), (-1, 1))
        else:
            Y = one_hot(codes, n_outputs, Z.dtype, xp)
        (Y,) = backends.keep(Y)
        theta0 = xp.zeros((Z.shape[1] + 1, n_outputs), dtype=Z.dtype, device=ctx.device)
        return PreparedProblem(
            fit_input,
            logistic_objective(Z, Y, p.l2, multinomial, xp, weights, p.fit_intercept),
            theta0,
            transformer,
            classes,
            multinomial,
        )

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit Θ on ``X`` (n_samples × n_features) and class labels ``y`` (n_samples,) of any type;
        ``sample_weight`` (one per row, ≥ 0) counts a row that many times."""
        p = self._validated
        problem = self._prepare(X, y, p, sample_weight)
        with (
            self._unless_squares_overflow(problem.ctx, problem.input.X, p.normalize),
            self._progress_bar(p.max_iter, p.verbose),
        ):
            result = minimize(
                problem.objective,
                problem.theta0,
                ctx=problem.ctx,
                rule=make_rule(p.solver, learning_rate=p.learning_rate),
                max_iter=p.max_iter,
                tol=p.tol,
                hint=self._divergence_hint(p.normalize),
            )
        theta = result.theta
        assert problem.classes is not None  # a classifier's problem always has them
        self.feature_transformer_ = problem.transformer
        self.classes_ = problem.classes
        self._multinomial_ = problem.multinomial
        self.intercept_, self.coef_ = theta[0, :], theta[1:, :]
        self.cost_history_, self.n_iter_ = result.cost_history, result.n_iter
        if result.cost_parts is not None:
            self.class_cost_history_ = result.cost_parts
        elif hasattr(self, "class_cost_history_"):  # from an earlier one-vs-all fit
            del self.class_cost_history_
        self._remember_input(problem.input)
        return self

    def _decision(self, Xc: Any) -> Any:
        Z = self.feature_transformer_._transform(Xc, self._ctx_.xp)
        return Z @ self.coef_ + self.intercept_

    def _proba(self, Xc: Any) -> Any:
        # One-vs-all scores need not sum to one: normalised, as scikit-learn's OvR does.
        return class_probabilities(self._decision(Xc), self._multinomial_, self._ctx_.xp)

    def _log_proba(self, Xc: Any) -> Any:
        return log_class_probabilities(self._decision(Xc), self._multinomial_, self._ctx_.xp)

    def decision_function(self, X: Any) -> Any:
        """The logits z of the hypothesis (Notes) for the rows of ``X``: shape (n_samples,) for two classes
        (z > 0 means ``classes_[1]``), else (n_samples, K)."""
        _, Xc = self._validate_X(X)
        logits = self._decision(Xc)
        if logits.shape[1] == 1:
            logits = logits[:, 0]
        return backends.mirror(logits, X)
