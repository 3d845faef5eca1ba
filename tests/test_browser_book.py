"""Issue 17's acceptance on the built book: the live viewers, opened from disk, network blocked.

Runs on a built book named by ``BOOK_HTML`` (``BOOK_HTML=_build/html pytest
tests/test_browser_book.py -s``, as for tests/test_browser.py, whose Chromium it shares) and
skips when it is unset. Each page is opened as a ``file://`` URL with every http(s) request
aborted and counted, and:

- "Blind spots": pick an image, choose a target, move c, switch the model, draw a digit and run
  the full search over c; each time the class and distortion the viewer shows are those of
  ``attacks.lbfgs`` run in Python on the same weights (read back from the site's
  ``attack-data`` scripts, not from ``data/``), pixels, target and c (section 4.1 of Szegedy et
  al. 2014, arXiv:1312.6199): same class and success, distortion within 2%.
- "Transferability": every row of the transfer table is the Python model's prediction of the
  page's adversarial image, clean and adversarial (section 4.3).
- "Random directions" and "Semantic units": the Property 1 panel answers a change of image,
  target, c and basis seed; its solve matches ``attacks.lbfgs`` at that c, its hidden-layer change
  the Python model's, and its top-k shares ``engine.perturbation_units`` on that change, in the
  unit basis and in the random basis rebuilt here from the seed as the page builds it (section 3).

The page also times, with ``performance.now()``, a fixed-c solve and the full search on
FC200-200-10 and the time from navigation to the viewer's first result; the test prints them
(``-s``) and asserts only generous bounds (the issue's targets are reported in the note, not
tested).
"""

from __future__ import annotations

import base64
import math
import statistics
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from intriguing import attacks, zoo
from intriguing.display import browser_viewer as bv
from intriguing.engine import perturbation_units as pu
from intriguing.engine import webexport
from intriguing.experiments import transferability
from test_browser import ALLOWED_CONSOLE, _book_html_env, browser, site  # noqa: F401 (fixtures)
from test_browser_viewer import Viewer, _check, _read_script, _reference_model, _time_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(_book_html_env() is None,
                       reason="set BOOK_HTML to a built book (e.g. _build/html)"),
]

TIMEOUT_MS = 120_000
#: Sanity bounds only (a loaded 2-core machine runs the page far slower than a reader's laptop):
#: ten times issue 17's targets of 100 ms, 1 s and 2 s.
MAX_SOLVE_MS, MAX_SEARCH_MS, MAX_READY_MS = 1_000.0, 10_000.0, 20_000.0
#: Images the in-page timing loop attacks (test images 20..29, as tests/test_browser_viewer.py).
TIMED_IMAGES = range(20, 30)
MIN_IMAGES = 500  # the issue: at least 500 shipped test images


# --------------------------------------------------------------------------------------------
# The site's exported data, decoded in Python


