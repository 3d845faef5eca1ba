"""Property 1 for adversarial perturbations: does the change they cause sit on a few units?

Why: Szegedy et al. (2014, section 3) argue that the natural basis of a layer (its units) is no
better than a random orthonormal basis for reading what the layer means. This module asks the
analogous question of the paper's adversarial examples (section 4.1): an imperceptible
perturbation r moves the hidden layer phi by delta = phi(x + r) - phi(x); is that change carried
by a few units, more than by a few directions of a random orthonormal basis of the same layer?

- ``hidden_change`` records delta for a batch of images and their adversarial examples;
- ``sorted_energy`` and ``topk_shares`` express delta in a basis (the units, or the rows of an
  orthogonal matrix) and give the share of its energy |delta|^2 that the k largest coordinates
  carry;
- ``expected_random_share`` is that share's exact expectation in a uniformly random basis (it
  does not depend on delta);
- ``compare_shares`` measures the unit basis against several seeded random bases per image,
  with bootstrap intervals and a paired test;
- ``PerturbationProbe`` does it for one image, target and c on demand (the chapters' live
  panel in Jupyter; the rendered book runs ``book/_extra/js/intriguing-units.js`` instead).

The experiment ``experiments.coherence.perturbation_units`` writes the comparison to
``data/results/perturbation_units.json``; the chapters "Semantic units" and "Random directions"
show it.

References: Szegedy et al. 2014, "Intriguing properties of neural networks", arXiv:1312.6199,
sections 3 and 4.1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import integrate, stats
from torch import nn

from ..plumbing import checks
from . import attacks, units

#: The top-k sizes the experiment reports, besides 10% of the layer (``default_ks``).
FIXED_KS: tuple[int, ...] = (1, 5)
#: The share of a layer's units that ``default_ks`` adds to ``FIXED_KS``.
FRACTION_K = 0.1


def default_ks(dim: int) -> tuple[int, ...]:
    """k = 1, 5 and 10% of the layer's ``dim`` units (rounded; duplicates dropped, ascending)."""
    checks.positive_int("dim", dim)
    ks = [k for k in FIXED_KS if k <= dim] + [max(1, round(FRACTION_K * dim))]
    return tuple(sorted(set(ks)))


def _check_ks(ks: Sequence[int], dim: int) -> tuple[int, ...]:
    if isinstance(ks, (str, bytes)) or not len(ks) or not all(
            checks.is_int(k) and 1 <= k <= dim for k in ks):
        raise ValueError(f"ks must be a non-empty list of ints in 1..{dim}, got {ks!r}")
    return tuple(int(k) for k in ks)


