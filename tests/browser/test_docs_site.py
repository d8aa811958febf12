"""The documentation site in headless Chromium, with no network but 127.0.0.1.

    pip install -e ".[docs]" && python -m sphinx -W --keep-going -n docs docs/_build/html   # README
    pip install -e ".[browser]" && python -m pytest tests/browser/test_docs_site.py

The built site (``$HML_DOCS_SITE``, default ``docs/_build/html``) is served on 127.0.0.1 and pages of
each kind are opened: the home page, an estimator's API page with a formula, a math page, a notebook
page with plots, the notebook gallery and the benchmarks guide. On each,

* every formula is typeset by MathJax (served by the site itself): the page's math elements are all
  MathJax output, and no raw TeX delimiter is left in the text;
* every image has loaded (pixels, not a broken icon);
* the console shows no error, and the page asks no host but 127.0.0.1 for anything (a request for
  another host is logged and refused; one is a failure).

And every notebook and math page, 1,024 px wide (``$HML_DOCS_NARROW``): no display formula is wider than its
column.

Screenshots go to ``$HML_BROWSER_ARTIFACTS/docs`` (default ``build/browser/docs``). Skipped, with the
reason, where Chromium or Playwright is missing, or the site is not built and ``HML_DOCS_SITE`` is unset
(with ``HML_DOCS_SITE`` set, a missing site is a failure: CI sets it).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pytest
from offline import chromium_executable, refusing_proxy, serve_folder

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("HML_DOCS_SITE") or ROOT / "docs" / "_build" / "html")
ARTIFACTS = Path(os.environ.get("HML_BROWSER_ARTIFACTS") or ROOT / "build" / "browser") / "docs"

#: page -> the fewest typeset formulas it must show (0: it need not have any).
PAGES = {
    "index.html": 0,
    "api/generated/hml.LinearRegression.html": 1,
    "math/linear-regression.html": 5,
    "math/k-means.html": 5,
    "notebooks/k_means/iris.html": 1,
    "notebooks/index.html": 0,
    "guides/benchmarks.html": 0,
}

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if chromium_executable() is None:
        return "no Chromium (apt-get install chromium, or set HML_CHROMIUM to its executable)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[browser]'"
    if not (SITE / "index.html").is_file() and not os.environ.get("HML_DOCS_SITE"):
        return f"the documentation is not built at {SITE}: run the README's Documentation command"
    return None


MISSING = _missing()
if MISSING:
    pytest.skip(f"documentation browser test skipped: {MISSING}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402  (after the skip: an optional dependency)

#: The page's math after MathJax has run: formulas typeset (mjx-container), and any math element Sphinx
#: wrote that MathJax left alone (still holding its TeX).
_MATH = """async () => {
  if (window.MathJax?.startup?.promise) { await window.MathJax.startup.promise; }
  const text = document.querySelector("main")?.innerText ?? document.body.innerText;
  return {
    mathjax: Boolean(window.MathJax?.version),
    typeset: document.querySelectorAll("mjx-container").length,
    from_docstrings: document.querySelectorAll(".hml-formula mjx-container").length,
    untypeset: [...document.querySelectorAll(".math")].filter((e) => !e.querySelector("mjx-container"))
      .map((e) => e.textContent.slice(0, 80)),
    raw: ["\\\\(", "\\\\[", "$$"].filter((delimiter) => text.includes(delimiter)),
  };
}"""

_IMAGES = """() => [...document.images].map((img) => ({src: img.currentSrc || img.src, loaded: img.complete && img.naturalWidth > 0}))"""


@pytest.fixture(scope="module")
def site_url():
    assert (SITE / "index.html").is_file(), f"HML_DOCS_SITE={SITE} holds no built site"
    server = serve_folder(SITE)
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable(), args=["--disable-features=AutofillServerCommunication"]
        )
        yield chromium
        chromium.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_the_page_renders_offline(browser, site_url, path):
    proxy = refusing_proxy()  # every host but 127.0.0.1 goes here, logged and refused
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        proxy={"server": f"http://127.0.0.1:{proxy.server_address[1]}", "bypass": "127.0.0.1"},
    )
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    missing: list[str] = []
    page.on(
        "response",
        lambda response: missing.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    try:
        page.goto(f"{site_url}/{path}", wait_until="networkidle")
        math = page.evaluate(_MATH)
        page.wait_for_timeout(300)  # MathJax's fonts, once the page is typeset
        images = page.evaluate(_IMAGES)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / (path.replace("/", "_").removesuffix(".html") + ".png"), full_page=True)
    finally:
        context.close()
        proxy.shutdown()

    outside = [
        url
        for url in requests
        if urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss")
        and urllib.parse.urlsplit(url).hostname != "127.0.0.1"
    ] + list(proxy.refused)
    assert not outside, f"{path} asked other hosts: {outside}"
    assert not missing, f"{path}: requests that failed: {missing}"
    assert not console_errors, f"{path}: console errors {console_errors}"
    broken = [image["src"] for image in images if not image["loaded"]]
    assert not broken, f"{path}: images that did not load: {broken}"
    assert math["mathjax"] or PAGES[path] == 0, f"{path}: MathJax did not load"
    assert math["typeset"] >= PAGES[path], f"{path}: {math['typeset']} formulas typeset, expected {PAGES[path]}+"
    assert not math["untypeset"], f"{path}: formulas MathJax did not typeset: {math['untypeset']}"
    assert not math["raw"], f"{path}: raw TeX delimiters {math['raw']} left in the text"
    if path.startswith("notebooks/") or path == "guides/benchmarks.html":
        assert images, f"{path}: no image (the plots, the thumbnails, the chart)"
    if path.startswith("math/"):
        assert math["from_docstrings"], f"{path}: no formula shown from a docstring (the hml-formula directive)"


#: The narrowest window the pages are laid out for without a wide formula cut off or scrolled sideways: a
#: small laptop's.
NARROW = int(os.environ.get("HML_DOCS_NARROW", "1024"))

#: The display formulas MathJax typeset wider than the column that holds them.
_WIDE = """async () => {
  if (window.MathJax?.startup?.promise) { await window.MathJax.startup.promise; }
  return [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter((c) => c.scrollWidth > c.clientWidth + 1)
    .map((c) => `${c.scrollWidth} px in ${c.clientWidth}: ${c.textContent.slice(0, 60)}`);
}"""


def test_no_display_formula_is_wider_than_its_column(browser, site_url):
    """Every notebook page and math page, at a small laptop's width: no display formula overflows the text
    column (a long one is split over lines in the notebook or docstring)."""
    pages = [
        path.relative_to(SITE).as_posix()
        for pattern in ("notebooks/*/*.html", "math/*.html")
        for path in sorted(SITE.glob(pattern))
    ]
    assert len(pages) >= 13 + 6, f"{SITE}: only {len(pages)} notebook and math pages"
    context = browser.new_context(viewport={"width": NARROW, "height": 900})
    page = context.new_page()
    wide = {}
    try:
        for path in pages:
            page.goto(f"{site_url}/{path}", wait_until="load")
            found = page.evaluate(_WIDE)
            if found:
                wide[path] = found
    finally:
        context.close()
    assert not wide, f"display formulas wider than the column at {NARROW} px: {wide}"
