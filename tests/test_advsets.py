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


def test_set_is_made_once_then_reused(synthetic_mnist, monkeypatch, tiny, tiny_zoo):
    tiny_zoo.model("FC10(1e-2)", tiny)
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


def test_corrupted_set_is_recomputed_with_warning(synthetic_mnist, tiny, tiny_zoo):
    tiny_zoo.adversarial_set("FC10(1e-2)", tiny)
    path = next(config.adversarial_dir().iterdir())
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupted or stale"):
        again = advsets.load("FC10(1e-2)", scale=tiny, progress=False)
    assert len(again["adversarial"]) == tiny.attack_limit


def test_fixed_c_set_is_one_solve_made_once_per_c_then_reused(synthetic_mnist, monkeypatch, tiny,
                                                               tiny_zoo):
    tiny_zoo.adversarial_set("FC10(1e-2)", tiny)  # the search's set, for its targets
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


# --------------------------------------------------------------------------------------------
# The viewers' frames (engine.frames): computed by calling attacks.lbfgs, cached


def test_frames_compute_batches_one_lbfgs_call_per_c(monkeypatch):
    from types import SimpleNamespace

    import numpy as np

    from intriguing.engine import frames

    calls = []

    def fake_lbfgs(model, x, targets, *, c, settings=None, device=None):
        calls.append((model, tuple(x.shape), targets.tolist(), c, settings))
        shift = 0.05 * (targets.float() + 1) / (1 + c)
        return SimpleNamespace(adversarial=(x + shift[:, None, None, None]).clamp(0, 1))

    monkeypatch.setattr(attacks, "lbfgs", fake_lbfgs)
    torch.manual_seed(0)
    models = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
              for _ in range(2)]
    x = torch.rand(2, 1, 28, 28) * 0.5
    c_grid, targets = [0.01, 1.0, 10.0], [0, 3, 8]
    settings = attacks.LBFGSSettings()
    out = frames.compute(models, ["src", "other"], x, [3, 8], c_grid, targets,
                         settings=settings)
    assert [c for *_, c, _ in calls] == c_grid
    for model, shape, tg, _, s in calls:
        assert model is models[0] and s is settings
        assert shape == (6, 1, 28, 28) and tg == targets * 2  # pair p = i*T + t
    assert out.shape == (2, 3, 3, 2) and out.source == "src"
    i, t, k = 1, 2, 1
    want = (x[i, 0] + 0.05 * (targets[t] + 1) / (1 + c_grid[k])).clamp(0, 1).numpy()
    np.testing.assert_allclose(out.adversarial[i, t, k], want, atol=1e-6)
    np.testing.assert_allclose(out.distortion[i, t, k],
                               np.sqrt(((want - x[i, 0].numpy()) ** 2).mean()), rtol=1e-5)
    logits = models[1](torch.as_tensor(want)[None, None])
    np.testing.assert_allclose(out.probs[i, t, k, 1], torch.softmax(logits, 1)[0].detach(),
                               atol=1e-6)
    with pytest.raises(ValueError, match="adversarial must have shape"):
        frames.assemble(models, ["src", "other"], x, [3, 8], c_grid, targets,
                        torch.zeros(2, 3, 2, 28, 28))


def test_viewer_frames_are_made_once_then_read(synthetic_mnist, monkeypatch, tiny):
    from intriguing.engine import frames
    from intriguing.plumbing import cache

    c_grid = (0.1, 10.0)
    real = attacks.lbfgs
    first = advsets.viewer_frames("FC10(1e-2)", models=["FC10(1)"], n_images=1, c_grid=c_grid,
                                  scale=tiny, progress=False)
    assert first.shape == (1, 10, 2, 2) and first.model_names.tolist() == ["FC10(1e-2)", "FC10(1)"]
    # the cache key and file name of the first frames files (existing caches stay valid)
    from intriguing import zoo

    payload = {"models": [zoo.cache_key(zoo.spec(m), tiny) for m in ("FC10(1e-2)", "FC10(1)")],
               "n": 1, "c_grid": list(c_grid), "settings": attacks.LBFGSSettings().as_dict(),
               "version": 1}
    path = config.adversarial_dir() / f"frames-FC10_1e-2-tiny-2-{cache.key(payload)}.npz"
    assert frames.path("FC10(1e-2)", models=["FC10(1)"], n_images=1, c_grid=c_grid,
                       scale=tiny) == path
    assert path.is_file()

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached frames should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    again = advsets.viewer_frames("FC10(1e-2)", models=["FC10(1)"], n_images=1, c_grid=c_grid,
                                  scale=tiny)
    assert (again.adversarial == first.adversarial).all()
    monkeypatch.setattr(attacks, "lbfgs", real)
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupted"):
        advsets.viewer_frames("FC10(1e-2)", models=["FC10(1)"], n_images=1, c_grid=c_grid,
                              scale=tiny, progress=False)


# --------------------------------------------------------------------------------------------
# The every-target set (Table 1's target rules)


def test_every_target_set_lines_up_with_its_targets_and_is_reused(synthetic_mnist, monkeypatch,
                                                                   tiny, tiny_zoo):
    from intriguing import zoo

    tiny_zoo.model("FC10(1e-2)", tiny)
    seen = []
    real = attacks.lbfgs

    def spy(model, images, targets, **kwargs):
        seen.append(len(images))
        return real(model, images, targets, **kwargs)

    monkeypatch.setattr(attacks, "lbfgs", spy)
    ev = advsets.every_target("FC10(1e-2)", n=4, scale=tiny, progress=False)
    assert seen == [36]  # one call over the 4 x 9 (image, target) rows
    assert ev["targets"].shape == ev["distortion"].shape == ev["success"].shape == (4, 9)
    assert ev["adversarial"].shape == (4, 9, 1, 28, 28)
    assert torch.equal(ev["targets"], advsets.wrong_labels(ev["labels"]))
    net = zoo.load("FC10(1e-2)", scale=tiny)
    with torch.no_grad():
        pred = net(ev["adversarial"].reshape(36, 1, 28, 28)).argmax(1).reshape(4, 9)
    assert torch.equal(ev["success"], pred == ev["targets"])
    again = attacks.distortion(ev["images"].repeat_interleave(9, 0),
                               ev["adversarial"].reshape(36, 1, 28, 28)).reshape(4, 9)
    torch.testing.assert_close(again, ev["distortion"])
    names = [p.name for p in config.adversarial_dir().iterdir()]
    assert sum("-every-" in n for n in names) == 1

    def no_attack(*args, **kwargs):
        raise AssertionError("the cached every-target set should have been reused")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    cached = advsets.every_target("FC10(1e-2)", n=4, scale=tiny, progress=False)
    assert torch.equal(cached["distortion"], ev["distortion"])


@pytest.mark.parametrize("n", [0, -3, 2.5, "4"])
def test_every_target_rejects_a_bad_n(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        advsets.every_target("FC10(1e-2)", n=n, scale="smoke", progress=False)
