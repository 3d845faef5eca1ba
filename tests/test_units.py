"""Property 1 helpers (``engine.units``, ``display.unit_viewers``) and the claims of
``experiments.coherence.summarize_units``, on synthetic data: no real MNIST, milliseconds."""

import base64
import html

import numpy as np
import pytest
import torch

from intriguing.display import unit_viewers
from intriguing.engine import models, units


@pytest.fixture
def acts():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(50, 6, generator=gen)


def brute_top_k(acts, v, k):
    """Reference: sort by (-score, index) image by image."""
    scores = [float(np.dot(a, v)) for a in np.asarray(acts, dtype=np.float64)]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return order[:k]


@pytest.mark.parametrize("k", [1, 5, 50])
def test_top_k_matches_brute_force(acts, k):
    dirs = units.random_directions(6, 4, seed=3)
    got = units.top_k(acts, dirs, k)
    assert got.shape == (4, k)
    for row, v in zip(got, dirs):
        assert row.tolist() == brute_top_k(acts, v.numpy(), k)
    assert units.top_k(acts, dirs[1], k).tolist() == got[1].tolist()


def test_top_k_of_a_unit_is_its_largest_activations(acts):
    got = units.top_k(acts, units.unit_direction(6, 2), 7)
    assert got.tolist() == torch.argsort(acts[:, 2], descending=True)[:7].tolist()


def test_top_k_breaks_ties_by_index():
    acts = torch.zeros(10, 3)
    acts[7, 0] = 1.0
    assert units.top_k(acts, units.unit_direction(3, 0), 4).tolist() == [7, 0, 1, 2]
    assert units.top_k(acts, units.unit_direction(3, 1), 3).tolist() == [0, 1, 2]


@pytest.mark.parametrize("k", [0, -1, 51])
def test_top_k_rejects_bad_k(acts, k):
    with pytest.raises(ValueError, match="k must be"):
        units.top_k(acts, units.unit_direction(6, 0), k)


def test_top_k_rejects_wrong_direction_size_and_nans(acts):
    with pytest.raises(ValueError, match="direction must have shape"):
        units.top_k(acts, torch.ones(5), 3)
    with pytest.raises(ValueError, match="direction must hold finite"):
        units.top_k(acts, torch.tensor([float("nan")] + [0.0] * 5), 3)
    bad = acts.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="acts must hold finite"):
        units.top_k(bad, units.unit_direction(6, 0), 3)


def test_label_purity_constructed_cases():
    labels = torch.tensor([3, 3, 3, 3, 1, 2, 5, 5])
    assert units.label_purity(labels, torch.tensor([0, 1, 2, 3])).tolist() == [1.0]
    got = units.label_purity(labels, torch.tensor([[0, 1, 4, 5], [4, 5, 6, 7], [0, 4, 5, 6]]))
    np.testing.assert_allclose(got, [0.5, 0.5, 0.25])


