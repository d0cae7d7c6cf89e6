// A wasm trap is never survived by reusing the instance: the package
// replaces it with a fresh one, objects of the trapped instance refuse
// every call, and models loaded again answer as before. No request we know
// of traps (each one found became a typed error), so the trap here is made
// by hand: one call reaches the real wasm with a pointer outside its
// memory, which traps as a bug would ("memory access out of bounds"). Its
// own file, so its own process: the instance replaced is only this one's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as glue from '../dist/edge/edgeserve.js';
import { makeApi, wasmLoader } from '../src/api.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const modelDir = path.join(root, 'models/efficientnet-lite0');
const lite0 = {
  name: 'lite0',
  model: readFileSync(path.join(modelDir, 'efficientnet-lite0.onnx')),
  manifest: readFileSync(path.join(modelDir, 'manifest.json')),
  labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')),
};
const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));

// The real RawEndpoint, except that the call after `trapNext()` is made
// with a pointer no instance's memory reaches.
let trapNext = false;
class FaultyEndpoint extends glue.RawEndpoint {
  handle(...args) {
    if (!trapNext) return super.handle(...args);
    trapNext = false;
    const ptr = this.__wbg_ptr;
    this.__wbg_ptr = 0xfffffff0;
    try {
      return super.handle(...args);
    } finally {
      this.__wbg_ptr = ptr;
    }
  }
}

// The real glue, with the faulty class in place of RawEndpoint.
const faulty = { ...glue, RawEndpoint: FaultyEndpoint };
const loader = wasmLoader({
  relaxedSupported: false,
  start: async () => {
    glue.initSync({ module: await WebAssembly.compile(await readFile(path.join(root, 'pkg/dist/edge/edgeserve_bg.wasm'))) });
    return { glue: faulty, webgpu: false };
  },
});
const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue });

const classify = (endpoint) =>
  endpoint.handle(
    new Request('http://edge/v1/models/lite0:classify', {
      method: 'POST',
      body: JSON.stringify({ examples: [{ 'image/encoded': { b64: coffee.toString('base64') } }] }),
    }),
  );

async function espresso(endpoint) {
  const r = await classify(endpoint);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).results[0][0][0], 'espresso');
}

test('a trapped wasm instance is replaced, its objects refuse, and models loaded again answer', async () => {
  const endpoint = await Endpoint.create({ models: [lite0] });
  const classifier = await Classifier.load({ model: lite0.model, manifest: lite0.manifest, labels: lite0.labels });
  await espresso(endpoint);
  const memoryBefore = glue.initSync({ module: undefined }).memory;

  trapNext = true;
  await assert.rejects(classify(endpoint), (e) => {
    assert.ok(e instanceof EdgeserveError, `${e?.stack ?? e}`);
    assert.equal(e.code, 'internal');
    assert.equal(e.status, 'INTERNAL');
    assert.ok(e.cause instanceof WebAssembly.RuntimeError, `cause: ${e.cause}`);
    assert.match(e.message, /the wasm instance trapped \(a bug, please report\): .*out of bounds.*; it was replaced by a fresh instance: load the models again/);
    return true;
  });
  // A new instance: new memory, not the one the trap left behind.
  assert.notEqual(glue.initSync({ module: undefined }).memory, memoryBefore);

  // Everything of the old instance refuses, typed, instead of reading the
  // new instance's memory through stale pointers.
  for (const call of [() => classify(endpoint), () => classifier.classify(coffee), async () => endpoint.models]) {
    await assert.rejects(call(), (e) => {
      assert.ok(e instanceof EdgeserveError, `${e?.stack ?? e}`);
      assert.equal(e.code, 'instance_lost', e.message);
      assert.equal(e.status, 'UNAVAILABLE');
      assert.match(e.message, /trapped during an earlier call and was replaced; (load the model|create the endpoint) again/);
      return true;
    });
  }
  // Disposing them is safe (there is nothing left to free).
  classifier.dispose();
  endpoint.dispose();

  // Loaded again, the same model answers as before, twice.
  const again = await Endpoint.create({ models: [lite0] });
  await espresso(again);
  await espresso(again);
  const top = await (await Classifier.load({ model: lite0.model, manifest: lite0.manifest, labels: lite0.labels })).classify(coffee, { topK: 1 });
  assert.equal(top.classes[0].label, 'espresso');
});
