"""Property 1 for adversarial perturbations: top-k shares of a hidden layer's change.

``engine.perturbation_units`` against exact answers on small cases, its argument checks, the
experiment's summaries on hand-made rows, the Jupyter panel's render functions, and the browser
panel (``book/_extra/js/intriguing-units.js``) against the Python engine under node on the same
change and basis (skipped, with the reason, where node is not on the PATH).
"""

import json
import math
import subprocess

import numpy as np
import pytest
import torch

from intriguing.display import browser_viewer, unit_viewers
from intriguing.engine import models, units, webexport
from intriguing.engine import perturbation_units as pu
from intriguing.experiments import REGISTRY, coherence
from intriguing.plumbing import config, results

UNITS_JS = config.repo_root() / "book" / "_extra" / "js" / "intriguing-units.js"
needs_node = pytest.mark.skipif(
    webexport.node_executable() is None,
    reason="node is not on the PATH: the browser panel is tested under Node.js")


def tiny_mlp(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.SigmoidMLP((16, 12), (0.0, 0.0, 0.0)).eval()


# --------------------------------------------------------------------------------------------
# Shares against exact answers


def test_a_change_along_one_unit_has_share_one_at_k1():
    delta = torch.zeros(2, 8, dtype=torch.float64)
    delta[0, 3], delta[1, 0] = 0.7, -2.0
    np.testing.assert_allclose(pu.topk_shares(delta, [1, 4, 8]), [[1, 1, 1], [1, 1, 1]])


def test_a_change_spread_evenly_has_share_k_over_d():
    d = 10
    delta = torch.ones(1, d, dtype=torch.float64) * torch.tensor([1.0, -1.0] * 5)
    np.testing.assert_allclose(pu.topk_shares(delta, [1, 3, 10])[0], [0.1, 0.3, 1.0])


def test_sorted_energy_is_a_descending_distribution_and_the_identity_is_the_unit_basis():
    delta = torch.randn(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    e = pu.sorted_energy(delta)
    assert torch.allclose(e.sum(1), torch.ones(5, dtype=torch.float64))
    assert (e[:, :-1] >= e[:, 1:]).all()
    assert torch.allclose(pu.sorted_energy(delta, torch.eye(7)), e)
    q = units.random_rotation(7, 3)
    # The basis's coordinates are <delta, row>: the energy is preserved, only redistributed.
    assert torch.allclose(pu.sorted_energy(delta @ q.T @ q, q), pu.sorted_energy(delta @ q.T))


def test_fixed_coordinates_of_random_bases_carry_k_over_d_on_average():
    """In a random orthonormal basis each coordinate carries 1/D of |delta|^2 on average, so
    the first k coordinates carry k/D; the *top* k carry expected_random_share(D, k) > k/D."""
    d, k, n = 20, 4, 400
    delta = torch.zeros(d, dtype=torch.float64)
    delta[0] = 1.0  # the most concentrated change there is, in the unit basis
    fixed, top = [], []
    for q in pu.random_bases(d, n, seed=0):
        coords = q @ delta
        fixed.append(float(coords[:k].square().sum()))
        top.append(pu.topk_shares(delta, [k], q)[0, 0])
    assert abs(np.mean(fixed) - k / d) < 0.02
    assert abs(np.mean(top) - pu.expected_random_share(d, k)) < 0.02
    assert pu.expected_random_share(d, k) > k / d + 0.1


def test_expected_random_share_exact_cases_and_monte_carlo():
    # D = 2: u = (cos t, sin t) uniform, E[max(cos^2, sin^2)] = 1/2 + 1/pi.
    assert pu.expected_random_share(2, 1) == pytest.approx(0.5 + 1 / math.pi, abs=1e-6)
    assert pu.expected_random_share(1, 1) == 1.0
    assert pu.expected_random_share(9, 9) == 1.0
    g = torch.randn(20000, 100, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    mc = pu.topk_shares(g, [1, 5, 10]).mean(0)
    exact = [pu.expected_random_share(100, k) for k in (1, 5, 10)]
    np.testing.assert_allclose(mc, exact, atol=0.004)


def test_default_ks():
    assert pu.default_ks(100) == (1, 5, 10)
    assert pu.default_ks(200) == (1, 5, 20)
    assert pu.default_ks(3) == (1,)


def test_compare_shares_finds_concentration_on_units():
    gen = torch.Generator().manual_seed(2)
    delta = 0.01 * torch.randn(60, 30, generator=gen, dtype=torch.float64)
    delta[:, 5] += 1.0  # almost all of the change on one unit
    cmp = pu.compare_shares(delta, ks=(1, 3), n_bases=4, n_resamples=200)
    assert cmp.unit.shape == (60, 2) and cmp.random.shape == (60, 2)
    r1 = cmp.rows[0]
    assert r1["k"] == 1 and r1["unit"] > 0.95 and r1["random"] < 0.5
    assert r1["difference_low"] > 0 and r1["p"] < 1e-6 and r1["wins"] == 1.0
    assert r1["unit_low"] <= r1["unit"] <= r1["unit_high"]
    assert r1["expected"] == pytest.approx(pu.expected_random_share(30, 1))


def test_hidden_change_is_the_difference_of_activations():
    net = tiny_mlp()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    adv = (x + 0.05).clamp(0, 1)
    with torch.no_grad():
        h = lambda z: torch.sigmoid(net.body.fc1(z.flatten(1)))  # noqa: E731
        want = (h(adv) - h(x)).double()
    got = pu.hidden_change(net, "act1", x, adv)
    assert got.shape == (3, 16) and torch.allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: pu.topk_shares(torch.zeros(2, 4), [1]), "delta must have a non-zero row"),
    (lambda: pu.topk_shares(torch.ones(2, 2, 2), [1]), "delta must have shape"),
    (lambda: pu.topk_shares(torch.tensor([[1.0, float("nan")]]), [1]), "finite"),
    (lambda: pu.topk_shares(torch.ones(1, 4), [0]), "ks must be"),
    (lambda: pu.topk_shares(torch.ones(1, 4), [5]), "ks must be"),
    (lambda: pu.topk_shares(torch.ones(1, 4), [1], torch.ones(4, 4)), "orthonormal"),
    (lambda: pu.topk_shares(torch.ones(1, 4), [1], torch.eye(3)), "basis must be"),
    (lambda: pu.expected_random_share(10, 0), "k must be"),
    (lambda: pu.expected_random_share(0, 1), "dim must be"),
    (lambda: pu.compare_shares(torch.ones(3, 4), n_bases=0), "n_bases"),
    (lambda: pu.hidden_change(tiny_mlp(), "act1", torch.zeros(2, 1, 28, 28),
                              torch.zeros(3, 1, 28, 28)), "images and adversarial"),
    (lambda: pu.hidden_change(tiny_mlp(), "act9", torch.zeros(1, 1, 28, 28),
                              torch.zeros(1, 1, 28, 28)), "layer must be one of"),
    (lambda: pu.PerturbationProbe(tiny_mlp(), "fc1"), "layer must be one of"),
    (lambda: pu.PerturbationProbe(tiny_mlp(), "act1")(torch.zeros(1, 28, 28), 10, 1.0),
     "target"),
    (lambda: pu.PerturbationProbe(tiny_mlp(), "act1")(torch.zeros(1, 28, 28), 1, -1.0), "c"),
    (lambda: coherence.perturbation_units("smoke", n_bases=0, progress=False), "n_bases"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# The live probe and the Jupyter panel


def shifted(model, x, target, c):
    """A stand-in attack: a fixed small perturbation (the probe takes any attack_fn)."""
    return (x + 0.1 * torch.linspace(0, 1, 784).reshape(1, 1, 28, 28)).clamp(0, 1)


def test_probe_measures_the_attack_it_is_given():
    net = tiny_mlp()
    probe = pu.PerturbationProbe(net, "act1", basis_seed=1, attack_fn=shifted)
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(5)) * 0.5
    res = probe(x[0], 3, 1.0)
    delta = pu.hidden_change(net, "act1", x, shifted(net, x, None, None))
    assert probe.ks == pu.default_ks(16) == (1, 2, 5)
    want = [(k, pu.topk_shares(delta, [k])[0, 0],
             pu.topk_shares(delta, [k], units.random_rotation(16, 1))[0, 0]) for k in probe.ks]
    np.testing.assert_allclose([(k, u, r) for k, u, r, _ in res["shares"]], want,
                               rtol=1e-9)
    assert res["norm"] == pytest.approx(float(delta.norm()))
    html = unit_viewers.perturbation_panel_html(x, res, label=7, target=3)
    assert "<svg" in html and "target 3" in html and html.count("<tr>") == 1 + len(probe.ks)


def test_jupyter_viewer_renders_on_demand():
    net = tiny_mlp()
    calls = []

    def probe(image, target, c):
        calls.append((target, c))
        return pu.PerturbationProbe(net, "act1", attack_fn=shifted)(image, target, c)

    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    box = unit_viewers.perturbation_viewer(x, torch.tensor([1, 2]), probe, c=0.5)
    assert calls == [(2, pytest.approx(0.5))]
    res = box.render(1, 4, 2.0)
    assert calls[-1] == (4, 2.0) and res["shares"]
    with pytest.raises(ValueError, match="c_range"):
        unit_viewers.perturbation_viewer(x, torch.tensor([1, 2]), probe, c_range=(1.0, 0.1))


def test_energy_svg_checks_its_curves():
    svg = unit_viewers.energy_svg([0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [1, 2])
    assert svg.count("<polyline") == 2 and svg.count("stroke-dasharray") == 2
    with pytest.raises(ValueError, match="one length"):
        unit_viewers.energy_svg([0.5, 0.5], [1.0], [1])


# --------------------------------------------------------------------------------------------
# The experiment's summaries and claims, from hand-made rows


def _row(model, layer, k, kind, unit, random, diff_lo, p, set_=coherence.SEARCH_SET, c=None):
    cell = results.cell
    return {"model": model, "layer": layer, "set": set_, "k": str(k), "k_kind": kind,
            "unit": cell(unit), "unit_low": cell(unit - 0.01), "unit_high": cell(unit + 0.01),
            "random": cell(random), "random_low": cell(random - 0.01),
            "random_high": cell(random + 0.01), "difference": cell(unit - random),
            "difference_low": cell(diff_lo), "difference_high": cell(unit - random + 0.01),
            "expected": cell(random), "p": cell(p), "wins": cell(0.9), "n": cell(500),
            "norm": cell(0.1), "distortion": cell(0.05), "success": cell(1.0),
            "c_value": cell(c)}


def _doc(rows):
    doc = {"name": "perturbation_units", "rows": rows,
           "settings": {"sets": [coherence.SEARCH_SET, "c=0.001"]}}
    doc.update(coherence.summarize_perturbation_units(doc))
    return doc


def test_summaries_count_holm_corrected_comparisons():
    rows = [_row("A", "act1", 1, "fixed", 0.2, 0.1, 0.05, 1e-9),
            _row("A", "act1", 10, "fraction", 0.8, 0.4, 0.3, 1e-9),
            _row("A", "act2", 1, "fixed", 0.05, 0.08, -0.04, 1e-9),
            _row("A", "act2", 10, "fraction", 0.42, 0.43, -0.02, 0.04),
            _row("A", "act1", 10, "fraction", 0.7, 0.43, 0.2, 1e-9, "c=0.001", 0.001),
            _row("A", "act2", 10, "fraction", 0.3, 0.43, -0.2, 1e-9, "c=0.001", 0.001)]
    doc = _doc(rows)
    s = doc["summaries"]
    # Holm multiplies the largest of the four p-values by 1: 0.04 stays below 5%.
    assert s["n_comparisons"] == 4
    assert s["tally"] == {"units": 2, "random": 2, "neither": 0}
    ids = {c["id"]: c for c in doc["claims"]}
    assert ids["perturbation_units"]["outcome"] == "mixed"
    assert ids["perturbation_units"]["verdict"] is None
    assert ids["perturbation_layers"]["outcome"] == "mixed"
    assert ids["perturbation_c"]["outcome"] == "every_c"  # only the first layer counts
    assert "A/act1 (k = 10): units 80%" in ids["perturbation_layers"]["sentence"]
    html = unit_viewers.share_table(doc)
    assert html.count("<tr>") == 1 + 4


def test_summaries_when_units_carry_more_everywhere():
    rows = [_row("A", lay, k, kind, 0.6, 0.3, 0.2, 1e-6) for lay in ("act1", "act2")
            for k, kind in ((1, "fixed"), (10, "fraction"))]
    doc = _doc(rows)
    ids = {c["id"]: c for c in doc["claims"]}
    assert ids["perturbation_units"]["outcome"] == "units"
    assert ids["perturbation_layers"]["outcome"] == "units"
    assert "perturbation_c" not in ids  # no fixed-c rows


def test_registered():
    e = REGISTRY["perturbation_units"]
    assert e.run is coherence.perturbation_units
    assert e.summarize is coherence.summarize_perturbation_units
    assert e.chapter == "chapters/random_directions" and "transfer_curves" in e.after


# --------------------------------------------------------------------------------------------
# The browser panel


def test_units_panel_html():
    page = browser_viewer.units_panel_html(page="chapters/random_directions.ipynb",
                                           model="FC100-100-10", layer=1, viewer_id="p1")
    assert '<script src="../js/intriguing-units.js"></script>' in page
    assert '<script src="../attack-data/FC100-100-10.js"></script>' in page
    assert 'class="intriguing-units-live" id="p1"' in page
    assert "IntriguingUnits.mount" in page
    for bad, match in [({"layer": 0}, "layer"), ({"ks": []}, "ks"), ({"c": 1e9}, "c must"),
                       ({"c_range": (1, 0.1)}, "c_range"), ({"target": 11}, "target"),
                       ({"viewer_id": "1x"}, "viewer_id"), ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=match):
            browser_viewer.units_panel_html(page="chapters/x.ipynb", model="m", **bad)


def test_page_loads_counts_the_units_panel(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "attack-data").mkdir()
    (tmp_path / "chapters").mkdir()
    for f, size in (("js/intriguing-attack.js", 100), ("js/intriguing-units.js", 50),
                    ("attack-data/index.js", 10), ("attack-data/images.js", 1000),
                    ("attack-data/FC100-100-10.js", 5000)):
        (tmp_path / f).write_bytes(b"x" * size)
    page = tmp_path / "chapters" / "p.html"
    page.write_text(browser_viewer.units_panel_html(page="chapters/p.ipynb",
                                                    model="FC100-100-10"))
    loads = browser_viewer.page_loads(page)
    assert loads == {"viewers": 1, "at_open": 6160, "with_transfer": 6160, "at_most": 6160}


NODE_RUNNER = r"""
const fs = require("fs");
const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
globalThis.IntriguingAttack = require(req.engine);
const U = require(req.units);
for (const f of req.data || []) { require(f); }
const out = {};
out.unit = Array.from(U.sortedEnergy(req.delta, null));
out.shares_unit = U.topkShares(req.delta, req.ks, null);
out.shares_basis = U.topkShares(req.delta, req.ks, Float64Array.from(req.basis));
const B = U.randomBasis(req.d, req.seed);
let worst = 0;
for (let i = 0; i < req.d; i++) for (let j = 0; j < req.d; j++) {
  let s = 0; for (let t = 0; t < req.d; t++) s += B[i * req.d + t] * B[j * req.d + t];
  worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
}
out.orthonormal_error = worst;
out.same_seed_same_basis = U.randomBasis(req.d, req.seed).every((v, i) => v === B[i]);
out.other_seed_differs = U.randomBasis(req.d, req.seed + 1).some((v, i) => v !== B[i]);
out.expected = U.expectedShares(req.d, req.ks, 4000, 7);
if (req.model) {
  const IA = globalThis.IntriguingAttack;
  const m = IA.decodeModel(globalThis.IntriguingAttackData.models[req.model]);
  const x = Float64Array.from(req.x);
  out.change = Array.from(U.layerChange(m, x, Float64Array.from(req.xadv), 1));
  try { U.topkShares(new Float64Array(4), [1], null); out.zero = "no error"; }
  catch (e) { out.zero = String(e.message); }
}
process.stdout.write(JSON.stringify(out));
"""


@needs_node
def test_browser_panel_matches_python(tmp_path):
    d, ks, seed = 16, [1, 5, 2], 3
    net = tiny_mlp(4)
    webexport.write_script(tmp_path / "model.js", "models.tiny",
                           webexport.model_entry(net, "tiny"))
    gen = torch.Generator().manual_seed(9)
    x = (torch.rand(1, 1, 28, 28, generator=gen) * 255).round() / 255
    xadv = (x + 0.2 * torch.rand(1, 1, 28, 28, generator=gen)).clamp(0, 1)
    delta = pu.hidden_change(net, "act1", x, xadv)[0]
    basis = units.random_rotation(d, 11)
    (tmp_path / "runner.js").write_text(NODE_RUNNER)
    req = {"engine": str(webexport.engine_path()), "units": str(UNITS_JS),
           "data": [str(tmp_path / "model.js")], "model": "tiny", "d": d, "seed": seed,
           "ks": ks, "delta": delta.tolist(), "basis": basis.flatten().tolist(),
           "x": x.double().flatten().tolist(), "xadv": xadv.double().flatten().tolist()}
    (tmp_path / "req.json").write_text(json.dumps(req))
    proc = subprocess.run([webexport.node_executable(), str(tmp_path / "runner.js"),
                           str(tmp_path / "req.json")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    np.testing.assert_allclose(out["unit"], pu.sorted_energy(delta)[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(out["shares_unit"], pu.topk_shares(delta, ks)[0], rtol=1e-12)
    np.testing.assert_allclose(out["shares_basis"], pu.topk_shares(delta, ks, basis)[0],
                               rtol=1e-10)
    assert out["orthonormal_error"] < 1e-12
    assert out["same_seed_same_basis"] and out["other_seed_differs"]
    np.testing.assert_allclose(out["expected"], [pu.expected_random_share(d, k) for k in ks],
                               atol=0.01)
    # The engine's layer (float64 sums on float32 weights) against torch's float32 forward.
    np.testing.assert_allclose(out["change"], delta.numpy(), atol=1e-5)
    assert "delta must not be zero" in out["zero"]
