// The package as a consumer uses it: imported by name through `exports`
// (the `node` condition), against the bundled model and the shared
// references; servers (a static file server, `edgeserve serve`, the fault
// proxy) run on 127.0.0.1 and are stopped by the test that started them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Classifier, EdgeserveError, Endpoint, TensorModel, wasm } from 'edgeserve';
import { serveModels, serveStatic, startServer } from '../../tests/js/support.mjs';
import { readModule } from '../../tests/js/wasm-module.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const modelDir = path.join(root, 'models/efficientnet-lite0');
const files = {
  model: readFileSync(path.join(modelDir, 'efficientnet-lite0.onnx')),
  manifest: readFileSync(path.join(modelDir, 'manifest.json')),
  labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')),
};
const manifest = JSON.parse(files.manifest);
// TF Serving's half_plus_two (y = 0.5 x + 2) rebuilt as ONNX: testkit's,
// which a Rust test keeps this copy equal to.
const halfPlusTwo = readFileSync(path.join(root, 'tests/fixtures/half_plus_two.onnx'));
const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));
const chelsea = readFileSync(path.join(root, 'www/samples/chelsea_orig.png'));
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models[
  'efficientnet-lite0.onnx'
].results;

/** Rejects with an EdgeserveError of `code` whose message contains `text`. */
async function rejectsWith(promise, code, text) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof EdgeserveError, `not an EdgeserveError: ${e?.stack ?? e}`);
    assert.ok(e instanceof Error);
    assert.equal(e.code, code, e.message);
    if (text) assert.match(e.message, text);
    return true;
  });
}

function assertTop5(result, name) {
  const want = reference[name].top5;
  assert.deepEqual(
    result.classes.map((c) => c.index),
    want.map((c) => c.index),
  );
  assert.deepEqual(
    result.classes.map((c) => c.label),
    want.map((c) => c.label),
  );
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(result.classes[i].score - want[i].prob) < 1e-3, `${name} #${i}`);
}

let local;
before(async () => {
  local = await Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels });
});
after(() => local?.dispose());

test('the bundled model classifies the photos as onnxruntime does', async () => {
  assert.equal(local.backend, 'cpu');
  assert.deepEqual(local.model, { name: 'efficientnet-lite0', version: 1 });
  const r = await local.classify(coffee);
  assertTop5(r, 'coffee');
  assert.equal(r.classes[0].label, 'espresso');
  assert.equal(r.report.backend, 'cpu');
  assert.deepEqual(r.report.why, { kind: 'no_remote' });
  assert.equal(r.report.reason, 'cpu: auto: no remote is configured');
  for (const k of ['decodeMs', 'preprocessMs', 'inferenceMs']) assert.ok(r.report.timings[k] > 0, k);
  assert.equal(r.report.timings.transferMs, 0);
  assertTop5(await local.classify(new Blob([chelsea])), 'chelsea');
  assert.equal((await local.classify(chelsea.buffer.slice(chelsea.byteOffset, chelsea.byteOffset + chelsea.length), { topK: 2 })).classes.length, 2);
});

test('pixels (ImageData-like): RGB and its RGBA twin give the same answer', async () => {
  const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
  const rgba = new Uint8ClampedArray([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255]);
  const a = await local.classify({ width: 2, height: 2, data: rgb, format: 'rgb' });
  const b = await local.classify({ width: 2, height: 2, data: rgba });
  assert.deepEqual(
    a.classes.map((c) => [c.index, c.score]),
    b.classes.map((c) => [c.index, c.score]),
  );
});

function nested(values, shape) {
  if (shape.length === 1) return Array.from(values.subarray(0, shape[0]));
  const step = shape.slice(1).reduce((x, y) => x * y, 1);
  return Array.from({ length: shape[0] }, (_, i) => nested(values.subarray(i * step), shape.slice(1)));
}

test('predict takes TF Serving requests as TF Serving does, and gives its responses', async () => {
  const bin = readFileSync(path.join(shared, 'fixtures/inputs/chelsea_224_nchw_f32le.bin'));
  const tensor = nested(new Float32Array(bin.buffer, bin.byteOffset, bin.length / 4), [1, 3, 224, 224]);
  const want = reference.chelsea.logits;
  const close = (logits) => {
    assert.equal(logits.length, 1000);
    assert.ok(logits.every((v, i) => Math.abs(v - want[i]) <= 1e-3));
  };
  const row = await local.predict({ instances: tensor });
  close(row.predictions[0]);
  const columnar = await local.predictWithReport({ signature_name: 'serving_default', inputs: { input: tensor } });
  close(columnar.response.outputs[0]);
  assert.equal(columnar.report.backend, 'cpu');
  const text = await local.predict(JSON.stringify({ instances: tensor }));
  close(text.predictions[0]);

  const meta = local.metadata();
  assert.equal(meta.model_spec.name, 'efficientnet-lite0');
  const sig = meta.metadata.signature_def.signature_def.serving_default;
  assert.equal(sig.method_name, 'tensorflow/serving/predict');
  assert.equal(sig.inputs.input.dtype, 'DT_FLOAT');
  assert.deepEqual(
    sig.inputs.input.tensor_shape.dim.map((d) => d.size),
    ['-1', '3', '224', '224'],
  );
});

