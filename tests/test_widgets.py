"""The attack viewers: frame data, pure render functions, the static viewer's structure, the live
viewer's memoised solves, and the saved frames a page reads. Synthetic and fast (no trained
model, no browser); the frames are made by ``engine.frames.compute`` with a fake attack in place
of ``attacks.lbfgs``."""

from __future__ import annotations

import ast
import io
import itertools
from pathlib import Path
from types import SimpleNamespace

import ipywidgets
import numpy as np
import pytest
import torch
from ipywidgets.widgets.widget_link import Link
from PIL import Image

from intriguing import attacks
from intriguing.display import widgets as W
from intriguing.engine import frames as engine_frames

N_IMG, T, C, M = 2, 3, 4, 2
C_GRID = [0.01, 0.1, 1.0, 10.0]
TARGETS = [0, 3, 8]
LABELS = [3, 8]
NAMES = ["source net", "other <net>"]


class FakeAttack:
    """Not an attack: adds 0.05 * (target + 1) / (1 + c) to every pixel; records each call.
    Called like ``attacks.lbfgs`` (extra keywords ignored); returns an object with
    ``.adversarial``, as it does."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], list[int], float]] = []

    def __call__(self, model, x, targets, *, c, **_):
        self.calls.append((tuple(x.shape), targets.tolist(), c))
        shift = 0.05 * (targets.float() + 1) / (1 + c)
        return SimpleNamespace(adversarial=(x + shift[:, None, None, None]).clamp(0, 1))


def _models(n: int = M) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()
            for _ in range(n)]


def _images(n: int = N_IMG) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g) * 0.5


def _compute(models, names, images, labels, c_grid, targets, attack, source=0):
    """``engine.frames.compute`` attacking ``models[source]``, with ``attack`` as the attack."""
    order = [source] + [m for m in range(len(models)) if m != source]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(attacks, "lbfgs", attack)
        return engine_frames.compute([models[m] for m in order], [names[m] for m in order],
                                     images, labels, c_grid, targets)


@pytest.fixture(scope="module")
def frames() -> W.AttackFrames:
    return _compute(_models(), NAMES, _images(), LABELS, C_GRID, TARGETS, FakeAttack())


def _valid_kwargs() -> dict:
    rng = np.random.default_rng(0)
    p = rng.random((1, 2, 3, 2, 10))
    return dict(originals=rng.random((1, 28, 28)), labels=[4], c_grid=[0.1, 1.0, 10.0],
                targets=[1, 2], adversarial=rng.random((1, 2, 3, 28, 28)),
                distortion=rng.random((1, 2, 3)), probs=p / p.sum(-1, keepdims=True),
                model_names=np.array(["a", "b"]), source="a")


def _imports(module) -> set[str]:
    """The modules ``module`` imports, as written (relative ones with their leading dots)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
    return out


def test_viewers_take_data_and_only_the_live_adapter_calls_the_engine():
    from intriguing.display import live, pagecheck, viewers
    from intriguing.plumbing import frames as plumbing_frames

    for module in (viewers, pagecheck, plumbing_frames):
        bad = {m for m in _imports(module)
               if "engine" in m or "experiments" in m or m.split(".")[0] == "torch"}
        assert not bad, f"{module.__name__} imports {bad}"
    assert {m for m in _imports(live) if "engine" in m} == {"..engine"}
    assert not {m for m in _imports(engine_frames) if "display" in m}
    assert not hasattr(W, "precompute_frames")


# --------------------------------------------------------------------------------------------
# AttackFrames


