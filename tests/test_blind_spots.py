"""The blind-spots experiments' summaries and claims, on small synthetic results documents.

Each claim's sentence must be the one its numbers support: every outcome is produced here from
numbers that support it (the counterfactual test does the same through the executed page).
"""

import pytest

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
