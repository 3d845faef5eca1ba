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


def test_table4_attacks_each_source_once(synthetic_mnist, monkeypatch, tiny):
    monkeypatch.setitem(config.SCALES, tiny.name, tiny)   # results files at the tiny scale
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


def test_transfer_curves_experiment_on_tiny_models(synthetic_mnist, monkeypatch, tiny):
    monkeypatch.setitem(config.SCALES, tiny.name, tiny)
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
