"""JupyterLab as a person uses it: `make lab`'s script opens Lab on a temporary copies folder (profile smoke,
private data, runs, results and figures folders), headless Chromium opens a notebook, runs all its cells from
the Run menu and saves it, and the page must show figures as images, no traceback, the project's kernel and
(section 2) progress bars as widgets, while the committed notebooks stay as they were.

Needs Debian's `chromium` and `chromium-driver` (`scripts/install_browser.sh`, run by `make setup`) and
selenium (the dev extras); without them the browser tests skip, saying so. Select them with `-m browser`.
"""
from __future__ import annotations

import json
import os
import runpy
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB_SCRIPT = ROOT / "scripts" / "lab.py"
KERNEL_DISPLAY_NAME = "Python 3 (AI6103 workbook)"  # what `make setup` installs as the `ai6103` kernel
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
LAB_SETTINGS = {  # this Lab's own settings folder, so a user's settings cannot change what the test sees
    # every cell in the page (Lab's default may leave cells far off screen out of it)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no news or update toast over the page (and no network asked)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def test_lab_copies_are_made_once_and_stale_ones_named(tmp_path):
    """A copy is made only when missing, an edited copy is never overwritten, and a copy made from an older
    committed notebook gets one line saying so."""
    sync_copies = runpy.run_path(str(LAB_SCRIPT))["sync_copies"]
    source, copies = tmp_path / "notebooks", tmp_path / "lab"
    source.mkdir()
    (source / "data.ipynb").write_text("committed v1")
    (source / "learning_rate.ipynb").write_text("committed v1")
    assert sync_copies(source, copies) == []
    assert (copies / "data.ipynb").read_text() == "committed v1"

    (copies / "data.ipynb").write_text("my edits")
    (source / "learning_rate.ipynb").write_text("committed v2")
    stale = sync_copies(source, copies)
    assert (copies / "data.ipynb").read_text() == "my edits"
    assert (copies / "learning_rate.ipynb").read_text() == "committed v1"
    assert len(stale) == 1 and "learning_rate.ipynb" in stale[0] and "delete" in stale[0]

    (copies / "learning_rate.ipynb").unlink()  # the refresh the line describes
    assert sync_copies(source, copies) == []
    assert (copies / "learning_rate.ipynb").read_text() == "committed v2"


# --- the browser ------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git_status_notebooks() -> str:
    return subprocess.run(["git", "status", "--porcelain", "notebooks/"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Debian's chromedriver (never one downloaded by selenium)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("chromium and chromium-driver are not installed (make setup installs them on Debian as root "
                    "or with sudo: scripts/install_browser.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"):
        options.add_argument(argument)
    if os.getuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """`scripts/lab.py --profile smoke` on a temporary copies folder, on a free port with a token; every folder
    the notebooks write to is private to this test."""
    tmp = tmp_path_factory.mktemp("lab")
    env = {k: v for k, v in os.environ.items() if k != "AI6103_PROGRESS"}  # "auto": widgets in Lab
    for name in ("DATA", "RUNS", "RESULTS", "FIGURES", "EXECUTED"):
        env[f"AI6103_{name}_DIR"] = str(tmp / name.lower())
    env["AI6103_DEVICE"] = "cpu"
    # Jupyter's own folders: only the kernels and extensions installed into .venv count, as with `make lab`.
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(tmp / "jupyter" / name.lower())
    for name, settings in LAB_SETTINGS.items():
        path = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))

    port, token = _free_port(), secrets.token_hex(16)
    log = tmp / "lab.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, str(LAB_SCRIPT), "--profile", "smoke", "--dir", str(tmp / "copies"),
                                   "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 90 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": url, "token": token, "copies": tmp / "copies", "log": log}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _click_menu(driver, menu: str, command: str) -> None:
    """Open a menu of Lab's menu bar by its label and click the item of `command`, as a person would."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 20)
    label = f"//div[@id='jp-MainMenu']//li[contains(@class, 'lm-MenuBar-item')][.//div[text()='{menu}']]"
    wait.until(ec.element_to_be_clickable((By.XPATH, label))).click()
    item = f".lm-Menu li.lm-Menu-item[data-command='{command}']"
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, item))).click()


def _tracebacks(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, f".jp-NotebookPanel {STDERR}")]
    return [t for t in texts if "Traceback" in t or "Error" in t.split("\n", 1)[0]]


INDICATOR = ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator"  # its data-status: the kernel's idle / busy


def _kernel_status(driver) -> str | None:
    return driver.execute_script(f"const e = document.querySelector('{INDICATOR}'); return e && e.dataset.status")


def _kernel_name(driver) -> str | None:
    return driver.execute_script("const e = document.querySelector('.jp-NotebookPanel .jp-Toolbar-kernelName');"
                                 "return e && e.textContent.trim()")


def _open(driver, lab: dict, notebook: str) -> None:
    """Open a notebook of the copies folder in a fresh workspace and wait for its kernel."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{lab['url']}/lab/tree/{notebook}?reset&token={lab['token']}")
    WebDriverWait(driver, 90).until(lambda d: _kernel_name(d) not in (None, "", "No Kernel") and
                                    _kernel_status(d) == "idle",
                                    message=f"{notebook}: no kernel started and became idle within 90 s")


