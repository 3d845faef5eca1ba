"""Adversarial training (section 4.2): the pool, the training loop, its cache and the experiment."""

import dataclasses
import json
import math

import pytest
import torch

from intriguing import attacks, zoo
from intriguing.engine import advtrain, models
from intriguing.experiments import REGISTRY, adversarial_training
from intriguing.plumbing import config, results

#: 300 synthetic images, 3 steps per epoch, FC100-100-10's 40 epochs * 0.1 = 4 epochs.
SCALE = config.Scale("tiny", train_limit=None, test_limit=None, epoch_factor=0.1,
                     attack_split="test", attack_limit=12)
#: A small pool refreshed at every step (3 refreshes an epoch), a cheap attack.
FAST = attacks.LBFGSSettings(search_steps=3, max_iter=5, reach_max_iter=8)
SETTINGS = advtrain.AdvTrainSettings(pool_size=12, refresh_fraction=0.25, refreshes_per_epoch=3,
                                     adv_per_step=6, attack=FAST)


def _pool(seed=0, size=20, fraction=0.25):
    return advtrain.AdversarialPool(size, fraction, generator=torch.Generator().manual_seed(seed),
                                    attack=FAST)


def test_fill_labels_each_example_with_its_source_images_true_label(tiny_model, synthetic_mnist):
    x, y = synthetic_mnist
    pool = _pool()
    stats = pool.fill(tiny_model, x, y)
    assert len(pool) == 20 and stats["n"] == 20
    assert pool.images.shape == (20, 1, 28, 28)
    assert float(pool.images.min()) >= 0 and float(pool.images.max()) <= 1
    assert torch.equal(pool.labels, y[pool.sources])
    # They are the attack's answers: perturbed copies of their sources, re-checked distortions.
    assert torch.allclose(pool.distortion, attacks.distortion(x[pool.sources], pool.images))
    assert bool(pool.success.any()) and (pool.distortion[pool.success] > 0).all()
    # ...and adversarial for the model they were made against.
    with torch.no_grad():
        pred = tiny_model(pool.images[pool.success]).argmax(1)
    assert (pred != pool.labels[pool.success]).all()


@pytest.mark.parametrize("fraction, expected", [(0.25, 5), (0.1, 2), (1.0, 20), (0.01, 1)])
def test_refresh_replaces_the_stated_fraction(tiny_model, synthetic_mnist, fraction, expected):
    x, y = synthetic_mnist
    pool = _pool(fraction=fraction)
    pool.fill(tiny_model, x, y)
    before = {k: getattr(pool, k).clone() for k in ("images", "labels", "sources")}
    slots, stats = pool.refresh(tiny_model, x, y)
    assert pool.n_refresh == expected and len(slots) == expected and stats["n"] == expected
    assert len(set(slots.tolist())) == expected  # distinct slots
    kept = torch.ones(20, dtype=torch.bool)
    kept[slots] = False
    for k, old in before.items():
        assert torch.equal(getattr(pool, k)[kept], old[kept])  # the rest is untouched
    assert not torch.equal(pool.images[slots], before["images"][slots])
    assert torch.equal(pool.labels, y[pool.sources])
    assert float(pool.images.min()) >= 0 and float(pool.images.max()) <= 1


def test_pool_is_reproducible_under_its_generator(tiny_model, synthetic_mnist):
    x, y = synthetic_mnist
    a, b, c = _pool(0), _pool(0), _pool(1)
    for p in (a, b, c):
        p.fill(tiny_model, x, y)
        p.refresh(tiny_model, x, y)
    assert torch.equal(a.images, b.images) and torch.equal(a.sources, b.sources)
    assert not torch.equal(a.sources, c.sources)
    xa, ya = a.sample(7)
    xb, yb = b.sample(7)
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and len(xa) == 7


def test_empty_pool_refuses_to_refresh_or_sample(tiny_model, synthetic_mnist):
    x, y = synthetic_mnist
    with pytest.raises(ValueError, match="fill"):
        _pool().refresh(tiny_model, x, y)
    with pytest.raises(ValueError, match="fill"):
        _pool().sample(3)


