"""Box-constrained L-BFGS adversarial examples, batched, and the Gaussian-noise baseline.

Why: Szegedy et al. find an adversarial example for an image ``x`` and a target label ``l`` by
minimising ``c * |r| + loss_f(x + r, l)`` over ``x + r`` in the box ``[0, 1]^n`` with
box-constrained L-BFGS, searching over ``c``. This module does that for thousands of images at
once, in torch, on the CPU or a GPU: every image carries its own optimiser state, step size,
stopping test and ``c``, so an image's answer does not depend on the other images in its batch.
:func:`lbfgs_reference` runs the same attack image by image with scipy's L-BFGS-B, the yardstick
that the batched engine is measured against (``python -m intriguing bench attack``).

Choices the paper leaves open, made here:

- ``|r|`` is the squared L2 norm ``sum(r ** 2)``. It is smooth at ``r = 0`` (the plain norm has no
  gradient there, which is where every attack starts) and its Hessian is exactly ``2 c I``; a
  stationary point at ``c`` is one of the plain norm's at ``c' = 2 c |r|_2``, so the search over
  ``c`` explores the same trade-off between distortion and loss.
- ``loss_f`` is the cross-entropy of the model's logits to the target label.
- The paper asks for "the minimum c > 0" for which the minimiser reaches ``l``. With ``c`` on the
  norm term a *larger* ``c`` gives a *smaller* perturbation that may fail to reach ``l``, so the
  smallest adversarial perturbation comes from the *largest* ``c`` that still succeeds; the search
  looks for that ``c`` (the paper's "minimum" is a slip).

References:
    Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199, section 4.1.
    The book explains the attack in its chapter on blind spots.
"""

from __future__ import annotations

import copy
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..plumbing import checks
from .numerics import flush_subnormals

__all__ = [
    "AttackResult",
    "LBFGSSettings",
    "distortion",
    "gaussian_noise",
    "lbfgs",
    "lbfgs_reference",
]


