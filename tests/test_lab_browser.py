"""The interactive notebooks in a real JupyterLab, driven by a real browser.

A Jupyter server (127.0.0.1, a token) serves notebook 05 and notebook 02 parameterised with a
smoke run and ``interactive=True``; playwright drives Debian's ``/usr/bin/chromium`` (no browser
download). The test runs each notebook, moves a widget and asserts that what is displayed
changes as it should: the confusion matrix must equal the one computed here from the run's
predictions at the new threshold; the slice viewer's image must change with the slice. The same
check after the slider's callback is broken in the running kernel must fail, so the test cannot
pass on a page that merely renders.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (apt-get install chromium)"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (dev extra)")

# run in the notebook's kernel: every FloatSlider forgets its observers (a broken callback)
BREAK_CALLBACK = ("from ipywidgets.widgets.widget import _instances\n"
                  "for _w in list(_instances.values()):\n"
                  "    if type(_w).__name__ == 'FloatSlider':\n"
                  "        _w._trait_notifiers.get('value', {}).get('change', []).clear()\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(stem: str, run_dir: Path, out: Path, *, prepend: str = "") -> Path:
    from papermill.parameterize import parameterize_notebook

    from alnm_core.run.pipeline import load_notebook, notebook_source

    nb = load_notebook(notebook_source(stem))
    for cell in nb.cells:  # as papermill's loader does
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb = parameterize_notebook(nb, {"run_dir": str(run_dir), "interactive": True})
    if prepend:
        nb.cells.insert(0, nbformat.v4.new_code_cell(prepend))
    nbformat.write(nb, out)
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server with the ``alnm`` kernel registered in a private Jupyter path."""
    from alnm_core.lab import lab_command, register_kernel

    root = tmp_path_factory.mktemp("lab")
    (root / "nb").mkdir()
    register_kernel(root / "prefix")
    env = {**os.environ, "JUPYTER_PATH": str(root / "prefix" / "share" / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_DATA_DIR": str(root / "data"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "ws")}
    # render every cell (no windowing: off-screen outputs stay in the page) and ask no news
    settings = root / "user-settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none"}')
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}')
    port, token = _free_port(), "alnm-test-token"
    cmd = lab_command(root / "nb", port=port, token=token, open_browser=False) + [
        "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}"]
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield {"url": url, "token": token, "dir": root / "nb", "log": root / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


def _open_and_run(browser, lab, name: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own, reset: nothing restored from an earlier page
    page.goto(f"{lab['url']}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={lab['token']}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                           timeout=60_000)
    kernel = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
    assert kernel == "alnm"  # the notebook's kernel, registered under the fixed name
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    return page


def _close(page) -> None:
    """Shut the notebook's kernel down and close the page."""
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    page.close()


def _set_slider(page, slider, value: str) -> None:
    """Type a value into an ipywidgets slider's readout, as a user would."""
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def _confusion(page) -> list[int]:
    """The four cells of the displayed confusion matrix (waits while the output redraws)."""
    page.wait_for_function("() => document.querySelectorAll('table.alnm-confusion td').length === 4",
                           timeout=30_000)
    cells = page.locator("table.alnm-confusion td").all_inner_texts()
    return [int(c) for c in cells]


def _move_threshold(page, value: float, timeout_s: float = 20) -> bool:
    """Set the threshold; True when the display shows it (i.e. the callback redrew)."""
    slider = page.locator(".widget-slider", has_text="threshold").first
    _set_slider(page, slider, f"{value:.2f}")
    try:
        page.wait_for_function("(v) => { const e = document.querySelector('.alnm-threshold');"
                               " return e && e.innerText.includes('threshold ' + v); }",
                               arg=f"{value:.2f}", timeout=timeout_s * 1000)
        return True
    except playwright.TimeoutError:
        return False


def _expected_confusion(run_dir: Path, model_col: str, t: float) -> list[int]:
    from alnm_core.runfolder.paths import RunPaths

    pred = pd.read_csv(RunPaths(run_dir).predictions("ensemble"))
    test = pred[pred.split == "test"]
    y, p = test.label.to_numpy(int), (test[model_col].to_numpy(float) >= t).astype(int)
    return [int(((y == 1) & (p == 1)).sum()), int(((y == 1) & (p == 0)).sum()),
            int(((y == 0) & (p == 1)).sum()), int(((y == 0) & (p == 0)).sum())]


def _threshold_that_changes(run_dir: Path, model_col: str, start: float) -> float:
    """A threshold on the slider's grid whose confusion matrix differs from ``start``'s."""
    before = _expected_confusion(run_dir, model_col, start)
    for t in np.round(np.arange(0.05, 0.96, 0.05), 2):
        if _expected_confusion(run_dir, model_col, t) != before:
            return float(t)
    pytest.skip("every threshold gives the same confusion matrix on this run")


def test_threshold_slider_updates_the_metrics(smoke_run, lab, browser, tmp_path):
    from alnm_core.model_registry import HEADLINE

    _notebook("05_roc_delong", smoke_run.root, lab["dir"] / "05_interactive.ipynb")
    page = _open_and_run(browser, lab, "05_interactive.ipynb")
    page.wait_for_selector("table.alnm-confusion", state="attached", timeout=300_000)
    page.locator("table.alnm-confusion").scroll_into_view_if_needed()
    shown = page.locator(".alnm-threshold").inner_text()
    start = float(shown.split("threshold ")[1].split()[0])
    assert "frozen threshold" in shown  # the frozen (Youden) threshold is marked
    assert shown.startswith("Multiparametric MRI")  # the headline model comes first
    assert _confusion(page) == _expected_confusion(smoke_run.root, HEADLINE, start)
    metrics_before = page.locator("table.alnm-metrics").inner_text()

    target = _threshold_that_changes(smoke_run.root, HEADLINE, start)
    assert _move_threshold(page, target), "the threshold display did not follow the slider"
    assert _confusion(page) == _expected_confusion(smoke_run.root, HEADLINE, target)
    assert page.locator("table.alnm-metrics").inner_text() != metrics_before
    page.screenshot(path=str(tmp_path / "threshold_slider.png"), full_page=False)
    assert (tmp_path / "threshold_slider.png").stat().st_size > 10_000

    # the same check must fail when the slider's callback is broken in the running kernel
    shown = _confusion(page)
    page.evaluate("(code) => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                  ".requestExecute({code: code}).done", BREAK_CALLBACK)
    again = _threshold_that_changes(smoke_run.root, HEADLINE, target)
    assert not _move_threshold(page, again, timeout_s=6)
    assert _confusion(page) == shown
    _close(page)


def test_slice_viewer_scrolls_slices(smoke_run, lab, browser, tmp_path):
    _notebook("02_roi_cropping", smoke_run.root, lab["dir"] / "02_interactive.ipynb")
    page = _open_and_run(browser, lab, "02_interactive.ipynb")
    slider = page.locator(".widget-slider", has_text="slice").first
    slider.wait_for(state="attached", timeout=300_000)
    slider.scroll_into_view_if_needed()
    viewer_img = page.locator(".widget-vbox .jp-OutputArea-output img").last
    viewer_img.wait_for(state="attached", timeout=60_000)
    before = viewer_img.get_attribute("src")
    current = int(slider.locator(".widget-readout").inner_text())
    _set_slider(page, slider, str(current - 1 if current > 0 else current + 1))
    page.wait_for_function("(b) => { const imgs = document.querySelectorAll('.widget-vbox .jp-OutputArea-output img');"
                           " return imgs.length && imgs[imgs.length - 1].src !== b; }", arg=before, timeout=30_000)
    page.screenshot(path=str(tmp_path / "slice_viewer.png"))
    _close(page)


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def repo_lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it: on the repository's notebooks/ (a link JupyterLab
    resolves into the package), jupytext .py files opened as notebooks, autosave off (the test
    must not write the sources)."""
    from alnm_core.lab import lab_command, register_kernel, write_lab_settings

    root = tmp_path_factory.mktemp("repo-lab")
    register_kernel(root / "prefix")
    write_lab_settings(root / "prefix")
    env = {**os.environ, "JUPYTER_PATH": str(root / "prefix" / "share" / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_DATA_DIR": str(root / "data"),
           "JUPYTER_RUNTIME_DIR": str(root / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "ws"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "user-settings")}
    settings = root / "user-settings"
    # as `make lab`'s overrides: .py files open as notebooks (jupytext); here also no autosave
    for plugin, body in (("notebook-extension/tracker", '{"windowingMode": "none"}'),
                         ("docmanager-extension/plugin",
                          '{"autosave": false, "defaultViewers": {"python": "Jupytext Notebook"}}')):
        f = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(body)
    port, token = _free_port(), "alnm-readme-token"
    cmd = lab_command((REPO / "notebooks").resolve(), port=port, token=token, open_browser=False) + [
        "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}"]
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "server.log").read_text()[-2000:])
                time.sleep(0.5)
        yield {"url": url, "token": token, "log": root / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_the_readme_instruction_opens_the_demo_run_in_lab(smoke_run, repo_lab, browser):
    """As the README says: open notebook 05 in JupyterLab, set run_dir = "reports/<run>" and
    interactive = True in its parameters cell, run it. The notebook is not marked modified when
    it opens, the run folder is found relative to the repository (JupyterLab's kernel runs in
    the package's notebooks folder), the slider shows, and nothing is written into the package
    or the notebook's source."""
    name = f"lab-test-{os.getpid()}"
    link = REPO / "reports" / name
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(smoke_run.root, target_is_directory=True)
    src = REPO / "alnm_core" / "notebooks" / "05_roc_delong.py"
    before_src, before_pkg = src.read_bytes(), sorted(p.name for p in src.parent.iterdir())
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{repo_lab['url']}/lab/workspaces/readme/tree/05_roc_delong.py?reset&token={repo_lab['token']}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.content"
                               " && window.jupyterapp.shell.currentWidget.content.widgets"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                               timeout=90_000)
        time.sleep(2)  # let the document settle as a user would see it
        assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty") is False
        # the README's instruction, typed into the parameters cell
        page.evaluate("""(runDir) => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            for (const cell of nb.widgets) {
                const tags = cell.model.getMetadata('tags') || [];
                if (tags.includes('parameters')) {
                    const src = cell.model.sharedModel.getSource()
                        .replace(/run_dir: str = "[^"]*"/, `run_dir: str = "${runDir}"`)
                        .replace(/interactive: bool = False/, 'interactive: bool = True');
                    cell.model.sharedModel.setSource(src);
                }
            }
        }""", f"reports/{name}")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector("table.alnm-confusion", state="attached", timeout=300_000)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'], "
                              ".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']").count()
        assert errors == 0
        assert "Multiparametric MRI" in page.locator(".alnm-threshold").inner_text()
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()
    finally:
        link.unlink()
    assert src.read_bytes() == before_src  # the source was not saved
    # no run built in the package, and no .ipynb_checkpoints (Lab checkpoints what it opens: in the cache)
    assert sorted(p.name for p in src.parent.iterdir()) == before_pkg
