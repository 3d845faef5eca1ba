"""The blind-spots experiments' summaries and claims, on small synthetic results documents.

Each claim's sentence must be the one its numbers support: every outcome is produced here from
numbers that support it (the counterfactual test does the same through the executed page).
"""

import pytest

from intriguing.engine import advsets
from intriguing.experiments import blind_spots, paper
from intriguing.plumbing import claims, results

MODELS = list(paper.TABLE1)


def _claim(out, cid):
    return next(c for c in out["claims"] if c["id"] == cid)


def _table1(distortion=None, success=1.0, test_error=None):
    rows = []
    for m, ref in paper.TABLE1.items():
        rows.append({"model": m,
                     "train_error": results.cell(0.0 if "-" in m else 0.07, ref["train_error"]),
                     "test_error": results.cell((test_error or {}).get(m, ref["test_error"]),
                                                ref["test_error"]),
                     "distortion": results.cell((distortion or {}).get(m, ref["distortion"]),
                                                ref["distortion"]),
                     "success": results.cell(success)})
    return {"name": "table1", "rows": rows, "settings": {"n_attacked": 100}}


def test_table1_as_the_paper():
    out = blind_spots.summarize_table1(_table1())
    assert _claim(out, "fooled_everywhere")["sentence"].endswith("on all 100 attacked images.")
    assert _claim(out, "distortion_vs_paper")["verdict"] == claims.REPRODUCED
    assert _claim(out, "linear_order")["verdict"] == claims.REPRODUCED
    assert _claim(out, "test_errors_vs_paper")["verdict"] == claims.REPRODUCED
    assert _claim(out, "alexnet_ostrich")["verdict"] == claims.NOT_RUN
    assert out["summaries"]["distortion_ratio_min"] == pytest.approx(1.0)


def test_table1_differs_and_opposite():
    lin = {"FC10(1e-4)": 0.12, "FC10(1e-2)": 0.08, "FC10(1)": 0.04}
    out = blind_spots.summarize_table1(_table1(distortion=lin, success=0.9,
                                               test_error={"FC10(1)": 0.05}))
    assert _claim(out, "fooled_everywhere")["verdict"] == claims.DIFFERS
    assert "only 90.0%" in _claim(out, "fooled_everywhere")["sentence"]
    assert _claim(out, "linear_order")["verdict"] == claims.OPPOSITE
    assert "0.120, 0.080, 0.040" in _claim(out, "linear_order")["sentence"]
    assert _claim(out, "distortion_vs_paper")["verdict"] == claims.DIFFERS
    assert "5 of the 6 test errors" in _claim(out, "test_errors_vs_paper")["sentence"]


def _with_rules(doc, by_rule, *, excluded=3, all_images=None, definitions=None):
    """``doc`` with the target-rule cells: ``by_rule[rule]`` a distortion per model, or a
    factor on the paper's figure."""
    for r in doc["rows"]:
        paper_d = r["distortion"]["paper"]
        for rule in advsets.RULES:
            v = by_rule[rule]
            ours = v.get(r["model"]) if isinstance(v, dict) else v * paper_d
            r[f"distortion_{rule}"] = results.cell(ours, paper_d)
            r[f"success_{rule}"] = results.cell(1.0)
        r["distortion"]["ours"] = r["distortion_random"]["ours"]
        r["excluded"] = results.cell(excluded)
        r["distortion_all_images"] = results.cell(
            (all_images or 0.9) * r["distortion"]["ours"], paper_d)
        if definitions and r["model"] in definitions:
            seen, mini = definitions[r["model"]]
            r["distortion_closest_seen"] = results.cell(seen)
            r["distortion_minimiser"] = results.cell(mini)
    doc["settings"].update({"rules": {"n": 50, "random_n": 100},
                            "definitions": {"n": 50}})
    return doc


BAND = {"random": 0.7, "every": 0.75, "easiest": 0.3, "hardest": 1.1, "untargeted": 0.3}