@pytest.mark.parametrize("field, value, match", [
    ("originals", np.zeros((1, 28, 27)), "originals must have shape"),
    ("originals", np.full((1, 28, 28), 1.5), "originals must hold finite values in"),
    ("labels", [4, 5], r"labels must have shape \(1,\)"),
    ("labels", [10], "labels must be classes"),
    ("labels", [4.0], "labels must hold integers"),
    ("c_grid", [1.0, 0.1, 10.0], "c_grid must be strictly ascending"),
    ("c_grid", [0.0, 1.0, 2.0], "c_grid must hold positive"),
    ("targets", [1, 1], "targets must be distinct"),
    ("targets", [-1, 2], "targets must be classes"),
    ("adversarial", np.zeros((1, 2, 2, 28, 28)), "adversarial must have shape"),
    ("distortion", np.full((1, 2, 3), -1.0), "distortion must hold non-negative"),
    ("probs", np.full((1, 2, 3, 2, 10), 0.5), "probs must sum to 1"),
    ("probs", np.full((1, 2, 3, 2, 9), 0.1), "probs must have shape"),
    ("model_names", np.array(["a"]), "model_names must have shape"),
    ("model_names", np.array(["a", "a"]), "model_names must be distinct"),
    ("source", "b", r"source must be model_names\[0\]"),
])
def test_attack_frames_validation(field, value, match):
    kwargs = _valid_kwargs()
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        W.AttackFrames(**kwargs)


def test_attack_frames_npz_round_trip(tmp_path, frames):
    path = frames.save(tmp_path / "sub" / "frames.npz")
    back = W.AttackFrames.load(path)
    for name in ("originals", "labels", "c_grid", "targets", "adversarial", "distortion", "probs",
                 "model_names"):
        np.testing.assert_array_equal(getattr(back, name), getattr(frames, name))
    assert back.source == frames.source
    with np.load(path, allow_pickle=False) as z:  # nothing pickled
        assert {"format", "source", "probs"} <= set(z.files)
    assert [p.name for p in path.parent.iterdir()] == ["frames.npz"]  # no temp file left


def test_attack_frames_load_rejects_other_files(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(2))
    with pytest.raises(ValueError, match="not an AttackFrames file"):
        W.AttackFrames.load(path)


# --------------------------------------------------------------------------------------------
# Render functions


def test_render_png_is_a_small_strip(frames):
    png = W.render_png(frames, 1, 2, 0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) < 8000
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape == (28, 3 * 28 + 2 * W.GAP, 3)
    np.testing.assert_allclose(img[:, :28, 0], np.rint(frames.originals[1] * 255), atol=1)
    a0 = 28 + W.GAP
    np.testing.assert_allclose(img[:, a0:a0 + 28, 0], np.rint(frames.adversarial[1, 2, 0] * 255),
                               atol=1)
    assert (img[:, 28:a0] == 255).all()  # white gap
    big = Image.open(io.BytesIO(W.render_png(frames, 1, 2, 0, scale=3)))
    assert big.size == (3 * (3 * 28 + 2 * W.GAP), 3 * 28)
    with pytest.raises(ValueError, match="k must be in"):
        W.render_png(frames, 0, 0, C)


def test_difference_panel_is_grey_where_nothing_changed():
    x = np.zeros((28, 28))
    a = x.copy()
    a[3, 4], a[5, 6] = 0.2, 0.1
    rgb, gain = W.strip_array(x, a)
    diff = rgb[:, 2 * (28 + W.GAP):]
    assert gain == pytest.approx(5.0)
    assert tuple(diff[0, 0]) == (128, 128, 128)
    assert tuple(diff[3, 4]) == (202, 0, 32)  # the largest change: full red
    assert diff[5, 6, 0] > 128 > diff[5, 6, 2]  # half-way to red
    _, none = W.strip_array(x, x)
    assert none == 0.0
    rgb_neg, _ = W.strip_array(a, x)
    assert tuple(rgb_neg[3, 2 * (28 + W.GAP) + 4]) == (5, 113, 176)  # darkened: blue


def test_render_panel_html_lists_every_model_and_the_target_probability(frames):
    i, t, k = 0, 2, 1
    panel = W.render_panel_html(frames, i, t, k)
    assert "source net" in panel and "other &lt;net&gt;" in panel  # names escaped
    for m in range(M):
        assert f"{frames.probs[i, t, k, m, TARGETS[t]]:.2f}" in panel
    assert f"target {TARGETS[t]}" in panel and "c = 1e-1" in panel
    assert f"distortion {frames.distortion[i, t, k]:.3f}" in panel


