#!/usr/bin/env node
// Where the package keeps models between visits: the Cache API (what it
// uses) against the origin-private file system (OPFS), for Lite0's 18.5 MB
// and Lite2's 24.3 MB, in headless Chromium. Each round writes the file and
// reads it back into an ArrayBuffer (what a load needs) through each store,
// interleaved; medians of the rounds. Not a test: it prints a table.
//
//   node benches/model_cache.mjs [--rounds 15]

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '15' } } });

const site = mkdtempSync(path.join(tmpdir(), 'edgeserve-cache-bench-'));
writeFileSync(path.join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>bench</title>');
const server = await serveStatic({ '/models/': path.join(root, 'models'), '/': site });
const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-bench-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
const page = await context.newPage();
await page.goto(`${server.url}/`);

const rows = await page.evaluate(
  async ({ rounds, files }) => {
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const time = async (f) => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };
    const out = [];
    for (const file of files) {
      const bytes = new Uint8Array(await (await fetch(file)).arrayBuffer());
      const cache = await caches.open('bench');
      const dir = await navigator.storage.getDirectory();
      const t = { cacheWrite: [], cacheRead: [], opfsWrite: [], opfsRead: [] };
      for (let i = 0; i < rounds; i++) {
        t.cacheWrite.push(await time(() => cache.put('https://bench.invalid/m', new Response(bytes))));
        t.cacheRead.push(await time(async () => (await (await cache.match('https://bench.invalid/m')).arrayBuffer()).byteLength));
        t.opfsWrite.push(
          await time(async () => {
            const handle = await dir.getFileHandle('m', { create: true });
            const w = await handle.createWritable();
            await w.write(bytes);
            await w.close();
          }),
        );
        t.opfsRead.push(await time(async () => (await (await (await dir.getFileHandle('m')).getFile()).arrayBuffer()).byteLength));
      }
      await caches.delete('bench');
      await dir.removeEntry('m');
      out.push({ file, mb: bytes.length / 1e6, ...Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)])) });
    }
    return out;
  },
  { rounds: Number(args.rounds), files: ['/models/efficientnet-lite0/efficientnet-lite0.onnx', '/models/efficientnet-lite2/efficientnet-lite2.onnx'] },
);
await context.close();
await server.close();
rmSync(profile, { recursive: true, force: true });
rmSync(site, { recursive: true, force: true });

console.log(`| file | MB | Cache API write | Cache API read | OPFS write | OPFS read | read: OPFS / Cache API |`);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${path.basename(r.file)} | ${r.mb.toFixed(1)} | ${r.cacheWrite.toFixed(1)} ms | ${r.cacheRead.toFixed(1)} ms | ${r.opfsWrite.toFixed(1)} ms | ${r.opfsRead.toFixed(1)} ms | ${(r.opfsRead / r.cacheRead).toFixed(2)}× |`,
  );
}
