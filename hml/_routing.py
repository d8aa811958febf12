"""scikit-learn's metadata routing for hml's estimators, without importing scikit-learn until it asks.

With ``sklearn.set_config(enable_metadata_routing=True)`` a meta-estimator (``Pipeline``,
``GridSearchCV``, ``cross_validate``) passes metadata such as ``sample_weight`` only to the methods that
request it, and asks each estimator what it consumes through ``get_metadata_routing()``. Every hml
estimator's ``fit``, ``partial_fit`` and ``score`` take ``sample_weight``: unrequested by default
(scikit-learn's rule: an error if it is passed, nothing if it is not), requested with
``set_fit_request(sample_weight=True)`` and the like.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MetadataRequests"]

#: scikit-learn's "leave this request as it is" (``sklearn.utils.metadata_routing.UNCHANGED``).
UNCHANGED = "$UNCHANGED$"
_METHODS = ("fit", "partial_fit", "score")


class _Requests(dict[str, Any]):
    """{method: the request for its ``sample_weight``}; scikit-learn's ``clone`` copies it to the clone."""

    def __sklearn_clone__(self) -> _Requests:
        return _Requests(self)


class _RequestSetter:
    """``set_{method}_request(*, sample_weight=...)``, set on the classes that have ``method``."""

    def __init__(self, method: str):
        self.method = method

    def __get__(self, instance: Any, owner: type) -> Any:
        def set_request(*, sample_weight: Any = UNCHANGED) -> Any:
            """Request ``sample_weight`` for this method: True, False, None (the default: an error if a
            meta-estimator is given one) or an alias; returns the estimator."""
            if sample_weight != UNCHANGED:
                requests = _Requests(getattr(instance, "_metadata_request", {}))
                requests[self.method] = sample_weight
                instance._metadata_request = requests
            return instance

        set_request.__name__ = f"set_{self.method}_request"
        return set_request


class MetadataRequests:
    """``get_metadata_routing`` and ``set_fit_request`` / ``set_partial_fit_request`` / ``set_score_request``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method in _METHODS:  # only where the method is, as on scikit-learn's estimators
            if hasattr(cls, method):
                setattr(cls, f"set_{method}_request", _RequestSetter(method))

    def get_metadata_routing(self) -> Any:
        """What this estimator consumes: ``sample_weight`` in each of its fit, partial_fit and score, as
        requested (a ``sklearn.utils.metadata_routing.MetadataRequest``; needs scikit-learn)."""
        from sklearn.utils.metadata_routing import MetadataRequest

        request = MetadataRequest(owner=self)
        chosen = getattr(self, "_metadata_request", {})
        for method in _METHODS:
            if hasattr(self, method):
                getattr(request, method).add_request(param="sample_weight", alias=chosen.get(method))
        return request
