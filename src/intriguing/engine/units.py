"""Property 1: activations of a layer, the images that maximise a direction, and their coherence.

Why: Szegedy et al. (2014, section 3) look at the images x of a held-out set I that maximise
<phi(x), v> for a natural basis vector v = e_i (one unit of a layer) and for a random direction v,
and find both sets equally "semantically coherent": the space, not the unit, carries the meaning.
The paper judges coherence by eye. This module makes it a measurement:

- ``activations`` records phi(x) of a named layer with a forward hook;
- ``top_k`` finds the k images of I with the largest <phi(x), v>, for many v in one matmul;
- ``label_purity`` and ``mean_pairwise_cosine`` score a top-k set: the share of its most common
  true label, and how alike its images look to an *independent* model (a different network of
  the zoo, so that the probed network does not grade itself);
- ``compare`` scores every unit of a layer, as many random directions, and as many random sets
  of k images (the floor), with bootstrap confidence intervals and a Mann-Whitney U test of
  units against directions.

The experiment ``experiments.coherence.units`` writes the comparison to
``data/results/units.json``; the chapters "Semantic units" and "Random directions" show it, and
``display.unit_viewers`` draws the top-k sets ``strip_sets`` and ``Ranker`` compute.

References: Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199,
section 3 (Figures 1-2 on MNIST).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..plumbing import checks
from . import models

#: The measures ``compare`` reports, and its groups of top-k sets.
MEASURES = ("purity", "cosine")
GROUPS = ("units", "directions", "random")
DIFFERENCE = "units - directions"


# --------------------------------------------------------------------------------------------
# Activations


def layer_names(model: nn.Module) -> list[str]:
    """The layers of a zoo model whose activations ``activations`` can record.

    A ``SigmoidMLP`` offers its hidden layers ``act1``, ``act2``, ...; the ``ConvNet`` its last
    feature layer ``feat`` (the layer the paper's Figures 1-2 probe on MNIST); AE400-10 its
    autoencoder units ``act``; any other ``DecayedNet`` its ``nn.Sigmoid``/``nn.ReLU`` layers.
    """
    if isinstance(model, models.ConvNet):
        return ["feat"]
    body = getattr(model, "body", None)
    if not isinstance(body, nn.Sequential):
        return []
    return [name for name, mod in body.named_children() if isinstance(mod, (nn.Sigmoid, nn.ReLU))]


@torch.no_grad()
def activations(model: nn.Module, layer: str, images: torch.Tensor, *,
                batch_size: int = 1000) -> torch.Tensor:
    """phi(x): the output of ``model.body.<layer>`` for every image, flattened.

    Args:
        model: a zoo model (its layers live in ``model.body``), in eval mode.
        layer: one of ``layer_names(model)``, e.g. "act2" or "feat".
        images: ``(N, 1, 28, 28)`` pixels in [0,1].
        batch_size: images per forward pass.

    Returns:
        float32 ``(N, D)`` on the CPU, D the layer's number of units.

    Raises:
        ValueError: ``layer`` is not a probe layer of this model (the message lists the valid
            names), or ``batch_size`` is not positive, or ``images`` has the wrong shape.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 3.
    """
    valid = layer_names(model)
    if layer not in valid:
        raise ValueError(f"layer must be one of {valid} for {type(model).__name__}, "
                         f"got {layer!r}")
    checks.positive_int("batch_size", batch_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != models.IMAGE_SHAPE:
        raise ValueError(f"images must have shape (N, 1, 28, 28), got {tuple(images.shape)}")
    module = getattr(model.body, layer)
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = module.register_forward_hook(
        lambda _m, _inp, out: captured.append(out.detach().flatten(1).float().cpu()))
    try:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device))
    finally:
        hook.remove()
    return torch.cat(captured) if captured else torch.empty(0, 0)


# --------------------------------------------------------------------------------------------
# Directions


def unit_direction(dim: int, i: int) -> torch.Tensor:
    """e_i: the natural basis vector of unit ``i`` in a ``dim``-unit layer, float32 ``(dim,)``."""
    checks.positive_int("dim", dim)
    checks.int_in("i", i, 0, dim - 1)
    e = torch.zeros(dim)
    e[i] = 1.0
    return e


def random_directions(dim: int, n: int, seed: int) -> torch.Tensor:
    """``n`` random unit vectors, float32 ``(n, dim)``: seeded Gaussians, each normalised.

    A normalised standard Gaussian is uniform on the sphere, the paper's "random direction".
    """
    checks.positive_int("dim", dim)
    checks.positive_int("n", n)
    gen = torch.Generator().manual_seed(checks.non_negative_int("seed", seed))
    v = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return (v / v.norm(dim=1, keepdim=True)).float()


def random_rotation(dim: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix, float64 ``(dim, dim)``: QR of a seeded Gaussian, signs fixed.

    Multiplying Q's columns by the signs of R's diagonal makes the draw uniform (Haar) over the
    orthogonal group. Its rows are a random orthonormal basis: the "rotated units" of the
    chapter's argument that a network's behaviour cannot single out the natural basis.
    """
    checks.positive_int("dim", dim)
    gen = torch.Generator().manual_seed(checks.non_negative_int("seed", seed))
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    return q * signs


# --------------------------------------------------------------------------------------------
# Top-k


def _finite_2d(name: str, value: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(value)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must hold finite numbers (found NaN or inf)")
    return t


def top_k(acts: torch.Tensor, direction: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` rows of ``acts`` with the largest <phi(x), v>, best first.

    All directions are scored in one matmul, ``(N, D) @ (D, n)``, in float64; a stable
    descending sort then orders each column, so ties go to the smaller image index (a dead ReLU
    unit, zero on every image, gives the first k images, always the same ones).

    Args:
        acts: ``(N, D)`` activations of the held-out set I.
        direction: ``(D,)`` one direction, or ``(n, D)`` many.
        k: how many images per direction, 1 <= k <= N.

    Returns:
        int64 ``(k,)`` for one direction, ``(n, k)`` for many.

    Raises:
        ValueError: naming ``k``, ``direction`` or ``acts`` (wrong size, NaN/inf).

    References: Szegedy et al. 2014, arXiv:1312.6199, section 3 (x' = argmax <phi(x), v>).
    """
    acts = _finite_2d("acts", acts)
    n_img, dim = acts.shape
    v = torch.as_tensor(direction)
    single = v.ndim == 1
    v2 = v[None] if single else v
    if v2.ndim != 2 or v2.shape[1] != dim:
        raise ValueError(f"direction must have shape ({dim},) or (n, {dim}) to match acts "
                         f"(N, {dim}), got {tuple(v.shape)}")
    if not torch.isfinite(v2).all():
        raise ValueError("direction must hold finite numbers (found NaN or inf)")
    checks.int_in("k", k, 1, n_img)
    scores = acts.double() @ v2.double().T  # (N, n)
    order = torch.sort(scores, dim=0, descending=True, stable=True).indices[:k]  # (k, n)
    out = order.T.contiguous()
    return out[0] if single else out


def random_sets(n_images: int, n: int, k: int, seed: int) -> torch.Tensor:
    """``n`` sets of ``k`` distinct random image indices, int64 ``(n, k)``: the floor."""
    checks.int_in("k", k, 1, n_images)
    gen = torch.Generator().manual_seed(checks.non_negative_int("seed", seed))
    return torch.rand(n, n_images, generator=gen).argsort(dim=1)[:, :k]


# --------------------------------------------------------------------------------------------
# Coherence of a top-k set


def label_purity(labels: torch.Tensor, indices: torch.Tensor) -> np.ndarray:
    """Share of the most common true label in each top-k set.

    Args:
        labels: ``(N,)`` true labels of I (0..9).
        indices: ``(k,)`` one set or ``(n, k)`` many.

    Returns:
        float64 ``(n,)`` in [1/k, 1] (a scalar array ``(1,)`` for one set).
    """
    idx = torch.as_tensor(indices)
    idx = idx[None] if idx.ndim == 1 else idx
    lab = torch.as_tensor(labels).long()[idx]  # (n, k)
    counts = torch.nn.functional.one_hot(lab, int(lab.max()) + 1).sum(dim=1)  # (n, C)
    return (counts.max(dim=1).values.double() / idx.shape[1]).numpy()


def mean_pairwise_cosine(reps: torch.Tensor, indices: torch.Tensor) -> np.ndarray:
    """Mean cosine similarity over the k(k-1)/2 pairs of each set, in a representation ``reps``.

    Args:
        reps: ``(N, E)`` the images of I in an independent model's representation.
        indices: ``(k,)`` or ``(n, k)``, k >= 2.

    Returns:
        float64 ``(n,)``. A zero vector (a ReLU layer silent on an image) has cosine 0 with
        everything.
    """
    reps = _finite_2d("reps", reps).double()
    idx = torch.as_tensor(indices)
    idx = idx[None] if idx.ndim == 1 else idx
    k = idx.shape[1]
    if k < 2:
        raise ValueError(f"indices must hold at least 2 images per set, got k={k}")
    unit = reps / reps.norm(dim=1, keepdim=True).clamp_min(1e-12)
    g = unit[idx]  # (n, k, E)
    gram = g @ g.transpose(1, 2)  # (n, k, k)
    off = gram.sum(dim=(1, 2)) - torch.diagonal(gram, dim1=1, dim2=2).sum(dim=1)
    return (off / (k * (k - 1))).numpy()


# --------------------------------------------------------------------------------------------
# Statistics


def _finite_1d(name: str, values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be a non-empty 1-d array of finite numbers")
    return x


def _percentile_interval(data: tuple[np.ndarray, ...], statistic: Any, *, n_resamples: int,
                         seed: int, level: float) -> tuple[float, float]:
    """``scipy.stats.bootstrap``'s percentile interval, seeded; a sample of one is its own."""
    checks.positive_int("n_resamples", n_resamples)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(checks.non_negative_int("seed", seed))
    if min(len(d) for d in data) < 2:  # scipy needs two observations; one has no spread
        point = float(statistic(*data, axis=-1))
        return point, point
    res = stats.bootstrap(data, statistic, n_resamples=n_resamples, confidence_level=level,
                          method="percentile", vectorized=True, rng=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_ci(values: np.ndarray, *, n_resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap confidence interval.

    ``scipy.stats.bootstrap`` with ``method="percentile"`` and a generator seeded by ``seed``,
    so the same call gives the same interval. The percentile method rather than scipy's default
    BCa: coherence scores are discrete (label purity takes k + 1 values) and a group can score
    the same on every set, where BCa's acceleration is undefined and the percentile interval is
    simply that value.

    Args:
        values: ``(n,)`` finite scores, n >= 1 (a single score is its own interval).
        n_resamples: bootstrap resamples.
        seed: seeds the resampling.
        level: confidence level, in (0, 1).

    Returns:
        ``(mean, low, high)``.
    """
    x = _finite_1d("values", values)
    lo, hi = _percentile_interval((x,), _mean, n_resamples=n_resamples, seed=seed, level=level)
    return float(x.mean()), lo, hi


def bootstrap_difference(a: np.ndarray, b: np.ndarray, *, n_resamples: int = 2000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its percentile-bootstrap interval, each sample resampled on its own.

    ``scipy.stats.bootstrap`` over the two independent samples (``paired=False``), seeded as
    ``bootstrap_ci``.

    Returns:
        ``(difference, low, high)``.
    """
    a, b = _finite_1d("a", a), _finite_1d("b", b)
    lo, hi = _percentile_interval((a, b), _mean_difference, n_resamples=n_resamples, seed=seed,
                                  level=level)
    return float(a.mean() - b.mean()), lo, hi


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; 1.0 when both samples are one constant (no evidence)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return p if np.isfinite(p) else 1.0


# --------------------------------------------------------------------------------------------
# The comparison


@dataclass
class Comparison:
    """What ``compare`` measured for one probed layer.

    Attributes:
        scores: ``(k, measure, group) -> (n,)`` the score of every top-k set.
        indices: ``(k, group) -> (n, k)`` the top-k sets themselves.
        rows: one summary dict per (k, measure, group), plus one per (k, measure) for the
            difference units - directions: ``k``, ``measure``, ``group``, ``mean``, ``ci_low``,
            ``ci_high``, ``median``, ``q10``, ``q90``, ``n``, ``p_vs_directions``,
            ``p_vs_random`` (None where a group would be compared with itself).
        dead_units: units that are constant (a ReLU: zero) on every image of I.
        units: the units scored (all live units, or all units if ``exclude_dead`` is False).
    """

    scores: dict[tuple[int, str, str], np.ndarray] = field(default_factory=dict)
    indices: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_units: list[int] = field(default_factory=list)
    units: list[int] = field(default_factory=list)


def compare(acts: torch.Tensor, labels: torch.Tensor, reps: torch.Tensor, *,
            ks: Sequence[int] = (8, 16, 64), seed: int = 0, n_resamples: int = 2000,
            level: float = 0.95, exclude_dead: bool = True) -> Comparison:
    """Coherence of the top-k sets of every unit against as many random directions and sets.

    For a layer with D units of which U are alive (not constant on every image of I): the U
    natural basis vectors e_i of the live units, U random unit directions
    (``random_directions(D, U, seed)``) and U sets of k random images (``seed + 1``, the floor).
    A dead unit (a ReLU that never fires) has no images that maximise it, only ties, so it is
    left out unless ``exclude_dead`` is False; ``Comparison.dead_units`` lists them.
    Each set is scored by ``label_purity`` (true labels of I) and ``mean_pairwise_cosine`` in
    ``reps``, an independent model's representation of the same images. Each group's mean gets
    a bootstrap interval; units are compared with directions (and each with the floor) by a
    two-sided Mann-Whitney U test; the difference of means units - directions gets its own
    bootstrap interval.

    Args:
        acts: ``(N, D)`` activations of the probed layer on I.
        labels: ``(N,)`` true labels of I.
        reps: ``(N, E)`` the independent representation of I.
        ks: set sizes, each in 2..N.
        seed: seeds the directions, the random sets and the bootstrap.
        n_resamples: bootstrap resamples.
        level: confidence level of the intervals.
        exclude_dead: leave constant units out of the "units" group.

    Returns:
        A ``Comparison``.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 3; the measures are ours (the
        paper judges coherence by eye).
    """
    acts = _finite_2d("acts", acts)
    reps = _finite_2d("reps", reps)
    labels = torch.as_tensor(labels).long()
    n_img, dim = acts.shape
    if labels.shape != (n_img,) or len(reps) != n_img:
        raise ValueError(f"labels (N,) and reps (N, E) must match acts' N={n_img}, got "
                         f"{tuple(labels.shape)} and {tuple(reps.shape)}")
    for k in ks:
        if not checks.is_int(k) or not 2 <= k <= n_img:
            raise ValueError(f"ks must hold ints in 2..{n_img}, got {list(ks)}")
    out = Comparison()
    dead = acts.max(0).values == acts.min(0).values
    out.dead_units = torch.nonzero(dead).flatten().tolist()
    live = torch.nonzero(~dead).flatten() if exclude_dead else torch.arange(dim)
    if len(live) == 0:
        raise ValueError("acts must have at least one unit that is not constant on every image")
    n_dir = len(live)
    out.units = live.tolist()
    directions = {"units": torch.eye(dim)[live], "directions": random_directions(dim, n_dir, seed)}
    for k in ks:
        for group, v in directions.items():
            out.indices[(k, group)] = top_k(acts, v, k)
        out.indices[(k, "random")] = random_sets(n_img, n_dir, k, seed + 1)
        for measure in MEASURES:
            for group in GROUPS:
                idx = out.indices[(k, group)]
                out.scores[(k, measure, group)] = (label_purity(labels, idx) if measure == "purity"
                                                   else mean_pairwise_cosine(reps, idx))
            s = {g: out.scores[(k, measure, g)] for g in GROUPS}
            for g in GROUPS:
                mean, lo, hi = bootstrap_ci(s[g], n_resamples=n_resamples, seed=seed, level=level)
                q10, med, q90 = np.quantile(s[g], [0.1, 0.5, 0.9])
                out.rows.append({
                    "k": k, "measure": measure, "group": g, "mean": mean, "ci_low": lo,
                    "ci_high": hi, "median": float(med), "q10": float(q10), "q90": float(q90),
                    "n": len(s[g]),
                    "p_vs_directions": (None if g == "directions"
                                        else mann_whitney_p(s[g], s["directions"])),
                    "p_vs_random": None if g == "random" else mann_whitney_p(s[g], s["random"])})
            diff, lo, hi = bootstrap_difference(s["units"], s["directions"],
                                                n_resamples=n_resamples, seed=seed, level=level)
            out.rows.append({
                "k": k, "measure": measure, "group": DIFFERENCE, "mean": diff, "ci_low": lo,
                "ci_high": hi, "median": None, "q10": None, "q90": None, "n": len(s["units"]),
                "p_vs_directions": mann_whitney_p(s["units"], s["directions"]),
                "p_vs_random": None})
    return out


# --------------------------------------------------------------------------------------------
# What the viewers show: top-k sets of units and random directions (display.unit_viewers draws)


def live_units(acts: torch.Tensor) -> torch.Tensor:
    """Indices of the units that are not constant on every image, int64 ``(U,)``, ascending.

    A constant unit (a dead ReLU, zero everywhere) has no images that maximise it, only ties.
    """
    acts = _finite_2d("acts", acts)
    return torch.nonzero(acts.max(0).values > acts.min(0).values).flatten()


def strip_sets(acts: torch.Tensor, *, n: int = 16, k: int = 32, seed: int = 0,
               unit_ids: Sequence[int] | None = None) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The top-k sets a static viewer shows: ``n`` units and ``n`` random directions.

    Args:
        acts: ``(N, D)`` activations of the probed layer.
        n: how many units and random directions (``random_directions(D, n, seed)``).
        k: images per set, best first (a viewer shows any prefix of it).
        seed: the directions' seed.
        unit_ids: the units to show (default: the first ``n`` of ``live_units(acts)``).

    Returns:
        ``{"unit": [(name, indices (k,)), ...], "random direction": [...]}``, names such as
        "unit 3" and "random direction 0".

    Raises:
        ValueError: ``unit_ids`` names a unit outside the layer, or there is none to show.
    """
    acts = _finite_2d("acts", acts)
    dim = acts.shape[1]
    checks.positive_int("n", n)
    shown = (live_units(acts) if unit_ids is None else torch.as_tensor(list(unit_ids)).long())[:n]
    if len(shown) == 0 or shown.min() < 0 or shown.max() >= dim:
        raise ValueError(f"unit_ids must name units in 0..{dim - 1}, got {shown.tolist()}")
    n = len(shown)
    dirs = random_directions(dim, n, seed)
    unit_top = top_k(acts, torch.eye(dim)[shown], k).numpy()
    dir_top = top_k(acts, dirs, k).numpy()
    return {"unit": [(f"unit {int(u)}", unit_top[i]) for i, u in enumerate(shown)],
            "random direction": [(f"random direction {i}", dir_top[i]) for i in range(n)]}


@dataclass(frozen=True, eq=False)
class Ranker:
    """Top-k sets on demand, for a live viewer: any unit, any random direction's seed, any k.

    ``Ranker(acts)("unit", 3, 16)`` is ``("unit 3", top_k(acts, e_3, 16))``;
    ``Ranker(acts)("random direction", 7, 16)`` ranks by ``random_directions(D, 1, seed=7)``.
    One ``(N, D) @ (D,)`` product and a sort per call.

    Attributes:
        acts: ``(N, D)`` activations of the probed layer.
    """

    acts: torch.Tensor
    BASES = ("unit", "random direction")

    def __post_init__(self) -> None:
        object.__setattr__(self, "acts", _finite_2d("acts", self.acts))

    @property
    def n_units(self) -> int:
        """D, the layer's number of units."""
        return int(self.acts.shape[1])

    @property
    def n_images(self) -> int:
        """N, the number of images ranked."""
        return int(self.acts.shape[0])

    def __call__(self, basis: str, index: int, k: int) -> tuple[str, np.ndarray]:
        """``(name, indices (k,))``: unit ``index``, or the random direction seeded ``index``."""
        checks.one_of("basis", basis, self.BASES)
        if basis == "unit":
            v, name = unit_direction(self.n_units, index), f"unit {index}"
        else:
            v = random_directions(self.n_units, 1, seed=index)[0]
            name = f"random direction (seed {index})"
        return name, top_k(self.acts, v, k).numpy()
