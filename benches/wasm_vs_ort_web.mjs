#!/usr/bin/env node
// edgeserve's wasm CPU backend vs onnxruntime-web's wasm backend in the
// same headless Chromium, Lite0 (and Lite2) batch 1, on a cross-origin isolated page.
// Each row runs in a dedicated Worker (benches/web/cpu-worker.js) holding
// both engines, interleaved run for run, both timed the same way: wall
// clock from the caller around the call that gives the output, first on
// the same Float32Array (edgeserve's `run`, onnxruntime-web's
// `session.run`), then from the same PNG Blob to the top-5 (edgeserve's
// `classify`; onnxruntime-web plus the JS preprocessing a user writes).
// A row is `build:threads:ortThreads`: edgeserve's build (relaxed-simd or
// simd128) and threads (> 1: the threaded build), onnxruntime-web's
// threads. edgeserve's time measured inside Rust (what this benchmark
// compared before) is an extra column, and so is each side's 10th–90th
// percentile on the tensor path. Not a test: it prints tables.
//
// Each timed call starts after `--settle` ms of quiet (cpu-worker.js).
//
//   node benches/wasm_vs_ort_web.mjs [--runs 30] [--models lite0,lite2] [--settle 30] [--rows relaxed-simd:2:2,simd128:2:2,relaxed-simd:1:2,relaxed-simd:1:1]

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '30' }, rows: { type: 'string', default: 'relaxed-simd:2:2,simd128:2:2,relaxed-simd:1:2,relaxed-simd:1:1' }, models: { type: 'string', default: 'lite0,lite2' }, settle: { type: 'string', default: '30' } } });

const mounts = {
  '/pkg/': path.join(root, 'pkg'),
  '/ort/': path.join(root, 'tests/js/node_modules/onnxruntime-web/dist'),
  '/models/': path.join(root, 'models'),
  '/samples/': path.join(root, 'www/samples'),
  '/inputs/': path.join(shared, 'fixtures/inputs'),
  '/': path.join(here, 'web'),
};
// Cross-origin isolation (SharedArrayBuffer), so onnxruntime-web may use wasm threads.
const server = await serveStatic(mounts, { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } });
const base = server.url;
const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-bench-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: CHROMIUM_ARGS,
});
try {
  const page = await context.newPage();
  await page.goto(`${base}/bench.html?runs=${args.runs}&rows=${args.rows}&models=${args.models}&settle=${args.settle}`);
  await page.waitForFunction(() => window.benchResult, null, { timeout: 1_800_000 });
  const rows = await page.evaluate(() => window.benchResult);
  await page.close();
  if (rows.error) throw new Error(rows.error);
  for (const r of rows) console.error(JSON.stringify(r));
  console.log(`\n${cpus().length} cores (${cpus()[0].model}); Chromium's hardwareConcurrency ${rows[0].cores}; median of ${rows[0].runs} interleaved runs per row, each after ${rows[0].settleMs} ms of quiet\n`);
  for (const file of ['edgeserve_bg.wasm', 'edgeserve_relaxed_bg.wasm', 'edge/edgeserve_bg.wasm', 'edge/edgeserve_relaxed_bg.wasm', 'threads/edgeserve_bg.wasm', 'threads/edgeserve_relaxed_bg.wasm']) {
    const where = path.join(root, 'pkg/dist', file);
    if (!existsSync(where)) {
      console.log(`pkg/dist/${file}: not built`);
      continue;
    }
    const bytes = readFileSync(where);
    console.log(`pkg/dist/${file}: ${bytes.length.toLocaleString('en')} B, ${gzipSync(bytes, { level: 9 }).length.toLocaleString('en')} B gzipped`);
  }
  const f = (x) => `${x.toFixed(1)} ms`;
  const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
  console.log('\n| model | edgeserve build | edgeserve threads | ort-web threads | tensor: edgeserve `run` | tensor: ort-web `session.run` | **tensor ratio** | tensor p10–p90: edgeserve / ort-web | old method: edgeserve inside Rust | old ratio | image → top-5: edgeserve `classify` | image → top-5: ort-web + JS preprocessing | **image ratio** | edgeserve warm start after the first load (load + first result) | warm start after the runs, median of 3 | warm start, the load code optimised (median of the 7th–11th after the runs) | edgeserve cold load / first result | ort-web session |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const m = r.medians;
    console.log(
      `| ${r.model} | ${r.build} | ${r.threads} | ${r.ortThreads} | ${f(m.esTensor)} | ${f(m.ortTensor)} | **${ratio(m.esTensor, m.ortTensor)}** | ${r.spread.esTensor.map((x) => x.toFixed(1)).join('–')} / ${r.spread.ortTensor.map((x) => x.toFixed(1)).join('–')} ms | ${f(m.esInside)} | ${ratio(m.esInside, m.ortTensor)} | ${f(m.esImage)} | ${f(m.ortImage)} | **${ratio(m.esImage, m.ortImage)}** | ${f(r.edgeserve.warmStartMs)} (${f(r.edgeserve.warmLoadMs)} + ${f(r.edgeserve.warmStartMs - r.edgeserve.warmLoadMs)}) | ${f(r.edgeserve.warmStartAfterMs)} (${f(r.edgeserve.warmLoadAfterMs)} + ${f(r.edgeserve.warmStartAfterMs - r.edgeserve.warmLoadAfterMs)}) | ${f(r.edgeserve.warmStartTieredMs)} (${f(r.edgeserve.warmLoadTieredMs)} + ${f(r.edgeserve.warmStartTieredMs - r.edgeserve.warmLoadTieredMs)}) | ${f(r.edgeserve.loadMs)} / ${f(r.edgeserve.firstResultMs)} | ${f(r.onnxruntimeWeb.loadMs)} |`,
    );
  }
} finally {
  await context.close();
  await server.close();
  rmSync(profile, { recursive: true, force: true });
}
