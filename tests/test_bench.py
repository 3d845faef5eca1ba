"""The attack benchmark: one JSON object with the documented keys, on a tiny model and fake data."""

import copy
import json
import math

import pytest
import torch

from intriguing import zoo
from intriguing.plumbing import bench


@pytest.fixture(autouse=True)
def _synthetic(synthetic_mnist):
    return synthetic_mnist


def test_attack_benchmark_json(tiny_model, capsys):
    report = bench.attack_benchmark(n=6, n_reference=2, json_out=True, threads=1,
                                    model=tiny_model)
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and json.loads(out) == json.loads(json.dumps(report))
    for key in ("ours_per_s", "reference_per_s", "speedup", "distortion_ratio", "ours_success",
                "reference_success", "evals_per_image", "limit_share", "fwd_bwd_us_per_image"):
        assert isinstance(report[key], float) and math.isfinite(report[key]), key
    assert report["n"] == 6 and report["n_reference"] == 2 and report["torch_threads"] == 1
    assert report["workers"] == 1 and report["rounds"] == 2
    assert report["ours_success"] == 1.0 and report["reference_success"] == 1.0
    assert report["speedup"] == pytest.approx(report["ours_per_s"] / report["reference_per_s"])
    assert report["ours_per_s_by_layout"].keys() == {"1 thread"}
    ref = report["reference_settings"]
    assert ref["float64"] is True and ref["m"] == bench.REFERENCE_MEMORY
    assert {"maxiter", "pgtol", "factr", "scipy", "blas_threads"} <= ref.keys()
    assert report["settings"]["search_steps"] == ref["search"]["search_steps"]
    assert len(report["machine"]["loadavg_before"]) == 3


def test_attack_benchmark_summary_and_every_layout(tiny_model, capsys):
    report = bench.attack_benchmark(n=4, n_reference=9, model=tiny_model, chunk_size=2)
    assert report["n_reference"] == 4  # capped at n
    assert report["ours_per_s_by_layout"].keys() == {"1 thread", "2 threads",
                                                     "2 workers x 1 thread"}
    assert report["layout"] in report["ours_per_s_by_layout"]
    assert (report["torch_threads"], report["workers"]) in ((1, 1), (2, 1), (1, 2))
    assert report["rounds"] == 3
    out = capsys.readouterr().out
    assert "speedup" in out and report["layout"] in out


def test_layouts_offer_workers_only_where_there_are_chunks_for_them():
    cpu = torch.device("cpu")
    assert bench._layouts(None, cpu, 2000, 1000) == [
        ("1 thread", 1, 1), ("2 threads", 2, 1), ("2 workers x 1 thread", 1, 2)]
    assert bench._layouts(None, cpu, 1000, 1000) == [("1 thread", 1, 1), ("2 threads", 2, 1)]
    assert bench._layouts(4, cpu, 5000, 1000) == [("4 threads", 4, 1),
                                                  ("4 workers x 1 thread", 1, 4)]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must"), (dict(n_reference=0), "n_reference"), (dict(threads=0), "threads"),
    (dict(chunk_size=0), "chunk_size"), (dict(chunk_size=2.5), "chunk_size"),
    (dict(n_per_model=0), "n_per_model"), (dict(per_model=["FC999"]), "per_model"),
    (dict(per_model="FC10(1)"), "per_model"), (dict(per_model={"m": 3}), "per_model"),
])
def test_attack_benchmark_rejects_bad_arguments(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.attack_benchmark(model=tiny_model, **kwargs)


def test_main_parses_the_cli_arguments(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "attack_benchmark", lambda **kw: seen.update(kw))
    assert bench.main(["attack", "--json", "--n", "50", "--n-reference", "5",
                       "--threads", "1", "--chunk-size", "500"]) == 0
    assert seen == dict(n=50, n_reference=5, json_out=True, threads=1, device=None,
                        chunk_size=500, per_model=None, n_per_model=bench.N_PER_MODEL)
    assert bench.main(["attack", "--models", "FC10(1), AE400-10", "--n-models", "30"]) == 0
    assert seen["per_model"] == ["FC10(1)", "AE400-10"] and seen["n_per_model"] == 30
    assert bench.main(["attack", "--models", "none"]) == 0
    assert seen["per_model"] == []
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])


def test_attack_benchmark_on_a_given_device_and_chunk_size(tiny_model):
    report = bench.attack_benchmark(n=5, n_reference=2, model=tiny_model, device="cpu",
                                    chunk_size=2, threads=1)
    assert report["device"] == "cpu" and report["settings"]["chunk_size"] == 2
    assert report["ours_success"] == 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_attack_benchmark_names_an_unavailable_device(tiny_model):
    with pytest.raises(ValueError, match="device 'cuda'"):
        bench.attack_benchmark(n=2, n_reference=1, model=tiny_model, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_attack_benchmark_on_cuda(tiny_model):
    report = bench.attack_benchmark(n=20, n_reference=2, model=tiny_model, device="cuda")
    assert report["device"].startswith("cuda") and report["ours_success"] == 1.0


def test_per_model_lines_time_our_attack_on_each_model(tiny_model, capsys):
    """A line per model (the Table 1 models by default), so a slowdown on one shows."""
    wide = copy.deepcopy(tiny_model).double()
    report = bench.attack_benchmark(n=4, n_reference=1, threads=1, model=tiny_model,
                                    json_out=True, per_model={"tiny": tiny_model, "tiny64": wide},
                                    n_per_model=5)
    assert json.loads(capsys.readouterr().out)["per_model"] == report["per_model"]
    assert list(report["per_model"]) == ["tiny", "tiny64"] and report["per_model_threads"] == 1
    for line in report["per_model"].values():
        assert line["n"] == 5 and line["success"] == 1.0
        for key in ("per_s", "distortion", "evals_per_image", "seconds"):
            assert isinstance(line[key], float) and math.isfinite(line[key]) and line[key] > 0
    none = bench.attack_benchmark(n=2, n_reference=1, threads=1, model=tiny_model,
                                  per_model=[])
    assert none["per_model"] == {} and "per model" not in capsys.readouterr().out


def test_per_model_lines_default_to_table1_and_skip_untrained_models(tiny_model, monkeypatch,
                                                                     capsys):
    trained = "FC10(1)"
    monkeypatch.setattr(zoo, "is_cached", lambda name, **kw: name == trained)
    monkeypatch.setattr(zoo, "load", lambda name, **kw: tiny_model)
    report = bench.attack_benchmark(n=3, n_reference=1, threads=1, model=tiny_model,
                                    n_per_model=4)
    assert list(report["per_model"]) == zoo.TABLE1
    assert report["per_model"][trained]["n"] == 4
    skipped = {k: v for k, v in report["per_model"].items() if k != trained}
    assert all("not trained" in v["skipped"] for v in skipped.values())
    out = capsys.readouterr().out
    for name in zoo.TABLE1:
        assert name in out
    assert "images/s on 4 images" in out and "skipped: not trained" in out