def test_panel_marks_success():
    probs = np.full((2, 10), 0.01)
    probs[0, 5], probs[1, 3] = 0.91, 0.91  # the source says 5 (the target), the other says 3
    panel = W.panel_html(model_names=["src", "other"], probs=probs, label=3, target=5, c=0.1,
                         distortion=0.05, gain=4.0)
    rows = panel.split("<tr")[2:]
    assert 'class="hit"' in rows[0] and "&#10004;" in rows[0] and "width:91.0%" in rows[0]
    assert 'class="ok"' in rows[1] and "&#10004;" not in rows[1]
    assert "reached" in panel and "not reached" not in panel
    assert "0 of 1 other models misclassify it" in panel
    same = W.panel_html(model_names=["src"], probs=probs[:1], label=5, target=5, c=0.1,
                        distortion=0.0, gain=0.0)
    assert "is the true label" in same and "&#10004;" not in same


def test_c_labels_are_short_and_distinct():
    assert W.c_labels([0.01, 0.0316, 0.1, 1.0, 10.0]) == ["1e-2", "3.2e-2", "1e-1", "1e0", "1e1"]
    assert len(set(W.c_labels([0.01, 0.0101, 0.0102]))) == 3


# --------------------------------------------------------------------------------------------
# Static viewer


def _follow_links(viewer: W.AttackViewer) -> None:
    """What jslink does in the browser: copy each source value to its target."""
    for link in viewer.links:
        (src, src_attr), (dst, dst_attr) = link.source, link.target
        setattr(dst, dst_attr, getattr(src, src_attr))


def _shown(viewer: W.AttackViewer) -> ipywidgets.Box:
    node = viewer.frames_area
    while isinstance(node, ipywidgets.Stack):
        node = node.children[node.selected_index]
    return node


def test_static_viewer_nests_stacks_image_target_c(frames):
    viewer = W.static_viewer(frames)
    outer = viewer.frames_area
    assert isinstance(outer, ipywidgets.Stack) and len(outer.children) == N_IMG
    for i, by_t in enumerate(outer.children):
        assert isinstance(by_t, ipywidgets.Stack) and len(by_t.children) == T
        for t, by_c in enumerate(by_t.children):
            assert isinstance(by_c, ipywidgets.Stack) and len(by_c.children) == C
            for k, frame in enumerate(by_c.children):
                image, panel = frame.children
                assert isinstance(image, ipywidgets.HTML) and 'class="pixelated"' in image.value
                assert image.value == W.frame_html(frames, i, t, k)
                assert panel.value == W.render_panel_html(frames, i, t, k)


def test_static_viewer_controls_drive_the_stacks_by_jslink_only(frames):
    viewer = W.static_viewer(frames)
    ctl = viewer.controls
    assert all(isinstance(link, Link) for link in viewer.links)
    assert len(viewer.links) == 1 + N_IMG + N_IMG * T
    assert {id(link.source[0]) for link in viewer.links} == {id(ctl.image), id(ctl.target),
                                                             id(ctl.c)}
    assert ctl.c.options[0][0] == "1e-2" and len(ctl.c.options) == C
    for i, t, k in itertools.product(range(N_IMG), range(T), range(C)):
        ctl.image.index, ctl.target.index, ctl.c.index = i, t, k
        _follow_links(viewer)
        image, panel = _shown(viewer).children
        assert image.value == W.frame_html(frames, i, t, k), (i, t, k)
        assert panel.value == W.render_panel_html(frames, i, t, k)


