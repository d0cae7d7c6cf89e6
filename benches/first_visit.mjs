#!/usr/bin/env node
// What a first visit downloads, per entry point: a page imports the package
// (pkg/, as `./x pkg` built it) through an import map, loads Lite0 on the
// CPU and classifies a photo, in a fresh headless Chromium profile; every
// request is recorded, and the package's files and the model's are summed
// raw and gzipped (-9, as a CDN would send them). Then the same page again
// in the same profile: what the model cache saves. Not a test: it prints a
// table.
//
//   node benches/first_visit.mjs

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const PAGE = `<!doctype html><meta charset="utf-8"><title>loading</title><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "edgeserve": "/pkg/src/web.js", "edgeserve/cpu": "/pkg/src/cpu.js" } }</script>
<script type="module">
const q = new URLSearchParams(location.search);
const { Classifier, wasm } = await import(q.get('entry'));
const t0 = performance.now();
const classifier = await Classifier.load({ model: '/models/efficientnet-lite0/efficientnet-lite0.onnx', backend: 'cpu' });
const loadMs = performance.now() - t0;
const { classes } = await classifier.classify(await (await fetch('/samples/coffee_orig.png')).blob());
window.result = { loadMs, top: classes[0].label, build: wasm.build, webgpuBuild: wasm.webgpuBuild };
document.title = 'done';
</script>`;

const site = mkdtempSync(path.join(tmpdir(), 'edgeserve-visit-'));
writeFileSync(path.join(site, 'index.html'), PAGE);
const server = await serveStatic({ '/pkg/': path.join(root, 'pkg'), '/models/': path.join(root, 'models'), '/samples/': path.join(root, 'www/samples'), '/': site });
const mounts = { '/pkg/': path.join(root, 'pkg'), '/models/': path.join(root, 'models') };
const fileOf = (url) => {
  const p = new URL(url, server.url).pathname;
  const [prefix, dir] = Object.entries(mounts).find(([m]) => p.startsWith(m)) ?? [];
  return prefix && path.join(dir, p.slice(prefix.length));
};
const sizes = new Map();
const size = (file) => {
  if (!sizes.has(file)) {
    const bytes = readFileSync(file);
    sizes.set(file, { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return sizes.get(file);
};
const sum = (files) => files.reduce((t, f) => ({ raw: t.raw + size(f).raw, gzip: t.gzip + size(f).gzip }), { raw: 0, gzip: 0 });
const mb = (n) => (n / 1e6).toFixed(2);

const rows = [];
for (const [name, entry, noAdapter] of [
  ['edgeserve/cpu', 'edgeserve/cpu', false],
  ['edgeserve, no WebGPU adapter', 'edgeserve', true],
  ['edgeserve, WebGPU adapter', 'edgeserve', false],
]) {
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-bench-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const visit = async () => {
    const page = await context.newPage();
    if (noAdapter) await page.addInitScript(() => navigator.gpu && (navigator.gpu.requestAdapter = async () => null));
    const from = server.seen.length;
    await page.goto(`${server.url}/?entry=${encodeURIComponent(entry)}`);
    await page.waitForFunction(() => document.title === 'done', null, { timeout: 300_000 });
    const result = await page.evaluate(() => window.result);
    await page.close();
    const files = [...new Set(server.seen.slice(from).map(fileOf).filter(Boolean))];
    return { result, code: sum(files.filter((f) => f.includes(`${path.sep}pkg${path.sep}`))), model: sum(files.filter((f) => f.includes(`${path.sep}models${path.sep}`))) };
  };
  const first = await visit();
  const second = await visit();
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  rows.push({ name, first, second });
}
await server.close();
rmSync(site, { recursive: true, force: true });

console.log('| entry | build | first visit: package code (raw / gzip MB) | model files (raw / gzip MB) | load ms | second visit: model files fetched (MB) | load ms |');
console.log('|---|---|---|---|---|---|---|');
for (const { name, first, second } of rows) {
  const build = `${first.result.webgpuBuild ? 'WebGPU' : 'CPU'}, ${first.result.build}`;
  console.log(
    `| ${name} | ${build} | ${mb(first.code.raw)} / ${mb(first.code.gzip)} | ${mb(first.model.raw)} / ${mb(first.model.gzip)} | ${first.result.loadMs.toFixed(0)} | ${mb(second.model.raw)} | ${second.result.loadMs.toFixed(0)} |`,
  );
}
