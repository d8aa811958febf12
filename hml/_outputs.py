"""What hml's transformers (``FeatureTransformer``, both k-means estimators) share with scikit-learn's: named
output columns (``get_feature_names_out``) and the output container (``set_output``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from hml import backends

__all__ = ["TransformerOutput"]


class TransformerOutput:
    """``set_output`` and the input-name checks of ``get_feature_names_out``; a transformer names its own
    columns (:meth:`_names_out`) and passes what it returns through :meth:`_output`."""

    if TYPE_CHECKING:  # BaseEstimator's
        n_features_in_: int

        def _check_fitted(self) -> None: ...

    def _names_out(self, names: list[str]) -> list[str]:
        """The output columns' names, from the input columns' ``names``."""
        raise NotImplementedError

    def get_feature_names_out(self, input_features: Iterable[str] | None = None) -> np.ndarray:
        """Names of the output columns, from ``input_features``, else the columns of the DataFrame it was fitted on
        (as scikit-learn's), else x0, x1, ..."""
        self._check_fitted()
        fitted_on = getattr(self, "feature_names_in_", None)
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)] if fitted_on is None else fitted_on
        names = list(input_features)
        if len(names) != self.n_features_in_:
            raise ValueError(
                f"input_features has {len(names)} names; the {type(self).__name__} was fitted on "
                f"{self.n_features_in_} features"
            )
        if fitted_on is not None and names != list(fitted_on):  # as scikit-learn's: mislabelled columns
            raise ValueError(f"input_features {names} is not equal to feature_names_in_ {list(fitted_on)}")
        return np.asarray(self._names_out(names), dtype=object)

    def set_output(self, *, transform: str | None = None) -> Any:
        """scikit-learn's output setting: ``"pandas"``, a DataFrame with the columns of :meth:`get_feature_names_out`
        (and ``X``'s index); ``"default"``, an array in ``X``'s namespace; None, unchanged (without a setting, that
        of ``sklearn.set_config(transform_output=...)`` where scikit-learn is in use)."""
        if transform not in (None, "default", "pandas"):
            raise ValueError(f"set_output(transform={transform!r}): {type(self).__name__} gives 'default' or 'pandas'")
        if transform is not None:
            self._sklearn_output_config = {"transform": transform}  # scikit-learn's name: its clone copies it
        return self

    def _output(self, out: Any, X: Any) -> Any:
        """``out``, computed from ``X``, in the container :meth:`set_output` chose."""
        chosen = getattr(self, "_sklearn_output_config", {}).get("transform")
        sklearn = sys.modules.get("sklearn")
        if chosen is None and sklearn is not None:
            chosen = sklearn.get_config().get("transform_output")
        if chosen != "pandas":
            return backends.mirror(out, X)
        import pandas  # type: ignore[import-untyped]

        names = self.get_feature_names_out()
        return pandas.DataFrame(backends.to_numpy(out), columns=names, index=getattr(X, "index", None))
