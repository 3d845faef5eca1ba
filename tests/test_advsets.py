"""Adversarial sets: targets, caching and reuse (the attack itself is tested in test_attacks)."""

import pytest
import torch

from intriguing import attacks
from intriguing.engine import advsets
from intriguing.plumbing import config


def test_random_targets_never_the_label_and_seeded():
    labels = torch.arange(10).repeat(100)
    t = advsets.random_targets(labels)
    assert (t != labels).all() and t.min() >= 0 and t.max() <= 9
    assert torch.equal(t, advsets.random_targets(labels))
    assert not torch.equal(t, advsets.random_targets(labels, seed=1))
    # every wrong label is drawn
    assert len(torch.unique(t[labels == 0])) == 9


def test_random_targets_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be a 1-D long tensor"):
        advsets.random_targets(torch.zeros(3, 2, dtype=torch.long))


def test_set_is_made_once_then_reused(synthetic_mnist, monkeypatch, tiny):
    first = advsets.load("FC10(1e-2)", scale=tiny, progress=False)
    assert len(first["adversarial"]) == tiny.attack_limit
    assert (first["targets"] != first["labels"]).all()
    assert first["adversarial"].min() >= 0 and first["adversarial"].max() <= 1

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached set should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = advsets.load("FC10(1e-2)", scale=tiny, progress=False)
    assert torch.equal(first["adversarial"], again["adversarial"])
    assert torch.equal(first["success"], again["success"])


def test_corrupted_set_is_recomputed_with_warning(synthetic_mnist, tiny):
    advsets.load("FC10(1e-2)", scale=tiny, progress=False)
    path = next(config.adversarial_dir().iterdir())
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupted or stale"):
        again = advsets.load("FC10(1e-2)", scale=tiny, progress=False)
    assert len(again["adversarial"]) == tiny.attack_limit


def test_fixed_c_set_is_one_solve_made_once_per_c_then_reused(synthetic_mnist, monkeypatch, tiny):
    seen = []
    real = attacks.lbfgs

    def spy(*args, **kwargs):
        seen.append(kwargs.get("c"))
        return real(*args, **kwargs)

    monkeypatch.setattr(attacks, "lbfgs", spy)
    a = advsets.fixed_c("FC10(1e-2)", 0.1, scale=tiny, progress=False)
    b = advsets.fixed_c("FC10(1e-2)", 10.0, scale=tiny, progress=False)
    assert seen == [0.1, 10.0]                       # a fixed c each: no search
    assert len(a["adversarial"]) == tiny.attack_limit
    assert torch.equal(a["targets"], advsets.load("FC10(1e-2)", scale=tiny,
                                                  progress=False)["targets"])
    assert ((a["c"] == 0.1) | torch.isinf(a["c"])).all()  # inf: the target was the prediction
    # a larger c weighs the perturbation more: smaller perturbations
    assert b["distortion"].mean() < a["distortion"].mean()
    names = sorted(p.name for p in config.adversarial_dir().iterdir())
    assert sum("-c0.1-" in n for n in names) == 1 and sum("-c10-" in n for n in names) == 1

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached fixed-c set should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = advsets.fixed_c("FC10(1e-2)", 0.1, scale=tiny, progress=False)
    assert torch.equal(again["adversarial"], a["adversarial"])


@pytest.mark.parametrize("c", [0, 0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_fixed_c_rejects_a_bad_constant(c):
    with pytest.raises(ValueError, match="c must be a positive finite number"):
        advsets.fixed_c("FC10(1e-2)", c, scale="smoke", progress=False)


def test_fixed_c_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="name must be one of"):
        advsets.fixed_c("FC10(7)", 1.0, scale="smoke", progress=False)
