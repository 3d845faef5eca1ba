"""Transfer tables: error matrices, amplification, noise rows, and reuse of cached attacks."""

import numpy as np
import pytest
import torch
from torch import nn

from intriguing import attacks, zoo
from intriguing.engine import transfer
from intriguing.experiments import REGISTRY, transferability
from intriguing.plumbing import config, results


class Constant(nn.Module):
    """Always predicts ``label``."""

    def __init__(self, label: int):
        super().__init__()
        self.label = label
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, x):
        logits = torch.zeros(len(x), 10)
        logits[:, self.label] = 1.0
        return logits


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(40, 1, 28, 28, generator=gen)


def test_model_fed_its_own_successful_set_scores_100_percent(tiny_model, images):
    labels = tiny_model(images).argmax(1)
    targets = (labels + 1) % 10
    res = attacks.lbfgs(tiny_model, images, targets)
    ok = res.success
    assert ok.sum() >= 10
    m = transfer.error_matrix({"own": res.adversarial[ok]}, labels[ok], {"self": tiny_model})
    assert m == {"own": {"self": 1.0}}


def test_constant_model_scores_exactly_its_constant_error(images):
    labels = torch.arange(40) % 10          # four of each label
    sets = {"clean": images, "noisy": transfer.noise_sets(images, (0.3,))[
        "Gaussian noise, stddev=0.3"]}
    models = {"always 3": Constant(3), "always 7": Constant(7)}
    m = transfer.error_matrix(sets, labels, models, batch_size=7)
    expected = (labels != 3).sum().item() / len(labels)
    assert m["clean"]["always 3"] == expected == m["noisy"]["always 7"] == 0.9


def test_labels_may_be_given_per_set(images):
    y1, y2 = torch.full((40,), 3), torch.full((20,), 5)
    m = transfer.error_matrix({"a": images, "b": images[:20]}, {"a": y1, "b": y2},
                              {"c": Constant(3)})
    assert m == {"a": {"c": 0.0}, "b": {"c": 1.0}}


def test_amplify_gives_exact_rms_before_clipping_and_at_most_after(images):
    gen = torch.Generator().manual_seed(2)
    adv = (images + 0.03 * torch.randn(images.shape, generator=gen)).clamp(0, 1)
    raw = transfer.amplify(images, adv, 0.1, clip=False)
    assert torch.allclose(attacks.distortion(images, raw), torch.full((40,), 0.1), atol=1e-6)
    # the direction is kept: amplified r is a positive multiple of r
    r, r2 = (adv - images).flatten(1), (raw - images).flatten(1)
    assert torch.allclose(torch.nn.functional.cosine_similarity(r, r2), torch.ones(40), atol=1e-5)
    clipped = transfer.amplify(images, adv, 0.1)
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert (attacks.distortion(images, clipped) <= 0.1 + 1e-6).all()
    assert (attacks.distortion(images, clipped) < 0.1).any()   # uniform images: clipping bites


def test_amplify_leaves_zero_perturbations_alone(images):
    out = transfer.amplify(images[:3], images[:3].clone(), 0.1)
    assert torch.equal(out, images[:3])


