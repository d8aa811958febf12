"""The estimator base class: scikit-learn's contract, hml's backend handling."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hml import backends, metrics, persistence
from hml._array import (
    check_feature_names,
    check_sample_weight,
    check_X,
    check_y,
    feature_names,
    squares_overflow_if_any,
    warn_if_small,
)
from hml._concrete import make_concrete
from hml._declarations import (
    CLASS_WEIGHT,
    FIT_INTERCEPT,
    NORMALIZE,
    POLYNOMIAL_DEGREE,
    RANDOM_STATE,
    SINUSOID_DEGREE,
    TOL,
    VERBOSE,
)
from hml._params import (
    Backend,
    Declared,
    Device,
    FloatDtype,
    param,
    validate,
)
from hml._platform import progress_bar
from hml._routing import MetadataRequests
from hml.exceptions import NotFittedError, as_sklearn
from hml.numerics import r2

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from typing_extensions import Self  # typing.Self from Python 3.11; only mypy reads this

__all__ = [
    "CLASS_WEIGHT",
    "FIT_INTERCEPT",
    "NORMALIZE",
    "POLYNOMIAL_DEGREE",
    "RANDOM_STATE",
    "SINUSOID_DEGREE",
    "TOL",
    "VERBOSE",
    "BaseEstimator",
    "ClassifierMixin",
    "FitInput",
    "PreparedProblem",
]


@dataclass(frozen=True)
class FitInput:
    """``X`` as ``fit`` validated it, and what later calls will hold their ``X`` to.

    ``X`` is a floating 2-D array on ``ctx``'s device; ``feature_names`` the column names
    of a DataFrame (all strings), else None.
    """

    ctx: backends.ComputeContext
    X: Any
    feature_names: np.ndarray | None


@dataclass(frozen=True)
class PreparedProblem:
    """What data preparation hands the optimiser, and ``fit`` stores beside its result.

    ``objective(θ) -> (J, ∇J)`` is built on the transformed data (targets one-hot encoded
    once); ``theta0`` the starting parameters; ``classes`` the sorted labels of a classifier;
    ``multinomial``/``layers`` the model's shape (logistic regression / MLP); ``validation`` the
    rows held out for early stopping (transformed features, class codes), if any; ``weight_scale`` Σs/m.
    """

    input: FitInput
    objective: Any
    theta0: Any
    transformer: Any
    classes: np.ndarray | None = None
    multinomial: bool = False
    layers: list[int] | None = None
    validation: tuple[Any, Any, Any] | None = None
    weight_scale: float = 1.0  # the mean sample weight of the rows fitted (1 without weights)

    @property
    def ctx(self) -> backends.ComputeContext:
        return self.input.ctx


class BaseEstimator(Declared, MetadataRequests):
    """Hyper-parameters in ``__init__`` (stored unchanged), learned state in ``*_`` attributes.

    Each hyper-parameter is declared once in the class body with :func:`hml._params.param`; from
    that come ``__init__``, ``get_params``, the validation at ``fit`` and the docstring's Parameters
    section. Every fitting method (``fit``, ``fit_transform``, ``fit_predict``) is all-or-nothing
    and begins with the validated values in ``self._validated``; the estimator computes where
    ``backend``/``device`` say and ``predict`` computes where ``fit`` did.
    """

    backend: str | None = param(
        default=None,
        rule=Backend(),
        doc="Where to compute: 'numpy', 'cupy', 'torch', 'dask', 'array_api_strict' or 'auto' (the "
        "namespace of the input); None follows hml.use_backend, hml.set_backend and HML_BACKEND.",
    )
    device: Any = param(
        default=None,
        rule=Device(),
        doc="The backend's device ('cpu', 'cuda', 'cuda:1', 'mps', ...); None: its default, or the input's.",
    )
    dtype: Any = param(
        default=None,
        rule=FloatDtype(),
        doc="Computation precision; None keeps float32 input in float32 and computes in float64 otherwise.",
    )

    def _repr_html_(self) -> str | None:
        """Jupyter's diagram of the estimator, as scikit-learn draws its own (its plain repr without scikit-learn)."""
        try:
            from sklearn.utils import estimator_html_repr
        except ImportError:
            return None
        return str(estimator_html_repr(self))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        public = not cls.__name__.startswith("_") and not cls.__module__.rpartition(".")[2].startswith("_")
        if cls.__module__.startswith("hml.") and public:
            persistence.register(cls)  # a saved file may name it: hml's own public classes (not a shared base)
        for name in ("fit", "fit_transform", "fit_predict", "partial_fit"):
            if name in cls.__dict__:
                setattr(cls, name, _fitting(cls.__dict__[name]))

    if TYPE_CHECKING:  # every estimator defines its own; the wrapper sets _validated for its call
        fit: ClassVar[Callable[..., Any]]
        _validated: ClassVar[SimpleNamespace]

    #: scikit-learn's estimator type ("regressor", "classifier", "clusterer", "transformer").
    _estimator_type: ClassVar[str] = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        """The hyper-parameters' names, in ``__init__``'s order."""
        return list(cls.__params__)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters, as passed to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters; unknown names raise ``ValueError`` listing the valid ones."""
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(f"{name!r} is not a parameter of {type(self).__name__}; valid parameters: {valid}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        declared = type(self).__params__
        changed = [
            f"{name}={value!r}" for name, value in self.get_params().items() if not _same(value, declared[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """What scikit-learn's tools and its ``check_estimator`` should know about this estimator.

        Only scikit-learn calls this, so importing it here adds no run-time dependency.
        The tags say what each estimator honestly is: the kind, its target, that it
        accepts array-API arrays (NumPy, CuPy, torch, Dask) but no sparse matrices or NaN,
        and that float32 input stays float32.
        """
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags, TransformerTags

        kind = self._estimator_type or None
        return Tags(
            estimator_type=None if kind == "transformer" else kind,
            target_tags=TargetTags(required=kind in ("regressor", "classifier")),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"])
            if hasattr(self, "transform")
            else None,
            classifier_tags=ClassifierTags(multi_class=True) if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            array_api_support=True,
            input_tags=InputTags(allow_nan=False, sparse=False),
        )

    # -- saving and moving a fitted model (hml.persistence: arrays in a .npz, no pickle) ---------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this fitted model to ``path``, atomically, in hml's portable format (a ``.npz``
        of arrays and JSON; see :mod:`hml.persistence`). ``hml.load(path)`` reads it back, onto
        any backend. Returns the path."""
        return persistence.save(self, path)

    def to(self, backend: str, device: Any = None) -> Self:
        """A new fitted estimator with this one's state on ``backend`` and ``device`` -- fit on a
        GPU, then predict or save on a CPU with ``model.to("numpy")``. This model is unchanged.
        A ``backend`` or ``device`` parameter set explicitly follows the move, so a refit of
        the copy computes where it now lives."""
        copy: Self = persistence.moved(self, backend, device)  # rebuilt from this model's own class
        return copy

    # -- pickling: the compute context holds modules, so it travels as (backend name, device) --
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        ctx = state.get("_ctx_")
        if isinstance(ctx, backends.ComputeContext):
            state["_ctx_"] = (ctx.backend.name, ctx.device)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        ctx = state.get("_ctx_")
        if isinstance(ctx, tuple):
            state["_ctx_"] = backends.resolve(ctx[0], ctx[1])
        self.__dict__.update(state)

    # -- backend plumbing -----------------------------------------------------------
    def _fitted_context(self) -> backends.ComputeContext:
        """Where ``predict``-like calls compute: on the backend and device chosen at ``fit``."""
        self._check_fitted()
        return self._ctx_

    @contextlib.contextmanager
    def _progress_bar(self, total: int, verbose: bool) -> Iterator[None]:
        """With ``verbose``: a tqdm bar over ``total`` iterations, showing the cost the fit
        reads anyway (:func:`hml.optimize.progress`); callbacks already set keep being called."""
        if not verbose:
            yield
            return

        from hml.optimize import cost_callback, progress, progress_callback

        outer_iteration, outer_cost = progress_callback(), cost_callback()
        with progress_bar(total=total, desc=type(self).__name__, unit="it", file=sys.stderr, leave=True) as bar:

            def on_iteration(iteration: int, max_iter: int) -> None:
                bar.update(1)
                outer_iteration(iteration, max_iter)

            def on_cost(iteration: int, cost: float) -> None:
                bar.set_postfix(cost=f"{cost:.6g}", refresh=False)
                outer_cost(iteration, cost)

            with progress(on_iteration, on_cost=on_cost):
                yield

    @contextlib.contextmanager
    def _unless_squares_overflow(self, ctx: backends.ComputeContext, X: Any, normalize: bool) -> Iterator[None]:
        """Where a fit on unnormalised ``X`` fails (diverges, a singular system), say the real cause
        when it is one: X's squares overflow the dtype (one read, on the error path only)."""
        try:
            yield
        except (FloatingPointError, ValueError) as exc:
            if normalize:
                raise
            what = f"{type(self).__name__}(normalize=False)"
            error = squares_overflow_if_any(ctx, X, what, "; or set normalize=True, which standardises X exactly")
            if error is None:
                raise
            raise error from exc

    @staticmethod
    def _divergence_hint(normalize: bool) -> str:
        """What else helps a diverging gradient descent: standardising the features, where it is off."""
        if normalize:
            return ""
        return " (normalize=True, which standardises the features, also helps)"

    # -- the one place X is validated: at fit, and against what fit saw afterwards ----------
    def _validate_fit_X(self, X: Any, p: SimpleNamespace, *, min_samples: int = 1) -> FitInput:
        """Validate ``X`` for ``fit``: where to compute (the validated ``p.backend``, ``p.device``),
        the floating array there (``p.dtype``), its column names.

        Nothing is stored yet (a fit that fails later leaves the estimator as it was); call
        :meth:`_remember_input` once the fit has succeeded.
        """
        ctx = backends.resolve(p.backend, p.device, X)
        names = feature_names(X)
        X = check_X(X, ctx, dtype=p.dtype, min_samples=min_samples)
        warn_if_small(ctx, X, type(self).__name__)
        return FitInput(ctx, X, names)

    def _remember_input(self, fitted: FitInput) -> None:
        """Record what later ``X`` must match: ``n_features_in_``, ``feature_names_in_``, the dtype, the device."""
        self.n_features_in_ = fitted.X.shape[1]
        if fitted.feature_names is not None:
            self.feature_names_in_ = fitted.feature_names
        elif "feature_names_in_" in self.__dict__:
            del self.feature_names_in_
        self._dtype_ = fitted.X.dtype
        self._ctx_ = fitted.ctx
        make_concrete(self, fitted.ctx)

    def _validate_X(self, X: Any) -> tuple[backends.ComputeContext, Any]:
        """``X`` for ``predict``-like calls: checked against the fit (features, their names, the
        dtype) and returned as a floating array on the fit's backend and device."""
        ctx = self._fitted_context()
        check_feature_names(getattr(self, "feature_names_in_", None), X, type(self).__name__)
        return ctx, check_X(X, ctx, dtype=self._dtype_, n_features=self.n_features_in_, estimator=type(self).__name__)

    def _check_fitted(self) -> None:
        if not hasattr(self, "_ctx_"):
            raise as_sklearn(NotFittedError)(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) before using it"
            )