@pytest.mark.parametrize("kwargs, match", [
    ({"refresh_fraction": 0.0}, "refresh_fraction"),
    ({"refresh_fraction": 1.5}, "refresh_fraction"),
    ({"refresh_fraction": -0.1}, "refresh_fraction"),
    ({"pool_size": 0}, "pool_size"),
    ({"pool_size": -5}, "pool_size"),
    ({"pool_size": 2.5}, "pool_size"),
    ({"model": "FC100-100-11"}, "model must be one of"),
    ({"model": "FC10(1e-4)"}, "model must be a sigmoid MLP"),
    ({"adv_per_step": 0}, "adv_per_step"),
    ({"refreshes_per_epoch": 0}, "refreshes_per_epoch"),
    ({"warmup_epochs": -1}, "warmup_epochs"),
    ({"attack": {"search_steps": 3}}, "attack"),
    ({"layers": ("act3",)}, "layers must be a tuple of distinct names"),
    ({"layers": ("act1", "input")}, "in that order"),
    ({"layers": ("input", "input")}, "distinct"),
    ({"layers": "input"}, "layers"),
    ({"perturbation_scale": 0}, "perturbation_scale"),
    ({"perturbation_scale": float("inf")}, "perturbation_scale"),
    ({"lr_factor": -1.0}, "lr_factor"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"dropout": (0.5,)}, "dropout must be two rates"),
    ({"dropout": (0.2, 1.0)}, "dropout"),
    ({"dropout": (-0.1, 0.5)}, "dropout"),
], ids=lambda v: str(v))
def test_bad_settings_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        advtrain.AdvTrainSettings(**kwargs)


def test_bad_pool_arguments_raise_naming_the_argument():
    gen = torch.Generator()
    for size in (0, -1):
        with pytest.raises(ValueError, match="pool_size"):
            advtrain.AdversarialPool(size, 0.5, generator=gen)
    for fraction in (0, 1.01, -0.5):
        with pytest.raises(ValueError, match="refresh_fraction"):
            advtrain.AdversarialPool(10, fraction, generator=gen)
    with pytest.raises(ValueError, match="generator"):
        advtrain.AdversarialPool(10, 0.5, generator=0)


def test_warmup_must_leave_epochs_for_the_pool(synthetic_mnist):
    s = advtrain.AdvTrainSettings(pool_size=4, warmup_epochs=4, attack=FAST)
    with pytest.raises(ValueError, match="warmup_epochs must be below the 4 epochs"):
        advtrain.fit(s, scale=SCALE, progress=False)


def test_later_settings_leave_the_settings_part_of_the_key_alone():
    # The fields added for per-layer pools, dropout and the ablations are left out of the key
    # while at their defaults, so the input pool's settings hash as they did before them.
    first = {"model", "pool_size", "refresh_fraction", "refreshes_per_epoch", "adv_per_step",
             "warmup_epochs", "attack"}
    assert set(advtrain.BOOK.as_dict()) == first
    per_layer = advtrain.variants_for("book")["per-layer pools"]
    assert per_layer.as_dict()["layers"] == ("input", "act1", "act2")
    assert advtrain.cache_key(per_layer, config.get_scale("book")) != advtrain.cache_key(
        advtrain.BOOK, config.get_scale("book"))
    assert set(advtrain.BOOK.describe()) > first


def test_variants_and_ablations_change_one_thing_each():
    v = advtrain.variants_for("book")
    assert list(v) == ["weight decay", "input pool", "per-layer pools", "dropout"]
    assert v["weight decay"] is None and v["input pool"] == advtrain.BOOK
    assert v["dropout"].layers == () and v["dropout"].dropout == advtrain.DROPOUT
    ab = advtrain.ablations_for("book")
    ref = ab["input pool"]
    assert ref.epochs == 8 and ref.pool_size == 2000
    for name, st in ab.items():
        changed = {k for k, val in st.describe().items() if val != ref.describe()[k]}
        assert len(changed) <= 1 or name == "per-layer pools, same share", (name, changed)
    same = ab["per-layer pools, same share"]
    assert len(same.layers) * same.adv_per_step <= ref.adv_per_step
    assert ab["smaller share"].adv_per_step == 10 and ab["larger examples"].perturbation_scale == 2


def test_settings_by_scale():
    assert advtrain.settings_for("book") == advtrain.BOOK == advtrain.settings_for("paper")
    assert advtrain.settings_for("smoke") == advtrain.SMOKE
    assert advtrain.BOOK.model == "FC100-100-10"
    # The book's schedule, as stated in the chapter: 10% of 5,000 examples, once an epoch, made
    # by the pool attack (4 solves in the search over c).
    assert (advtrain.BOOK.pool_size, advtrain.BOOK.refresh_fraction,
            advtrain.BOOK.refreshes_per_epoch) == (5_000, 0.1, 1)
    for s in (advtrain.BOOK, advtrain.SMOKE, advtrain.SHORT_BOOK, advtrain.SHORT_SMOKE):
        assert s.attack == advtrain.POOL_ATTACK and s.attack.search_steps == 4


