"""Adversarial training (section 4.2): the pool, the training loop, its cache and the experiment."""

import json
import math

import pytest
import torch

from intriguing import attacks, zoo
from intriguing.engine import advtrain
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


def test_settings_by_scale():
    assert advtrain.settings_for("book") == advtrain.BOOK == advtrain.settings_for("paper")
    assert advtrain.settings_for("smoke") == advtrain.SMOKE
    assert advtrain.BOOK.model == "FC100-100-10"
    # The book's schedule, as stated in the chapter: 10% of 10,000 examples, twice an epoch.
    assert (advtrain.BOOK.pool_size, advtrain.BOOK.refresh_fraction,
            advtrain.BOOK.refreshes_per_epoch) == (10_000, 0.1, 2)


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


def test_experiment_writes_the_json_with_the_papers_cells(synthetic_mnist, monkeypatch, tiny_zoo):
    monkeypatch.setitem(advtrain.__dict__, "SMOKE", SETTINGS)  # the tiny scale uses SMOKE
    monkeypatch.setitem(config.SCALES, SCALE.name, SCALE)     # results files at the tiny scale
    tiny_zoo.model("FC100-100-10", SCALE)                     # both models, trained once a session
    tiny_zoo.adversarially_trained(SETTINGS, SCALE)
    doc = adversarial_training.advtrain(SCALE, progress=False)
    assert results.path("advtrain", SCALE).exists() and doc["scale"] == "tiny"
    rows = {r["model"]: r for r in doc["rows"]}
    assert list(rows) == ["weight decay", "adversarial training", "dropout"]
    assert rows["weight decay"]["test_error"]["paper"] == 0.016
    assert rows["adversarial training"]["test_error"]["paper"] == 0.012
    assert rows["dropout"]["test_error"] == {"ours": None, "paper": 0.013}
    assert rows["dropout"]["status"] == "not run"
    for name in ("weight decay", "adversarial training"):
        r = rows[name]
        assert r["status"] == "run"
        assert 0 <= r["test_error"]["ours"] <= 1 and 0 <= r["success"]["ours"] <= 1
        assert r["distortion"]["ours"] is None or r["distortion"]["ours"] >= 0
    # The baseline's distortion is the mean over the successful examples of its cached set.
    from intriguing.engine import advsets
    base_set = advsets.load("FC100-100-10", split="test", limit=SCALE.attack_limit, scale=SCALE,
                            settings=FAST)
    ok = base_set["success"]
    assert rows["weight decay"]["distortion"]["ours"] == pytest.approx(
        base_set["distortion"][ok].mean().item())
    assert rows["weight decay"]["success"]["ours"] == pytest.approx(ok.float().mean().item())
    s = doc["settings"]
    assert s["settings"]["pool_size"] == 12 and s["n_eval"] == SCALE.attack_limit
    assert s["n_attacked_in_training"] == 36
    assert set(s["curves"]) == {"weight decay", "adversarial training"}
    assert len(s["curves"]["adversarial training"]["test_error"]) == 4
    # The baseline is the zoo's model: its test error is the zoo model's.
    base = zoo.load("FC100-100-10", scale=SCALE)
    from intriguing import data
    from intriguing.engine import train
    xt, yt = data.load_mnist("test")
    assert rows["weight decay"]["test_error"]["ours"] == train.error_rate(base, xt, yt)
    cost = s["cost_seconds"]
    assert doc["seconds"] == pytest.approx(cost["total"])
    assert cost["total"] >= cost["adversarial_training"] >= cost["adversarial_training_attacks"]
    p = s["paired"]
    assert 0 <= p["p_value"] <= 1
    assert REGISTRY["advtrain"].run is adversarial_training.advtrain
    # The file carries the chapter's claims, made from these rows.
    ids = {c["id"] for c in doc["claims"]}
    assert {"test_error_vs_paper", "dropout", "distortion", "transfer", "training_loss"} <= ids
    # The chapter's figure draws both test-error curves from the file.
    import matplotlib.pyplot as plt

    from intriguing.display import plots
    fig = plots.advtrain_curves(doc)
    lines = fig.axes[0].get_lines()
    assert len(fig.axes) == 3 and len(lines) == 2
    assert list(lines[1].get_ydata()) == pytest.approx(
        [100 * e for e in s["curves"]["adversarial training"]["test_error"]])
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# The chapter's claims, from a small synthetic advtrain.json


