"""What hml's documentation adds to Sphinx, all of it at build time and offline but for one download.

- **MathJax served by the site**: MathJax 3 (the npm package, fetched once from the npm registry,
  its sha512 checked against the lock below, cached in ``HML_DOCS_CACHE`` or ``~/.cache/hml-docs``) is
  copied into ``_static/mathjax``; ``conf.mathjax_path`` points there, and MathJax finds its fonts and
  extensions beside its own script. Opening the site fetches nothing from another host.
- **The notebooks**: ``notebooks/**/*.ipynb`` are copied into ``docs/notebooks/`` (generated, ignored by
  git) and rendered by myst-nb from their committed outputs; ``docs/notebooks/index.md``, the gallery, is
  written from them: one card per notebook, its title (the first heading) and a thumbnail (the image
  output of a cell tagged ``thumbnail``, else the notebook's last image).
- **Formulas said once**: ``{hml-formula}`` shows, on a math page, a ``.. math::`` block of a docstring
  (the block with that ``:name:``), so the page and the API reference show the same formula, from one
  source. The directive fails the build if the docstring has no such block.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import inspect
import io
import json
import os
import re
import shutil
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parents[1]
REPO = DOCS.parent

MATHJAX_VERSION = "3.2.2"
MATHJAX_URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz"
MATHJAX_SHA512 = "Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
# The CommonHTML build and what it loads on demand: TeX extensions (autoload), fonts, the menu,
# and the accessibility and speech modules the menu can switch on.
MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre")


# -- MathJax -----------------------------------------------------------------------------------------


def mathjax_static_dir() -> Path:
    """A directory holding ``mathjax/`` (MathJax's ``es5`` build), downloaded and verified on first use."""
    cache = Path(os.environ.get("HML_DOCS_CACHE") or Path.home() / ".cache" / "hml-docs")
    root = cache / f"mathjax-{MATHJAX_VERSION}"
    if (root / "mathjax" / "tex-chtml.js").is_file():
        return root
    with urllib.request.urlopen(MATHJAX_URL, timeout=60) as response:
        archive = response.read()
    digest = base64.b64encode(hashlib.sha512(archive).digest()).decode()
    if digest != MATHJAX_SHA512:
        raise RuntimeError(
            f"{MATHJAX_URL}: sha512 {digest}, expected {MATHJAX_SHA512} (npm's dist.integrity of "
            f"mathjax@{MATHJAX_VERSION}); delete {cache} and build again, or check the download"
        )
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            relative = member.name.removeprefix("package/es5/")
            if member.isfile() and relative != member.name and relative.startswith(MATHJAX_PARTS):
                target = partial / "mathjax" / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


# -- notebooks and their gallery ------------------------------------------------------------------------


def _title(notebook: dict[str, Any], fallback: str) -> str:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^#\s+(.+)$", "".join(cell["source"]), re.M)
            if match:
                return match.group(1).strip()
    return fallback


def _thumbnail(notebook: dict[str, Any]) -> bytes | None:
    """The PNG of the cell tagged ``thumbnail``, else the notebook's last PNG output."""
    chosen = None
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                chosen = png if isinstance(png, str) else "".join(png)
                if "thumbnail" in cell.get("metadata", {}).get("tags", []):
                    return base64.b64decode(chosen)
    return base64.b64decode(chosen) if chosen else None


#: The gallery's section headings, by notebook folder (a new folder gets its name, capitalised).
TOPICS = {"k_means": "k-means", "neural_network": "Neural networks", "backends": "One code, many backends"}

GALLERY_HEAD = """\
# Notebooks

Each algorithm run on a real data set, as in the original *Homemade Machine Learning*, with its plots.
They are shown here with the outputs committed in the repository (CI executes every one of them);
to run and change them, open them in Jupyter from a checkout (``pip install -e ".[notebooks]"``), or in
your browser with nothing installed (the JupyterLite site: the README's *In your browser*).

"""


def write_if_changed(path: Path, content: bytes) -> None:
    """Write ``content`` unless ``path`` holds it already (Sphinx then sees an unchanged source)."""
    if not path.is_file() or path.read_bytes() != content:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def copy_notebooks(app: Sphinx) -> None:
    """Copy the notebooks under ``docs/notebooks`` and write their gallery, ``docs/notebooks/index.md``."""
    target = DOCS / "notebooks"
    written: set[Path] = set()
    topics: dict[str, list[tuple[str, str, str]]] = {}
    for source in sorted((REPO / "notebooks").glob("*/*.ipynb")):
        topic, name = source.parent.name, source.stem
        content = source.read_bytes()
        notebook = json.loads(content)
        thumbnail = _thumbnail(notebook)
        if thumbnail is None:
            raise RuntimeError(f"{source}: no image output to make its gallery thumbnail from (execute it)")
        image = f"_thumbnails/{topic}-{name}.png"
        for path, data in ((target / topic / source.name, content), (target / image, thumbnail)):
            write_if_changed(path, data)
            written.add(path)
        topics.setdefault(topic, []).append((f"{topic}/{name}", _title(notebook, name), image))
    lines = [GALLERY_HEAD, "```{toctree}", ":hidden:", ""]
    lines += [doc for entries in topics.values() for doc, _, _ in entries]
    lines += ["```", ""]
    for topic, entries in topics.items():
        heading = TOPICS.get(topic, topic.replace("_", " ").capitalize())
        lines += [f"## {heading}", "", "::::{grid} 1 2 3 3", ":gutter: 3", ""]
        for doc, title, image in entries:
            lines += [
                f":::{{grid-item-card}} {title}",
                f":link: {doc}",
                ":link-type: doc",
                f":img-top: {image}",
                ":::",
                "",
            ]
        lines += ["::::", ""]
    write_if_changed(target / "index.md", "\n".join(lines).encode())
    written.add(target / "index.md")
    for stale in [path for path in target.rglob("*") if path.is_file() and path not in written]:
        stale.unlink()  # a notebook renamed or removed since the last build


# -- formulas said once -----------------------------------------------------------------------------


def _resolve(path: str) -> Any:
    """The object at a dotted path (``hml.LinearRegression``, ``hml.optimize.adam``)."""
    module_name, _, rest = path.partition(".")
    obj: Any = importlib.import_module(module_name)
    for part in rest.split(".") if rest else []:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def docstring_formula(obj: Any, name: str) -> str:
    """The body of the ``.. math::`` block named ``name`` in the docstring of ``obj``."""
    doc = inspect.getdoc(obj) or ""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != ".. math::":
            continue
        indent = len(line) - len(line.lstrip())
        body, options = [], {}
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            option = re.match(r"\s*:(\w+):\s*(.*)$", following)
            if option and not body:
                options[option.group(1)] = option.group(2).strip()
            else:
                body.append(following)
        if options.get("name") == name:
            return inspect.cleandoc("\n".join(body)).strip()
    raise LookupError(f"the docstring has no `.. math::` block with `:name: {name}`")


class HmlFormula(SphinxDirective):
    """``{hml-formula} hml.LinearRegression`` with ``:name: linear-regression-cost``: that docstring
    formula, with a link to where it is documented (and computed)."""

    required_arguments = 1
    option_spec = {"name": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        path, name = self.arguments[0], self.options.get("name", "")
        try:
            obj = _resolve(path)
            latex = docstring_formula(obj, name)
        except (LookupError, ImportError, AttributeError) as error:
            raise self.error(f"hml-formula {path}: {error}") from error
        source = inspect.getsourcefile(inspect.unwrap(obj))
        if source:  # an edit of the docstring rebuilds this page
            self.env.note_dependency(source)
        block = nodes.math_block(latex, latex, nowrap=False, number=None, docname=self.env.docname)
        self.set_source_info(block)
        reference = addnodes.pending_xref(
            "", refdomain="py", reftype="obj", reftarget=path, refexplicit=False, refwarn=True
        )
        reference += nodes.literal(path, path, classes=["xref", "py", "py-obj"])
        caption = nodes.paragraph("", "", classes=["hml-formula-source"])
        caption += [nodes.Text("— "), reference]
        container = nodes.container("", block, caption, classes=["hml-formula"])
        return [container]


def setup(app: Sphinx) -> dict[str, Any]:
    def add_mathjax(app: Sphinx, config: Any) -> None:
        config.html_static_path.append(str(mathjax_static_dir()))

    app.connect("config-inited", add_mathjax)
    app.connect("builder-inited", copy_notebooks)
    app.add_directive("hml-formula", HmlFormula)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