class SiteData:
    """The built site's ``attack-data``: its index, test images and models (float64 torch)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / bv.DATA_DIR
        if not (self.dir / "index.js").is_file():
            pytest.fail(f"{self.dir} holds no index.js: the book was built without export-web")
        self.index = _read_script(self.dir / "index.js")
        img = _read_script(self.dir / "images.js")
        pixels = np.frombuffer(base64.b64decode(img["pixels"]), np.uint8)
        self.images = torch.from_numpy(pixels.astype(np.float64) / 255).view(img["n"], 1, 28, 28)
        self.labels = np.frombuffer(base64.b64decode(img["labels"]), np.uint8)
        self._models: dict[str, torch.nn.Module] = {}

    def names(self) -> list[str]:
        return [m["name"] for m in self.index["models"]]

    def model(self, name: str, *, copy: bool = False) -> torch.nn.Module:
        """The exported model, or (``copy``) the float16 copy the transfer table predicts with."""
        file = webexport.predictor_file(name) if copy else bv.data_file(name)
        if file not in self._models:
            self._models[file] = _reference_model(_read_script(self.dir / file))
        return self._models[file]


@pytest.fixture(scope="module")
def data(site) -> SiteData:  # noqa: F811
    return SiteData(site)


# --------------------------------------------------------------------------------------------
# Opening a page from disk


class Opened:
    """A page of the built book opened from disk; every http(s) request aborted and counted."""

    def __init__(self, browser, path: Path) -> None:  # noqa: F811
        if not path.is_file():
            pytest.fail(f"the built book lacks {path}")
        self.external: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 1400})
        page = self.page = self.context.new_page()

        def route(r):
            if urlparse(r.request.url).scheme in ("http", "https"):
                self.external.append(r.request.url)
                r.abort()
            else:
                r.continue_()

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: urlparse(r.url).scheme == "file"
                and self.errors.append(f"failed {r.url}"))
        page.goto(path.as_uri(), wait_until="load", timeout=TIMEOUT_MS)

    def close(self) -> None:
        try:
            self.page.wait_for_timeout(200)  # late console messages
        finally:
            self.context.close()

    def check(self) -> None:
        """No request left the machine, no local file failed, no error in the console."""
        assert not self.external, f"requests to the network: {self.external[:5]}"
        unexpected = [e for e in self.errors if not any(a in e for a in ALLOWED_CONSOLE)]
        assert not unexpected, f"page errors: {unexpected[:5]}"


def _live_viewer(page, transfer: bool) -> Viewer:
    """The page's (one) live viewer of the given variant, once it shows its first result."""
    sel = ".intriguing-live"
    page.wait_for_selector(f"{sel}[data-ready]", state="attached", timeout=TIMEOUT_MS)
    ids = page.eval_on_selector_all(
        sel, "(els, t) => els.filter(e => JSON.parse(e.dataset.config).transfer === t)"
             ".map(e => e.id)", transfer)
    assert len(ids) == 1, f"one {'transfer' if transfer else 'blind-spots'} viewer expected: {ids}"
    page.wait_for_selector(f"#{ids[0]}[data-ready]", state="attached", timeout=TIMEOUT_MS)
    return Viewer(page, ids[0])


# --------------------------------------------------------------------------------------------
# Blind spots


def test_blind_spots_viewer_matches_python(browser, site, data, capsys):  # noqa: F811
    """Image, target, c, model, a drawn digit and the full search: each answer is Python's."""
    opened = Opened(browser, site / "chapters" / "blind_spots.html")
    page = opened.page
    try:
        view = _live_viewer(page, transfer=False)
        cfg = page.evaluate("id => JSON.parse(document.getElementById(id).dataset.config)",
                            view.id)
        assert cfg["model"] == "FC200-200-10" and cfg["models"] == zoo.TABLE1
        assert set(zoo.TABLE1) <= set(data.names())
        assert int(view.role("image-index").get_attribute("max")) + 1 >= MIN_IMAGES
        fc200 = data.model("FC200-200-10")

        first = view.read()  # the page starts with the full search on image 0
        ready_ms = first["readyAt"]
        assert first["mode"] == "search" and first["index"] == 0
        assert first["pixels"] == data.images[0].flatten().tolist()
        _check(first, fc200, "first result (search)")

        # Pick an image: the next one, then one far into the shipped set.
        st = view.act(lambda: view.role("image-next").click())
        assert st["index"] == 1 and st["mode"] == "solve"
        _check(st, fc200, "next image")
        index = MIN_IMAGES - 17
        view.role("image-index").fill(str(index))
        st = view.act(lambda: view.role("image-index").dispatch_event("change"))
        assert st["index"] == index and st["pixels"] == data.images[index].flatten().tolist()
        _check(st, fc200, f"image {index}")

        # Choose a target (not the label), then move c across the slider's range.
        target = (int(data.labels[index]) + 4) % 10
        st = view.act(lambda: view.role("target").select_option(str(target)))
        assert st["target"] == target
        _check(st, fc200, "target")
        lo, hi = (float(view.role("logc").get_attribute(a)) for a in ("min", "max"))
        solve_ms = []
        for frac in (0.2, 0.85, 0.5):
            logc = round(lo + frac * (hi - lo), 2)
            st = view.act(lambda v=logc: view.role("logc").fill(str(v)))
            assert math.isclose(st["c"], 10 ** logc, rel_tol=1e-9)
            _check(st, fc200, f"c = 10^{logc}")
            solve_ms.append(st["ms"])

        # The full search over c: the minimum-distortion example.
        st = view.act(lambda: view.role("search").click())
        assert st["mode"] == "search"
        assert _check(st, fc200, "search")["success"]
        search_ms = [st["ms"]]

        # Another Table 1 model: its weights arrive as an added <script> from disk.
        st = view.act(lambda: view.role("model").select_option("AE400-10"))
        assert st["model"] == "AE400-10"
        _check(st, data.model("AE400-10"), "AE400-10")
        view.act(lambda: view.role("model").select_option("FC200-200-10"))

        # Draw a digit on the pad: the stroke's end attacks the drawing.
        pad = view.role("pad")
        pad.scroll_into_view_if_needed()
        box = pad.bounding_box()

        def draw():
            at = lambda fx, fy: (box["x"] + fx * box["width"], box["y"] + fy * box["height"])  # noqa: E731
            page.mouse.move(*at(0.3, 0.25))
            page.mouse.down()
            page.mouse.move(*at(0.65, 0.3), steps=6)
            page.mouse.move(*at(0.45, 0.55), steps=6)
            page.mouse.move(*at(0.5, 0.8), steps=6)
            page.mouse.up()

        st = view.act(draw)
        assert st["source"] == "drawing" and sum(p > 0 for p in st["pixels"]) >= 20
        _check(st, fc200, "drawing")
        with torch.no_grad():
            drawn = int(fc200(torch.tensor(st["pixels"], dtype=torch.float64)
                              .view(1, 1, 28, 28)).argmax(1))
        st = view.act(lambda: view.role("target").select_option(str((drawn + 5) % 10)))
        assert st["source"] == "drawing"
        _check(st, fc200, "drawing, another target")
        st = view.act(lambda: view.role("search").click())
        _check(st, fc200, "drawing, search")
        search_ms.append(st["ms"])

        timed = _time_in_page(page, "FC200-200-10", TIMED_IMAGES)
    finally:
        opened.close()
    opened.check()
    solve_ms += timed["solve"]
    search_ms += timed["search"]
    solve, search = statistics.median(solve_ms), statistics.median(search_ms)
    with capsys.disabled():
        print(f"\nblind_spots.html from file:// ({data.index['scale']} scale), FC200-200-10: "
              f"first result {ready_ms:.0f} ms after navigation; fixed-c solve median "
              f"{solve:.1f} ms (max {max(solve_ms):.1f}, n={len(solve_ms)}); full search median "
              f"{search:.1f} ms (max {max(search_ms):.1f}, n={len(search_ms)})")
    assert solve < MAX_SOLVE_MS and search < MAX_SEARCH_MS and ready_ms < MAX_READY_MS