def test_noise_rows_are_seeded_clipped_and_named(images):
    a = transfer.noise_sets(images, (0.1, 0.3), seed=5)
    b = transfer.noise_sets(images, (0.1, 0.3), seed=5)
    assert list(a) == ["Gaussian noise, stddev=0.1", "Gaussian noise, stddev=0.3"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(v.min() >= 0 and v.max() <= 1 for v in a.values())


def test_most_transferable_counts_models_fooled(images):
    labels = torch.tensor([3] * 20 + [7] * 20)
    models = {"3": Constant(3), "7": Constant(7), "0": Constant(0)}
    idx, counts = transfer.most_transferable(images, labels, models, k=5)
    # every image fools two of the three constant models
    assert counts.tolist() == [2] * 5 and idx.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("call, match", [
    (lambda x: transfer.error_matrix({}, torch.zeros(3, dtype=torch.long), {"c": Constant(0)}),
     "sets must not be empty"),
    (lambda x: transfer.error_matrix({"a": x}, torch.zeros(40, dtype=torch.long), {}),
     "models must not be empty"),
    (lambda x: transfer.error_matrix({"a": x}, torch.zeros(39, dtype=torch.long),
                                     {"c": Constant(0)}), "labels must be"),
    (lambda x: transfer.error_matrix({"a": x[:, 0]}, torch.zeros(40, dtype=torch.long),
                                     {"c": Constant(0)}), r"sets\['a'\] must be"),
    (lambda x: transfer.amplify(x, x[:3], 0.1), "x and x_adv must"),
    (lambda x: transfer.amplify(x, x, 0.0), "stddev must be"),
    (lambda x: transfer.amplify(x, x, -0.1), "stddev must be"),
    (lambda x: transfer.amplify(x, x, float("nan")), "stddev must be"),
    (lambda x: transfer.most_transferable(x, torch.zeros(40, dtype=torch.long),
                                          {"c": Constant(0)}, k=0), "k must be"),
], ids=["empty sets", "empty models", "label length", "image shape", "amplify shapes",
        "stddev zero", "stddev negative", "stddev nan", "k zero"])
def test_bad_arguments_raise(images, call, match):
    with pytest.raises(ValueError, match=match):
        call(images)


def test_table4_attacks_each_source_once(synthetic_mnist, monkeypatch, tiny, tiny_zoo):
    monkeypatch.setitem(config.SCALES, tiny.name, tiny)   # results files at the tiny scale
    for name in zoo.TABLE3:
        tiny_zoo.model(name, tiny)
    calls = []
    real = attacks.lbfgs

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "lbfgs", counted)
    first = transferability.table4(tiny, progress=False)
    assert len(calls) == 3                  # one attack per Table 3 model

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached adversarial set should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = transferability.table4(tiny, progress=False)
    table3 = transferability.table3(tiny, progress=False)
    assert [r["error"]["ours"] for r in again["rows"] if "error" in r] == \
        [r["error"]["ours"] for r in first["rows"] if "error" in r]
    assert again["seconds"] >= sum(again["settings"]["attack_seconds"].values())
    assert len(table3["rows"]) == 3
    cell = results.row(first, source="Distorted for FC100-100-10@P1", target="FC100-100-10@P1")
    assert cell["error"]["paper"] == 1.0
    amp = results.row(first, source="Distorted for FC100-100-10@P1, amplified to stddev=0.1",
                      target="FC123-456-10@P1")
    assert amp["error"]["paper"] == 0.98
    dist = [r for r in first["rows"] if "distortion" in r and "amplified" in r["source"]]
    assert len(dist) == 3 and all(r["distortion"]["ours"] <= 0.1 + 1e-6 for r in dist)


# --------------------------------------------------------------------------------------------
# Transfer against perturbation size


def test_check_c_grid_accepts_ascending_positive_numbers():
    assert transfer.check_c_grid([0.01, 1, 100.0]) == (0.01, 1.0, 100.0)


@pytest.mark.parametrize("grid, match", [
    ([], "c_grid must not be empty"),
    ((), "c_grid must not be empty"),
    ([0.1, 0.0], "positive finite"),
    ([-1.0, 1.0], "positive finite"),
    ([1.0, float("inf")], "positive finite"),
    ([float("nan")], "positive finite"),
    ([1.0, 0.1], "strictly ascending"),
    ([1.0, 1.0], "strictly ascending"),
    (["a"], "sequence of numbers"),
    (3.0, "sequence of numbers"),
], ids=["empty list", "empty tuple", "zero", "negative", "inf", "nan", "descending", "repeat",
        "text", "scalar"])
def test_check_c_grid_rejects(grid, match):
    with pytest.raises(ValueError, match=match):
        transfer.check_c_grid(grid)


