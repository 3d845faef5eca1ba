"""The one list of experiments: what each writes, what it needs, which chapter shows it.

Why: ``make book``'s task graph (``plumbing.pipeline``), the CLI (``reproduce NAME``) and the
scorecard all need the list of experiments; each reads it from here, so none can drift. An
experiment is a function that measures at a scale and writes ``data/results/<name>.json``
(rows, settings, and the ``summaries`` and ``claims`` its chapter states, made by its
``summarize``); chapters only read that file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Experiment:
    """One experiment and the results file it writes.

    Attributes:
        name: the results file's name (``data/results/<name>.json``).
        run: ``run(scale, *, progress) -> doc``: measures, writes the file, returns it.
        summarize: ``summarize(doc) -> {"summaries": ..., "claims": [...]}``: the figures and
            claims the chapter states, computed from the rows and settings alone, so they can
            be recomputed from a changed file (``refresh``) without measuring again.
        chapter: the page that shows it (a path without suffix, e.g. ``chapters/blind_spots``).
        models: zoo models it loads (trained first by the task graph).
        after: experiments whose cached adversarial sets it reuses (run first, so no set is
            computed twice).
        cost: rough single-thread seconds at book scale; orders the task graph, nothing else.
    """

    name: str
    run: Callable[..., dict[str, Any]]
    summarize: Callable[[dict[str, Any]], dict[str, Any]]
    chapter: str
    models: tuple[str, ...]
    after: tuple[str, ...] = ()
    cost: float = 30.0
