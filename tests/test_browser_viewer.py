"""The book's live attack viewer (``display.browser_viewer``), in and out of a browser.

Quick tests check the HTML the display module writes: script paths relative to the page, ids,
the configuration the page script reads, and argument checks. The browser test (issue 17's
acceptance) opens the tiny test book (tests/browserbook, built by tests/test_browser.py's
``site`` fixture) from disk in headless Chromium with every network request aborted, after
exporting the smoke-scale zoo into its ``attack-data``; it picks an image, chooses a target,
moves c, draws a digit and runs the full search, and each time compares the class and
distortion the page shows with ``attacks.lbfgs`` run in Python on the same weights (read back
from the exported scripts, in float64 as the browser engine computes), pixels, target and c:
the same class and success, the distortion within 2%. It also times a fixed-c solve and the
search on FC200-200-10 in the page (``performance.now()``) and prints the times, and checks
the transferability variant's table against every exported model.

The browser test needs Debian's chromium, the playwright package, npm (the test book's web
assets) and the smoke-scale zoo in the model cache (``make test`` trains it); it skips, with
the reason, otherwise.
"""

from __future__ import annotations

import base64
import html.parser
import json
import re
import statistics
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
from torch import nn

from intriguing import attacks, zoo
from intriguing.display import browser_viewer as bv
from intriguing.engine import webexport
from intriguing.plumbing import config
from test_browser import ALLOWED_CONSOLE, browser, site  # noqa: F401 (fixtures)

REPO = config.repo_root()
SMOKE = "smoke"
TIMEOUT_MS = 60_000
#: What issue 17 asks of the page (reported; the assertions below allow a loaded test machine
#: ten times as much, so that the test measures rather than flakes).
TARGET_SOLVE_MS, TARGET_SEARCH_MS, TARGET_READY_MS = 100.0, 1000.0, 2000.0
SLACK = 10.0


# --------------------------------------------------------------------------------------------
# The HTML the display module writes (no browser)


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    p = _Tags()
    p.feed(text)
    return p.tags


def _time_in_page(page, model: str, images: range) -> dict[str, list[float]]:
    """A fixed-c solve (c = 1) and the full search on ``model`` in the page, per image of
    ``images``, in milliseconds."""
    return page.evaluate("""([name, lo, hi]) => {
        const IA = IntriguingAttack, d = IntriguingAttackData;
        const m = IA.decodeModel(d.models[name]);
        const imgs = IA.decodeImages(d.images);
        const solve = [], search = [];
        for (let i = lo; i < hi; i++) {
            const x = imgs.image(i), t = (imgs.labels[i] + 1 + (i % 9)) % 10;
            let t0 = performance.now(); IA.solve(m, x, t, 1.0);
            solve.push(performance.now() - t0);
            t0 = performance.now(); IA.search(m, x, t);
            search.push(performance.now() - t0);
        }
        return {solve, search};
    }""", [model, images.start, images.stop])


def test_scripts_are_relative_to_the_page_and_exist_in_the_book():
    down = bv.viewer_html(page="chapters/blind_spots.ipynb", models=zoo.TABLE1,
                          model="FC200-200-10")
    srcs = [a["src"] for t, a in _tags(down) if t == "script" and "src" in a]
    assert srcs == ["../js/intriguing-attack.js", "../js/intriguing-viewer.js",
                    "../attack-data/index.js", "../attack-data/images.js",
                    "../attack-data/FC200-200-10.js"]
    top = bv.viewer_html(page="intro.md", models=["FC10(1)"], model="FC10(1)")
    assert [a["src"] for t, a in _tags(top) if t == "script" and "src" in a][0] == \
        "js/intriguing-attack.js"
    assert bv.site_root("a/b/c.ipynb") == "../../"
    # The engine and the viewer are files of the book (book/_extra is copied to the site root).
    for script in (bv.ENGINE_SCRIPT, bv.VIEWER_SCRIPT):
        assert (REPO / "book" / "_extra" / script).is_file()
    assert not re.search(r"https?:|//cdn|fetch\(|XMLHttpRequest", down)
    viewer_js = (REPO / "book" / "_extra" / bv.VIEWER_SCRIPT).read_text()
    assert "fetch(" not in viewer_js and "XMLHttpRequest" not in viewer_js