def test_cosine_of_identical_vectors_is_one():
    reps = torch.tensor([[1.0, 2.0, 3.0]] * 4 + [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(units.mean_pairwise_cosine(reps, torch.arange(4)), [1.0])
    # (1,0,0)-ish pair: cosine of (-1,0,0) and (0,1,0) is 0
    np.testing.assert_allclose(units.mean_pairwise_cosine(reps, torch.tensor([[4, 5]])), [0.0],
                               atol=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        units.mean_pairwise_cosine(reps, torch.tensor([[0]]))


def test_directions_are_unit_vectors_and_seeded():
    a = units.random_directions(10, 5, seed=1)
    assert a.shape == (5, 10)
    np.testing.assert_allclose(a.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    assert torch.equal(a, units.random_directions(10, 5, seed=1))
    assert not torch.equal(a, units.random_directions(10, 5, seed=2))
    assert units.unit_direction(4, 1).tolist() == [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="i must be"):
        units.unit_direction(4, 4)


def test_random_rotation_is_orthogonal_and_seeded():
    q = units.random_rotation(12, seed=5)
    np.testing.assert_allclose((q @ q.T).numpy(), np.eye(12), atol=1e-12)
    assert torch.equal(q, units.random_rotation(12, seed=5))
    with pytest.raises(ValueError, match="dim must be"):
        units.random_rotation(0, seed=5)


def test_bootstrap_and_test_are_deterministic():
    x = np.linspace(0, 1, 40)
    assert units.bootstrap_ci(x, seed=0) == units.bootstrap_ci(x, seed=0)
    assert units.bootstrap_ci(x, seed=0) != units.bootstrap_ci(x, seed=1)
    mean, lo, hi = units.bootstrap_ci(x, seed=0)
    assert lo < mean < hi and mean == pytest.approx(0.5)
    assert units.mann_whitney_p(np.ones(5), np.ones(5)) == 1.0
    assert units.mann_whitney_p(np.zeros(20), np.ones(20)) < 1e-6


def test_bootstrap_interval_has_the_normal_width():
    """For 400 draws of N(0, 1) the 95% interval of the mean is about +-1.96/sqrt(400) wide, and
    that of a difference of two such samples sqrt(2) times wider."""
    gen = np.random.default_rng(0)
    a, b = gen.normal(size=400), gen.normal(size=400)
    _, lo, hi = units.bootstrap_ci(a, n_resamples=4000)
    assert hi - lo == pytest.approx(2 * 1.96 / 20, rel=0.15)
    diff, lo, hi = units.bootstrap_difference(a, b, n_resamples=4000)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert lo < diff < hi and hi - lo == pytest.approx(2 * 1.96 * np.sqrt(2) / 20, rel=0.15)
    assert units.bootstrap_difference(a, b, seed=3) == units.bootstrap_difference(a, b, seed=3)


def test_bootstrap_of_constant_or_single_scores_is_that_score():
    assert units.bootstrap_ci(np.ones(7)) == (1.0, 1.0, 1.0)
    assert units.bootstrap_ci(np.array([0.25])) == (0.25, 0.25, 0.25)
    assert units.bootstrap_difference(np.array([0.5]), np.array([0.25])) == (0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="values must be a non-empty"):
        units.bootstrap_ci(np.array([]))
    with pytest.raises(ValueError, match="level must be"):
        units.bootstrap_ci(np.ones(3), level=1.5)


def synthetic_layer(n=200, dim=8, seed=0):
    """Labels 0..3, activations = noisy one-hot of the label padded with noise units."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    acts = 0.3 * torch.rand(n, dim, generator=gen)
    acts[torch.arange(n), labels] += 1.0
    return acts, labels


def test_compare_rows_and_determinism():
    acts, labels = synthetic_layer()
    acts[:, 7] = 0.0  # a dead unit
    reps = torch.nn.functional.one_hot(labels, 4).float() + 0.1
    a = units.compare(acts, labels, reps, ks=(4, 8), seed=0, n_resamples=200)
    b = units.compare(acts, labels, reps, ks=(4, 8), seed=0, n_resamples=200)
    assert a.rows == b.rows
    assert a.dead_units == [7] and a.units == list(range(7))
    groups = {r["group"] for r in a.rows}
    assert groups == {*units.GROUPS, units.DIFFERENCE}
    assert len(a.rows) == 2 * len(units.MEASURES) * 4
    row = next(r for r in a.rows if (r["k"], r["measure"], r["group"]) == (4, "purity", "units"))
    assert row["n"] == 7 and row["ci_low"] <= row["mean"] <= row["ci_high"]
    # the four label units are perfectly pure; the floor is not
    assert a.scores[(4, "purity", "units")][:4].tolist() == [1.0] * 4
    floor = next(r for r in a.rows if (r["k"], r["measure"], r["group"]) == (8, "purity", "random"))
    assert floor["mean"] < 0.8 and floor["p_vs_random"] is None


def test_compare_rejects_bad_k():
    acts, labels = synthetic_layer()
    with pytest.raises(ValueError, match="ks must"):
        units.compare(acts, labels, acts, ks=(1,))


def test_activations_hooks_the_named_layer():
    torch.manual_seed(0)
    mlp = models.SigmoidMLP((6, 4), (0, 0, 0)).eval()
    x = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    got = units.activations(mlp, "act1", x, batch_size=3)
    want = torch.sigmoid(mlp.body.fc1(x.flatten(1)))
    torch.testing.assert_close(got, want)
    assert not mlp.body.act1._forward_hooks  # the hook is removed afterwards


def test_activations_of_convnet_feat_and_unknown_layer():
    torch.manual_seed(0)
    net = models.ConvNet().eval()
    x = torch.rand(5, 1, 28, 28)
    assert units.activations(net, "feat", x).shape == (5, 128)
    with pytest.raises(ValueError, match=r"layer must be one of \['feat'\].*'act1'"):
        units.activations(net, "act1", x)
    mlp = models.SigmoidMLP((6, 4), (0, 0, 0)).eval()
    assert units.layer_names(mlp) == ["act1", "act2"]
    assert units.activations(mlp, "act2", x).shape == (5, 4)
    with pytest.raises(ValueError, match="layer must be one of"):
        units.activations(mlp, "fc1", x)


def test_live_units_and_strip_sets():
    acts, _ = synthetic_layer(n=40, dim=5)
    acts[:, 0] = 0.0
    assert units.live_units(acts).tolist() == [1, 2, 3, 4]
    sets = units.strip_sets(acts, n=3, k=4, seed=2)
    assert list(sets) == ["unit", "random direction"]
    assert [name for name, _ in sets["unit"]] == ["unit 1", "unit 2", "unit 3"]
    dirs = units.random_directions(5, 3, seed=2)
    for i, (name, idx) in enumerate(sets["random direction"]):
        assert name == f"random direction {i}"
        assert idx.tolist() == units.top_k(acts, dirs[i], 4).tolist()
    assert sets["unit"][1][1].tolist() == units.top_k(acts, units.unit_direction(5, 2), 4).tolist()
    with pytest.raises(ValueError, match="unit_ids"):
        units.strip_sets(acts, unit_ids=[9])


def test_ranker_ranks_a_unit_or_a_seeded_direction():
    acts = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    rank = units.Ranker(acts)
    assert (rank.n_units, rank.n_images) == (6, 30)
    name, idx = rank("unit", 3, 5)
    assert name == "unit 3"
    assert idx.tolist() == units.top_k(acts, units.unit_direction(6, 3), 5).tolist()
    name, idx = rank("random direction", 7, 5)
    assert name == "random direction (seed 7)"
    v = units.random_directions(6, 1, seed=7)[0]
    assert idx.tolist() == units.top_k(acts, v, 5).tolist()
    with pytest.raises(ValueError, match="basis must be one of"):
        rank("pixel", 0, 5)


def test_engine_and_experiment_import_nothing_from_display():
    import ast
    import inspect

    from intriguing.experiments import coherence

    for module in (units, coherence):
        tree = ast.parse(inspect.getsource(module))
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [n for n in names if "display" in n or "widgets" in n], module.__name__


def test_strip_png_and_caption():
    png = unit_viewers.strip_png(torch.rand(3, 1, 28, 28))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert unit_viewers.strip_png(np.random.rand(3, 28, 28))[:8] == png[:8]
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (3 * 28 + 2 * 2, 28)
    assert "label purity 0.67" in unit_viewers.caption_html("unit 0", [1, 1, 2])


def test_viewer_links_every_stack():
    acts, labels = synthetic_layer(n=40, dim=5)
    acts[:, 0] = 0.0
    images = torch.rand(40, 1, 28, 28)
    box = unit_viewers.viewer(images, labels, units.strip_sets(acts, n=3, k=4), ks=(2, 4))
    # basis -> 2 index stacks -> 3 k stacks each: 1 + 2 + 6 links
    assert len(box.links) == 9
    outer = box.children[-1]
    first = outer.children[0].children[0].children[0]
    assert "unit 1" in first.children[1].value  # unit 0 is dead, so the first shown is unit 1
    assert 'alt="The 2 test images that excite unit 1 most' in first.children[0].value
    with pytest.raises(ValueError, match="ks must hold k"):
        unit_viewers.viewer(images, labels, units.strip_sets(acts, n=3, k=4), ks=(2, 8))
    with pytest.raises(ValueError, match="same non-zero number"):
        unit_viewers.viewer(images, labels, {"unit": [], "random direction": []})


def test_live_viewer_redraws_the_top_k_of_the_chosen_direction():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=gen)
    labels = torch.arange(40) % 10
    acts = torch.randn(40, 6, generator=gen)
    box = unit_viewers.live_viewer(images, labels, units.Ranker(acts), ks=(4, 8))
    basis, index, k = box.controls
    index.value, k.value = 3, 8
    expected = unit_viewers.strip_png(images[units.top_k(acts, units.unit_direction(6, 3), 8)])
    assert base64.b64encode(expected).decode() in box.children[3].value
    basis.value = "random direction"
    index.value = 7
    v = units.random_directions(6, 1, seed=7)[0]
    idx = units.top_k(acts, v, 8)
    assert base64.b64encode(unit_viewers.strip_png(images[idx])).decode() in box.children[3].value
    assert "seed 7" in box.children[4].value
    alt = html.escape(unit_viewers.strip_alt("random direction (seed 7)", labels[idx].tolist()),
                      quote=True)
    assert f'alt="{alt}"' in box.children[3].value
    with pytest.raises(ValueError, match="ks must hold k"):
        unit_viewers.live_viewer(images, labels, units.Ranker(acts), ks=(0,))


# --------------------------------------------------------------------------------------------
# The claims of units.json (experiments.coherence.summarize_units) on synthetic documents

PROBES = [("ConvNet", "feat"), ("FC100-100-10", "act1"), ("FC100-100-10", "act2"),
          ("FC200-200-10", "act2")]
KEYS = [(m, lay, k, meas) for m, lay in PROBES for k in ("8", "16", "64")
        for meas in ("purity", "cosine")]


def units_doc(diff=None, floor_p=1e-12, dead=(3,)):
    """A units.json with 24 comparisons: ``diff`` maps a comparison's index to (units -
    directions, p); the others have difference -0.01 and p 0.5. Units score 0.6 + difference,
    directions 0.6, the floor 0.2 (p ``floor_p`` against each; a dict maps an index to its own)."""
    from intriguing.plumbing import results

    diff = diff or {}
    rows = []
    for i, (model, layer, k, measure) in enumerate(KEYS):
        d, p = diff.get(i, (-0.01, 0.5))
        fp = floor_p.get(i, 1e-12) if isinstance(floor_p, dict) else floor_p
        base = {"model": model, "layer": layer, "representation": "X/y", "k": k,
                "measure": measure}
        for group, mean, pd, pr in (("units", 0.6 + d, p, fp), ("directions", 0.6, None, fp),
                                    ("random", 0.2, 1e-12, None),
                                    (units.DIFFERENCE, d, p, None)):
            rows.append({**base, "group": group, "mean": results.cell(mean),
                         "ci_low": results.cell(mean - 0.02), "ci_high": results.cell(mean + 0.02),
                         "p_vs_directions": results.cell(pd), "p_vs_random": results.cell(pr)})
    return {"name": "units", "scale": "smoke", "rows": rows,
            "settings": {"n_images": 500,
                         "units": {f"{m}/{lay}": 128 for m, lay in PROBES},
                         "dead_units": {f"{m}/{lay}": list(range(n)) for (m, lay), n
                                        in zip(PROBES, (*dead, 0, 0, 0))}}}


def claim(doc, claim_id):
    from intriguing.experiments import coherence
    from intriguing.plumbing import claims

    return claims.find({"name": "units", **coherence.summarize_units(doc)}, claim_id)


def test_holm_adjusts_as_by_hand():
    from intriguing.experiments import coherence

    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone
    got = coherence.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(coherence.holm([0.5, 0.9]), [1.0, 1.0])
    with pytest.raises(ValueError, match="pvalues must be"):
        coherence.holm([0.1, float("nan")])


def test_the_correction_changes_the_count():
    """p = 0.01 is significant alone but not as one of 24 (Holm: 23 x 0.01); p = 1e-4 stays."""
    from intriguing.experiments import coherence

    doc = units_doc({0: (-0.05, 0.01), 5: (-0.05, 1e-4)})
    s = coherence.summarize_units(doc)["summaries"]
    assert s["n_comparisons"] == 24
    assert s["uncorrected"] == {"units": 0, "directions": 2, "neither": 22}
    assert s["corrected"] == {"units": 0, "directions": 1, "neither": 23}
    assert [c["more_coherent"] for c in s["comparisons"]][:6] == ["neither"] * 5 + ["directions"]
    assert s["comparisons"][0]["p_holm"] == pytest.approx(0.01 * 23)


def test_no_difference_anywhere_reproduces_both_readings():
    doc = units_doc({0: (-0.05, 0.01)})
    c = claim(doc, "units_vs_directions")
    assert c["verdict"] == "reproduced" and "in none of them (nor in any without the correction)" \
        in c["sentence"]
    c = claim(doc, "no_distinction")
    assert c["verdict"] == "reproduced"
    assert "units in none, random directions in 1" in c["sentence"]


def test_directions_more_coherent_leave_units_no_better_but_distinct():
    """The book-scale pattern (directions ahead in 10 comparisons, units in none)."""
    doc = units_doc({i: (-0.05, 1e-6) for i in range(10)})
    c = claim(doc, "units_vs_directions")
    assert c["verdict"] == "reproduced"
    c = claim(doc, "no_distinction")
    assert c["verdict"] == "differs"
    assert c["sentence"].startswith("After the correction random directions were significantly "
                                    "more coherent than units in 10 of the 24 comparisons")
    assert "always in the random directions' favour" in c["sentence"] and c["reason"]


@pytest.mark.parametrize(("n_better", "verdict", "words"), [
    (3, "differs", "in 3 of them (without the correction: in 3): there the natural basis is "
                   "better"),
    (12, "opposite", "in 12 of them (without the correction: in 12): as a rule the natural "
                     "basis is more coherent"),
])
def test_units_more_coherent_differs_or_opposes(n_better, verdict, words):
    doc = units_doc({i: (0.05, 1e-6) for i in range(n_better)})
    c = claim(doc, "units_vs_directions")
    assert c["verdict"] == verdict and words in c["sentence"] and c["reason"]
    c = claim(doc, "no_distinction")
    assert c["verdict"] == "differs" and "always in the units' favour" in c["sentence"]


def test_mixed_signs_differ_in_both_directions():
    doc = units_doc({0: (0.05, 1e-6), 1: (-0.05, 1e-6), 2: (-0.05, 1e-6)})
    assert claim(doc, "units_vs_directions")["verdict"] == "differs"
    assert "in both directions" in claim(doc, "no_distinction")["sentence"]


@pytest.mark.parametrize(("floor_p", "verdict", "words"), [
    (1e-12, "reproduced", "in all 24 comparisons"),
    ({0: 0.5, 1: 0.5}, "differs", "in only 22 of the 24 comparisons"),
    (0.5, "opposite", "in none of the 24 comparisons"),
])
def test_groups_against_the_floor(floor_p, verdict, words):
    doc = units_doc(floor_p=floor_p)
    for cid, who in (("units_above_floor", "units"), ("directions_above_floor",
                                                     "random directions")):
        c = claim(doc, cid)
        assert c["verdict"] == verdict
        assert c["sentence"].startswith(f"The top-k sets of {who} are significantly more "
                                        f"coherent than k random test images {words}")
    assert ("on ConvNet's feat layer at k = 16 their mean label purity is 0.59, against 0.20"
            in claim(doc, "units_above_floor")["sentence"])


@pytest.mark.parametrize(("diff", "outcome", "words"), [
    ((-0.01, 0.5), "neither", "is not significant."),
    ((0.2, 1e-9), "units", "is significant: here units pick purer sets."),
    ((-0.2, 1e-9), "directions", "is significant: here random directions pick purer sets."),
])
def test_first_layer_purity(diff, outcome, words):
    c = claim(units_doc({0: diff}), "convnet_purity")
    assert c["verdict"] is None and c["outcome"] == outcome
    assert c["sentence"].startswith("On ConvNet's feat layer, label purity at k = 8 is ")
    assert c["sentence"].endswith(words)


@pytest.mark.parametrize(("dead", "outcome", "start"), [
    ((51,), "some", "51 of the 128 units of ConvNet's feat layer never change on the 500 test "
                    "images"),
    ((0,), "none", "Every one of the 128 units of ConvNet's feat layer changes"),
])
def test_dead_units(dead, outcome, start):
    c = claim(units_doc(dead=dead), "dead_units")
    assert c["outcome"] == outcome and c["sentence"].startswith(start)


def test_the_correction_keeps_a_chance_finding_from_changing_the_verdict():
    """Units ahead in one comparison at p = 0.01: significant alone, not as one of 24."""
    c = claim(units_doc({3: (0.05, 0.01)}), "units_vs_directions")
    assert c["verdict"] == "reproduced"
    assert "in none of them (in 1 without the correction)" in c["sentence"]
    c = claim(units_doc({3: (0.05, 0.001)}), "units_vs_directions")
    assert c["verdict"] == "differs" and "in 1 of them" in c["sentence"]
