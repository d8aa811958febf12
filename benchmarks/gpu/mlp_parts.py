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

from hml import backends  # noqa: E402
from hml.neural_network import mlp_objective  # noqa: E402
from hml.numerics import positive_part, tall_gram  # noqa: E402

from events import median_ms  # noqa: E402  (beside this script)


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
        "X": rng.random((n, 784), dtype=np.float32), "H": rng.standard_normal((n, 1024), dtype=np.float32),
        "D": rng.standard_normal((n, 10), dtype=np.float32), "W1": rng.standard_normal((784, 1024), dtype=np.float32),
        "Y": np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
        "theta": (rng.standard_normal(784 * 1024 + 1024 + 1024 * 10 + 10) * 0.01).astype(np.float32),
    }

    rows: dict[str, dict[str, float]] = {}
    for library in ("cupy", "torch"):
        ctx = backends.resolve(library, device="cuda")
        xp = ctx.xp
        a = {name: ctx.asarray(value) for name, value in host.items()}
        ones = xp.ones((1, n), dtype=xp.float32, device=ctx.device)
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
        for name, function in parts.items():
            rows.setdefault(name, {})[library] = median_ms(function, args.repeats, library=library)
        del a, objective
    print(f"N = {n:,}, float32, TF32 off; ms, median of {args.repeats}")
    print(f"{'operation':<36} {'cupy':>9} {'torch':>9} {'cupy/torch':>10}")
    for name, by in rows.items():
        print(f"{name:<36} {by['cupy']:9.3f} {by['torch']:9.3f} {by['cupy'] / by['torch']:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
