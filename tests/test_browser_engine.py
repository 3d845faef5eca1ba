"""The browser engine (``book/_extra/js/intriguing-attack.js``) against ``attacks.lbfgs``.

The engine is a per-image port of the batched Python engine and computes in float64 on the
exported float32 weights. So the yardstick is ``attacks.lbfgs`` on the same weights in float64
(``model.double()``) and the same pixels (uint8 / 255 in float64): per image, the same success,
the same predicted class, the same ``c`` within one bisection step and the distortion within 2%
(issue 17). Against the book's float32 engine the answers differ by float32 rounding only; that
comparison is held to the bounds ``attacks.lbfgs`` documents for its own runs under other BLAS
kernels.

The engine runs under node, on tiny seeded models of every Table 1 architecture (softmax on
pixels, a sigmoid MLP, a sigmoid encoder with a softmax on top), untrained and briefly trained
on synthetic digit-like images (ten sparse prototypes, pixels dropped and added at random), 200
image/target pairs each; the ``slow`` test repeats it on the smoke-scale zoo models where they
are cached. Every test that runs node is skipped, with the reason, where node is not on the
PATH.
"""

import base64
import copy
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from intriguing import attacks, data, zoo
from intriguing.engine import models, webexport
from intriguing.plumbing import cli

N_PAIRS = 200
#: Fixed-c solves per model: each c on the first N_SOLVE pairs.
SOLVE_CS = (0.03, 1.0, 30.0)
N_SOLVE = 30
#: One bisection step of the search at its widest: a factor sqrt(c_growth).
C_STEP = math.log(attacks.LBFGSSettings().c_growth) / 2

needs_node = pytest.mark.skipif(
    webexport.node_executable() is None,
    reason="node is not on the PATH: the browser engine is tested under Node.js "
           "(Debian: apt install nodejs)")


pytestmark = pytest.mark.usefixtures("one_thread")


