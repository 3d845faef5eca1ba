"""Transferability (section 4.3): Tables 2-4 and the transfer curves.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3, Tables 2-4.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from ..engine import advsets, attacks, data, train, zoo
from ..plumbing import checks, config, results
from . import paper
from .common import adversarial_sets, write_attacked
from .registry import Experiment

#: Gaussian-noise rows of Table 2 and of Table 4 (per-pixel stddev before clipping).
TABLE2_NOISE: tuple[float, ...] = (0.1, 0.3)
TABLE4_NOISE: tuple[float, ...] = (0.06, 0.1)
#: Table 4's amplified rows: each perturbation rescaled to this per-pixel RMS (then clipped).
TABLE4_AMPLIFY = 0.1


def _transfer_settings(advs: dict[str, dict], nets: dict[str, nn.Module], x: torch.Tensor,
                       y: torch.Tensor) -> dict[str, Any]:
    """Settings shared by the transfer tables: how errors count, success and clean errors."""
    return {"error": "fraction misclassified w.r.t. the true label",
            "success": {n: a["success"].float().mean().item() for n, a in advs.items()},
            "clean_error": {n: train.error_rate(net, x, y) for n, net in nets.items()}}


def _matrix_rows(matrix: dict[str, dict[str, float]], ref: dict[str, dict[str, float]],
                 distortion: dict[str, float], ref_distortion: dict[str, float]) -> list[dict]:
    rows = [{"source": r, "target": c, "error": results.cell(v, ref.get(r, {}).get(c))}
            for r, cols in matrix.items() for c, v in cols.items()]
    rows += [{"source": r, "distortion": results.cell(d, ref_distortion.get(r))}
             for r, d in distortion.items()]
    return rows


def table2(scale: str | config.Scale | None = None, *, seed: int = 0,
           progress: bool = True) -> dict[str, Any]:
    """Table 2: cross-model transfer between the six Table 1 models, and two noise baselines.

    Rows are Table 1's adversarial sets (``advsets``: the scale's attacked split, the 10,000 test
    images at book scale, the training set at paper scale as in the paper) and Gaussian noise of
    stddev 0.1 and 0.3 (clipped to [0,1], seeded); columns the six models; each cell the error
    rate against the TRUE label (``transfer.error_matrix``). The diagonal is measured like any
    other cell. Distortion rows give each row's average per-pixel RMS (over every image of the
    set; realised after clipping for noise). For each adversarial set a row gives the fraction of
    its examples that fool every one of the five other models (``fools_every_other``) and none
    of them (``fools_no_other``). ``seconds`` includes the time the cached attacks took when they
    were made. Writes ``table2.json``.
    """
    from ..engine import transfer

    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist(sc.attack_split, limit=sc.attack_limit)
    advs, in_load = adversarial_sets(zoo.TABLE1, sc, sc.attack_split, sc.attack_limit, progress)
    nets = {n: zoo.load(n, scale=sc, progress=progress) for n in zoo.TABLE1}
    sets = {n: a["adversarial"] for n, a in advs.items()}
    sets.update(transfer.noise_sets(x, TABLE2_NOISE, seed=seed))
    wrong = transfer.misclassified(sets, y, nets)
    matrix = {r: {c: int(w.sum()) / len(w) for c, w in cols.items()} for r, cols in wrong.items()}
    dist = {r: attacks.distortion(x, s).mean().item() for r, s in sets.items()}
    rows = _matrix_rows(matrix, paper.TABLE2, dist, paper.TABLE2_DISTORTION)
    for name in advs:  # how many of the five other models each example fools
        fooled = torch.stack([w for c, w in wrong[name].items() if c != name]).sum(0)
        rows.append({"source": name,
                     "fools_every_other": results.cell((fooled == len(nets) - 1)
                                                       .float().mean().item()),
                     "fools_no_other": results.cell((fooled == 0).float().mean().item())})
    settings = {"n": len(x), "split": sc.attack_split, "rows": list(sets), "columns": zoo.TABLE1,
                "noise_stddevs": list(TABLE2_NOISE), "noise_seed": seed, "noise_clipped": True,
                **_transfer_settings(advs, nets, x, y)}
    return write_attacked("table2", rows, sc, start, advs, in_load, settings,
                          summarize=summarize_table2)


def table3(scale: str | config.Scale | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Table 3: the cross-training-set models' clean errors on P1, P2 and test, and distortion.

    The three models (``zoo.TABLE3``) are trained on P1 or P2, the disjoint halves of the
    training set. Errors are on all of P1, P2 (limited by the scale's ``train_limit``) and the
    test set; the distortion is the average minimum distortion of the successful examples of each
    model's adversarial set made on the test set (``advsets``; all 10,000 images at book scale),
    which Table 4 feeds to the three models. Writes ``table3.json``.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    splits = {"P1_error": data.load_mnist("P1", limit=sc.train_limit),
              "P2_error": data.load_mnist("P2", limit=sc.train_limit),
              "test_error": data.load_mnist("test", limit=sc.test_limit)}
    advs, in_load = adversarial_sets(zoo.TABLE3, sc, "test", sc.attack_limit, progress)
    rows = []
    for name in zoo.TABLE3:
        net = zoo.load(name, scale=sc, progress=progress)
        ref, adv = paper.TABLE3[name], advs[name]
        ok = adv["success"]
        row = {"model": name, "trained_on": zoo.spec(name).split}
        for field, (xs, ys) in splits.items():
            row[field] = results.cell(train.error_rate(net, xs, ys), ref[field])
        row["distortion"] = results.cell(
            adv["distortion"][ok].mean().item() if ok.any() else None, ref["distortion"])
        row["success"] = results.cell(ok.float().mean().item(), None)
        rows.append(row)
    settings = {"n": {k: len(v[0]) for k, v in splits.items()},
                "attacked_split": "test", "n_attacked": len(advs[zoo.TABLE3[0]]["success"]),
                "models": {n: zoo.spec(n).as_dict() for n in zoo.TABLE3}}
    return write_attacked("table3", rows, sc, start, advs, in_load, settings,
                          summarize=summarize_table3)


def table4(scale: str | config.Scale | None = None, *, seed: int = 0,
           progress: bool = True) -> dict[str, Any]:
    """Table 4: cross-training-set transfer of test-set adversarial examples, plain and amplified.

    Rows, in the paper's order: each Table 3 model's adversarial set on the test set
    ("Distorted for <model>"); Gaussian noise of stddev 0.06; each set amplified
    (``transfer.amplify``: every perturbation rescaled to a per-pixel RMS of 0.1, then clipped to
    [0,1]); Gaussian noise of stddev 0.1. Columns: the three models; cells: error against the true
    label. Distortion rows give each row's realised average per-pixel RMS; the paper's figure is
    the stddev its row names. ``seconds`` includes the cached attacks' time. Writes
    ``table4.json``.
    """
    from ..engine import transfer

    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("test", limit=sc.attack_limit)
    advs, in_load = adversarial_sets(zoo.TABLE3, sc, "test", sc.attack_limit, progress)
    nets = {n: zoo.load(n, scale=sc, progress=progress) for n in zoo.TABLE3}
    lo, hi = TABLE4_NOISE
    noise = transfer.noise_sets(x, TABLE4_NOISE, seed=seed)
    sets: dict[str, torch.Tensor] = {f"Distorted for {n}": a["adversarial"]
                                     for n, a in advs.items()}
    sets[f"Gaussian noise, stddev={lo:g}"] = noise[f"Gaussian noise, stddev={lo:g}"]
    for n, a in advs.items():
        sets[f"Distorted for {n}, amplified to stddev={TABLE4_AMPLIFY:g}"] = transfer.amplify(
            x, a["adversarial"], TABLE4_AMPLIFY)
    sets[f"Gaussian noise, stddev={hi:g}"] = noise[f"Gaussian noise, stddev={hi:g}"]
    matrix = transfer.error_matrix(sets, y, nets)
    dist = {r: attacks.distortion(x, s).mean().item() for r, s in sets.items()}
    ref_dist = {f"Distorted for {n}": paper.TABLE3[n]["distortion"] for n in zoo.TABLE3}
    ref_dist.update({r: TABLE4_AMPLIFY for r in sets if "amplified" in r})
    ref_dist.update({f"Gaussian noise, stddev={s:g}": s for s in TABLE4_NOISE})
    rows = _matrix_rows(matrix, paper.TABLE4, dist, ref_dist)
    settings = {"n": len(x), "split": "test", "rows": list(sets), "columns": zoo.TABLE3,
                "noise_stddevs": list(TABLE4_NOISE), "noise_seed": seed, "noise_clipped": True,
                "amplify_stddev": TABLE4_AMPLIFY, "amplify_clipped": True,
                "amplify": "x + r * stddev / rms(r) per image, then clipped to [0,1]",
                "amplify_factor": {n: (TABLE4_AMPLIFY / a["distortion"][a["distortion"] > 0])
                                   .mean().item() for n, a in advs.items()},
                **_transfer_settings(advs, nets, x, y)}
    return write_attacked("table4", rows, sc, start, advs, in_load, settings,
                          summarize=summarize_table4)


#: The fixed constants of the transfer curves: one solve per image per c, no search. From
#: c = 1e-3 (perturbations past the minimum distortion of every Table 1 model) to c = 31.6
#: (perturbations too small to reach the target on almost any image).
TRANSFER_C_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-3, 1.5, 10))
#: Test images attacked per source for the curves (capped by the scale's ``attack_limit``).
TRANSFER_N = 2000
#: The transfer viewer's precomputed sources in the static book (one linear, one deep model);
#: in Jupyter every model of Tables 1 and 3 can be attacked, on the finer ``TRANSFER_LIVE_C_GRID``.
TRANSFER_VIEWER_SOURCES: tuple[str, ...] = ("FC10(1e-4)", "FC200-200-10")
TRANSFER_LIVE_C_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-3, 1.5, 19))


def transfer_curves(scale: str | config.Scale | None = None, *, sources: list[str] | None = None,
                    targets: list[str] | None = None,
                    c_grid: tuple[float, ...] = TRANSFER_C_GRID, n: int = TRANSFER_N,
                    seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Transfer rate against perturbation size, for every source/target pair (beyond the paper).

    The paper's Table 2 measures transfer at one point per source, its minimum distortion. Here
    every source (Table 1's models by default) attacks one fixed set, the first ``n`` test
    images with Table 1's random targets, once per constant of ``c_grid`` (``advsets.fixed_c``:
    one solve each, cached), and every target model's error on each set is recorded with the
    set's mean distortion (``transfer.curve``). The floor is each target's error on Gaussian noise
    of exactly the same per-image distortion. For each pair with a Table 2 figure, a row "at the
    paper's distortion" holds our curve read at the paper's distortion beside the paper's rate.
    ``settings["table2"]`` holds the rows of Table 2 at the same scale that the curves are read
    against (its cells and distortions for these sources and targets; None if ``table2.json``
    does not exist yet), so the summaries need no other file.
    ``seconds`` includes the time the cached attacks took when they were made. Writes
    ``transfer_curves.json``.

    Raises:
        ValueError: a source or target that is not a zoo model, an empty list of either, or an
            empty, unsorted or non-positive ``c_grid``.
    """
    from ..engine import transfer

    grid = transfer.check_c_grid(c_grid)
    sources = list(zoo.TABLE1 if sources is None else sources)
    targets = list(zoo.TABLE1 if targets is None else targets)
    for label, names in (("sources", sources), ("targets", targets)):
        if not names:
            raise ValueError(f"{label} must name at least one zoo model")
        unknown = [m for m in names if m not in zoo.SPECS]
        if unknown:
            raise ValueError(f"{label} must be zoo models ({', '.join(zoo.ALL)}), got unknown "
                             f"{unknown}")
    checks.positive_int("n", n)
    sc = config.get_scale(scale)
    n = min(n, sc.attack_limit or n)
    start = time.perf_counter()
    x, y = data.load_mnist("test", limit=n)
    nets = {m: zoo.load(m, scale=sc, progress=progress) for m in dict.fromkeys(sources + targets)}
    rows: list[dict] = []
    advs: dict[str, dict] = {}
    in_load = 0.0
    for s in sources:
        t0 = time.perf_counter()
        sets = {c: advsets.fixed_c(s, c, split="test", limit=n, scale=sc, progress=progress)
                for c in grid}
        in_load += time.perf_counter() - t0
        advs.update({f"{s} @ c={c:.3g}": e for c, e in sets.items()})
        models = {m: nets[m] for m in dict.fromkeys([s, *targets])}
        points = transfer.curve(x, y, {c: e["adversarial"] for c, e in sets.items()}, models,
                                source=s, seed=seed)
        for p in points:
            ok = sets[p["c"]]["success"].float().mean().item()
            rows += [{"source": s, "target": t, "c": f"{p['c']:.3g}",
                      "c_value": results.cell(p["c"]),
                      "error": results.cell(p["error"][t]),
                      "noise_error": results.cell(p["noise_error"][t]),
                      "distortion": results.cell(p["distortion"]),
                      "noise_distortion": results.cell(p["noise_distortion"]),
                      "success": results.cell(ok)} for t in targets]
        for t in targets:
            ref = paper.TABLE2.get(s, {}).get(t)
            if ref is None:
                continue
            d = paper.TABLE2_DISTORTION[s]
            cur = transfer.curve_of({"rows": rows}, s, t)
            rows.append({"source": s, "target": t, "c": "at the paper's distortion",
                         "distortion": results.cell(d, d),
                         "error": results.cell(transfer.rate_at(cur["distortion"], cur["error"],
                                                                d), ref)})
    settings = {"n": len(x), "split": "test", "c_grid": list(grid), "sources": sources,
                "targets": targets, "noise_seed": seed,
                "table2": _table2_points(sc, sources, targets),
                "noise": "one Gaussian draw per image, scaled so the clipped image has the "
                         "adversarial example's distortion (transfer.matched_noise)",
                "error": "fraction misclassified w.r.t. the true label",
                "clean_error": {t: train.error_rate(nets[t], x, y) for t in targets}}
    return write_attacked("transfer_curves", rows, sc, start, advs, in_load, settings,
                          summarize=summarize_transfer_curves)


