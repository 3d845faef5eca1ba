"""Adversarial training: FC100-100-10 trained on MNIST mixed with a refreshed pool of its own
adversarial examples.

Why: section 4.2 of Szegedy et al. reports that a 100-100-10 network reached below 1.2% test error
"by keeping a pool of adversarial examples a random subset of which is continuously replaced by
newly generated adversarial examples and which is mixed into the original training set all the
time" (1.6% with weight decay alone, about 1.3% with dropout). The paper gives no pool size,
refresh rate or schedule; ours are :class:`AdvTrainSettings`, stated in the results file and the
chapter. The paper made its pools for the outputs of every layer and trained the layers above on
them, and found the higher layers' examples the most useful; we make them on the input only, with
the book's attack (``attacks.lbfgs``, the search over ``c``).

The schedule is the zoo's for the same model, by construction: the same initialisation, Adam,
learning rate, cosine decay over the same number of steps, batch size, epochs and shuffling seed,
so the only difference from the zoo's model (the weight-decay-only baseline) is the pool. During
the clean warm-up epochs the two runs are identical to the last bit (tested).

The trained model is cached under ``data/models`` (keyed like the zoo: a hash of the settings,
the baseline's spec and the scale), read back with ``torch.load(weights_only=True)``.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.2. The book explains it in the chapter
"Back-feeding adversarial examples".
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm  # text bars on stderr, which the book build drops

from ..plumbing import cache, checks, config
from . import attacks, data, models, numerics, train, zoo

CACHE_VERSION = 1
#: The pool's random stream (sources, targets, replaced slots, samples) is seeded with the zoo
#: spec's seed plus this, so the clean minibatches keep the baseline's order.
POOL_SEED_OFFSET = 1000


@dataclass(frozen=True)
class AdvTrainSettings:
    """How adversarial examples are fed back during training (the paper gives none of this).

    Attributes:
        model: the zoo model whose architecture, weight decay and training schedule are used
            (a sigmoid MLP trained with Adam; the paper's is "FC100-100-10").
        pool_size: adversarial examples held in the pool.
        refresh_fraction: the part of the pool replaced by fresh examples at each refresh, in
            (0, 1]; the replaced slots are drawn at random.
        refreshes_per_epoch: refreshes per pass over the training set, evenly spaced.
        adv_per_step: pool examples (drawn at random) added to each minibatch of clean images.
        warmup_epochs: clean epochs before the pool is first filled (an untrained network's
            adversarial examples are noise).
        attack: the attack's settings (the book's defaults: the search over ``c``).
    """

    model: str = "FC100-100-10"
    pool_size: int = 10_000
    refresh_fraction: float = 0.1
    refreshes_per_epoch: int = 2
    adv_per_step: int = 50
    warmup_epochs: int = 1
    attack: attacks.LBFGSSettings = field(default_factory=attacks.LBFGSSettings)

    def __post_init__(self) -> None:
        checks.one_of("model", self.model, zoo.ALL)
        s = zoo.SPECS[self.model]
        if s.arch != "mlp" or s.optimizer != "adam":
            mlps = [n for n, v in zoo.SPECS.items() if v.arch == "mlp" and v.optimizer == "adam"]
            raise ValueError(f"model must be a sigmoid MLP trained with Adam, one of {mlps}, "
                             f"got {self.model!r}")
        for name in ("pool_size", "refreshes_per_epoch", "adv_per_step"):
            checks.positive_int(name, getattr(self, name))
        checks.non_negative_int("warmup_epochs", self.warmup_epochs)
        f = self.refresh_fraction
        if not checks.is_real(f) or not 0 < f <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1], got {f!r}")
        if not isinstance(self.attack, attacks.LBFGSSettings):
            raise ValueError(f"attack must be an attacks.LBFGSSettings, "
                             f"got {type(self.attack).__name__}")

    def as_dict(self) -> dict:
        """The settings as a plain dict (the results JSON records it verbatim)."""
        return asdict(self)


#: Book (and paper) scale: 10% of a 10,000-example pool replaced twice an epoch, 50 pool examples
#: beside every 100 clean images, after one clean epoch. That makes 10,000 + 77 * 1,000 = 87,000
#: attacks over the 40 epochs of FC100-100-10.
BOOK = AdvTrainSettings()
#: Smoke scale (and unit-test scales): the same schedule on a 200-example pool.
SMOKE = AdvTrainSettings(pool_size=200, refresh_fraction=0.25, refreshes_per_epoch=2,
                         adv_per_step=20)


def settings_for(scale: str | config.Scale | None = None) -> AdvTrainSettings:
    """The settings used at a scale: ``BOOK`` at book and paper scale, ``SMOKE`` otherwise."""
    return BOOK if config.get_scale(scale).name in ("book", "paper") else SMOKE


def _check_settings(settings: AdvTrainSettings | None, sc: config.Scale) -> AdvTrainSettings:
    if settings is None:
        return settings_for(sc)
    if not isinstance(settings, AdvTrainSettings):
        raise ValueError(f"settings must be an AdvTrainSettings or None, "
                         f"got {type(settings).__name__}")
    return settings


def frozen_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy without parameter gradients: what the attack sees of the current model."""
    twin = copy.deepcopy(model).eval()
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class AdversarialPool:
    """A fixed-size pool of adversarial examples, each labelled with its source image's label.

    Fresh examples are made from random training images, each with a random target among the
    nine wrong labels, by ``attacks.lbfgs`` against a frozen copy of the model as it is at that
    moment. :meth:`refresh` replaces ``round(refresh_fraction * size)`` randomly chosen slots.
    Every random choice comes from ``generator``, so the pool is reproducible.

    Attributes:
        images: ``(P, 1, 28, 28)`` adversarial examples in [0, 1] (P = 0 before :meth:`fill`).
        labels: ``(P,)`` the true labels of their source images.
        sources: ``(P,)`` indices of the source images in the training set.
        distortion: ``(P,)`` each example's distortion from its source image.
        success: ``(P,)`` whether the attack reached its target.
    """

    def __init__(self, size: int, refresh_fraction: float, *, generator: torch.Generator,
                 attack: attacks.LBFGSSettings | None = None):
        checks.positive_int("pool_size", size)
        if not checks.is_real(refresh_fraction) or not 0 < refresh_fraction <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1], got {refresh_fraction!r}")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.size = size
        self.refresh_fraction = float(refresh_fraction)
        self.generator = generator
        self.attack = attack or attacks.LBFGSSettings()
        self.images = torch.empty(0, *models.IMAGE_SHAPE)
        self.labels = torch.empty(0, dtype=torch.long)
        self.sources = torch.empty(0, dtype=torch.long)
        self.distortion = torch.empty(0)
        self.success = torch.empty(0, dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_refresh(self) -> int:
        """Examples replaced per refresh: ``round(refresh_fraction * size)``, at least one."""
        return max(1, round(self.refresh_fraction * self.size))

    def make(self, model: nn.Module, x: Tensor, y: Tensor, n: int, *,
             progress: bool = False) -> tuple[dict[str, Tensor], dict[str, float]]:
        """``n`` fresh adversarial examples of ``model`` from random images of ``(x, y)``.

        Returns:
            The examples (``images``, ``labels``, ``sources``, ``distortion``, ``success``) and
            statistics of the attack (``n``, ``seconds``, ``success``, ``distortion`` of the
            successful ones, ``evals`` per image).
        """
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"x and y must be non-empty and of the same length, "
                             f"got {len(x)} and {len(y)}")
        src = torch.randint(0, len(x), (n,), generator=self.generator)
        labels = y[src].cpu()
        targets = (labels + torch.randint(1, models.N_CLASSES, (n,), generator=self.generator)
                   ) % models.N_CLASSES
        res = attacks.lbfgs(frozen_copy(model), x[src], targets, settings=self.attack,
                            progress=progress)
        ok = res.success
        stats = {"n": float(n), "seconds": res.seconds, "success": ok.float().mean().item(),
                 "distortion": res.distortion[ok].mean().item() if ok.any() else math.nan,
                 "evals": res.evals.float().mean().item()}
        new = {"images": res.adversarial, "labels": labels, "sources": src,
               "distortion": res.distortion.float(), "success": ok}
        return new, stats

    def fill(self, model: nn.Module, x: Tensor, y: Tensor, *,
             progress: bool = False) -> dict[str, float]:
        """Fill the whole pool with fresh examples of ``model``; returns the attack's statistics."""
        new, stats = self.make(model, x, y, self.size, progress=progress)
        for name, value in new.items():
            setattr(self, name, value)
        return stats

    def refresh(self, model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Replace :attr:`n_refresh` random slots with fresh examples of ``model``.

        Returns:
            The replaced slots ``(n_refresh,)`` (distinct) and the attack's statistics.
        """
        if len(self) == 0:
            raise ValueError("the pool is empty: call fill() before refresh()")
        slots = torch.randperm(self.size, generator=self.generator)[: self.n_refresh]
        new, stats = self.make(model, x, y, len(slots))
        for name, value in new.items():
            getattr(self, name)[slots] = value
        return slots, stats

    def sample(self, k: int) -> tuple[Tensor, Tensor]:
        """``k`` examples drawn uniformly with replacement: ``(images, labels)``."""
        if len(self) == 0:
            raise ValueError("the pool is empty: call fill() before sample()")
        idx = torch.randint(0, len(self), (k,), generator=self.generator)
        return self.images[idx], self.labels[idx]


def _refresh_steps(steps_per_epoch: int, per_epoch: int) -> set[int]:
    """Steps within an epoch at which the pool is refreshed (evenly spaced, the first at 0)."""
    return {(j * steps_per_epoch) // per_epoch for j in range(per_epoch)}


@numerics.flush_subnormals()
def fit(settings: AdvTrainSettings | None = None, *, scale: str | config.Scale | None = None,
        progress: bool = True) -> tuple[models.DecayedNet, dict]:
    """Train ``settings.model`` with a refreshed pool of its own adversarial examples (no cache).

    The loop is ``train.fit_adam``'s (Adam, cosine decay to zero over all steps, the paper's
    weight decay) with the zoo spec's initialisation, epochs at this scale, batch size, learning
    rate and shuffling seed. After ``warmup_epochs`` clean epochs the pool is filled; from then on
    every step adds ``adv_per_step`` pool examples to the clean minibatch (one mean cross-entropy
    over both) and the pool is refreshed ``refreshes_per_epoch`` times an epoch, each time from
    the model as it is.

    Returns:
        The model in eval mode, and a history of plain floats and lists: per epoch ``loss``,
        ``train_error`` (clean images of the minibatches), ``monitor_error`` (test error);
        per epoch with a pool ``pool_epoch`` and ``pool_error`` (pool examples of the minibatches
        misclassified); per attack ``refresh_epoch`` (fractional epoch), ``fresh_n``,
        ``fresh_distortion``, ``fresh_success``, ``fresh_evals``, ``fresh_seconds``; and
        ``seconds``, ``attack_seconds``, ``monitor_seconds``, ``threads``, ``n_attacked``.

    Raises:
        ValueError: bad settings, or ``warmup_epochs`` not below the model's epochs at this scale.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.2.
    """
    sc = config.get_scale(scale)
    settings = _check_settings(settings, sc)
    s = zoo.spec(settings.model)
    epochs, _ = zoo.epochs_at(s, sc)
    if settings.warmup_epochs >= epochs:
        raise ValueError(f"warmup_epochs must be below the {epochs} epochs of {s.name} at scale "
                         f"{sc.name!r}, got {settings.warmup_epochs}")
    # As zoo._train: seed everything, load the data, build (which reseeds) the model.
    gen = config.seed_everything(s.seed)
    x, y = data.load_mnist(s.split, limit=sc.train_limit)
    xt, yt = data.load_mnist("test", limit=sc.test_limit)
    model = zoo.build(s)
    pool = AdversarialPool(settings.pool_size, settings.refresh_fraction,
                           generator=torch.Generator().manual_seed(s.seed + POOL_SEED_OFFSET),
                           attack=settings.attack)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=s.lr)
    steps_per_epoch = math.ceil(len(x) / s.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / (epochs * steps_per_epoch))))
    refresh_at = _refresh_steps(steps_per_epoch, settings.refreshes_per_epoch)
    h: dict = {key: [] for key in (
        "loss", "train_error", "monitor_error", "pool_epoch", "pool_error", "refresh_epoch",
        "fresh_n", "fresh_distortion", "fresh_success", "fresh_evals", "fresh_seconds")}
    attack_s = monitor_s = 0.0
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=f"{s.name} adversarial training", disable=not progress,
               leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total_loss, wrong, pool_wrong, pool_seen = 0.0, 0, 0, 0
        for step, i in enumerate(range(0, len(x), s.batch_size)):
            if epoch >= settings.warmup_epochs and step in refresh_at:
                t0 = time.perf_counter()
                if len(pool) == 0:
                    stats = pool.fill(model, x, y, progress=progress)
                else:
                    stats = pool.refresh(model, x, y)[1]
                model.train()
                attack_s += time.perf_counter() - t0
                h["refresh_epoch"].append(epoch + step / steps_per_epoch)
                for key in ("n", "distortion", "success", "evals", "seconds"):
                    h[f"fresh_{key}"].append(stats[key])
            idx = order[i : i + s.batch_size]
            xb, yb = x[idx], y[idx]
            if len(pool):
                xa, ya = pool.sample(settings.adv_per_step)
                xb, yb = torch.cat([xb, xa]), torch.cat([yb, ya])
            logits, loss = train.optimizer_step(model, opt, sched, xb, yb)
            total_loss += loss * len(idx)
            pred = logits.argmax(1)
            wrong += (pred[: len(idx)] != yb[: len(idx)]).sum().item()
            pool_wrong += (pred[len(idx):] != yb[len(idx):]).sum().item()
            pool_seen += len(yb) - len(idx)
        h["loss"].append(total_loss / len(x))
        h["train_error"].append(wrong / len(x))
        t0 = time.perf_counter()
        h["monitor_error"].append(train.error_rate(model, xt, yt))
        monitor_s += time.perf_counter() - t0
        if pool_seen:
            h["pool_epoch"].append(epoch + 1)
            h["pool_error"].append(pool_wrong / pool_seen)
        bar.set_postfix(test_err=f"{h['monitor_error'][-1]:.4f}",
                        fresh_dist=f"{h['fresh_distortion'][-1]:.4f}" if h["fresh_n"] else "-")
    h["seconds"] = time.perf_counter() - start
    h["attack_seconds"] = attack_s
    h["monitor_seconds"] = monitor_s
    h["threads"] = torch.get_num_threads()
    h["n_attacked"] = int(sum(h["fresh_n"]))
    h["epochs"] = epochs
    h["steps_per_epoch"] = steps_per_epoch
    return model.eval(), h


# ----------------------------------------------------------------------------------------------
# The cache, like the zoo's


def cache_key(settings: AdvTrainSettings, scale: config.Scale) -> str:
    """12 hex digits of sha256 over the settings, the baseline's zoo key and ``CACHE_VERSION``."""
    payload = {"settings": settings.as_dict(), "scale": scale.as_dict(),
               "zoo": zoo.cache_key(zoo.spec(settings.model), scale), "version": CACHE_VERSION}
    return cache.key(payload)


