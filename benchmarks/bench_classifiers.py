"""LogisticRegression and MultilayerPerceptron, by backend and size, beside their peers in the same run.

Floors (issue 4):
- one full-batch epoch of the MLP [784, 25, 10] (sigmoid) on 60,000 × 784: hml on NumPy
  ≤ 1.0× the same network hand-written in PyTorch on the CPU, float64 and float32
  (``MLPEpochVsPyTorch.track_hml_over_torch``);
- logistic regression on MNIST: ≤ 0.5× scikit-learn's ``LogisticRegression()`` fit time
  (``LogisticRegressionVsScikitLearn`` on a 20,000-image subset here; the full data set
  and the accuracy floors are in ``benchmarks/mnist_quality.py``).
"""

from __future__ import annotations

import statistics
import time

import array_api_extra as xpx
import numpy as np

import hml
from hml import kernels
from hml.neural_network import mlp_objective, n_parameters
from hml.optimize import Evaluation, GradientDescent, minimize

from .common import LABELS, SMOKE, SkipNotImplemented, context, interleaved_ratio, peer, quietly, sizes

LAYERS = [784, 25, 10]


def digits_like(m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped data: pixels in [0, 1] (70% background zeros), 10 classes that are learnable."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 10, m)
    prototypes = rng.random((10, 784)) * (rng.random((10, 784)) < 0.3)
    X = np.clip(prototypes[codes] + 0.3 * rng.random((m, 784)) * (rng.random((m, 784)) < 0.3), 0.0, 1.0)
    return X, codes


class MLPEpoch:
    """One full-batch gradient-descent epoch of [784, 25, 10] through the real optimiser loop."""

    params = (LABELS, sizes(["10000x784", "60000x784"], ["10000x784"]), ["float64", "float32"])
    param_names = ["backend", "shape", "dtype"]
    timeout = 600

    def setup(self, label, shape, dtype):
        m = int(shape.split("x")[0])
        self.ctx = ctx = context(label)
        xp = ctx.xp
        X, codes = digits_like(m)
        X = ctx.backend.materialize(ctx.asarray(X, getattr(xp, dtype)))[0]
        Y = ctx.backend.materialize(xpx.one_hot(ctx.asarray(codes), 10, dtype=X.dtype, xp=xp))[0]
        self.objective = mlp_objective(X, Y, LAYERS, "sigmoid", "sigmoid", 1.0, xp)
        rng = np.random.default_rng(0)
        self.theta = kernels.random_uniform(ctx, rng, (n_parameters(LAYERS),), low=-0.12, high=0.12, dtype=X.dtype)
        # J and ∇J at θ₀ once, here: a timed call is then one epoch, the work of every later one.
        self.start = Evaluation(self.theta, *ctx.backend.materialize(*self.objective(self.theta)))

    def time_epoch(self, *args):
        minimize(
            self.objective,
            self.theta,
            ctx=self.ctx,
            rule=GradientDescent(1.0),
            max_iter=1,
            tol=None,
            start=self.start,
        )
        self.ctx.backend.synchronize(self.ctx.device)


class MLPEpochVsPyTorch:
    """The same epoch beside the network hand-written in PyTorch (autograd) on the CPU, same data."""

    params = (sizes(["60000x784"], ["10000x784"]), ["float64", "float32"])
    param_names = ["shape", "dtype"]
    timeout = 600

    def setup(self, shape, dtype):
        torch = peer("torch", "PyTorch")
        self.hml = MLPEpoch()
        self.hml.setup("numpy", shape, dtype)
        m = int(shape.split("x")[0])
        X, codes = digits_like(m)
        self.torch = torch
        self.X = torch.from_numpy(X.astype(dtype))
        self.Y = torch.nn.functional.one_hot(torch.from_numpy(codes), 10).to(self.X.dtype)
        rng = np.random.default_rng(0)
        self.params = [
            torch.tensor(rng.uniform(-0.12, 0.12, s).astype(dtype), requires_grad=True)
            for s in [(784, 25), (25,), (25, 10), (10,)]
        ]

    def _torch_epoch(self):
        torch = self.torch
        W1, b1, W2, b2 = self.params
        m = self.X.shape[0]
        A = torch.sigmoid(self.X @ W1 + b1)
        logits = A @ W2 + b2
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, self.Y, reduction="sum") / m
        loss = loss + 0.5 / m * ((W1 * W1).sum() + (W2 * W2).sum())
        for p in self.params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= 1.0 * p.grad
        float(loss.detach())  # the same one host read per epoch as hml's cost check

    def time_hml(self, *args):
        self.hml.time_epoch()

    def time_torch(self, *args):
        self._torch_epoch()

    def track_hml_over_torch(self, *args):
        return interleaved_ratio(self.hml.ctx, self.hml.time_epoch, self._torch_epoch)

    track_hml_over_torch.unit = "ratio"


