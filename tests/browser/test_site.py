"""Every notebook of the JupyterLite site, run in headless Chromium with no network but 127.0.0.1.

    pip install -e ".[lite,browser]"        # and Chromium: apt-get install chromium
    python -m pytest tests/browser          # builds the site, serves it, runs every notebook

The site is built by ``lite/build.py`` with ``../shared/pyodide`` (Pyodide 0.27.7, offline) as its
Pyodide, served on 127.0.0.1, and driven by Playwright through the system's Chromium. Chromium's
proxy is a server of this test that logs and refuses every request sent to it: every request
of a page, its workers or the site's service worker for a host other than 127.0.0.1 ends there,
and one is a failure (the browser's own calls home go to another such proxy, and are reported).
Each notebook is opened in a fresh page (a fresh kernel), its committed outputs cleared, and run
top to bottom; then

* no cell raised, and every code cell ran (the notebook's own quality assert among them);
* at least one figure was drawn, in this run, and shows on the page (an ``<img>`` with pixels);
* the notebooks with sliders show them.

A screenshot of each notebook (at its first figure, and at its end) goes to
``$HML_BROWSER_ARTIFACTS`` (default ``build/browser``), with ``timings.json``: the seconds to a ready
kernel and of the run of each notebook (reported, not asserted), and ``requests.log``: every request
the site's server answered. Skipped, with the reason, where
Chromium, ``../shared/pyodide``, Playwright or the ``lite`` extra is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
from offline import chromium_executable, refusing_proxy, serve_folder

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*/*.ipynb"))
#: First, so its kernel start and run are timed on a browser that has run nothing yet.
FIRST = "notebooks/k_means/iris.ipynb"
NOTEBOOKS.sort(key=lambda path: path != FIRST)
RUN_TIMEOUT_S = 420  # the slowest notebook (a network on 1,000 MNIST images) takes about a minute
ARTIFACTS = Path(os.environ.get("HML_BROWSER_ARTIFACTS") or ROOT / "build" / "browser")

pytestmark = pytest.mark.browser


def _pyodide() -> Path | None:
    folder = Path(os.environ.get("HML_PYODIDE") or ROOT.parent / "shared" / "pyodide")
    return folder if (folder / "pyodide.js").is_file() else None


def _missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if chromium_executable() is None:
        return "no Chromium (apt-get install chromium, or set HML_CHROMIUM to its executable)"
    if _pyodide() is None:
        return "no local Pyodide 0.27.7 at ../shared/pyodide (or HML_PYODIDE): the site cannot run offline"
    for module, extra in (
        ("playwright", "browser"),
        ("jupyterlite_core", "lite"),
        ("jupyterlite_pyodide_kernel", "lite"),
    ):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: pip install -e '.[{extra}]'"
    return None


MISSING = _missing()
if MISSING:
    pytest.skip(f"browser test skipped: {MISSING}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402  (after the skip: an optional dependency)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built by the documented command with the local Pyodide (the seconds it took go into the
    timings), or ``$HML_LITE_SITE``, one built so before (to run the test where pip cannot reach PyPI)."""
    if os.environ.get("HML_LITE_SITE"):
        return Path(os.environ["HML_LITE_SITE"])
    output = tmp_path_factory.mktemp("lite") / "site"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "lite" / "build.py"), "--pyodide", str(_pyodide()), "--output", str(output)],
        check=True,
        cwd=ROOT,
    )
    TIMINGS["build_s"] = round(time.perf_counter() - start, 1)
    return output


@pytest.fixture(scope="module")
def network(site):
    """(base URL of the site on 127.0.0.1, its server, the browser's own refusing proxy)."""
    server = serve_folder(site)
    browser_itself = refusing_proxy()
    yield f"http://127.0.0.1:{server.server_port}", server, browser_itself
    for each in (server, browser_itself):
        each.shutdown()


