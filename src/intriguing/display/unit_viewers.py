"""Property 1 on the page: strips of top-k images, their viewers, and the comparison table.

Why: the engine (``engine.units``) computes which test images maximise a unit or a direction;
this module only draws them. Its viewers take plain data: the images and labels of the held-out
set, the top-k sets to show (``units.strip_sets``) or, for the live viewer, a function that
ranks on demand (``units.Ranker``). The static viewer holds every frame, so the rendered book
switches between them in the browser without Python.

References: Szegedy et al. 2014, arXiv:1312.6199, section 3 (Figures 1-2 on MNIST). The
chapters "Semantic units" and "Random directions" use it.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import tables
from .widgets import img_html, linked_stacks

#: The class the viewers' boxes carry, and the CSS that keeps their pixels square.
CSS_CLASS = "intriguing-units"
_STYLE = f"<style>.{CSS_CLASS} img.pixelated {{ image-rendering: pixelated; }}</style>"

#: A live viewer's ranking: ``rank(basis, index, k) -> (name, indices (k,))`` with an ``n_units``
#: attribute (``engine.units.Ranker``).
Rank = Callable[[str, int, int], tuple[str, np.ndarray]]


def _numpy(values: Any) -> np.ndarray:
    """A torch tensor (on any device) or an array-like as a numpy array."""
    if hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def strip_png(images: Any, *, gap: int = 2) -> bytes:
    """A row of 28x28 images as one grey-scale PNG (white gaps between them).

    Args:
        images: ``(k, 1, 28, 28)`` or ``(k, 28, 28)`` in [0,1] (numpy or torch).
        gap: pixels between images.

    Returns:
        PNG bytes of a ``28 x (28k + gap(k-1))`` image.
    """
    from PIL import Image

    arr = _numpy(images)
    arr = arr[:, 0] if arr.ndim == 4 else arr
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must have shape (k, 1, H, W) or (k, H, W), got {arr.shape}")
    h, w = arr.shape[1:]
    canvas = np.full((h, len(arr) * (w + gap) - gap), 255, dtype=np.uint8)
    for j, img in enumerate(arr):
        canvas[:, j * (w + gap): j * (w + gap) + w] = np.rint(np.clip(img, 0, 1) * 255)
    buf = io.BytesIO()
    Image.fromarray(canvas, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def strip_alt(name: str, labels: Sequence[int]) -> str:
    """A strip in words (its image's tooltip and accessible description)."""
    labs = [int(v) for v in labels]
    return (f"The {len(labs)} test images that excite {name} most, left to right; their true "
            f"labels are {' '.join(map(str, labs))}")


def caption_html(name: str, labels: Sequence[int]) -> str:
    """The caption under a strip: which direction, the true labels, their purity."""
    labs = [int(v) for v in labels]
    if not labs:
        raise ValueError("labels must hold at least one label")
    purity = max(labs.count(v) for v in set(labs)) / len(labs)
    return (f'<div style="font-size:0.8rem">{html.escape(name)} &middot; true labels '
            f"{' '.join(map(str, labs))} &middot; label purity {purity:.2f}</div>")


def strip_html(images: np.ndarray, labels: np.ndarray, name: str, indices: np.ndarray, *,
               display_scale: int = 2) -> tuple[str, str]:
    """``(img, caption)`` HTML of the images ``indices`` (best first) of one direction."""
    idx = np.asarray(indices, dtype=np.int64)
    labs = labels[idx].tolist()
    k = len(idx)
    return (img_html(strip_png(images[idx]), strip_alt(name, labs), k * 30 * display_scale,
                     28 * display_scale),
            caption_html(name, labs))


def _check_data(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    imgs, labs = _numpy(images), _numpy(labels).astype(np.int64)
    if imgs.ndim not in (3, 4) or labs.shape != (len(imgs),):
        raise ValueError(f"images (N, 1, 28, 28) and labels (N,) must match, got "
                         f"{imgs.shape} and {labs.shape}")
    return imgs, labs


def viewer(images: Any, labels: Any, sets: Mapping[str, Sequence[tuple[str, Any]]], *,
           ks: Sequence[int] = (8, 16, 32), display_scale: int = 2) -> Any:
    """A no-kernel viewer of top-k strips: a basis (units or random directions), an index, k.

    Every frame is a precomputed PNG strip in nested ``widgets.Stack``s (basis -> index -> k);
    a ToggleButtons control and two SelectionSliders drive the Stacks' indices by
    ``widgets.jslink`` only, so the rendered book switches frames in the browser.

    Args:
        images: ``(N, 1, 28, 28)`` the held-out set I.
        labels: ``(N,)`` its true labels.
        sets: per basis, ``(name, indices)`` of each direction, indices best first and at least
            ``max(ks)`` long (``units.strip_sets``); every basis holds as many directions.
        ks: the k the slider offers.
        display_scale: the browser shows strips this many times larger (pixelated).

    Returns:
        A ``widgets.VBox``; its attribute ``links`` holds the jslinks.

    Raises:
        ValueError: no basis, bases of different sizes, or sets shorter than ``max(ks)``.
    """
    import ipywidgets as widgets
    from ipywidgets.widgets.widget_string import HTMLStyle

    imgs, labs = _check_data(images, labels)
    ks = [int(k) for k in ks]
    sizes = {len(v) for v in sets.values()}
    if not sets or len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"sets must hold the same non-zero number of directions per basis, "
                         f"got {({b: len(v) for b, v in sets.items()})}")
    if not ks or min(ks) < 1 or any(len(idx) < max(ks) for v in sets.values() for _, idx in v):
        raise ValueError(f"ks must hold k in 1..{min(len(i) for v in sets.values() for _, i in v)}"
                         f" (the sets' length), got {ks}")
    n = sizes.pop()
    style = HTMLStyle()  # one style model for every strip and caption
    frames = []
    for directions in sets.values():
        per_index = []
        for name, idx in directions:
            per_k = []
            for k in ks:
                img, cap = strip_html(imgs, labs, name, _numpy(idx)[:k],
                                      display_scale=display_scale)
                per_k.append(widgets.VBox([widgets.HTML(img, style=style),
                                           widgets.HTML(cap, style=style)]))
            per_index.append(per_k)
        frames.append(per_index)
    basis = widgets.ToggleButtons(options=[(b, j) for j, b in enumerate(sets)], index=0,
                                  description="basis")
    index = widgets.SelectionSlider(options=[(str(i), i) for i in range(n)], index=0,
                                    description="index")
    kslider = widgets.SelectionSlider(options=[(str(k), j) for j, k in enumerate(ks)], index=0,
                                      description="k")
    outer, links = linked_stacks(frames, [basis, index, kslider], [0, 0, 0])
    box = widgets.VBox([widgets.HBox([basis]), widgets.HBox([index, kslider]),
                        widgets.HTML(_STYLE), outer])
    box.add_class(CSS_CLASS)
    box.links = links
    return box


def live_viewer(images: Any, labels: Any, rank: Rank, *, ks: Sequence[int] = (8, 16, 32, 64),
                display_scale: int = 2) -> Any:
    """The top-k viewer live in Jupyter: any unit, any direction seed, any k of ``ks``.

    The static ``viewer`` holds a few precomputed frames for the rendered book; this one asks
    ``rank`` for the strip on every move, so a student can try every unit of the layer and as
    many random directions as they like.

    Args:
        images: ``(N, 1, 28, 28)`` the held-out set I.
        labels: ``(N,)`` its true labels.
        rank: ``rank(basis, index, k) -> (name, indices (k,))`` for basis "unit" (index: the
            unit) or "random direction" (index: its seed), with an attribute ``n_units``
            (``units.Ranker(acts)``).
        ks: the k the slider offers.
        display_scale: the browser shows strips this many times larger (pixelated).

    Returns:
        A ``widgets.VBox``; ``box.render(basis, index, k)`` draws a frame (also called on moves),
        ``box.controls`` holds the basis, index and k controls.
    """
    import ipywidgets as widgets

    imgs, labs = _check_data(images, labels)
    n_units = int(rank.n_units)  # type: ignore[attr-defined]
    ks = [int(k) for k in ks]
    if not ks or min(ks) <= 0 or max(ks) > len(imgs):
        raise ValueError(f"ks must hold k in 1..{len(imgs)}, got {ks}")
    basis = widgets.ToggleButtons(options=["unit", "random direction"], description="basis")
    index = widgets.IntSlider(value=0, min=0, max=n_units - 1, description="unit / seed",
                              continuous_update=False)
    kslider = widgets.SelectionSlider(options=ks, value=ks[0], description="k")
    image = widgets.HTML()
    caption = widgets.HTML()

    def render(which: str, i: int, k: int) -> None:
        name, idx = rank(which, i, k)
        image.value, caption.value = strip_html(imgs, labs, name, idx,
                                                display_scale=display_scale)

    def on_change(_: Any = None) -> None:
        index.max = n_units - 1 if basis.value == "unit" else 10_000
        render(basis.value, index.value, kslider.value)

    for control in (basis, index, kslider):
        control.observe(on_change, names="value")
    on_change()
    box = widgets.VBox([basis, widgets.HBox([index, kslider]), widgets.HTML(_STYLE), image,
                        caption])
    box.add_class(CSS_CLASS)
    box.render = render
    box.controls = (basis, index, kslider)
    return box


def comparison_table(doc: Mapping[str, Any]) -> str:
    """``units.json`` as an HTML table: one row per (layer, k, measure) comparison.

    Columns: each group's mean with its bootstrap interval (units, random directions, random
    images), the difference units - directions with its interval, the Mann-Whitney p-value, the
    Holm-adjusted one, and which group the corrected test finds more coherent (from the file's
    summaries, ``experiments.coherence.summarize_units``).
    """
    def fmt_ci(r: Mapping[str, Any]) -> str:
        return (f"{r['mean']['ours']:.3f} [{r['ci_low']['ours']:.3f}, "
                f"{r['ci_high']['ours']:.3f}]")

    groups = {(r["model"], r["layer"], r["k"], r["measure"], r["group"]): r for r in doc["rows"]}
    body = []
    for c in doc["summaries"]["comparisons"]:
        key = (c["model"], c["layer"], c["k"], c["measure"])
        cells = [groups[(*key, g)] for g in ("units", "directions", "random")]
        diff = (f"{c['difference']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
                if c["ci_low"] is not None else f"{c['difference']:+.3f}")
        body.append([f"{c['model']} {c['layer']}", c["k"], c["measure"],
                     *(fmt_ci(r) for r in cells), diff, f"{c['p']:.2g}", f"{c['p_holm']:.2g}",
                     c["more_coherent"]])
    return tables.html_table(["layer", "k", "measure", "units", "random directions",
                              "random images", "units - directions", "p (U test)",
                              "p (Holm)", "more coherent"], body)


# --------------------------------------------------------------------------------------------
# Property 1 for adversarial perturbations: which basis carries a hidden layer's change


def share_table(doc: Mapping[str, Any]) -> str:
    """``perturbation_units.json``'s search-set comparisons as an HTML table.

    One row per (model, layer, k): the mean top-k share of the change in the unit basis and in
    random orthonormal bases with their bootstrap intervals, the expected random share, the
    paired difference with its interval, the share of images where units carry more, the
    Wilcoxon p-value before and after the Holm correction, and which basis carries more
    (``experiments.coherence.summarize_perturbation_units``).
    """
    rows = {(r["model"], r["layer"], r["set"], r["k"]): r for r in doc["rows"]}
    search = doc["settings"]["sets"][0]

    def ci(r: Mapping[str, Any], key: str, signed: bool = False) -> str:
        f = "+.3f" if signed else ".3f"
        return (f"{r[key]['ours']:{f}} [{r[f'{key}_low']['ours']:{f}}, "
                f"{r[f'{key}_high']['ours']:{f}}]")

    body = []
    for c in doc["summaries"]["comparisons"]:
        r = rows[(c["model"], c["layer"], search, c["k"])]
        body.append([f"{c['model']} {c['layer']}", c["k"], int(r["n"]["ours"]), ci(r, "unit"),
                     ci(r, "random"), f"{r['expected']['ours']:.3f}",
                     ci(r, "difference", signed=True), f"{c['wins']:.2f}", f"{c['p']:.2g}",
                     f"{c['p_holm']:.2g}", c["carries_more"]])
    return tables.html_table(["layer", "k", "images", "units", "random bases",
                              "expected (random)", "units - random", "units win",
                              "p (Wilcoxon)", "p (Holm)", "carries more"], body)


def energy_svg(unit: Sequence[float], random: Sequence[float], ks: Sequence[int], *,
               width: int = 420, height: int = 200) -> str:
    """Sorted magnitudes of a layer's change in two bases, as an inline SVG.

    Args:
        unit, random: ``(D,)`` shares of |delta|^2 per coordinate, largest first
            (``perturbation_units.sorted_energy``); the curves show their square roots,
            |coordinate| / |delta|.
        ks: ranks marked by dashed lines (the top-k boundaries).

    Raises:
        ValueError: the two curves differ in length or are empty.
    """
    u, r = np.sqrt(np.asarray(unit, dtype=float)), np.sqrt(np.asarray(random, dtype=float))
    if u.ndim != 1 or u.shape != r.shape or len(u) == 0:
        raise ValueError(f"unit and random must be two 1-d arrays of one length, got "
                         f"{u.shape} and {r.shape}")
    d, peak = len(u), max(float(u.max()), float(r.max()), 1e-12)
    left, bottom, top, right = 40, 28, 10, 10

    def xy(v: np.ndarray) -> str:
        xs = left + (width - left - right) * (np.arange(d) + 0.5) / d
        ys = height - bottom - (height - bottom - top) * v / peak
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))

    marks = "".join(
        f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#999" '
        f'stroke-dasharray="3,3"/>'
        for x in (left + (width - left - right) * k / d for k in ks if 1 <= k <= d))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="sorted magnitudes of the change in the unit basis and in a '
            f'random orthonormal basis">'
            f'<path d="M{left},{top} V{height - bottom} H{width - right}" stroke="#999" '
            f'fill="none"/>{marks}'
            f'<polyline points="{xy(r)}" fill="none" stroke="#d62728" stroke-width="1.8"/>'
            f'<polyline points="{xy(u)}" fill="none" stroke="#1f77b4" stroke-width="1.8"/>'
            f'<text x="{width - 120}" y="{top + 12}" fill="#1f77b4" font-size="11">units</text>'
            f'<text x="{width - 120}" y="{top + 26}" fill="#d62728" font-size="11">random '
            f'basis</text><text x="{left}" y="{height - 8}" font-size="11">rank of the '
            f'coordinate (1 = largest), dashed: k</text></svg>')


