#!/usr/bin/env node
// edgeserve's WebGPU backend vs onnxruntime-web's WebGPU backend in the same
// headless Chromium on the same adapter (here SwiftShader, the GPU
// emulated on the CPU: absolute times mean little, the ratio does): Lite0
// batch-1 latency, interleaved, medians and ratio; load time and first
// inference after load; GPU dispatches per inference. Not a test.
//
//   node benches/webgpu_vs_ort_web.mjs [--runs 10]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runPage } from './browser_page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });

const mounts = {
  '/pkg/': path.join(root, 'pkg'),
  '/ort/': path.join(root, 'tests/js/node_modules/onnxruntime-web/dist'),
  '/models/': path.join(root, 'models'),
  '/inputs/': path.join(shared, 'fixtures/inputs'),
  '/': path.join(here, 'web'),
};
const r = await runPage(mounts, `/webgpu.html?runs=${args.runs}`);
const f = (x) => `${x.toFixed(0)} ms`;
const { edgeserve: e, onnxruntimeWeb: o } = r;
console.log(`\nadapter: ${JSON.stringify(r.adapter)}, ${r.runs} interleaved runs after warm-up\n`);
console.log('| | steady (median) | load | first inference after load | first / steady | GPU dispatches per inference |');
console.log('|---|---|---|---|---|---|');
console.log(`| edgeserve WebGPU | ${f(e.medianMs)} | ${f(e.loadMs)} | ${f(e.firstMs)} | ${(e.firstMs / e.medianMs).toFixed(2)}× | ${e.dispatches} |`);
console.log(`| onnxruntime-web WebGPU | ${f(o.medianMs)} | ${f(o.loadMs)} | ${f(o.firstMs)} | ${(o.firstMs / o.medianMs).toFixed(2)}× | ${o.dispatches} |`);
console.log(`\nratio edgeserve / onnxruntime-web (steady, wall clock, the same Float32Array to both): ${(e.medianMs / o.medianMs).toFixed(2)}×`);
console.log(`old method (edgeserve's inference time inside Rust against ort-web's wall clock): ${f(e.insideMedianMs)}, ${(e.insideMedianMs / o.medianMs).toFixed(2)}×`);
