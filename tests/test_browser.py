"""The rendered book in a real browser: widgets and math work offline, nothing leaves the machine.

By default the tests build a tiny book (tests/browserbook: two static viewers on a page one
folder down, display math at the root and in the folder) with the main book's web-asset
settings from ``_config.yml``. Set ``BOOK_HTML=_build/html`` to run the browser checks on every
page of the real book that holds widget views or math instead; tests/test_browser_book.py then
runs issue 17's acceptance (the live viewers against the Python engine) on that book.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` Python package (never
``playwright install``); skips otherwise. Building the tiny book needs npm (web assets).
"""

from __future__ import annotations

import http.server
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml

from intriguing.plumbing import config, webassets

REPO = config.repo_root()
TEST_BOOK = Path(__file__).parent / "browserbook"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WEB_KEYS = ("html_extra_path", "nb_ipywidgets_js", "mathjax_path", "html_static_path",
            "html_css_files", "html_context")
PATH_KEYS = ("html_extra_path", "html_static_path")
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
ALLOWED_CONSOLE = ("THEBE_JS_URL",)  # sphinx-thebe declares it twice on every page (harmless)
CDN = re.compile(r"jsdelivr|cdnjs|unpkg|googleapis|mathjax\.org|cloudflare")
# sphinx-thebe (always on in Jupyter Book 1) names its bundle on every page; it is fetched only
# when a reader presses a launch button, which this book does not configure.
THEBE_DECLARATION = re.compile(r'const THEBE_JS_URL = "https://unpkg\.com/thebe@[0-9.]+/lib/index\.js"')
PIXEL_TOL = 24  # a channel difference below this is anti-aliasing, not a change
CHANGED_FRACTION = 0.0005  # share of the viewer's pixels a move must change (no change: 0)
TIMEOUT_MS = 60_000


def _book_html_env() -> Path | None:
    value = os.environ.get("BOOK_HTML")
    return (REPO / value).resolve() if value else None


def _pages_of(root: Path) -> list[str]:
    """Pages (relative paths) that hold widget views or load MathJax."""
    pages = []
    for f in sorted(root.rglob("*.html")):
        text = f.read_text(encoding="utf-8", errors="replace")
        if "application/vnd.jupyter.widget-view+json" in text or "tex-mml-chtml.js" in text:
            pages.append(f.relative_to(root).as_posix())
    return pages


def _pages_to_test() -> list[str]:
    env = _book_html_env()
    if env is None:
        return ["intro.html", "chapters/viewer.html"]
    return _pages_of(env) if env.is_dir() else ["(BOOK_HTML is not a folder)"]


def _browser_available() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


# --------------------------------------------------------------------------------------------
# Fixtures: the site, a server, a browser


def _test_book_config() -> dict:
    """tests/browserbook/_config.yml plus the main book's web-asset keys (paths made absolute)."""
    main = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    ours = yaml.safe_load((TEST_BOOK / "_config.yml").read_text(encoding="utf-8"))
    src = main["sphinx"]["config"]
    dst = ours.setdefault("sphinx", {}).setdefault("config", {})
    for key in WEB_KEYS:
        if key not in src:
            raise AssertionError(f"_config.yml lacks sphinx.config.{key}")
        value = src[key]
        if key in PATH_KEYS:
            value = [str((REPO / p).resolve()) for p in value]
        dst[key] = value
    return ours


#: Built once per session and shared with modules that import these fixtures
#: (tests/test_browser_viewer.py, tests/test_browser_book.py): an imported fixture is a second
#: fixture to pytest, and two sync Playwright instances cannot run at once.
_SHARED: dict = {}


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The folder of HTML to test: $BOOK_HTML, or the tiny test book built now."""
    if "site" not in _SHARED:
        _SHARED["site"] = _site(tmp_path_factory)
    return _SHARED["site"]


def _site(tmp_path_factory) -> Path:
    env = _book_html_env()
    if env is not None:
        if not (env / "index.html").is_file():
            pytest.fail(f"BOOK_HTML={env} holds no built book (index.html)")
        return env
    if shutil.which("npm") is None and not webassets.is_current(webassets.default_dest()):
        pytest.skip("npm is needed to fetch the book's web assets")
    webassets.fetch(quiet=True)
    work = tmp_path_factory.mktemp("browserbook")
    src = work / "src"
    shutil.copytree(TEST_BOOK, src)
    (src / "_config.yml").write_text(yaml.safe_dump(_test_book_config(), sort_keys=False),
                                     encoding="utf-8")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(src), "--path-output", str(work), "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=work,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"building the test book failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return work / "_build" / "html"


@pytest.fixture(scope="session")
def server(site) -> Iterator[str]:
    """http://127.0.0.1:PORT/ serving ``site`` from a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    reason = _browser_available()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    if "browser" not in _SHARED:
        pw = sync_playwright().start()
        try:
            _SHARED["browser"] = pw.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=CHROMIUM_ARGS)
        except BaseException:
            pw.stop()
            raise
        _SHARED["playwright"], _SHARED["users"] = pw, 0
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if not _SHARED["users"]:
            _SHARED.pop("browser").close()
            _SHARED.pop("playwright").stop()