def test_target_rule_claims_follow_the_numbers():
    out = blind_spots.summarize_table1(_with_rules(_table1(), BAND))
    rule = _claim(out, "target_rule")
    assert rule["verdict"] == claims.REPRODUCED and rule["figures"]["best"] == "hardest"
    assert "hardest 6/6" in rule["sentence"] and "random 0/6" in rule["sentence"]
    assert _claim(out, "paper_between_rules")["outcome"] == "holds"
    assert out["summaries"]["rule_within_tolerance"]["hardest"] == MODELS
    assert _claim(out, "misclassified_excluded")["figures"]["hi"] == 3
    # the sentence on fooling says over which images success is counted
    assert _claim(out, "fooled_everywhere")["sentence"].startswith(
        "Every model of Table 1 is fooled on every image it classifies correctly")

    far = dict(BAND, hardest=1.5)
    out = blind_spots.summarize_table1(_with_rules(_table1(), far))
    rule = _claim(out, "target_rule")
    assert rule["verdict"] == claims.DIFFERS and rule["figures"]["best"] == "every"
    assert "No target rule" in rule["sentence"]

    below = dict(BAND, hardest={m: 0.5 * paper.TABLE1[m]["distortion"] for m in MODELS[:2]}
                 | {m: 1.2 * paper.TABLE1[m]["distortion"] for m in MODELS[2:]})
    between = _claim(blind_spots.summarize_table1(_with_rules(_table1(), below)),
                     "paper_between_rules")
    assert between["outcome"] == "not" and between["figures"]["k"] == 4
    assert ", ".join(MODELS[:2]) in between["sentence"]


def test_definitions_claim_follows_the_numbers():
    same = {"FC10(1e-4)": (0.0342, 0.0343), "FC200-200-10": (0.056, 0.0561)}
    out = blind_spots.summarize_table1(_with_rules(_table1(), BAND, definitions=same))
    claim = _claim(out, "example_definitions")
    assert claim["outcome"] == "same" and "0.0342 against 0.0343" in claim["sentence"]
    assert out["summaries"]["definitions"]["FC10(1e-4)"]["difference"] == pytest.approx(
        0.0342 / 0.0343 - 1)
    apart = {"FC10(1e-4)": (0.03, 0.04)}
    claim = _claim(blind_spots.summarize_table1(_with_rules(_table1(), BAND, definitions=apart)),
                   "example_definitions")
    assert claim["outcome"] == "differ"


def test_a_file_without_rules_says_so():
    out = blind_spots.summarize_table1(_table1())
    assert _claim(out, "target_rule")["verdict"] == claims.NOT_RUN
    assert _claim(out, "paper_between_rules")["outcome"] == "not measured"
    assert _claim(out, "example_definitions")["outcome"] == "not measured"


def test_table1_leaves_out_and_counts_misclassified_images(synthetic_mnist, monkeypatch, tiny,
                                                           tiny_zoo):
    """Distortion and success over correctly classified images, the excluded counted; the
    every-target rules on the first ``n_rules`` images; the definitions on two models."""
    import torch

    from intriguing import zoo
    from intriguing.plumbing import config

    monkeypatch.setitem(config.SCALES, tiny.name, tiny)
    monkeypatch.setitem(blind_spots.N_RULES, tiny.name, 3)
    for m in MODELS:
        tiny_zoo.adversarial_set(m, tiny)
    doc = blind_spots.table1(tiny, progress=False)
    assert doc["settings"]["target_rule"] == "random" and doc["settings"]["rules"]["n"] == 3
    for m in MODELS:
        row = results.row(doc, model=m)
        adv = advsets.load(m, scale=tiny, progress=False)
        with torch.no_grad():
            correct = zoo.load(m, scale=tiny)(adv["images"]).argmax(1) == adv["labels"]
        ok = adv["success"]
        assert row["excluded"]["ours"] == int((~correct).sum())
        kept = ok & correct  # None where no correctly classified image was reached
        assert row["distortion"]["ours"] == (pytest.approx(
            adv["distortion"][kept].double().mean().item()) if kept.any() else None)
        assert row["distortion_all_images"]["ours"] == pytest.approx(
            adv["distortion"][ok].double().mean().item())
        assert row["success"]["ours"] == pytest.approx(ok[correct].float().mean().item())
        ev = advsets.every_target(m, n=3, scale=tiny, progress=False)
        with torch.no_grad():
            ev_ok = zoo.load(m, scale=tiny)(ev["images"]).argmax(1) == ev["labels"]
        assert row["excluded_rules"]["ours"] == int((~ev_ok).sum())
        keep = ev["success"] & ev_ok[:, None]
        if not keep.any():  # no correctly classified image reached any target
            assert row["distortion_every"]["ours"] is None
        else:
            assert row["distortion_every"]["ours"] == pytest.approx(
                ev["distortion"][keep].double().mean().item())
            lo, hi = row["distortion_easiest"]["ours"], row["distortion_hardest"]["ours"]
            # hardest is None where a kept image's hardest target was missed: a failure
            assert lo <= row["distortion_every"]["ours"] <= (hi if hi is not None else 1.0)
            assert (hi is None) == (row["success_hardest"]["ours"] == 0)
            assert row["distortion_untargeted"]["ours"] == lo
    assert {m for m in MODELS if "distortion_minimiser" in results.row(doc, model=m)} == set(
        blind_spots.DEFINITION_MODELS)
    assert {c["id"] for c in doc["claims"]} >= {"target_rule", "paper_between_rules",
                                                "misclassified_excluded", "example_definitions"}


