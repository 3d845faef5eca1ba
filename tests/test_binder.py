"""The Binder environment (issue 18): CPU-only PyTorch, the students' pins, smoke scale."""

from __future__ import annotations

import os
import re

from intriguing.plumbing import config

ROOT = config.repo_root()


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M))


def test_binder_pins_the_students_packages_with_cpu_only_torch():
    binder, student = _pins("binder/requirements.txt"), _pins("requirements-student.txt")
    assert set(binder) == set(student)
    for name, version in student.items():
        want = f"{version}+cpu" if name in ("torch", "torchvision") else version
        assert binder[name] == want, name
    text = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text


def test_binder_installs_the_package_and_starts_at_smoke_scale():
    post = (ROOT / "binder" / "postBuild").read_text(encoding="utf-8")
    assert "pip install --no-deps -e ." in post and "run-all --scale smoke" in post
    assert 'INTRIGUING_SCALE="${INTRIGUING_SCALE:-smoke}"' in (
        ROOT / "binder" / "start").read_text(encoding="utf-8")
    for script in ("postBuild", "start"):
        assert os.access(ROOT / "binder" / script, os.X_OK), script
