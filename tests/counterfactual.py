"""Counterfactual runs: a page re-executed against a copy of the results whose numbers changed.

Why: a page must say what its numbers show, whatever they are. A counterfactual test copies the
smoke-scale results, changes the rows behind a claim so that the opposite holds, recomputes the
file's summaries and claims with the experiment's own ``summarize`` (``experiments.rewrite``),
executes the page against the copy and checks that its sentence and verdict changed with them.
The models, adversarial sets and MNIST are shared with the real data folder (read only).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from intriguing.experiments import REGISTRY, rewrite
from intriguing.plumbing import config, results

ROOT = config.repo_root()
SCALE = "smoke"


def ensure_results(names: list[str] | None = None, scale: str = SCALE) -> None:
    """Run the experiments whose results files are missing at ``scale`` (in the real data
    folder, as ``make test``'s ``run-all`` step would)."""
    for name in names or list(REGISTRY):
        if not results.path(name, scale).exists():
            REGISTRY[name].run(scale, progress=False)


def results_copy(tmp_path: Path, scale: str = SCALE) -> Path:
    """A data folder in ``tmp_path``: MNIST, models and adversarial sets linked from the real one,
    the results at ``scale`` copied (so they can be changed)."""
    real = config.data_dir()
    dest = tmp_path / "data"
    dest.mkdir()
    for sub in ("mnist", "models", "adversarial"):  # viewer frames live in adversarial/
        if (real / sub).exists():
            (dest / sub).symlink_to(real / sub, target_is_directory=True)
    src = results.path("table1", scale).parent
    shutil.copytree(src, results_dir(dest, scale), ignore=shutil.ignore_patterns("*.tmp"))
    return dest


def results_dir(data_dir: Path, scale: str = SCALE) -> Path:
    base = data_dir / "results"
    return base if scale == "book" else base / scale


def change(data_dir: Path, name: str, edit: Callable[[dict[str, Any]], None],
           scale: str = SCALE) -> dict[str, Any]:
    """Apply ``edit`` to the copied ``name`` (its rows, in place), recompute its summaries and
    claims, write it back atomically and return the new document."""
    folder = results_dir(data_dir, scale)
    doc = json.loads((folder / f"{name}.json").read_text())
    edit(doc)
    rewrite(doc, folder)
    return json.loads((folder / f"{name}.json").read_text())


def execute(page: str, data_dir: Path, scale: str = SCALE, timeout: int = 900) -> str:
    """Execute ``page`` (e.g. "chapters/blind_spots.ipynb") against ``data_dir``; return every
    text its cells printed or displayed (plain text, Markdown and HTML), joined."""
    nb = nbformat.read(ROOT / page, as_version=4)
    env = {config.DATA_DIR_ENV: str(data_dir), config.SCALE_ENV: scale}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str((ROOT / page).parent)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if "text" in o:
                out.append(o["text"])
            for mime in ("text/markdown", "text/html", "text/plain"):
                if mime in o.get("data", {}):
                    out.append(o["data"][mime])
    return "\n".join(out)


def row(doc: dict[str, Any], **match: str) -> dict[str, Any]:
    """The single row of ``doc`` matching ``match`` (for edits)."""
    return results.row(doc, **match)
