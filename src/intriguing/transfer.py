"""Cross-model and cross-training-set transfer: feed one model's adversarial examples to others.

Why: the paper's third observation (Tables 2 and 4) is that adversarial examples made for one
network often fool other networks too, with other hyperparameters or trained on a disjoint half
of the training set. Measuring that is a matrix of error rates: rows are the perturbed sets
(adversarial sets of each source model, or Gaussian noise), columns the models they are fed to,
and each cell the fraction of the set the column model misclassifies with respect to the TRUE
label. The adversarial sets come from ``advsets`` (each source attacked once per attacked set,
cached), so every table and chapter feeds the same examples.

Table 4 also "amplifies" each perturbation to a per-pixel standard deviation of 0.1. The paper
writes this as ``x + 0.1 (x' - x) / ||x' - x||``; read literally, an L2 norm of 0.1 over 784
pixels is a per-pixel RMS of 0.1/28, which would shrink the perturbation. ``amplify`` implements
the intended meaning: rescale ``r = x' - x`` per image to a per-pixel RMS of ``stddev``.

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Tables 2-4).
The book explains it in the chapter "Transferability".
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from . import attacks


def _check_images(name: str, x: object) -> None:
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor of shape (N, 1, 28, 28), got {shape}")


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, *, batch_size: int = 5000) -> Tensor:
    """The labels ``model`` predicts for ``images`` ``(N, 1, 28, 28)``, batched: ``(N,)`` long."""
    _check_images("images", images)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = images.device
    out = [model(images[i:i + batch_size].to(device)).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def misclassified(
    sets: Mapping[str, Tensor],
    labels: Tensor | Mapping[str, Tensor],
    models: Mapping[str, nn.Module],
    *,
    batch_size: int = 5000,
) -> dict[str, dict[str, Tensor]]:
    """Which images of each set each model gets wrong: ``{set: {model: (N,) bool}}``.

    Args:
        sets: row name -> images ``(N, 1, 28, 28)`` in [0,1] (an adversarial or noisy set).
        labels: the TRUE labels ``(N,)``, one tensor for every set, or a dict keyed like ``sets``.
        models: column name -> model taking ``(N, 1, 28, 28)`` pixels, returning logits.
        batch_size: images per forward pass.

    Raises:
        ValueError: ``sets`` or ``models`` is empty, an image tensor is not ``(N, 1, 28, 28)``,
            or ``labels`` does not match a set's length.
    """
    if not sets:
        raise ValueError("sets must not be empty")
    if not models:
        raise ValueError("models must not be empty")
    out: dict[str, dict[str, Tensor]] = {}
    for row, x in sets.items():
        _check_images(f"sets[{row!r}]", x)
        y = labels[row] if isinstance(labels, Mapping) else labels
        if not isinstance(y, Tensor) or y.ndim != 1 or len(y) != len(x):
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise ValueError(f"labels must be a (N,) tensor with N = {len(x)} for set {row!r}, "
                             f"got {got}")
        if len(x) == 0:
            raise ValueError(f"sets[{row!r}] must not be empty")
        out[row] = {col: predict(net, x, batch_size=batch_size) != y.cpu()
                    for col, net in models.items()}
    return out


def error_matrix(
    sets: Mapping[str, Tensor],
    labels: Tensor | Mapping[str, Tensor],
    models: Mapping[str, nn.Module],
    *,
    batch_size: int = 5000,
) -> dict[str, dict[str, float]]:
    """Error rates of every model on every set: ``{row: {column: fraction misclassified}}``.

    The error is counted against the TRUE label (not the attack's target), as in the paper's
    Tables 2 and 4; a model fed its own successful adversarial set therefore scores 100%.

    Args:
        sets: row name -> images ``(N, 1, 28, 28)`` in [0,1].
        labels: the true labels ``(N,)`` (one tensor for all sets, or a dict keyed like ``sets``).
        models: column name -> model.
        batch_size: images per forward pass.

    Returns:
        Each cell in [0, 1].

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Tables 2 and 4).
    """
    wrong = misclassified(sets, labels, models, batch_size=batch_size)
    return {row: {col: int(w.sum()) / len(w) for col, w in cols.items()}
            for row, cols in wrong.items()}


def amplify(x: Tensor, x_adv: Tensor, stddev: float, *, clip: bool = True) -> Tensor:
    """Rescale each perturbation ``r = x_adv - x`` to a per-pixel RMS of ``stddev``.

    Why: Table 4's amplified rows ask whether a perturbation that barely fails to transfer does
    transfer once it is larger. The result is ``x + r * stddev / rms(r)`` per image, where
    ``rms(r) = sqrt(mean(r^2))`` over the 784 pixels (``attacks.distortion``). Then, by default,
    it is clipped to [0,1], the box every model was trained on: clipping lowers the realised RMS
    (a white pixel cannot get whiter), so report ``attacks.distortion(x, amplify(...))``, which is
    ``<= stddev``. An image whose perturbation is exactly zero has no direction to rescale and
    is returned unchanged.

    Args:
        x: ``(N, 1, 28, 28)`` originals in [0,1].
        x_adv: ``(N, 1, 28, 28)`` their adversarial examples.
        stddev: the target per-pixel RMS, > 0 (0.1 in Table 4).
        clip: clip the result to [0,1] (the default).

    Returns:
        ``(N, 1, 28, 28)`` amplified images, ``x``'s dtype.

    Raises:
        ValueError: mismatched shapes, or ``stddev`` not a finite number > 0.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 4).
    """
    if not isinstance(x, Tensor) or not isinstance(x_adv, Tensor) or x.shape != x_adv.shape:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                  for t in (x, x_adv)]
        raise ValueError(f"x and x_adv must be tensors of one shape, got {shapes[0]} and "
                         f"{shapes[1]}")
    if (isinstance(stddev, bool) or not isinstance(stddev, (int, float))
            or not stddev > 0 or stddev == float("inf")):
        raise ValueError(f"stddev must be a finite number > 0, got {stddev!r}")
    r = (x_adv.to(torch.float64) - x.to(torch.float64))
    rms = attacks.distortion(x, x_adv).to(torch.float64).reshape(-1, *([1] * (x.ndim - 1)))
    factor = torch.where(rms > 0, float(stddev) / rms.clamp_min(1e-300), torch.zeros_like(rms))
    out = x.to(torch.float64) + r * factor
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.to(x.dtype)


def noise_sets(x: Tensor, stddevs: tuple[float, ...], *, seed: int = 0) -> dict[str, Tensor]:
    """Gaussian-noise rows: ``"Gaussian noise, stddev=<s>"`` -> ``attacks.gaussian_noise``.

    Noise is clipped to [0,1] and drawn from one generator seeded with ``seed``, in the order of
    ``stddevs``, so the same call gives the same images.
    """
    _check_images("x", x)
    gen = torch.Generator().manual_seed(seed)
    return {f"Gaussian noise, stddev={s:g}": attacks.gaussian_noise(x, s, generator=gen)
            for s in stddevs}


def most_transferable(
    adversarial: Tensor,
    labels: Tensor,
    models: Mapping[str, nn.Module],
    *,
    k: int = 8,
) -> tuple[Tensor, Tensor]:
    """The ``k`` examples of a set that the most of ``models`` misclassify.

    Args:
        adversarial: ``(N, 1, 28, 28)`` one source's adversarial set.
        labels: ``(N,)`` true labels.
        models: the OTHER models (leave the source out to count transfers).
        k: how many examples to return.

    Returns:
        ``(indices (k,), counts (k,))``: indices into the set, most models fooled first (ties
        broken by index), and how many of ``models`` each fools.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    wrong = misclassified({"set": adversarial}, labels, models)["set"]
    counts = torch.stack(list(wrong.values())).sum(0)
    idx = torch.sort(-counts, stable=True).indices[:k]
    return idx, counts[idx]
