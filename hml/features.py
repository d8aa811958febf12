"""Feature engineering for the linear models, as one fitted transform.

``FeatureTransformer`` learns its statistics on the training data and reuses them
at predict time. (The original project re-normalised test data with the test
set's own mean and deviation, so a model saw differently scaled inputs at
predict time than at training time.)

The transform, for an input row x with n features:

1. normalisation (``normalize=True``): x̃ = (x − μ) / σ, with μ, σ the training mean
   and standard deviation per feature; a constant feature (σ = 0) gets σ = 1;
2. polynomial features (``polynomial_degree=d``): every monomial x̃_i x̃_j ... of
   total degree 2..d, in the order of ``itertools.combinations_with_replacement``
   (graded lexicographic, the order of scikit-learn's ``PolynomialFeatures``);
3. sinusoid features (``sinusoid_degree=s``): sin(k·x̃_i) for k = 1..s, i = 1..n
   (k outer, i inner);
4. with ``normalize=True`` the generated features of steps 2-3 are standardised
   too, again with training statistics -- a degree-10 monomial of a standardised
   input spans many orders of magnitude, which gradient descent cannot cope with.

Output columns: ``[x̃, monomials, sinusoids]``; ``get_feature_names_out`` names them.
"""

from __future__ import annotations

import contextlib
from itertools import combinations_with_replacement
from math import comb
from typing import Any, ClassVar

import numpy as np

from hml import backends
from hml._array import SampleWeight, check_sample_weight
from hml._outputs import TransformerOutput
from hml.base import NORMALIZE, POLYNOMIAL_DEGREE, SINUSOID_DEGREE, BaseEstimator, FitInput
from hml.numerics import scaled_standardisation, standardisation, standardise

__all__ = ["FeatureTransformer"]

#: Refuse feature expansions wider than this; they would not fit any reasonable memory budget.
MAX_OUTPUT_FEATURES = 100_000


def polynomial_terms(X: Any, degree: int, xp: Any) -> list[Any]:
    """The monomials of total degree 2..``degree`` of the columns of ``X``, one block per degree.

    Degree k is built from degree k−1: column j times every degree-(k−1) monomial
    whose smallest variable index is ≥ j, which yields exactly the
    ``combinations_with_replacement`` order.
    """
    n = X.shape[1]
    previous, starts = X, list(range(n))
    blocks = []
    for _ in range(2, degree + 1):
        columns, new_starts, position = [], [], 0
        for j in range(n):
            new_starts.append(position)
            block = X[:, j : j + 1] * previous[:, starts[j] :]
            columns.append(block)
            position += block.shape[1]
        previous, starts = xp.concat(columns, axis=1), new_starts
        blocks.append(previous)
    return blocks


def sinusoid_terms(X: Any, degree: int, xp: Any) -> list[Any]:
    """sin(k·X) for k = 1..``degree``."""
    return [xp.sin(float(k) * X) for k in range(1, degree + 1)]


def _statistics(ctx: backends.ComputeContext, X: Any, weights: Any = None) -> tuple[Any, Any]:
    """The columns' μ and σ (weighted by the normalised sample weights, if any), made concrete (a no-op except on Dask), so the transform's graph
    holds constants, not a second copy of the graph that computed them -- which a distributed
    scheduler would see as one key with two meanings.

    The plain formula's sums overflow for finite but huge X (float64 |x| ≳ 1e154/√m): then,
    and only then, the exact power-of-two rescaled one (one read, before any training).
    """
    xp = ctx.xp
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow here is handled below: no warning
        mean, scale = ctx.concrete(*standardisation(X, xp, weights), why="feature statistics")
    if not bool(ctx.read(xp.all(xp.isfinite(mean)) & xp.all(xp.isfinite(scale)), "feature statistics")):
        with np.errstate(over="ignore", invalid="ignore"):
            mean, scale = ctx.concrete(*scaled_standardisation(X, xp, weights), why="feature statistics")
        if not bool(ctx.read(xp.all(xp.isfinite(mean)) & xp.all(xp.isfinite(scale)), "feature statistics")):
            raise OverflowError("some values are not finite")  # generated ones: X itself was checked finite
    return mean, scale


