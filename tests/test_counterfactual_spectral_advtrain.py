"""Counterfactuals for the adversarial-training and spectral-analysis chapters: change the numbers
behind a claim so that the opposite holds, re-execute the page against the changed copy of the
smoke results, and the page's sentence and verdict change with them."""

import pytest
from scipy.stats import binomtest

from counterfactual import change, ensure_results, execute, results_copy, row
from intriguing.display import claims as shown

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_results():
    ensure_results(["advtrain", "advtrain_ablations", "table5"])


def _claim(doc, claim_id):
    return next(c for c in doc["claims"] if c["id"] == claim_id)


def test_advtrain_page_says_so_when_adversarial_training_lowers_the_error(smoke_results,
                                                                          tmp_path):
    data = results_copy(tmp_path)
    before = _claim(change(data, "advtrain", lambda d: None), "test_error_vs_paper")
    assert before["verdict"] != "reproduced"

    def adversarial_training_lowers_the_error(doc):
        """1% test error with per-layer pools; the paired counts and the test agree with the
        errors."""
        n = doc["settings"]["n_test"]
        wd, pl = row(doc, model="weight decay"), row(doc, model="per-layer pools")
        wrong_wd, wrong_pl = round(wd["test_error"]["ours"] * n), round(0.01 * n)
        only_pl = 1
        only_wd = wrong_wd - (wrong_pl - only_pl)
        assert only_wd > 10 * only_pl
        pl["test_error"]["ours"] = wrong_pl / n
        pl["only_baseline_wrong"]["ours"] = only_wd
        pl["only_this_wrong"]["ours"] = only_pl
        pl["p_value"]["ours"] = binomtest(only_wd, only_wd + only_pl, 0.5).pvalue

    doc = change(data, "advtrain", adversarial_training_lowers_the_error)
    after = _claim(doc, "test_error_vs_paper")
    assert after["verdict"] == "reproduced" and "fell to 1.00%" in after["sentence"]
    page = execute("chapters/advtrain.ipynb", data)
    assert after["sentence"] in page and before["sentence"] not in page
    assert shown.badge("reproduced") in page
    assert _claim(doc, "closest")["sentence"] in page


def test_spectral_page_follows_how_loose_the_bounds_are(smoke_results, tmp_path):
    data = results_copy(tmp_path)
    before = _claim(change(data, "table5", lambda d: None), "bounds_loose")
    # The other way round from what the smoke results show: loose (3 times) or nearly tight.
    factor = 3.0 if before["verdict"] != "reproduced" else 1.2

    def bounds_over_the_largest_gain(doc):
        """Every nonlinear model's measured gains scaled so that L is ``factor`` times the
        largest (their ratios to each other, and every other claim, unchanged)."""
        for r in doc["rows"]:
            if r["kind"] != "network" or "local_max" not in r or r["model"].startswith("FC10("):
                continue
            k = r["bound"]["ours"] / factor / r["local_max"]["ours"]
            for field in ("local_max", "local_median", "adversarial_ratio_median",
                          "adversarial_ratio_max"):
                r[field]["ours"] *= k
            r["bound_over_local_max"]["ours"] = factor

    doc = change(data, "table5", bounds_over_the_largest_gain)
    after = _claim(doc, "bounds_loose")
    assert after["verdict"] == ("reproduced" if factor > 2 else "differs") != before["verdict"]
    assert after["sentence"] != before["sentence"]
    page = execute("chapters/spectral_analysis.ipynb", data)
    assert after["sentence"] in page and before["sentence"] not in page
    assert shown.badge(after["verdict"]) in page