def _table2_points(sc: config.Scale, sources: list[str], targets: list[str]
                   ) -> list[dict] | None:
    """The rows of ``table2.json`` at scale ``sc`` that the transfer curves are read against: the
    cells of these sources and targets and the sources' distortions (None if it does not exist)."""
    if not results.path("table2", sc).exists():
        return None
    doc = results.read("table2", sc)
    return [r for r in doc["rows"] if r.get("source") in sources
            and (("error" in r and r.get("target") in targets)
                 or ("distortion" in r and "target" not in r))]


def summarize_table2(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``table2.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


def summarize_table3(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``table3.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


def summarize_table4(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``table4.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


def summarize_transfer_curves(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``transfer_curves.json`` carries for its chapter."""
    return {"summaries": {}, "claims": []}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("table2", table2, summarize_table2, "chapters/transferability",
               models=tuple(zoo.TABLE1),
               after=("table1",), cost=15),
    Experiment("table3", table3, summarize_table3, "chapters/transferability",
               models=tuple(zoo.TABLE3),
               after=(), cost=40),
    Experiment("table4", table4, summarize_table4, "chapters/transferability",
               models=tuple(zoo.TABLE3),
               after=("table3",), cost=10),
    Experiment("transfer_curves", transfer_curves, summarize_transfer_curves,
               "chapters/transferability", models=tuple(zoo.TABLE1),
               after=("table2",), cost=90),
)
