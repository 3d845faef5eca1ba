"""Adversarial sets: each zoo model attacked once per attacked set, cached under ``data/``.

Why: Table 1's distortion column, Tables 2 and 4 and the transfer curves all feed the same
adversarial examples to many models. Attacking 10,000 images costs about a minute per model;
doing it once and caching the set (keyed like the model cache: the model's cache key, the attacked
split and size, the target seed and the attack's settings) keeps every chapter fast and makes
all of them use the same examples.

The attack viewers' frames (``viewer_frames``) are computed and cached by ``engine.frames``; the
name is re-exported here for the chapters that call ``advsets.viewer_frames``.

Targets are drawn uniformly among the nine labels other than the true one, from a fixed seed:
the paper does not say how it chose its target labels (section 4.1). Since a reader could assume
other rules, ``every_target`` attacks the first images of a set toward each of their nine wrong
labels (one cached set per model), and ``pick_targets`` reduces that (image, target) table to one
of the rules in ``RULES``: ``random`` (the draw above), ``every`` (all nine), ``easiest`` /
``hardest`` (per image the target with the smallest / largest distortion found) and
``untargeted`` (any wrong label). Untargeted is the closest successful example over the nine
targeted searches, so it equals ``easiest`` by construction: the closest point the model assigns
to *some* wrong label is the closest point it assigns to one particular wrong label, so the
untargeted minimum is the smallest of the nine targeted minima. (A separate untargeted
objective, e.g. ``-log(1 - p_true)``, would be a different heuristic for the same minimum, not a
different quantity; the paper's attack is targeted.)

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1 and 4.3.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..plumbing import cache, checks, config
from . import attacks, data, zoo
from .frames import viewer_frames as viewer_frames

CACHE_VERSION = 1
TARGET_SEED = 0
#: The target rules a reader of Table 1 could assume (the module docstring defines each).
RULES: tuple[str, ...] = ("random", "every", "easiest", "hardest", "untargeted")
#: Wrong labels per image: MNIST's ten classes less the true one.
N_WRONG = 9


def _check_labels(labels: torch.Tensor) -> None:
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.dtype != torch.long:
        got = (f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor)
               else type(labels).__name__)
        raise ValueError(f"labels must be a 1-D long tensor, got {got}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) > N_WRONG):
        raise ValueError(f"labels must be in 0..{N_WRONG}, got values in "
                         f"{int(labels.min())}..{int(labels.max())}")


def random_targets(labels: torch.Tensor, seed: int = TARGET_SEED) -> torch.Tensor:
    """A target per image, uniform over the nine classes other than its label ``(N,)``."""
    _check_labels(labels)
    gen = torch.Generator().manual_seed(seed)
    return (labels + torch.randint(1, 10, labels.shape, generator=gen)) % 10


def wrong_labels(labels: torch.Tensor) -> torch.Tensor:
    """The nine labels other than each image's, in ascending order ``(N, 9)``.

    Column ``j`` of row ``i`` is the target of the every-target set's row ``9 i + j``
    (``every_rows``); ``target - (target > label)`` maps a target back to its column.
    """
    _check_labels(labels)
    k = torch.arange(N_WRONG)[None, :]
    return k + (k >= labels[:, None]).long()


def every_rows(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image repeated nine times with its nine wrong labels: one attack call's inputs.

    Args:
        images: ``(N, 1, 28, 28)``.
        labels: ``(N,)`` their true labels.

    Returns:
        ``(9 N, 1, 28, 28)`` images and ``(9 N,)`` targets: row ``9 i + j`` is image ``i``
        attacked toward ``wrong_labels(labels)[i, j]``, so an ``(9 N,)`` result reshaped to
        ``(N, 9)`` lines up with ``wrong_labels``.
    """
    _check_labels(labels)
    if not isinstance(images, torch.Tensor) or len(images) != len(labels):
        raise ValueError(f"images must be a tensor with one row per label ({len(labels)}), got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else images}")
    return images.repeat_interleave(N_WRONG, 0), wrong_labels(labels).reshape(-1)


def _check_table(name: str, table: torch.Tensor, dtype: torch.dtype | None = None) -> None:
    if not isinstance(table, torch.Tensor) or table.ndim != 2 or table.shape[1] != N_WRONG \
            or (dtype is not None and table.dtype != dtype) \
            or (dtype is None and not table.is_floating_point()):
        got = (f"{table.dtype} {tuple(table.shape)}" if isinstance(table, torch.Tensor)
               else type(table).__name__)
        want = "bool" if dtype == torch.bool else "floating-point"
        raise ValueError(f"{name} must be a {want} tensor of shape (N, {N_WRONG}), got {got}")


