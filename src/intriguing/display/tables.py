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
        doc: a results document (``intriguing.plumbing.results.read``).
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


def model_specs(doc: dict) -> str:
    """``model_zoo.json`` as a table: architecture, weight decay, split, optimiser, training time.
    """
    rows = [[r["model"], r["description"], r["lambdas"], r["split"], r["optimiser"],
             int(r["epochs_run"]["ours"]), f"{r['train_seconds']['ours']:.0f}"]
            for r in doc["rows"]]
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
    return (f'<table class="comparison matrix"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
            f'<p class="caption-note">bold: this book; below: the paper. scale: '
            f'{html.escape(doc["scale"])}; {doc["seconds"]:.1f} s; '
            f'commit {html.escape(doc["commit"][:12])}</p>')


def layer_bounds(doc: dict, model: str, *, show_paper: bool = False) -> str:
    """One model's per-layer Lipschitz bounds from ``table5.json``.

    Columns: layer (and Table 5's name), kind, size, stride, input shape, the bound, power
    iteration on the layer's real linear map (linear layers), whether the bound is exact, and
    the running product. ``show_paper`` adds the paper's Table 5 figure where the row has one.
    """
    rows = [r for r in doc["rows"] if r["model"] == model and r.get("kind") != "network"]
    if not rows:
        raise ValueError(f"model must be one of the models of {doc.get('name')!r}, got {model!r}")
    head = ["layer", "kind", "size", "stride", "input", "bound", "power iteration", "exact",
            "product so far"] + (["paper's bound"] if show_paper else [])
    body = []
    for r in rows:
        name = r["layer"] + (f" ({r['table5_layer']})" if r.get("table5_layer") else "")
        pi = r["power_iteration"]["ours"]
        cells = [name, r["kind"], r["size"] or "", r["stride"] if r["stride"] != "N/A" else "",
                 r["input_shape"], f"{r['bound']['ours']:.4g}",
                 "" if pi is None else f"{pi:.4g}", r["exact"],
                 f"{r['product_so_far']['ours']:.4g}"]
        if show_paper:
            cells.append(fmt(r["bound"]["paper"], "float") if r["bound"]["paper"] else "")
        body.append(cells)
    return html_table(head, body)


def alexnet_table5(doc: dict, paper_rows: Sequence[dict]) -> str:
    """The paper's Table 5 beside ours for torchvision's AlexNet, layer by layer.

    ``paper_rows``: ``intriguing.experiments.paper.TABLE5``. Our columns: the torchvision
    layer's size, the bound with random weights, and, when ``table5.json`` has them, with the
    pretrained weights.
    """
    ours = {}
    for r in doc["rows"]:
        if r["model"].startswith("AlexNet") and r.get("table5_layer"):
            ours.setdefault(r["table5_layer"], {})[r["model"]] = r
    variants = [m for m in ("AlexNet (random weights)", "AlexNet (pretrained)")
                if any(m in v for v in ours.values())]
    head = ["layer", "paper: size", "stride", "paper: bound", "torchvision: size"]
    head += [f"ours: {m.split('(')[1].rstrip(')')}" for m in variants]
    body = []
    for p in paper_rows:
        mine = ours.get(str(p["layer"]), {})
        first = next(iter(mine.values()), None)
        body.append([p["layer"], p["size"], "N/A" if p["stride"] is None else p["stride"],
                     fmt(p["bound"], "float"), first["size"] if first else "—"]
                    + [fmt(mine[m]["bound"]["ours"], "float") if m in mine else "—"
                       for m in variants])
    return html_table(head, body)


def network_lipschitz(doc: dict) -> str:
    """The zoo's product bounds beside measured gains (``table5.json`` network rows).

    Gains are ``||change in logits|| / ||change in pixels||`` (L2). Radii are L2 norms in pixel
    space ([0,1] scale; divide by 28 for the per-pixel RMS of Table 1).
    """
    rows = [r for r in doc["rows"] if r.get("kind") == "network" and "local_max" in r]
    head = ["model", "bound L (logits)", "bound (last hidden layer)", "local gain: median",
            "local gain: largest", "L / largest local", "gain at adversarial examples: median",
            "largest", "radius certified by L (median)", "perturbation found (median)"]

    def f(c: dict) -> str:
        return fmt(c["ours"], "float")

    body = [[r["model"], f(r["bound"]), f(r["bound_last_hidden"]), f(r["local_median"]),
             f(r["local_max"]), f(r["bound_over_local_max"]), f(r["adversarial_ratio_median"]),
             f(r["adversarial_ratio_max"]), f(r["certified_radius_median"]),
             f(r["attack_norm_median"])] for r in rows]
    return html_table(head, body)


def model_selection(doc: dict, setting: str) -> str:
    """One setting of ``model_selection.json``: each candidate's validation error per rung of
    successive halving ("—" where it was dropped), the zoo's setting and the winner marked.

    Raises:
        ValueError: ``doc`` holds no row of ``setting`` (naming the settings it holds).
    """
    rows = [r for r in doc["rows"] if r["setting"] == setting]
    if not rows:
        held = sorted({r["setting"] for r in doc["rows"]})
        raise ValueError(f"setting must be one of {held}, got {setting!r}")
    rungs = sorted({r["rung"] for r in rows}, key=int)
    winner = doc.get("summaries", {}).get("winners", {}).get(setting)

    def budget(rung: str) -> str:
        r = next(r for r in rows if r["rung"] == rung)
        pre = int(r["pretrain_epochs"]["ours"])
        steps = (f"{pre} pre-training epochs, {int(r['epochs']['ours'])} L-BFGS iterations"
                 if pre else f"{int(r['epochs']['ours'])} epochs")
        return f"rung {rung}: {r['fraction']['ours'] * 100:g}% of the schedule ({steps})"

    head = ["candidate", "the zoo's setting", *(budget(k) for k in rungs), "chosen"]
    body = []
    for cand in dict.fromkeys(r["candidate"] for r in rows):
        mine = {r["rung"]: r for r in rows if r["candidate"] == cand}
        body.append([cand, "yes" if mine[min(mine, key=int)]["zoo"] == "yes" else "",
                     *(fmt(mine[k]["validation_error"]["ours"]) if k in mine else "—"
                       for k in rungs), "winner" if cand == winner else ""])
    return html_table(head, body)
