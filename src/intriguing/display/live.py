"""The live attack viewer: the one place where the display calls the engine (Jupyter only).

Why: in a running notebook a reader can attack any image at any c, which no precomputed file
can hold. This module is the small adapter between the viewer and the engine: the attack comes
in as ``attack_fn`` (in the chapters ``attacks.lbfgs``), and each frame is made by calling it
once and handing its output to ``engine.frames.assemble``, which asks every model and measures
the distortion exactly as for the saved frames. The drawing is ``display.viewers``' (same
render functions, same controls), so a live frame looks like the static one. The static book
never runs this: ``make book`` sets ``$INTRIGUING_STATIC_BUILD`` and ``live_kernel()`` says so.

References: Szegedy et al. 2014, arXiv:1312.6199, sections 4.1-4.3.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..engine import frames as engine_frames
from ..plumbing.frames import (
    N_CLASSES,
    AttackFrames,
    as_int,
    check_classes,
    check_shape,
    check_unit,
    checked_c_grid,
    checked_targets,
)
from .viewers import (
    AttackViewer,
    Shared,
    default_indices,
    frame_box,
    frame_html,
    make_controls,
    render_panel_html,
)

#: Set (to anything but "" or "0") while the static book is built: no live viewers then.
STATIC_BUILD_ENV = "INTRIGUING_STATIC_BUILD"


def live_kernel() -> bool:
    """Whether live viewers make sense: False while the static book is being built.

    ``make book`` sets ``$INTRIGUING_STATIC_BUILD`` for the build, where a Python callback
    could never run in the reader's browser; in Jupyter (``make lab``) it is unset.
    """
    return os.environ.get(STATIC_BUILD_ENV, "") in ("", "0")


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


def _adversarial_of(result: Any) -> torch.Tensor:
    """``attack_fn``'s output: the images, or an object with ``.adversarial`` (AttackResult)."""
    adv = getattr(result, "adversarial", result)
    if not isinstance(adv, torch.Tensor):
        adv = torch.as_tensor(np.asarray(adv))
    return adv.detach().float().cpu()


def live_viewer(model_or_models: Any, images: Any, labels: Any, *, c_grid: Sequence[float],
                attack_fn: Callable[..., Any], model_names: Sequence[str] | None = None,
                targets: Sequence[int] = tuple(range(N_CLASSES)),
                sources: Sequence[str] | None = None) -> AttackViewer:
    """The attack viewer, attacking on demand in a running notebook.

    Each change of a control calls ``attack_fn(model, image, target, c=c)`` once (``image``
    ``(1, 1, 28, 28)``, ``target`` ``(1,)`` long) on the attacked model unless that frame was
    solved before (solves are memoised per (source, image, target, c)); ``attack_fn`` returns the
    adversarial image or an object with ``.adversarial`` (``attacks.lbfgs`` with a fixed c
    qualifies). ``engine.frames.assemble`` then asks every model about the result, and the
    frame is redrawn with the same render functions as the static viewer.

    Args:
        model_or_models: the attacked model, or a list (first attacked) or a name -> model dict.
        images: ``(I, 1, 28, 28)`` or ``(I, 28, 28)`` in [0,1].
        labels: ``(I,)`` true labels.
        c_grid: ascending positive constants the c slider offers.
        attack_fn: the attack (the adapter's one call into the engine), see above.
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
    x = engine_frames.as_images(images)
    check_unit("images", x.numpy())
    y = as_int("labels", labels)
    check_shape("labels", y, (len(x),))
    check_classes("labels", y)
    tg = checked_targets(targets)
    c_arr = checked_c_grid(c_grid)
    srcs = [names[0]] if sources is None else [str(n) for n in sources]
    unknown = [n for n in srcs if n not in names]
    if not srcs or unknown or len(set(srcs)) != len(srcs):
        raise ValueError(f"sources must be distinct names among {names}, got {list(srcs)}")
    src_index = [names.index(n) for n in srcs]
    cache: dict[tuple[int, int, int, int], AttackFrames] = {}

    def solve(i: int, t: int, k: int, s: int = 0) -> AttackFrames:
        key = (int(s), int(i), int(t), int(k))
        if key not in cache:
            src = src_index[int(s)]
            order = [src] + [m for m in range(len(models)) if m != src]
            c, target = float(c_arr[k]), tg[t:t + 1]
            adv = _adversarial_of(attack_fn(models[src], x[i:i + 1],
                                            torch.as_tensor(target).long(), c=c))
            cache[key] = engine_frames.assemble([models[m] for m in order],
                                                [names[m] for m in order], x[i:i + 1],
                                                y[i:i + 1], [c], target, adv)
        return cache[key]

    start = default_indices(y.tolist(), tg.tolist(), len(c_arr))
    controls = make_controls(y.tolist(), tg.tolist(), c_arr.tolist(), start, srcs)
    shared = Shared()
    first = solve(*start)
    area = frame_box(frame_html(first, 0, 0, 0), render_panel_html(first, 0, 0, 0), shared)
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


__all__ = ["STATIC_BUILD_ENV", "live_kernel", "live_viewer"]
