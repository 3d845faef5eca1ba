"""Counterfactual Property 1: change units.json so the opposite holds, and the pages follow.

Two copies of the smoke-scale results: in one, units are significantly more coherent than random
directions in every comparison (the opposite of the paper's section 3); in the other, no unit of
ConvNet's feature layer is dead and units are no more coherent than random test images. The two
Property 1 chapters, executed against each copy, must print the sentences and verdicts the
changed numbers support, and not the ones of the real results.
"""

from __future__ import annotations

import pytest

from counterfactual import SCALE, change, ensure_results, execute, results_copy
from intriguing.display.claims import BADGE
from intriguing.engine.units import DIFFERENCE
from intriguing.plumbing import claims, results

pytestmark = pytest.mark.slow


def _original() -> dict:
    ensure_results(["units"])
    return results.read("units", SCALE)


def _same(row: dict, doc: dict, group: str) -> dict:
    return results.row(doc, model=row["model"], layer=row["layer"], k=row["k"],
                       measure=row["measure"], group=group)


def _move(row: dict, mean: float) -> None:
    """Move a group's scores so that their mean is ``mean`` (interval and quantiles with it)."""
    delta = mean - row["mean"]["ours"]
    for field in ("mean", "ci_low", "ci_high", "median", "q10", "q90"):
        row[field]["ours"] += delta


def units_ahead(doc: dict) -> None:
    """Units 0.05 ahead of random directions in every comparison, with p = 1e-6."""
    for d in [r for r in doc["rows"] if r["group"] == DIFFERENCE]:
        gap = abs(d["mean"]["ours"]) + 0.05
        u, v = _same(d, doc, "units"), _same(d, doc, "directions")
        _move(u, v["mean"]["ours"] + gap)
        for r in (d, u):
            r["p_vs_directions"]["ours"] = 1e-6
        d["mean"]["ours"], d["ci_low"]["ours"], d["ci_high"]["ours"] = gap, gap - 0.02, gap + 0.02


def units_at_the_floor(doc: dict) -> None:
    """No dead unit in ConvNet's feature layer; units score what random test images score."""
    doc["settings"]["dead_units"]["ConvNet/feat"] = []
    for u in [r for r in doc["rows"] if r["group"] == "units"]:
        _move(u, _same(u, doc, "random")["mean"]["ours"])
        u["p_vs_random"]["ours"] = 0.5


def check(page: str, original: dict, changed: dict, ids: list[str]) -> str:
    """The changed sentences (with their badges) are on the page and the original ones are not."""
    for cid in ids:
        old, new = claims.find(original, cid), claims.find(changed, cid)
        assert (old["outcome"], old["sentence"]) != (new["outcome"], new["sentence"]), cid
        assert new["sentence"] in page, cid
        assert old["sentence"] not in page, cid
        if new["verdict"] is not None:
            assert BADGE[new["verdict"]] in page, cid
    return page


def test_random_directions_page_follows_units_ahead(tmp_path):
    original = _original()
    data = results_copy(tmp_path)
    changed = change(data, "units", units_ahead)
    assert claims.find(original, "units_vs_directions")["verdict"] == claims.REPRODUCED
    assert claims.find(changed, "units_vs_directions")["verdict"] == claims.OPPOSITE
    assert claims.find(changed, "no_distinction")["verdict"] == claims.DIFFERS
    assert claims.find(changed, "convnet_purity")["outcome"] == "units"
    page = execute("chapters/random_directions.ipynb", data)
    check(page, original, changed, ["units_vs_directions", "no_distinction", "convnet_purity"])
    assert "as a rule the natural basis is more coherent than a random one" in page
    assert "always in the units' favour" in page


def test_semantic_units_page_follows_units_at_the_floor(tmp_path):
    original = _original()
    data = results_copy(tmp_path)
    changed = change(data, "units", units_at_the_floor)
    assert claims.find(original, "units_above_floor")["verdict"] == claims.REPRODUCED
    assert claims.find(changed, "units_above_floor")["verdict"] == claims.OPPOSITE
    assert claims.find(changed, "dead_units")["outcome"] == "none"
    page = execute("chapters/semantic_units.ipynb", data)
    check(page, original, changed, ["units_above_floor", "dead_units"])
