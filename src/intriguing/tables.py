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


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain HTML table; cells are escaped ``str()`` of each value."""
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"every row must have {len(header)} cells, got {len(r)}")
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="plain"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def model_specs(names: Sequence[str], scale: object = None) -> str:
    """The zoo's models as a table: architecture, weight decay, split, optimiser, training time."""
    from . import config, zoo

    sc = config.get_scale(scale)
    rows = []
    for name in names:
        s = zoo.spec(name)
        epochs, pre = zoo.epochs_at(s, sc)
        if s.optimizer == "lbfgs":
            how = f"full-batch L-BFGS, <= {epochs} iterations"
            if s.arch == "autoencoder":
                how = f"AE pre-training {pre} epochs (Adam); softmax: " + how
        else:
            how = f"Adam, lr {s.lr:g}, batch {s.batch_size}, {epochs} epochs"
        hist = zoo.history(name, scale=sc)
        done = hist["train"].get("iteration", [len(hist["train"]["loss"])])[-1]
        rows.append([name, s.description, ", ".join(f"{v:g}" for v in s.lambdas), s.split, how,
                     int(done), f"{hist['seconds']:.0f}"])
    return html_table(["model", "description", "lambda per layer", "trained on", "optimiser",
                       "epochs / iterations run", "seconds"], rows)


def matrix(doc: dict, *, field: str = "error", kind: str = "percent",
           extra: str | None = "distortion", extra_heading: str = "av. distortion") -> str:
    """A transfer table (``table2.json``, ``table4.json``) as the paper prints it: sets by models.

    Each cell shows ours in bold and the paper's below it. ``extra`` names a per-row figure
    (rows with ``source`` and that field, no ``target``), shown in a last column.
    """
    rows = list(doc["settings"]["rows"])
    cols = list(doc["settings"]["columns"])
    cells = {(r["source"], r["target"]): r[field] for r in doc["rows"]
             if "target" in r and field in r}
    side = {r["source"]: r[extra] for r in doc["rows"]
            if extra and "target" not in r and extra in r}

    def show(c: dict | None, k: str) -> str:
        if c is None:
            return "<td>—</td>"
        return (f"<td><b>{fmt(c['ours'], k)}</b><br>"
                f"<span class=\"paper\">paper {fmt(c['paper'], k)}</span></td>")

    head = "<th>made for \\ fed to</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    head += f"<th>{html.escape(extra_heading)}</th>" if extra else ""
    body = []
    for r in rows:
        tds = "".join(show(cells.get((r, c)), kind) for c in cols)
        tds += show(side.get(r), "float") if extra else ""
        body.append(f"<tr><td>{html.escape(r)}</td>{tds}</tr>")
    return (f'<table class="comparison"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p class="caption-note">bold: this book; below: the paper. scale: '
            f'{html.escape(doc["scale"])}; {doc["seconds"]:.1f} s; '
            f'commit {html.escape(doc["commit"][:12])}</p>')
