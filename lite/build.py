"""Build the JupyterLite site: every notebook of notebooks/ runnable in a web browser, nothing installed.

    pip install -e ".[lite]"
    python lite/build.py                              # the site in build/lite (Pyodide from its CDN)
    python -m http.server -b 127.0.0.1 -d build/lite  # then open http://127.0.0.1:8000/lab/index.html
    python lite/build.py --pyodide ../shared/pyodide  # Pyodide from a local copy: tests, offline

The site is static files, to be served from anywhere (GitHub Pages, say). In it:

* the notebooks as in the repository, under ``notebooks/``; the first cell of each installs hml
  from the site in a browser (and does nothing in Jupyter on a desktop);
* the data files they load, under ``data/<folder>/<file>``, where the notebooks' ``HML_DATA_HOME``
  (``../../data``) finds them: the repository's layout. They come from ``HML_DATA_MIRROR`` or the
  sources, checksums verified, at build time; none is in the repository;
* ``pypi/``: hml's wheel and the pure-Python wheels it and the notebooks need that Pyodide does not
  ship, at the versions the ``lite`` extra installed here (:data:`SITE_WHEELS`);
* Pyodide 0.27.7 (``jupyterlite-pyodide-kernel`` 0.6.1 was built for 0.27.6; 0.27.7 is that series'
  bug-fix release, and what ``../shared/pyodide`` holds): from the jsDelivr CDN, or copied from
  ``--pyodide`` into ``static/pyodide``.

PyPI is never asked at run time (``disablePyPIFallback``): a package is the site's or Pyodide's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYODIDE_VERSION = "0.27.7"
PYODIDE_CDN = f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/pyodide.js"
#: Pure-Python wheels the site serves besides hml's: hml's dependencies that Pyodide does not ship
#: (its tqdm is in Pyodide's lock, but the site's copy keeps an offline site whole), comm (which the
#: kernel installs at start), ipywidgets and jupyterlab_widgets (the sliders), array-api-strict (the
#: backends notebook). numpy and threadpoolctl come from Pyodide.
SITE_WHEELS = (
    "array-api-compat",
    "array-api-extra",
    "tqdm",
    "comm",
    "ipywidgets",
    "jupyterlab_widgets",
    "array-api-strict",
)
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
#: Written first into the working folder beside the site: an interrupted build's folder is the script's own.
SOURCE_MARK = ".hml-lite-source"


def run(*command: str | Path, cwd: Path = ROOT) -> None:
    print("$", " ".join(map(str, command)), flush=True)
    subprocess.run([str(c) for c in command], cwd=cwd, check=True)


def wheels(into: Path) -> list[Path]:
    """hml's wheel, built from this checkout, and the :data:`SITE_WHEELS` at their installed versions."""
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", into, ROOT)
    pins = []
    for name in SITE_WHEELS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            sys.exit(f"{name} is not installed here; the site carries the version installed: pip install -e '.[lite]'")
    run(
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.12", "--platform", "any", "--dest", into, *pins,
    )  # fmt: skip
    found = sorted(into.glob("*.whl"))
    impure = [w.name for w in found if not w.name.endswith("-none-any.whl")]
    if impure:
        sys.exit(f"Pyodide installs only pure-Python wheels from a site; these are not: {impure}")
    return found


def data(into: Path) -> None:
    """Every data set's files, verified, in the layout of a cache (``<folder>/<file>``)."""
    from hml.datasets import DATASETS, fetch
    from hml.exceptions import DatasetError

    for name in DATASETS:
        try:
            fetch(name, data_home=into)
        except DatasetError as error:  # the notebook that needs it stops with the reason, as on a desktop
            print(f"warning: {name} is left out of the site: {error}", file=sys.stderr)


def config(pyodide_url: str) -> dict[str, object]:
    """``jupyter-lite.json``: the kernel's Pyodide and no PyPI; the app exposed as ``window.jupyterapp``
    (what the browser test drives; it gives a page's own scripts nothing they could not reach anyway)."""
    return {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {
            "appName": "hml: homemade machine learning",
            "exposeAppInBrowser": True,
            "litePluginSettings": {KERNEL_PLUGIN: {"pyodideUrl": pyodide_url, "disablePyPIFallback": True}},
        },
    }


def build(output: Path, pyodide: Path | None) -> None:
    # jupyter lite's --lite-dir (config, pypi/, contents), beside the site: a name that does not start
    # with the site's, or jupyter lite takes its jupyter-lite.json for one of the site's own and skips it.
    source = output.parent / f"_{output.name}-source"
    if pyodide is not None and not ((pyodide / "pyodide.js").is_file() and (pyodide / "pyodide-lock.json").is_file()):
        sys.exit(
            f"--pyodide {pyodide}: no pyodide.js and pyodide-lock.json there; give a Pyodide {PYODIDE_VERSION} folder"
        )
    for folder in (source, output):  # only what an earlier build made is removed: never a folder of the user's
        if folder.exists() and not folder.is_dir():
            sys.exit(f"{folder} is a file; give a folder for the site (--output)")
        made = (folder / "jupyter-lite.json").is_file() or (folder / SOURCE_MARK).is_file()
        if folder.exists() and any(folder.iterdir()) and not made:
            sys.exit(f"{folder} exists and is not a site this script built (no jupyter-lite.json); give a new folder")
    try:
        metadata.version("jupyterlite-core")
    except metadata.PackageNotFoundError:
        sys.exit("jupyterlite-core is not installed here; it builds the site: pip install -e '.[lite]'")
    for folder in (source, output):
        shutil.rmtree(folder, ignore_errors=True)
    (source / "files").mkdir(parents=True)
    (source / SOURCE_MARK).write_text("lite/build.py's working folder, removed by its next build\n")
    wheels(source / "pypi")  # the lite-dir's pypi/ is copied into the site and indexed (pypi/all.json)
    shutil.copytree(
        ROOT / "notebooks", source / "files" / "notebooks", ignore=shutil.ignore_patterns("*.py", "images", ".*")
    )
    data(source / "files" / "data")
    (source / "jupyter-lite.json").write_text(json.dumps(config(PYODIDE_CDN), indent=2) + "\n")
    if pyodide is not None:
        # The well-known place: jupyter lite copies it into the site and points pyodideUrl at it.
        shutil.copytree(pyodide, source / "static" / "pyodide", ignore=shutil.ignore_patterns("README.md", "verify.py"))
    run(
        sys.executable, "-m", "jupyter", "lite", "build", "--lite-dir", source, "--output-dir", output,
        "--contents", source / "files", "--no-sourcemaps", "--no-unused-shared-packages",
        cwd=source,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "build" / "lite", help="the site's folder (default build/lite)"
    )
    parser.add_argument(
        "--pyodide",
        type=Path,
        help=f"a local Pyodide {PYODIDE_VERSION} folder to serve from the site instead of the CDN "
        "(offline tests: ../shared/pyodide)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        build(args.output.resolve(), args.pyodide.resolve() if args.pyodide else None)
    except subprocess.CalledProcessError as failure:  # its own output, above, says why
        sys.exit(f"the site was not built: {' '.join(map(str, failure.cmd))} failed (exit {failure.returncode})")
    print(
        f"built {args.output} in {time.perf_counter() - start:.0f} s; serve it: python -m http.server -b 127.0.0.1 -d {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
