"""The chapters' viewer API in one import: ``from intriguing.display import widgets``.

Nothing is defined here; the names come from where they live:

- ``display.viewers``: the static viewer (``static_viewer``), the frames an experiment saved
  (``saved_frames``), the pure render functions, ``questions`` and ``linked_stacks``.
- ``display.live``: the live viewer (``live_viewer``) and ``live_kernel()``; its ``attack_fn``
  is the one small adapter through which a viewer calls the engine, in Jupyter only.
- ``display.pagecheck``: ``page_weight``, ``widget_state_bytes`` and ``PAGE_LIMIT_BYTES``.
- ``plumbing.frames``: the data type the viewers show (``AttackFrames``, an ``.npz`` file).

The frames themselves are computed by ``engine.frames`` (``advsets.viewer_frames``), which
``make book`` runs as the experiment ``viewer_frames`` before any page executes.
"""

from __future__ import annotations

from ..plumbing.frames import N_CLASSES, SIDE, AttackFrames
from .live import STATIC_BUILD_ENV, live_kernel, live_viewer
from .pagecheck import PAGE_LIMIT_BYTES, page_weight, widget_state_bytes
from .viewers import (
    DISPLAY_SCALE,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    GAP,
    LEGEND,
    STYLE,
    AttackViewer,
    c_labels,
    format_c,
    frame_html,
    img_html,
    linked_stacks,
    panel_html,
    questions,
    render_alt,
    render_panel_html,
    render_png,
    saved_frames,
    static_viewer,
    strip_array,
)

__all__ = [
    "DISPLAY_SCALE", "FRAME_HEIGHT", "FRAME_WIDTH", "GAP", "LEGEND", "N_CLASSES",
    "PAGE_LIMIT_BYTES", "SIDE", "STATIC_BUILD_ENV", "STYLE", "AttackFrames", "AttackViewer",
    "c_labels", "format_c", "frame_html", "img_html", "linked_stacks", "live_kernel",
    "live_viewer", "page_weight", "panel_html", "questions", "render_alt", "render_panel_html",
    "render_png", "saved_frames", "static_viewer", "strip_array", "widget_state_bytes",
]
