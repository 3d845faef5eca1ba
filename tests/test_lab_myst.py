"""JupyterLab renders the chapters' MyST (issue 18): admonitions, exercises and folded
solutions, not raw ``:::{admonition}`` text. Opens a chapter in a real JupyterLab (the
project's environment, jupyterlab-myst) in headless Chromium."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from intriguing.plumbing import config
from test_browser import browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = config.repo_root()
JUPYTER = Path(sys.executable).with_name("jupyter")
CHAPTER = "chapters/model_zoo.ipynb"  # admonitions, exercises and solutions
RAW = (":::{", "{solution}", "{exercise}", "```{")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    done = subprocess.run([str(JUPYTER), "labextension", "list"], capture_output=True,
                          text=True, timeout=120)
    listing = done.stdout + done.stderr
    if "jupyterlab-myst" not in listing:
        pytest.skip("jupyterlab-myst is not installed (requirements.txt pins it)")
    assert "not compatible" not in listing, listing
    port, token = _free_port(), secrets.token_hex(8)
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, INTRIGUING_SCALE="smoke"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_jupyterlab_renders_the_chapters_myst_with_solutions_folded(lab, browser):  # noqa: F811
    base, token = lab
    page = browser.new_page(viewport={"width": 1280, "height": 2000})
    try:
        page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}", timeout=120_000)
        page.wait_for_selector(".jp-Notebook aside.myst-admonition", timeout=120_000)
        page.wait_for_selector(".jp-Notebook details.myst-exercise", state="attached",
                               timeout=120_000)
        text = page.inner_text(".jp-Notebook")
        assert "Learning objectives" in page.inner_text(".jp-Notebook aside.myst-admonition")
        assert not [r for r in RAW if r in text], "raw MyST shown as text"
        solutions = page.evaluate("() => Array.from(document.querySelectorAll("
                                  "'.jp-Notebook details.myst-exercise')).map(d => d.open)")
        assert solutions and not any(solutions), f"solutions open: {solutions}"
    finally:
        page.close()
