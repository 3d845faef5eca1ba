"""Attack viewers: step through adversarial examples by image, target class and constant c.

Why: the paper's central figures (Szegedy et al. 2014, arXiv:1312.6199, section 4.2, Figure 5
and Tables 3-4) are single frames of a search: one image, one target label, one constant c of
the box-constrained L-BFGS problem. A reader learns more by moving c and watching the
perturbation shrink until the attack fails, and by seeing which other networks the same
perturbation fools. The viewers show frames; they never run the attack. The frames come as
data (``plumbing.frames.AttackFrames``), computed and saved beforehand by the experiment
``viewer_frames`` (``engine.frames``); ``saved_frames`` reads them.

- ``static_viewer(frames)`` needs no kernel. Every frame is held in nested ``widgets.Stack``s
  (image -> target -> c, under a source level when frames of several attacked models are given);
  the controls drive the Stacks' indices with ``widgets.jslink`` only, so the rendered book
  switches frames in the browser.
- The live viewer (``display.live.live_viewer``) draws the same frames with the same render
  functions, solving each one on demand in a running notebook.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from ipywidgets.widgets.widget_string import HTMLStyle
from PIL import Image

from ..plumbing import checks, config, results
from ..plumbing.frames import N_CLASSES, SIDE, AttackFrames, check_index

GAP = 2  # pixels between the three panels of a strip
DISPLAY_SCALE = 4  # the browser shows a strip this many times larger (pixelated)

# Colours of the difference panel: negative -> blue, 0 -> grey, positive -> red.
_GREY = np.array([128, 128, 128], dtype=np.float64)
_RED = np.array([202, 0, 32], dtype=np.float64)
_BLUE = np.array([5, 113, 176], dtype=np.float64)


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


def render_png(frames: AttackFrames, i: int, t: int, k: int, *, scale: int = 1) -> bytes:
    """One frame's strip as a PNG: [original | adversarial | magnified difference].

    Args:
        frames: the precomputed frames.
        i, t, k: image, target and constant indices.
        scale: integer upscaling (nearest neighbour); the viewers keep 1 and let CSS enlarge.

    Returns:
        PNG bytes of a ``28*scale x (3*28 + 4)*scale`` RGB image.
    """
    check_index(frames, i, t, k)
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
    check_index(frames, i, t, k)
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
    check_index(frames, i, t, k)
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


class Shared:
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


def frame_box(strip: str, panel: str, shared: Shared) -> widgets.Box:
    """A frame: the strip (``frame_html``: DISPLAY_SCALE times larger, pixelated) beside its
    panel."""
    image = widgets.HTML(value=strip, layout=shared.image, style=shared.panel_style)
    text = widgets.HTML(value=panel, layout=shared.panel, style=shared.panel_style)
    return widgets.Box([image, text], layout=shared.frame)


@dataclass(frozen=True)
class Controls:
    """A viewer's controls: image, target and c, and the attacked model when there are several."""

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


def default_indices(labels: Sequence[int], targets: Sequence[int], n_c: int) -> tuple[int, int,
                                                                                        int]:
    """Image 0, the first target that is not its label, the middle c."""
    t0 = next((t for t, target in enumerate(targets) if int(target) != int(labels[0])), 0)
    return 0, t0, n_c // 2


def make_controls(labels: Sequence[int], targets: Sequence[int], c_grid: Sequence[float],
                  start: tuple[int, int, int], sources: Sequence[str] = ()) -> Controls:
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
    return Controls(image, target, c, source)


class AttackViewer(widgets.VBox):
    """The viewer widget: controls, legend and the frame area.

    Plain attributes (not synced): ``controls`` (image, target, c, and source when several
    models can be attacked, else None), ``frames_area`` (the outer Stack of the static viewer,
    or the live frame Box), ``links`` (the static viewer's jslinks), and for the live viewer
    ``solve(i, t, k, s=0)`` (one frame as ``AttackFrames``, memoised) and its ``cache`` keyed by
    ``(s, i, t, k)``.
    """

    def __init__(self, controls: Controls, area: widgets.Widget,
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
    ``l``. Both the attack viewer and the top-k viewer of ``intriguing.display.unit_viewers``
    use it.

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


def frame_sets(frames: AttackFrames | Sequence[AttackFrames]) -> list[AttackFrames]:
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
        frames: from ``saved_frames`` or ``AttackFrames.load``, or a sequence of them with
            distinct sources.

    Returns:
        The viewer, showing the first source, image 0, the first target that is not its label,
        and the middle c.

    Raises:
        ValueError: an empty sequence, or frame sets that disagree on images, targets or c.
    """
    sets = frame_sets(frames)
    first = sets[0]
    n_img, n_t, n_c, _ = first.shape
    start = default_indices(first.labels.tolist(), first.targets.tolist(), n_c)
    controls = make_controls(first.labels.tolist(), first.targets.tolist(),
                             first.c_grid.tolist(), start, [f.source for f in sets])
    shared = Shared()
    nested = [[[[frame_box(frame_html(f, i, t, k), render_panel_html(f, i, t, k), shared)
                 for k in range(n_c)] for t in range(n_t)] for i in range(n_img)] for f in sets]
    if controls.source is None:
        outer, links = linked_stacks(nested[0], controls.all(), start)
    else:
        outer, links = linked_stacks(nested, controls.all(), (0, *start))
    return AttackViewer(controls, outer, links)


#: The results file that lists the saved frames (written by the experiment ``viewer_frames``).
FRAMES_RESULTS = "viewer_frames"


def saved_frames(viewer: str, scale: str | config.Scale | None = None) -> list[AttackFrames]:
    """The frames an experiment saved for ``viewer`` ("blind_spots", "transferability"), read only.

    Why: a page shows what ``make book`` computed before it executed (the experiment
    ``viewer_frames`` attacks and saves every frame, and lists the files in
    ``data/results/viewer_frames.json``); reading them runs no attack, and the page cannot ask
    for a c grid or model list other than the one the experiment used.

    Args:
        viewer: a viewer named in ``viewer_frames.json`` (one row per attacked model).
        scale: "smoke", "book" or "paper" (default: the configured scale).

    Returns:
        One ``AttackFrames`` per attacked model, in the experiment's order; ``static_viewer``
        takes the list as it is (a source control appears when it holds several).

    Raises:
        FileNotFoundError: the results file or a frames file it names is missing.
        ValueError: ``viewer`` is not named in the results file.
    """
    doc = results.read(FRAMES_RESULTS, scale)
    names = list(dict.fromkeys(r["viewer"] for r in doc["rows"]))
    checks.one_of("viewer", viewer, names)
    out = []
    for row in doc["rows"]:
        if row["viewer"] != viewer:
            continue
        path = config.data_dir() / row["file"]
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; `python -m intriguing reproduce {FRAMES_RESULTS} --scale "
                f"{doc['scale']}` computes it")
        out.append(AttackFrames.load(path))
    return out


__all__ = [
    "DISPLAY_SCALE", "FRAME_HEIGHT", "FRAME_WIDTH", "GAP", "LEGEND", "STYLE", "AttackFrames",
    "AttackViewer", "c_labels", "format_c", "frame_html", "img_html", "linked_stacks",
    "panel_html", "questions", "render_alt", "render_panel_html", "render_png", "saved_frames",
    "static_viewer", "strip_array",
]