@dataclass(frozen=True)
class LBFGSSettings:
    """Settings of the box-constrained L-BFGS attack; the results JSON records them verbatim.

    Why: one frozen object drives both the batched engine (:func:`lbfgs`) and the per-image scipy
    yardstick (:func:`lbfgs_reference`), so the two run the same search over ``c``. The defaults
    were chosen by measurement on the book's MNIST models (FC10, FC100-100-10, FC200-200-10,
    AE400-10, ConvNet): the number of evaluations hardly changes between 2 and 10 curvature
    pairs (the solves are short and warm-started), so the memory is small: 2 pairs against 3 gave
    the same mean distortion within 0.08% and the same evaluations within 1% on all seven models
    (1,000 test images each, 300 for ConvNet) and ran 5-25% faster, as every iteration reads the
    pairs twice. A solve from a point that has not reached the target yet (the first solves, and
    a single solve at a given ``c``) must get there: it stops when a step lowers the objective
    by at most ``reach_ftol = 3e-5`` of its value, or after ``reach_max_iter = 20`` steps. Once
    an image has an adversarial example, its later solves only move it a little from that warm
    start, so they stop early: at ``ftol = 1e-3`` or 10 steps. Against stopping every solve at
    ``3e-5`` and 20 steps (itself within 0.1% of tight solves with 10 pairs, ``ftol = 1e-7`` and
    200 steps), that costs 0.2-0.5% in mean distortion and saves 14-54% of the evaluations
    (measured on 1,000 test images of each Table 1 model and 300 for ConvNet; FC200-200-10: 82
    -> 54 evaluations per image, +0.3%).
    Starting at ``c = 1``, in the middle of the critical values seen (about 0.01 to 200), leaves
    most of the 8 solves for bisection. For a single solve at a given ``c``
    (``lbfgs(..., c=...)``), which starts from the image and so stops at the reach limits,
    raise ``reach_max_iter`` (and lower ``reach_ftol``) if the minimiser itself matters.

    Attributes:
        memory: L-BFGS memory ``m``, the curvature pairs kept per image (scipy's ``maxcor``).
        max_iter: cap on the accepted steps of one solve at one ``c`` from a warm start that
            already reaches the target.
        reach_max_iter: the cap for a solve from a point that does not reach the target yet.
        pgtol: a solve stops when the largest entry of the projected gradient is at most this.
        ftol: a solve stops when one step lowers the objective by at most
            ``ftol * max(|f|, |f_new|, 1)`` (scipy's test), once the target is reached; 0
            switches the test off.
        reach_ftol: the same test for a solve from a point that does not reach the target yet.
        factr: the reference's scipy ``factr`` (its ``ftol = factr * eps64``). The batched
            engine works in float32, which cannot resolve a relative decrease of ``factr *
            eps64``, so it uses ``ftol`` instead.
        max_linesearch: trial steps along one direction before a solve gives up.
        armijo: sufficient-decrease constant of the line search.
        c_init: the first ``c`` of the search.
        c_growth: factor by which ``c`` grows while solves succeed, and shrinks while they fail
            before any success.
        search_steps: solves per image in the search over ``c``.
        c_floor: an image whose solves all failed is given up when ``c`` would drop below this.
        track_iterates: count every point a solve evaluates as a candidate adversarial example
            (the closest that the model assigns to the target wins), not only the minimiser at
            each ``c``. A solve warm-started from the best point so far crosses the decision
            boundary on its way, and the crossing is closer to the image than the minimiser on
            the bracket's successful side.
        rescue_max_iter: an image that no solve of the search brought to its target gets one
            more solve, from the image itself at ``c = c_floor``, with a unit first step (no
            curvature carried over), up to this many steps and no flatness tests (0: no rescue).
            Where the model is nearly certain of the true label (target probability 1e-13 to
            1e-16 for 4 of FC100-100-10's 60,000 training images) the gradient through its
            saturated sigmoids all but vanishes, so the search's solves stop at once on the
            ``pgtol``/``reach_ftol`` tests, and their small carried-over steps never leave the
            plateau; the rescue reaches all 4 (34-262 evaluations). It runs only for images
            that failed, so it costs nothing measurable.
        chunk_size: images solved together; memory grows as ``(2 * memory + 8) * chunk_size * n``
            floats per worker. On one thread, chunks of 500 to 2,000 images run equally fast;
            1,000 lets two CPU workers share a 2,000-image call (``lbfgs(..., workers=...)``).
            A GPU wants larger chunks (``bench attack --chunk-size``).
    """

    memory: int = 2
    max_iter: int = 10
    reach_max_iter: int = 20
    pgtol: float = 1e-5
    ftol: float = 1e-3
    reach_ftol: float = 3e-5
    factr: float = 1e7
    max_linesearch: int = 20
    armijo: float = 1e-4
    c_init: float = 1.0
    c_growth: float = 10.0
    search_steps: int = 8
    c_floor: float = 1e-6
    track_iterates: bool = True
    rescue_max_iter: int = 100
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("memory", "max_iter", "reach_max_iter", "max_linesearch", "search_steps",
                     "chunk_size"):
            checks.positive_int(f"settings.{name}", getattr(self, name))
        checks.non_negative_int("settings.rescue_max_iter", self.rescue_max_iter)
        for name in ("pgtol", "ftol", "reach_ftol", "factr", "c_floor"):
            checks.non_negative_float(f"settings.{name}", getattr(self, name))
        if not checks.is_real(self.armijo) or not 0 < self.armijo < 1:
            raise ValueError(f"settings.armijo must be in (0, 1), got {self.armijo!r}")
        checks.positive_float("settings.c_init", self.c_init)
        if not checks.is_real(self.c_growth) or not math.isfinite(self.c_growth) \
                or self.c_growth <= 1:
            raise ValueError(f"settings.c_growth must be a finite number > 1, "
                             f"got {self.c_growth!r}")
        if not isinstance(self.track_iterates, bool):
            raise ValueError(f"settings.track_iterates must be a bool, "
                             f"got {self.track_iterates!r}")

    def as_dict(self) -> dict:
        """The settings as a plain dict, for the results JSON."""
        return asdict(self)


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns, one entry per image, on the CPU.

    Attributes:
        adversarial: ``(N, 1, 28, 28)`` (the images' shape and dtype) in ``[0, 1]``: the closest
            adversarial example found; for an image where the search failed, its last iterate.
        success: ``(N,)`` bool, re-checked with the model on ``adversarial``:
            ``argmax model(adversarial) == target``.
        distortion: ``(N,)`` :func:`distortion` of ``adversarial`` from the image.
        c: ``(N,)`` float64, the ``c`` of the solve that found ``adversarial``: the given ``c``
            for a single solve; ``inf`` where the target already was the model's prediction
            (nothing to do); for a failed search, the smallest ``c`` tried.
        evals: ``(N,)`` int64 function-and-gradient evaluations spent on each image.
        settings: the settings used.
        seconds: wall-clock time of the call.
    """

    adversarial: Tensor
    success: Tensor
    distortion: Tensor
    c: Tensor
    evals: Tensor
    settings: LBFGSSettings
    seconds: float


def distortion(x: Tensor, x_adv: Tensor) -> Tensor:
    """Per-image root-mean-square perturbation on the ``[0, 1]`` pixel scale: the paper's measure.

    Why: Table 1's "average minimum distortion" is ``sqrt(sum_i (x'_i - x_i)^2 / n)`` over the
    ``n`` pixels of an image (784 for MNIST), the standard deviation of the perturbation.

    Args:
        x: ``(N, 1, 28, 28)`` original images (any ``(N, ...)`` shape).
        x_adv: perturbed images, the same shape.

    Returns:
        ``(N,)`` the distortion of each image, in ``x``'s floating dtype (float32 otherwise),
        computed in float64.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 1).
    """
    if not isinstance(x, Tensor) or not isinstance(x_adv, Tensor):
        raise ValueError("x and x_adv must be tensors")
    if x.shape != x_adv.shape or x.ndim < 1:
        raise ValueError(f"x and x_adv must have the same shape (N, ...), got "
                         f"{tuple(x.shape)} and {tuple(x_adv.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    n_pixels = math.prod(x.shape[1:])
    if len(x) == 0 or n_pixels == 0:
        return torch.zeros(len(x), dtype=dtype, device=x.device)
    diff = x_adv.detach().to(torch.float64) - x.detach().to(torch.float64)
    return diff.reshape(len(x), n_pixels).square().mean(1).sqrt().to(dtype)


def gaussian_noise(images: Tensor, stddev: float, *, generator: torch.Generator | None = None,
                   clip: bool = True) -> Tensor:
    """The paper's random baseline: ``x + N(0, stddev^2)`` per pixel, clipped to ``[0, 1]``.

    Why: Table 2 feeds images with Gaussian noise (stddev 0.1 and 0.3) to every model, to show
    that adversarial examples are not merely noisy images. Clipping keeps them in the box the
    models were trained on, but it lowers the realised standard deviation (a black pixel cannot
    go darker), so report :func:`distortion` of the returned images rather than ``stddev``.

    Args:
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]``.
        stddev: the noise's standard deviation on the ``[0, 1]`` scale, finite and ``>= 0``.
        generator: a seeded ``torch.Generator`` (on the images' device) for reproducible noise.
        clip: clip the result to ``[0, 1]`` (the default) or leave it unclipped.

    Returns:
        ``(N, 1, 28, 28)`` noisy images, same dtype and device as ``images``.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 2).
    """
    _check_images(images)
    checks.non_negative_float("stddev", stddev)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype,
                        device=images.device)
    noisy = images + float(stddev) * noise
    return noisy.clamp(0.0, 1.0) if clip else noisy


def lbfgs(model: nn.Module, images: Tensor, targets: Tensor, *, c: float | None = None,
          settings: LBFGSSettings | None = None, device: str | torch.device | None = None,
          workers: int | None = None, progress: bool = False) -> AttackResult:
    """Targeted adversarial examples by box-constrained L-BFGS with a search over ``c``.

    Why: this is the paper's attack (section 4.1), run for a whole batch at once. For each image
    ``x`` and target ``l`` it minimises ``c * sum(r ** 2) + CE(model(x + r), l)`` subject to
    ``x + r`` in ``[0, 1]^n``. ``c`` sits on the norm term, so a larger ``c`` gives a smaller
    perturbation that may fail to reach ``l``; the smallest adversarial perturbation comes from
    the largest ``c`` that still succeeds.

    The search over ``c``, per image, ``settings.search_steps`` solves in all: start at
    ``c_init``; while the solve's minimiser reaches the target, multiply ``c`` by ``c_growth``;
    the first failure brackets the critical ``c``, which is then bisected geometrically. If even
    ``c_init`` fails, ``c`` is divided by ``c_growth`` until a solve succeeds; an image whose
    ``c`` would drop below ``c_floor`` without a success gets one fresh solve from the image at
    ``c_floor`` (``settings.rescue_max_iter``) and, if that too misses, is a failure. Each solve
    is warm-started from the closest adversarial example so far (before any success, from the
    last iterate), and the closest adversarial example seen at any ``c`` is returned.

    The solver is a batched projected L-BFGS: variables at a bound whose gradient points out of
    the box are held fixed, the L-BFGS two-loop recursion gives the direction on the others, and
    a backtracking line search along the projected path ``clip(x + a d, 0, 1)`` with an Armijo
    test picks the step, for each image separately. Images that converge leave the batch, so
    the cost follows the unfinished ones. Models in float32 run in float32, float64 models in
    float64. Large batches are solved in chunks of ``settings.chunk_size`` images; on a CPU,
    ``workers`` chunks are solved side by side, each on one torch thread, which uses the cores
    better than splitting every small operation of one chunk across them (``python -m
    intriguing bench attack`` measures both). Subnormal floats are flushed to zero while the
    attack runs, where the CPU supports it, on the calling thread and on every worker
    (:func:`intriguing.engine.numerics.flush_subnormals`: on some CPUs subnormal arithmetic,
    which sigmoid gradients underflow into, is many times slower; torch's own intra-op threads
    keep their setting); the caller's setting is restored afterwards, also on an exception.

    What is guaranteed. A call is deterministic: on one machine and torch build, the same call
    gives the same bits, and any ``workers > 1`` gives the bits of ``torch.set_num_threads(1)``.
    No image's arithmetic reads another image's values, but BLAS libraries choose kernels by the
    number of rows (and the batch shrinks as images finish), so the bits of an answer may
    change with the images it shares a batch with, the chunk size, the thread count, the CPU
    and the BLAS build. (The model always sees at least 16 rows, which makes an image's bits
    the same alone and in any batch on some machines, e.g. an AMD EPYC with MKL, but not on
    all: an Intel Xeon with AVX-512 moved a pixel by 2.7e-4.) Across all such changes (bounds
    measured, with a margin, not proven; the tests check them):

    - the same images succeed;
    - each solve takes the same decision (target reached at this ``c`` or not) unless it ends
      within rounding of the decision boundary, where the two searches continue in different
      halves of the bracket: ``c`` is identical for at least 80% of the images of a set (most
      others are one bisection step, a factor ``sqrt(c_growth)``, apart), and any image's
      ``c`` is within two steps of the search, a factor ``c_growth ** 2``;
    - an image's distortion agrees within 15%, and within 2% for at least 90% of the images
      of a set; the mean distortion of a set of 100 or more images within 0.5%;
    - ``adversarial`` always lies in the box, and ``success`` is re-checked by the model.

    Measured by forcing other kernels (no padding to 16 rows, chunks of 7 images) against the
    default: on the book's FC200-200-10 and AE400-10 (300 test images
    each) ``c`` was identical for 80-98% of images and at most a factor 1.9 apart, 99% of
    distortions agreed within 1% and all within 3%, means within 2e-4; on a random 784-16-10
    sigmoid network (twelve sets of 200 random images) 91-98% of ``c`` were identical, one
    image in 2,400 was a factor 22 apart, 95.5-99.5% of distortions agreed within 2% and all
    within 12%, means within 2.2e-3.

    Args:
        model: ``nn.Module`` in eval mode mapping images ``(N, 1, 28, 28)`` in ``[0, 1]`` to
            logits ``(N, K)``; any input shape ``(N, *input_shape)`` works.
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]`` (generally ``(N, *input_shape)``).
        targets: ``(N,)`` integer target labels in ``0..K-1``.
        c: ``None`` searches ``c`` per image; a positive finite number runs one solve at that
            ``c`` for every image, from the image itself (the minimiser at ``c``, adversarial or
            not).
        settings: :class:`LBFGSSettings`; ``None`` uses the defaults.
        device: where to compute; ``None`` means the model's device (the CPU for the book's
            models). A model elsewhere is copied there; the caller's model is not moved.
        workers: chunks solved side by side on a CPU, each on one torch thread (the caller's
            thread count is restored afterwards); ``None`` means torch's thread count
            (``torch.get_num_threads()``) on a CPU and 1 on other devices. At most one worker
            per chunk runs, so a call with a single chunk runs as before, on torch's threads.
        progress: show a tqdm progress bar.

    Returns:
        :class:`AttackResult`, tensors on the CPU. An image whose target already is the model's
        prediction comes back unchanged, with ``success`` True, distortion 0 and ``c = inf``.

    Raises:
        ValueError: naming ``model`` (not an eval-mode module, or not returning ``(N, K)``
            logits), ``images`` (not a float tensor of shape ``(N, ...)`` in ``[0, 1]``, or
            NaN, or of a shape the model cannot take: the model's error is chained),
            ``targets`` (not an integer tensor of shape ``(N,)`` in ``0..K-1``), ``c`` (not
            positive and finite), ``settings``, ``device`` or ``workers`` (not a positive int, or
            more than 1 off the CPU).

    References:
        Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199,
        section 4.1. The book explains the attack in its chapter on blind spots.
    """
    with flush_subnormals():
        return _lbfgs(model, images, targets, c, settings, device, workers, progress)


def _lbfgs(model: nn.Module, images: Tensor, targets: Tensor, c: float | None,
           settings: LBFGSSettings | None, device: str | torch.device | None,
           workers: int | None, progress: bool) -> AttackResult:
    """:func:`lbfgs`, which runs it with subnormals flushed on the calling thread."""
    start_time = time.perf_counter()
    settings = _check_settings(settings)
    c_fixed = checks.penalty_c(c, allow_none=True)
    _check_images(images)
    _check_targets(targets, len(images))
    model, dev, dtype = _prepare_model(model, device)
    _check_outputs(model, images, targets, dev, dtype)
    shape = tuple(images.shape[1:])
    n_images = len(images)
    n_pixels = math.prod(shape)
    x_all = images.detach().to(device=dev, dtype=dtype).reshape(n_images, n_pixels)
    t_all = targets.detach().to(device=dev, dtype=torch.long)
    objective = _Objective(model, shape)
    starts = range(0, n_images, settings.chunk_size)
    workers = _check_workers(workers, dev, len(starts))
    rows = min(settings.chunk_size, n_images)
    # One solver (its reusable buffers) per worker, handed from chunk to chunk.
    solvers: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(workers if rows else 0):
        solvers.put(_Solver(objective, settings, rows, x_all.shape[1], x_all))
    bar = _progress_bar(n_images, progress)
    bar_lock = threading.Lock()

    def on_progress(images: float) -> None:
        with bar_lock:
            bar.update(images)

    def attack_chunk(lo: int) -> dict:
        x0 = x_all[lo:lo + settings.chunk_size]
        t = t_all[lo:lo + settings.chunk_size]
        solver = solvers.get()
        # Each image's last inverse-curvature scale, moved to the new c (the norm term adds
        # 2 c to every curvature), starts its next solve with a Newton-like first step.
        last_scale = torch.full((len(x0),), math.nan, dtype=dtype, device=dev)
        last_c = torch.zeros(len(x0), dtype=dtype, device=dev)

        def solve(start: Tensor, ids: Tensor, cs: Tensor, refine: Tensor,
                  rescue: bool = False):
            inv = 1.0 / last_scale[ids] + 2.0 * (cs - last_c[ids])
            scale = torch.where(inv > 0, 1.0 / inv, math.nan)
            if rescue:  # a fresh start: no curvature carried over, a unit first step
                scale = torch.full_like(scale, math.nan)
            x_fin, evals, pred, hit_x, hit_rr, scale = solver.solve(
                start, x0[ids], t[ids], cs, scale, refine, rescue)
            last_scale[ids] = scale
            last_c[ids] = cs
            return x_fin, evals, pred, hit_x, hit_rr

        try:
            # Flushing is per thread: a worker thread sets it for itself.
            with flush_subnormals():
                return _search(solve, objective.predict, x0, t, c_fixed, settings,
                               on_progress if bar is not None else None)
        finally:
            solvers.put(solver)

    try:
        if workers == 1:
            parts = [attack_chunk(lo) for lo in starts]
        else:
            # Chunks side by side, one torch thread each: on a CPU, two chunks on two cores
            # outrun one chunk whose every operation is split across both (measured in
            # `bench attack`). Each row's arithmetic is that of a one-thread run.
            saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(workers, thread_name_prefix="lbfgs") as pool:
                    parts = list(pool.map(attack_chunk, starts))
            finally:
                torch.set_num_threads(saved_threads)
    finally:
        if bar is not None:
            bar.close()
    return _assemble(parts, images, targets, objective.predict, dev, dtype, settings,
                     start_time)


def lbfgs_reference(model: nn.Module, images: Tensor, targets: Tensor, *, c: float | None = None,
                    settings: LBFGSSettings | None = None) -> AttackResult:
    """The same attack, image by image, with scipy's L-BFGS-B in float64: the yardstick.

    Why: scipy's L-BFGS-B (generalized Cauchy point, subspace minimisation, More-Thuente line
    search) is the standard box-constrained L-BFGS. Running it on the same objective with the same
    search over ``c`` (``c_init``, growth, steps, warm starts, ``track_iterates``) shows how good
    and how fast the batched engine is. The model is evaluated in float64 on a CPU copy, one image
    at a time, with the exact gradient from torch. BLAS is limited to one thread while it runs
    (threadpoolctl): on vectors of 784 numbers more threads only add overhead. scipy's options:
    ``maxcor = memory``, ``maxiter = max_iter``, ``gtol = pgtol``, ``ftol = factr * eps64``,
    ``maxls = max_linesearch``.

    Args:
        model: as for :func:`lbfgs`.
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]``.
        targets: ``(N,)`` integer target labels.
        c: ``None`` searches ``c``; a positive finite number runs one solve at that ``c``.
        settings: :class:`LBFGSSettings`; ``None`` uses the defaults.

    Returns:
        :class:`AttackResult`, as for :func:`lbfgs`.

    Raises:
        ValueError: as for :func:`lbfgs`.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.1; Byrd, Lu, Nocedal and Zhu 1995, "A
        limited memory algorithm for bound constrained optimization" (L-BFGS-B).
    """
    from scipy.optimize import Bounds, minimize
    from threadpoolctl import threadpool_limits

    start_time = time.perf_counter()
    settings = _check_settings(settings)
    c_fixed = checks.penalty_c(c, allow_none=True)
    _check_images(images)
    _check_targets(targets, len(images))
    _check_model(model)
    cpu = torch.device("cpu")
    model64 = copy.deepcopy(model).to(device=cpu, dtype=torch.float64)
    _check_outputs(model64, images, targets, cpu, torch.float64)
    shape = tuple(images.shape[1:])
    n_images = len(images)
    x0 = images.detach().to(device=cpu, dtype=torch.float64).reshape(n_images, math.prod(shape))
    t = targets.detach().to(device=cpu, dtype=torch.long)
    objective = _Objective(model64, shape)
    options = {
        "maxcor": settings.memory,
        "maxiter": settings.max_iter,
        "gtol": settings.pgtol,
        "ftol": settings.factr * np.finfo(np.float64).eps,
        "maxls": settings.max_linesearch,
        "maxfun": max(15000, 100 * settings.max_iter, 100 * settings.reach_max_iter),
    }
    # scipy's relative-decrease test is the tight factr one throughout; only the step cap
    # differs before an image reaches its target.
    reach_max_iter = max(settings.max_iter, settings.reach_max_iter)
    n = x0.shape[1]
    bounds = Bounds(np.zeros(n), np.ones(n))
    x0_np = x0.numpy()

    def solve(start: Tensor, ids: Tensor, cs: Tensor, refine: Tensor, rescue: bool = False):
        out = start.clone()
        hit_x = start.clone()
        hit_rr = torch.full((len(ids),), math.inf, dtype=torch.float64)
        evals = torch.zeros(len(ids), dtype=torch.long)
        for row in range(len(ids)):
            i = int(ids[row])
            count = [0]

            def fun(z: np.ndarray, row: int = row, origin: np.ndarray = x0_np[i],
                    cc: float = float(cs[row]), target: Tensor = t[i:i + 1],
                    count: list = count) -> tuple[float, np.ndarray]:
                count[0] += 1
                xr = torch.from_numpy(z).view(1, *shape).requires_grad_(True)
                logits = model64(xr)
                ce = F.cross_entropy(logits, target)
                (grad,) = torch.autograd.grad(ce, xr)
                r = z - origin
                rr = float(r @ r)
                if (settings.track_iterates and rr < hit_rr[row]
                        and int(logits.argmax()) == int(target)):
                    hit_rr[row] = rr
                    hit_x[row] = torch.from_numpy(z)
                return ce.item() + cc * rr, grad.numpy().ravel() + (2.0 * cc) * r

            opts = options if bool(refine[row]) else {**options, "maxiter": reach_max_iter}
            if rescue:
                opts = {**options, "maxiter": settings.rescue_max_iter, "gtol": 0.0,
                        "ftol": 0.0}
            sol = minimize(fun, start[row].numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
                           options=opts)
            out[row] = torch.from_numpy(np.clip(sol.x, 0.0, 1.0))
            evals[row] = count[0]
        return out, evals, objective.predict(out), hit_x, hit_rr

    with threadpool_limits(limits=1, user_api="blas"):
        part = _search(solve, objective.predict, x0, t, c_fixed, settings)
    return _assemble([part], images, targets, objective.predict, cpu, torch.float64, settings,
                     start_time)


# ----------------------------------------------------------------------------------------------
# The objective


class _Objective:
    """``c * sum((x - x0) ** 2) + CE(model(x), t)`` and its gradient, each row its own problem.

    The model always sees at least ``MIN_ROWS`` rows (the last row repeated): BLAS libraries
    compute a matrix product with few rows by other kernels than one with many, with results
    that differ in the last bit, and an optimiser turns such differences into different steps.
    With the padding an image's arithmetic is the same alone as in any batch (on the CPU).
    """

    MIN_ROWS = 16

    def __init__(self, model: nn.Module, shape: tuple[int, ...]):
        self.model = model
        self.shape = shape

    def _logits(self, x: Tensor) -> Tensor:
        b = len(x)
        if 0 < b < self.MIN_ROWS:
            x = torch.cat([x, x[-1:].expand(self.MIN_ROWS - b, -1)])
        return self.model(x.view(len(x), *self.shape))[:b]

    def __call__(self, x: Tensor, x0: Tensor, t: Tensor, c: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Objective ``(b,)``, gradient ``(b, n)``, predicted label ``(b,)`` and
        ``sum((x - x0) ** 2)`` ``(b,)`` at ``x (b, n)``."""
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            logits = self._logits(xr)
            ce = F.cross_entropy(logits, t, reduction="none")
            (grad,) = torch.autograd.grad(ce.sum(), xr)
        r = x - x0
        rr = torch.linalg.vector_norm(r, dim=1).square_()  # no (b, n) temporary
        grad.addcmul_(r, 2.0 * c[:, None])
        return ce.detach() + c * rr, grad, logits.detach().argmax(1), rr

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self._logits(x).argmax(1)