def test_fit_follows_the_baseline_through_warmup_then_uses_the_pool(synthetic_mnist, tiny_zoo):
    model, h = tiny_zoo.adversarial_fit(SETTINGS, SCALE)  # advtrain.fit's, once a session
    tiny_zoo.model("FC100-100-10", SCALE)
    base = zoo.history("FC100-100-10", scale=SCALE)["train"]
    assert h["epochs"] == len(h["loss"]) == len(base["loss"]) == 4
    # Same initialisation, batches and optimiser: the clean warm-up epoch is the baseline's.
    assert h["loss"][0] == base["loss"][0]
    assert h["monitor_error"][0] == base["monitor_error"][0]
    assert h["loss"][1] != base["loss"][1]
    # The pool: filled at the start of epoch 2, then 3 refreshes an epoch (every step here).
    assert h["refresh_epoch"] == pytest.approx([1, 4 / 3, 5 / 3, 2, 7 / 3, 8 / 3, 3, 10 / 3,
                                                11 / 3])
    assert h["fresh_n"] == [12.0] + [3.0] * 8 and h["n_attacked"] == 36
    assert h["pool_epoch"] == [2, 3, 4] and all(0 <= e <= 1 for e in h["pool_error"])
    assert 0 <= h["attack_seconds"] <= h["seconds"]
    assert not model.training


def test_fit_is_deterministic_under_the_seed(synthetic_mnist, tiny_zoo):
    m1, h1 = tiny_zoo.adversarial_fit(SETTINGS, SCALE)  # an earlier fit, as cached
    m2, h2 = advtrain.fit(SETTINGS, scale=SCALE, progress=False)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    strip = ("seconds", "attack_seconds", "monitor_seconds", "fresh_seconds")

    def same(h):  # NaN (a refresh with no success) equals NaN here, as it does in `h == h`
        return {k: [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in v]
                if isinstance(v, list) else v for k, v in h.items() if k not in strip}

    assert same(h1) == same(h2)


def _session_fit(tiny_zoo, calls):
    """A stand-in for ``advtrain.fit`` (tested above) that returns the session's fit at once."""
    def fit(settings, *, scale, progress):
        calls.append(settings)
        return tiny_zoo.adversarial_fit(settings, scale)

    return fit


def test_load_caches_and_reads_back_weights_only(synthetic_mnist, monkeypatch, tiny_zoo):
    fits = []
    monkeypatch.setattr(advtrain, "fit", _session_fit(tiny_zoo, fits))
    path = advtrain.cache_path(SETTINGS, SCALE)
    assert path.parent == config.models_dir() and SCALE.name in path.name
    assert not advtrain.is_cached(SETTINGS, scale=SCALE)
    model = advtrain.load(SETTINGS, scale=SCALE, progress=False)
    assert advtrain.is_cached(SETTINGS, scale=SCALE) and fits == [SETTINGS]
    entry = torch.load(path, weights_only=True)
    assert entry["key"] == advtrain.cache_key(SETTINGS, SCALE)
    assert json.loads(entry["settings"])["pool_size"] == 12
    # A second load (memo cleared) reads the file instead of training.
    advtrain._MEMO.clear()
    monkeypatch.setattr(advtrain, "fit", lambda *a, **k: pytest.fail("retrained"))
    again = advtrain.load(SETTINGS, scale=SCALE, progress=False)
    x = torch.rand(5, 1, 28, 28)
    assert torch.equal(model(x), again(x))
    assert not any(p.requires_grad for p in again.parameters())
    # Different settings, different file.
    other = advtrain.AdvTrainSettings(pool_size=13, attack=FAST)
    assert advtrain.cache_path(other, SCALE) != path


