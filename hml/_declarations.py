"""The hyper-parameters several estimators share, each declared here once (:func:`hml._params.param`).

An estimator takes one by naming it in its class body, ``normalize: bool = NORMALIZE``; :mod:`hml.base`
re-exports them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, cast

from hml._params import Boolean, Declared, Either, Integer, OneOf, Param, RandomState, Real, WeightsByLabel, param

__all__ = [
    "redeclared",
    "FIT_INTERCEPT",
    "CLASS_WEIGHT",
    "NORMALIZE",
    "POLYNOMIAL_DEGREE",
    "RANDOM_STATE",
    "SINUSOID_DEGREE",
    "TOL",
    "VERBOSE",
]


NORMALIZE: bool = param(
    default=True,
    rule=Boolean(),
    doc="Standardise the features with the training statistics (and the generated features too).",
)
POLYNOMIAL_DEGREE: int = param(
    default=0, rule=Integer(0), doc="Add every monomial of the features up to this total degree (0 or 1: none)."
)
SINUSOID_DEGREE: int = param(default=0, rule=Integer(0), doc="Add sin(k·x) of every feature for k up to this degree.")
VERBOSE: bool = param(
    default=False,
    rule=Boolean(),
    doc="Show a progress bar (tqdm) over the iterations, with the cost as the fit reads it for its "
    "convergence test anyway -- no extra GPU synchronisation.",
)
TOL: float | None = param(
    default=1e-4,
    rule=Real(allow_none=True),
    doc="Stop once the largest component of ∇J has fallen to ``tol`` times its size at the start -- the rule "
    "of every hml optimiser (:mod:`hml.optimize`) -- with a :class:`hml.ConvergenceWarning` when ``max_iter`` "
    "ends the fit first. ``None`` runs exactly ``max_iter`` iterations.",
)
CLASS_WEIGHT: Any = param(
    default=None,
    rule=Either((OneOf((None, "balanced")), WeightsByLabel())),
    doc="Weights of the classes, multiplying ``sample_weight``: {label: weight} (1 for a class not named), or "
    "``'balanced'``, n / (K nₖ) for class k (scikit-learn's rule: every class then weighs the same).",
)
FIT_INTERCEPT: bool = param(
    default=True,
    rule=Boolean(),
    doc="Fit the intercept b. False: the model passes through the origin (b = 0); with ``normalize=True`` the "
    "features are then scaled by their σ but not centred, since centring is an intercept.",
)
RANDOM_STATE: Any = param(
    default=None,
    rule=RandomState(),
    doc="Seeds the random draws (on the host: the same seed gives the same numbers on every backend).",
)

T = TypeVar("T")


def redeclared(owner: type[Declared], name: str, default: T, doc: str | None = None) -> T:
    """``owner``'s declaration of ``name`` (its rule) with another default (and doc, if given): for a
    subclass whose users expect another default -- the rule stays written once."""
    declared: Param = owner.__params__[name]
    return cast(T, dataclasses.replace(declared, default=default, doc=declared.doc if doc is None else doc, name=""))