def test_ids_are_unique_and_the_config_names_the_models():
    a = bv.viewer_html(page="chapters/x.ipynb", models=zoo.TABLE1, model="AE400-10", target=3,
                       c=0.1, c_range=(1e-3, 1e2))
    b = bv.viewer_html(page="chapters/x.ipynb", models=zoo.TABLE1 + zoo.TABLE3,
                       model="FC10(1e-2)", transfer=True)
    tags = _tags(a + b)
    ids = [at["id"] for _, at in tags if "id" in at]
    assert len(ids) == len(set(ids)), "an id repeats across two viewers of one page"
    for t, at in tags:
        if t == "label":
            assert at["for"] in ids
    roots = [at for t, at in tags if "intriguing-live" in at.get("class", "").split()]
    assert len(roots) == 2
    cfg = json.loads(roots[0]["data-config"])
    assert cfg == {"root": "../", "data": "attack-data", "models": zoo.TABLE1,
                   "model": "AE400-10", "transfer": False, "target": 3, "image": 0,
                   "start": "search"}
    assert json.loads(roots[1]["data-config"])["transfer"] is True
    roles = {at["data-role"] for t, at in tags if "data-role" in at}
    assert {"image-index", "model", "target", "logc", "search", "original", "adversarial",
            "difference", "pad", "predicted", "distortion", "probs", "transfer",
            "transfer-load"} <= roles
    slider = next(at for t, at in _tags(a) if at.get("data-role") == "logc")
    assert (float(slider["min"]), float(slider["max"]), float(slider["value"])) == (-3, 2, -1)
    options = [at["value"] for t, at in _tags(a) if t == "option"]
    assert options[:6] == zoo.TABLE1 and options[6:] == [str(k) for k in range(10)]
    # Each viewer starts itself after its markup.
    assert a.rstrip().endswith("</script>") and "IntriguingViewer.mount" in a


def test_file_names_follow_the_export():
    for name in zoo.ALL:
        assert bv.data_file(name) == f"{webexport._slug(name)}.js"


@pytest.mark.parametrize("kwargs, word", [
    ({"page": "/abs/page.ipynb"}, "page"),
    ({"page": "../out.ipynb"}, "page"),
    ({"models": []}, "models"),
    ({"models": "FC10(1)"}, "models"),
    ({"model": "ConvNet"}, "model"),
    ({"c_range": (1.0, 0.1)}, "c_range"),
    ({"c": 1e3}, "c"),
    ({"target": 10}, "target"),
    ({"image": -1}, "image"),
    ({"start": "later"}, "start"),
    ({"viewer_id": "1 bad"}, "viewer_id"),
])
def test_bad_arguments_name_themselves(kwargs, word):
    args = {"page": "chapters/x.ipynb", "models": zoo.TABLE1, "model": "FC10(1)", **kwargs}
    with pytest.raises(ValueError, match=rf"^{word} must"):
        bv.viewer_html(**args)


def test_chapters_show_the_browser_viewer_in_the_static_book():
    for name, variant in (("blind_spots", "transfer=False"), ("transferability", "transfer=True")):
        nb = json.loads((REPO / "chapters" / f"{name}.ipynb").read_text())
        cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        live = [c for c in cells if "live_kernel()" in c]
        assert len(live) == 1, f"{name}: one live-viewer cell expected"
        assert "browser_viewer.browser_viewer(" in live[0] and variant in live[0]
        assert f'page="chapters/{name}.ipynb"' in live[0]
        assert "runs in Jupyter" not in live[0]


# --------------------------------------------------------------------------------------------
# In headless Chromium, opened from disk, network blocked


def _reference_model(entry: dict) -> nn.Sequential:
    """The exported model (weights decoded from its script) as a float64 torch network."""
    dtype = webexport.DTYPES[entry["dtype"]]
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = entry["sizes"]
    for i, (w, b) in enumerate(zip(entry["weights"], entry["biases"])):
        lin = nn.Linear(sizes[i], sizes[i + 1]).double()
        lin.weight.data = torch.from_numpy(np.frombuffer(base64.b64decode(w), dtype)
                                           .astype(np.float64).reshape(sizes[i + 1], sizes[i]))
        lin.bias.data = torch.from_numpy(np.frombuffer(base64.b64decode(b), dtype)
                                         .astype(np.float64))
        layers += [lin, nn.Sigmoid()]
    return nn.Sequential(*layers[:-1]).eval()