def test_matched_noise_has_each_images_distortion_exactly(images):
    want = torch.linspace(0.0, 0.3, len(images))
    gen = torch.Generator().manual_seed(3)
    noisy = transfer.matched_noise(images, want, generator=gen)
    assert noisy.shape == images.shape and noisy.min() >= 0 and noisy.max() <= 1
    got = attacks.distortion(images, noisy)
    assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(noisy[0], images[0])          # distortion 0: unchanged
    again = transfer.matched_noise(images, want, generator=torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)                  # seeded
    other = transfer.matched_noise(images, want, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(noisy[1:], other[1:])      # another seed, another draw


def test_matched_noise_rejects_bad_distortions(images):
    with pytest.raises(ValueError, match=r"distortion must be \(40,\)"):
        transfer.matched_noise(images, torch.zeros(39))
    with pytest.raises(ValueError, match="distortion must be"):
        transfer.matched_noise(images, torch.full((40,), -0.1))


def _own_sets(model, images, grid):
    """Fixed-c sets of ``model`` on the images every c fools (so each set fools it fully)."""
    labels = model(images).argmax(1)
    targets = (labels + 1) % 10
    results = {c: attacks.lbfgs(model, images, targets, c=c) for c in grid}
    ok = torch.stack([r.success for r in results.values()]).all(0)
    return images[ok], labels[ok], {c: r.adversarial[ok] for c, r in results.items()}


def test_curve_source_fed_its_own_successful_sets_scores_100_percent(tiny_model, images):
    x, y, sets = _own_sets(tiny_model, images, (0.001, 0.01))
    assert len(x) >= 10
    pts = transfer.curve(x, y, sets, {"self": tiny_model, "always 3": Constant(3)},
                         source="self")
    assert [p["c"] for p in pts] == [0.001, 0.01]
    for p, adv in zip(pts, sets.values(), strict=True):
        assert p["error"]["self"] == 1.0
        assert p["error"]["always 3"] == int((y != 3).sum()) / len(y)   # constant: its error
        assert p["noise_error"]["always 3"] == p["error"]["always 3"]
        assert p["distortion"] == pytest.approx(attacks.distortion(x, adv).mean().item())
        assert p["noise_distortion"] == pytest.approx(p["distortion"], abs=1e-6)
    # a smaller c penalises the perturbation less: the set is farther from the images
    assert pts[0]["distortion"] > pts[1]["distortion"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(source="nobody"), r"source must be one of the models \['self'\]"),
    (dict(sets={}), "c_grid must not be empty"),
    (dict(sets={0.0: None}), "positive finite"),
    (dict(sets={-1.0: None}), "positive finite"),
    (dict(sets={1.0: torch.zeros(3, 1, 28, 28)}), r"adversarial\[1\] must have the images'"),
], ids=["unknown source", "empty grid", "zero c", "negative c", "wrong set shape"])
def test_curve_rejects_bad_arguments(tiny_model, images, kwargs, match):
    sets = kwargs.pop("sets", {1.0: images})
    args = {"source": "self", **kwargs}
    with pytest.raises(ValueError, match=match):
        transfer.curve(images, torch.zeros(40, dtype=torch.long), sets, {"self": tiny_model},
                       **args)


def test_rate_and_distortion_read_off_a_curve():
    d, r = [0.01, 0.03, 0.05], [0.1, 0.3, 0.9]
    assert transfer.rate_at(d, r, 0.04) == pytest.approx(0.6)
    assert transfer.rate_at(d, r, 0.01) == pytest.approx(0.1)
    assert transfer.rate_at(d, r, 0.06) is None and transfer.rate_at(d, r, 0.0) is None
    assert transfer.distortion_at(d, r, 0.5) == pytest.approx(0.03 + 0.2 / 0.6 * 0.02)
    assert transfer.distortion_at(d, r, 0.05) == pytest.approx(0.01)
    assert transfer.distortion_at(d, r, 0.95) is None
    with pytest.raises(ValueError, match="ascending"):
        transfer.rate_at([0.05, 0.01], [0.0, 1.0], 0.02)
    with pytest.raises(ValueError, match="one length"):
        transfer.distortion_at([0.01], [0.1, 0.2], 0.1)


def test_transfer_curves_experiment_on_tiny_models(synthetic_mnist, monkeypatch, tiny, tiny_zoo):
    monkeypatch.setitem(config.SCALES, tiny.name, tiny)
    for name in ("FC10(1e-2)", "FC10(1)"):
        tiny_zoo.model(name, tiny)
    calls = []
    real = attacks.lbfgs

    def counted(*args, **kwargs):
        calls.append(kwargs.get("c"))
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "lbfgs", counted)
    grid = (0.01, 1.0)
    kwargs = dict(sources=["FC10(1e-2)"], targets=["FC10(1e-2)", "FC10(1)"], c_grid=grid,
                  progress=False)
    doc = transferability.transfer_curves(tiny, **kwargs)
    assert calls == list(grid)                         # one fixed-c solve per c, no search
    assert doc["settings"]["n"] == tiny.attack_limit and doc["settings"]["c_grid"] == list(grid)
    cells = [r for r in doc["rows"] if "c_value" in r]
    assert {(r["source"], r["target"], r["c"]) for r in cells} == {
        ("FC10(1e-2)", t, c) for t in ("FC10(1e-2)", "FC10(1)") for c in ("0.01", "1")}
    for r in cells:
        assert r["error"]["paper"] is None and 0 <= r["error"]["ours"] <= 1
        # errors count against the true label, so the source errs at least where it was fooled
        if r["target"] == r["source"]:
            assert r["error"]["ours"] >= r["success"]["ours"] - 1e-9
    paper_rows = [r for r in doc["rows"] if r["c"] == "at the paper's distortion"]
    assert {r["target"]: r["error"]["paper"] for r in paper_rows} == {"FC10(1e-2)": 1.0,
                                                                       "FC10(1)": 0.352}
    assert doc["seconds"] >= sum(doc["settings"]["attack_seconds"].values())

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached fixed-c sets should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = transferability.transfer_curves(tiny, **kwargs)
    assert [r["error"] for r in again["rows"]] == [r["error"] for r in doc["rows"]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(sources=["FC10(7)"]), r"sources must be zoo models .* unknown \['FC10\(7\)'\]"),
    (dict(targets=["nobody"]), r"targets must be zoo models"),
    (dict(sources=[]), "sources must name at least one"),
    (dict(c_grid=()), "c_grid must not be empty"),
    (dict(c_grid=(0.0, 1.0)), "positive finite"),
    (dict(c_grid=(-0.5,)), "positive finite"),
    (dict(n=0), "n must be a positive int"),
], ids=["unknown source", "unknown target", "no source", "empty grid", "zero c", "negative c",
        "n zero"])
