#!/usr/bin/env node
// edgeserve's wasm CPU backend vs onnxruntime-web's wasm backend in the
// same headless Chromium: Lite0 batch-1 latency, interleaved, medians and
// ratios, with 1 and 2 onnxruntime-web threads (the page is cross-origin
// isolated, so threads are allowed; edgeserve's wasm is single-threaded),
// for each of the package's two wasm builds (relaxed SIMD, what Chromium
// gets by default, and simd128). Also the package's wasm sizes. Not a
// test: it prints a table.
//
//   node benches/wasm_vs_ort_web.mjs [--runs 30] [--threads 1,2] [--builds relaxed-simd,simd128]

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '30' }, threads: { type: 'string', default: '1,2' }, builds: { type: 'string', default: 'relaxed-simd,simd128' } } });

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
  const rows = [];
  for (const build of args.builds.split(',')) {
    for (const threads of args.threads.split(',').map(Number)) {
      const page = await context.newPage();
      await page.goto(`${base}/bench.html?runs=${args.runs}&threads=${threads}&build=${build}`);
      await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000 });
      const r = await page.evaluate(() => window.benchResult);
      await page.close();
      if (r.error) throw new Error(r.error);
      rows.push(r);
      console.error(JSON.stringify(r));
    }
  }
  console.log();
  for (const file of ['edgeserve_bg.wasm', 'edgeserve_relaxed_bg.wasm', 'edge/edgeserve_bg.wasm']) {
    const bytes = readFileSync(path.join(root, 'pkg/dist', file));
    console.log(`pkg/dist/${file}: ${bytes.length.toLocaleString('en')} B, ${gzipSync(bytes, { level: 9 }).length.toLocaleString('en')} B gzipped`);
  }
  console.log('\n| edgeserve build | onnxruntime-web threads | isolated | edgeserve (1 thread) | onnxruntime-web | ratio | edgeserve cold load / first result | edgeserve warm start (load + first result) | ort-web session |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const f = (x) => `${x.toFixed(1)} ms`;
    console.log(
      `| ${r.build} | ${r.threads} | ${r.crossOriginIsolated} | ${f(r.edgeserve.medianMs)} | ${f(r.onnxruntimeWeb.medianMs)} | ${(r.edgeserve.medianMs / r.onnxruntimeWeb.medianMs).toFixed(2)}× | ${f(r.edgeserve.loadMs)} / ${f(r.edgeserve.firstResultMs)} | ${f(r.edgeserve.warmStartMs)} (${f(r.edgeserve.warmLoadMs)} + ${f(r.edgeserve.warmStartMs - r.edgeserve.warmLoadMs)}) | ${f(r.onnxruntimeWeb.loadMs)} |`,
    );
  }
} finally {
  await context.close();
  await server.close();
  rmSync(profile, { recursive: true, force: true });
}