def cache_path(settings: AdvTrainSettings | None = None,
               scale: str | config.Scale | None = None) -> Path:
    """Where the adversarially trained weights for ``settings`` at ``scale`` live."""
    sc = config.get_scale(scale)
    settings = _check_settings(settings, sc)
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", settings.model).strip("_")
    return config.models_dir() / f"advtrain-{slug}-{sc.name}-{cache_key(settings, sc)}.pt"


_MEMO: dict[str, dict] = {}


def _entry(settings: AdvTrainSettings | None, scale: str | config.Scale | None, retrain: bool,
           progress: bool) -> dict:
    sc = config.get_scale(scale)
    settings = _check_settings(settings, sc)
    key = cache_key(settings, sc)
    path = cache_path(settings, sc)
    if not retrain and key in _MEMO:
        return _MEMO[key]

    def fits(entry: dict) -> None:  # a stale file whose weights no longer fit the model
        zoo.build(zoo.spec(settings.model)).load_state_dict(entry["state_dict"])

    def make() -> dict:
        model, history = fit(settings, scale=sc, progress=progress)
        return {"name": f"{settings.model} (adversarial training)",
                "settings": json.dumps(settings.as_dict()), "scale": sc.name,
                "state_dict": numerics.without_subnormals(
                    {k: v.detach().cpu() for k, v in model.state_dict().items()}),
                "history": history, "torch": str(torch.__version__)}

    entry = cache.read_or_make(path, key, make, check=fits, what="model cache",
                               redo="retraining", fresh=retrain)
    _MEMO[key] = entry
    return entry