def test_corrupted_cache_is_retrained_with_a_warning(synthetic_mnist, monkeypatch, tiny_zoo):
    fits = []
    monkeypatch.setattr(advtrain, "fit", _session_fit(tiny_zoo, fits))
    path = advtrain.cache_path(SETTINGS, SCALE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a torch file")
    advtrain._MEMO.clear()
    with pytest.warns(UserWarning, match="corrupted or stale"):
        advtrain.load(SETTINGS, scale=SCALE, progress=False)
    assert fits == [SETTINGS]
    assert torch.load(path, weights_only=True)["key"] == advtrain.cache_key(SETTINGS, SCALE)


# ----------------------------------------------------------------------------------------------
# Pools for hidden layers: the attack in activation space, and what trains on it


def _tiny_mlp(seed=0):
    """A seeded 784-16-12-10 sigmoid MLP whose activations spread over (0, 1) and whose layers
    above each hidden layer can output several classes."""
    gen = torch.Generator().manual_seed(seed)
    net = models.SigmoidMLP((16, 12), (1e-5, 1e-5, 1e-6))
    with torch.no_grad():
        for p, scale in zip(net.parameters(), (0.1, 1.0, 1.0, 1.0, 2.0, 0.0), strict=True):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net.eval()


@pytest.mark.parametrize("layer, width", [("act1", 16), ("act2", 12)])
def test_hidden_layer_attack_stays_in_range_and_reaches_its_target(synthetic_mnist, layer,
                                                                     width):
    x, y = synthetic_mnist
    net = _tiny_mlp()
    above = advtrain.LayersAbove(net, layer).eval()
    with torch.no_grad():
        h = advtrain.representation(net, layer, x[:40])
        pred = above(h).argmax(1)
    assert h.shape == (40, width) and torch.equal(pred, net(x[:40]).argmax(1))
    # Targets the layers above can output somewhere in the box: the labels of random points.
    with torch.no_grad():
        reach = above(torch.rand(4000, width, generator=torch.Generator().manual_seed(0)))
    reachable = reach.argmax(1).unique()
    assert len(reachable) >= 2
    targets = torch.stack([reachable[reachable != p][0] for p in pred])
    res = attacks.lbfgs(above, h, targets)
    assert float(res.adversarial.min()) >= 0 and float(res.adversarial.max()) <= 1
    assert res.success.float().mean() >= 0.9
    with torch.no_grad():
        hit = above(res.adversarial).argmax(1) == targets
    assert torch.equal(hit, res.success)
    # Distortion is the RMS change per unit of the layer, on the activations' [0, 1] scale.
    d = (res.adversarial - h).pow(2).mean(1).sqrt()
    assert torch.allclose(res.distortion, d, atol=1e-6) and (d[res.success] > 0).all()
    # An (N, 1, 1, d) view of the activations is the same problem.
    again = attacks.lbfgs(above, h[:8].reshape(8, 1, 1, width), targets[:8])
    assert torch.equal(again.success, res.success[:8])


def test_hidden_layer_pool_holds_labelled_activations(synthetic_mnist):
    x, y = synthetic_mnist
    net = _tiny_mlp()
    pool = advtrain.AdversarialPool(10, 0.5, generator=torch.Generator().manual_seed(0),
                                    attack=FAST, layer="act2")
    stats = pool.fill(net, x, y)
    assert pool.images.shape == (10, 12) and stats["n"] == 10
    assert float(pool.images.min()) >= 0 and float(pool.images.max()) <= 1
    assert torch.equal(pool.labels, y[pool.sources])
    above = advtrain.LayersAbove(net, "act2").eval()
    with torch.no_grad():
        wrong = above(pool.images[pool.success]).argmax(1) != pool.labels[pool.success]
        h = advtrain.representation(net, "act2", x[pool.sources])
    assert bool(pool.success.any()) and wrong.all()
    assert torch.allclose(pool.distortion, attacks.distortion(h, pool.images), atol=1e-6)
    # A doubled perturbation: twice as far from the source, clipped to [0, 1].
    big = advtrain.AdversarialPool(10, 0.5, generator=torch.Generator().manual_seed(0),
                                   attack=FAST, layer="act2", perturbation_scale=2.0)
    big.fill(net, x, y)
    assert torch.allclose(big.images, (h + 2 * (pool.images - h)).clamp(0, 1), atol=1e-6)


def test_only_the_layers_above_learn_from_a_hidden_layer_pool():
    net = _tiny_mlp().train()
    above = advtrain.LayersAbove(net, "act1")
    assert [n for n, _ in above.layers.named_children()] == ["fc2", "act2", "out"]
    h = torch.rand(6, 16)
    torch.nn.functional.cross_entropy(above(h), torch.arange(6)).backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    assert grads["body.fc1.weight"] is None and grads["body.fc1.bias"] is None
    for name in ("body.fc2.weight", "body.out.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0
    # ...and through the training step, beside clean images: fc1's gradient is the clean
    # images' alone, whatever the pool examples are.
    grads = []
    for pool_h in (torch.rand(5, 16), torch.rand(5, 16)):
        net = _tiny_mlp().train()
        above = {"act1": advtrain.LayersAbove(net, "act1")}
        opt = torch.optim.SGD(net.parameters(), lr=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)
        xb, yb = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)), \
            torch.arange(4)
        advtrain._step(net, above, opt, sched, xb, yb, [("act1", pool_h, torch.arange(5))])
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    # The mean over 9 examples scales fc1's clean gradient the same in both: equal.
    assert torch.equal(grads[0]["body.fc1.weight"], grads[1]["body.fc1.weight"])
    assert not torch.equal(grads[0]["body.fc2.weight"], grads[1]["body.fc2.weight"])


