"""Property 1 (section 3): are natural units more coherent than random directions?

References: Szegedy et al. 2014, arXiv:1312.6199, section 3.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..engine import data, zoo
from ..engine.units import DIFFERENCE
from ..plumbing import claims, config, results
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
    means. The paper judges by eye, so every ``paper`` is None. Writes ``units.json`` with the
    summaries and claims of ``summarize_units`` (counts after a Holm-Bonferroni correction).
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
                "test": "scipy.stats.mannwhitneyu, two-sided",
                "bootstrap": "scipy.stats.bootstrap, percentile intervals",
                "correction": "Holm-Bonferroni (summaries), alpha 0.05"}
    results.write("units", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings=settings,
                  summarize=summarize_units)
    return results.read("units", sc)


#: Significance level of every test the claims count, after the correction.
ALPHA = 0.05


def holm(pvalues: Any) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, float64 ``(m,)`` in the input's order.

    The i-th smallest p-value is multiplied by ``m - i + 1`` (i from 1), the products are made
    non-decreasing in that order and capped at 1. Rejecting where the adjusted p is below alpha
    keeps the chance of any false rejection among the m tests at most alpha, whatever their
    dependence (Holm 1979).

    Raises:
        ValueError: a p-value outside [0, 1] or not finite.
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"pvalues must be finite numbers in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _ours(row: dict[str, Any], field: str) -> float | None:
    value = row.get(field)
    return None if value is None else value["ours"]


def _side(difference: float, p: float) -> str:
    """Which group a two-sided test at ``ALPHA`` finds more coherent: "units", "directions" or
    "neither" (the sign of the difference of means gives the side)."""
    if p >= ALPHA or difference == 0:
        return "neither"
    return "units" if difference > 0 else "directions"


def _count(n: int) -> str:
    return "none" if n == 0 else str(n)


def summarize_units(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims ``units.json`` carries for the two Property 1 chapters.

    The comparison of units with random directions is one two-sided Mann-Whitney U test per
    (probed layer, k, measure): 24 at book scale. Counting the tests below 5% without a
    correction would, with 24 tests and no difference at all, find about one "significant"
    comparison by chance, so the counts are Holm-Bonferroni corrected (``holm``), and the
    uncorrected counts are recorded beside them. Holm rather than Benjamini-Hochberg
    (``scipy.stats.false_discovery_control``): the claim is about *any* comparison ("in no
    comparison are units more coherent"), a family-wise statement that Holm controls, and the 24
    tests are dependent (the same units at three k, scored by two measures), which Holm allows
    whatever the dependence, while BH's guarantee needs positive dependence and bounds only the
    share of false discoveries. Which group a significant test favours is the sign of the
    difference of means.

    Claims:
        ``units_vs_directions`` (section 3: the natural basis is no better than a random one):
            reproduced when, after the correction, no comparison finds units more coherent than
            random directions. Random directions that come out significantly *more* coherent
            than units leave the natural basis no better, so they do not change this verdict;
            they are the subject of ``no_distinction``. Opposite when units are significantly
            more coherent in at least half of the comparisons and in more of them than
            directions are; differs when they are in some.
        ``no_distinction`` (abstract: "no distinction between individual high level units and
            random linear combinations"): the stricter reading, reproduced only when, after the
            correction, no comparison finds either group more coherent; random directions that
            are significantly more coherent than units make it differ.
        ``units_above_floor`` and ``directions_above_floor`` (Figs. 1 and 2: each row shares
            semantic properties): each group against k random test images (the floor), Holm
            over that group's comparisons; reproduced when all are significantly above the
            floor, opposite when none is, differs otherwise.
        ``convnet_purity`` (beyond the paper): on the first probed layer (ConvNet's feature
            layer, the counterpart of the paper's Figures 1 and 2) label purity at the smallest
            k for units, directions and the floor, the difference and its test.
        ``dead_units`` (beyond the paper): how many units of the first probed layer never fire
            on a test image and are left out.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 3; S. Holm, "A simple sequentially
        rejective multiple test procedure", Scand. J. Statistics 6 (1979).
    """
    rows = doc["rows"]
    settings = doc["settings"]
    diffs = [r for r in rows if r["group"] == DIFFERENCE]
    if not diffs:
        return {"summaries": {}, "claims": []}

    def group_row(d: dict[str, Any], group: str) -> dict[str, Any]:
        return results.row(doc, model=d["model"], layer=d["layer"], k=d["k"],
                           measure=d["measure"], group=group)

    p_raw = [1.0 if _ours(d, "p_vs_directions") is None else _ours(d, "p_vs_directions")
             for d in diffs]
    p_adj = holm(p_raw)
    comparisons = []
    for d, p, ph in zip(diffs, p_raw, p_adj):
        diff = d["mean"]["ours"]
        comparisons.append({
            "probe": f"{d['model']}/{d['layer']}", "model": d["model"], "layer": d["layer"],
            "k": d["k"], "measure": d["measure"], "difference": diff,
            "ci_low": _ours(d, "ci_low"), "ci_high": _ours(d, "ci_high"), "p": p,
            "p_holm": float(ph), "more_coherent": _side(diff, float(ph)),
            "more_coherent_uncorrected": _side(diff, p)})
    m = len(comparisons)

    def tally(key: str) -> dict[str, int]:
        return {side: sum(c[key] == side for c in comparisons)
                for side in ("units", "directions", "neither")}

    corrected, uncorrected = tally("more_coherent"), tally("more_coherent_uncorrected")

    floor: dict[str, dict[str, Any]] = {}
    for group in ("units", "directions"):
        g_rows = [group_row(d, group) for d in diffs]
        f_rows = [group_row(d, "random") for d in diffs]
        p = [1.0 if _ours(r, "p_vs_random") is None else _ours(r, "p_vs_random") for r in g_rows]
        ph = holm(p)
        above = [g["mean"]["ours"] > f["mean"]["ours"] for g, f in zip(g_rows, f_rows)]
        floor[group] = {"corrected": int(sum(a and q < ALPHA for a, q in zip(above, ph))),
                        "uncorrected": int(sum(a and q < ALPHA for a, q in zip(above, p))),
                        "of": m, "p_holm_max": float(ph.max())}

    dead = {probe: {"dead": len(ids), "of": int(settings["units"][probe])}
            for probe, ids in settings.get("dead_units", {}).items()}
    summaries = {
        "alpha": ALPHA,
        "correction": "Holm-Bonferroni over the comparisons of units with directions; "
                      "separately over each group's comparisons with the floor",
        "n_comparisons": m, "corrected": corrected, "uncorrected": uncorrected,
        "comparisons": comparisons, "above_floor": floor, "dead_units": dead}

    probes = list(dict.fromkeys(c["probe"] for c in comparisons))
    ks = sorted({int(c["k"]) for c in comparisons})
    measures = list(dict.fromkeys(c["measure"] for c in comparisons))
    u, dr = corrected["units"], corrected["directions"]
    fig = {"m": m, "u": _count(u), "d": _count(dr), "n": corrected["neither"],
           "u0": _count(uncorrected["units"]), "d0": _count(uncorrected["directions"]),
           "layers": len(probes), "ks": ", ".join(map(str, ks)), "measures": len(measures),
           "u0_note": ("nor in any without the correction" if uncorrected["units"] == 0
                       else f"in {uncorrected['units']} without the correction")}
    setup = ("Across the {m} comparisons ({layers} layers, k = {ks}, {measures} measures; "
             "two-sided Mann-Whitney U tests, Holm-corrected at 5%), ")
    if u == 0:
        outcome = claims.REPRODUCED
    elif u * 2 >= m and u > dr:
        outcome = claims.OPPOSITE
    else:
        outcome = claims.DIFFERS
    measures_reason = ("Label purity and cosine similarity in an independent network are our "
                       "measures of \"semantically coherent\"; the paper judged by eye, on a "
                       "convolutional network and layer it does not specify.")
    out = [claims.make(
        "units_vs_directions",
        paper="Section 3: the natural basis is not better than a random basis for inspecting a "
              "layer; the images that maximise a single unit are no more semantically coherent "
              "than those that maximise a random direction (judged by eye, Figs. 1-2).",
        outcome=outcome, figures=fig,
        text={claims.REPRODUCED: setup + "units were significantly more coherent than random "
                                         "directions in none of them ({u0_note}).",
              claims.DIFFERS: setup + "units were significantly more coherent than random "
                                      "directions in {u} of them (without the correction: in "
                                      "{u0}): there the natural basis is better than a random "
                                      "one.",
              claims.OPPOSITE: setup + "units were significantly more coherent than random "
                                       "directions in {u} of them (without the correction: in "
                                       "{u0}): as a rule the natural basis is more coherent "
                                       "than a random one."},
        reason=measures_reason)]
    tail = " (without the correction: units in {u0}, random directions in {d0})"
    favour = ("always in the random directions' favour" if u == 0
              else "always in the units' favour" if dr == 0 else "in both directions")
    out.append(claims.make(
        "no_distinction",
        paper="Abstract and section 3: there is no distinction between individual high-level "
              "units and random linear combinations of them; the images that maximise a random "
              "direction look as semantically coherent as a unit's (Fig. 2).",
        outcome=claims.REPRODUCED if u == dr == 0 else claims.DIFFERS,
        figures={**fig, "favour": favour},
        text={claims.REPRODUCED: "After the correction no comparison finds either group "
                                 "significantly more coherent" + tail + ": our tests find no "
                                 "difference between units and random directions.",
              claims.DIFFERS: "After the correction random directions were significantly more "
                              "coherent than units in {d} of the {m} comparisons and units than "
                              "random directions in {u}" + tail + ": our tests do tell the two "
                              "apart, {favour}."},
        reason="A test of every unit of a layer against as many random directions can detect a "
               "small systematic difference that a look at a few rows cannot; " + measures_reason))

    first = probes[0]
    model, layer = first.split("/", 1)
    k_mid = ks[len(ks) // 2]
    cell_rows = {g: results.row(doc, model=model, layer=layer, k=str(k_mid), measure="purity",
                                group=g) for g in ("units", "random")}
    for group, label, paper_text in (
            ("units", "units", "Fig. 1 (section 3): the images that maximise a single unit share "
                               "semantic properties."),
            ("directions", "random directions",
             "Fig. 2 (section 3): the images that maximise a random direction share many "
             "semantic properties.")):
        f = floor[group]
        a = f["corrected"]
        ffig = {"a": _count(a), "m": m, "p": f["p_holm_max"], "who": label}
        lead = "The top-k sets of {who} are significantly more coherent than k random test images "
        tail = " (Holm-corrected at 5%)"
        if group == "units":
            ffig.update(probe=f"{model}'s {layer} layer", k=k_mid,
                        pu=cell_rows["units"]["mean"]["ours"],
                        pf=cell_rows["random"]["mean"]["ours"])
            tail += ("; on {probe} at k = {k} their mean label purity is {pu:.2f}, against "
                     "{pf:.2f} for random test images")
        oc = (claims.REPRODUCED if a == m else claims.OPPOSITE if a == 0 else claims.DIFFERS)
        out.append(claims.make(
            f"{group}_above_floor", paper=paper_text, outcome=oc, figures=ffig,
            text={claims.REPRODUCED: lead + "in all {m} comparisons" + tail + ".",
                  claims.DIFFERS: lead + "in only {a} of the {m} comparisons" + tail + ".",
                  claims.OPPOSITE: lead + "in none of the {m} comparisons" + tail + "."},
            reason="Our measures of coherence are label purity and cosine similarity in an "
                   "independent network; the paper judged by eye."))

    k0 = ks[0]
    conv = next(c for c in comparisons if (c["probe"], int(c["k"]), c["measure"])
                == (first, k0, "purity"))
    means = {g: results.row(doc, model=model, layer=layer, k=str(k0), measure="purity",
                            group=g)["mean"]["ours"] for g in ("units", "directions", "random")}
    cfig = {"probe": f"{model}'s {layer} layer", "k": k0, "u": means["units"],
            "d": means["directions"], "f": means["random"], "diff": conv["difference"],
            "lo": conv["ci_low"], "hi": conv["ci_high"], "p": conv["p"], "ph": conv["p_holm"]}
    head = ("On {probe}, label purity at k = {k} is {u:.3f} for units and {d:.3f} for random "
            "directions ({f:.3f} for random test images); the difference, {diff:+.3f} with 95% "
            "interval [{lo:.3f}, {hi:.3f}] and p = {p:.2g} ({ph:.2g} after the correction), ")
    out.append(claims.make(
        "convnet_purity", paper=None, outcome=conv["more_coherent"], figures=cfig,
        text={"neither": head + "is not significant.",
              "units": head + "is significant: here units pick purer sets.",
              "directions": head + "is significant: here random directions pick purer sets."}))

    rest = [f"{p}: {dead[p]['dead']} of {dead[p]['of']}" for p in probes[1:]
            if dead.get(p, {}).get("dead")]
    dfig = {"probe": f"{model}'s {layer} layer", "dead": dead[first]["dead"],
            "units": dead[first]["of"], "n": int(settings["n_images"]),
            "rest": "; ".join(rest) if rest else "none"}
    out.append(claims.make(
        "dead_units", paper=None, outcome="some" if dfig["dead"] else "none", figures=dfig,
        text={"some": "{dead} of the {units} units of {probe} never change on the {n:,} test "
                      "images (dead ReLUs) and are left out of the comparison; in the other "
                      "probed layers: {rest}.",
              "none": "Every one of the {units} units of {probe} changes on the {n:,} test "
                      "images, so the comparison leaves none out; in the other probed layers "
                      "dead units: {rest}."}))
    return {"summaries": summaries, "claims": out}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("units", units, summarize_units, "chapters/random_directions",
               models=tuple(dict.fromkeys(m for p in UNIT_PROBES for m in (p[0], p[2]))),
               after=(), cost=20),
)
