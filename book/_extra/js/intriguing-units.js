/*
 * intriguing-units.js: where an adversarial perturbation lands in a hidden layer, live in the
 * reader's browser (no kernel, no network).
 *
 * Why: Szegedy et al. (2014, arXiv:1312.6199, section 3) find that single units of a layer are
 * no better than random directions for reading what the layer means. The book asks the same of
 * the paper's adversarial perturbations (section 4.1): is the change they cause in a hidden
 * layer, delta = phi(x + r) - phi(x), carried by a few units, or spread as it would be over the
 * directions of a random orthonormal basis? The experiment perturbation_units measures it over
 * the test set (intriguing.engine.perturbation_units); this panel does it for the reader's
 * image, target and c: it runs one solve of IntriguingAttack.solve (intriguing-attack.js, the
 * browser port of attacks.lbfgs), records the hidden layer before and after, and draws the
 * sorted magnitudes of delta's coordinates in the unit basis and in a random orthonormal basis,
 * with the share of |delta|^2 that the top k carry.
 *
 * The random basis is made here from a seed: Gaussian vectors from a seeded generator
 * (mulberry32, Box-Muller), orthonormalised by modified Gram-Schmidt, twice. That costs no
 * download (a 200 x 200 basis as float32 would be 214 kB of base64 per layer) and about a
 * millisecond. The expected top-k share in a uniformly random basis does not depend on delta;
 * the panel estimates it by Monte Carlo (seeded, 4,000 draws), the Python side computes it
 * exactly (expected_random_share).
 *
 * The markup comes from intriguing.display.browser_viewer.units_panel_html: one element with
 * class "intriguing-units-live" and a data-config attribute, after <script src> tags for
 * intriguing-attack.js, this file and the exported data (attack-data/), all relative to the
 * page, so it works opened from disk.
 *
 *   IntriguingUnits.mount(element)          wires one panel; element.intriguingUnits holds its
 *                                           state (index, target, c, result) for tests.
 *   IntriguingUnits.randomBasis(d, seed)    Float64Array d*d, orthonormal rows.
 *   IntriguingUnits.sortedEnergy(delta, basis or null)   shares of |delta|^2, descending.
 *   IntriguingUnits.topkShares(delta, ks, basis or null) the top-k shares.
 *   IntriguingUnits.layerChange(model, x, xAdv, layer)   delta of hidden layer `layer` (1-based).
 *
 * Tested under node against the Python engine (tests/test_perturbation_units.py).
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory(root);
  } else {
    root.IntriguingUnits = factory(root);
  }
}(typeof globalThis !== "undefined" ? globalThis : (typeof self !== "undefined" ? self : this),
  function (root) {
    "use strict";

    var SIDE = 28;
    var N_CLASSES = 10;

    function fail(message) { throw new RangeError(message); }

    function engine() {
      if (!root.IntriguingAttack) { fail("intriguing-attack.js must be loaded first"); }
      return root.IntriguingAttack;
    }

    /* ------------------------------------------------------------------------------------ */
    /* Arithmetic (checked against intriguing.engine.perturbation_units)                     */

    /** A seeded generator of standard normal numbers: mulberry32 and Box-Muller. */
    function gaussian(seed) {
      if (!(Number.isInteger(seed) && seed >= 0)) { fail("seed must be an integer >= 0, got " + seed); }
      var a = (seed ^ 0x9e3779b9) >>> 0;
      var spare = null;
      function uniform() {
        a = (a + 0x6d2b79f5) >>> 0;
        var t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
      }
      return function () {
        if (spare !== null) { var s = spare; spare = null; return s; }
        var r = Math.sqrt(-2 * Math.log(uniform()));
        var th = 2 * Math.PI * uniform();
        spare = r * Math.sin(th);
        return r * Math.cos(th);
      };
    }

    /** A random orthonormal basis of R^d (rows), Float64Array d*d: seeded Gaussian vectors,
        modified Gram-Schmidt applied twice (orthonormal to rounding). */
    function randomBasis(d, seed) {
      if (!(Number.isInteger(d) && d > 0)) { fail("d must be a positive integer, got " + d); }
      var g = gaussian(seed);
      var B = new Float64Array(d * d);
      for (var i = 0; i < d * d; i++) { B[i] = g(); }
      for (var r = 0; r < d; r++) {
        var row = r * d;
        for (var pass = 0; pass < 2; pass++) {
          for (var q = 0; q < r; q++) {
            var oq = q * d;
            var dot = 0;
            for (var j = 0; j < d; j++) { dot += B[oq + j] * B[row + j]; }
            for (j = 0; j < d; j++) { B[row + j] -= dot * B[oq + j]; }
          }
        }
        var nn = 0;
        for (j = 0; j < d; j++) { nn += B[row + j] * B[row + j]; }
        nn = Math.sqrt(nn);
        if (!(nn > 1e-12)) { fail("random vectors were dependent (seed " + seed + ")"); }
        for (j = 0; j < d; j++) { B[row + j] /= nn; }
      }
      return B;
    }

    function checkDelta(delta) {
      if (!delta || !(delta.length > 0)) { fail("delta must be a non-empty array"); }
      var ss = 0;
      for (var i = 0; i < delta.length; i++) {
        if (!isFinite(delta[i])) { fail("delta must hold finite numbers, got " + delta[i] + " at " + i); }
        ss += delta[i] * delta[i];
      }
      if (!(ss > 0)) { fail("delta must not be zero (an unchanged layer has no share to split)"); }
      return ss;
    }

    /** Coordinates of delta in a basis (rows), or delta itself for the unit basis (null). */
    function coordinates(delta, basis) {
      var d = delta.length;
      var out = new Float64Array(d);
      if (basis === null || basis === undefined) { out.set(delta); return out; }
      if (basis.length !== d * d) { fail("basis must hold " + d + " x " + d + " numbers, got " + basis.length); }
      for (var i = 0; i < d; i++) {
        var s = 0;
        var row = i * d;
        for (var j = 0; j < d; j++) { s += basis[row + j] * delta[j]; }
        out[i] = s;
      }
      return out;
    }

    /** The share of |delta|^2 on each coordinate of the basis, largest first (sums to 1). */
    function sortedEnergy(delta, basis) {
      checkDelta(delta);
      var c = coordinates(delta, basis);
      var total = 0;
      for (var i = 0; i < c.length; i++) { c[i] = c[i] * c[i]; total += c[i]; }
      for (i = 0; i < c.length; i++) { c[i] /= total; }
      return Float64Array.from(c).sort().reverse();
    }

    function checkKs(ks, d) {
      if (!Array.isArray(ks) || !ks.length) { fail("ks must be a non-empty array"); }
      ks.forEach(function (k) {
        if (!(Number.isInteger(k) && k >= 1 && k <= d)) { fail("ks must hold integers in 1.." + d + ", got " + k); }
      });
    }

    /** The share of |delta|^2 carried by the k largest coordinates, for each k of ks. */
    function topkShares(delta, ks, basis) {
      checkKs(ks, delta.length);
      var e = sortedEnergy(delta, basis);
      var cum = new Float64Array(e.length);
      var s = 0;
      for (var i = 0; i < e.length; i++) { s += e[i]; cum[i] = s; }
      return ks.map(function (k) { return cum[k - 1]; });
    }

    /** The expected top-k share in a uniformly random basis (Monte Carlo, seeded): the
        coordinates of delta / |delta| there are a uniform point g / |g| of the sphere. */
    function expectedShares(d, ks, draws, seed) {
      checkKs(ks, d);
      var n = draws || 4000;
      var g = gaussian(seed === undefined ? 12345 : seed);
      var v = new Float64Array(d);
      var acc = ks.map(function () { return 0; });
      for (var t = 0; t < n; t++) {
        for (var i = 0; i < d; i++) { v[i] = g(); }
        var sh = topkShares(v, ks, null);
        for (var j = 0; j < ks.length; j++) { acc[j] += sh[j]; }
      }
      return acc.map(function (a) { return a / n; });
    }

    /** The output of hidden layer `layer` (1-based: 1 is the first hidden layer) for x. */
    function layerOutput(model, x, layer) {
      var L = model.sizes.length - 1;
      if (!(Number.isInteger(layer) && layer >= 1 && layer < L)) {
        fail("layer must be a hidden layer in 1.." + (L - 1) + ", got " + layer);
      }
      engine().forward(model, x);
      return Float64Array.from(model._acts[layer]);
    }

    /** delta = phi(xAdv) - phi(x) of hidden layer `layer` (1-based). */
    function layerChange(model, x, xAdv, layer) {
      var a = layerOutput(model, x, layer);
      var b = layerOutput(model, xAdv, layer);
      for (var i = 0; i < a.length; i++) { b[i] -= a[i]; }
      return b;
    }

    /* ------------------------------------------------------------------------------------ */
    /* The panel                                                                              */

    var CSS = [
      ".intriguing-units-live { border: 1px solid #ddd; border-radius: 4px; padding: 0.6rem;",
      "  font-size: 0.85rem; line-height: 1.3; max-width: 100%; box-sizing: border-box; }",
      ".intriguing-units-live .iul-row { display: flex; flex-wrap: wrap; gap: 0.4rem 1rem;",
      "  align-items: center; margin-bottom: 0.4rem; }",
      ".intriguing-units-live input[type=number] { width: 4.5rem; }",
      ".intriguing-units-live input[type=range] { width: 12rem; max-width: 60vw; }",
      ".intriguing-units-live canvas.iul-digit { image-rendering: pixelated; width: 84px;",
      "  height: 84px; border: 1px solid #ccc; background: #000; }",
      ".intriguing-units-live canvas.iul-plot { width: 100%; max-width: 420px; height: auto;",
      "  border: 1px solid #eee; }",
      ".intriguing-units-live figure { margin: 0; text-align: center; }",
      ".intriguing-units-live figcaption { font-size: 0.75rem; color: #555; }",
      ".intriguing-units-live table { border-collapse: collapse; }",
      ".intriguing-units-live td, .intriguing-units-live th { padding: 0 0.5rem; text-align: right; }",
      ".intriguing-units-live th { font-weight: 600; border-bottom: 1px solid #ccc; }",
      ".intriguing-units-live .iul-note { color: #666; }"
    ].join("\n");
    var UNIT_COLOR = "#1f77b4";
    var RANDOM_COLOR = "#d62728";

    function store() { return root.IntriguingAttackData || {models: {}}; }

    function paintGrey(canvas, x) {
      var ctx = canvas.getContext("2d");
      var img = ctx.createImageData(SIDE, SIDE);
      for (var i = 0; i < SIDE * SIDE; i++) {
        var v = Math.round(Math.min(1, Math.max(0, x[i])) * 255);
        img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v;
        img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
    }

    /** Sorted magnitudes |coordinate| / |delta| (sqrt of the energy shares), both bases. */
    function drawPlot(canvas, unit, random, ks) {
      var ctx = canvas.getContext("2d");
      var W = canvas.width;
      var H = canvas.height;
      var left = 40;
      var bottom = 28;
      var top = 10;
      var right = 10;
      ctx.clearRect(0, 0, W, H);
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, W, H);
      var d = unit.length;
      var peak = Math.sqrt(Math.max(unit[0], random[0])) || 1;
      function X(i) { return left + (W - left - right) * (i + 0.5) / d; }
      function Y(v) { return H - bottom - (H - bottom - top) * v / peak; }
      ctx.strokeStyle = "#999";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(left, top); ctx.lineTo(left, H - bottom); ctx.lineTo(W - right, H - bottom);
      ctx.stroke();
      ctx.setLineDash([3, 3]);
      ks.forEach(function (k) {
        ctx.beginPath(); ctx.moveTo(X(k - 0.5), top); ctx.lineTo(X(k - 0.5), H - bottom); ctx.stroke();
      });
      ctx.setLineDash([]);
      [[random, RANDOM_COLOR], [unit, UNIT_COLOR]].forEach(function (pair) {
        var e = pair[0];
        ctx.strokeStyle = pair[1];
        ctx.lineWidth = 1.8;
        ctx.beginPath();
        for (var i = 0; i < d; i++) {
          var y = Y(Math.sqrt(e[i]));
          if (i === 0) { ctx.moveTo(X(i), y); } else { ctx.lineTo(X(i), y); }
        }
        ctx.stroke();
      });
      ctx.fillStyle = "#333";
      ctx.font = "11px sans-serif";
      ctx.fillText("rank of the coordinate (1 = largest), dashed: k", left, H - 8);
      ctx.save();
      ctx.translate(12, H - bottom);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText("|coordinate| / |delta|", 0, 0);
      ctx.restore();
      ctx.fillStyle = UNIT_COLOR; ctx.fillText("units", W - 120, top + 12);
      ctx.fillStyle = RANDOM_COLOR; ctx.fillText("random basis", W - 120, top + 26);
    }

    function fmtC(c) {
      return c >= 0.01 && c < 1000 ? String(Number(c.toPrecision(3))) : c.toExponential(2);
    }

    function pct(v) { return (100 * v).toFixed(1) + "%"; }

    function mount(el) {
      if (!el || el.intriguingUnits) { return el && el.intriguingUnits; }
      if (!document.getElementById("intriguing-units-css")) {
        var style = document.createElement("style");
        style.id = "intriguing-units-css";
        style.textContent = CSS;
        document.head.appendChild(style);
      }
      var cfg = JSON.parse(el.getAttribute("data-config"));
      var q = function (role) { return el.querySelector('[data-role="' + role + '"]'); };
      var ui = {
        index: q("image-index"), prev: q("image-prev"), next: q("image-next"),
        random: q("image-random"), label: q("label"), target: q("target"), logc: q("logc"),
        cValue: q("c-value"), seed: q("seed"), original: q("original"),
        adversarial: q("adversarial"), plot: q("plot"), shares: q("shares"),
        predicted: q("predicted"), distortion: q("distortion"), change: q("change"),
        message: q("message"), timing: q("timing")
      };
      var state = {index: cfg.image || 0, target: cfg.target, c: Math.pow(10, Number(ui.logc.value)),
                   seed: cfg.seed || 0, result: null, runs: 0, error: null, readyAt: null};
      el.intriguingUnits = state;
      function say(text) {
        ui.message.hidden = !text;
        ui.message.textContent = text || "";
      }
      var entry = store().models[cfg.model];
      if (!root.IntriguingAttack || !store().images || !entry) {
        say("The data of this panel did not load (the book's attack-data folder is missing: " +
            "build the book with `make book`).");
        state.error = "no data";
        return state;
      }
      var IA = engine();
      var model = IA.decodeModel(entry);
      var images = IA.decodeImages(store().images);
      var layer = cfg.layer;
      var d = model.sizes[layer];
      var ks = cfg.ks.filter(function (k) { return k <= d; });
      var expected = expectedShares(d, ks);
      var bases = {};
      function basis(seed) {
        if (!bases[seed]) { bases[seed] = randomBasis(d, seed); }
        return bases[seed];
      }
      ui.index.max = String(images.n - 1);

      function run() {
        var t0 = (root.performance && root.performance.now) ? root.performance.now() : Date.now();
        var x = images.image(state.index);
        var label = images.labels ? images.labels[state.index] : null;
        var pred = IA.predict(model, x);
        var target = state.target;
        if (target === null || target === undefined || target === pred) {
          target = (pred + 1) % N_CLASSES;
          state.target = target;
          ui.target.value = String(target);
        }
        ui.label.textContent = (label === null ? "" : "label " + label + ", ") + "model says " + pred;
        ui.cValue.textContent = fmtC(state.c);
        var res = IA.solve(model, x, target, state.c);
        var delta = layerChange(model, x, res.adversarial, layer);
        var norm = 0;
        for (var i = 0; i < d; i++) { norm += delta[i] * delta[i]; }
        norm = Math.sqrt(norm);
        paintGrey(ui.original, x);
        paintGrey(ui.adversarial, res.adversarial);
        ui.predicted.textContent = String(res.predicted) + (res.success ? " (the target)" : " (not the target)");
        ui.distortion.textContent = res.distortion.toFixed(4);
        ui.change.textContent = norm.toPrecision(3);
        var out = {solve: res, delta: delta, norm: norm, target: target, unit: null, random: null,
                   shares: []};
        if (norm > 0) {
          var B = basis(state.seed);
          out.unit = sortedEnergy(delta, null);
          out.random = sortedEnergy(delta, B);
          var su = topkShares(delta, ks, null);
          var sr = topkShares(delta, ks, B);
          out.shares = ks.map(function (k, j) {
            return {k: k, unit: su[j], random: sr[j], expected: expected[j]};
          });
          drawPlot(ui.plot, out.unit, out.random, ks);
          var rows = ["<tr><th>top k</th><th>units</th><th>random basis</th>" +
                      "<th>expected, random</th></tr>"];
          out.shares.forEach(function (s) {
            rows.push("<tr><td>" + s.k + "</td><td>" + pct(s.unit) + "</td><td>" + pct(s.random) +
                      "</td><td>" + pct(s.expected) + "</td></tr>");
          });
          ui.shares.innerHTML = rows.join("");
          say("");
        } else {
          ui.shares.innerHTML = "";
          ui.plot.getContext("2d").clearRect(0, 0, ui.plot.width, ui.plot.height);
          say("The attack left the layer unchanged (the model already gives the target).");
        }
        state.result = out;
        state.runs += 1;
        var ms = ((root.performance && root.performance.now) ? root.performance.now() : Date.now()) - t0;
        ui.timing.textContent = "one solve and the layer's change in " + ms.toFixed(0) + " ms";
        if (state.readyAt === null) { state.readyAt = Date.now(); }
      }

      var queued = false;
      function schedule() {
        if (queued) { return; }
        queued = true;
        setTimeout(function () {
          queued = false;
          try { run(); state.error = null; } catch (err) { state.error = String(err); say(String(err.message || err)); }
        }, 0);
      }
      function setIndex(i) {
        state.index = Math.max(0, Math.min(images.n - 1, i | 0));
        ui.index.value = String(state.index);
        schedule();
      }
      ui.index.addEventListener("change", function () { setIndex(Number(ui.index.value)); });
      ui.prev.addEventListener("click", function () { setIndex(state.index - 1); });
      ui.next.addEventListener("click", function () { setIndex(state.index + 1); });
      ui.random.addEventListener("click", function () { setIndex(Math.floor(Math.random() * images.n)); });
      ui.target.addEventListener("change", function () { state.target = Number(ui.target.value); schedule(); });
      ui.logc.addEventListener("input", function () {
        state.c = Math.pow(10, Number(ui.logc.value));
        ui.cValue.textContent = fmtC(state.c);
        schedule();
      });
      ui.seed.addEventListener("change", function () {
        var s = Number(ui.seed.value);
        state.seed = Number.isInteger(s) && s >= 0 ? s : 0;
        ui.seed.value = String(state.seed);
        schedule();
      });
      if (state.target !== null && state.target !== undefined) { ui.target.value = String(state.target); }
      schedule();
      return state;
    }

    return {
      gaussian: gaussian,
      randomBasis: randomBasis,
      coordinates: coordinates,
      sortedEnergy: sortedEnergy,
      topkShares: topkShares,
      expectedShares: expectedShares,
      layerOutput: layerOutput,
      layerChange: layerChange,
      mount: mount
    };
  }));