def test_per_layer_fit_keeps_a_pool_per_layer(synthetic_mnist, tiny_zoo):
    st = dataclasses.replace(SETTINGS, layers=("input", "act1", "act2"))
    model, h = advtrain.fit(st, scale=SCALE, progress=False)
    base_model, base = tiny_zoo.adversarial_fit(SETTINGS, SCALE)
    assert h["loss"][0] == base["loss"][0]  # the same clean warm-up
    assert set(h["pool_error_by_layer"]) == {"input", "act1", "act2"}
    assert all(len(v) == 3 for v in h["pool_error_by_layer"].values())
    assert h["fresh_layer"][:3] == ["input", "act1", "act2"] and h["n_attacked"] == 3 * 36
    assert len(h["clean_loss"]) == 4 and len(h["pool_loss"]) == 3


def test_dropout_variant_trains_and_runs_as_the_plain_network(synthetic_mnist, tiny_zoo):
    st = advtrain.AdvTrainSettings(layers=(), dropout=(0.2, 0.5))
    model, h = advtrain.fit(st, scale=SCALE, progress=False)
    assert isinstance(model, models.DropoutMLP) and not model.training
    assert h["n_attacked"] == 0 and len(h["loss"]) == 4 and h["pool_error"] == []
    tiny_zoo.model("FC100-100-10", SCALE)
    base = zoo.history("FC100-100-10", scale=SCALE)["train"]
    assert h["loss"][0] != base["loss"][0]  # dropout changes the very first epoch
    plain = zoo.build(zoo.spec("FC100-100-10"))
    plain.load_state_dict(model.state_dict())
    x = torch.rand(5, 1, 28, 28)
    assert torch.allclose(plain.eval()(x), model(x))
    # No pool and no dropout is the zoo's own training, to the bit.
    _, same = advtrain.fit(advtrain.AdvTrainSettings(layers=()), scale=SCALE, progress=False)
    assert same["loss"] == base["loss"] and same["monitor_error"] == base["monitor_error"]


def test_paired_test_counts_the_discordant_images():
    a = torch.tensor([True, True, True, False, False, True])
    b = torch.tensor([False, False, True, False, True, True])
    p = advtrain.paired_test(a, b)
    assert (p["only_baseline_wrong"], p["only_this_wrong"]) == (2, 1)
    assert p["p_value"] == pytest.approx(1.0)
    assert advtrain.paired_test(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="wrong_base"):
        advtrain.paired_test(a, b[:3])


# ----------------------------------------------------------------------------------------------
# The experiments


def test_experiment_writes_every_variant_with_paired_tests(synthetic_mnist, monkeypatch,
                                                           tiny_zoo):
    monkeypatch.setitem(advtrain.__dict__, "SMOKE", SETTINGS)  # the tiny scale uses SMOKE
    monkeypatch.setitem(config.SCALES, SCALE.name, SCALE)     # results files at the tiny scale
    tiny_zoo.model("FC100-100-10", SCALE)
    tiny_zoo.adversarially_trained(SETTINGS, SCALE)
    doc = adversarial_training.advtrain(SCALE, progress=False)
    assert results.path("advtrain", SCALE).exists() and doc["scale"] == "tiny"
    rows = {r["model"]: r for r in doc["rows"]}
    assert list(rows) == ["weight decay", "input pool", "per-layer pools", "dropout"]
    assert rows["weight decay"]["test_error"]["paper"] == 0.016
    assert rows["per-layer pools"]["test_error"]["paper"] == 0.012
    assert rows["dropout"]["test_error"]["paper"] == 0.013
    assert rows["input pool"]["test_error"]["paper"] is None
    assert rows["weight decay"]["p_value"]["ours"] is None
    from intriguing import data
    xt, yt = data.load_mnist("test")
    with torch.no_grad():
        wrong_wd = zoo.load("FC100-100-10", scale=SCALE)(xt).argmax(1) != yt
    for name in ("input pool", "per-layer pools", "dropout"):
        r = rows[name]
        assert r["status"] == "run" and 0 <= r["p_value"]["ours"] <= 1
        net = advtrain.load(advtrain.variants_for(SCALE)[name], scale=SCALE, progress=False)
        with torch.no_grad():
            wrong = net(xt).argmax(1) != yt
        assert r["test_error"]["ours"] == pytest.approx(wrong.float().mean().item())
        assert r["only_baseline_wrong"]["ours"] == int((wrong_wd & ~wrong).sum())
        assert r["only_this_wrong"]["ours"] == int((~wrong_wd & wrong).sum())
        assert 0 <= r["success"]["ours"] <= 1
    # The baseline's distortion is the mean over the successful examples of its cached set.
    from intriguing.engine import advsets
    base_set = advsets.load("FC100-100-10", split="test", limit=SCALE.attack_limit, scale=SCALE,
                            settings=FAST)
    ok = base_set["success"]
    assert rows["weight decay"]["distortion"]["ours"] == pytest.approx(
        base_set["distortion"][ok].mean().item())
    s = doc["settings"]
    assert s["variants"]["per-layer pools"]["layers"] == ["input", "act1", "act2"]
    assert s["n_attacked_in_training"]["input pool"] == 36
    assert set(s["curves"]) == set(rows) and len(s["curves"]["dropout"]["test_error"]) == 4
    assert doc["seconds"] == pytest.approx(s["cost_seconds"]["total"])
    ids = {c["id"] for c in doc["claims"]}
    assert {"test_error_vs_paper", "input_pool_vs_paper", "dropout", "closest",
            "training_loss", "loss_split", "training_loss.per_layer", "distortion",
            "hidden_examples"} <= ids
    assert REGISTRY["advtrain"].run is adversarial_training.advtrain
    import matplotlib.pyplot as plt

    from intriguing.display import plots
    fig = plots.advtrain_curves(doc)
    lines = fig.axes[0].get_lines()
    assert len(fig.axes) == 4 and len(lines) == 4
    assert list(lines[1].get_ydata()) == pytest.approx(
        [100 * e for e in s["curves"]["input pool"]["test_error"]])
    plt.close(fig)


