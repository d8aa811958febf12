"""A refactor keeps behaviour: the same fits with the code of a git ref and with the working tree,
in one process -- fitted values compared, and fit times alternated.

    python benchmarks/before_after.py --before main~3                 # values and times
    python benchmarks/before_after.py --before v0.1 --values --backends numpy dask
    python benchmarks/before_after.py --before HEAD~1 --times --only kmeans --rounds 9

The ref's ``hml/`` is extracted with ``git archive`` into a temporary folder as the package
``hml_before`` (its imports rewritten), so both versions import side by side. Values: every
float attribute ending in ``_`` of each fit, the largest difference relative to the attribute's
largest magnitude (``0`` is bit for bit; cost histories may differ in length when the contract
changed, and are compared on their common entries, aligned). Times: medians of alternated runs
(old, new, new, old, ...), so both sides see the same drift of a shared machine.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_before(ref: str, folder: Path) -> Any:
    """The package ``hml`` of ``ref``, importable as ``hml_before``."""
    archive = subprocess.run(["git", "archive", ref, "hml"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "hml").rename(folder / "hml_before")
    for path in (folder / "hml_before").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bfrom hml\b", "from hml_before", text)
        text = re.sub(r"\bimport hml\b", "import hml_before", text)
        text = text.replace('"hml.', '"hml_before.')
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(folder))
    import hml_before

    return hml_before


def data(seed: int = 0, rows: int = 300) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    return {
        "X": X,
        "values": X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.3 * rng.normal(size=rows),
        "classes": (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.8),
        None: None,
    }


#: name -> (estimator of a module's namespace and a backend, target, rows). Short fits, many paths.
FITS = {
    "linear-default": (lambda m, b: m.LinearRegression(backend=b), "values", 300),
    "linear-poly": (
        lambda m, b: m.LinearRegression(polynomial_degree=3, learning_rate=0.05, max_iter=400, backend=b),
        "values",
        300,
    ),
    "linear-normal": (lambda m, b: m.LinearRegression(solver="normal", l2=0.5, backend=b), "values", 300),
    "linear-blocks": (lambda m, b: m.LinearRegression(max_iter=50, tol=None, backend=b), "values", 150_000),
    "logistic-lbfgs": (lambda m, b: m.LogisticRegression(backend=b), "classes", 300),
    "logistic-ovr": (
        lambda m, b: m.LogisticRegression(multi_class="ovr", max_iter=100, tol=1e-6, backend=b),
        "classes",
        300,
    ),
    "logistic-cg": (lambda m, b: m.LogisticRegression(solver="cg", backend=b), "classes", 300),
    "logistic-gd": (lambda m, b: m.LogisticRegression(solver="gd", max_iter=200, backend=b), "classes", 300),
    "mlp-gd": (lambda m, b: m.MultilayerPerceptron(layers=[4, 8, 3], random_state=0, backend=b), "classes", 300),
    "mlp-minibatch": (
        lambda m, b: m.MultilayerPerceptron(
            layers=[4, 8, 3], batch_size=32, momentum=0.9, learning_rate=0.05, max_iter=30, random_state=1, backend=b
        ),
        "classes",
        300,
    ),
    "mlp-lbfgs": (
        lambda m, b: m.MultilayerPerceptron(layers=[4, 8, 3], solver="lbfgs", max_iter=80, random_state=0, backend=b),
        "classes",
        300,
    ),
    "kmeans": (lambda m, b: m.KMeans(4, random_state=0, backend=b), None, 300),
    "kmeans-blocks": (lambda m, b: m.KMeans(8, random_state=0, working_memory=1 << 16, backend=b), None, 150_000),
    "kmeans-random": (lambda m, b: m.KMeans(4, init="random", random_state=2, backend=b), None, 300),
    "minibatch-kmeans": (lambda m, b: m.MiniBatchKMeans(8, batch_size=256, random_state=0, backend=b), None, 150_000),
    "anomaly-full": (lambda m, b: m.GaussianAnomalyDetection(covariance="full", backend=b), None, 300),
}


def _host(value: Any, module: Any) -> Any:
    if isinstance(value, list):
        return [_host(item, module) for item in value]
    if hasattr(value, "compute"):
        value = value.compute()
    try:
        return module.backends.to_numpy(value)
    except Exception:
        return value


def _state(model: Any, module: Any) -> dict[str, Any]:
    return {k: _host(v, module) for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def _difference(old: Any, new: Any) -> float | None:
    old, new = np.asarray(old), np.asarray(new)
    if old.dtype.kind not in "fc" or old.size == 0:
        return None if old.shape == new.shape and np.array_equal(old, new) else float("inf")
    if old.shape != new.shape and old.ndim >= 1 and old.shape[1:] == new.shape[1:]:  # a history, now longer
        n = min(old.shape[0], new.shape[0])
        aligned = [new[:n], new[new.shape[0] - n :]]
        return min(float(np.max(np.abs(old[:n] - a)) / (np.max(np.abs(old[:n])) or 1.0)) for a in aligned)
    if old.shape != new.shape:
        return float("inf")
    return float(np.max(np.abs(old - new)) / (np.max(np.abs(old)) or 1.0))


def compare_values(before: Any, after: Any, backends: list[str], only: list[str]) -> None:
    for backend in backends:
        for name, (factory, target, rows) in FITS.items():
            if only and not any(o in name for o in only):
                continue
            sets = data(rows=rows)
            X, y = sets["X"], sets[target]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                old = factory(before, backend).fit(X, y)
                new = factory(after, backend).fit(X, y)
            differences = {}
            for key, value in _state(old, before).items():
                if key in ("feature_transformer_",):
                    continue
                new_value = _state(new, after).get(key)
                pairs = list(zip(value, new_value, strict=False)) if isinstance(value, list) else [(value, new_value)]
                found = [d for d in (_difference(a, b) for a, b in pairs) if d is not None]
                if found:
                    differences[key] = max(found)
            worst = max(differences.values(), default=0.0)
            detail = ", ".join(f"{k} {v:.1e}" for k, v in differences.items() if v)
            print(f"values  {backend:17s} {name:16s} worst relative difference {worst:.2e}  {detail}", flush=True)


def compare_times(before: Any, after: Any, backends: list[str], only: list[str], rounds: int) -> None:
    for backend in backends:
        for name, (factory, target, _) in FITS.items():
            if only and not any(o in name for o in only):
                continue
            sets = data(rows=200_000)
            X, y = sets["X"], sets[target]

            def fit(module: Any, factory: Any = factory, X: Any = X, y: Any = y, backend: str = backend) -> float:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    factory(module, backend).fit(X, y)
                    return time.perf_counter() - start

            fit(before), fit(after)  # warm-up: caches, pools, first-touch pages
            times: dict[str, list[float]] = {"old": [], "new": []}
            for r in range(rounds):
                for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    times[side].append(fit(before if side == "old" else after))
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            print(
                f"times   {backend:17s} {name:16s} old {old * 1e3:8.1f} ms  new {new * 1e3:8.1f} ms  new/old {new / old:.3f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the git ref to compare the working tree with")
    parser.add_argument("--backends", nargs="+", default=["numpy"])
    parser.add_argument("--only", nargs="*", default=[], help="fits whose name contains one of these")
    parser.add_argument("--values", action="store_true", help="only the fitted values")
    parser.add_argument("--times", action="store_true", help="only the times")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import hml

    with tempfile.TemporaryDirectory() as folder:
        before = load_before(args.before, Path(folder))
        if not args.times:
            compare_values(before, hml, args.backends, args.only)
        if not args.values:
            compare_times(before, hml, args.backends, args.only, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