# --------------------------------------------------------------------------------------------
# Transferability


def _check_transfer_rows(view: Viewer, data: SiteData, label: str) -> int:
    """Every row of the transfer table against the Python model: clean and adversarial class."""
    st = view.read()
    x = torch.tensor(st["pixels"], dtype=torch.float64).view(1, 1, 28, 28)
    adv = torch.tensor(st["adversarial"], dtype=torch.float64).view(1, 1, 28, 28)
    rows = view.role("transfer").locator("tr[data-model]")
    names = [rows.nth(r).get_attribute("data-model") for r in range(rows.count())]
    assert names == data.names(), f"{label}: the table's models {names}"
    for r, name in enumerate(names):
        cells = rows.nth(r).locator("td")
        half = "(float16)" in cells.nth(0).inner_text()
        assert not (half and name == st["model"]), (label, name, "the attacked model is float32")
        with torch.no_grad():
            net = data.model(name, copy=half)
            clean, fooled = int(net(x).argmax(1)), int(net(adv).argmax(1))
        assert int(cells.nth(1).inner_text()) == clean, (label, name, "clean")
        assert int(rows.nth(r).locator("td.pred").inner_text()) == fooled, (label, name)
    return len(names)


def test_transferability_table_matches_python(browser, site, data, capsys):  # noqa: F811
    """The attacked model's answer is Python's; every row is that model's prediction."""
    opened = Opened(browser, site / "chapters" / "transferability.html")
    page = opened.page
    try:
        view = _live_viewer(page, transfer=True)
        st = view.read()
        assert st["model"] == transferability.EXAMPLES_SOURCE
        source = data.model(st["model"])
        _check(st, source, "first result (search)")
        view.role("transfer-load").scroll_into_view_if_needed()
        t0 = page.evaluate("performance.now()")
        view.role("transfer-load").click()
        page.wait_for_function(f"() => document.getElementById('{view.id}').intriguing"
                               ".transferLoaded", timeout=TIMEOUT_MS)
        load_ms = page.evaluate("performance.now()") - t0
        assert view.role("transfer-load").is_hidden()
        n = _check_transfer_rows(view, data, "first example")
        # The table follows the example: a new image and target.
        view.role("image-index").fill("42")
        view.act(lambda: view.role("image-index").dispatch_event("change"))
        st = view.act(lambda: view.role("target").select_option(str((data.labels[42] + 3) % 10)))
        _check(st, source, "image 42")
        _check_transfer_rows(view, data, "image 42")
    finally:
        opened.close()
    opened.check()
    with capsys.disabled():
        print(f"\ntransferability.html from file://: {n} models in the table, every model "
              f"loaded in {load_ms:.0f} ms after the button")