class PageLog:
    """What a page did: requests sent elsewhere (aborted), local failures, console errors."""

    def __init__(self) -> None:
        self.external: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in ALLOWED_CONSOLE)]


def _open(browser, url: str):
    """A fresh page at ``url`` with every non-local request aborted and logged."""
    log = PageLog()
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()

    def route(r):
        host = urlparse(r.request.url).hostname
        if urlparse(r.request.url).scheme in ("http", "https") and host != "127.0.0.1":
            log.external.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico")
            and log.errors.append(m.text))
    page.on("pageerror", lambda e: log.errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
            and log.failed.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: urlparse(r.url).hostname == "127.0.0.1"
            and log.failed.append(f"failed {r.url}"))
    page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    return context, page, log


def _wait_widgets(page) -> int:
    """Wait until every widget-view script has its rendered view; return how many."""
    n = page.locator(WIDGET_VIEW).count()
    if n:
        page.wait_for_function(
            """sel => Array.from(document.querySelectorAll(sel)).every(s => {
                   const v = s.previousElementSibling;
                   return v && v.classList.contains('widget-subarea') && v.children.length > 0;
               })""", arg=WIDGET_VIEW, timeout=TIMEOUT_MS)
    return n


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 1.0
    return float((np.abs(a - b).max(axis=-1) > PIXEL_TOL).mean())


def _stable_shot(viewer, mask, path: Path, tries: int = 20) -> np.ndarray:
    """Screenshot ``viewer`` (controls masked) until two consecutive shots agree."""
    last = _pixels(viewer.screenshot(mask=mask, animations="disabled"))
    for _ in range(tries):
        time.sleep(0.15)
        png = viewer.screenshot(mask=mask, animations="disabled")
        now = _pixels(png)
        if _changed_fraction(now, last) == 0.0:
            path.write_bytes(png)
            return now
        last = now
    raise AssertionError(f"the viewer did not settle: {path.name}")


def _exercise_viewer(viewer, stem: str, folder: Path) -> int:
    """Move every control of one viewer; each move must change the frame's pixels.

    Returns how many moves were made. Screenshots (controls masked) go to ``folder``.
    """
    viewer.scroll_into_view_if_needed()
    mask = [viewer.locator(".widget-dropdown, .widget-slider")]
    shots = [_stable_shot(viewer, mask, folder / f"{stem}-0.png")]

    def check(what: str) -> None:
        after = _stable_shot(viewer, mask, folder / f"{stem}-{len(shots)}-{what}.png")
        frac = _changed_fraction(shots[-1], after)
        assert frac > CHANGED_FRACTION, (
            f"{stem}: moving {what} changed only {frac:.4%} of the pixels (screenshots in "
            f"{folder})")
        shots.append(after)

    for s, select in enumerate(viewer.locator("select").all()):
        values = [o.get_attribute("value") for o in select.locator("option").all()]
        if len(values) < 2:
            continue
        current = select.input_value()
        select.select_option(next(x for x in values if x != current))
        check(f"select{s}")
    for h, handle in enumerate(viewer.locator(".noUi-handle[role=slider]").all()):
        hi = handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("ArrowRight" if handle.get_attribute("aria-valuenow") != hi else "ArrowLeft")
        check(f"slider{h}-step")
        handle.press("End" if handle.get_attribute("aria-valuenow") != hi else "Home")
        check(f"slider{h}-jump")
    return len(shots) - 1


# --------------------------------------------------------------------------------------------
# Tests