class LogisticRegressionFit:
    """Whole fits: 10 classes, multinomial, 20 L-BFGS iterations, validation and normalisation included."""

    params = (LABELS, sizes(["10000x784", "60000x784"], ["10000x784"]))
    param_names = ["backend", "shape"]
    timeout = 600

    def setup(self, label, shape):
        self.ctx = ctx = context(label)
        X, codes = digits_like(int(shape.split("x")[0]))
        self.X, self.y = ctx.asarray(X), ctx.asarray(codes)

    def time_fit_20_iterations(self, *args):
        quietly(lambda: hml.LogisticRegression(max_iter=20, tol=0.0).fit(self.X, self.y))
        self.ctx.backend.synchronize(self.ctx.device)


class LogisticRegressionVsScikitLearn:
    """Default fits side by side: hml ``LogisticRegression()`` vs scikit-learn's, same NumPy data.

    MNIST itself when ``HML_DATA_MIRROR`` (or a cache) provides it, else MNIST-shaped data;
    the first 20,000 training images keep the run short.
    """

    params = (sizes(["20000x784"], ["5000x784"]),)
    param_names = ["shape"]
    timeout = 900

    def setup(self, shape):
        m = int(shape.split("x")[0])
        try:
            mnist = hml.datasets.load_mnist("train")
            self.X, self.y = mnist.data[:m] / 255.0, mnist.target[:m]
        except hml.DatasetError:
            self.X, self.y = digits_like(m)
        self.peer = peer("sklearn.linear_model", "scikit-learn").LogisticRegression()
        self.ctx = context("numpy")

    def _fit_hml(self):
        quietly(lambda: hml.LogisticRegression().fit(self.X, self.y))

    def _fit_sklearn(self):
        quietly(lambda: self.peer.fit(self.X, self.y))

    def track_hml_over_sklearn(self, shape):
        return interleaved_ratio(self.ctx, self._fit_hml, self._fit_sklearn, rounds=2)

    track_hml_over_sklearn.unit = "ratio"


def mini_batch_network(module, epochs=1):
    """The network of ``MLPMiniBatchEpochVsPeers`` from ``module`` (hml, or another version of it):
    [784, 256, 10] relu/softmax, batch-128 SGD with momentum 0.9, ``epochs`` epochs, no tolerance, no
    penalty (the peers' ``alpha=0``; the class's default λ is 1)."""
    return module.MultilayerPerceptron(
        layers=[784, 256, 10],
        activation="relu",
        l2=0.0,
        output="softmax",
        init="glorot",
        normalize=False,
        solver="gd",
        learning_rate=0.01,
        momentum=0.9,
        batch_size=128,
        max_iter=epochs,
        tol=None,
        random_state=0,
    )


