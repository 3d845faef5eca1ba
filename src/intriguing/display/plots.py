"""Figures for the chapters: image grids, training curves, paper-vs-ours comparisons.

Why: chapters stay thin (one call, one figure), and every figure follows the same rules: lowercase
axis labels, no in-figure titles (the caption lives in the cell's ``mystnb.figure`` metadata), and
pixel images drawn without smoothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def image_grid(
    images: torch.Tensor | np.ndarray,
    *,
    ncols: int = 10,
    labels: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    scale: float = 0.9,
    cmap: str = "gray",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
) -> Figure:
    """A grid of 28x28 images, ``ncols`` per row, optional label under each and row labels.

    Args:
        images: ``(N, 1, 28, 28)`` or ``(N, 28, 28)`` pixels (in [0,1] unless vmin/vmax say else).
        ncols: images per row.
        labels: one short string under each image.
        row_labels: one string left of each row.
        scale: inches per image.
        cmap, vmin, vmax: passed to ``imshow`` (a difference image wants a diverging map).
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 4:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W), got {arr.shape}")
    n = len(arr)
    if n == 0:
        raise ValueError("images must not be empty")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must hold {n} strings, got {len(labels)}")
    nrows = -(-n // ncols)
    height = nrows * scale * (1.25 if labels else 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(arr[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if labels is not None:
            ax.set_xlabel(labels[i], fontsize=8)
    if row_labels is not None:
        for r, text in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(text, fontsize=8, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


def training_curves(doc: dict, *, key: str = "monitor_error") -> Figure:
    """Test error against training progress, one line per model, on a log error axis.

    Args:
        doc: ``model_zoo.json`` (its ``settings["curves"]``: model -> logged series).
        key: which logged series to plot ("monitor_error" is the test error, "train_error").
    """
    histories = {n: {"train": c} for n, c in doc["settings"]["curves"].items()}
    adam = {n: h for n, h in histories.items() if "iteration" not in h["train"]}
    lbfgs = {n: h for n, h in histories.items() if "iteration" in h["train"]}
    panels = [(adam, "epoch"), (lbfgs, "l-bfgs iteration")]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
    for ax, (group, xlabel) in zip(axes[0], panels, strict=True):
        for name, h in group.items():
            series = h["train"][key]
            steps = h["train"].get("iteration", list(range(1, len(series) + 1)))
            ax.plot(steps, np.asarray(series) * 100, label=name, lw=1.5)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%)" if key == "monitor_error" else key.replace("_", " "))
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def paper_vs_ours(doc: dict, field: str, *, key: str = "model", percent: bool = True) -> Figure:
    """Paired bars of one figure of a results file: ours beside the paper's, per row."""
    rows = [r for r in doc["rows"] if r[field]["ours"] is not None]
    if not rows:
        raise ValueError(f"no row of {doc.get('name')!r} has a measured {field!r}")
    names = [r[key] for r in rows]
    k = 100 if percent else 1
    ours = [r[field]["ours"] * k for r in rows]
    ref = [np.nan if r[field]["paper"] is None else r[field]["paper"] * k for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 2, 3.2))
    ax.bar(x - 0.2, ref, 0.4, label="paper", color="#bbbbbb")
    ax.bar(x + 0.2, ours, 0.4, label="this book", color="#1f77b4")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(field.replace("_", " ") + (" (%)" if percent else ""))
    ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def c_curves(doc: dict) -> Figure:
    """Success rate and mean distortion against c, one line per model (``c_sweep.json``)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name in dict.fromkeys(r["model"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["model"] == name]
        c = [r["c_value"]["ours"] for r in rows]
        ax1.plot(c, [r["success"]["ours"] * 100 for r in rows], "o-", label=name)
        ax2.plot(c, [r["distortion"]["ours"] for r in rows], "o-", label=name)
    for ax, label in ((ax1, "success rate (%)"), (ax2, "mean distortion (per-pixel rms)")):
        ax.set_xscale("log")
        ax.set_xlabel("c (weight of the squared norm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def adversarial_grid(
    images: torch.Tensor,
    adversarial: torch.Tensor,
    pred_clean: Sequence[int],
    pred_adv: Sequence[int],
    *,
    magnify: float = 10.0,
) -> Figure:
    """Figure-7 style: originals, adversarial examples, and their difference magnified, in rows.

    Args:
        images: ``(N, 1, 28, 28)`` originals in [0,1].
        adversarial: ``(N, 1, 28, 28)`` adversarial examples in [0,1].
        pred_clean, pred_adv: the model's prediction for each, shown under each image.
        magnify: the difference is shown as ``0.5 + magnify * (adversarial - image)``.
    """
    if images.shape != adversarial.shape:
        raise ValueError(f"images and adversarial must have one shape, got {tuple(images.shape)} "
                         f"and {tuple(adversarial.shape)}")
    n = len(images)
    diff = (0.5 + magnify * (adversarial - images)).clamp(0, 1)
    stacked = torch.cat([images, adversarial, diff])
    labels = ([f"pred {int(p)}" for p in pred_clean] + [f"pred {int(p)}" for p in pred_adv]
              + [""] * n)
    fig = image_grid(stacked, ncols=n, labels=labels,
                     row_labels=["original", "adversarial", f"difference x{magnify:g}"])
    return fig


def top_k_rows(
    images: torch.Tensor,
    indices: torch.Tensor | np.ndarray,
    row_labels: Sequence[str],
    *,
    labels: torch.Tensor | Sequence[int] | None = None,
    scale: float = 0.6,
) -> Figure:
    """Figures 1-2 of the paper: one row of top-k images per direction (unit or random).

    Args:
        images: ``(N, 1, 28, 28)`` the held-out set I.
        indices: ``(R, k)`` image indices per row, best first (``units.top_k``).
        row_labels: one name per row, e.g. "unit 3" or "direction 0".
        labels: ``(N,)`` true labels; if given, each image's label is written under it.
        scale: inches per image.
    """
    idx = torch.as_tensor(np.asarray(indices)).long()
    if idx.ndim != 2:
        raise ValueError(f"indices must have shape (R, k), got {tuple(idx.shape)}")
    if len(row_labels) != len(idx):
        raise ValueError(f"row_labels must hold {len(idx)} names, got {len(row_labels)}")
    flat = idx.flatten()
    under = None
    if labels is not None:
        lab = torch.as_tensor(np.asarray(labels))
        under = [str(int(v)) for v in lab[flat]]
    return image_grid(images[flat], ncols=idx.shape[1], labels=under, row_labels=row_labels,
                      scale=scale)


_GROUP_STYLE = {"units": ("#1f77b4", "o", "natural units"),
                "directions": ("#d62728", "s", "random directions"),
                "random": ("#7f7f7f", "^", "random images (floor)")}


def coherence_summary(doc: dict, *, measures: Sequence[str] = ("purity", "cosine")) -> Figure:
    """Coherence of top-k sets from ``units.json``: units vs random directions vs the floor.

    One column per probed layer, one row per measure; along x the set size k. For each group a
    thin bar spans the 10%-90% quantiles of the per-direction scores, the marker is the mean and
    its thick bar the bootstrap 95% interval.
    """
    rows = [r for r in doc["rows"] if r["group"] in _GROUP_STYLE]
    probes = list(dict.fromkeys((r["model"], r["layer"]) for r in rows))
    ks = sorted({int(r["k"]) for r in rows})
    if not probes or not ks:
        raise ValueError(f"no coherence rows in {doc.get('name')!r}")
    fig, axes = plt.subplots(len(measures), len(probes), squeeze=False, sharey="row",
                             figsize=(2.6 * len(probes) + 0.6, 2.5 * len(measures)))
    offsets = dict(zip(_GROUP_STYLE, (-0.22, 0.0, 0.22)))
    for (m_i, measure), (p_i, (model, layer)) in (
            (a, b) for a in enumerate(measures) for b in enumerate(probes)):
        ax = axes[m_i, p_i]
        for group, (color, marker, label) in _GROUP_STYLE.items():
            sel = {int(r["k"]): r for r in rows if (r["model"], r["layer"], r["measure"],
                                                    r["group"]) == (model, layer, measure, group)}
            xs = np.array([j + offsets[group] for j, k in enumerate(ks) if k in sel])
            got = [sel[k] for k in ks if k in sel]
            if not got:
                continue
            mean = np.array([r["mean"]["ours"] for r in got])
            lo = np.array([r["ci_low"]["ours"] for r in got])
            hi = np.array([r["ci_high"]["ours"] for r in got])
            q10 = np.array([r["q10"]["ours"] for r in got])
            q90 = np.array([r["q90"]["ours"] for r in got])
            ax.vlines(xs, q10, q90, color=color, lw=1, alpha=0.45)
            ax.errorbar(xs, mean, yerr=[mean - lo, hi - mean], fmt=marker, color=color,
                        ms=4, lw=2.5, capsize=0, label=label)
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.grid(axis="y", alpha=0.3)
        if m_i == len(measures) - 1:
            ax.set_xlabel(f"k ({model} {layer})", fontsize=8)
        if p_i == 0:
            ax.set_ylabel("label purity" if measure == "purity"
                          else "mean pairwise cosine", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def _short(name: str) -> str:
    """A compact label for a transfer-table row or column."""
    name = name.replace("Distorted for ", "")
    name = name.replace(", amplified to stddev=", " amplified to ")
    return name.replace("Gaussian noise, stddev=", "noise, stddev ")


def _matrix(doc: dict, field: str, rows: Sequence[str], cols: Sequence[str], which: str
            ) -> np.ndarray:
    cells = {(r["source"], r["target"]): r[field] for r in doc["rows"]
             if field in r and "target" in r}
    return np.array([[np.nan if cells.get((a, b), {}).get(which) is None
                      else cells[(a, b)][which] for b in cols] for a in rows], dtype=float)


def transfer_heatmaps(doc: dict, *, field: str = "error", rows: Sequence[str] | None = None,
                      cols: Sequence[str] | None = None) -> Figure:
    """Three heatmaps of a transfer table: ours, the paper's, and ours minus the paper's.

    Cells are annotated in percent; the difference uses a diverging map centred on zero (red:
    we measure more transfer than the paper, blue: less). Rows are the perturbed sets, columns
    the models they are fed to (``table2.json`` or ``table4.json``).
    """
    rows = list(rows or doc["settings"]["rows"])
    cols = list(cols or doc["settings"]["columns"])
    ours = _matrix(doc, field, rows, cols, "ours") * 100
    ref = _matrix(doc, field, rows, cols, "paper") * 100
    diff = ours - ref
    lim = max(1.0, float(np.nanmax(np.abs(diff)))) if np.isfinite(diff).any() else 1.0
    panels = [(ours, "this book (%)", "viridis", 0, 100), (ref, "paper (%)", "viridis", 0, 100),
              (diff, "this book - paper (points)", "RdBu_r", -lim, lim)]
    width = 0.75 * len(cols) + 1.2
    fig, axes = plt.subplots(1, 3, figsize=(3 * width + 2.5, 0.45 * len(rows) + 2.2),
                             sharey=True)
    for i, (ax, (m, label, cmap, lo, hi)) in enumerate(zip(axes, panels, strict=True)):
        im = ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
        for (a, b), v in np.ndenumerate(m):
            if np.isfinite(v):
                dark = (v - lo) / (hi - lo) < 0.55 if cmap == "viridis" else abs(v) > 0.6 * lim
                ax.text(b, a, f"{v:.0f}" if abs(v) >= 9.5 else f"{v:.1f}", ha="center",
                        va="center", fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(len(cols)), [_short(c) for c in cols], rotation=35, ha="right",
                      fontsize=7)
        ax.set_xlabel("fed to", fontsize=8)
        if i == 0:
            ax.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=7)
            ax.set_ylabel("made for (or noise)", fontsize=8)
        cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def transfer_examples(images: torch.Tensor, adversarial: torch.Tensor, counts: Sequence[int],
                      n_models: int, *, labels: Sequence[int] | None = None,
                      scale: float = 0.9) -> Figure:
    """Adversarial examples that fool several models at once: originals above, examples below.

    Args:
        images: ``(k, 1, 28, 28)`` originals.
        adversarial: ``(k, 1, 28, 28)`` one source's adversarial examples of them.
        counts: how many of the ``n_models`` other models each example fools.
        n_models: how many other models were asked.
        labels: the true labels, written under the originals.
    """
    if images.shape != adversarial.shape:
        raise ValueError(f"images and adversarial must have one shape, got {tuple(images.shape)} "
                         f"and {tuple(adversarial.shape)}")
    k = len(images)
    if len(counts) != k:
        raise ValueError(f"counts must hold {k} numbers, got {len(counts)}")
    under = ([f"label {int(v)}" for v in labels] if labels is not None else [""] * k)
    under += [f"fools {int(c)}/{n_models}" for c in counts]
    return image_grid(torch.cat([images, adversarial]), ncols=k, labels=under, scale=scale,
                      row_labels=["original", "adversarial"])


def transfer_curves(doc: dict, *, table2: dict | None = None, sources: Sequence[str] | None = None,
                    targets: Sequence[str] | None = None) -> Figure:
    """Transfer rate against mean distortion: one small panel per source (row) and target (column).

    Each panel shows the target's error on the source's fixed-c sets (``transfer_curves.json``)
    against the sets' mean distortion, the noise floor (the target's error on Gaussian noise of
    the same per-image distortion, dashed grey), the paper's Table 2 cell at the paper's average
    distortion (black cross) and, given ``table2`` (``table2.json``), ours at our minimum
    distortion (open orange circle). Diagonal panels (the attacked model itself) are shaded.
    """
    from ..experiments import paper
    from ..plumbing import results

    sources = list(sources or doc["settings"]["sources"])
    targets = list(targets or doc["settings"]["targets"])
    ours_t2: dict[tuple[str, str], tuple[float, float]] = {}
    if table2 is not None:
        dist = {r["source"]: r["distortion"]["ours"] for r in table2["rows"] if "distortion" in r}
        ours_t2 = {(r["source"], r["target"]): (dist.get(r["source"]), r["error"]["ours"])
                   for r in table2["rows"] if "error" in r}
    fig, axes = plt.subplots(len(sources), len(targets), squeeze=False, sharey=True,
                             figsize=(1.55 * len(targets) + 0.9, 1.35 * len(sources) + 0.9))
    for (a, s), (b, t) in ((p, q) for p in enumerate(sources) for q in enumerate(targets)):
        ax = axes[a, b]
        cur = results.series({**doc, "rows": [r for r in doc["rows"] if "c_value" in r]},
                             "distortion", ("error", "noise_error"), source=s, target=t)
        d = np.asarray(cur["distortion"])
        ax.plot(d, np.asarray(cur["noise_error"]) * 100, "--", color="#999999", lw=1,
                label="Gaussian noise, same distortion")
        ax.plot(d, np.asarray(cur["error"]) * 100, "o-", color="#1f77b4", ms=2.5, lw=1.3,
                label="fixed-c adversarial sets")
        ref = paper.TABLE2.get(s, {}).get(t)
        if ref is not None:
            ax.plot([paper.TABLE2_DISTORTION[s]], [ref * 100], "x", color="black", ms=6, mew=1.5,
                    label="paper, Table 2")
        mine = ours_t2.get((s, t))
        if mine is not None and mine[0] is not None:
            ax.plot([mine[0]], [mine[1] * 100], "o", mfc="none", color="#ff7f0e", ms=6, mew=1.3,
                    label="ours, Table 2")
        if s == t:
            ax.set_facecolor("#f2f2f2")
        ax.set_ylim(-3, 103)
        ax.set_xlim(0, None)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=6)
        if a == 0:
            ax.text(0.5, 1.08, f"fed to {t}", transform=ax.transAxes, ha="center", fontsize=7)
        if b == 0:
            ax.set_ylabel(f"made for\n{s}\nerror (%)", fontsize=7)
        if a == len(sources) - 1:
            ax.set_xlabel("mean distortion", fontsize=7)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:  # collect every kind of mark once
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def lipschitz_measured_vs_bound(doc: dict) -> Figure:
    """Table 5 for the zoo: the product bound L beside what each network does (``table5.json``).

    One column per model, on a log axis: the bound (black bar), the largest and the median local
    Lipschitz constant ``||d phi/dx||`` over the test images, and the largest and the median
    ``||phi(x+r) - phi(x)|| / ||r||`` at the model's adversarial examples.
    """
    rows = [r for r in doc["rows"] if r.get("kind") == "network" and "local_max" in r]
    if not rows:
        raise ValueError(f"no network rows with measurements in {doc.get('name')!r}")
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.0 * len(rows) + 2.5, 3.6))
    ax.bar(x, [r["bound"]["ours"] for r in rows], 0.6, color="#dddddd", edgecolor="black",
           lw=0.8, label="product bound L")
    series = [("local_max", "local, largest", "#1f77b4", "v"),
              ("local_median", "local, median", "#1f77b4", "o"),
              ("adversarial_ratio_max", "at adversarial examples, largest", "#d62728", "^"),
              ("adversarial_ratio_median", "at adversarial examples, median", "#d62728", "s")]
    for i, (field, label, color, marker) in enumerate(series):
        vals = [np.nan if r[field]["ours"] is None else r[field]["ours"] for r in rows]
        ax.plot(x + (i - 1.5) * 0.1, vals, marker, color=color, ms=5, ls="none", label=label,
                mfc=color if "median" in field else "white")
    ax.set_yscale("log")
    ax.set_xticks(x, [r["model"] for r in rows], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("gain ||change in logits|| / ||change in pixels||", fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def fourier_norm_map(norms: torch.Tensor | np.ndarray) -> Figure:
    """``||A(xi)||`` over the frequencies of one convolution (``spectral.fourier_norms``).

    The zero frequency is moved to the centre; axes are cycles per pixel of the subsampled grid.
    The layer's bound is the largest value on the map.
    """
    arr = norms.detach().cpu().numpy() if isinstance(norms, torch.Tensor) else np.asarray(norms)
    if arr.ndim != 2:
        raise ValueError(f"norms must be a 2-D map, got shape {arr.shape}")
    m1, m2 = arr.shape
    shifted = np.fft.fftshift(arr)
    f1, f2 = np.fft.fftshift(np.fft.fftfreq(m1)), np.fft.fftshift(np.fft.fftfreq(m2))
    fig, ax = plt.subplots(figsize=(4.2, 3.5))
    im = ax.imshow(shifted, origin="lower", cmap="magma", aspect="equal",
                   extent=(f2[0] - 0.5 / m2, f2[-1] + 0.5 / m2, f1[0] - 0.5 / m1,
                           f1[-1] + 0.5 / m1))
    i, j = np.unravel_index(np.argmax(shifted), shifted.shape)
    ax.plot(f2[j], f1[i], "c+", ms=12, mew=2, label=f"max {arr.max():.3g}")
    ax.set_xlabel("horizontal frequency (cycles per pixel)")
    ax.set_ylabel("vertical frequency")
    ax.legend(fontsize=8, frameon=False, loc="upper right", labelcolor="white")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("||A(xi)||", fontsize=8)
    fig.tight_layout()
    return fig


def advtrain_curves(doc: dict) -> Figure:
    """The variants of ``advtrain.json`` epoch by epoch: weight decay alone, the input pool,
    per-layer pools and dropout.

    Panels: the test error (the pools' clean warm-up shaded); the training loss (solid: the
    objective, clean and pool examples together; dashed: the clean images' part); the part of
    each pool's examples in the epoch's minibatches that the network misclassified (per pool
    for the per-layer run); the mean distortion of the fresh examples of each refresh, against
    the network as it was then (pixels for the input, activations for a hidden layer).
    """
    s = doc["settings"]
    curves = s["curves"]
    warmups = [v["warmup_epochs"] for v in (s.get("variants") or {}).values()
               if v and v.get("layers")]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    styles = {"input": "-", "act1": "--", "act2": ":"}
    for k, (name, c) in enumerate(curves.items()):
        color = ADVTRAIN_COLORS.get(name, f"C{k}")
        axes[0].plot(c["epoch"], np.asarray(c["test_error"]) * 100, lw=1.5, color=color,
                     label=name)
        axes[1].plot(c["epoch"], c["loss"], lw=1.5, color=color, label=name)
        if c.get("clean_loss") and c.get("pool_error"):
            axes[1].plot(c["epoch"], c["clean_loss"], lw=1, ls="--", color=color)
        by_layer = c.get("pool_error_by_layer") or {}
        if len(by_layer) > 1:
            for layer, vals in by_layer.items():
                axes[2].plot(c["pool_epoch"], np.asarray(vals) * 100, lw=1,
                             ls=styles.get(layer, "-"), color=color, label=f"{name}: {layer}")
        elif c.get("pool_error"):
            axes[2].plot(c["pool_epoch"], np.asarray(c["pool_error"]) * 100, lw=1.2,
                         color=color, label=name)
        if c.get("fresh_distortion"):
            layers = c.get("fresh_layer") or ["input"] * len(c["fresh_distortion"])
            for layer in dict.fromkeys(layers):
                pts = [(e, d) for e, d, lay in zip(c["refresh_epoch"], c["fresh_distortion"],
                                                   layers, strict=True) if lay == layer]
                axes[3].plot(*zip(*pts, strict=True), ls=styles.get(layer, "-"), lw=1,
                             color=color, label=f"{name}: {layer}")
    if warmups:
        axes[0].axvspan(0.5, max(warmups) + 0.5, color="#eeeeee", zorder=0,
                        label="clean warm-up")
    labels = [("test error (%)", "epoch"), ("training loss", "epoch"),
              ("pool examples misclassified (%)", "epoch"),
              ("distortion of fresh examples", "epoch (at the refresh)")]
    for ax, (ylabel, xlabel) in zip(axes, labels, strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, frameon=False)
    axes[0].set_ylim(bottom=0)
    axes[2].set_ylim(bottom=0)
    fig.tight_layout()
    return fig



def target_rules(doc: dict) -> Figure:
    """Table 1's mean distortion per model under each target rule, the paper's as a star.

    ``table1.json``'s ``distortion_<rule>`` cells: the band from the easiest to the hardest
    target per image, the mean over every target, the random rule and the untargeted one (the
    easiest by construction, drawn beside it); the paper's figure as a black star.
    """
    rows = [r for r in doc["rows"] if "distortion_hardest" in r]
    if not rows:
        raise ValueError(f"no row of {doc.get('name')!r} holds the target rules' distortions")

    def get(r: dict, rule: str) -> float:
        v = r[f"distortion_{rule}"]["ours"]
        return np.nan if v is None else v

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(1.1 * len(rows) + 2.5, 3.4))
    lo = np.array([get(r, "easiest") for r in rows])
    hi = np.array([get(r, "hardest") for r in rows])
    ax.bar(x, hi - lo, 0.5, bottom=lo, color="#c6dbef", label="easiest to hardest target")
    ax.plot(x, [get(r, "every") for r in rows], "o", color="#1f77b4", label="every target")
    ax.plot(x, [get(r, "random") for r in rows], "s", color="#ff7f0e", label="random target")
    ax.plot(x + 0.18, [get(r, "untargeted") for r in rows], "v", ms=5, color="#2ca02c",
            label="untargeted (= easiest)")
    paper_values = [np.nan if r["distortion"]["paper"] is None else r["distortion"]["paper"]
                    for r in rows]
    ax.plot(x, paper_values, "*", ms=12, color="black", label="paper")
    ax.set_xticks(x, [r["model"] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("mean distortion (per-pixel rms)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


#: One colour per adversarial-training variant, shared by the chapter's figures.
ADVTRAIN_COLORS = {"weight decay": "#7f7f7f", "input pool": "#1f77b4",
                   "per-layer pools": "#d62728", "dropout": "#2ca02c"}


def advtrain_ablations(doc: dict) -> Figure:
    """The ablations of ``advtrain_ablations.json``, each run of the short schedule beside the
    others.

    Left: each run's test error (bars; hatched where the paired test tells it from weight decay
    alone, p < 0.05), with weight decay alone as a dashed line. Middle: the training loss epoch
    by epoch. Right: the part of the pool examples in each epoch's minibatches misclassified.
    """
    s = doc["settings"]
    rows = doc["rows"]
    base = s["baseline"]
    e_base = next(r["test_error"]["ours"] for r in rows if r["model"] == base)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    ax = axes[0]
    y = np.arange(len(rows))
    for i, r in enumerate(rows):
        p = r["p_value"]["ours"]
        ax.barh(i, r["test_error"]["ours"] * 100, color=f"C{i}", alpha=0.8,
                hatch="//" if p is not None and p < 0.05 else None, edgecolor="black", lw=0.5)
    ax.axvline(e_base * 100, color="black", ls="--", lw=1, label=f"{base} (no pool)")
    ax.set_yticks(y, [r["model"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test error (%)")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax.grid(axis="x", alpha=0.3)
    for i, r in enumerate(rows):
        c = s["curves"][r["model"]]
        axes[1].plot(c["epoch"], c["loss"], lw=1.3, color=f"C{i}", label=r["model"])
        if c.get("pool_error"):
            axes[2].plot(c["pool_epoch"], np.asarray(c["pool_error"]) * 100, lw=1.3,
                         color=f"C{i}", label=r["model"])
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("training loss")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("pool examples misclassified (%)")
    axes[2].set_ylim(bottom=0)
    for ax in axes[1:]:
        ax.grid(alpha=0.3)
    axes[2].legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def perturbation_shares(doc: dict) -> Figure:
    """``perturbation_units.json``: how much of a hidden layer's adversarial change the top-k
    coordinates carry, in the unit basis and in random orthonormal bases.

    One column per probed (model, layer). Top row: Table 1's adversarial examples (the search
    over c), k along x; markers are means, bars bootstrap 95% intervals, and a grey dash the
    expected share in a random basis. Bottom row: the fixed-c sets at k = 10% of the layer, c
    along a log axis (large c: small perturbations).
    """
    rows = doc["rows"]
    probes = list(dict.fromkeys((r["model"], r["layer"]) for r in rows))
    if not probes:
        raise ValueError(f"no rows in {doc.get('name')!r}")
    search = doc["settings"]["sets"][0]
    style = {"unit": ("C0", "o", "units"), "random": ("C3", "s", "random orthonormal bases")}
    fig, axes = plt.subplots(2, len(probes), squeeze=False, sharey=True,
                             figsize=(2.6 * len(probes) + 0.6, 5.0))
    for p_i, (model, layer) in enumerate(probes):
        top = [r for r in rows if (r["model"], r["layer"], r["set"]) == (model, layer, search)]
        top.sort(key=lambda r: int(r["k"]))
        ax = axes[0, p_i]
        for j, (key, (color, marker, label)) in enumerate(style.items()):
            xs = np.arange(len(top)) + (j - 0.5) * 0.2
            mean = np.array([r[key]["ours"] for r in top])
            lo = np.array([r[f"{key}_low"]["ours"] for r in top])
            hi = np.array([r[f"{key}_high"]["ours"] for r in top])
            ax.errorbar(xs, mean, yerr=[mean - lo, hi - mean], fmt=marker, color=color, ms=4,
                        lw=2, capsize=0, label=label)
        ax.hlines([r["expected"]["ours"] for r in top], np.arange(len(top)) - 0.3,
                  np.arange(len(top)) + 0.3, color="grey", lw=1, label="expected, random basis")
        ax.set_xticks(range(len(top)), [r["k"] for r in top])
        ax.set_xlabel(f"k ({model} {layer})", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        low = [r for r in rows if (r["model"], r["layer"]) == (model, layer)
               and r["set"] != search and r["k_kind"] == "fraction"]
        low.sort(key=lambda r: r["c_value"]["ours"])
        ax = axes[1, p_i]
        for key, (color, marker, _) in style.items():
            cs = np.array([r["c_value"]["ours"] for r in low])
            mean = np.array([r[key]["ours"] for r in low])
            lo = np.array([r[f"{key}_low"]["ours"] for r in low])
            hi = np.array([r[f"{key}_high"]["ours"] for r in low])
            ax.errorbar(cs, mean, yerr=[mean - lo, hi - mean], fmt=f"{marker}-", color=color,
                        ms=4, lw=1.2, capsize=0)
        ax.set_xscale("log")
        ax.set_xlabel(f"fixed c, k = {low[0]['k'] if low else '?'}", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("share of |change|² on top k", fontsize=9)
    axes[1, 0].set_ylabel("share on top 10%", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig
