// Wasm traps in Chromium, where the package runs in a dedicated Worker, as
// an app that wants threads runs it (pkg/test/threads-trap.test.mjs is the
// pool thread's case under Node). Each trap is made by a hook of debug
// builds (the tests run the dev build), reached by importing the glue by
// the same URL the package does: the same module instance. So the page
// serves the repository's pkg/, not the tarball, whose exports do not
// reach the glue.
//
// 1. The threaded build, on a cross-origin isolated page: one of its pool
//    threads traps during an inference (`debug_fault_pool_thread`). Before,
//    the Worker's thread spun for ever waiting for the dead thread's piece,
//    and its event loop never ran again. Now the dead thread's host raises
//    a flag in the shared memory and the Worker's thread traps too; the
//    package fails the call it trapped in with a typed error and refuses
//    the next one (a threaded instance cannot be replaced), and the Worker
//    answers a message after it.
// 2. The single-threaded build, on a page without isolation: a trap inside
//    a call's asynchronous work (`debug_trap_next_call`). It comes out of
//    the microtask that polls the call's future, not out of the call, and
//    the call's promise was never settled. Now the package fails it with a
//    typed error (`settled` in pkg/src/api.js), replaces the instance, the
//    old classifier refuses, and a model loaded again answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, serveStatic } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results;

const PAGE = `<!doctype html><meta charset="utf-8"><title>wasm traps</title>
<script type="module">
  window.got = [];
  window.worker = new Worker('/worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => got.push(data);
  worker.onerror = (e) => got.push({ workerError: e.message });
  worker.postMessage('start');
</script>`;

const POOL_WORKER = `import { Classifier, wasm } from '/pkg/src/cpu.js';
import * as threaded from '/pkg/dist/threads/edgeserve.js';
wasm.threads = 2;
// What the trap leaves: an error event on this Worker's global scope.
self.addEventListener('error', (e) => self.postMessage({ uncaught: String(e.error?.name) + ': ' + String(e.error?.message ?? e.message) }));
self.onmessage = async ({ data }) => {
  if (data === 'ping') return self.postMessage({ pong: true });
  try {
    const model = new URL('/models/efficientnet-lite0/efficientnet-lite0.onnx', location.href);
    const c = await Classifier.load({ model, backend: 'cpu', cache: false });
    const photo = await (await fetch('/samples/coffee_orig.png')).blob();
    const top = async () => (await c.classify(photo, { topK: 1 })).classes[0].index;
    self.postMessage({ isolated: self.crossOriginIsolated, threadsUsed: wasm.threadsUsed, before: await top() });
    threaded.debug_fault_pool_thread();
    // The other thread takes a piece of nearly every operator; the fault
    // waits for the first it takes.
    for (let calls = 1; calls <= 20; calls += 1) {
      try {
        await top();
      } catch (e) {
        const after = await top().then(() => null, (again) => ({ code: again.code, status: again.status }));
        return self.postMessage({ rejected: { calls, code: e.code, status: e.status, message: e.message, typed: e.name === 'EdgeserveError' }, after });
      }
      self.postMessage({ calls });
    }
  } catch (e) {
    self.postMessage({ failed: String(e?.code) + ': ' + String(e?.message ?? e) });
  }
};`;

/**
 * Opens a page (`headers` on every file) whose dedicated Worker runs
 * `worker` once told to start; `check({ got, wait, logs, ping })` then
 * reads what it posted.
 */
