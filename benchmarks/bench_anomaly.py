"""Gaussian anomaly detection: density by backend and size; the threshold search beside scikit-learn.

Floor (issue 5): ``select_threshold`` on 1,000,000 scores ≤ 1.0× scikit-learn's
``precision_recall_curve`` on the same data, same run (``ThresholdVsScikitLearn``).
"""

from __future__ import annotations

import numpy as np

import hml

from .common import LABELS, context, interleaved_ratio, peer, sizes


class ThresholdVsScikitLearn:
    """Every distinct threshold's precision/recall/F1 (hml) vs. ``precision_recall_curve`` on −p."""

    params = (sizes([100_000, 1_000_000], [100_000]),)
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        rng = np.random.default_rng(0)
        self.y = (rng.random(n) < 0.01).astype(np.int64)
        self.p = np.where(self.y == 1, rng.random(n) * 0.3, rng.random(n))
        self.curve = peer("sklearn.metrics", "scikit-learn").precision_recall_curve
        self.ctx = context("numpy")

    def _hml(self):
        hml.GaussianAnomalyDetection.select_threshold(self.y, self.p)

    def _sklearn(self):
        self.curve(self.y, -self.p)  # "p < ε" ranks points by −p

    def time_hml(self, n):
        self._hml()

    def time_sklearn(self, n):
        self._sklearn()

    def track_hml_over_sklearn(self, n):
        return interleaved_ratio(self.ctx, self._hml, self._sklearn)

    track_hml_over_sklearn.unit = "ratio"


class GaussianDensity:
    """fit + score_samples, diagonal and full covariance, by backend and size."""

    params = (LABELS, sizes(["100000x16", "1000000x16"], ["100000x16"]), ["diag", "full"])
    param_names = ["backend", "shape", "covariance"]
    timeout = 300

    def setup(self, label, shape, covariance):
        n, d = map(int, shape.split("x"))
        self.ctx = ctx = context(label)
        rng = np.random.default_rng(0)
        self.X = ctx.backend.materialize(ctx.asarray(rng.normal(size=(n, d))))[0]

    def time_fit_score_samples(self, label, shape, covariance):
        model = hml.GaussianAnomalyDetection(covariance=covariance).fit(self.X)
        self.ctx.backend.materialize(model.score_samples(self.X))
        self.ctx.backend.synchronize(self.ctx.device)
