// The threaded build in Chromium when one of its pool threads traps during
// an inference (pkg/test/threads-trap.test.mjs is the same under Node). The
// package runs in a dedicated Worker of a cross-origin isolated page, as an
// app that wants threads runs it. Before, the Worker's thread spun for ever
// waiting for the dead thread's piece: its event loop never ran again. Now
// the dead thread's host raises a flag in the shared memory and the
// Worker's thread traps too: the trap reaches the Worker's global error
// event, the package fails the call it trapped in with a typed error
// (`settled` in pkg/src/api.js: the trap comes out of a microtask, not out
// of the call), refuses the next one (a threaded instance cannot be
// replaced), and the Worker answers a message after it.
//
// The trap is made by a hook of debug builds (`debug_fault_pool_thread`,
// in the dev build the tests run), reached here by importing the threaded
// glue by the same URL the package does: the same module instance. So the
// page serves the repository's pkg/ (the dev build), not the tarball, whose
// exports do not reach the glue.

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

const PAGE = `<!doctype html><meta charset="utf-8"><title>pool trap</title>
<script type="module">
  window.got = [];
  window.worker = new Worker('/worker.js', { type: 'module' });
  worker.onmessage = ({ data }) => got.push(data);
  worker.onerror = (e) => got.push({ workerError: e.message });
  worker.postMessage('start');
</script>`;

const WORKER = `import { Classifier, wasm } from '/pkg/src/cpu.js';
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

test('a pool thread that traps in Chromium ends the wait of the Worker that runs the inference: the call is rejected, typed, and the Worker answers after', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-pool-trap-'));
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  writeFileSync(path.join(work, 'index.html'), PAGE);
  writeFileSync(path.join(work, 'worker.js'), WORKER);
  const server = await serveStatic(
    { '/pkg/': path.join(root, 'pkg'), '/models/': path.join(root, 'models'), '/samples/': path.join(root, 'www/samples'), '/': work },
    { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
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
        // (The trap also reaches the page as the Worker's error event,
        // `workerError`: the package reports it as it was, uncaught.)
        if (all.some((m) => m.failed)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`no ${what} in ${seconds} s: ${JSON.stringify(await got())}\n${logs.join('\n')}`);
    };
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
    await page.evaluate(() => window.worker.postMessage('ping'));
    await wait('answer to a message after the trap', (m) => m.pong, 20);
    // Why it trapped, as its panic said on the console: the dead thread.
    assert.ok(logs.some((t) => /a thread of the pool died during this operator/.test(t)), logs.join('\n'));
  } finally {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});