def perturbation_panel_html(image: Any, result: Mapping[str, Any], *, label: int | None = None,
                            target: int | None = None, display_scale: int = 3) -> str:
    """One frame of the perturbation panel: the two images, the layer's change, the shares.

    Args:
        image: ``(1, 28, 28)`` or ``(1, 1, 28, 28)`` the clean image.
        result: a ``perturbation_units.PerturbationProbe`` answer (``adversarial``,
            ``predicted``, ``distortion``, ``norm``, ``unit``, ``random``, ``shares``).
        label, target: shown in the caption when given.
        display_scale: the images' magnification.
    """
    pair = np.concatenate([_numpy(image).reshape(1, 28, 28),
                           _numpy(result["adversarial"]).reshape(1, 28, 28)])
    alt = "the test image and its adversarial example"
    img = img_html(strip_png(pair), alt, 58 * display_scale, 28 * display_scale)
    head = (f"label {label} &middot; " if label is not None else "") + (
        f"target {target} &middot; " if target is not None else "")
    meta = (f'<div style="font-size:0.85rem">{head}predicted {int(result["predicted"])} '
            f'&middot; distortion {result["distortion"]:.4f} &middot; |change of the layer| '
            f'{result["norm"]:.3g}</div>')
    if result.get("unit") is None:
        return (img + meta + '<div style="font-size:0.85rem">The attack left the layer '
                "unchanged (the model already gives the target).</div>")
    ks = [s[0] for s in result["shares"]]
    table = tables.html_table(
        ["top k", "units", "random basis", "expected, random"],
        [[k, f"{u:.1%}", f"{r:.1%}", f"{e:.1%}"] for k, u, r, e in result["shares"]])
    return img + meta + energy_svg(result["unit"], result["random"], ks) + table