def test_ablations_experiment_runs_each_change_on_the_short_schedule(synthetic_mnist,
                                                                     monkeypatch):
    short = dataclasses.replace(SETTINGS, epochs=2)
    monkeypatch.setitem(advtrain.__dict__, "SHORT_SMOKE", short)
    monkeypatch.setitem(config.SCALES, SCALE.name, SCALE)
    doc = adversarial_training.advtrain_ablations(SCALE, progress=False)
    rows = {r["model"]: r for r in doc["rows"]}
    assert list(rows) == list(adversarial_training.ABLATION_CHANGES)
    assert all(len(c["epoch"]) == 2 for c in doc["settings"]["curves"].values())
    assert rows["weight decay"]["p_value"]["ours"] is None
    assert all(0 <= r["p_value"]["ours"] <= 1 for k, r in rows.items() if k != "weight decay")
    ids = {c["id"] for c in doc["claims"]}
    assert {"ablation.input_pool", "ablation.larger_examples", "ablation_best"} <= ids
    import matplotlib.pyplot as plt

    from intriguing.display import plots
    fig = plots.advtrain_ablations(doc)
    assert len(fig.axes) == 3 and len(fig.axes[0].patches) == len(rows)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# The chapter's claims, from a small synthetic advtrain.json


def _row(name, test, *, paper=None, p=None, only_wd=None, only_v=None, dist=0.05, other=0.5,
         train=0.0):
    cell = lambda v, ref=None: {"ours": v, "paper": ref}  # noqa: E731
    return {"model": name, "status": "run", "train_error": cell(train),
            "test_error": cell(test, paper), "p_value": cell(p),
            "only_baseline_wrong": cell(only_wd), "only_this_wrong": cell(only_v),
            "distortion": cell(dist), "distortion_median": cell(dist), "success": cell(1.0),
            "error_on_baseline_adversarial": cell(other), "baseline_error_on_these": cell(0.6)}


def _curve(test, loss, pool_error=None, clean=None, pool_loss=None, fresh=None):
    epochs = list(range(1, len(test) + 1))
    c = {"epoch": epochs, "test_error": list(test), "loss": list(loss)}
    if pool_error is not None:
        c.update(pool_epoch=epochs[1:], pool_error=list(pool_error),
                 clean_loss=list(clean), pool_loss=list(pool_loss),
                 fresh_distortion=list(fresh), fresh_layer=["input"] * len(fresh),
                 fresh_success=[1.0] * len(fresh),
                 refresh_epoch=[1 + i / 2 for i in range(len(fresh))])
    return c


