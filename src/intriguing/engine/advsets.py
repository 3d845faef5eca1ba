"""Adversarial sets: each zoo model attacked once per attacked set, cached under ``data/``.

Why: Table 1's distortion column, Tables 2 and 4 and the transfer curves all feed the same
adversarial examples to many models. Attacking 10,000 images costs about a minute per model;
doing it once and caching the set (keyed like the model cache: the model's cache key, the attacked
split and size, the target seed and the attack's settings) keeps every chapter fast and makes
all of them use the same examples.

The attack viewers' frames (``viewer_frames``) are computed and cached by ``engine.frames``; the
name is re-exported here for the chapters that call ``advsets.viewer_frames``.

Targets are drawn uniformly among the nine labels other than the true one, from a fixed seed:
the paper does not say how it chose its target labels (section 4.1).

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1 and 4.3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..plumbing import cache, checks, config
from . import attacks, data, zoo
from .frames import viewer_frames as viewer_frames

CACHE_VERSION = 1
TARGET_SEED = 0


def random_targets(labels: torch.Tensor, seed: int = TARGET_SEED) -> torch.Tensor:
    """A target per image, uniform over the nine classes other than its label ``(N,)``."""
    if labels.ndim != 1 or labels.dtype != torch.long:
        raise ValueError(
            f"labels must be a 1-D long tensor, got {labels.dtype} {tuple(labels.shape)}")
    gen = torch.Generator().manual_seed(seed)
    return (labels + torch.randint(1, 10, labels.shape, generator=gen)) % 10


def set_key(model: str, split: str, limit: int | None, scale: config.Scale,
            settings: attacks.LBFGSSettings, seed: int, c: float | None = None) -> str:
    """12 hex digits identifying an adversarial set (``c``: a fixed-c set, else the search)."""
    payload = {"model": zoo.cache_key(zoo.spec(model), scale), "split": split, "limit": limit,
               "seed": seed, "settings": settings.as_dict(), "version": CACHE_VERSION}
    if c is not None:
        payload["c"] = float(c)
    return cache.key(payload)


def _path(model: str, split: str, scale: config.Scale, key: str, c: float | None = None) -> Path:
    slug = zoo.cache_path(model, scale).name.rsplit("-", 1)[0]
    tag = "" if c is None else f"c{float(c):.3g}-"
    return config.adversarial_dir() / f"{slug}-{split}-{tag}{key}.pt"


def _cached(path: Path, key: str, x: torch.Tensor, y: torch.Tensor,
            make: Callable[[], dict]) -> dict[str, torch.Tensor | float]:
    """The entry stored at ``path`` if it is readable and matches ``key`` and ``x``; else
    ``make()``, stored atomically. ``images`` and ``labels`` are added on return."""
    def same_size(entry: dict) -> None:
        if len(entry["adversarial"]) != len(x):
            raise ValueError(f"{len(entry['adversarial'])} images, expected {len(x)}")

    entry = cache.read_or_make(path, key, make, check=same_size, what="adversarial set",
                               redo="recomputing")
    entry["images"], entry["labels"] = x, y
    return entry


def load(
    model: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    scale: str | config.Scale | None = None,
    settings: attacks.LBFGSSettings | None = None,
    seed: int = TARGET_SEED,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor | float]:
    """The adversarial set of ``model`` on ``split`` (made and cached on first use).

    Args:
        model: a zoo name.
        split: the attacked split (default: the scale's ``attack_split``: "test" at book scale,
            "train" at paper scale).
        limit: attack the first ``limit`` images (default: the scale's ``attack_limit``).
        scale: "smoke", "book" or "paper".
        settings: the attack's settings (default ``attacks.LBFGSSettings()``).
        seed: the target seed.
        device: where the attack runs.
        progress: a tqdm bar while attacking.

    Returns:
        A dict of CPU tensors: ``images`` and ``adversarial`` ``(N, 1, 28, 28)``, ``labels``,
        ``targets``, ``success``, ``distortion``, ``c``, ``evals`` ``(N,)``, and ``seconds``
        (the time the attack took when it was made).
    """
    return _attacked_set(model, None, split, limit, scale, settings, seed, device, progress)


def _attack(model: str, split: str, x: torch.Tensor, y: torch.Tensor, sc: config.Scale,
            settings: attacks.LBFGSSettings, seed: int, c: float | None,
            device: str | torch.device | None, progress: bool) -> dict:
    net = zoo.load(model, scale=sc, device=device, progress=progress)
    targets = random_targets(y, seed)
    start = time.perf_counter()
    res = attacks.lbfgs(net, x, targets, c=c, settings=settings, device=device,
                        progress=progress)
    return {"model": model, "split": split, "targets": targets,
            "adversarial": res.adversarial, "success": res.success,
            "distortion": res.distortion, "c": res.c, "evals": res.evals,
            "seconds": time.perf_counter() - start}


def fixed_c(
    model: str,
    c: float,
    *,
    split: str | None = None,
    limit: int | None = None,
    scale: str | config.Scale | None = None,
    settings: attacks.LBFGSSettings | None = None,
    seed: int = TARGET_SEED,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor | float]:
    """One solve at the fixed constant ``c`` for every image of a set (no search), cached.

    Why: the transfer curves (``experiments.transferability.transfer_curves``) ask how transfer
    grows with the size of the perturbation. One solve of the paper's problem at a fixed ``c``
    per image (``attacks.lbfgs(..., c=c)``) gives a set whose perturbations all share one trade-off
    between distortion and loss; a grid of ``c`` gives a family of sets from large to tiny
    perturbations. Each set is cached like ``load``'s (the key adds ``c``), so a rebuild never
    attacks again. The targets are ``load``'s (``random_targets`` with ``seed``).

    Args:
        model: a zoo name.
        c: the constant, a positive finite number.
        split, limit, scale, settings, seed, device, progress: as in ``load``.

    Returns:
        ``load``'s dict; ``success`` says which images reached their target at this ``c``.

    Raises:
        ValueError: ``c`` is not a positive finite number, or ``model`` is not a zoo name.

    References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1 and 4.3.
    """
    return _attacked_set(model, checks.penalty_c(c), split, limit, scale, settings, seed, device,
                         progress)


def _attacked_set(model: str, c: float | None, split: str | None, limit: int | None,
                  scale: str | config.Scale | None, settings: attacks.LBFGSSettings | None,
                  seed: int, device: str | torch.device | None, progress: bool) -> dict:
    """``load`` (``c`` None: the search over c) and ``fixed_c``: resolve the scale's defaults,
    then read the cached set or attack and cache it."""
    sc = config.get_scale(scale)
    split = split or sc.attack_split
    limit = sc.attack_limit if limit is None else limit
    settings = settings or attacks.LBFGSSettings()
    key = set_key(model, split, limit, sc, settings, seed, c=c)
    x, y = data.load_mnist(split, limit=limit)
    return _cached(_path(model, split, sc, key, c), key, x, y,
                   lambda: _attack(model, split, x, y, sc, settings, seed, c, device, progress))
