"""The model cache: miss trains, hit loads, corrupted or stale files retrain with a warning."""

import re
import warnings

import pytest
import torch
from torch import nn

from intriguing import zoo
from intriguing.engine import numerics
from intriguing.plumbing import config


@pytest.fixture(autouse=True)
def _synthetic(synthetic_mnist):
    return synthetic_mnist


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_miss_trains_then_hit_loads(monkeypatch, tiny):
    path = zoo.cache_path("FC10(1e-2)", tiny)
    assert not path.exists() and not zoo.is_cached("FC10(1e-2)", scale=tiny)
    first = zoo.load("FC10(1e-2)", scale=tiny, progress=False)
    assert path.exists() and not first.training
    assert not any(p.requires_grad for p in first.parameters())
    zoo._MEMO.clear()
    monkeypatch.setattr(zoo, "_train", lambda *a, **k: pytest.fail("cache hit expected"))
    second = zoo.load("FC10(1e-2)", scale=tiny, progress=False)
    for k, v in _weights(first).items():
        assert torch.equal(v, second.state_dict()[k])
    assert "train" in zoo.history("FC10(1e-2)", scale=tiny)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "stale-key"])
def test_damaged_cache_retrains_with_warning(damage, tiny, tiny_zoo):
    name = "FC100-100-10"
    path = tiny_zoo.model(name, tiny)
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
        model = zoo.load(name, scale=tiny, progress=False)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    zoo._MEMO.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rewritten file loads cleanly
        zoo.load(name, scale=tiny, progress=False)


def test_training_is_deterministic_under_the_seed(tiny, tiny_zoo):
    tiny_zoo.model("FC100-100-10", tiny)  # trained once this session; retrained below
    a = _weights(zoo.load("FC100-100-10", scale=tiny, progress=False))
    b = _weights(zoo.load("FC100-100-10", scale=tiny, progress=False, retrain=True))
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_autoencoder_model_trains_head_on_frozen_features(tiny, tiny_zoo):
    tiny_zoo.model("AE400-10", tiny)
    model = zoo.load("AE400-10", scale=tiny, progress=False)
    hist = zoo.history("AE400-10", scale=tiny)
    assert "pretrain" in hist and len(hist["train"]["loss"]) >= 1
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_cache_key_changes_with_spec_and_scale(tiny):
    s = zoo.spec("FC10(1)")
    assert zoo.cache_key(s, tiny) != zoo.cache_key(s, config.SCALES["smoke"])
    assert zoo.cache_key(s, tiny) != zoo.cache_key(zoo.spec("FC10(1e-2)"), tiny)
    assert zoo.cache_key(s, tiny) == zoo.cache_key(zoo.spec("FC10(1)"), tiny)
    book, paper = config.SCALES["book"], config.SCALES["paper"]
    assert zoo.cache_key(s, paper) == zoo.cache_key(s, book)  # paper scale trains book's models
    assert zoo.cache_path("FC10(1)", paper) == zoo.cache_path("FC10(1)", book)


def test_every_paper_model_is_in_the_zoo_and_built_as_its_name_says():
    assert set(zoo.TABLE1) | set(zoo.TABLE3) | {"ConvNet"} == set(zoo.ALL)
    for name in zoo.ALL:
        s = zoo.spec(name)
        net = zoo.build(s)
        widths = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)]
        decay = [lam for _, lam in net.decay]
        # Table 3's suffix names the training split: "@P1", "'@P2"; Table 1 trains on all of it
        assert s.split == (name.rsplit("@", 1)[1] if "@" in name else "train"), name
        # FCa-b-10: linear layers of a, b and 10 units; FC10(lambda): weight decay lambda
        fc = re.fullmatch(r"FC([\d-]+)(?:\((.+)\))?'?(?:@P\d)?", name)
        if fc:
            assert widths == [int(w) for w in fc[1].split("-")], name
            if fc[2]:
                assert decay == [float(fc[2])], name
        # the description's weight decay (Table 1's column) is the one the model trains with
        if "lambda=" in s.description:
            assert decay == [float(v) for v in s.description.split("lambda=")[1].split(",")]
    assert [m.out_features for m in zoo.build(zoo.spec("AE400-10")).modules()
            if isinstance(m, nn.Linear)] == [400, 10]


def test_unknown_name_lists_the_zoo():
    with pytest.raises(ValueError, match=r"name must be one of .*FC10\(1e-4\)"):
        zoo.load("FC999")


def test_weights_are_saved_and_loaded_without_subnormals(monkeypatch, tiny):
    """Subnormal weights (slow on some CPUs) are zeroed in the file and in a model loaded from
    an older file that holds some; every other weight, and the cache key, stay as they were."""
    name = "FC10(1)"
    smallest = torch.ones(3, dtype=torch.int32).view(torch.float32)  # 2**-149, from its bits

    def with_subnormals(state):
        state = {k: v.clone() for k, v in state.items()}
        state["body.fc.weight"].view(-1)[:3] = smallest
        return state

    def train(s, scale, device, progress):
        model = zoo.build(s).eval()
        model.load_state_dict(with_subnormals(model.state_dict()))
        return model, {"train": {"loss": [1.0]}}

    assert "body.fc.weight" in zoo.build(zoo.spec(name)).state_dict()
    key = zoo.cache_key(zoo.spec(name), tiny)
    monkeypatch.setattr(zoo, "_train", train)
    model = zoo.load(name, scale=tiny, progress=False)
    entry = torch.load(zoo.cache_path(name, tiny), weights_only=True)
    assert entry["key"] == key
    for state in (entry["state_dict"], model.state_dict()):
        assert not any(numerics.subnormal_mask(v).any() for v in state.values())
        assert (state["body.fc.weight"].view(-1)[:3] == 0).all()
    expected = zoo.build(zoo.spec(name)).state_dict()
    expected["body.fc.weight"].view(-1)[:3] = 0.0
    for k, v in expected.items():
        assert torch.equal(entry["state_dict"][k], v), k
    # A file written before the cleaning existed: its subnormals are dropped on load.
    entry["state_dict"] = with_subnormals(entry["state_dict"])
    torch.save(entry, zoo.cache_path(name, tiny))
    zoo._MEMO.clear()
    monkeypatch.setattr(zoo, "_train", lambda *a, **k: pytest.fail("cache hit expected"))
    loaded = zoo.load(name, scale=tiny, progress=False).state_dict()
    assert not any(numerics.subnormal_mask(v).any() for v in loaded.values())
    for k, v in expected.items():
        assert torch.equal(loaded[k], v), k
