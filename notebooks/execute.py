"""Execute the notebooks top to bottom, in place (the committed outputs) or as a check (CI).

    python notebooks/execute.py                      # every notebook, outputs written back
    python notebooks/execute.py --check              # run them all, write nothing, fail on an error
    python notebooks/execute.py notebooks/k_means    # some folders or .ipynb files
    python notebooks/execute.py --png /tmp/plots ... # also save every image output as a PNG

Each notebook runs with its own folder as the working directory, as in Jupyter. The
data sets come through ``hml.datasets``: set ``HML_DATA_MIRROR`` to read them from a
mirror (CI uses ``../shared/data``). A notebook that stops with ``hml.notebook.skip``
(its data cannot be had here) is reported as skipped with its reason, not as a failure.
A cell that outruns ``--timeout`` (a kernel that stopped answering: seen once, under load)
gets its notebook run once more in a fresh kernel before it counts as a failure.
Needs the ``notebooks`` extra (``pip install -e ".[notebooks]"``).
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

HERE = Path(__file__).resolve().parent


def notebooks(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths or [str(HERE)]):
        found += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def skip_reason(notebook: nbformat.NotebookNode) -> str | None:
    """The reason of an ``hml.notebook.skip`` in the executed notebook, if it stopped on one."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "NotebookSkipped":
                return output.get("evalue", "")
    return None


def save_images(notebook: nbformat.NotebookNode, stem: str, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                count += 1
                (folder / f"{stem}-cell{index:02d}-{count:02d}.png").write_bytes(base64.b64decode(data["image/png"]))
    return count


def run(path: Path, *, write: bool, timeout: int, png: Path | None) -> str:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError:
        reason = skip_reason(notebook)
        if reason is None:
            raise
        status = f"skipped: {reason}"
    else:
        status = "ok"
    if write:
        nbformat.write(notebook, path)
    if png is not None:
        save_images(notebook, f"{path.parent.name}-{path.stem}", png)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="notebooks or folders (default: every notebook under notebooks/)")
    parser.add_argument("--check", action="store_true", help="execute without writing the outputs back")
    parser.add_argument(
        "--timeout",
        type=int,
        default=600,
        help="seconds a cell may run before the kernel counts as stalled (default 600; the longest "
        "cell takes about 45 s here)",
    )
    parser.add_argument("--png", type=Path, help="also save every image output into this folder")
    args = parser.parse_args(argv)
    failed = []
    for path in notebooks(args.paths):
        start = time.perf_counter()
        try:
            try:
                status = run(path, write=not args.check, timeout=args.timeout, png=args.png)
            except (CellTimeoutError, DeadKernelError) as stalled:  # the kernel, not the notebook: once more
                print(
                    f"{path}: {type(stalled).__name__} ({str(stalled)[:200]}); running it again in a fresh kernel",
                    flush=True,
                )
                status = run(path, write=not args.check, timeout=args.timeout, png=args.png) + " (second try)"
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
            failed.append(path)
            status = "FAILED\n" + str(error)[-3000:]
        print(
            f"{path.relative_to(HERE.parent) if path.is_relative_to(HERE.parent) else path}: "
            f"{status} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