def _as_delta(delta: Any) -> torch.Tensor:
    t = torch.as_tensor(delta).double()
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2 or t.shape[1] == 0:
        raise ValueError(f"delta must have shape (N, D) or (D,), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("delta must hold finite numbers (found NaN or inf)")
    if (t.square().sum(1) == 0).any():
        raise ValueError("delta must have a non-zero row for every image (an unchanged layer "
                         "has no share to split)")
    return t


def _as_basis(basis: Any, dim: int) -> torch.Tensor | None:
    if basis is None:
        return None
    b = torch.as_tensor(basis).double()
    if b.shape != (dim, dim):
        raise ValueError(f"basis must be a ({dim}, {dim}) matrix with orthonormal rows, got "
                         f"{tuple(b.shape)}")
    if not torch.allclose(b @ b.T, torch.eye(dim, dtype=torch.float64), atol=1e-6):
        raise ValueError("basis must have orthonormal rows (basis @ basis.T == I)")
    return b


def sorted_energy(delta: Any, basis: Any = None) -> torch.Tensor:
    """The share of |delta|^2 on each coordinate of ``basis``, largest first.

    Args:
        delta: ``(N, D)`` or ``(D,)`` changes of a layer, each row non-zero.
        basis: ``(D, D)`` orthonormal rows (a coordinate is ``<delta, row>``), or None for the
            natural basis (the units).

    Returns:
        float64 ``(N, D)``, each row descending and summing to 1.

    Raises:
        ValueError: naming ``delta`` (wrong shape, not finite, a zero row) or ``basis`` (wrong
            shape, rows not orthonormal).
    """
    d = _as_delta(delta)
    b = _as_basis(basis, d.shape[1])
    coords = d if b is None else d @ b.T
    energy = coords.square()
    return (energy / energy.sum(1, keepdim=True)).sort(dim=1, descending=True).values


def topk_shares(delta: Any, ks: Sequence[int], basis: Any = None) -> np.ndarray:
    """The share of |delta|^2 carried by the k largest coordinates in ``basis``, for each k.

    Args:
        delta, basis: as for ``sorted_energy``.
        ks: top-k sizes, each in 1..D.

    Returns:
        float64 ``(N, len(ks))`` in [k/D, 1].

    References: Szegedy et al. 2014, arXiv:1312.6199, section 3 (units against random
        directions); the measure is ours.
    """
    energy = sorted_energy(delta, basis)
    ks = _check_ks(ks, energy.shape[1])
    cum = energy.cumsum(1)
    return cum[:, [k - 1 for k in ks]].numpy()


def expected_random_share(dim: int, k: int) -> float:
    """E[top-k share] of a fixed non-zero delta in a uniformly random orthonormal basis.

    In a Haar-random basis the coordinates of delta / |delta| are a uniform point u on the
    sphere, whatever delta is; u = g / |g| for a standard Gaussian g, independent of |g|, so
    E[sum of the k largest u_i^2] = E[sum of the k largest g_i^2] / D. The j-th largest of D
    chi-squared(1) variables has the expectation of F^-1(U) with U ~ Beta(D - j + 1, j); summing
    the k densities gives D * P(Binomial(D - 1, u) >= D - k), so

        share = int_0^1 F^-1(u) P(Binomial(D - 1, u) >= D - k) du,

    F the chi-squared(1) distribution function. It is larger than k / D (the share of any
    *fixed* k coordinates): the top k are chosen after the fact.

    Raises:
        ValueError: ``dim`` not a positive int, ``k`` not in 1..dim.
    """
    checks.positive_int("dim", dim)
    checks.int_in("k", k, 1, dim)
    if k == dim:
        return 1.0

    def integrand(u: float) -> float:
        return float(stats.chi2.ppf(u, 1) * stats.binom.sf(dim - k - 1, dim - 1, u))

    # The binomial tail switches on near u = 1 - k/D; split there so quad sees the step.
    edge = 1.0 - k / dim
    parts = [(0.0, max(edge - 0.2, 0.0)), (max(edge - 0.2, 0.0), min(edge + 0.05, 1.0)),
             (min(edge + 0.05, 1.0), 1.0)]
    total = sum(integrate.quad(integrand, a, b, limit=200)[0] for a, b in parts if b > a)
    return float(min(max(total, k / dim), 1.0))


def random_bases(dim: int, n: int, seed: int) -> list[torch.Tensor]:
    """``n`` random orthonormal bases of R^dim: ``units.random_rotation(dim, seed + i)``."""
    checks.positive_int("n", n)
    checks.non_negative_int("seed", seed)
    return [units.random_rotation(dim, seed + i) for i in range(n)]


def hidden_change(model: nn.Module, layer: str, images: torch.Tensor,
                  adversarial: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """delta = phi(x_adv) - phi(x) of a layer, float64 ``(N, D)``.

    Args:
        model: a zoo model in eval mode (``units.layer_names`` lists its layers).
        layer: e.g. "act1", the first hidden layer of a sigmoid MLP.
        images: ``(N, 1, 28, 28)`` clean images in [0, 1].
        adversarial: ``(N, 1, 28, 28)`` their adversarial examples.
        batch_size: images per forward pass.

    Raises:
        ValueError: the image batches differ in shape, or ``layer`` is not a layer of ``model``.
    """
    if not isinstance(images, torch.Tensor) or not isinstance(adversarial, torch.Tensor) \
            or images.shape != adversarial.shape:
        raise ValueError(f"images and adversarial must be tensors of one shape, got "
                         f"{getattr(images, 'shape', images)} and "
                         f"{getattr(adversarial, 'shape', adversarial)}")
    clean = units.activations(model, layer, images.float(), batch_size=batch_size)
    moved = units.activations(model, layer, adversarial.float(), batch_size=batch_size)
    return moved.double() - clean.double()


def _paired(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of a - b; 1.0 where every difference is 0."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(diff != 0):
        return 1.0
    if len(diff) < 2:
        return 1.0
    p = float(stats.wilcoxon(diff, alternative="two-sided").pvalue)
    return p if np.isfinite(p) else 1.0


@dataclass
class ShareComparison:
    """What ``compare_shares`` measured for one set of changes.

    Attributes:
        ks: the top-k sizes.
        unit: ``(N, len(ks))`` each image's top-k share in the unit basis.
        random: ``(N, len(ks))`` its mean top-k share over the random bases.
        expected: ``(len(ks),)`` ``expected_random_share`` for each k.
        rows: one dict per k: ``k``, ``unit``/``random``/``difference`` means with ``_low`` and
            ``_high`` bootstrap bounds, ``expected``, ``p`` (Wilcoxon signed-rank, unit against
            random, paired by image), ``wins`` (share of images whose unit share is larger),
            ``n``.
    """

    ks: tuple[int, ...]
    unit: np.ndarray
    random: np.ndarray
    expected: np.ndarray
    rows: list[dict[str, Any]]


def compare_shares(delta: Any, *, ks: Sequence[int] | None = None, n_bases: int = 8,
                   seed: int = 0, n_resamples: int = 2000,
                   level: float = 0.95) -> ShareComparison:
    """The top-k share of the unit basis against ``n_bases`` random orthonormal bases, per image.

    For each image, the share of |delta|^2 on its k largest coordinates in the unit basis, and
    the mean of that share over ``random_bases(D, n_bases, seed)``; means over images with
    percentile-bootstrap intervals (``units.bootstrap_ci``, seeded); the paired difference unit
    - random per image with its own interval and a two-sided Wilcoxon signed-rank test.

    Args:
        delta: ``(N, D)`` changes of a layer, each row non-zero.
        ks: top-k sizes (default ``default_ks(D)``).
        n_bases: random bases per image (the same bases for every image).
        seed: seeds the bases and the bootstrap.
        n_resamples: bootstrap resamples.
        level: confidence level.

    Returns:
        A ``ShareComparison``.

    References: Szegedy et al. 2014, arXiv:1312.6199, sections 3 and 4.1.
    """
    d = _as_delta(delta)
    dim = d.shape[1]
    ks = default_ks(dim) if ks is None else _check_ks(ks, dim)
    checks.positive_int("n_bases", n_bases)
    unit = topk_shares(d, ks)
    rand = np.mean([topk_shares(d, ks, b) for b in random_bases(dim, n_bases, seed)], axis=0)
    expected = np.array([expected_random_share(dim, k) for k in ks])
    rows = []
    for j, k in enumerate(ks):
        u, r = unit[:, j], rand[:, j]
        um, ulo, uhi = units.bootstrap_ci(u, n_resamples=n_resamples, seed=seed, level=level)
        rm, rlo, rhi = units.bootstrap_ci(r, n_resamples=n_resamples, seed=seed, level=level)
        dm, dlo, dhi = units.bootstrap_ci(u - r, n_resamples=n_resamples, seed=seed, level=level)
        rows.append({"k": k, "unit": um, "unit_low": ulo, "unit_high": uhi, "random": rm,
                     "random_low": rlo, "random_high": rhi, "difference": dm,
                     "difference_low": dlo, "difference_high": dhi,
                     "expected": float(expected[j]), "p": _paired(u, r),
                     "wins": float(np.mean(u > r)), "n": len(u)})
    return ShareComparison(ks, unit, rand, expected, rows)


# --------------------------------------------------------------------------------------------
# One image on demand (the chapters' live panel in Jupyter)


@dataclass(frozen=True, eq=False)
class PerturbationProbe:
    """The hidden-layer change of one adversarial example, computed on demand.

    ``probe(image, target, c)`` attacks ``image`` toward ``target`` with one solve at ``c``
    (``attack_fn``, in the chapters ``attacks.lbfgs``: the live viewers' adapter pattern), and
    returns the change of ``layer`` in the unit basis and in ``units.random_rotation(D,
    basis_seed)``.

    Attributes:
        model: a zoo model in eval mode.
        layer: its probed layer, e.g. "act1".
        basis_seed: seeds the random orthonormal basis.
        ks: the top-k sizes reported (default ``default_ks(D)``).
        attack_fn: ``attack_fn(model, images, targets, c=c)`` returning the adversarial images
            or an object with ``.adversarial``.
    """

    model: nn.Module
    layer: str
    basis_seed: int = 0
    ks: tuple[int, ...] | None = None
    attack_fn: Callable[..., Any] = attacks.lbfgs

    def __post_init__(self) -> None:
        valid = units.layer_names(self.model)
        checks.one_of("layer", self.layer, valid)
        checks.non_negative_int("basis_seed", self.basis_seed)
        with torch.no_grad():
            dim = units.activations(self.model, self.layer,
                                    torch.zeros(1, 1, 28, 28)).shape[1]
        object.__setattr__(self, "dim", int(dim))
        ks = default_ks(dim) if self.ks is None else _check_ks(self.ks, dim)
        object.__setattr__(self, "ks", ks)
        object.__setattr__(self, "basis", units.random_rotation(dim, self.basis_seed))

    def __call__(self, image: torch.Tensor, target: int, c: float) -> dict[str, Any]:
        """Attack one image and measure the change of the layer.

        Args:
            image: ``(1, 28, 28)`` or ``(1, 1, 28, 28)`` in [0, 1].
            target: the target class, 0..9.
            c: the attack's constant (positive).

        Returns:
            ``adversarial`` ``(1, 1, 28, 28)``, ``predicted`` (the model's class of it),
            ``distortion``, ``norm`` (|delta|), ``unit`` and ``random`` (``sorted_energy``
            ``(D,)`` numpy arrays, or None when the layer did not change), ``shares`` (per k:
            ``(k, unit share, random share, expected random share)``).
        """
        checks.int_in("target", target, 0, 9)
        c = checks.penalty_c(c)
        x = torch.as_tensor(image).float().reshape(1, 1, 28, 28)
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise ValueError("image must lie in [0, 1]")
        out = self.attack_fn(self.model, x, torch.tensor([int(target)]), c=c)
        adv = getattr(out, "adversarial", out)
        adv = torch.as_tensor(adv).detach().float().cpu().reshape(1, 1, 28, 28)
        delta = hidden_change(self.model, self.layer, x, adv)
        with torch.no_grad():
            predicted = int(self.model(adv).argmax(1).item())
        norm = float(delta.norm())
        result: dict[str, Any] = {"adversarial": adv, "predicted": predicted,
                                  "distortion": float(attacks.distortion(x, adv).item()),
                                  "norm": norm, "unit": None, "random": None, "shares": []}
        if norm > 0:
            result["unit"] = sorted_energy(delta)[0].numpy()
            result["random"] = sorted_energy(delta, self.basis)[0].numpy()
            result["shares"] = [(k, float(result["unit"][:k].sum()),
                                 float(result["random"][:k].sum()),
                                 expected_random_share(self.dim, k)) for k in self.ks]
        return result
