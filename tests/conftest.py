"""Shared fixtures: synthetic MNIST stand-ins so unit tests never need the real data."""

import pytest
import torch

from intriguing import config, data, zoo

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
