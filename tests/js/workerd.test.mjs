// The package under workerd (npm), as a Worker uses it: the Worker is
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

test('the package runs in workerd through its workerd export', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgeserve-workerd-'));
  let child;
  try {
    await build({
      entryPoints: [path.join(here, 'workerd/worker.js')],
      bundle: true,
      format: 'esm',
      platform: 'neutral',
      conditions: ['workerd', 'worker', 'browser'],
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
    const port = await freePort();
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
  ],
  compatibilityDate = "2026-11-01",
);
`,
    );
    const base = `http://127.0.0.1:${port}`;
    ({ child } = await spawnUntilReady(
      path.join(here, 'node_modules/.bin/workerd'),
      ['serve', path.join(dir, 'config.capnp')],
      { stdio: ['ignore', 'inherit', 'inherit'] },
      () => fetch(`${base}/v1/models/x/metadata`).then(() => true),
      { tries: 100 },
    ));

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
