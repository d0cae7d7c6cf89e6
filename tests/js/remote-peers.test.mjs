// The remote backend against two servers of TF Serving's REST protocol,
// one suite for both, in Node and in Chromium:
// - KServe's V1 model server (PyPI `kserve`, onnxruntime behind a
//   `kserve.Model`: tests/peers/kserve_onnx.py, in the venv `./x test`
//   caches), which has no `/metadata` route and reads only `instances`;
// - `edgeserve serve`, which is TF Serving's REST API exactly.
// Lite2 (24.3 MB, over the default local budget), so `auto` goes remote.
// Both servers bind 127.0.0.1 and are stopped by their pids.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Classifier, EdgeserveError } from 'edgeserve';
import { CHROMIUM_ARGS, serveModels, serveStatic, startServer } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const modelDir = path.join(root, 'models/efficientnet-lite2');
const lite2 = {
  manifest: readFileSync(path.join(modelDir, 'manifest.json')),
  labels: readFileSync(path.join(modelDir, 'imagenet_labels.txt')),
};
const photos = {
  chelsea: readFileSync(path.join(root, 'www/samples/chelsea_orig.png')),
  coffee: readFileSync(path.join(root, 'www/samples/coffee_orig.png')),
};
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite2.onnx'].results;
const tensor = (image) => {
  const b = readFileSync(path.join(shared, `fixtures/inputs/${image}_260_nchw_f32le.bin`));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const bin = process.env.EDGESERVE_BIN;
const python = process.env.EDGESERVE_KSERVE_PYTHON;
const skip = !(bin && python) && 'EDGESERVE_BIN and EDGESERVE_KSERVE_PYTHON are not set (./x test sets them)';

/** The classes' indices and scores against onnxruntime's top-5 of `image`. */
function assertTop5(classes, image, where) {
  const want = reference[image].top5;
  assert.deepEqual(
    classes.slice(0, 5).map((c) => c.index),
    want.map((c) => c.index),
    `${where}: ${image}`,
  );
  for (let i = 0; i < 5; i++) assert.ok(Math.abs(classes[i].score - want[i].prob) < 1e-3, `${where}: ${image} #${i}`);
}

function assertLogits(got, image, where) {
  const want = reference[image].logits;
  assert.equal(got.length, want.length, where);
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
  assert.ok(diff < 1e-3, `${where}: ${image}: max abs diff ${diff} vs onnxruntime`);
}

async function rejectsWith(promise, code, status, text) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof EdgeserveError, `not an EdgeserveError: ${e?.stack ?? e}`);
    assert.deepEqual([e.code, e.status], [code, status], e.message);
    assert.match(e.message, text);
    return true;
  });
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Each server, with what differs between them: where the signature comes
// from, and what the columnar form and an unknown model name give.
const servers = [];
let work;
before(async () => {
  if (skip) return;
  work = mkdtempSync(path.join(tmpdir(), 'edgeserve-peers-'));
  const kserve = await startServer(python, [path.join(root, 'tests/peers/kserve_onnx.py'), '--name', 'efficientnet-lite2', '--onnx', path.join(modelDir, 'efficientnet-lite2.onnx')]);
  servers.push({ name: 'KServe V1', ...kserve, metadata: false });
  const ours = await serveModels(bin, work, ['efficientnet-lite2']);
  servers.push({ name: 'edgeserve serve', ...ours, metadata: true });
});
after(async () => {
  for (const s of servers) await s.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("classify, predict and run through each server give onnxruntime's answers, and the report says where the signature came from", { skip }, async () => {
  for (const server of servers) {
    const remote = { url: server.url };
    const c = await Classifier.load({ ...lite2, backend: 'remote', remote });
    assert.equal(c.backend, 'remote');
    for (const image of ['chelsea', 'coffee']) {
      const r = await c.classify(photos[image]);
      assertTop5(r.classes, image, server.name);
      if (server.metadata) {
        assert.deepEqual(r.report.signature, { from: 'metadata', reason: null });
        assert.equal(r.report.reason, 'remote: requested by the caller');
      } else {
        const meta = `${server.url}/v1/models/efficientnet-lite2/metadata`;
        const why = `the server has no TF Serving metadata: metadata (GET ${meta}): HTTP 404: not a TF Serving error object: "{\\"detail\\":\\"Not Found\\"}"`;
        assert.deepEqual(r.report.signature, { from: 'manifest', reason: why });
        assert.equal(r.report.reason, `remote: requested by the caller; signature from the manifest: ${why}`);
      }
    }
    // The caller's own TF Serving request, in either form where the server
    // reads it; and a typed tensor, as onnxruntime-web's session.run takes.
    const x = tensor('chelsea');
    const nested = [Array.from({ length: 3 }, (_, ch) => Array.from({ length: 260 }, (_, y) => Array.from(x.subarray((ch * 260 + y) * 260, (ch * 260 + y + 1) * 260))))];
    const { predictions } = await c.predict({ instances: nested });
    assertLogits(predictions[0], 'chelsea', `${server.name} predict`);
    const { outputs } = await c.run({ data: tensor('coffee'), dims: [1, 3, 260, 260] });
    assert.deepEqual(outputs.logits.dims, [1, 1000]);
    assertLogits(outputs.logits.data, 'coffee', `${server.name} run`);
    // Checked against the signature (the server's, or the manifest's)
    // before anything is sent, as a local run refuses it.
    await rejectsWith(c.run({ data: new Float32Array(3 * 224 * 224), dims: [1, 3, 224, 224] }), 'request', 'INVALID_ARGUMENT', /expects shape \[(-1|1),3,260,260\] but got \[1,3,224,224\]/);
    c.dispose();
  }
});

test('auto sends a model over the budget to each server without downloading it; discovery can be turned off', { skip }, async () => {
  for (const server of servers) {
    const progress = [];
    const auto = await Classifier.load({ model: 'http://127.0.0.1:9/never-fetched.onnx', ...lite2, remote: { url: server.url }, onProgress: (p) => progress.push(p.file) });
    const r = await auto.classify(photos.coffee);
    assertTop5(r.classes, 'coffee', `${server.name} auto`);
    assert.deepEqual([r.report.backend, r.report.why.kind, progress], ['remote', 'over_budget', []]);
    assert.equal(r.report.signature.from, server.metadata ? 'metadata' : 'manifest');
    auto.dispose();

    const off = await Classifier.load({ ...lite2, backend: 'remote', remote: { url: server.url, discovery: 'off' } });
    const o = await off.classify(photos.chelsea);
    assertTop5(o.classes, 'chelsea', `${server.name} discovery off`);
    assert.deepEqual(o.report.signature, { from: 'manifest', reason: 'discovery is off' });
    off.dispose();
  }
});

test('errors name the step, the URL and what the server said', { skip }, async () => {
  for (const server of servers) {
    const predictUrl = (model) => escape(`predict (POST ${server.url}/v1/models/${model}:predict)`);
    // The columnar form, asked for: TF Serving reads it, KServe's predictor
    // does not (its 500, in its words).
    const columnar = await Classifier.load({ ...lite2, backend: 'remote', remote: { url: server.url, format: 'columnar' } });
    if (server.metadata) assertTop5((await columnar.classify(photos.chelsea)).classes, 'chelsea', `${server.name} columnar`);
    else await rejectsWith(columnar.classify(photos.chelsea), 'remote', 'INTERNAL', new RegExp(`${predictUrl('efficientnet-lite2')}: HTTP 500: KeyError : 'instances'$`));
    columnar.dispose();

    // A model the server does not have: TF Serving says so at the metadata
    // step; KServe, having no metadata, at the predict step.
    // (Default retries: after KServe's 500 above, uvicorn closes the
    // connection, and Node's fetch may fail once on the pooled socket.)
    const remote = { url: server.url, model: 'nope' };
    if (server.metadata) {
      const meta = escape(`metadata (GET ${server.url}/v1/models/nope/metadata)`);
      await rejectsWith(Classifier.load({ ...lite2, backend: 'remote', remote }), 'remote', 'NOT_FOUND', new RegExp(`${meta}: HTTP 404: Servable not found for request: Latest\\(nope\\)`));
    } else {
      const wrong = await Classifier.load({ ...lite2, backend: 'remote', remote });
      await rejectsWith(wrong.classify(photos.chelsea), 'remote', 'NOT_FOUND', new RegExp(`${predictUrl('nope')}: HTTP 404: Model with name nope does not exist\\.$`));
      wrong.dispose();
    }
  }
  // A URL where nothing listens: the step and the URL, at load.
  await rejectsWith(
    Classifier.load({ ...lite2, backend: 'remote', remote: { url: 'http://127.0.0.1:9', retries: 0 } }),
    'remote',
    'UNAVAILABLE',
    /metadata \(GET http:\/\/127\.0\.0\.1:9\/v1\/models\/efficientnet-lite2\/metadata\): cannot connect after 1 attempt\(s\)/,
  );
});

// The page: the package from its source (the CPU entry), the model server
// behind the page's own origin (`/v1/` forwarded), as a site deploys it.
const PAGE = `<!doctype html><title>loading</title><script type="module">
import { Classifier } from '/pkg/src/cpu.js';
const bytes = async (f) => new Uint8Array(await (await fetch(f)).arrayBuffer());
try {
  const files = { manifest: await bytes('/model/manifest.json'), labels: await bytes('/model/imagenet_labels.txt') };
  const photo = await (await fetch('/samples/chelsea_orig.png')).blob();
  const remote = { url: location.origin };
  const c = await Classifier.load({ ...files, backend: 'remote', remote });
  const r = await c.classify(photo);
  const auto = await Classifier.load({ model: '/never-fetched.onnx', ...files, remote });
  const a = await auto.classify(photo);
  window.result = { classes: r.classes, signature: r.report.signature, auto: { classes: a.classes, backend: a.report.backend, why: a.report.why.kind } };
} catch (e) {
  window.result = { error: e.code + ': ' + e.message };
}
document.title = 'done';
</script>`;

test('in Chromium: classify and auto over budget through each server', { skip, timeout: 300_000 }, async () => {
  const site = path.join(work, 'site');
  mkdirSync(site, { recursive: true });
  writeFileSync(path.join(site, 'index.html'), PAGE);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  try {
    for (const server of servers) {
      const page_ = await serveStatic({ '/pkg/': path.join(root, 'pkg'), '/model/': modelDir, '/samples/': path.join(root, 'www/samples'), '/': site }, { forward: server.url });
      try {
        const page = await browser.newPage();
        const problems = [];
        page.on('pageerror', (e) => problems.push(e.message));
        await page.goto(`${page_.url}/`);
        await page.waitForFunction(() => document.title === 'done', null, { timeout: 240_000 });
        const result = await page.evaluate(() => window.result);
        await page.close();
        assert.equal(result.error, undefined, `${server.name}: ${result.error}`);
        assert.deepEqual(problems, []);
        assertTop5(result.classes, 'chelsea', `${server.name} in Chromium`);
        assert.equal(result.signature.from, server.metadata ? 'metadata' : 'manifest');
        assertTop5(result.auto.classes, 'chelsea', `${server.name} in Chromium, auto`);
        assert.deepEqual([result.auto.backend, result.auto.why], ['remote', 'over_budget']);
        assert.ok(!page_.seen.some((u) => u.includes('never-fetched')), 'the over-budget model was downloaded');
      } finally {
        await page_.close();
      }
    }
  } finally {
    await browser.close();
  }
});
