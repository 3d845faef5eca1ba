"""Reading and writing ``data/results/<name>.json``: every number the book prints.

Why: chapters never type a measured number; they read it from a results file that records where
it came from (scale, seconds, git commit, library versions, settings) and holds each figure as
``{"ours": ..., "paper": ...}`` beside the paper's. Files are written atomically.

References: Szegedy et al. 2014, arXiv:1312.6199 (the "paper" figures, via
``intriguing.experiments.paper``).
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import checks, config, files

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def cell(ours: float | None, paper: float | None = None) -> dict[str, float | None]:
    """One measured figure beside the paper's: ``{"ours": ours, "paper": paper}``."""
    return {"ours": checks.finite_float("ours", ours, allow_none=True),
            "paper": checks.finite_float("paper", paper, allow_none=True)}


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import numpy
    import scipy
    import torch

    return {"python": platform.python_version(), "torch": str(torch.__version__),
            "numpy": numpy.__version__, "scipy": scipy.__version__}


def git_commit() -> str:
    """The checkout's HEAD sha (with ``-dirty`` when tracked files changed), or "unknown"."""
    root = config.repo_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def path(name: str, scale: str | config.Scale | None = None) -> Path:
    """Where results ``name`` at ``scale`` live.

    Book scale (the default) writes ``data/results/<name>.json``; other scales write
    ``data/results/<scale>/<name>.json``, so a smoke-scale test run never overwrites the numbers
    the book prints. ``name`` is lowercase letters, digits, ``_`` and ``-``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must match {_NAME.pattern}, got {name!r}")
    sc = config.get_scale(scale)
    folder = config.results_dir() if sc.name == "book" else config.results_dir() / sc.name
    return folder / f"{name}.json"


def write(
    name: str,
    rows: list[dict[str, Any]],
    *,
    scale: str,
    seconds: float,
    settings: dict[str, Any] | None = None,
    device: str | None = None,
    summarize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Path:
    """Write a results file atomically and return its path.

    Args:
        name: e.g. "table1".
        rows: one dict per row; plain string fields name it (``model``, ``source``, ...), and each
            measured figure is a ``cell(ours, paper)``.
        scale: the scale the numbers were measured at.
        seconds: wall-clock time the experiment took.
        settings: the experiment's settings, recorded verbatim.
        device: where it ran (default: ``config.resolve_device()``, the device the experiments
            use when given none: ``$INTRIGUING_DEVICE`` or the CPU).
        summarize: the experiment's ``summarize(doc)``, whose ``summaries`` and ``claims`` (what
            the chapter states) are stored beside the rows.
    """
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("rows must be a list of dicts")
    doc = {"name": name, "scale": scale, "seconds": float(seconds), "commit": git_commit(),
           "device": device or str(config.resolve_device()), "versions": versions(),
           "settings": settings or {}, "rows": rows}
    if summarize is not None:
        doc.update(summarize(doc))
    target = path(name, scale)
    files.atomic_write_json(target, doc)
    return target


def read(name: str, scale: str | config.Scale | None = None) -> dict[str, Any]:
    """Load a results file; FileNotFoundError says which command produces it."""
    p = path(name, scale)
    if not p.exists():
        raise FileNotFoundError(
            f"{p} does not exist yet: run `python -m intriguing reproduce {name}` (or `make book`)")
    return json.loads(p.read_text(encoding="utf-8"))


def row(doc: dict[str, Any], **match: str) -> dict[str, Any]:
    """The single row of ``doc`` whose string fields equal ``match`` (e.g. ``model="FC10(1)"``)."""
    hits = [r for r in doc["rows"] if all(r.get(k) == v for k, v in match.items())]
    if len(hits) != 1:
        raise KeyError(f"{len(hits)} rows of {doc.get('name')!r} match {match}")
    return hits[0]


def series(doc: dict[str, Any], by: str, fields: tuple[str, ...], **match: str
           ) -> dict[str, list[float]]:
    """Figures of the rows matching ``match`` that hold ``by``, sorted by ``by``: a curve.

    Returns ``{by: [...], field: [...] for each of fields}`` (each figure's "ours").

    Raises:
        ValueError: no row matches.
    """
    rows = [r for r in doc["rows"] if by in r and all(r.get(k) == v for k, v in match.items())]
    if not rows:
        raise ValueError(f"no rows of {doc.get('name')!r} match {match} with {by!r}")
    rows.sort(key=lambda r: r[by]["ours"])
    return {f: [r[f]["ours"] for r in rows] for f in (by, *fields)}
