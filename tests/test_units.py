"""Property 1 helpers (``intriguing.units``) on synthetic data: no real MNIST, milliseconds."""

import base64
import html

import numpy as np
import pytest
import torch

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
    mean, lo, hi = units.bootstrap_ci(x, seed=0)
    assert lo < mean < hi and mean == pytest.approx(0.5)
    assert units.mann_whitney_p(np.ones(5), np.ones(5)) == 1.0
    assert units.mann_whitney_p(np.zeros(20), np.ones(20)) < 1e-6


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


def test_strip_png_and_caption():
    png = units.strip_png(torch.rand(3, 1, 28, 28))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (3 * 28 + 2 * 2, 28)
    assert "label purity 0.67" in units.caption_html("unit 0", [1, 1, 2])


def test_viewer_links_every_stack():
    acts, labels = synthetic_layer(n=40, dim=5)
    acts[:, 0] = 0.0
    images = torch.rand(40, 1, 28, 28)
    box = units.viewer(images, labels, acts, n=3, ks=(2, 4))
    # basis -> 2 index stacks -> 3 k stacks each: 1 + 2 + 6 links
    assert len(box.links) == 9
    outer = box.children[-1]
    first = outer.children[0].children[0].children[0]
    assert "unit 1" in first.children[1].value  # unit 0 is dead, so the first shown is unit 1
    assert 'alt="The 2 test images that excite unit 1 most' in first.children[0].value
    with pytest.raises(ValueError, match="unit_ids"):
        units.viewer(images, labels, acts, unit_ids=[9])


def test_live_viewer_redraws_the_top_k_of_the_chosen_direction():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=gen)
    labels = torch.arange(40) % 10
    acts = torch.randn(40, 6, generator=gen)
    box = units.live_viewer(images, labels, acts, ks=(4, 8))
    basis, index, k = box.controls
    index.value, k.value = 3, 8
    expected = units.strip_png(images[units.top_k(acts, units.unit_direction(6, 3), 8)])
    assert base64.b64encode(expected).decode() in box.children[3].value
    basis.value = "random direction"
    index.value = 7
    v = units.random_directions(6, 1, seed=7)[0]
    idx = units.top_k(acts, v, 8)
    assert base64.b64encode(units.strip_png(images[idx])).decode() in box.children[3].value
    assert "seed 7" in box.children[4].value
    alt = html.escape(units.strip_alt("random direction (seed 7)", labels[idx].tolist()),
                      quote=True)
    assert f'alt="{alt}"' in box.children[3].value
    with pytest.raises(ValueError, match="ks must hold k"):
        units.live_viewer(images, labels, acts, ks=(0,))
