"""The experiments that write ``data/results/*.json``: one function per results file.

Why: a chapter shows numbers; it does not compute them in ad-hoc cells. Each function here runs
one of the paper's tables at the configured scale, writes its results file atomically (ours beside
the paper's, with scale, seconds, commit and settings) and returns the document. The CLI's
``python -m intriguing reproduce`` and the chapters call the same functions.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3.
"""

from __future__ import annotations

import math
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
    ``seconds`` includes the time the cached attacks took when they were made. Writes
    ``transfer_curves.json``.

    Raises:
        ValueError: a source or target that is not a zoo model, an empty list of either, or an
            empty, unsorted or non-positive ``c_grid``.
    """
    from . import transfer

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
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
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
                "noise": "one Gaussian draw per image, scaled so the clipped image has the "
                         "adversarial example's distortion (transfer.matched_noise)",
                "error": "fraction misclassified w.r.t. the true label",
                "clean_error": {t: train.error_rate(nets[t], x, y) for t in targets}}
    return _write_attacked("transfer_curves", rows, sc, start, advs, in_load, settings)


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
    from . import models, spectral

    sc = config.get_scale(scale)
    start = time.perf_counter()
    xt, _ = data.load_mnist("test", limit=sc.test_limit)
    n_conv = min(convnet_n, sc.attack_limit or convnet_n)
    advs, in_load = {}, 0.0
    for names, split, limit in ((zoo.TABLE1, sc.attack_split, sc.attack_limit),
                                (zoo.TABLE3, "test", sc.attack_limit),
                                (["ConvNet"], "test", n_conv)):
        sets, seconds = _adv_sets(names, sc, split, limit, progress)
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
    return _write_attacked("table5", rows, sc, start, advs, in_load, settings)


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
    from . import advtrain as adv

    sc = config.get_scale(scale)
    out = adv.compare(sc, progress=progress)
    table1 = paper.TABLE1[out["settings"]["model"]]
    ref_dist = {"weight decay": table1["distortion"], "adversarial training": None}
    rows = []
    for name, m in out["models"].items():
        rows.append({
            "model": name, "status": "run",
            "train_error": results.cell(m["train_error"], None),
            "test_error": results.cell(m["test_error"], adv.PAPER_TEST_ERROR[name]),
            "distortion": results.cell(m["distortion"], ref_dist[name]),
            "distortion_median": results.cell(m["distortion_median"], None),
            "success": results.cell(m["success"], None),
            "error_on_other_adversarial": results.cell(m["error_on_other_adversarial"], None)})
    rows.append({"model": "dropout", "status": "not run",
                 "test_error": results.cell(None, adv.PAPER_TEST_ERROR["dropout"]),
                 **{f: results.cell(None, None) for f in (
                     "train_error", "distortion", "distortion_median", "success",
                     "error_on_other_adversarial")}})
    settings = {k: v for k, v in out.items() if k != "models"}
    settings["paper_distortion"] = "the weight-decay row's is Table 1's FC100-100-10 figure"
    results.write("advtrain", rows, scale=sc.name,
                  seconds=out["cost_seconds"]["total"], settings=settings)
    return results.read("advtrain", sc)


#: Every experiment the CLI can run, by results-file name.
EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "table1": table1, "c_sweep": c_sweep, "noise": noise, "units": units,
    "table2": table2, "table3": table3, "table4": table4,
    "transfer_curves": transfer_curves, "table5": table5, "advtrain": advtrain}
