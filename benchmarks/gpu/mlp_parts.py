"""Where a full-batch MLP objective's time goes on CuPy against torch, operation by operation.

The first GPU run (benchmarks/results/gpu-h100-2026-11-23.md) found hml's MLP epoch on CuPy
1.7× its time on torch-CUDA for the same code. This times, with CUDA events (median of
--repeats after a warm-up), each large operation of one objective evaluation of the
[784, 1024, 10] network on N rows, float32, on both libraries, and the whole evaluation::

    python benchmarks/gpu/mlp_parts.py --rows 1000000
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from events import median_ms  # beside this script

from hml import backends
from hml.neural_network import mlp_objective
from hml.numerics import positive_part, tall_gram


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import cupy  # noqa: F401  (fails here, early, without CuPy)
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    n, layers = args.rows, [784, 1024, 10]
    rng = np.random.default_rng(0)
    host = {
        "X": rng.random((n, 784), dtype=np.float32),
        "H": rng.standard_normal((n, 1024), dtype=np.float32),
        "D": rng.standard_normal((n, 10), dtype=np.float32),
        "W1": rng.standard_normal((784, 1024), dtype=np.float32),
        "Y": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
        "theta": (rng.standard_normal(784 * 1024 + 1024 + 1024 * 10 + 10) * 0.01).astype(np.float32),
    }

    rows: dict[str, dict[str, float]] = {}
    for library in ("cupy", "torch"):
        # One library's arrays live in time_parts' frame only: freed before the next library's are made.
        for name, ms in time_parts(library, host, layers, args.repeats).items():
            rows.setdefault(name, {})[library] = ms
    print(f"N = {n:,}, float32, TF32 off; ms, median of {args.repeats}")
    print(f"{'operation':<36} {'cupy':>9} {'torch':>9} {'cupy/torch':>10}")
    for name, by in rows.items():
        print(f"{name:<36} {by['cupy']:9.3f} {by['torch']:9.3f} {by['cupy'] / by['torch']:10.2f}")
    return 0


def time_parts(library: str, host: dict[str, np.ndarray], layers: list[int], repeats: int) -> dict[str, float]:
    """Median ms of each operation of one objective evaluation, on ``library``'s CUDA device."""
    ctx = backends.resolve(library, device="cuda")
    xp = ctx.xp
    a = {name: ctx.asarray(value) for name, value in host.items()}
    ones = xp.ones((1, host["X"].shape[0]), dtype=xp.float32, device=ctx.device)
    objective = mlp_objective(a["X"], a["Y"], layers, "relu", "softmax", 0.0, xp)
    parts = {
        "X @ W1 (N×784 · 784×1024)": lambda: a["X"] @ a["W1"],
        "tall_gram(X, H) (784×N · N×1024)": lambda: tall_gram(a["X"], a["H"]),
        "sum(H, axis=0) (N×1024)": lambda: xp.sum(a["H"], axis=0),
        "ones @ H (N×1024)": lambda: ones @ a["H"],
        "sum(D, axis=0) (N×10)": lambda: xp.sum(a["D"], axis=0),
        "ones @ D (N×10)": lambda: ones @ a["D"],
        "positive_part(H)": lambda: positive_part(a["H"], xp),
        "where(H > 0, H, 0.0)": lambda: xp.where(a["H"] > 0, a["H"], 0.0),
        "objective(θ): J and ∇J": lambda: objective(a["theta"]),
    }
    return {name: median_ms(function, repeats, library=library) for name, function in parts.items()}


if __name__ == "__main__":
    sys.exit(main())
