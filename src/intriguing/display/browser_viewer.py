"""The live attack viewer of the rendered book: the paper's attack in the reader's browser.

Why: the paper finds an adversarial example by minimising ``c |r|^2 + loss_f(x + r, l)`` over
the box ``[0, 1]^m`` (Szegedy et al. 2014, arXiv:1312.6199, section 4.1). The static viewers
(``display.viewers``) can only show frames an experiment saved; with no kernel behind the page
a reader could not pose the problem for another image, target or ``c``. This module writes the
HTML of a viewer that solves it in the page: ``book/_extra/js/intriguing-attack.js`` (the
browser port of ``attacks.lbfgs``, tested against it) runs on the trained weights and test
images that ``python -m intriguing export-web`` wrote into the site (``attack-data/``), and
``book/_extra/js/intriguing-viewer.js`` draws the controls' answers. The ``transfer`` variant
adds every exported model's prediction of the adversarial image (section 4.3).

Everything loads as ``<script src>`` with a path relative to the page (``page`` names it, e.g.
``chapters/blind_spots.ipynb``, one folder below the site root), so the viewer works on a web
server and opened from disk (browsers block ``fetch`` of ``file://`` URLs); nothing comes from
another host. Display only: this module writes markup, it never imports the engine.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from IPython.display import HTML

from ..plumbing import checks

__all__ = [
    "DATA_DIR",
    "ENGINE_SCRIPT",
    "VIEWER_SCRIPT",
    "browser_viewer",
    "data_file",
    "page_loads",
    "scripts_loaded",
    "site_root",
    "units_panel",
    "units_panel_html",
    "viewer_html",
]

#: Where the book serves the engine and the viewer (``book/_extra`` is copied to the site root).
ENGINE_SCRIPT = "js/intriguing-attack.js"
VIEWER_SCRIPT = "js/intriguing-viewer.js"
#: The Property 1 chapters' panel: a perturbation's change in a hidden layer (units_panel_html).
UNITS_SCRIPT = "js/intriguing-units.js"
#: Where ``export-web`` puts the data in the site (``book/_web/html/attack-data``).
DATA_DIR = "attack-data"
N_CLASSES = 10
_COUNTER = itertools.count(1)



def _check_c(c: float, c_range: tuple[float, float]) -> None:
    """The slider's range ``(low, high)``, 0 < low < high, and its starting ``c`` inside it."""
    if not (isinstance(c_range, (tuple, list)) and len(c_range) == 2
            and all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in c_range)
            and c_range[0] < c_range[1]):
        raise ValueError(f"c_range must be (low, high) with 0 < low < high, got {c_range!r}")
    if not (isinstance(c, (int, float)) and c_range[0] <= c <= c_range[1]):
        raise ValueError(f"c must be a number in c_range {tuple(c_range)}, got {c!r}")

def site_root(page: str) -> str:
    """The relative URL from ``page`` (a path in the book, e.g. ``chapters/x.ipynb``) to the
    site root: ``"../"`` one folder down, ``""`` at the root.

    Raises:
        ValueError: ``page`` is empty, absolute or climbs out of the book.
    """
    if not isinstance(page, str) or not page.strip():
        raise ValueError(f"page must be the page's path in the book, e.g. "
                         f"'chapters/blind_spots.ipynb', got {page!r}")
    path = PurePosixPath(page.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"page must be a relative path inside the book, got {page!r}")
    return "../" * (len(path.parts) - 1)