def test_transfer_curves_rejects_bad_arguments_before_any_work(monkeypatch, kwargs, match):
    def boom(*args, **kwargs):
        raise AssertionError("no model should be loaded for bad arguments")

    monkeypatch.setattr(zoo, "load", boom)
    with pytest.raises(ValueError, match=match):
        transferability.transfer_curves("smoke", progress=False, **kwargs)


def test_transfer_curves_is_a_registered_experiment():
    assert REGISTRY["transfer_curves"].run is transferability.transfer_curves


@pytest.mark.parametrize("name", ["TRANSFER_C_GRID", "TRANSFER_LIVE_C_GRID"])
def test_c_grids_are_valid_and_span_the_promised_range(name):
    """From c = 1e-3 (past every Table 1 model's minimum distortion) to c = 31.6 (too small a
    perturbation to reach the target), evenly in log c, at least two constants a decade."""
    grid = getattr(transferability, name)
    assert transfer.check_c_grid(grid) == grid  # positive, finite, strictly ascending floats
    assert grid[0] == pytest.approx(1e-3) and grid[-1] == pytest.approx(31.6, rel=1e-3)
    steps = np.diff(np.log10(grid))
    assert np.allclose(steps, steps[0]) and steps[0] <= 0.5


def test_the_live_c_grid_is_finer_than_the_static_one():
    coarse, fine = transferability.TRANSFER_C_GRID, transferability.TRANSFER_LIVE_C_GRID
    assert np.diff(np.log10(fine)).max() < np.diff(np.log10(coarse)).min()


def _curve_rows(source, target, d, err, noise):
    return [{"source": source, "target": target, "c": f"{c:g}", "c_value": {"ours": c},
             "distortion": {"ours": a}, "error": {"ours": b}, "noise_error": {"ours": n}}
            for c, a, b, n in zip((1.0, 0.1), d, err, noise, strict=True)]


