"""Installing the package: what ``pip install`` of the repository declares (issue 18).

A student in a hosted notebook runs ``pip install git+URL`` and then the chapters; the package
must declare every third-party module it imports, and refuse a Python its pins do not support.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

import intriguing
from intriguing.plumbing import config

ROOT = config.repo_root()
#: Import name -> distribution name, where they differ.
DISTRIBUTION = {"PIL": "pillow", "IPython": "ipython"}


def pins(name: str) -> dict[str, str]:
    """The exact pins (``name==version`` lines) of a requirements file of the repository."""
    text = (ROOT / name).read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in (ROOT / "src" / "intriguing").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("intriguing", "__future__"):
                    found.setdefault(top, set()).add(f.relative_to(ROOT).as_posix())
    return found


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_every_imported_package_is_a_declared_dependency():
    declared = _names(_pyproject()["project"]["dependencies"])
    imported = _third_party_imports()
    assert {"torch", "numpy", "scipy"} <= set(imported)  # the scan sees the package's imports
    missing = {DISTRIBUTION.get(m, m).lower(): sorted(files)[:2] for m, files in imported.items()
               if DISTRIBUTION.get(m, m).lower() not in declared}
    assert not missing, f"imported by src/intriguing but not in pyproject's dependencies: {missing}"


def test_the_student_requirements_pin_the_dependencies_as_requirements_txt_does():
    full, light = pins("requirements.txt"), pins("requirements-student.txt")
    assert _names(_pyproject()["project"]["dependencies"]) - {"ipython"} <= set(light)
    assert {k: full.get(k) for k in light} == light  # the same versions as the tested build
    build_tools = {"jupyter-book", "nbmake", "playwright", "ruff", "pytest", "myst-nb"}
    assert not build_tools & set(light)


def test_the_oldest_python_is_stated_once_and_enforced():
    spec = _pyproject()["project"]["requires-python"]
    assert spec == ">={}.{}".format(*intriguing.MIN_PYTHON)
    assert sys.version_info >= intriguing.MIN_PYTHON
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "sys.version_info < ({}, {})".format(*intriguing.MIN_PYTHON) in makefile


def test_make_lab_opens_the_chapters_at_the_scale_asked_for():
    if shutil.which("make") is None:
        pytest.skip("no make")
    plan = subprocess.run(["make", "-n", "lab", "SCALE=smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60).stdout
    assert "INTRIGUING_SCALE=smoke" in plan and "jupyter lab" in plan
    assert "--scale book" not in plan  # nothing at book scale is made first
