#!/usr/bin/env node
// The model zoo (tests/zoo/) on edgeserve's WebGPU backend vs
// onnxruntime-web's WebGPU provider, in the same headless Chromium on the
// same adapter (SwiftShader here: the GPU emulated on the CPU, so absolute
// times mean little and the ratios are the figures): per model, load, first
// run and steady latency, wall clock from the caller, as ratios edgeserve /
// onnxruntime-web. Not a test; what it measures is in benches/README.md.
//
//   node benches/zoo_webgpu_vs_ort_web.mjs [--runs 5] [--only vit]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runPage } from './browser_page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, only: { type: 'string', default: '' } } });

const mounts = {
  '/pkg/': path.join(root, 'pkg'),
  '/ort/': path.join(root, 'tests/js/node_modules/onnxruntime-web/dist'),
  '/zoo/': path.join(root, 'tests/zoo'),
  '/': path.join(here, 'web'),
};
const r = await runPage(mounts, `/zoo.html?runs=${args.runs}&only=${encodeURIComponent(args.only)}`);
const f = (x) => (x === undefined ? '' : `${x.toFixed(0)}`);
const ratio = (a, b) => (a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}×`);
console.log(`\nadapter: ${JSON.stringify(r.adapter)}; median of ${r.runs} interleaved runs after ${r.warmup} warm-up; ms, wall clock\n`);
// edgeserve's load runs the model once (shaders compiled, buffers made);
// onnxruntime-web's does not: load + first run is the like-for-like time
// to a first answer.
console.log('| model | edgeserve steady (engine alone) | ort-web steady | steady ratio | load + first run ratio | first run ratio | load ratio | top-1 (reference, edgeserve, ort-web) |');
console.log('|---|---|---|---|---|---|---|---|');
const steady = [];
const toFirst = [];
for (const row of r.rows) {
  const e = row.edgeserve;
  const o = row.onnxruntimeWeb;
  if (e.error || o.error) {
    const cell = (s) => (s.error ? `refused: ${s.error}` : `${f(s.medianMs)}`);
    console.log(`| ${row.file} | ${cell(e)} | ${cell(o)} | | | | | ${row.referenceTop1}, ${e.top1 ?? '-'}, ${o.top1 ?? '-'} |`);
    continue;
  }
  steady.push(e.medianMs / o.medianMs);
  toFirst.push((e.loadMs + e.firstMs) / (o.loadMs + o.firstMs));
  console.log(
    `| ${row.file} | ${f(e.medianMs)} (${f(e.insideMs)}) | ${f(o.medianMs)} | ${ratio(e.medianMs, o.medianMs)} | ${ratio(e.loadMs + e.firstMs, o.loadMs + o.firstMs)} | ${ratio(e.firstMs, o.firstMs)} | ${ratio(e.loadMs, o.loadMs)} | ${row.referenceTop1}, ${e.top1}, ${o.top1} |`,
  );
}
const summary = (name, xs) => {
  const geo = Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
  console.log(`${name} over the ${xs.length} models both ran: geometric mean ${geo.toFixed(2)}×, range ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}×`);
};
if (steady.length) {
  console.log('');
  summary('steady ratio', steady);
  summary('load + first run ratio', toFirst);
}
