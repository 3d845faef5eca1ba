"""Box-constrained L-BFGS adversarial examples, batched, plus the Gaussian-noise baseline.

Why: Szegedy et al. find an adversarial example for image ``x`` and target label ``l`` by
minimising ``c * |r| + loss_f(x + r, l)`` over ``x + r`` in the box ``[0, 1]^m`` with
box-constrained L-BFGS, and searching over ``c``. This module does that for thousands of images at
once: every image carries its own optimiser state, step size, stopping test and ``c``, so an
image's answer never depends on the other images in its batch.

Choices the paper leaves open, made here:

- The norm is the squared L2 norm ``sum(r ** 2)``. It is smooth at ``r = 0`` (plain ``|r|_2`` has
  no gradient there, where every attack starts), so L-BFGS's quadratic model fits it, and it has
  the same minimisers along the search over ``c`` as the plain norm up to a change of ``c``.
- ``loss_f`` is the cross-entropy of the model's logits to the target label.
- The paper says "minimum c"; with ``c`` on the norm term a *larger* ``c`` gives a *smaller*
  perturbation that may fail to reach ``l``, so the smallest adversarial perturbation comes from
  the largest ``c`` that still succeeds. The search looks for that ``c``.

References:
    Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199, section 4.1.
    The book explains the attack in the chapter on blind spots.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

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

    Why: the same settings drive the batched engine (:func:`lbfgs`) and the per-image scipy
    yardstick (:func:`lbfgs_reference`), so the two solve the same problems with the same search
    over ``c``.

    Attributes:
        memory: L-BFGS memory ``m`` (curvature pairs kept per image).
        max_iter: iteration cap of one solve at one ``c``.
        pgtol: a solve stops when the largest entry of the projected gradient is at most this.
        ftol: a solve stops when the objective's relative decrease in one iteration is at most
            this (scipy's test). 0 disables it in the batched engine, which then stops on
            ``pgtol``, a failed line search or ``max_iter``.
        factr: scipy's ``factr`` for the reference (its ``ftol = factr * eps64``); float32 cannot
            resolve a relative decrease of ``factr * eps64``, so the batched engine uses ``ftol``.
        max_linesearch: backtracking trials per iteration before a solve gives up.
        armijo: sufficient-decrease constant of the line search.
        c_init: the first ``c`` of the search.
        c_growth: factor by which ``c`` grows while solves succeed (and shrinks while they fail,
            before any success).
        search_steps: number of solves per image in the search over ``c``.
        c_floor: the search gives an image up when it would go below this ``c`` without any
            success.
        chunk_size: images solved together (bounds memory: about ``2 * memory * chunk_size * n``
            floats for the curvature pairs).
    """

    memory: int = 10
    max_iter: int = 100
    pgtol: float = 1e-5
    ftol: float = 0.0
    factr: float = 1e7
    max_linesearch: int = 20
    armijo: float = 1e-4
    c_init: float = 1e-2
    c_growth: float = 10.0
    search_steps: int = 8
    c_floor: float = 1e-6
    chunk_size: int = 1000

    def __post_init__(self) -> None:
        for name in ("memory", "max_iter", "max_linesearch", "search_steps", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"settings.{name} must be a positive int, got {value!r}")
        for name in ("pgtol", "ftol", "factr", "c_floor"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"settings.{name} must be a finite number >= 0, got {value!r}")
        if not _is_real(self.armijo) or not 0 < self.armijo < 1:
            raise ValueError(f"settings.armijo must be in (0, 1), got {self.armijo!r}")
        if not _is_real(self.c_init) or not math.isfinite(self.c_init) or self.c_init <= 0:
            raise ValueError(f"settings.c_init must be a positive finite number, got {self.c_init!r}")
        if not _is_real(self.c_growth) or not math.isfinite(self.c_growth) or self.c_growth <= 1:
            raise ValueError(f"settings.c_growth must be a finite number > 1, got {self.c_growth!r}")

    def as_dict(self) -> dict:
        """The settings as a plain dict, for the results JSON."""
        return asdict(self)


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns, one entry per image, on the CPU.

    Attributes:
        adversarial: ``(N, 1, 28, 28)`` (the images' shape) in ``[0, 1]``: the best adversarial
            example found; for a failure, the last iterate of the search.
        success: ``(N,)`` bool, re-checked by the model: ``argmax model(adversarial) == target``.
        distortion: ``(N,)`` :func:`distortion` of ``adversarial`` from the image.
        c: ``(N,)`` the ``c`` at which ``adversarial`` was found; ``inf`` where the target was
            already the model's prediction (nothing to do); for a failure of the search, the last
            ``c`` tried.
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

    Why: Table 1's "average minimum distortion" is ``sqrt(sum_i (x'_i - x_i)^2 / n)`` with ``n``
    pixels (784 for MNIST), i.e. the standard deviation of the perturbation.

    Args:
        x: ``(N, ...)`` original images.
        x_adv: ``(N, ...)`` perturbed images, same shape.

    Returns:
        ``(N,)`` the distortion of each image, in ``x``'s floating dtype.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 1).
    """
    if not isinstance(x, Tensor) or not isinstance(x_adv, Tensor):
        raise ValueError("x and x_adv must be tensors")
    if x.shape != x_adv.shape or x.ndim < 1:
        raise ValueError(f"x and x_adv must have the same shape (N, ...), got "
                         f"{tuple(x.shape)} and {tuple(x_adv.shape)}")
    dtype = x.dtype if x.is_floating_point() else torch.float32
    diff = (x_adv.to(torch.float64) - x.to(torch.float64)).reshape(len(x), -1)
    if diff.shape[1] == 0:
        return torch.zeros(len(x), dtype=dtype)
    return diff.square().mean(1).sqrt().to(dtype)


def gaussian_noise(images: Tensor, stddev: float, *, generator: torch.Generator | None = None,
                   clip: bool = True) -> Tensor:
    """The paper's random baseline: ``x + N(0, stddev^2)`` per pixel, clipped to ``[0, 1]``.

    Why: Table 2 feeds Gaussian-noise images (stddev 0.1 and 0.3) to every model to show that
    adversarial examples are not merely "noisy". Clipping keeps the images in the box the models
    were trained on, but it lowers the realised standard deviation (a pixel at 0 cannot go
    negative), so report :func:`distortion` of the returned images, not ``stddev``.

    Args:
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]``.
        stddev: the noise's standard deviation on the ``[0, 1]`` scale, finite and ``>= 0``.
        generator: a seeded ``torch.Generator`` for reproducible noise (on the images' device).
        clip: clip the result to ``[0, 1]`` (default) or leave it unclipped.

    Returns:
        ``(N, 1, 28, 28)`` noisy images, same dtype and device as ``images``.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 2).
    """
    _check_images(images)
    if not _is_real(stddev) or not math.isfinite(stddev) or stddev < 0:
        raise ValueError(f"stddev must be a finite number >= 0, got {stddev!r}")
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype,
                        device=images.device)
    noisy = images + float(stddev) * noise
    return noisy.clamp(0.0, 1.0) if clip else noisy


def lbfgs(model: nn.Module, images: Tensor, targets: Tensor, *, c: float | None = None,
          settings: LBFGSSettings | None = None, device: str | torch.device | None = None,
          progress: bool = False) -> AttackResult:
    """Targeted adversarial examples by box-constrained L-BFGS with a search over ``c``.

    Why: this is the paper's attack (section 4.1), run for a whole batch at once. For each image
    it minimises ``c * sum(r ** 2) + CE(model(x + r), target)`` subject to ``x + r`` in
    ``[0, 1]^n``. ``c`` sits on the norm term, so a larger ``c`` gives a smaller perturbation that
    may fail to reach the target; the smallest adversarial perturbation comes from the largest
    ``c`` that still succeeds (the paper's "minimum c" is a slip).

    The search over ``c`` (per image, ``settings.search_steps`` solves in all): start at
    ``c_init``; while solves succeed multiply ``c`` by ``c_growth``; the first failure brackets
    the critical ``c``, which is then bisected geometrically. If even ``c_init`` fails, ``c`` is
    divided by ``c_growth`` until a solve succeeds or ``c`` would go below ``c_floor`` (then the
    image is a failure). Each solve is warm-started from the best adversarial found so far (or,
    before any success, from the last iterate), and the best (smallest-distortion) adversarial
    seen at any ``c`` is kept.

    The solver is a batched projected L-BFGS: variables at a bound whose gradient points out of
    the box are held fixed, the L-BFGS two-loop recursion gives the step on the free ones, and a
    backtracking line search along the projected path ``clip(x + a * d, 0, 1)`` with an Armijo
    test picks the step, per image. Images that converge leave the batch. float32 models run in
    float32, float64 models in float64.

    Args:
        model: ``nn.Module`` in eval mode mapping ``(N, 1, 28, 28)`` images (generally
            ``(N, *input_shape)``) in ``[0, 1]`` to logits ``(N, K)``.
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]`` (generally ``(N, *input_shape)``).
        targets: ``(N,)`` integer target labels in ``0..K-1``.
        c: ``None`` searches ``c`` per image; a positive finite number runs one solve at that
            ``c`` for every image (from the image itself).
        settings: :class:`LBFGSSettings`; ``None`` uses the defaults.
        device: where to compute; ``None`` means the model's device (CPU for a model without
            parameters). A model elsewhere is copied there; the caller's model is not moved.
        progress: show a tqdm progress bar over the images.

    Returns:
        :class:`AttackResult` with tensors on the CPU. Images whose target already is the
        model's prediction are returned unchanged with ``success`` True, distortion 0 and
        ``c = inf``.

    References:
        Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199,
        section 4.1.
    """
    start_time = time.perf_counter()
    settings = _check_settings(settings)
    c_fixed = _check_c(c)
    model, dev, dtype = _prepare_model(model, device)
    _check_images(images)
    _check_targets(targets, len(images))
    _check_outputs(model, images, targets, dev, dtype)
    shape = tuple(images.shape[1:])
    n_images = len(images)
    x_all = images.detach().to(device=dev, dtype=dtype).reshape(n_images, -1)
    t_all = targets.detach().to(device=dev, dtype=torch.long)
    objective = _Objective(model, shape)
    rows = min(settings.chunk_size, n_images)
    solver = _Solver(objective, settings, rows, x_all.shape[1], x_all) if rows else None

    parts = []
    bar = _progress_bar(n_images, progress)
    for lo in range(0, n_images, settings.chunk_size):
        x0 = x_all[lo:lo + settings.chunk_size]
        t = t_all[lo:lo + settings.chunk_size]

        def solve(start: Tensor, ids: Tensor, cs: Tensor, x0=x0, t=t):
            return solver.solve(start, x0[ids], t[ids], cs)

        parts.append(_search(solve, objective.predict, x0, t, c_fixed, settings))
        if bar is not None:
            bar.update(len(x0))
    if bar is not None:
        bar.close()
    return _assemble(parts, images, targets, shape, model, dev, dtype, settings, start_time)


def lbfgs_reference(model: nn.Module, images: Tensor, targets: Tensor, *, c: float | None = None,
                    settings: LBFGSSettings | None = None) -> AttackResult:
    """The same attack, image by image, with scipy's L-BFGS-B in float64: the yardstick.

    Why: scipy's L-BFGS-B (generalized Cauchy point, subspace minimisation, More-Thuente line
    search) is the standard box-constrained L-BFGS. Running it on the same objective with the same
    search over ``c`` (same ``c_init``, growth, steps, warm starts and best-so-far rule) measures
    how good and how fast the batched engine is. The model is evaluated in float64 on a copy with
    the exact gradient from torch; BLAS is limited to one thread while it runs (threadpoolctl),
    since multi-threaded BLAS on 784-vectors only adds overhead. scipy's options: ``maxcor =
    memory``, ``maxiter = max_iter``, ``gtol = pgtol``, ``ftol = factr * eps64``, ``maxls =
    max_linesearch``.

    Args:
        model: as for :func:`lbfgs` (evaluated on the CPU).
        images: ``(N, 1, 28, 28)`` float in ``[0, 1]``.
        targets: ``(N,)`` integer target labels.
        c: ``None`` searches ``c``; a positive finite number runs one solve at that ``c``.
        settings: :class:`LBFGSSettings`; ``None`` uses the defaults.

    Returns:
        :class:`AttackResult`, as for :func:`lbfgs`.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.1; Byrd, Lu, Nocedal and Zhu 1995 (the
        L-BFGS-B algorithm).
    """
    from scipy.optimize import Bounds, minimize
    from threadpoolctl import threadpool_limits

    start_time = time.perf_counter()
    settings = _check_settings(settings)
    c_fixed = _check_c(c)
    _check_model(model)
    _check_images(images)
    _check_targets(targets, len(images))
    model64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64)
    _check_outputs(model64, images, targets, torch.device("cpu"), torch.float64)
    shape = tuple(images.shape[1:])
    n_images = len(images)
    x0 = images.detach().to(device="cpu", dtype=torch.float64).reshape(n_images, -1)
    t = targets.detach().to(device="cpu", dtype=torch.long)
    objective = _Objective(model64, shape)
    options = {
        "maxcor": settings.memory,
        "maxiter": settings.max_iter,
        "gtol": settings.pgtol,
        "ftol": settings.factr * np.finfo(np.float64).eps,
        "maxls": settings.max_linesearch,
        "maxfun": max(15000, 100 * settings.max_iter),
    }
    n = x0.shape[1]
    bounds = Bounds(np.zeros(n), np.ones(n))
    x0_np = x0.numpy()

    def solve(start: Tensor, ids: Tensor, cs: Tensor):
        out = start.clone()
        evals = torch.zeros(len(ids), dtype=torch.long)
        for row in range(len(ids)):
            i = int(ids[row])
            origin, cc, target = x0_np[i], float(cs[row]), t[i:i + 1]
            count = [0]

            def fun(z: np.ndarray) -> tuple[float, np.ndarray]:
                count[0] += 1
                xr = torch.from_numpy(z).view(1, *shape).requires_grad_(True)
                ce = F.cross_entropy(model64(xr), target)
                (grad,) = torch.autograd.grad(ce, xr)
                r = z - origin
                return ce.item() + cc * float(r @ r), grad.numpy().ravel() + (2.0 * cc) * r

            sol = minimize(fun, start[row].numpy(), jac=True, method="L-BFGS-B", bounds=bounds,
                           options=options)
            out[row] = torch.from_numpy(np.clip(sol.x, 0.0, 1.0))
            evals[row] = count[0]
        return out, evals, objective.predict(out)

    with threadpool_limits(limits=1, user_api="blas"):
        part = _search(solve, objective.predict, x0, t, c_fixed, settings)
    return _assemble([part], images, targets, shape, model64, torch.device("cpu"),
                     torch.float64, settings, start_time)


# ----------------------------------------------------------------------------------------------
# The objective


class _Objective:
    """``c * sum((x - x0) ** 2) + CE(model(x), t)`` with its gradient, row by row."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...]):
        self.model = model
        self.shape = shape

    def __call__(self, x: Tensor, x0: Tensor, t: Tensor, c: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """Objective ``(b,)``, gradient ``(b, n)`` and predicted label ``(b,)`` at ``x (b, n)``."""
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            logits = self.model(xr.view(len(x), *self.shape))
            ce = F.cross_entropy(logits, t, reduction="none")
            (grad,) = torch.autograd.grad(ce.sum(), xr)
        r = x - x0
        f = ce.detach() + c * torch.linalg.vecdot(r, r)
        grad.add_(r.mul_(2.0 * c[:, None]))
        return f, grad, logits.detach().argmax(1)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self.model(x.view(len(x), *self.shape)).argmax(1)


# ----------------------------------------------------------------------------------------------
# The batched projected L-BFGS


def _two_loop(sv: Tensor, yv: Tensor, sy: Tensor, yy: Tensor, rho: Tensor, scale: Tensor,
              order: list[int]) -> Tensor:
    """The L-BFGS two-loop recursion, run on inner products only.

    The textbook recursion's dot products ``s_i.q`` and ``y_i.r`` are sums of ``s_i.v``,
    ``y_i.v`` (``sv, yv (B, m)``) and Gram entries ``s_i.y_j``, ``y_i.y_j`` (``sy, yy (B, m, m)``),
    so the recursion runs on ``(B, m)`` numbers and the ``n``-vectors are read once afterwards.
    A slot with ``rho = 0`` (empty or rejected) drops out for its row. ``order`` lists the slots
    newest first. Returns ``coef (B, 2m)`` with ``H v = scale * v + coef @ [S; Y]``.
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

    Per-row state: the iterate, objective, gradient, curvature pairs ``(s, y)`` in a ring of
    ``m`` slots (``pairs (B, 2m, n)``, ``s`` in rows ``0..m-1``, ``y`` in ``m..2m-1``), their Gram
    matrices, ``rho = 1 / s.y`` (0 for an empty or rejected slot) and the scale ``gamma``. Rows
    that finish are frozen at once (no more model evaluations) and dropped from every tensor
    when a quarter of the batch is frozen, so the cost follows the unfinished rows without
    copying the pairs at every iteration. Buffers are allocated once per call and reused.
    """

    def __init__(self, objective: _Objective, s: LBFGSSettings, rows: int, n: int, like: Tensor):
        self.objective = objective
        self.s = s
        m = s.memory
        self._pairs = [like.new_empty(rows, 2 * m, n), like.new_empty(rows, 2 * m, n)]
        self._vecs = like.new_empty(rows, 3, n)  # v (masked gradient), s and y of the last step
        self._dir = like.new_empty(rows, n)

    def solve(self, x: Tensor, x0: Tensor, t: Tensor, c: Tensor
              ) -> tuple[Tensor, Tensor, Tensor]:
        """Minimise every row from ``x (B, n)`` at ``c (B,)`` for images ``x0``, targets ``t``.

        Returns the final iterates ``(B, n)``, evaluations ``(B,)`` and predicted labels ``(B,)``
        at the final iterates.
        """
        s = self.s
        m = s.memory
        B, n = x.shape
        dev, dtype = x.device, x.dtype
        eps = torch.finfo(dtype).eps
        out_x = x.clone()
        out_evals = torch.zeros(B, dtype=torch.long, device=dev)
        out_pred = torch.zeros(B, dtype=torch.long, device=dev)
        if B == 0:
            return out_x, out_evals, out_pred
        buf = 0
        pairs = self._pairs[buf][:B].zero_()
        vecs = self._vecs[:B]
        gram_ss, gram_sy, gram_yy = (x.new_zeros(B, m, m) for _ in range(3))
        rho = x.new_zeros(B, m)
        gamma = torch.full((B,), math.nan, dtype=dtype, device=dev)
        pos = torch.arange(B, device=dev)
        f, g, pred = self.objective(x, x0, t, c)
        evals = torch.ones(B, dtype=torch.long, device=dev)
        live = torch.ones(B, dtype=torch.bool, device=dev)
        good = None
        head = 0  # the ring slot the next pair goes to (the oldest); the same for every row

        for k in range(s.max_iter):
            # Projected gradient; variables it leaves in place (at a bound, gradient pointing
            # out of the box) are held fixed, the two-loop runs on the others.
            v = vecs[:, 0]
            pg = torch.sub(x, g, out=v).clamp_(0.0, 1.0).sub_(x)
            converged = torch.linalg.vector_norm(pg, ord=math.inf, dim=1) <= s.pgtol
            free = pg != 0
            torch.mul(g, free, out=v)
            if good is None:
                prods = torch.bmm(pairs, vecs[:, :1].transpose(1, 2))
            else:
                prods = torch.bmm(pairs, vecs.transpose(1, 2))
            sv = prods[:, :m, 0].clone()
            yv = prods[:, m:, 0].clone()
            if good is not None:
                # Insert last step's pair (zeros where rejected) into slot `head`.
                _insert(pairs, gram_ss, gram_sy, gram_yy, rho, gamma, head, vecs[:, 1],
                        vecs[:, 2], good, prods[:, :, 1], prods[:, :, 2])
                goodf = good.to(dtype)
                sv[:, head] = torch.linalg.vecdot(vecs[:, 1], v) * goodf
                yv[:, head] = torch.linalg.vecdot(vecs[:, 2], v) * goodf
                head = (head + 1) % m
            order = [(head - 1 - j) % m for j in range(m)]
            first = torch.linalg.vector_norm(v, dim=1).clamp_min(torch.finfo(dtype).tiny)
            scale = torch.where(torch.isnan(gamma), 1.0 / first, gamma)
            coef = _two_loop(sv, yv, gram_sy, gram_yy, rho, scale, order)
            d = torch.mul(v, -scale[:, None], out=self._dir[:len(x)])
            d[:, None, :].baddbmm_(coef.neg_()[:, None, :], pairs)
            d.mul_(free)
            gd = torch.linalg.vecdot(g, d)
            bad = ~(gd < 0)
            if bool(bad.any()):
                # Not a descent direction (rounding): fall back to the scaled gradient.
                d = torch.where(bad[:, None], -v * scale[:, None], d)
                gd = torch.linalg.vecdot(g, d)

            todo = live & ~converged & (gd < 0)
            x_new, f_new, g_new, pred_new, accepted = self._line_search(
                x, f, g, pred, d, gd, x0, t, c, todo, evals, vecs[:, 1])
            s_vec = vecs[:, 1]
            y_vec = torch.sub(g_new, g, out=vecs[:, 2])
            sy = torch.linalg.vecdot(s_vec, y_vec)
            yy = torch.linalg.vecdot(y_vec, y_vec)
            # A pair with s.y <= eps * y.y is rejected for that row only.
            good = accepted & (sy > eps * yy) & (yy > 0)
            finished = live & ~accepted
            if s.ftol > 0:
                big = torch.maximum(torch.maximum(f.abs(), f_new.abs()), torch.ones_like(f))
                finished |= live & ((f - f_new) <= s.ftol * big)
            if k == s.max_iter - 1:
                finished = live.clone()
            x, f, g, pred = x_new, f_new, g_new, pred_new

            if bool(finished.any()):
                done = finished.nonzero().squeeze(1)
                out_x[pos[done]] = x[done]
                out_evals[pos[done]] = evals[done]
                out_pred[pos[done]] = pred[done]
                live &= ~finished
                n_live = int(live.sum())
                if n_live == 0:
                    break
                if n_live <= 0.75 * len(x):
                    keep = live.nonzero().squeeze(1)
                    buf = 1 - buf
                    pairs = torch.index_select(pairs, 0, keep, out=self._pairs[buf][:n_live])
                    kept_vecs = vecs[keep]
                    vecs = self._vecs[:n_live]
                    vecs.copy_(kept_vecs)
                    (pos, x, f, g, pred, x0, t, c, evals, live, good, gamma, rho, gram_ss,
                     gram_sy, gram_yy) = (
                        v[keep] for v in (pos, x, f, g, pred, x0, t, c, evals, live, good,
                                          gamma, rho, gram_ss, gram_sy, gram_yy))
        return out_x, out_evals, out_pred

    def _line_search(self, x: Tensor, f: Tensor, g: Tensor, pred: Tensor, d: Tensor,
                     gd: Tensor, x0: Tensor, t: Tensor, c: Tensor, todo: Tensor, evals: Tensor,
                     step_out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Backtrack along ``clip(x + a d, 0, 1)`` with an Armijo test on ``g.(x(a) - x)``.

        Per row: the first trial is ``a = 1``, later ones come from a safeguarded quadratic
        interpolation; only rows still searching are evaluated. Writes the accepted step
        ``x_new - x`` (0 where none) into ``step_out``.
        """
        s = self.s
        B = len(x)
        tiny = torch.finfo(x.dtype).tiny
        a = torch.ones(B, dtype=x.dtype, device=x.device)
        rows = todo.nonzero().squeeze(1)
        whole = rows.numel() == B
        if whole:
            # Every row searches: the first trial's tensors become the result directly.
            x_new = torch.add(x, d).clamp_(0.0, 1.0)
            st = torch.sub(x_new, x, out=step_out)
            dec = torch.linalg.vecdot(g, st)
            f_new, g_new, pred_new = ft, gt, pt = self.objective(x_new, x0, t, c)
            accepted = torch.zeros_like(todo)
        else:
            x_new, f_new, g_new, pred_new = x.clone(), f.clone(), g.clone(), pred.clone()
            step_out.zero_()
            accepted = torch.zeros_like(todo)
        for trial in range(s.max_linesearch):
            if trial > 0 or not whole:
                if rows.numel() == 0:
                    break
                xr = x[rows]
                xt = torch.addcmul(xr, d[rows], a[rows, None]).clamp_(0.0, 1.0)
                st = xt - xr
                dec = torch.linalg.vecdot(g[rows], st)
                ft, gt, pt = self.objective(xt, x0[rows], t[rows], c[rows])
            evals[rows] += 1
            f0 = f[rows]
            ok = (ft <= f0 + s.armijo * dec) & (dec < 0)
            if trial > 0 or not whole:
                acc = rows[ok]
                x_new[acc], f_new[acc], g_new[acc], pred_new[acc] = (
                    xt[ok], ft[ok], gt[ok], pt[ok])
                step_out[acc] = st[ok]
            accepted[rows[ok]] = True
            # Rows to try again (a zero step cannot decrease f: give up on those), with a step
            # from a safeguarded quadratic interpolation of f(x + a d) from f0, gd and ft.
            again = ~ok & (dec < 0)
            a_r, g_r = a[rows[again]], gd[rows[again]]
            curv = 2.0 * (ft[again] - f0[again] - g_r * a_r)
            a_q = -g_r * a_r * a_r / curv.clamp_min(tiny)
            a_q = torch.where(torch.isfinite(a_q), a_q, 0.5 * a_r)
            rows = rows[again]
            a[rows] = torch.minimum(torch.maximum(a_q, 0.1 * a_r), 0.5 * a_r)
        failed = todo & ~accepted
        if bool(failed.any()):
            rows = failed.nonzero().squeeze(1)
            x_new[rows], f_new[rows], g_new[rows], pred_new[rows] = (
                x[rows], f[rows], g[rows], pred[rows])
            step_out[rows] = 0.0
        return x_new, f_new, g_new, pred_new, accepted


def _insert(pairs: Tensor, gram_ss: Tensor, gram_sy: Tensor, gram_yy: Tensor, rho: Tensor,
            gamma: Tensor, slot: int, s_new: Tensor, y_new: Tensor, good: Tensor, ps: Tensor,
            py: Tensor) -> None:
    """Write the pair ``(s, y)`` into ``slot`` of every row, in place (zeros where not ``good``).

    ``ps, py (B, 2m)`` are the products of the current pairs with ``s`` and ``y``.
    """
    m = rho.shape[1]
    goodf = good.to(s_new.dtype)[:, None]
    if bool(good.all()):
        pairs[:, slot].copy_(s_new)
        pairs[:, m + slot].copy_(y_new)
    else:
        torch.mul(s_new, goodf, out=pairs[:, slot])
        torch.mul(y_new, goodf, out=pairs[:, m + slot])
    ss_col = ps[:, :m] * goodf
    yy_col = py[:, m:] * goodf
    gram_ss[:, :, slot] = ss_col
    gram_ss[:, slot, :] = ss_col
    gram_sy[:, :, slot] = py[:, :m] * goodf
    gram_sy[:, slot, :] = ps[:, m:] * goodf
    gram_yy[:, :, slot] = yy_col
    gram_yy[:, slot, :] = yy_col
    goodf = goodf[:, 0]
    ss = torch.linalg.vecdot(s_new, s_new) * goodf
    sy = torch.linalg.vecdot(s_new, y_new) * goodf
    yy = torch.linalg.vecdot(y_new, y_new) * goodf
    gram_ss[:, slot, slot] = ss
    gram_sy[:, slot, slot] = sy
    gram_yy[:, slot, slot] = yy
    one = torch.ones_like(sy)
    rho[:, slot] = torch.where(good, 1.0 / torch.where(good, sy, one), torch.zeros_like(sy))
    gamma.copy_(torch.where(good, sy / torch.where(good, yy, one), gamma))


# ----------------------------------------------------------------------------------------------
# The search over c


def _search(solve: Callable, predict: Callable, x0: Tensor, t: Tensor, c_fixed: float | None,
            s: LBFGSSettings) -> dict:
    """Run the per-image search over ``c`` (or one solve at ``c_fixed``) for one chunk.

    ``solve(start, ids, c)`` returns the final iterates, evaluations and predicted labels of rows
    ``ids``. Per-row state: ``c``, the bracket ``c_lo`` (largest success) and ``c_hi`` (smallest
    failure), ``best_x``, ``best_dist``, ``best_c``, ``todo``.
    """
    N, n = x0.shape
    dev, dtype = x0.device, x0.dtype
    best_x = x0.clone()
    best_dist = torch.full((N,), math.inf, dtype=torch.float64, device=dev)
    best_c = torch.full((N,), math.nan, dtype=torch.float64, device=dev)
    evals = torch.zeros(N, dtype=torch.long, device=dev)
    if N == 0:
        return {"x": best_x, "c": best_c, "evals": evals}
    already = predict(x0) == t
    best_dist[already] = 0.0
    best_c[already] = math.inf
    todo = ~already
    if c_fixed is not None:
        ids = todo.nonzero().squeeze(1)
        cs = torch.full((len(ids),), c_fixed, dtype=dtype, device=dev)
        x_fin, ev, _ = solve(x0[ids], ids, cs)
        best_x[ids] = x_fin
        best_c[ids] = c_fixed
        evals[ids] += ev
        return {"x": best_x, "c": best_c, "evals": evals}

    last_x = x0.clone()
    c = torch.full((N,), s.c_init, dtype=torch.float64, device=dev)
    c_lo = torch.zeros(N, dtype=torch.float64, device=dev)
    c_hi = torch.full((N,), math.inf, dtype=torch.float64, device=dev)
    for _ in range(s.search_steps):
        ids = todo.nonzero().squeeze(1)
        if ids.numel() == 0:
            break
        found = torch.isfinite(best_dist[ids])
        start = torch.where(found[:, None], best_x[ids], last_x[ids])
        x_fin, ev, pred = solve(start, ids, c[ids].to(dtype))
        evals[ids] += ev
        last_x[ids] = x_fin
        ok = pred == t[ids]
        dist = distortion(x0[ids], x_fin).to(torch.float64)
        better = ok & (dist < best_dist[ids])
        best_x[ids] = torch.where(better[:, None], x_fin, best_x[ids])
        best_dist[ids] = torch.where(better, dist, best_dist[ids])
        best_c[ids] = torch.where(better, c[ids], best_c[ids])
        c_lo[ids] = torch.where(ok, torch.maximum(c_lo[ids], c[ids]), c_lo[ids])
        c_hi[ids] = torch.where(ok, c_hi[ids], torch.minimum(c_hi[ids], c[ids]))
        lo, hi = c_lo[ids], c_hi[ids]
        has_lo, has_hi = lo > 0, torch.isfinite(hi)
        c[ids] = torch.where(has_lo & has_hi, (lo * hi).sqrt(),
                             torch.where(has_lo, lo * s.c_growth, hi / s.c_growth))
        give_up = ~has_lo & (c[ids] < s.c_floor)
        todo[ids[give_up]] = False
    failed = ~torch.isfinite(best_dist)
    best_x[failed] = last_x[failed]
    best_c[failed] = torch.where(torch.isfinite(c_hi[failed]), c_hi[failed], c[failed])
    return {"x": best_x, "c": best_c, "evals": evals}


def _assemble(parts: list[dict], images: Tensor, targets: Tensor, shape: tuple[int, ...],
              model: nn.Module, dev: torch.device, dtype: torch.dtype, settings: LBFGSSettings,
              start_time: float) -> AttackResult:
    """Concatenate chunk results, re-check success with the model, move everything to the CPU."""
    n_images = len(images)
    if parts:
        x = torch.cat([p["x"] for p in parts]).clamp(0.0, 1.0)
        cs = torch.cat([p["c"] for p in parts])
        evals = torch.cat([p["evals"] for p in parts])
    else:
        x = images.detach().to(device=dev, dtype=dtype).reshape(n_images, -1)
        cs = torch.zeros(0, dtype=torch.float64)
        evals = torch.zeros(0, dtype=torch.long)
    adv = x.reshape(n_images, *shape)
    success = torch.zeros(n_images, dtype=torch.bool)
    t = targets.detach().to(device=dev, dtype=torch.long)
    with torch.no_grad():
        for lo in range(0, n_images, settings.chunk_size):
            batch = adv[lo:lo + settings.chunk_size]
            success[lo:lo + len(batch)] = (model(batch).argmax(1) == t[lo:lo + len(batch)]).cpu()
    adv = adv.to(device="cpu", dtype=images.dtype)
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


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_settings(settings: LBFGSSettings | None) -> LBFGSSettings:
    if settings is None:
        return LBFGSSettings()
    if not isinstance(settings, LBFGSSettings):
        raise ValueError(f"settings must be an LBFGSSettings or None, got {type(settings).__name__}")
    return settings


def _check_c(c: float | None) -> float | None:
    if c is None:
        return None
    if not _is_real(c) or not math.isfinite(float(c)) or float(c) <= 0:
        raise ValueError(f"c must be None or a positive finite number, got {c!r}")
    return float(c)


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if any(module.training for module in model.modules()):
        raise ValueError("model must be in eval mode (call model.eval()): training-mode layers "
                         "such as dropout or batch norm would couple and randomise the images")


def _prepare_model(model: nn.Module, device: str | torch.device | None
                   ) -> tuple[nn.Module, torch.device, torch.dtype]:
    """Validate the model; return it on the compute device, that device and its float dtype."""
    _check_model(model)
    params = list(model.parameters()) + list(model.buffers())
    floats = [p for p in params if p.is_floating_point()]
    home = floats[0].device if floats else torch.device("cpu")
    dtype = floats[0].dtype if floats else torch.float32
    if device is None:
        dev = home
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device, got {device!r}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(dev)!r} requested but CUDA is not available")
    if any(p.device != dev for p in params):
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
    if torch.isnan(images).any():
        raise ValueError("images must not contain NaN")
    lo, hi = images.min().item(), images.max().item()
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
    if n_images and targets.min().item() < 0:
        raise ValueError(f"targets must be class indices >= 0, got {targets.min().item()}")


def _check_outputs(model: nn.Module, images: Tensor, targets: Tensor, dev: torch.device,
                   dtype: torch.dtype) -> None:
    """Run the model on one image: it must return logits ``(1, K)`` and targets be below K."""
    if len(images) == 0:
        return
    with torch.no_grad():
        logits = model(images[:1].detach().to(device=dev, dtype=dtype))
    if not isinstance(logits, Tensor) or logits.ndim != 2 or len(logits) != 1:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must map (N, *input_shape) images to logits (N, K), got {got} "
                         f"for one image")
    n_classes = logits.shape[1]
    if targets.max().item() >= n_classes:
        raise ValueError(f"targets must be in 0..{n_classes - 1} (the model has {n_classes} "
                         f"classes), got {targets.max().item()}")


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="L-BFGS attack", unit="image")