def data_file(model: str) -> str:
    """The script ``export-web`` writes for ``model`` (``engine.webexport``'s file name rule)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", model).strip("_") + ".js"


def scripts_loaded(page: str, models: Sequence[str]) -> list[str]:
    """The ``<script src>`` paths (relative to ``page``) that a viewer's markup loads, in order:
    the engine, the viewer, the data index, the test images and one script per model in
    ``models``."""
    root = site_root(page)
    return ([root + ENGINE_SCRIPT, root + VIEWER_SCRIPT, f"{root}{DATA_DIR}/index.js",
             f"{root}{DATA_DIR}/images.js"]
            + [f"{root}{DATA_DIR}/{data_file(m)}" for m in models])


def _control_id(prefix: str, role: str) -> str:
    return f"{prefix}-{role}"


def viewer_html(*, page: str, models: Sequence[str], model: str, transfer: bool = False,
                c_range: tuple[float, float] = (1e-2, 1e2), c: float = 1.0,
                target: int | None = None, image: int = 0, start: str = "search",
                viewer_id: str | None = None) -> str:
    """The HTML of one live viewer (markup, its scripts and the call that starts it).

    Args:
        page: the page's path in the book (``chapters/blind_spots.ipynb``): script paths are
            made relative to it.
        models: the models a reader may attack (zoo names, e.g. ``zoo.TABLE1``); each must have
            been exported (the viewer says so in the page when one is missing).
        model: the model attacked first; one of ``models``. Its weights load with the page; the
            others when a reader picks them.
        transfer: also show every exported model's prediction of the adversarial image (the
            chapter on transferability). Their weights load when the reader presses "load
            every model" (all of them together outweigh the page's budget on the
            transferability page, whose static viewer is heavy already).
        c_range: the slider's ends, ``0 < low < high``; the slider moves ``log10 c``.
        c: the slider's first value, inside ``c_range``.
        target: the first target class (0..9), or None for "the class after the model's answer".
        image: the first test image (index into the exported images).
        start: the first answer: "search" (the minimum-distortion example; the slider then
            shows its c) or "solve" (one solve at ``c``).
        viewer_id: the id of the viewer's element (default: a fresh ``intriguing-live-<n>``);
            every control's id starts with it.

    Returns:
        HTML text: a ``<div class="intriguing-live">`` with ``data-config``, preceded by the
        ``<script src>`` tags of :func:`scripts_loaded` and followed by an inline script that
        mounts it.

    Raises:
        ValueError: naming the argument that is malformed.
    """
    site_root(page)
    if isinstance(models, str) or not models or not all(isinstance(m, str) and m
                                                        for m in models):
        raise ValueError(f"models must be a non-empty list of model names, got {models!r}")
    if len(set(models)) != len(models):
        raise ValueError(f"models must not repeat a name, got {list(models)}")
    checks.one_of("model", model, list(models))
    _check_c(c, c_range)
    if target is not None:
        checks.int_in("target", target, 0, N_CLASSES - 1)
    checks.non_negative_int("image", image)
    checks.one_of("start", start, ["search", "solve"])
    if viewer_id is None:
        viewer_id = f"intriguing-live-{next(_COUNTER)}"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", viewer_id):
        raise ValueError(f"viewer_id must be letters, digits, '-' or '_' (starting with a "
                         f"letter), got {viewer_id!r}")

    root = site_root(page)
    lo, hi = math.log10(c_range[0]), math.log10(c_range[1])
    config = {"root": root, "data": DATA_DIR, "models": list(models), "model": model,
              "transfer": bool(transfer), "target": target, "image": image, "start": start}
    esc = html.escape
    ids = {role: _control_id(viewer_id, role) for role in (
        "image-index", "model", "target", "logc", "pad")}

    def button(role: str, text: str, title: str) -> str:
        return (f'<button type="button" data-role="{role}" title="{esc(title)}">'
                f"{esc(text)}</button>")

    def canvas(role: str, label: str, extra: str = "") -> str:
        cid = f' id="{_control_id(viewer_id, role)}"'
        return (f'<figure><canvas data-role="{role}"{cid} width="28" height="28" role="img" '
                f'aria-label="{esc(label)}"{extra}></canvas><figcaption>{esc(label)}'
                f"</figcaption></figure>")

    options = "".join(f'<option value="{esc(m)}"{" selected" if m == model else ""}>{esc(m)}'
                      f"</option>" for m in models)
    targets = "".join(f'<option value="{k}"{" selected" if k == target else ""}>{k}</option>'
                      for k in range(N_CLASSES))
    step = 0.01
    logc = round(math.log10(c) / step) * step
    logc = min(max(logc, lo), hi)
    nav = (button("image-prev", "\u2190", "previous test image")
           + button("image-next", "\u2192", "next test image")
           + button("image-random", "random", "a random test image"))
    search = button("search", "full search over c",
                    "the smallest perturbation that reaches the target: the paper's search over c")
    pad_buttons = (button("pad-clear", "clear", "clear the drawing pad") + "<br>"
                   + button("pad-copy", "copy image", "start the drawing from the test image"))
    pictures = (canvas("original", "original") + canvas("adversarial", "adversarial example")
                + canvas("difference", "difference (magnified; red brighter, blue darker)")
                + canvas("pad", "draw a digit here", ' class="ivl-pad"'))
    transfer_table = ('<div class="ivl-scroll"><table data-role="transfer"></table>'
                      + button("transfer-load", "load every model",
                               "load the weights of every model of the zoo to see what each "
                               "predicts for the adversarial image")
                      + "</div>" if transfer else "")
    cfg = esc(json.dumps(config))
    image_id, model_id, target_id, logc_id = (ids[k] for k in ("image-index", "model",
                                                                "target", "logc"))
    note = "This viewer runs the attack in your browser and needs JavaScript."
    markup = "\n".join([
        f'<div class="intriguing-live" id="{viewer_id}" data-config="{cfg}">',
        '<div class="ivl-row">',
        f'<label for="{image_id}">test image</label>',
        f'<input type="number" data-role="image-index" id="{image_id}" min="0" step="1" '
        f'value="{image}">',
        nav,
        '<span data-role="source" aria-live="polite"></span>',
        "</div>",
        '<div class="ivl-row">',
        f'<label for="{model_id}">model</label> '
        f'<select data-role="model" id="{model_id}">{options}</select>',
        f'<label for="{target_id}">target class</label> '
        f'<select data-role="target" id="{target_id}">{targets}</select>',
        "</div>",
        '<div class="ivl-row">',
        f'<label for="{logc_id}">c</label>',
        f'<input type="range" data-role="logc" id="{logc_id}" min="{lo:.2f}" max="{hi:.2f}" '
        f'step="{step}" value="{logc:.2f}" aria-describedby="{viewer_id}-c-value">',
        f'<output data-role="c-value" id="{viewer_id}-c-value"></output>',
        search,
        "</div>",
        '<div class="ivl-row">',
        pictures,
        f"<span>{pad_buttons}</span>",
        "</div>",
        '<div class="ivl-row" aria-live="polite">',
        '<span>predicted class <span class="ivl-result" data-role="predicted">&ndash;</span>'
        "</span>",
        '<span>distortion <span class="ivl-result" data-role="distortion">&ndash;</span></span>',
        '<span>c used <span data-role="used-c">&ndash;</span></span>',
        '<span data-role="outcome"></span>',
        "</div>",
        f'<div class="ivl-row ivl-note" data-role="timing"><noscript>{note}</noscript></div>',
        '<div class="ivl-row ivl-note" data-role="message" hidden></div>',
        '<div class="ivl-tables"><div class="ivl-scroll"><table data-role="probs"></table>'
        f"</div>{transfer_table}</div>",
        "</div>",
    ])
    tags = "".join(f'<script src="{esc(src)}"></script>\n'
                   for src in scripts_loaded(page, [model]))
    start = (f"<script>IntriguingViewer.mount(document.getElementById("
             f"{json.dumps(viewer_id)}));</script>")
    return f"{tags}{markup}\n{start}"


def browser_viewer(**kwargs: Any) -> HTML:
    """:func:`viewer_html` as an output a notebook shows and myst-nb puts in the static page.

    The chapters show it where no kernel runs (the built book); in Jupyter the page's relative
    script paths do not resolve, so the chapters show ``display.live.live_viewer`` there.
    """
    return HTML(viewer_html(**kwargs))


def page_loads(page: str | Path) -> dict[str, int]:
    """What the live viewers of a built page load, in bytes: at open and at most.

    Why: the engine, the viewer and the exported weights and images are shared files (not in
    the page's HTML), but a reader downloads them with the page; the book keeps each page,
    these included, under ``pagecheck.PAGE_LIMIT_BYTES`` (tests/test_page_weight.py).

    Args:
        page: a built ``.html`` file.

    Returns:
        ``viewers`` (how many live viewers the page holds), ``at_open`` (the scripts of
        :data:`ENGINE_SCRIPT`, :data:`VIEWER_SCRIPT` and :data:`DATA_DIR` the page's ``<script
        src>`` tags load, each once), ``with_transfer`` (also what a ``transfer`` viewer's "load
        every model" loads: each exported model's float16 copy, or the model where the export
        has none) and ``at_most`` (also every model a reader can pick to attack: each viewer's
        ``models``).

    Raises:
        ValueError: ``page`` is not an existing file.
    """
    from html.parser import HTMLParser
    from urllib.parse import unquote, urlparse

    path = Path(page)
    if not path.is_file():
        raise ValueError(f"page must be an existing HTML file, got {str(page)!r}")
    srcs: list[str] = []
    configs: list[dict] = []

    class Scan(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "script" and a.get("src"):
                srcs.append(a["src"] or "")
            classes = (a.get("class") or "").split()
            if ("intriguing-live" in classes or "intriguing-units-live" in classes) \
                    and a.get("data-config"):
                configs.append(json.loads(a["data-config"] or "{}"))

    Scan().feed(path.read_text(encoding="utf-8", errors="replace"))

    def local(url: str) -> Path | None:
        parsed = urlparse(url)
        if parsed.scheme or parsed.netloc:
            return None
        target = (path.parent / unquote(parsed.path)).resolve()
        return target if target.is_file() else None

    ours = (ENGINE_SCRIPT, VIEWER_SCRIPT, UNITS_SCRIPT, f"{DATA_DIR}/")
    opened = {f for s in srcs if any(k in s for k in ours) and (f := local(s)) is not None}
    transfer, every = set(opened), set(opened)
    for cfg in configs:
        data = path.parent / cfg.get("root", "") / cfg.get("data", DATA_DIR)
        every |= {f.resolve() for n in cfg.get("models", [])
                  if (f := data / data_file(n)).is_file()}
        if cfg.get("transfer"):
            try:
                index = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
                entries = index.get("models", [])
            except (OSError, ValueError):
                entries = []
            copies = {(data / ((m.get("predictor") or {}).get("file") or data_file(m["name"])))
                      .resolve() for m in entries if isinstance(m, dict) and "name" in m}
            transfer |= {f for f in copies if f.is_file()}
    every |= transfer

    def size(found: set[Path]) -> int:
        return sum(f.stat().st_size for f in found)

    return {"viewers": len(configs), "at_open": size(opened), "with_transfer": size(transfer),
            "at_most": size(every)}


def units_panel_html(*, page: str, model: str, layer: int = 1, ks: Sequence[int] = (1, 5, 10),
                     c_range: tuple[float, float] = (1e-3, 1e2), c: float = 1.0,
                     target: int | None = None, image: int = 0, seed: int = 0,
                     viewer_id: str | None = None) -> str:
    """The HTML of the Property 1 chapters' live panel: a perturbation's change in a hidden layer.

    Why: the experiment ``perturbation_units`` measures over the test set whether the change an
    adversarial perturbation causes in a hidden layer sits on a few units more than on a few
    directions of a random orthonormal basis (Szegedy et al. 2014, arXiv:1312.6199, sections 3
    and 4.1). This panel lets a reader of the static book pose it for one image: it runs one
    solve of ``IntriguingAttack.solve`` at the reader's c and target in the page
    (``book/_extra/js/intriguing-units.js``), and draws the sorted magnitudes of the layer's
    change in the unit basis and in a random orthonormal basis seeded in the page, with the
    top-k shares. Scripts load as ``<script src>`` relative to ``page`` (as ``viewer_html``'s):
    it works opened from disk.

    Args:
        page: the page's path in the book (``chapters/random_directions.ipynb``).
        model: the exported model (a zoo name, e.g. "FC100-100-10").
        layer: the hidden layer, 1-based (1: the first hidden layer, ``act1``).
        ks: the top-k sizes the table shows (those above the layer's width are dropped).
        c_range: the c slider's ends, ``0 < low < high`` (the slider moves ``log10 c``).
        c: the first c, inside ``c_range``.
        target: the first target class, or None for "the class after the model's answer".
        image: the first test image.
        seed: the random basis's first seed (the reader can change it).
        viewer_id: the element's id (default: a fresh ``intriguing-units-<n>``).

    Returns:
        HTML text: the ``<script src>`` tags, a ``<div class="intriguing-units-live">`` with
        ``data-config``, and the inline script that mounts it.

    Raises:
        ValueError: naming the argument that is malformed.
    """
    root = site_root(page)
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a model name, got {model!r}")
    checks.positive_int("layer", layer)
    if isinstance(ks, (str, bytes)) or not ks or not all(checks.is_int(k) and k >= 1
                                                         for k in ks):
        raise ValueError(f"ks must be a non-empty list of positive ints, got {ks!r}")
    _check_c(c, c_range)
    if target is not None:
        checks.int_in("target", target, 0, N_CLASSES - 1)
    checks.non_negative_int("image", image)
    checks.non_negative_int("seed", seed)
    if viewer_id is None:
        viewer_id = f"intriguing-units-{next(_COUNTER)}"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", viewer_id):
        raise ValueError(f"viewer_id must be letters, digits, '-' or '_' (starting with a "
                         f"letter), got {viewer_id!r}")
    esc = html.escape
    lo, hi = math.log10(c_range[0]), math.log10(c_range[1])
    step = 0.01
    logc = min(max(round(math.log10(c) / step) * step, lo), hi)
    config = {"root": root, "data": DATA_DIR, "models": [model], "model": model,
              "layer": int(layer), "ks": [int(k) for k in ks], "target": target,
              "image": image, "seed": seed}
    ids = {role: f"{viewer_id}-{role}" for role in ("image-index", "target", "logc", "seed")}

    def button(role: str, text: str, title: str) -> str:
        return (f'<button type="button" data-role="{role}" title="{esc(title)}">'
                f"{esc(text)}</button>")

    def digit(role: str, label: str) -> str:
        return (f'<figure><canvas data-role="{role}" class="iul-digit" width="28" height="28" '
                f'role="img" aria-label="{esc(label)}"></canvas><figcaption>{esc(label)}'
                f"</figcaption></figure>")

    targets = "".join(f'<option value="{k}"{" selected" if k == target else ""}>{k}</option>'
                      for k in range(N_CLASSES))
    note = "This panel runs the attack in your browser and needs JavaScript."
    markup = "\n".join([
        f'<div class="intriguing-units-live" id="{viewer_id}" data-config="'
        f'{esc(json.dumps(config))}">',
        '<div class="iul-row">',
        f'<label for="{ids["image-index"]}">test image</label>',
        f'<input type="number" data-role="image-index" id="{ids["image-index"]}" min="0" '
        f'step="1" value="{image}">',
        button("image-prev", "\u2190", "previous test image"),
        button("image-next", "\u2192", "next test image"),
        button("image-random", "random", "a random test image"),
        '<span data-role="label" aria-live="polite"></span>',
        "</div>",
        '<div class="iul-row">',
        f'<label for="{ids["target"]}">target class</label> '
        f'<select data-role="target" id="{ids["target"]}">{targets}</select>',
        f'<label for="{ids["logc"]}">c</label>',
        f'<input type="range" data-role="logc" id="{ids["logc"]}" min="{lo:.2f}" '
        f'max="{hi:.2f}" step="{step}" value="{logc:.2f}">',
        '<output data-role="c-value"></output>',
        f'<label for="{ids["seed"]}">random basis seed</label>',
        f'<input type="number" data-role="seed" id="{ids["seed"]}" min="0" step="1" '
        f'value="{seed}">',
        "</div>",
        '<div class="iul-row">',
        digit("original", "original"),
        digit("adversarial", "adversarial example"),
        '<canvas data-role="plot" class="iul-plot" width="420" height="200" role="img" '
        f'aria-label="{esc("sorted magnitudes of the change of hidden layer " + str(layer))}'
        '"></canvas>',
        "</div>",
        '<div class="iul-row" aria-live="polite">',
        '<span>predicted class <b data-role="predicted">&ndash;</b></span>',
        '<span>distortion <b data-role="distortion">&ndash;</b></span>',
        '<span>|change of the layer| <b data-role="change">&ndash;</b></span>',
        "</div>",
        '<div class="iul-row"><table data-role="shares"></table></div>',
        f'<div class="iul-row iul-note" data-role="timing"><noscript>{note}</noscript></div>',
        '<div class="iul-row iul-note" data-role="message" hidden></div>',
        "</div>",
    ])
    srcs = [root + ENGINE_SCRIPT, root + UNITS_SCRIPT, f"{root}{DATA_DIR}/index.js",
            f"{root}{DATA_DIR}/images.js", f"{root}{DATA_DIR}/{data_file(model)}"]
    tags = "".join(f'<script src="{esc(src)}"></script>\n' for src in srcs)
    start = (f"<script>IntriguingUnits.mount(document.getElementById("
             f"{json.dumps(viewer_id)}));</script>")
    return f"{tags}{markup}\n{start}"


def units_panel(**kwargs: Any) -> HTML:
    """:func:`units_panel_html` as an output a notebook shows and the static page keeps."""
    return HTML(units_panel_html(**kwargs))
