"""The attack viewers' frames, computed before any page executes (chapters "Blind spots" and
"Transferability").

Why: a static viewer shows every (image, target, c) frame of an attack, so every frame must
exist before its page runs; a chapter only reads them. This experiment computes and caches them
(``engine.frames.viewer_frames``: one fixed-c ``attacks.lbfgs`` solve per frame, every model's
answer) and writes ``viewer_frames.json``, which lists each frames file with the settings it was
made with. It measures nothing a page states: its summaries and claims are empty.

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1-4.3 (Figure 5, Tables 3-4).
"""

from __future__ import annotations

import time
from typing import Any

from ..engine import attacks, frames, zoo
from ..plumbing import config, results
from . import blind_spots, transferability
from .registry import Experiment

#: Each viewer: the models attacked (one frames file each), the models every frame asks, the c
#: grid. The blind-spots viewer attacks FC200-200-10 alone; the transfer viewer attacks one
#: linear and one deep model and asks every zoo model.
VIEWERS: dict[str, dict[str, tuple]] = {
    "blind_spots": {"sources": ("FC200-200-10",), "models": ("FC200-200-10",),
                    "c_grid": blind_spots.C_GRID},
    "transferability": {"sources": transferability.TRANSFER_VIEWER_SOURCES,
                        "models": tuple(zoo.ALL), "c_grid": transferability.TRANSFER_C_GRID},
}


def viewer_frames(scale: str | config.Scale | None = None, *,
                  progress: bool = True) -> dict[str, Any]:
    """Compute (or find cached) every viewer's frames and write ``viewer_frames.json``.

    One row per frames file: the viewer, the attacked model, the file (relative to the data
    folder) and the seconds this run spent on it (reading a cached file takes well under one).
    The frames show the first ``frames.N_IMAGES`` test images, every target and every c of the
    viewer's grid.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    rows = []
    for viewer, v in VIEWERS.items():
        for source in v["sources"]:
            t0 = time.perf_counter()
            kwargs = {"models": list(v["models"]), "n_images": frames.N_IMAGES,
                      "c_grid": v["c_grid"], "scale": sc}
            frames.viewer_frames(source, progress=progress, **kwargs)
            file = frames.path(source, **kwargs)
            rows.append({"viewer": viewer, "source": source,
                         "file": file.relative_to(config.data_dir()).as_posix(),
                         "seconds": results.cell(time.perf_counter() - t0)})
    settings = {"n_images": frames.N_IMAGES, "split": "test", "targets": list(range(10)),
                "attack": attacks.LBFGSSettings().as_dict(),
                "cache_version": frames.CACHE_VERSION,
                "viewers": {name: {key: list(value) for key, value in v.items()}
                            for name, v in VIEWERS.items()}}
    results.write("viewer_frames", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings=settings, summarize=summarize_viewer_frames)
    return results.read("viewer_frames", sc)


def summarize_viewer_frames(doc: dict[str, Any]) -> dict[str, Any]:
    """No summaries, no claims: the frames are shown, not stated."""
    return {"summaries": {}, "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("viewer_frames", viewer_frames, summarize_viewer_frames, "chapters/blind_spots",
               models=tuple(dict.fromkeys(m for v in VIEWERS.values()
                                          for m in (*v["sources"], *v["models"]))),
               after=(), cost=30),
)
