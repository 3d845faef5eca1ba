"""Claims as data: a sentence about our results is chosen by the numbers, never typed.

Why: a reproduction is only as credible as its prose. Each claim a page states has an id, the
paper's statement it tests (labelled as the paper's), one sentence per outcome with the figures
filled in, and a verdict. Experiments make their claims from their own rows when they write a
results file (``experiments.<chapter>.summarize``); pages and the scorecard print the sentence and
verdict the file holds. Change the numbers and the sentence changes with them.

Verdicts (the scorecard counts them):
    reproduced: our numbers show what the paper says.
    differs: they do not, in degree (with the reason, where one is known).
    opposite: they show the opposite of what the paper says.
    not run: the book does not run what the claim needs (with the reason).
A claim with no paper statement (``paper=None``) is a finding of this book beyond the paper: it
has no verdict and the scorecard lists it apart. A claim that holds by construction (a model's
error on its own successful adversarial examples) is marked so and not counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

REPRODUCED = "reproduced"
DIFFERS = "differs"
OPPOSITE = "opposite"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, DIFFERS, OPPOSITE, NOT_RUN)

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def make(claim_id: str, *, paper: str | None, outcome: str, text: Mapping[str, str],
         figures: Mapping[str, Any] | None = None, reason: str = "",
         by_construction: bool = False) -> dict[str, Any]:
    """One claim: the sentence for ``outcome`` with ``figures`` filled in, and its verdict.

    Args:
        claim_id: a short stable id (lowercase, digits, ``_ . -``), unique within its file.
        paper: the paper's statement this claim tests, with its section or figure; None for a
            finding beyond the paper.
        outcome: which of ``text``'s sentences the numbers support. With a paper statement it
            is the verdict (one of ``VERDICTS``); without one, any key of ``text``.
        text: one sentence per possible outcome, a ``str.format`` template over ``figures``
            (e.g. ``"{accuracy:.1%} stay correct"``). Every outcome a predicate can return needs
            one, so the page can say whichever the numbers show.
        figures: the numbers the claim rests on (recorded in the file beside the sentence).
        reason: why the verdict is not "reproduced", where a cause is known.
        by_construction: the claim holds whatever the networks do (e.g. a model's error on its
            own successful adversarial examples); the page may state it, the scorecard lists it
            as such and does not count it.

    Raises:
        ValueError: a bad id, an outcome without a sentence, a verdict that is not one of
            ``VERDICTS``, or a non-finite figure.
    """
    if not isinstance(claim_id, str) or not _ID.match(claim_id):
        raise ValueError(f"claim_id must match {_ID.pattern}, got {claim_id!r}")
    if outcome not in text:
        raise ValueError(f"outcome must be one of the sentences' keys {sorted(text)}, "
                         f"got {outcome!r}")
    if paper is not None and outcome not in VERDICTS:
        raise ValueError(f"outcome of a claim about the paper must be one of {VERDICTS}, "
                         f"got {outcome!r}")
    figures = dict(figures or {})
    for key, value in figures.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"figure {key!r} of claim {claim_id!r} must be finite, got {value}")
    return {"id": claim_id, "paper": paper, "verdict": outcome if paper is not None else None,
            "outcome": outcome, "sentence": text[outcome].format(**figures),
            "reason": reason if outcome != REPRODUCED else "", "figures": figures,
            "by_construction": bool(by_construction)}


def not_run(claim_id: str, *, paper: str, reason: str) -> dict[str, Any]:
    """A claim the book cannot test here (e.g. it needs a model the book does not train)."""
    return make(claim_id, paper=paper, outcome=NOT_RUN,
                text={NOT_RUN: "Not run in this book: " + reason}, reason=reason)


def find(doc: Mapping[str, Any], claim_id: str) -> dict[str, Any]:
    """The claim ``claim_id`` of a results document.

    Raises:
        KeyError: naming the file, the id and the ids it does hold.
    """
    held = doc.get("claims") or []
    for c in held:
        if c["id"] == claim_id:
            return c
    raise KeyError(f"{doc.get('name')!r} holds no claim {claim_id!r}; it holds "
                   f"{[c['id'] for c in held]}")


def summary(doc: Mapping[str, Any], key: str) -> Any:
    """The summary figure ``key`` of a results document.

    Raises:
        KeyError: naming the file, the key and the keys it does hold.
    """
    held = doc.get("summaries") or {}
    if key not in held:
        raise KeyError(f"{doc.get('name')!r} holds no summary {key!r}; it holds {sorted(held)}")
    return held[key]
