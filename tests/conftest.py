"""Shared fixtures: synthetic MNIST stand-ins so unit tests never need the real data."""

import pytest
import torch
from torch import nn

from intriguing import data, zoo
from intriguing.plumbing import config

#: A scale for unit tests: the synthetic set below, a sliver of each model's epochs.
TINY = config.Scale("tiny", train_limit=None, test_limit=None, epoch_factor=0.02,
                    attack_split="test", attack_limit=12)


@pytest.fixture
def synthetic_mnist(monkeypatch, tmp_path):
    """300 random 'images' labelled by brightness, served for every split; data dir in tmp."""
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 28, 28, generator=gen)
    y = (x.mean((1, 2, 3)) * 10).long().clamp(0, 9)

    def fake_load(split, limit=None):
        return x[:limit].clone(), y[:limit].clone()

    monkeypatch.setattr(data, "load_mnist", fake_load)
    zoo._MEMO.clear()
    yield x, y
    zoo._MEMO.clear()


@pytest.fixture
def tiny():
    """The unit-test scale."""
    return TINY


@pytest.fixture
def tiny_model():
    """A seeded 784-16-10 sigmoid MLP in eval mode: logits for (N, 1, 28, 28) in milliseconds."""
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Sigmoid(), nn.Linear(16, 10))
    with torch.no_grad():
        for p, scale in zip(model.parameters(), [0.1, 1.0, 2.0, 1.0]):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model.eval()