def prototype_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` digit-like images in ``(n, 1, 28, 28)``, pixels uint8 / 255, and their labels.

    Ten fixed sparse prototypes (a fifth of the pixels lit); each image is one of them with a
    quarter of its pixels dropped and 5% stray pixels added, so most pixels are exactly 0 (the
    box's lower bound is active, as on MNIST) and the classes can be learnt.
    """
    gen = torch.Generator().manual_seed(0)
    protos = (torch.rand(10, 784, generator=gen) < 0.2) * (
        0.5 + 0.5 * torch.rand(10, 784, generator=gen))
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=gen)
    keep = torch.rand(n, 784, generator=gen) > 0.25
    extra = (torch.rand(n, 784, generator=gen) < 0.05) * torch.rand(n, 784, generator=gen)
    x = (protos[y] * keep + extra).clamp(0, 1)
    return ((x * 255).round() / 255).view(n, 1, 28, 28), y


def tiny_model(arch: str, seed: int, train_steps: int) -> nn.Module:
    """A small network of a Table 1 architecture, seeded, trained ``train_steps`` Adam steps."""
    torch.manual_seed(seed)
    if arch == "softmax":
        model = models.Softmax(1e-4)
    elif arch == "mlp":
        model = models.SigmoidMLP((16, 12), (0.0, 0.0, 0.0))
    else:
        model = models.AutoencoderSoftmax(24)
    if train_steps:
        x, y = prototype_images(512, seed=2)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(train_steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


TINY = {
    "FC10 random": ("softmax", 10, 0),
    "FC10 trained": ("softmax", 10, 100),
    "FC16-12-10 random": ("mlp", 11, 0),
    "FC16-12-10 trained": ("mlp", 11, 100),
    "AE24-10 random": ("autoencoder", 12, 0),
    "AE24-10 trained": ("autoencoder", 12, 100),
}


def other_targets(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        pred = model(x).argmax(1)
    return (pred + torch.randint(1, 10, (len(x),), generator=torch.Generator().manual_seed(4))
            ) % 10


def as_float64(images: torch.Tensor) -> torch.Tensor:
    """The pixels the engine sees: uint8 / 255 computed in float64 (not float32's rounding)."""
    return (images * 255).round().double() / 255


def run_engine(tmp_path, model, name, x, y, targets):
    """The JS engine's search on every pair and fixed-c solves on the first N_SOLVE."""
    webexport.write_script(tmp_path / "model.js", f"models.{name}",
                           webexport.model_entry(model, name))
    webexport.write_script(tmp_path / "images.js", "images", webexport.images_entry(x, y))
    jobs = [{"model": name, "image": i, "target": int(targets[i]), "c": None}
            for i in range(len(x))]
    jobs += [{"model": name, "image": i, "target": int(targets[i]), "c": c}
             for c in SOLVE_CS for i in range(N_SOLVE)]
    answer = webexport.run_node({"data": [str(tmp_path / "images.js"),
                                          str(tmp_path / "model.js")], "jobs": jobs})
    results = answer["results"]
    return results[:len(x)], [results[len(x) + k * N_SOLVE:len(x) + (k + 1) * N_SOLVE]
                              for k in range(len(SOLVE_CS))]


def agreement(js: list[dict], ref: attacks.AttackResult, ref_model: nn.Module) -> dict:
    """Per-image agreement figures between the JS answers and a Python result."""
    with torch.no_grad():
        ref_pred = ref_model(ref.adversarial.to(next(ref_model.parameters()).dtype)).argmax(1)
    d_js = np.array([r["distortion"] for r in js])
    d_py = ref.distortion.double().numpy()
    rel = np.abs(d_js - d_py) / np.maximum(d_py, 1e-12)
    rel[(d_js == 0) & (d_py == 0)] = 0.0
    c_js = np.array([float(r["c"]) for r in js])
    c_py = ref.c.numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ratio = np.abs(np.log(c_js / c_py))
    log_ratio[(c_js == c_py) | (np.isnan(c_js) & np.isnan(c_py))] = 0.0
    return {
        "n": len(js),
        "same_success": int(sum(r["success"] == bool(s) for r, s in zip(js, ref.success))),
        "same_predicted": int(sum(r["predicted"] == int(p) for r, p in zip(js, ref_pred))),
        "within_2pct": int((rel <= 0.02).sum()),
        "worst_relative": float(rel.max()),
        "same_c": int((log_ratio == 0).sum()),
        "c_within_step": int((log_ratio <= C_STEP + 1e-12).sum()),
        "success_rate": float(np.mean([r["success"] for r in js])),
        "mean_distortion": float(d_js.mean()),
    }


def compare(tmp_path, model, name, x, y):
    """Run both engines; return the agreement of the search and of each fixed-c solve with the
    float64 engine, and of the search with the float32 engine."""
    targets = other_targets(model, x)
    search, solves = run_engine(tmp_path, model, name, x, y, targets)
    model64 = copy.deepcopy(model).double()
    x64 = as_float64(x)
    figures = {"search": agreement(search, attacks.lbfgs(model64, x64, targets), model64)}
    for c, js in zip(SOLVE_CS, solves):
        ref = attacks.lbfgs(model64, x64[:N_SOLVE], targets[:N_SOLVE], c=c)
        figures[f"c={c:g}"] = agreement(js, ref, model64)
    figures["search vs float32"] = agreement(search, attacks.lbfgs(model, x, targets), model)
    print(f"\n{name}: " + json.dumps(figures))
    return figures


def assert_same_as_float64(figures):
    for what, f in figures.items():
        if what == "search vs float32":
            continue
        assert f["same_success"] == f["n"], (what, f)
        assert f["same_predicted"] == f["n"], (what, f)
        assert f["within_2pct"] == f["n"], (what, f)
        assert f["c_within_step"] == f["n"], (what, f)


def assert_close_to_float32(f):
    # float64 against float32 is a larger change than the other BLAS kernels whose bounds
    # attacks.lbfgs documents, and an image whose search ends next to a decision boundary may
    # stop a bisection step away (its distortion 15% off, 0.151 seen on one run): so the
    # per-set shares are checked, not the worst image.
    assert f["same_success"] == f["n"], f
    assert f["within_2pct"] >= 0.9 * f["n"], f
    assert f["c_within_step"] >= 0.95 * f["n"], f


@needs_node
@pytest.mark.parametrize("name", list(TINY))
def test_engine_matches_the_python_engine_on_tiny_models(name, tmp_path):
    arch, seed, steps = TINY[name]
    model = tiny_model(arch, seed, steps)
    x, y = prototype_images(N_PAIRS, seed=1)
    figures = compare(tmp_path, model, name, x, y)
    assert_same_as_float64(figures)
    assert_close_to_float32(figures["search vs float32"])
    if steps:  # a trained model is attackable: the comparison covers successes, not only misses
        assert figures["search"]["success_rate"] >= 0.7


@needs_node
@pytest.mark.slow
@pytest.mark.parametrize("name", ["FC10(1e-4)", "FC100-100-10", "AE400-10"])
def test_engine_matches_the_python_engine_on_smoke_models(name, tmp_path):
    if not zoo.is_cached(name, scale="smoke"):
        pytest.skip(f"{name} is not trained at smoke scale (python -m intriguing train "
                    f"{name} --scale smoke)")
    model = zoo.load(name, scale="smoke", progress=False)
    x, y = data.load_mnist("test", limit=N_PAIRS)
    figures = compare(tmp_path, model, name, x, y)
    assert_same_as_float64(figures)
    assert_close_to_float32(figures["search vs float32"])
    assert figures["search"]["success_rate"] >= 0.9


@needs_node
def test_engine_defaults_are_the_python_settings(tmp_path):
    answer = webexport.run_node({"data": [], "jobs": []})
    assert answer["defaults"] == attacks.LBFGSSettings().as_dict()


@needs_node
def test_target_already_predicted_comes_back_unchanged(tmp_path):
    model = tiny_model("mlp", 11, 100)
    x, y = prototype_images(4, seed=5)
    with torch.no_grad():
        pred = model(x).argmax(1)
    webexport.write_script(tmp_path / "m.js", "models.m", webexport.model_entry(model, "m"))
    webexport.write_script(tmp_path / "i.js", "images", webexport.images_entry(x, y))
    jobs = [{"model": "m", "image": i, "target": int(pred[i]), "c": c}
            for i in range(4) for c in (None, 1.0)]
    for r in webexport.run_node({"data": [str(tmp_path / "i.js"), str(tmp_path / "m.js")],
                                 "jobs": jobs})["results"]:
        assert r["success"] and r["distortion"] == 0 and r["c"] == "inf"
        assert r["evaluations"] == 0


@needs_node
@pytest.mark.parametrize(("job", "match"), [
    ({"target": 10, "c": None}, "target must be a class in 0..9"),
    ({"target": 1, "c": -1.0}, "c must be a positive finite number"),
    ({"target": 1, "c": None, "image": [2.0] * 784}, r"image pixels must lie in \[0, 1\]"),
    ({"target": 1, "c": None, "image": [0.5] * 10}, "image must hold 784 pixels"),
], ids=["target", "c", "box", "shape"])
def test_engine_rejects_bad_input(job, match, tmp_path):
    model = tiny_model("softmax", 10, 0)
    x, y = prototype_images(2, seed=5)
    webexport.write_script(tmp_path / "m.js", "models.m", webexport.model_entry(model, "m"))
    webexport.write_script(tmp_path / "i.js", "images", webexport.images_entry(x, y))
    with pytest.raises(RuntimeError, match=match):
        webexport.run_node({"data": [str(tmp_path / "i.js"), str(tmp_path / "m.js")],
                            "jobs": [{"model": "m", "image": 0, **job}]})


@needs_node
def test_engine_rejects_unknown_settings(tmp_path):
    with pytest.raises(RuntimeError, match="settings.momentum is not a setting"):
        model = tiny_model("softmax", 10, 0)
        x, y = prototype_images(2, seed=5)
        webexport.write_script(tmp_path / "m.js", "models.m", webexport.model_entry(model, "m"))
        webexport.write_script(tmp_path / "i.js", "images", webexport.images_entry(x, y))
        webexport.run_node({"data": [str(tmp_path / "i.js"), str(tmp_path / "m.js")],
                            "settings": {"momentum": 0.9},
                            "jobs": [{"model": "m", "image": 0, "target": 1, "c": None}]})


# ----------------------------------------------------------------------------------------------
# The exporter


def subprocess_node(code: str, *args: Path) -> str:
    """What ``node -e code args...`` prints."""
    return subprocess.run([webexport.node_executable(), "-e", code, *map(str, args)],
                          check=True, capture_output=True, text=True, timeout=60).stdout


def fake_zoo(monkeypatch, n_images=20):
    """zoo.load builds each model untrained (full size, no training); MNIST is synthetic."""
    built = {}

    def load(name, *, scale=None, progress=True, **kwargs):
        built[name] = built.get(name) or zoo.build(zoo.spec(name)).eval()
        return built[name]

    x, y = prototype_images(n_images, seed=7)
    monkeypatch.setattr(zoo, "load", load)
    monkeypatch.setattr(data, "load_mnist", lambda split, limit=None: (x[:limit], y[:limit]))
    return built, x, y


@needs_node
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_export_writes_scripts_that_the_engine_reads(dtype, tmp_path, monkeypatch):
    built, x, y = fake_zoo(monkeypatch)
    index = webexport.export(tmp_path, scale="smoke", n_images=20, dtype=dtype)
    names = [m["name"] for m in index["models"]]
    assert names == [n for n in zoo.ALL if n != "ConvNet"]
    sizes = {m["name"]: m["sizes"] for m in index["models"]}
    assert sizes["FC10(1)"] == [784, 10]
    assert sizes["FC200-200-10"] == [784, 200, 200, 10]
    assert sizes["AE400-10"] == [784, 400, 10]
    assert sizes["FC123-456-10@P1"] == [784, 123, 456, 10]
    assert json.loads((tmp_path / "manifest.json").read_text()) == index
    assert index["settings"] == attacks.LBFGSSettings().as_dict()
    for m in index["models"]:
        assert (tmp_path / m["file"]).stat().st_size == m["bytes"]
        # The transfer table's float16 copy: its own script, checked on the shipped images.
        copy = m["predictor"]
        assert copy["file"] == webexport.predictor_file(m["name"]) and copy["dtype"] == "float16"
        half = {"float32": 0.6, "float16": 1.01}[dtype]
        assert (tmp_path / copy["file"]).stat().st_size == copy["bytes"] < m["bytes"] * half + 500
        assert copy["checked_on"] == {"test_images": 20, "adversarial_examples": 0}
        assert copy["agreement"]["inputs"] == 20 and 0 <= copy["agreement"]["agree"] <= 20
    # base64 of 4 (or 2) bytes per weight, plus a little JSON.
    n_weights = sum(p.numel() for p in built["FC200-200-10"].parameters())
    per_weight = {"float32": 4, "float16": 2}[dtype] * 4 / 3
    fc200 = next(m for m in index["models"] if m["name"] == "FC200-200-10")
    assert n_weights * per_weight <= fc200["bytes"] <= n_weights * per_weight * 1.01 + 2000

    scripts = [str(tmp_path / f) for f in ["index.js", "images.js"]] + [
        str(tmp_path / m["file"]) for m in index["models"]]
    jobs = [{"model": name, "image": i, "predict": True} for name in names for i in range(20)]
    got = webexport.run_node({"data": scripts, "jobs": jobs})["results"]
    tol = {"float32": 1e-6, "float16": 1e-2}[dtype]
    for k, name in enumerate(names):
        with torch.no_grad():
            probs = built[name].double()(as_float64(x)).softmax(1).numpy()
        js = np.array([r["probabilities"] for r in got[20 * k:20 * (k + 1)]])
        assert np.abs(js - probs).max() <= tol, name


@needs_node
def test_predictor_scripts_hold_the_float16_weights(tmp_path):
    model = models.SigmoidMLP((6,), (0, 0)).eval()
    webexport.write_script(tmp_path / "m.js", "models.m", webexport.model_entry(model, "m"))
    webexport.write_script(tmp_path / "p.js", "predictors.m",
                           webexport.model_entry(model, "m", dtype="float16"))
    got = json.loads(subprocess_node(
        "require(process.argv[1]); require(process.argv[2]);"
        "var d = globalThis.IntriguingAttackData;"
        "console.log(JSON.stringify([Object.keys(d.models), Object.keys(d.predictors),"
        " d.predictors.m.dtype]))", tmp_path / "m.js", tmp_path / "p.js"))
    assert got == [["m"], ["m"], "float16"]
    with pytest.raises(ValueError, match="key must be"):
        webexport.write_script(tmp_path / "x.js", "predictors.", {})


def test_predictor_agreement_counts_the_classes_that_float16_changes():
    """A linear model whose two logits differ by 2**-12 on one pixel: float16 (10 bits of
    mantissa) rounds 1 + 2**-12 to 1, the logits tie and argmax takes class 0, not 1."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.zero_()
        net[1].weight[1, 0] = 1 + 2 ** -12
        net[1].weight[0, 0] = 1.0
    x = torch.zeros(3, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0   # the near tie: float32 says 1, float16 says 0
    x[1, 0, 0, 1] = 1.0   # every logit 0: both say 0
    x[2, 0, 0, 0] = 0.0
    got = webexport.predictor_agreement(net, x)
    assert got == {"dtype": "float16", "inputs": 3, "agree": 2,
                   "max_logit_error": pytest.approx(2 ** -12)}
    assert webexport.predictor_agreement(net, x, dtype="float32")["agree"] == 3
    with pytest.raises(ValueError, match="inputs must be"):
        webexport.predictor_agreement(net, torch.zeros(0, 784))
    with pytest.raises(ValueError, match="inputs must be"):
        webexport.predictor_agreement(net, torch.zeros(2, 10))
    with pytest.raises(ValueError, match="dtype must be one of"):
        webexport.predictor_agreement(net, x, dtype="int8")


def test_export_rejects_the_convnet_and_bad_arguments(tmp_path, monkeypatch):
    fake_zoo(monkeypatch)
    with pytest.raises(ValueError, match="model must be Linear layers"):
        webexport.export(tmp_path, models=["ConvNet"], n_images=2)
    with pytest.raises(ValueError, match="name must be one of"):
        webexport.export(tmp_path, models=["FC999"], n_images=2)
    with pytest.raises(ValueError, match="dtype must be one of"):
        webexport.export(tmp_path, models=["FC10(1)"], n_images=2, dtype="int8")
    with pytest.raises(ValueError, match="n_images must be"):
        webexport.export(tmp_path, models=["FC10(1)"], n_images=0)


def test_dense_layers_reads_every_table1_architecture_and_refuses_others():
    for name in zoo.TABLE1:
        model = zoo.build(zoo.spec(name)).eval()
        layers = webexport.dense_layers(model)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert len(layers) == len(linears)
        for (w, b), lin in zip(layers, linears):
            assert np.array_equal(w, lin.weight.detach().numpy())
            assert np.array_equal(b, lin.bias.detach().numpy())
    dropout = models.DropoutMLP((8, 8), (0, 0, 0), (0.2, 0.5)).eval()
    assert len(webexport.dense_layers(dropout)) == 3  # dropout is the identity in eval mode
    with pytest.raises(ValueError, match="eval mode"):
        webexport.dense_layers(models.SigmoidMLP((8,), (0, 0)).train())
    with pytest.raises(ValueError, match="Linear layers with a Sigmoid"):
        webexport.dense_layers(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)).eval())
    assert not webexport.supported(models.ConvNet().eval())


def test_images_entry_stores_the_uint8_pixels_and_labels():
    x, y = prototype_images(5, seed=3)
    entry = webexport.images_entry(x, y)
    pixels = np.frombuffer(base64.b64decode(entry["pixels"]), np.uint8).reshape(5, 784)
    assert np.array_equal(pixels / 255.0, as_float64(x).reshape(5, 784).numpy())
    assert list(base64.b64decode(entry["labels"])) == y.tolist()
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        webexport.images_entry(x * 2, y)
    with pytest.raises(ValueError, match="labels must be a tensor of shape"):
        webexport.images_entry(x, y[:2])


def test_cli_export_web(tmp_path, monkeypatch, capsys):
    fake_zoo(monkeypatch)
    assert cli.main(["export-web", "--out", str(tmp_path), "--models", "FC10(1),AE400-10",
                     "--images", "3", "--scale", "smoke", "--dtype", "float16"]) == 0
    out = capsys.readouterr().out
    assert "FC10(1): FC10_1.js" in out and "AE400-10: AE400-10.js" in out
    index = json.loads((tmp_path / "manifest.json").read_text())
    assert index["dtype"] == "float16" and index["images"]["n"] == 3


@needs_node
def test_bench_browser_engine_reports_timings_and_sizes(monkeypatch, capsys):
    from intriguing.plumbing import bench

    fake_zoo(monkeypatch, n_images=webexport.DEFAULT_IMAGES)
    monkeypatch.setattr(zoo, "is_cached", lambda name, scale=None: name != "FC10(1)")
    report = bench.browser_engine_benchmark(["FC10(1e-2)", "FC10(1)"], n=3, scale="smoke")
    m = report["per_model"]["FC10(1e-2)"]
    assert m["sizes"] == [784, 10] and m["ms_per_evaluation"] > 0 and m["search_ms_median"] > 0
    assert m["bytes_float16"] < m["bytes_float32"]
    assert "skipped" in report["per_model"]["FC10(1)"]
    assert "FC10(1e-2) [784, 10]" in capsys.readouterr().out