@pytest.mark.slow
def test_built_html_references_no_cdn(site):
    """No page loads a script, stylesheet or font from another host; no CDN named anywhere."""
    offenders = []
    for f in sorted(site.rglob("*.html")):
        text = THEBE_DECLARATION.sub("", f.read_text(encoding="utf-8", errors="replace"))
        rel = f.relative_to(site).as_posix()
        for m in re.finditer(r'<(?:script|link)\b[^>]*\b(?:src|href)="(https?:)?//[^"]*"', text):
            if "<link" in m.group(0) and not re.search(r'rel="(stylesheet|preload|icon)"',
                                                       m.group(0)):
                continue
            offenders.append(f"{rel}: {m.group(0)[:120]}")
        offenders += [f"{rel}: ...{text[max(0, m.start() - 60):m.end() + 40]}..."
                      for m in CDN.finditer(text)]
    assert not offenders, "\n".join(offenders[:20])


@pytest.mark.browser
@pytest.mark.parametrize("page_path", _pages_to_test())
def test_page_works_offline(browser, server, site, page_path, tmp_path):
    """Widgets render and respond, math renders, no request leaves, no console error."""
    context, page, log = _open(browser, server + page_path)
    try:
        n_views = _wait_widgets(page)
        text = (site / page_path).read_text(encoding="utf-8", errors="replace")
        if "tex-mml-chtml.js" in text:
            page.wait_for_selector("mjx-container", state="attached", timeout=TIMEOUT_MS)
        if page_path == "chapters/viewer.html" and _book_html_env() is None:
            assert n_views == 2 and page.locator(".intriguing-viewer").count() == 2

        viewers = page.locator(".intriguing-viewer")
        moved = sum(_exercise_viewer(viewers.nth(v), f"{page_path.replace('/', '_')}-viewer{v}",
                                     tmp_path) for v in range(viewers.count()))
        assert moved >= 3 * viewers.count()
        page.wait_for_timeout(300)  # let late console messages arrive
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    finally:
        context.close()
    assert not log.external, f"requests to other hosts: {log.external[:10]}"
    assert not log.failed, f"failed local requests: {log.failed[:10]}"
    assert not log.unexpected_errors(), f"console errors: {log.unexpected_errors()[:10]}"


def _layout_pages() -> list[str]:
    """Every content page of $BOOK_HTML (not the generated index and search pages), else the
    tiny test book's."""
    env = _book_html_env()
    if env is None:
        return ["intro.html", "chapters/viewer.html"]
    if not env.is_dir():
        return ["(BOOK_HTML is not a folder)"]
    skip = {"genindex.html", "search.html", "py-modindex.html"}
    return [f.relative_to(env).as_posix() for f in sorted(env.rglob("*.html"))
            if f.name not in skip and "_static" not in f.parts and "_sources" not in f.parts
            and 'http-equiv="Refresh"' not in f.read_text(errors="replace")[:500]]


#: A laptop and a phone held upright.
LAYOUT_WIDTHS = (1280, 390)


@pytest.mark.browser
@pytest.mark.parametrize("page_path", _layout_pages())
def test_page_layout(browser, server, page_path, tmp_path):
    """What a first-time reader sees: nothing wider than the window (a table or figure that
    overflows makes the whole page scroll sideways), no math error, every figure loaded and
    described by alt text. Full-page screenshots at each width go to the test's folder."""
    problems = []
    for width in LAYOUT_WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.route("**/*", lambda r: r.abort() if urlparse(r.request.url).hostname not in
                   (None, "127.0.0.1") and urlparse(r.request.url).scheme in ("http", "https")
                   else r.continue_())
        try:
            page.goto(server + page_path, wait_until="load", timeout=TIMEOUT_MS)
            _wait_widgets(page)
            if page.locator("script[src*='tex-mml-chtml']").count():
                page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                       "MathJax.startup.promise", timeout=TIMEOUT_MS)
                page.evaluate("() => MathJax.startup.promise")
            found = page.evaluate("""() => {
                const out = [];
                const doc = document.documentElement;
                if (doc.scrollWidth > window.innerWidth + 1)
                    out.push(`page scrolls sideways: ${doc.scrollWidth}px in ` +
                             `${window.innerWidth}px`);
                document.querySelectorAll('mjx-merror, .MathJax_Error').forEach(e =>
                    out.push(`math error: ${e.textContent.slice(0, 80)}`));
                document.querySelectorAll('main img, article img').forEach(img => {
                    const name = (img.getAttribute('src') || '').slice(-60);
                    if (!img.complete || img.naturalWidth === 0)
                        out.push(`image not loaded: ${name}`);
                    if (!(img.getAttribute('alt') || '').trim())
                        out.push(`image without alt text: ${name}`);
                });
                return out;
            }""")
            problems += [f"{width}px: {p}" for p in found]
            page.screenshot(path=str(tmp_path / f"{page_path.replace('/', '_')}-{width}.png"),
                            full_page=True)
        finally:
            context.close()
    assert not problems, f"{page_path} (screenshots in {tmp_path}):\n" + "\n".join(problems[:20])


