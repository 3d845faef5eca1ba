"""Build checks for pages with viewers: what a page weighs and what a widget adds to it.

Why: a static viewer embeds every frame in its page (the widget state, with the PNGs
base64-encoded), so a chapter with several viewers can grow heavy. ``widget_state_bytes``
measures one viewer before the book is built (tests/test_widgets.py), ``page_weight`` a built
page (tests/test_page_weight.py); each page stays under ``PAGE_LIMIT_BYTES``.
"""

from __future__ import annotations

import json
from pathlib import Path

import ipywidgets as widgets


def widget_state_bytes(widget: widgets.Widget) -> int:
    """Size of the JSON widget state a page embeds for ``widget`` (what the book ships)."""
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


__all__ = ["PAGE_LIMIT_BYTES", "page_weight", "widget_state_bytes"]