def _type_into_parameters(driver, lines: list[str]) -> None:
    """Add lines at the end of the parameters cell (the first code cell), typed as a person types them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    editor = driver.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content")
    editor.click()
    editor.send_keys(Keys.CONTROL, Keys.END)
    for line in lines:
        editor.send_keys(Keys.ENTER, line)
    editor.send_keys(Keys.ESCAPE)


def _run_all_and_save(driver, lab: dict, notebook: str, timeout_s: float) -> None:
    """Run All Cells from the Run menu, wait until every code cell has run (failing at once on a traceback), then
    save the notebook from the File menu."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _click_menu(driver, "Run", "runmenu:run-all")

    def finished(d) -> bool:
        if _tracebacks(d):
            return True
        prompts = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt")]
        return bool(prompts) and all(p.strip("[]: ").isdigit() for p in prompts) and _kernel_status(d) == "idle"

    WebDriverWait(driver, timeout_s, poll_frequency=1).until(
        finished, message=f"{notebook}: Run All did not finish within {timeout_s:.0f} s")
    assert _tracebacks(driver) == [], f"{notebook} failed in Lab:\n" + "\n\n".join(_tracebacks(driver))
    saved = lab["copies"] / notebook
    before = saved.stat().st_mtime_ns
    _click_menu(driver, "File", "docmanager:save")
    WebDriverWait(driver, 20).until(lambda d: saved.stat().st_mtime_ns != before,
                                    message=f"{notebook}: File > Save did not write {saved}")


@pytest.mark.browser
def test_data_notebook_runs_all_in_lab(browser, lab):
    from selenium.webdriver.common.by import By

    committed = (ROOT / "notebooks" / "data.ipynb").read_bytes()
    status = _git_status_notebooks()
    _open(browser, lab, "data.ipynb")
    assert _kernel_name(browser) == KERNEL_DISPLAY_NAME
    _run_all_and_save(browser, lab, "data.ipynb", timeout_s=90)

    images = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img")
    assert len(images) >= 2, "the class proportions and the augmented samples should show as images"
    assert all(image.get_attribute("naturalWidth") not in (None, "0") for image in images)
    saved = json.loads((lab["copies"] / "data.ipynb").read_text())
    assert any(cell.get("outputs") for cell in saved["cells"]), "the run's outputs are saved in the copy"
    assert (ROOT / "notebooks" / "data.ipynb").read_bytes() == committed
    assert _git_status_notebooks() == status
    assert "without encryption" not in lab["log"].read_text()  # the kernel's sockets use CurveZMQ keys


@pytest.mark.browser
def test_edited_learning_rate_notebook_trains_with_progress_widgets(browser, lab):
    """Section 2, its parameters edited in Lab to one short run, trains in the kernel: the progress bar is an
    ipywidget, the figure an image; the edit lives in the copy only."""
    from selenium.webdriver.common.by import By

    committed = (ROOT / "notebooks" / "learning_rate.ipynb").read_bytes()
    status = _git_status_notebooks()
    _open(browser, lab, "learning_rate.ipynb")
    _type_into_parameters(browser, ["learning_rates = [0.05]", "epochs = 1"])  # one run of one epoch: ~15 s
    _run_all_and_save(browser, lab, "learning_rate.ipynb", timeout_s=120)

    bars = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-hprogress .progress-bar")
    assert bars, "the run's progress bar should render as a widget (ipywidgets + @jupyter-widgets/jupyterlab-manager)"
    assert all("progress-bar-success" in bar.get_attribute("class") for bar in bars), "every bar completes"
    assert browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output img"), "the curves figure"
    saved = (lab["copies"] / "learning_rate.ipynb").read_text()
    assert "epochs = 1" in saved and b"epochs = 1" not in committed
    assert (ROOT / "notebooks" / "learning_rate.ipynb").read_bytes() == committed
    assert _git_status_notebooks() == status
