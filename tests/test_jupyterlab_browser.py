"""The course as a learner meets it: JupyterLab in a real browser (headless Chromium, driven by Playwright).

nbval runs kernels without a browser, so a widget that fails to render, or a JupyterLab that does
not start, would pass it. Here JupyterLab starts on 127.0.0.1 with a token, from this venv, on a
copy of the notebooks (JupyterLab saves what it runs; the stored notebooks stay untouched). For
every notebook: run the cells up to and including its first interactive widget with the kernel,
move the widget's first control, and check that the widget draws something, that no cell shows a
traceback and that no "Error displaying widget" appears. A screenshot of each widget goes to
artifacts/browser/ (git-ignored). A last test opens a notebook as a learner who has run nothing
and checks that its stored figures and tables render.

Needs Chromium: Debian's `chromium` package (`apt-get install chromium`), or a Chromium/Chrome
named by COURSE_CHROMIUM. Without one the tests are skipped with that message, and fail instead
where COURSE_REQUIRE_BROWSER=1 (CI sets it, having installed the browser).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "browser"
# the slowest run-up to a widget (notebook 07, one torch thread, a busy machine) takes several minutes
CELL_TIMEOUT_S = float(os.environ.get("COURSE_BROWSER_TIMEOUT_S", 1800))


def chromium_path() -> str | None:
    named = os.environ.get("COURSE_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_browser(reason: str):
    message = (f"{reason}. The JupyterLab browser test needs Chromium: on Debian/Ubuntu "
               "`sudo apt-get install chromium`, or set COURSE_CHROMIUM=/path/to/chrome")
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def widget_cell_index(notebook: dict) -> int:
    """Index (among all cells) of the first code cell that builds a `widgets.explore` widget."""
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"^\s*(widgets\.)?explore\(", source, re.M):
            return index
    raise AssertionError("no explore(...) widget cell")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/, with settings of its own; yields (url, token)."""
    browser = chromium_path()
    if browser is None:
        missing_browser("No Chromium found")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing_browser("The playwright package is not installed (pip install -r requirements.txt)")
    home = tmp_path_factory.mktemp("lab")
    root = home / "course"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell in the page (JupyterLab 4 renders only the visible ones by default)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notifications = home / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = os.urandom(16).hex(), free_port()
    env = {**os.environ, "COURSE_DATA": str(ROOT / "data"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]  # nothing asks the network
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = open(home / "jupyterlab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail("JupyterLab did not start:\n" + (home / "jupyterlab.log").read_text()[-3000:])
        time.sleep(0.5)
    yield url, token, browser, root / "notebooks"
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def chromium(lab):
    from playwright.sync_api import sync_playwright

    args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab[2], headless=True, args=args)
        yield browser
        browser.close()


def open_notebook(chromium, lab, name: str):
    """A new page with notebooks/<name> open in JupyterLab, its kernel started and idle."""
    url, token = lab[:2]
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own, reset: only this notebook is open in the page
    page.goto(f"{url}/lab/workspaces/{Path(name).stem}/tree/notebooks/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    wait_kernel_idle(page, 120)
    return page


def shut_down_kernels(lab) -> None:
    """Stop every kernel the server runs (REST API), so each notebook's memory is freed before the next."""
    url, token = lab[:2]
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=30) as reply:
        sessions = json.load(reply)
    for session in sessions:
        request = urllib.request.Request(f"{url}/api/sessions/{session['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=60).close()


def wait_kernel_idle(page, timeout_s: float) -> None:
    """Wait until the kernel has started and nothing is running or queued ([*] prompts)."""
    page.wait_for_function(
        """() => {
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const busy = status && status.getAttribute('data-status') !== 'idle';
            const queued = [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
            return status !== null && !busy && !queued;
        }""", timeout=timeout_s * 1000, polling=1000)


def errors_on_page(page) -> list[str]:
    found = [e.inner_text()[:800] for e in page.query_selector_all("[data-mime-type='application/vnd.jupyter.stderr']")
             if "Traceback" in e.inner_text() or "Error" in e.inner_text().split("\n")[0]]
    text = page.inner_text(".jp-Notebook")
    if "Error displaying widget" in text:
        found.append("Error displaying widget")
    return found


# what a widget's output area shows: its text, and the pictures it draws (a new figure has a new src)
SHOWN = "el => el.innerText + [...el.querySelectorAll('img')].map(i => i.src.slice(-300)).join('|')" \
        " + [...el.querySelectorAll('svg')].map(s => s.outerHTML.length).join('|')"


def move_first_control(widget) -> str:
    """Change the first control of an ipywidgets `interactive`; return what was done."""
    select = widget.query_selector("select")
    if select is not None:
        options = [o.get_attribute("value") for o in select.query_selector_all("option")]
        current = select.evaluate("s => s.value")
        other = next(o for o in options if o != current)
        select.select_option(other)
        return f"dropdown {current!r} -> {other!r}"
    handle = widget.query_selector(".noUi-handle, .ui-slider-handle")
    if handle is not None:  # one step, away from the end it sits at
        now, top = (float(handle.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemax"))
        key = "ArrowLeft" if now >= top else "ArrowRight"
        handle.focus()
        handle.press(key)
        return f"slider {now:g} one step {'left' if key == 'ArrowLeft' else 'right'}"
    box = widget.query_selector("textarea, input[type='text']")
    if box is not None:
        box.fill("the cat is under the table")
        box.press("Tab")  # continuous_update=False: the value is sent when the box loses focus
        return "text replaced"
    raise AssertionError("no dropdown, slider or text box in the widget")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_widget_runs_in_jupyterlab(chromium, lab, path):
    notebook = json.loads((lab[3] / path.name).read_text())  # the copy JupyterLab serves
    index = widget_cell_index(notebook)
    page = open_notebook(chromium, lab, path.name)
    try:
        page.wait_for_function(f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {len(notebook['cells'])}",
                               timeout=60_000)  # every cell in the page
        cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.locator(".jp-InputPrompt").first.click()  # select the widget cell (command mode)
        page.keyboard.press("Escape")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Above Selected Cell").click()
        page.wait_for_timeout(1000)
        wait_kernel_idle(page, CELL_TIMEOUT_S)
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(1000)
        wait_kernel_idle(page, CELL_TIMEOUT_S)
        assert errors_on_page(page) == [], f"{path.name}: errors before the widget moved"
        widget = cell.locator(".widget-interact").first
        widget.wait_for(timeout=60_000)
        output = widget.locator(".widget-output").first.element_handle()
        before = output.evaluate(SHOWN)
        action = move_first_control(widget.element_handle())
        page.wait_for_function(f"([el, before]) => {{ const now = ({SHOWN})(el); return now !== before && now.trim() !== ''; }}",
                               arg=[output, before], timeout=CELL_TIMEOUT_S * 1000, polling=500)
        wait_kernel_idle(page, CELL_TIMEOUT_S)
        assert errors_on_page(page) == [], f"{path.name}: errors after '{action}'"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        widget.screenshot(path=str(ARTIFACTS / f"{path.stem}.png"))
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{path.stem}_failed.png"))
        raise
    finally:
        page.close()
        shut_down_kernels(lab)


def test_stored_outputs_render_before_anything_runs(chromium, lab):
    """A learner who opens notebook 07 and runs nothing sees its stored figures and tables."""
    path = lab[3] / "07_transformer.ipynb"
    notebook = json.loads(path.read_text())
    stored_images = sum("image/png" in o.get("data", {}) for c in notebook["cells"] for o in c.get("outputs", []))
    stored_tables = sum("<table" in "".join(o.get("data", {}).get("text/html", "")) for c in notebook["cells"]
                        for o in c.get("outputs", []))
    assert stored_images > 0
    page = open_notebook(chromium, lab, path.name)
    try:
        images = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img")
        assert images.count() == stored_images
        for k in range(images.count()):
            assert images.nth(k).evaluate("img => img.complete && img.naturalWidth > 0"), f"image {k} did not load"
        assert page.locator(".jp-OutputArea-output table").count() >= stored_tables
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "stored_outputs_07.png"))
    finally:
        page.close()
        shut_down_kernels(lab)
