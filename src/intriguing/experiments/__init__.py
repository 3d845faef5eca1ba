"""The experiments, one module per chapter, and their registry (``REGISTRY``).

Each module measures what its chapter shows and writes ``data/results/<name>.json`` with the
rows, the settings, and the summaries and claims the chapter states. Chapters, the scorecard
and the front matter only read those files (``plumbing.results.read``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plumbing import checks, files
from . import (
    adversarial_training,
    blind_spots,
    coherence,
    model_zoo,
    spectral_analysis,
    transferability,
    viewers,
)
from .registry import Experiment

#: Every experiment by results-file name, in the order the scorecard lists them.
REGISTRY: dict[str, Experiment] = {
    e.name: e for module in (model_zoo, blind_spots, coherence, transferability, spectral_analysis,
                             adversarial_training, viewers)
    for e in module.EXPERIMENTS}


def get(name: str) -> Experiment:
    """The experiment that writes ``name``; ValueError listing the names for an unknown one."""
    checks.one_of("name", name, sorted(REGISTRY))
    return REGISTRY[name]


def refresh(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its summaries and claims recomputed from its rows and settings.

    Why: the claims a page states are a function of the numbers; tests change the numbers of a
    copied results file and check that the page's sentences follow.
    """
    return {**doc, **get(doc["name"]).summarize(doc)}


def rewrite(doc: dict[str, Any], folder: str | Path) -> None:
    """Write ``refresh(doc)`` atomically to ``folder/<name>.json`` (a copy of the results)."""
    files.atomic_write_json(Path(folder) / f"{doc['name']}.json", refresh(doc))


__all__ = ["REGISTRY", "Experiment", "get", "refresh", "rewrite"]
