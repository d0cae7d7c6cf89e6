// The package in a real bundler app: the packed tarball installed into a
// fresh project with tests/js/vite-app's page, script and config; Vite
// builds it and `vite preview` serves it on 127.0.0.1, opened in Debian's
// Chromium, and a photo is chosen through the file input; it is classified
// by `auto` and again on the browser's WebGPU (SwiftShader here), and on
// the CPU by each of the package's two wasm builds (relaxed SIMD and
// simd128), and again after the first download of the wasm failed. Then
// the same app under `vite dev`, with the app's config and without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build, createServer, preview } from 'vite';
import { chromium } from 'playwright-core';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, installInto, packedTarball } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results;

const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-vite-'));
const app = installInto(path.join(work, 'app'), packedTarball(work));
for (const f of ['index.html', 'main.js', 'worker.js', 'vite.config.js']) copyFileSync(path.join(here, 'vite-app', f), path.join(app, f));
const out = path.join(work, 'dist');
// Where the app is, and its public files: the bundled models, as static files.
const where = { root: app, configFile: path.join(app, 'vite.config.js'), publicDir: path.join(root, 'models'), build: { outDir: out } };
test.after(() => rmSync(work, { recursive: true, force: true }));

test('a Vite app that installed edgeserve classifies a chosen photo in Chromium (vite build + preview)', async () => {
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  let server;
  let context;
  try {
    await build(where);
    const assets = readFileSync(path.join(out, 'index.html'), 'utf8');
    assert.match(assets, /assets\/index-[\w-]+\.js/);
    // Every wasm build shipped, simd128 and relaxed SIMD of each (WebGPU,
    // CPU, threaded CPU): the page picks one when the first model loads.
    const files = readdirSync(path.join(out, 'assets'));
    assert.equal(files.filter((f) => /^edgeserve_bg-[\w-]+\.wasm$/.test(f)).length, 3, files.join(', '));
    assert.equal(files.filter((f) => /^edgeserve_relaxed_bg-[\w-]+\.wasm$/.test(f)).length, 3, files.join(', '));
    server = await preview({ ...where, preview: { host: '127.0.0.1', port: 0 } });
    const url = server.resolvedUrls.local[0].replace(/\/$/, '');
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    const problems = [];
    // Opens the built page (with `query`), chooses the photo, and gives
    // what it showed. `failWasmOnce`: the first request for the relaxed
    // build's .wasm fails as a network error would.
    const run = async (query, { failWasmOnce = false } = {}) => {
      const page = await context.newPage();
      let wasmRequests = 0;
      if (failWasmOnce) {
        await page.route(/\/edgeserve_relaxed_bg-[\w-]+\.wasm$/, (route) => (wasmRequests++ === 0 ? route.abort('failed') : route.continue()));
      }
      page.on('console', (m) => m.type() === 'error' && !(failWasmOnce && /net::ERR_FAILED/.test(m.text())) && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`${url}/${query}`);
      await page.waitForSelector('#result[data-state="ready"]', { timeout: 120_000 });
      await page.setInputFiles('#file', path.join(root, 'www/samples/coffee_orig.png'));
      await page.waitForSelector('#result[data-state="done"], #result[data-state="error"]', { timeout: 120_000 });
      const text = await page.textContent('#result');
      const state = await page.getAttribute('#result', 'data-state');
      await page.close();
      assert.equal(state, 'done', text);
      // The failed request and the one that worked.
      if (failWasmOnce) assert.equal(wasmRequests, 2);
      return JSON.parse(text);
    };
    const got = await run('');
    const want = reference.coffee.top5;
    // Chromium runs relaxed SIMD, so the page instantiated that build.
    assert.equal(got.relaxedSimdSupported, true);
    assert.equal(got.wasmBuild, 'relaxed-simd');
    // Both builds on the CPU: the reference top-5, and scores that differ
    // only by fused vs separate rounding.
    const relaxed = await run('?cpu');
    const plain = await run('?cpu&simd128');
    assert.equal(relaxed.wasmBuild, 'relaxed-simd');
    assert.equal(plain.wasmBuild, 'simd128');
    for (const r of [relaxed, plain]) {
      assert.equal(r.fromFile.report.backend, 'cpu');
      assert.deepEqual(r.fromFile.classes.map((c) => c.index), want.map((c) => c.index));
      for (let i = 0; i < 5; i++) assert.ok(Math.abs(r.fromFile.classes[i].score - want[i].prob) < 1e-3);
    }
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(relaxed.fromFile.classes[i].score - plain.fromFile.classes[i].score) < 1e-4);
    // The preview serves the app cross-origin isolated, but the page's main
    // thread may not wait for other threads: one thread, and why.
    assert.equal(relaxed.threadsUsed, 1);
    assert.match(relaxed.threadsUnavailable, /main thread may not wait/);
    // In a dedicated Worker of that page the threaded build runs, relaxed
    // SIMD, with the two threads the app asked for, and gives the same answer.
    const threaded = await run('?worker');
    assert.equal(threaded.isolated, true);
    assert.deepEqual([threaded.threadsSupported, threaded.threadsUnavailable, threaded.threadsUsed, threaded.wasmBuild], [true, null, 2, 'relaxed-simd']);
    assert.equal(threaded.result.report.backend, 'cpu');
    assert.equal(threaded.result.report.threads, 2);
    assert.deepEqual(threaded.result.classes.map((c) => c.index), want.map((c) => c.index));
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(threaded.result.classes[i].score - relaxed.fromFile.classes[i].score) < 1e-5);
    // The model's bytes given with its manifest's URL: the same answer,
    // verified, and nothing kept in the model cache (the manifest names the
    // labels file, which is downloaded and kept; the model is not). One
    // byte changed, they are refused, naming both hashes.
    assert.equal(threaded.fromBytes.report.modelVerified, true);
    assert.deepEqual(threaded.fromBytes.classes.map((c) => c.index), want.map((c) => c.index));
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(threaded.fromBytes.classes[i].score - threaded.result.classes[i].score) < 1e-6);
    assert.ok(!threaded.keptAfterBytes.some((p) => p.includes('/model/')), JSON.stringify(threaded.keptAfterBytes));
    assert.equal(threaded.refused?.code, 'integrity', JSON.stringify(threaded.refused));
    assert.match(threaded.refused.message, /efficientnet-lite0\.onnx has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
    // A wasm download that fails: a typed error, no build chosen, and the
    // next load fetches it again and classifies.
    const retried = await run('?cpu&retry', { failWasmOnce: true });
    assert.deepEqual(retried.firstLoad, { isEdgeserveError: true, code: 'fetch_failed', status: 'UNAVAILABLE', build: null, message: retried.firstLoad.message });
    assert.match(retried.firstLoad.message, /relaxed-simd wasm build did not start/);
    assert.equal(retried.wasmBuild, 'relaxed-simd');
    assert.deepEqual(retried.fromFile.classes.map((c) => c.index), want.map((c) => c.index));
    assert.deepEqual(got.fromFile.classes.map((c) => c.index), want.map((c) => c.index));
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(got.fromFile.classes[i].score - want[i].prob) < 1e-3);
    // auto timed both local backends in this browser and kept the faster.
    assert.equal(got.fromFile.report.backend, got.fromFile.report.local.candidates[0].backend);
    assert.deepEqual(got.fromFile.report.local.candidates.map((c) => c.backend).sort(), ['cpu', 'webgpu']);
    for (const c of got.fromFile.report.local.candidates) assert.ok(c.runMs > 0, JSON.stringify(c));
    // backend 'webgpu' ran on the browser's WebGPU and gave the same answer.
    assert.equal(got.onGpu.report.backend, 'webgpu');
    assert.equal(got.onGpu.report.local, null);
    assert.deepEqual(got.onGpu.classes.map((c) => c.index), want.map((c) => c.index));
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(got.onGpu.classes[i].score - want[i].prob) < 1e-3);
    // Drawn by the browser, decoded by it: the same photo, the same answer.
    assert.equal(got.fromImage.classes[0].label, 'espresso');
    assert.deepEqual(got.drawables, { canvas: 'espresso', bitmap: 'espresso', frame: 'espresso', offscreen: 'espresso' });
    assert.deepEqual(got.error, { isEdgeserveError: true, code: 'invalid_image', message: got.error.message });
    assert.ok(got.progressEvents >= 1);
    assert.deepEqual(problems, []);
  } finally {
    await context?.close();
    await server?.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('the same app under vite dev: it classifies with the config the README gives, and without it says what is missing', async () => {
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const run = async (config, query = '?cpu') => {
    const server = await createServer({ ...where, ...config, server: { host: '127.0.0.1', port: 0 } });
    await server.listen();
    const page = await context.newPage();
    try {
      await page.goto(`${server.resolvedUrls.local[0]}${query}`);
      await page.waitForSelector('#result[data-state="ready"], #result[data-state="error"]', { timeout: 120_000 });
      if ((await page.getAttribute('#result', 'data-state')) === 'error') return { error: await page.textContent('#result') };
      await page.setInputFiles('#file', path.join(root, 'www/samples/coffee_orig.png'));
      await page.waitForSelector('#result[data-state="done"], #result[data-state="error"]', { timeout: 120_000 });
      if ((await page.getAttribute('#result', 'data-state')) === 'error') return { error: await page.textContent('#result') };
      return JSON.parse(await page.textContent('#result'));
    } finally {
      await page.close();
      await server.close();
    }
  };
  try {
    const got = await run({});
    assert.deepEqual(got.fromFile?.classes.map((c) => c.index), reference.coffee.top5.map((c) => c.index), JSON.stringify(got));
    // The dev server sends no isolation headers: in a Worker the package
    // falls back to the single-threaded build and says why.
    const single = await run({}, '?worker');
    assert.deepEqual([single.isolated, single.threadsSupported, single.threadsUsed], [false, false, 1], JSON.stringify(single));
    assert.match(single.threadsUnavailable, /not cross-origin isolated/);
    assert.equal(single.result.report.threads, 1);
    assert.deepEqual(single.result.classes.map((c) => c.index), reference.coffee.top5.map((c) => c.index));
    // Without the app's config, Vite pre-bundles the package; the load
    // fails typed and names the fix.
    const bare = await run({ configFile: false, logLevel: 'silent' });
    assert.match(bare.error ?? '', /fetch_failed: .*optimizeDeps: \{ exclude: \['edgeserve'\] \}/);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