def _sweep(model, points):
    return [{"model": model, "c_value": results.cell(c), "success": results.cell(s),
             "distortion": results.cell(d)} for c, s, d in points]


def test_c_sweep_tradeoff_and_its_failure():
    good = _sweep("A", [(0.1, 1.0, 0.2), (1.0, 1.0, 0.1), (10.0, 0.2, 0.05)])
    out = blind_spots.summarize_c_sweep({"rows": good})
    assert out["summaries"]["critical_c"] == {"A": 1.0}
    assert _claim(out, "tradeoff")["outcome"] == "holds"
    bad = _sweep("A", [(0.1, 1.0, 0.1), (1.0, 1.0, 0.2), (10.0, 0.9, 0.05)])
    assert _claim(blind_spots.summarize_c_sweep({"rows": bad}), "tradeoff")["outcome"] == "not"


def _noise(acc_clipped, acc_unclipped, adv_acc=0.0):
    rows = []
    for m in ("FC200-200-10", "FC10(1)"):
        for s, rms in ((0.1, 0.07), (1.0, 0.5)):
            rows.append({"model": m, "input": f"Gaussian noise, stddev={s:g}", "clipped": "yes",
                         "accuracy": results.cell(acc_clipped[s]),
                         "distortion": results.cell(rms)})
            rows.append({"model": m, "input": f"Gaussian noise, stddev={s:g}, unclipped",
                         "clipped": "no", "accuracy": results.cell(acc_unclipped[s]),
                         "distortion": results.cell(s)})
        rows.append({"model": m, "input": "adversarial (Table 1 set)",
                     "accuracy": results.cell(adv_acc), "distortion": results.cell(0.05)})
    return {"name": "noise", "rows": rows}


def test_noise_claims_follow_each_reading():
    out = blind_spots.summarize_noise(_noise({0.1: 0.9, 1.0: 0.2}, {0.1: 0.95, 1.0: 0.5}))
    same = _claim(out, "noise_of_the_same_size")
    assert same["verdict"] == claims.REPRODUCED and same["figures"]["lo"] == 0.9  # clipped rows
    s1 = _claim(out, "noise_stddev1")
    assert s1["verdict"] == claims.REPRODUCED
    assert "matched by the unclipped reading" in s1["sentence"]
    assert out["summaries"]["accuracy_by_stddev_unclipped"]["1"]["FC200-200-10"] == 0.5
    assert _claim(out, "adversarial_accuracy")["by_construction"]

    neither = _claim(blind_spots.summarize_noise(_noise({0.1: 0.9, 1.0: 0.2},
                                                        {0.1: 0.9, 1.0: 0.9})), "noise_stddev1")
    assert neither["verdict"] == claims.DIFFERS and "Neither reading" in neither["sentence"]

    fooled = blind_spots.summarize_noise(_noise({0.1: 0.0, 1.0: 0.0}, {0.1: 0.0, 1.0: 0.0}))
    assert _claim(fooled, "noise_of_the_same_size")["verdict"] == claims.OPPOSITE


def test_noise_experiment_reads_one_draw_two_ways(synthetic_mnist, monkeypatch, tiny, tiny_zoo):
    from intriguing.plumbing import config

    monkeypatch.setitem(config.SCALES, tiny.name, tiny)
    for m in MODELS:
        tiny_zoo.adversarial_set(m, tiny)
    doc = blind_spots.noise(tiny, stddevs=(0.3,), progress=False)
    for m in MODELS:
        clipped = results.row(doc, model=m, input="Gaussian noise, stddev=0.3")
        raw = results.row(doc, model=m, input="Gaussian noise, stddev=0.3, unclipped")
        assert (clipped["clipped"], raw["clipped"]) == ("yes", "no")
        # Clipping only shrinks the same draw's perturbation: never larger, and the unclipped
        # realised RMS is the nominal stddev up to sampling.
        assert clipped["distortion"]["ours"] < raw["distortion"]["ours"]
        assert raw["distortion"]["ours"] == pytest.approx(0.3, rel=0.05)
    # The chapter shows these claims whatever the numbers: they always exist.
    assert {c["id"] for c in doc["claims"]} >= {"noise_of_the_same_size", "adversarial_accuracy"}


def test_noise_too_small_to_compare_says_so():
    doc = _noise({0.1: 0.9, 1.0: 0.2}, {0.1: 0.9, 1.0: 0.5})
    for r in doc["rows"]:
        if r["input"].startswith("adversarial"):
            r["distortion"]["ours"] = 2.0
    same = _claim(blind_spots.summarize_noise(doc), "noise_of_the_same_size")
    assert same["verdict"] == claims.NOT_RUN and "cannot compare" in same["sentence"]
