"""Claims on a page: the sentence a results file holds, with its verdict, as Markdown.

Why: a page never types a result. Where a chapter reports what we measured, a hidden cell prints
the claim's sentence from ``data/results/<name>.json`` (made by the experiment from its rows,
``plumbing.claims``), so the text changes when the numbers do. In the rendered book the output
reads as part of the prose; in Jupyter it shows as a Markdown output of the cell.

References: Szegedy et al. 2014, arXiv:1312.6199 (the paper's statements each claim tests).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from IPython.display import Markdown

from ..plumbing import claims as claims_data
from . import scale_note

#: The short label a verdict gets on a page.
BADGE = {claims_data.REPRODUCED: "as in the paper", claims_data.DIFFERS: "differs from the paper",
         claims_data.OPPOSITE: "opposite to the paper", claims_data.NOT_RUN: "not run here"}


def badge(verdict: str | None) -> str:
    """A small inline label for a verdict ("" for a finding beyond the paper)."""
    if verdict is None:
        return ""
    cls = verdict.replace(" ", "-")
    return f'<span class="verdict verdict-{cls}">{html.escape(BADGE[verdict])}</span>'


def text(doc: Mapping[str, Any], *claim_ids: str, badges: bool = True) -> str:
    """The sentences of ``claim_ids`` (in order) as one Markdown paragraph.

    Raises:
        ValueError: no claim id given.
        KeyError: the file holds no such claim (naming the ids it holds).
    """
    if not claim_ids:
        raise ValueError("claim_ids must name at least one claim")
    parts = []
    for cid in claim_ids:
        c = claims_data.find(doc, cid)
        mark = badge(c["verdict"]) if badges else ""
        parts.append(c["sentence"] + (f" {mark}" if mark else ""))
        # Below book scale, a claim that reads otherwise at book scale says so (scale_note).
        ref = scale_note.reference_claim(doc, cid)
        if ref is not None and ref["outcome"] != c["outcome"]:
            ref_mark = badge(ref["verdict"]) if badges else ""
            parts.append(f"*(At book scale it reads otherwise: {ref['sentence']}"
                         + (f" {ref_mark}" if ref_mark else "") + ")*")
    return " ".join(parts)


def show(doc: Mapping[str, Any], *claim_ids: str, badges: bool = True) -> Markdown:
    """``text(doc, *claim_ids)`` as a Markdown output (tag the cell ``remove-input``)."""
    return Markdown(text(doc, *claim_ids, badges=badges))


def bullets(items: list[tuple[Mapping[str, Any], str]], *, badges: bool = False) -> Markdown:
    """Several claims, each a bullet: ``[(doc, claim_id), ...]`` (for a chapter's summary)."""
    if not items:
        raise ValueError("items must name at least one (doc, claim_id) pair")
    return Markdown("\n".join(f"- {text(doc, cid, badges=badges)}" for doc, cid in items))
