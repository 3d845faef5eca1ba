"""Benchmarks that are measured, not assumed: ``python -m intriguing bench attack [--json]``.

Why: the book claims that its batched L-BFGS attack is fast and as good as the standard
per-image solver. This module measures both on the same images and targets, in one run, and
prints the numbers (or one JSON object) so that a reader can check them on their own machine.

``attack``: the batched engine (:func:`intriguing.attacks.lbfgs`) against the scipy yardstick
(:func:`intriguing.attacks.lbfgs_reference`) on FC200-200-10, MNIST test images, seeded random
targets different from the true labels, the full search over ``c`` for both.

- Rates are adversarial examples per second of wall-clock time. The engine runs on all ``n``
  images in each layout: 1 torch thread, 2 torch threads, and 2 workers (two chunks side by
  side, one thread each); every layout's rate is reported and the fastest is kept. The
  reference runs on the first ``n_reference`` of them, with torch and BLAS limited to one thread
  (on 784-vectors more threads only add overhead; threadpoolctl pins BLAS).
- The reference runs in ``ROUNDS`` blocks, each followed by one run of the engine in every
  layout, and each rate is taken over all its runs: the rates come from the same minutes, so a
  machine whose speed drifts (other work, a shared host) moves them together and the ratios
  stay put.
- The distortion ratio is mean(ours) / mean(reference) over the images both ran.
- ``limit_share``: the engine's evaluations per image times the cost of one batched
  forward+backward pass per image (timed at batch 1000, float32, in the same run, on as many
  torch threads as the fastest layout used cores), divided by the measured time per image: the
  share of the time spent where it must be.
- The machine's load average is recorded before and after, since other work on the machine
  slows every rate.
- Per model: after the main measurement, the engine alone (no reference) attacks the first
  ``n_per_model`` test images on each Table 1 model (``zoo.TABLE1``, those already trained at
  the current scale; others are listed as skipped, not trained), on one torch thread, so that a
  slowdown on one architecture shows (subnormal floats made AE400-10 9x slower on one CPU).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine import attacks
from . import checks, config

MODEL = "FC200-200-10"
REFERENCE_MEMORY = 10
REFERENCE_MAX_ITER = 1000
ROUNDS = 3
#: Test images per model for the per-model lines (one thread: about 1-10 s a model).
N_PER_MODEL = 1000


def attack_benchmark(n: int = 2000, n_reference: int = 100, json_out: bool = False,
                     threads: int | None = None, model: nn.Module | None = None,
                     device: str | torch.device | None = None,
                     chunk_size: int | None = None,
                     per_model: Sequence[str] | Mapping[str, nn.Module] | None = None,
                     n_per_model: int = N_PER_MODEL) -> dict:
    """Time the batched attack and the per-image scipy reference on the same images.

    Why: see the module docstring; this is the measurement behind the book's speed claims.

    Args:
        n: MNIST test images attacked by the batched engine.
        n_reference: the first ``n_reference`` of them are also attacked by the reference
            (it is slow); at most ``n``.
        json_out: print one JSON object instead of a readable summary.
        threads: CPU cores for the batched engine: ``k`` measures ``k`` torch threads and, for
            ``k > 1``, ``k`` workers on one thread each; ``None`` measures the layouts for 1 and
            2 and keeps the fastest.
        model: the model to attack; ``None`` loads FC200-200-10 from the zoo (trained and cached
            on first use).
        device: where the batched engine runs (``None``: the CPU); the reference always runs on
            the CPU. On a GPU the torch thread count does not matter, so only the current one is
            measured.
        chunk_size: images the engine solves together (``None``: the
            :class:`~intriguing.attacks.LBFGSSettings` default); a GPU wants larger chunks.
        per_model: the models of the per-model lines: zoo names (``None``: ``zoo.TABLE1``; a
            name not trained at the current scale is reported as skipped, never trained
            here), or a mapping of names to models; empty: no per-model lines.
        n_per_model: test images attacked on each of them.

    Returns:
        The report: rates (``ours_per_s``, ``reference_per_s``, ``speedup``), quality
        (``distortion_ratio``, ``ours_success``, ``reference_success``), effort
        (``evals_per_image``, ``limit_share``), ``n``, ``n_reference``, the fastest ``layout``
        (``torch_threads``, ``workers``) and every layout's rate (``ours_per_s_by_layout``), the
        settings of both engines, the machine, and ``per_model``: for each model its ``per_s``,
        ``n``, ``success``, ``distortion`` (mean over successes), ``evals_per_image`` and
        ``seconds``, or ``skipped`` with the reason (on ``per_model_threads`` torch threads).
    """
    from ..engine import data

    checks.positive_int("n", n)
    checks.positive_int("n_reference", n_reference)
    checks.positive_int("threads", threads, allow_none=True)
    dev = config.resolve_device(device)
    checks.positive_int("chunk_size", chunk_size, allow_none=True)
    checks.positive_int("n_per_model", n_per_model)
    table = _per_model_table(per_model)
    n_reference = min(n_reference, n)
    started = time.perf_counter()
    load_before = _loadavg()
    if model is None:
        from ..engine import zoo

        model_name = MODEL
        model = zoo.load(MODEL, progress=False)
    else:
        model_name = type(model).__name__
    x, y = data.load_mnist("test", limit=n)
    gen = torch.Generator().manual_seed(0)
    targets = (y + torch.randint(1, 10, (n,), generator=gen)) % 10

    settings = attacks.LBFGSSettings()
    if chunk_size is not None:
        settings = dataclasses.replace(settings, chunk_size=chunk_size)
    ref_settings = dataclasses.replace(settings, memory=REFERENCE_MEMORY,
                                       max_iter=REFERENCE_MAX_ITER,
                                       reach_max_iter=REFERENCE_MAX_ITER)
    layouts = _layouts(threads, dev, n, settings.chunk_size)
    saved_threads = torch.get_num_threads()
    try:
        for _, k, _ in layouts:  # warm-up
            torch.set_num_threads(k)
            attacks.lbfgs(model, x[:min(n, 50)], targets[:min(n, 50)], settings=settings,
                          device=dev, workers=1)
        # The reference's blocks interleaved with runs of every layout (module docstring).
        ref_parts, seconds, results = [], {name: 0.0 for name, _, _ in layouts}, {}
        for block in torch.arange(n_reference).tensor_split(min(ROUNDS, n_reference)):
            torch.set_num_threads(1)
            ref_parts.append(attacks.lbfgs_reference(model, x[block], targets[block],
                                                     settings=ref_settings))
            for name, k, workers in layouts:
                torch.set_num_threads(k)
                results[name] = attacks.lbfgs(model, x, targets, settings=settings, device=dev,
                                              workers=workers)
                seconds[name] += results[name].seconds
        by_layout = {name: n * len(ref_parts) / sec for name, sec in seconds.items()}
        best = max(by_layout, key=by_layout.get)
        ours = results[best]
        _, best_threads, best_workers = next(lay for lay in layouts if lay[0] == best)
        # The limit on the cores the fastest layout used (workers x threads of each).
        torch.set_num_threads(best_threads * best_workers)
        fwd_bwd = _fwd_bwd_seconds_per_image(model, x, targets, device=dev)
        per_model_threads = 1 if dev.type == "cpu" else torch.get_num_threads()
        torch.set_num_threads(per_model_threads)
        by_model = _per_model_rates(table, n_per_model, dev, settings)
    finally:
        torch.set_num_threads(saved_threads)
    ref = _concatenate(ref_parts)

    ours_per_s = by_layout[best]
    ref_per_s = n_reference / ref.seconds
    both = ours.success[:n_reference] & ref.success
    ours_common = ours.distortion[:n_reference][both].double().mean().item()
    ref_common = ref.distortion[both].double().mean().item()
    evals = ours.evals.double().mean().item()
    report = {
        "benchmark": "attack",
        "model": model_name,
        "n": n,
        "n_reference": n_reference,
        "ours_per_s": ours_per_s,
        "reference_per_s": ref_per_s,
        "speedup": ours_per_s / ref_per_s,
        "distortion_ratio": ours_common / ref_common if ref_common > 0 else float("nan"),
        "ours_distortion": ours.distortion[ours.success].double().mean().item(),
        "ours_distortion_on_reference_images": ours_common,
        "reference_distortion": ref_common,
        "ours_success": ours.success.double().mean().item(),
        "reference_success": ref.success.double().mean().item(),
        "evals_per_image": evals,
        "reference_evals_per_image": ref.evals.double().mean().item(),
        "fwd_bwd_us_per_image": fwd_bwd * 1e6,
        "limit_share": evals * fwd_bwd * ours_per_s,
        "device": str(dev),
        "device_name": _device_name(dev),
        "layout": best,
        "torch_threads": best_threads,
        "workers": best_workers,
        "rounds": len(ref_parts),
        "ours_per_s_by_layout": by_layout,
        "per_model": by_model,
        "per_model_threads": per_model_threads,
        "settings": settings.as_dict(),
        "reference_settings": {
            "m": ref_settings.memory,
            "maxiter": ref_settings.max_iter,
            "pgtol": ref_settings.pgtol,
            "factr": ref_settings.factr,
            "maxls": ref_settings.max_linesearch,
            "float64": True,
            "scipy": _scipy_version(),
            "torch_threads": 1,
            "blas_threads": 1,
            "search": {k: getattr(ref_settings, k) for k in
                       ("c_init", "c_growth", "search_steps", "c_floor", "track_iterates")},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "loadavg_before": load_before,
            "loadavg_after": _loadavg(),
        },
        "seconds": time.perf_counter() - started,
    }
    if json_out:
        print(json.dumps(report))
    else:
        print(_summary(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """``bench attack [--json] [--n N] [--n-reference M] [--threads T] [--models A,B|none]
    [--n-models K]`` or ``bench browser-engine [...]``; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m intriguing bench",
                                description="Measured benchmarks.")
    p.add_argument("name", choices=["attack", "browser-engine"], help="which benchmark")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--n", type=int, default=2000, help="images for the batched engine")
    p.add_argument("--n-reference", type=int, default=100, help="images for the scipy reference")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU cores for the batched engine, as torch threads or workers "
                        "(default: try 1 and 2)")
    p.add_argument("--device", default=None,
                   help="where the batched engine runs, e.g. cuda (default: cpu); the reference "
                        "always runs on the CPU")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="images the engine solves together (default: the attack's default)")
    p.add_argument("--models", default=None,
                   help="comma-separated zoo names for the per-model lines, or 'none' "
                        "(default: the Table 1 models already trained)")
    p.add_argument("--n-models", type=int, default=N_PER_MODEL,
                   help=f"test images per model in the per-model lines (default "
                        f"{N_PER_MODEL})")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["browser-engine"]:
        return _browser_engine_main(argv[1:])
    args = p.parse_args(argv)
    models = args.models
    if models is not None:
        models = [] if models.strip().lower() == "none" else \
            [name.strip() for name in models.split(",") if name.strip()]
    try:
        attack_benchmark(n=args.n, n_reference=args.n_reference, json_out=args.json,
                         threads=args.threads, device=args.device, chunk_size=args.chunk_size,
                         per_model=models, n_per_model=args.n_models)
    except ValueError as exc:
        p.error(str(exc))
    return 0


