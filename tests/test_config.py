"""Scales, paths and the seeding helper."""

import random

import numpy as np
import pytest
import torch

from intriguing.engine import data
from intriguing.plumbing import config


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


def _images(limit, split):
    """How many images of ``split`` a scale's limit keeps (None: all of them)."""
    return data.SPLIT_SIZES[split] if limit is None else min(limit, data.SPLIT_SIZES[split])


def test_every_scale_resolves_and_smoke_is_a_smaller_book():
    for name, sc in config.SCALES.items():
        assert config.get_scale(name) is sc and sc.name == name
        assert sc.attack_split in data.SPLITS and sc.epoch_factor > 0
    smoke, book = config.SCALES["smoke"], config.SCALES["book"]
    # book is full size: all training and test images, every epoch, the whole test set attacked
    assert _images(book.train_limit, "train") == data.SPLIT_SIZES["train"]
    assert _images(book.test_limit, "test") == data.SPLIT_SIZES["test"]
    assert book.epoch_factor == 1 and book.attack_split == "test"
    assert _images(book.attack_limit, "test") == data.SPLIT_SIZES["test"]
    # smoke runs the same experiments on fewer images for fewer epochs
    assert _images(smoke.train_limit, "train") < _images(book.train_limit, "train")
    assert _images(smoke.test_limit, "test") < _images(book.test_limit, "test")
    assert smoke.epoch_factor < book.epoch_factor
    assert _images(smoke.attack_limit, smoke.attack_split) < _images(book.attack_limit, "test")


def test_paper_scale_attacks_the_whole_training_set_and_differs_from_book_only_there():
    """Section 4.3 attacks the 60,000 training images; the models are book scale's."""
    paper, book = config.SCALES["paper"], config.SCALES["book"]
    assert _images(paper.attack_limit, paper.attack_split) == data.SPLIT_SIZES["train"]
    assert {**paper.as_dict(), "name": "book", "attack_split": "test"} == book.as_dict()


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
