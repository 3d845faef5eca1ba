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

import numpy as np
import torch
from torch import nn

from . import advsets, attacks, config, data, paper, results, train, zoo


def table1(scale: str | config.Scale | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Table 1 for the six MNIST models: train error, test error, average minimum distortion.

    Train error is measured on the training split the model saw (all 60,000 images at book
    scale), test error on the 10,000 test images. The distortion column attacks the scale's
    attacked set (the 10,000 test images at book scale, the 60,000 training images at paper
    scale, as the paper) with the box-constrained L-BFGS search, one random target per image
    (``advsets``), and averages the distortion of the successful examples; the success rate is
    reported beside it. Adversarial sets are cached, so a second call costs seconds.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("train", limit=sc.train_limit)
    xt, yt = data.load_mnist("test", limit=sc.test_limit)
    advs, in_load = _adv_sets(zoo.TABLE1, sc, sc.attack_split, sc.attack_limit, progress)
    rows = []
    for name in zoo.TABLE1:
        model = zoo.load(name, scale=sc, progress=progress)
        adv = advs[name]
        ok = adv["success"]
        ref = paper.TABLE1[name]
        rows.append({
            "model": name,
            "description": str(ref["description"]),
            "train_error": results.cell(train.error_rate(model, x, y), ref["train_error"]),
            "test_error": results.cell(train.error_rate(model, xt, yt), ref["test_error"]),
            "distortion": results.cell(
                adv["distortion"][ok].mean().item() if ok.any() else None, ref["distortion"]),
            "success": results.cell(ok.float().mean().item(), None),
            "evals_per_image": results.cell(adv["evals"].float().mean().item(), None),
        })
    settings = {"n_train": len(x), "n_test": len(xt), "attacked_split": sc.attack_split,
                "n_attacked": len(adv["success"]),
                "targets": "uniform over the nine labels other than the true one",
                "models": {n: zoo.spec(n).as_dict() for n in zoo.TABLE1}}
    return _write_attacked("table1", rows, sc, start, advs, in_load, settings)



#: The c grid of the fixed-c experiments (distortion and success against c, the viewers).
C_GRID: tuple[float, ...] = tuple(float(v) for v in np.logspace(-2, 2, 9))
#: Gaussian-noise levels of the noise comparison (per-pixel stddev, before clipping).
NOISE_STDDEVS: tuple[float, ...] = (0.1, 0.3, 0.5, 1.0)
SWEEP_MODELS = ["FC10(1e-4)", "FC200-200-10"]


def c_sweep(scale: str | config.Scale | None = None, *, models: list[str] | None = None,
            c_grid: tuple[float, ...] = C_GRID, n: int = 1000,
            progress: bool = True) -> dict[str, Any]:
    """Success rate and distortion against c: one fixed-c solve per image per c, no search.

    Shows the trade-off the search over c navigates (section 4.1): a larger c penalises the
    perturbation more, so distortion falls and, past a critical c, the attack stops reaching
    its target. The attacked images are the first ``n`` of the scale's attacked split (fewer at
    smoke scale) with the same random targets as Table 1. Writes ``c_sweep.json``.
    """
    sc = config.get_scale(scale)
    models = models or SWEEP_MODELS
    n = min(n, sc.attack_limit or n)
    start = time.perf_counter()
    x, y = data.load_mnist(sc.attack_split, limit=n)
    targets = advsets.random_targets(y)
    rows = []
    for name in models:
        net = zoo.load(name, scale=sc, progress=progress)
        for c in c_grid:
            res = attacks.lbfgs(net, x, targets, c=c)
            ok = res.success
            rows.append({"model": name, "c": f"{c:.3g}", "c_value": results.cell(c),
                         "success": results.cell(ok.float().mean().item()),
                         "distortion": results.cell(res.distortion.mean().item()),
                         "distortion_successful": results.cell(
                             res.distortion[ok].mean().item() if ok.any() else None)})
    results.write("c_sweep", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings={"n": len(x), "split": sc.attack_split, "c_grid": list(c_grid),
                            "attack": attacks.LBFGSSettings().as_dict()})
    return results.read("c_sweep", sc)


def noise(scale: str | config.Scale | None = None, *, stddevs: tuple[float, ...] = NOISE_STDDEVS,
          seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Accuracy under Gaussian noise against accuracy on the adversarial sets (Fig. 7's point).

    Noise is ``x + N(0, stddev^2)`` clipped to [0,1] (``attacks.gaussian_noise``); the clipping
    lowers the realised per-pixel stddev, which is reported as ``distortion``. The adversarial
    rows use Table 1's cached sets. Writes ``noise.json``.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist(sc.attack_split, limit=sc.attack_limit)
    gen = torch.Generator().manual_seed(seed)
    noisy = {s: attacks.gaussian_noise(x, s, generator=gen) for s in stddevs}
    rows = []
    for name in zoo.TABLE1:
        net = zoo.load(name, scale=sc, progress=progress)
        for s, xn in noisy.items():
            rows.append({"model": name, "input": f"Gaussian noise, stddev={s:g}",
                         "accuracy": results.cell(1 - train.error_rate(net, xn, y)),
                         "distortion": results.cell(attacks.distortion(x, xn).mean().item())})
        adv = advsets.load(name, scale=sc, progress=progress)
        rows.append({"model": name, "input": "adversarial (Table 1 set)",
                     "accuracy": results.cell(1 - train.error_rate(net, adv["adversarial"], y)),
                     "distortion": results.cell(adv["distortion"].mean().item())})
    results.write("noise", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings={"n": len(x), "split": sc.attack_split, "stddevs": list(stddevs),
                            "clipped": True, "seed": seed})
    return results.read("noise", sc)


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
    from . import units as units_mod

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
                  settings=settings)
    return results.read("units", sc)


#: Gaussian-noise rows of Table 2 and of Table 4 (per-pixel stddev before clipping).
TABLE2_NOISE: tuple[float, ...] = (0.1, 0.3)
TABLE4_NOISE: tuple[float, ...] = (0.06, 0.1)
#: Table 4's amplified rows: each perturbation rescaled to this per-pixel RMS (then clipped).
TABLE4_AMPLIFY = 0.1


def _adv_sets(names: list[str], sc: config.Scale, split: str, limit: int | None,
              progress: bool) -> tuple[dict[str, dict], float]:
    """Each model's cached adversarial set (made once, on first use) and the seconds spent here."""
    t0 = time.perf_counter()
    sets = {n: advsets.load(n, split=split, limit=limit, scale=sc, progress=progress)
            for n in names}
    return sets, time.perf_counter() - t0


def _write_attacked(name: str, rows: list[dict], sc: config.Scale, start: float,
                    advs: dict[str, dict], in_load: float, settings: dict) -> dict[str, Any]:
    """Write a results file that rests on cached adversarial sets, and read it back.

    Adds the attack's settings and each set's attack time to ``settings``; ``seconds`` is each
    set's own attack time (when it was made) plus everything else of this call since ``start``.
    """
    attack_seconds = {n: float(a["seconds"]) for n, a in advs.items()}
    settings = {**settings, "target_seed": advsets.TARGET_SEED,
                "attack": attacks.LBFGSSettings().as_dict(), "attack_seconds": attack_seconds}
    own = time.perf_counter() - start - in_load
    results.write(name, rows, scale=sc.name, seconds=own + sum(attack_seconds.values()),
                  settings=settings)
    return results.read(name, sc)


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
    set; realised after clipping for noise). ``seconds`` includes the time the cached attacks
    took when they were made. Writes ``table2.json``.
    """
    from . import transfer

    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist(sc.attack_split, limit=sc.attack_limit)
    advs, in_load = _adv_sets(zoo.TABLE1, sc, sc.attack_split, sc.attack_limit, progress)
    nets = {n: zoo.load(n, scale=sc, progress=progress) for n in zoo.TABLE1}
    sets = {n: a["adversarial"] for n, a in advs.items()}
    sets.update(transfer.noise_sets(x, TABLE2_NOISE, seed=seed))
    matrix = transfer.error_matrix(sets, y, nets)
    dist = {r: attacks.distortion(x, s).mean().item() for r, s in sets.items()}
    rows = _matrix_rows(matrix, paper.TABLE2, dist, paper.TABLE2_DISTORTION)
    settings = {"n": len(x), "split": sc.attack_split, "rows": list(sets), "columns": zoo.TABLE1,
                "noise_stddevs": list(TABLE2_NOISE), "noise_seed": seed, "noise_clipped": True,
                **_transfer_settings(advs, nets, x, y)}
    return _write_attacked("table2", rows, sc, start, advs, in_load, settings)


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
    advs, in_load = _adv_sets(zoo.TABLE3, sc, "test", sc.attack_limit, progress)
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
    return _write_attacked("table3", rows, sc, start, advs, in_load, settings)


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
    from . import transfer

    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("test", limit=sc.attack_limit)
    advs, in_load = _adv_sets(zoo.TABLE3, sc, "test", sc.attack_limit, progress)
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
    return _write_attacked("table4", rows, sc, start, advs, in_load, settings)


#: Every experiment the CLI can run, by results-file name.
EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "table1": table1, "c_sweep": c_sweep, "noise": noise, "units": units,
    "table2": table2, "table3": table3, "table4": table4}