# ----------------------------------------------------------------------------------------------
# The batched projected L-BFGS


def _two_loop(sv: Tensor, yv: Tensor, sy: Tensor, yy: Tensor, rho: Tensor, scale: Tensor,
              order: list[int]) -> Tensor:
    """The L-BFGS two-loop recursion, run on inner products only.

    The textbook recursion's dot products ``s_i.q`` and ``y_i.r`` are sums of ``s_i.v``,
    ``y_i.v`` (``sv, yv (B, m)``) and Gram entries ``s_i.y_j``, ``y_i.y_j`` (``sy, yy (B, m, m)``),
    so the recursion runs on ``(B, m)`` numbers and the ``n``-vectors are read once afterwards.
    ``order`` lists the slots newest first; a slot with ``rho = 0`` (empty or rejected) drops
    out for its row. Returns ``coef (B, 2m)`` with ``H v = scale * v + coef @ [S; Y]``.
    """
    alpha = torch.zeros_like(sv)
    acc = torch.zeros_like(sv)
    for i in order:
        a = rho[:, i] * (sv[:, i] - acc[:, i])
        alpha[:, i] = a
        acc.addcmul_(sy[:, :, i], a[:, None])
    base = scale[:, None] * (yv - torch.bmm(yy, alpha[:, :, None]).squeeze(2))
    beta = torch.zeros_like(sv)
    acc.zero_()
    for i in reversed(order):
        b = rho[:, i] * (base[:, i] + acc[:, i])
        beta[:, i] = b
        acc.addcmul_(sy[:, i, :], (alpha[:, i] - b)[:, None])
    return torch.cat([alpha - beta, -scale[:, None] * alpha], dim=1)


