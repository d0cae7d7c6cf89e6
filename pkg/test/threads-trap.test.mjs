// A trap on one of the threaded build's pool threads during an inference
// (in wasm a panic aborts, so a bug in a kernel there ends that thread):
// the inference's own thread spun for that thread's piece of work for ever,
// and the process hung at full CPU. Now the trapped thread's host sets a
// flag in the shared memory (pkg/src/threads.js) and the inference's thread
// traps too, naming why, instead of waiting.
//
// What the caller then sees is what any trap inside an asynchronous call
// gives today, in every build: the trap comes out of the microtask that
// polls the call's future (wasm-bindgen's futures queue), not out of the
// call, so in Node it is an uncaught exception that ends the process, and
// the call's promise is never settled. This test asserts that much: the
// process ends, promptly, with both threads' reasons, rather than hanging.
//
// The trap is made by a hook of debug builds (the package's tests run the
// dev build): `debug_fault_pool_thread` makes the next piece of work that a
// pool thread other than the caller's takes panic. The scenario runs in a
// child process with a time limit: a hang blocks its event loop, and only
// the limit ends it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results;

test('a pool thread that traps during an inference ends the call instead of hanging it', () => {
  const script = `import { readFileSync } from 'node:fs';
    import { Classifier, wasm } from '../src/node.js';
    import * as threaded from '../dist/threads/edgeserve.js';
    wasm.threads = 2;
    const dir = ${JSON.stringify(path.join(root, 'models/efficientnet-lite0'))};
    const c = await Classifier.load({
      model: readFileSync(dir + '/efficientnet-lite0.onnx'),
      manifest: readFileSync(dir + '/manifest.json'),
      labels: readFileSync(dir + '/imagenet_labels.txt'),
    });
    const photo = readFileSync(${JSON.stringify(path.join(root, 'www/samples/coffee_orig.png'))});
    const top = async () => (await c.classify(photo, { topK: 1 })).classes[0].index;
    console.log(JSON.stringify({ threadsUsed: wasm.threadsUsed, before: await top() }));
    threaded.debug_fault_pool_thread();
    // The other thread takes a piece of nearly every operator; the fault
    // waits for the first it takes.
    for (let calls = 1; calls <= 20; calls += 1) {
      await top();
      console.log(JSON.stringify({ calls }));
    }`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, encoding: 'utf8', timeout: 240_000 });
  const seconds = (Date.now() - t0) / 1e3;
  assert.equal(r.signal, null, `killed after ${seconds} s (${r.signal}): the call hung\n${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { threadsUsed: 2, before: reference.coffee.top5[0].index });
  assert.ok(lines.length < 21, `no call failed in 20: the other thread never took a piece\n${r.stderr}`);
  assert.equal(r.status, 1, r.stderr);
  // The caller's panic, which names the dead thread (it knows of it only
  // by the flag its host set), then the trap itself. (The pool thread's
  // own report is on a worker's stderr, which the ending process may not
  // flush.)
  assert.match(r.stderr, /a thread of the pool died during this operator \(\d+ of \d+ pieces done\)/);
  assert.match(r.stderr, /RuntimeError: unreachable/);
});
