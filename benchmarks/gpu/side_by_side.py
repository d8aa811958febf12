"""GPU benchmarks, side by side in one process: hml against hand-written PyTorch, NumPy and the roofline.

For each workload of issue 10, the time per iteration (or epoch) of

* ``hml-cupy``       hml on the CuPy backend;
* ``hml-cupy-fused``  k-means only: the same, with CuPy's fused distance + argmin kernel on;
* ``hml-torch``      hml on the torch backend, ``device="cuda"``;
* ``torch-eager``    the same algorithm written by hand in PyTorch on the same GPU;
* ``torch-compile``  that code through ``torch.compile`` (a second figure);
* ``hml-numpy``      hml on NumPy, on every CPU core of the machine;
* ``roofline``       the floor from the FP32 GEMM rate or the memory bandwidth, both
                     measured once here (a large matrix product, a large device copy).

Every side computes in true FP32: TF32 is off in PyTorch (``allow_tf32 = False``,
``set_float32_matmul_precision("highest")``) and in CuPy (``CUPY_TF32=0``). GPU times
come from CUDA events after a warm-up, medians of ``--repeats`` runs. hml's time per
iteration is the difference of two fits that differ only in ``max_iter`` (fit set-up,
input checks and the final pass cancel out); hand-written loops are timed directly.

Run on the device machine by ``benchmarks/gpu/run.sh``; here, a dry run at a small
scale checks the script itself on the CPU::

    python benchmarks/gpu/side_by_side.py --device cpu --scale 0.001 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("CUPY_TF32", "0")  # before CuPy is imported: true FP32 GEMMs

import numpy as np

import hml
from hml import backends


# -- timing -------------------------------------------------------------------------------------
class Clock:
    """Seconds of device work: CUDA events on a GPU (after a synchronisation), perf_counter on the CPU."""

    def __init__(self, torch: Any, device: str):
        self.torch, self.cuda = torch, device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            cupy = sys.modules.get("cupy")
            if cupy is not None:
                cupy.cuda.Device().synchronize()

    def time(self, function: Callable[[], Any]) -> float:
        self.sync()
        if not self.cuda:
            start = time.perf_counter()
            function()
            return time.perf_counter() - start
        start, stop = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
        start.record()
        function()
        stop.record()
        self.sync()
        return start.elapsed_time(stop) / 1e3

    def median(self, function: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
        for _ in range(warmup):
            function()
        return statistics.median(self.time(function) for _ in range(repeats))


@dataclass
class Row:
    workload: str
    variant: str
    seconds: float | None  # per iteration (or epoch); None: not run (see note)
    note: str = ""
    extra: dict = field(default_factory=dict)


def quietly(function: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function()


def hml_per_iteration(
    clock: Clock, fit: Callable[[int], Any], short: int, long: int, repeats: int, warmup: int = 1
) -> tuple[float, str]:
    """(T(long) − T(short)) / (iterations(long) − iterations(short)) for ``fit(max_iter)`` returning a model.

    The short fit runs once untimed whatever ``warmup`` says: the process's first fit loads (or compiles) the
    compiled loops, up to seconds that would count in T(short) only -- a negative time per iteration."""
    iterations = {}

    def run(max_iter: int) -> Callable[[], None]:
        def go() -> None:
            iterations[max_iter] = quietly(lambda: fit(max_iter)).n_iter_

        return go

    t_short = clock.median(run(short), repeats, max(warmup, 1))
    t_long = clock.median(run(long), repeats, warmup)
    done = iterations[long] - iterations[short]
    if done <= 0:
        raise RuntimeError(f"the longer fit made no more iterations ({iterations})")
    return (t_long - t_short) / done, f"(T({iterations[long]} it) − T({iterations[short]} it)) / {done}"


# -- the roofline ---------------------------------------------------------------------------------
def measure_roofline(torch: Any, device: str, clock: Clock, scale: float) -> dict:
    """FP32 GEMM rate (FLOP/s) and memory bandwidth (bytes read + written per second) on ``device``."""
    n = max(256, int(8192 * min(1.0, scale ** (1 / 3) * 4)))
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    gemm = clock.median(lambda: torch.mm(a, b), repeats=10, warmup=3)
    size = max(1 << 20, int((1 << 28) * min(1.0, scale * 100)))  # 1 GiB of float32 at full scale
    src = torch.randn(size, device=device)
    dst = torch.empty_like(src)
    copy = clock.median(lambda: dst.copy_(src), repeats=10, warmup=3)
    return {
        "gemm_flops": 2.0 * n**3 / gemm,
        "gemm_n": n,
        "bandwidth": 2.0 * src.numel() * 4 / copy,
        "copy_bytes": src.numel() * 4,
    }


# -- workloads -----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace):
        import torch

        self.torch, self.args = torch, args
        self.device = args.device
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        self.clock = Clock(torch, self.device)
        self.rows: list[Row] = []
        self.started = time.perf_counter()
        self.gpu_labels = self._gpu_labels()

    # where hml runs ------------------------------------------------------------------
    def _gpu_labels(self) -> dict[str, tuple[str, str]]:
        """label -> (backend, device) of the hml sides usable here."""
        found = {}
        sides = {"hml-cupy": ("cupy", None), "hml-cupy-fused": ("cupy", None), "hml-torch": ("torch", self.device)}
        for label, (name, device) in sides.items():
            if not self.wanted(label):
                continue
            try:
                backends.resolve(name, device)
            except hml.BackendUnavailableError as exc:
                self.rows.append(Row("(all)", label, None, f"unavailable: {exc}"))
                continue
            found[label] = (name, device)
        return found

    def plain_labels(self) -> list[str]:
        """The hml sides of workloads without a fused variant."""
        return [label for label in self.gpu_labels if label != "hml-cupy-fused"]

    def to(self, label: str, array: np.ndarray) -> Any:
        name, device = self.gpu_labels[label]
        return backends.resolve(name, device).asarray(array)

    def release(self) -> None:
        """Hand cached device memory back between sides: CuPy's and PyTorch's pools share one GPU."""
        cupy = sys.modules.get("cupy")
        if cupy is not None:
            cupy.get_default_memory_pool().free_all_blocks()
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()

    def over_budget(self) -> bool:
        return time.perf_counter() - self.started > self.args.budget

    def wanted(self, variant: str) -> bool:
        return variant in self.args.variants

    def roofline_row(self, row: Callable[[], Row]) -> None:
        if self.roof is not None:
            self.rows.append(row())

    def record(self, workload: str, variant: str, function: Callable[[], tuple[float, str]]) -> None:
        match = getattr(self.args, "match", None)  # asv: one row of a workload's table
        if not self.wanted(variant) or (match is not None and match not in workload):
            return
        if self.over_budget():
            self.rows.append(Row(workload, variant, None, f"skipped: over the --budget of {self.args.budget} s"))
            return
        try:
            seconds, note = function()
        except Exception as exc:  # one failing side must not lose the others' numbers
            self.rows.append(Row(workload, variant, None, f"failed: {type(exc).__name__}: {exc}"[:300]))
            print(f"  {workload} / {variant}: FAILED {exc}", flush=True)
            return
        finally:
            self.release()
        self.rows.append(Row(workload, variant, seconds, note))
        print(f"  {workload} / {variant}: {seconds * 1e3:.3f} ms  {note}", flush=True)

    def torch_loop(self, step: Callable[[], Any], iterations: int) -> tuple[float, str]:
        seconds = self.clock.median(lambda: [step() for _ in range(iterations)], self.args.repeats, warmup=1)
        return seconds / iterations, f"median of {self.args.repeats} × {iterations} iterations"

    def compiled(self, function: Callable) -> Callable:
        if not self.device.startswith("cuda") and not self.args.compile_cpu:
            raise RuntimeError("torch.compile is timed on the GPU only (pass --compile-cpu to try it here)")
        return self.torch.compile(function)

    # k-means -----------------------------------------------------------------------------
    def kmeans(self) -> None:
        torch, args = self.torch, self.args
        n, d, k = max(1000, int(10_000_000 * args.scale)), 32, 256
        name = f"k-means Lloyd iteration, N={n:,} D={d} K={k} float32"
        print(name, flush=True)
        rng = np.random.default_rng(0)
        X = rng.random((n, d), dtype=np.float32)
        start = X[rng.choice(n, k, replace=False)]
        flops = 2.0 * n * d * k
        self.roofline_row(
            lambda: Row(
                name, "roofline", flops / self.roof["gemm_flops"], "2·N·D·K flops at the GEMM rate", {"flops": flops}
            )
        )
        from hml.kernels import _cuda

        for label in self.gpu_labels:
            Xd, Cd = self.to(label, X), self.to(label, start)
            # hml-cupy-fused: the same fit with CuPy's fused distance + argmin kernel switched on.
            default, _cuda.FUSED_KMEANS = _cuda.FUSED_KMEANS, label == "hml-cupy-fused"
            try:
                self.record(
                    name,
                    label,
                    lambda: hml_per_iteration(
                        self.clock,
                        lambda it: hml.KMeans(k, init=Cd, n_init=1, max_iter=it, tol=0.0).fit(Xd),
                        1,
                        6,
                        args.repeats,
                    ),
                )
            finally:
                _cuda.FUSED_KMEANS = default
            Xd = Cd = None  # free the device copies before the next side
        Xt, Ct = torch.asarray(X, device=self.device), torch.asarray(start, device=self.device)

        def lloyd(X, C):
            # ‖c‖² − 2 x·c (argmin needs no ‖x‖²), nearest centroid, segment sums, new centroids.
            scores = torch.addmm((C * C).sum(1), X, C.T, alpha=-2.0)
            labels = scores.argmin(1)
            sums = torch.zeros_like(C).index_add_(0, labels, X)
            counts = torch.bincount(labels, minlength=C.shape[0]).to(X.dtype)
            new = sums / counts.clamp_min(1.0)[:, None]
            return new, ((new - C) ** 2).sum()

        def eager_step(function=lloyd):
            state = [Ct]

            def step():
                state[0], shift = function(Xt, state[0])
                float(shift)  # the convergence test reads the shift every iteration, as hml does

            return step

        self.record(name, "torch-eager", lambda: self.torch_loop(eager_step(), 5))
        self.record(name, "torch-compile", lambda: self.torch_loop(eager_step(self.compiled(lloyd)), 5))
        Xt = Ct = None  # free the device copies before the next side
        self.record(
            name,
            "hml-numpy",
            lambda: hml_per_iteration(
                self.clock,
                lambda it: hml.KMeans(k, init=start, n_init=1, max_iter=it, tol=0.0).fit(X),
                1,
                4,
                1,
                warmup=0,
            ),
        )

    # data for the MNIST-shaped workloads ----------------------------------------------------
    def mnist(self, rows: int) -> tuple[np.ndarray, np.ndarray, str]:
        """MNIST's training images (pixels / 255, float32) and labels, replicated to ``rows`` rows."""
        try:
            digits = hml.datasets.load_mnist("train")
            X, y, source = digits.data.astype(np.float32) / 255.0, digits.target, "MNIST train, replicated"
        except Exception as exc:  # no data here: same shapes, random pixels
            rng = np.random.default_rng(0)
            X = rng.random((60_000, 784), dtype=np.float32)
            y = rng.integers(0, 10, 60_000)
            source = f"random pixels (MNIST unavailable: {type(exc).__name__})"
        reps = math.ceil(rows / X.shape[0])
        return np.tile(X, (reps, 1))[:rows], np.tile(y, reps)[:rows], source

    # MLP ---------------------------------------------------------------------------------
    def mlp(self) -> None:
        torch, args = self.torch, self.args
        n = max(4096, int(1_000_000 * args.scale))
        X, y, source = self.mnist(n)
        layers = [784, 1024, 10]
        flops = 6.0 * n * (784 * 1024 + 1024 * 10)  # forward 2·, backward 4· the multiply-adds
        for batch in (None, 4096):
            name = f"MLP {layers} epoch, N={n:,} float32, " + ("full batch" if batch is None else f"batches of {batch}")
            print(name, flush=True)
            self.roofline_row(
                lambda: Row(
                    name,
                    "roofline",
                    flops / self.roof["gemm_flops"],
                    "6·N·(weights) flops at the GEMM rate",
                    {"flops": flops, "data": source},
                )
            )

            def model(it, batch=batch):
                return hml.MultilayerPerceptron(
                    layers=layers,
                    max_iter=it,
                    learning_rate=0.5 if batch is None else 0.05,
                    batch_size=batch,
                    momentum=0.9 if batch else 0.0,
                    tol=None,
                    random_state=0,
                )

            for label in self.plain_labels():
                Xd, yd = self.to(label, X), self.to(label, y)
                self.record(
                    name,
                    label,
                    lambda: hml_per_iteration(
                        self.clock, lambda it: model(it).fit(Xd, yd), 1, 3 if batch is None else 2, args.repeats
                    ),
                )
                Xd = yd = None  # free the device copies before the next side
            Xt = torch.asarray(X, device=self.device)
            mean, std = Xt.mean(0), Xt.std(0).clamp_min(1e-12)
            Xt = (Xt - mean) / std  # hml standardises once per fit, outside the loop
            Yt = torch.nn.functional.one_hot(torch.asarray(y, device=self.device), 10).to(Xt.dtype)
            gen = torch.Generator(device="cpu").manual_seed(0)
            params = [
                (torch.rand(a, b, generator=gen) * 0.24 - 0.12).to(self.device).requires_grad_()
                for a, b in ((784, 1024), (1, 1024), (1024, 10), (1, 10))
            ]

            def loss(W1, b1, W2, b2, X, Y, m=float(n)):
                # The original project's cost: sigmoid layers, cross-entropy per output, λ/2m ‖W‖².
                hidden = torch.sigmoid(X @ W1 + b1)
                logits = hidden @ W2 + b2
                cross = torch.nn.functional.binary_cross_entropy_with_logits(logits, Y, reduction="sum") / X.shape[0]
                return cross + 1.0 / (2 * m) * ((W1 * W1).sum() + (W2 * W2).sum())

            def epoch_step(function):
                velocity = [torch.zeros_like(p) for p in params]
                lr = 0.5 if batch is None else 0.05

                def step():
                    order = torch.randperm(n, device=self.device) if batch else None
                    for start in range(0, n, batch or n):
                        rows = order[start : start + batch] if batch else slice(None)
                        cost = function(*params, Xt[rows], Yt[rows])
                        grads = torch.autograd.grad(cost, params)
                        with torch.no_grad():
                            for p, v, g in zip(params, velocity, grads, strict=True):
                                v.mul_(0.9 if batch else 0.0).add_(g, alpha=-lr)
                                p.add_(v)

                return step

            self.record(name, "torch-eager", lambda: self.torch_loop(epoch_step(loss), 3 if batch is None else 1))
            self.record(
                name,
                "torch-compile",
                lambda: self.torch_loop(epoch_step(self.compiled(loss)), 3 if batch is None else 1),
            )
            Xt = Yt = None  # free the device copies before the next side
            self.record(
                name,
                "hml-numpy",
                lambda: hml_per_iteration(self.clock, lambda it: model(it).fit(X, y), 1, 2, 1, warmup=0),
            )

    # logistic regression --------------------------------------------------------------------
    def logistic(self) -> None:
        args = self.args
        n = max(4096, int(1_000_000 * args.scale))
        X, y, source = self.mnist(n)
        bytes_per_pass = 4.0 * n * 784
        for multi_class in ("multinomial", "ovr"):
            for solver in ("gd", "lbfgs"):
                name = f"logistic regression {multi_class} {solver} iteration, N={n:,} × 784, 10 classes, float32"
                print(name, flush=True)
                # Two passes over X per gradient (X W, then Xᵀ R): memory-bound.
                self.roofline_row(
                    lambda: Row(
                        name,
                        "roofline",
                        2 * bytes_per_pass / self.roof["bandwidth"],
                        "two passes over X at the copy bandwidth",
                        {"data": source},
                    )
                )

                def model(it, multi_class=multi_class, solver=solver):
                    return hml.LogisticRegression(
                        solver=solver, multi_class=multi_class, max_iter=it, tol=0.0, learning_rate=1.0
                    )

                short, long = (10, 30) if solver == "gd" else (5, 15)
                for label in self.plain_labels():
                    Xd, yd = self.to(label, X), self.to(label, y)
                    self.record(
                        name,
                        label,
                        lambda: hml_per_iteration(
                            self.clock, lambda it: model(it).fit(Xd, yd), short, long, args.repeats
                        ),
                    )
                    Xd = yd = None  # free the device copies before the next side
                self.record(
                    name, "torch-eager", lambda: self._torch_logistic(X, y, multi_class, solver, compiled=False)
                )
                self.record(
                    name, "torch-compile", lambda: self._torch_logistic(X, y, multi_class, solver, compiled=True)
                )
                self.record(
                    name,
                    "hml-numpy",
                    lambda: hml_per_iteration(
                        self.clock, lambda it: model(it).fit(X, y), short // 5 or 1, short // 5 + 3, 1, warmup=0
                    ),
                )

    def _torch_logistic(self, X, y, multi_class, solver, compiled) -> tuple[float, str]:
        torch = self.torch
        Xt = torch.asarray(X, device=self.device)
        Xt = (Xt - Xt.mean(0)) / Xt.std(0).clamp_min(1e-12)
        Yt = torch.nn.functional.one_hot(torch.asarray(y, device=self.device), 10).to(Xt.dtype)
        W = torch.zeros(784, 10, device=self.device, requires_grad=True)
        b = torch.zeros(10, device=self.device, requires_grad=True)
        m = float(X.shape[0])

        def loss(W, b, X, Y):
            logits = X @ W + b
            if multi_class == "multinomial":
                data = torch.nn.functional.cross_entropy(logits, Y, reduction="sum") / m
            else:
                data = torch.nn.functional.binary_cross_entropy_with_logits(logits, Y, reduction="sum") / m
            return data + 1.0 / (2 * m) * (W * W).sum()

        function = self.compiled(loss) if compiled else loss
        if solver == "gd":
            costs = []

            def step():
                cost = function(W, b, Xt, Yt)
                gW, gb = torch.autograd.grad(cost, (W, b))
                with torch.no_grad():
                    W.sub_(gW)
                    b.sub_(gb)
                costs.append(cost.detach())
                if len(costs) == 10:  # the cost read once per 10 iterations, as hml's window
                    torch.stack(costs).cpu()
                    costs.clear()

            return self.torch_loop(step, 10)
        optimizer = torch.optim.LBFGS([W, b], lr=1.0, max_iter=1, history_size=10, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            cost = function(W, b, Xt, Yt)
            cost.backward()
            return cost

        return self.torch_loop(lambda: optimizer.step(closure), 10)

    # linear regression ------------------------------------------------------------------------
    def linear(self) -> None:
        torch, args = self.torch, self.args
        n, d = max(10_000, int(10_000_000 * args.scale)), 64
        name = f"linear regression GD iteration, N={n:,} × {d}, float32"
        print(name, flush=True)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, d), dtype=np.float32)
        y = X @ rng.standard_normal(d, dtype=np.float32) + 0.1 * rng.standard_normal(n, dtype=np.float32)
        self.roofline_row(
            lambda: Row(
                name, "roofline", 2 * 4.0 * n * d / self.roof["bandwidth"], "two passes over X at the copy bandwidth"
            )
        )

        def model(it):
            return hml.LinearRegression(max_iter=it, learning_rate=0.1, tol=None)

        for label in self.plain_labels():
            Xd, yd = self.to(label, X), self.to(label, y)
            self.record(
                name,
                label,
                lambda: hml_per_iteration(self.clock, lambda it: model(it).fit(Xd, yd), 10, 50, args.repeats),
            )
            Xd = yd = None  # free the device copies before the next side
        Xt, yt = torch.asarray(X, device=self.device), torch.asarray(y, device=self.device)
        Xt = (Xt - Xt.mean(0)) / Xt.std(0)

        def gd(X, y, w, b, m=float(n)):
            residual = X @ w + b - y
            return w - 0.1 / m * (residual @ X), b - 0.1 / m * residual.sum(), (residual @ residual) / (2 * m)

        def steps(function):
            state = [torch.zeros(d, device=self.device), torch.zeros((), device=self.device)]
            costs = []

            def step():
                state[0], state[1], cost = function(Xt, yt, *state)
                costs.append(cost)
                if len(costs) == 10:
                    torch.stack(costs).cpu()
                    costs.clear()

            return step

        self.record(name, "torch-eager", lambda: self.torch_loop(steps(gd), 20))
        self.record(name, "torch-compile", lambda: self.torch_loop(steps(self.compiled(gd)), 20))
        Xt = yt = None  # free the device copies before the next side
        self.record(
            name,
            "hml-numpy",
            lambda: hml_per_iteration(self.clock, lambda it: model(it).fit(X, y), 10, 20, 1, warmup=0),
        )

    # report -----------------------------------------------------------------------------------
    def run(self) -> dict:
        self.roof = None
        if self.wanted("roofline"):
            self.roof = measure_roofline(self.torch, self.device, self.clock, self.args.scale)
            print(
                f"roofline: FP32 GEMM {self.roof['gemm_flops'] / 1e12:.1f} TFLOP/s, "
                f"bandwidth {self.roof['bandwidth'] / 1e12:.2f} TB/s",
                flush=True,
            )
        for workload in self.args.only:
            getattr(self, workload)()
        return self.report()

    def report(self) -> dict:
        torch = self.torch
        info = {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "hml": hml.__version__,
            "cpu_count": os.cpu_count(),
            "device": self.device,
            "scale": self.args.scale,
            "repeats": self.args.repeats,
            "CUPY_TF32": os.environ.get("CUPY_TF32"),
            "torch_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        }
        if self.device.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name()
            info["cuda_runtime"] = torch.version.cuda
        cupy = sys.modules.get("cupy")
        if cupy is not None:
            info["cupy"] = cupy.__version__
        return {
            "info": info,
            "roofline": self.roof,
            "rows": [asdict(r) for r in self.rows],
            "ratios": ratios(self.rows),
        }


def ratios(rows: list[Row]) -> list[dict]:
    """For every hml GPU side: its time over torch-eager's, torch-compile's and the roofline; NumPy's time over it."""
    by = {(r.workload, r.variant): r.seconds for r in rows}
    out = []
    for r in rows:
        if not r.variant.startswith("hml-") or r.variant == "hml-numpy" or r.seconds is None:
            continue
        entry = {"workload": r.workload, "variant": r.variant, "ms": r.seconds * 1e3}
        for peer in ("torch-eager", "torch-compile", "roofline"):
            if by.get((r.workload, peer)):
                entry[f"over_{peer}"] = r.seconds / by[(r.workload, peer)]
        if by.get((r.workload, "hml-numpy")):
            entry["numpy_speedup"] = by[(r.workload, "hml-numpy")] / r.seconds
        out.append(entry)
    return out


def markdown(result: dict) -> str:
    info, roof = result["info"], result["roofline"]
    lines = [
        f"Device: {info.get('gpu', info['device'])}; CUDA {info.get('cuda_runtime')}; torch {info['torch']}; "
        f"CuPy {info.get('cupy', '-')}; NumPy {info['numpy']}; {info['cpu_count']} CPU cores; "
        f"scale {info['scale']}; medians of {info['repeats']}.",
        ""
        if roof is None
        else f"Roofline measured here: FP32 GEMM {roof['gemm_flops'] / 1e12:.1f} TFLOP/s (n = {roof['gemm_n']}), "
        f"copy bandwidth {roof['bandwidth'] / 1e12:.2f} TB/s (read + write).",
        "",
        "| workload | variant | ms / iteration | note |",
        "| --- | --- | ---: | --- |",
    ]
    for r in result["rows"]:
        ms = "—" if r["seconds"] is None else f"{r['seconds'] * 1e3:.3f}"
        lines.append(f"| {r['workload']} | {r['variant']} | {ms} | {r['note']} |")
    lines += [
        "",
        "| workload | hml side | ms | × torch eager | × torch.compile | × roofline | NumPy ÷ this |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in result["ratios"]:

        def fmt(key):
            return f"{e[key]:.2f}" if key in e else "—"

        lines.append(
            f"| {e['workload']} | {e['variant']} | {e['ms']:.3f} | {fmt('over_torch-eager')} | "
            f"{fmt('over_torch-compile')} | {fmt('over_roofline')} | {fmt('numpy_speedup')} |"
        )
    return "\n".join(lines) + "\n"


WORKLOADS = ("kmeans", "mlp", "logistic", "linear")
VARIANTS = ("hml-cupy", "hml-cupy-fused", "hml-torch", "torch-eager", "torch-compile", "hml-numpy", "roofline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device of the hand-written side and hml-torch (cuda)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's row counts (1.0)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure; the median is kept (5)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {WORKLOADS}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument(
        "--budget", type=float, default=1e9, help="seconds after which the remaining figures are skipped"
    )
    parser.add_argument("--compile-cpu", action="store_true", help="also time torch.compile on the CPU")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {WORKLOADS}")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
    result = Bench(args).run()
    table = markdown(result)
    print(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
