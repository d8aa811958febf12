"""``hml demo``: the five algorithms, each trained on its demo data set, in one command.

Prints a table (algorithm, data set, metric, value, floor, fit time, backend/device),
writes a PNG per algorithm and ``results.json`` to the output folder. Every figure is
measured the way the original project measured it, with fixed seeds, and checked
against the quality floor beside it; the command exits non-zero when a data set or
the backend cannot be had, or a floor is missed.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hml
from hml import backends
from hml.demo_steps import STEPS, Demo, DemoResult
from hml.exceptions import BackendUnavailableError, DatasetError

__all__ = ["DemoResult", "STEPS", "run_demo"]


def _table(results: list[DemoResult], where: str) -> str:
    header = ("algorithm", "data set", "metric", "value", "floor", "fit time", "backend/device")
    rows = [header] + [
        (
            r.algorithm,
            r.dataset,
            r.metric,
            f"{r.value:.4f}",
            "—" if r.floor is None else f"≥ {r.floor:g}" + ("" if r.passed else " MISSED"),
            f"{r.fit_seconds:.2f} s",
            where,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run_demo(
    *,
    backend: str = "numpy",
    device: Any = None,
    only: list[str] | None = None,
    out: str | Path = "hml-demo",
    stream: Any = None,
) -> int:
    """Run the demo; print the table to ``stream``; return the exit status (0: every step ran and met its floor)."""
    stream = stream or sys.stdout
    unknown = sorted(set(only or []) - set(STEPS))
    if unknown:
        print(f"hml demo: unknown step(s) {unknown}; choose from {list(STEPS)}", file=sys.stderr)
        return 2
    try:
        ctx = backends.resolve(backend, device)
    except BackendUnavailableError as exc:
        print(f"hml demo: backend {backend!r} cannot run here: {exc}", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('hml demo: the plots need matplotlib; install it with: pip install "matplotlib>=3.7"', file=sys.stderr)
        return 2
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"hml demo: cannot write the plots to {str(out)!r} ({exc.strerror or exc}); give --out a folder",
            file=sys.stderr,
        )
        return 2
    where = f"{ctx.backend.name}/{ctx.backend.device_name(ctx.device)}"
    demo = Demo(backend, device, out)
    print(f"hml {hml.__version__} demo on {where}; plots and results.json go to {out}/", file=stream, flush=True)
    if ctx.backend.lazy:
        print(
            "  note: Dask builds a task graph per iteration (tens of ms each), which pays off on data larger than "
            "memory, not on these small sets: expect many minutes",
            file=stream,
            flush=True,
        )
    results: list[DemoResult] = []
    errors: dict[str, str] = {}
    started = time.perf_counter()
    for name, step in STEPS.items():
        if only and name not in only:
            continue
        print(f"- {name.replace('_', ' ')} ...", file=stream, flush=True)
        try:
            results += step(demo)
        except DatasetError as exc:
            errors[name] = f"a data set could not be loaded: {exc}"
            print(
                f"  {name}: SKIPPED -- {errors[name]}\n  (with internet it downloads; offline, set HML_DATA_MIRROR "
                "to a copy, or fetch it first with `hml data fetch all`)",
                file=sys.stderr,
                flush=True,
            )
    total = time.perf_counter() - started
    print("\n" + _table(results, where), file=stream)
    missed = [r for r in results if not r.passed]
    report = {
        "hml_version": hml.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backend": ctx.backend.name,
        "device": ctx.backend.device_name(ctx.device),
        "backend_version": ctx.backend.version(),
        "total_seconds": total,
        "results": [{**asdict(r), "passed": r.passed} for r in results],
        "plots": demo.plots,
        "errors": errors,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"\n{len(results)} results in {total:.1f} s; plots: {', '.join(demo.plots) or 'none'}; written to {out}/",
        file=stream,
    )
    if missed:
        print(
            "hml demo: below the quality floor: "
            + "; ".join(f"{r.algorithm} on {r.dataset}: {r.value:.4f} < {r.floor}" for r in missed),
            file=sys.stderr,
        )
    return 1 if errors or missed else 0
