"""HTML tables of a results file, each measured figure beside the paper's.

Why: chapters show ``data/results/*.json`` as tables without formatting code of their own, and
every cell says which number is ours and which is the paper's.
"""

from __future__ import annotations

import html
from collections.abc import Sequence


def fmt(value: float | None, kind: str = "percent") -> str:
    """Format a figure: "percent" (0.0164 -> "1.64%"), "float" (3 significant digits) or "—"."""
    if value is None:
        return "—"
    if kind == "percent":
        return f"{value * 100:.2f}%"
    if kind == "float":
        return f"{value:.3g}"
    raise ValueError(f"kind must be 'percent' or 'float', got {kind!r}")


def comparison(
    doc: dict,
    fields: Sequence[tuple[str, str, str]],
    *,
    key: str = "model",
    extra: Sequence[str] = (),
) -> str:
    """An HTML table with, per field, a "paper" and an "ours" column.

    Args:
        doc: a results document (``intriguing.results.read``).
        fields: ``(field, heading, kind)`` triples; kind as in ``fmt``.
        key: the row's name field.
        extra: further plain string fields to show after the name.
    """
    head1 = f"<th rowspan=2>{html.escape(key)}</th>" + "".join(
        f"<th rowspan=2>{html.escape(e)}</th>" for e in extra)
    head1 += "".join(f"<th colspan=2>{html.escape(h)}</th>" for _, h, _ in fields)
    head2 = "<th>paper</th><th>ours</th>" * len(fields)
    body = []
    for r in doc["rows"]:
        cells = f"<td>{html.escape(str(r[key]))}</td>"
        cells += "".join(f"<td>{html.escape(str(r.get(e, '')))}</td>" for e in extra)
        for f, _, kind in fields:
            cells += f"<td>{fmt(r[f]['paper'], kind)}</td><td><b>{fmt(r[f]['ours'], kind)}</b></td>"
        body.append(f"<tr>{cells}</tr>")
    return (f'<table class="comparison"><thead><tr>{head1}</tr><tr>{head2}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p class="caption-note">scale: {html.escape(doc["scale"])}; '
            f'{doc["seconds"]:.1f} s; commit {html.escape(doc["commit"][:12])}</p>')
