"""How a page's claims read at book scale, for a page executed at another scale.

Why: smoke scale (the tests, and a class with no time to train) trains on a few thousand images
for a fraction of the epochs and attacks a few hundred, so some of the book's claims read
otherwise there (issue 18). A page must not state in typed prose that they hold: this module
compares each claim that a page's results files hold at the page's scale with the same claim at
book scale, where the book-scale files exist on this machine (after ``make book``, or once the
book's models archive is installed), and says which read differently. At book scale it says
nothing. Everything it prints is computed from ``data/results/*.json``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from IPython.display import Markdown

from ..plumbing import checks, config, results

#: The scale whose claims the book states; pages at other scales are compared with it.
REFERENCE = "book"

#: Read once per file version (path, mtime): pages ask for the same book-scale file many times.
_READ: dict[tuple[str, int], dict[str, Any]] = {}


def _doc(name: str, scale: config.Scale) -> dict[str, Any] | None:
    p = results.path(name, scale)
    try:
        key = (str(p), p.stat().st_mtime_ns)
    except FileNotFoundError:
        return None
    if key not in _READ:
        _READ[key] = results.read(name, scale)
    return _READ[key]


def _checked(names: tuple[str, ...]) -> list[str]:
    """``names`` as a list, each a results file of the experiments' registry."""
    from .scorecard import results_files  # the registry's files

    known = sorted(results_files())
    if not names:
        raise ValueError(f"names must list at least one results file of {known}")
    return [checks.one_of("names", name, known) for name in names]


def reference_claim(doc: Mapping[str, Any], claim_id: str) -> dict[str, Any] | None:
    """The claim ``claim_id`` of the same results file at book scale, or None where that file
    is not on this machine, holds no such claim, or ``doc`` is itself at book scale."""
    scale = doc.get("scale")
    if scale is None or scale == REFERENCE or not isinstance(doc.get("name"), str):
        return None
    ref = _doc(doc["name"], config.get_scale(REFERENCE))
    if ref is None:
        return None
    return next((c for c in ref.get("claims") or [] if c["id"] == claim_id), None)


def compare(names: list[str] | tuple[str, ...], scale: str | config.Scale | None = None,
            reference: str | config.Scale = REFERENCE) -> dict[str, Any]:
    """Each claim of the files ``names`` at ``scale`` beside the same claim at ``reference``.

    Returns:
        ``scale`` and ``reference`` (names); ``rows``: one per claim found at ``scale``, with
        ``file``, ``id``, ``sentence``, ``ref_sentence`` (None where the reference lacks the
        file or claim) and ``same`` (the two outcomes agree; None when there is nothing to
        compare); ``missing_reference``: files made at ``scale`` but not at ``reference``.
    """
    sc, ref_sc = config.get_scale(scale), config.get_scale(reference)
    rows, missing_ref = [], []
    for name in names:
        doc = _doc(name, sc)
        if doc is None:
            continue
        ref = _doc(name, ref_sc)
        if ref is None:
            missing_ref.append(name)
        held = {c["id"]: c for c in (ref or {}).get("claims") or []}
        for c in doc.get("claims") or []:
            r = held.get(c["id"])
            rows.append({"file": name, "id": c["id"], "sentence": c["sentence"],
                         "ref_sentence": r and r["sentence"],
                         "same": None if r is None else r["outcome"] == c["outcome"]})
    return {"scale": sc.name, "reference": ref_sc.name, "rows": rows,
            "missing_reference": missing_ref}


def note_text(*names: str, scale: str | config.Scale | None = None) -> str | None:
    """The note :func:`note` shows, as Markdown; None at book scale."""
    files = _checked(names)
    sc = config.get_scale(scale)
    if sc.name == REFERENCE:
        return None
    cmp = compare(files, sc)
    rows = cmp["rows"]
    lead = (f"> **This page ran at {sc.name} scale** ({sc.describe()}), not at book scale. "
            f"Every result on it is computed from the {sc.name}-scale files")
    if not rows:
        return lead + ", and none of this page's results files has been made at this scale yet."
    compared = [r for r in rows if r["same"] is not None]
    differ = [r for r in compared if not r["same"]]
    parts = [lead + "."]
    if cmp["missing_reference"]:
        parts.append(
            f"The book-scale files of {len(cmp['missing_reference'])} of them "
            f"({', '.join(cmp['missing_reference'])}) are not on this machine, so whether "
            f"their claims read otherwise at book scale cannot be shown here: run `make book`, "
            f"or install the book's models archive (`python -m intriguing models install`).")
    if compared:
        parts.append(f"Of the {len(compared)} claims that can be compared with book scale, "
                     f"{len(compared) - len(differ)} read the same and {len(differ)} read "
                     f"otherwise" + (":" if differ else "."))
    text = "\n>\n> ".join(parts)
    for r in differ:
        text += (f"\n> - `{r['id']}` ({r['file']}). *Here:* {r['sentence']} "
                 f"*At book scale:* {r['ref_sentence']}")
    return text


def note(*names: str, scale: str | config.Scale | None = None) -> Markdown | None:
    """A page's scale note (tag the cell ``remove-input``): at a scale other than book scale,
    which claims of the results files ``names`` (every file the page reads) read otherwise at
    book scale, computed from both scales' files; nothing at book scale.

    Raises:
        ValueError: no name, or a name that is not a results file of the registry.
    """
    text = note_text(*names, scale=scale)
    return None if text is None else Markdown(text)


def comparison_html(scale: str | config.Scale = "smoke",
                    reference: str | config.Scale = REFERENCE) -> str:
    """Every claim whose outcome at ``scale`` differs from ``reference``'s, as an HTML table
    (for the scorecard), with a count of those that agree; a sentence when either scale's
    files are missing."""
    from .scorecard import results_files

    cmp = compare(list(results_files()), scale, reference)
    compared = [r for r in cmp["rows"] if r["same"] is not None]
    if not compared:
        return (f"<p>No claim can be compared: the {cmp['scale']}-scale and "
                f"{cmp['reference']}-scale results are not both on this machine "
                f"(<code>make test</code> makes the smoke-scale files, <code>make book</code> "
                f"the book-scale ones).</p>")
    differ = [r for r in compared if not r["same"]]
    head = (f"<p>{len(compared) - len(differ)} of {len(compared)} claims read the same at "
            f"{cmp['scale']} scale as at {cmp['reference']} scale; {len(differ)} read "
            f"otherwise{':' if differ else '.'}</p>")
    if not differ:
        return head
    e = html.escape
    body = "".join(
        f"<tr><td><code>{e(r['file'])}</code> <code>{e(r['id'])}</code></td>"
        f"<td>{e(r['sentence'])}</td><td>{e(r['ref_sentence'])}</td></tr>" for r in differ)
    return (head + f"<table class='scale-comparison'><thead><tr><th>claim</th>"
            f"<th>at {e(cmp['scale'])} scale</th><th>at {e(cmp['reference'])} scale</th></tr>"
            f"</thead><tbody>{body}</tbody></table>")
