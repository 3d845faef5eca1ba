"""A student's hosted notebook (Colab, Binder): a fresh environment with only what such a
notebook has, the repository installed by ``pip install``, and the chapters executed (issue 18).

Slow (a new virtual environment, MNIST, the smoke-scale experiments, every chapter): it runs
only when ``INTRIGUING_HOSTED_ROUTE=1``, e.g.
``INTRIGUING_HOSTED_ROUTE=1 .venv/bin/python -m pytest tests/test_hosted_route.py -s``, and
prints how long each step took. With ``INTRIGUING_MODELS_ARCHIVE=<zip>`` (``make book`` writes
one under book/_web/html/downloads) it also installs that archive and executes one chapter at
book scale from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intriguing.plumbing import config
from test_packaging import pins

ROOT = config.repo_root()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.environ.get("INTRIGUING_HOSTED_ROUTE") != "1",
    reason="set INTRIGUING_HOSTED_ROUTE=1 (builds a fresh virtual environment)")]
#: What a hosted notebook already has (issue 18), at the versions the book pins.
HOSTED = ("torch", "torchvision", "numpy", "scipy", "matplotlib", "ipywidgets", "ipykernel",
          "nbclient", "nbformat", "jupyter_client")
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
#: The chapter executed at book scale from an installed models archive.
BOOK_CHAPTER = "random_directions.ipynb"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timings: dict[str, float],
         what: str, timeout: float = 3600) -> None:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    timings[what] = time.perf_counter() - t0
    assert done.returncode == 0, (f"{what}: {' '.join(cmd)}\n{done.stdout[-3000:]}\n"
                                  f"{done.stderr[-3000:]}")


EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=1800, kernel_name="python3",
               resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def test_pip_install_runs_every_chapter_in_a_fresh_environment(tmp_path, capsys):
    timings: dict[str, float] = {}
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ), timings, "venv")
    py = str(venv / "bin" / "python")
    pinned = {k.lower().replace("_", "-"): v for k, v in pins("requirements.txt").items()}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INTRIGUING_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env["OMP_NUM_THREADS"] = "1"
    hosted = [f"{p}=={pinned[p.replace('_', '-')]}" if p.replace("_", "-") in pinned else p
              for p in HOSTED]
    _run([py, "-m", "pip", "install", "--quiet", *hosted], tmp_path, env, timings,
         "hosted packages")
    # The student's one line: the repository itself (a copy: no .venv, no data).
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".venv", "data", "_build", ".git", "node_modules", "_web", "*.pyc"))
    _run([py, "-m", "pip", "install", "--quiet", str(repo)], tmp_path, env, timings,
         "pip install repository")
    work = tmp_path / "work"  # a hosted notebook's folder: data/ lands here
    work.mkdir()
    (work / "data").mkdir()
    env["INTRIGUING_DATA_DIR"] = str(work / "data")
    if (ROOT / "data" / "mnist").is_dir():  # MNIST is verified by hash either way
        shutil.copytree(ROOT / "data" / "mnist", work / "data" / "mnist")
    _run([py, "-m", "intriguing", "data"], work, env, timings, "MNIST")
    _run([py, "-m", "intriguing", "run-all", "--scale", "smoke"], work, env, timings,
         "smoke experiments")
    smoke = dict(env, INTRIGUING_SCALE="smoke")
    (work / "execute.py").write_text(EXECUTE, encoding="utf-8")
    for nb in CHAPTERS:
        _run([py, str(work / "execute.py"), str(nb), str(work)], work, smoke, timings,
             f"chapter {nb.stem} (smoke)")
    archive = os.environ.get("INTRIGUING_MODELS_ARCHIVE")
    if archive and "://" not in archive:  # a path is read from where pytest was started
        archive = str(Path(archive).resolve())
    if archive:
        _run([py, "-m", "intriguing", "models", "install", archive], work, env, timings,
             "models install")
        book = dict(env, INTRIGUING_SCALE="book")
        _run([py, str(work / "execute.py"), str(ROOT / "chapters" / BOOK_CHAPTER), str(work)],
             work, book, timings, f"chapter {Path(BOOK_CHAPTER).stem} (book, from the archive)")
    with capsys.disabled():
        print("\nhosted route, measured:")
        for what, s in timings.items():
            print(f"  {what}: {s:.0f} s")
