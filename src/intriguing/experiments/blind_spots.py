"""Blind spots (section 4.1-4.2): Table 1, the c sweep and the noise comparison.

Each function runs one experiment at the configured scale and writes its results file.

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1-4.3, Table 1, Fig. 7.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from ..engine import advsets, attacks, data, train, zoo
from ..plumbing import claims, config, results, verdicts
from . import paper
from .common import adversarial_sets, write_attacked
from .registry import Experiment

#: Images per model attacked toward all nine wrong labels, for the rules that need every
#: target (Table 1's every / easiest / hardest / untargeted means); a scale not listed (smoke)
#: uses its ``attack_limit``.
N_RULES: dict[str, int] = {"book": 1000, "paper": 5000}
#: The models on which the two definitions of "the" adversarial example are compared.
DEFINITION_MODELS: tuple[str, ...] = ("FC10(1e-4)", "FC200-200-10")
#: What each target rule means (recorded in table1.json's settings).
RULE_TEXT: dict[str, str] = {
    "random": "one target per image, uniform over the nine wrong labels (seeded); the full "
              "attacked set",
    "every": "all nine wrong labels of each image",
    "easiest": "per image, the wrong label with the smallest distortion found",
    "hardest": "per image, the wrong label with the largest distortion found (a target the "
               "search did not reach counts as the hardest, and as a failure)",
    "untargeted": "any wrong label: the closest successful example over the nine targeted "
                  "searches, equal to 'easiest' by construction",
}


def n_rules(sc: config.Scale) -> int:
    """Images per model of the every-target sets at scale ``sc`` (``N_RULES``)."""
    n = N_RULES.get(sc.name, sc.attack_limit or 1000)
    return min(n, sc.attack_limit) if sc.attack_limit else n


def _correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 5000) -> torch.Tensor:
    """``(N,)`` bool: which images ``model`` classifies correctly."""
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + batch_size]).argmax(1).cpu()
                          for i in range(0, len(x), batch_size)])
    return pred == y


def _mean(values: torch.Tensor, mask: torch.Tensor) -> float | None:
    return values[mask].double().mean().item() if mask.any() else None


def table1(scale: str | config.Scale | None = None, *, progress: bool = True) -> dict[str, Any]:
    """Table 1 for the six MNIST models: train error, test error, average minimum distortion.

    Train error is measured on the training split the model saw (all 60,000 images at book
    scale), test error on the 10,000 test images. The distortion column attacks the scale's
    attacked set (the 10,000 test images at book scale, the 60,000 training images at paper
    scale, as the paper) with the box-constrained L-BFGS search, one random target per image
    (``advsets``), and averages the distortion of the successful examples over the images the
    model classifies correctly, the paper's protocol (``excluded`` counts the others;
    ``distortion_all_images`` keeps the mean over every attacked image for reference); the
    success rate over the same images is reported beside it.

    The paper does not say toward which targets it attacked (section 4.1), so each row also
    holds the mean distortion and success rate under every rule of ``advsets.RULES``: random
    on the full attacked set, the others on the first ``n_rules(scale)`` images attacked
    toward all nine wrong labels (``advsets.every_target``), all over correctly classified
    images. For ``DEFINITION_MODELS`` the row compares the two definitions of "the" example
    on the first ``n_rules`` images: the closest successful point the search saw (the book's,
    ``track_iterates=True``) and the paper's minimiser at the largest successful c
    (``track_iterates=False``: only each solve's minimiser counts). Adversarial sets are
    cached, so a second call costs seconds.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist("train", limit=sc.train_limit)
    xt, yt = data.load_mnist("test", limit=sc.test_limit)
    advs, in_load = adversarial_sets(zoo.TABLE1, sc, sc.attack_split, sc.attack_limit, progress)
    n_every = n_rules(sc)
    t0 = time.perf_counter()
    every = {n: advsets.every_target(n, n=n_every, split=sc.attack_split, scale=sc,
                                     progress=progress) for n in zoo.TABLE1}
    minimiser_settings = replace(attacks.LBFGSSettings(), track_iterates=False)
    minimisers = {n: advsets.load(n, split=sc.attack_split, limit=n_every, scale=sc,
                                  settings=minimiser_settings, progress=progress)
                  for n in DEFINITION_MODELS if n in zoo.TABLE1}
    in_load += time.perf_counter() - t0
    rows = []
    for name in zoo.TABLE1:
        model = zoo.load(name, scale=sc, progress=progress)
        adv, ev = advs[name], every[name]
        ok = adv["success"]
        correct = _correct(model, adv["images"], adv["labels"])
        ref = paper.TABLE1[name]
        row = {
            "model": name,
            "description": str(ref["description"]),
            "train_error": results.cell(train.error_rate(model, x, y), ref["train_error"]),
            "test_error": results.cell(train.error_rate(model, xt, yt), ref["test_error"]),
            "distortion": results.cell(_mean(adv["distortion"], ok & correct),
                                       ref["distortion"]),
            "success": results.cell(_mean(ok.float(), correct), None),
            "excluded": results.cell(int((~correct).sum()), None),
            "distortion_all_images": results.cell(_mean(adv["distortion"], ok),
                                                  ref["distortion"]),
            "success_all_images": results.cell(ok.float().mean().item(), None),
            "evals_per_image": results.cell(adv["evals"].float().mean().item(), None),
            "distortion_random": results.cell(_mean(adv["distortion"], ok & correct),
                                              ref["distortion"]),
            "success_random": results.cell(_mean(ok.float(), correct), None),
        }
        ev_correct = _correct(model, ev["images"], ev["labels"])
        row["excluded_rules"] = results.cell(int((~ev_correct).sum()), None)
        for rule in advsets.RULES[1:]:
            got = advsets.rule_summary(ev["distortion"], ev["success"], rule, keep=ev_correct,
                                       labels=ev["labels"])
            row[f"distortion_{rule}"] = results.cell(got["distortion"], ref["distortion"])
            row[f"success_{rule}"] = results.cell(got["success"], None)
        if name in minimisers:
            mini = minimisers[name]
            k = len(mini["success"])
            both = ok[:k] & mini["success"] & correct[:k]
            row["distortion_closest_seen"] = results.cell(_mean(adv["distortion"][:k], both))
            row["distortion_minimiser"] = results.cell(_mean(mini["distortion"], both))
        rows.append(row)
    settings = {"n_train": len(x), "n_test": len(xt), "attacked_split": sc.attack_split,
                "n_attacked": len(adv["success"]),
                "targets": "uniform over the nine labels other than the true one",
                "target_rule": "random",
                "protocol": "distortion and success over the attacked images the model "
                            "classifies correctly; 'excluded' counts the others, "
                            "'distortion_all_images' averages over every attacked image",
                "rules": {"n": len(next(iter(every.values()))["labels"]),
                          "split": sc.attack_split, "random_n": len(adv["success"]),
                          "meaning": RULE_TEXT},
                "definitions": {
                    "models": list(minimisers), "n": n_every,
                    "closest_seen": "the closest point to the image that the model assigns to "
                                    "the target among every point the search evaluated "
                                    "(track_iterates=True, the book's)",
                    "minimiser": "the minimiser of the paper's problem at the largest c that "
                                 "reaches the target (track_iterates=False: only each solve's "
                                 "final iterate counts; the closest of them is kept, which for "
                                 "an exact solver is the one at the largest successful c)"},
                "models": {n: zoo.spec(n).as_dict() for n in zoo.TABLE1}}
    attacked = {**advs, **{f"{n} (every target)": e for n, e in every.items()},
                **{f"{n} (minimiser)": m for n, m in minimisers.items()}}
    return write_attacked("table1", rows, sc, start, attacked, in_load, settings,
                          summarize=summarize_table1)


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
                            "attack": attacks.LBFGSSettings().as_dict()},
                  summarize=summarize_c_sweep)
    return results.read("c_sweep", sc)


