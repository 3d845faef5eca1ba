"""Property 1 (section 3): are natural units more coherent than random directions?

Two experiments: ``units`` (the paper's question, top-k images of units against random
directions) and ``perturbation_units`` (the same question asked of the paper's adversarial
perturbations, section 4.1: does the change they cause in a hidden layer sit on a few units more
than on a few directions of a random orthonormal basis?).

References: Szegedy et al. 2014, arXiv:1312.6199, sections 3 and 4.1.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..engine import data, zoo
from ..engine.units import DIFFERENCE
from ..plumbing import checks, claims, config, results
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


# --------------------------------------------------------------------------------------------
# Property 1 for adversarial perturbations (beyond the paper): which basis carries the change?

#: The models and hidden layers probed: both sigmoid MLPs of Table 1, both hidden layers.
PERTURBATION_MODELS: tuple[str, ...] = ("FC100-100-10", "FC200-200-10")
PERTURBATION_LAYERS: tuple[str, ...] = ("act1", "act2")
#: Fixed constants (a subset of the transfer curves' cached grid, so no set is attacked again):
#: from perturbations far past the minimum (c = 1e-3) to ones too small to reach the target.
PERTURBATION_C_INDEX: tuple[int, ...] = (0, 3, 6, 9)
#: Random orthonormal bases per image.
PERTURBATION_BASES = 8
#: The set the claims rest on: Table 1's adversarial examples (the search over c).
SEARCH_SET = "search over c"


def _set_name(c: float | None) -> str:
    return SEARCH_SET if c is None else f"c={c:.3g}"


def perturbation_units(scale: str | config.Scale | None = None, *,
                       models: tuple[str, ...] = PERTURBATION_MODELS,
                       layers: tuple[str, ...] = PERTURBATION_LAYERS,
                       c_values: tuple[float, ...] | None = None,
                       n_bases: int = PERTURBATION_BASES, seed: int = 0,
                       n_resamples: int = 2000, progress: bool = True) -> dict[str, Any]:
    """Does an adversarial perturbation move a few units, or a few random directions?

    Property 1 (section 3) asks whether single units carry more meaning than random directions
    of a layer. The same question for the paper's adversarial examples (section 4.1): for each
    image x of Table 1's adversarial set (the search over c, random targets; ``advsets.load``)
    and its example x', the change delta = phi(x') - phi(x) of a hidden layer; the share of
    |delta|^2 on its k largest coordinates in the unit basis against the mean over
    ``n_bases`` seeded random orthonormal bases (``perturbation_units.compare_shares``), for
    k = 1, 5 and 10% of the layer. The same at a few fixed c (``advsets.fixed_c``, the sets of
    the transfer curves), where every image's perturbation counts whether or not it reached
    the target. Examples that left the layer unchanged (the image was already of the target
    class) are left out. Both hidden layers of both sigmoid MLPs: the first hidden layer is
    where the perturbation enters (delta is about sigma'(z) * W r, one sigmoid away from the
    pixels), the second shows what the network makes of it one layer on.

    Rows: one per (model, layer, set, k) with the means and bootstrap intervals of the unit
    and random shares and of their paired difference, the expected random share
    (``perturbation_units.expected_random_share``), the Wilcoxon p-value, the share of images
    where units carry more, the mean |delta|, the distortion and the success rate. Every
    ``paper`` is None (the paper does not ask this). Writes ``perturbation_units.json``.

    Raises:
        ValueError: an unknown model, a layer the model lacks, or a bad ``n_bases``.
    """
    from ..engine import advsets
    from ..engine import perturbation_units as pu
    from ..engine import units as units_mod
    from .transferability import TRANSFER_C_GRID, TRANSFER_N

    sc = config.get_scale(scale)
    checks.positive_int("n_bases", n_bases)
    for m in models:
        zoo.spec(m)
    if c_values is None:
        c_values = tuple(TRANSFER_C_GRID[i] for i in PERTURBATION_C_INDEX)
    start = time.perf_counter()
    n_fixed = min(TRANSFER_N, sc.attack_limit or TRANSFER_N)
    rows: list[dict[str, Any]] = []
    dims: dict[str, int] = {}
    for name in models:
        net = zoo.load(name, scale=sc, progress=progress)
        valid = units_mod.layer_names(net)
        if not layers or any(lay not in valid for lay in layers):
            raise ValueError(f"layers must be layers of {name} ({valid}), got {list(layers)}")
        sets: list[tuple[float | None, dict]] = [(None, advsets.load(name, scale=sc,
                                                                     progress=progress))]
        sets += [(c, advsets.fixed_c(name, c, split="test", limit=n_fixed, scale=sc,
                                     progress=progress)) for c in c_values]
        for c, adv in sets:
            keep = adv["success"].bool() if c is None else torch.ones(len(adv["success"]),
                                                                      dtype=torch.bool)
            for layer in layers:
                delta = pu.hidden_change(net, layer, adv["images"], adv["adversarial"])
                moved = keep & (delta.square().sum(1) > 0)
                dims[f"{name}/{layer}"] = int(delta.shape[1])
                cmp = pu.compare_shares(delta[moved], n_bases=n_bases, seed=seed,
                                        n_resamples=n_resamples)
                extra = {"norm": delta[moved].norm(dim=1).mean().item(),
                         "distortion": adv["distortion"][moved].double().mean().item(),
                         "success": adv["success"][moved].float().mean().item(),
                         "c_value": None if c is None else float(c)}
                for r in cmp.rows:
                    rows.append({
                        "model": name, "layer": layer, "set": _set_name(c), "k": str(r["k"]),
                        "k_kind": "fraction" if r["k"] not in pu.FIXED_KS else "fixed",
                        **{f: results.cell(r[f]) for f in (
                            "unit", "unit_low", "unit_high", "random", "random_low",
                            "random_high", "difference", "difference_low", "difference_high",
                            "expected", "p", "wins", "n")},
                        **{f: results.cell(v) for f, v in extra.items()}})
    settings = {"models": list(models), "layers": list(layers), "units": dims,
                "sets": [SEARCH_SET] + [_set_name(c) for c in c_values],
                "c_values": [float(c) for c in c_values], "n_fixed_c": n_fixed,
                "search_set": "advsets.load: Table 1's adversarial set (random targets, search "
                              "over c); examples that reached their target",
                "fixed_c_sets": "advsets.fixed_c: the transfer curves' sets, every image",
                "ks": f"{list(pu.FIXED_KS)} and {pu.FRACTION_K:.0%} of the layer",
                "n_bases": n_bases, "seed": seed,
                "bases": "units.random_rotation(D, seed + i), i < n_bases (Haar)",
                "expected": "perturbation_units.expected_random_share (exact, any delta)",
                "n_resamples": n_resamples, "level": 0.95,
                "bootstrap": "scipy.stats.bootstrap, percentile intervals",
                "test": "scipy.stats.wilcoxon, two-sided, paired by image",
                "correction": "Holm-Bonferroni over the search set's comparisons, alpha 0.05"}
    results.write("perturbation_units", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings=settings, summarize=summarize_perturbation_units)
    return results.read("perturbation_units", sc)


def _pu_side(difference: float, p: float) -> str:
    """Which basis a paired test at ``ALPHA`` finds carrying more of the change on its top k."""
    if p >= ALPHA or difference == 0:
        return "neither"
    return "units" if difference > 0 else "random"


def summarize_perturbation_units(doc: dict[str, Any]) -> dict[str, Any]:
    """The summaries and claims of ``perturbation_units.json`` (both Property 1 chapters).

    One paired comparison per (model, layer, k) on the search set; their Wilcoxon p-values are
    Holm-corrected together (``holm``), as ``summarize_units`` does for the coherence tests.

    Claims (all beyond the paper, ``paper=None``):
        ``perturbation_units``: across those comparisons, in how many the top-k units carry
            significantly more of the change than the top-k directions of random orthonormal
            bases, in how many less, in how many neither. Outcome "units" when units carry more
            in all, "random" when random bases do in all, "mixed" otherwise.
        ``perturbation_layers``: the figures per probed layer at k = 10% of the layer: the
            units' share with its interval, the random bases' share and its expectation.
        ``perturbation_c``: over the fixed c, whether the units of every probed first layer
            carry more than the random bases at every c ("every_c") or not ("not_every_c").

    References: Szegedy et al. 2014, arXiv:1312.6199, sections 3 and 4.1.
    """
    rows = doc["rows"]
    search = [r for r in rows if r["set"] == SEARCH_SET]
    if not search:
        return {"summaries": {}, "claims": []}
    p_raw = [r["p"]["ours"] for r in search]
    p_adj = holm(p_raw)
    comparisons = []
    for r, p, ph in zip(search, p_raw, p_adj):
        diff = r["difference"]["ours"]
        comparisons.append({
            "model": r["model"], "layer": r["layer"], "k": r["k"], "k_kind": r["k_kind"],
            "unit": r["unit"]["ours"], "random": r["random"]["ours"],
            "expected": r["expected"]["ours"], "difference": diff,
            "ci_low": r["difference_low"]["ours"], "ci_high": r["difference_high"]["ours"],
            "p": p, "p_holm": float(ph), "carries_more": _pu_side(diff, float(ph)),
            "wins": r["wins"]["ours"], "n": int(r["n"]["ours"])})
    m = len(comparisons)
    tally = {side: sum(c["carries_more"] == side for c in comparisons)
             for side in ("units", "random", "neither")}
    probes = list(dict.fromkeys((c["model"], c["layer"]) for c in comparisons))
    headline = {f"{mo}/{la}": next(c for c in comparisons if c["model"] == mo
                                   and c["layer"] == la and c["k_kind"] == "fraction")
                for mo, la in probes}
    fixed = [r for r in rows if r["set"] != SEARCH_SET and r["k_kind"] == "fraction"]
    by_c = [{"model": r["model"], "layer": r["layer"], "set": r["set"],
             "c": r["c_value"]["ours"], "unit": r["unit"]["ours"],
             "random": r["random"]["ours"], "success": r["success"]["ours"],
             "difference": r["difference"]["ours"], "ci_low": r["difference_low"]["ours"],
             "ci_high": r["difference_high"]["ours"]} for r in fixed]
    summaries = {"alpha": ALPHA, "n_comparisons": m, "tally": tally,
                 "comparisons": comparisons, "headline": headline, "fixed_c": by_c,
                 "correction": "Holm-Bonferroni over the search set's comparisons"}

    ks = ", ".join(dict.fromkeys(c["k"] if c["k_kind"] == "fixed" else "10% of the layer"
                                 for c in comparisons))
    fig = {"m": m, "u": _count(tally["units"]), "r": _count(tally["random"]),
           "n": _count(tally["neither"]), "models": len({c["model"] for c in comparisons}),
           "layers": len(probes), "ks": ks}
    setup = ("Across the {m} comparisons on Table 1's adversarial examples ({layers} hidden "
             "layers of {models} networks; k = {ks}; Wilcoxon signed-rank tests paired by image, "
             "Holm-corrected at 5%), ")
    outcome = ("units" if tally["units"] == m else "random" if tally["random"] == m
               else "mixed")
    out = [claims.make(
        "perturbation_units", paper=None, outcome=outcome, figures=fig,
        text={"units": setup + "the top-k units carry significantly more of the change in the "
                               "hidden layer than the top-k directions of random orthonormal "
                               "bases in every one.",
              "random": setup + "the top-k directions of random orthonormal bases carry "
                                "significantly more of the change than the top-k units in "
                                "every one.",
              "mixed": setup + "the top-k units carry significantly more of the change than "
                               "the top-k directions of random orthonormal bases in {u}, "
                               "significantly less in {r}, and neither in {n}: which basis "
                               "concentrates the change depends on the layer."})]

    parts = []
    for key, c in headline.items():
        parts.append(f"{key} (k = {c['k']}): units {c['unit']:.0%}, random bases "
                     f"{c['random']:.0%} (expected {c['expected']:.0%}), difference "
                     f"{c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]")
    lfig = {"list": "; ".join(parts), "n": min(c["n"] for c in comparisons)}
    lead = ("Share of the change in a hidden layer carried by its top 10% of coordinates, mean "
            "over at least {n:,} adversarial examples per layer with 95% bootstrap intervals "
            "of the paired difference: {list}.")
    louts = {c["carries_more"] for c in headline.values()}
    lout = louts.pop() if len(louts) == 1 else "mixed"
    out.append(claims.make(
        "perturbation_layers", paper=None, outcome=lout, figures=lfig,
        text={"units": lead + " Units carry more in every probed layer.",
              "random": lead + " Random directions carry more in every probed layer.",
              "neither": lead + " No probed layer shows a significant difference.",
              "mixed": lead + " The layers disagree."}))

    if by_c:
        firsts = [b for b in by_c if b["layer"] == probes[0][1]]
        every = all(b["ci_low"] > 0 for b in firsts)
        cfig = {"cmin": min(b["c"] for b in by_c), "cmax": max(b["c"] for b in by_c),
                "lo": min(b["unit"] for b in firsts), "hi": max(b["unit"] for b in firsts),
                "rlo": min(b["random"] for b in firsts), "rhi": max(b["random"] for b in firsts),
                "layer": probes[0][1], "sets": len({b["c"] for b in by_c})}
        head = ("At each of {sets} fixed c from {cmin:.3g} to {cmax:.3g} (one solve per image, "
                "every image counted whether or not it reached its target), the top 10% of "
                "units of the first probed layer ({layer}) carry {lo:.0%} to {hi:.0%} of the "
                "change, random orthonormal bases {rlo:.0%} to {rhi:.0%}: ")
        out.append(claims.make(
            "perturbation_c", paper=None, outcome="every_c" if every else "not_every_c",
            figures=cfig,
            text={"every_c": head + "units carry more at every c, the interval of the "
                                    "difference above zero in each case.",
                  "not_every_c": head + "at some c the interval of the difference reaches "
                                        "zero or below."}))
    return {"summaries": summaries, "claims": out}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("units", units, summarize_units, "chapters/random_directions",
               models=tuple(dict.fromkeys(m for p in UNIT_PROBES for m in (p[0], p[2]))),
               after=(), cost=20),
    Experiment("perturbation_units", perturbation_units, summarize_perturbation_units,
               "chapters/random_directions", models=PERTURBATION_MODELS,
               after=("table1", "transfer_curves"), cost=25),
)