def test_static_viewer_default_frame_is_meaningful(frames):
    viewer = W.static_viewer(frames)
    ctl = viewer.controls
    i, t, k = ctl.image.index, ctl.target.index, ctl.c.index
    assert (i, k) == (0, C // 2) and TARGETS[t] != LABELS[0]
    before = _shown(viewer)
    _follow_links(viewer)  # the state saved in the page agrees with the controls already
    assert _shown(viewer) is before
    assert before.children[0].value == W.frame_html(frames, i, t, k)


def test_static_viewer_state_stays_small():
    """3 images x 10 targets x 9 c x 10 models, noise images (worst case for PNG): < 10 MB."""
    rng = np.random.default_rng(0)
    shape = (3, 10, 9)
    p = rng.random((*shape, 10, 10))
    big = W.AttackFrames(
        originals=rng.random((3, 28, 28)), labels=[7, 2, 1], c_grid=np.logspace(-3, 1, 9),
        targets=list(range(10)), adversarial=rng.random((*shape, 28, 28)),
        distortion=rng.random(shape), probs=p / p.sum(-1, keepdims=True),
        model_names=np.array([f"model {m}" for m in range(10)]), source="model 0")
    size = W.widget_state_bytes(W.static_viewer(big))
    assert size < 10e6, f"{size / 1e6:.1f} MB"


def test_questions():
    q = W.questions("Why?", "How?")
    assert isinstance(q, ipywidgets.HTML) and q.value.count("<li>") == 2 and "Think!" in q.value
    with pytest.raises(ValueError, match="at least one"):
        W.questions()


# --------------------------------------------------------------------------------------------
# Live viewer


def test_live_viewer_solves_on_demand_and_memoises(frames):
    attack = FakeAttack()
    viewer = W.live_viewer(_models(), _images(), LABELS, c_grid=C_GRID, attack_fn=attack,
                           model_names=NAMES, targets=TARGETS)
    ctl = viewer.controls
    start = (ctl.image.index, ctl.target.index, ctl.c.index)
    assert len(attack.calls) == 1 and attack.calls[0][0] == (1, 1, 28, 28)
    image, panel = viewer.frames_area.children
    # the same pixels and panel as the static viewer's frame
    assert image.value == W.frame_html(frames, *start)
    assert panel.value == W.render_panel_html(frames, *start)
    ctl.c.index = 0
    assert len(attack.calls) == 2 and attack.calls[-1][2] == C_GRID[0]
    assert image.value == W.frame_html(frames, start[0], start[1], 0)
    ctl.target.index = 2
    ctl.image.index = 1
    assert image.value == W.frame_html(frames, 1, 2, 0)
    assert panel.value == W.render_panel_html(frames, 1, 2, 0)
    n = len(attack.calls)
    ctl.image.index, ctl.target.index, ctl.c.index = start
    ctl.image.index = 1
    ctl.image.index = start[0]
    assert len(attack.calls) == n + 1  # only (1, start_t, start_k) was new
    assert set(viewer.cache) >= {(0, *start), (0, 1, 2, 0)}  # keyed (source, i, t, k)


def test_live_viewer_accepts_one_model_or_a_dict():
    attack = FakeAttack()
    one = W.live_viewer(_models(1)[0], _images(1), [3], c_grid=[1.0], attack_fn=attack)
    assert "Sequential" in one.frames_area.children[1].value
    named = W.live_viewer(dict(zip(NAMES, _models(), strict=True)), _images(1)[:, 0], [3],
                          c_grid=[0.1, 1.0], attack_fn=attack)
    assert "other &lt;net&gt;" in named.frames_area.children[1].value
    with pytest.raises(ValueError, match="c_grid must be strictly ascending"):
        W.live_viewer(_models(1), _images(1), [3], c_grid=[1.0, 0.1], attack_fn=attack)
    with pytest.raises(ValueError, match="images must have shape"):
        W.live_viewer(_models(1), torch.zeros(1, 3, 28, 28), [3], c_grid=[1.0], attack_fn=attack)


def test_linked_stacks_links_every_stack_of_each_level():
    import ipywidgets as ipw

    leaves = [[ipw.HTML(f"{a}{b}") for b in range(3)] for a in range(2)]
    outer_control, inner_control = ipw.Dropdown(options=[0, 1]), ipw.Dropdown(options=[0, 1, 2])
    outer, links = W.linked_stacks(leaves, [outer_control, inner_control], [1, 2])
    assert outer.selected_index == 1 and len(outer.children) == 2
    assert [s.selected_index for s in outer.children] == [2, 2]
    assert outer.children[1].children[2].value == "12"
    assert len(links) == 1 + 2  # the outer Stack, and each of the two inner Stacks
    with pytest.raises(ValueError, match="one entry per level"):
        W.linked_stacks(leaves, [outer_control], [0, 0])


# --------------------------------------------------------------------------------------------
# Several attacked models: the transfer viewer


SOURCES = 3  # every model of _models(3) attacked in turn


class SourceAttack:
    """Not an attack: brightens a stripe chosen by (attacked model, target), fainter as c grows,
    so every (source, image, target, c) frame differs."""

    def __init__(self, models: list[torch.nn.Module]) -> None:
        self.models = models
        self.attacked: list[int] = []

    def __call__(self, model, x, targets, *, c, **_):
        s = next(n for n, m in enumerate(self.models) if m is model)
        self.attacked.append(s)
        r = torch.zeros_like(x)
        for n, t in enumerate(targets.tolist()):
            r[n, 0, 2 * t + s] = 0.6 / (1 + c)
        return (x + r).clamp(0, 1)  # the images alone: the live viewer takes either


@pytest.fixture(scope="module")
def per_source() -> list[W.AttackFrames]:
    models = _models(SOURCES)
    attack = SourceAttack(models)
    out = [_compute(models, ["a", "b", "c"], _images(), LABELS, C_GRID, TARGETS,
                    lambda *a, **k: SimpleNamespace(adversarial=attack(*a, **k)), source=s)
           for s in range(SOURCES)]
    assert attack.attacked == [s for s in range(SOURCES) for _ in C_GRID]
    return out


def test_transfer_viewer_maps_source_image_target_c_to_its_frame(per_source):
    viewer = W.static_viewer(per_source)
    ctl = viewer.controls
    assert ctl.source is not None and [o[0] for o in ctl.source.options] == ["a", "b", "c"]
    assert ctl.source in viewer.children[0].children[0].children  # shown beside image, target
    assert all(isinstance(link, Link) for link in viewer.links)
    assert len(viewer.links) == 1 + SOURCES + SOURCES * N_IMG + SOURCES * N_IMG * T
    for s, i, t, k in itertools.product(range(SOURCES), range(N_IMG), range(T), range(C)):
        ctl.source.index, ctl.image.index, ctl.target.index, ctl.c.index = s, i, t, k
        _follow_links(viewer)
        image, panel = _shown(viewer).children
        assert image.value == W.frame_html(per_source[s], i, t, k), (s, i, t, k)
        assert panel.value == W.render_panel_html(per_source[s], i, t, k)
    # the frames really differ by source: the attacked model heads each panel
    assert "<td>b <span" in W.render_panel_html(per_source[1], 0, 0, 0)
    assert W.render_png(per_source[0], 0, 1, 0) != W.render_png(per_source[1], 0, 1, 0)


def test_transfer_viewer_default_and_single_source_unchanged(per_source, frames):
    viewer = W.static_viewer(per_source)
    assert viewer.controls.source.index == 0
    before = _shown(viewer)
    _follow_links(viewer)
    assert _shown(viewer) is before  # the saved state already agrees with the controls
    one = W.static_viewer([per_source[0]])
    assert one.controls.source is None and len(one.links) == 1 + N_IMG + N_IMG * T
    assert W.static_viewer(frames).controls.source is None


def test_transfer_viewer_rejects_frames_that_do_not_line_up(per_source):
    other_c = _compute(_models(1), ["z"], _images(), LABELS, [0.5, 5.0], TARGETS, FakeAttack())
    with pytest.raises(ValueError, match=r"frames\[1\]\.c_grid must equal frames\[0\]\.c_grid"):
        W.static_viewer([per_source[0], other_c])
    with pytest.raises(ValueError, match="distinct source models"):
        W.static_viewer([per_source[0], per_source[0]])
    with pytest.raises(ValueError, match="non-empty sequence"):
        W.static_viewer([])


def test_live_viewer_with_sources_attacks_the_chosen_model(per_source):
    models = _models(SOURCES)
    attack = SourceAttack(models)
    viewer = W.live_viewer(models, _images(), LABELS, c_grid=C_GRID, attack_fn=attack,
                           model_names=["a", "b", "c"], targets=TARGETS, sources=["a", "c"])
    ctl = viewer.controls
    assert [o[0] for o in ctl.source.options] == ["a", "c"] and attack.attacked == [0]
    image, panel = viewer.frames_area.children
    ctl.source.index = 1  # attack "c", which is model 2 of per_source
    ctl.image.index, ctl.target.index, ctl.c.index = 1, 2, 3
    assert attack.attacked[-1] == 2
    assert image.value == W.frame_html(per_source[2], 1, 2, 3)
    assert panel.value == W.render_panel_html(per_source[2], 1, 2, 3)
    assert (1, 1, 2, 3) in viewer.cache
    with pytest.raises(ValueError, match="sources must be distinct names"):
        W.live_viewer(models, _images(), LABELS, c_grid=C_GRID, attack_fn=attack,
                      model_names=["a", "b", "c"], sources=["a", "nobody"])
    with pytest.raises(ValueError, match="sources must be distinct names"):
        W.live_viewer(models, _images(), LABELS, c_grid=C_GRID, attack_fn=attack,
                      model_names=["a", "b", "c"], sources=[])


def test_transfer_viewer_state_stays_small():
    """The book's transfer viewer: 3 sources x 3 images x 10 targets x 10 c x 10 models, noise
    images (the worst case for PNG): under the 10 MB page budget."""
    rng = np.random.default_rng(0)
    shape = (3, 10, 10)
    sets = []
    for s in range(3):
        p = rng.random((*shape, 10, 10))
        names = [f"model {(m + s) % 10}" for m in range(10)]
        sets.append(W.AttackFrames(
            originals=np.full((3, 28, 28), 0.5), labels=[7, 2, 1], c_grid=np.logspace(-3, 1.5, 10),
            targets=list(range(10)), adversarial=rng.random((*shape, 28, 28)),
            distortion=rng.random(shape), probs=p / p.sum(-1, keepdims=True),
            model_names=np.array(names), source=names[0]))
    size = W.widget_state_bytes(W.static_viewer(sets))
    assert size < W.PAGE_LIMIT_BYTES, f"{size / 1e6:.1f} MB"


# --------------------------------------------------------------------------------------------
# Page weight


def test_page_weight_counts_the_page_and_its_local_files(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_static").mkdir()
    (tmp_path / "_images" / "fig.png").write_bytes(b"x" * 1000)
    (tmp_path / "_images" / "fig 2.png").write_bytes(b"x" * 10)
    (tmp_path / "_static" / "app.js").write_bytes(b"x" * 300)
    (tmp_path / "_static" / "style.css").write_bytes(b"x" * 40)
    (tmp_path / "_static" / "print.css").write_bytes(b"x" * 7)
    folder = tmp_path / "chapters"
    folder.mkdir()
    page = folder / "p.html"
    page.write_text(
        '<html><head><script src="../_static/app.js"></script>'
        '<link rel="stylesheet" href="../_static/style.css">'
        '<link rel="stylesheet" href="https://example.org/x.css">'
        '<link rel="icon" href="../_static/print.css"></head><body>'
        '<img src="../_images/fig.png"><img src="../_images/fig.png">'
        '<img src="../_images/fig%202.png"><img src="data:image/png;base64,AAAA">'
        '<img src="../_images/missing.png"><script>var a = 1;</script></body></html>',
        encoding="utf-8")
    html_bytes = page.stat().st_size
    assert W.page_weight(page) == {"html": html_bytes, "images": 1010, "scripts_styles": 340,
                                   "page": html_bytes + 1010, "total": html_bytes + 1350}
    with pytest.raises(ValueError, match="page must be an existing HTML file"):
        W.page_weight(tmp_path / "nope.html")


def test_render_alt_describes_the_frame(frames):
    alt = W.render_alt(frames, 1, 2, 0)
    assert f"labelled {int(frames.labels[1])}" in alt and f"towards {int(frames.targets[2])}" in alt
    assert f"c = {float(frames.c_grid[0]):g}" in alt and frames.source in alt
    with pytest.raises(ValueError):
        W.render_alt(frames, 99, 0, 0)


def test_frame_html_is_the_png_with_its_description_as_alt_text(frames):
    import base64
    import html as html_mod

    out = W.frame_html(frames, 1, 2, 0)
    assert base64.b64encode(W.render_png(frames, 1, 2, 0)).decode() in out
    assert f'alt="{html_mod.escape(W.render_alt(frames, 1, 2, 0), quote=True)}"' in out
    assert f'width="{W.FRAME_WIDTH}"' in out and 'class="pixelated"' in out
    assert 'alt="a &quot;quoted&quot; &lt;b&gt;"' in W.img_html(b"x", 'a "quoted" <b>', 1, 1)


# --------------------------------------------------------------------------------------------
# Saved frames: the experiment computes, the page reads


def test_saved_frames_read_what_the_experiment_wrote(synthetic_mnist, monkeypatch, tiny):
    from intriguing.experiments import REGISTRY, viewers
    from intriguing.plumbing import config, results

    monkeypatch.setitem(config.SCALES, tiny.name, tiny)
    monkeypatch.setattr(engine_frames, "N_IMAGES", 1)
    monkeypatch.setattr(viewers, "VIEWERS", {
        "one": {"sources": ("FC10(1e-2)",), "models": ("FC10(1e-2)",), "c_grid": (0.1, 10.0)},
        "two": {"sources": ("FC10(1e-2)", "FC10(1)"), "models": ("FC10(1)", "FC10(1e-2)"),
                "c_grid": (0.1, 10.0)}})
    assert REGISTRY["viewer_frames"].run is viewers.viewer_frames
    doc = viewers.viewer_frames(tiny, progress=False)
    assert doc["summaries"] == {} and doc["claims"] == []
    assert [(r["viewer"], r["source"]) for r in doc["rows"]] == [
        ("one", "FC10(1e-2)"), ("two", "FC10(1e-2)"), ("two", "FC10(1)")]
    assert all(r["file"].startswith("adversarial/frames-") for r in doc["rows"])

    def no_attack(*args, **kwargs):
        raise AssertionError("a page must only read the saved frames")

    monkeypatch.setattr(attacks, "lbfgs", no_attack)
    one = W.saved_frames("one", tiny)
    assert len(one) == 1 and one[0].shape == (1, 10, 2, 1)
    two = W.saved_frames("two", tiny)
    assert [f.source for f in two] == ["FC10(1e-2)", "FC10(1)"]
    assert two[1].model_names.tolist() == ["FC10(1)", "FC10(1e-2)"]  # the attacked model first
    assert W.static_viewer(two).controls.source is not None
    # the chapters' call reads the same file
    from intriguing.engine import advsets

    same = advsets.viewer_frames("FC10(1)", models=["FC10(1e-2)"], n_images=1,
                                 c_grid=(0.1, 10.0), scale=tiny)
    np.testing.assert_array_equal(same.adversarial, two[1].adversarial)
    with pytest.raises(ValueError, match="viewer must be one of"):
        W.saved_frames("nope", tiny)
    (config.data_dir() / doc["rows"][0]["file"]).unlink()
    with pytest.raises(FileNotFoundError, match="reproduce viewer_frames"):
        W.saved_frames("one", tiny)
    assert results.path("viewer_frames", tiny).exists()
