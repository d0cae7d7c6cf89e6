// Where the wasm comes from, in Node: `wasm.paths` (a directory laid out as
// the package's dist/), or a compiled `wasm.module`. Its own file, so its
// own process: the first load starts the wasm once per process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Classifier, EdgeserveError, wasm } from '../src/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const modelDir = path.join(root, 'models/efficientnet-lite0');
const files = {
  model: readFileSync(path.join(modelDir, 'efficientnet-lite0.onnx')),
  manifest: readFileSync(path.join(modelDir, 'manifest.json')),
  labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')),
};
const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));

test('wasm.paths names where the wasm is; a wrong one fails typed and can be corrected', async () => {
  const copy = mkdtempSync(path.join(tmpdir(), 'edgeserve-wasm-'));
  try {
    for (const dir of ['edge', 'threads']) cpSync(path.join(root, 'pkg/dist', dir), path.join(copy, dir), { recursive: true });
    // Two threads on any machine: the threaded build, from dist/threads/.
    wasm.threads = 2;
    wasm.paths = path.join(copy, 'nowhere');
    await assert.rejects(Classifier.load(files), (e) => {
      assert.ok(e instanceof EdgeserveError);
      assert.equal(e.code, 'fetch_failed');
      assert.match(e.message, /the threaded simd128 wasm build did not start \(the next load tries again\): .*nowhere\/threads\/edgeserve_bg\.wasm/);
      return true;
    });
    assert.equal(wasm.build, null);
    // A file: URL without its trailing slash is the same directory.
    wasm.paths = pathToFileURL(copy).href;
    const c = await Classifier.load(files);
    assert.equal((await c.classify(coffee)).classes[0].label, 'espresso');
    assert.deepEqual([wasm.build, wasm.threadsUsed], ['simd128', 2]);
    // Fixed once started.
    assert.throws(() => (wasm.paths = null), (e) => e.code === 'invalid_options' && /wasm.paths: the wasm was already started/.test(e.message));
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
});
