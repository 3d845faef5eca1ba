"""Target rules for Table 1 (``advsets.pick_targets``): each rule keeps the targets it says.

The end-to-end test attacks a hand-built linear model whose easiest and hardest target per image
are known in closed form; the rest checks the reduction on small hand-written tables.
"""

import pytest
import torch
from torch import nn

from intriguing import attacks
from intriguing.engine import advsets

pytestmark = pytest.mark.usefixtures("one_thread")


def _pixel_per_class(side: int = 6, sharpness: float = 40.0) -> nn.Module:
    """Logit k reads pixel k only: ``z_k = sharpness * x_k``."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(side * side, 10)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[torch.arange(10), torch.arange(10)] = sharpness
    return model


def _exact_distance(x: torch.Tensor, label: int, target: int) -> float:
    """The smallest squared L2 change of ``x`` (pixel k = class k's logit) that makes the target
    the argmax: raise ``x_target`` and lower every pixel above it to a common level ``t``,
    ``min_t (t - x_target)^2 + sum_{j != target, x_j > t} (x_j - t)^2`` (inside the box here)."""
    levels = torch.linspace(float(x[target]), float(x[label]), 20001, dtype=torch.float64)
    others = torch.cat([x[:target], x[target + 1:]]).double()
    cost = (levels - x[target]) ** 2 + (others[None, :] - levels[:, None]).clamp_min(0).pow(
        2).sum(1)
    return float(cost.min())


def test_rules_pick_the_known_easiest_and_hardest_targets():
    """A pixel-per-class linear model: the closer a class's pixel is to the true class's, the
    easier the target; the attack's every-target table must rank the targets so."""
    side, n = 6, 5
    gen = torch.Generator().manual_seed(0)
    levels = torch.tensor([0.15, 0.2, 0.26, 0.33, 0.4, 0.47, 0.54, 0.62, 0.7, 0.85])
    x = torch.zeros(n, 1, side, side)
    for i in range(n):
        x[i].view(-1)[:10] = levels[torch.randperm(10, generator=gen)]
    model = _pixel_per_class(side)
    labels = model(x).argmax(1)
    pixels = x.view(n, -1)[:, :10]
    assert torch.equal(labels, pixels.argmax(1))

    images, targets = advsets.every_rows(x, labels)
    res = attacks.lbfgs(model, images, targets)
    dist = res.distortion.reshape(n, advsets.N_WRONG)
    success = res.success.reshape(n, advsets.N_WRONG)
    assert success.all()
    wrong = advsets.wrong_labels(labels)
    exact = torch.tensor([[_exact_distance(pixels[i], int(labels[i]), int(t)) for t in wrong[i]]
                          for i in range(n)])

    easiest = wrong[advsets.pick_targets(dist, "easiest", success=success)]
    hardest = wrong[advsets.pick_targets(dist, "hardest", success=success)]
    # The known answers: the class whose pixel is second brightest / darkest.
    assert torch.equal(easiest, pixels.argsort(1, descending=True)[:, 1])
    assert torch.equal(hardest, pixels.argmin(1))
    assert torch.equal(easiest, wrong[torch.arange(n), exact.argmin(1)])
    assert torch.equal(hardest, wrong[torch.arange(n), exact.argmax(1)])
    untargeted = wrong[advsets.pick_targets(dist, "untargeted", success=success)]
    assert torch.equal(untargeted, easiest)  # by construction (module docstring)
    random = wrong[advsets.pick_targets(dist, "random", success=success, labels=labels)]
    assert torch.equal(random, advsets.random_targets(labels))
    # the attack's distortions rank the targets as the exact ones do, and come close to them
    rms = (exact / (side * side)).sqrt()
    assert ((dist / rms) - 1).abs().max() < 0.05


def test_every_rows_map_back_to_image_and_target():
    x = torch.rand(4, 1, 28, 28)
    labels = torch.tensor([0, 9, 3, 3])
    images, targets = advsets.every_rows(x, labels)
    assert images.shape == (36, 1, 28, 28) and targets.shape == (36,)
    wrong = advsets.wrong_labels(labels)
    for i in range(4):
        for j in range(9):
            assert torch.equal(images[9 * i + j], x[i])
            assert targets[9 * i + j] == wrong[i, j]
        assert sorted(wrong[i].tolist()) == [k for k in range(10) if k != labels[i]]
    # a target's column comes back as target - (target > label)
    t = advsets.random_targets(labels)
    col = t - (t > labels).long()
    assert torch.equal(wrong[torch.arange(4), col], t)


def _table():
    dist = torch.tensor([[0.3, 0.1, 0.5, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9],
                         [0.3, 0.1, 0.5, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9]])
    success = torch.ones(2, 9, dtype=torch.bool)
    success[1, 1] = False  # the easiest is missed: the next easiest counts, and a missed
    success[1, 4] = False  # target is the hardest (the first missed, of two)
    return dist, success


def test_pick_targets_on_a_table():
    dist, success = _table()
    col = {r: advsets.pick_targets(dist, r, success=success).float().argmax(1).tolist()
           for r in ("easiest", "hardest", "untargeted")}
    assert col == {"easiest": [1, 3], "hardest": [8, 1], "untargeted": [1, 3]}
    assert advsets.pick_targets(dist, "every").all()
    for rule in ("easiest", "hardest", "untargeted", "random"):
        mask = advsets.pick_targets(dist, rule, success=success,
                                    labels=torch.tensor([2, 7]))
        assert mask.sum(1).tolist() == [1, 1]


def test_rule_summary_leaves_out_excluded_images_and_counts_failures():
    dist, success = _table()
    keep = torch.tensor([True, False])
    got = advsets.rule_summary(dist, success, "hardest", keep=keep)
    assert got == {"distortion": pytest.approx(0.9), "success": 1.0, "n_images": 1,
                   "n_examples": 1}
    both = advsets.rule_summary(dist, success, "hardest")
    assert both["success"] == 0.5 and both["distortion"] == pytest.approx(0.9)
    every = advsets.rule_summary(dist, success, "every", keep=keep)
    assert every["n_examples"] == 9 and every["distortion"] == pytest.approx(0.5)


@pytest.mark.parametrize("rule", ["Random", "closest", "", None, 3])
def test_bad_rule_names_raise(rule):
    dist, _ = _table()
    with pytest.raises(ValueError, match="rule must be one of"):
        advsets.pick_targets(dist, rule)


def test_bad_tables_raise():
    dist, success = _table()
    with pytest.raises(ValueError, match=r"distortion must be a floating-point tensor of shape"):
        advsets.pick_targets(dist[:, :8], "easiest")
    with pytest.raises(ValueError, match="success must be a bool tensor"):
        advsets.pick_targets(dist, "easiest", success=success.float())
    with pytest.raises(ValueError, match="labels must be given for rule 'random'"):
        advsets.pick_targets(dist, "random")
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        advsets.pick_targets(dist, "random", labels=torch.tensor([1]))
    with pytest.raises(ValueError, match="keep must be a bool tensor"):
        advsets.rule_summary(dist, success, "every", keep=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        advsets.wrong_labels(torch.tensor([10]))