def pick_targets(distortion: torch.Tensor, rule: str, *, success: torch.Tensor | None = None,
                 labels: torch.Tensor | None = None, seed: int = TARGET_SEED) -> torch.Tensor:
    """Which of each image's nine (image, target) examples a target rule keeps.

    Why: the paper's Table 1 averages "minimum distortions" without saying toward which target
    (section 4.1); each rule a reader could assume is a reduction of the every-target table.
    ``easiest`` keeps the target with the smallest distortion among those reached; ``hardest``
    the largest, and a target the search did not reach counts as the hardest (its minimum
    distortion is larger than anything found), so the image counts as a failure under that
    rule; ``untargeted`` is ``easiest`` (see the module docstring); ``random`` keeps the target
    ``random_targets(labels, seed)`` drew, ``every`` all nine.

    Args:
        distortion: ``(N, 9)`` float, column ``j`` toward ``wrong_labels(labels)[:, j]``.
        rule: one of ``RULES``.
        success: ``(N, 9)`` bool, which examples reached their target (default: all did).
        labels: ``(N,)`` true labels; needed by ``random`` only.
        seed: ``random``'s target seed.

    Returns:
        ``(N, 9)`` bool: one ``True`` per row (all nine for ``every``).

    Raises:
        ValueError: naming ``rule`` (not one of ``RULES``), ``distortion``, ``success`` or
            ``labels`` (wrong shape or dtype, or missing for ``random``).

    References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1 and 4.3 (Table 1).
    """
    checks.one_of("rule", rule, RULES)
    _check_table("distortion", distortion)
    if success is None:
        success = torch.ones(distortion.shape, dtype=torch.bool)
    _check_table("success", success, torch.bool)
    if success.shape != distortion.shape:
        raise ValueError(f"success must have distortion's shape {tuple(distortion.shape)}, got "
                         f"{tuple(success.shape)}")
    n = len(distortion)
    if rule == "every":
        return torch.ones(n, N_WRONG, dtype=torch.bool)
    if rule == "random":
        if labels is None:
            raise ValueError("labels must be given for rule 'random' (its targets are drawn "
                             "from them)")
        _check_labels(labels)
        if len(labels) != n:
            raise ValueError(f"labels must have one entry per row of distortion ({n}), got "
                             f"{len(labels)}")
        t = random_targets(labels, seed)
        col = t - (t > labels).long()
    else:
        reached = torch.where(success, distortion.double(), math.inf)
        if rule == "hardest":
            col = reached.argmax(1)
        else:  # easiest, untargeted
            col = reached.argmin(1)
    mask = torch.zeros(n, N_WRONG, dtype=torch.bool)
    mask[torch.arange(n), col] = True
    return mask


def rule_summary(distortion: torch.Tensor, success: torch.Tensor, rule: str, *,
                 keep: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                 seed: int = TARGET_SEED) -> dict[str, float | int | None]:
    """Mean distortion and success rate of an every-target table under one rule.

    Args:
        distortion, success, rule, labels, seed: as for ``pick_targets``.
        keep: ``(N,)`` bool, the images to average over (e.g. those the model classifies
            correctly, the paper's protocol); default all.

    Returns:
        ``distortion``: the mean over the kept images' chosen examples that reached their
        target (None if none did); ``success``: the share of chosen examples that did;
        ``n_images``: kept images; ``n_examples``: chosen examples.
    """
    mask = pick_targets(distortion, rule, success=success, labels=labels, seed=seed)
    if keep is not None:
        if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool \
                or keep.shape != (len(distortion),):
            raise ValueError(f"keep must be a bool tensor of shape ({len(distortion)},)")
        mask &= keep[:, None]
    chosen = mask.sum().item()
    ok = mask & success
    return {"distortion": distortion[ok].double().mean().item() if ok.any() else None,
            "success": ok.sum().item() / chosen if chosen else None,
            "n_images": int(mask.any(1).sum()), "n_examples": int(chosen)}


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


def every_target(
    model: str,
    *,
    n: int | None = None,
    split: str | None = None,
    scale: str | config.Scale | None = None,
    settings: attacks.LBFGSSettings | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict[str, torch.Tensor | float]:
    """The first ``n`` images of a split, each attacked toward each of its nine wrong labels.

    Why: the paper does not say toward which target it measured Table 1's distortions
    (section 4.1); this set holds every (image, target) example, and ``pick_targets`` /
    ``rule_summary`` reduce it to any rule of ``RULES``. The ``9 n`` examples are one batched
    call of ``attacks.lbfgs`` (rows laid out by ``every_rows``) with the same settings as
    ``load``; the set is cached like ``load``'s (its own key and file, ``-every-`` in the name).

    Args:
        model: a zoo name.
        n: the number of images (default: the scale's ``attack_limit``, else all).
        split, scale, settings, device, progress: as in ``load``.

    Returns:
        A dict of CPU tensors: ``images`` ``(n, 1, 28, 28)``, ``labels`` ``(n,)``, ``targets``
        ``(n, 9)`` (``wrong_labels``), ``adversarial`` ``(n, 9, 1, 28, 28)``, ``success``,
        ``distortion``, ``c``, ``evals`` ``(n, 9)``, and ``seconds`` (the attack's time).

    Raises:
        ValueError: ``n`` is not a positive int, or ``model`` is not a zoo name.

    References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1 and 4.3 (Table 1).
    """
    checks.positive_int("n", n, allow_none=True)
    sc = config.get_scale(scale)
    split = split or sc.attack_split
    n = sc.attack_limit if n is None else n
    settings = settings or attacks.LBFGSSettings()
    key = cache.key({"model": zoo.cache_key(zoo.spec(model), sc), "split": split, "limit": n,
                     "targets": "every", "settings": settings.as_dict(),
                     "version": CACHE_VERSION})
    slug = zoo.cache_path(model, sc).name.rsplit("-", 1)[0]
    path = config.adversarial_dir() / f"{slug}-{split}-every-{key}.pt"
    x, y = data.load_mnist(split, limit=n)

    def make() -> dict:
        net = zoo.load(model, scale=sc, device=device, progress=progress)
        xs, ts = every_rows(x, y)
        start = time.perf_counter()
        res = attacks.lbfgs(net, xs, ts, settings=settings, device=device, progress=progress)
        table = (len(x), N_WRONG)
        return {"model": model, "split": split, "targets": ts.reshape(table),
                "adversarial": res.adversarial.reshape(*table, *x.shape[1:]),
                "success": res.success.reshape(table), "distortion": res.distortion.reshape(table),
                "c": res.c.reshape(table), "evals": res.evals.reshape(table),
                "seconds": time.perf_counter() - start}

    return _cached(path, key, x, y, make)
