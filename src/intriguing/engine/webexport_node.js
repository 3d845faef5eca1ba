/*
 * Runs the browser engine (book/_extra/js/intriguing-attack.js) under node for
 * intriguing.engine.webexport.run_node: `node webexport_node.js request.json` prints one JSON
 * object to stdout.
 *
 * request: {engine: path of the engine, data: [paths of scripts from export-web],
 *           settings: {LBFGSSettings fields} or null,
 *           jobs: [{model, image: index or [pixels], target, c: number or null (the search)}
 *                  or {model, image, predict: true} (the clean image's class probabilities)],
 *           adversarial: true to return each adversarial image (pixels as numbers),
 *           bench: {model, images: [index...], targets: [...], c, evaluations} or null}
 * answer:  {node, engine_version, defaults, results: [{success, predicted, probabilities,
 *           distortion, c, evaluations, milliseconds, adversarial?}], bench?}
 */
"use strict";

const fs = require("fs");
const path = require("path");

function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const IA = require(path.resolve(request.engine));
  for (const file of request.data || []) { require(path.resolve(file)); }
  const store = globalThis.IntriguingAttackData || {models: {}};
  const models = {};
  const model = (name) => {
    if (!models[name]) {
      if (!store.models[name]) { throw new Error("no exported model " + name); }
      models[name] = IA.decodeModel(store.models[name]);
    }
    return models[name];
  };
  const images = store.images ? IA.decodeImages(store.images) : null;
  const image = (spec) => (Array.isArray(spec) ? Float64Array.from(spec) : images.image(spec));
  const settings = request.settings || undefined;

  const answer = {node: process.version, engine_version: IA.VERSION, defaults: IA.DEFAULTS};
  answer.results = (request.jobs || []).map((job) => {
    const m = model(job.model);
    const x = image(job.image);
    if (job.predict) {
      const p = IA.probabilities(m, x);
      return {predicted: IA.predict(m, x), probabilities: Array.from(p)};
    }
    const r = job.c === null || job.c === undefined
      ? IA.search(m, x, job.target, settings)
      : IA.solve(m, x, job.target, job.c, settings);
    const out = {
      success: r.success,
      predicted: r.predicted,
      probabilities: Array.from(r.probabilities),
      distortion: r.distortion,
      c: Number.isFinite(r.c) ? r.c : (Number.isNaN(r.c) ? "nan" : "inf"),
      evaluations: r.evaluations,
      milliseconds: r.milliseconds
    };
    if (request.adversarial) { out.adversarial = Array.from(r.adversarial); }
    return out;
  });
  if (request.bench) { answer.bench = bench(IA, model(request.bench.model), image, request.bench); }
  process.stdout.write(JSON.stringify(answer));
}

/** Times one evaluation, a fixed-c solve and a search per image (after a warm-up). */
function bench(IA, m, image, spec) {
  const xs = spec.images.map(image);
  const n = m.inputs;
  const grad = new Float64Array(n);
  const x = new Float64Array(n);
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  // Warm-up: let the JIT compile every path.
  for (let i = 0; i < Math.min(3, xs.length); i++) {
    IA.search(m, xs[i], spec.targets[i]);
  }
  const evals = spec.evaluations || 500;
  for (let j = 0; j < n; j++) { x[j] = Math.min(1, xs[0][j] + 0.01); }
  let t0 = now();
  let sink = 0;
  for (let k = 0; k < evals; k++) { sink += IA.evaluate(m, x, xs[0], spec.targets[0], 1.0, grad); }
  const msEval = (now() - t0) / evals;
  const solveMs = [];
  const solveEvals = [];
  const searchMs = [];
  const searchEvals = [];
  for (let i = 0; i < xs.length; i++) {
    t0 = now();
    const r = IA.solve(m, xs[i], spec.targets[i], spec.c || 1.0);
    solveMs.push(now() - t0);
    solveEvals.push(r.evaluations);
  }
  for (let i = 0; i < xs.length; i++) {
    t0 = now();
    const r = IA.search(m, xs[i], spec.targets[i]);
    searchMs.push(now() - t0);
    searchEvals.push(r.evaluations);
  }
  return {ms_per_evaluation: msEval, solve_ms: solveMs, solve_evaluations: solveEvals,
          search_ms: searchMs, search_evaluations: searchEvals, sink: Number.isFinite(sink)};
}

main();