class FeatureTransformer(TransformerOutput, BaseEstimator):
    """Normalisation plus polynomial and sinusoid features, fitted on training data.

    Attributes
    ----------
    mean_, scale_ : arrays of shape (``n_features_in_``,)
        Training mean and deviation of the inputs (``normalize=True``).
    generated_mean_, generated_scale_ : arrays or None
        The same for the generated features.
    n_features_in_, n_features_out_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from hml.features import FeatureTransformer
    >>> X = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 3.0]])
    >>> ft = FeatureTransformer(polynomial_degree=2, normalize=False).fit(X)
    >>> ft.get_feature_names_out().tolist()
    ['x0', 'x1', 'x0^2', 'x0 x1', 'x1^2']
    """

    _estimator_type: ClassVar[str] = "transformer"

    polynomial_degree: int = POLYNOMIAL_DEGREE
    sinusoid_degree: int = SINUSOID_DEGREE
    normalize: bool = NORMALIZE

    # -- public API ---------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> FeatureTransformer:
        """Learn the normalisation statistics of ``X`` (``y`` is ignored), rows weighted by ``sample_weight``
        (as if each were repeated that many times)."""
        self.fit_transform(X, sample_weight=sample_weight)
        return self

    def transform(self, X: Any) -> Any:
        """The expanded, normalised features, in the namespace and on the device of ``X``."""
        ctx, Xc = self._validate_X(X)
        return self._output(self._transform(Xc, ctx.xp), X)

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """``fit(X, sample_weight=...).transform(X)`` in one pass over ``X`` (``y`` is ignored)."""
        fit_input = self._validate_fit_X(X, self._validated)
        weights = check_sample_weight(
            sample_weight, fit_input.ctx, n_samples=fit_input.X.shape[0], dtype=fit_input.X.dtype
        )
        out = self._fit_transform(fit_input.ctx, fit_input.X, weights)
        self._remember_input(fit_input)
        return self._output(out, X)

    def _names_out(self, names: list[str]) -> list[str]:
        """``['x0', 'x1', 'x0^2', 'x0 x1', 'x1^2', 'sin(1*x0)', ...]`` for ``names`` ``['x0', 'x1']``."""
        out = list(names)
        for degree in range(2, self.polynomial_degree + 1):
            for combo in combinations_with_replacement(range(len(names)), degree):
                out.append(
                    " ".join(
                        names[i] if combo.count(i) == 1 else f"{names[i]}^{combo.count(i)}" for i in sorted(set(combo))
                    )
                )
        for k in range(1, self.sinusoid_degree + 1):
            out += [f"sin({k}*{name})" for name in names]
        return out

    # -- on-device work, used by the estimators that own a transformer ------------
    def _n_outputs(self, n_features: int) -> int:
        # Σₖ₌₂ᵈ C(n+k−1, k) = C(n+d, d) − 1 − n: instant for a degree of 10⁹ (the sum took minutes to refuse it)
        d = self.polynomial_degree
        polynomial = comb(n_features + d, d) - 1 - n_features if d >= 2 else 0
        return n_features + polynomial + self.sinusoid_degree * n_features

    def _fit_transform(
        self, ctx: backends.ComputeContext, X: Any, weights: SampleWeight | None = None, centre: bool = True
    ) -> Any:
        """Fit on the validated device array ``X`` (rows weighted by ``weights``) and return its transform (the
        parameters come validated: from this transformer's own fitting method, or from the estimator that made it).
        ``centre=False`` (a model without intercept): divide by σ, subtract no mean."""
        s = None if weights is None else weights.normalised
        xp = ctx.xp
        n_features = X.shape[1]
        n_out = self._n_outputs(n_features)
        if n_out > MAX_OUTPUT_FEATURES:
            raise ValueError(
                f"polynomial_degree={self.polynomial_degree} and sinusoid_degree={self.sinusoid_degree} "
                f"on {n_features} features make {n_out} features (more than {MAX_OUTPUT_FEATURES}); "
                "lower the degrees"
            )
        mean = scale = generated_mean = generated_scale = None
        if self.normalize:
            mean, scale = _statistics(ctx, X, s)
            mean = mean if centre else xp.zeros_like(mean)
            X = standardise(X, mean, scale)
        with np.errstate(over="ignore") if self.normalize else contextlib.nullcontext():  # refused below
            generated = self._generate(X, xp)
        if generated is not None and self.normalize:
            (generated,) = backends.keep(generated)
            try:
                generated_mean, generated_scale = _statistics(ctx, generated, s)
            except OverflowError:  # NaN columns, silently, before
                raise ValueError(
                    f"polynomial_degree={self.polynomial_degree}: some monomials of the standardised features "
                    f"overflow {backends.dtype_name(X.dtype)} (30 to the 30th power is 2e44); lower polynomial_degree, or "
                    "compute in float64 (dtype='float64')"
                ) from None
            generated_mean = generated_mean if centre else xp.zeros_like(generated_mean)
            generated = standardise(generated, generated_mean, generated_scale)
        self.mean_, self.scale_ = mean, scale
        self.generated_mean_, self.generated_scale_ = generated_mean, generated_scale
        self.n_features_out_ = n_out
        # Inside another estimator's fit, X is already validated: what later X must match.
        self._remember_input(FitInput(ctx, X, None))
        return X if generated is None else xp.concat([X, generated], axis=1)

    def _transform(self, X: Any, xp: Any) -> Any:
        if self.normalize:
            X = standardise(X, self.mean_, self.scale_)
        generated = self._generate(X, xp)
        if generated is None:
            return X
        if self.normalize:
            generated = standardise(generated, self.generated_mean_, self.generated_scale_)
        return xp.concat([X, generated], axis=1)

    def _generate(self, X: Any, xp: Any) -> Any:
        blocks = polynomial_terms(X, self.polynomial_degree, xp) + sinusoid_terms(X, self.sinusoid_degree, xp)
        return xp.concat(blocks, axis=1) if blocks else None