async function inChromium(worker, headers, check) {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-wasm-traps-'));
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  writeFileSync(path.join(work, 'index.html'), PAGE);
  writeFileSync(path.join(work, 'worker.js'), worker);
  const server = await serveStatic(
    { '/pkg/': path.join(root, 'pkg'), '/models/': path.join(root, 'models'), '/samples/': path.join(root, 'www/samples'), '/': work },
    { headers },
  );
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const logs = [];
  try {
    const page = await context.newPage();
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(`${server.url}/`);
    const got = () => page.evaluate(() => window.got);
    const wait = async (what, ok, seconds) => {
      for (let t = 0; t < seconds * 10; t += 1) {
        const all = await got();
        const hit = all.find(ok);
        if (hit) return hit;
        // (A trap also reaches the page as the Worker's error event,
        // `workerError`: the package leaves it reported, as it was.)
        if (all.some((m) => m.failed)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`no ${what} in ${seconds} s: ${JSON.stringify(await got())}\n${logs.join('\n')}`);
    };
    const ping = () => page.evaluate(() => window.worker.postMessage('ping'));
    await check({ got, wait, logs, ping });
  } finally {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

const ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

test('a pool thread that traps ends the wait of the Worker that runs the inference: the call is rejected, typed, and the Worker answers after', async () => {
  await inChromium(POOL_WORKER, ISOLATED, async ({ got, wait, logs, ping }) => {
    const first = await wait('first answer', (m) => 'before' in m, 120);
    assert.deepEqual(first, { isolated: true, threadsUsed: 2, before: reference.coffee.top5[0].index });
    const trap = await wait('trap', (m) => m.uncaught, 60);
    assert.match(trap.uncaught, /^RuntimeError: /);
    // The call it trapped in is rejected, typed, as a trap thrown by a
    // call is (the package saw the error event, and the instance said the
    // trap was its own); a threaded instance cannot be replaced, so the
    // next call is refused.
    const { rejected, after } = await wait('rejection of the call that trapped', (m) => m.rejected, 20);
    assert.deepEqual([rejected.code, rejected.status, rejected.typed], ['internal', 'INTERNAL', true], JSON.stringify(rejected));
    assert.match(rejected.message, /the wasm instance trapped \(a bug, please report\): .*a threaded instance cannot be replaced/);
    assert.ok(rejected.calls < 20, `no call failed in 20: the other thread never took a piece`);
    assert.deepEqual(after, { code: 'instance_lost', status: 'UNAVAILABLE' });
    // The Worker's thread waits no more: its event loop runs again.
    await ping();
    await wait('answer to a message after the trap', (m) => m.pong, 20);
    // Why it trapped, as its panic said on the console: the dead thread.
    assert.ok(logs.some((t) => /a thread of the pool died during this operator/.test(t)), logs.join('\n'));
  });
});

const CALL_WORKER = `import { Classifier, wasm } from '/pkg/src/cpu.js';
import * as glue from '/pkg/dist/edge/edgeserve.js';
self.onmessage = async () => {
  try {
    const model = new URL('/models/efficientnet-lite0/efficientnet-lite0.onnx', location.href);
    const load = () => Classifier.load({ model, backend: 'cpu', cache: false });
    const photo = await (await fetch('/samples/coffee_orig.png')).blob();
    const top = async (c) => (await c.classify(photo, { topK: 1 })).classes[0].index;
    const refusal = (call) => call.then(() => null, (e) => ({ code: e.code, status: e.status, message: e.message, typed: e.name === 'EdgeserveError' }));
    const first = await load();
    const before = await top(first);
    glue.debug_trap_next_call();
    const rejected = await refusal(top(first));
    const old = await refusal(top(first));
    const again = await load();
    self.postMessage({ isolated: self.crossOriginIsolated, threadsUsed: wasm.threadsUsed, before, rejected, old, after: await top(again) });
  } catch (e) {
    self.postMessage({ failed: String(e?.code) + ': ' + String(e?.message ?? e) });
  }
};`;

test('a trap inside a call of the single-threaded build is a typed rejection; the instance is replaced, and a model loaded again answers', async () => {
  await inChromium(CALL_WORKER, {}, async ({ wait }) => {
    const r = await wait('answers', (m) => 'before' in m, 180);
    const want = reference.coffee.top5[0].index;
    assert.deepEqual([r.isolated, r.threadsUsed, r.before], [false, 1, want]);
    assert.deepEqual([r.rejected?.code, r.rejected?.status, r.rejected?.typed], ['internal', 'INTERNAL', true], JSON.stringify(r.rejected));
    assert.match(r.rejected.message, /the wasm instance trapped \(a bug, please report\): .*it was replaced by a fresh instance/);
    assert.deepEqual([r.old?.code, r.old?.status], ['instance_lost', 'UNAVAILABLE'], JSON.stringify(r.old));
    assert.equal(r.after, want);
  });
});
