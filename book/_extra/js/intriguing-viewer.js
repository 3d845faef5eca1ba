/*
 * intriguing-viewer.js: the live attack viewer of the rendered book (no kernel, no network).
 *
 * Why: Szegedy et al. (2014, arXiv:1312.6199, section 4.1) find an adversarial example by
 * minimising c |r|^2 + CE(f(x + r), l) over the box [0, 1]^n. The book's chapters precompute
 * frames of that problem for a few images; this file lets a reader of the static book pose it
 * for any of the shipped test images, or a digit drawn on a 28x28 pad, any model, any target
 * and any c, and see the answer of intriguing-attack.js (the browser port of attacks.lbfgs):
 * original, adversarial example, magnified difference, distortion and class probabilities, and
 * the minimum-distortion example of the full search over c. The "Transferability" variant also
 * shows what every exported zoo model predicts for the adversarial image (section 4.3), with
 * float16 copies of the models it only predicts with (half the bytes; export-web measures how
 * often they give the float32 class, and the table says so).
 *
 * The markup comes from intriguing.display.browser_viewer (Python), one element per viewer
 * with class "intriguing-live" and a data-config attribute; that module also writes the
 * <script src> tags (engine, this file, the exported data) with paths relative to the page, so
 * the viewer works opened from disk: everything arrives as scripts that assign to globals, and
 * further models are loaded the same way (an added <script> element), never with fetch/XHR.
 *
 *   IntriguingViewer.mount(element)   wires one viewer; element.intriguing holds its state
 *                                     (source, index, pixels, model, target, c, mode, result,
 *                                     readyAt) for tests and curious readers.
 */