def perturbation_viewer(images: Any, labels: Any, probe: Callable[..., Mapping[str, Any]], *,
                        c_range: tuple[float, float] = (1e-3, 1e2), c: float = 1.0) -> Any:
    """The perturbation panel live in Jupyter: an image, a target and c drive one attack.

    Each change of a control calls ``probe(image, target, c)`` once
    (``perturbation_units.PerturbationProbe``, built on ``attacks.lbfgs``: the one adapter
    through which this viewer reaches the engine) and redraws ``perturbation_panel_html``.
    The rendered book shows ``browser_viewer.units_panel`` instead, which runs the same solve
    in the reader's browser.

    Args:
        images: ``(N, 1, 28, 28)`` test images.
        labels: ``(N,)`` their labels.
        probe: ``probe(image (1, 1, 28, 28), target, c) -> result``.
        c_range: the log slider's ends.
        c: its first value.

    Returns:
        A ``widgets.VBox``; ``box.render(i, target, c)`` redraws a frame (also called on moves)
        and returns the probe's result; ``box.controls`` holds the image, target and c
        controls.

    Raises:
        ValueError: bad images, labels or c range.
    """
    import ipywidgets as widgets

    imgs, labs = _check_data(images, labels)
    lo, hi = (float(v) for v in c_range)
    if not 0 < lo < hi or not lo <= c <= hi:
        raise ValueError(f"c_range must be (low, high) with 0 < low < high and c inside it, got "
                         f"{c_range} and c={c}")
    index = widgets.IntSlider(value=0, min=0, max=len(imgs) - 1, description="image",
                              continuous_update=False)
    target = widgets.Dropdown(options=list(range(10)), value=(int(labs[0]) + 1) % 10,
                              description="target")
    cslider = widgets.FloatLogSlider(value=c, base=10, min=np.log10(lo), max=np.log10(hi),
                                     step=0.05, description="c", continuous_update=False)
    frame = widgets.HTML()

    def render(i: int, t: int, cc: float) -> Mapping[str, Any]:
        res = probe(imgs[i:i + 1], int(t), float(cc))
        frame.value = perturbation_panel_html(imgs[i], res, label=int(labs[i]), target=int(t))
        return res

    def on_change(_: Any = None) -> None:
        render(index.value, target.value, cslider.value)

    for control in (index, target, cslider):
        control.observe(on_change, names="value")
    on_change()
    box = widgets.VBox([widgets.HBox([index, target]), cslider, frame])
    box.add_class(CSS_CLASS)
    box.render = render
    box.controls = (index, target, cslider)
    return box
