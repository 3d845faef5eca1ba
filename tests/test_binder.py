"""The Binder environment (issue 18): CPU-only PyTorch, the students' pins, smoke scale."""

from __future__ import annotations

import os

from intriguing.plumbing import config
from test_packaging import pins

ROOT = config.repo_root()


def test_binder_pins_the_students_packages_with_cpu_only_torch():
    binder, student = pins("binder/requirements.txt"), pins("requirements-student.txt")
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
