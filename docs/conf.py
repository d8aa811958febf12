"""Sphinx configuration of hml's documentation site.

Build (the README's *Documentation*): ``pip install -e ".[docs]" && python -m sphinx -W --keep-going -n docs
docs/_build/html``. Everything builds offline: no intersphinx inventories, MathJax served from the site
itself (fetched once from the npm registry, checksum-verified: ``_ext/hml_docs.py``), the notebooks rendered
from their committed outputs (never executed here).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import hml  # noqa: E402

project = "hml"
author = "hml developers"
copyright = "2026, hml developers"
version = release = hml.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "sphinx_design",
    "hml_docs",
    "hml_benchmarks",
    "hml_datasets",
]

# guides/_generated: what the extensions write for the guides to include, not pages of their own.
exclude_patterns = ["_build", "_ext", "guides/_generated", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
nitpicky = True

# -- API reference --------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc sections give the types; annotations would need intersphinx
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- MyST and the notebooks -----------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # rendered from the committed outputs; CI executes them (notebooks/execute.py)
# Widgets would load their JavaScript from a CDN: their static fallback (text, image) is shown instead.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

# -- HTML -----------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"hml {version}"
html_static_path = ["_static"]
html_css_files = ["hml.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # No table of contents on the right of a notebook's page: its formulas, written for Jupyter's wide cells,
    # and its plots get the room (patterns must not overlap: every page not under notebooks/, the gallery).
    "secondary_sidebar_items": {"[!n]**": ["page-toc"], "notebooks/index": ["page-toc"], "notebooks/*/*": []},
}
html_show_sourcelink = False
# MathJax from the site itself (hml_docs copies it into _static/mathjax): nothing is fetched from a CDN.
mathjax_path = "mathjax/tex-chtml.js"
nitpick_ignore = [("py:class", "collections.abc.Callable")]  # a type alias shown as its value (no intersphinx)
html_favicon = "_static/hml.svg"
html_logo = "_static/hml.svg"
# The theme logs an error to the console when no mode is set: start from the reader's system setting.
html_context = {"default_mode": "auto"}