class MLPMiniBatchEpochVsPeers:
    """One epoch of batch-128 SGD with momentum 0.9 on [784, 256, 10] (relu, softmax), no penalty, beside
    scikit-learn's ``MLPClassifier(solver="sgd")`` and the same network hand-written in PyTorch with
    ``torch.optim.SGD`` (issue 24: ≤ 1.0× both, float64 and float32). Each side is a fit of one epoch on
    the same data (shuffled, its own initialisation), as a user would run it (``track_hml_over_*``: hml's
    includes J(θ₀) on all rows, a forward pass); ``track_hml_epoch_over_*``: hml's epoch alone."""

    params = (sizes(["60000x784"], ["2000x784"]), ["float64", "float32"])
    param_names = ["shape", "dtype"]
    timeout = 900
    rounds = 5

    def setup(self, shape, dtype):
        m = int(shape.split("x")[0])
        X, self.codes = digits_like(m)
        self.X = X.astype(dtype)
        self.ctx = context("numpy")
        self.neural_network = peer("sklearn.neural_network", "scikit-learn")
        try:
            self.torch = peer("torch", "PyTorch")
        except NotImplementedError:
            self.torch = None
        else:
            self.torch_X = self.torch.from_numpy(self.X)
            self.torch_y = self.torch.from_numpy(self.codes.astype(np.int64))

    def _hml(self, epochs=1):
        model = mini_batch_network(hml, epochs)
        quietly(lambda: model.fit(self.X, self.codes))

    def _sklearn(self):
        model = self.neural_network.MLPClassifier(
            hidden_layer_sizes=(256,),
            activation="relu",
            solver="sgd",
            alpha=0.0,
            batch_size=128,
            learning_rate_init=0.01,
            momentum=0.9,
            nesterovs_momentum=False,
            max_iter=1,
            tol=0.0,
            n_iter_no_change=10**9,
            random_state=0,
        )
        quietly(lambda: model.fit(self.X, self.codes))

    def _torch(self):
        torch = self.torch
        generator = torch.Generator().manual_seed(0)
        dtype = self.torch_X.dtype
        W1 = (torch.rand(784, 256, generator=generator, dtype=dtype) - 0.5) * (2 * (6 / (784 + 256)) ** 0.5)
        W2 = (torch.rand(256, 10, generator=generator, dtype=dtype) - 0.5) * (2 * (6 / (256 + 10)) ** 0.5)
        parameters = [W1, torch.zeros(256, dtype=dtype), W2, torch.zeros(10, dtype=dtype)]
        for parameter in parameters:
            parameter.requires_grad_(True)
        W1, b1, W2, b2 = parameters
        optimiser = torch.optim.SGD(parameters, lr=0.01, momentum=0.9)
        order = torch.randperm(self.torch_X.shape[0], generator=generator)
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            logits = torch.relu(self.torch_X[rows] @ W1 + b1) @ W2 + b2
            loss = torch.nn.functional.cross_entropy(logits, self.torch_y[rows])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        float(loss.detach())  # one host read at the end, as hml's epoch

    def time_hml(self, *args):
        self._hml()

    def time_sklearn(self, *args):
        self._sklearn()

    def time_torch(self, *args):
        if self.torch is None:
            raise SkipNotImplemented("PyTorch is not installed")
        self._torch()

    def track_hml_over_sklearn(self, *args):
        return interleaved_ratio(self.ctx, self._hml, self._sklearn, rounds=self.rounds)

    def track_hml_over_torch(self, *args):
        if self.torch is None:
            raise SkipNotImplemented("PyTorch is not installed")
        return interleaved_ratio(self.ctx, self._hml, self._torch, rounds=self.rounds)

    def _epoch_ratio(self, peer):
        """hml's epoch alone -- a three-epoch fit less a one-epoch fit, halved: the start's J(θ₀) on all
        rows cancels -- over the peer's one-epoch fit, the three timed alternately; medians."""
        times = {"one": [], "three": [], "peer": []}
        fits = {"one": self._hml, "three": lambda: self._hml(epochs=3), "peer": peer}
        for fit in fits.values():  # warm-up
            fit()
        for _ in range(1 if SMOKE else self.rounds):  # the smoke run proves it works, no more
            for name, fit in fits.items():
                start = time.perf_counter()
                fit()
                times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(values) for name, values in times.items()}
        return (median["three"] - median["one"]) / 2 / median["peer"]

    def track_hml_epoch_over_sklearn(self, *args):
        return self._epoch_ratio(self._sklearn)

    def track_hml_epoch_over_torch(self, *args):
        if self.torch is None:
            raise SkipNotImplemented("PyTorch is not installed")
        return self._epoch_ratio(self._torch)

    track_hml_over_sklearn.unit = "ratio"
    track_hml_over_torch.unit = "ratio"
    track_hml_epoch_over_sklearn.unit = "ratio"
    track_hml_epoch_over_torch.unit = "ratio"