def _read_script(path: Path) -> object:
    """The JSON value a script written by ``webexport.write_script`` assigns."""
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r"^  d\.\S+ = (.*);\n\}\(", text, re.S | re.M).group(1))


@pytest.fixture(scope="module")
def live_site(site) -> Path:  # noqa: F811
    """The test book with the smoke-scale zoo and test images exported into its site."""
    names = [n for n in zoo.ALL if zoo.SPECS[n].arch in ("softmax", "mlp", "autoencoder")]
    missing = [n for n in names if not zoo.is_cached(n, scale=SMOKE)]
    if missing:
        pytest.skip(f"the smoke-scale zoo is not trained ({', '.join(missing)}): run "
                    f"`python -m intriguing train --all --scale smoke` (make test does)")
    if not (site / "chapters" / "live.html").is_file():
        pytest.fail("the test book lacks chapters/live.html (tests/browserbook/_toc.yml)")
    webexport.export(site / bv.DATA_DIR, scale=SMOKE, models=names)
    return site


def _pixels_and_target(state: dict) -> tuple[torch.Tensor, int]:
    pixels = torch.tensor(state["pixels"], dtype=torch.float64).view(1, 1, 28, 28)
    return pixels, int(state["target"])


def _python_answer(model: nn.Module, state: dict) -> dict:
    x, target = _pixels_and_target(state)
    c = None if state["mode"] == "search" else float(state["c"])
    res = attacks.lbfgs(model, x, torch.tensor([target]), c=c)
    with torch.no_grad():
        pred = int(model(res.adversarial.double()).argmax(1))
    return {"predicted": pred, "success": bool(res.success[0]),
            "distortion": float(res.distortion[0]), "c": float(res.c[0])}


class Viewer:
    """One live viewer of the page: drive it, wait for its answer, read what it shows."""

    def __init__(self, page, viewer_id: str) -> None:
        self.page = page
        self.el = page.locator(f"#{viewer_id}")
        self.id = viewer_id

    def runs(self) -> int:
        return int(self.el.get_attribute("data-runs") or 0)

    def role(self, name: str):
        return self.el.locator(f'[data-role="{name}"]')

    def act(self, action) -> dict:
        """Do ``action``, wait for the next answer, return the state and what is shown."""
        before = self.runs()
        action()
        self.page.wait_for_function(
            "([id, n]) => { const e = document.getElementById(id);"
            " return Number(e.getAttribute('data-runs')) > n && !e.intriguing.busy; }",
            arg=[self.id, before], timeout=TIMEOUT_MS)
        return self.read()

    def read(self) -> dict:
        state = self.page.evaluate(
            """id => { const s = document.getElementById(id).intriguing;
                       return {pixels: Array.from(s.pixels), target: s.target, c: s.c,
                               mode: s.mode, model: s.model, source: s.source,
                               index: s.index, ms: s.result.milliseconds,
                               evaluations: s.result.evaluations, readyAt: s.readyAt,
                               adversarial: Array.from(s.result.adversarial)}; }""", self.id)
        state["shown_class"] = int(self.role("predicted").inner_text())
        state["shown_distortion"] = float(self.role("distortion").inner_text())
        state["shown_outcome"] = self.role("outcome").inner_text()
        return state


def _check(state: dict, model: nn.Module, what: str) -> dict:
    ref = _python_answer(model, state)
    assert state["shown_class"] == ref["predicted"], (what, state["shown_class"], ref)
    reached = state["shown_outcome"].startswith(("reaches", "the model already predicts"))
    assert reached == ref["success"], (what, state["shown_outcome"], ref)
    rel = abs(state["shown_distortion"] - ref["distortion"]) / max(ref["distortion"], 1e-12)
    assert rel <= 0.02, f"{what}: distortion {state['shown_distortion']} vs {ref}"
    return ref


