"""The attack viewers' frames: every (image, target, c) solved, every model asked, cached.

Why: the viewers of the chapters "Blind spots" and "Transferability" let a reader step through
one search of the paper's box-constrained L-BFGS problem (section 4.1): an image, a target
label, a constant c, and which networks the result fools (section 4.3). The static book runs no
Python, so every frame is computed here beforehand (``make book`` runs the experiment
``viewer_frames``, ``experiments.viewers``), saved as an ``AttackFrames`` file under
``data/adversarial/`` and only read by the chapters. The viewers get the data, never the attack.

- ``compute``: one batched ``attacks.lbfgs`` call per c on every (image, target) pair, then
  ``assemble``.
- ``assemble``: from given adversarial images, each frame's distortion and every model's class
  probabilities (also used by the live viewer's adapter, ``display.live``).
- ``viewer_frames``: ``compute`` for the first test images, read from or written to the cache.

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1-4.3 (Figure 5, Tables 3-4).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..plumbing import cache, config
from ..plumbing.frames import (
    N_CLASSES,
    SIDE,
    AttackFrames,
    as_int,
    check_shape,
    checked_c_grid,
    checked_targets,
)
from . import attacks, data, zoo

#: Bumped when the frames' computation changes; part of the cache key.
CACHE_VERSION = 1
#: The test images the viewers show by default (the first ones).
N_IMAGES = 3


def as_images(images: Any) -> torch.Tensor:
    """``(I, 1, 28, 28)`` float on the CPU from ``(I, 1, 28, 28)`` or ``(I, 28, 28)``."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    x = x.detach().float().cpu()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, SIDE, SIDE):
        raise ValueError(f"images must have shape (N, 1, 28, 28) or (N, 28, 28), got "
                         f"{tuple(x.shape)}")
    return x


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def probabilities(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax of ``model``'s logits for ``x`` ``(N, 1, 28, 28)``: ``(N, 10)`` float32."""
    logits = model(x.to(_device_of(model)))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _check_models(models: Sequence[torch.nn.Module], model_names: Sequence[str]
                  ) -> tuple[list[torch.nn.Module], list[str]]:
    models, names = list(models), [str(n) for n in model_names]
    if not models:
        raise ValueError("need at least one model")
    if len(names) != len(models):
        raise ValueError(f"model_names must name {len(models)} models, got {len(names)}")
    return models, names


def assemble(models: Sequence[torch.nn.Module], model_names: Sequence[str], images: Any,
             labels: Any, c_grid: Sequence[float], targets: Sequence[int],
             adversarial: Any) -> AttackFrames:
    """Frames from adversarial images made elsewhere: each one's distortion, every model's answer.

    The adversarial images are clipped to [0,1] and the distortion is computed here from them,
    so it describes exactly what a viewer shows.

    Args:
        models: the attacked model first, then the models the examples are transferred to.
        model_names: one name per model.
        images: ``(I, 1, 28, 28)`` or ``(I, 28, 28)`` in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ascending positive constants.
        targets: target classes (distinct).
        adversarial: ``(I, T, C, 28, 28)`` or ``(I, T, C, 1, 28, 28)``, an array or tensor.

    Returns:
        ``AttackFrames`` with ``source == model_names[0]``.

    Raises:
        ValueError: shapes that do not line up, or a bad label, target or c grid.
    """
    models, names = _check_models(models, model_names)
    x = as_images(images)
    y = as_int("labels", labels)
    check_shape("labels", y, (len(x),))
    tg, c_arr = checked_targets(targets), checked_c_grid(c_grid)
    n_img, n_t, n_c = len(x), len(tg), len(c_arr)
    adv_t = adversarial if isinstance(adversarial, torch.Tensor) else torch.as_tensor(
        np.asarray(adversarial))
    adv_t = adv_t.detach().float().cpu()
    if adv_t.numel() != n_img * n_t * n_c * SIDE * SIDE:
        raise ValueError(f"adversarial must have shape ({n_img}, {n_t}, {n_c}, 28, 28), got "
                         f"{tuple(adv_t.shape)}")
    adv_t = adv_t.reshape(n_img, n_t, n_c, SIDE, SIDE)
    xs = x.repeat_interleave(n_t, dim=0)  # pair p = i*T + t
    adv = np.empty((n_img, n_t, n_c, SIDE, SIDE), dtype=np.float32)
    dist = np.empty((n_img, n_t, n_c), dtype=np.float32)
    probs = np.empty((n_img, n_t, n_c, len(models), N_CLASSES), dtype=np.float32)
    for k in range(n_c):
        a = adv_t[:, :, k].reshape(n_img * n_t, 1, SIDE, SIDE).clamp(0, 1)
        adv[:, :, k] = a[:, 0].reshape(n_img, n_t, SIDE, SIDE).numpy()
        d = ((a - xs) ** 2).mean(dim=(1, 2, 3)).sqrt()
        dist[:, :, k] = d.reshape(n_img, n_t).numpy()
        for m, model in enumerate(models):
            probs[:, :, k, m] = probabilities(model, a).reshape(n_img, n_t, N_CLASSES)
    return AttackFrames(originals=x[:, 0].numpy(), labels=y, c_grid=c_arr, targets=tg,
                        adversarial=adv, distortion=dist, probs=probs,
                        model_names=np.array(names), source=names[0])


def compute(models: Sequence[torch.nn.Module], model_names: Sequence[str], images: Any,
            labels: Any, c_grid: Sequence[float], targets: Sequence[int], *,
            settings: attacks.LBFGSSettings | None = None,
            device: str | torch.device | None = None) -> AttackFrames:
    """Attack every (image, target) at every c with ``attacks.lbfgs``; ask every model.

    For each c, one batched call ``attacks.lbfgs(models[0], X, Y, c=c)`` with all ``I*T``
    (image, target) pairs (``X`` ``(I*T, 1, 28, 28)``, ``Y`` ``(I*T,)``, pair ``i*T + t``): one
    solve at that fixed c, no search. Then ``assemble``.

    Args:
        models: the attacked model first, then the models to transfer to.
        model_names: one name per model.
        images: ``(I, 1, 28, 28)`` or ``(I, 28, 28)`` in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ascending positive constants.
        targets: target classes (distinct).
        settings: the attack's settings (default ``attacks.LBFGSSettings()``).
        device: where the attack runs.

    Returns:
        ``AttackFrames``; model 0 is the attacked one.
    """
    models, names = _check_models(models, model_names)
    x = as_images(images)
    tg, c_arr = checked_targets(targets), checked_c_grid(c_grid)
    xs = x.repeat_interleave(len(tg), dim=0)
    ys = torch.as_tensor(tg).long().repeat(len(x))
    adv = torch.empty(len(x), len(tg), len(c_arr), SIDE, SIDE)
    for k, c in enumerate(c_arr.tolist()):
        res = attacks.lbfgs(models[0], xs, ys, c=c, settings=settings, device=device)
        adv[:, :, k] = res.adversarial.detach().float().cpu().reshape(len(x), len(tg), SIDE, SIDE)
    return assemble(models, names, x, labels, c_arr, tg, adv)


def _model_list(source: str, models: Sequence[str] | None) -> list[str]:
    return [source] + [m for m in (models or []) if m != source]


def path(source: str, *, models: Sequence[str] | None = None, n_images: int = N_IMAGES,
         c_grid: Sequence[float], scale: str | config.Scale | None = None,
         settings: attacks.LBFGSSettings | None = None) -> Path:
    """Where ``viewer_frames`` with these arguments caches its frames.

    ``data/adversarial/frames-<source slug>-<number of models>-<key>.npz``; the key hashes each
    model's cache key (so a retrained model gets new frames), ``n_images``, the c grid, the
    attack's settings and ``CACHE_VERSION``.
    """
    sc = config.get_scale(scale)
    settings = settings or attacks.LBFGSSettings()
    names = _model_list(source, models)
    payload = {"models": [zoo.cache_key(zoo.spec(m), sc) for m in names], "n": n_images,
               "c_grid": list(c_grid), "settings": settings.as_dict(), "version": CACHE_VERSION}
    slug = zoo.cache_path(source, sc).name.rsplit("-", 1)[0]
    return config.adversarial_dir() / f"frames-{slug}-{len(names)}-{cache.key(payload)}.npz"


def viewer_frames(
    source: str,
    *,
    models: Sequence[str] | None = None,
    n_images: int = N_IMAGES,
    c_grid: Sequence[float],
    scale: str | config.Scale | None = None,
    settings: attacks.LBFGSSettings | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> AttackFrames:
    """Frames of the attack viewer (every target x every c for a few test images), cached.

    Reads the file at ``path(...)`` if it is there and readable; else computes the frames
    (``compute``, all ten targets) and saves them atomically. ``make book`` computes them before
    any page executes (the experiment ``viewer_frames``), so a chapter only reads them.

    Args:
        source: the attacked zoo model.
        models: the models whose answers each frame shows (default: just ``source``); the
            source is always first.
        n_images: the first ``n_images`` test images.
        c_grid: ascending constants, one fixed-c solve each.
        scale, settings, device, progress: as in ``advsets.load``.

    Returns:
        ``AttackFrames``.
    """
    sc = config.get_scale(scale)
    names = _model_list(source, models)
    file = path(source, models=names, n_images=n_images, c_grid=c_grid, scale=sc,
                settings=settings)
    if file.exists():
        try:
            return AttackFrames.load(file)
        except Exception as exc:  # unreadable: recompute
            warnings.warn(f"viewer frames {file} are corrupted ({exc}); recomputing",
                          stacklevel=2)
    nets = [zoo.load(m, scale=sc, device=device, progress=progress) for m in names]
    x, y = data.load_mnist("test", limit=n_images)
    frames = compute(nets, names, x, y, c_grid, list(range(N_CLASSES)), settings=settings,
                     device=device)
    frames.save(file)
    return frames


__all__ = ["CACHE_VERSION", "N_IMAGES", "as_images", "assemble", "compute", "path",
           "probabilities", "viewer_frames"]