def _fitting(fit: Any) -> Any:
    """A fitting method, run with its hyper-parameters validated once, at its start (``self._validated``:
    the values to use, for this call only), and all-or-nothing: when the call does not return -- an
    exception, a bad parameter, or a ``KeyboardInterrupt`` between any two of its steps (Dask's final
    compute of the fitted state included) -- the estimator is left as it was, never half-fitted. The
    fitted attributes are rebound, never changed in place, so the state before the call is a shallow
    copy. A fitting method called by another (``fit_predict`` calling ``fit``) runs inside its call."""

    @functools.wraps(fit)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        if "_validated" in self.__dict__:
            return fit(self, *args, **kwargs)
        before = dict(self.__dict__)
        try:
            self._validated = validate(self)
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        finally:
            self.__dict__.pop("_validated", None)

    return wrapped


def r2_score_of(ctx: backends.ComputeContext, prediction: Any, y: Any, sample_weight: Any) -> float:
    """A regressor's ``score``: R² of ``prediction`` (on ``ctx``) against ``y``, weighted by ``sample_weight``."""
    y = check_y(y, ctx, n_samples=prediction.shape[0], dtype=prediction.dtype)
    weights = check_sample_weight(sample_weight, ctx, n_samples=prediction.shape[0], dtype=prediction.dtype)
    return r2(ctx.xp, y, prediction, None if weights is None else weights.normalised)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # arrays and other objects without a scalar ==
        return a is b


