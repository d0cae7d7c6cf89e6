// The offline demo (www/) in Debian's Chromium: served by www/serve.mjs with
// a real `edgeserve serve` of Lite0 and Lite2 behind its /v1/ paths, both
// started here on 127.0.0.1 and stopped by pid. Photos are chosen through
// the file input; each backend is forced in turn; the page is reloaded
// offline; bad files show a readable message and the page keeps working. A
// screenshot of the result panel (and one of the page) is left in $EDGESERVE_ARTEFACTS (default:
// edgeserve-artefacts/ in the system's temp dir) to look at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';
import { CHROMIUM_ARGS, serveModels, startServer } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const bin = process.env.EDGESERVE_BIN;
const photo = (name) => path.join(root, 'www/samples', `${name}_orig.png`);

/** A valid grayscale PNG of `width`×`height` black pixels (a few KB). */
function blackPng(width, height) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grayscale
  const rows = Buffer.alloc((width + 1) * height); // filter byte 0 + zeros
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

test('the demo classifies on every backend, offline too, and explains bad files', { skip: !bin && 'EDGESERVE_BIN is not set (./x test sets it)' }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-demo-'));
  const artefacts = process.env.EDGESERVE_ARTEFACTS ?? path.join(tmpdir(), 'edgeserve-artefacts');
  mkdirSync(artefacts, { recursive: true });
  writeFileSync(path.join(work, 'not-an-image.png'), 'this is text, not a PNG');
  writeFileSync(path.join(work, 'huge.png'), blackPng(8000, 6000));

  let tfs;
  let demo;
  let context;
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  try {
    tfs = await serveModels(bin, work, ['efficientnet-lite0', 'efficientnet-lite2']);
    demo = await startServer(process.execPath, [path.join(root, 'www/serve.mjs'), '--port', '0', '--remote', tfs.url]);
    context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${demo.url}/`);
    // Precached for offline use before anything else happens.
    await page.waitForSelector('body[data-offline-ready="true"]', { timeout: 120_000 });

    const classify = async ({ file, model = 'efficientnet-lite0', backend = 'auto' }) => {
      await page.selectOption('#model', model);
      await page.selectOption('#backend', backend);
      await page.setInputFiles('#file', file);
      await page.waitForSelector('#result[data-state="done"], #result[data-state="error"]', { timeout: 180_000 });
      return page.evaluate(() => ({
        state: document.getElementById('result').dataset.state,
        message: document.getElementById('message').textContent,
        top: [...document.querySelectorAll('#classes li span:first-child')].map((s) => s.textContent),
        ran: document.getElementById('ran').textContent,
        threads: document.getElementById('threads').textContent,
        why: document.getElementById('why').textContent,
        times: document.getElementById('times').textContent,
      }));
    };

    await t.test('auto, then each backend forced, on the coffee photo', async () => {
      const auto = await classify({ file: photo('coffee') });
      assert.equal(auto.state, 'done', auto.message);
      assert.equal(auto.top[0], 'espresso');
      assert.equal(auto.top.length, 5);
      // auto timed the CPU and the GPU here and says which it kept.
      assert.match(auto.why, /^model 18\.5 MB <= local budget 20\.0 MB; local backends: (cpu|webgpu) [\d.]+ ms, (cpu|webgpu) [\d.]+ ms$/);
      assert.ok(['cpu', 'webgpu'].includes(auto.ran), auto.ran);
      assert.match(auto.times, /^decode [\d.]+ ms, preprocess [\d.]+ ms, inference [\d.]+ ms, network 0\.0 ms$/);
      await page.locator('#result').screenshot({ path: path.join(artefacts, 'demo-result.png') });
      await page.screenshot({ path: path.join(artefacts, 'demo-page.png'), fullPage: true });
      for (const [backend, ran] of [['cpu', 'cpu'], ['webgpu', 'webgpu'], ['remote', 'remote']]) {
        const r = await classify({ file: photo('coffee'), backend });
        assert.equal(r.state, 'done', `${backend}: ${r.message}`);
        assert.equal(r.top[0], 'espresso', backend);
        assert.equal(r.ran, ran);
        assert.equal(r.why, 'requested by the caller');
        // The page is cross-origin isolated and runs the engine in a Worker:
        // the CPU backend ran on the threaded build ('auto': the cores, at
        // most 4; Chromium's count is the machine's).
        assert.equal(r.threads, backend === 'cpu' ? String(Math.min(4, availableParallelism())) : '–', backend);
      }
    });

    await t.test('Lite2 is over the local budget, so auto sends it to the remote and says so', async () => {
      const r = await classify({ file: photo('chelsea'), model: 'efficientnet-lite2' });
      assert.equal(r.state, 'done', r.message);
      assert.equal(r.ran, 'remote');
      assert.equal(r.why, 'model 24.3 MB > local budget 20.0 MB');
      assert.match(r.top[0], /cat|tabby/);
      assert.match(r.times, /network [1-9][\d.]* ms|network 0\.[1-9]\d* ms/);
    });

    await t.test('a non-image and an oversized image get a readable message; the page keeps working', async () => {
      const text = await classify({ file: path.join(work, 'not-an-image.png') });
      assert.equal(text.state, 'error');
      assert.match(text.message, /^This image cannot be classified: /);
      const huge = await classify({ file: path.join(work, 'huge.png') });
      assert.equal(huge.state, 'error');
      assert.match(huge.message, /^This image cannot be classified: .*48000000/);
      const after = await classify({ file: photo('coffee') });
      assert.equal(after.top[0], 'espresso');
    });

    await t.test('offline, a reload still classifies locally and the remote says it is unavailable', async () => {
      await context.setOffline(true);
      await page.reload();
      await page.waitForSelector('body[data-offline-ready="true"]', { timeout: 60_000 });
      assert.match(await page.textContent('#network'), /^Offline/);
      const cat = await classify({ file: photo('chelsea'), backend: 'cpu' });
      assert.equal(cat.state, 'done', cat.message);
      assert.match(cat.top[0], /cat|tabby/);
      // The threaded build came from the service worker's cache.
      assert.equal(cat.threads, String(Math.min(4, availableParallelism())));
      const remote = await classify({ file: photo('chelsea'), backend: 'remote' });
      assert.equal(remote.state, 'error');
      assert.match(remote.message, /^The remote endpoint is unavailable while this device is offline/);
      await context.setOffline(false);
    });

    // The camera cannot be tested without one; everything else left no
    // errors in the console.
    assert.deepEqual(problems, []);
  } finally {
    await context?.close();
    await demo?.stop();
    await tfs?.stop();
    rmSync(profile, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});
