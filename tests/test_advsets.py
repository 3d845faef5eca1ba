"""Adversarial sets: targets, caching and reuse (the attack itself is tested in test_attacks)."""

import pytest
import torch

from intriguing import advsets, attacks, config


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