def load(settings: AdvTrainSettings | None = None, *, scale: str | config.Scale | None = None,
         retrain: bool = False, progress: bool = True) -> nn.Module:
    """The adversarially trained model in eval mode, trained and cached on first use.

    Args:
        settings: :class:`AdvTrainSettings` (default: :func:`settings_for` the scale).
        scale: "smoke", "book" or "paper" (default: ``$INTRIGUING_SCALE`` or "book").
        retrain: ignore any cache and train again.
        progress: tqdm bars while training.

    Returns:
        An ``nn.Module`` in eval mode (CPU, no parameter gradients) taking ``(N, 1, 28, 28)``
        pixels in [0,1] and returning logits.
    """
    sc = config.get_scale(scale)
    settings = _check_settings(settings, sc)
    entry = _entry(settings, sc, retrain, progress)
    model = zoo.build(zoo.spec(settings.model))
    model.load_state_dict(numerics.without_subnormals(entry["state_dict"]))
    return frozen_copy(model)


def history(settings: AdvTrainSettings | None = None, *,
            scale: str | config.Scale | None = None) -> dict:
    """The training history stored with the cached model (training it first if needed)."""
    return copy.deepcopy(_entry(settings, scale, False, True)["history"])


def is_cached(settings: AdvTrainSettings | None = None, *,
              scale: str | config.Scale | None = None) -> bool:
    """Whether a cache file for ``settings`` at ``scale`` exists (it is not opened)."""
    return cache_path(settings, scale).exists()