test("run takes a typed tensor as onnxruntime-web's session.run does, and gives onnxruntime's logits", async () => {
  const bytes = readFileSync(path.join(shared, 'fixtures/inputs/chelsea_224_nchw_f32le.bin'));
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const got = await local.run({ data, dims: [1, 3, 224, 224] });
  assert.deepEqual(Object.keys(got.outputs), ['logits']);
  const { data: logits, dims } = got.outputs.logits;
  assert.ok(logits instanceof Float32Array);
  assert.deepEqual(dims, [1, 1000]);
  const want = reference.chelsea.logits;
  const scale = Math.max(...want.map(Math.abs));
  for (let i = 0; i < 1000; i++) assert.ok(Math.abs(logits[i] - want[i]) <= 1e-3 * scale, `logit ${i}: ${logits[i]} vs ${want[i]}`);
  assert.equal(got.report.backend, 'cpu');
  assert.equal(got.report.threads, wasm.threadsUsed);
  // The same tensor as TF Serving JSON through predict: the same numbers.
  const nested = Array.from({ length: 3 }, (_, c) => Array.from({ length: 224 }, (_, y) => Array.from(data.subarray((c * 224 + y) * 224, (c * 224 + y + 1) * 224))));
  const predicted = await local.predict({ instances: [nested] });
  // (JSON writes each float32 in its shortest decimal form, which reads
  // back as a double: rounded to float32 it is the same number.)
  assert.deepEqual(predicted.predictions[0].map(Math.fround), Array.from(logits));
  // Checked before anything runs; the classifier keeps working after.
  await rejectsWith(local.run(null), 'request', /run: expected a tensor \{ data: Float32Array, dims \}, got null/);
  await rejectsWith(local.run({ data: Array.from(data), dims: [1, 3, 224, 224] }), 'request', /run: data: expected a Float32Array, got an? Array/);
  await rejectsWith(local.run({ data, dims: '1,3,224,224' }), 'request', /run: dims: expected an array of whole numbers, got a string/);
  await rejectsWith(local.run({ data, dims: [1, 3, 224, -224] }), 'request', /run: dims\[3\]: expected a whole number, got the number -224/);
  await rejectsWith(local.run({ data, dims: [1, 3, 224, 223] }), 'request', /run: dims \[1, 3, 224, 223\] hold 149856 values, but data has 150528/);
  await rejectsWith(local.run({ data: data.subarray(0, 3 * 100 * 100), dims: [1, 3, 100, 100] }), 'request', /100/);
  assert.deepEqual((await local.run({ data, dims: [1, 3, 224, 224] })).outputs.logits.data, logits);
});

test('bad input from JS is a typed error, and the classifier keeps working', async () => {
  await rejectsWith(Classifier.load(null), 'invalid_options', /expected an options object, got null/);
  await rejectsWith(Classifier.load({ model: 42, manifest: files.manifest }), 'invalid_options', /options\.model/);
  await rejectsWith(Classifier.load({ model: files.model }), 'invalid_options', /options\.manifest: required/);
  await rejectsWith(
    Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels, backnd: 'wasm' }),
    'invalid_options',
    /options\.backnd: unknown option/,
  );
  await rejectsWith(
    Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels, remote: { url: 'http://127.0.0.1:9', timeoutMs: 'soon' } }),
    'invalid_options',
    /options\.remote\.timeoutMs/,
  );
  await rejectsWith(
    Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels, backend: 'webgpu' }),
    'backend_unavailable',
    /the webgpu backend is unavailable: this build has no WebGPU backend/,
  );
  const wrongSha = { ...manifest, model: { ...manifest.model, sha256: '0'.repeat(64) } };
  await rejectsWith(Classifier.load({ model: files.model, manifest: wrongSha, labels: files.labels }), 'integrity');
  await rejectsWith(
    Classifier.load({ model: files.model.subarray(0, 5000), manifest: { ...manifest, model: { ...manifest.model, bytes: 5000 } }, labels: files.labels }),
    'integrity',
  );
  await rejectsWith(Classifier.load({ model: files.model, manifest: '{"schema": 1', labels: files.labels }), 'invalid_options', /not a URL/);
  await rejectsWith(Classifier.load({ model: files.model, manifest: new TextEncoder().encode('{"schema": 1'), labels: files.labels }), 'invalid_manifest');

  await rejectsWith(local.classify(null), 'invalid_image', /got null/);
  await rejectsWith(local.classify('coffee.png'), 'invalid_image', /got a string/);
  await rejectsWith(local.classify(coffee.subarray(0, 1000)), 'invalid_image', /PNG/);
  await rejectsWith(local.classify({ width: 2, height: 2, data: new Uint8Array(3) }), 'invalid_image');
  await rejectsWith(local.classify({ width: 2.5, height: 2, data: new Uint8Array(20) }), 'invalid_image', /image\.width/);
  await rejectsWith(local.classify(coffee, { topK: 0 }), 'invalid_options', /topK/);
  await rejectsWith(local.classify(coffee, null), 'invalid_options');
  const detached = new Uint8Array(coffee);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  assert.equal(detached.byteLength, 0);
  await rejectsWith(local.classify(detached), 'invalid_image');

  await rejectsWith(local.predict({ instances: [{ wrong: [1] }] }), 'request', /input/);
  await rejectsWith(local.predict({}), 'request', /instances/);
  await rejectsWith(local.predict('{"instances": '), 'request');
  await rejectsWith(local.predict(null), 'request', /got null/);
  await rejectsWith(local.predict({ instances: [1n] }), 'request', /BigInt/);

  const aborted = AbortSignal.abort(new Error('user gave up'));
  await rejectsWith(local.classify(coffee, { signal: aborted }), 'aborted', /user gave up/);

  assertTop5(await local.classify(coffee), 'coffee');
});