def _layouts(threads: int | None, dev: torch.device, n: int, chunk_size: int
             ) -> list[tuple[str, int, int]]:
    """The ways to run the engine that are measured: ``(name, torch threads, workers)``.

    On a CPU, ``k`` cores can split every operation of one chunk (``k`` torch threads) or solve
    ``k`` chunks side by side on one thread each (``k`` workers, when there are that many
    chunks); one thread is measured too. On a GPU only the current thread count is used.
    """
    if dev.type != "cpu":
        k = torch.get_num_threads()
        return [(f"{k} thread{'s' if k > 1 else ''}", k, 1)]
    counts = [threads] if threads is not None else [1, 2]
    chunks = -(-n // chunk_size)
    layouts = []
    for k in counts:
        layouts.append((f"{k} thread{'s' if k > 1 else ''}", k, 1))
        if k > 1 and chunks >= k:
            layouts.append((f"{k} workers x 1 thread", 1, k))
    return layouts


def _per_model_table(per_model: Sequence[str] | Mapping[str, nn.Module] | None
                     ) -> dict[str, nn.Module | None]:
    """Name -> model (None: load it from the zoo) for the per-model lines; checked up front."""
    from ..engine import zoo

    if per_model is None:
        per_model = zoo.TABLE1
    if isinstance(per_model, Mapping):
        for name, value in per_model.items():
            if not isinstance(name, str) or not isinstance(value, nn.Module):
                raise ValueError(f"per_model must map names to nn.Modules, got {name!r}: "
                                 f"{type(value).__name__}")
        return dict(per_model)
    if isinstance(per_model, str) or not isinstance(per_model, Sequence):
        raise ValueError(f"per_model must be a list of zoo names, a mapping of names to "
                         f"models or None, got {per_model!r}")
    for name in per_model:
        if name not in zoo.ALL:
            raise ValueError(f"per_model must name zoo models ({', '.join(zoo.ALL)}), "
                             f"got {name!r}")
    return dict.fromkeys(per_model)


def _per_model_rates(table: dict[str, nn.Module | None], n: int, dev: torch.device,
                     settings: attacks.LBFGSSettings) -> dict[str, dict]:
    """Our attack alone on each model of ``table``, on the first ``n`` test images, on the
    current torch threads with one worker; a zoo model not trained yet is skipped."""
    from ..engine import data, zoo

    if not table:
        return {}
    x, y = data.load_mnist("test", limit=n)
    gen = torch.Generator().manual_seed(0)
    targets = (y + torch.randint(1, 10, (len(y),), generator=gen)) % 10
    out: dict[str, dict] = {}
    for name, model in table.items():
        if model is None:
            if not zoo.is_cached(name):
                scale = config.get_scale().name
                out[name] = {"skipped": f"not trained at scale {scale!r} (python -m intriguing "
                                        f"train '{name}' --scale {scale})"}
                continue
            model = zoo.load(name, progress=False)
        res = attacks.lbfgs(model, x, targets, settings=settings, device=dev, workers=1)
        out[name] = {
            "per_s": len(x) / res.seconds,
            "n": len(x),
            "success": res.success.double().mean().item(),
            "distortion": res.distortion[res.success].double().mean().item(),
            "evals_per_image": res.evals.double().mean().item(),
            "seconds": res.seconds,
        }
    return out


def _concatenate(parts: list[attacks.AttackResult]) -> attacks.AttackResult:
    """One result from the reference's blocks (each image is solved on its own, so exactly)."""
    return dataclasses.replace(
        parts[0],
        **{name: torch.cat([getattr(p, name) for p in parts])
           for name in ("adversarial", "success", "distortion", "c", "evals")},
        seconds=sum(p.seconds for p in parts))


def _fwd_bwd_seconds_per_image(model: nn.Module, x: Tensor, targets: Tensor,
                               batch: int = 1000, repeats: int = 20,
                               device: torch.device | None = None) -> float:
    """Median time of one forward+backward pass (gradient to the input) per image, float32,
    on ``device`` (``None``: the CPU)."""
    device = torch.device("cpu") if device is None else device
    reps = -(-batch // len(x))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    xb = x.repeat(reps, *([1] * (x.ndim - 1)))[:batch].to(device=device, dtype=dtype)
    tb = targets.repeat(reps)[:batch].to(device)
    model = model if next(model.parameters()).device == device else \
        copy.deepcopy(model).to(device)
    times = []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        xr = xb.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xr), tb, reduction="sum")
        torch.autograd.grad(loss, xr)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] / batch


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine()


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _scipy_version() -> str:
    import scipy

    return scipy.__version__