# --------------------------------------------------------------------------------------------
# The Property 1 panel


def _seeded_basis(d: int, seed: int) -> np.ndarray:
    """``IntriguingUnits.randomBasis(d, seed)`` rebuilt in Python: mulberry32 uniforms,
    Box-Muller normals, filled row by row, then modified Gram-Schmidt applied twice per row."""
    mask = 0xFFFFFFFF
    state = (seed ^ 0x9E3779B9) & mask

    def imul(a: int, b: int) -> int:
        return (a * b) & mask

    def uniform() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & mask
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & mask
        return (((t ^ (t >> 14)) & mask) + 0.5) / 4294967296

    values = []
    while len(values) < d * d:
        r = math.sqrt(-2 * math.log(uniform()))
        th = 2 * math.pi * uniform()
        values += [r * math.cos(th), r * math.sin(th)]
    b = np.array(values[:d * d]).reshape(d, d)
    for row in range(d):
        for _ in range(2):
            for q in range(row):
                b[row] -= float(b[q] @ b[row]) * b[q]
        b[row] /= np.linalg.norm(b[row])
    return b


def _hidden(model: torch.nn.Module, x: torch.Tensor, layer: int) -> torch.Tensor:
    """The output of hidden layer ``layer`` (1-based) of a reference model (float64)."""
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    h = x.flatten(1)
    with torch.no_grad():
        for lin in linears[:layer]:
            h = torch.sigmoid(lin(h))
    return h


def _units_state(page, pid: str) -> dict:
    return page.evaluate("""id => {
        const s = document.getElementById(id).intriguingUnits, r = s.result;
        const q = role => document.getElementById(id).querySelector(`[data-role="${role}"]`);
        return {index: s.index, target: s.target, c: s.c, seed: s.seed, runs: s.runs,
                error: s.error, readyAt: s.readyAt - performance.timeOrigin,
                adversarial: Array.from(r.solve.adversarial), predicted: r.solve.predicted,
                success: r.solve.success, distortion: r.solve.distortion,
                ms: r.solve.milliseconds, delta: Array.from(r.delta), norm: r.norm,
                shares: r.shares, shown_predicted: q("predicted").innerText,
                shown_distortion: q("distortion").innerText,
                shown_rows: Array.from(q("shares").querySelectorAll("tr")).slice(1)
                    .map(tr => Array.from(tr.cells).map(td => td.innerText))};
    }""", pid)


def _units_act(page, pid: str, action) -> dict:
    before = page.evaluate("id => document.getElementById(id).intriguingUnits.runs", pid)
    action()
    page.wait_for_function("([id, n]) => document.getElementById(id).intriguingUnits.runs > n",
                           arg=[pid, before], timeout=TIMEOUT_MS)
    return _units_state(page, pid)


