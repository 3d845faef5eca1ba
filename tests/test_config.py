"""Scales, paths and the seeding helper."""

import random

import numpy as np
import pytest
import torch

from intriguing import config


def test_scale_from_argument_env_and_default(monkeypatch):
    monkeypatch.delenv(config.SCALE_ENV, raising=False)
    assert config.get_scale().name == "book"
    monkeypatch.setenv(config.SCALE_ENV, "smoke")
    assert config.get_scale().name == "smoke"
    assert config.get_scale("paper").name == "paper"
    assert config.get_scale(config.SCALES["book"]) is config.SCALES["book"]


def test_bad_scale_names_the_source(monkeypatch):
    with pytest.raises(ValueError, match="scale must be one of"):
        config.get_scale("huge")
    monkeypatch.setenv(config.SCALE_ENV, "tiny")
    with pytest.raises(ValueError, match=r"\$INTRIGUING_SCALE must be one of"):
        config.get_scale()


def test_book_scale_is_full_size():
    book = config.SCALES["book"]
    assert book.train_limit is None and book.test_limit is None and book.attack_limit is None
    assert config.SCALES["paper"].attack_split == "train"


def test_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    assert config.models_dir() == tmp_path.resolve() / "models"
    assert config.results_dir().parent == tmp_path.resolve()


def test_seed_everything_makes_all_streams_repeat():
    def draw():
        config.seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(3)

    a, b = draw(), draw()
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        config.seed_everything(seed)


def test_resolve_device(monkeypatch):
    monkeypatch.delenv(config.DEVICE_ENV, raising=False)
    assert config.resolve_device(None) == torch.device("cpu")
    monkeypatch.setenv(config.DEVICE_ENV, "cpu")
    assert config.resolve_device(None) == torch.device("cpu")
    monkeypatch.setenv(config.DEVICE_ENV, "gpu please")
    with pytest.raises(ValueError, match=r"\$INTRIGUING_DEVICE must name a torch device"):
        config.resolve_device(None)
    with pytest.raises(ValueError, match="device must name a torch device"):
        config.resolve_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' requested"):
            config.resolve_device("cuda")


def test_paper_scale_uses_the_book_models():
    assert config.training_scale("paper") is config.SCALES["book"]
    assert config.training_scale("smoke") is config.SCALES["smoke"]