def _advtrain_doc(*, e_wd=0.0192, e_at=0.0303, only_wd=73, only_at=184, p=3e-12, d_wd=0.046,
                  d_at=0.1, x_wd=0.67, x_at=0.06, loss=(0.46, 0.07, 0.1, 0.25),
                  pool_error=(0.05, 0.03, 0.1), fresh=(0.064, 0.08, 0.1)):
    def row(name, test, dist, other, train):
        cell = lambda v, ref=None: {"ours": v, "paper": ref}  # noqa: E731
        return {"model": name, "status": "run", "train_error": cell(train),
                "test_error": cell(test, {"weight decay": 0.016,
                                          "adversarial training": 0.012}[name]),
                "distortion": cell(dist), "distortion_median": cell(dist), "success": cell(1.0),
                "error_on_other_adversarial": cell(other)}
    rows = [row("weight decay", e_wd, d_wd, x_wd, 0.0),
            row("adversarial training", e_at, d_at, x_at, 0.02),
            {"model": "dropout", "status": "not run",
             "test_error": {"ours": None, "paper": 0.013}}]
    epochs = list(range(1, len(loss) + 1))
    curves = {"weight decay": {"epoch": epochs, "test_error": [0.05, 0.03, 0.02, 0.0192],
                               "loss": [0.46, 0.1, 0.01, 0.001]},
              "adversarial training": {
                  "epoch": epochs, "test_error": [0.05, 0.025, 0.023, e_at], "loss": list(loss),
                  "pool_epoch": epochs[1:], "pool_error": list(pool_error),
                  "fresh_distortion": list(fresh)}}
    settings = {"paired": {"only_weight_decay_wrong": only_wd,
                           "only_adversarial_training_wrong": only_at, "p_value": p},
                "n_test": 10000, "n_eval": 1000, "n_train": 60000, "epochs": 4,
                "n_attacked_in_training": 870, "training_threads": 1,
                "cost_seconds": {"adversarial_training_attacks": 2.0, "total": 120.0},
                "curves": curves}
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
    assert got["dropout"]["verdict"] == "not run"
    assert got["weight_decay_vs_paper"]["verdict"] == "reproduced"  # 1.92% against 1.6%
    assert summaries["attacks_per_second"] == pytest.approx(435)
    assert summaries["total_minutes"] == pytest.approx(2)
    # Clean error and robustness are separate claims, each from its own numbers.
    assert got["distortion"]["outcome"] == "larger"
    assert "2.17 times" in got["distortion"]["sentence"]
    assert got["transfer"]["outcome"] == "resists" and "6.0%" in got["transfer"]["sentence"]
    assert got["train_error"]["outcome"] == "higher"
    assert got["training_loss"]["outcome"] == "rises"
    assert "lowest, 0.07, in epoch 2" in got["training_loss"]["sentence"]
    assert got["pool_error"]["outcome"] == "rises"
    assert got["fresh_distortion"]["outcome"] == "grows"
    assert got["test_error_curve"]["outcome"] == "rises"


@pytest.mark.parametrize("e_at, only_wd, only_at, p, verdict, words", [
    (0.011, 150, 31, 1e-9, "reproduced", "fell to 1.10%"),
    (0.015, 80, 37, 1e-4, "differs", "but not below the paper's 1.2%"),
    (0.0195, 60, 63, 0.86, "differs", "cannot tell from chance"),
    (0.0185, 63, 56, 0.58, "differs", "cannot tell from chance"),
], ids=["lower-below-1.2%", "lower-above-1.2%", "higher-by-chance", "lower-by-chance"])
def test_test_error_verdict_follows_the_paired_test(e_at, only_wd, only_at, p, verdict, words):
    doc = _advtrain_doc(e_at=e_at, only_wd=only_wd, only_at=only_at, p=p)
    c = _advtrain_claims(doc)[1]["test_error_vs_paper"]
    assert c["verdict"] == verdict and words in c["sentence"]


def test_robustness_and_curve_claims_say_what_the_numbers_show():
    doc = _advtrain_doc(d_at=0.048, x_at=0.7, loss=(0.46, 0.2, 0.1, 0.09),
                        pool_error=(0.5, 0.3, 0.2), fresh=(0.1, 0.1, 0.09))
    got = _advtrain_claims(doc)[1]
    assert got["distortion"]["outcome"] == "similar"
    assert "within 10%" in got["distortion"]["sentence"]
    assert got["transfer"]["outcome"] == "fooled"
    assert "still fooled by most" in got["transfer"]["sentence"]
    assert got["training_loss"]["outcome"] == "not"
    assert got["pool_error"]["outcome"] == "not"
    assert got["fresh_distortion"]["outcome"] == "not"
    no_example = _advtrain_claims(_advtrain_doc(fresh=(float("nan"), 0.1)))[1]
    assert no_example["fresh_distortion"]["outcome"] == "none"
    smaller = _advtrain_claims(_advtrain_doc(d_at=0.03))[1]["distortion"]
    assert smaller["outcome"] == "smaller" and "smaller perturbations" in smaller["sentence"]