def _summary(r: dict) -> str:
    ref = r["reference_settings"]
    lines = [
        f"attack benchmark on {r['model']}: full search over c, "
        f"{r['settings']['search_steps']} solves per image",
        f"  ours:      {r['ours_per_s']:8.1f} images/s on {r['n']} images, {r['device']} "
        f"({r['device_name']}; {r['layout']}; {r['rounds']} runs of each layout between the "
        f"reference's blocks: "
        + ", ".join(f"{k}: {v:.1f}/s" for k, v in r["ours_per_s_by_layout"].items()) + ")",
        f"  reference: {r['reference_per_s']:8.2f} images/s on {r['n_reference']} images "
        f"(scipy {ref['scipy']} L-BFGS-B, float64, m={ref['m']}, maxiter={ref['maxiter']}, "
        f"factr={ref['factr']:g}, one BLAS and torch thread)",
        f"  speedup:   {r['speedup']:8.1f}x",
        f"  distortion ours/reference: {r['distortion_ratio']:.4f} "
        f"({r['ours_distortion_on_reference_images']:.5f} vs {r['reference_distortion']:.5f})",
        f"  success:   ours {r['ours_success']:.1%}, reference {r['reference_success']:.1%}",
        f"  evaluations per image: ours {r['evals_per_image']:.1f}, "
        f"reference {r['reference_evals_per_image']:.1f}",
        f"  forward+backward: {r['fwd_bwd_us_per_image']:.2f} us/image at batch 1000; "
        f"share of that limit reached: {r['limit_share']:.1%}",
        f"  load average before/after: {r['machine']['loadavg_before']} / "
        f"{r['machine']['loadavg_after']} on {r['machine']['cpus']} CPUs; "
        f"{r['seconds']:.0f} s in all",
    ]
    if r["per_model"]:
        k = r["per_model_threads"]
        lines.append(f"  per model, ours alone on {k} torch thread{'s' if k > 1 else ''}:")
        width = max(len(name) for name in r["per_model"])
        for name, m in r["per_model"].items():
            if "skipped" in m:
                lines.append(f"    {name:<{width}}  skipped: {m['skipped']}")
            else:
                lines.append(f"    {name:<{width}}  {m['per_s']:8.1f} images/s on {m['n']} "
                             f"images; success {m['success']:.1%}, distortion "
                             f"{m['distortion']:.5f}, {m['evals_per_image']:.1f} evaluations "
                             f"per image")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The browser engine under node


