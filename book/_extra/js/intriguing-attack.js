/*
 * intriguing-attack.js: the paper's box-constrained L-BFGS attack, in the reader's browser.
 *
 * Why: Szegedy et al. (2014, arXiv:1312.6199, section 4.1) find an adversarial example for an
 * image x and a target label l by minimising c * |r|^2 + CE(f(x + r), l) over x + r in the box
 * [0, 1]^n, searching over c. The book's Python engine (intriguing.engine.attacks.lbfgs) does it
 * for thousands of images at once in torch; this file does the same attack for one image at a
 * time, on typed arrays, with no library, so that the rendered book can run it on any image,
 * target and c the reader picks, offline and opened from disk. It is a line-by-line port of the
 * per-row arithmetic of attacks.lbfgs (its _Solver, _two_loop and _search): the same objective,
 * the same projected L-BFGS (ring of curvature pairs advanced on every evaluation, the same
 * rejection test, first-step scale, Armijo backtracking with a safeguarded quadratic step and
 * the same stopping tests), the same search over c (grow by c_growth until the first failure,
 * then bisect geometrically; warm starts from the closest adversarial example so far; the
 * closest point that reaches the target at any evaluated step wins; one rescue solve) and the
 * same settings (LBFGSSettings' defaults, under their Python names).
 *
 * Models: every Table 1 architecture is a stack of dense layers with sigmoids between them
 * (FC10: one layer; FC100-100-10, FC200-200-10: three; AE400-10: the frozen 400-unit sigmoid
 * encoder and the softmax layer on top, two). Weights are kept as the exported Float32Array
 * (or float16 widened to Float32Array); every sum and every buffer is a double (Float64Array),
 * so the engine computes in float64 on float32 weights, like attacks.lbfgs on model.double().
 * One evaluation (forward, cross-entropy, backward to the pixels) allocates nothing and reads
 * each weight matrix twice, both times row by row.
 *
 * Why no library: TensorFlow.js 4.22.0 (autodiff, WebGL/wasm backends) is 1.47 MB minified
 * (368 kB gzipped) against this file's 33 kB, and under node on the project's 2-core machine its
 * CPU backend took 2.98 ms per forward+backward of an FC200-200-10 network against 0.58 ms here
 * (same moment, same machine); its WebGL backend computes in float32 only, so it could not
 * reproduce the Python engine's answers to float64 rounding as this file does.
 *
 * Use: as a plain <script> it defines the global IntriguingAttack; under node,
 * require("./intriguing-attack.js"). Data files written by `python -m intriguing export-web`
 * assign to the global IntriguingAttackData (no fetch: they load from file:// too).
 *
 *   var model = IntriguingAttack.decodeModel(IntriguingAttackData.models["FC200-200-10"]);
 *   var images = IntriguingAttack.decodeImages(IntriguingAttackData.images);
 *   var res = IntriguingAttack.search(model, images.image(0), 3);
 *   // res.adversarial, res.success, res.predicted, res.probabilities, res.distortion, res.c,
 *   // res.evaluations
 *
 * Tested against attacks.lbfgs under node (tests/test_browser_engine.py). The book explains
 * the attack in its chapter on blind spots.
 */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.IntriguingAttack = factory();
  }
}(typeof globalThis !== "undefined" ? globalThis : (typeof self !== "undefined" ? self : this),
  function () {
    "use strict";

    var VERSION = 1;
    var EPS = Number.EPSILON;          // float64's eps: the engine computes in doubles
    var TINY = 2.2250738585072014e-308; // float64's smallest normal number

    /* LBFGSSettings' defaults (engine/attacks.py), under their Python names; the test checks
       that they agree. chunk_size has no meaning here (one image at a time). */
    var DEFAULTS = Object.freeze({
      memory: 2,
      max_iter: 10,
      reach_max_iter: 20,
      pgtol: 1e-5,
      ftol: 1e-3,
      reach_ftol: 3e-5,
      factr: 1e7,
      max_linesearch: 20,
      armijo: 1e-4,
      c_init: 1.0,
      c_growth: 10.0,
      search_steps: 8,
      c_floor: 1e-6,
      track_iterates: true,
      rescue_max_iter: 100,
      chunk_size: 1000
    });

    function fail(message) {
      throw new RangeError(message);
    }

    function checkSettings(settings) {
      var s = {};
      var k;
      for (k in DEFAULTS) {
        if (Object.prototype.hasOwnProperty.call(DEFAULTS, k)) { s[k] = DEFAULTS[k]; }
      }
      if (settings) {
        for (k in settings) {
          if (!Object.prototype.hasOwnProperty.call(settings, k)) { continue; }
          if (!Object.prototype.hasOwnProperty.call(DEFAULTS, k)) {
            fail("settings." + k + " is not a setting; expected one of " +
                 Object.keys(DEFAULTS).join(", "));
          }
          s[k] = settings[k];
        }
      }
      ["memory", "max_iter", "reach_max_iter", "max_linesearch", "search_steps"].forEach(
        function (name) {
          if (!(Number.isInteger(s[name]) && s[name] > 0)) {
            fail("settings." + name + " must be a positive integer, got " + s[name]);
          }
        });
      if (!(Number.isInteger(s.rescue_max_iter) && s.rescue_max_iter >= 0)) {
        fail("settings.rescue_max_iter must be an integer >= 0, got " + s.rescue_max_iter);
      }
      ["pgtol", "ftol", "reach_ftol", "c_floor"].forEach(function (name) {
        if (!(typeof s[name] === "number" && s[name] >= 0 && isFinite(s[name]))) {
          fail("settings." + name + " must be a finite number >= 0, got " + s[name]);
        }
      });
      if (!(s.armijo > 0 && s.armijo < 1)) {
        fail("settings.armijo must be in (0, 1), got " + s.armijo);
      }
      if (!(s.c_init > 0 && isFinite(s.c_init))) {
        fail("settings.c_init must be a positive finite number, got " + s.c_init);
      }
      if (!(s.c_growth > 1 && isFinite(s.c_growth))) {
        fail("settings.c_growth must be a finite number > 1, got " + s.c_growth);
      }
      if (typeof s.track_iterates !== "boolean") {
        fail("settings.track_iterates must be a boolean, got " + s.track_iterates);
      }
      return s;
    }

    /* ------------------------------------------------------------------------------------ */
    /* Decoding exported data (base64 of little-endian float32/float16 or uint8)             */

    var B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    var B64_INDEX = (function () {
      var t = new Int16Array(128).fill(-1);
      for (var i = 0; i < B64.length; i++) { t[B64.charCodeAt(i)] = i; }
      return t;
    }());

    /** Bytes of a base64 string (no atob: the same code in a page and under node). */
    function base64Bytes(text) {
      if (typeof text !== "string") { fail("base64 data must be a string"); }
      var len = text.length;
      while (len > 0 && text.charCodeAt(len - 1) === 61) { len--; } // '='
      var out = new Uint8Array(Math.floor(len * 3 / 4));
      var acc = 0;
      var bits = 0;
      var o = 0;
      for (var i = 0; i < len; i++) {
        var code = text.charCodeAt(i);
        var v = code < 128 ? B64_INDEX[code] : -1;
        if (v < 0) { fail("base64 data holds a character that is not base64 at " + i); }
        acc = ((acc << 6) | v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          out[o++] = (acc >> bits) & 0xff;
        }
      }
      return out;
    }

    function halfToFloat(h) {
      var sign = (h & 0x8000) ? -1 : 1;
      var exp = (h >> 10) & 0x1f;
      var frac = h & 0x3ff;
      if (exp === 0) { return sign * frac * Math.pow(2, -24); }
      if (exp === 31) { return frac ? NaN : sign * Infinity; }
      return sign * (1 + frac / 1024) * Math.pow(2, exp - 15);
    }

    /** A Float32Array from base64 of little-endian float32 or float16 numbers. */
    function decodeFloats(text, dtype, count, what) {
      var bytes = base64Bytes(text);
      var view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      var size = dtype === "float16" ? 2 : (dtype === "float32" ? 4 : 0);
      if (!size) { fail("dtype must be 'float32' or 'float16', got " + dtype); }
      if (bytes.length !== count * size) {
        fail(what + " must hold " + count + " " + dtype + " numbers, got " +
             bytes.length + " bytes");
      }
      var out = new Float32Array(count);
      for (var i = 0; i < count; i++) {
        out[i] = size === 4 ? view.getFloat32(4 * i, true) : halfToFloat(view.getUint16(2 * i, true));
      }
      return out;
    }

    /**
     * A model from its exported entry: {name, arch, sizes: [784, ..., 10], activation:
     * "sigmoid", dtype, weights: [base64, ...], biases: [base64, ...]}. Layer i maps sizes[i]
     * inputs to sizes[i + 1] outputs with a weight matrix stored row by row (torch's layout,
     * out x in); a sigmoid follows every layer but the last, whose outputs are the logits.
     */
    function decodeModel(entry) {
      if (!entry || !Array.isArray(entry.sizes) || entry.sizes.length < 2) {
        fail("model entry must hold sizes [inputs, ..., classes]");
      }
      if ((entry.activation || "sigmoid") !== "sigmoid") {
        fail("model activation must be 'sigmoid', got " + entry.activation);
      }
      var L = entry.sizes.length - 1;
      if (!Array.isArray(entry.weights) || entry.weights.length !== L ||
          !Array.isArray(entry.biases) || entry.biases.length !== L) {
        fail("model entry must hold " + L + " weight matrices and bias vectors");
      }
      var weights = [];
      var biases = [];
      for (var l = 0; l < L; l++) {
        var nin = entry.sizes[l];
        var nout = entry.sizes[l + 1];
        weights.push(decodeFloats(entry.weights[l], entry.dtype || "float32", nin * nout,
                                  "weights[" + l + "]"));
        biases.push(decodeFloats(entry.biases[l], entry.dtype || "float32", nout,
                                 "biases[" + l + "]"));
      }
      return makeModel({name: entry.name || "", arch: entry.arch || "", sizes: entry.sizes,
                        weights: weights, biases: biases});
    }

    /** A model from typed arrays: {sizes, weights: [Float32Array], biases: [Float32Array]}. */
    function makeModel(spec) {
      var sizes = spec.sizes.slice();
      var L = sizes.length - 1;
      for (var l = 0; l < L; l++) {
        if (spec.weights[l].length !== sizes[l] * sizes[l + 1] ||
            spec.biases[l].length !== sizes[l + 1]) {
          fail("layer " + l + " must be " + sizes[l + 1] + " x " + sizes[l]);
        }
      }
      var acts = [null];
      var grads = [null];
      for (l = 1; l <= L; l++) {
        acts.push(new Float64Array(sizes[l]));
        grads.push(new Float64Array(sizes[l]));
      }
      return {
        name: spec.name || "",
        arch: spec.arch || "",
        sizes: sizes,
        inputs: sizes[0],
        classes: sizes[L],
        weights: spec.weights,
        biases: spec.biases,
        // Buffers of one evaluation: activations and gradients w.r.t. pre-activations.
        _acts: acts,
        _grads: grads,
        _pred: -1,
        _solver: null
      };
    }

    /**
     * Images from their exported entry {n, height, width, pixels: base64 uint8, labels: base64
     * uint8}: image(i) is a new Float64Array of pixels / 255 (MNIST's [0, 1] scale).
     */
    function decodeImages(entry) {
      var pixels = base64Bytes(entry.pixels);
      var size = entry.height * entry.width;
      if (pixels.length !== entry.n * size) {
        fail("images must hold " + entry.n + " x " + size + " bytes, got " + pixels.length);
      }
      var labels = entry.labels ? base64Bytes(entry.labels) : null;
      return {
        n: entry.n,
        height: entry.height,
        width: entry.width,
        pixels: pixels,
        labels: labels,
        image: function (i) {
          if (!(Number.isInteger(i) && i >= 0 && i < entry.n)) {
            fail("image index must be in 0.." + (entry.n - 1) + ", got " + i);
          }
          var out = new Float64Array(size);
          for (var j = 0; j < size; j++) { out[j] = pixels[i * size + j] / 255; }
          return out;
        }
      };
    }

    /* ------------------------------------------------------------------------------------ */
    /* The model: forward, cross-entropy, backward                                           */

    /** out = W input + b (W: nout x nin, row by row), then a sigmoid unless last. */
    function dense(W, b, input, out, nin, nout, last) {
      for (var i = 0, row = 0; i < nout; i++, row += nin) {
        // Four partial sums: about twice as fast as one under V8 (no dependency chain).
        var s0 = 0;
        var s1 = 0;
        var s2 = 0;
        var s3 = 0;
        var j = 0;
        for (; j + 3 < nin; j += 4) {
          s0 += W[row + j] * input[j];
          s1 += W[row + j + 1] * input[j + 1];
          s2 += W[row + j + 2] * input[j + 2];
          s3 += W[row + j + 3] * input[j + 3];
        }
        for (; j < nin; j++) { s0 += W[row + j] * input[j]; }
        var sum = ((s0 + s1) + (s2 + s3)) + b[i];
        out[i] = last ? sum : 1 / (1 + Math.exp(-sum));
      }
    }

    /** dx = W^T delta (W: nout x nin), four rows of W at a time, each row read in order. */
    function denseBack(W, delta, dx, nin, nout) {
      var i;
      var j;
      for (j = 0; j < nin; j++) { dx[j] = 0; }
      for (i = 0; i + 3 < nout; i += 4) {
        var d0 = delta[i];
        var d1 = delta[i + 1];
        var d2 = delta[i + 2];
        var d3 = delta[i + 3];
        var r0 = i * nin;
        var r1 = r0 + nin;
        var r2 = r1 + nin;
        var r3 = r2 + nin;
        for (j = 0; j < nin; j++) {
          dx[j] += (d0 * W[r0 + j] + d1 * W[r1 + j]) + (d2 * W[r2 + j] + d3 * W[r3 + j]);
        }
      }
      for (; i < nout; i++) {
        var di = delta[i];
        var row = i * nin;
        for (j = 0; j < nin; j++) { dx[j] += di * W[row + j]; }
      }
    }

    /** Logits of x into model._acts[L]; returns them (a buffer reused by the next call). */
    function forward(model, x) {
      var sizes = model.sizes;
      var L = sizes.length - 1;
      var input = x;
      for (var l = 0; l < L; l++) {
        dense(model.weights[l], model.biases[l], input, model._acts[l + 1], sizes[l],
              sizes[l + 1], l === L - 1);
        input = model._acts[l + 1];
      }
      return model._acts[L];
    }

    function argmax(z) {
      var best = 0;
      for (var k = 1; k < z.length; k++) {
        if (z[k] > z[best]) { best = k; }
      }
      return best;
    }

    /**
     * Cross-entropy of model(x) to target t, its gradient w.r.t. x into g (length n), and
     * model._pred (the predicted class). No allocation.
     */
    function crossEntropyGrad(model, x, t, g) {
      var sizes = model.sizes;
      var L = sizes.length - 1;
      var z = forward(model, x);
      var K = sizes[L];
      var k;
      var zmax = z[0];
      var pred = 0;
      for (k = 1; k < K; k++) {
        if (z[k] > zmax) { zmax = z[k]; pred = k; }
      }
      var total = 0;
      for (k = 0; k < K; k++) { total += Math.exp(z[k] - zmax); }
      var lse = Math.log(total);
      var ce = -(z[t] - zmax - lse);
      // dCE/dz = softmax(z) - onehot(t)
      var dz = model._grads[L];
      for (k = 0; k < K; k++) { dz[k] = Math.exp(z[k] - zmax - lse) - (k === t ? 1 : 0); }
      for (var l = L - 1; l >= 0; l--) {
        var W = model.weights[l];
        var nin = sizes[l];
        var nout = sizes[l + 1];
        var delta = model._grads[l + 1];
        var dx = l === 0 ? g : model._grads[l];
        denseBack(W, delta, dx, nin, nout);
        if (l > 0) {
          var a = model._acts[l];
          for (var j = 0; j < nin; j++) { dx[j] = dx[j] * (1 - a[j]) * a[j]; }
        }
      }
      model._pred = pred;
      return ce;
    }

    /** The predicted class of x (argmax of the logits, the first on ties). */
    function predict(model, x) {
      return argmax(forward(model, x));
    }

    /** Class probabilities (softmax of the logits) of x, a new Float64Array. */
    function probabilities(model, x) {
      var z = forward(model, x);
      var K = z.length;
      var zmax = z[argmax(z)];
      var p = new Float64Array(K);
      var total = 0;
      for (var k = 0; k < K; k++) { p[k] = Math.exp(z[k] - zmax); total += p[k]; }
      for (k = 0; k < K; k++) { p[k] /= total; }
      return p;
    }

    /**
     * The attack's objective c * |x - x0|^2 + CE(model(x), t) at x, its gradient into g; sets
     * model._pred and returns the objective. work.rr receives |x - x0|^2.
     */
    function objective(model, x, x0, t, c, g, work) {
      var ce = crossEntropyGrad(model, x, t, g);
      var n = x.length;
      var rr = 0;
      var c2 = 2 * c;
      for (var i = 0; i < n; i++) {
        var r = x[i] - x0[i];
        rr += r * r;
        g[i] += r * c2;
      }
      work.rr = rr;
      return ce + c * rr;
    }

    /* ------------------------------------------------------------------------------------ */
    /* The projected L-BFGS on [0, 1]^n: one image, attacks._Solver's per-row arithmetic      */

    function makeSolver(n, m) {
      return {
        n: n,
        m: m,
        x: new Float64Array(n), g: new Float64Array(n),
        xt: new Float64Array(n), gt: new Float64Array(n),
        sv: new Float64Array(n), yv: new Float64Array(n),   // the last trial's s and y
        v: new Float64Array(n), free: new Uint8Array(n),
        d: new Float64Array(n), dn: new Float64Array(n),
        S: new Float64Array(m * n), Y: new Float64Array(m * n),
        gramSY: new Float64Array(m * m), gramYY: new Float64Array(m * m),
        rho: new Float64Array(m),
        svv: new Float64Array(m), yvv: new Float64Array(m),  // S_i.v and Y_i.v
        alpha: new Float64Array(m), beta: new Float64Array(m),
        acc: new Float64Array(m), base: new Float64Array(m),
        order: new Int32Array(m),
        hitX: new Float64Array(n),
        work: {rr: 0},
        // Outputs of the last solve.
        evals: 0, pred: -1, hitRR: Infinity, scale: NaN
      };
    }

    function solverFor(model, s) {
      var sv = model._solver;
      if (!sv || sv.m !== s.memory || sv.n !== model.inputs) {
        sv = makeSolver(model.inputs, s.memory);
        model._solver = sv;
      }
      return sv;
    }

    /**
     * Minimise from start at c for image x0 and target t; the final iterate goes to out.
     * refine: the start already reaches the target (stop at ftol / max_iter); rescue: a fresh
     * solve with no flatness tests. scale0: the inverse-curvature scale carried over (NaN for
     * none). Sets sv.evals, sv.pred (at the final iterate), sv.hitX / sv.hitRR (the evaluated
     * point closest to x0 that the model assigns to t) and sv.scale (the final gamma).
     */
    function solveOnce(model, sv, s, start, x0, t, c, scale0, refine, rescue, out) {
      var n = sv.n;
      var m = sv.m;
      var x = sv.x;
      var g = sv.g;
      var xt = sv.xt;
      var gt = sv.gt;
      var svec = sv.sv;
      var yvec = sv.yv;
      var v = sv.v;
      var free = sv.free;
      var S = sv.S;
      var Y = sv.Y;
      var SY = sv.gramSY;
      var YY = sv.gramYY;
      var rho = sv.rho;
      var work = sv.work;
      var i;
      var j;
      var q;
      var maxIter = refine ? s.max_iter : (rescue ? s.rescue_max_iter : s.reach_max_iter);
      var ftol = refine ? s.ftol : (rescue ? 0 : s.reach_ftol);
      var pgtol = rescue ? 0 : s.pgtol;

      S.fill(0); Y.fill(0); SY.fill(0); YY.fill(0); rho.fill(0);
      var gamma = scale0;
      var step = 1;
      var trials = 0;
      var iters = 0;
      x.set(start);
      var f = objective(model, x, x0, t, c, g, work);
      var pred = model._pred;
      var evals = 1;
      sv.hitX.set(x);
      var hitRR = pred === t ? work.rr : Infinity;
      var pending = false;
      var retry = false;
      var d = sv.d;
      var gd = NaN;
      var slot = 0;

      for (var k = 0; ; k++) {
        // Projected gradient; variables it leaves in place are held fixed.
        var pgmax = 0;
        var vnorm2 = 0;
        for (i = 0; i < n; i++) {
          var xi = x[i];
          var p = xi - g[i];
          p = (p < 0 ? 0 : (p > 1 ? 1 : p)) - xi;
          var ap = p < 0 ? -p : p;
          if (ap > pgmax) { pgmax = ap; }
          var fr = p !== 0 ? 1 : 0;
          free[i] = fr;
          var vi = fr ? g[i] : 0;
          v[i] = vi;
          vnorm2 += vi * vi;
        }
        var converged = pgmax <= pgtol;
        if (k > 0) {
          // Last step's pair into the ring slot (zeros where the step was not accepted).
          var off = slot * n;
          if (pending) {
            S.set(svec, off);
            Y.set(yvec, off);
          } else {
            S.fill(0, off, off + n);
            Y.fill(0, off, off + n);
          }
          for (q = 0; q < m; q++) {
            var sq = 0;
            var ysq = 0;
            var yyq = 0;
            if (pending) {
              var oq = q * n;
              for (i = 0; i < n; i++) {
                sq += S[oq + i] * yvec[i];
                ysq += Y[oq + i] * svec[i];
                yyq += Y[oq + i] * yvec[i];
              }
            }
            SY[q * m + slot] = sq;
            SY[slot * m + q] = ysq;
            YY[q * m + slot] = yyq;
            YY[slot * m + q] = yyq;
          }
          var sy = SY[slot * m + slot];
          var yy = YY[slot * m + slot];
          // A pair with s.y <= eps * y.y is rejected: rho = 0 makes its slot a no-op.
          var good = pending && sy > EPS * yy && yy > 0;
          rho[slot] = good ? 1 / sy : 0;
          if (good) { gamma = sy / yy; }
          slot = (slot + 1) % m;
        }
        var unit = 1 / Math.max(Math.sqrt(vnorm2), TINY);
        var scale = gamma;
        if (k === 0) {
          scale = isNaN(gamma) ? unit : Math.min(gamma, unit);
        } else if (isNaN(gamma)) {
          scale = unit;
        }
        if (!retry) {
          // The two-loop recursion on inner products (attacks._two_loop), newest pair first.
          var svv = sv.svv;
          var yvv = sv.yvv;
          var alpha = sv.alpha;
          var beta = sv.beta;
          var acc = sv.acc;
          var base = sv.base;
          var order = sv.order;
          for (q = 0; q < m; q++) {
            order[q] = ((slot - 1 - q) % m + m) % m;
            svv[q] = 0; yvv[q] = 0;
            alpha[q] = 0; beta[q] = 0; acc[q] = 0;
          }
          for (q = 0; q < m; q++) {
            if (k === 0 || rho[q] === 0) { continue; } // an empty or rejected slot: a no-op
            var ov = q * n;
            var sv1 = 0;
            var yv1 = 0;
            for (i = 0; i < n; i++) {
              sv1 += S[ov + i] * v[i];
              yv1 += Y[ov + i] * v[i];
            }
            svv[q] = sv1;
            yvv[q] = yv1;
          }
          for (q = 0; q < m; q++) {
            var oi = order[q];
            var a = rho[oi] * (svv[oi] - acc[oi]);
            alpha[oi] = a;
            for (j = 0; j < m; j++) { acc[j] += SY[j * m + oi] * a; }
          }
          for (j = 0; j < m; j++) {
            var t2 = 0;
            for (q = 0; q < m; q++) { t2 += YY[j * m + q] * alpha[q]; }
            base[j] = scale * (yvv[j] - t2);
            acc[j] = 0;
          }
          for (q = m - 1; q >= 0; q--) {
            var ob = order[q];
            var bb = rho[ob] * (base[ob] + acc[ob]);
            beta[ob] = bb;
            for (j = 0; j < m; j++) { acc[j] += SY[ob * m + j] * (alpha[ob] - bb); }
          }
          var dn = sv.dn;
          var negScale = -scale;
          for (i = 0; i < n; i++) { dn[i] = v[i] * negScale; }
          for (q = 0; q < m; q++) {
            var cs = -(alpha[q] - beta[q]);
            var cy = -(-scale * alpha[q]);
            if (cs === 0 && cy === 0) { continue; }
            var os = q * n;
            for (i = 0; i < n; i++) { dn[i] += cs * S[os + i] + cy * Y[os + i]; }
          }
          var gdn = 0;
          for (i = 0; i < n; i++) {
            if (!free[i]) { dn[i] = 0; }
            gdn += g[i] * dn[i];
          }
          if (!(gdn < 0)) {
            // Not a descent direction (rounding): the scaled gradient instead.
            gdn = 0;
            for (i = 0; i < n; i++) { dn[i] = -(v[i] * scale); gdn += g[i] * dn[i]; }
          }
          d.set(dn);
          gd = gdn;
        }

        // One trial step along the projected path, with an Armijo test.
        var todo = !converged && gd < 0;
        if (!todo) { break; }
        var dec = 0;
        for (i = 0; i < n; i++) {
          var z = x[i] + d[i] * step;
          z = z < 0 ? 0 : (z > 1 ? 1 : z);
          xt[i] = z;
          var si = z - x[i];
          svec[i] = si;
          dec += g[i] * si;
        }
        var ft = objective(model, xt, x0, t, c, gt, work);
        var pt = model._pred;
        var rrt = work.rr;
        evals++;
        var finite = isFinite(ft);
        for (i = 0; i < n; i++) { yvec[i] = finite ? gt[i] - g[i] : 0; }
        if (s.track_iterates && pt === t && rrt < hitRR) {
          hitRR = rrt;
          sv.hitX.set(xt);
        }
        var moved = dec < 0;
        var ok = moved && ft <= f + s.armijo * dec;
        retry = moved && !ok;
        pending = ok;
        var big = Math.max(Math.max(Math.abs(f), Math.abs(ft)), 1);
        var small = ok && (f - ft) <= ftol * big;
        // A shorter step for a retry: safeguarded quadratic interpolation of f(x + a d).
        var curv = 2 * (ft - f - gd * step);
        var aq = -gd * step * step / Math.max(curv, TINY);
        if (!isFinite(aq)) { aq = 0.5 * step; }
        var shorter = Math.min(Math.max(aq, 0.1 * step), 0.5 * step);
        trials = retry ? trials + 1 : 0;
        step = retry ? shorter : 1;
        if (ok) {
          iters++;
          // Accept: swap the trial point in.
          var tmp = sv.x; sv.x = sv.xt; sv.xt = tmp; x = sv.x; xt = sv.xt;
          tmp = sv.g; sv.g = sv.gt; sv.gt = tmp; g = sv.g; gt = sv.gt;
          f = ft;
          pred = pt;
        }
        if (!moved || (retry && trials >= s.max_linesearch) || small || iters >= maxIter) {
          break;
        }
      }
      out.set(x);
      sv.evals = evals;
      sv.pred = pred;
      sv.hitRR = hitRR;
      sv.scale = gamma;
      return out;
    }

    /* ------------------------------------------------------------------------------------ */
    /* The single solve and the search over c (attacks._search for one image)                */

    function checkInputs(model, image, target) {
      if (!model || !model.sizes) { fail("model must come from decodeModel or makeModel"); }
      if (!image || image.length !== model.inputs) {
        fail("image must hold " + model.inputs + " pixels, got " + (image ? image.length : image));
      }
      for (var i = 0; i < image.length; i++) {
        var p = image[i];
        if (!(p >= 0 && p <= 1)) { fail("image pixels must lie in [0, 1], got " + p + " at " + i); }
      }
      if (!(Number.isInteger(target) && target >= 0 && target < model.classes)) {
        fail("target must be a class in 0.." + (model.classes - 1) + ", got " + target);
      }
    }

    function sqDist(a, b) {
      var s = 0;
      for (var i = 0; i < a.length; i++) { var r = a[i] - b[i]; s += r * r; }
      return s;
    }

    /** The result record: the adversarial image clipped to the box, re-checked by the model. */
    function finish(model, x0, target, xBest, c, evals, t0) {
      var n = x0.length;
      var adv = new Float64Array(n);
      var ss = 0;
      for (var i = 0; i < n; i++) {
        var z = xBest[i];
        z = z < 0 ? 0 : (z > 1 ? 1 : z);
        adv[i] = z;
        var r = z - x0[i];
        ss += r * r;
      }
      var probs = probabilities(model, adv);
      var predicted = argmax(probs);
      return {
        adversarial: adv,
        success: predicted === target,
        predicted: predicted,
        probabilities: probs,
        distortion: Math.sqrt(ss / n),   // attacks.distortion: sqrt(mean((x' - x)^2))
        c: c,
        evaluations: evals,
        milliseconds: now() - t0
      };
    }

    function now() {
      return (typeof performance !== "undefined" && performance.now) ? performance.now() : Date.now();
    }

    function toFloat64(image) {
      var x0 = new Float64Array(image.length);
      for (var i = 0; i < image.length; i++) { x0[i] = image[i]; }
      return x0;
    }

    /**
     * One solve at a fixed c from the image itself: the minimiser of c |r|^2 + CE at c,
     * adversarial or not (attacks.lbfgs(..., c=c)). Where the model already predicts the
     * target, the image comes back unchanged with c = Infinity and 0 evaluations.
     */
    function solve(model, image, target, c, settings) {
      var t0 = now();
      var s = checkSettings(settings);
      checkInputs(model, image, target);
      if (!(typeof c === "number" && c > 0 && isFinite(c))) {
        fail("c must be a positive finite number, got " + c);
      }
      var x0 = toFloat64(image);
      if (predict(model, x0) === target) { return finish(model, x0, target, x0, Infinity, 0, t0); }
      var sv = solverFor(model, s);
      var out = new Float64Array(x0.length);
      solveOnce(model, sv, s, x0, x0, target, c, NaN, false, false, out);
      return finish(model, x0, target, out, c, sv.evals, t0);
    }

    /**
     * The search over c (attacks.lbfgs with c=None): start at c_init; while solves succeed
     * multiply c by c_growth; the first failure brackets the critical c, then bisect
     * geometrically, search_steps solves in all, each warm-started from the closest adversarial
     * example so far; a rescue solve at c_floor for an image no solve brought to the target.
     * Returns the closest adversarial example seen at any c (c: the c of the solve that found
     * it; for a failure, the smallest failing c).
     */
    function search(model, image, target, settings) {
      var t0 = now();
      var s = checkSettings(settings);
      checkInputs(model, image, target);
      var x0 = toFloat64(image);
      var n = x0.length;
      if (predict(model, x0) === target) { return finish(model, x0, target, x0, Infinity, 0, t0); }
      var sv = solverFor(model, s);
      var bestX = new Float64Array(x0);
      var bestRR = Infinity;
      var bestC = NaN;
      var lastX = new Float64Array(x0);
      var fin = new Float64Array(n);
      var evals = 0;
      var lastScale = NaN;
      var lastC = 0;
      var c = s.c_init;
      var cLo = 0;
      var cHi = Infinity;

      function run(start, cc, refine, rescue) {
        var inv = 1 / lastScale + 2 * (cc - lastC);
        var scale = inv > 0 ? 1 / inv : NaN;
        if (rescue) { scale = NaN; }
        solveOnce(model, sv, s, start, x0, target, cc, scale, refine, rescue, fin);
        lastScale = sv.scale;
        lastC = cc;
        evals += sv.evals;
        return sv.pred === target;
      }

      function keepClosest(cc, ok) {
        var finRR = ok ? sqDist(fin, x0) : Infinity;
        var useHit = sv.hitRR < finRR;
        var candRR = useHit ? sv.hitRR : finRR;
        if (candRR < bestRR) {
          bestX.set(useHit ? sv.hitX : fin);
          bestRR = candRR;
          bestC = cc;
        }
      }

      var todo = true;
      for (var step = 0; step < s.search_steps && todo; step++) {
        var found = isFinite(bestRR);
        var cc = c;
        var ok = run(found ? bestX : lastX, cc, found, false);
        lastX.set(fin);
        keepClosest(cc, ok);
        if (ok) { cLo = Math.max(cLo, cc); } else { cHi = Math.min(cHi, cc); }
        var hasLo = cLo > 0;
        var hasHi = isFinite(cHi);
        c = hasLo && hasHi ? Math.sqrt(cLo * cHi) : (hasLo ? cLo * s.c_growth : cHi / s.c_growth);
        if (!hasLo && c < s.c_floor) { todo = false; }
      }
      if (s.rescue_max_iter > 0 && !isFinite(bestRR)) {
        var okR = run(x0, s.c_floor, false, true);
        if (!okR) { lastX.set(fin); }
        keepClosest(s.c_floor, okR);
        if (!okR) { cHi = Math.min(cHi, s.c_floor); }
      }
      if (!isFinite(bestRR)) {
        bestX.set(lastX);
        bestC = isFinite(cHi) ? cHi : c;
      }
      return finish(model, x0, target, bestX, bestC, evals, t0);
    }

    /**
     * One evaluation of the objective and its gradient (for benchmarks): returns the
     * objective; grad (a Float64Array of the image's length) receives the gradient.
     */
    var evalWork = {rr: 0};
    function evaluate(model, x, x0, target, c, grad) {
      return objective(model, x, x0, target, c, grad, evalWork);
    }

    return {
      VERSION: VERSION,
      DEFAULTS: DEFAULTS,
      decodeModel: decodeModel,
      decodeImages: decodeImages,
      makeModel: makeModel,
      forward: forward,
      predict: predict,
      probabilities: probabilities,
      evaluate: evaluate,
      solve: solve,
      search: search,
      base64Bytes: base64Bytes
    };
  }));