test("backend 'cpu' runs on the CPU, and 'wasm', its older spelling, still does; others are named", async () => {
  for (const backend of ['cpu', 'wasm']) {
    const c = await Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels, backend });
    assert.equal(c.backend, 'cpu', backend);
    assert.equal((await c.classify(coffee, { topK: 1 })).classes[0].label, 'espresso');
    c.dispose();
  }
  await rejectsWith(Classifier.load({ model: files.model, manifest: files.manifest, backend: 'gpu' }), 'invalid_options', /gpu/);
});

test('Classifier.plan says where load would run a model, from its manifest alone', async () => {
  const lite2 = JSON.parse(readFileSync(path.join(root, 'models/efficientnet-lite2/manifest.json')));
  const remote = { url: 'http://127.0.0.1:9' };
  // Nothing is fetched: the remote here answers nothing.
  assert.deepEqual(await Classifier.plan({ manifest: lite2, remote }), { runs: 'remote', reason: 'model 24.3 MB > local budget 20.0 MB' });
  assert.deepEqual(await Classifier.plan({ manifest: JSON.stringify(lite2), remote, maxLocalModelBytes: 30_000_000 }), {
    runs: 'local',
    reason: 'model 24.3 MB <= local budget 30.0 MB',
  });
  assert.deepEqual(await Classifier.plan({ manifest, remote }), { runs: 'local', reason: 'model 18.5 MB <= local budget 20.0 MB' });
  const { runs, reason } = await Classifier.plan({ manifest: lite2 });
  assert.equal(runs, 'local');
  assert.match(reason, /but no remote is configured$/);
  assert.deepEqual(await Classifier.plan({ manifest, remote, backend: 'remote' }), { runs: 'remote', reason: 'requested by the caller' });
  await rejectsWith(Classifier.plan({ manifest: files.manifest }), 'invalid_options', /options\.manifest: expected the manifest/);
  await rejectsWith(Classifier.plan({ manifest: '{"name": 1}' }), 'invalid_manifest');
  await rejectsWith(Classifier.plan({ manifest, backend: 'gpu' }), 'invalid_options', /gpu/);
});

test('an inline manifest without size or SHA-256 loads, and reports the model unverified', async () => {
  const { model: _, labels: __, ...rest } = manifest;
  const mine = { ...rest, model: { file: 'mine.onnx' }, labels: { file: 'labels.txt' } };
  const c = await Classifier.load({ model: files.model, manifest: mine, labels: files.labels });
  const got = await c.classify(coffee);
  assertTop5(got, 'coffee');
  assert.equal(got.report.modelVerified, false);
  assert.equal((await c.predictWithReport({ instances: [] }).catch((e) => e)).code, 'request');
  // With the hashes, the same model is verified.
  const verified = await Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels });
  assert.equal((await verified.classify(coffee)).report.modelVerified, true);
  // A model the manifest says is elsewhere: nothing downloaded, nothing verified.
  // (The manifest is taken; the load fails only where it asks the remote,
  // which nothing answers here.)
  await rejectsWith(Classifier.load({ manifest: mine, backend: 'remote', remote: { url: 'http://127.0.0.1:9', retries: 0, timeoutMs: 2000 } }), 'remote', /metadata \(GET http:\/\/127\.0\.0\.1:9\/v1\/models\/efficientnet-lite0\/metadata\): cannot connect after 1 attempt\(s\)/);
  // Routing needs the size, which plan cannot learn without the download.
  await rejectsWith(Classifier.plan({ manifest: mine }), 'invalid_manifest', /options\.manifest\.model\.bytes: needed to plan without downloading the model/);
  // Checked whole before the download: a bad field is refused at once.
  await rejectsWith(Classifier.load({ model: 'http://127.0.0.1:9/never-fetched.onnx', manifest: { ...mine, input: { ...mine.input, layout: 'chw' } } }), 'invalid_manifest', /unknown variant `chw`/);
  await rejectsWith(Classifier.load({ model: files.model, manifest: Buffer.from('null') }), 'invalid_manifest');
  // A manifest file must say both: only one given inline is taken on trust.
  await rejectsWith(Classifier.load({ model: files.model, manifest: Buffer.from(JSON.stringify(mine)) }), 'invalid_manifest', /missing field `bytes`/);
  // Node keeps no model cache.
  await rejectsWith(Classifier.load({ model: files.model, manifest: files.manifest, cache: true }), 'invalid_options', /options\.cache: this entry point has no Cache API/);
  await rejectsWith(Classifier.load({ model: files.model, manifest: files.manifest, cache: 'yes' }), 'invalid_options', /options\.cache: expected a boolean/);
  assert.equal(await Classifier.clearCache(), false);
  for (const x of [c, verified]) x.dispose();
});

