"""Attack viewers: step through adversarial examples by image, target class and constant c.

Why: the paper's central figures (Szegedy et al. 2014, arXiv:1312.6199, section 4.2, Figure 5
and Tables 3-4) are single frames of a search: one image, one target label, one constant c of
the box-constrained L-BFGS problem. A reader learns more by moving c and watching the
perturbation shrink until the attack fails, and by seeing which other networks the same
perturbation fools. Two viewers share one frame layout and the same pure render functions:

- ``static_viewer(frames)`` needs no kernel. Every frame is precomputed (``precompute_frames``)
  and held in nested ``widgets.Stack``s (image -> target -> c, under a source level when frames
  of several attacked models are given); the controls drive the Stacks' indices with
  ``widgets.jslink`` only, so the rendered book switches frames in the browser.
- ``live_viewer(...)`` runs the attack on demand in a notebook, memoising every solve; with
  ``sources`` the reader also picks which model is attacked.

With several models per frame the same viewer shows transfer (section 4.3): the panel lists
every model's prediction for the example made for the attacked one.

The frame: a PNG strip [original | adversarial | magnified difference] and an HTML panel with
each model's prediction and the probability it gives the target (``render_png``,
``render_panel_html``). The book uses both in the chapters on blind spots and transferability.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from ipywidgets.widgets.widget_string import HTMLStyle
from PIL import Image

from ..plumbing import checks, files

SIDE = 28
N_CLASSES = 10
GAP = 2  # pixels between the three panels of a strip
DISPLAY_SCALE = 4  # the browser shows a strip this many times larger (pixelated)
NPZ_FORMAT = 1

# Colours of the difference panel: negative -> blue, 0 -> grey, positive -> red.
_GREY = np.array([128, 128, 128], dtype=np.float64)
_RED = np.array([202, 0, 32], dtype=np.float64)
_BLUE = np.array([5, 113, 176], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, eq=False)
class AttackFrames:
    """Precomputed frames of an attack: every (image, target, c) and every model's answer.

    Attributes:
        originals: ``(I, 28, 28)`` pixels in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ``(C,)`` the constants c, positive and strictly ascending.
        targets: ``(T,)`` target classes (distinct, in 0..9).
        adversarial: ``(I, T, C, 28, 28)`` the attack's output for each frame, in [0,1].
        distortion: ``(I, T, C)`` sqrt(mean((x_adv - x)^2)) of each frame.
        probs: ``(I, T, C, M, 10)`` class probabilities of M models; model 0 is the attacked
            source model, the others are the models the example is transferred to.
        model_names: ``(M,)`` names of the models; ``model_names[0] == source``.
        source: name of the attacked model.

    Arrays are converted (float32, int64, str) and checked on construction; a wrong shape or
    value raises ``ValueError`` naming the field.
    """

    originals: np.ndarray
    labels: np.ndarray
    c_grid: np.ndarray
    targets: np.ndarray
    adversarial: np.ndarray
    distortion: np.ndarray
    probs: np.ndarray
    model_names: np.ndarray
    source: str

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("originals", _float_array("originals", self.originals))
        n_img = _check_shape("originals", self.originals, (None, SIDE, SIDE))
        _check_unit("originals", self.originals)

        put("labels", _int_array("labels", self.labels))
        _check_shape("labels", self.labels, (n_img,))
        _check_classes("labels", self.labels)

        put("c_grid", _checked_c_grid(self.c_grid))
        n_c = len(self.c_grid)
        put("targets", _checked_targets(self.targets))
        n_t = len(self.targets)

        put("adversarial", _float_array("adversarial", self.adversarial))
        _check_shape("adversarial", self.adversarial, (n_img, n_t, n_c, SIDE, SIDE))
        _check_unit("adversarial", self.adversarial)

        put("distortion", _float_array("distortion", self.distortion))
        _check_shape("distortion", self.distortion, (n_img, n_t, n_c))
        if not np.all(np.isfinite(self.distortion)) or np.any(self.distortion < 0):
            raise ValueError("distortion must hold non-negative finite numbers")

        put("probs", _float_array("probs", self.probs))
        n_m = _check_shape("probs", self.probs, (n_img, n_t, n_c, None, N_CLASSES), index=3)
        _check_unit("probs", self.probs)
        if not np.allclose(self.probs.sum(-1), 1.0, atol=1e-3):
            raise ValueError("probs must sum to 1 over the last axis (10 classes)")

        names = np.asarray(self.model_names)
        if names.ndim != 1 or names.shape[0] != n_m:
            raise ValueError(f"model_names must have shape ({n_m},) to match probs, "
                             f"got {names.shape}")
        if names.dtype.kind not in "UO" or not all(isinstance(n, str) and n for n in
                                                     names.tolist()):
            raise ValueError("model_names must be non-empty strings")
        if len(set(names.tolist())) != n_m:
            raise ValueError(f"model_names must be distinct, got {names.tolist()}")
        put("model_names", names.astype(str))
        if not isinstance(self.source, str) or self.source != self.model_names[0]:
            raise ValueError(f"source must be model_names[0] ({self.model_names[0]!r}), "
                             f"got {self.source!r}")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(images I, targets T, constants C, models M)."""
        n_img, n_t, n_c, n_m, _ = self.probs.shape
        return n_img, n_t, n_c, n_m

    def save(self, path: str | Path) -> Path:
        """Write the frames to ``path`` (.npz, compressed) atomically; return the path."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        with files.atomic_open(path, "wb") as fh:
            np.savez_compressed(fh, format=np.int64(NPZ_FORMAT), source=np.str_(self.source),
                                **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> AttackFrames:
        """Read frames written by ``save`` (no pickle)."""
        with np.load(Path(path), allow_pickle=False) as z:
            fmt = int(z["format"]) if "format" in z.files else None
            if fmt != NPZ_FORMAT:
                raise ValueError(f"{path}: not an AttackFrames file of format {NPZ_FORMAT} "
                                 f"(format {fmt})")
            kwargs = {f.name: z[f.name] for f in fields(cls) if f.name != "source"}
            return cls(source=str(z["source"]), **kwargs)


def _float_array(name: str, value: Any, dtype: type = np.float32) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    return arr


def _int_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _checked_c_grid(value: Any) -> np.ndarray:
    c = _float_array("c_grid", value, np.float64)
    _check_shape("c_grid", c, (None,))
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"c_grid must hold positive finite numbers, got {c}")
    if np.any(np.diff(c) <= 0):
        raise ValueError(f"c_grid must be strictly ascending, got {c}")
    return c


def _checked_targets(value: Any) -> np.ndarray:
    tg = _int_array("targets", value)
    _check_shape("targets", tg, (None,))
    _check_classes("targets", tg)
    if len(set(tg.tolist())) != len(tg):
        raise ValueError(f"targets must be distinct, got {tg.tolist()}")
    return tg


def _check_shape(name: str, arr: np.ndarray, shape: tuple, index: int = 0) -> int:
    """Check ``arr.shape`` against ``shape`` (None: any size >= 1); return ``arr.shape[index]``."""
    ok = arr.ndim == len(shape) and all(
        (want is None and got >= 1) or got == want for got, want in zip(arr.shape, shape,
                                                                         strict=True))
    if not ok:
        dims = ["n" if s is None else str(s) for s in shape]
        readable = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {readable}, got {arr.shape}")
    return arr.shape[index]


def _check_unit(name: str, arr: np.ndarray, tol: float = 1e-5) -> None:
    if not np.all(np.isfinite(arr)) or arr.min() < -tol or arr.max() > 1 + tol:
        raise ValueError(f"{name} must hold finite values in [0,1]")


def _check_classes(name: str, arr: np.ndarray) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= N_CLASSES):
        raise ValueError(f"{name} must be classes in 0..{N_CLASSES - 1}, got {arr.tolist()}")


# --------------------------------------------------------------------------------------------
# Pure render functions


def format_c(c: float, digits: int = 1) -> str:
    """Short label for a constant: 0.01 -> "1e-2", 0.0316 -> "3.2e-2"."""
    mantissa, exponent = f"{c:.{digits}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def c_labels(c_grid: Sequence[float]) -> list[str]:
    """Distinct labels for ``c_grid``, with as few digits as keep them distinct."""
    for digits in range(1, 8):
        labels = [format_c(float(c), digits) for c in c_grid]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(float(c)) for c in c_grid]


def strip_array(original: np.ndarray, adversarial: np.ndarray) -> tuple[np.ndarray, float]:
    """The RGB strip [original | adversarial | difference] and the difference's magnification.

    Args:
        original: ``(28, 28)`` in [0,1].
        adversarial: ``(28, 28)`` in [0,1].

    Returns:
        ``(28, 3*28 + 2*GAP, 3)`` uint8, white gaps; the difference is scaled so its largest
        magnitude is full colour (red: the attack brightened a pixel, blue: darkened it,
        grey: unchanged), and that scale factor (0 when nothing changed).
    """
    x = np.clip(np.asarray(original, dtype=np.float64), 0, 1)
    a = np.clip(np.asarray(adversarial, dtype=np.float64), 0, 1)
    d = a - x
    peak = float(np.abs(d).max())
    gain = 1.0 / peak if peak > 1e-6 else 0.0
    u = np.clip(d * gain, -1, 1)[..., None]
    diff = np.where(u >= 0, _GREY + u * (_RED - _GREY), _GREY - u * (_BLUE - _GREY))

    def grey(img: np.ndarray) -> np.ndarray:
        return np.repeat(img[..., None] * 255.0, 3, axis=-1)

    gap = np.full((SIDE, GAP, 3), 255.0)
    strip = np.concatenate([grey(x), gap, grey(a), gap, diff], axis=1)
    return np.rint(strip).astype(np.uint8), gain


def _png(rgb: np.ndarray, scale: int = 1) -> bytes:
    checks.positive_int("scale", scale)
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _check_index(frames: AttackFrames, i: int, t: int, k: int) -> None:
    n_img, n_t, n_c, _ = frames.shape
    for name, value, n in (("i", i, n_img), ("t", t, n_t), ("k", k, n_c)):
        if not 0 <= int(value) < n:
            raise ValueError(f"{name} must be in 0..{n - 1}, got {value}")


def render_png(frames: AttackFrames, i: int, t: int, k: int, *, scale: int = 1) -> bytes:
    """One frame's strip as a PNG: [original | adversarial | magnified difference].

    Args:
        frames: the precomputed frames.
        i, t, k: image, target and constant indices.
        scale: integer upscaling (nearest neighbour); the viewers keep 1 and let CSS enlarge.

    Returns:
        PNG bytes of a ``28*scale x (3*28 + 4)*scale`` RGB image.
    """
    _check_index(frames, i, t, k)
    rgb, _ = strip_array(frames.originals[i], frames.adversarial[i, t, k])
    return _png(rgb, scale)


def panel_html(*, model_names: Sequence[str], probs: np.ndarray, label: int, target: int,
               c: float, distortion: float, gain: float) -> str:
    """The HTML panel of one frame (the viewers' CSS classes are in ``STYLE``).

    Args:
        model_names: ``(M,)``; the first is the attacked model.
        probs: ``(M, 10)`` class probabilities.
        label: the image's true class.
        target: the class the attack aims for.
        c: the attack's constant.
        distortion: sqrt(mean((x_adv - x)^2)).
        gain: the difference panel's magnification (0: no change).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(model_names), N_CLASSES):
        raise ValueError(f"probs must have shape ({len(model_names)}, 10), got {probs.shape}")
    preds = probs.argmax(axis=1)
    esc = html.escape
    if target == label:
        head = f"target {target} is the true label: nothing to change"
    else:
        reached = "reached" if preds[0] == target else "not reached"
        head = f"label {label} &rarr; target {target}: {reached}"
    magn = f"difference &times;{gain:.0f}" if gain > 0 else "no change"
    if len(model_names) > 1 and target != label:
        wrong = int((preds[1:] != label).sum())
        head += f"; {wrong} of {len(model_names) - 1} other models misclassify it"
    rows = []
    for m, name in enumerate(model_names):
        pred, p = int(preds[m]), float(probs[m, target])
        cls = "hit" if pred == target and target != label else ("ok" if pred == label
                                                                else "miss")
        mark = "&#10004;" if cls == "hit" else ""
        who = esc(name) + (' <span class="note">(attacked)</span>' if m == 0 else "")
        rows.append(f'<tr class="{cls}"><td>{who}</td><td class="pred">{pred}</td>'
                    f'<td><span class="bar"><i style="width:{100 * p:.1f}%"></i></span> '
                    f"{p:.2f}</td><td>{mark}</td></tr>")
    return (f'<div class="iv-panel"><div class="iv-head">{head}</div>'
            f'<div class="iv-meta">c = {format_c(c, 2)} &middot; distortion {distortion:.3f}'
            f" &middot; {magn}</div>"
            f'<table class="iv-table"><tr><th>model</th><th>predicts</th>'
            f"<th>p(target {target})</th><th></th></tr>{''.join(rows)}</table></div>")


def img_html(png: bytes, alt: str, width: int, height: int) -> str:
    """``<img>`` of a PNG (inline data), shown ``width`` x ``height`` px with square pixels.

    Why not ``ipywidgets.Image``: it cannot carry alt text (and its tooltip breaks the static
    embed), so a reader with a screen reader would hear nothing about the figure.
    """
    data = base64.b64encode(png).decode("ascii")
    return (f'<img class="pixelated" src="data:image/png;base64,{data}" '
            f'alt="{html.escape(alt, quote=True)}" width="{int(width)}" height="{int(height)}">')


def render_alt(frames: AttackFrames, i: int, t: int, k: int) -> str:
    """One frame's strip in words (the image's tooltip and accessible description)."""
    _check_index(frames, i, t, k)
    pred = int(np.argmax(frames.probs[i, t, k, 0]))
    return (f"A test digit labelled {int(frames.labels[i])}, the attack on {frames.source} "
            f"towards {int(frames.targets[t])} at c = {float(frames.c_grid[k]):g} (distortion "
            f"{float(frames.distortion[i, t, k]):.3f}; {frames.source} now says {pred}), and "
            f"their difference, magnified")


def render_panel_html(frames: AttackFrames, i: int, t: int, k: int) -> str:
    """One frame's panel: each model's predicted class and p(target) as a bar; success marked.

    Rows: the attacked model first, then the models the example is transferred to. A row is
    marked (class ``hit``, a tick) when that model predicts the target, ``miss`` when it predicts
    neither the label nor the target, ``ok`` when it still predicts the label.
    """
    _check_index(frames, i, t, k)
    _, gain = strip_array(frames.originals[i], frames.adversarial[i, t, k])
    return panel_html(model_names=frames.model_names.tolist(), probs=frames.probs[i, t, k],
                      label=int(frames.labels[i]), target=int(frames.targets[t]),
                      c=float(frames.c_grid[k]), distortion=float(frames.distortion[i, t, k]),
                      gain=gain)


STYLE = """<style>
.intriguing-viewer img.pixelated { image-rendering: pixelated; }
.iv-panel { font-size: 0.8rem; line-height: 1.25; }
.iv-head { font-weight: 600; }
.iv-meta { color: #555; margin-bottom: 0.2rem; }
.iv-table { border-collapse: collapse; }
.iv-table th, .iv-table td { padding: 0 0.4rem; text-align: left; white-space: nowrap; }
.iv-table th { font-weight: 600; border-bottom: 1px solid #ccc; }
.iv-table .bar { display: inline-block; width: 5rem; height: 0.6rem; background: #e6e6e6;
  vertical-align: middle; }
.iv-table .bar i { display: block; height: 100%; background: #888; }
.iv-table tr.hit .bar i { background: #ca0020; }
.iv-table tr.hit .pred { color: #ca0020; font-weight: 700; }
.iv-table tr.miss .pred { color: #e66101; font-weight: 700; }
.iv-table .note { color: #777; }
.iv-legend { font-size: 0.8rem; color: #555; }
</style>"""

LEGEND = ('<div class="iv-legend">original &nbsp;|&nbsp; adversarial &nbsp;|&nbsp; difference '
          "(red: brighter, blue: darker, grey: unchanged; magnified)</div>")


def questions(*items: str, title: str = "Think!") -> widgets.HTML:
    """A short numbered list of questions to follow a viewer (items are HTML snippets)."""
    if not items:
        raise ValueError("questions needs at least one item")
    lis = "".join(f"<li>{item}</li>" for item in items)
    return widgets.HTML(f"<p><strong>{html.escape(title)}</strong></p><ol>{lis}</ol>")


# --------------------------------------------------------------------------------------------
# The viewers


class _Shared:
    """Layouts and styles shared by every frame of a viewer (keeps the widget state small)."""

    def __init__(self) -> None:
        self.frame = widgets.Layout(display="flex", flex_flow="row wrap", align_items="center",
                                    grid_gap="0.5rem 1rem")
        self.image = widgets.Layout(margin="0")
        self.panel = widgets.Layout(margin="0")
        self.panel_style = HTMLStyle()


FRAME_WIDTH = (3 * SIDE + 2 * GAP) * DISPLAY_SCALE
FRAME_HEIGHT = SIDE * DISPLAY_SCALE


def frame_html(frames: AttackFrames, i: int, t: int, k: int) -> str:
    """One frame's strip as ``<img>`` with its description as alt text."""
    return img_html(render_png(frames, i, t, k), render_alt(frames, i, t, k), FRAME_WIDTH,
                    FRAME_HEIGHT)


def _frame(strip: str, panel: str, shared: _Shared) -> widgets.Box:
    """A frame: the strip (``frame_html``: DISPLAY_SCALE times larger, pixelated) beside its
    panel."""
    image = widgets.HTML(value=strip, layout=shared.image, style=shared.panel_style)
    text = widgets.HTML(value=panel, layout=shared.panel, style=shared.panel_style)
    return widgets.Box([image, text], layout=shared.frame)


@dataclass(frozen=True)
class _Controls:
    image: widgets.Dropdown
    target: widgets.Dropdown
    c: widgets.SelectionSlider
    source: widgets.Dropdown | None = None  # only when there are several attacked models

    def all(self) -> list[widgets.Widget]:
        """Every control, the source (if any) first."""
        return [w for w in (self.source, self.image, self.target, self.c) if w is not None]

    def box(self) -> widgets.VBox:
        top = [self.source] if self.source is not None else []
        return widgets.VBox([widgets.HBox([*top, self.image, self.target]), self.c])


def _default_indices(labels: Sequence[int], targets: Sequence[int], n_c: int) -> tuple[int, int,
                                                                                        int]:
    """Image 0, the first target that is not its label, the middle c."""
    t0 = next((t for t, target in enumerate(targets) if int(target) != int(labels[0])), 0)
    return 0, t0, n_c // 2


def _controls(labels: Sequence[int], targets: Sequence[int], c_grid: Sequence[float],
              start: tuple[int, int, int], sources: Sequence[str] = ()) -> _Controls:
    """The controls; a source dropdown only when ``sources`` names more than one model."""
    i0, t0, k0 = start
    source = None
    if len(sources) > 1:
        source = widgets.Dropdown(options=[(str(n), s) for s, n in enumerate(sources)], index=0,
                                  description="attacked")
    image = widgets.Dropdown(
        options=[(f"#{i} (a {int(y)})", i) for i, y in enumerate(labels)], index=i0,
        description="image")
    target = widgets.Dropdown(
        options=[(str(int(y)), t) for t, y in enumerate(targets)], index=t0,
        description="target")
    c = widgets.SelectionSlider(
        options=list(zip(c_labels(c_grid), range(len(c_grid)), strict=True)), index=k0,
        description="c", continuous_update=True,
        layout=widgets.Layout(width="min(32rem, 100%)"))
    return _Controls(image, target, c, source)


class AttackViewer(widgets.VBox):
    """The viewer widget: controls, legend and the frame area.

    Plain attributes (not synced): ``controls`` (image, target, c, and source when several
    models can be attacked, else None), ``frames_area`` (the outer Stack of the static viewer,
    or the live frame Box), ``links`` (the static viewer's jslinks), and for the live viewer
    ``solve(i, t, k, s=0)`` (one frame as ``AttackFrames``, memoised) and its ``cache`` keyed by
    ``(s, i, t, k)``.
    """

    def __init__(self, controls: _Controls, area: widgets.Widget,
                 links: Sequence[widgets.Widget] = (), *,
                 solve: Callable[..., AttackFrames] | None = None,
                 cache: dict | None = None) -> None:
        legend = widgets.HTML(STYLE + LEGEND)
        super().__init__([controls.box(), legend, area])
        self.add_class("intriguing-viewer")
        self.controls = controls
        self.frames_area = area
        self.links = list(links)
        self.solve = solve
        self.cache = cache


def linked_stacks(frames: Sequence, controls: Sequence[widgets.Widget],
                  start: Sequence[int]) -> tuple[widgets.Stack, list[widgets.Widget]]:
    """Nested Stacks over precomputed frames, each level driven by one control in the browser.

    Why: a static book runs no Python, so a viewer must hold every frame and switch between them
    with ``widgets.jslink`` alone. ``frames`` is a nested list, one level per control (e.g.
    ``frames[i][t][k]``); control ``l`` (anything with an integer ``index`` trait: Dropdown,
    SelectionSlider, ToggleButtons) is linked to the ``selected_index`` of every Stack at depth
    ``l``. Both the attack viewer and the top-k viewer of ``intriguing.units`` use it.

    Args:
        frames: nested lists of widgets, as deep as ``controls`` is long.
        controls: one control per level, outermost first.
        start: the index each level shows first.

    Returns:
        ``(outer Stack, jslinks)``.
    """
    if len(controls) != len(start) or not controls:
        raise ValueError(f"controls and start must have one entry per level, got "
                         f"{len(controls)} and {len(start)}")
    levels: list[list[widgets.Stack]] = [[] for _ in controls]

    def build(node: Sequence, depth: int) -> widgets.Stack:
        if depth == len(controls) - 1:
            children = list(node)
        else:
            children = [build(child, depth + 1) for child in node]
        stack = widgets.Stack(children, selected_index=int(start[depth]))
        levels[depth].append(stack)
        return stack

    outer = build(frames, 0)
    links = [widgets.jslink((control, "index"), (stack, "selected_index"))
             for control, stacks in zip(controls, levels) for stack in stacks]
    return outer, links


def _frame_sets(frames: AttackFrames | Sequence[AttackFrames]) -> list[AttackFrames]:
    """One ``AttackFrames`` per attacked model, checked to share images, targets and c grid."""
    sets = [frames] if isinstance(frames, AttackFrames) else list(frames)
    if not sets or not all(isinstance(f, AttackFrames) for f in sets):
        raise ValueError("frames must be an AttackFrames or a non-empty sequence of them")
    first = sets[0]
    for n, f in enumerate(sets[1:], start=1):
        for name in ("originals", "labels", "c_grid", "targets"):
            if not np.array_equal(getattr(f, name), getattr(first, name)):
                raise ValueError(f"frames[{n}].{name} must equal frames[0].{name}: every attacked "
                                 f"model's frames need the same images, targets and c grid")
    sources = [f.source for f in sets]
    if len(set(sources)) != len(sources):
        raise ValueError(f"frames must be of distinct source models, got {sources}")
    return sets


def static_viewer(frames: AttackFrames | Sequence[AttackFrames]) -> AttackViewer:
    """A viewer that needs no kernel: every frame precomputed, controls linked in the browser.

    An outer Stack over images holds inner Stacks over targets, which hold Stacks over c whose
    children are the frames. The image control drives the outer index, the target control every
    inner index, the c control every innermost index, each by ``widgets.jslink`` (no Python
    callback), so the rendered book switches frames with no kernel. Given frames of several
    attacked models (one ``AttackFrames`` each, same images, targets and c grid), a source
    dropdown drives one more Stack level above the images: the transfer viewer of the chapter
    "Transferability".

    Args:
        frames: from ``precompute_frames`` or ``AttackFrames.load``, or a sequence of them with
            distinct sources.

    Returns:
        The viewer, showing the first source, image 0, the first target that is not its label,
        and the middle c.

    Raises:
        ValueError: an empty sequence, or frame sets that disagree on images, targets or c.
    """
    sets = _frame_sets(frames)
    first = sets[0]
    n_img, n_t, n_c, _ = first.shape
    start = _default_indices(first.labels.tolist(), first.targets.tolist(), n_c)
    controls = _controls(first.labels.tolist(), first.targets.tolist(), first.c_grid.tolist(),
                         start, [f.source for f in sets])
    shared = _Shared()
    nested = [[[[_frame(frame_html(f, i, t, k), render_panel_html(f, i, t, k), shared)
                 for k in range(n_c)] for t in range(n_t)] for i in range(n_img)] for f in sets]
    if controls.source is None:
        outer, links = linked_stacks(nested[0], controls.all(), start)
    else:
        outer, links = linked_stacks(nested, controls.all(), (0, *start))
    return AttackViewer(controls, outer, links)


def _as_models(model_or_models: Any, model_names: Sequence[str] | None
               ) -> tuple[list[torch.nn.Module], list[str]]:
    if isinstance(model_or_models, torch.nn.Module):
        models = [model_or_models]
        names = list(model_names) if model_names is not None else [type(model_or_models).__name__]
    elif isinstance(model_or_models, Mapping):
        models = list(model_or_models.values())
        names = list(model_names) if model_names is not None else list(model_or_models)
    else:
        models = list(model_or_models)
        names = (list(model_names) if model_names is not None
                 else [f"model {m}" for m in range(len(models))])
    if not models:
        raise ValueError("need at least one model")
    if len(names) != len(models):
        raise ValueError(f"model_names must name {len(models)} models, got {len(names)}")
    return models, names


def _images_tensor(images: Any) -> torch.Tensor:
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
def _probabilities(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax of ``model``'s logits for ``x`` ``(N, 1, 28, 28)``: ``(N, 10)``."""
    logits = model(x.to(_device_of(model)))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _adversarial_of(result: Any) -> torch.Tensor:
    adv = getattr(result, "adversarial", result)
    if not isinstance(adv, torch.Tensor):
        adv = torch.as_tensor(np.asarray(adv))
    return adv.detach().float().cpu()


def precompute_frames(models: Sequence[torch.nn.Module], model_names: Sequence[str],
                      images: Any, labels: Any, c_grid: Sequence[float],
                      targets: Sequence[int], attack_fn: Callable[..., Any],
                      source_index: int = 0) -> AttackFrames:
    """Attack every (image, target) at every c, and ask every model about every result.

    For each c, one batched call ``attack_fn(models[source_index], X, Y, c=c)`` with all
    ``I*T`` (image, target) pairs (``X`` ``(I*T, 1, 28, 28)``, ``Y`` ``(I*T,)`` long), then one
    forward pass per model. ``attack_fn`` returns the adversarial images ``(I*T, 1, 28, 28)`` or
    an object with ``.adversarial`` (``intriguing.attacks.lbfgs`` with a fixed c qualifies).
    The distortion is recomputed here from the images, so it describes exactly what is shown.

    Args:
        models: the attacked model and the models to transfer to.
        model_names: one name per model.
        images: ``(I, 1, 28, 28)`` or ``(I, 28, 28)`` in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ascending positive constants.
        targets: target classes (distinct).
        attack_fn: see above.
        source_index: which model is attacked; it becomes model 0 of the result.

    Returns:
        ``AttackFrames`` with models reordered so the source comes first.
    """
    models, names = _as_models(list(models), model_names)
    if not 0 <= source_index < len(models):
        raise ValueError(f"source_index must be in 0..{len(models) - 1}, got {source_index}")
    order = [source_index] + [m for m in range(len(models)) if m != source_index]
    models, names = [models[m] for m in order], [names[m] for m in order]
    x = _images_tensor(images)
    y = torch.as_tensor(np.asarray(labels)).long().cpu()
    tg = torch.as_tensor(np.asarray(targets)).long().cpu()
    n_img, n_t, c_list = len(x), len(tg), [float(c) for c in c_grid]
    if y.shape != (n_img,):
        raise ValueError(f"labels must have shape ({n_img},), got {tuple(y.shape)}")
    xs = x.repeat_interleave(n_t, dim=0)  # pair p = i*T + t
    ys = tg.repeat(n_img)
    adv = np.empty((n_img, n_t, len(c_list), SIDE, SIDE), dtype=np.float32)
    dist = np.empty((n_img, n_t, len(c_list)), dtype=np.float32)
    probs = np.empty((n_img, n_t, len(c_list), len(models), N_CLASSES), dtype=np.float32)
    for k, c in enumerate(c_list):
        a = _adversarial_of(attack_fn(models[0], xs, ys, c=c)).reshape(n_img * n_t, 1, SIDE, SIDE)
        a = a.clamp(0, 1)
        adv[:, :, k] = a[:, 0].reshape(n_img, n_t, SIDE, SIDE).numpy()
        d = ((a - xs) ** 2).mean(dim=(1, 2, 3)).sqrt()
        dist[:, :, k] = d.reshape(n_img, n_t).numpy()
        for m, model in enumerate(models):
            probs[:, :, k, m] = _probabilities(model, a).reshape(n_img, n_t, N_CLASSES)
    return AttackFrames(originals=x[:, 0].numpy(), labels=y.numpy(), c_grid=np.array(c_list),
                        targets=tg.numpy(), adversarial=adv, distortion=dist, probs=probs,
                        model_names=np.array(names), source=names[0])


def live_viewer(model_or_models: Any, images: Any, labels: Any, *, c_grid: Sequence[float],
                attack_fn: Callable[..., Any], model_names: Sequence[str] | None = None,
                targets: Sequence[int] = tuple(range(N_CLASSES)),
                sources: Sequence[str] | None = None) -> AttackViewer:
    """The same viewer, attacking on demand in a running notebook.

    Each change of a control calls ``attack_fn(model, image[None], target, c=c)`` (as in
    ``precompute_frames``) on the attacked model unless that frame was solved before (solves
    are memoised per (source, image, target, c)), asks every model about the result, and redraws
    the frame with the same render functions as the static viewer.

    Args:
        model_or_models: the attacked model, or a list (first attacked) or a name -> model dict.
        images: ``(I, 1, 28, 28)`` or ``(I, 28, 28)`` in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ascending positive constants the c slider offers.
        attack_fn: see ``precompute_frames``.
        model_names: names, when ``model_or_models`` is not a dict.
        targets: the classes the target control offers.
        sources: names of the models a source dropdown offers to attack (default: only the
            first model, and no dropdown); the attacked model heads the panel, the others follow
            in their given order.

    Returns:
        The viewer; ``viewer.solve(i, t, k, s=0)`` returns (and caches) one frame as
        ``AttackFrames``, ``s`` indexing ``sources``.

    Raises:
        ValueError: bad images, labels, targets or c grid, or a source that is not a model name.
    """
    models, names = _as_models(model_or_models, model_names)
    x = _images_tensor(images)
    _check_unit("images", x.numpy())
    y = _int_array("labels", labels)
    _check_shape("labels", y, (len(x),))
    _check_classes("labels", y)
    tg = _checked_targets(targets)
    c_arr = _checked_c_grid(c_grid)
    srcs = [names[0]] if sources is None else [str(n) for n in sources]
    unknown = [n for n in srcs if n not in names]
    if not srcs or unknown or len(set(srcs)) != len(srcs):
        raise ValueError(f"sources must be distinct names among {names}, got {list(srcs)}")
    src_index = [names.index(n) for n in srcs]
    cache: dict[tuple[int, int, int, int], AttackFrames] = {}

    def solve(i: int, t: int, k: int, s: int = 0) -> AttackFrames:
        key = (int(s), int(i), int(t), int(k))
        if key not in cache:
            cache[key] = precompute_frames(models, names, x[i:i + 1], y[i:i + 1],
                                           c_arr[k:k + 1], tg[t:t + 1], attack_fn,
                                           source_index=src_index[int(s)])
        return cache[key]

    start = _default_indices(y.tolist(), tg.tolist(), len(c_arr))
    controls = _controls(y.tolist(), tg.tolist(), c_arr.tolist(), start, srcs)
    shared = _Shared()
    first = solve(*start)
    area = _frame(frame_html(first, 0, 0, 0), render_panel_html(first, 0, 0, 0), shared)
    image, panel = area.children

    def update(_change: Any = None) -> None:
        i, t, k = controls.image.index, controls.target.index, controls.c.index
        s = 0 if controls.source is None else controls.source.index
        if i is None or t is None or k is None or s is None:
            return
        if (s, i, t, k) not in cache:
            panel.value = '<div class="iv-panel"><div class="iv-meta">solving...</div></div>'
        one = solve(i, t, k, s)
        image.value = frame_html(one, 0, 0, 0)
        panel.value = render_panel_html(one, 0, 0, 0)

    for w in controls.all():
        w.observe(update, names="index")
    return AttackViewer(controls, area, solve=solve, cache=cache)


def widget_state_bytes(widget: widgets.Widget) -> int:
    """Size of the JSON widget state a page embeds for ``widget`` (what the book ships)."""
    import json

    from ipywidgets.embed import dependency_state

    state = dependency_state(widget, drop_defaults=False)
    return len(json.dumps(state, separators=(",", ":")))


#: The most a chapter page with viewers may weigh: its HTML plus the images it references.
PAGE_LIMIT_BYTES = 10_000_000


def page_weight(page: str | Path) -> dict[str, int]:
    """What a reader downloads for one page of the built book, in bytes.

    Why: a static viewer embeds every frame in its page (the widget state, with the PNGs
    base64-encoded), so a chapter with several viewers can grow heavy. The book keeps each such
    page under ``PAGE_LIMIT_BYTES`` of HTML plus page images; this measures it. Local files the
    page references are resolved against its folder and counted once each; ``data:`` URIs are
    already inside the HTML; other hosts are not counted (the book references none).

    Args:
        page: a built ``.html`` file.

    Returns:
        ``html`` (the file itself), ``images`` (``<img src>``), ``scripts_styles`` (``<script
        src>`` and stylesheets: shared by every page, cached by the browser after the first),
        ``page`` (html + images: the budgeted figure) and ``total`` (everything).

    Raises:
        ValueError: ``page`` is not an existing file.
    """
    from html.parser import HTMLParser
    from urllib.parse import unquote, urlparse

    path = Path(page)
    if not path.is_file():
        raise ValueError(f"page must be an existing HTML file, got {str(page)!r}")
    text = path.read_text(encoding="utf-8", errors="replace")
    refs: dict[str, set[Path]] = {"images": set(), "scripts_styles": set()}

    class Refs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "img":
                add("images", a.get("src"))
            elif tag == "script":
                add("scripts_styles", a.get("src"))
            elif tag == "link" and "stylesheet" in (a.get("rel") or "").split():
                add("scripts_styles", a.get("href"))

    def add(kind: str, url: str | None) -> None:
        if not url:
            return
        parsed = urlparse(url)
        if parsed.scheme or parsed.netloc:  # data:, http(s): not a local file
            return
        target = (path.parent / unquote(parsed.path)).resolve()
        if target.is_file():
            refs[kind].add(target)

    Refs().feed(text)
    sizes = {"html": path.stat().st_size,
             **{k: sum(f.stat().st_size for f in v) for k, v in refs.items()}}
    sizes["page"] = sizes["html"] + sizes["images"]
    sizes["total"] = sizes["page"] + sizes["scripts_styles"]
    return sizes


__all__ = [
    "AttackFrames", "AttackViewer", "PAGE_LIMIT_BYTES", "c_labels", "format_c", "live_viewer",
    "page_weight", "panel_html", "precompute_frames", "questions", "render_panel_html",
    "render_png", "static_viewer", "strip_array", "widget_state_bytes",
]


STATIC_BUILD_ENV = "INTRIGUING_STATIC_BUILD"


def live_kernel() -> bool:
    """Whether live viewers make sense: False while the static book is being built.

    ``make book`` sets ``$INTRIGUING_STATIC_BUILD`` for the build, where a Python callback
    could never run in the reader's browser; in Jupyter (``make lab``) it is unset.
    """
    return os.environ.get(STATIC_BUILD_ENV, "") in ("", "0")
