#!/usr/bin/env node
// Whether a revisit starts with the load's code optimised: the same page
// visited three times in one headless Chromium profile (the package's wasm
// served with `Cache-Control: max-age=3600`, so V8 may keep its code), each
// visit a fresh Worker (benches/web/revisit-worker.js) that starts the
// threaded build with a Lite0 load, then takes Lite2's warm starts from
// bytes at hand in a row. Uses the release package (`./x pkg`). Not a test:
// it prints each visit's warm starts, load + first result (load alone), and
// how much compiled code Chromium keeps for the wasm in the profile after it.
// V8 hands the module's code, the functions it optimised included, to
// Chromium's code cache once it has optimised enough more of it and been
// quiet a while (here a visit of 12 warm starts left 1.4 MB, one of 3
// nothing), and a later visit whose .wasm comes from the HTTP cache starts
// with that code (one served without a cache lifetime is fetched again, and
// its code is not used).
//
//   node benches/warm_revisit.mjs [--first 12] [--later 6]

import { chromium } from '../tests/js/node_modules/playwright-core/index.mjs';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHROMIUM_ARGS, serveStatic } from '../tests/js/support.mjs';

/** The bytes of the files under `dir` (0 where there is none; an empty cache is its index, 72 bytes). */
function bytesUnder(dir) {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => {
    const p = path.join(dir, e.name);
    return n + (e.isDirectory() ? bytesUnder(p) : e.isFile() ? statSync(p).size : 0);
  }, 0);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values: args } = parseArgs({ options: { first: { type: 'string', default: '12' }, later: { type: 'string', default: '6' } } });

const server = await serveStatic(
  { '/pkg/': path.join(root, 'pkg'), '/models/': path.join(root, 'models'), '/samples/': path.join(root, 'www/samples'), '/': path.join(here, 'web') },
  { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'max-age=3600' } },
);
const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-revisit-'));
const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
try {
  const visits = [Number(args.first), Number(args.later), Number(args.later)];
  for (const [i, n] of visits.entries()) {
    const page = await context.newPage();
    await page.goto(`${server.url}/revisit.html`);
    const r = await page.evaluate(
      (n) =>
        new Promise((resolve) => {
          const worker = new Worker('/revisit-worker.js', { type: 'module' });
          worker.onmessage = ({ data }) => resolve(data);
          worker.postMessage({ n });
        }),
      n,
    );
    await page.close();
    if (r.error) throw new Error(r.error);
    const warm = r.warm.map((w) => `${w.ms.toFixed(0)} (${w.loadMs.toFixed(0)})`).join(', ');
    console.log(`visit ${i + 1}: the wasm's start (${(r.wasmBytes / 1e6).toFixed(1)} MB downloaded) and a Lite0 load + classify ${r.startMs.toFixed(0)} ms; Lite2 warm starts, ms: ${warm}`);
    // Time for the browser to write what it keeps.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    console.log(`  Chromium's wasm code cache in the profile after it: ${(bytesUnder(path.join(profile, 'Default', 'Code Cache', 'wasm')) / 1e6).toFixed(1)} MB`);
  }
} finally {
  await context.close();
  await server.close();
  rmSync(profile, { recursive: true, force: true });
}