test('a disposed classifier says so', async () => {
  const c = await Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels });
  const pending = c.classify(coffee);
  c.dispose();
  // A call already running finishes; later ones are refused.
  assertTop5(await pending, 'coffee');
  assert.equal(c.disposed, true);
  await rejectsWith(c.classify(coffee), 'disposed');
  await rejectsWith(c.predict({ instances: [] }), 'disposed');
  assert.throws(() => c.metadata(), (e) => e.code === 'disposed');
  c.dispose();
});

test('a model URL downloads with progress, its manifest and labels beside it', async () => {
  const files = await serveStatic(path.join(root, 'models'));
  try {
    const progress = [];
    const c = await Classifier.load({
      model: `${files.url}/efficientnet-lite0/efficientnet-lite0.onnx`,
      onProgress: (p) => progress.push(p),
    });
    // Every file the load fetched, in the order fetched, each growing to
    // its whole size (the wasm is read from the package here, not fetched).
    assert.deepEqual([...new Set(progress.map((p) => p.file))], ['manifest', 'labels', 'model']);
    const sizes = { manifest: readFileSync(path.join(modelDir, 'manifest.json')).length, labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')).length, model: manifest.model.bytes };
    for (const [file, size] of Object.entries(sizes)) {
      const events = progress.filter((p) => p.file === file);
      assert.ok(events.every((p, i) => p.total === size && p.cached === undefined && (i === 0 || p.loaded > events[i - 1].loaded)), file);
      assert.equal(events.at(-1).loaded, size, file);
    }
    assert.ok(progress.filter((p) => p.file === 'model').length >= 2);
    assert.deepEqual(files.seen.sort(), [
      '/efficientnet-lite0/efficientnet-lite0.onnx',
      '/efficientnet-lite0/imagenet_labels.txt',
      '/efficientnet-lite0/manifest.json',
    ]);
    assertTop5(await c.classify(coffee), 'coffee');
    c.dispose();

    await rejectsWith(Classifier.load({ model: `${files.url}/nothing/model.onnx` }), 'fetch_failed', /manifest .*nothing\/manifest\.json: HTTP 404/);
    await rejectsWith(
      Classifier.load({ model: `${files.url}/nothing.onnx`, manifest: files.manifest, labels: files.labels }),
      'fetch_failed',
      /HTTP 404/,
    );
    await rejectsWith(Classifier.load({ model: 'models/x.onnx', manifest: files.manifest }), 'invalid_options', /absolute URL/);
    await rejectsWith(Classifier.load({ model: 'http://127.0.0.1:9/x.onnx', manifest: files.manifest, labels: files.labels }), 'fetch_failed');

    // Aborted mid-download: the load rejects, nothing is left half-loaded.
    const controller = new AbortController();
    await rejectsWith(
      Classifier.load({
        model: `${files.url}/efficientnet-lite0/efficientnet-lite0.onnx`,
        signal: controller.signal,
        onProgress: () => controller.abort(new Error('stop')),
      }),
      'aborted',
      /stop/,
    );
    assertTop5(await local.classify(chelsea), 'chelsea');
  } finally {
    await files.close();
  }
});

const server = process.env.EDGESERVE_BIN;
const proxy = process.env.EDGESERVE_FAULT_PROXY_BIN;

test('the remote backend: same answers, routed and reported, cancellable', { skip: !(server && proxy) && 'EDGESERVE_BIN and EDGESERVE_FAULT_PROXY_BIN are not set (./x test sets them)' }, async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'edgeserve-pkg-'));
  const tfs = await serveModels(server, base, ['efficientnet-lite0']);
  try {
    // Over a small budget, auto goes remote and never touches the model.
    const progress = [];
    const remote = await Classifier.load({
      model: 'http://127.0.0.1:9/never-fetched.onnx',
      manifest: files.manifest,
      labels: files.labels,
      remote: { url: tfs.url, headers: { 'X-Test': 'yes' } },
      maxLocalModelBytes: 1_000_000,
      onProgress: (p) => progress.push(p),
    });
    assert.equal(remote.backend, 'remote');
    assert.equal(progress.length, 0);
    const r = await remote.classify(chelsea);
    assertTop5(r, 'chelsea');
    assert.deepEqual(r.report.why, { kind: 'over_budget', modelBytes: manifest.model.bytes, budget: 1_000_000 });
    assert.equal(r.report.reason, 'remote: model 18.5 MB > local budget 1.0 MB');
    assert.ok(r.report.timings.transferMs > 0 && r.report.timings.inferenceMs === 0);
    const [a, b] = [await local.classify(chelsea, { topK: 10 }), await remote.classify(chelsea, { topK: 10 })];
    for (let i = 0; i < 10; i++) assert.ok(Math.abs(a.classes[i].score - b.classes[i].score) < 1e-5);
    assert.equal(remote.metadata().model_spec.name, 'efficientnet-lite0');
    await rejectsWith(remote.predict({ instances: [{ wrong: [1] }] }), 'request');
    remote.dispose();

    // The default budget keeps Lite0 local, with the remote as fallback.
    const auto = await Classifier.load({ model: files.model, manifest: files.manifest, labels: files.labels, remote: { url: tfs.url } });
    const ar = await auto.classify(coffee);
    assert.equal(ar.report.reason, 'cpu: model 18.5 MB <= local budget 20.0 MB');
    auto.dispose();

    // A remote that hangs: the signal aborts the call (and its fetch) long
    // before the 30 s timeout.
    const faults = await startServer(proxy, ['--upstream', new URL(tfs.url).host, '--post', 'hang']);
    try {
      const hung = await Classifier.load({ manifest: files.manifest, labels: files.labels, backend: 'remote', remote: { url: faults.url, retries: 0 } });
      const controller = new AbortController();
      const t0 = Date.now();
      setTimeout(() => controller.abort(new Error('took too long')), 300);
      await rejectsWith(hung.classify(chelsea, { signal: controller.signal }), 'aborted', /took too long/);
      assert.ok(Date.now() - t0 < 5000);
      // The classifier still works (the next POST passes).
      assertTop5(await hung.classify(chelsea), 'chelsea');
      hung.dispose();
    } finally {
      await faults.stop();
    }
  } finally {
    await tfs.stop();
    rmSync(base, { recursive: true, force: true });
  }
});

