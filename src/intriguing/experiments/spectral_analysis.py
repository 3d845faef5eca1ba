"""Spectral analysis (section 4.4): Table 5 and what the networks really do.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.4, Table 5.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..engine import data, zoo
from ..plumbing import config, results
from . import paper
from .common import adversarial_sets, write_attacked
from .registry import Experiment

#: ConvNet is attacked on at most this many test images for Table 5 (about 0.1 s an image).
TABLE5_CONVNET_N = 1000


def _bound_rows(model: str, bounds: list, table5: dict[str, str],
                paper_bounds: dict[str, float]) -> list[dict]:
    """One Table 5 row per layer: the bound, power iteration, and the running product."""
    rows, running = [], 1.0
    for b in bounds:
        running *= b.bound
        name = table5.get(b.name, "")
        rows.append({"model": model, "layer": b.name.removeprefix("body."), "kind": b.kind,
                     "table5_layer": name, "size": b.size,
                     "stride": "N/A" if b.stride is None else str(b.stride),
                     "input_shape": "x".join(map(str, b.input_shape)),
                     "method": b.method, "exact": "yes" if b.exact else "no",
                     "bound": results.cell(b.bound, paper_bounds.get(name)),
                     "power_iteration": results.cell(b.power_iteration),
                     "product_so_far": results.cell(running)})
    return rows


def table5(scale: str | config.Scale | None = None, *, convnet_n: int = TABLE5_CONVNET_N,
           progress: bool = True) -> dict[str, Any]:
    """Table 5: upper Lipschitz bounds per layer (section 4.3), and what the networks really do.

    For every zoo model (Tables 1 and 3, and ConvNet) and for torchvision's AlexNet (random
    weights always; the pretrained weights too when they are already in the torch cache, beside
    the paper's figures), one row per layer: its bound (``spectral.network_bounds``),
    power iteration on its real linear map, and the product so far. One "network" row per zoo
    model compares the product bound L of the logits with measurements of phi = the logits:
    local Lipschitz constants ``||d phi/dx||_2`` on the test images (``spectral.jacobian_norms``),
    the ratio ``||phi(x+r) - phi(x)|| / ||r||`` at the successful adversarial examples of the
    cached sets (Table 1's for Table 1's models, Table 3's for Table 3's, the first
    ``convnet_n`` test images for ConvNet), and the L2 radius the bound certifies
    (``spectral.certified_radius``) against the norm of the perturbations found. Writes
    ``table5.json``.
    """
    from ..engine import models, spectral

    sc = config.get_scale(scale)
    start = time.perf_counter()
    xt, _ = data.load_mnist("test", limit=sc.test_limit)
    n_conv = min(convnet_n, sc.attack_limit or convnet_n)
    advs, in_load = {}, 0.0
    for names, split, limit in ((zoo.TABLE1, sc.attack_split, sc.attack_limit),
                                (zoo.TABLE3, "test", sc.attack_limit),
                                (["ConvNet"], "test", n_conv)):
        sets, seconds = adversarial_sets(names, sc, split, limit, progress)
        advs.update(sets)
        in_load += seconds
    rows: list[dict] = []
    for name in [*zoo.TABLE1, *zoo.TABLE3, "ConvNet"]:
        # The spectral work (SVDs, FFTs, one Jacobian per image) runs on the CPU, where the
        # cached adversarial sets live, whatever $INTRIGUING_DEVICE says.
        net = zoo.load(name, scale=sc, device="cpu", progress=progress)
        bounds = spectral.network_bounds(net, models.IMAGE_SHAPE, validate=True)
        rows += _bound_rows(name, bounds, {}, {})
        lip = spectral.product_bound(bounds)
        hidden = [b.name for b in bounds if b.kind in ("sigmoid", "relu")]
        local = spectral.jacobian_norms(net, xt)
        adv = advs[name]
        ok = adv["success"]
        x0, xa = adv["images"][ok], adv["adversarial"][ok]
        ratio = spectral.perturbation_ratios(net, x0, xa)
        ratio = ratio[~ratio.isnan()]
        found = (xa - x0).flatten(1).norm(dim=1)
        radius = spectral.certified_radius(net, adv["images"], lip)
        rows.append({
            "model": name, "layer": "network", "kind": "network",
            "bound": results.cell(lip),
            "bound_last_hidden": results.cell(
                spectral.product_bound(bounds, upto=hidden[-1]) if hidden else None),
            "local_median": results.cell(local.median().item()),
            "local_max": results.cell(local.max().item()),
            "adversarial_ratio_median": results.cell(
                ratio.median().item() if len(ratio) else None),
            "adversarial_ratio_max": results.cell(ratio.max().item() if len(ratio) else None),
            "bound_over_local_max": results.cell(lip / local.max().item()),
            "certified_radius_median": results.cell(radius.median().item()),
            "attack_norm_median": results.cell(found.median().item() if len(found) else None),
            "n_local": results.cell(len(xt)), "n_adversarial": results.cell(len(ratio))})
    pretrained = spectral.alexnet_weights_path()
    alexnet_paper = {str(r["layer"]): float(r["bound"]) for r in paper.TABLE5}
    for use in [False] + ([True] if pretrained else []):
        bounds = spectral.alexnet_bounds(pretrained=use)
        label = f"AlexNet ({'pretrained' if use else 'random weights'})"
        rows += _bound_rows(label, bounds, spectral.paper_names(bounds),
                            alexnet_paper if use else {})
        pools = [b for b in bounds if b.kind == "maxpool"]
        as_paper = spectral.product_bound(bounds) / math.prod(b.bound for b in pools)
        rows.append({"model": label, "layer": "network", "kind": "network",
                     "bound": results.cell(spectral.product_bound(bounds)),
                     "bound_pooling_as_paper": results.cell(as_paper)})
    settings = {
        "phi": "the logits (the models' outputs, before the softmax), as Table 5 ends at FC. 3",
        "n_test": len(xt), "convnet_attacked": n_conv,
        "attacked": {n: {"split": a["split"], "n": len(a["success"])} for n, a in advs.items()},
        "power_iteration": {"zoo": {"iters": 500, "tol": 1e-10},
                            "alexnet": {"iters": 100, "tol": 1e-6}},
        "conv_grid": "smallest multiple of the stride >= padded input size (spectral.conv_grid)",
        "maxpool": "sqrt(ceil(k1/s1) * ceil(k2/s2)); the paper takes 1",
        "alexnet": {"weights": "torchvision pretrained (IMAGENET1K_V1)" if pretrained else
                    "random (torchvision init, seed 0); pretrained weights not in the cache",
                    "pretrained_path": str(pretrained) if pretrained else None,
                    "input": list(spectral.ALEXNET_INPUT)}}
    return write_attacked("table5", rows, sc, start, advs, in_load, settings,
                          summarize=summarize_table5)


def summarize_table5(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``table5.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("table5", table5, summarize_table5, "chapters/spectral_analysis",
               models=(*zoo.TABLE1, *zoo.TABLE3, "ConvNet"),
               after=("table1", "table3"), cost=90),
)