def _advtrain_doc(*, e_pl=0.0303, pl_counts=(73, 184), p_pl=3e-12, e_in=0.03,
                  in_counts=(70, 170), p_in=1e-10, e_do=0.0135, do_counts=(90, 30), p_do=1e-8,
                  d_in=0.1, x_in=0.06, loss=(0.46, 0.07, 0.1, 0.25), pool_error=(0.05, 0.03, 0.1),
                  fresh=(0.064, 0.08, 0.1), clean=(0.46, 0.05, 0.04, 0.04),
                  pool_loss=(0.2, 0.3, 0.9)):
    rows = [_row("weight decay", 0.0192, paper=0.016, dist=0.046, other=1.0),
            _row("input pool", e_in, p=p_in, only_wd=in_counts[0], only_v=in_counts[1],
                 dist=d_in, other=x_in, train=0.02),
            _row("per-layer pools", e_pl, paper=0.012, p=p_pl, only_wd=pl_counts[0],
                 only_v=pl_counts[1], dist=0.06, other=0.4, train=0.01),
            _row("dropout", e_do, paper=0.013, p=p_do, only_wd=do_counts[0],
                 only_v=do_counts[1])]
    pooled = _curve([0.05, 0.025, 0.023, e_in], loss, pool_error, clean, pool_loss, fresh)
    curves = {"weight decay": _curve([0.05, 0.03, 0.02, 0.0192], [0.46, 0.1, 0.01, 0.001]),
              "input pool": pooled, "per-layer pools": pooled,
              "dropout": _curve([0.05, 0.03, 0.02, e_do], [0.5, 0.2, 0.1, 0.08])}
    settings = {"baseline": "weight decay", "n_test": 10000, "n_eval": 1000, "n_train": 60000,
                "epochs": 4, "training_threads": 1, "curves": curves,
                "variants": {"weight decay": None, "dropout": {"dropout": [0.2, 0.5]}},
                "n_attacked_in_training": {"input pool": 870, "per-layer pools": 2610},
                "cost_seconds": {"of which attacks: input pool": 2.0, "total": 120.0}}
    return {"name": "advtrain", "scale": "tiny", "rows": rows, "settings": settings}


def _advtrain_claims(doc):
    from intriguing.experiments import refresh
    out = refresh(doc)
    return out["summaries"], {c["id"]: c for c in out["claims"]}


def test_a_significant_rise_in_test_error_is_the_opposite_of_the_paper():
    summaries, got = _advtrain_claims(_advtrain_doc())
    c = got["test_error_vs_paper"]
    assert c["verdict"] == "opposite" and c["reason"]
    assert "rose to 3.03%, from 1.92%" in c["sentence"] and "p = 3e-12" in c["sentence"]
    assert "73 are misclassified only by the weight-decay" in c["sentence"]
    assert got["input_pool_vs_paper"]["verdict"] == "reproduced"  # no improvement, as the paper
    assert "worse" in got["input_pool_vs_paper"]["sentence"]
    assert got["weight_decay_vs_paper"]["verdict"] == "reproduced"  # 1.92% against 1.6%
    assert got["dropout"]["verdict"] == "reproduced"  # 1.35% against about 1.3%
    assert "below the 1.92% of weight decay alone" in got["dropout"]["sentence"]
    assert got["closest"]["outcome"] == "above"
    assert "dropout, at 1.35%" in got["closest"]["sentence"]
    assert summaries["closest"] == "dropout"
    assert summaries["attacks_per_second"] == pytest.approx(435)
    assert summaries["total_minutes"] == pytest.approx(2)
    assert got["distortion"]["outcome"] == "larger"
    assert "2.17 times" in got["distortion"]["sentence"]
    assert got["transfer"]["outcome"] == "resists" and "6.0%" in got["transfer"]["sentence"]
    assert got["transfer.per_layer"]["outcome"] == "resists"
    assert got["train_error"]["outcome"] == "higher"
    assert got["training_loss"]["outcome"] == "rises"
    assert "lowest, 0.07, in epoch 2" in got["training_loss"]["sentence"]
    assert got["loss_split"]["outcome"] == "pool"
    assert got["pool_error"]["outcome"] == "rises"
    assert got["fresh_distortion"]["outcome"] == "grows"
    assert got["test_error_curve"]["outcome"] == "rises"


@pytest.mark.parametrize("e_pl, counts, p, verdict, words", [
    (0.011, (150, 31), 1e-9, "reproduced", "fell to 1.10%"),
    (0.015, (80, 37), 1e-4, "differs", "but not below the paper's 1.2%"),
    (0.0195, (60, 63), 0.86, "differs", "cannot tell from chance"),
    (0.0185, (63, 56), 0.58, "differs", "cannot tell from chance"),
], ids=["lower-below-1.2%", "lower-above-1.2%", "higher-by-chance", "lower-by-chance"])
def test_test_error_verdict_follows_the_paired_test(e_pl, counts, p, verdict, words):
    doc = _advtrain_doc(e_pl=e_pl, pl_counts=counts, p_pl=p)
    c = _advtrain_claims(doc)[1]["test_error_vs_paper"]
    assert c["verdict"] == verdict and words in c["sentence"]


def test_input_pool_that_helps_differs_from_the_paper_and_closest_can_be_below():
    doc = _advtrain_doc(e_in=0.011, in_counts=(120, 30), p_in=1e-12)
    _, got = _advtrain_claims(doc)
    assert got["input_pool_vs_paper"]["verdict"] == "differs"
    assert got["closest"]["outcome"] == "below" and "input pool" in got["closest"]["sentence"]


