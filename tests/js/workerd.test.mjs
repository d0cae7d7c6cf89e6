// The package under workerd (npm), as a Worker uses it (and the edge
// Worker surviving a trap of its wasm): the Worker is
// bundled with esbuild using the `workerd` export condition (what wrangler
// does), run by `workerd serve` on 127.0.0.1 and stopped by its pid.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnUntilReady, stopChild } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results;
const modelDir = path.join(root, 'models/efficientnet-lite0');

/**
 * Bundles `workerd/{entry}` with Lite0's files beside it (the model as
 * bytes, the manifest and labels as bytes too) and half_plus_two's model, serves it with workerd on a
 * free port of 127.0.0.1 with `bindings` (text), and waits until `ready`
 * answers; `{ child, base, bundled, dir }` (the caller stops the child and
 * removes the dir).
 */
async function serveWorker(entry, { bindings = {}, readyPath }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgeserve-workerd-'));
  await build({
    entryPoints: [path.join(here, 'workerd', entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    // `edgeserve/worker`: the package as linked here.
    nodePaths: [path.join(here, 'node_modules')],
    outfile: path.join(dir, 'worker.js'),
    logLevel: 'warning',
    plugins: [
      {
        // Files the Worker imports stay modules of their own in workerd's
        // config (wasm as a compiled module, the model as bytes).
        name: 'modules',
        setup(b) {
          b.onResolve({ filter: /\.(wasm|onnx|json|txt)$/ }, (args) => ({ path: `./${path.basename(args.path)}`, external: true }));
        },
      },
    ],
  });
  symlinkSync(path.join(root, 'pkg/dist/edge/edgeserve_bg.wasm'), path.join(dir, 'edgeserve_bg.wasm'));
  symlinkSync(path.join(modelDir, 'efficientnet-lite0.onnx'), path.join(dir, 'model.onnx'));
  symlinkSync(path.join(modelDir, 'manifest.json'), path.join(dir, 'manifest.json'));
  symlinkSync(path.join(modelDir, 'imagenet_labels.txt'), path.join(dir, 'labels.txt'));
  symlinkSync(path.join(root, 'tests/fixtures/half_plus_two.onnx'), path.join(dir, 'half_plus_two.onnx'));
  const port = await freePort();
  const texts = Object.entries(bindings).map(([name, value]) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`);
  writeFileSync(
    path.join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "edgeserve_bg.wasm", wasm = embed "edgeserve_bg.wasm"),
    (name = "model.onnx", data = embed "model.onnx"),
    (name = "manifest.json", data = embed "manifest.json"),
    (name = "labels.txt", data = embed "labels.txt"),
    (name = "half_plus_two.onnx", data = embed "half_plus_two.onnx"),
  ],
  bindings = [${texts.join(', ')}],
  compatibilityDate = "2026-11-01",
);
`,
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    const { child } = await spawnUntilReady(
      path.join(here, 'node_modules/.bin/workerd'),
      ['serve', path.join(dir, 'config.capnp')],
      { stdio: ['ignore', 'inherit', 'inherit'] },
      () => fetch(`${base}${readyPath}`).then(() => true),
      { tries: 100 },
    );
    return { child, base, dir, bundled: readFileSync(path.join(dir, 'worker.js'), 'utf8') };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

test('the package runs in workerd through its workerd export', async () => {
  const { child, base, dir } = await serveWorker('worker.js', { readyPath: '/v1/models/x/metadata' });
  try {
    const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));
    const r = await fetch(`${base}/classify`, { method: 'POST', body: coffee }).then((res) => res.json());
    assert.deepEqual(r.classes.map((c) => c.index), reference.coffee.top5.map((c) => c.index), JSON.stringify(r));
    assert.equal(r.report.backend, 'cpu');

    const meta = await fetch(`${base}/v1/models/lite0/metadata`).then((res) => res.json());
    assert.equal(meta.model_spec.name, 'efficientnet-lite0');

    // A bad request is a typed error, and the isolate keeps working.
    const bad = await fetch(`${base}/v1/models/lite0:predict`, { method: 'POST', body: '{"instances": [{"wrong": [1]}]}' });
    assert.equal(bad.status, 400);
    const err = await bad.json();
    assert.equal(err.name, 'EdgeserveError');
    assert.equal(err.code, 'request');
    const again = await fetch(`${base}/classify`, { method: 'POST', body: readFileSync(path.join(root, 'www/samples/chelsea_orig.png')) }).then((res) => res.json());
    assert.deepEqual(again.classes.map((c) => c.index), reference.chelsea.top5.map((c) => c.index));
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the edge Worker under workerd: a request that traps the wasm gets a 500, and the next one a fresh instance with the models loaded again', async () => {
  const { child, base, dir, bundled } = await serveWorker('trap-worker.js', {
    bindings: { LOCAL_MODELS: 'efficientnet-lite0', PUBLIC_ENDPOINT: 'true' },
    readyPath: '/v1/models/efficientnet-lite0',
  });
  try {
    // One copy of the glue in the bundle: the class the Worker's Endpoint
    // uses is the one the fault is put on.
    assert.equal(bundled.match(/class RawEndpoint\b|\bRawEndpoint = class\b/g)?.length, 1, 'the glue is bundled once');
    const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));
    const classify = (headers = {}) =>
      fetch(`${base}/v1/models/efficientnet-lite0:classify`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ examples: [{ 'image/encoded': { b64: coffee.toString('base64') } }] }),
      });
    const espresso = async () => {
      const r = await classify();
      assert.equal(r.status, 200);
      assert.equal((await r.json()).results[0][0][0], 'espresso');
    };
    await espresso();
    const trapped = await classify({ 'x-test-trap': '1' });
    assert.equal(trapped.status, 500);
    assert.match((await trapped.json()).error, /^the request stopped the model runtime, which was restarted: the wasm instance trapped \(a bug, please report\): .*; it was replaced by a fresh instance/);
    // Not the trapped instance's endpoint (its calls would be refused as
    // lost): the models are loaded again into the new one.
    await espresso();
    await espresso();
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the edge Worker serves a tensor model bundled with tensors: true: TF Serving's half_plus_two answers and errors, beside Lite0", async () => {
  const { child, base, dir } = await serveWorker('tensors-worker.js', {
    bindings: { PUBLIC_ENDPOINT: 'true' },
    readyPath: '/v1/models/half_plus_two',
  });
  try {
    const call = async (verb, body) => {
      const r = await fetch(`${base}/v1/models/half_plus_two${verb}`, body === undefined ? {} : { method: 'POST', body });
      assert.equal(r.headers.get('content-type'), 'application/json');
      return { status: r.status, body: await r.json() };
    };
    assert.deepEqual(await call(''), { status: 200, body: { model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] } });
    const meta = await call('/metadata');
    const sig = meta.body.metadata.signature_def.signature_def.serving_default;
    assert.equal(sig.method_name, 'tensorflow/serving/predict');
    assert.deepEqual([sig.inputs.x.dtype, sig.inputs.x.tensor_shape.dim.map((d) => d.size)], ['DT_FLOAT', ['-1']]);
    // TF Serving's documented requests and answers, in both forms.
    assert.deepEqual(await call(':predict', '{"instances": [1.0, 2.0, 5.0]}'), { status: 200, body: { predictions: [2.5, 3.0, 4.5] } });
    assert.deepEqual(await call(':predict', '{"inputs": {"x": [1.0, 2.0, 5.0]}}'), { status: 200, body: { outputs: [2.5, 3.0, 4.5] } });
    assert.deepEqual(await call(':classify', '{"examples": [{"x": 1.0}]}'), {
      status: 400,
      body: { error: 'Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict' },
    });
    assert.deepEqual(await call(':predict', '{"inputs": {"z": [1.0]}}'), { status: 400, body: { error: "Missing named input: x in 'inputs' object." } });
    assert.deepEqual(await call(':predict', '{"instances": [0.0]}'), { status: 200, body: { predictions: [2.0] } });
    // The classifier bundled beside it still classifies.
    const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));
    const r = await fetch(`${base}/v1/models/efficientnet-lite0:classify`, { method: 'POST', body: JSON.stringify({ examples: [{ 'image/encoded': { b64: coffee.toString('base64') } }] }) });
    assert.equal((await r.json()).results[0][0][0], 'espresso');
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the edge Worker refuses a tensor model in MODELS (routing reads a manifest it has not), naming it', async () => {
  const { child, base, dir } = await serveWorker('tensors-worker.js', {
    bindings: { PUBLIC_ENDPOINT: 'true', MODELS: 'half_plus_two' },
    readyPath: '/v1/models/half_plus_two',
  });
  try {
    const r = await fetch(`${base}/v1/models/half_plus_two:predict`, { method: 'POST', body: '{"instances": [1.0]}' });
    assert.equal(r.status, 500);
    assert.match((await r.json()).error, /MODELS names half_plus_two, a tensor model: routing needs a manifest; put it in LOCAL_MODELS or PROXY_MODELS/);
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
});
