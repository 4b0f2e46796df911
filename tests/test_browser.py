"""The course in a real browser: Debian's chromium driven by Playwright (issue 15, item 5).

- JupyterLab (slow): a released homework notebook with the reference answers pasted in is
  run through the UI (Run > Run All Cells); every test cell runs, what it prints shows, and
  no cell shows an error. Lecture 01 is run the same way and a figure renders. nbgrader's
  lab extensions load (its menu is there) and nothing logs a console error.
- The built pages: the home page of a real `make course` build (fast mode, the `made_course`
  fixture shared with tests/test_make_course.py) and every page it links: links resolve,
  every image loads, nothing is fetched from the network (but MathJax, which nbgrader's
  feedback pages load from its CDN), no console errors.

Screenshots go to build/browser/. Skipped, with the reason, without playwright or chromium.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
from answers import answered, graded_test_cells

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "browser"
HW = "hw2_bn_dropout_init"
LECTURE = "01_cnn_anatomy"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
RUN_TIMEOUT_MS = 600_000
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front (lab restores the others, hidden)
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"  # nbgrader's feedback template

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")


class Browser:
    """One fresh chromium profile; every page records console errors, uncaught exceptions
    and requests that left the machine (which are refused)."""

    def __init__(self, playwright, profile: Path):
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS,
            viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.external: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if urlparse(route.request.url).scheme in ("file", "data", "blob") or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def page(self):
        page = self.context.new_page()
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: uncaught {e}"))
        return page

    def close(self):
        self.context.close()


@pytest.fixture
def browser(tmp_path):
    with sync_api.sync_playwright() as playwright:
        session = Browser(playwright, tmp_path / "profile")
        try:
            yield session
        finally:
            session.close()


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ---------------------------------------------------------------------------------------
# JupyterLab
# ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lab_settings(folder: Path) -> None:
    """Every cell in the page (no virtual scrolling), no news or update checks."""
    notebook = folder / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    (notebook / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    notes = folder / "@jupyterlab" / "apputils-extension"
    notes.mkdir(parents=True)
    (notes / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')


@pytest.fixture
def lab(tmp_path):
    """`jupyter lab` on 127.0.0.1 with a token, serving a folder with the answered homework
    and lecture 01; yields its base URL with the token."""
    work = tmp_path / "work"
    work.mkdir()
    released = ROOT / "assignments" / HW / f"{HW}.ipynb"
    nbformat.write(answered(released, ROOT / "solutions" / HW / f"{HW}.ipynb"), work / f"{HW}.ipynb")
    shutil.copy(ROOT / "notebooks" / f"{LECTURE}.ipynb", work)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "nbgrader_config.py").write_text(  # a student's config: the course and its exchange
        "c = get_config()\nc.CourseDirectory.course_id = 'dl-course'\n"
        f"c.Exchange.root = {str(tmp_path / 'exchange')!r}\n")
    (tmp_path / "exchange").mkdir()
    _lab_settings(tmp_path / "settings")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "JUPYTER_PLATFORM_DIRS")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
               COURSE_FAST="1", HOME=str(tmp_path))
    port, token = _free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with open(tmp_path / "lab.log", "w") as log:
        server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for(f"http://127.0.0.1:{port}/api/status?token={token}", server, tmp_path / "lab.log")
            yield f"http://127.0.0.1:{port}", token, work
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _wait_for(url: str, server, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
    pytest.fail(f"jupyter lab did not answer {url.split('?')[0]} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _open_notebook(browser, base: str, token: str, name: str):
    page = browser.page()
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.locator(f"{PANEL} .jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    _accept_kernel(page)
    page.wait_for_selector(f'{PANEL} .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=RUN_TIMEOUT_MS)
    return page


def _accept_kernel(page) -> None:
    """Lab asks which kernel to start when its kernel specs arrive after the notebook (a
    loaded server); a student clicks Select, which keeps the notebook's own kernel."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(timeout=15_000)
    except sync_api.TimeoutError:
        return
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()


def _run_all(page) -> None:
    """Run > Run All Cells, then wait until the kernel has run cells and is idle with none
    queued (Run All stops at a cell that fails)."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Run All Cells")).first.click()
    try:
        _wait_ran(page)
    except sync_api.TimeoutError:
        _shot(page, "run_all_timed_out")
        raise


def _wait_ran(page) -> None:
    page.wait_for_function(
        """panel => {
            const front = document.querySelector(panel);
            const prompts = [...front.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            const idle = front.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]') !== null;
            return idle && prompts.some(p => /[0-9]/.test(p)) && !prompts.some(p => p.includes('*'));
        }""", arg=PANEL, timeout=RUN_TIMEOUT_MS)


def _cells(page) -> list[dict]:
    """Per cell of the notebook in front, in order: its prompt, its outputs' texts and
    whether one shows an error."""
    return page.evaluate(
        """panel => [...document.querySelector(panel).querySelectorAll('.jp-Notebook .jp-Cell')].map(c => ({
                  prompt: (c.querySelector('.jp-InputPrompt') || {}).textContent || '',
                  outputs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText),
                  error: [...c.querySelectorAll(
                              '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                          .some(o => /Traceback|Error/.test(o.innerText)),
              }))""", PANEL)


def _open_assignment_list(page) -> None:
    """Nbgrader > Assignment List: nbgrader's student panel asks the server for the course's
    assignments in the exchange."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Nbgrader$")).click()
    page.locator(".lm-Menu-item", has_text="Assignment List").first.click()
    page.get_by_text("Released assignments").first.wait_for(timeout=60_000)
    _shot(page, "nbgrader_assignment_list")