def browser_engine_benchmark(models: Sequence[str] | None = None, n: int = 50,
                             scale: str | None = None, json_out: bool = False) -> dict:
    """Time the browser engine (``book/_extra/js/intriguing-attack.js``) under node.

    Why: the book promises that the attack runs live in the reader's page (issue 17: a fixed-c
    solve on FC200-200-10 within 100 ms, the search over c within 1 s). This measures, per
    model, on the first ``n`` MNIST test images with seeded random targets different from the
    true labels: milliseconds per evaluation (forward, cross-entropy and backward to the
    pixels, 500 times at one point), per fixed-c solve (``c = 1``, from the image) and per
    search over c, after a warm-up of three searches; the bytes of the model's script with
    float32 and float16 weights; and whether float16 weights change the attack: the search's
    success and distortion with float16 weights against float32 weights, per image.

    Args:
        models: zoo names (default: ``zoo.TABLE1``); a model not trained at the scale is
            reported as skipped, never trained here.
        n: test images per model.
        scale: the models' scale (default ``$INTRIGUING_SCALE`` or "book").
        json_out: print one JSON object instead of a summary.

    Returns:
        The report: ``cpu`` (lscpu's model name), ``node``, ``engine_bytes``, ``images_bytes``
        (the 500 shipped test images' script) and ``per_model``.
    """
    import statistics
    import tempfile
    from pathlib import Path

    from ..engine import data, webexport, zoo

    checks.positive_int("n", n)
    sc = config.get_scale(scale)
    names = list(zoo.TABLE1) if models is None else list(models)
    for name in names:
        zoo.spec(name)
    if webexport.node_executable() is None:
        raise ValueError("node must be on the PATH for the browser-engine benchmark")
    x, y = data.load_mnist("test", limit=max(n, webexport.DEFAULT_IMAGES))
    targets = (y[:n] + torch.randint(1, 10, (n,), generator=torch.Generator().manual_seed(0))
               ) % 10
    report: dict = {"benchmark": "browser-engine", "scale": sc.name, "n": n, "cpu": _cpu_name(),
                    "engine_bytes": webexport.engine_path().stat().st_size,
                    "loadavg_before": _loadavg(), "per_model": {}}
    with tempfile.TemporaryDirectory(prefix="intriguing-bench-") as tmp:
        folder = Path(tmp)
        report["images_bytes"] = webexport.write_script(
            folder / "images500.js", "images",
            webexport.images_entry(x[:webexport.DEFAULT_IMAGES], y[:webexport.DEFAULT_IMAGES]))
        webexport.write_script(folder / "images.js", "images", webexport.images_entry(x[:n],
                                                                                      y[:n]))
        for name in names:
            if not zoo.is_cached(name, scale=sc):
                report["per_model"][name] = {"skipped": f"not trained at scale {sc.name}"}
                continue
            model = zoo.load(name, scale=sc, progress=False)
            sizes = {}
            for dtype in webexport.DTYPES:
                sizes[dtype] = webexport.write_script(
                    folder / f"{dtype}.js", f"models.{name}@{dtype}",
                    webexport.model_entry(model, name, dtype=dtype))
            jobs = [{"model": f"{name}@{dtype}", "image": i, "target": int(targets[i]),
                     "c": None} for dtype in webexport.DTYPES for i in range(n)]
            answer = webexport.run_node({
                "data": [str(folder / "images.js")] + [str(folder / f"{d}.js")
                                                        for d in webexport.DTYPES],
                "jobs": jobs,
                "bench": {"model": f"{name}@float32", "images": list(range(n)),
                          "targets": [int(t) for t in targets], "c": 1.0,
                          "evaluations": 500}})
            b = answer["bench"]
            f32, f16 = answer["results"][:n], answer["results"][n:]
            rel = [abs(a["distortion"] - h["distortion"]) / max(a["distortion"], 1e-12)
                   for a, h in zip(f32, f16)]
            report["node"] = answer["node"]
            report["per_model"][name] = {
                "sizes": model_sizes(model),
                "ms_per_evaluation": b["ms_per_evaluation"],
                "solve_ms_median": statistics.median(b["solve_ms"]),
                "solve_ms_max": max(b["solve_ms"]),
                "solve_evaluations_mean": statistics.fmean(b["solve_evaluations"]),
                "search_ms_median": statistics.median(b["search_ms"]),
                "search_ms_mean": statistics.fmean(b["search_ms"]),
                "search_ms_max": max(b["search_ms"]),
                "search_evaluations_mean": statistics.fmean(b["search_evaluations"]),
                "search_success": statistics.fmean(float(r["success"]) for r in f32),
                "search_distortion_mean": statistics.fmean(r["distortion"] for r in f32),
                "bytes_float32": sizes["float32"],
                "bytes_float16": sizes["float16"],
                "float16_same_success": sum(a["success"] == h["success"]
                                            for a, h in zip(f32, f16)),
                "float16_within_2pct": sum(r <= 0.02 for r in rel),
                "float16_worst_relative": max(rel),
            }
    report["loadavg_after"] = _loadavg()
    if json_out:
        print(json.dumps(report))
    else:
        print(_browser_summary(report))
    return report


