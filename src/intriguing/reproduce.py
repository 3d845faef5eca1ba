"""The experiments that write ``data/results/*.json``: one function per results file.

Why: a chapter shows numbers; it does not compute them in ad-hoc cells. Each function here runs
one of the paper's tables at the configured scale, writes its results file atomically (ours beside
the paper's, with scale, seconds, commit and settings) and returns the document. The CLI's
``python -m intriguing reproduce`` and the chapters call the same functions.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import config, data, paper, results, train, zoo


def table1(scale: str | config.Scale | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Table 1's error columns for the six MNIST models (the distortion column: the attack).

    Train error is measured on the training split the model saw (all 60,000 images at book
    scale), test error on the 10,000 test images.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("train", limit=sc.train_limit)
    xt, yt = data.load_mnist("test", limit=sc.test_limit)
    rows = []
    for name in zoo.TABLE1:
        model = zoo.load(name, scale=sc, progress=progress)
        ref = paper.TABLE1[name]
        rows.append({
            "model": name,
            "description": str(ref["description"]),
            "train_error": results.cell(train.error_rate(model, x, y), ref["train_error"]),
            "test_error": results.cell(train.error_rate(model, xt, yt), ref["test_error"]),
            "distortion": results.cell(None, ref["distortion"]),
            "success": results.cell(None, None),
        })
    settings = {"n_train": len(x), "n_test": len(xt),
                "models": {n: zoo.spec(n).as_dict() for n in zoo.TABLE1}}
    results.write("table1", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings=settings)
    return results.read("table1")


#: Every experiment the CLI can run, by results-file name.
EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {"table1": table1}
