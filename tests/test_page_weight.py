"""The built book's weight: each page with viewers stays under ``pagecheck.PAGE_LIMIT_BYTES``.

A static viewer carries every frame inside its page, so this is where the size of the frame
grids (sources x images x targets x c) is paid. Runs on a built book named by ``BOOK_HTML``
(e.g. ``BOOK_HTML=_build/html pytest tests/test_page_weight.py -s``, as for
tests/test_browser.py) and prints every page's weight; skips when it is unset. The measuring
function itself is tested in tests/test_widgets.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intriguing.display import browser_viewer, pagecheck
from intriguing.plumbing import config

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: The classes of the live viewer and of the Property 1 panel (display.browser_viewer).
LIVE_CLASSES = ('class="intriguing-live"', 'class="intriguing-units-live"')
#: Issue 17: the chapters whose built page must hold each kind (the static book's live parts).
LIVE_PAGES = {"chapters/blind_spots.html": LIVE_CLASSES[0],
              "chapters/transferability.html": LIVE_CLASSES[0],
              "chapters/random_directions.html": LIVE_CLASSES[1],
              "chapters/semantic_units.html": LIVE_CLASSES[1]}


def _site() -> Path | None:
    value = os.environ.get("BOOK_HTML")
    return (config.repo_root() / value).resolve() if value else None


def test_every_page_with_viewers_is_under_the_limit():
    site = _site()
    if site is None:
        pytest.skip("set BOOK_HTML to a built book (e.g. _build/html)")
    if not (site / "index.html").is_file():
        pytest.fail(f"BOOK_HTML={site} holds no built book (index.html)")
    pages = [p for p in sorted(site.rglob("*.html"))
             if WIDGET_VIEW in p.read_text(encoding="utf-8", errors="replace")]
    assert pages, f"no page of {site} holds a widget view"
    heavy = []
    for p in pages:
        w = pagecheck.page_weight(p)
        print(f"{p.relative_to(site)}: page {w['page'] / 1e6:.2f} MB (html "
              f"{w['html'] / 1e6:.2f}, images {w['images'] / 1e6:.2f}), with shared scripts and "
              f"styles {w['total'] / 1e6:.2f} MB")
        if w["page"] >= pagecheck.PAGE_LIMIT_BYTES:
            heavy.append(f"{p.relative_to(site)}: {w['page'] / 1e6:.2f} MB")
    assert not heavy, f"pages over {pagecheck.PAGE_LIMIT_BYTES / 1e6:.0f} MB: {heavy}"


def test_pages_with_live_viewers_count_what_they_load():
    """A page with the browser's live viewer or Property 1 panel (display.browser_viewer) also
    loads the attack engine, the exported test images and weights: shared scripts, but
    downloaded with the page, so they count here: what the page loads when opened, and with
    the transfer table's "load every model" pressed (the float16 copies); what a reader who
    also attacks every model loads is printed beside them."""
    site = _site()
    if site is None:
        pytest.skip("set BOOK_HTML to a built book (e.g. _build/html)")
    pages = [p for p in sorted(site.rglob("*.html"))
             if any(k in p.read_text(encoding="utf-8", errors="replace") for k in LIVE_CLASSES)]
    if not pages:
        pytest.skip(f"no page of {site} holds a live viewer")
    heavy = []
    for p in pages:
        w, loads = pagecheck.page_weight(p), browser_viewer.page_loads(p)
        opened, loaded = w["page"] + loads["at_open"], w["page"] + loads["with_transfer"]
        most = w["page"] + loads["at_most"]
        print(f"{p.relative_to(site)}: {loads['viewers']} live viewer(s); page "
              f"{w['page'] / 1e6:.2f} MB + viewer scripts and data "
              f"{loads['at_open'] / 1e6:.2f} MB = {opened / 1e6:.2f} MB at open, "
              f"{loaded / 1e6:.2f} MB with every model's prediction loaded, "
              f"{most / 1e6:.2f} MB with every model also attacked")
        if loaded >= pagecheck.PAGE_LIMIT_BYTES:
            heavy.append(f"{p.relative_to(site)}: {opened / 1e6:.2f} MB at open, "
                         f"{loaded / 1e6:.2f} MB with every model's prediction")
    assert not heavy, f"pages over {pagecheck.PAGE_LIMIT_BYTES / 1e6:.0f} MB: {heavy}"


def test_the_live_chapters_hold_their_viewers():
    """Issue 17: the live viewer in "Blind spots" and "Transferability", the Property 1 panel in
    "Random directions" and "Semantic units", and the data they load, in the built book."""
    site = _site()
    if site is None:
        pytest.skip("set BOOK_HTML to a built book (e.g. _build/html)")
    missing = []
    for rel, cls in LIVE_PAGES.items():
        page = site / rel
        text = page.read_text(encoding="utf-8", errors="replace") if page.is_file() else ""
        if cls not in text:
            missing.append(f"{rel}: no {cls}")
        elif cls == LIVE_CLASSES[0] and "the live viewer runs in Jupyter" in text:
            # The attack viewer replaces that placeholder (the Property 1 chapters keep one for
            # their unit-strip viewer, which needs the kernel's activations).
            missing.append(f"{rel}: still says the attack viewer runs in Jupyter")
        elif browser_viewer.page_loads(page)["at_open"] == 0:
            missing.append(f"{rel}: loads none of the engine's scripts")
    assert not missing, "\n".join(missing)