def noise(scale: str | config.Scale | None = None, *, stddevs: tuple[float, ...] = NOISE_STDDEVS,
          seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Accuracy under Gaussian noise against accuracy on the adversarial sets (Fig. 7's point).

    Noise is ``x + N(0, stddev^2)`` (``attacks.gaussian_noise``), read two ways, since the paper
    does not say whether it clipped: clipped to [0,1] (the images stay in the box the models were
    trained on; clipping lowers the realised per-pixel stddev) and unclipped (the realised RMS is
    the nominal stddev; the models see pixels outside [0,1]). Both readings add the same draw;
    each row reports its realised RMS as ``distortion`` and ``clipped`` says which reading it is.
    The adversarial rows use Table 1's cached sets. Writes ``noise.json``.
    """
    sc = config.get_scale(scale)
    start = time.perf_counter()
    x, y = data.load_mnist(sc.attack_split, limit=sc.attack_limit)
    gen = torch.Generator().manual_seed(seed)
    raw = {s: attacks.gaussian_noise(x, s, generator=gen, clip=False) for s in stddevs}
    readings = [(f"Gaussian noise, stddev={s:g}", "yes", xn.clamp(0, 1)) for s, xn in raw.items()]
    readings += [(f"Gaussian noise, stddev={s:g}, unclipped", "no", xn) for s, xn in raw.items()]
    rows = []
    for name in zoo.TABLE1:
        net = zoo.load(name, scale=sc, progress=progress)
        for label, clipped, xn in readings:
            rows.append({"model": name, "input": label, "clipped": clipped,
                         "accuracy": results.cell(1 - train.error_rate(net, xn, y)),
                         "distortion": results.cell(attacks.distortion(x, xn).mean().item())})
        adv = advsets.load(name, scale=sc, progress=progress)
        rows.append({"model": name, "input": "adversarial (Table 1 set)",
                     "accuracy": results.cell(1 - train.error_rate(net, adv["adversarial"], y)),
                     "distortion": results.cell(adv["distortion"].mean().item())})
    results.write("noise", rows, scale=sc.name, seconds=time.perf_counter() - start,
                  settings={"n": len(x), "split": sc.attack_split, "stddevs": list(stddevs),
                            "readings": "clipped to [0, 1], and unclipped (the same draw)",
                            "seed": seed},
                  summarize=summarize_noise)
    return results.read("noise", sc)


#: Why our Table 1 distortions may differ from the paper's (the scorecard and the chapter say it).
DISTORTION_REASON = (
    "The paper does not say toward which targets it attacked: ours are uniform over the wrong "
    "labels, and the distortion depends strongly on the target (see the target-rule claim); "
    "our search keeps the smallest successful perturbation over every c it tries and bisects c "
    "per image; book scale attacks the test set, the paper its training set.")


def _by_model(doc: dict[str, Any], field: str) -> dict[str, float | None]:
    return {r["model"]: r[field]["ours"] for r in doc["rows"] if field in r}


#: The success claim's sentences: by the images success is counted over ("correct": those the
#: model classifies correctly; "all": a file from before the protocol), then by whether every
#: image was fooled.
_FOOLED_TEXT: dict[str, dict[bool, dict[str, str]]] = {
    "all": {
        True: {claims.REPRODUCED: "Every model of Table 1 is fooled on all {n:,} attacked images.",
               claims.DIFFERS: "The attack reaches its target on only {success_min:.1%} of the "
                               "{n:,} attacked images for {worst}."},
        False: {claims.REPRODUCED: "Every model of Table 1 is fooled on at least "
                                   "{success_min:.1%} of the {n:,} attacked images.",
                claims.DIFFERS: "The attack reaches its target on only {success_min:.1%} of "
                                "the {n:,} attacked images for {worst}."}},
    "correct": {
        True: {claims.REPRODUCED: "Every model of Table 1 is fooled on every image it "
                                  "classifies correctly, of the {n:,} attacked.",
               claims.DIFFERS: "The attack reaches its target on only {success_min:.1%} of the "
                               "images {worst} classifies correctly, of the {n:,} attacked."},
        False: {claims.REPRODUCED: "Every model of Table 1 is fooled on at least "
                                   "{success_min:.1%} of the images it classifies correctly, of "
                                   "the {n:,} attacked.",
                claims.DIFFERS: "The attack reaches its target on only {success_min:.1%} of "
                                "the images {worst} classifies correctly, of the {n:,} "
                                "attacked."}},
}


def summarize_table1(doc: dict[str, Any]) -> dict[str, Any]:
    """Table 1's summaries and the claims the model-zoo and blind-spots chapters state.

    Claims: every model is fooled on (nearly) every attacked image (section 4.2); our
    distortions against the paper's (Table 1, judged by ``verdicts.TOLERANCES["distortion"]``);
    the linear models' distortions grow with their weight decay (Table 1's FC10 rows); the
    test errors against the paper's (``TOLERANCES["error"]``); and those of ``_rule_claims``:
    which target rule the paper's figures are consistent with, the misclassified images left
    out, and the two definitions of the example.
    """
    rows = {r["model"]: r for r in doc["rows"]}
    dist = {m: r["distortion"]["ours"] for m, r in rows.items()}
    ratios = {m: r["distortion"]["ours"] / r["distortion"]["paper"] for m, r in rows.items()
              if r["distortion"]["ours"] is not None and r["distortion"]["paper"]}
    success = {m: r["success"]["ours"] for m, r in rows.items()}
    n = doc["settings"].get("n_attacked")
    close = [m for m, r in rows.items()
             if verdicts.judge(r["distortion"]["ours"], r["distortion"]["paper"], "distortion")
             == verdicts.REPRODUCED]
    errors_ok = [m for m, r in rows.items()
                 if verdicts.judge(r["test_error"]["ours"], r["test_error"]["paper"], "error")
                 == verdicts.REPRODUCED]
    linear = [m for m in rows if m.startswith("FC10(")]
    lin = [dist[m] for m in linear]
    lin_paper = [rows[m]["distortion"]["paper"] for m in linear]
    grows = all(a < b for a, b in zip(lin, lin[1:]))
    shrinks = all(a > b for a, b in zip(lin, lin[1:]))
    summaries = {
        "n_attacked": n, "success_min": min(success.values()),
        "distortion_ratio_min": min(ratios.values()), "distortion_ratio_max": max(ratios.values()),
        "distortion_ratio": ratios, "distortion_within_tolerance": close,
        "test_error_within_tolerance": errors_ok}
    fig = {"success_min": min(success.values()), "n": n or 0,
           "worst": min(success, key=success.get),
           # success is over the images a model classifies correctly, where rows say so
           "scope": ("correct" if all("excluded" in r for r in rows.values()) else "all")}
    out = [
        claims.make(
            "fooled_everywhere",
            paper="Section 4.2: for every network and every sample, an adversarial example "
                  "very close to it was found.",
            outcome=claims.REPRODUCED if fig["success_min"] >= 0.99 else claims.DIFFERS,
            figures=fig,
            text=_FOOLED_TEXT[fig["scope"]][fig["success_min"] == 1],
            reason="The search did not reach every target within its settings."),
        claims.make(
            "distortion_vs_paper",
            paper="Table 1: average minimum distortions of 0.062 to 0.14 for the six models.",
            outcome=claims.REPRODUCED if len(close) == len(ratios) else claims.DIFFERS,
            figures={"lo": min(ratios.values()), "hi": max(ratios.values()),
                     "k": len(close), "m": len(ratios)},
            text={claims.REPRODUCED: "Our average minimum distortions are {lo:.2f} to {hi:.2f} "
                                     "times the paper's, within the tolerance for all {m} models.",
                  claims.DIFFERS: "Our average minimum distortions are {lo:.2f} to {hi:.2f} "
                                  "times the paper's; {k} of the {m} models are within the "
                                  "tolerance of 20%."},
            reason=DISTORTION_REASON),
        claims.make(
            "linear_order",
            paper="Table 1: the more a linear model is regularised, the larger its average "
                  "minimum distortion (0.062, 0.1, 0.14 for lambda = 1e-4, 1e-2, 1).",
            outcome=(claims.REPRODUCED if grows else claims.OPPOSITE if shrinks
                     else claims.DIFFERS),
            figures={"d": ", ".join(f"{v:.3f}" for v in lin),
                     "p": ", ".join(f"{v:g}" for v in lin_paper)},
            text={claims.REPRODUCED: "Our linear models' distortions grow with their weight "
                                     "decay too: {d}.",
                  claims.OPPOSITE: "Our linear models' distortions fall as their weight decay "
                                   "grows: {d} (the paper: {p}).",
                  claims.DIFFERS: "Our linear models' distortions do not grow steadily with "
                                  "their weight decay: {d} (the paper: {p})."},
            reason="Not established."),
        claims.make(
            "test_errors_vs_paper",
            paper="Table 1: test errors of 1.54% to 20% for the six models.",
            outcome=claims.REPRODUCED if len(errors_ok) == len(rows) else claims.DIFFERS,
            figures={"k": len(errors_ok), "m": len(rows),
                     "names": ", ".join(errors_ok) or "none"},
            text={claims.REPRODUCED: "All {m} test errors are within the tolerance of the "
                                     "paper's.",
                  claims.DIFFERS: "{k} of the {m} test errors are within the tolerance of the "
                                  "paper's ({names})."},
            reason="The paper's training set-up leaves details open (weight decay's reading, "
                   "stopping, the autoencoder's settings); see the model-zoo chapter."),
        _train_errors_claim(rows),
        claims.not_run(
            "alexnet_ostrich",
            paper="Fig. 5: AlexNet's ImageNet images, each made an \"ostrich\" with an average "
                  "distortion of 0.0065.",
            reason="it needs ImageNet and a trained AlexNet, which the book does not download."),
    ]
    rule_summaries, rule_claims = _rule_claims(rows, doc.get("settings") or {})
    summaries.update(rule_summaries)
    out += rule_claims
    return {"summaries": summaries, "claims": out}


#: The largest relative difference between the two definitions' mean distortions that the
#: definitions claim calls "the same" (a finding; the search's own spread is about 0.5%).
DEFINITIONS_AGREE = 0.01


def _rule_claims(rows: dict[str, dict[str, Any]], settings: dict[str, Any]
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The target-rule, protocol and definition summaries and claims of Table 1.

    Claims: (1) ``target_rule``: per rule of ``advsets.RULES``, how many models' mean
    distortions are within ``verdicts.TOLERANCES["distortion"]`` of the paper's, reproduced
    when some rule brings every model within it; (2) ``paper_between_rules`` (a finding):
    whether each paper figure lies between our random-rule and hardest-rule means; (3)
    ``misclassified_excluded`` (a finding): the images left out and what leaving them out
    changed; (4) ``example_definitions`` (a finding): the closest successful point seen
    against the paper's minimiser at the largest successful c. A file without these fields
    (written before they existed) gets claims that say so.
    """
    models = list(rows)
    m = len(models)
    summaries: dict[str, Any] = {}
    out = []
    measured = all(f"distortion_{r}" in rows[x] for r in advsets.RULES for x in models)
    paper_fig = {x: rows[x]["distortion"]["paper"] for x in models}
    if measured:
        by_rule = {r: {x: rows[x][f"distortion_{r}"]["ours"] for x in models}
                   for r in advsets.RULES}
        close = {r: [x for x in models if verdicts.judge(by_rule[r][x], paper_fig[x],
                                                         "distortion") == verdicts.REPRODUCED]
                 for r in advsets.RULES}
        log_err = {r: sum(abs(math.log(v / paper_fig[x])) for x, v in by_rule[r].items()
                          if v and paper_fig[x]) / m for r in advsets.RULES}
        # The closest rule: most models within the tolerance, then the smallest mean
        # |log(ours / paper)| (the first listed of equals).
        best = min(advsets.RULES, key=lambda r: (-len(close[r]), log_err[r]))
        best_k = len(close[best])
        between = [x for x in models if None not in (by_rule["random"][x], by_rule["hardest"][x])
                   and by_rule["random"][x] <= paper_fig[x] <= by_rule["hardest"][x]]
        r_set = settings.get("rules") or {}
        summaries.update({
            "rule_distortion": by_rule,
            "rule_success": {r: {x: rows[x][f"success_{r}"]["ours"] for x in models}
                             for r in advsets.RULES},
            "rule_within_tolerance": close, "rule_mean_abs_log_ratio": log_err,
            "rule_best": best, "paper_between_random_and_hardest": between,
            "rule_n": r_set.get("n"), "rule_random_n": r_set.get("random_n")})
        fig = {"counts": ", ".join(f"{r} {len(close[r])}/{m}" for r in advsets.RULES),
               "best": best, "m": m, "n": r_set.get("n") or 0,
               "tol": verdicts.TOLERANCES["distortion"].relative}
        out.append(claims.make(
            "target_rule",
            paper="Table 1: average minimum distortions of 0.062 to 0.14 for the six models; "
                  "the paper does not say toward which target labels it attacked (section 4.1).",
            outcome=claims.REPRODUCED if best_k == m else claims.DIFFERS, figures=fig,
            text={claims.REPRODUCED: "Under the {best} rule all {m} of our mean distortions "
                                     "are within {tol:.0%} of the paper's. Models within the "
                                     "tolerance, per target rule (correctly classified images; "
                                     "every, easiest, hardest and untargeted on the first "
                                     "{n:,} attacked images): {counts}.",
                  claims.DIFFERS: "No target rule brings all {m} of our mean distortions within "
                                  "{tol:.0%} of the paper's; the {best} rule comes closest. "
                                  "Models within the tolerance, per target rule (correctly "
                                  "classified images; every, easiest, hardest and untargeted "
                                  "on the first {n:,} attacked images): {counts}."},
            reason="The paper does not state its target rule, nor its search's settings; our "
                   "models are not the paper's."))
        outside = [x for x in models if x not in between]
        out.append(claims.make(
            "paper_between_rules", paper=None,
            outcome="holds" if not outside else "not",
            figures={"m": m, "k": len(between), "outside": ", ".join(outside) or "none"},
            text={"holds": "Every one of the paper's {m} figures lies between our mean "
                           "distortion under the random rule and under the hardest rule: the "
                           "paper's figures are consistent with targets harder on average than "
                           "a uniform draw, and no harder than each image's hardest.",
                  "not": "{k} of the paper's {m} figures lie between our mean distortion under "
                         "the random rule and under the hardest rule; outside that band: "
                         "{outside}."}))
    else:
        out.append(claims.not_run(
            "target_rule",
            paper="Table 1: average minimum distortions of 0.062 to 0.14 for the six models; "
                  "the paper does not say toward which target labels it attacked (section 4.1).",
            reason="this results file holds no distortions under the other target rules."))
        out.append(claims.make("paper_between_rules", paper=None, outcome="not measured",
                               text={"not measured": "This results file holds no distortions "
                                                     "under the other target rules."}))
    if all("excluded" in rows[x] and "distortion_all_images" in rows[x] for x in models):
        excl = {x: int(rows[x]["excluded"]["ours"]) for x in models}
        change = {x: rows[x]["distortion"]["ours"] / rows[x]["distortion_all_images"]["ours"] - 1
                  for x in models if rows[x]["distortion_all_images"]["ours"]
                  and rows[x]["distortion"]["ours"] is not None}
        summaries.update({"excluded": excl, "excluded_change": change})
        out.append(claims.make(
            "misclassified_excluded", paper=None, outcome="shown",
            figures={"lo": min(excl.values()), "hi": max(excl.values()),
                     "n": int(settings.get("n_attacked") or 0),
                     "clo": min(change.values(), default=0.0),
                     "chi": max(change.values(), default=0.0)},
            text={"shown": "Leaving out the images a model misclassifies ({lo:,} to {hi:,} of "
                           "the {n:,} attacked, per model) changes its mean distortion by "
                           "{clo:+.1%} to {chi:+.1%}."}))
    defs = {x: {"closest_seen": rows[x]["distortion_closest_seen"]["ours"],
                "minimiser": rows[x]["distortion_minimiser"]["ours"]}
            for x in models if "distortion_minimiser" in rows[x]
            and rows[x]["distortion_minimiser"]["ours"]}
    if defs:
        for v in defs.values():
            v["difference"] = v["closest_seen"] / v["minimiser"] - 1
        summaries["definitions"] = defs
        worst = max(abs(v["difference"]) for v in defs.values())
        shown = "; ".join(f"{x}: {v['closest_seen']:.4f} against {v['minimiser']:.4f} "
                          f"({v['difference']:+.2%})" for x, v in defs.items())
        fig = {"shown": shown, "n": int((settings.get("definitions") or {}).get("n") or 0),
               "agree": DEFINITIONS_AGREE}
        out.append(claims.make(
            "example_definitions", paper=None,
            outcome="same" if worst <= DEFINITIONS_AGREE else "differ", figures=fig,
            text={"same": "The two definitions of the example give the same mean distortion "
                          "within {agree:.0%} on the first {n:,} attacked images (the closest "
                          "successful point seen against the minimiser at the largest "
                          "successful c): {shown}.",
                  "differ": "The two definitions of the example differ by more than "
                            "{agree:.0%} on the first {n:,} attacked images (the closest "
                            "successful point seen against the minimiser at the largest "
                            "successful c): {shown}."}))
    else:
        out.append(claims.make("example_definitions", paper=None, outcome="not measured",
                               text={"not measured": "This results file does not compare the "
                                                     "two definitions of the example."}))
    return summaries, out


def _train_errors_claim(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the nonlinear models fit their training set where the linear ones cannot (a
    finding the model-zoo chapter's exercise builds on; the paper lists train errors without
    comment)."""
    lin = {m: r["train_error"]["ours"] for m, r in rows.items() if m.startswith("FC10(")}
    deep = {m: r["train_error"]["ours"] for m, r in rows.items()
            if m in ("FC100-100-10", "FC200-200-10")}
    fig = {"deep": ", ".join(f"{m} {v:.2%}" for m, v in deep.items()),
           "lo": min(lin.values()), "hi": max(lin.values())}
    holds = max(deep.values()) < min(lin.values())
    return claims.make(
        "train_errors", paper=None, outcome="holds" if holds else "not", figures=fig,
        text={"holds": "The sigmoid networks fit their training images better than the "
                       "linear models: train error {deep}, against {lo:.2%} to {hi:.2%} for "
                       "the three FC10 models.",
              "not": "On this run the sigmoid networks do not fit their training images better "
                     "than every linear model: train error {deep}, against {lo:.2%} to "
                     "{hi:.2%} for the three FC10 models."})


def summarize_c_sweep(doc: dict[str, Any]) -> dict[str, Any]:
    """The c sweep's critical constants and the trade-off claim (section 4.1's search over c).

    A model's critical c is the largest c of the grid at which at least 99% of the images still
    reach their target. The claim (beyond the paper, which gives no sweep): the mean distortion
    of the successful examples falls as c grows, and success collapses past the critical c.
    """
    models = list(dict.fromkeys(r["model"] for r in doc["rows"]))
    crit, falls, collapses = {}, True, True
    for m in models:
        rows = sorted((r for r in doc["rows"] if r["model"] == m),
                      key=lambda r: r["c_value"]["ours"])
        ok = [r["c_value"]["ours"] for r in rows if r["success"]["ours"] >= 0.99]
        crit[m] = max(ok) if ok else None
        d = [r["distortion"]["ours"] for r in rows]
        falls &= all(b <= a + 1e-9 for a, b in zip(d, d[1:]))
        collapses &= rows[-1]["success"]["ours"] < 0.5 <= rows[0]["success"]["ours"]
    shown = "; ".join(f"{m}: {'none' if c is None else f'{c:.3g}'}" for m, c in crit.items())
    holds = falls and collapses
    return {"summaries": {"critical_c": crit},
            "claims": [claims.make(
                "tradeoff", paper=None, outcome="holds" if holds else "not",
                figures={"crit": shown},
                text={"holds": "Distortion falls as c grows, and success holds until a "
                               "critical c and then collapses. The last c of the grid that "
                               "still reaches at least 99% of the targets: {crit}.",
                      "not": "On this run distortion does not fall steadily with c, or success "
                             "does not collapse within the grid. The last c of the grid that "
                             "still reaches at least 99% of the targets: {crit}."})]}


def _stddev1_claim(doc: dict[str, Any], clipped: dict[str, float],
                   unclipped: dict[str, float] | None) -> dict[str, Any]:
    """Fig. 7's 51% under noise of stddev 1, judged under each reading of the paper's noise."""
    ref = "FC200-200-10" if "FC200-200-10" in clipped else next(iter(clipped))
    target = paper.CLAIMS["gaussian_stddev1_accuracy"]
    rms = results.row(doc, model=ref, input="Gaussian noise, stddev=1")["distortion"]["ours"]
    fig = {"model": ref, "acc": clipped[ref], "rms": rms, "lo": min(clipped.values()),
           "hi": max(clipped.values()), "paper": target}
    readings = {"clipped": clipped[ref]}
    text_u = ""
    if unclipped:
        fig.update(uacc=unclipped[ref], ulo=min(unclipped.values()), uhi=max(unclipped.values()),
                   urms=results.row(doc, model=ref, input="Gaussian noise, stddev=1, unclipped")
                   ["distortion"]["ours"])
        readings["unclipped"] = unclipped[ref]
        text_u = (" Unclipped (a realised RMS of {urms:.2f}, pixels outside [0, 1]) it classifies "
                  "{uacc:.1%} correctly, the six models {ulo:.1%} to {uhi:.1%}.")
    match = [k for k, v in readings.items()
             if verdicts.judge(v, target, "accuracy") == verdicts.REPRODUCED]
    fig["match"] = " and ".join(match) or "neither"
    head = ("With Gaussian noise of stddev 1, clipped (a realised RMS of {rms:.2f}), {model} "
            "classifies {acc:.1%} of the images correctly, the six models {lo:.1%} to {hi:.1%}."
            + text_u)
    return claims.make(
        "noise_stddev1",
        paper="Fig. 7: Gaussian noise of stddev 1 leaves 51% of the images correctly classified "
              "(the model is not named, nor whether the noise was clipped).",
        outcome=claims.REPRODUCED if match else claims.DIFFERS, figures=fig,
        text={claims.REPRODUCED: head + " The paper's {paper:.0%} is matched by the {match} "
                                        "reading.",
              claims.DIFFERS: head + " Neither reading matches the paper's {paper:.0%}."},
        reason="The paper does not say which model Fig. 7's 51% belongs to, whether the noise "
               "was clipped, or how its networks were trained; ours err more on noisy images "
               "than the paper's (see Table 2's noise rows).")


def summarize_noise(doc: dict[str, Any]) -> dict[str, Any]:
    """Noise against adversarial sets (Fig. 7), per model and noise level.

    Claims: (1) noise at least as large as a model's adversarial perturbations leaves most
    images correctly classified, where the adversarial set leaves almost none (Fig. 7's point);
    (2) accuracy under noise of stddev 1 against the paper's 51% (Fig. 7; the paper does not
    say which model or whether it clipped: both readings are judged, and the claim says which,
    if either, matches); (3) the models' accuracy on their own adversarial
    sets, 0% in the paper, holds by construction wherever the attack succeeds.
    """
    models = list(dict.fromkeys(r["model"] for r in doc["rows"]))
    adv = {m: results.row(doc, model=m, input="adversarial (Table 1 set)") for m in models}
    gaussian = [r for r in doc["rows"] if r["input"].startswith("Gaussian")]
    noise_rows = [r for r in gaussian if r.get("clipped", "yes") == "yes"]
    by_level: dict[str, dict[str, float]] = {}
    unclipped: dict[str, dict[str, float]] = {}
    for r in gaussian:
        level = r["input"].split("=")[1].split(",")[0]
        into = by_level if r.get("clipped", "yes") == "yes" else unclipped
        into.setdefault(level, {})[r["model"]] = r["accuracy"]["ours"]
    # For each model: the smallest noise level whose realised RMS is at least the adversarial
    # set's mean distortion, and the accuracy there.
    matched: dict[str, dict[str, float]] = {}
    for m in models:
        rows = sorted((r for r in noise_rows if r["model"] == m),
                      key=lambda r: r["distortion"]["ours"])
        big = [r for r in rows if r["distortion"]["ours"] >= adv[m]["distortion"]["ours"]]
        if big:
            matched[m] = {"accuracy": big[0]["accuracy"]["ours"],
                          "distortion": big[0]["distortion"]["ours"],
                          "ratio": big[0]["distortion"]["ours"] / adv[m]["distortion"]["ours"]}
    adv_acc = {m: a["accuracy"]["ours"] for m, a in adv.items()}
    summaries = {"accuracy_by_stddev": by_level, "accuracy_by_stddev_unclipped": unclipped,
                 "adversarial_accuracy": adv_acc,
                 "matched_noise": matched}
    out = []
    if matched:
        lo = min(v["accuracy"] for v in matched.values())
        hi = max(v["accuracy"] for v in matched.values())
        fig = {"lo": lo, "hi": hi, "adv": max(adv_acc.values()),
               "rlo": min(v["ratio"] for v in matched.values()),
               "rhi": max(v["ratio"] for v in matched.values())}
        outcome = (claims.REPRODUCED if lo > 0.5 and fig["adv"] < 0.05
                   else claims.OPPOSITE if hi <= fig["adv"] else claims.DIFFERS)
        out.append(claims.make(
            "noise_of_the_same_size",
            paper="Fig. 7 and section 4.2: random distortions, even large ones, rarely change "
                  "the class, unlike adversarial ones.",
            outcome=outcome, figures=fig,
            text={claims.REPRODUCED: "Gaussian noise {rlo:.1f} to {rhi:.1f} times the size of "
                                     "a model's adversarial perturbations leaves {lo:.1%} to "
                                     "{hi:.1%} of the images correctly classified; the "
                                     "adversarial sets leave at most {adv:.1%}.",
                  claims.DIFFERS: "Gaussian noise {rlo:.1f} to {rhi:.1f} times the size of a "
                                  "model's adversarial perturbations leaves only {lo:.1%} to "
                                  "{hi:.1%} of the images correctly classified; the "
                                  "adversarial sets leave at most {adv:.1%}.",
                  claims.OPPOSITE: "Gaussian noise {rlo:.1f} to {rhi:.1f} times the size of a "
                                   "model's adversarial perturbations fools the models at "
                                   "least as often as their adversarial sets: {lo:.1%} to "
                                   "{hi:.1%} stay correct, against up to {adv:.1%}."},
            reason="Our noise is clipped to [0, 1]; see the noise table."))
    else:
        biggest = max((r["distortion"]["ours"] for r in noise_rows), default=0.0)
        out.append(claims.make(
            "noise_of_the_same_size",
            paper="Fig. 7 and section 4.2: random distortions, even large ones, rarely change "
                  "the class, unlike adversarial ones.",
            outcome=claims.NOT_RUN,
            figures={"noise": biggest, "adv": min(a["distortion"]["ours"] for a in adv.values())},
            text={claims.NOT_RUN: "No noise level of this run is as large as the adversarial "
                                  "perturbations (realised RMS up to {noise:.3f}, against "
                                  "{adv:.3f} or more), so this run cannot compare them."},
            reason="The noise levels measured are all smaller than the adversarial sets' "
                   "distortions."))
    if "1" in by_level:
        out.append(_stddev1_claim(doc, by_level["1"], unclipped.get("1")))
    out.append(claims.make(
        "adversarial_accuracy",
        paper="Fig. 7: 0% of the adversarial examples are classified correctly.",
        outcome=(claims.REPRODUCED if max(adv_acc.values()) <= 0.01 else claims.DIFFERS),
        figures={"hi": max(adv_acc.values())},
        text={claims.REPRODUCED: "On their own adversarial sets the models classify at most "
                                 "{hi:.1%} of the images correctly.",
              claims.DIFFERS: "On their own adversarial sets the models still classify up to "
                              "{hi:.1%} of the images correctly."},
        reason="The attack did not reach every target.", by_construction=True))
    return {"summaries": summaries, "claims": out}


#: This module's experiments (``experiments.REGISTRY`` collects them).
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("table1", table1, summarize_table1, "chapters/blind_spots",
               models=tuple(zoo.TABLE1),
               after=(), cost=175),  # measured 173 s (2-core AMD EPYC, 2026-12-07)
    Experiment("c_sweep", c_sweep, summarize_c_sweep, "chapters/blind_spots",
               models=tuple(SWEEP_MODELS),
               after=(), cost=20),
    Experiment("noise", noise, summarize_noise, "chapters/blind_spots",
               models=tuple(zoo.TABLE1),
               after=("table1",), cost=10),
)