def test_robustness_and_curve_claims_say_what_the_numbers_show():
    doc = _advtrain_doc(d_in=0.048, x_in=0.7, loss=(0.46, 0.2, 0.1, 0.09),
                        pool_error=(0.5, 0.3, 0.2), fresh=(0.1, 0.1, 0.09),
                        clean=(0.46, 0.1, 0.2, 0.3), pool_loss=(0.5, 0.4, 0.3))
    got = _advtrain_claims(doc)[1]
    assert got["distortion"]["outcome"] == "similar"
    assert "within 10%" in got["distortion"]["sentence"]
    assert got["transfer"]["outcome"] == "fooled"
    assert "still fooled by most" in got["transfer"]["sentence"]
    assert got["training_loss"]["outcome"] == "not"
    assert got["loss_split"]["outcome"] == "clean"
    assert got["pool_error"]["outcome"] == "not"
    assert got["fresh_distortion"]["outcome"] == "not"
    no_example = _advtrain_claims(_advtrain_doc(fresh=(float("nan"), 0.1)))[1]
    assert no_example["fresh_distortion"]["outcome"] == "none"
    smaller = _advtrain_claims(_advtrain_doc(d_in=0.03))[1]["distortion"]
    assert smaller["outcome"] == "smaller" and "smaller perturbations" in smaller["sentence"]


def test_ablation_claims_name_the_best_run_and_the_flattest_loss():
    doc = _advtrain_doc()
    rows = [dict(r) for r in doc["rows"][:3]]
    curves = doc["settings"]["curves"]
    flat = _curve([0.05, 0.03, 0.02, 0.018], [0.46, 0.1, 0.09, 0.091], (0.05, 0.03, 0.03),
                  (0.46, 0.05, 0.04, 0.04), (0.2, 0.2, 0.2), (0.06, 0.06))
    rows[2] = {**_row("smaller share", 0.018, p=0.01, only_wd=60, only_v=30)}
    abl = {"name": "advtrain_ablations", "scale": "tiny", "rows": rows,
           "settings": {"baseline": "weight decay", "n_test": 10000,
                        "curves": {"weight decay": curves["weight decay"],
                                   "input pool": curves["input pool"], "smaller share": flat},
                        "cost_seconds": {"total": 60.0}}}
    _, got = _advtrain_claims(abl)
    assert got["ablation_best"]["outcome"] == "lower"
    assert "smaller share, 1.80%, below weight decay alone" in got["ablation_best"]["sentence"]
    assert got["ablation_rise"]["outcome"] == "flatter"
    assert "the smaller share (a fifth" in got["ablation_rise"]["sentence"]
    assert got["ablation.input_pool"]["outcome"] == "higher"
    assert "rose from 0.07 at its lowest to 0.25" in got["ablation.input_pool"]["sentence"]
    assert got["ablation.smaller_share"]["outcome"] == "lower"


def test_share_claim_follows_the_rank_of_the_pools_share():
    def run(name, e, layers, k):
        return _row(name, e, p=0.01, only_wd=30, only_v=60), {
            "layers": layers, "adv_per_step": k, "pool_size": 2000, "lr_factor": 1.0}
    runs = [run("input pool", 0.03, ["input"], 50), run("smaller share", 0.025, ["input"], 10),
            run("per-layer pools", 0.036, ["input", "act1", "act2"], 50),
            run("larger examples", 0.01, ["input"], 50)]
    runs[3][1]["perturbation_scale"] = 2.0  # changes something else: left out
    runs[0][1]["perturbation_scale"] = runs[1][1]["perturbation_scale"] = 1.0
    runs[2][1]["perturbation_scale"] = 1.0
    curve = _curve([0.05, 0.03], [0.4, 0.1], (0.1,), (0.4, 0.1), (0.2,), (0.06,))
    doc = {"name": "advtrain_ablations", "scale": "tiny",
           "rows": [_row("weight decay", 0.02)] + [r for r, _ in runs],
           "settings": {"baseline": "weight decay", "n_test": 10000,
                        "baseline_spec": {"batch_size": 100},
                        "variants": {"weight decay": None, **{r["model"]: v for r, v in runs}},
                        "curves": {"weight decay": curve, **{r["model"]: curve for r, _ in runs}},
                        "cost_seconds": {"total": 1.0}}}
    c = _advtrain_claims(doc)[1]["ablation_share"]
    assert c["outcome"] == "rises" and c["figures"]["rho"] == pytest.approx(1.0)
    assert "larger examples" not in c["sentence"]
    assert "smaller share, 9% of the batch" in c["sentence"]
    doc["rows"][3]["test_error"]["ours"] = 0.02  # per-layer pools now the lowest...
    doc["rows"][2]["test_error"]["ours"] = 0.04  # ...and the smaller share the highest
    assert _advtrain_claims(doc)[1]["ablation_share"]["outcome"] == "falls"