def test_curve_summary_reads_the_curves_at_a_common_distortion():
    rows = (_curve_rows("A", "A", (0.02, 0.06), (0.2, 1.0), (0.0, 0.0))
            + _curve_rows("A", "B", (0.02, 0.06), (0.1, 0.5), (0.0, 0.1))
            + _curve_rows("B", "A", (0.01, 0.04), (0.2, 0.8), (0.1, 0.1))
            + _curve_rows("B", "B", (0.01, 0.04), (0.5, 1.0), (0.0, 0.0)))
    rows += [{"source": "A", "target": "B", "c": "at the paper's distortion",
              "error": {"ours": 0.45, "paper": 0.2}},
             {"source": "B", "target": "A", "c": "at the paper's distortion",
              "error": {"ours": None, "paper": 0.3}}]
    doc = {"name": "transfer_curves", "rows": rows,
           "settings": {"sources": ["A", "B"], "targets": ["A", "B"], "c_grid": [0.1, 1.0],
                        "n": 7}}
    table2 = {"rows": [{"source": "A", "target": "B", "error": {"ours": 0.6, "paper": 0.3}},
                       {"source": "B", "target": "A", "error": {"ours": 0.2, "paper": 0.4}},
                       {"source": "A", "distortion": {"ours": 0.05}},
                       {"source": "B", "distortion": {"ours": 0.03}}]}
    got = transfer.curve_summary(doc, table2)
    want = {"n": 7, "n_c": 2, "c_min": 0.1, "c_max": 1.0, "d_common": 0.04,
            "adv_common": (0.3 + 0.8) / 2, "noise_common": (0.05 + 0.1) / 2,
            "adv_half": (0.1 + 0.4) / 2, "t2_top": "A", "t2_top_ours": 0.6,
            "t2_top_paper": 0.3, "top_common": 0.3, "top_rank": 2, "best": "B",
            "best_common": 0.8, "best_t2": 0.2, "order": "a different order from",
            "paper_k": 1, "paper_ours": 0.45, "paper_paper": 0.2,
            "t2_gap": ((0.4 - 0.6) + (0.6 - 0.2)) / 2, "t2_gap_size": 0.1,
            "t2_gap_side": "below", "t2_top_dist": 0.05, "t2_other_dist": 0.03}
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == (value if isinstance(value, str) else pytest.approx(value)), key
    assert transfer.mean_transfer_at(doc, "A", 0.04, field="noise_error") == pytest.approx(0.05)
    assert transfer.mean_transfer_at(doc, "A", 0.07) is None       # beyond the curve
    with pytest.raises(ValueError, match="no curve for source 'A' and target 'C'"):
        transfer.curve_of(doc, "A", "C")
    # the figure: one panel per pair; the A -> B panel holds its curve, floor and Table 2 point
    import matplotlib
    matplotlib.use("Agg")
    from intriguing.display import plots

    fig = plots.transfer_curves(doc, table2=table2)
    assert len(fig.axes) == 4
    lines = {ln.get_label(): ln for ln in fig.axes[1].get_lines()}
    assert list(lines["fixed-c adversarial sets"].get_xdata()) == [0.02, 0.06]
    assert list(lines["fixed-c adversarial sets"].get_ydata()) == [10.0, 50.0]
    assert list(lines["ours, Table 2"].get_xydata()[0]) == [0.05, 60.0]
    assert "paper, Table 2" not in lines                  # A and B are not the paper's models


def test_curve_summary_without_table2_leaves_its_comparisons_out():
    rows = (_curve_rows("A", "A", (0.02, 0.06), (0.2, 1.0), (0.0, 0.0))
            + _curve_rows("A", "B", (0.02, 0.06), (0.1, 0.5), (0.0, 0.1)))
    doc = {"name": "transfer_curves", "rows": rows,
           "settings": {"sources": ["A"], "targets": ["A", "B"], "c_grid": [0.1, 1.0], "n": 7}}
    got = transfer.curve_summary(doc, None)
    assert got["d_common"] == pytest.approx(0.06) and got["best"] == "A"
    assert got["t2_top"] is None and got["t2_gap"] is None and got["order"] is None


# --------------------------------------------------------------------------------------------
# The summaries and claims the chapter states (tiny synthetic results documents)

from intriguing.experiments import paper as paper_figures  # noqa: E402
from intriguing.plumbing import claims as claims_data  # noqa: E402

LIN, NONLIN = zoo.TABLE1[:3], zoo.TABLE1[3:]
NOISE_LO, NOISE_HI = "Gaussian noise, stddev=0.1", "Gaussian noise, stddev=0.3"


def _t2_doc(cell, *, noise=0.0, dist=None, clean=0.02):
    """A Table 2 document: ``cell(source, target)`` gives each adversarial off-diagonal cell,
    the diagonal is 1, every noise cell is ``noise``; ``dist`` maps rows to their distortion."""
    dist = {**{m: 0.05 for m in zoo.TABLE1}, NOISE_LO: 0.07, NOISE_HI: 0.2, **(dist or {})}
    rows = []
    for s in [*zoo.TABLE1, NOISE_LO, NOISE_HI]:
        for t in zoo.TABLE1:
            v = 1.0 if s == t else noise if s.startswith("Gaussian") else cell(s, t)
            rows.append({"source": s, "target": t,
                         "error": {"ours": v, "paper": paper_figures.TABLE2[s][t]}})
        rows.append({"source": s, "distortion": {"ours": dist[s],
                                                 "paper": paper_figures.TABLE2_DISTORTION[s]}})
    for s in zoo.TABLE1:
        rows.append({"source": s, "fools_every_other": {"ours": 0.1, "paper": None},
                     "fools_no_other": {"ours": 0.3, "paper": None}})
    return {"name": "table2", "rows": rows,
            "settings": {"columns": list(zoo.TABLE1),
                         "rows": [*zoo.TABLE1, NOISE_LO, NOISE_HI],
                         "clean_error": dict.fromkeys(zoo.TABLE1, clean),
                         "success": dict.fromkeys(zoo.TABLE1, 1.0)}}