def model_sizes(model: nn.Module) -> list[int]:
    """Layer widths of an exportable model, ``[784, ..., 10]``."""
    from ..engine import webexport

    layers = webexport.dense_layers(model)
    return [int(layers[0][0].shape[1])] + [int(w.shape[0]) for w, _ in layers]


def _cpu_name() -> str:
    """lscpu's "Model name" (the CPU a reader can compare with), else platform's guess."""
    import subprocess

    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.strip().startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _browser_summary(r: dict) -> str:
    lines = [f"browser engine under node {r.get('node', '?')} on {r['cpu']} "
             f"({r['scale']} models, first {r['n']} test images, random targets; engine "
             f"{r['engine_bytes'] / 1e3:.0f} kB, 500 test images {r['images_bytes'] / 1e3:.0f} "
             f"kB; load average {r['loadavg_before']} -> {r['loadavg_after']})"]
    for name, m in r["per_model"].items():
        if "skipped" in m:
            lines.append(f"  {name}: skipped ({m['skipped']})")
            continue
        lines.append(
            f"  {name} {m['sizes']}: {m['ms_per_evaluation']:.3f} ms/evaluation; solve at c=1 "
            f"{m['solve_ms_median']:.1f} ms median ({m['solve_evaluations_mean']:.1f} evals); "
            f"search {m['search_ms_median']:.1f} ms median, {m['search_ms_max']:.1f} max "
            f"({m['search_evaluations_mean']:.1f} evals, success {m['search_success']:.0%}); "
            f"script {m['bytes_float32'] / 1e6:.2f} MB float32, {m['bytes_float16'] / 1e6:.2f} "
            f"MB float16 (float16 vs float32: same success {m['float16_same_success']}/{r['n']}, "
            f"distortion within 2% {m['float16_within_2pct']}/{r['n']}, worst "
            f"{m['float16_worst_relative']:.1%})")
    return "\n".join(lines)


def _browser_engine_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m intriguing bench browser-engine",
                                description="Time the browser engine under node.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--n", type=int, default=50, help="test images per model")
    p.add_argument("--scale", choices=sorted(config.SCALES), default=None,
                   help="the models' scale (default: $INTRIGUING_SCALE or 'book')")
    p.add_argument("--models", default=None,
                   help="comma-separated zoo names (default: the Table 1 models trained)")
    args = p.parse_args(argv)
    models = None if args.models is None else [
        name.strip() for name in args.models.split(",") if name.strip()]
    try:
        browser_engine_benchmark(models, n=args.n, scale=args.scale, json_out=args.json)
    except ValueError as exc:
        p.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
