// The threaded build in Node (worker_threads): chosen by default, as many
// threads as `wasm.threads` says ('auto': the cores, at most 4), the same
// logits as the single-threaded build, and a process that still exits by
// itself (the pool's workers do not keep it alive). Each run is a process
// of its own: the wasm starts once per process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results;

/** Lite0 on the coffee photo in a fresh Node process, with `wasm.threads` set to `threads` (unless undefined). */
function run(threads) {
  const script = `import { readFileSync } from 'node:fs';
    import { Classifier, wasm } from '../src/node.js';
    const threads = ${JSON.stringify(threads ?? null)};
    if (threads !== null) wasm.threads = threads;
    const dir = ${JSON.stringify(path.join(root, 'models/efficientnet-lite0'))};
    const c = await Classifier.load({
      model: readFileSync(dir + '/efficientnet-lite0.onnx'),
      manifest: readFileSync(dir + '/manifest.json'),
      labels: readFileSync(dir + '/imagenet_labels.txt'),
    });
    const photo = readFileSync(${JSON.stringify(path.join(root, 'www/samples/coffee_orig.png'))});
    const classified = await c.classify(photo, { topK: 5 });
    // The logits of the preprocessed photo (onnxruntime's input).
    const bytes = readFileSync(${JSON.stringify(path.join(shared, 'fixtures/inputs/coffee_224_nchw_f32le.bin'))});
    const ran = await c.run({ data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), dims: [1, 3, 224, 224] });
    console.log(JSON.stringify({ classified, logits: Array.from(ran.outputs.logits.data), report: ran.report, build: wasm.build, threadsUsed: wasm.threadsUsed, supported: wasm.threadsSupported }));`;
  // The pool's workers are unref'd: the process ends when the script does.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `threads ${threads}: status ${r.status} signal ${r.signal}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('Node runs the threaded build by default, with the same answers as one thread', () => {
  const auto = run(undefined);
  const cores = availableParallelism();
  const want = Math.min(4, cores);
  assert.equal(auto.supported, true);
  assert.equal(auto.threadsUsed, want);
  assert.equal(auto.classified.report.threads, want);
  assert.equal(auto.report.threads, want);
  assert.equal(auto.build, 'simd128');
  assert.deepEqual(auto.classified.classes.map((c) => c.index), reference.coffee.top5.map((c) => c.index));
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(auto.classified.classes[i].score - reference.coffee.top5[i].prob) < 1e-3);

  const one = run(1);
  assert.deepEqual([one.threadsUsed, one.classified.report.threads, one.build], [1, 1, 'simd128']);
  // More threads than cores is allowed (the host decides how they share them).
  const three = run(3);
  assert.deepEqual([three.threadsUsed, three.classified.report.threads], [3, 3]);
  // Each output is computed by one thread, in the same order as on one:
  // the threads change no logit.
  assert.equal(one.logits.length, 1000);
  assert.deepEqual(auto.logits, one.logits);
  assert.deepEqual(three.logits, one.logits);
});

test('wasm.threads is checked', () => {
  const script = `import { wasm } from '../src/node.js';
    const out = [];
    for (const v of [0, 65, 1.5, '2', null]) {
      try { wasm.threads = v; out.push('taken'); } catch (e) { out.push(e.code + ': ' + e.message); }
    }
    console.log(JSON.stringify({ out, threads: wasm.threads, used: wasm.threadsUsed }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  for (const m of got.out) assert.match(m, /^invalid_options: wasm.threads: expected 'auto' or a whole number from 1 to 64, got /);
  assert.deepEqual([got.threads, got.used], ['auto', null]);
});

test('bytes whose load starts before their manifest arrives are still checked against it', () => {
  // Threaded, with a thread to spare: the load of bytes given with a
  // manifest to read starts before the manifest is read, and the manifest's
  // size and SHA-256 are checked once it is.
  const script = `import { readFileSync } from 'node:fs';
    import { Classifier, wasm } from '../src/node.js';
    wasm.threads = 2;
    const dir = ${JSON.stringify(path.join(root, 'models/efficientnet-lite0'))};
    const model = readFileSync(dir + '/efficientnet-lite0.onnx');
    const [manifest, labels] = [readFileSync(dir + '/manifest.json'), readFileSync(dir + '/imagenet_labels.txt')];
    const refused = async (bytes) => {
      try { await Classifier.load({ model: bytes, manifest, labels }); return 'loaded'; } catch (e) { return e.code + ': ' + e.message; }
    };
    const changed = new Uint8Array(model);
    changed[5000] ^= 1;
    const out = { short: await refused(model.subarray(0, 1000)), changed: await refused(changed) };
    const c = await Classifier.load({ model, manifest, labels });
    out.after = (await c.classify(readFileSync(${JSON.stringify(path.join(root, 'www/samples/coffee_orig.png'))}), { topK: 1 })).classes[0].index;
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: here, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  assert.match(got.short, /^integrity: model file does not match its manifest: efficientnet-lite0\.onnx is 1000 bytes, the manifest says 18547719/);
  assert.match(got.changed, /^integrity: model file does not match its manifest: efficientnet-lite0\.onnx has sha256 [0-9a-f]{64}, the manifest says [0-9a-f]{64}/);
  assert.equal(got.after, reference.coffee.top5[0].index);
});
