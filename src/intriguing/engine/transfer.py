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

Beyond the paper, ``curve`` measures transfer against the size of the perturbation: a source's
fixed-c sets (``advsets.fixed_c``, from large to tiny perturbations) fed to every model, with a
floor of Gaussian noise of exactly the same per-image distortion (``matched_noise``); the
helpers below read those curves (``curve_of``, ``rate_at``, ``distortion_at``,
``mean_transfer_at``, ``curve_summary``).

References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Tables 2-4).
The book explains it in the chapter "Transferability".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..plumbing import checks, results
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
        ValueError: mismatched shapes, or ``stddev`` not a positive finite number.

    References:
        Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 4).
    """
    if not isinstance(x, Tensor) or not isinstance(x_adv, Tensor) or x.shape != x_adv.shape:
        shapes = [tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                  for t in (x, x_adv)]
        raise ValueError(f"x and x_adv must be tensors of one shape, got {shapes[0]} and "
                         f"{shapes[1]}")
    checks.positive_float("stddev", stddev)
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
    checks.positive_int("k", k)
    wrong = misclassified({"set": adversarial}, labels, models)["set"]
    counts = torch.stack(list(wrong.values())).sum(0)
    idx = torch.sort(-counts, stable=True).indices[:k]
    return idx, counts[idx]


# --------------------------------------------------------------------------------------------
# Transfer against perturbation size (measured beyond the paper)


def check_c_grid(c_grid: object) -> tuple[float, ...]:
    """The constants of a fixed-c grid as floats; ValueError unless non-empty, positive, finite
    and strictly ascending."""
    try:
        values = [float(c) for c in c_grid]  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"c_grid must be a sequence of numbers, got {c_grid!r}") from exc
    if not values:
        raise ValueError("c_grid must not be empty: give at least one positive c")
    bad = [c for c in values if not (c > 0 and c != float("inf"))]
    if bad:
        raise ValueError(f"c_grid must hold positive finite numbers, got {bad}")
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"c_grid must be strictly ascending, got {values}")
    return tuple(values)


def matched_noise(x: Tensor, distortion: Tensor, *, generator: torch.Generator | None = None,
                  iterations: int = 30) -> Tensor:
    """Gaussian noise with, per image, the realised distortion ``distortion`` (after clipping).

    Why: the floor of a transfer curve is how often a model errs on a *random* perturbation of
    the same size as the adversarial one. Clipping to [0,1] removes part of the noise (a black
    pixel cannot get darker), so noise of stddev ``s`` has a realised per-pixel RMS below ``s``.
    Here one Gaussian draw ``z`` per image is scaled by ``s_i``, found by bisection, so that
    ``attacks.distortion(x, clip(x + s_i z))`` equals ``distortion[i]`` (to float32 precision).
    The realised RMS grows monotonically with ``s_i``, so bisection finds it. An image whose
    target is out of reach (above the RMS of ``clip(x + s z)`` as ``s`` grows large) gets the
    largest scale tried.

    Args:
        x: ``(N, 1, 28, 28)`` images in [0,1].
        distortion: ``(N,)`` the per-pixel RMS each noisy image should have, >= 0.
        generator: seeds the draw.
        iterations: bisection steps.

    Returns:
        ``(N, 1, 28, 28)`` noisy images in [0,1], ``x``'s dtype.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (the noise rows of Table 2).
    """
    _check_images("x", x)
    d = torch.as_tensor(distortion)
    if d.shape != (len(x),) or not torch.isfinite(d).all() or (d < 0).any():
        raise ValueError(f"distortion must be ({len(x)},) finite numbers >= 0, got shape "
                         f"{tuple(d.shape)}")
    flat = x.detach().reshape(len(x), -1).float()
    d = d.float()
    z = torch.randn(flat.shape, generator=generator)
    room_down, room_up = -flat, 1 - flat  # clip(x + s z) - x = clamp(s z, -x, 1 - x)

    def realised(s: Tensor) -> Tensor:
        return (s[:, None] * z).clamp_(room_down, room_up).square_().mean(1).sqrt_()

    lo, hi = torch.zeros_like(d), torch.ones_like(d)
    for _ in range(12):  # grow the bracket: scales up to 4096
        short = realised(hi) < d
        if not short.any():
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        below = realised(mid) < d
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    scale = torch.where(d > 0, hi, torch.zeros_like(d))
    noisy = flat + (scale[:, None] * z).clamp_(room_down, room_up)
    return noisy.reshape(x.shape).to(x.dtype)


def curve(
    images: Tensor,
    labels: Tensor,
    adversarial: Mapping[float, Tensor],
    models: Mapping[str, nn.Module],
    *,
    source: str,
    seed: int = 0,
    batch_size: int = 5000,
) -> list[dict]:
    """One source's transfer curve: every model's error on each fixed-c set, and the noise floor.

    Why: the paper's Table 2 samples transfer at one point, the minimum distortion. Feeding the
    sets of a grid of constants ``c`` (``advsets.fixed_c``) to every model traces the whole curve
    of transfer rate against perturbation size; the floor is each model's error on Gaussian noise
    with exactly the same per-image distortion (``matched_noise``, one seeded draw scaled for
    every ``c``).

    Args:
        images: ``(N, 1, 28, 28)`` the attacked images.
        labels: ``(N,)`` their true labels (errors count against these, as in Table 2).
        adversarial: ``c -> (N, 1, 28, 28)`` the source's set at each ``c``, ``c`` ascending.
        models: name -> model; must include ``source`` (its own curve is the attack's success
            plus its clean error).
        source: the attacked model's name.
        seed: seeds the noise.
        batch_size: images per forward pass.

    Returns:
        One dict per ``c``, in order: ``c``, ``distortion`` and ``noise_distortion`` (means over
        the set), ``error`` and ``noise_error`` (``{model: rate}``).

    Raises:
        ValueError: ``source`` not among ``models``; an empty, unsorted or non-positive grid; a
            set whose shape is not ``images``'.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 2).
    """
    if source not in models:
        raise ValueError(f"source must be one of the models {list(models)}, got {source!r}")
    grid = check_c_grid(list(adversarial))
    _check_images("images", images)
    out = []
    for c, adv in zip(grid, adversarial.values(), strict=True):
        if not isinstance(adv, Tensor) or adv.shape != images.shape:
            got = tuple(adv.shape) if isinstance(adv, Tensor) else type(adv).__name__
            raise ValueError(f"adversarial[{c:g}] must have the images' shape "
                             f"{tuple(images.shape)}, got {got}")
        d = attacks.distortion(images, adv)
        noisy = matched_noise(images, d, generator=torch.Generator().manual_seed(seed))
        m = error_matrix({"adversarial": adv, "noise": noisy}, labels, models,
                         batch_size=batch_size)
        out.append({"c": c, "distortion": d.mean().item(),
                    "noise_distortion": attacks.distortion(images, noisy).mean().item(),
                    "error": m["adversarial"], "noise_error": m["noise"]})
    return out


def curve_of(doc: Mapping, source: str, target: str) -> dict[str, list[float]]:
    """One source/target curve of ``transfer_curves.json``, in ascending distortion.

    Returns:
        ``{"c": [...], "distortion": [...], "error": [...], "noise_error": [...]}``.

    Raises:
        ValueError: no row has this source and target.
    """
    rows = [r for r in doc["rows"] if "c_value" in r]
    try:
        cur = results.series({**doc, "rows": rows}, "distortion",
                             ("c_value", "error", "noise_error"), source=source, target=target)
    except ValueError:
        raise ValueError(f"no curve for source {source!r} and target {target!r} in "
                         f"{doc.get('name')!r}") from None
    return {"c": cur["c_value"], "distortion": cur["distortion"], "error": cur["error"],
            "noise_error": cur["noise_error"]}


def rate_at(distortion: Sequence[float], rate: Sequence[float], at: float) -> float | None:
    """A curve's rate at distortion ``at``, linearly interpolated; None outside its range.

    ``distortion`` must be ascending (as ``curve_of`` returns it).
    """
    d, r = np.asarray(distortion, dtype=float), np.asarray(rate, dtype=float)
    if d.shape != r.shape or d.ndim != 1 or len(d) == 0:
        raise ValueError(f"distortion and rate must be 1-D of one length, got {d.shape} and "
                         f"{r.shape}")
    if np.any(np.diff(d) < 0):
        raise ValueError("distortion must be ascending")
    if not d[0] <= at <= d[-1]:
        return None
    return float(np.interp(at, d, r))


def distortion_at(distortion: Sequence[float], rate: Sequence[float], level: float
                  ) -> float | None:
    """The smallest distortion at which a curve reaches ``level``, linearly interpolated between
    the two grid points around the first crossing; None if it never does."""
    d, r = np.asarray(distortion, dtype=float), np.asarray(rate, dtype=float)
    if d.shape != r.shape or d.ndim != 1 or len(d) == 0:
        raise ValueError(f"distortion and rate must be 1-D of one length, got {d.shape} and "
                         f"{r.shape}")
    hits = np.flatnonzero(r >= level)
    if len(hits) == 0:
        return None
    j = int(hits[0])
    if j == 0:
        return float(d[0])
    (d0, d1), (r0, r1) = d[j - 1:j + 1], r[j - 1:j + 1]
    return float(d0 + (level - r0) * (d1 - d0) / (r1 - r0))


def mean_transfer_at(doc: Mapping, source: str, distortion: float,
                     targets: Sequence[str] | None = None, *, field: str = "error"
                     ) -> float | None:
    """The mean over ``targets`` (default: every target but ``source``) of the source's curves
    (``transfer_curves.json``) read at one ``distortion``; None if a curve does not reach it.

    Why: Table 2 compares sources each at its own minimum distortion; reading every source's
    curves at one common distortion separates how transferable its examples are from how large
    they are. ``field="noise_error"`` reads the noise floors instead.

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 2).
    """
    targets = [t for t in (targets or doc["settings"]["targets"]) if t != source]
    if not targets:
        raise ValueError("targets must hold at least one model other than the source")
    if field not in ("error", "noise_error"):
        raise ValueError(f"field must be 'error' or 'noise_error', got {field!r}")
    rates = []
    for t in targets:
        cur = curve_of(doc, source, t)
        rates.append(rate_at(cur["distortion"], cur[field], distortion))
    return None if any(r is None for r in rates) else float(np.mean(rates))


def curve_summary(doc: Mapping, table2: Mapping | None) -> dict[str, float | int | str | None]:
    """The figures the chapter quotes about the transfer curves, from the two results files.

    Args:
        doc: ``transfer_curves.json``.
        table2: ``table2.json`` at the same scale (or any mapping whose ``rows`` hold its cells
            and distortion rows); None: the figures that compare with it are None.

    Returns:
        The experiment: ``n``, ``n_c``, ``c_min``, ``c_max``.
        At one common distortion, ``d_common`` (the largest that every source's curve reaches):
        ``adv_common`` and ``noise_common`` (mean over sources of each source's mean over its
        other targets, adversarial and noise floor) and ``adv_half`` (at half of it).
        Table 2 against the curves: ``t2_top`` (the source whose row in our Table 2 transfers
        most), ``t2_top_ours``, ``t2_top_paper`` (that row's mean, ours and the paper's),
        ``t2_top_dist``, ``t2_other_dist`` (its Table 2 distortion, and the largest of the other
        sources'), ``top_common``, ``top_rank`` (its mean at ``d_common`` and its rank there,
        1 = most), ``best``, ``best_common``, ``best_t2`` (the source that transfers most at
        ``d_common``, there and in Table 2), ``order`` ("the same order as" or "a different
        order from": the sources ranked at ``d_common`` against their Table 2 rows).
        The paper's points: ``paper_k`` (pairs of different models whose curve reaches the
        paper's distortion), ``paper_ours``, ``paper_paper`` (their mean transfer: our curves read
        there, and the paper's Table 2). Our Table 2 points: ``t2_gap`` (mean over pairs of our
        curve at our Table 2 distortion minus our Table 2 cell; None if no curve reaches it),
        ``t2_gap_size`` and ``t2_gap_side`` ("below": our cells lie under our curves).

    References: Szegedy et al. 2014, arXiv:1312.6199, section 4.3 (Table 2).
    """
    sources = list(doc["settings"]["sources"])
    targets = list(doc["settings"]["targets"])
    off = {s: [t for t in targets if t != s] for s in sources}
    grid = doc["settings"]["c_grid"]
    d_common = min(max(curve_of(doc, s, targets[0])["distortion"]) for s in sources)

    def mean_at(d: float, field: str = "error") -> float | None:
        vals = [mean_transfer_at(doc, s, d, field=field) for s in sources]
        return None if any(v is None for v in vals) else float(np.mean(vals))

    at = {s: mean_transfer_at(doc, s, d_common) for s in sources}
    by_common = sorted(sources, key=lambda s: -at[s])
    at_paper = [r for r in doc["rows"] if r.get("c") == "at the paper's distortion"
                and r["source"] != r["target"] and r["error"]["ours"] is not None]
    out: dict[str, float | int | str | None] = {
        "n": int(doc["settings"]["n"]), "n_c": len(grid), "c_min": min(grid), "c_max": max(grid),
        "d_common": d_common, "adv_common": mean_at(d_common),
        "noise_common": mean_at(d_common, "noise_error"), "adv_half": mean_at(d_common / 2),
        "best": by_common[0], "best_common": at[by_common[0]],
        "paper_k": len(at_paper),
        "paper_ours": float(np.mean([r["error"]["ours"] for r in at_paper])) if at_paper else None,
        "paper_paper": (float(np.mean([r["error"]["paper"] for r in at_paper])) if at_paper
                        else None)}
    keys = ("t2_top", "t2_top_ours", "t2_top_paper", "top_common", "top_rank", "best_t2",
            "order", "t2_gap", "t2_gap_size", "t2_gap_side", "t2_top_dist", "t2_other_dist")
    if table2 is None:
        return {**out, **dict.fromkeys(keys)}

    def t2_cell(s: str, t: str, which: str) -> float:
        return next(r["error"][which] for r in table2["rows"]
                    if r.get("source") == s and r.get("target") == t and "error" in r)

    t2_ours = {s: float(np.mean([t2_cell(s, t, "ours") for t in off[s]])) for s in sources}
    t2_paper = {s: float(np.mean([t2_cell(s, t, "paper") for t in off[s]])) for s in sources}
    top = max(t2_ours, key=t2_ours.__getitem__)
    by_t2 = sorted(sources, key=lambda s: -t2_ours[s])
    t2_dist = {r["source"]: r["distortion"]["ours"] for r in table2["rows"]
               if "distortion" in r and "target" not in r}
    gaps = []
    for s in sources:
        for t in off[s]:
            cur = curve_of(doc, s, t)
            v = rate_at(cur["distortion"], cur["error"], t2_dist[s])
            if v is not None:
                gaps.append(v - t2_cell(s, t, "ours"))
    return {
        **out,
        "t2_top": top, "t2_top_ours": t2_ours[top], "t2_top_paper": t2_paper[top],
        "top_common": at[top], "top_rank": by_common.index(top) + 1,
        "best_t2": t2_ours[by_common[0]],
        "order": "the same order as" if by_common == by_t2 else "a different order from",
        "t2_gap": float(np.mean(gaps)) if gaps else None,
        "t2_gap_size": float(abs(np.mean(gaps))) if gaps else None,
        "t2_gap_side": "below" if gaps and np.mean(gaps) > 0 else "above",
        "t2_top_dist": t2_dist[top],
        "t2_other_dist": max(t2_dist[s] for s in sources if s != top),
    }