@pytest.mark.browser
@pytest.mark.slow
def test_live_viewer_matches_python_from_disk(browser, live_site, capsys):  # noqa: F811
    """Issue 17's acceptance on the test book opened from disk, network blocked."""
    data = live_site / bv.DATA_DIR
    models = {n: _reference_model(_read_script(data / bv.data_file(n)))
              for n in ("FC200-200-10", "AE400-10")}
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    external, errors = [], []

    def route(r):
        if urlparse(r.request.url).scheme in ("http", "https"):
            external.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("requestfailed", lambda r: urlparse(r.url).scheme == "file"
            and errors.append(f"failed {r.url}"))
    try:
        page.goto((live_site / "chapters" / "live.html").as_uri(), wait_until="load",
                  timeout=TIMEOUT_MS)
        page.wait_for_selector("#blind[data-ready]", state="attached", timeout=TIMEOUT_MS)
        view = Viewer(page, "blind")
        fc200 = models["FC200-200-10"]
        timings: dict[str, list[float]] = {"solve": [], "search": []}
        first = view.read()
        ready_ms = first["readyAt"]
        _check(first, fc200, "first image")

        # Pick an image, choose a target, move c.
        st = view.act(lambda: view.role("image-next").click())
        assert st["source"] == "test" and st["index"] == 1
        _check(st, fc200, "next image")
        view.role("image-index").fill("17")
        st = view.act(lambda: view.role("image-index").dispatch_event("change"))
        assert st["index"] == 17
        _check(st, fc200, "image 17")
        label = int(re.search(r"label (\d)", view.role("source").inner_text()).group(1))
        target = (label + 4) % 10
        st = view.act(lambda: view.role("target").select_option(str(target)))
        assert st["target"] == target
        _check(st, fc200, "target")
        for logc in ("-1.37", "0.8", "-0.25"):
            st = view.act(lambda v=logc: view.role("logc").fill(v))
            assert abs(st["c"] - 10 ** float(logc)) < 1e-9 * st["c"]
            _check(st, fc200, f"c = 10^{logc}")
            timings["solve"].append(st["ms"])
        # The full search over c: the minimum-distortion example.
        st = view.act(lambda: view.role("search").click())
        assert st["mode"] == "search"
        ref = _check(st, fc200, "search")
        assert ref["success"]
        timings["search"].append(st["ms"])

        # Another model: its weights load when picked (an added <script>, also from disk).
        st = view.act(lambda: view.role("model").select_option("AE400-10"))
        assert st["model"] == "AE400-10"
        _check(st, models["AE400-10"], "AE400-10")
        st = view.act(lambda: view.role("model").select_option("FC200-200-10"))

        # Draw a digit: a stroke on the pad attacks the drawing.
        box = view.role("pad").bounding_box()

        def draw():
            page.mouse.move(box["x"] + 0.35 * box["width"], box["y"] + 0.2 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.5 * box["height"],
                            steps=8)
            page.mouse.move(box["x"] + 0.4 * box["width"], box["y"] + 0.8 * box["height"],
                            steps=8)
            page.mouse.up()

        st = view.act(draw)
        assert st["source"] == "drawing" and sum(p > 0 for p in st["pixels"]) >= 20
        assert all(abs(p * 255 - round(p * 255)) < 1e-9 for p in st["pixels"])
        _check(st, fc200, "drawing")
        with torch.no_grad():
            drawn = int(fc200(_pixels_and_target(st)[0]).argmax(1))
        st = view.act(lambda: view.role("target").select_option(str((drawn + 3) % 10)))
        assert st["source"] == "drawing"
        _check(st, fc200, "drawing, another target")
        st = view.act(lambda: view.role("search").click())
        _check(st, fc200, "drawing, search")

        # Timing in the page: a fixed-c solve and the search on ten test images.
        more = _time_in_page(page, "FC200-200-10", range(20, 30))
        timings["solve"] += more["solve"]
        timings["search"] += more["search"]

        # The transferability variant: every exported model's prediction of its example.
        tv = Viewer(page, "transfer")
        tv.el.scroll_into_view_if_needed()
        tv.role("transfer-load").click()
        page.wait_for_function("() => document.getElementById('transfer').intriguing"
                               ".transferLoaded", timeout=TIMEOUT_MS)
        ts = tv.read()
        adv = torch.tensor(ts["adversarial"], dtype=torch.float64).view(1, 1, 28, 28)
        rows = tv.role("transfer").locator("tr[data-model]")
        assert rows.count() == len(zoo.TABLE1 + zoo.TABLE3)
        halves = 0
        for r in range(rows.count()):
            row = rows.nth(r)
            name = row.get_attribute("data-model")
            # Models not attacked predict with their float16 copies, and say so, unless their
            # float32 weights are loaded already (those the viewer above attacked).
            half = "(float16)" in row.locator("td").first.inner_text()
            assert not (half and name == ts["model"]), name
            halves += half
            file = webexport.predictor_file(name) if half else bv.data_file(name)
            net = _reference_model(_read_script(data / file))
            with torch.no_grad():
                want = int(net(adv).argmax(1))
            assert int(row.locator("td.pred").inner_text()) == want, name
        assert halves >= len(zoo.TABLE3), "the Table 3 models, never attacked here, are float16"
    finally:
        context.close()
    solve_ms = statistics.median(timings["solve"])
    search_ms = statistics.median(timings["search"])
    with capsys.disabled():
        print(f"\nlive viewer, FC200-200-10 (smoke), headless Chromium from file://: page ready "
              f"{ready_ms:.0f} ms after navigation; fixed-c solve median {solve_ms:.1f} ms "
              f"(max {max(timings['solve']):.1f}, n={len(timings['solve'])}); full search "
              f"median {search_ms:.1f} ms (max {max(timings['search']):.1f}, "
              f"n={len(timings['search'])}); targets {TARGET_SOLVE_MS:.0f} / "
              f"{TARGET_SEARCH_MS:.0f} / {TARGET_READY_MS:.0f} ms")
    assert not external, f"requests to the network: {external[:5]}"
    unexpected = [e for e in errors if not any(a in e for a in ALLOWED_CONSOLE)]
    assert not unexpected, f"console errors: {unexpected[:5]}"
    assert solve_ms < SLACK * TARGET_SOLVE_MS and search_ms < SLACK * TARGET_SEARCH_MS
    assert ready_ms < SLACK * TARGET_READY_MS


