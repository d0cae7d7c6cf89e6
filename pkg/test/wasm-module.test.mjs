// A compiled `wasm.module` instead of the package's file, in Node; and the
// WebGPU build refused there. Its own file, so its own process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Classifier, wasm } from '../src/node.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const modelDir = path.join(root, 'models/efficientnet-lite0');
const files = {
  model: readFileSync(path.join(modelDir, 'efficientnet-lite0.onnx')),
  manifest: readFileSync(path.join(modelDir, 'manifest.json')),
  labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')),
};

test('wasm.module: a compiled build is used as it is; the WebGPU build is refused in Node', async () => {
  wasm.module = await WebAssembly.compile(readFileSync(path.join(root, 'pkg/dist/edgeserve_bg.wasm')));
  await assert.rejects(Classifier.load(files), (e) => e.code === 'fetch_failed' && /the given wasm build did not start .*WebGPU build; Node runs the CPU build/.test(e.message));
  wasm.module = await WebAssembly.compile(readFileSync(path.join(root, 'pkg/dist/edge/edgeserve_bg.wasm')));
  const c = await Classifier.load(files);
  assert.equal((await c.classify(readFileSync(path.join(root, 'www/samples/coffee_orig.png')))).classes[0].label, 'espresso');
  assert.equal(wasm.build, 'module');
  assert.equal(wasm.webgpuBuild, false);
});