# --------------------------------------------------------------------------------------------
# The web assets themselves (fast, offline: npm is replaced by in-memory tarballs)


def _tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _package(data: bytes, rules=((r"package/dist/(a\.js)", r"widgets/\1"),)) -> webassets.Package:
    return webassets.Package("fake", "1.0.0", webassets.integrity_of(data), tuple(rules))


def test_config_points_at_the_fetched_files():
    cfg = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    assert tuple(cfg["nb_ipywidgets_js"]) == webassets.NB_IPYWIDGETS_JS
    assert all(not v for v in cfg["nb_ipywidgets_js"].values())  # no crossorigin, no CDN hint
    assert cfg["mathjax_path"] == webassets.MATHJAX_PATH
    # The fetched assets, then the committed browser attack engine (book/_extra/js).
    assert cfg["html_extra_path"] == [f"book/_web/{webassets.SITE}", "book/_extra"]
    rules = [dest for p in webassets.PACKAGES for _, dest in p.rules] + list(webassets.GENERATED)
    for script in (*webassets.NB_IPYWIDGETS_JS, webassets.MATHJAX_PATH):
        assert script.startswith("../") and script[3:] in rules


def test_select_files_is_safe():
    data = _tarball({"package/dist/a.js": b"A", "package/other.txt": b"x"},
                    links={"package/dist/b.js": "/etc/passwd"})
    assert webassets.select_files(_package(data), data) == {"widgets/a.js": b"A"}
    for bad in ("../evil.js", "/abs/a.js", "package/../../a.js"):
        evil = _tarball({bad: b"x"})
        with pytest.raises(ValueError, match="unsafe path"):
            webassets.select_files(_package(evil), evil)
    with pytest.raises(ValueError, match="no file in the tarball matches"):
        webassets.select_files(_package(data, [(r"package/missing\.js", "x.js")]), data)


def test_integrity_mismatch_names_both_values():
    pkg = _package(b"pinned")
    with pytest.raises(ValueError) as err:
        webassets.check_integrity(pkg, b"tampered")
    assert pkg.integrity in str(err.value)
    assert webassets.integrity_of(b"tampered") in str(err.value)


def test_fetch_writes_once_and_repairs(tmp_path, monkeypatch):
    data = _tarball({"package/dist/a.js": b"A"})
    pkg = _package(data)
    calls = []

    def fake_pack(spec, workdir, **_):
        calls.append(spec)
        return data

    monkeypatch.setattr(webassets, "npm_pack", fake_pack)
    dest = tmp_path / "_web"
    webassets.fetch(dest, packages=[pkg], quiet=True)
    site = dest / webassets.SITE
    assert (site / "widgets" / "a.js").read_bytes() == b"A"
    assert (site / "widgets" / "setup.js").read_text().startswith("/* Written by")
    assert webassets.is_current(dest, [pkg]) and calls == ["fake@1.0.0"]
    webassets.fetch(dest, packages=[pkg], quiet=True)
    assert calls == ["fake@1.0.0"]  # up to date: npm not asked again
    (site / "widgets" / "a.js").write_bytes(b"changed")
    assert not webassets.is_current(dest, [pkg])
    webassets.fetch(dest, packages=[pkg], quiet=True)
    assert (site / "widgets" / "a.js").read_bytes() == b"A" and len(calls) == 2
    bad = webassets.Package("fake", "1.0.0", webassets.integrity_of(b"other"), pkg.rules)
    with pytest.raises(ValueError, match="integrity mismatch"):
        webassets.fetch(dest, packages=[bad], quiet=True)
    assert (site / "widgets" / "a.js").read_bytes() == b"A"  # the old tree is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_web"]  # no staging folder left
