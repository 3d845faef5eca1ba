"""Property 1 (section 3): are natural units more coherent than random directions?

References: Szegedy et al. 2014, arXiv:1312.6199, section 3.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..engine import data, zoo
from ..plumbing import config, results
from .registry import Experiment

#: Property 1: (probed model, layer, independent model, its layer for the cosine measure).
UNIT_PROBES: tuple[tuple[str, str, str, str], ...] = (
    ("ConvNet", "feat", "FC200-200-10", "act2"),
    ("FC100-100-10", "act1", "ConvNet", "feat"),
    ("FC100-100-10", "act2", "ConvNet", "feat"),
    ("FC200-200-10", "act2", "ConvNet", "feat"),
)
#: Top-k set sizes of the Property-1 comparison.
UNIT_KS: tuple[int, ...] = (8, 16, 64)


def units(scale: str | config.Scale | None = None, *,
          probes: tuple[tuple[str, str, str, str], ...] = UNIT_PROBES,
          ks: tuple[int, ...] = UNIT_KS, seed: int = 0, n_resamples: int = 2000,
          progress: bool = True) -> dict[str, Any]:
    """Property 1 measured: are the top-k images of a unit more coherent than a random direction's?

    For each probed layer (``UNIT_PROBES``), every unit e_i and as many random unit directions
    pick their k test images maximising <phi(x), v>; k random test images are the floor. Each
    set is scored by label purity and by the mean pairwise cosine similarity in an independent
    model's representation (``units.compare``; units constant on every test image, dead ReLUs,
    are left out and listed in the settings). Rows: one per (model, layer, k, measure, group)
    with the mean, its bootstrap interval, median and 10/90% quantiles, and Mann-Whitney p-values
    against the directions and the floor; group "units - directions" holds the difference of
    means. The paper judges by eye, so every ``paper`` is None. Writes ``units.json``.
    """
    from ..engine import units as units_mod

    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("test", limit=sc.test_limit)
    acts: dict[tuple[str, str], torch.Tensor] = {}

    def layer_acts(name: str, layer: str) -> torch.Tensor:
        if (name, layer) not in acts:
            net = zoo.load(name, scale=sc, progress=progress)
            acts[(name, layer)] = units_mod.activations(net, layer, x)
        return acts[(name, layer)]

    rows, dead = [], {}
    for name, layer, rep_name, rep_layer in probes:
        cmp = units_mod.compare(layer_acts(name, layer), y, layer_acts(rep_name, rep_layer),
                                ks=ks, seed=seed, n_resamples=n_resamples)
        dead[f"{name}/{layer}"] = cmp.dead_units
        for r in cmp.rows:
            rows.append({
                "model": name, "layer": layer, "representation": f"{rep_name}/{rep_layer}",
                "k": str(r["k"]), "measure": r["measure"], "group": r["group"],
                **{f: results.cell(r[f]) for f in ("mean", "ci_low", "ci_high", "median", "q10",
                                                   "q90", "n", "p_vs_directions",
                                                   "p_vs_random")}})
    settings = {"n_images": len(x), "split": "test", "ks": list(ks), "seed": seed,
                "n_resamples": n_resamples, "level": 0.95,
                "probes": [list(p) for p in probes],
                "units": {f"{n}/{lay}": acts[(n, lay)].shape[1] for n, lay, _, _ in probes},
                "dead_units": dead, "exclude_dead": True,
                "directions": "units.random_directions(D, D, seed): normalised Gaussians",
                "floor": "units.random_sets(N, D, k, seed + 1): k random test images",
                "test": "scipy.stats.mannwhitneyu, two-sided"}
    results.write("units", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings=settings,
                  summarize=summarize_units)
    return results.read("units", sc)


def summarize_units(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``units.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("units", units, summarize_units, "chapters/random_directions",
               models=tuple(dict.fromkeys(m for p in UNIT_PROBES for m in (p[0], p[2]))),
               after=(), cost=20),
)