def _blockwise(ll, ln, nl, nn):
    def cell(s, t):
        return {(True, True): ll, (True, False): ln, (False, True): nl,
                (False, False): nn}[(s in LIN, t in LIN)]
    return cell


def _claim(doc, cid):
    return claims_data.find(REGISTRY[doc["name"]].summarize(doc), cid)


def test_table2_block_means_leave_the_diagonal_out():
    doc = _t2_doc(_blockwise(0.4, 0.3, 0.2, 0.1))
    out = transferability.summarize_table2(doc)
    blocks = out["summaries"]["blocks"]
    assert {b: v["cells"] for b, v in blocks.items()} == {
        "linear to linear": 6, "linear to nonlinear": 9, "nonlinear to linear": 9,
        "nonlinear to nonlinear": 6}
    # the diagonal (1.0) is in no block: each mean is exactly its off-diagonal value
    assert [v["ours"] for v in blocks.values()] == pytest.approx([0.4, 0.3, 0.2, 0.1])
    assert blocks["nonlinear to nonlinear"]["paper"] == pytest.approx(
        np.mean([0.066, 0.02, 0.203, 0.027, 0.094, 0.066]))
    assert out["summaries"]["off_diagonal"]["cells"] == 30
    assert out["summaries"]["diagonal"] == {**out["summaries"]["diagonal"],
                                            "by_construction": True, "in_means": False}
    diagonal = claims_data.find(out, "diagonal")
    assert diagonal["by_construction"] and diagonal["verdict"] == claims_data.REPRODUCED
    assert [c["id"] for c in out["claims"] if c["by_construction"]] == ["diagonal"]


@pytest.mark.parametrize("blocks, outcome, words", [
    ((0.4, 0.2, 0.2, 0.3), "holds", "Transfer is highest within a kind of model"),
    ((0.47, 0.26, 0.2, 0.148), "not", "Transfer does not follow the kind of model: from "
                                      "highest to lowest the blocks are linear to linear "
                                      "47.0%, linear to nonlinear 26.0%, nonlinear to linear "
                                      "20.0%, nonlinear to nonlinear 14.8%"),
], ids=["within a kind", "the issue's book-scale blocks"])
def test_table2_similar_models_says_what_the_blocks_show(blocks, outcome, words):
    c = _claim(_t2_doc(_blockwise(*blocks)), "similar_models")
    assert c["outcome"] == outcome and c["paper"] is None and words in c["sentence"]


@pytest.mark.parametrize("noise, dist, outcome, words", [
    (0.0, {}, "all", "In all 30 off-diagonal cells, a model's adversarial set fools"),
    (0.25, {}, "most", "In 25 of the 30 off-diagonal cells"),
    (0.99, {}, "few", "In only 0 of the 30 off-diagonal cells"),
    # noise smaller than every set: nothing to compare, and the sentence says so
    (0.99, {NOISE_LO: 0.01, NOISE_HI: 0.02}, "few", "(30 cells have no noise row as large"),
], ids=["noise fools none", "noise beats the autoencoder's set", "noise fools all",
        "noise smaller than the sets"])
def test_table2_noise_is_compared_only_at_the_same_or_larger_size(noise, dist, outcome, words):
    def cell(s, t):
        return 0.2 if s == "AE400-10" else 0.5
    c = _claim(_t2_doc(cell, noise=noise, dist=dist), "noise_vs_adversarial")
    assert c["outcome"] == outcome and words in c["sentence"], c["sentence"]
    assert "In the paper's table, read at its stated sizes: 23 of 30 cells." in c["sentence"]