(function (root) {
  "use strict";

  var SIDE = 28;
  var N_CLASSES = 10;
  var GREY = [128, 128, 128];
  var RED = [202, 0, 32];
  var BLUE = [5, 113, 176];
  var CSS = [
    ".intriguing-live { border: 1px solid #ddd; border-radius: 4px; padding: 0.6rem;",
    "  font-size: 0.85rem; line-height: 1.3; max-width: 100%; box-sizing: border-box; }",
    ".intriguing-live .ivl-row { display: flex; flex-wrap: wrap; gap: 0.4rem 1rem;",
    "  align-items: center; margin-bottom: 0.4rem; }",
    ".intriguing-live label { white-space: nowrap; }",
    ".intriguing-live input[type=number] { width: 4.5rem; }",
    ".intriguing-live input[type=range] { width: 12rem; max-width: 60vw; vertical-align: middle; }",
    ".intriguing-live canvas { image-rendering: pixelated; width: 112px; height: 112px;",
    "  border: 1px solid #ccc; background: #000; }",
    ".intriguing-live canvas.ivl-pad { cursor: crosshair; touch-action: none; }",
    ".intriguing-live figure { margin: 0; text-align: center; }",
    ".intriguing-live figcaption { font-size: 0.75rem; color: #555; }",
    ".intriguing-live .ivl-result { font-weight: 600; }",
    ".intriguing-live .ivl-note { color: #666; }",
    ".intriguing-live table { border-collapse: collapse; }",
    ".intriguing-live td, .intriguing-live th { padding: 0 0.4rem; text-align: left;",
    "  white-space: nowrap; }",
    ".intriguing-live th { font-weight: 600; border-bottom: 1px solid #ccc; }",
    ".intriguing-live .bar { display: inline-block; width: 5rem; height: 0.6rem;",
    "  background: #e6e6e6; vertical-align: middle; }",
    ".intriguing-live .bar i { display: block; height: 100%; background: #888; }",
    ".intriguing-live tr.hit .bar i { background: #ca0020; }",
    ".intriguing-live tr.hit .pred { color: #ca0020; font-weight: 700; }",
    ".intriguing-live tr.miss .pred { color: #e66101; font-weight: 700; }",
    ".intriguing-live .ivl-tables { display: flex; flex-wrap: wrap; gap: 0.6rem 1.5rem; }",
    ".intriguing-live .ivl-scroll { overflow-x: auto; max-width: 100%; }"
  ].join("\n");

  function now() { return root.performance && root.performance.now ? root.performance.now() : Date.now(); }

  function store() { return root.IntriguingAttackData || {models: {}}; }

  /* -------------------------------------------------------------------------------------- */
  /* Loading data scripts (an added <script src>: allowed from file://, unlike fetch)        */

  var pending = {};  // src -> [callback(error)]

  function loadScript(src, done) {
    if (pending[src]) { pending[src].push(done); return; }
    pending[src] = [done];
    var s = document.createElement("script");
    s.src = src;
    s.async = true;
    function finish(err) {
      var cbs = pending[src];
      delete pending[src];
      cbs.forEach(function (cb) { cb(err); });
    }
    s.onload = function () { finish(null); };
    s.onerror = function () { finish(new Error("could not load " + src)); };
    document.head.appendChild(s);
  }

  var decodedModels = {};
  var decodedPredictors = {};
  var decodedImages = null;

  function images() {
    if (!decodedImages) { decodedImages = root.IntriguingAttack.decodeImages(store().images); }
    return decodedImages;
  }

  /** The index's record of an exported model (file, sizes, bytes, predictor), or null. */
  function entryOf(name) {
    var entries = (store().index && store().index.models) || [];
    for (var i = 0; i < entries.length; i++) { if (entries[i].name === name) { return entries[i]; } }
    return null;
  }

  function fileOf(name) {
    var e = entryOf(name);
    return e ? e.file : null;
  }

  /** The decoded model, or null when it still has to be loaded (see withModel). */
  function modelNow(name) {
    if (decodedModels[name]) { return decodedModels[name]; }
    var entry = store().models[name];
    if (!entry) { return null; }
    decodedModels[name] = root.IntriguingAttack.decodeModel(entry);
    return decodedModels[name];
  }

  /** A model to predict with: the float32 model if loaded, else its float16 copy if loaded. */
  function predictorNow(name) {
    var m = modelNow(name);
    if (m) { return m; }
    if (decodedPredictors[name]) { return decodedPredictors[name]; }
    var entry = (store().predictors || {})[name];
    if (!entry) { return null; }
    decodedPredictors[name] = root.IntriguingAttack.decodeModel(entry);
    return decodedPredictors[name];
  }

  /** The script a predictor loads from, and its bytes (the float16 copy when exported). */
  function predictorSource(name) {
    var e = entryOf(name);
    if (!e) { return null; }
    return e.predictor ? {file: e.predictor.file, bytes: e.predictor.bytes}
                       : {file: e.file, bytes: e.bytes};
  }

  /** The sentence under the transfer table: how often the float16 copies agree (export-web). */
  function agreementNote() {
    var agree = 0, inputs = 0, adv = 0;
    ((store().index && store().index.models) || []).forEach(function (e) {
      if (!e.predictor || !e.predictor.agreement) { return; }
      agree += e.predictor.agreement.agree;
      inputs += e.predictor.agreement.inputs;
      adv += (e.predictor.checked_on || {}).adversarial_examples || 0;
    });
    if (!inputs) { return ""; }
    var share = 100 * agree / inputs;
    return "Models not attacked here predict with float16 copies of their weights (half the " +
      "bytes). Checked when the book was built on the shipped test images" +
      (adv ? " and on the other Table 1 models' adversarial examples" : "") +
      ", the copies give the float32 model's class on " + agree + " of " + inputs +
      " model\u2013input pairs (" + (share === 100 ? "100" : share.toFixed(2)) + "%).";
  }

  function withModel(dataUrl, name, done) {
    var m = modelNow(name);
    if (m) { done(null, m); return; }
    var file = fileOf(name);
    if (!file) { done(new Error("no exported model " + name)); return; }
    loadScript(dataUrl + file, function (err) {
      if (err) { done(err); return; }
      var mm = modelNow(name);
      done(mm ? null : new Error("the script of " + name + " held no model"), mm);
    });
  }

  /* -------------------------------------------------------------------------------------- */
  /* Drawing                                                                                 */

  function paint(canvas, rgbAt) {
    var ctx = canvas.getContext("2d");
    var img = ctx.createImageData(SIDE, SIDE);
    for (var i = 0; i < SIDE * SIDE; i++) {
      var c = rgbAt(i);
      img.data[4 * i] = c[0];
      img.data[4 * i + 1] = c[1];
      img.data[4 * i + 2] = c[2];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function paintGrey(canvas, x) {
    paint(canvas, function (i) {
      var v = Math.round(Math.min(1, Math.max(0, x[i])) * 255);
      return [v, v, v];
    });
  }

  /** The magnified difference, coloured as display.viewers.strip_array; returns the gain. */
  function paintDifference(canvas, x, adv) {
    var peak = 0;
    for (var i = 0; i < x.length; i++) { peak = Math.max(peak, Math.abs(adv[i] - x[i])); }
    var gain = peak > 1e-6 ? 1 / peak : 0;
    paint(canvas, function (j) {
      var u = Math.max(-1, Math.min(1, (adv[j] - x[j]) * gain));
      var to = u >= 0 ? RED : BLUE;
      var a = Math.abs(u);
      return [0, 1, 2].map(function (k) { return Math.round(GREY[k] + a * (to[k] - GREY[k])); });
    });
    return gain;
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (ch) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch];
    });
  }

  function fmtC(c) {
    if (!isFinite(c)) { return "none needed"; }
    return c >= 0.01 && c < 1000 ? String(Number(c.toPrecision(3))) : c.toExponential(2);
  }

  /* -------------------------------------------------------------------------------------- */
  /* One viewer                                                                              */

  function mount(el) {
    if (!el || el.intriguing) { return el && el.intriguing; }
    if (!document.getElementById("intriguing-live-css")) {
      var style = document.createElement("style");
      style.id = "intriguing-live-css";
      style.textContent = CSS;
      document.head.appendChild(style);
    }
    var cfg = JSON.parse(el.getAttribute("data-config"));
    var dataUrl = cfg.root + cfg.data + "/";
    var q = function (role) { return el.querySelector('[data-role="' + role + '"]'); };
    var ui = {
      index: q("image-index"), prev: q("image-prev"), next: q("image-next"),
      random: q("image-random"), source: q("source"), model: q("model"), target: q("target"),
      logc: q("logc"), cValue: q("c-value"), search: q("search"), original: q("original"),
      adversarial: q("adversarial"), difference: q("difference"), pad: q("pad"),
      padClear: q("pad-clear"), padCopy: q("pad-copy"), predicted: q("predicted"),
      distortion: q("distortion"), outcome: q("outcome"), usedC: q("used-c"),
      timing: q("timing"), probs: q("probs"), transfer: q("transfer"),
      transferLoad: q("transfer-load"), message: q("message")
    };
    var state = {
      source: "test", index: cfg.image || 0, pixels: null, label: null,
      model: cfg.model, target: cfg.target, c: Math.pow(10, Number(ui.logc.value)),
      mode: "solve", result: null, readyAt: null, busy: false, runs: 0, error: null,
      transferLoaded: false,
      pad: new Float64Array(SIDE * SIDE)
    };
    el.intriguing = state;

    function say(text) {
      ui.message.textContent = text;
      ui.message.hidden = !text;
    }

    var IA = root.IntriguingAttack;
    var d = store();
    if (!IA || !d.index || !d.images) {
      say("The attack's data is missing from this build of the book (make book writes it " +
          "with `python -m intriguing export-web`).");
      state.error = "missing data";
      return state;
    }
    var imgs = images();
    ui.index.max = String(imgs.n - 1);
    var exported = d.index.models.map(function (m) { return m.name; });
    var transferModels = cfg.transfer ? exported : [];

    function setSource(kind, index) {
      state.source = kind;
      if (kind === "test") {
        state.index = Math.max(0, Math.min(imgs.n - 1, index | 0));
        state.pixels = imgs.image(state.index);
        state.label = imgs.labels ? imgs.labels[state.index] : null;
        ui.index.value = String(state.index);
        ui.source.textContent = "test image " + state.index +
          (state.label === null ? "" : " (label " + state.label + ")");
      } else {
        state.pixels = Float64Array.from(state.pad);
        state.label = null;
        ui.source.textContent = "your drawing";
      }
    }

    function showProbs(model, probs, target) {
      var pred = 0;
      for (var k = 1; k < probs.length; k++) { if (probs[k] > probs[pred]) { pred = k; } }
      var rows = "";
      for (k = 0; k < probs.length; k++) {
        var cls = k === pred ? (k === target ? "hit" : "miss") : "";
        rows += '<tr class="' + cls + '"><td class="pred">' + k + "</td>" +
          '<td><span class="bar"><i style="width:' + (100 * probs[k]).toFixed(1) + '%"></i>' +
          "</span> " + probs[k].toFixed(3) + "</td></tr>";
      }
      ui.probs.innerHTML = "<caption>" + escapeHtml(model) + ": p(class | adversarial)" +
        "</caption><tr><th>class</th><th>probability</th></tr>" + rows;
    }

    /** Every exported model's prediction of the adversarial image (section 4.3). Models not
        loaded yet show a dash until the reader loads them (the button says how many bytes). */
    function showTransfer(adv, x, target) {
      if (!ui.transfer) { return; }
      var label = state.label;
      var rows = "";
      var missing = 0;
      transferModels.forEach(function (name) {
        var m = predictorNow(name);
        var half = m && m !== modelNow(name);
        var who = escapeHtml(name) +
          (name === state.model ? ' <span class="ivl-note">(attacked)</span>' : "") +
          (half ? ' <span class="ivl-note">(float16)</span>' : "");
        if (!m) {
          missing++;
          rows += '<tr data-model="' + escapeHtml(name) + '"><td>' + who +
            '</td><td colspan="3" class="ivl-note">not loaded</td></tr>';
          return;
        }
        var before = IA.predict(m, x);
        var p = IA.probabilities(m, adv);
        var pred = 0;
        for (var k = 1; k < p.length; k++) { if (p[k] > p[pred]) { pred = k; } }
        var cls = pred === target ? "hit" : (pred === before ? "ok" : "miss");
        rows += '<tr class="' + cls + '" data-model="' + escapeHtml(name) + '"><td>' + who +
          '</td><td>' + before + '</td><td class="pred">' + pred + "</td>" +
          '<td><span class="bar"><i style="width:' + (100 * p[target]).toFixed(1) + '%"></i>' +
          "</span> " + p[target].toFixed(2) + "</td></tr>";
      });
      var note = agreementNote();
      ui.transfer.innerHTML = "<caption>every model on the adversarial image" +
        (label === null ? "" : " (label " + label + ")") + "</caption><tr><th>model</th>" +
        "<th>clean</th><th>adversarial</th><th>p(target " + target + ")</th></tr>" + rows +
        (note ? '<tr><td colspan="4" class="ivl-note" style="white-space: normal">' +
          escapeHtml(note) + "</td></tr>" : "");
      if (ui.transferLoad) {
        var bytes = 0;
        transferModels.forEach(function (n) {
          var src = predictorSource(n);
          if (!predictorNow(n) && src) { bytes += src.bytes; }
        });
        ui.transferLoad.hidden = missing === 0;
        ui.transferLoad.textContent = "load every model (" + (bytes / 1e6).toFixed(1) + " MB)";
      }
    }

    /** Load every exported model's predictor (its float16 copy), one script after another,
        then redraw the table. */
    function loadEveryModel() {
      var names = transferModels.filter(function (n) { return !predictorNow(n); });
      ui.transferLoad.disabled = true;
      (function next(i) {
        if (i >= names.length) {
          ui.transferLoad.disabled = false;
          state.transferLoaded = true;
          if (state.result) { showTransfer(state.result.adversarial, state.pixels, state.target); }
          return;
        }
        var src = predictorSource(names[i]);
        if (!src) { say("no exported model " + names[i]); ui.transferLoad.disabled = false; return; }
        loadScript(dataUrl + src.file, function (err) {
          if (err || !predictorNow(names[i])) {
            say(err ? String(err.message || err) : "the script of " + names[i] + " held no model");
            ui.transferLoad.disabled = false;
            return;
          }
          next(i + 1);
        });
      }(0));
    }

    function show(model, res) {
      var x = state.pixels;
      paintGrey(ui.original, x);
      paintGrey(ui.adversarial, res.adversarial);
      var gain = paintDifference(ui.difference, x, res.adversarial);
      ui.predicted.textContent = String(res.predicted);
      ui.distortion.textContent = res.distortion.toPrecision(4);
      ui.usedC.textContent = fmtC(res.c);
      var before = IA.predict(model, x);
      ui.outcome.textContent = before === state.target
        ? "the model already predicts " + state.target + ": nothing to change"
        : (res.success ? "reaches target " + state.target : "does not reach target " + state.target);
      ui.timing.textContent = (state.mode === "search" ? "full search over c: " : "one solve: ") +
        res.evaluations + " evaluations in " + res.milliseconds.toFixed(1) + " ms" +
        (gain > 0 ? "; difference magnified " + gain.toFixed(0) + "x" : "");
      ui.adversarial.setAttribute("aria-label", "adversarial example: " + state.model +
        " predicts " + res.predicted + ", distortion " + res.distortion.toPrecision(3));
      showProbs(state.model, res.probabilities, state.target);
      showTransfer(res.adversarial, x, state.target);
    }

    function run() {
      state.busy = true;
      withModel(dataUrl, state.model, function (err, model) {
        if (err) { say(String(err.message || err)); state.busy = false; return; }
        say("");
        var res = state.mode === "search"
          ? IA.search(model, state.pixels, state.target)
          : IA.solve(model, state.pixels, state.target, state.c);
        state.result = res;
        state.runs += 1;
        if (state.mode === "search" && isFinite(res.c) && res.c > 0) {
          // The slider follows the search: one more step right of it and the solve fails.
          ui.logc.value = String(Math.log10(res.c));
          readC();
        }
        show(model, res);
        state.busy = false;
        if (state.readyAt === null) { state.readyAt = now(); el.setAttribute("data-ready", "1"); }
        el.setAttribute("data-runs", String(state.runs));
      });
    }

    var scheduled = false;
    function schedule(mode) {
      state.mode = mode || "solve";
      if (scheduled) { return; }
      scheduled = true;
      state.busy = true;
      if (state.mode === "search") { ui.timing.textContent = "searching over c\u2026"; }
      setTimeout(function () { scheduled = false; run(); }, 0);
    }

    function readC() {
      state.c = Math.pow(10, Number(ui.logc.value));
      ui.cValue.textContent = fmtC(state.c);
    }

    // Controls.
    ui.index.addEventListener("change", function () {
      setSource("test", Number(ui.index.value)); schedule();
    });
    ui.prev.addEventListener("click", function () { setSource("test", state.index - 1); schedule(); });
    ui.next.addEventListener("click", function () { setSource("test", state.index + 1); schedule(); });
    ui.random.addEventListener("click", function () {
      setSource("test", Math.floor(Math.random() * imgs.n)); schedule();
    });
    ui.model.addEventListener("change", function () { state.model = ui.model.value; schedule(); });
    ui.target.addEventListener("change", function () {
      state.target = Number(ui.target.value); schedule();
    });
    ui.logc.addEventListener("input", function () { readC(); schedule(); });
    ui.search.addEventListener("click", function () { schedule("search"); });
    if (ui.transferLoad) { ui.transferLoad.addEventListener("click", loadEveryModel); }

    // The drawing pad: a soft round brush; a stroke's end attacks the drawing.
    var drawing = false;
    var last = null;
    function paintPad() { paintGrey(ui.pad, state.pad); }
    function dab(px, py) {
      for (var yy = Math.floor(py - 2); yy <= Math.ceil(py + 2); yy++) {
        for (var xx = Math.floor(px - 2); xx <= Math.ceil(px + 2); xx++) {
          if (xx < 0 || yy < 0 || xx >= SIDE || yy >= SIDE) { continue; }
          var dist = Math.sqrt((xx + 0.5 - px) * (xx + 0.5 - px) + (yy + 0.5 - py) * (yy + 0.5 - py));
          var ink = Math.max(0, 1 - dist / 1.8);
          var i = yy * SIDE + xx;
          // Pixels stay multiples of 1/255, like MNIST's.
          state.pad[i] = Math.round(Math.min(1, Math.max(state.pad[i], ink)) * 255) / 255;
        }
      }
    }
    function padPoint(ev) {
      var r = ui.pad.getBoundingClientRect();
      return [(ev.clientX - r.left) / r.width * SIDE, (ev.clientY - r.top) / r.height * SIDE];
    }
    function stroke(p) {
      if (last) {
        var dx = p[0] - last[0];
        var dy = p[1] - last[1];
        var steps = Math.max(1, Math.ceil(Math.sqrt(dx * dx + dy * dy) / 0.5));
        for (var s = 1; s <= steps; s++) { dab(last[0] + dx * s / steps, last[1] + dy * s / steps); }
      } else {
        dab(p[0], p[1]);
      }
      last = p;
      paintPad();
    }
    ui.pad.addEventListener("pointerdown", function (ev) {
      drawing = true;
      last = null;
      if (ui.pad.setPointerCapture) { try { ui.pad.setPointerCapture(ev.pointerId); } catch (e) { /* ok */ } }
      stroke(padPoint(ev));
      ev.preventDefault();
    });
    ui.pad.addEventListener("pointermove", function (ev) {
      if (drawing) { stroke(padPoint(ev)); ev.preventDefault(); }
    });
    function endStroke() {
      if (!drawing) { return; }
      drawing = false;
      last = null;
      setSource("drawing");
      schedule();
    }
    ui.pad.addEventListener("pointerup", endStroke);
    ui.pad.addEventListener("pointercancel", endStroke);
    ui.padClear.addEventListener("click", function () {
      state.pad.fill(0);
      paintPad();
      if (state.source === "drawing") { setSource("drawing"); schedule(); }
    });
    ui.padCopy.addEventListener("click", function () {
      state.pad.set(imgs.image(state.index));
      paintPad();
      setSource("drawing");
      schedule();
    });

    // Start: the configured image; a target other than the model's answer if none was given.
    setSource("test", state.index);
    paintPad();
    readC();
    withModel(dataUrl, state.model, function (err, model) {
      if (err) { say(String(err.message || err)); return; }
      if (state.target === null || state.target === undefined) {
        state.target = (IA.predict(model, state.pixels) + 1) % N_CLASSES;
      }
      ui.target.value = String(state.target);
      ui.model.value = state.model;
      el.setAttribute("data-mounted", "1");
      state.mode = cfg.start === "solve" ? "solve" : "search";
      run();
    });
    return state;
  }

  function mountAll() {
    var els = document.querySelectorAll(".intriguing-live");
    for (var i = 0; i < els.length; i++) { mount(els[i]); }
  }

  root.IntriguingViewer = {VERSION: 1, mount: mount, mountAll: mountAll, loadScript: loadScript};
}(typeof globalThis !== "undefined" ? globalThis : this));