# ----------------------------------------------------------------------------------------------
# The comparison with weight decay alone

#: Test images attacked to measure each model's average minimum distortion (at most the scale's
#: ``attack_limit``).
N_EVAL = 1000


def _distortion_stats(res: dict[str, Tensor]) -> dict[str, float | None]:
    ok = res["success"]
    d = res["distortion"][ok]
    return {"distortion": d.mean().item() if ok.any() else None,
            "distortion_median": d.median().item() if ok.any() else None,
            "success": ok.float().mean().item(),
            "evals": res["evals"].float().mean().item()}


def compare(scale: str | config.Scale | None = None, *,
            settings: AdvTrainSettings | None = None, n_eval: int = N_EVAL,
            progress: bool = True) -> dict:
    """Adversarial training against weight decay alone: errors, distortion, curves and costs.

    The baseline is the zoo's ``settings.model`` (trained with the same schedule and seed, minus
    the pool); both models are loaded from their caches, trained on first use. Both are attacked
    on the first ``n_eval`` test images (capped by the scale's ``attack_limit``) with the same
    random targets (``advsets.random_targets``) and the same attack, the search over ``c``; the
    baseline's set is ``advsets``' cached one. Each model is also fed the other's adversarial
    examples (error against the true labels), and the two models' test predictions are compared
    pairwise (an exact McNemar test on the images exactly one of them gets wrong).

    Returns:
        A dict of plain values: ``models`` (per model: ``train_error``, ``test_error``,
        ``distortion`` (mean over successful examples), ``distortion_median``, ``success``,
        ``evals``, ``error_on_other_adversarial``), ``paired``, ``curves``, ``cost_seconds``,
        ``settings``, ``n_eval``, ``n_train``, ``n_test``, ``baseline_key``, ``cache_key``.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.2.
    """
    from scipy.stats import binomtest

    from . import advsets

    sc = config.get_scale(scale)
    settings = _check_settings(settings, sc)
    checks.positive_int("n_eval", n_eval)
    s = zoo.spec(settings.model)
    # Adversarial training runs on the CPU (``fit``), so the baseline is compared there too.
    nets = {"weight decay": zoo.load(settings.model, scale=sc, device="cpu", progress=progress),
            "adversarial training": load(settings, scale=sc, progress=progress)}
    hists = {"weight decay": zoo.history(settings.model, scale=sc)["train"],
             "adversarial training": history(settings, scale=sc)}
    start = time.perf_counter()
    x, y = data.load_mnist(s.split, limit=sc.train_limit)
    xt, yt = data.load_mnist("test", limit=sc.test_limit)
    n = min(n_eval, sc.attack_limit or n_eval)
    t_load = time.perf_counter()
    base_set = advsets.load(settings.model, split="test", limit=n, scale=sc,
                            settings=settings.attack, progress=progress)
    t_load = time.perf_counter() - t_load
    xe, targets = base_set["images"], base_set["targets"]
    res = attacks.lbfgs(nets["adversarial training"], xe, targets, settings=settings.attack,
                        progress=progress)
    sets = {"weight decay": base_set,
            "adversarial training": {"adversarial": res.adversarial, "success": res.success,
                                     "distortion": res.distortion, "evals": res.evals,
                                     "seconds": res.seconds}}
    ye = base_set["labels"]
    out: dict[str, dict] = {}
    for name, net in nets.items():
        other = sets["adversarial training" if name == "weight decay" else "weight decay"]
        out[name] = {"train_error": train.error_rate(net, x, y),
                     "test_error": train.error_rate(net, xt, yt),
                     **_distortion_stats(sets[name]),
                     "error_on_other_adversarial": train.error_rate(net, other["adversarial"], ye)}
    with torch.no_grad():
        wrong = {k: net(xt).argmax(1) != yt for k, net in nets.items()}
    only_base = int((wrong["weight decay"] & ~wrong["adversarial training"]).sum())
    only_adv = int((~wrong["weight decay"] & wrong["adversarial training"]).sum())
    p = binomtest(only_base, only_base + only_adv, 0.5).pvalue if only_base + only_adv else 1.0
    eval_s = time.perf_counter() - start
    adv_h = hists["adversarial training"]
    base_h = hists["weight decay"]
    curves = {
        "weight decay": {"epoch": list(range(1, len(base_h["monitor_error"]) + 1)),
                         "test_error": base_h["monitor_error"],
                         "train_error": base_h["train_error"], "loss": base_h["loss"]},
        "adversarial training": {
            "epoch": list(range(1, len(adv_h["monitor_error"]) + 1)),
            "test_error": adv_h["monitor_error"], "train_error": adv_h["train_error"],
            "loss": adv_h["loss"], "pool_epoch": adv_h["pool_epoch"],
            "pool_error": adv_h["pool_error"], "refresh_epoch": adv_h["refresh_epoch"],
            "fresh_distortion": adv_h["fresh_distortion"],
            "fresh_success": adv_h["fresh_success"], "fresh_evals": adv_h["fresh_evals"]}}
    base_train_s = float(zoo.history(settings.model, scale=sc)["seconds"])
    cost = {"baseline_training": base_train_s,
            "adversarial_training": float(adv_h["seconds"]),
            "adversarial_training_attacks": float(adv_h["attack_seconds"]),
            "adversarial_training_test_monitor": float(adv_h["monitor_seconds"]),
            "adversarial_training_sgd": float(adv_h["seconds"] - adv_h["attack_seconds"]
                                              - adv_h["monitor_seconds"]),
            "baseline_distortion_attack": float(base_set["seconds"]),
            "adversarial_distortion_attack": float(res.seconds),
            # the rest is this call's own time (the adversarial attack included)
            "evaluation": eval_s - t_load}
    # Every piece once: training both models, both distortion attacks, the rest of the evaluation.
    cost["total"] = (base_train_s + cost["adversarial_training"]
                     + cost["baseline_distortion_attack"] + cost["evaluation"])
    return {"models": out,
            "paired": {"test": "exact McNemar (two-sided binomial test on discordant images)",
                       "only_weight_decay_wrong": only_base,
                       "only_adversarial_training_wrong": only_adv, "p_value": float(p)},
            "curves": curves, "cost_seconds": cost, "settings": settings.as_dict(),
            "n_eval": len(xe), "n_train": len(x), "n_test": len(xt),
            "epochs": int(adv_h["epochs"]), "steps_per_epoch": int(adv_h["steps_per_epoch"]),
            "n_attacked_in_training": int(adv_h["n_attacked"]),
            "training_threads": int(adv_h["threads"]),
            "baseline": {"model": settings.model, "zoo_key": zoo.cache_key(s, sc),
                         "spec": {k: v for k, v in s.as_dict().items() if k != "description"}},
            "cache_key": cache_key(settings, sc)}