def test_table2_noise_comparison_reads_the_issues_example():
    """The issue's book-scale figures: FC10(1e-4)'s set (RMS 0.037) fools FC100/FC200/AE400 on
    4.4/2.6/2.9%, clipped stddev 0.1 noise (RMS 0.074) on 4.3/2.6/3.2%, stddev 0.3 noise fools
    FC100-100-10 on 38.7%, more than FC200-200-10's set (36.1%). Every noise row at least as
    large counts, so the 4.4% cell loses to the 38.7% of stddev 0.3 noise as well."""
    sets = {("FC10(1e-4)", "FC100-100-10"): 0.044, ("FC10(1e-4)", "FC200-200-10"): 0.026,
            ("FC10(1e-4)", "AE400-10"): 0.029, ("FC200-200-10", "FC100-100-10"): 0.361}
    doc = _t2_doc(lambda s, t: sets.get((s, t), 0.9), dist={"FC10(1e-4)": 0.037})
    noise = {(NOISE_LO, "FC100-100-10"): 0.043, (NOISE_LO, "FC200-200-10"): 0.026,
             (NOISE_LO, "AE400-10"): 0.032, (NOISE_HI, "FC100-100-10"): 0.387}
    for r in doc["rows"]:
        if (r.get("source"), r.get("target")) in noise:
            r["error"]["ours"] = noise[(r["source"], r["target"])]
        elif r.get("source") == NOISE_HI and "error" in r:
            r["error"]["ours"] = 0.0
    cells = {(c["source"], c["target"]): c
             for c in transferability.noise_comparison(doc)}
    got = [cells[("FC10(1e-4)", t)]["holds"] for t in ("FC100-100-10", "FC200-200-10",
                                                         "AE400-10")]
    assert got == [False, False, False]
    assert cells[("FC10(1e-4)", "FC100-100-10")]["noise"] == NOISE_HI
    worst = cells[("FC200-200-10", "FC100-100-10")]
    assert worst["holds"] is False and worst["noise"] == NOISE_HI
    c = _claim(doc, "noise_vs_adversarial")
    assert "FC10(1e-4) to FC200-200-10 (2.6% against 2.6% for noise of stddev 0.1)" in \
        c["sentence"]


@pytest.mark.parametrize("shift, clean, verdict", [
    (0.0, 0.02, claims_data.REPRODUCED), (0.2, 0.02, claims_data.DIFFERS),
    (-1.0, 0.5, claims_data.OPPOSITE),
], ids=["the paper's cells", "far above the paper's", "no more than the clean error"])
def test_table2_cross_model_verdicts(shift, clean, verdict):
    doc = _t2_doc(lambda s, t: min(1.0, max(0.0, paper_figures.TABLE2[s][t] + shift)),
                  clean=clean)
    c = _claim(doc, "cross_model")
    assert c["verdict"] == verdict
    assert ("do not transfer" in c["sentence"]) == (verdict == claims_data.OPPOSITE)


T4_MODELS = zoo.TABLE3
T4_AMP = ", amplified to stddev=0.1"


def _t4_doc(plain, amplified, *, noise=0.02, diag=1.0):
    """A Table 4 document: ``plain(s, t)`` and ``amplified(s, t)`` give the off-diagonal cells."""
    rows, names = [], []
    for kind in ("plain", "noise_lo", "amplified", "noise_hi"):
        if kind.startswith("noise"):
            row = f"Gaussian noise, stddev={0.06 if kind == 'noise_lo' else 0.1:g}"
            names.append(row)
            for t in T4_MODELS:
                rows.append({"source": row, "target": t,
                             "error": {"ours": noise, "paper": paper_figures.TABLE4[row][t]}})
            rows.append({"source": row, "distortion": {"ours": 0.05, "paper": 0.06}})
            continue
        for s in T4_MODELS:
            row = f"Distorted for {s}" + (T4_AMP if kind == "amplified" else "")
            names.append(row)
            fn = plain if kind == "plain" else amplified
            for t in T4_MODELS:
                v = diag if s == t else fn(s, t)
                rows.append({"source": row, "target": t,
                             "error": {"ours": v, "paper": paper_figures.TABLE4[row][t]}})
            rows.append({"source": row, "distortion": {
                "ours": 0.1 if kind == "amplified" else 0.05,
                "paper": 0.1 if kind == "amplified" else paper_figures.TABLE3[s]["distortion"]}})
    return {"name": "table4", "rows": rows,
            "settings": {"columns": list(T4_MODELS), "rows": names,
                         "clean_error": dict.fromkeys(T4_MODELS, 0.02),
                         "amplify_factor": dict.fromkeys(T4_MODELS, 2.0),
                         "amplify_stddev": 0.1}}


def _paper4(amplified=False):
    return lambda s, t: paper_figures.TABLE4[f"Distorted for {s}" + (T4_AMP if amplified
                                                                     else "")][t]


@pytest.mark.parametrize("amplified, verdict", [
    (_paper4(True), claims_data.REPRODUCED),
    (lambda s, t: 0.95, claims_data.DIFFERS),
    (lambda s, t: 0.01, claims_data.OPPOSITE),
], ids=["the paper's amplified cells", "near total", "below the plain cells"])
def test_table4_amplified_verdicts(amplified, verdict):
    doc = _t4_doc(_paper4(), amplified)
    out = transferability.summarize_table4(doc)
    c = claims_data.find(out, "amplified")
    assert c["verdict"] == verdict, c["sentence"]
    if verdict == claims_data.DIFFERS:
        assert "so ours transfer more once amplified" in c["sentence"]
    # the plain diagonal holds by construction and is in no mean
    assert claims_data.find(out, "table4_diagonal")["by_construction"]
    plain = out["summaries"]["plain_off_diagonal"]["ours"]
    assert plain["max"] == pytest.approx(0.262) and plain["min"] == pytest.approx(0.051)


