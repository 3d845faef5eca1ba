"""The chapters' first cell installs the package in a hosted notebook (issue 18), from the one
repository setting (_config.yml's repository.url)."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from intriguing.plumbing import bootstrap, cli, config

ROOT = config.repo_root()


def test_every_page_that_imports_the_package_starts_with_the_cell_of_the_setting():
    url = bootstrap.configured_url()
    want = bootstrap.cell_source(url)
    for path in bootstrap.notebooks():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code[0].get("id") == bootstrap.CELL_ID, path.name
        assert "".join(code[0]["source"]) == want, path.name
        assert code[0]["metadata"]["tags"] == bootstrap.TAGS and not code[0]["outputs"]


def _run_cell(url: str, monkeypatch) -> list[tuple[str, str]]:
    """The cell run as IPython would, with the package missing; returns the magics it ran."""
    calls: list[tuple[str, str]] = []

    class Shell:
        def run_line_magic(self, name: str, line: str) -> None:
            calls.append((name, line.replace("$REPOSITORY", url)))

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    code = TransformerManager().transform_cell(bootstrap.cell_source(url))
    exec(code, {"get_ipython": lambda: Shell()})
    return calls


def test_the_cell_installs_from_the_repository_when_the_package_is_missing(monkeypatch):
    calls = _run_cell("https://example.org/intriguing", monkeypatch)
    assert calls == [("pip", 'install --quiet "intriguing @ git+https://example.org/intriguing"')]


def test_without_an_address_the_cell_says_what_to_do(monkeypatch):
    with pytest.raises(ModuleNotFoundError, match="pip install the repository"):
        _run_cell("", monkeypatch)


def test_set_repository_changes_the_setting_and_every_cell_once(tmp_path, monkeypatch, capsys):
    for rel in ["_config.yml", "chapters", "book/scorecard.ipynb"]:
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    url = "https://example.org/intriguing"
    changed = bootstrap.apply(url, tmp_path)
    assert tmp_path / "_config.yml" in changed and len(changed) == 1 + len(
        bootstrap.notebooks(tmp_path))
    assert bootstrap.configured_url(tmp_path) == url
    for path in bootstrap.notebooks(tmp_path):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        assert "".join(first["source"]) == bootstrap.cell_source(url), path.name
    assert bootstrap.apply(url, tmp_path) == []  # idempotent
    monkeypatch.setattr(config, "repo_root", lambda: tmp_path)
    assert cli.main(["set-repository", ""]) == 0 and "updated" in capsys.readouterr().out
    assert bootstrap.configured_url(tmp_path) == ""
    with pytest.raises(ValueError, match="url must be an http"):
        bootstrap.cell_source("ftp://x")
