"""The model cache: miss trains, hit loads, corrupted or stale files retrain with a warning."""

import warnings

import pytest
import torch

from intriguing import config, data, zoo

TINY = config.Scale("tiny", train_limit=None, test_limit=None, epoch_factor=0.02,
                    attack_split="test", attack_limit=10)


@pytest.fixture(autouse=True)
def synthetic_mnist(monkeypatch, tmp_path):
    """300 random 'images' whose label is decided by their brightness; no real MNIST needed."""
    monkeypatch.setenv(config.DATA_DIR_ENV, str(tmp_path))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 28, 28, generator=gen)
    y = (x.mean((1, 2, 3)) * 10).long().clamp(0, 9)

    def fake_load(split, limit=None):
        return x[:limit].clone(), y[:limit].clone()

    monkeypatch.setattr(data, "load_mnist", fake_load)
    zoo._MEMO.clear()
    yield
    zoo._MEMO.clear()


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_miss_trains_then_hit_loads(monkeypatch):
    path = zoo.cache_path("FC10(1e-2)", TINY)
    assert not path.exists() and not zoo.is_cached("FC10(1e-2)", scale=TINY)
    first = zoo.load("FC10(1e-2)", scale=TINY, progress=False)
    assert path.exists() and not first.training
    assert not any(p.requires_grad for p in first.parameters())
    zoo._MEMO.clear()
    monkeypatch.setattr(zoo, "_train", lambda *a, **k: pytest.fail("cache hit expected"))
    second = zoo.load("FC10(1e-2)", scale=TINY, progress=False)
    for k, v in _weights(first).items():
        assert torch.equal(v, second.state_dict()[k])
    assert "train" in zoo.history("FC10(1e-2)", scale=TINY)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "stale-key"])
def test_damaged_cache_retrains_with_warning(damage):
    name = "FC100-100-10"
    zoo.load(name, scale=TINY, progress=False)
    path = zoo.cache_path(name, TINY)
    if damage == "garbage":
        path.write_bytes(b"not a torch file")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        entry = torch.load(path, weights_only=True)
        entry["key"] = "0" * 12
        torch.save(entry, path)
    zoo._MEMO.clear()
    with pytest.warns(UserWarning, match="corrupted or stale"):
        model = zoo.load(name, scale=TINY, progress=False)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    zoo._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file loads cleanly
        zoo.load(name, scale=TINY, progress=False)


def test_training_is_deterministic_under_the_seed():
    a = _weights(zoo.load("FC100-100-10", scale=TINY, progress=False))
    b = _weights(zoo.load("FC100-100-10", scale=TINY, progress=False, retrain=True))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_autoencoder_model_trains_head_on_frozen_features():
    model = zoo.load("AE400-10", scale=TINY, progress=False)
    hist = zoo.history("AE400-10", scale=TINY)
    assert "pretrain" in hist and len(hist["train"]["loss"]) >= 1
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_cache_key_changes_with_spec_and_scale():
    s = zoo.spec("FC10(1)")
    assert zoo.cache_key(s, TINY) != zoo.cache_key(s, config.SCALES["smoke"])
    assert zoo.cache_key(s, TINY) != zoo.cache_key(zoo.spec("FC10(1e-2)"), TINY)
    assert zoo.cache_key(s, TINY) == zoo.cache_key(zoo.spec("FC10(1)"), TINY)


def test_every_paper_model_is_in_the_zoo():
    assert set(zoo.TABLE1) | set(zoo.TABLE3) | {"ConvNet"} == set(zoo.ALL)
    assert zoo.spec("FC100-100-10'@P2").split == "P2"
    assert zoo.spec("FC123-456-10@P1").hidden == (123, 456)
    assert zoo.spec("FC200-200-10").lambdas == (1e-5, 1e-5, 1e-6)


def test_unknown_name_lists_the_zoo():
    with pytest.raises(ValueError, match=r"name must be one of .*FC10\(1e-4\)"):
        zoo.load("FC999")
