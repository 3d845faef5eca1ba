"""Adversarial training (section 4.2): FC100-100-10 with a refreshed pool of examples.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.2.
"""

from __future__ import annotations

from typing import Any

from ..plumbing import config, results
from . import paper
from .registry import Experiment


def advtrain(scale: str | config.Scale | None = None, *,
             progress: bool = True) -> dict[str, Any]:
    """Section 4.2: FC100-100-10 trained with a refreshed pool of adversarial examples.

    Compares the adversarially trained network (``advtrain``, cached) with the same network
    trained with weight decay alone (the zoo's FC100-100-10: same schedule and seed, no pool):
    train and test error, the average minimum distortion on the first 1,000 test images (the
    search over c, Table 1's targets), and each model's error on the other's adversarial
    examples. The paper's dropout figure is listed, not run. ``seconds`` includes both models'
    training time (cached after the first run); ``settings`` holds the pool's settings, the cost
    of each piece, the training curves and a paired test of the two models' test errors. Writes
    ``advtrain.json``.
    """
    from ..engine import advtrain as adv

    sc = config.get_scale(scale)
    out = adv.compare(sc, progress=progress)
    table1 = paper.TABLE1[out["settings"]["model"]]
    ref_dist = {"weight decay": table1["distortion"], "adversarial training": None}
    rows = []
    for name, m in out["models"].items():
        rows.append({
            "model": name, "status": "run",
            "train_error": results.cell(m["train_error"], None),
            "test_error": results.cell(m["test_error"], paper.ADVTRAIN_TEST_ERROR[name]),
            "distortion": results.cell(m["distortion"], ref_dist[name]),
            "distortion_median": results.cell(m["distortion_median"], None),
            "success": results.cell(m["success"], None),
            "error_on_other_adversarial": results.cell(m["error_on_other_adversarial"], None)})
    rows.append({"model": "dropout", "status": "not run",
                 "test_error": results.cell(None, paper.ADVTRAIN_TEST_ERROR["dropout"]),
                 **{f: results.cell(None, None) for f in (
                     "train_error", "distortion", "distortion_median", "success",
                     "error_on_other_adversarial")}})
    settings = {k: v for k, v in out.items() if k != "models"}
    settings["paper_distortion"] = "the weight-decay row's is Table 1's FC100-100-10 figure"
    results.write("advtrain", rows, scale=sc.name,
                  seconds=out["cost_seconds"]["total"], settings=settings,
                  summarize=summarize_advtrain)
    return results.read("advtrain", sc)


def summarize_advtrain(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``advtrain.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("advtrain", advtrain, summarize_advtrain, "chapters/advtrain",
               models=("FC100-100-10",),
               after=(), cost=330),
)
