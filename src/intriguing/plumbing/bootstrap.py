"""The chapters' first cell: install the package when a hosted notebook lacks it (issue 18).

Why: a student who opens a chapter in Colab or on Binder from the repository gets the notebook
alone; the package it imports must come from the repository, whose address is one setting
(``repository.url`` in ``_config.yml``, also behind the book's launch buttons). The package
cannot hold code that runs before it is installed, so each chapter carries this small cell,
generated here and kept equal to the setting by ``tests/test_bootstrap.py``;
``python -m intriguing set-repository URL`` changes the setting and every cell at once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import config, files

#: The cell's id and tag (hidden in the rendered book: it has nothing to say there).
CELL_ID = "hosted-install"
TAGS = ["remove-cell"]
_URL = re.compile(r"^(https?://\S+|)$")


def cell_source(url: str) -> str:
    """The first cell's code for the repository at ``url`` ("" when none is published)."""
    if not isinstance(url, str) or not _URL.match(url.strip()):
        raise ValueError(f"url must be an http(s) address or empty, got {url!r}")
    url = url.strip()
    lines = [
        "# In a hosted notebook (Colab, Binder) without the book's package, install it first.",
        "import importlib.util",
        "",
        'if importlib.util.find_spec("intriguing") is None:',
        f"    REPOSITORY = {url!r}  # _config.yml's repository.url",
        "    if not REPOSITORY:",
        "        raise ModuleNotFoundError(",
        '            "This chapter needs the package intriguing: pip install the repository "',
        '            "(its folder or git URL) first; see the page Run it yourself.")',
        '    %pip install --quiet "intriguing @ git+$REPOSITORY"',
    ]
    return "\n".join(lines)


def configured_url(root: Path | None = None) -> str:
    """``repository.url`` of ``_config.yml`` (read as text: no YAML parser needed)."""
    text = ((root or config.repo_root()) / "_config.yml").read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)*)", text, re.M)
    if not block:
        raise ValueError("_config.yml has no repository: block")
    m = re.search(r"^\s+url:\s*(.*)$", block.group(1), re.M)
    return (m.group(1).strip().strip("\"'") if m else "")


def notebooks(root: Path | None = None) -> list[Path]:
    """The pages that import the package: every chapter and the scorecard."""
    root = root or config.repo_root()
    return sorted((root / "chapters").glob("*.ipynb")) + [root / "book" / "scorecard.ipynb"]


def apply(url: str, root: Path | None = None) -> list[Path]:
    """Write ``url`` into ``_config.yml`` and each notebook's first cell (added if missing);
    returns the files changed. Atomic per file."""
    root = root or config.repo_root()
    source = cell_source(url)
    changed = []
    cfg = root / "_config.yml"
    text = cfg.read_text(encoding="utf-8")
    new = re.sub(r"(^repository:\n(?:[ \t]+.*\n)*?[ \t]+url:)[^\n]*",
                 lambda m: f'{m.group(1)} "{url.strip()}"', text, count=1, flags=re.M)
    if new != text:
        files.atomic_write_bytes(cfg, new.encode("utf-8"))
        changed.append(cfg)
    for path in notebooks(root):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
        cell = {"cell_type": "code", "execution_count": None, "id": CELL_ID,
                "metadata": {"tags": list(TAGS)}, "outputs": [],
                "source": source.splitlines(keepends=True)}
        at = next((i for i, c in enumerate(cells) if c.get("id") == CELL_ID), None)
        if at is None:
            first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
            cells.insert(first_code, cell)
        elif cells[at] == cell:
            continue
        else:
            cells[at] = cell
        files.atomic_write_bytes(path, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
                                 .encode("utf-8"))
        changed.append(path)
    return changed


__all__ = ["CELL_ID", "TAGS", "apply", "cell_source", "configured_url", "notebooks"]