test('Node and Workers get the edge build: CPU only, no WebGPU code, smaller', () => {
  const full = readFileSync(path.join(root, 'pkg/dist/edgeserve.js'), 'utf8');
  const edge = readFileSync(path.join(root, 'pkg/dist/edge/edgeserve.js'), 'utf8');
  // wgpu's browser backend imports WebGPU's entry points through the glue.
  assert.match(full, /requestAdapter/);
  assert.doesNotMatch(edge, /requestAdapter|GPUDevice/);
  const size = (p) => readFileSync(path.join(root, 'pkg/dist', p)).length;
  assert.ok(size('edge/edgeserve_bg.wasm') < size('edgeserve_bg.wasm'), 'the edge build is not smaller');
  for (const entry of ['src/node.js', 'src/workerd.js']) {
    assert.match(readFileSync(path.join(root, 'pkg', entry), 'utf8'), /\.\.\/dist\/edge\/edgeserve\.js/, entry);
  }
});

// wasm-ld puts a call to the static constructors (the WebGPU shader
// compiler registers ~400) at the top of every export unless the module
// calls them itself; the package calls exports all the time, and re-running
// them cost 20-23 ms a classify. crates/ctors (`edgeserve-ctors`) runs them once.
test('no export of either build re-runs the static constructors', () => {
  for (const build of ['edgeserve_bg.wasm', 'edgeserve_relaxed_bg.wasm', 'edge/edgeserve_bg.wasm', 'threads/edgeserve_bg.wasm', 'threads/edgeserve_relaxed_bg.wasm']) {
    const module = readModule(readFileSync(path.join(root, 'pkg/dist', build)));
    assert.ok(module.names.size > 0, `${build} has no name section (the test builds keep it)`);
    const ctors = [...module.names].filter(([, name]) => name === '__wasm_call_ctors').map(([index]) => index);
    if (!/^(edge|threads)\//.test(build)) assert.equal(ctors.length, 1, 'the full build has static constructors (cubecl registers its IR with inventory)');
    const wrapped = module.exports.filter((e) => ctors.includes(module.firstCallOf(e.index))).map((e) => e.name);
    assert.deepEqual(wrapped, [], `${build}: exports that begin by running the constructors`);
  }
});

test('Node gets the simd128 build; the wasm settings are checked and fixed after the first load', () => {
  assert.equal(wasm.relaxedSimdSupported, false);
  assert.equal(wasm.relaxedSimd, false);
  assert.equal(wasm.build, 'simd128');
  const refused = (value, text) =>
    assert.throws(
      () => {
        wasm.relaxedSimd = value;
      },
      (e) => e instanceof EdgeserveError && e.code === 'invalid_options' && text.test(e.message),
    );
  refused('yes', /wasm.relaxedSimd: expected a boolean, got a string/);
  refused(true, /wasm.relaxedSimd: the wasm was already started by the first model load; set it before that/);
  // Threads: Node can run the threaded build (threads.test.mjs runs it).
  assert.deepEqual([wasm.threads, wasm.threadsSupported, wasm.threadsUnavailable], ['auto', true, null]);
  assert.equal(wasm.threadsUsed, Math.min(4, availableParallelism()));
  assert.throws(() => (wasm.threads = 1), (e) => e.code === 'invalid_options' && /wasm.threads: the wasm was already started/.test(e.message));
  wasm.relaxedSimd = false;
  assert.equal(wasm.build, 'simd128');
  // Node has the CPU build only.
  assert.equal(wasm.webgpu, false);
  assert.equal(wasm.webgpuBuild, false);
  assert.throws(() => (wasm.webgpu = true), (e) => e.code === 'invalid_options' && /this entry point has no WebGPU build/.test(e.message));
  assert.throws(() => (wasm.module = new Uint8Array(8)), (e) => e.code === 'invalid_options' && /wasm.module: expected a WebAssembly.Module, got a Uint8Array/.test(e.message));
  assert.throws(() => (wasm.paths = 42), (e) => e.code === 'invalid_options' && /wasm.paths: expected the URL of a directory/.test(e.message));
});

// Node 20's V8 validates relaxed SIMD only behind a flag, which tells the
// builds apart: the relaxed one must hold relaxed-SIMD code (or the flag
// that makes it did not reach the compiler), the others none.
test('the relaxed-SIMD build holds relaxed-SIMD code; the simd128 builds hold none', () => {
  const validates = (build, flag) => {
    const file = path.join(root, 'pkg/dist', build);
    const r = spawnSync(process.execPath, [flag, '-e', `process.exit(WebAssembly.validate(require('fs').readFileSync(${JSON.stringify(file)})) ? 0 : 3)`], { encoding: 'utf8' });
    assert.ok(r.status === 0 || r.status === 3, `node ${flag}: ${r.stderr}`);
    return r.status === 0;
  };
  for (const build of ['edgeserve_relaxed_bg.wasm', 'edge/edgeserve_relaxed_bg.wasm']) {
    assert.equal(validates(build, '--no-experimental-wasm-relaxed-simd'), false, build);
    assert.equal(validates(build, '--experimental-wasm-relaxed-simd'), true, build);
  }
  for (const build of ['edgeserve_bg.wasm', 'edge/edgeserve_bg.wasm']) assert.equal(validates(build, '--no-experimental-wasm-relaxed-simd'), true, build);
});

// Node 20's V8 runs relaxed SIMD behind that flag, but computes the int8
// dot product (i32x4.relaxed_dot_i8x16_i7x16_add_s) as twice the sum of
// the products without the accumulator: the relaxed build would give wrong
// answers for every int8 model there. The package must see that, not only
// that the engine validates relaxed code, and keep to simd128.
test('an engine that validates relaxed SIMD but computes it wrongly gets the simd128 build', () => {
  const relaxedBuild = path.join(root, 'pkg/dist/edge/edgeserve_relaxed_bg.wasm');
  const script = `import { readFileSync } from 'node:fs';
    import { wasm } from 'edgeserve';
    const validates = WebAssembly.validate(readFileSync(${JSON.stringify(relaxedBuild)}));
    console.log(JSON.stringify({ validates, supported: wasm.relaxedSimdSupported, chosen: wasm.relaxedSimd }));`;
  const r = spawnSync(process.execPath, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', script], { cwd: here, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  // The engine takes the relaxed build's code, and the package still declines it.
  assert.equal(got.validates, true);
  assert.deepEqual([got.supported, got.chosen], [false, false]);
});

test('Endpoint answers TF Serving requests over models loaded here, and checks its options', async () => {
  await rejectsWith(Endpoint.create({ models: 'lite0' }), 'invalid_options', /options.models: expected an array/);
  await rejectsWith(Endpoint.create({ models: [], port: 80 }), 'invalid_options', /options.port: unknown option/);
  await rejectsWith(Endpoint.create({ models: [{ name: '', model: files.model }] }), 'invalid_options', /models\[0\].name/);
  await rejectsWith(Endpoint.create({ models: [{ name: 'a', version: 0, ...files }] }), 'invalid_options', /version must be a positive integer, got 0/);
  const damaged = Uint8Array.from(files.model);
  damaged[1000] ^= 0xff;
  await rejectsWith(Endpoint.create({ models: [{ name: 'a', model: damaged, manifest: files.manifest, labels: files.labels }] }), 'integrity');

  const endpoint = await Endpoint.create({ models: [{ name: 'lite0', version: 3, ...files }], cors: true, maxBodyBytes: 2_000_000 });
  assert.deepEqual(endpoint.models, ['lite0']);
  assert.equal(Endpoint.modelOf('POST', '/v1/models/lite%200:predict'), 'lite 0');
  assert.equal(Endpoint.modelOf('GET', '/healthz'), undefined);
  const get = (p) => endpoint.handle(new Request(`http://x${p}`));
  const status = await get('/v1/models/lite0');
  assert.equal(status.status, 200);
  assert.equal(status.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual(await status.json(), { model_version_status: [{ version: '3', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
  const meta = await (await get('/v1/models/lite0/versions/3/metadata')).json();
  assert.equal(meta.model_spec.name, 'lite0');
  const missing = await get('/v1/models/resnet');
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error, /resnet/);
  const html = await get('/elsewhere');
  assert.equal(html.status, 404);
  assert.equal(html.headers.get('content-type'), 'text/html');

  const b64 = { instances: [{ b64: coffee.toString('base64') }] };
  const predict = (body) => endpoint.handle(new Request('http://x/v1/models/lite0:predict', { method: 'POST', body }));
  const tooBig = await predict(new Uint8Array(2_000_001));
  assert.equal(tooBig.status, 413);
  assert.match((await tooBig.json()).error, /over the 2000000 bytes allowed/);
  const bad = await predict('{"instances": [');
  assert.equal(bad.status, 400);
  assert.ok((await bad.json()).error.length > 0);
  // The signature takes a float tensor, so an encoded image is refused as TF Serving would.
  const wrongType = await predict(JSON.stringify(b64));
  assert.equal(wrongType.status, 400);
  const raw = readFileSync(path.join(shared, 'fixtures/inputs/chelsea_224_nchw_f32le.bin'));
  const x = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const row = Array.from({ length: 3 }, (_, c) => Array.from({ length: 224 }, (_, y) => Array.from(x.subarray(c * 50176 + y * 224, c * 50176 + y * 224 + 224))));
  const good = await predict(JSON.stringify({ instances: [row] }));
  assert.equal(good.status, 200);
  const logits = (await good.json()).predictions[0];
  const top = logits.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);
  assert.deepEqual(top, reference.chelsea.top5.map((c) => c.index));

  endpoint.dispose();
  await rejectsWith(get('/v1/models/lite0'), 'disposed');
});

test("TensorModel serves any ONNX model as tensors: TF Serving's half_plus_two answers its documented requests and errors", async () => {
  await rejectsWith(TensorModel.load({ model: halfPlusTwo, backend: 'webgpu' }), 'invalid_options', /options.backend: a tensor model runs on the CPU backend/);
  await rejectsWith(TensorModel.load({ model: halfPlusTwo, manifest }), 'invalid_options', /options.manifest: unknown option/);
  await rejectsWith(TensorModel.load({ model: halfPlusTwo, version: 0 }), 'invalid_options', /options.version: expected a positive integer, got 0/);
  await rejectsWith(TensorModel.load({}), 'invalid_options', /options.model: required/);
  await rejectsWith(TensorModel.load({ model: halfPlusTwo.subarray(0, 100) }), 'invalid_model');

  const model = await TensorModel.load({ model: halfPlusTwo, name: 'half_plus_two', version: 2 });
  assert.equal(model.backend, 'cpu');
  assert.deepEqual(model.model, { name: 'half_plus_two', version: 2 });
  // TF Serving's README requests, in both forms, as object or JSON text.
  assert.deepEqual(await model.predict({ instances: [1.0, 2.0, 5.0] }), { predictions: [2.5, 3.0, 4.5] });
  assert.deepEqual(await model.predict('{"inputs": {"x": [1.0, 2.0, 5.0]}}'), { outputs: [2.5, 3.0, 4.5] });
  const { response, report } = await model.predictWithReport({ signature_name: 'serving_default', instances: [{ x: 4 }] });
  assert.deepEqual(response, { predictions: [4.0] });
  assert.equal(report.backend, 'cpu');
  assert.match(report.reason, /^cpu: a tensor model runs on the CPU backend/);
  assert.equal(report.threads, wasm.threadsUsed);

  const meta = model.metadata();
  assert.deepEqual(meta.model_spec, { name: 'half_plus_two', version: '2', signature_name: '' });
  const sig = meta.metadata.signature_def.signature_def.serving_default;
  assert.equal(sig.method_name, 'tensorflow/serving/predict');
  for (const info of [sig.inputs.x, sig.outputs.y]) {
    assert.equal(info.dtype, 'DT_FLOAT');
    assert.deepEqual(info.tensor_shape.dim.map((d) => d.size), ['-1']);
  }

  // Bad requests are TF Serving's errors, typed; the model answers after each.
  await rejectsWith(model.predict({ inputs: { z: [1.0] } }), 'request', /^Missing named input: x in 'inputs' object\.$/);
  await rejectsWith(model.predict({ instances: [[1.0, 2.0]] }), 'request');
  await rejectsWith(model.predict({ instances: ['two'] }), 'request');
  await rejectsWith(model.predict({ signature_name: 'regress_x_to_y', instances: [1.0] }), 'request', /regress_x_to_y/);
  await rejectsWith(model.predict([1, 2]), 'request', /expected a PredictRequest object or its JSON text/);
  assert.deepEqual(await model.predict({ instances: [0.0] }), { predictions: [2.0] });

  model.dispose();
  assert.equal(model.disposed, true);
  await rejectsWith(model.predict({ instances: [1.0] }), 'disposed', /the tensor model was disposed/);
});

test('Endpoint serves a tensor model (tensors: true) beside a classifier, with TF Serving\'s answers and errors', async () => {
  await rejectsWith(Endpoint.create({ models: [{ name: 'hpt', model: halfPlusTwo, tensors: 'yes' }] }), 'invalid_options', /models\[0\].tensors: expected a boolean/);
  await rejectsWith(Endpoint.create({ models: [{ name: 'hpt', model: halfPlusTwo, manifest, tensors: true }] }), 'invalid_options', /models\[0\]: a tensor model \(tensors: true\) takes no manifest/);
  await rejectsWith(Endpoint.create({ models: [{ name: 'hpt', version: 0, model: halfPlusTwo, tensors: true }] }), 'invalid_options', /version must be a positive integer, got 0/);
  // Without tensors: true it is read as an image classifier, which needs a manifest.
  await rejectsWith(Endpoint.create({ models: [{ name: 'hpt', model: halfPlusTwo }] }), 'invalid_options', /options.manifest: required/);

  const endpoint = await Endpoint.create({ models: [{ name: 'half_plus_two', model: halfPlusTwo, tensors: true }, { name: 'lite0', ...files }] });
  assert.deepEqual(endpoint.models, ['half_plus_two', 'lite0']);
  const post = async (verb, body) => {
    const r = await endpoint.handle(new Request(`http://x/v1/models/half_plus_two:${verb}`, { method: 'POST', body }));
    return { status: r.status, body: await r.json() };
  };
  assert.deepEqual(await post('predict', '{"instances": [1.0, 2.0, 5.0]}'), { status: 200, body: { predictions: [2.5, 3.0, 4.5] } });
  assert.deepEqual(await post('predict', '{"inputs": {"x": [1.0, 2.0, 5.0]}}'), { status: 200, body: { outputs: [2.5, 3.0, 4.5] } });
  for (const [verb, what] of [['classify', 'classification'], ['regress', 'regression']]) {
    assert.deepEqual(await post(verb, '{"examples": [{"x": 1.0}]}'), {
      status: 400,
      body: { error: `Expected ${what} signature method_name to be tensorflow/serving/${verb}. Was: tensorflow/serving/predict` },
    });
  }
  assert.deepEqual(await post('predict', '{"inputs": {"z": [1.0]}}'), { status: 400, body: { error: "Missing named input: x in 'inputs' object." } });
  const meta = await (await endpoint.handle(new Request('http://x/v1/models/half_plus_two/metadata'))).json();
  assert.deepEqual(meta.model_spec, { name: 'half_plus_two', version: '1', signature_name: '' });
  assert.deepEqual(Object.keys(meta.metadata.signature_def.signature_def.serving_default.inputs), ['x']);
  // The classifier beside it still classifies.
  const classify = await endpoint.handle(new Request('http://x/v1/models/lite0:classify', { method: 'POST', body: JSON.stringify({ examples: [{ 'image/encoded': { b64: coffee.toString('base64') } }] }) }));
  assert.equal((await classify.json()).results[0][0][0], 'espresso');
  endpoint.dispose();
});

test('an Endpoint bounds what one request may spend: image pixels and count, inflated bytes, JSON values', async () => {
  const { gzipSync } = await import('node:zlib');
  await rejectsWith(Endpoint.create({ models: [], limits: { maxPixels: 5 } }), 'invalid_options', /options.limits.maxPixels: unknown limit \(expected one of maxImagePixels/);
  await rejectsWith(Endpoint.create({ models: [], limits: { maxJsonValues: 0 } }), 'invalid_options', /options.limits.maxJsonValues: expected a positive integer, got 0/);
  await rejectsWith(Endpoint.create({ models: [], limits: 3 }), 'invalid_options', /options.limits: expected an object/);

  const endpoint = await Endpoint.create({ models: [{ name: 'lite0', ...files }], limits: { maxImagePixels: 200_000, maxImagesPerRequest: 2 } });
  const post = (verb, body, headers = {}) => endpoint.handle(new Request(`http://x/v1/models/lite0:${verb}`, { method: 'POST', body, headers }));
  const example = { 'image/encoded': { b64: coffee.toString('base64') } };
  const refused = async (response, pattern) => {
    assert.equal(response.status, 400);
    assert.match((await response.json()).error, pattern);
  };
  // The 600x400 photo is over 200 000 pixels: refused from its header.
  await refused(await post('classify', JSON.stringify({ examples: [example] })), /the image is 600x400 = 240000 pixels, over the limit of 200000 pixels/);
  await refused(await post('classify', JSON.stringify({ examples: [{}, {}, {}], context: example })), /the request has 3 images, over the limit of 2 a request/);
  // The isolate's default: 524 288 JSON values, whatever the body inflates to.
  const zeros = gzipSync(`{"instances": [0${',0'.repeat(600_000)}]}`);
  assert.ok(zeros.length < 10_000);
  await refused(await post('predict', zeros, { 'content-encoding': 'gzip' }), /The request holds more than 524288 JSON values/);
  // Within the limits, the endpoint still answers.
  const small = await Endpoint.create({ models: [{ name: 'lite0', ...files }] });
  const ok = await small.handle(new Request('http://x/v1/models/lite0:classify', { method: 'POST', body: JSON.stringify({ examples: [example] }) }));
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).results[0][0][0], 'espresso');
  endpoint.dispose();
  small.dispose();
});