def _check_units(st: dict, data: SiteData, cfg: dict, what: str) -> dict:
    """The panel's answer against Python: the solve, the layer's change and the shares."""
    assert st["error"] is None, f"{what}: {st['error']}"
    model = data.model(cfg["model"])
    x = data.images[st["index"]:st["index"] + 1]
    ref = attacks.lbfgs(model, x, torch.tensor([st["target"]]), c=float(st["c"]))
    with torch.no_grad():
        pred = int(model(ref.adversarial.double()).argmax(1))
    want = float(ref.distortion[0])
    assert st["predicted"] == pred and st["success"] == bool(ref.success[0]), (what, st, pred)
    assert st["shown_predicted"].startswith(f"{pred} ("), what
    assert abs(st["distortion"] - want) <= 0.02 * want, f"{what}: {st['distortion']} vs {want}"
    assert abs(float(st["shown_distortion"]) - want) <= 0.02 * want + 5e-5, what
    # The layer's change, from the page's adversarial image, in Python.
    adv = torch.tensor(st["adversarial"], dtype=torch.float64).view(1, 1, 28, 28)
    layer = cfg["layer"]
    delta = (_hidden(model, adv, layer) - _hidden(model, x, layer))[0]
    np.testing.assert_allclose(st["delta"], delta.numpy(), atol=1e-9 * max(1.0, st["norm"]),
                               err_msg=what)
    ks = [s["k"] for s in st["shares"]]
    assert ks == [k for k in cfg["ks"] if k <= delta.numel()], what
    basis = torch.from_numpy(_seeded_basis(delta.numel(), st["seed"]))
    unit = pu.topk_shares(delta, ks)[0]
    rand = pu.topk_shares(delta, ks, basis)[0]
    np.testing.assert_allclose([s["unit"] for s in st["shares"]], unit, rtol=1e-6, err_msg=what)
    np.testing.assert_allclose([s["random"] for s in st["shares"]], rand, rtol=1e-6,
                               err_msg=what)
    np.testing.assert_allclose([s["expected"] for s in st["shares"]],
                               [pu.expected_random_share(delta.numel(), k) for k in ks],
                               atol=0.01, err_msg=what)
    shown = [[float(v.rstrip("%")) / 100 for v in row[1:3]] for row in st["shown_rows"]]
    np.testing.assert_allclose(shown, np.stack([unit, rand], 1), atol=0.0006, err_msg=what)
    return {"unit": unit, "random": rand}


@pytest.mark.parametrize("chapter", ["random_directions", "semantic_units"])
def test_units_panel_reacts_and_matches_python(browser, site, data, chapter, capsys):  # noqa: F811
    """Image, target, c and seed each give a new answer, and every answer is Python's."""
    opened = Opened(browser, site / "chapters" / f"{chapter}.html")
    page = opened.page
    try:
        panels = page.locator(".intriguing-units-live")
        assert panels.count() == 1, f"{chapter}: one Property 1 panel expected"
        pid = panels.first.get_attribute("id")
        page.wait_for_function("id => document.getElementById(id).intriguingUnits.runs >= 1",
                               arg=pid, timeout=TIMEOUT_MS)
        cfg = page.evaluate("id => JSON.parse(document.getElementById(id).dataset.config)", pid)
        st = _units_state(page, pid)
        ready_ms = st["readyAt"]
        first = _check_units(st, data, cfg, "first answer")
        role = lambda r: page.locator(f'#{pid} [data-role="{r}"]')  # noqa: E731

        role("image-index").fill("123")
        st = _units_act(page, pid, lambda: role("image-index").dispatch_event("change"))
        assert st["index"] == 123
        _check_units(st, data, cfg, "image 123")
        with torch.no_grad():  # a target the panel keeps: neither its last nor the model's
            pred = int(data.model(cfg["model"])(data.images[123:124]).argmax(1))
        target = next(t for t in ((int(data.labels[123]) + k) % 10 for k in (3, 4, 5))
                      if t not in (st["target"], pred))
        st = _units_act(page, pid, lambda: role("target").select_option(str(target)))
        assert st["target"] == target
        _check_units(st, data, cfg, "target")
        lo = float(role("logc").get_attribute("min"))
        st = _units_act(page, pid, lambda: role("logc").fill(f"{lo + 1:.2f}"))
        assert math.isclose(st["c"], 10 ** (lo + 1), rel_tol=1e-9)
        before = _check_units(st, data, cfg, "c")
        # Another basis seed: the same solve, the same unit shares, other random shares.
        role("seed").fill(str(st["seed"] + 7))
        st = _units_act(page, pid, lambda: role("seed").dispatch_event("change"))
        after = _check_units(st, data, cfg, "seed")
        np.testing.assert_allclose(after["unit"], before["unit"], rtol=1e-12)
        assert not np.allclose(after["random"], before["random"], rtol=1e-6)
        assert not np.allclose(after["unit"], first["unit"], rtol=1e-3)
    finally:
        opened.close()
    opened.check()
    with capsys.disabled():
        print(f"\n{chapter}.html from file://: {cfg['model']} layer {cfg['layer']}, first "
              f"answer {ready_ms:.0f} ms after navigation; last solve and shares "
              f"{st['ms']:.1f} ms")
    assert ready_ms < MAX_READY_MS
