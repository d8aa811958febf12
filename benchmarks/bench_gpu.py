"""The GPU workloads of issue 10 in asv: hml on CuPy and on torch-CUDA beside hand-written PyTorch.

Each figure is milliseconds per iteration (or epoch), measured by
``benchmarks/gpu/side_by_side.py`` -- CUDA events, warm-up, medians, TF32 off -- so
asv tracks exactly the numbers the side-by-side table reports, per commit:

- k-means, N = 10,000,000, D = 32, K = 256, float32: one Lloyd iteration;
- MLP [784, 1024, 10] on MNIST replicated to 1,000,000 rows, float32: one epoch (full batch);
- logistic regression, 1,000,000 × 784, 10 classes, float32: one L-BFGS and one GD iteration;
- linear regression GD, 10,000,000 × 64, float32: one iteration.

Floors (issue 10): hml's k-means and MLP ≤ 1.2 × torch-eager. Without a CUDA GPU every
figure is skipped, except in the CI smoke run, which times the torch sides on the CPU at a
tiny size so that the code stays exercised.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from .common import SMOKE, SkipNotImplemented, peer

_SCRIPT = Path(__file__).resolve().parent / "gpu" / "side_by_side.py"
#: workload -> (side_by_side workload, a word of the row's name)
WORKLOADS = {
    "kmeans": ("kmeans", "k-means"),
    "mlp-full-batch": ("mlp", "full batch"),
    "logistic-lbfgs": ("logistic", "multinomial lbfgs"),
    "logistic-gd": ("logistic", "multinomial gd"),
    "linear-gd": ("linear", "linear regression"),
}


def _side_by_side():
    """benchmarks/gpu/side_by_side.py, a script rather than a package module, loaded once."""
    module = sys.modules.get("hml_side_by_side")
    if module is None:
        spec = importlib.util.spec_from_file_location("hml_side_by_side", _SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up by name
        spec.loader.exec_module(module)
    return module


class GPUIteration:
    """Milliseconds per iteration of each workload, by implementation."""

    params = (["hml-cupy", "hml-cupy-fused", "hml-torch", "torch-eager", "torch-compile"], list(WORKLOADS))
    param_names = ["variant", "workload"]
    timeout = 900
    unit = "ms"
    number = 1
    repeat = 1

    def setup(self, variant, workload):
        if variant == "hml-cupy-fused" and workload != "kmeans":
            raise NotImplementedError("the fused kernel is k-means' E-step")
        torch = peer("torch", "PyTorch")
        device = "cuda" if torch.cuda.is_available() else None
        if device is None and not (SMOKE and variant in ("hml-torch", "torch-eager")):
            raise NotImplementedError("needs a CUDA GPU")
        self.variant, self.workload, self.device = variant, workload, device or "cpu"

    def track_ms_per_iteration(self, variant, workload):
        module = _side_by_side()
        name, word = WORKLOADS[workload]
        args = argparse.Namespace(
            device=self.device,
            scale=0.0005 if SMOKE else 1.0,
            repeats=1 if SMOKE else 3,
            only=[name],
            variants=[variant],
            match=word,
            budget=1e9,
            compile_cpu=False,
        )
        bench = module.Bench(args)
        bench.run()
        rows = [r for r in bench.rows if r.variant == variant and word in r.workload]
        if not rows or rows[0].seconds is None:
            raise SkipNotImplemented(rows[0].note if rows else f"{variant} is not usable here")
        return rows[0].seconds * 1e3