def _assert_all_ran(cells: list[dict], notebook) -> None:
    prompts = [c["prompt"] for c, source in zip(cells, notebook.cells) if source.cell_type == "code"]
    assert all(re.search(r"\[\d+\]", p) for p in prompts), f"not every code cell ran: {prompts}"


@pytest.mark.slow
def test_homework_and_lecture_run_in_jupyterlab(browser, lab):
    base, token, work = lab
    page = _open_notebook(browser, base, token, f"{HW}.ipynb")
    assert page.locator(".lm-MenuBar-item", has_text="Nbgrader").count() == 1, "nbgrader's lab menu is missing"
    _run_all(page)
    _shot(page, "hw2_run_all")
    notebook = nbformat.read(work / f"{HW}.ipynb", as_version=4)
    cells = _cells(page)
    assert len(cells) == len(notebook.cells), f"the page shows {len(cells)} cells, the notebook {len(notebook.cells)}"
    _assert_all_ran(cells, notebook)
    errors = [i for i, cell in enumerate(cells) if cell["error"]]
    assert not errors, f"cells {errors} show an error: {[cells[i]['outputs'] for i in errors]}"
    for index in graded_test_cells(notebook):
        cell, source = cells[index], notebook.cells[index].source
        assert re.search(r"\[\d+\]", cell["prompt"]), f"test cell {index} did not run: prompt {cell['prompt']!r}"
        if "print(" in source:
            assert any(text.strip() for text in cell["outputs"]), f"test cell {index} printed nothing:\n{source}"

    _open_assignment_list(page)

    page = _open_notebook(browser, base, token, f"{LECTURE}.ipynb")
    _run_all(page)
    figures = page.evaluate("""panel => [...document.querySelector(panel).querySelectorAll('.jp-OutputArea-output img')]
                                   .filter(img => img.complete && img.naturalWidth > 0).length""", PANEL)
    if figures:
        page.locator(f"{PANEL} .jp-OutputArea-output img").first.scroll_into_view_if_needed()
    _shot(page, "lecture01_run_all")
    assert figures > 0, "no figure rendered in lecture 01"
    cells = _cells(page)
    _assert_all_ran(cells, nbformat.read(work / f"{LECTURE}.ipynb", as_version=4))
    errors = [i for i, cell in enumerate(cells) if cell["error"]]
    assert not errors, f"lecture 01 cells {errors} show an error: {[cells[i]['outputs'] for i in errors]}"
    assert not browser.errors, "console errors:\n" + "\n".join(browser.errors)
    assert not browser.external, f"JupyterLab requested the network: {browser.external}"


# ---------------------------------------------------------------------------------------
# The built pages
# ---------------------------------------------------------------------------------------


def _links(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")


def _broken_images(page) -> list[str]:
    return page.evaluate("() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")


def _local(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


@pytest.mark.slow
def test_built_pages_links_images_and_console(browser, made_course):
    _, out, _ = made_course
    home = out / "index.html"
    page = browser.page()
    page.goto(home.as_uri(), wait_until="load")
    _shot(page, "home")
    scroll, width = page.eval_on_selector("div.table", "table => [table.scrollWidth, table.clientWidth]")
    assert scroll <= width, f"the grade table scrolls sideways at 1280 px ({scroll} px in {width} px)"
    pages, missing, broken = [], [], {}
    for url in dict.fromkeys(_links(page)):
        target = _local(url)
        if target is None:
            continue
        if not target.exists():
            missing.append(url)
        elif target.suffix == ".html" and target != home:
            pages.append(target)
    assert pages, f"{home} links no page"
    if _broken_images(page):
        broken[home.name] = _broken_images(page)
    mathjax = []
    for target in pages:
        fetched, logged = len(browser.external), len(browser.errors)
        page.goto(target.as_uri(), wait_until="load")
        _shot(page, target.stem)
        missing += [url for url in _links(page) if _local(url) is not None and not _local(url).exists()]
        if _broken_images(page):
            broken[target.name] = _broken_images(page)
        if out / "feedback" in target.parents:
            mathjax += _feedback_mathjax(browser, fetched, logged)
    assert not missing, f"links to files that do not exist: {missing}"
    assert not broken, f"images that did not load: {broken}"
    assert mathjax, "nbgrader's feedback pages no longer load MathJax: update docs/semester.md and this test"
    offline = sorted(set(browser.external))
    assert not offline, f"the pages fetch from the network (they must work offline): {offline}"
    assert not browser.errors, "console errors:\n" + "\n".join(browser.errors)


def _feedback_mathjax(browser, fetched: int, logged: int) -> list[str]:
    """nbgrader's feedback template loads MathJax from its CDN to typeset the homework's
    formulas (offline they show as TeX source; docs/semester.md says so): take that request
    and the console error its refusal logs out of the page's record, and return them."""
    requests = [url for url in browser.external[fetched:] if url.startswith(MATHJAX_CDN)]
    errors = [e for e in browser.errors[logged:] if "net::ERR_FAILED" in e] if requests else []
    browser.external[fetched:] = [url for url in browser.external[fetched:] if url not in requests]
    browser.errors[logged:] = [e for e in browser.errors[logged:] if e not in errors]
    return requests
