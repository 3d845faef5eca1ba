"""The attack benchmark: one JSON object with the documented keys, on a tiny model and fake data."""

import json
import math

import pytest

from intriguing import bench


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
    assert report["ours_success"] == 1.0 and report["reference_success"] == 1.0
    assert report["speedup"] == pytest.approx(report["ours_per_s"] / report["reference_per_s"])
    assert report["ours_per_s_by_threads"].keys() == {"1"}
    ref = report["reference_settings"]
    assert ref["float64"] is True and ref["m"] == bench.REFERENCE_MEMORY
    assert {"maxiter", "pgtol", "factr", "scipy", "blas_threads"} <= ref.keys()
    assert report["settings"]["search_steps"] == ref["search"]["search_steps"]
    assert len(report["machine"]["loadavg_before"]) == 3


def test_attack_benchmark_summary_and_both_thread_counts(tiny_model, capsys):
    report = bench.attack_benchmark(n=4, n_reference=9, model=tiny_model)
    assert report["n_reference"] == 4  # capped at n
    assert report["ours_per_s_by_threads"].keys() == {"1", "2"}
    assert report["torch_threads"] in (1, 2)
    assert "speedup" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must"), (dict(n_reference=0), "n_reference"), (dict(threads=0), "threads"),
])
def test_attack_benchmark_rejects_bad_arguments(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.attack_benchmark(model=tiny_model, **kwargs)


def test_main_parses_the_cli_arguments(monkeypatch):
    seen = {}
    monkeypatch.setattr(bench, "attack_benchmark", lambda **kw: seen.update(kw))
    assert bench.main(["attack", "--json", "--n", "50", "--n-reference", "5",
                       "--threads", "1"]) == 0
    assert seen == dict(n=50, n_reference=5, json_out=True, threads=1)
    with pytest.raises(SystemExit):
        bench.main(["nonsense"])