@pytest.fixture(scope="module")
def browser(network):
    _, server, browser_itself = network
    with sync_playwright() as playwright:
        # The browser's own calls home (component updates, network time, accounts: no page's doing)
        # go to a refusing proxy of their own; they are reported, not counted against the site.
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable(),
            args=[
                f"--proxy-server=http://127.0.0.1:{browser_itself.server_address[1]}",
                # Autofill asks Google about the page's input fields through the page's own proxy: off.
                "--disable-features=AutofillServerCommunication",
            ],
        )
        yield chromium
        chromium.close()
    TIMINGS["browser_background_requests_refused"] = sorted(set(browser_itself.refused))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
    (ARTIFACTS / "requests.log").write_text("".join(f"{path}\n" for path in server.served))
    print("\n" + json.dumps(TIMINGS, indent=2))


#: What the report says: build seconds, and per notebook the seconds to a ready kernel and of its run,
#: and the last lines it printed (its quality check's verdict, where it has one).
TIMINGS: dict[str, object] = {}

_RESULTS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.map((cell, index) => {
    const model = cell.model;
    const outputs = model.type === "code" ? model.outputs.toJSON() : [];
    return {
      index,
      type: model.type,
      source: model.sharedModel.getSource(),
      executionCount: model.type === "code" ? model.executionCount : null,
      errors: outputs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`),
      images: outputs.filter((o) => o.data && o.data["image/png"]).length,
      printed: outputs.filter((o) => o.output_type === "stream").map((o) => o.text).join(""),
    };
  });
}"""

#: In the page, once its notebook is there: wait for the kernel, clear the committed outputs, run every
#: cell; the times (ms since the page began to load) in window.__hml.
_RUN_ALL = """() => {
  const app = window.jupyterapp, context = app.shell.currentWidget.sessionContext;
  const state = (window.__hml = {});
  context.ready
    .then(() => context.session.kernel.info)
    .then(() => { state.ready = performance.now(); return app.commands.execute("notebook:clear-all-cell-outputs"); })
    .then(() => { state.start = performance.now(); return app.commands.execute("notebook:run-all-cells"); })
    .then((ok) => { state.ok = ok; }, (error) => { state.error = String(error); })
    .finally(() => { state.done = performance.now(); });
}"""


class Page:
    """One notebook (or none) open in a fresh browser context of its own: a fresh kernel, its own refusing
    proxy for every host but 127.0.0.1, and a log of every request its pages and workers make."""

    def __init__(self, browser, base: str, path: str) -> None:
        self.path, self.started = path, time.perf_counter()
        self.proxy = refusing_proxy()
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 1000},
            proxy={"server": f"http://127.0.0.1:{self.proxy.server_address[1]}", "bypass": "127.0.0.1"},
        )
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.goto(f"{base}/notebooks/index.html?path={urllib.parse.quote(path)}")
        self.page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=120_000)

    @staticmethod
    def _only_loopback(route) -> None:  # what the pages and their workers ask for; the proxy sees the rest
        host = urllib.parse.urlsplit(route.request.url).hostname
        route.continue_() if host in ("127.0.0.1", None) else route.abort("blockedbyclient")

    def outside(self) -> list[str]:
        """Every request for a host but 127.0.0.1 (data: and blob: URLs are the page's own memory)."""
        urls = [url for url in self.requests if urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss")]
        return [url for url in urls if urllib.parse.urlsplit(url).hostname != "127.0.0.1"] + list(self.proxy.refused)

    def state(self) -> dict:
        return self.page.evaluate("() => window.__hml || {}")

    def execute(self, code: str) -> tuple[str, list[str]]:
        """Run ``code`` in the notebook's kernel; its stdout and its errors."""
        return self.page.evaluate(
            """async (code) => {
              const context = window.jupyterapp.shell.currentWidget.sessionContext;
              await context.ready;
              const out = [], errors = [];
              const future = context.session.kernel.requestExecute({ code });
              future.onIOPub = (msg) => {
                if (msg.header.msg_type === "stream") out.push(msg.content.text);
                if (msg.header.msg_type === "error") errors.push(`${msg.content.ename}: ${msg.content.evalue}`);
              };
              await future.done;
              return [out.join(""), errors];
            }""",
            code,
        )

    def show_cell(self, index: int, part: str = "") -> None:
        """Scroll cell ``index`` into view (the notebook renders only the cells near the view), at the
        element of it that ``part`` selects (say, its first image), else at its end."""
        self.page.evaluate(
            """async ([index, part]) => {
              const notebook = window.jupyterapp.shell.currentWidget.content;
              for (let attempt = 0; attempt < 3; attempt++) {  // heights are estimates until cells render
                await notebook.scrollToItem(index, "center");
                await new Promise((resolve) => setTimeout(resolve, 300));
                const node = notebook.widgets[index].node;
                (part && node.querySelector(part) || node).scrollIntoView({ block: part ? "center" : "end" });
              }
            }""",
            [index, part],
        )
        self.page.wait_for_timeout(500)

    def drawn_images(self, index: int) -> int:
        """Images of cell ``index`` shown on the page with pixels (not merely in the notebook's model)."""
        return self.page.evaluate(
            """(index) => {
              const node = window.jupyterapp.shell.currentWidget.content.widgets[index].node;
              return [...node.querySelectorAll(".jp-OutputArea-output img")]
                .filter((img) => img.complete && img.naturalWidth > 0).length;
            }""",
            index,
        )

    def collect(self) -> dict:
        """What the run left: the cells, figures shown, sliders shown, times, outside requests; screenshots."""
        state = self.state()
        cells = self.page.evaluate(_RESULTS)
        stem = self.path.removeprefix("notebooks/").removesuffix(".ipynb").replace("/", "-")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        figures = [cell["index"] for cell in cells if cell["images"]]
        drawn = 0
        if figures:
            self.show_cell(figures[0], ".jp-OutputArea-output img")
            drawn = self.drawn_images(figures[0])
            self.page.screenshot(path=ARTIFACTS / f"{stem}.png")
        sliders = None
        if any("import ipywidgets" in cell["source"] for cell in cells):
            maker = next(c["index"] for c in cells if "widgets.interact" in c["source"])
            self.show_cell(maker, ".widget-slider")
            sliders = self.page.locator(".widget-slider").count()
            self.page.screenshot(path=ARTIFACTS / f"{stem}-sliders.png")
        self.show_cell(len(cells) - 1)
        self.page.screenshot(path=ARTIFACTS / f"{stem}-end.png")
        return {
            "cells": cells,
            "figures": figures,
            "drawn": drawn,
            "sliders": sliders,
            "outside": self.outside(),
            "error": state.get("error"),
            "kernel_ready_s": round(state["ready"] / 1000, 1) if "ready" in state else None,
            "run_all_s": round((state["done"] - state["start"]) / 1000, 1) if "start" in state else None,
        }

    def close(self) -> None:
        self.context.close()
        self.proxy.shutdown()


#: Notebooks run at once after the first: two, one per core of CI's machine (each kernel is one thread).
AT_ONCE = int(os.environ.get("HML_BROWSER_AT_ONCE", "2"))


@pytest.fixture(scope="module")
def runs(browser, network, request) -> dict[str, dict]:
    """Every notebook selected (``-k``) run once: the first alone (the times reported for a learner's
    first notebook), then the others :data:`AT_ONCE` at a time (their times include sharing the machine)."""
    base, _, _ = network
    selected = {
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_the_notebook_runs_in_the_browser"
    }
    results: dict[str, dict] = {}
    pending, active = [path for path in NOTEBOOKS if path in selected], []
    while pending or active:
        while pending and len(active) < AT_ONCE and all(page.path != FIRST for page in active):
            path = pending.pop(0)
            try:
                page = Page(browser, base, path)
                page.page.evaluate(_RUN_ALL)
                active.append(page)
            except Exception as error:  # a page that never came up fails its own test, not the others
                results[path] = {"failure": f"{type(error).__name__}: {error}"}
        for page in list(active):
            state, waited = page.state(), time.perf_counter() - page.started
            if "done" in state or waited > RUN_TIMEOUT_S:
                try:
                    results[page.path] = (
                        page.collect() if "done" in state else {"failure": f"still running after {waited:.0f} s"}
                    )
                except Exception as error:
                    results[page.path] = {"failure": f"{type(error).__name__}: {error}"}
                finally:
                    page.close()
                active.remove(page)
                result = results[page.path]
                printed = [c["printed"].strip() for c in result.get("cells", []) if c["printed"].strip()]
                TIMINGS[page.path] = {key: result.get(key) for key in ("kernel_ready_s", "run_all_s")}
                TIMINGS[page.path]["last_printed"] = printed[-1].splitlines()[-3:] if printed else None
        time.sleep(0.5)
    return results


@pytest.mark.parametrize("path", NOTEBOOKS)
def test_the_notebook_runs_in_the_browser(runs, path):
    result = runs[path]
    assert "failure" not in result, f"{path}: {result.get('failure')}"
    cells = result["cells"]
    errors = [f"cell {c['index']}: {e}" for c in cells for e in c["errors"]]
    assert not errors, f"{path}: cells raised in the browser:\n" + "\n".join(errors)
    assert result["error"] is None, f"{path}: running it failed: {result['error']}"
    not_run = [c["index"] for c in cells if c["type"] == "code" and c["executionCount"] is None]
    assert not not_run, f"{path}: cells {not_run} did not run"
    checks = [c["index"] for c in cells if c["type"] == "code" and "\nassert " in "\n" + c["source"]]
    assert all(cells[i]["executionCount"] is not None and not cells[i]["errors"] for i in checks)
    assert result["figures"], f"{path}: no cell drew a figure"
    assert result["drawn"] >= 1, (
        f"{path}: the figure of cell {result['figures'][0]} is in the notebook, not on the page"
    )
    assert result["sliders"] is None or result["sliders"] >= 1, f"{path}: its sliders are not shown"
    assert not result["outside"], f"{path}: requests for hosts other than 127.0.0.1: {result['outside']}"


_LIBRARY_CHECK = """
import json, os, sys, warnings
import numpy as np
import hml
from hml._platform import can_start_threads

os.environ["HML_DATA_MIRROR"] = {mirror!r}  # the site's files, downloaded by XMLHttpRequest
facts = {{"platform": sys.platform, "intp": np.dtype(np.intp).name, "threads": can_start_threads()}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    iris = hml.datasets.load_iris(data_home="/drive/downloaded")  # into JupyterLite's own file system
    again = hml.datasets.load_iris(data_home="/drive/downloaded", download=False)  # from that cache
    digits = hml.datasets.load_mnist("test", data_home="/tmp/downloaded")  # 1.6 MB: a progress bar
facts["warnings"] = [f"{{w.category.__name__}}: {{w.message}}" for w in caught]
facts["iris"] = [list(iris.data.shape), iris.target.dtype.name, np.bincount(iris.target).tolist()]
facts["cache_identical"] = bool((again.data == iris.data).all())
facts["digits"] = np.bincount(digits.target).tolist()
facts["modes"] = {{}}
model = hml.KMeans(n_clusters=3, random_state=0).fit(iris.data[:, 2:])
for folder in ("/drive", "/tmp"):
    path = model.save(f"{{folder}}/kmeans.npz")
    facts["modes"][folder] = oct(os.stat(path).st_mode & 0o777)
    loaded = hml.load(path)
    facts["loaded_" + folder] = bool((loaded.predict(iris.data[:, 2:]) == model.labels_).all())
print(json.dumps(facts))
"""


def test_downloads_saved_models_and_the_platform_in_the_browser(browser, network):
    """The library's browser paths for real: downloads by XMLHttpRequest from the site's files into /drive
    (where a file still open reads back empty) and into memory, the cache read again, a model saved and
    loaded on both, int32 class codes, no threads and no warning about them."""
    base, _, _ = network
    page = Page(browser, base, FIRST)
    try:
        out, errors = page.execute('import piplite\nawait piplite.install(["homemade-ml"], index_urls=[])')
        assert not errors, errors
        out, errors = page.execute(_LIBRARY_CHECK.format(mirror=f"{base}/files/data"))
        outside = page.outside()
    finally:
        page.close()
    assert not errors, errors
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["platform"] == "emscripten" and facts["intp"] == "int32" and facts["threads"] is False
    assert facts["iris"] == [[150, 4], "int32", [50, 50, 50]] and facts["cache_identical"]
    assert facts["digits"] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's test set
    assert facts["warnings"] == [], facts["warnings"]
    assert facts["loaded_/drive"] and facts["loaded_/tmp"], facts
    assert all(int(mode, 8) & 0o600 == 0o600 for mode in facts["modes"].values()), facts["modes"]
    assert not outside, outside