class _Solver:
    """Batched projected L-BFGS over the box ``[0, 1]^n``, one independent problem per row.

    Per-row state: the iterate ``x``, objective ``f``, gradient ``g``; curvature pairs ``(s, y)``
    in a ring of ``m`` slots (``pairs (B, 2m, n)``: ``s`` in rows ``0..m-1``, ``y`` in rows
    ``m..2m-1``) with their Gram matrices ``s_i.y_j`` and ``y_i.y_j``, ``rho = 1 / s.y`` (0 marks
    an empty or rejected slot, a no-op for that row alone) and the scale ``gamma``; the line
    search's direction, trial step and trial count.

    Each iteration makes exactly one batched model evaluation: every row either tries a new
    direction with step 1 or, if its last trial failed the Armijo test, retries its direction
    with a shorter step. All rows write to the same ring slot each iteration (zeros where a row
    has no new pair), so the two-loop's slot order is shared. Rows that finish are frozen at once
    and dropped from every tensor when a quarter of the batch is frozen, so the cost follows the
    unfinished rows. Buffers are allocated once per call and reused.
    """

    def __init__(self, objective: _Objective, s: LBFGSSettings, rows: int, n: int, like: Tensor):
        self.objective = objective
        self.s = s
        m = s.memory
        self._pairs = [like.new_empty(rows, 2 * m, n), like.new_empty(rows, 2 * m, n)]
        self._vecs = like.new_empty(rows, 3, n)  # v (masked gradient), s and y of the last step
        self._dirs = [like.new_empty(rows, n), like.new_empty(rows, n)]
        self._free = like.new_empty(rows, n)
        self._scratch = like.new_empty(rows, n)

    def _dot(self, a: Tensor, b: Tensor) -> Tensor:
        """Row-wise dot products ``(B,)``; a product into a reused buffer, then a sum, is
        faster on the CPU than ``torch.linalg.vecdot``."""
        return torch.mul(a, b, out=self._scratch[:len(a)]).sum(1)

    def solve(self, x: Tensor, x0: Tensor, t: Tensor, c: Tensor, scale: Tensor, refine: Tensor,
              rescue: bool = False
              ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Minimise every row from ``x (B, n)`` at ``c (B,)`` for images ``x0``, targets ``t``.

        ``refine (B,)`` marks rows warm-started from a point that already reaches the target:
        they stop at ``ftol`` and ``max_iter``, the others at ``reach_ftol`` and
        ``reach_max_iter``. A ``rescue`` solve runs ``rescue_max_iter`` steps with both
        flatness tests (``pgtol``, ``ftol``) off: it stops only when no step lowers the
        objective.

        ``scale (B,)`` is each row's initial inverse-curvature scale (NaN where unknown); the
        first step is at most of unit length either way. Returns the final iterates ``(B, n)``,
        evaluations ``(B,)``, predicted labels ``(B,)`` at the final iterates, the evaluated
        point closest to ``x0`` that the model assigns to the target ``(B, n)`` with its squared
        distance ``(B,)`` (inf where none did; only the start point unless ``track_iterates``),
        and the final scales ``(B,)``.
        """
        s = self.s
        m = s.memory
        B, n = x.shape
        dev, dtype = x.device, x.dtype
        eps = torch.finfo(dtype).eps
        tiny = torch.finfo(dtype).tiny
        out_x = x.clone()
        out_evals = torch.zeros(B, dtype=torch.long, device=dev)
        out_pred = torch.zeros(B, dtype=torch.long, device=dev)
        out_scale = scale.clone()
        if B == 0:
            return out_x, out_evals, out_pred, x.clone(), x.new_zeros(0), out_scale
        buf = 0
        pairs = self._pairs[buf][:B].zero_()
        vecs = self._vecs[:B]
        gram_sy, gram_yy = x.new_zeros(B, m, m), x.new_zeros(B, m, m)
        rho = x.new_zeros(B, m)
        gamma = scale.clone()
        step = torch.ones(B, dtype=dtype, device=dev)
        trials = torch.zeros(B, dtype=torch.long, device=dev)
        iters = torch.zeros(B, dtype=torch.long, device=dev)
        refine = refine.to(device=dev, dtype=torch.bool)
        max_iter = torch.where(refine, s.max_iter,
                               s.rescue_max_iter if rescue else s.reach_max_iter)
        ftol = torch.where(refine, s.ftol, 0.0 if rescue else s.reach_ftol).to(dtype)
        pgtol = 0.0 if rescue else s.pgtol
        pos = torch.arange(B, device=dev)
        x = x.clone()
        f, g, pred, rr = self.objective(x, x0, t, c)
        evals = torch.ones(B, dtype=torch.long, device=dev)
        hit_x = x.clone()
        hit_rr = torch.where(pred == t, rr, math.inf)
        live = torch.ones(B, dtype=torch.bool, device=dev)
        pending = torch.zeros(B, dtype=torch.bool, device=dev)  # rows with a new pair
        retry = torch.zeros(B, dtype=torch.bool, device=dev)  # rows retrying their direction
        d = gd = None
        slot = 0  # the ring slot the next pairs go to (the oldest), the same for every row

        for k in itertools.count():
            # Projected gradient; variables it leaves in place (at a bound, gradient pointing
            # out of the box) are held fixed, the two-loop runs on the others.
            v = vecs[:, 0]
            pg = torch.sub(x, g, out=v).clamp_(0.0, 1.0).sub_(x)
            converged = torch.maximum(pg.amax(1), pg.amin(1).neg_()) <= pgtol
            free = torch.sign(pg, out=self._free[:len(x)]).abs_()  # 1 free, 0 fixed
            torch.mul(g, free, out=v)
            if k > 0:
                # Last step's pairs into the ring (zeros where a row has none); one pass over
                # the pairs then gives their products with v and with the new pair.
                keep_f = pending.to(dtype)[:, None]
                torch.mul(vecs[:, 1], keep_f, out=pairs[:, slot])
                torch.mul(vecs[:, 2], keep_f, out=pairs[:, m + slot])
                prods = torch.bmm(pairs, vecs.transpose(1, 2))
                ps, py = prods[:, :, 1] * keep_f, prods[:, :, 2] * keep_f
                gram_sy[:, :, slot] = py[:, :m]
                gram_sy[:, slot, :] = ps[:, m:]
                gram_yy[:, :, slot] = py[:, m:]
                gram_yy[:, slot, :] = py[:, m:]
                sy, yy = py[:, slot], py[:, m + slot]
                # A pair with s.y <= eps * y.y is rejected, for that row only.
                good = pending & (sy > eps * yy) & (yy > 0)
                one = torch.ones_like(sy)
                rho[:, slot] = torch.where(good, 1.0 / torch.where(good, sy, one), 0.0)
                gamma = torch.where(good, sy / torch.where(good, yy, one), gamma)
                slot = (slot + 1) % m
            else:
                prods = torch.bmm(pairs, vecs[:, :1].transpose(1, 2))
            scale = gamma
            if k == 0 or bool(torch.isnan(gamma).any()):
                # Without a pair the first step has unit length, and a scale carried over
                # from the last solve may not make it longer.
                unit = 1.0 / torch.linalg.vector_norm(v, dim=1).clamp_min(tiny)
                scale = torch.fmin(gamma, unit) if k == 0 else torch.where(
                    torch.isnan(gamma), unit, gamma)
            coef = _two_loop(prods[:, :m, 0], prods[:, m:, 0], gram_sy, gram_yy, rho, scale,
                             [(slot - 1 - j) % m for j in range(m)])
            d_new = torch.mul(v, -scale[:, None], out=self._dirs[k % 2][:len(x)])
            d_new[:, None, :].baddbmm_(coef.neg_()[:, None, :], pairs)
            d_new.mul_(free)
            gd_new = self._dot(g, d_new)
            bad = ~(gd_new < 0)
            if bool(bad.any()):
                # Not a descent direction (rounding): the scaled gradient instead.
                rows = bad.nonzero().squeeze(1)
                d_new.index_copy_(0, rows, -(v.index_select(0, rows) * scale[rows, None]))
                gd_new[rows] = torch.linalg.vecdot(g[rows], d_new[rows])
            if bool(retry.any()):
                # Rows retrying keep their direction (their memory may have lost a slot).
                rows = retry.nonzero().squeeze(1)
                d_new.index_copy_(0, rows, d.index_select(0, rows))
                gd_new[rows] = gd[rows]
            d, gd = d_new, gd_new

            # One trial step per row, along the projected path, with an Armijo test.
            todo = live & ~converged & (gd < 0)
            xt = torch.addcmul(x, d, step[:, None]).clamp_(0.0, 1.0)
            dec = self._dot(g, torch.sub(xt, x, out=vecs[:, 1]))
            rows = todo.nonzero().squeeze(1)
            if rows.numel() == len(x):
                ft, gt, pt, rr = self.objective(xt, x0, t, c)
            else:
                ft, gt, pt = f.clone(), g.clone(), pred.clone()
                rr = torch.full_like(f, math.inf)
                fr, gr, pr, rrr = self.objective(*(z.index_select(0, rows)
                                                   for z in (xt, x0, t, c)))
                ft.index_copy_(0, rows, fr)
                gt.index_copy_(0, rows, gr)
                pt.index_copy_(0, rows, pr)
                rr.index_copy_(0, rows, rrr)
            evals[rows] += 1
            torch.sub(gt, g, out=vecs[:, 2])
            if not bool(torch.isfinite(ft).all()):
                # The model failed at a trial point: that trial fails, and its y must not
                # poison the products.
                vecs[:, 2].index_fill_(0, (~torch.isfinite(ft)).nonzero().squeeze(1), 0.0)
            if s.track_iterates:
                # Every evaluated point that reaches the target is a candidate.
                hit = ((pt == t) & (rr < hit_rr.index_select(0, pos))).nonzero().squeeze(1)
                if hit.numel():
                    where = pos.index_select(0, hit)
                    hit_x.index_copy_(0, where, xt.index_select(0, hit))
                    hit_rr.index_copy_(0, where, rr.index_select(0, hit))
            moved = todo & (dec < 0)
            ok = moved & (ft <= f + s.armijo * dec)
            retry = moved & ~ok
            pending = ok
            big = torch.maximum(torch.maximum(f.abs(), ft.abs()), torch.ones_like(f))
            small = ok & ((f - ft) <= ftol * big)  # ftol = 0: never, as an accepted step lowers f
            # Retrying rows get a shorter step from a safeguarded quadratic interpolation of
            # f(x + a d) from f, gd and the failed trial.
            curv = 2.0 * (ft - f - gd * step)
            a_q = -gd * step * step / curv.clamp_min(tiny)
            a_q = torch.where(torch.isfinite(a_q), a_q, 0.5 * step)
            shorter = torch.minimum(torch.maximum(a_q, 0.1 * step), 0.5 * step)
            trials = torch.where(retry, trials + 1, torch.zeros_like(trials))
            step = torch.where(retry, shorter, torch.ones_like(step))
            iters += ok
            # Accept.
            stay = (~ok).nonzero().squeeze(1)
            if stay.numel() < len(x) // 2:
                for new, old in ((xt, x), (ft, f), (gt, g), (pt, pred)):
                    new.index_copy_(0, stay, old.index_select(0, stay))
                x, f, g, pred = xt, ft, gt, pt
            else:
                acc = ok.nonzero().squeeze(1)
                for new, old in ((xt, x), (ft, f), (gt, g), (pt, pred)):
                    old.index_copy_(0, acc, new.index_select(0, acc))
            finished = live & (~moved | (retry & (trials >= s.max_linesearch)) | small
                               | (iters >= max_iter))

            if bool(finished.any()):
                done = finished.nonzero().squeeze(1)
                where = pos.index_select(0, done)
                out_x.index_copy_(0, where, x.index_select(0, done))
                out_evals.index_copy_(0, where, evals.index_select(0, done))
                out_pred.index_copy_(0, where, pred.index_select(0, done))
                out_scale.index_copy_(0, where, gamma.index_select(0, done))
                live &= ~finished
                pending &= live
                retry &= live
                n_live = int(live.sum())
                if n_live == 0:
                    break
                if n_live <= 0.75 * len(x):
                    keep = live.nonzero().squeeze(1)
                    buf = 1 - buf
                    pairs = torch.index_select(pairs, 0, keep, out=self._pairs[buf][:n_live])
                    kept_vecs = vecs.index_select(0, keep)
                    vecs = self._vecs[:n_live]
                    vecs.copy_(kept_vecs)
                    (pos, x, f, g, pred, x0, t, c, evals, live, pending, retry, d, gd, gamma,
                     rho, step, trials, iters, max_iter, ftol, gram_sy, gram_yy) = (
                        z.index_select(0, keep) for z in (
                            pos, x, f, g, pred, x0, t, c, evals, live, pending, retry, d, gd,
                            gamma, rho, step, trials, iters, max_iter, ftol, gram_sy, gram_yy))
        return out_x, out_evals, out_pred, hit_x, hit_rr, out_scale


# ----------------------------------------------------------------------------------------------
# The search over c


def _search(solve: Callable, predict: Callable, x0: Tensor, t: Tensor, c_fixed: float | None,
            s: LBFGSSettings, on_progress: Callable[[float], object] | None = None) -> dict:
    """Run the per-image search over ``c`` (or one solve at ``c_fixed``) for one chunk.

    ``solve(start, ids, c, refine)`` returns, for rows ``ids``, the final iterates, evaluations,
    predicted labels at the final iterates, and the closest point seen that reaches the target
    with its squared distance; ``refine`` marks the rows whose start already reaches the target
    (they may stop earlier). Per-row state, each ``(N,)`` or ``(N, n)``: ``c``, the bracket
    ``c_lo`` (largest success) and ``c_hi`` (smallest failure), ``best_x``, ``best_rr``
    (squared distance), ``best_c``, ``last_x`` and ``todo``. ``on_progress(images)`` is told
    how many images' worth of work each step finished.
    """
    N, n = x0.shape
    dev, dtype = x0.device, x0.dtype
    best_x = x0.clone()
    best_rr = torch.full((N,), math.inf, dtype=torch.float64, device=dev)
    best_c = torch.full((N,), math.nan, dtype=torch.float64, device=dev)
    evals = torch.zeros(N, dtype=torch.long, device=dev)
    if N == 0:
        return {"x": best_x, "c": best_c, "evals": evals}
    already = predict(x0) == t
    best_rr[already] = 0.0
    best_c[already] = math.inf
    todo = ~already
    if c_fixed is not None:
        ids = todo.nonzero().squeeze(1)
        cs = torch.full((len(ids),), c_fixed, dtype=dtype, device=dev)
        x_fin, ev, _, _, _ = solve(x0[ids], ids, cs, torch.zeros_like(ids, dtype=torch.bool))
        best_x[ids] = x_fin
        best_c[ids] = c_fixed
        evals[ids] += ev
        if on_progress is not None:
            on_progress(N)
        return {"x": best_x, "c": best_c, "evals": evals}

    def keep_closest(ids: Tensor, cc: Tensor, x_fin: Tensor, ok: Tensor, hit_x: Tensor,
                     hit_rr: Tensor) -> None:
        # The closest point seen that reaches the target: the final iterate (the minimiser at
        # this c), or with track_iterates any evaluated point.
        fin_r = x_fin - x0[ids]
        fin_rr = torch.where(ok, torch.linalg.vecdot(fin_r, fin_r).to(torch.float64), math.inf)
        hit_rr = hit_rr.to(torch.float64)
        use_hit = hit_rr < fin_rr
        cand_rr = torch.where(use_hit, hit_rr, fin_rr)
        cand_x = torch.where(use_hit[:, None], hit_x, x_fin)
        better = cand_rr < best_rr[ids]
        best_x[ids] = torch.where(better[:, None], cand_x, best_x[ids])
        best_rr[ids] = torch.where(better, cand_rr, best_rr[ids])
        best_c[ids] = torch.where(better, cc, best_c[ids])

    last_x = x0.clone()
    c = torch.full((N,), s.c_init, dtype=torch.float64, device=dev)
    c_lo = torch.zeros(N, dtype=torch.float64, device=dev)
    c_hi = torch.full((N,), math.inf, dtype=torch.float64, device=dev)
    reported = 0.0
    for step in range(s.search_steps):
        ids = todo.nonzero().squeeze(1)
        if ids.numel() == 0:
            break
        found = torch.isfinite(best_rr[ids])
        start = torch.where(found[:, None], best_x[ids], last_x[ids])
        cc = c[ids]
        x_fin, ev, pred, hit_x, hit_rr = solve(start, ids, cc.to(dtype), found)
        evals[ids] += ev
        last_x[ids] = x_fin
        ok = pred == t[ids]
        keep_closest(ids, cc, x_fin, ok, hit_x, hit_rr)
        c_lo[ids] = torch.where(ok, torch.maximum(c_lo[ids], cc), c_lo[ids])
        c_hi[ids] = torch.where(ok, c_hi[ids], torch.minimum(c_hi[ids], cc))
        lo, hi = c_lo[ids], c_hi[ids]
        has_lo, has_hi = lo > 0, torch.isfinite(hi)
        c[ids] = torch.where(has_lo & has_hi, (lo * hi).sqrt(),
                             torch.where(has_lo, lo * s.c_growth, hi / s.c_growth))
        give_up = ~has_lo & (c[ids] < s.c_floor)
        todo[ids[give_up]] = False
        if on_progress is not None:
            on_progress(N * (step + 1) / s.search_steps - reported)
            reported = N * (step + 1) / s.search_steps
    failed = ~torch.isfinite(best_rr)
    if s.rescue_max_iter > 0 and failed.any():
        # One fresh, longer solve from the image itself for images no solve brought to the
        # target (see LBFGSSettings.rescue_max_iter): unit first step, no flatness tests.
        ids = failed.nonzero().squeeze(1)
        cc = torch.full((len(ids),), s.c_floor, dtype=torch.float64, device=dev)
        x_fin, ev, pred, hit_x, hit_rr = solve(x0[ids], ids, cc.to(dtype),
                                               torch.zeros_like(ids, dtype=torch.bool),
                                               rescue=True)
        evals[ids] += ev
        ok = pred == t[ids]
        last_x[ids] = torch.where(ok[:, None], last_x[ids], x_fin)
        keep_closest(ids, cc, x_fin, ok, hit_x, hit_rr)
        c_hi[ids] = torch.where(ok, c_hi[ids], torch.minimum(c_hi[ids], cc))
    if on_progress is not None and reported < N:
        on_progress(N - reported)
    failed = ~torch.isfinite(best_rr)
    best_x[failed] = last_x[failed]
    best_c[failed] = torch.where(torch.isfinite(c_hi[failed]), c_hi[failed], c[failed])
    return {"x": best_x, "c": best_c, "evals": evals}


def _assemble(parts: list[dict], images: Tensor, targets: Tensor, predict: Callable,
              dev: torch.device, dtype: torch.dtype, settings: LBFGSSettings,
              start_time: float) -> AttackResult:
    """Concatenate chunk results, re-check success with the model, move everything to the CPU."""
    n_images = len(images)
    if parts:
        x = torch.cat([p["x"] for p in parts])
        cs = torch.cat([p["c"] for p in parts])
        evals = torch.cat([p["evals"] for p in parts])
    else:
        x = images.detach().to(device=dev, dtype=dtype)
        cs = torch.zeros(0, dtype=torch.float64)
        evals = torch.zeros(0, dtype=torch.long)
    adv = x.reshape(images.shape).to(images.dtype).clamp_(0.0, 1.0)
    success = torch.zeros(n_images, dtype=torch.bool)
    t = targets.detach().to(device=dev, dtype=torch.long)
    for lo in range(0, n_images, settings.chunk_size):
        batch = adv[lo:lo + settings.chunk_size].to(device=dev, dtype=dtype)
        hit = predict(batch.reshape(len(batch), -1)) == t[lo:lo + len(batch)]
        success[lo:lo + len(batch)] = hit.cpu()
    adv = adv.cpu()
    return AttackResult(
        adversarial=adv,
        success=success,
        distortion=distortion(images.detach().cpu(), adv),
        c=cs.cpu().to(torch.float64),
        evals=evals.cpu(),
        settings=settings,
        seconds=time.perf_counter() - start_time,
    )


# ----------------------------------------------------------------------------------------------
# Validation


def _check_settings(settings: LBFGSSettings | None) -> LBFGSSettings:
    if settings is None:
        return LBFGSSettings()
    if not isinstance(settings, LBFGSSettings):
        raise ValueError(f"settings must be an LBFGSSettings or None, "
                         f"got {type(settings).__name__}")
    return settings


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if any(module.training for module in model.modules()):
        raise ValueError("model must be in eval mode (call model.eval()): in training mode, "
                         "dropout and batch norm would make each image's answer random and "
                         "dependent on the others")


def _prepare_model(model: nn.Module, device: str | torch.device | None
                   ) -> tuple[nn.Module, torch.device, torch.dtype]:
    """Validate the model; return it on the compute device, that device and its float dtype."""
    _check_model(model)
    tensors = [p for p in list(model.parameters()) + list(model.buffers())
               if p.is_floating_point()]
    home = tensors[0].device if tensors else torch.device("cpu")
    dtype = tensors[0].dtype if tensors else torch.float32
    if device is None:
        dev = home
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device, got {device!r}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    if any(p.device != dev for p in tensors):
        model = copy.deepcopy(model).to(dev)
    return model, dev, dtype


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got dtype {images.dtype}")
    if images.ndim < 2:
        raise ValueError(f"images must have shape (N, *input_shape), e.g. (N, 1, 28, 28), got "
                         f"{tuple(images.shape)}")
    if images.numel() == 0:
        return
    if bool(torch.isnan(images).any()):
        raise ValueError("images must not contain NaN")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")


def _check_targets(targets: Tensor, n_images: int) -> None:
    if not isinstance(targets, Tensor):
        raise ValueError(f"targets must be a tensor, got {type(targets).__name__}")
    if targets.dtype == torch.bool or targets.is_floating_point() or targets.is_complex():
        raise ValueError(f"targets must be an integer (long) tensor, got dtype {targets.dtype}")
    if targets.shape != (n_images,):
        raise ValueError(f"targets must have shape ({n_images},) to match images, got "
                         f"{tuple(targets.shape)}")
    if n_images and int(targets.min()) < 0:
        raise ValueError(f"targets must be class indices >= 0, got {int(targets.min())}")


def _check_outputs(model: nn.Module, images: Tensor, targets: Tensor, dev: torch.device,
                   dtype: torch.dtype) -> None:
    """Run the model on one image: it must return logits ``(1, K)``, and targets be below ``K``."""
    if len(images) == 0:
        return
    try:
        with torch.no_grad():
            logits = model(images[:1].detach().to(device=dev, dtype=dtype))
    except RuntimeError as exc:  # e.g. "mat1 and mat2 shapes cannot be multiplied"
        raise ValueError(f"images of shape {tuple(images.shape)} do not fit the model, which "
                         f"failed on images[:1] with: {exc}") from exc
    if not isinstance(logits, Tensor) or logits.ndim != 2 or len(logits) != 1:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must map images (N, *input_shape) to logits (N, K), got {got} "
                         f"for one image")
    n_classes = logits.shape[1]
    if int(targets.max()) >= n_classes:
        raise ValueError(f"targets must be in 0..{n_classes - 1} (the model has {n_classes} "
                         f"classes), got {int(targets.max())}")


def _check_workers(workers: int | None, dev: torch.device, n_chunks: int) -> int:
    """The number of chunks to solve side by side: ``workers`` (or, for ``None``, torch's thread
    count on a CPU and 1 elsewhere), at most one per chunk."""
    if workers is None:
        workers = torch.get_num_threads() if dev.type == "cpu" else 1
    elif not checks.is_int(workers) or workers < 1:
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    elif workers > 1 and dev.type != "cpu":
        raise ValueError(f"workers must be 1 (or None) on device {str(dev)!r}: chunks run side "
                         f"by side only on a CPU, got {workers!r}")
    return max(1, min(workers, n_chunks))


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm  # text bars on stderr (the book build drops stderr)

    return tqdm(total=total, desc="L-BFGS attack", unit="image")
