"""Transfer tables: error matrices, amplification, noise rows, and reuse of cached attacks."""

import pytest
import torch
from torch import nn

from intriguing import attacks, config, reproduce, results, transfer


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
    first = reproduce.table4(tiny, progress=False)
    assert len(calls) == 3                  # one attack per Table 3 model

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached adversarial set should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = reproduce.table4(tiny, progress=False)
    table3 = reproduce.table3(tiny, progress=False)
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
