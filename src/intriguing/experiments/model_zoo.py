"""The model zoo (section 4.1's networks): how each model was trained, and its training curves.

Why: the model-zoo chapter shows every model's settings, how far its training ran, how long it
took and its test error during training. Those are read from the trained models' histories here,
once, into ``model_zoo.json``, so the chapter reads a results file instead of loading (or, on a
cold cache, training) the zoo itself. Table 1's error rates are in ``table1.json``.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.1 and Tables 1 and 3.
"""

from __future__ import annotations

import time
from typing import Any

from ..engine import zoo
from ..plumbing import config, results
from .registry import Experiment


def _optimiser(s: zoo.ModelSpec, epochs: int, pre: int) -> str:
    if s.optimizer == "lbfgs":
        how = f"full-batch L-BFGS, <= {epochs} iterations"
        return f"AE pre-training {pre} epochs (Adam); softmax: " + how if s.arch == \
            "autoencoder" else how
    return f"Adam, lr {s.lr:g}, batch {s.batch_size}, {epochs} epochs"


def model_zoo(scale: str | config.Scale | None = None, *,
              progress: bool = True) -> dict[str, Any]:
    """One row per zoo model: its settings, the epochs or iterations its training ran, its
    training seconds (when it was trained), and its training curves (``settings["curves"]``:
    per model the logged test error, train error and loss, with the L-BFGS iteration numbers
    where there are some). Writes ``model_zoo.json``."""
    sc = config.get_scale(scale)
    start = time.perf_counter()
    rows, curves, train_seconds = [], {}, 0.0
    for name in zoo.ALL:
        s = zoo.spec(name)
        zoo.load(name, scale=sc, progress=progress)
        hist = zoo.history(name, scale=sc)
        epochs, pre = zoo.epochs_at(s, sc)
        done = hist["train"].get("iteration", [len(hist["train"]["loss"])])[-1]
        rows.append({"model": name, "description": s.description,
                     "lambdas": ", ".join(f"{v:g}" for v in s.lambdas), "split": s.split,
                     "optimiser": _optimiser(s, epochs, pre),
                     "epochs_run": results.cell(int(done)),
                     "train_seconds": results.cell(hist["seconds"])})
        curves[name] = {k: hist["train"][k] for k in ("monitor_error", "train_error", "loss",
                                                      "iteration") if k in hist["train"]}
        train_seconds += float(hist["seconds"])
    results.write("model_zoo", rows, scale=sc.name,
                  seconds=time.perf_counter() - start + train_seconds,
                  settings={"curves": curves, "monitor": "test error of the model during "
                            "training, logged for the curves",
                            "models": {n: zoo.spec(n).as_dict() for n in zoo.ALL}},
                  summarize=summarize_model_zoo)
    return results.read("model_zoo", sc)


def summarize_model_zoo(doc: dict[str, Any]) -> dict[str, Any]:
    """The total training time (a figure the chapter states); the zoo makes no claim."""
    total = sum(r["train_seconds"]["ours"] for r in doc["rows"])
    return {"summaries": {"train_seconds_total": total, "n_models": len(doc["rows"])},
            "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("model_zoo", model_zoo, summarize_model_zoo, "chapters/model_zoo",
               models=tuple(zoo.ALL), cost=5),
)