class ClassifierMixin:
    """``predict``, ``predict_proba`` and ``score`` for classifiers with ``classes_``.

    A subclass implements ``_proba(Xc)``: class probabilities (n, K) on the device for a
    validated ``Xc``, and ``_log_proba(Xc)``, their logs from the logits. Labels live on the host (they may be strings); ``predict``
    returns them in the namespace and device of ``X`` when they are numbers, as a
    NumPy array otherwise.
    """

    _estimator_type = "classifier"

    if TYPE_CHECKING:  # what the mixin uses of the classifier: BaseEstimator's and its own
        classes_: np.ndarray
        _ctx_: backends.ComputeContext
        _dtype_: Any
        _validate_X: Callable[[Any], tuple[backends.ComputeContext, Any]]
        _proba: Callable[[Any], Any]
        _log_proba: Callable[[Any], Any]

    def _predicted_codes(self, X: Any) -> np.ndarray:
        ctx, Xc = self._validate_X(X)
        return ctx.to_numpy(ctx.xp.argmax(self._proba(Xc), axis=1))

    def predict(self, X: Any) -> Any:
        """The most probable class of each row of ``X``, as labels from ``classes_``.

        Numeric labels of array input are looked up on the compute device and come back
        in the namespace and on the device of ``X`` (no trip through the host when those
        are the same); other labels (strings) come back as NumPy.
        """
        ctx, Xc = self._validate_X(X)  # checks that the model is fitted first
        codes = ctx.xp.argmax(self._proba(Xc), axis=1)
        numeric = self.classes_.dtype.kind in "biu" or (
            self.classes_.dtype.kind == "f" and ctx.backend.supports_float64(ctx.device)
        )
        if numeric and backends.is_array(X):
            classes = ctx.asarray(self.classes_)
            return backends.mirror(ctx.xp.take(classes, codes), X)
        return self.classes_[ctx.to_numpy(codes)]

    def predict_proba(self, X: Any) -> Any:
        """P(class k | x) for each row, shape (n_samples, n_classes), columns in ``classes_`` order."""
        _, Xc = self._validate_X(X)
        return backends.mirror(self._proba(Xc), X)

    def predict_log_proba(self, X: Any) -> Any:
        """log P(class k | x) per row (n_samples, n_classes), from the logits: finite where predict_proba is 0."""
        _, Xc = self._validate_X(X)
        return backends.mirror(self._log_proba(Xc), X)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy: the share of rows of ``X`` (weighted by ``sample_weight``) whose predicted class is ``y``'s.
        A label not seen in ``fit`` is never predicted, so its rows count as wrong (scikit-learn's rule: a
        cross-validation fold may hold a class its training folds lack)."""
        codes = self._predicted_codes(X)
        truth, predicted = metrics.matched_labels(y, self.classes_[codes], ("y", "classes_"))
        right = truth == predicted
        weights = check_sample_weight(sample_weight, self._ctx_, n_samples=codes.shape[0], dtype=self._dtype_)
        return float(
            np.mean(right) if weights is None else np.average(right, weights=backends.to_numpy(weights.normalised))
        )