def test_table4_same_half_against_across_halves():
    same_p1 = ("FC100-100-10@P1", "FC123-456-10@P1")

    def across_more(s, t):
        return 0.1 if s in same_p1 and t in same_p1 else 0.3

    doc = _t4_doc(across_more, _paper4(True))
    c = _claim(doc, "same_vs_disjoint")
    assert c["verdict"] == claims_data.OPPOSITE
    assert "the mean is 10.0%, below the 30.0% across the halves" in c["sentence"]
    assert _claim(_t4_doc(_paper4(), _paper4(True)), "same_vs_disjoint")["verdict"] == \
        claims_data.REPRODUCED
    assert _claim(doc, "cross_training")["verdict"] == claims_data.DIFFERS   # 30% vs 6.9%
    noise = _claim(_t4_doc(across_more, _paper4(True), noise=0.2), "table4_noise")
    assert noise["outcome"] == "not" and noise["sentence"].startswith("10 of the 12")


def test_summaries_are_recomputed_from_the_rows():
    """``experiments.refresh`` (what a counterfactual test uses) rebuilds the claims."""
    from intriguing.experiments import refresh

    doc = _t2_doc(_blockwise(0.4, 0.2, 0.2, 0.3))
    first = refresh(doc)
    for r in doc["rows"]:
        if r.get("source") in NONLIN and r.get("target") in NONLIN and r["source"] != r["target"]:
            r["error"]["ours"] = 0.01
    again = refresh(doc)
    assert claims_data.find(first, "similar_models")["outcome"] == "holds"
    assert claims_data.find(again, "similar_models")["outcome"] == "not"


def _curves_doc(table2_rows):
    rows = (_curve_rows("A", "A", (0.02, 0.06), (0.2, 1.0), (0.0, 0.0))
            + _curve_rows("A", "B", (0.02, 0.06), (0.1, 0.5), (0.0, 0.1))
            + _curve_rows("B", "A", (0.01, 0.04), (0.2, 0.8), (0.1, 0.1))
            + _curve_rows("B", "B", (0.01, 0.04), (0.5, 1.0), (0.0, 0.0)))
    rows += [{"source": "A", "target": "B", "c": "at the paper's distortion",
              "error": {"ours": 0.45, "paper": 0.2}}]
    return {"name": "transfer_curves", "rows": rows,
            "settings": {"sources": ["A", "B"], "targets": ["A", "B"], "c_grid": [0.1, 1.0],
                         "n": 7, "table2": table2_rows}}


def test_transfer_curves_summary_and_claims_come_from_the_file_alone():
    table2 = [{"source": "A", "target": "B", "error": {"ours": 0.6, "paper": 0.3}},
              {"source": "B", "target": "A", "error": {"ours": 0.2, "paper": 0.4}},
              {"source": "A", "distortion": {"ours": 0.05}},
              {"source": "B", "distortion": {"ours": 0.03}}]
    out = transferability.summarize_transfer_curves(_curves_doc(table2))
    assert out["summaries"]["t2_top"] == "A" and out["summaries"]["d_common"] == 0.04
    grows = claims_data.find(out, "grows_with_size")
    assert grows["outcome"] == "grows" and "at half that distortion, on 25.0%" in grows["sentence"]
    above = claims_data.find(out, "above_noise")
    assert above["outcome"] == "above" and "in 4 of 4 points" in above["sentence"]
    # A tops Table 2 but ranks second at the common distortion, and its set was the larger
    assert claims_data.find(out, "sizes_not_models")["outcome"] == "size"
    vs_paper = claims_data.find(out, "curves_vs_paper")
    assert vs_paper["verdict"] == claims_data.DIFFERS        # 45% against the paper's 20%
    assert claims_data.find(out, "table2_on_curves")["outcome"] == "below"
    # without Table 2 the comparisons with it say so instead of failing
    alone = transferability.summarize_transfer_curves(_curves_doc(None))
    assert claims_data.find(alone, "sizes_not_models")["outcome"] == "no_table2"
    assert claims_data.find(alone, "table2_on_curves")["outcome"] == "no_table2"