def test_page_loads_counts_the_shared_scripts_a_page_loads(tmp_path):
    root = tmp_path / "html"
    sizes = {bv.ENGINE_SCRIPT: 300, bv.VIEWER_SCRIPT: 200, f"{bv.DATA_DIR}/index.js": 10,
             f"{bv.DATA_DIR}/images.js": 1000}
    models = {"FC10(1)": 40, "FC200-200-10": 5000, "AE400-10": 7000}
    sizes |= {f"{bv.DATA_DIR}/{bv.data_file(m)}": n for m, n in models.items()}
    # float16 copies for the transfer table; FC10(1) has none (an older export), so "load
    # every model" loads the model itself.
    copies = {"FC200-200-10": 2600, "AE400-10": 3600}
    sizes |= {f"{bv.DATA_DIR}/{webexport.predictor_file(m)}": n for m, n in copies.items()}
    for rel, n in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * n)
    (root / bv.DATA_DIR / "manifest.json").write_text(json.dumps({"models": [
        {"name": m, "file": bv.data_file(m)}
        | ({"predictor": {"file": webexport.predictor_file(m)}} if m in copies else {})
        for m in models]}))
    page = root / "chapters" / "p.html"
    page.parent.mkdir()
    page.write_text(bv.viewer_html(page="chapters/p.ipynb", models=["FC10(1)", "FC200-200-10"],
                                   model="FC200-200-10"))
    base = 300 + 200 + 10 + 1000
    assert bv.page_loads(page) == {"viewers": 1, "at_open": base + 5000,
                                   "with_transfer": base + 5000, "at_most": base + 5040}
    page.write_text(page.read_text() + bv.viewer_html(
        page="chapters/p.ipynb", models=["FC10(1)"], model="FC10(1)", transfer=True))
    assert bv.page_loads(page) == {"viewers": 2, "at_open": base + 5040,
                                   "with_transfer": base + 5040 + 2600 + 3600,
                                   "at_most": base + 5040 + 2600 + 3600}
    with pytest.raises(ValueError, match="^page must"):
        bv.page_loads(root / "missing.html")
